//! JWT verification -> `Principal`, and the scope rules that decide whose library a call may
//! touch. The algorithm is pinned per configured key: a token's `alg` header only filters among
//! keys, it never decides how a key is used (no `none`, no HS256-with-a-public-key confusion).
mod dev;
mod jwks;
mod keys;
mod principal;
mod secret;

use std::{collections::HashSet, path::PathBuf, sync::Arc};

use anyhow::bail;

use jsonwebtoken::{Validation, errors::ErrorKind};
use serde_json::{Map, Value};

pub use dev::{MintRequest, development_secret, mint_hs256};
use jwks::RemoteKeys;
pub use jwks::{JwksConfig, JwksSource};
use keys::VerificationKey;
pub use principal::{
    Access, Denied, Principal, SCOPE_ADMIN, SCOPE_ANY_USER, SCOPE_READ, SCOPE_WRITE,
};
pub use secret::Secret;

/// Where verification keys come from.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    pub hs256_secret: Option<Secret>,
    pub hs256_kid: Option<String>,
    /// `[KID=]PATH` entries: a PEM public key or a JWKS file.
    pub public_keys: Vec<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway_seconds: u64,
    pub data_dir: PathBuf,
    /// Keys fetched from the identity provider, beside the configured ones.
    pub jwks: Option<JwksConfig>,
}

/// Why a token was refused. Every variant is UNAUTHENTICATED; the messages are safe to show.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("malformed token")]
    Malformed,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("unknown key id")]
    UnknownKeyId,
    #[error("no configured key accepts this token's algorithm")]
    WrongAlgorithm,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("missing or invalid claim: {0}")]
    BadClaim(String),
}

impl From<jsonwebtoken::errors::Error> for AuthError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::InvalidAlgorithm => Self::WrongAlgorithm,
            ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => {
                Self::BadClaim(c.clone())
            }
            _ => Self::Malformed,
        }
    }
}

struct Inner {
    /// The configured keys (secret, files): fixed for the life of the process.
    keys: Vec<VerificationKey>,
    /// The keys of the JWKS URL, refreshed in the background.
    fetched: Option<RemoteKeys>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
    development: bool,
}

#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

const MAX_LEEWAY_SECONDS: u64 = 60;
/// Tokens are small; anything larger is refused before any parsing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

impl Authenticator {
    /// With no secret, no public key and no JWKS URL: development mode, with a secret kept in
    /// the data dir. With a JWKS URL this waits until the first key set is fetched (while the
    /// identity provider is unreachable, logging each wait), then keeps it fresh in the
    /// background for as long as the authenticator lives.
    pub async fn connect(cfg: &AuthConfig) -> anyhow::Result<Self> {
        let keys = keys::load(cfg)?;
        let fetched = match &cfg.jwks {
            Some(jwks) => {
                let pinned: HashSet<String> = keys.iter().filter_map(|k| k.kid.clone()).collect();
                Some(RemoteKeys::start(jwks, pinned).await?)
            }
            None => None,
        };
        Self::assemble(cfg, keys, fetched)
    }

    /// [`connect`](Self::connect) for configured keys only: no network, no runtime needed.
    pub fn from_config(cfg: &AuthConfig) -> anyhow::Result<Self> {
        if cfg.jwks.is_some() {
            bail!("keys from a JWKS URL are fetched: use Authenticator::connect");
        }
        Self::assemble(cfg, keys::load(cfg)?, None)
    }

    fn assemble(
        cfg: &AuthConfig,
        mut keys: Vec<VerificationKey>,
        fetched: Option<RemoteKeys>,
    ) -> anyhow::Result<Self> {
        let development = keys.is_empty() && fetched.is_none();
        if development {
            let secret = development_secret(&cfg.data_dir)?;
            tracing::warn!(
                secret_file = %cfg.data_dir.join(dev::SECRET_FILE).display(),
                "DEVELOPMENT MODE: no verification key configured; tokens are signed with a local \
                 development secret (`library-service token`). Configure --jwt-jwks-url, \
                 --jwt-public-key or --jwt-secret in production."
            );
            keys.push(VerificationKey::hs256(None, &secret));
        }
        // An OpenID issuer is also the issuer its tokens must name, unless told otherwise.
        let issuer = cfg
            .issuer
            .clone()
            .or_else(|| fetched.as_ref().and_then(|f| f.issuer.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                keys,
                fetched,
                issuer,
                audience: cfg.audience.clone(),
                leeway: cfg.leeway_seconds.min(MAX_LEEWAY_SECONDS),
                development,
            }),
        })
    }

    pub fn is_development(&self) -> bool {
        self.inner.development
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        // One snapshot of the fetched set for the whole call: a refresh swaps in a new one.
        let fetched = self.inner.fetched.as_ref().map(RemoteKeys::current);
        let fetched_keys = fetched.as_deref().map_or(&[][..], |set| &set.keys[..]);
        let mut keys = self.inner.keys.iter().chain(fetched_keys);
        let candidates: Vec<&VerificationKey> = match &header.kid {
            Some(kid) => {
                let key = keys.find(|k| k.kid.as_deref() == Some(kid.as_str()));
                vec![key.ok_or(AuthError::UnknownKeyId)?]
            }
            None => keys
                .filter(|k| k.kid.is_none() && k.alg == header.alg)
                .collect(),
        };
        let mut last = AuthError::WrongAlgorithm;
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &self.validation(key))
            {
                Ok(data) => return principal::from_claims(data.claims),
                Err(e) => last = e.into(),
            }
        }
        Err(last)
    }

    /// Keys come from a JWKS URL: calls go through [`await_unknown_key`](Self::await_unknown_key)
    /// before [`verify`](Self::verify).
    pub fn fetches_keys(&self) -> bool {
        self.inner.fetched.is_some()
    }

    /// Before [`verify`](Self::verify), which never waits: when the token names a key id that no
    /// key has and keys come from a JWKS URL, waits (at most a few seconds) for one early
    /// refresh, so that a token of a key the provider has just rotated in verifies at its first
    /// try. Early refreshes are at most one per 30 s, whatever the tokens say.
    pub async fn await_unknown_key(&self, token: &str) {
        let Some(fetched) = &self.inner.fetched else {
            return;
        };
        if token.len() > MAX_TOKEN_BYTES {
            return;
        }
        let Some(kid) = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid) else {
            return;
        };
        let known = |keys: &[VerificationKey]| keys.iter().any(|k| k.kid.as_deref() == Some(&kid));
        if known(&self.inner.keys) || known(&fetched.current().keys) {
            return;
        }
        fetched.refresh_for_unknown_kid().await;
    }

    fn validation(&self, key: &VerificationKey) -> Validation {
        let mut v = Validation::new(key.alg);
        v.leeway = self.inner.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        // A configured issuer or audience must be present, not merely right when present.
        let mut required = vec!["exp", "sub"];
        match &self.inner.issuer {
            Some(iss) => {
                v.set_issuer(&[iss]);
                required.push("iss");
            }
            None => v.iss = None,
        }
        match &self.inner.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }
}

#[cfg(test)]
mod tests;
