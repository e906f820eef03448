//! Loading verification keys: the HS256 secret and public keys from PEM or JWKS files, and the
//! keys of a fetched JWKS.
use std::{collections::HashSet, fs};

use anyhow::{Context, bail};
use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse},
};
use serde::Deserialize;
use serde_json::Value;

use super::AuthConfig;

pub(super) struct VerificationKey {
    pub kid: Option<String>,
    /// The one algorithm this key verifies.
    pub alg: Algorithm,
    pub key: DecodingKey,
}

impl VerificationKey {
    pub fn hs256(kid: Option<String>, secret: &[u8]) -> Self {
        Self {
            kid,
            alg: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
        }
    }
}

pub(super) fn load(cfg: &AuthConfig) -> anyhow::Result<Vec<VerificationKey>> {
    let mut keys = Vec::new();
    if let Some(secret) = &cfg.hs256_secret {
        let secret = secret.expose();
        if secret.is_empty() {
            bail!("the HS256 secret is empty");
        }
        keys.push(VerificationKey::hs256(
            cfg.hs256_kid.clone(),
            secret.as_bytes(),
        ));
    }
    for entry in &cfg.public_keys {
        keys.extend(load_entry(entry).with_context(|| format!("loading public key {entry:?}"))?);
    }
    let mut kids = HashSet::new();
    for kid in keys.iter().filter_map(|k| k.kid.as_deref()) {
        if !kids.insert(kid) {
            bail!("key id {kid:?} is configured twice");
        }
    }
    Ok(keys)
}

/// `[KID=]PATH`: a `KID=` prefix names a PEM key; JWKS keys carry their own `kid`.
fn load_entry(entry: &str) -> anyhow::Result<Vec<VerificationKey>> {
    let (kid, path) = match entry.split_once('=') {
        Some((kid, path)) if !kid.is_empty() && !kid.contains('/') => (Some(kid.to_string()), path),
        _ => (None, entry),
    };
    let text = fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    if text.trim_start().starts_with('{') {
        if kid.is_some() {
            bail!("a JWKS file names its keys itself; drop the KID= prefix");
        }
        let set: JwkSet = serde_json::from_str(&text).context("parsing the JWKS")?;
        return set.keys.iter().map(from_jwk).collect();
    }
    let pem = text.as_bytes();
    let (alg, key) = if let Ok(k) = DecodingKey::from_ed_pem(pem) {
        (Algorithm::EdDSA, k)
    } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
        (Algorithm::ES256, k)
    } else if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
        (Algorithm::RS256, k)
    } else {
        bail!("not an Ed25519, P-256 or RSA public key in PEM form");
    };
    Ok(vec![VerificationKey { kid, alg, key }])
}

/// A JWKS fetched from an identity provider, which may also publish keys for other consumers
/// (encryption keys, other curves): those are skipped, with why, rather than failing the set.
/// A symmetric (`oct`) key is never accepted from the network.
pub(super) fn from_fetched_jwks(
    body: &[u8],
) -> anyhow::Result<(Vec<VerificationKey>, Vec<String>)> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<Value>,
    }
    let document: Document =
        serde_json::from_slice(body).context("not a JWKS (a JSON object with `keys`)")?;
    let (mut keys, mut skipped) = (Vec::new(), Vec::new());
    for value in document.keys {
        let kid = value
            .get("kid")
            .and_then(Value::as_str)
            .map_or_else(|| "(no kid)".to_string(), str::to_string);
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(e) => {
                skipped.push(format!("{kid}: {e}"));
                continue;
            }
        };
        if matches!(
            jwk.common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        ) {
            skipped.push(format!("{kid}: not a signing key"));
            continue;
        }
        match from_jwk(&jwk) {
            Ok(key) => keys.push(key),
            Err(e) => skipped.push(format!("{e:#}")),
        }
    }
    Ok((keys, skipped))
}

fn from_jwk(jwk: &Jwk) -> anyhow::Result<VerificationKey> {
    let kid = jwk.common.key_id.clone();
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        _ => bail!("JWK {kid:?}: only Ed25519, P-256 and RSA public keys are accepted"),
    };
    let alg = match jwk.common.key_algorithm {
        Some(declared) => Algorithm::try_from(declared)
            .map_err(|_| anyhow::anyhow!("JWK {kid:?}: unsupported alg"))?,
        None => by_type,
    };
    if alg != by_type {
        bail!("JWK {kid:?}: alg {alg:?} does not match its key type");
    }
    let key = DecodingKey::from_jwk(jwk).with_context(|| format!("JWK {kid:?}"))?;
    Ok(VerificationKey { kid, alg, key })
}
