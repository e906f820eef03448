//! JWT verification -> `Principal`, and the scope rules that decide whose library a call may
//! touch. The algorithm is pinned per configured key: a token's `alg` header only filters among
//! keys, it never decides how a key is used (no `none`, no HS256-with-a-public-key confusion).
mod dev;
mod keys;
mod principal;
mod secret;

use std::{path::PathBuf, sync::Arc};

use jsonwebtoken::{Validation, errors::ErrorKind};
use serde_json::{Map, Value};

pub use dev::{MintRequest, development_secret, mint_hs256};
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
    keys: Vec<VerificationKey>,
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
    /// With no secret and no public key: development mode, with a secret kept in the data dir.
    pub fn from_config(cfg: &AuthConfig) -> anyhow::Result<Self> {
        let mut keys = keys::load(cfg)?;
        let development = keys.is_empty();
        if development {
            let secret = development_secret(&cfg.data_dir)?;
            tracing::warn!(
                secret_file = %cfg.data_dir.join(dev::SECRET_FILE).display(),
                "DEVELOPMENT MODE: no verification key configured; tokens are signed with a local \
                 development secret (`library-service token`). Configure --jwt-secret or \
                 --jwt-public-key in production."
            );
            keys.push(VerificationKey::hs256(None, &secret));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                keys,
                issuer: cfg.issuer.clone(),
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
        let candidates: Vec<&VerificationKey> = match &header.kid {
            Some(kid) => {
                let key = self
                    .inner
                    .keys
                    .iter()
                    .find(|k| k.kid.as_deref() == Some(kid.as_str()));
                vec![key.ok_or(AuthError::UnknownKeyId)?]
            }
            None => self
                .inner
                .keys
                .iter()
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
