//! The auth rules through the real server.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use library_service::pb;
use serde_json::json;
use tonic::{Code, Request};

use crate::{
    helpers::{assert_bad_fields, history_ids, track},
    support::app::{
        TestApp, now_secs, service_token, session_token, sign, valid_claims, with_token,
    },
};

fn stats() -> pb::GetLibraryStatsRequest {
    pb::GetLibraryStatsRequest::default()
}

async fn stats_code(app: &TestApp, request: Request<pb::GetLibraryStatsRequest>) -> Code {
    let mut client = app.client.clone();
    match client.get_library_stats(request).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

async fn calls_without_a_valid_token_are_unauthenticated(app: TestApp) {
    let me = app.user.to_string();
    let mut expired = valid_claims(&me);
    expired["exp"] = json!(now_secs() - 600);
    let mut not_yet = valid_claims(&me);
    not_yet["nbf"] = json!(now_secs() + 600);
    let mut wrong_aud = valid_claims(&me);
    wrong_aud["aud"] = json!("billing");
    let mut wrong_iss = valid_claims(&me);
    wrong_iss["iss"] = json!("https://evil.test");
    let mut no_sub = valid_claims(&me);
    no_sub.as_object_mut().expect("object").remove("sub");
    let mut exp_string = valid_claims(&me);
    exp_string["exp"] = json!((now_secs() + 600).to_string());
    let mut scope_array = valid_claims(&me);
    scope_array["scope"] = json!(["library:read"]);
    let other_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &valid_claims(&me),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret"),
    )
    .expect("signs");
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(valid_claims(&me).to_string())
    );
    let genuine = session_token(app.user);
    let mut parts: Vec<&str> = genuine.split('.').collect();
    let forged_payload =
        URL_SAFE_NO_PAD.encode(valid_claims(&uuid::Uuid::new_v4().to_string()).to_string());
    parts[1] = &forged_payload;
    let tampered = parts.join(".");

    let tokens = [
        ("expired", sign(&expired)),
        ("not yet valid", sign(&not_yet)),
        ("wrong audience", sign(&wrong_aud)),
        ("wrong issuer", sign(&wrong_iss)),
        ("missing sub", sign(&no_sub)),
        ("exp as a string", sign(&exp_string)),
        ("scope as an array", sign(&scope_array)),
        (
            "session token for a non-UUID subject",
            sign(&valid_claims("player-service")),
        ),
        ("signed with another key", other_key),
        ("alg none", alg_none),
        ("tampered payload", tampered),
        ("garbage", "not-a-jwt".into()),
    ];
    for (what, token) in tokens {
        assert_eq!(
            stats_code(&app, with_token(stats(), &token)).await,
            Code::Unauthenticated,
            "{what}"
        );
    }
    assert_eq!(
        stats_code(&app, Request::new(stats())).await,
        Code::Unauthenticated,
        "no token"
    );
    let mut basic = Request::new(stats());
    basic.metadata_mut().insert(
        "authorization",
        "Basic dXNlcjpwYXNz".parse().expect("ascii"),
    );
    assert_eq!(
        stats_code(&app, basic).await,
        Code::Unauthenticated,
        "basic auth"
    );
    assert_eq!(
        stats_code(&app, app.req(stats())).await,
        Code::Ok,
        "the genuine token still works"
    );
}

async fn a_listener_cannot_touch_another_listeners_library(app: TestApp) {
    let stranger = session_token(uuid::Uuid::new_v4());
    let victim = app.user.to_string();
    let mut client = app.client.clone();
    let t = track();

    let read = client
        .list_history(with_token(
            pb::ListHistoryRequest {
                user_id: victim.clone(),
                ..Default::default()
            },
            &stranger,
        ))
        .await
        .expect_err("refused");
    assert_eq!(read.code(), Code::PermissionDenied);
    let stats = client
        .get_library_stats(with_token(
            pb::GetLibraryStatsRequest {
                user_id: victim.clone(),
                ..Default::default()
            },
            &stranger,
        ))
        .await
        .expect_err("refused");
    assert_eq!(stats.code(), Code::PermissionDenied);
    let check = client
        .check_liked_tracks(with_token(
            pb::CheckLikedTracksRequest {
                user_id: victim.clone(),
                track_ids: vec![t.clone()],
            },
            &stranger,
        ))
        .await
        .expect_err("refused");
    assert_eq!(check.code(), Code::PermissionDenied);
    let write = client
        .record_play(with_token(
            pb::RecordPlayRequest {
                user_id: victim.clone(),
                track_id: t.clone(),
                ..Default::default()
            },
            &stranger,
        ))
        .await
        .expect_err("refused");
    assert_eq!(write.code(), Code::PermissionDenied);
    let like = client
        .like_track(with_token(
            pb::LikeTrackRequest {
                user_id: victim,
                track_id: t.clone(),
                notes: None,
            },
            &stranger,
        ))
        .await
        .expect_err("refused");
    assert_eq!(like.code(), Code::PermissionDenied);

    assert!(
        history_ids(&app, Default::default()).await.is_empty(),
        "nothing was written"
    );
    let liked = client
        .check_liked_tracks(app.req(pb::CheckLikedTracksRequest {
            user_id: String::new(),
            track_ids: vec![t],
        }))
        .await
        .expect("own check")
        .into_inner();
    assert_eq!(liked.liked, vec![false]);
}

async fn a_service_needs_any_user_to_act_for_a_listener(app: TestApp) {
    let listener = app.user.to_string();
    let request = || pb::RecordPlayRequest {
        user_id: listener.clone(),
        track_id: track(),
        ..Default::default()
    };
    let mut client = app.client.clone();

    let narrow = service_token("player-service", "library:read library:write");
    let denied = client
        .record_play(with_token(request(), &narrow))
        .await
        .expect_err("refused");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(history_ids(&app, Default::default()).await.is_empty());

    let broad = service_token(
        "player-service",
        "library:read library:write library:any_user",
    );
    let play = client
        .record_play(with_token(request(), &broad))
        .await
        .expect("recorded")
        .into_inner()
        .play;
    assert_eq!(
        history_ids(&app, Default::default()).await,
        vec![play.expect("play").id],
        "the listener sees it"
    );

    let unnamed = client
        .record_play(with_token(
            pb::RecordPlayRequest {
                track_id: track(),
                ..Default::default()
            },
            &broad,
        ))
        .await
        .expect_err("whose library?");
    assert_bad_fields(&unnamed, &["user_id"]);
}

async fn scopes_limit_what_a_token_may_do(app: TestApp) {
    let me = app.user.to_string();
    let mut client = app.client.clone();
    let reader = service_token(&me, "library:read");
    let write = client
        .record_play(with_token(
            pb::RecordPlayRequest {
                track_id: track(),
                ..Default::default()
            },
            &reader,
        ))
        .await
        .expect_err("read-only");
    assert_eq!(write.code(), Code::PermissionDenied);
    assert_eq!(
        stats_code(&app, with_token(stats(), &reader)).await,
        Code::Ok,
        "but it may read"
    );

    let admin_only = service_token(&me, "library:admin");
    assert_eq!(
        stats_code(&app, with_token(stats(), &admin_only)).await,
        Code::PermissionDenied
    );
}

backend_tests! {
    calls_without_a_valid_token_are_unauthenticated,
    a_listener_cannot_touch_another_listeners_library,
    a_service_needs_any_user_to_act_for_a_listener,
    scopes_limit_what_a_token_may_do,
}
