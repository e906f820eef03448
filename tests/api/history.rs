//! Streaming history: order, filters, limits and exact resumption.
use library_service::pb::{self, HistoryOrder};

use crate::{
    helpers::{history, history_ids, play, record, track, ts},
    support::app::TestApp,
};

fn oldest_first() -> pb::ListHistoryRequest {
    pb::ListHistoryRequest {
        order: HistoryOrder::OldestFirst as i32,
        ..Default::default()
    }
}

async fn history_is_newest_first_by_default_and_oldest_first_on_request(app: TestApp) {
    let t = track();
    let plays = record(
        &app,
        vec![
            play(&t, 1, "2026-03-02T00:00:00Z"),
            play(&t, 2, "2026-03-01T00:00:00Z"),
            play(&t, 3, "2026-03-03T00:00:00Z"),
        ],
    )
    .await;
    let ids = |order: [usize; 3]| {
        order
            .iter()
            .map(|&i| plays[i].id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(history_ids(&app, Default::default()).await, ids([2, 0, 1]));
    assert_eq!(history_ids(&app, oldest_first()).await, ids([1, 0, 2]));
}

/// Pages through a listing `page` plays at a time, resuming from the last cursor each time.
async fn page_through(app: &TestApp, base: pb::ListHistoryRequest, page: u32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let request = pb::ListHistoryRequest {
            limit: page,
            after: after.clone(),
            ..base.clone()
        };
        let entries = history(app, request).await.expect("page streams");
        assert!(entries.len() <= page as usize, "limit is honoured");
        let Some(last) = entries.last() else { break };
        after = last.cursor.clone();
        seen.extend(entries.into_iter().map(|e| e.play.expect("play").id));
    }
    seen
}

async fn a_cursor_resumes_exactly_when_hundreds_of_plays_share_one_second(app: TestApp) {
    let t = track();
    let same_second: Vec<_> = (0..300)
        .map(|i| play(&t, i, "2026-04-01T12:00:00Z"))
        .collect();
    record(&app, same_second).await;
    record(
        &app,
        vec![
            play(&t, 1, "2026-04-01T11:59:59Z"),
            play(&t, 1, "2026-04-01T12:00:01Z"),
        ],
    )
    .await;

    for base in [pb::ListHistoryRequest::default(), oldest_first()] {
        let all = history_ids(&app, base.clone()).await;
        assert_eq!(all.len(), 302);
        let paged = page_through(&app, base, 7).await;
        assert_eq!(
            paged, all,
            "paging by cursor neither skips nor repeats a play"
        );
    }
}

async fn a_stream_longer_than_one_database_page_carries_every_play(app: TestApp) {
    let t = track();
    for chunk in 0..2 {
        let plays = (0..650)
            .map(|i| play(&t, i, &format!("2026-05-0{}T00:00:00Z", chunk + 1)))
            .collect();
        record(&app, plays).await;
    }
    let ids = history_ids(&app, Default::default()).await;
    assert_eq!(ids.len(), 1300);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 1300);
    let limited = history_ids(
        &app,
        pb::ListHistoryRequest {
            limit: 777,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(limited, ids[..777]);
}

async fn history_filters_by_time_track_source_and_completion(app: TestApp) {
    let (a, b) = (track(), track());
    let mut radio = play(&a, 10, "2026-06-01T10:00:00Z");
    radio.source = "radio".into();
    let mut done = play(&b, 20, "2026-06-02T10:00:00Z");
    done.completed = true;
    done.source = "album".into();
    let late = play(&a, 30, "2026-06-03T10:00:00Z");
    let plays = record(&app, vec![radio, done, late]).await;
    let ids = |idx: &[usize]| idx.iter().map(|&i| plays[i].id.clone()).collect::<Vec<_>>();

    let by_time = pb::ListHistoryRequest {
        since: Some(ts("2026-06-02T10:00:00Z")),
        until: Some(ts("2026-06-03T10:00:00Z")),
        ..Default::default()
    };
    assert_eq!(
        history_ids(&app, by_time).await,
        ids(&[1]),
        "since is inclusive, until exclusive"
    );
    let by_track = pb::ListHistoryRequest {
        track_id: a.clone(),
        ..Default::default()
    };
    assert_eq!(history_ids(&app, by_track).await, ids(&[2, 0]));
    let by_source = pb::ListHistoryRequest {
        source: "radio".into(),
        ..Default::default()
    };
    assert_eq!(history_ids(&app, by_source).await, ids(&[0]));
    let completed = pb::ListHistoryRequest {
        completed_only: true,
        ..Default::default()
    };
    assert_eq!(history_ids(&app, completed).await, ids(&[1]));
    let combined = pb::ListHistoryRequest {
        track_id: a,
        since: Some(ts("2026-06-02T00:00:00Z")),
        ..Default::default()
    };
    assert_eq!(history_ids(&app, combined).await, ids(&[2]));
}

async fn each_listener_sees_only_their_own_history(app: TestApp) {
    record(&app, vec![play(&track(), 10, "2026-06-01T10:00:00Z")]).await;
    let other = crate::support::app::session_token(uuid::Uuid::new_v4());
    let mut client = app.client.clone();
    let mut stream = client
        .list_history(crate::support::app::with_token(
            pb::ListHistoryRequest::default(),
            &other,
        ))
        .await
        .expect("listing")
        .into_inner();
    assert!(
        stream
            .message()
            .await
            .expect("stream ends cleanly")
            .is_none()
    );
}

backend_tests! {
    history_is_newest_first_by_default_and_oldest_first_on_request,
    a_cursor_resumes_exactly_when_hundreds_of_plays_share_one_second,
    a_stream_longer_than_one_database_page_carries_every_play,
    history_filters_by_time_track_source_and_completion,
    each_listener_sees_only_their_own_history,
}
