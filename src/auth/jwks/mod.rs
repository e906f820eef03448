//! Keys fetched from the identity provider's JWKS URL (`--jwt-jwks-url`, or discovered from
//! `--jwt-oidc-issuer`), kept fresh by a background task. Verification only ever reads the
//! current set (an `Arc` swapped whole under a lock held for a pointer copy), so it never waits
//! on the network; the one exception is a token naming a key id nobody has seen yet, which may
//! wait (at most [`UNKNOWN_KID_WAIT`]) for one early refresh.
mod fetch;
pub(super) mod schedule;

use std::{
    collections::HashSet,
    path::PathBuf,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::bail;
use http::Uri;
use serde::Deserialize;
use tokio::sync::{Notify, watch};

use self::{
    fetch::{FetchError, Fetcher},
    schedule::EARLY_REFRESH_GAP,
};
use super::keys::{self, VerificationKey};

/// Longest a call with an unknown key id waits for the early refresh before it is refused.
const UNKNOWN_KID_WAIT: Duration = Duration::from_secs(5);
/// How often `library_jwks_age_seconds` is brought up to date between refreshes.
const AGE_REPORT_EVERY: Duration = Duration::from_secs(15);

/// Where the key set comes from and how it is fetched.
#[derive(Clone, Debug)]
pub struct JwksConfig {
    pub source: JwksSource,
    /// Trust only this PEM bundle's CAs instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Accept `http://` URLs (development only).
    pub allow_http: bool,
    /// Refresh interval when the provider sends no `Cache-Control: max-age`.
    pub refresh: Duration,
}

#[derive(Clone, Debug)]
pub enum JwksSource {
    /// The JWKS URL itself.
    Url(String),
    /// An OpenID Connect issuer: its discovery document names the JWKS URL.
    OidcIssuer(String),
}

/// One fetched key set, whole.
pub(super) struct KeySet {
    pub keys: Vec<VerificationKey>,
    fetched_at: Instant,
}

/// The fetched keys and their refresher; dropping it stops the refresher.
pub(super) struct RemoteKeys {
    shared: Arc<Shared>,
    refresher: tokio::task::AbortHandle,
    /// The issuer named by the discovery document, when the keys came from one.
    pub issuer: Option<String>,
}

struct Shared {
    fetcher: Fetcher,
    uri: Uri,
    /// Key ids of the configured (file and secret) keys: a fetched key never replaces them.
    pinned: HashSet<String>,
    current: RwLock<Arc<KeySet>>,
    refresh: Duration,
    wake: Notify,
    /// An early refresh was asked for and has not finished yet.
    early_pending: AtomicBool,
    last_early: Mutex<Option<Instant>>,
    /// Counts finished refreshes, so that callers can wait for the next one.
    done: watch::Sender<u64>,
}

impl RemoteKeys {
    /// Finds the JWKS URL (through discovery, if so configured) and fetches the first key set,
    /// waiting with backoff while the provider is unreachable; then refreshes in the background.
    pub async fn start(cfg: &JwksConfig, pinned: HashSet<String>) -> anyhow::Result<Self> {
        let fetcher = Fetcher::new(cfg.ca_file.as_deref(), cfg.allow_http)?;
        let (uri, issuer) = match &cfg.source {
            JwksSource::Url(url) => (fetcher.check_url(url, "--jwt-jwks-url")?, None),
            JwksSource::OidcIssuer(issuer) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let discovery = fetcher.check_url(&url, "--jwt-oidc-issuer")?;
                let uri = until_fetched("OpenID discovery", &discovery, || {
                    discover(&fetcher, &discovery, issuer)
                })
                .await?;
                tracing::info!(issuer, jwks_url = %uri, "jwks url discovered");
                (uri, Some(issuer.clone()))
            }
        };
        let (keys, max_age) =
            until_fetched("JWKS", &uri, || fetch_keys(&fetcher, &uri, &pinned)).await?;
        tracing::info!(url = %uri, kids = ?kids(&keys), "jwks fetched");
        let (done, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            fetcher,
            uri,
            pinned,
            current: RwLock::new(Arc::new(KeySet {
                keys,
                fetched_at: Instant::now(),
            })),
            refresh: cfg.refresh,
            wake: Notify::new(),
            early_pending: AtomicBool::new(false),
            last_early: Mutex::new(None),
            done,
        });
        metrics::counter!("library_jwks_fetches_total", "outcome" => "ok").increment(1);
        shared.report();
        let refresher = tokio::spawn(refresh_forever(shared.clone(), max_age)).abort_handle();
        Ok(Self {
            shared,
            refresher,
            issuer,
        })
    }

    /// The key set as last fetched.
    pub fn current(&self) -> Arc<KeySet> {
        self.shared.current()
    }

    /// A token names a key id that no key has: refresh now, unless an early refresh started
    /// less than [`EARLY_REFRESH_GAP`] ago, and wait (bounded) for the one in flight, so that a
    /// token of a just-rotated key verifies on its first try.
    pub async fn refresh_for_unknown_kid(&self) {
        let shared = &self.shared;
        // Subscribed before asking, so that the refresh's end cannot be missed.
        let mut done = shared.done.subscribe();
        {
            let mut last = shared
                .last_early
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if last.is_none_or(|t| now.duration_since(t) >= EARLY_REFRESH_GAP) {
                *last = Some(now);
                shared.early_pending.store(true, Ordering::Release);
                shared.wake.notify_one();
            }
        }
        let finished = done.wait_for(|_| !shared.early_pending.load(Ordering::Acquire));
        let _ = tokio::time::timeout(UNKNOWN_KID_WAIT, finished).await;
    }
}

