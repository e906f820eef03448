//! Keys from the identity provider's JWKS URL (`--jwt-jwks-url`, `--jwt-oidc-issuer`): a real
//! HTTPS provider inside the test (tests/support/provider.rs) rotates its keys, fails and
//! counts its fetches, while the real server verifies tokens against what it fetched.
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use library_service::{
    auth::{AuthConfig, JwksConfig, JwksSource},
    config::ServeArgs,
    pb,
};
use serde_json::{Value, json};
use support::{
    app::{AUDIENCE, ISSUER, TestApp, auth_config, now_secs, with_token},
    db,
    process::{Served, binary, free_port},
    provider::{EC_1, ED_2025, ED_2026, Provider, TestTls, fixture, sign},
};
use tonic::{Code, Status};
use uuid::Uuid;

fn jwks(source: JwksSource, ca: Option<&TestTls>, dir: &tempfile::TempDir) -> JwksConfig {
    JwksConfig {
        source,
        ca_file: ca.map(|tls| tls.ca_file(dir.path())),
        allow_http: false,
        refresh: Duration::from_secs(300),
    }
}

/// The server trusting `provider` (through the test CA) beside the tests' own secret.
async fn app_with(provider: &Provider, tls: &TestTls, dir: &tempfile::TempDir) -> TestApp {
    let auth = AuthConfig {
        jwks: Some(jwks(JwksSource::Url(provider.jwks_url()), Some(tls), dir)),
        ..auth_config()
    };
    TestApp::spawn_with_auth(db::sqlite(), ServeArgs::default(), auth).await
}

fn claims() -> Value {
    json!({
        "sub": Uuid::new_v4().to_string(),
        "exp": now_secs() + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    })
}

/// A token of a fixture key under its own key id.
fn token(key: (&str, &str, jsonwebtoken::Algorithm)) -> String {
    sign(key, key.0, &claims())
}

async fn call(app: &TestApp, token: &str) -> Result<(), Status> {
    let mut client = app.client.clone();
    client
        .list_liked_tracks(with_token(pb::ListLikedTracksRequest::default(), token))
        .await
        .map(|_| ())
}

