//! Verification against every supported key type, and the attacks DESIGN names. Keys are test
//! fixtures in `tests/fixtures/auth/` (generated with openssl; never used anywhere else).
use std::{fs, path::PathBuf};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::domain::UserId;

const SECRET: &str = "unit-test-secret";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/auth")
        .join(name)
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "exp": now() + 600 })
}

fn config() -> AuthConfig {
    AuthConfig {
        leeway_seconds: 0,
        data_dir: std::env::temp_dir(),
        ..AuthConfig::default()
    }
}

fn hs(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn signed(alg: Algorithm, kid: Option<&str>, private_pem: &str, claims: &Value) -> String {
    let pem = fs::read(fixture(private_pem)).unwrap();
    let key = match alg {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_rsa_pem(&pem),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn secret_auth() -> Authenticator {
    Authenticator::from_config(&AuthConfig {
        hs256_secret: Some(SECRET.into()),
        ..config()
    })
    .unwrap()
}

fn public_auth(keys: &[&str]) -> Authenticator {
    let public_keys = keys
        .iter()
        .map(|k| match k.split_once('=') {
            Some((kid, file)) => format!("{kid}={}", fixture(file).display()),
            None => fixture(k).display().to_string(),
        })
        .collect();
    Authenticator::from_config(&AuthConfig {
        public_keys,
        ..config()
    })
    .unwrap()
}

fn user() -> String {
    Uuid::new_v4().to_string()
}

#[test]
fn an_hs256_session_token_verifies_as_a_listener() {
    let sub = user();
    let p = secret_auth().verify(&hs(&claims(&sub))).unwrap();
    assert_eq!(
        p,
        Principal {
            subject: sub,
            scopes: None
        }
    );
}

#[test]
fn eddsa_es256_and_rs256_pem_keys_verify_their_own_tokens() {
    let auth = public_auth(&["ed25519_public.pem", "ec_public.pem", "rsa_public.pem"]);
    for (alg, pem) in [
        (Algorithm::EdDSA, "ed25519_private.pem"),
        (Algorithm::ES256, "ec_private.pem"),
        (Algorithm::RS256, "rsa_private.pem"),
    ] {
        assert!(
            auth.verify(&signed(alg, None, pem, &claims(&user())))
                .is_ok(),
            "{alg:?}"
        );
    }
}

#[test]
fn a_jwks_with_two_kids_accepts_both_during_rotation_and_refuses_unknown_kids() {
    let auth = public_auth(&["jwks.json"]);
    let c = claims(&user());
    assert!(
        auth.verify(&signed(
            Algorithm::EdDSA,
            Some("ed-2025"),
            "ed25519_private.pem",
            &c
        ))
        .is_ok()
    );
    assert!(
        auth.verify(&signed(
            Algorithm::EdDSA,
            Some("ed-2026"),
            "ed25519_next_private.pem",
            &c
        ))
        .is_ok()
    );
    assert!(
        auth.verify(&signed(
            Algorithm::ES256,
            Some("ec-1"),
            "ec_private.pem",
            &c
        ))
        .is_ok()
    );
    // The right key type under the wrong kid does not verify.
    let crossed = signed(Algorithm::EdDSA, Some("ed-2026"), "ed25519_private.pem", &c);
    assert_eq!(auth.verify(&crossed), Err(AuthError::BadSignature));
    let unknown = signed(Algorithm::EdDSA, Some("ed-1999"), "ed25519_private.pem", &c);
    assert_eq!(auth.verify(&unknown), Err(AuthError::UnknownKeyId));
}

#[test]
fn a_pem_key_can_be_named_by_kid() {
    let auth = public_auth(&["rsa-main=rsa_public.pem"]);
    let c = claims(&user());
    assert!(
        auth.verify(&signed(
            Algorithm::RS256,
            Some("rsa-main"),
            "rsa_private.pem",
            &c
        ))
        .is_ok()
    );
    // A named key is only chosen by its kid.
    assert_eq!(
        auth.verify(&signed(Algorithm::RS256, None, "rsa_private.pem", &c)),
        Err(AuthError::WrongAlgorithm)
    );
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let auth = secret_auth();
    let sub = user();
    assert_eq!(
        auth.verify(&hs(&json!({ "sub": sub, "exp": now() - 120 }))),
        Err(AuthError::Expired)
    );
    let early = json!({ "sub": sub, "exp": now() + 600, "nbf": now() + 300 });
    assert_eq!(auth.verify(&hs(&early)), Err(AuthError::NotYetValid));
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let auth = Authenticator::from_config(&AuthConfig {
        hs256_secret: Some(SECRET.into()),
        issuer: Some("https://auth.audiohm".into()),
        audience: Some("library".into()),
        ..config()
    })
    .unwrap();
    let sub = user();
    let good = json!({ "sub": sub, "exp": now() + 60, "iss": "https://auth.audiohm", "aud": ["other", "library"] });
    assert!(auth.verify(&hs(&good)).is_ok());
    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("https://evil");
    assert_eq!(auth.verify(&hs(&wrong_iss)), Err(AuthError::WrongIssuer));
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("billing");
    assert_eq!(auth.verify(&hs(&wrong_aud)), Err(AuthError::WrongAudience));
    for claim in ["aud", "iss"] {
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove(claim);
        assert_eq!(
            auth.verify(&hs(&missing)),
            Err(AuthError::BadClaim(claim.into())),
            "{claim}"
        );
    }
}

#[test]
fn claims_of_the_wrong_type_are_refused() {
    let auth = secret_auth();
    let sub = user();
    for bad in [
        json!({ "sub": sub, "exp": (now() + 600).to_string() }),
        json!({ "sub": sub, "exp": now() + 600, "scope": ["library:read"] }),
        json!({ "sub": sub, "exp": now() + 600, "nbf": "yesterday" }),
        json!({ "sub": 42, "exp": now() + 600 }),
        json!({ "exp": now() + 600 }),
        json!({ "sub": "", "exp": now() + 600, "scope": "library:read" }),
        json!({ "sub": sub }),
    ] {
        assert!(auth.verify(&hs(&bad)).is_err(), "{bad}");
    }
}

#[test]
fn a_session_token_needs_a_uuid_subject() {
    let auth = secret_auth();
    assert_eq!(
        auth.verify(&hs(&claims("player-service"))),
        Err(AuthError::BadClaim("sub".into()))
    );
    let mut service = claims("player-service");
    service["scope"] = json!("library:read");
    assert!(
        auth.verify(&hs(&service)).is_ok(),
        "a scoped token may name a service"
    );
}

#[test]
fn alg_none_and_algorithm_confusion_are_refused() {
    let sub = user();
    let payload = URL_SAFE_NO_PAD.encode(claims(&sub).to_string());
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    assert!(secret_auth().verify(&none).is_err());

    // HS256 "signed" with the RSA public key's bytes, sent to a service that knows that key.
    let rsa = public_auth(&["rsa_public.pem"]);
    let public_pem = fs::read(fixture("rsa_public.pem")).unwrap();
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&sub),
        &EncodingKey::from_secret(&public_pem),
    )
    .unwrap();
    assert_eq!(rsa.verify(&forged), Err(AuthError::WrongAlgorithm));
    // An RS256 header on an EdDSA key does not make the key RSA.
    let ed = public_auth(&["ed25519_public.pem"]);
    assert!(
        ed.verify(&signed(
            Algorithm::RS256,
            None,
            "rsa_private.pem",
            &claims(&sub)
        ))
        .is_err()
    );
}

#[test]
fn a_tampered_payload_or_another_secret_is_refused() {
    let auth = secret_auth();
    let token = hs(&claims(&user()));
    let mut parts: Vec<&str> = token.split('.').collect();
    let tampered_payload = URL_SAFE_NO_PAD.encode(claims(&user()).to_string());
    parts[1] = &tampered_payload;
    assert_eq!(auth.verify(&parts.join(".")), Err(AuthError::BadSignature));
    let other = jsonwebtoken::encode(
        &Header::default(),
        &claims(&user()),
        &EncodingKey::from_secret(b"other"),
    )
    .unwrap();
    assert_eq!(auth.verify(&other), Err(AuthError::BadSignature));
    assert_eq!(auth.verify("not.a.token"), Err(AuthError::Malformed));
    assert_eq!(auth.verify(&"a".repeat(10_000)), Err(AuthError::Malformed));
}

#[test]
fn development_mode_creates_one_secret_and_mints_tokens_it_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuthConfig {
        data_dir: dir.path().join("data"),
        ..config()
    };
    let auth = Authenticator::from_config(&cfg).unwrap();
    assert!(auth.is_development());
    let secret = development_secret(&cfg.data_dir).unwrap();
    assert_eq!(
        secret,
        development_secret(&cfg.data_dir).unwrap(),
        "the secret is created once"
    );
    let sub = user();
    let request = MintRequest {
        subject: sub.clone(),
        scopes: Some(vec![SCOPE_READ.into(), SCOPE_ANY_USER.into()]),
        ttl_seconds: 60,
        issuer: None,
        audience: None,
        kid: None,
    };
    let principal = auth
        .verify(&mint_hs256(&secret, &request).unwrap())
        .unwrap();
    assert_eq!(principal.subject, sub);
    assert!(principal.has_scope(SCOPE_ANY_USER));
    assert!(!secret_auth().is_development());
}

