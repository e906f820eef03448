//! Library statistics and daily activity in the caller's time zone.
use library_service::pb;

use crate::{
    helpers::{play, record, track, ts},
    support::app::TestApp,
};

async fn stats(app: &TestApp, request: pb::GetLibraryStatsRequest) -> pb::LibraryStats {
    let mut client = app.client.clone();
    client
        .get_library_stats(app.req(request))
        .await
        .expect("stats")
        .into_inner()
}

fn daily(stats: &pb::LibraryStats) -> Vec<(String, u64, u64)> {
    stats
        .daily_activity
        .iter()
        .map(|d| (d.date.clone(), d.plays, d.listening_seconds))
        .collect()
}

async fn stats_count_plays_seconds_tracks_sources_and_likes(app: TestApp) {
    let (a, b, c) = (track(), track(), track());
    let mut plays = vec![
        play(&a, 100, "2026-07-01T10:00:00Z"),
        play(&a, 50, "2026-07-02T10:00:00Z"),
        play(&b, 300, "2026-07-03T10:00:00Z"),
        play(&b, 10, "2026-07-04T10:00:00Z"),
        play(&c, 30, "2026-07-05T10:00:00Z"),
    ];
    plays[0].completed = true;
    plays[2].completed = true;
    plays[0].source = "album".into();
    plays[1].source = "radio".into();
    plays[2].source = "album".into();
    record(&app, plays).await;
    let mut client = app.client.clone();
    client
        .like_track(app.req(pb::LikeTrackRequest {
            track_id: c.clone(),
            ..Default::default()
        }))
        .await
        .expect("liked");

    let s = stats(&app, pb::GetLibraryStatsRequest::default()).await;
    assert_eq!(s.user_id, app.user.to_string());
    assert_eq!(
        (s.total_plays, s.completed_plays, s.listening_seconds),
        (5, 2, 490)
    );
    assert_eq!((s.unique_tracks, s.liked_tracks), (3, 1));
    assert_eq!(s.first_played_at, Some(ts("2026-07-01T10:00:00Z")));
    assert_eq!(s.last_played_at, Some(ts("2026-07-05T10:00:00Z")));
    let top: Vec<_> = s
        .top_tracks
        .iter()
        .map(|t| (t.track_id.clone(), t.plays, t.listening_seconds))
        .collect();
    // a and b both have two plays; b listened longer, so it ranks first.
    assert_eq!(
        top,
        vec![(b.clone(), 2, 310), (a.clone(), 2, 150), (c.clone(), 1, 30)]
    );
    let sources: Vec<_> = s
        .plays_by_source
        .iter()
        .map(|x| (x.source.as_str(), x.plays))
        .collect();
    assert_eq!(sources, vec![("", 2), ("album", 2), ("radio", 1)]);
    assert_eq!(s.time_zone, "UTC");
    assert!(s.computed_at.is_some());

    let ranged = stats(
        &app,
        pb::GetLibraryStatsRequest {
            since: Some(ts("2026-07-02T00:00:00Z")),
            until: Some(ts("2026-07-04T00:00:00Z")),
            top_tracks_limit: 1,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (
            ranged.total_plays,
            ranged.listening_seconds,
            ranged.unique_tracks
        ),
        (2, 350, 2)
    );
    assert_eq!(ranged.top_tracks.len(), 1);
    assert_eq!(ranged.top_tracks[0].track_id, b);
    assert_eq!(
        daily(&ranged),
        vec![("2026-07-02".into(), 1, 50), ("2026-07-03".into(), 1, 300)]
    );
}

async fn daily_activity_follows_kolkatas_half_hour_offset(app: TestApp) {
    let t = track();
    // Kolkata is UTC+05:30: 18:29Z is still 23:59 on the 10th, 18:30Z is midnight on the 11th.
    record(
        &app,
        vec![
            play(&t, 60, "2026-08-10T18:29:00Z"),
            play(&t, 120, "2026-08-10T18:30:00Z"),
        ],
    )
    .await;
    let s = stats(
        &app,
        pb::GetLibraryStatsRequest {
            since: Some(ts("2026-08-09T18:30:00Z")),
            until: Some(ts("2026-08-11T18:30:00Z")),
            time_zone: "Asia/Kolkata".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(s.time_zone, "Asia/Kolkata");
    assert_eq!(
        daily(&s),
        vec![("2026-08-10".into(), 1, 60), ("2026-08-11".into(), 1, 120)]
    );
}

async fn daily_activity_follows_kathmandus_quarter_hour_offset(app: TestApp) {
    let t = track();
    // Kathmandu is UTC+05:45: 18:14Z is 23:59 on the 10th, 18:15Z is midnight on the 11th.
    record(
        &app,
        vec![
            play(&t, 60, "2026-08-10T18:14:59Z"),
            play(&t, 120, "2026-08-10T18:15:00Z"),
        ],
    )
    .await;
    let s = stats(
        &app,
        pb::GetLibraryStatsRequest {
            since: Some(ts("2026-08-09T18:15:00Z")),
            until: Some(ts("2026-08-11T18:15:00Z")),
            time_zone: "Asia/Kathmandu".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        daily(&s),
        vec![("2026-08-10".into(), 1, 60), ("2026-08-11".into(), 1, 120)]
    );
}

async fn daily_activity_follows_daylight_saving_changes(app: TestApp) {
    let t = track();
    // New York springs forward on 2026-03-08: EST (-05:00) before 07:00Z, EDT (-04:00) after.
    record(
        &app,
        vec![
            play(&t, 10, "2026-03-08T04:30:00Z"), // 23:30 EST on the 7th
            play(&t, 20, "2026-03-09T03:30:00Z"), // 23:30 EDT on the 8th
            play(&t, 40, "2026-03-09T04:30:00Z"), // 00:30 EDT on the 9th
        ],
    )
    .await;
    let s = stats(
        &app,
        pb::GetLibraryStatsRequest {
            since: Some(ts("2026-03-07T05:00:00Z")),
            until: Some(ts("2026-03-10T04:00:00Z")),
            time_zone: "America/New_York".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        daily(&s),
        vec![
            ("2026-03-07".into(), 1, 10),
            ("2026-03-08".into(), 1, 20),
            ("2026-03-09".into(), 1, 40)
        ]
    );
}

async fn daily_activity_defaults_to_the_last_thirty_days_with_zeros(app: TestApp) {
    let t = track();
    let now = jiff::Timestamp::now();
    let an_hour_ago = (now - jiff::SignedDuration::from_hours(1)).to_string();
    record(
        &app,
        vec![
            play(&t, 60, &an_hour_ago),
            play(&t, 60, "2020-01-01T00:00:00Z"),
        ],
    )
    .await;
    let s = stats(&app, pb::GetLibraryStatsRequest::default()).await;
    assert_eq!(s.total_plays, 2, "totals are all-time");
    assert_eq!(s.daily_activity.len(), 30);
    let today = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let hour_ago_day = (now - jiff::SignedDuration::from_hours(1))
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    assert_eq!(
        s.daily_activity.last().map(|d| d.date.clone()),
        Some(today.to_string())
    );
    let active: Vec<_> = s
        .daily_activity
        .iter()
        .filter(|d| d.plays > 0)
        .map(|d| d.date.clone())
        .collect();
    assert_eq!(active, vec![hour_ago_day.to_string()]);
}

async fn a_listener_without_plays_gets_zeros(app: TestApp) {
    let s = stats(&app, pb::GetLibraryStatsRequest::default()).await;
    assert_eq!(
        (s.total_plays, s.listening_seconds, s.unique_tracks),
        (0, 0, 0)
    );
    assert!(s.first_played_at.is_none() && s.last_played_at.is_none());
    assert!(s.top_tracks.is_empty() && s.plays_by_source.is_empty());
    assert!(s.daily_activity.iter().all(|d| d.plays == 0));
}

backend_tests! {
    stats_count_plays_seconds_tracks_sources_and_likes,
    daily_activity_follows_kolkatas_half_hour_offset,
    daily_activity_follows_kathmandus_quarter_hour_offset,
    daily_activity_follows_daylight_saving_changes,
    daily_activity_defaults_to_the_last_thirty_days_with_zeros,
    a_listener_without_plays_gets_zeros,
}
