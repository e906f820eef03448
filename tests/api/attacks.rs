//! Hostile callers: forged tokens against public keys, scope escalation, requests that do not
//! parse, control characters, absurd values. Each gets the right status code, and no row changes.
use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use library_service::{
    config::ServeArgs,
    pb::{self, library_admin_service_client::LibraryAdminServiceClient},
};
use tonic::Code;

use crate::{
    helpers::{history_ids, play, record, track},
    server::{frames, grpc_web_post_raw, http1},
    support::{
        app::{TestApp, now_secs, service_token, session_token, sign, valid_claims, with_token},
        db::TestDb,
    },
};

const RECORD_PLAY: &str = "/audiohm.library.v1.LibraryService/RecordPlay";

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/auth")
        .join(name)
        .display()
        .to_string()
}

/// The rows a listener has: plays and likes. An attack must leave them as they were.
async fn rows(app: &TestApp) -> (usize, u64) {
    let plays = history_ids(app, Default::default()).await.len();
    let mut client = app.client.clone();
    let likes = client
        .list_liked_tracks(app.req(pb::ListLikedTracksRequest::default()))
        .await
        .expect("likes")
        .into_inner()
        .total_size;
    (plays, likes)
}

/// A play and a like for the default listener; returns its rows.
async fn seed(app: &TestApp) -> (usize, u64) {
    record(app, vec![play(&track(), 30, "2026-01-01T00:00:00Z")]).await;
    let mut client = app.client.clone();
    client
        .like_track(app.req(pb::LikeTrackRequest {
            track_id: track(),
            ..Default::default()
        }))
        .await
        .expect("liked");
    rows(app).await
}

fn rs256(kid: &str, claims: &serde_json::Value) -> String {
    let pem = std::fs::read(fixture("rsa_private.pem")).expect("fixture");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(&pem).expect("rsa key"),
    )
    .expect("signs")
}

