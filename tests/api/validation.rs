//! Every validation rule: INVALID_ARGUMENT with a BadRequest naming the field, and nothing written.
use library_service::pb;
use tonic::{Code, Status};

use crate::{
    helpers::{assert_bad_fields, history, history_ids, play, record, track, ts},
    support::app::{TestApp, session_token, with_token},
};

fn valid_play() -> pb::RecordPlayRequest {
    pb::RecordPlayRequest {
        track_id: track(),
        played_for_seconds: 120,
        ..Default::default()
    }
}

fn minutes_from_now(minutes: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: crate::support::app::now_secs() + minutes * 60,
        nanos: 0,
    }
}

async fn record_one(
    app: &TestApp,
    request: pb::RecordPlayRequest,
) -> Result<pb::RecordPlayResponse, Status> {
    let mut client = app.client.clone();
    client
        .record_play(app.req(request))
        .await
        .map(|r| r.into_inner())
}

async fn every_bad_play_field_is_named_and_nothing_is_written(app: TestApp) {
    let cases: Vec<(&str, pb::RecordPlayRequest)> = vec![
        (
            "track_id",
            pb::RecordPlayRequest {
                track_id: String::new(),
                ..valid_play()
            },
        ),
        (
            "track_id",
            pb::RecordPlayRequest {
                track_id: "not-a-uuid".into(),
                ..valid_play()
            },
        ),
        (
            "track_id",
            pb::RecordPlayRequest {
                track_id: uuid::Uuid::nil().to_string(),
                ..valid_play()
            },
        ),
        (
            "played_for_seconds",
            pb::RecordPlayRequest {
                played_for_seconds: 86_401,
                ..valid_play()
            },
        ),
        (
            "source",
            pb::RecordPlayRequest {
                source: "x".repeat(51),
                ..valid_play()
            },
        ),
        (
            "source",
            pb::RecordPlayRequest {
                source: "radio\u{0}".into(),
                ..valid_play()
            },
        ),
        (
            "source",
            pb::RecordPlayRequest {
                source: "ra\ndio".into(),
                ..valid_play()
            },
        ),
        (
            "played_at",
            pb::RecordPlayRequest {
                played_at: Some(minutes_from_now(10)),
                ..valid_play()
            },
        ),
        (
            "played_at",
            pb::RecordPlayRequest {
                played_at: Some(ts("1999-12-31T23:59:59Z")),
                ..valid_play()
            },
        ),
        (
            "played_at",
            pb::RecordPlayRequest {
                played_at: Some(prost_types::Timestamp {
                    seconds: 1_800_000_000,
                    nanos: -1,
                }),
                ..valid_play()
            },
        ),
        (
            "played_at",
            pb::RecordPlayRequest {
                played_at: Some(prost_types::Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                }),
                ..valid_play()
            },
        ),
        (
            "request_id",
            pb::RecordPlayRequest {
                request_id: "r".repeat(65),
                ..valid_play()
            },
        ),
        (
            "request_id",
            pb::RecordPlayRequest {
                request_id: "café".into(),
                ..valid_play()
            },
        ),
        (
            "request_id",
            pb::RecordPlayRequest {
                request_id: "a\nb".into(),
                ..valid_play()
            },
        ),
        (
            "user_id",
            pb::RecordPlayRequest {
                user_id: "me".into(),
                ..valid_play()
            },
        ),
    ];
    for (field, request) in cases {
        let status = record_one(&app, request.clone()).await.expect_err(field);
        assert_bad_fields(&status, &[field]);
    }
    assert!(
        history_ids(&app, Default::default()).await.is_empty(),
        "no refused play was written"
    );
}

async fn the_limits_themselves_are_accepted(app: TestApp) {
    for request in [
        pb::RecordPlayRequest {
            played_for_seconds: 86_400,
            ..valid_play()
        },
        pb::RecordPlayRequest {
            source: "é".repeat(50),
            ..valid_play()
        },
        pb::RecordPlayRequest {
            played_at: Some(minutes_from_now(4)),
            ..valid_play()
        },
        pb::RecordPlayRequest {
            request_id: "r".repeat(64),
            ..valid_play()
        },
        pb::RecordPlayRequest {
            played_at: Some(ts("2000-01-01T00:00:00Z")),
            ..valid_play()
        },
    ] {
        record_one(&app, request)
            .await
            .expect("a value at the limit is accepted");
    }
    assert_eq!(history_ids(&app, Default::default()).await.len(), 5);
}

async fn several_bad_fields_are_all_named_at_once(app: TestApp) {
    let request = pb::RecordPlayRequest {
        track_id: "nope".into(),
        played_for_seconds: 100_000,
        source: "s".repeat(60),
        request_id: "ü".into(),
        ..valid_play()
    };
    let status = record_one(&app, request).await.expect_err("refused");
    assert_bad_fields(
        &status,
        &["track_id", "played_for_seconds", "source", "request_id"],
    );
    assert!(
        status.message().contains("track_id"),
        "{}",
        status.message()
    );
}

