//! Development mode: a random HS256 secret kept in the data directory, and token minting.
use std::{
    fs,
    io::{ErrorKind, Write},
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub(super) const SECRET_FILE: &str = "dev-jwt-secret";

/// Reads the development secret, creating it on first use. Two processes starting at once (the
/// server and `token`, say) agree on one secret: the secret is written in full to a private
/// temporary file and then hard-linked into place, which either succeeds atomically or finds the
/// other process's complete file, so nobody ever reads a half-written secret.
pub fn development_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join(SECRET_FILE);
    fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    if let Some(secret) = read_secret(&path)? {
        return Ok(secret);
    }
    let secret: [u8; 32] = rand::random();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let staging = data_dir.join(format!(
        ".{SECRET_FILE}.{}.{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    write_private(&staging, hex.as_bytes())?;
    let linked = fs::hard_link(&staging, &path);
    // The staging name is ours alone; failing to remove it only leaves a stray file behind.
    let _ = fs::remove_file(&staging);
    match linked {
        Ok(()) => Ok(hex.into_bytes()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => read_secret(&path)?
            .with_context(|| format!("{} vanished while being read", path.display())),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

fn read_secret(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim();
            if secret.is_empty() {
                bail!(
                    "{} is empty; delete it to create a new secret",
                    path.display()
                );
            }
            Ok(Some(secret.as_bytes().to_vec()))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

pub struct MintRequest {
    pub subject: String,
    /// `None` mints a listener session token (no `scope` claim).
    pub scopes: Option<Vec<String>>,
    pub ttl_seconds: u64,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub kid: Option<String>,
}

pub fn mint_hs256(secret: &[u8], req: &MintRequest) -> anyhow::Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("clock before 1970")?
        .as_secs();
    let mut claims = json!({ "sub": req.subject, "iat": now, "exp": now + req.ttl_seconds });
    if let Some(scopes) = &req.scopes {
        claims["scope"] = Value::String(scopes.join(" "));
    }
    if let Some(iss) = &req.issuer {
        claims["iss"] = Value::String(iss.clone());
    }
    if let Some(aud) = &req.audience {
        claims["aud"] = Value::String(aud.clone());
    }
    let mut header = Header::new(Algorithm::HS256);
    header.kid = req.kid.clone();
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
        .context("signing the token")
}