impl Drop for RemoteKeys {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

/// The refresher: on schedule, or early when asked; a failure keeps the last good set.
async fn refresh_forever(shared: Arc<Shared>, first_max_age: Option<u64>) {
    let mut next = Instant::now() + schedule::next_refresh(first_max_age, shared.refresh);
    let mut failures = 0u32;
    let mut age_tick = tokio::time::interval(AGE_REPORT_EVERY);
    age_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let early = tokio::select! {
            () = tokio::time::sleep_until(next.into()) => false,
            () = shared.wake.notified() => true,
            _ = age_tick.tick() => {
                shared.report();
                continue;
            }
        };
        match fetch_keys(&shared.fetcher, &shared.uri, &shared.pinned).await {
            Ok((keys, max_age)) => {
                failures = 0;
                next = Instant::now() + schedule::next_refresh(max_age, shared.refresh);
                shared.install(keys, early);
                metrics::counter!("library_jwks_fetches_total", "outcome" => "ok").increment(1);
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = schedule::retry_after(failures, shared.refresh);
                next = Instant::now() + wait;
                let outcome = match e {
                    FetchError::Unreachable(_) => "unreachable",
                    FetchError::Invalid(_) => "invalid",
                };
                metrics::counter!("library_jwks_fetches_total", "outcome" => outcome).increment(1);
                tracing::warn!(
                    url = %shared.uri,
                    error = %e,
                    early,
                    age_seconds = shared.current().fetched_at.elapsed().as_secs(),
                    retry_in_seconds = wait.as_secs(),
                    "jwks refresh failed; keeping the last good keys"
                );
            }
        }
        if early {
            shared.early_pending.store(false, Ordering::Release);
        }
        shared.done.send_modify(|n| *n = n.wrapping_add(1));
        shared.report();
    }
}

impl Shared {
    fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn install(&self, keys: Vec<VerificationKey>, early: bool) {
        let fresh = Arc::new(KeySet {
            keys,
            fetched_at: Instant::now(),
        });
        let old = std::mem::replace(
            &mut *self.current.write().unwrap_or_else(PoisonError::into_inner),
            fresh.clone(),
        );
        let (before, after) = (kids(&old.keys), kids(&fresh.keys));
        if before != after {
            tracing::info!(url = %self.uri, early, kids = ?after, was = ?before, "jwks rotated");
        } else {
            tracing::debug!(url = %self.uri, early, "jwks refreshed, unchanged");
        }
    }