fn assert_refused(answer: Result<(), Status>, why: &str) {
    match answer {
        Ok(()) => panic!("accepted; expected UNAUTHENTICATED {why:?}"),
        Err(status) => {
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
            assert!(status.message().contains(why), "{status:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_a_key_the_provider_just_rotated_in_verifies_at_its_first_try() {
    let (tls, dir) = (TestTls::new(), tempfile::tempdir().expect("dir"));
    let provider = Provider::https(&tls, &["ed-2025"]).await;
    let app = app_with(&provider, &tls, &dir).await;
    assert_eq!(provider.fetches(), 1, "fetched once at start-up");
    call(&app, &token(ED_2025))
        .await
        .expect("the published key verifies");

    provider.publish(&["ed-2025", "ed-2026"]);
    call(&app, &token(ED_2026))
        .await
        .expect("the new key verifies without a restart, at the first try");
    assert_eq!(provider.fetches(), 2, "after exactly one more fetch");
    call(&app, &token(ED_2025))
        .await
        .expect("the old key still verifies");
    call(&app, &token(ED_2026))
        .await
        .expect("and the new one, from the cache");
    assert_eq!(provider.fetches(), 2, "known keys cost no fetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_provider_removed_stops_verifying_after_a_refresh() {
    let (tls, dir) = (TestTls::new(), tempfile::tempdir().expect("dir"));
    let provider = Provider::https(&tls, &["ed-2025", "ed-2026"]).await;
    let app = app_with(&provider, &tls, &dir).await;
    call(&app, &token(ED_2025)).await.expect("verifies before");

    // Rotation: ed-2025 is retired and ec-1 comes in; the first ec-1 token refreshes the set.
    provider.publish(&["ed-2026", "ec-1"]);
    call(&app, &token(EC_1))
        .await
        .expect("the new key verifies");
    assert_refused(call(&app, &token(ED_2025)).await, "unknown key id");
    call(&app, &token(ED_2026))
        .await
        .expect("the kept key still verifies");
    assert_eq!(provider.fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_key_ids_fetches_the_jwks_at_most_once_per_30_seconds() {
    let (tls, dir) = (TestTls::new(), tempfile::tempdir().expect("dir"));
    let provider = Provider::https(&tls, &["ed-2025"]).await;
    let app = app_with(&provider, &tls, &dir).await;
    let started = Instant::now();

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let forged = sign(ED_2025, &Uuid::new_v4().to_string(), &claims());
        let mut client = app.client.clone();
        calls.spawn(async move {
            client
                .list_liked_tracks(with_token(pb::ListLikedTracksRequest::default(), &forged))
                .await
                .map(|_| ())
        });
    }
    while let Some(answer) = calls.join_next().await {
        assert_refused(answer.expect("call task"), "unknown key id");
    }
    assert_eq!(
        provider.fetches(),
        2,
        "200 unknown key ids: one early fetch"
    );

    // Within the same 30 s even a genuinely new key waits for the next allowed refresh.
    provider.publish(&["ed-2025", "ed-2026"]);
    assert_refused(call(&app, &token(ED_2026)).await, "unknown key id");
    assert_eq!(provider.fetches(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the test ran within one 30 s window, so it measured the limit"
    );
    call(&app, &token(ED_2025))
        .await
        .expect("known keys still verify");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_the_provider_keeps_the_last_good_keys_working() {
    let (tls, dir) = (TestTls::new(), tempfile::tempdir().expect("dir"));
    let provider = Provider::https(&tls, &["ed-2025"]).await;
    let app = app_with(&provider, &tls, &dir).await;

    provider.set_down(true);
    // A token of a key nobody has makes the server try (and fail) a refresh.
    assert_refused(call(&app, &token(ED_2026)).await, "unknown key id");
    assert_eq!(provider.fetches(), 2, "the refresh was tried");
    call(&app, &token(ED_2025))
        .await
        .expect("the last good keys keep verifying");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetched_key_never_replaces_a_configured_key_of_the_same_id() {
    let (tls, dir) = (TestTls::new(), tempfile::tempdir().expect("dir"));
    let provider = Provider::https(&tls, &["ed-2025", "ec-1"]).await;
    // The operator pinned ed-2025 to another key than the one the provider publishes.
    let pinned = format!("ed-2025={}", fixture("ed25519_next_public.pem").display());
    let auth = AuthConfig {
        public_keys: vec![pinned],
        jwks: Some(jwks(JwksSource::Url(provider.jwks_url()), Some(&tls), &dir)),
        ..auth_config()
    };
    let app = TestApp::spawn_with_auth(db::sqlite(), ServeArgs::default(), auth).await;

    assert_refused(call(&app, &token(ED_2025)).await, "signature");
    call(&app, &sign(ED_2026, "ed-2025", &claims()))
        .await
        .expect("the configured key verifies under its id");
    call(&app, &token(EC_1))
        .await
        .expect("other fetched keys verify");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_through_the_openid_configuration_finds_the_keys_and_the_issuer() {
    let (tls, dir) = (TestTls::new(), tempfile::tempdir().expect("dir"));
    let provider = Provider::https(&tls, &["ed-2025"]).await;
    let auth = AuthConfig {
        issuer: None,
        jwks: Some(jwks(
            JwksSource::OidcIssuer(provider.base()),
            Some(&tls),
            &dir,
        )),
        ..auth_config()
    };
    let app = TestApp::spawn_with_auth(db::sqlite(), ServeArgs::default(), auth).await;

    let mut from_the_provider = claims();
    from_the_provider["iss"] = json!(provider.base());
    call(&app, &sign(ED_2025, "ed-2025", &from_the_provider))
        .await
        .expect("a token of the discovered issuer verifies");
    // Without --jwt-issuer, the discovered issuer is the one tokens must name.
    assert_refused(call(&app, &token(ED_2025)).await, "issuer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_accepted_only_with_the_development_flag() {
    let dir = tempfile::tempdir().expect("dir");
    let provider = Provider::plain_http(&["ed-2025"]).await;
    let out = binary()
        .env_remove("DATABASE_URL")
        .env_remove("LIBRARY_JWT_SECRET")
        .env_remove("LIBRARY_JWT_PUBLIC_KEYS")
        .args(["--data-dir", &dir.path().display().to_string()])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--jwt-jwks-url", &provider.jwks_url()])
        .output()
        .expect("binary runs");
    assert!(!out.status.success(), "started on plain http");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plain http") && stderr.contains("--jwt-jwks-allow-http"),
        "the error names the flag: {stderr}"
    );
    assert_eq!(provider.fetches(), 0, "nothing was fetched over plain http");

    let auth = AuthConfig {
        jwks: Some(JwksConfig {
            allow_http: true,
            ..jwks(JwksSource::Url(provider.jwks_url()), None, &dir)
        }),
        ..auth_config()
    };
    let app = TestApp::spawn_with_auth(db::sqlite(), ServeArgs::default(), auth).await;
    call(&app, &token(ED_2025))
        .await
        .expect("verifies with --jwt-jwks-allow-http");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_ca_does_not_vouch_for_fails_start_up_at_once() {
    let (tls, other, dir) = (
        TestTls::new(),
        TestTls::new(),
        tempfile::tempdir().expect("dir"),
    );
    let provider = Provider::https(&tls, &["ed-2025"]).await;
    let auth = AuthConfig {
        jwks: Some(jwks(
            JwksSource::Url(provider.jwks_url()),
            Some(&other),
            &dir,
        )),
        ..auth_config()
    };
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        library_service::auth::Authenticator::connect(&auth),
    )
    .await
    .expect("an untrusted certificate is not waited for")
    .err()
    .expect("refused");
    assert!(
        format!("{refused:#}").contains("--jwt-jwks-ca"),
        "{refused:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_waits_while_the_provider_is_down_and_serves_once_it_is_up() {
    let (tls, dir) = (TestTls::new(), tempfile::tempdir().expect("dir"));
    let ca = tls.ca_file(dir.path());
    let (idp_port, port) = (free_port(), free_port());
    let mut cmd = binary();
    cmd.env_remove("DATABASE_URL")
        .env_remove("LIBRARY_JWT_SECRET")
        .env_remove("LIBRARY_JWT_PUBLIC_KEYS")
        .args(["--data-dir", &dir.path().display().to_string()])
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE])
        .args([
            "--jwt-jwks-url",
            &format!("https://127.0.0.1:{idp_port}/jwks.json"),
        ])
        .args(["--jwt-jwks-ca", &ca.display().to_string()]);

    let provider = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err(),
            "the service listened before it had keys"
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", idp_port))
            .await
            .expect("the provider's port is still free");
        Provider::serve(listener, Some(&tls), &["ed-2025"])
    });
    let (served, channel) = Served::start_on(cmd, port).await;
    let provider = provider.await.expect("the provider came up");
    assert!(
        served
            .logs()
            .contains("identity provider unreachable; waiting for it"),
        "each wait is logged: {}",
        served.logs()
    );
    assert_eq!(provider.fetches(), 1);

    let mut client = pb::library_service_client::LibraryServiceClient::new(channel);
    client
        .list_liked_tracks(with_token(
            pb::ListLikedTracksRequest::default(),
            &token(ED_2025),
        ))
        .await
        .expect("serves tokens of the provider's keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_larger_than_a_jwks_could_be_is_refused() {
    let (tls, dir) = (TestTls::new(), tempfile::tempdir().expect("dir"));
    let provider = Provider::https(&tls, &["ed-2025"]).await;
    let padding = "x".repeat(64 * 1024);
    provider.publish_raw(
        (0..20)
            .map(|i| json!({ "kty": "oct", "kid": format!("pad-{i}"), "k": padding }))
            .collect(),
    );
    let auth = AuthConfig {
        jwks: Some(jwks(JwksSource::Url(provider.jwks_url()), Some(&tls), &dir)),
        ..auth_config()
    };
    let refused = library_service::auth::Authenticator::connect(&auth)
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{refused:#}").contains("larger than 1048576 bytes"),
        "{refused:#}"
    );
}
