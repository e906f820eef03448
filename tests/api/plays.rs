//! Recording and deleting plays.
use library_service::pb;
use tonic::Code;

use crate::{
    helpers::{history_ids, play, record, track, ts},
    support::app::{TestApp, service_token, session_token, with_token},
};

fn record_request(track_id: &str, request_id: &str) -> pb::RecordPlayRequest {
    pb::RecordPlayRequest {
        track_id: track_id.into(),
        played_for_seconds: 200,
        completed: true,
        source: "album".into(),
        request_id: request_id.into(),
        ..Default::default()
    }
}

async fn a_recorded_play_comes_back_in_canonical_form(app: TestApp) {
    let track = track();
    let mut client = app.client.clone();
    let response = client
        .record_play(app.req(record_request(&track.to_uppercase(), "")))
        .await
        .expect("recorded")
        .into_inner();
    assert!(!response.duplicate);
    let play = response.play.expect("play");
    assert_eq!(
        play.track_id, track,
        "ids come back lowercase and hyphenated"
    );
    assert_eq!(play.user_id, app.user.to_string());
    assert_eq!(
        uuid::Uuid::parse_str(&play.id)
            .expect("uuid id")
            .get_version_num(),
        7
    );
    assert_eq!(
        (
            play.played_for_seconds,
            play.completed,
            play.source.as_str()
        ),
        (200, true, "album")
    );
    let played_at = play.played_at.expect("played_at defaults to now");
    let now = crate::support::app::now_secs();
    assert!(
        (played_at.seconds - now).abs() <= 5,
        "played_at {played_at:?} is not now ({now})"
    );
    assert_eq!(history_ids(&app, Default::default()).await, vec![play.id]);
}

async fn a_retry_with_the_same_request_id_returns_the_first_play_and_writes_nothing(app: TestApp) {
    let mut client = app.client.clone();
    let first = client
        .record_play(app.req(record_request(&track(), "retry-1")))
        .await
        .expect("first")
        .into_inner();
    // A retry whose body differs still names the same operation: the first result wins.
    let again = client
        .record_play(app.req(record_request(&track(), "retry-1")))
        .await
        .expect("retry")
        .into_inner();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.play, first.play);
    assert_eq!(history_ids(&app, Default::default()).await.len(), 1);
}

async fn request_ids_are_scoped_to_each_listener(app: TestApp) {
    let other = uuid::Uuid::new_v4();
    let mut client = app.client.clone();
    let mine = client
        .record_play(app.req(record_request(&track(), "shared-key")))
        .await
        .expect("mine");
    let theirs = client
        .record_play(with_token(
            record_request(&track(), "shared-key"),
            &session_token(other),
        ))
        .await
        .expect("theirs");
    assert!(!mine.into_inner().duplicate);
    assert!(!theirs.into_inner().duplicate);
}

async fn record_plays_stores_the_valid_items_and_reports_each_one_in_order(app: TestApp) {
    let t = track();
    let mut keyed = play(&t, 30, "2026-01-01T10:00:00Z");
    keyed.request_id = "batch-a".into();
    let mut bad_track = play(&t, 30, "2026-01-01T10:01:00Z");
    bad_track.track_id = "not-a-uuid".into();
    let mut same_key = play(&t, 99, "2026-01-01T10:02:00Z");
    same_key.request_id = "batch-a".into();
    let mut long_source = play(&t, 30, "2026-01-01T10:03:00Z");
    long_source.source = "x".repeat(51);
    let plain = play(&t, 40, "2026-01-01T10:04:00Z");

    let mut client = app.client.clone();
    let response = client
        .record_plays(app.req(pb::RecordPlaysRequest {
            user_id: String::new(),
            plays: vec![keyed, bad_track, same_key, long_source, plain],
        }))
        .await
        .expect("batch answered")
        .into_inner();
    let indexes: Vec<u32> = response.results.iter().map(|r| r.index).collect();
    assert_eq!(indexes, vec![0, 1, 2, 3, 4]);
    let r = &response.results;
    assert!(r[0].play.is_some() && !r[0].duplicate && r[0].violations.is_empty());
    assert_eq!(
        r[1].violations
            .iter()
            .map(|v| v.field.as_str())
            .collect::<Vec<_>>(),
        vec!["plays[1].track_id"]
    );
    assert!(r[1].play.is_none());
    assert!(
        r[2].duplicate,
        "a repeated request_id within one batch is a duplicate"
    );
    assert_eq!(r[2].play, r[0].play);
    assert_eq!(
        r[3].violations
            .iter()
            .map(|v| v.field.as_str())
            .collect::<Vec<_>>(),
        vec!["plays[3].source"]
    );
    assert!(r[4].play.is_some());
    assert_eq!(
        (
            response.recorded_count,
            response.duplicate_count,
            response.rejected_count
        ),
        (2, 1, 2)
    );
    assert_eq!(history_ids(&app, Default::default()).await.len(), 2);
}

