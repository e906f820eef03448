//! One HTTPS GET of a small JSON document (a JWKS, an OpenID discovery document): rustls with the
//! ring provider, the system's roots or `--jwt-jwks-ca`, bounded in time and in size.
use std::{error::Error as StdError, path::Path, time::Duration};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, pem::PemObject},
};

use super::schedule;

/// A JWKS is a few KiB; anything near this is not one.
const MAX_BODY_BYTES: usize = 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole exchange, body included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a fetch failed. `Unreachable` is worth waiting for (start-up waits, refreshes retry);
/// `Invalid` is a configuration or provider error that waiting will not fix.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Invalid(String),
}

/// A good answer: its body and the lifetime it was given (`Cache-Control: max-age`).
pub struct Fetched {
    pub body: Bytes,
    pub max_age: Option<u64>,
}

pub struct Fetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    allow_http: bool,
}

impl Fetcher {
    pub fn new(ca_file: Option<&Path>, allow_http: bool) -> anyhow::Result<Self> {
        let roots = roots(ca_file)?;
        let tls = ClientConfig::builder_with_provider(crate::crypto::crypto_provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions for the JWKS client")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            allow_http,
        })
    }

    /// `url` as a URI this client may fetch: HTTPS, or plain HTTP with `--jwt-jwks-allow-http`.
    /// `what` names where the URL came from, for the error.
    pub fn check_url(&self, url: &str, what: &str) -> anyhow::Result<Uri> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("{what} {url:?} is not a URL"))?;
        if uri.host().is_none() {
            bail!("{what} {url:?} has no host");
        }
        match uri.scheme_str() {
            Some("https") => Ok(uri),
            Some("http") if self.allow_http => Ok(uri),
            Some("http") => bail!(
                "{what} {url:?} is plain http: keys fetched without TLS can be replaced by \
                 anyone on the path. Use https, or pass --jwt-jwks-allow-http (development only)"
            ),
            _ => bail!("{what} {url:?} must be an https:// URL"),
        }
    }

    pub async fn get(&self, uri: &Uri) -> Result<Fetched, FetchError> {
        tokio::time::timeout(FETCH_TIMEOUT, self.exchange(uri))
            .await
            .unwrap_or_else(|_| {
                Err(FetchError::Unreachable(format!(
                    "no complete answer from {uri} within {FETCH_TIMEOUT:?}"
                )))
            })
    }

    async fn exchange(&self, uri: &Uri) -> Result<Fetched, FetchError> {
        let request = http::Request::get(uri.clone())
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, "audiohm-library-service")
            .body(Empty::new())
            .map_err(|e| FetchError::Invalid(format!("request to {uri}: {e}")))?;
        let response = self.client.request(request).await.map_err(|e| {
            let why = format!("GET {uri}: {}", chain(&e));
            // A certificate the roots do not accept will not start being accepted by waiting.
            if is_tls_error(&e) {
                FetchError::Invalid(format!(
                    "{why} (the server's certificate must chain to --jwt-jwks-ca, or to the \
                     system's CA certificates without it)"
                ))
            } else {
                FetchError::Unreachable(why)
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            let why = format!("GET {uri} answered {status}");
            let transient = status.is_server_error()
                || status == http::StatusCode::TOO_MANY_REQUESTS
                || status == http::StatusCode::REQUEST_TIMEOUT;
            return Err(if transient {
                FetchError::Unreachable(why)
            } else {
                FetchError::Invalid(why)
            });
        }
        let max_age = response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(schedule::max_age);
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    FetchError::Invalid(format!(
                        "GET {uri}: the answer is larger than {MAX_BODY_BYTES} bytes"
                    ))
                } else {
                    FetchError::Unreachable(format!("GET {uri}: reading the answer: {e}"))
                }
            })?
            .to_bytes();
        Ok(Fetched { body, max_age })
    }
}

/// The CA file's certificates, or the system's roots.
fn roots(ca_file: Option<&Path>) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .with_context(|| format!("--jwt-jwks-ca: reading {}", path.display()))?;
            for cert in certs {
                let cert = cert.with_context(|| format!("--jwt-jwks-ca: {}", path.display()))?;
                roots.add(cert).with_context(|| {
                    format!("--jwt-jwks-ca: a certificate in {}", path.display())
                })?;
            }
            if roots.is_empty() {
                bail!("--jwt-jwks-ca: no certificate in {}", path.display());
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "reading the system's CA certificates");
            }
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                bail!(
                    "no system CA certificates found to check the JWKS server; install the \
                     system's CA bundle or give --jwt-jwks-ca"
                );
            }
        }
    }
    Ok(roots)
}

/// The error and its causes, one line.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Whether TLS refused the server (its certificate, its protocol), somewhere in the causes.
/// rustls's errors reach here inside (nested) `io::Error`s, whose `source()` skips the error
/// they wrap, so those are opened with `get_ref`.
fn is_tls_error(e: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err.is::<rustls::Error>() {
            return true;
        }
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => err.source(),
        };
    }
    false
}