#[test]
fn processes_creating_the_development_secret_at_once_all_get_the_same_full_secret() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let secrets: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| development_secret(&data_dir).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(secrets[0].len(), 64, "32 random bytes in hex");
        assert!(secrets.iter().all(|s| s == &secrets[0]), "one secret");
        let files: Vec<_> = std::fs::read_dir(&data_dir).unwrap().collect();
        assert_eq!(files.len(), 1, "no staging files are left behind");
    }
}

fn principal(sub: &str, scopes: Option<&str>) -> Principal {
    Principal {
        subject: sub.into(),
        scopes: scopes.map(|s| s.split(' ').map(str::to_string).collect()),
    }
}

#[test]
fn a_session_token_reaches_only_its_own_library() {
    let me = UserId::parse(&user()).unwrap();
    let other = UserId::parse(&user()).unwrap();
    let p = principal(&me.to_string(), None);
    assert_eq!(p.authorize(None, Access::Read), Ok(me));
    assert_eq!(p.authorize(Some(me), Access::Write), Ok(me));
    assert!(matches!(
        p.authorize(Some(other), Access::Read),
        Err(Denied::PermissionDenied(_))
    ));
    assert!(matches!(
        p.authorize_admin(),
        Err(Denied::PermissionDenied(_))
    ));
}

