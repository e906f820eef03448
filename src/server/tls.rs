//! TLS on the service port (`--tls-cert`, `--tls-key`, optional mutual TLS with
//! `--tls-client-ca`), with the files re-read when they change.
//!
//! cert-manager renews a certificate by swapping the `..data` symlink of the mounted Secret, so
//! the files are compared by content every `--tls-reload-seconds` rather than watched by inode
//! or mtime: a swap of any kind is seen, and the cost is reading a few kilobytes. Each new
//! handshake takes the configuration current at that moment; open connections keep theirs. A new
//! set of files that does not load (half written, key of another certificate) leaves the last
//! good one serving, and says so in the log and in `library_tls_reloads_total{result="error"}`.
use std::{
    hash::{DefaultHasher, Hash, Hasher},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::Duration,
};

use anyhow::{Context, bail};
use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{
        CertificateDer, PrivateKeyDer,
        pem::{self, PemObject},
    },
    server::WebPkiClientVerifier,
    sign::CertifiedKey,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use x509_cert::der::Decode;

use crate::config::TlsArgs;

/// A client that connects and then sends nothing is dropped after this long; its handshake runs
/// in a task of its own meanwhile, so it delays no one else.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const ACCEPTED_QUEUE: usize = 256;
/// After an accept error (out of file descriptors, most likely), wait before trying again
/// instead of spinning on it.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The files named by the flags.
#[derive(Clone, Debug)]
struct Files {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

/// What the files held at one reading.
#[derive(Hash)]
struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// The live TLS configuration of the service port; clones share it.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    files: Files,
    acceptor: RwLock<TlsAcceptor>,
    /// Fingerprint of the last reading of the files (or of its error), loaded or not: a broken
    /// set is reported once, not at every check, and tried again only once it changes.
    seen: Mutex<u64>,
    reload_every: Duration,
}

impl Tls {
    /// The configuration the flags ask for: None without `--tls-cert` (plaintext), an error
    /// naming the flag when a file is missing or does not load.
    pub async fn load(args: &TlsArgs) -> anyhow::Result<Option<Self>> {
        let files = match (&args.tls_cert, &args.tls_key, &args.tls_client_ca) {
            (None, None, None) => return Ok(None),
            (Some(cert), Some(key), client_ca) => Files {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: client_ca.clone(),
            },
            (Some(_), None, _) => bail!("--tls-cert needs --tls-key"),
            (None, Some(_), _) => bail!("--tls-key needs --tls-cert"),
            (None, None, Some(_)) => bail!("--tls-client-ca needs --tls-cert and --tls-key"),
        };
        let contents = read(&files).await?;
        let config = build(&files, &contents)?;
        Ok(Some(Self {
            inner: Arc::new(Inner {
                acceptor: RwLock::new(TlsAcceptor::from(config)),
                seen: Mutex::new(fingerprint(&contents)),
                files,
                reload_every: Duration::from_secs(args.tls_reload_seconds.max(1)),
            }),
        }))
    }

    pub fn mutual(&self) -> bool {
        self.inner.files.client_ca.is_some()
    }

