//! What counts as a play, play counts, top tracks by period and the listening patterns, through
//! small histories whose answers are written out by hand; and every bad request of those calls.
use crate::{
    helpers::{assert_bad_fields, play, record, track, ts},
    support::{
        app::{TestApp, session_token, with_token},
        db,
    },
};
use library_service::{
    config::{CountingArgs, ServeArgs},
    pb,
};

fn timed(
    track: &str,
    seconds: u32,
    duration: Option<u32>,
    completed: bool,
    at: &str,
) -> pb::NewPlay {
    pb::NewPlay {
        completed,
        track_duration_seconds: duration,
        ..play(track, seconds, at)
    }
}

async fn the_server_decides_which_plays_count(app: TestApp) {
    let t = track();
    let cases = [
        // (played, duration, completed, counts)
        (240, None, false, true),
        (239, None, false, false),
        (5, None, true, true),
        (30, Some(60), false, true),
        (29, Some(40), false, false),
        (30, Some(61), false, false),
        (31, Some(61), false, true),
        (240, Some(3600), false, true),
        (239, Some(3600), false, false),
    ];
    let plays: Vec<pb::NewPlay> = cases
        .iter()
        .enumerate()
        .map(|(i, &(seconds, duration, completed, _))| {
            timed(
                &t,
                seconds,
                duration,
                completed,
                &format!("2026-03-0{}T10:00:00Z", i + 1),
            )
        })
        .collect();
    let stored = record(&app, plays).await;
    let counted: Vec<bool> = stored.iter().map(|p| p.counted).collect();
    let expected: Vec<bool> = cases.iter().map(|c| c.3).collect();
    assert_eq!(counted, expected);
    assert_eq!(stored[3].track_duration_seconds, 60);

    let mut client = app.client.clone();
    let stats = client
        .get_library_stats(app.req(pb::GetLibraryStatsRequest::default()))
        .await
        .expect("stats")
        .into_inner();
    let n = expected.iter().filter(|c| **c).count() as u64;
    assert_eq!(
        (stats.total_plays, stats.counted_plays, stats.skipped_plays),
        (9, n, 9 - n)
    );
}