async fn a_batch_must_hold_between_one_and_a_thousand_plays(app: TestApp) {
    let mut client = app.client.clone();
    for plays in [
        Vec::new(),
        (0..1001)
            .map(|_| play(&track(), 1, "2026-01-01T00:00:00Z"))
            .collect(),
    ] {
        let status = client
            .record_plays(app.req(pb::RecordPlaysRequest {
                user_id: String::new(),
                plays,
            }))
            .await
            .expect_err("refused");
        assert_bad_fields(&status, &["plays"]);
    }
    assert!(history_ids(&app, Default::default()).await.is_empty());
}

async fn bad_history_requests_name_the_field(app: TestApp) {
    record(&app, vec![play(&track(), 1, "2026-01-01T00:00:00Z")]).await;
    let other = uuid::Uuid::new_v4();
    let mut client = app.client.clone();
    client
        .record_play(with_token(valid_play(), &session_token(other)))
        .await
        .expect("the other listener plays too");
    let mut theirs = client
        .list_history(with_token(
            pb::ListHistoryRequest::default(),
            &session_token(other),
        ))
        .await
        .expect("their history")
        .into_inner();
    let their_cursor = theirs
        .message()
        .await
        .expect("stream")
        .expect("an entry")
        .cursor;
    let my_cursor = history(&app, Default::default()).await.expect("mine")[0]
        .cursor
        .clone();

    let cases = [
        (
            "after",
            pb::ListHistoryRequest {
                after: "garbage!".into(),
                ..Default::default()
            },
        ),
        (
            "after",
            pb::ListHistoryRequest {
                after: "A".repeat(5000),
                ..Default::default()
            },
        ),
        (
            "after",
            pb::ListHistoryRequest {
                after: their_cursor,
                ..Default::default()
            },
        ),
        (
            "after",
            pb::ListHistoryRequest {
                after: my_cursor,
                order: pb::HistoryOrder::OldestFirst as i32,
                ..Default::default()
            },
        ),
        (
            "until",
            pb::ListHistoryRequest {
                since: Some(ts("2026-02-01T00:00:00Z")),
                until: Some(ts("2026-01-01T00:00:00Z")),
                ..Default::default()
            },
        ),
        (
            "track_id",
            pb::ListHistoryRequest {
                track_id: "x".into(),
                ..Default::default()
            },
        ),
        (
            "order",
            pb::ListHistoryRequest {
                order: 7,
                ..Default::default()
            },
        ),
        (
            "since",
            pb::ListHistoryRequest {
                since: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: 2_000_000_000,
                }),
                ..Default::default()
            },
        ),
    ];
    for (field, request) in cases {
        let status = history(&app, request).await.expect_err(field);
        assert_bad_fields(&status, &[field]);
    }
}

async fn bad_deletes_are_refused(app: TestApp) {
    let kept = record(&app, vec![play(&track(), 1, "2026-01-01T00:00:00Z")]).await;
    let mut client = app.client.clone();
    let bad = client
        .delete_play(app.req(pb::DeletePlayRequest {
            user_id: String::new(),
            play_id: "42".into(),
        }))
        .await
        .expect_err("refused");
    assert_bad_fields(&bad, &["play_id"]);
    let unknown = client
        .delete_play(app.req(pb::DeletePlayRequest {
            user_id: String::new(),
            play_id: uuid::Uuid::now_v7().to_string(),
        }))
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    let clear = |r: pb::ClearHistoryRequest| {
        let mut client = app.client.clone();
        let request = app.req(r);
        async move { client.clear_history(request).await.expect_err("refused") }
    };
    let backwards = clear(pb::ClearHistoryRequest {
        since: Some(ts("2026-02-01T00:00:00Z")),
        before: Some(ts("2026-01-01T00:00:00Z")),
        track_id: "not-a-track".into(),
        ..Default::default()
    })
    .await;
    assert_bad_fields(&backwards, &["before", "track_id"]);
    let bad_track = clear(pb::ClearHistoryRequest {
        track_id: "not-a-track".into(),
        ..Default::default()
    })
    .await;
    assert_bad_fields(&bad_track, &["track_id"]);
    let long_source = clear(pb::ClearHistoryRequest {
        source: "s".repeat(51),
        ..Default::default()
    })
    .await;
    assert_bad_fields(&long_source, &["source"]);
    assert_eq!(
        history_ids(&app, Default::default()).await,
        vec![kept[0].id.clone()],
        "nothing refused deleted anything"
    );
}

