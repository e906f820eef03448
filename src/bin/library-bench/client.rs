//! gRPC clients and the tokens the bench mints for itself: with the server's HS256 secret, or
//! with a private key whose public half the server trusts (`--jwt-private-key`, `--jwt-kid`).
use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use library_service::pb::library_service_client::LibraryServiceClient;
use serde_json::json;
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};
use uuid::Uuid;

use crate::cli::Args;

/// Long enough for seeding a million plays and every scenario after it.
const TOKEN_TTL_SECONDS: u64 = 12 * 60 * 60;
/// What the player service would hold: it records plays for any listener.
const SERVICE_SCOPES: &str = "library:read library:write library:any_user";

pub type Client = LibraryServiceClient<Channel>;

/// A ready `authorization` value; cloning it is cheap, so calls don't re-sign or re-parse.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    /// The header value, for clients other than tonic's.
    pub fn value(&self) -> http::HeaderValue {
        let mut value = http::HeaderValue::from_bytes(self.0.as_bytes())
            .unwrap_or_else(|_| http::HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }

    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        request
    }
}

#[derive(Clone)]
pub struct Api {
    clients: Arc<[Client]>,
    key: Arc<EncodingKey>,
    header: Header,
    issuer: Option<String>,
    audience: Option<String>,
    /// A service token: acts for any listener by naming `user_id`.
    pub service: Bearer,
}

impl Api {
    pub async fn connect(args: &Args) -> anyhow::Result<Self> {
        let endpoint = endpoint(args, &args.addr)?;
        let mut clients = Vec::with_capacity(args.connections);
        for _ in 0..args.connections {
            // One Channel per connection: `connect()` opens its own HTTP/2 connection.
            let channel = endpoint
                .connect()
                .await
                .with_context(|| format!("connecting to {}", args.addr))?;
            clients.push(LibraryServiceClient::new(channel));
        }
        let (key, header) = signing_key(args)?;
        let mut api = Self {
            clients: clients.into(),
            key: Arc::new(key),
            header,
            issuer: args.jwt_issuer.clone(),
            audience: args.jwt_audience.clone(),
            service: Bearer(MetadataValue::from_static("")),
        };
        api.service = api.mint("library-bench", Some(SERVICE_SCOPES))?;
        Ok(api)
    }

    /// The client of connection `i` (modulo the number of connections).
    pub fn client(&self, i: usize) -> Client {
        self.clients[i % self.clients.len()].clone()
    }

    /// A listener's session token: no scope, `sub` is the listener, as the web frontend sends.
    pub fn session(&self, user: Uuid) -> anyhow::Result<Bearer> {
        self.mint(&user.to_string(), None)
    }

    fn mint(&self, sub: &str, scope: Option<&str>) -> anyhow::Result<Bearer> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("system clock before 1970")?
            .as_secs();
        let mut claims = json!({ "sub": sub, "exp": now + TOKEN_TTL_SECONDS, "iat": now });
        if let Some(scope) = scope {
            claims["scope"] = json!(scope);
        }
        if let Some(iss) = &self.issuer {
            claims["iss"] = json!(iss);
        }
        if let Some(aud) = &self.audience {
            claims["aud"] = json!(aud);
        }
        let token =
            jsonwebtoken::encode(&self.header, &claims, &self.key).context("signing a token")?;
        let value = format!("Bearer {token}")
            .parse()
            .context("token is not valid metadata")?;
        Ok(Bearer(value))
    }
}

/// The key the bench signs with, and the header naming its algorithm (and `kid`).
fn signing_key(args: &Args) -> anyhow::Result<(EncodingKey, Header)> {
    let Some(path) = &args.jwt_private_key else {
        let Some(secret) = &args.jwt_secret else {
            bail!("give --jwt-secret or --jwt-private-key");
        };
        return Ok((
            EncodingKey::from_secret(secret.as_bytes()),
            Header::default(),
        ));
    };
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (alg, key) = if let Ok(key) = EncodingKey::from_ed_pem(&pem) {
        (Algorithm::EdDSA, key)
    } else if let Ok(key) = EncodingKey::from_ec_pem(&pem) {
        (Algorithm::ES256, key)
    } else if let Ok(key) = EncodingKey::from_rsa_pem(&pem) {
        (Algorithm::RS256, key)
    } else {
        bail!(
            "--jwt-private-key {}: not an Ed25519, P-256 or RSA private key in PEM form",
            path.display()
        );
    };
    let mut header = Header::new(alg);
    header.kid = args.jwt_kid.clone();
    Ok((key, header))
}

/// A tonic endpoint for `addr`: over TLS, trusting `--tls-ca`, when it is `https://`.
pub fn endpoint(args: &Args, addr: &str) -> anyhow::Result<Endpoint> {
    let endpoint = Endpoint::from_shared(addr.to_string())
        .with_context(|| format!("address {addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if !addr.starts_with("https://") {
        return Ok(endpoint);
    }
    let Some(ca) = &args.tls_ca else {
        bail!("{addr} is https: give --tls-ca");
    };
    let pem = std::fs::read(ca).with_context(|| format!("--tls-ca {}", ca.display()))?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem))
        .domain_name(args.tls_server_name.clone());
    endpoint.tls_config(tls).context("TLS settings")
}

/// What the thin client needs to reach `https://` addresses: `--tls-ca` and
/// `--tls-server-name`, offering HTTP/2 only.
#[derive(Clone)]
pub struct TlsClient {
    pub connector: tokio_rustls::TlsConnector,
    pub server_name: rustls::pki_types::ServerName<'static>,
}

impl TlsClient {
    pub fn from_args(args: &Args) -> anyhow::Result<Option<Self>> {
        use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
        let Some(ca) = &args.tls_ca else {
            return Ok(None);
        };
        let flag = || format!("--tls-ca {}", ca.display());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).with_context(flag)? {
            roots.add(cert.with_context(flag)?).with_context(flag)?;
        }
        let mut config =
            rustls::ClientConfig::builder_with_provider(library_service::crypto::crypto_provider())
                .with_safe_default_protocol_versions()
                .context("TLS versions")?
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let server_name = ServerName::try_from(args.tls_server_name.clone())
            .context("--tls-server-name is not a DNS name or an IP address")?;
        Ok(Some(Self {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        }))
    }
}