async fn thresholds_are_settings_read_when_a_play_is_written(db: db::TestDb) {
    let serve = ServeArgs {
        counting: CountingArgs {
            count_after_seconds: 60,
            count_min_seconds: 10,
            count_fraction_percent: 90,
        },
        ..ServeArgs::default()
    };
    let app = TestApp::spawn_with(db, serve).await;
    let t = track();
    let stored = record(
        &app,
        vec![
            timed(&t, 60, None, false, "2026-03-01T10:00:00Z"),
            timed(&t, 45, Some(50), false, "2026-03-02T10:00:00Z"),
            timed(&t, 44, Some(50), false, "2026-03-03T10:00:00Z"),
            timed(&t, 9, Some(10), false, "2026-03-04T10:00:00Z"),
        ],
    )
    .await;
    let counted: Vec<bool> = stored.iter().map(|p| p.counted).collect();
    assert_eq!(counted, [true, true, false, false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_are_settings_read_when_a_play_is_written_on_sqlite() {
    thresholds_are_settings_read_when_a_play_is_written(db::sqlite()).await;
}

async fn play_counts_answer_each_id_in_request_order(app: TestApp) {
    let (a, b, never) = (track(), track(), track());
    record(
        &app,
        vec![
            timed(&a, 300, None, false, "2026-03-01T10:00:00Z"),
            timed(&a, 20, Some(200), false, "2026-03-05T10:00:00Z"),
            timed(&b, 100, Some(180), false, "2026-03-07T10:00:00Z"),
        ],
    )
    .await;
    let mut client = app.client.clone();
    client
        .like_track(app.req(pb::LikeTrackRequest {
            track_id: b.clone(),
            ..Default::default()
        }))
        .await
        .expect("liked");
    let ids = vec![b.to_uppercase(), a.clone(), never.clone(), a.clone()];
    let counts = client
        .get_track_play_counts(app.req(pb::GetTrackPlayCountsRequest {
            track_ids: ids,
            ..Default::default()
        }))
        .await
        .expect("counts")
        .into_inner()
        .tracks;
    let shown: Vec<(String, u64, u64, u64, bool)> = counts
        .iter()
        .map(|t| {
            (
                t.track_id.clone(),
                t.plays,
                t.counted_plays,
                t.listening_seconds,
                t.liked,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (b.clone(), 1, 1, 100, true),
            (a.clone(), 2, 1, 320, false),
            (never.clone(), 0, 0, 0, false),
            (a.clone(), 2, 1, 320, false),
        ]
    );
    assert_eq!(counts[1].first_played_at, Some(ts("2026-03-01T10:00:00Z")));
    assert_eq!(counts[1].last_played_at, Some(ts("2026-03-05T10:00:00Z")));
    assert_eq!(
        (counts[2].first_played_at, counts[2].last_played_at),
        (None, None)
    );

    // Within a range: only the plays in it.
    let ranged = client
        .get_track_play_counts(app.req(pb::GetTrackPlayCountsRequest {
            track_ids: vec![a.clone()],
            since: Some(ts("2026-03-02T00:00:00Z")),
            until: Some(ts("2026-03-06T00:00:00Z")),
            ..Default::default()
        }))
        .await
        .expect("counts")
        .into_inner()
        .tracks;
    assert_eq!((ranged[0].plays, ranged[0].counted_plays), (1, 0));
    assert_eq!(ranged[0].first_played_at, Some(ts("2026-03-05T10:00:00Z")));
}

async fn top_tracks_of_a_range_rank_and_move(app: TestApp) {
    let (a, b, c, d) = (track(), track(), track(), track());
    let week = |day: u32| format!("2026-03-{day:02}T12:00:00Z");
    let mut plays = Vec::new();
    // The week before (2026-03-02..09): a twice, b once, d once but shorter.
    plays.extend([
        timed(&a, 300, None, false, &week(3)),
        timed(&a, 300, None, false, &week(4)),
    ]);
    plays.push(timed(&b, 300, None, false, &week(5)));
    plays.push(timed(&d, 250, None, false, &week(6)));
    // The week ranked (2026-03-09..16): b three times, a once, c (new) twice, d skipped only.
    plays.extend((10..13).map(|day| timed(&b, 300, None, false, &week(day))));
    plays.push(timed(&a, 300, None, false, &week(13)));
    plays.extend([
        timed(&c, 300, None, false, &week(14)),
        timed(&c, 300, None, false, &week(15)),
    ]);
    plays.push(timed(&d, 10, None, false, &week(15)));
    record(&app, plays).await;

    let mut client = app.client.clone();
    let request = |page_token: String| pb::GetTopTracksRequest {
        since: Some(ts("2026-03-09T00:00:00Z")),
        until: Some(ts("2026-03-16T00:00:00Z")),
        page_size: 3,
        page_token,
        ..Default::default()
    };
    let first = client
        .get_top_tracks(app.req(request(String::new())))
        .await
        .expect("top tracks")
        .into_inner();
    let second = client
        .get_top_tracks(app.req(request(first.next_page_token.clone())))
        .await
        .expect("the next page")
        .into_inner();
    assert!(second.next_page_token.is_empty());
    assert_eq!((first.total_size, second.total_size), (4, 4));
    assert_eq!(
        first.previous_period_start,
        Some(ts("2026-03-02T00:00:00Z"))
    );
    let shown: Vec<(String, u32, u32, u64, bool)> = first
        .tracks
        .iter()
        .chain(&second.tracks)
        .map(|t| {
            (
                t.track_id.clone(),
                t.rank,
                t.previous_rank,
                t.counted_plays,
                t.new_in_period,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (b.clone(), 1, 2, 3, false),
            (c.clone(), 2, 0, 2, true),
            (a.clone(), 3, 1, 1, false),
            (d.clone(), 4, 3, 0, false),
        ]
    );
}

async fn bad_figure_requests_name_each_field(app: TestApp) {
    let mut client = app.client.clone();
    let bucket = client
        .get_library_stats(app.req(pb::GetLibraryStatsRequest {
            activity_bucket: 99,
            time_zone: "Mars/Base".into(),
            ..Default::default()
        }))
        .await
        .expect_err("refused");
    assert_bad_fields(&bucket, &["time_zone", "activity_bucket"]);

    let counts = |track_ids: Vec<String>, since: Option<&str>, until: Option<&str>| {
        pb::GetTrackPlayCountsRequest {
            track_ids,
            since: since.map(ts),
            until: until.map(ts),
            ..Default::default()
        }
    };
    let cases = [
        (counts(Vec::new(), None, None), vec!["track_ids"]),
        (
            counts((0..501).map(|_| track()).collect(), None, None),
            vec!["track_ids"],
        ),
        (
            counts(vec![track(), "not-a-uuid".into()], None, None),
            vec!["track_ids[1]"],
        ),
        (
            counts(
                vec!["x".into()],
                Some("2026-02-01T00:00:00Z"),
                Some("2026-02-01T00:00:00Z"),
            ),
            vec!["track_ids[0]", "until"],
        ),
    ];
    for (request, fields) in cases {
        let status = client
            .get_track_play_counts(app.req(request))
            .await
            .expect_err("refused");
        assert_bad_fields(&status, &fields);
    }
    // Exactly 500 is fine, repeats included.
    let t = track();
    let answer = client
        .get_track_play_counts(app.req(counts(vec![t; 500], None, None)))
        .await
        .expect("500 ids")
        .into_inner();
    assert_eq!(answer.tracks.len(), 500);

    let top = |period: i32, since: Option<&str>, until: Option<&str>| pb::GetTopTracksRequest {
        period,
        since: since.map(ts),
        until: until.map(ts),
        ..Default::default()
    };
    let week = pb::TopTracksPeriod::Week as i32;
    let cases = [
        (top(99, None, None), vec!["period"]),
        (top(0, None, None), vec!["since", "until"]),
        (
            top(
                0,
                Some("2026-03-02T00:00:00Z"),
                Some("2026-03-01T00:00:00Z"),
            ),
            vec!["until"],
        ),
        (
            pb::GetTopTracksRequest {
                time_zone: "Nowhere/Else".into(),
                page_token: "%%%garbage".into(),
                ..top(week, None, None)
            },
            vec!["time_zone", "page_token"],
        ),
    ];
    for (request, fields) in cases {
        let status = client
            .get_top_tracks(app.req(request))
            .await
            .expect_err("refused");
        assert_bad_fields(&status, &fields);
    }
}

/// A page token continues only its own listing: not another listener's, period's or zone's.
async fn top_track_tokens_belong_to_their_listing(app: TestApp) {
    let other = uuid::Uuid::new_v4();
    let now = crate::support::app::now_secs();
    let at = |s: i64| prost_types::Timestamp {
        seconds: s,
        nanos: 0,
    };
    let plays: Vec<pb::NewPlay> = (0..3)
        .map(|i| pb::NewPlay {
            played_at: Some(at(now - 60 - i)),
            ..play(&track(), 300, "2026-01-01T00:00:00Z")
        })
        .collect();
    let mut client = app.client.clone();
    for token in [session_token(other), String::new()] {
        let request = pb::RecordPlaysRequest {
            plays: plays.clone(),
            ..Default::default()
        };
        let request = if token.is_empty() {
            app.req(request)
        } else {
            with_token(request, &token)
        };
        client.record_plays(request).await.expect("recorded");
    }
    let week = pb::TopTracksPeriod::Week as i32;
    let mine = client
        .get_top_tracks(app.req(pb::GetTopTracksRequest {
            period: week,
            page_size: 1,
            ..Default::default()
        }))
        .await
        .expect("page")
        .into_inner();
    assert!(!mine.next_page_token.is_empty());
    let theirs = client
        .get_top_tracks(with_token(
            pb::GetTopTracksRequest {
                period: week,
                page_size: 1,
                ..Default::default()
            },
            &session_token(other),
        ))
        .await
        .expect("page")
        .into_inner();
    let continue_with =
        |token: &str, period: i32, periods_ago: u32, zone: &str| pb::GetTopTracksRequest {
            period,
            periods_ago,
            time_zone: zone.into(),
            page_token: token.into(),
            ..Default::default()
        };
    for request in [
        continue_with(&theirs.next_page_token, week, 0, ""),
        continue_with(
            &mine.next_page_token,
            pb::TopTracksPeriod::Year as i32,
            0,
            "",
        ),
        continue_with(&mine.next_page_token, week, 1, ""),
        continue_with(&mine.next_page_token, week, 0, "Asia/Kathmandu"),
    ] {
        let status = client
            .get_top_tracks(app.req(request))
            .await
            .expect_err("refused");
        assert_bad_fields(&status, &["page_token"]);
    }
    // Its own listing continues; an oversized page size is served as the largest page.
    let rest = client
        .get_top_tracks(app.req(pb::GetTopTracksRequest {
            page_size: 100_000,
            ..continue_with(&mine.next_page_token, week, 0, "")
        }))
        .await
        .expect("the rest")
        .into_inner();
    assert_eq!(rest.tracks.len(), 2);
    assert_eq!(rest.tracks[0].rank, 2);
}

async fn a_bad_track_duration_is_named(app: TestApp) {
    let mut client = app.client.clone();
    for duration in [0, 86_401] {
        let status = client
            .record_play(app.req(pb::RecordPlayRequest {
                track_id: track(),
                played_for_seconds: 10,
                track_duration_seconds: Some(duration),
                ..Default::default()
            }))
            .await
            .expect_err("refused");
        assert_bad_fields(&status, &["track_duration_seconds"]);
    }
    let response = client
        .record_plays(app.req(pb::RecordPlaysRequest {
            plays: vec![
                play(&track(), 10, "2026-01-01T00:00:00Z"),
                pb::NewPlay {
                    track_duration_seconds: Some(0),
                    ..play(&track(), 10, "2026-01-01T00:00:00Z")
                },
            ],
            ..Default::default()
        }))
        .await
        .expect("a batch answers per play")
        .into_inner();
    let fields: Vec<&str> = response.results[1]
        .violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["plays[1].track_duration_seconds"]);
    assert_eq!((response.recorded_count, response.rejected_count), (1, 1));
}

backend_tests! {
    the_server_decides_which_plays_count,
    play_counts_answer_each_id_in_request_order,
    top_tracks_of_a_range_rank_and_move,
    bad_figure_requests_name_each_field,
    top_track_tokens_belong_to_their_listing,
    a_bad_track_duration_is_named,
}