async fn a_deleted_play_is_gone_and_deleting_it_again_is_not_found(app: TestApp) {
    let plays = record(
        &app,
        vec![
            play(&track(), 10, "2026-02-01T00:00:00Z"),
            play(&track(), 10, "2026-02-02T00:00:00Z"),
        ],
    )
    .await;
    let mut client = app.client.clone();
    let delete = || pb::DeletePlayRequest {
        user_id: String::new(),
        play_id: plays[0].id.clone(),
    };
    client
        .delete_play(app.req(delete()))
        .await
        .expect("deleted");
    assert_eq!(
        history_ids(&app, Default::default()).await,
        vec![plays[1].id.clone()]
    );
    let again = client
        .delete_play(app.req(delete()))
        .await
        .expect_err("already gone");
    assert_eq!(again.code(), Code::NotFound);
}

async fn a_listener_cannot_delete_another_listeners_play(app: TestApp) {
    let plays = record(&app, vec![play(&track(), 10, "2026-02-01T00:00:00Z")]).await;
    let stranger = uuid::Uuid::new_v4();
    let mut client = app.client.clone();
    let status = client
        .delete_play(with_token(
            pb::DeletePlayRequest {
                user_id: String::new(),
                play_id: plays[0].id.clone(),
            },
            &session_token(stranger),
        ))
        .await
        .expect_err("not theirs");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(history_ids(&app, Default::default()).await.len(), 1);
}

async fn clearing_history_counts_on_a_dry_run_and_deletes_only_older_plays(app: TestApp) {
    let t = track();
    record(
        &app,
        vec![
            play(&t, 10, "2026-01-01T00:00:00Z"),
            play(&t, 10, "2026-01-02T00:00:00Z"),
            play(&t, 10, "2026-01-03T00:00:00Z"),
        ],
    )
    .await;
    let mut client = app.client.clone();
    let clear = |dry_run| pb::ClearHistoryRequest {
        before: Some(ts("2026-01-03T00:00:00Z")),
        dry_run,
        ..Default::default()
    };
    let dry = client
        .clear_history(app.req(clear(true)))
        .await
        .expect("dry run")
        .into_inner();
    assert_eq!((dry.deleted_count, dry.dry_run), (2, true));
    assert_eq!(
        history_ids(&app, Default::default()).await.len(),
        3,
        "a dry run deletes nothing"
    );
    let done = client
        .clear_history(app.req(clear(false)))
        .await
        .expect("cleared")
        .into_inner();
    assert_eq!(done.deleted_count, 2);
    assert_eq!(history_ids(&app, Default::default()).await.len(), 1);
    let all = client
        .clear_history(app.req(pb::ClearHistoryRequest::default()))
        .await
        .expect("cleared all")
        .into_inner();
    assert_eq!(all.deleted_count, 1);
    assert!(history_ids(&app, Default::default()).await.is_empty());
}