async fn forged_tokens_are_unauthenticated_and_write_nothing(app: TestApp, before: (usize, u64)) {
    let me = app.user.to_string();
    let public_pem = std::fs::read(fixture("rsa_public.pem")).expect("fixture");
    let mut confused = Header::new(Algorithm::HS256);
    confused.kid = Some("rsa-1".into());
    let confusion = jsonwebtoken::encode(
        &confused,
        &valid_claims(&me),
        &EncodingKey::from_secret(&public_pem),
    )
    .expect("signs");
    let genuine = rs256("rsa-1", &valid_claims(&me));
    let mut escalated = valid_claims(&me);
    escalated["scope"] = serde_json::json!("library:admin library:any_user");
    let parts: Vec<&str> = genuine.split('.').collect();
    let swapped_payload = format!(
        "{}.{}.{}",
        parts[0],
        base64_url(&escalated.to_string()),
        parts[2]
    );
    let mut expired = valid_claims(&me);
    expired["exp"] = serde_json::json!(now_secs() - 3600);

    let attacks = [
        ("HS256 signed with the RSA public key", confusion),
        ("unknown kid", rs256("rsa-9", &valid_claims(&me))),
        ("scope added to a signed payload", swapped_payload),
        ("expired RS256", rs256("rsa-1", &expired)),
    ];
    let mut client = app.client.clone();
    for (what, token) in attacks {
        let status = client
            .record_play(with_token(
                pb::RecordPlayRequest {
                    track_id: track(),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .expect_err(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
    }
    assert_eq!(rows(&app).await, before);
    client
        .record_play(with_token(
            pb::RecordPlayRequest {
                track_id: track(),
                ..Default::default()
            },
            &genuine,
        ))
        .await
        .expect("the genuine RS256 token works");
}

fn base64_url(s: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.encode(s)
}

async fn scope_escalation_attempts_are_denied_and_change_nothing(app: TestApp) {
    let before = seed(&app).await;
    let victim = app.user.to_string();
    let mut client = app.client.clone();
    let mut admin = LibraryAdminServiceClient::new(app.channel().await);
    for scope in [
        "LIBRARY:ADMIN LIBRARY:ANY_USER",
        "library:* library:admin*",
        "library:read,library:admin,library:any_user",
        "library:write library:any_user_",
        "library:read",
    ] {
        let token = service_token("sneaky-service", scope);
        let erase = admin
            .delete_user_data(with_token(
                pb::DeleteUserDataRequest {
                    user_id: victim.clone(),
                },
                &token,
            ))
            .await
            .expect_err(scope);
        assert_eq!(erase.code(), Code::PermissionDenied, "{scope}");
        let clear = client
            .clear_history(with_token(
                pb::ClearHistoryRequest {
                    user_id: victim.clone(),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .expect_err(scope);
        assert_eq!(clear.code(), Code::PermissionDenied, "{scope}");
    }
    // A listener naming another listener, and a session token claiming scopes it lacks.
    let other = session_token(uuid::Uuid::new_v4());
    let status = client
        .clear_history(with_token(
            pb::ClearHistoryRequest {
                user_id: victim.clone(),
                ..Default::default()
            },
            &other,
        ))
        .await
        .expect_err("another listener");
    assert_eq!(status.code(), Code::PermissionDenied);
    let mut claims = valid_claims(&uuid::Uuid::new_v4().to_string());
    claims["scope"] = serde_json::json!("");
    let empty_scope = sign(&claims);
    let status = client
        .clear_history(with_token(
            pb::ClearHistoryRequest {
                user_id: victim,
                ..Default::default()
            },
            &empty_scope,
        ))
        .await
        .expect_err("an empty scope grants nothing");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(rows(&app).await, before);
}

async fn requests_that_do_not_parse_are_invalid_argument_and_write_nothing(app: TestApp) {
    let before = seed(&app).await;
    let token = session_token(app.user);
    let truncated = vec![0x12, 0x24, b'a'];
    let invalid_utf8 = vec![0x12, 0x02, 0xff, 0xfe];
    let wrong_wire_type = vec![0x15, 0, 0, 0];
    let nul_in_source = {
        // track_id = a UUID, source = "al\0bum"
        let t = track();
        let mut bytes = vec![0x12, t.len() as u8];
        bytes.extend_from_slice(t.as_bytes());
        bytes.extend_from_slice(&[0x2a, 6, b'a', b'l', 0, b'b', b'u', b'm']);
        bytes
    };
    for (what, payload, code) in [
        ("truncated", truncated, "3"),
        ("invalid UTF-8 in a string", invalid_utf8, "3"),
        ("wrong wire type", wrong_wire_type, "3"),
        ("NUL byte in source", nul_in_source, "3"),
    ] {
        let (head, body) =
            http1(&app, grpc_web_post_raw(RECORD_PLAY, Some(&token), &payload)).await;
        let (_, trailers) = frames(&body);
        let status = if trailers.is_empty() { head } else { trailers };
        assert!(
            status.contains(&format!("grpc-status:{code}"))
                || status.contains(&format!("grpc-status: {code}")),
            "{what}: {status}"
        );
    }
    assert_eq!(rows(&app).await, before);
}

async fn control_characters_and_absurd_values_are_refused(app: TestApp) {
    let before = seed(&app).await;
    let mut client = app.client.clone();
    let liked = track();
    for notes in [
        "bell\u{7}",
        "nul\0byte",
        "escape\u{1b}[31m",
        "\u{202e}\u{0}",
    ] {
        let status = client
            .like_track(app.req(pb::LikeTrackRequest {
                track_id: liked.clone(),
                notes: Some(notes.into()),
                ..Default::default()
            }))
            .await
            .expect_err(notes);
        assert_eq!(status.code(), Code::InvalidArgument, "{notes:?}");
    }
    let absurd = [
        prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        },
        prost_types::Timestamp {
            seconds: i64::MIN,
            nanos: 0,
        },
        prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        },
        prost_types::Timestamp {
            seconds: 0,
            nanos: 2_000_000_000,
        },
    ];
    for at in absurd {
        let status = client
            .record_play(app.req(pb::RecordPlayRequest {
                track_id: track(),
                played_at: Some(at),
                ..Default::default()
            }))
            .await
            .expect_err("absurd time");
        assert_eq!(status.code(), Code::InvalidArgument, "{at:?}");
        let status = client
            .get_library_stats(app.req(pb::GetLibraryStatsRequest {
                since: Some(at),
                ..Default::default()
            }))
            .await
            .expect_err("absurd since");
        assert_eq!(status.code(), Code::InvalidArgument, "{at:?}");
    }
    // AIP-158: an absurd page size is coerced to the maximum, not refused.
    let page = client
        .list_liked_tracks(app.req(pb::ListLikedTracksRequest {
            page_size: u32::MAX,
            ..Default::default()
        }))
        .await
        .expect("coerced")
        .into_inner();
    assert_eq!(page.liked_tracks.len(), 1);
    let status = client
        .check_liked_tracks(app.req(pb::CheckLikedTracksRequest {
            user_id: String::new(),
            track_ids: vec![track(); 100_000],
        }))
        .await
        .expect_err("too many ids");
    assert_eq!(status.code(), Code::InvalidArgument);
    for after in ["x".repeat(10_000), "\0\0\0".into(), "AQ".into()] {
        let status = crate::helpers::history(
            &app,
            pb::ListHistoryRequest {
                after,
                ..Default::default()
            },
        )
        .await
        .expect_err("a malformed cursor");
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    assert_eq!(rows(&app).await, before);
}

async fn forged_tokens_against_public_keys(db: TestDb) {
    let keys = vec![format!("rsa-1={}", fixture("rsa_public.pem"))];
    let app = TestApp::spawn_with_keys(db, ServeArgs::default(), keys).await;
    let before = seed(&app).await;
    forged_tokens_are_unauthenticated_and_write_nothing(app, before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_against_public_keys_are_unauthenticated_on_sqlite() {
    forged_tokens_against_public_keys(crate::support::db::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_against_public_keys_are_unauthenticated_on_postgres() {
    if let Some(db) = crate::support::db::postgres().await {
        forged_tokens_against_public_keys(db).await;
    }
}

backend_tests! {
    scope_escalation_attempts_are_denied_and_change_nothing,
    requests_that_do_not_parse_are_invalid_argument_and_write_nothing,
    control_characters_and_absurd_values_are_refused,
}