async fn bad_notes_and_track_lists_are_refused(app: TestApp) {
    let t = track();
    let mut client = app.client.clone();
    for notes in ["n".repeat(1001), "a\0b".into()] {
        let status = client
            .like_track(app.req(pb::LikeTrackRequest {
                user_id: String::new(),
                track_id: t.clone(),
                notes: Some(notes),
            }))
            .await
            .expect_err("refused");
        assert_bad_fields(&status, &["notes"]);
    }
    let check = |track_ids: Vec<String>| pb::CheckLikedTracksRequest {
        user_id: String::new(),
        track_ids,
    };
    let liked = client
        .check_liked_tracks(app.req(check(vec![t.clone()])))
        .await
        .expect("checked");
    assert_eq!(
        liked.into_inner().liked,
        vec![false],
        "no refused like was written"
    );

    let too_many = client
        .check_liked_tracks(app.req(check((0..501).map(|_| track()).collect())))
        .await
        .expect_err("refused");
    assert_bad_fields(&too_many, &["track_ids"]);
    let one_bad = client
        .check_liked_tracks(app.req(check(vec![track(), "bad".into(), track()])))
        .await
        .expect_err("refused");
    assert_bad_fields(&one_bad, &["track_ids[1]"]);

    let update = client
        .update_liked_track(app.req(pb::UpdateLikedTrackRequest {
            user_id: String::new(),
            track_id: t.clone(),
            notes: "n".repeat(1001),
        }))
        .await
        .expect_err("refused");
    assert_bad_fields(&update, &["notes"]);
}

async fn page_tokens_of_another_listener_or_garbage_are_refused(app: TestApp) {
    let other = uuid::Uuid::new_v4();
    let mut client = app.client.clone();
    for _ in 0..3 {
        let like = pb::LikeTrackRequest {
            track_id: track(),
            ..Default::default()
        };
        client
            .like_track(with_token(like, &session_token(other)))
            .await
            .expect("liked");
    }
    let first = client
        .list_liked_tracks(with_token(
            pb::ListLikedTracksRequest {
                page_size: 1,
                ..Default::default()
            },
            &session_token(other),
        ))
        .await
        .expect("page")
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    for token in [first.next_page_token, "%%%".into(), "AAAA".into()] {
        let status = client
            .list_liked_tracks(app.req(pb::ListLikedTracksRequest {
                page_token: token,
                ..Default::default()
            }))
            .await
            .expect_err("refused");
        assert_bad_fields(&status, &["page_token"]);
    }
}

async fn bad_stats_requests_name_the_field(app: TestApp) {
    let mut client = app.client.clone();
    let cases = [
        (
            "time_zone",
            pb::GetLibraryStatsRequest {
                time_zone: "Mars/Base".into(),
                ..Default::default()
            },
        ),
        (
            "top_tracks_limit",
            pb::GetLibraryStatsRequest {
                top_tracks_limit: 101,
                ..Default::default()
            },
        ),
        (
            "until",
            pb::GetLibraryStatsRequest {
                since: Some(ts("2026-02-01T00:00:00Z")),
                until: Some(ts("2026-01-01T00:00:00Z")),
                ..Default::default()
            },
        ),
    ];
    for (field, request) in cases {
        let status = client
            .get_library_stats(app.req(request))
            .await
            .expect_err(field);
        assert_bad_fields(&status, &[field]);
        assert!(
            !status.message().to_lowercase().contains("sql"),
            "{}",
            status.message()
        );
    }
}

async fn the_widest_valid_time_range_is_answered(app: TestApp) {
    record(&app, vec![play(&track(), 30, "2026-01-01T00:00:00Z")]).await;
    // The whole protobuf Timestamp range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
    let since = Some(prost_types::Timestamp {
        seconds: -62_135_596_800,
        nanos: 0,
    });
    let until = Some(prost_types::Timestamp {
        seconds: 253_402_300_799,
        nanos: 999_999_999,
    });
    let listed = history(
        &app,
        pb::ListHistoryRequest {
            since,
            until,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(listed.expect("history answers").len(), 1);
    let mut client = app.client.clone();
    let stats = client
        .get_library_stats(app.req(pb::GetLibraryStatsRequest {
            since,
            until,
            time_zone: "Pacific/Kiritimati".into(),
            ..Default::default()
        }))
        .await
        .expect("stats answer")
        .into_inner();
    assert_eq!(stats.total_plays, 1);
    assert_eq!(
        stats.daily_activity.len(),
        366,
        "at most 366 days of activity"
    );
}

backend_tests! {
    the_widest_valid_time_range_is_answered,
    every_bad_play_field_is_named_and_nothing_is_written,
    the_limits_themselves_are_accepted,
    several_bad_fields_are_all_named_at_once,
    a_batch_must_hold_between_one_and_a_thousand_plays,
    bad_history_requests_name_the_field,
    bad_deletes_are_refused,
    bad_notes_and_track_lists_are_refused,
    page_tokens_of_another_listener_or_garbage_are_refused,
    bad_stats_requests_name_the_field,
}