async fn clearing_history_by_range_track_and_source_deletes_only_plays_matching_all(app: TestApp) {
    let (a, b) = (track(), track());
    let at = |track: &str, source: &str, when: &str| pb::NewPlay {
        source: source.into(),
        ..play(track, 10, when)
    };
    let stored = record(
        &app,
        vec![
            at(&a, "radio", "2026-01-01T00:00:00Z"),
            at(&a, "radio", "2026-01-02T00:00:00Z"),
            at(&a, "radio", "2026-01-03T00:00:00Z"),
            at(&a, "album", "2026-01-02T00:00:00Z"),
            at(&b, "radio", "2026-01-02T00:00:00Z"),
        ],
    )
    .await;
    let mut client = app.client.clone();
    let clear = |dry_run| pb::ClearHistoryRequest {
        since: Some(ts("2026-01-02T00:00:00Z")),
        before: Some(ts("2026-01-03T00:00:00Z")),
        track_id: a.clone(),
        source: "radio".into(),
        dry_run,
        ..Default::default()
    };
    let dry = client
        .clear_history(app.req(clear(true)))
        .await
        .expect("dry run")
        .into_inner();
    assert_eq!((dry.deleted_count, dry.dry_run), (1, true));
    assert_eq!(history_ids(&app, Default::default()).await.len(), 5);
    let done = client
        .clear_history(app.req(clear(false)))
        .await
        .expect("cleared")
        .into_inner();
    assert_eq!(done.deleted_count, 1);
    let mut left = history_ids(&app, Default::default()).await;
    let mut expected: Vec<String> = stored
        .iter()
        .filter(|p| p.id != stored[1].id)
        .map(|p| p.id.clone())
        .collect();
    left.sort();
    expected.sort();
    assert_eq!(left, expected, "only a's radio play of 2 January went");

    // One condition alone: every play of track a, whatever its source and time.
    let of_a = client
        .clear_history(app.req(pb::ClearHistoryRequest {
            track_id: a.to_uppercase(),
            ..Default::default()
        }))
        .await
        .expect("cleared a")
        .into_inner();
    assert_eq!(of_a.deleted_count, 3);
    let stats = client
        .get_library_stats(app.req(pb::GetLibraryStatsRequest::default()))
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(stats.total_plays, 1, "the statistics count only b's play");
}

