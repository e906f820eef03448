//! An identity provider inside the test: a real HTTPS server (rustls, a CA made by rcgen) that
//! publishes a JWKS and an OpenID discovery document, can rotate its keys or fail, and counts
//! how often its JWKS is fetched. Keys are the fixtures in `tests/fixtures/auth/`.
use std::{
    convert::Infallible,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::{
    ServerConfig,
    pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    task::JoinHandle,
};
use tokio_rustls::TlsAcceptor;

pub const JWKS_PATH: &str = "/jwks.json";

/// The fixture keys: kid, private key file, algorithm.
pub const ED_2025: (&str, &str, Algorithm) = ("ed-2025", "ed25519_private.pem", Algorithm::EdDSA);
pub const ED_2026: (&str, &str, Algorithm) =
    ("ed-2026", "ed25519_next_private.pem", Algorithm::EdDSA);
pub const EC_1: (&str, &str, Algorithm) = ("ec-1", "ec_private.pem", Algorithm::ES256);

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/auth")
        .join(name)
}

/// The public JWK of a fixture key, from the fixture JWKS.
fn public_jwk(kid: &str) -> Value {
    let text = std::fs::read_to_string(fixture("jwks.json")).expect("fixture jwks");
    let set: Value = serde_json::from_str(&text).expect("fixture jwks is json");
    set["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .cloned()
        .unwrap_or_else(|| panic!("no fixture key {kid}"))
}

/// `claims` signed by a fixture key, naming `kid` in the header.
pub fn sign(key: (&str, &str, Algorithm), kid: &str, claims: &Value) -> String {
    let (_, file, alg) = key;
    let pem = std::fs::read(fixture(file)).expect("fixture key");
    let encoding = match alg {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        _ => EncodingKey::from_ec_pem(&pem),
    }
    .expect("fixture key parses");
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &encoding).expect("signs")
}

/// A CA and a certificate it signed for 127.0.0.1 and localhost.
#[derive(Clone)]
pub struct TestTls {
    pub ca_pem: String,
    server: Arc<ServerConfig>,
}

impl TestTls {
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "test identity provider CA");
        let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("leaf params")
            .signed_by(&leaf_key, &issuer)
            .expect("leaf cert");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let server =
            ServerConfig::builder_with_provider(library_service::crypto::crypto_provider())
                .with_safe_default_protocol_versions()
                .expect("tls versions")
                .with_no_client_auth()
                .with_single_cert(vec![leaf.der().clone()], key)
                .expect("server config");
        Self {
            ca_pem: ca_cert.pem(),
            server: Arc::new(server),
        }
    }

    /// The CA certificate in a file, for `--jwt-jwks-ca`.
    pub fn ca_file(&self, dir: &std::path::Path) -> PathBuf {
        let path = dir.join("idp-ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write the CA");
        path
    }
}

#[derive(Default)]
struct State {
    keys: Mutex<Vec<Value>>,
    cache_control: Mutex<Option<String>>,
    fetches: AtomicUsize,
    down: AtomicBool,
    base: Mutex<String>,
}

pub struct Provider {
    pub addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Provider {
    /// An HTTPS provider on a free port publishing the fixture keys `kids`.
    pub async fn https(tls: &TestTls, kids: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve(listener, Some(tls), kids)
    }

    /// A provider without TLS (for `--jwt-jwks-allow-http`).
    pub async fn plain_http(kids: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve(listener, None, kids)
    }

    pub fn serve(listener: TcpListener, tls: Option<&TestTls>, kids: &[&str]) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(State::default());
        *state.base.lock().expect("lock") = format!("{scheme}://{addr}");
        *state.keys.lock().expect("lock") = kids.iter().map(|k| public_jwk(k)).collect();
        let acceptor = tls.map(|tls| TlsAcceptor::from(tls.server.clone()));
        let served = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, acceptor) = (served.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                connection(stream, state).await;
                            }
                        }
                        None => connection(stream, state).await,
                    }
                });
            }
        });
        Self {
            addr,
            state,
            server,
        }
    }

    /// `https://127.0.0.1:PORT` (the issuer, in discovery tests).
    pub fn base(&self) -> String {
        self.state.base.lock().expect("lock").clone()
    }

    pub fn jwks_url(&self) -> String {
        format!("{}{JWKS_PATH}", self.base())
    }

    /// Publishes the fixture keys `kids` from now on.
    pub fn publish(&self, kids: &[&str]) {
        *self.state.keys.lock().expect("lock") = kids.iter().map(|k| public_jwk(k)).collect();
    }

    /// Publishes this JWK as it is (beside nothing else).
    pub fn publish_raw(&self, keys: Vec<Value>) {
        *self.state.keys.lock().expect("lock") = keys;
    }

    pub fn set_cache_control(&self, value: &str) {
        *self.state.cache_control.lock().expect("lock") = Some(value.to_string());
    }

    /// While down, every request gets 503.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Requests for the JWKS so far, answered or not.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn connection<S>(stream: S, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(answer(&state, request.uri().path())) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

fn answer(state: &State, path: &str) -> Response<Full<Bytes>> {
    if path == JWKS_PATH {
        state.fetches.fetch_add(1, Ordering::SeqCst);
    }
    if state.down.load(Ordering::SeqCst) {
        return respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "down for the test".into(),
            None,
        );
    }
    match path {
        JWKS_PATH => {
            let keys = state.keys.lock().expect("lock").clone();
            let cache_control = state.cache_control.lock().expect("lock").clone();
            respond(
                StatusCode::OK,
                json!({ "keys": keys }).to_string(),
                cache_control,
            )
        }
        "/.well-known/openid-configuration" => {
            let base = state.base.lock().expect("lock").clone();
            let document = json!({ "issuer": base, "jwks_uri": format!("{base}{JWKS_PATH}") });
            respond(StatusCode::OK, document.to_string(), None)
        }
        _ => respond(StatusCode::NOT_FOUND, "not found".into(), None),
    }
}

fn respond(
    status: StatusCode,
    body: String,
    cache_control: Option<String>,
) -> Response<Full<Bytes>> {
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(value) = cache_control {
        response = response.header("cache-control", value);
    }
    response
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