    fn acceptor(&self) -> TlsAcceptor {
        self.inner
            .acceptor
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Checks the files for changes until aborted.
    pub async fn watch(self) {
        let mut ticks = tokio::time::interval(self.inner.reload_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            self.reload_if_changed().await;
        }
    }

    async fn reload_if_changed(&self) {
        let files = &self.inner.files;
        let read = read(files).await;
        let print = match &read {
            Ok(contents) => fingerprint(contents),
            Err(e) => hash(&format!("{e:#}")),
        };
        {
            let mut seen = self
                .inner
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *seen == print {
                return;
            }
            *seen = print;
        }
        match read.and_then(|contents| build(files, &contents)) {
            Ok(config) => {
                *self
                    .inner
                    .acceptor
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = TlsAcceptor::from(config);
                metrics::counter!("library_tls_reloads_total", "result" => "ok").increment(1);
                tracing::info!("tls certificate files changed: new handshakes use them");
            }
            Err(e) => {
                metrics::counter!("library_tls_reloads_total", "result" => "error").increment(1);
                tracing::error!(
                    error = %format!("{e:#}"),
                    "tls certificate files changed but do not load: still serving the last good ones"
                );
            }
        }
    }

    /// The connections of `listener`, each handshaken in a task of its own (bounded by
    /// [`HANDSHAKE_TIMEOUT`]), in the order their handshakes finish. Accepting stops once the
    /// server drops the stream (shutdown).
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
        let (tx, rx) = mpsc::channel(ACCEPTED_QUEUE);
        let tls = self.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = tx.closed() => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
                };
                // Without TCP_NODELAY a response written in two pieces waits ~40 ms for the
                // client's delayed ACK (Nagle); see serve().
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, %peer, "setting TCP_NODELAY failed");
                }
                let (acceptor, tx) = (tls.acceptor(), tx.clone());
                tokio::spawn(async move {
                    if let Some(stream) = handshake(acceptor, tcp, peer).await {
                        let _ = tx.send(Ok(stream)).await;
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        // Debug only: port scanners, plaintext clients and callers without a client
        // certificate would otherwise fill the log; the counter shows a trend.
        Ok(Err(e)) => {
            metrics::counter!("library_tls_handshake_failures_total", "reason" => "error")
                .increment(1);
            tracing::debug!(error = %e, %peer, "tls handshake failed");
            None
        }
        Err(_) => {
            metrics::counter!("library_tls_handshake_failures_total", "reason" => "timeout")
                .increment(1);
            tracing::debug!(%peer, "tls handshake timed out");
            None
        }
    }
}

async fn read(files: &Files) -> anyhow::Result<Contents> {
    async fn one(flag: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
        tokio::fs::read(path)
            .await
            .with_context(|| format!("{flag} {}: cannot read it", path.display()))
    }
    Ok(Contents {
        cert: one("--tls-cert", &files.cert).await?,
        key: one("--tls-key", &files.key).await?,
        client_ca: match &files.client_ca {
            Some(path) => Some(one("--tls-client-ca", path).await?),
            None => None,
        },
    })
}

fn fingerprint(contents: &Contents) -> u64 {
    hash(contents)
}

fn hash(value: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// A server configuration from the files' contents, every error naming its flag and file.
fn build(files: &Files, contents: &Contents) -> anyhow::Result<Arc<ServerConfig>> {
    let cert_flag = || format!("--tls-cert {}", files.cert.display());
    let key_flag = || format!("--tls-key {}", files.key.display());
    let certs = certificates(&contents.cert).with_context(cert_flag)?;
    let key = PrivateKeyDer::from_pem_slice(&contents.key)
        .map_err(|e| anyhow::anyhow!("{}: {}", key_flag(), pem_error(&e, "private key")))?;
    let provider = crate::crypto::crypto_provider();
    // The same check with_single_cert makes, done here to say which flags disagree.
    CertifiedKey::from_der(certs.clone(), key.clone_key(), &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
            "{} is not the private key of the certificate in {}",
            key_flag(),
            cert_flag()
        ),
        e => anyhow::Error::new(e).context(key_flag()),
    })?;
    // rustls has checked the certificate already: one that only this stricter parser refuses
    // is served all the same, without its expiry gauge.
    let expiry = describe(&certs[0]);

    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?;
    let builder = match (&files.client_ca, &contents.client_ca) {
        (Some(path), Some(pem)) => {
            let ca_flag = || format!("--tls-client-ca {}", path.display());
            let mut roots = RootCertStore::empty();
            for ca in certificates(pem).with_context(ca_flag)? {
                roots.add(ca).with_context(ca_flag)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(ca_flag)?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .with_context(cert_flag)?;
    // gRPC needs h2; gRPC-web from browsers also comes over HTTP/1.1.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    match expiry {
        Ok(expiry) => {
            metrics::gauge!("library_tls_certificate_not_after_seconds")
                .set(expiry.not_after as f64);
            tracing::info!(
                subject = %expiry.subject,
                not_after = %expiry.not_after_text(),
                mutual = files.client_ca.is_some(),
                "tls certificate loaded"
            );
            if expiry.not_after < jiff::Timestamp::now().as_second() {
                tracing::warn!(not_after = %expiry.not_after_text(), "the tls certificate has expired");
            }
        }
        Err(e) => tracing::warn!(
            error = %format!("{e:#}"),
            mutual = files.client_ca.is_some(),
            "tls certificate loaded; its expiry could not be read"
        ),
    }
    Ok(Arc::new(config))
}

fn certificates(pem: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!(pem_error(&e, "certificate")))?;
    if certs.is_empty() {
        bail!("no PEM certificate in it");
    }
    Ok(certs)
}

/// The PEM parser's error in words (its own Display prints the markers as byte lists).
fn pem_error(e: &pem::Error, what: &str) -> String {
    match e {
        pem::Error::NoItemsFound => format!("no PEM {what} in it"),
        pem::Error::MissingSectionEnd { .. } => {
            format!("a PEM section without its END line (the {what} is cut short)")
        }
        pem::Error::IllegalSectionStart { .. } => "a malformed PEM BEGIN line".into(),
        pem::Error::Base64Decode(_) => format!("the {what} is not valid base64"),
        e => e.to_string(),
    }
}

/// What an operator wants to know of the leaf certificate.
struct Expiry {
    subject: String,
    /// Unix seconds.
    not_after: i64,
}

impl Expiry {
    fn not_after_text(&self) -> String {
        jiff::Timestamp::from_second(self.not_after)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| self.not_after.to_string())
    }
}

fn describe(leaf: &CertificateDer<'_>) -> anyhow::Result<Expiry> {
    let cert = x509_cert::Certificate::from_der(leaf.as_ref())
        .context("the first certificate does not parse as X.509")?;
    let tbs = &cert.tbs_certificate;
    Ok(Expiry {
        subject: tbs.subject.to_string(),
        not_after: i64::try_from(tbs.validity.not_after.to_unix_duration().as_secs())
            .unwrap_or(i64::MAX),
    })
}