async fn twenty_concurrent_retries_store_one_play(app: TestApp) {
    let request = record_request(&track(), "concurrent-retry");
    let calls = (0..20).map(|_| {
        let mut client = app.client.clone();
        let request = app.req(request.clone());
        tokio::spawn(async move { client.record_play(request).await.map(|r| r.into_inner()) })
    });
    let mut ids = Vec::new();
    let mut fresh = 0;
    for call in calls.collect::<Vec<_>>() {
        let response = call.await.expect("task").expect("every retry succeeds");
        fresh += usize::from(!response.duplicate);
        ids.push(response.play.expect("play").id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry returns the same play");
    assert_eq!(fresh, 1, "exactly one call stored it");
    assert_eq!(history_ids(&app, Default::default()).await.len(), 1);
}

async fn twenty_concurrent_retries_of_a_batch_store_each_play_once(app: TestApp) {
    let t = track();
    let batch: Vec<pb::NewPlay> = (0..50)
        .map(|i| {
            let mut p = play(&t, i, &format!("2026-02-01T10:{i:02}:00Z"));
            p.request_id = format!("offline-sync-{i}");
            p
        })
        .collect();
    // Half the retries send the batch in reverse order, as a client that re-sorts would.
    let calls: Vec<_> = (0..20)
        .map(|n| {
            let mut plays = batch.clone();
            if n % 2 == 1 {
                plays.reverse();
            }
            let mut client = app.client.clone();
            let request = app.req(pb::RecordPlaysRequest {
                user_id: String::new(),
                plays,
            });
            tokio::spawn(async move { client.record_plays(request).await.map(|r| r.into_inner()) })
        })
        .collect();
    let mut ids_by_key: std::collections::HashMap<String, std::collections::HashSet<String>> =
        Default::default();
    let (mut fresh, mut duplicates) = (0, 0);
    for (n, call) in calls.into_iter().enumerate() {
        let response = call.await.expect("task").expect("every retry succeeds");
        fresh += response.recorded_count;
        duplicates += response.duplicate_count;
        for (i, result) in response.results.into_iter().enumerate() {
            let key = if n % 2 == 1 { 49 - i } else { i };
            ids_by_key
                .entry(format!("offline-sync-{key}"))
                .or_default()
                .insert(result.play.expect("play").id);
        }
    }
    assert_eq!((fresh, duplicates), (50, 950));
    assert!(
        ids_by_key.values().all(|ids| ids.len() == 1),
        "every retry of an item returns the same play"
    );
    assert_eq!(history_ids(&app, Default::default()).await.len(), 50);
}

async fn a_service_records_plays_for_a_listener_with_any_user(app: TestApp) {
    let player = service_token("player-service", "library:write library:any_user");
    let mut request = record_request(&track(), "");
    request.user_id = app.user.to_string();
    let mut client = app.client.clone();
    let play = client
        .record_play(with_token(request, &player))
        .await
        .expect("recorded")
        .into_inner()
        .play;
    assert_eq!(
        history_ids(&app, Default::default()).await,
        vec![play.expect("play").id]
    );
}

async fn many_concurrent_writers_all_succeed(app: TestApp) {
    // SQLite has one writer at a time: concurrent calls must queue, never see "database is locked".
    let writers = (0..16).map(|w| {
        let mut client = app.client.clone();
        let requests: Vec<_> = (0..10)
            .map(|i| app.req(record_request(&track(), &format!("writer-{w}-{i}"))))
            .collect();
        let likes: Vec<_> = (0..5)
            .map(|_| {
                app.req(pb::LikeTrackRequest {
                    track_id: track(),
                    ..Default::default()
                })
            })
            .collect();
        tokio::spawn(async move {
            for request in requests {
                client.record_play(request).await?;
            }
            for like in likes {
                client.like_track(like).await?;
            }
            Ok::<_, tonic::Status>(())
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer
            .await
            .expect("task")
            .expect("every concurrent write succeeds");
    }
    assert_eq!(history_ids(&app, Default::default()).await.len(), 160);
    let mut client = app.client.clone();
    let likes = client
        .list_liked_tracks(app.req(pb::ListLikedTracksRequest::default()))
        .await
        .expect("likes")
        .into_inner();
    assert_eq!(likes.total_size, 80);
}

/// A full call (PostgreSQL writes it as two parts committing side by side) is answered play by
/// play in the call's order, and its retry stores nothing and returns the same plays.
async fn a_full_batch_is_answered_in_order_and_its_retry_stores_nothing(app: TestApp) {
    let sent: Vec<pb::NewPlay> = (0..1000)
        .map(|i| pb::NewPlay {
            request_id: format!("sync-{i}"),
            ..play(&track(), 30 + i, "2026-11-01T08:00:00Z")
        })
        .collect();
    let stored = record(&app, sent.clone()).await;
    let tracks = |plays: &[pb::Play]| plays.iter().map(|p| p.track_id.clone()).collect::<Vec<_>>();
    let sent_tracks: Vec<String> = sent.iter().map(|p| p.track_id.clone()).collect();
    assert_eq!(tracks(&stored), sent_tracks);
    let seconds: Vec<u32> = stored.iter().map(|p| p.played_for_seconds).collect();
    assert_eq!(seconds, (30..1030).collect::<Vec<_>>());

    let mut client = app.client.clone();
    let retry = client
        .record_plays(app.req(pb::RecordPlaysRequest {
            user_id: String::new(),
            plays: sent,
        }))
        .await
        .expect("retried")
        .into_inner();
    assert_eq!((retry.recorded_count, retry.duplicate_count), (0, 1000));
    let again: Vec<pb::Play> = retry
        .results
        .into_iter()
        .map(|r| r.play.expect("the first play"))
        .collect();
    assert_eq!(again, stored, "the retry returns the plays first stored");
    assert_eq!(history_ids(&app, Default::default()).await.len(), 1000);
}

backend_tests! {
    a_full_batch_is_answered_in_order_and_its_retry_stores_nothing,
    many_concurrent_writers_all_succeed,
    a_recorded_play_comes_back_in_canonical_form,
    a_retry_with_the_same_request_id_returns_the_first_play_and_writes_nothing,
    request_ids_are_scoped_to_each_listener,
    record_plays_stores_the_valid_items_and_reports_each_one_in_order,
    a_deleted_play_is_gone_and_deleting_it_again_is_not_found,
    a_listener_cannot_delete_another_listeners_play,
    clearing_history_counts_on_a_dry_run_and_deletes_only_older_plays,
    clearing_history_by_range_track_and_source_deletes_only_plays_matching_all,
    twenty_concurrent_retries_store_one_play,
    twenty_concurrent_retries_of_a_batch_store_each_play_once,
    a_service_records_plays_for_a_listener_with_any_user,
}