#[test]
fn scopes_decide_reads_writes_and_other_users() {
    let me = UserId::parse(&user()).unwrap();
    let other = UserId::parse(&user()).unwrap();
    let reader = principal(&me.to_string(), Some(SCOPE_READ));
    assert_eq!(reader.authorize(None, Access::Read), Ok(me));
    assert!(matches!(
        reader.authorize(None, Access::Write),
        Err(Denied::PermissionDenied(_))
    ));
    assert!(matches!(
        reader.authorize(Some(other), Access::Read),
        Err(Denied::PermissionDenied(_))
    ));

    let service = principal(
        "player-service",
        Some("library:read library:write library:any_user"),
    );
    assert_eq!(service.authorize(Some(other), Access::Write), Ok(other));
    assert_eq!(
        service.authorize(None, Access::Read),
        Err(Denied::UserRequired)
    );
    let narrow = principal("player-service", Some("library:write"));
    assert!(matches!(
        narrow.authorize(Some(other), Access::Write),
        Err(Denied::PermissionDenied(_))
    ));

    let admin = principal("ops", Some(SCOPE_ADMIN));
    assert!(admin.authorize_admin().is_ok());
    assert!(matches!(
        reader.authorize_admin(),
        Err(Denied::PermissionDenied(_))
    ));
    assert!(matches!(
        admin.authorize(Some(other), Access::Read),
        Err(Denied::PermissionDenied(_))
    ));
}

#[test]
fn a_fetched_jwks_skips_keys_this_service_cannot_use_and_never_takes_a_symmetric_key() {
    let fixture_set: Value =
        serde_json::from_str(&fs::read_to_string(fixture("jwks.json")).unwrap()).unwrap();
    let mut keys = fixture_set["keys"].as_array().unwrap().clone();
    keys.push(
        json!({ "kty": "oct", "kid": "hs-from-the-network", "k": URL_SAFE_NO_PAD.encode(SECRET) }),
    );
    keys.push(json!({ "kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA" }));
    keys.push(json!({ "kty": "OKP", "crv": "X25519", "kid": "x25519", "use": "enc", "x": "AA" }));
    keys.push(json!({ "kty": "PQ", "kid": "from-the-future" }));
    let body = serde_json::to_vec(&json!({ "keys": keys })).unwrap();

    let (usable, skipped) = keys::from_fetched_jwks(&body).unwrap();
    let kids: Vec<_> = usable.iter().filter_map(|k| k.kid.as_deref()).collect();
    assert_eq!(kids, ["ed-2025", "ed-2026", "ec-1"]);
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert!(
        skipped.iter().any(|s| s.contains("hs-from-the-network")),
        "{skipped:?}"
    );
}

#[test]
fn a_fetched_document_that_is_not_a_jwks_is_refused() {
    for body in [&b"<html>maintenance</html>"[..], b"{}", b"{\"keys\": 5}"] {
        assert!(keys::from_fetched_jwks(body).is_err());
    }
}

#[test]
fn keys_from_a_url_need_the_async_constructor() {
    let cfg = AuthConfig {
        jwks: Some(JwksConfig {
            source: JwksSource::Url("https://idp.example/jwks.json".into()),
            ca_file: None,
            allow_http: false,
            refresh: std::time::Duration::from_secs(300),
        }),
        ..config()
    };
    assert!(Authenticator::from_config(&cfg).is_err());
}