    fn report(&self) {
        let current = self.current();
        metrics::gauge!("library_jwks_age_seconds").set(current.fetched_at.elapsed().as_secs_f64());
        metrics::gauge!("library_jwks_keys").set(current.keys.len() as f64);
    }
}

/// Waits for the identity provider while it is unreachable (as start-up does for the database);
/// other errors fail at once.
async fn until_fetched<T, F, Fut>(what: &str, uri: &Uri, attempt: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, FetchError>>,
{
    let fetched = crate::backoff::until_available(attempt, |e, delay| match e {
        FetchError::Unreachable(why) => {
            metrics::counter!("library_jwks_fetches_total", "outcome" => "unreachable")
                .increment(1);
            tracing::warn!(what, url = %uri, error = why, retry_in_ms = delay.as_millis() as u64, "identity provider unreachable; waiting for it");
            true
        }
        FetchError::Invalid(_) => false,
    })
    .await;
    match fetched {
        Ok(value) => Ok(value),
        Err(e) => bail!("fetching the {what}: {e}"),
    }
}

/// The JWKS URL named by an OpenID Connect discovery document, which must be `issuer`'s own.
async fn discover(fetcher: &Fetcher, uri: &Uri, issuer: &str) -> Result<Uri, FetchError> {
    #[derive(Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let fetched = fetcher.get(uri).await?;
    let doc: Discovery = serde_json::from_slice(&fetched.body).map_err(|e| {
        FetchError::Invalid(format!("{uri} is not an OpenID discovery document: {e}"))
    })?;
    if doc.issuer != issuer {
        return Err(FetchError::Invalid(format!(
            "{uri} names the issuer {:?}, not {issuer:?}: --jwt-oidc-issuer must be the issuer \
             exactly as the provider (and its tokens) spell it",
            doc.issuer
        )));
    }
    fetcher
        .check_url(&doc.jwks_uri, "the discovery document's jwks_uri")
        .map_err(|e| FetchError::Invalid(format!("{e:#}")))
}

/// One fetch of the key set: the keys this service can use, and the lifetime it was given.
async fn fetch_keys(
    fetcher: &Fetcher,
    uri: &Uri,
    pinned: &HashSet<String>,
) -> Result<(Vec<VerificationKey>, Option<u64>), FetchError> {
    let fetched = fetcher.get(uri).await?;
    let (found, skipped) = keys::from_fetched_jwks(&fetched.body)
        .map_err(|e| FetchError::Invalid(format!("{uri}: {e:#}")))?;
    if !skipped.is_empty() {
        tracing::debug!(url = %uri, ?skipped, "jwks keys this service cannot use were skipped");
    }
    let mut seen = HashSet::new();
    let mut keys = Vec::with_capacity(found.len());
    for key in found {
        if let Some(kid) = key.kid.as_deref() {
            if pinned.contains(kid) {
                // The configured key is the operator's explicit choice; the provider must not
                // be able to replace it (nor a secret's kid with a public key).
                tracing::warn!(url = %uri, kid, "a fetched key has the key id of a configured key; the configured key is kept, the fetched one ignored");
                continue;
            }
            if !seen.insert(kid.to_string()) {
                tracing::warn!(url = %uri, kid, "the jwks names this key id twice; the first is kept");
                continue;
            }
        }
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(FetchError::Invalid(format!(
            "{uri}: no key this service can use (Ed25519, P-256 or RSA signing keys)"
        )));
    }
    Ok((keys, fetched.max_age))
}

fn kids(keys: &[VerificationKey]) -> Vec<&str> {
    keys.iter()
        .map(|k| k.kid.as_deref().unwrap_or("(no kid)"))
        .collect()
}
