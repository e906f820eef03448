//! The statistics come from aggregates and period snapshots kept with every write; after any mix
//! of every write path (record, batch, import, delete, clear, purge, erasure of a user and of a
//! track), with snapshots built and then invalidated on the way, every figure must equal a
//! recount from the listed history, in UTC, Asia/Kathmandu and America/New_York across its DST
//! changes, and in America/St_Johns where a change falls off the quarter hour.
use library_service::pb::{self, library_admin_service_client::LibraryAdminServiceClient};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use tonic::Request;

use crate::{
    helpers::{history, record, track},
    recount::{
        Bucket, P, Range, calendar_period, check_stats, counts, expected_count, expected_top,
        micros, proto_time, zone,
    },
    support::app::{TestApp, now_secs, service_token, session_token, with_token},
};

const DAY: i64 = 86_400;
const ZONES: [&str; 3] = ["UTC", "Asia/Kathmandu", "America/New_York"];

fn time(rfc3339: &str) -> i64 {
    let t: jiff::Timestamp = rfc3339.parse().expect("RFC 3339");
    t.as_microsecond()
}

/// A random play: mostly in the last 40 days, some years back (other PostgreSQL partitions),
/// some around New York's DST changes of 2025 and St. John's change of 2010-11-07, which
/// happened at 00:01 local (02:31 UTC).
fn random_play(rng: &mut StdRng, tracks: &[String], keys: &mut Vec<String>) -> pb::NewPlay {
    let now = now_secs() * 1_000_000;
    let at = match rng.random_range(0..20) {
        0..=12 => now - rng.random_range(60_000_000..40 * DAY * 1_000_000),
        13 | 14 => now - rng.random_range(3 * 365 * DAY * 1_000_000..6 * 365 * DAY * 1_000_000),
        15 | 16 => time("2025-03-09T07:00:00Z") + rng.random_range(-5 * DAY..5 * DAY) * 1_000_000,
        17 | 18 => time("2025-11-02T06:00:00Z") + rng.random_range(-5 * DAY..5 * DAY) * 1_000_000,
        _ => time("2010-11-07T02:31:00Z") + rng.random_range(-1_200_000_000..1_200_000_000),
    } + rng.random_range(0..1_000_000);
    let request_id = match rng.random_range(0..4) {
        0 => String::new(),
        // A retry of an earlier call: must not count twice.
        1 if !keys.is_empty() => keys.choose(rng).cloned().unwrap_or_default(),
        _ => {
            let key = format!("k-{}", rng.random::<u64>());
            keys.push(key.clone());
            key
        }
    };
    pb::NewPlay {
        track_id: tracks.choose(rng).cloned().unwrap_or_default(),
        played_for_seconds: rng.random_range(0..400),
        completed: rng.random_bool(0.3),
        source: ["album", "playlist", "radio", "search", ""]
            .choose(rng)
            .map(|s| s.to_string())
            .unwrap_or_default(),
        played_at: Some(proto_time(at)),
        request_id,
        track_duration_seconds: rng.random_bool(0.7).then(|| rng.random_range(1..600)),
    }
}

fn as_admin<T>(message: T) -> Request<T> {
    with_token(message, &service_token("ops-console", "library:admin"))
}

async fn listed(app: &TestApp, counted_only: bool) -> Vec<pb::Play> {
    history(
        app,
        pb::ListHistoryRequest {
            counted_only,
            ..Default::default()
        },
    )
    .await
    .expect("history")
    .into_iter()
    .map(|e| e.play.expect("play"))
    .collect()
}

async fn stats(app: &TestApp, range: Range, bucket: Bucket, tz: &str) -> pb::LibraryStats {
    let mut client = app.client.clone();
    client
        .get_library_stats(app.req(pb::GetLibraryStatsRequest {
            since: range.since.map(proto_time),
            until: range.until.map(proto_time),
            time_zone: tz.into(),
            top_tracks_limit: 100,
            activity_bucket: bucket.proto(),
            ..Default::default()
        }))
        .await
        .expect("stats")
        .into_inner()
}

/// The ranges every check covers: all time, an unaligned 45 days, the weeks around each of New
/// York's 2025 DST changes, and a range that starts inside a quarter hour.
fn ranges(now: i64) -> Vec<(Range, Bucket)> {
    let day = DAY * 1_000_000;
    let end = now - day - (now % day) + time("1970-01-01T13:07:00Z");
    vec![
        (Range::default(), Bucket::Day),
        (Range::default(), Bucket::Year),
        (
            Range {
                since: Some(end - 45 * day),
                until: Some(end),
            },
            Bucket::Week,
        ),
        (
            Range {
                since: Some(time("2025-03-01T13:07:00.5Z")),
                until: Some(time("2025-03-20T13:07:00Z")),
            },
            Bucket::Day,
        ),
        (
            Range {
                since: Some(time("2025-10-20T00:00:00Z")),
                until: None,
            },
            Bucket::Month,
        ),
        (
            Range {
                since: Some(now - 20 * day + 7_300_001),
                until: Some(now - 2 * day + 11),
            },
            Bucket::Day,
        ),
    ]
}

/// Every figure of this listener, in every zone, against a recount of its listed history.
async fn check_everything(app: &TestApp, context: &str) {
    let plays = listed(app, false).await;
    for play in &plays {
        let duration = (play.track_duration_seconds > 0).then_some(play.track_duration_seconds);
        assert_eq!(
            play.counted,
            counts(play.played_for_seconds, play.completed, duration),
            "{context}: the rule decides {play:?}"
        );
    }
    let counted: Vec<String> = listed(app, true).await.into_iter().map(|p| p.id).collect();
    let expected: Vec<String> = plays
        .iter()
        .filter(|p| p.counted)
        .map(|p| p.id.clone())
        .collect();
    assert_eq!(counted, expected, "{context}: counted_only");
    let history: Vec<P> = plays.iter().map(P::of).collect();
    let now = now_secs() * 1_000_000;

    for name in ZONES {
        let tz = zone(name);
        for (range, bucket) in ranges(now) {
            let answer = stats(app, range, bucket, name).await;
            check_stats(
                &answer,
                &history,
                range,
                bucket,
                &tz,
                &format!("{context}, {name}, {range:?} {bucket:?}"),
            );
        }
        check_top_tracks(app, &history, name, now, context).await;
    }
    // Changes off the quarter hour: 2010-11-07 00:01 NDT became 23:01 NST of the 6th.
    let st_johns = "America/St_Johns";
    for (range, bucket) in [
        (
            Range {
                since: Some(time("2010-11-01T00:00:00Z")),
                until: Some(time("2010-11-14T00:00:00Z")),
            },
            Bucket::Day,
        ),
        (Range::default(), Bucket::Year),
    ] {
        let answer = stats(app, range, bucket, st_johns).await;
        check_stats(
            &answer,
            &history,
            range,
            bucket,
            &zone(st_johns),
            &format!("{context}, {st_johns}"),
        );
    }
    check_play_counts(app, &history, &plays, now, context).await;
}

async fn check_top_tracks(app: &TestApp, history: &[P], name: &str, now: i64, context: &str) {
    let tz = zone(name);
    let mut client = app.client.clone();
    let explicit = Range {
        since: Some(time("2025-03-05T13:07:00Z")),
        until: Some(time("2025-03-12T13:07:00Z")),
    };
    let mut cases = Vec::new();
    for (period, bucket) in [
        (pb::TopTracksPeriod::Week, Bucket::Week),
        (pb::TopTracksPeriod::Month, Bucket::Month),
        (pb::TopTracksPeriod::Year, Bucket::Year),
    ] {
        for ago in [0, 1] {
            let (current, previous) = calendar_period(bucket, ago, now, &tz);
            cases.push((period, ago as u32, current, previous));
        }
    }
    let length = explicit.until.unwrap_or(0) - explicit.since.unwrap_or(0);
    let before = Range {
        since: explicit.since.map(|s| s - length),
        until: explicit.since,
    };
    cases.push((pb::TopTracksPeriod::Unspecified, 0, explicit, before));

    for (period, ago, current, previous) in cases {
        let context = format!("{context}, {name}, top tracks {period:?} {ago} ago");
        let mut got = Vec::new();
        let mut token = String::new();
        loop {
            let page = client
                .get_top_tracks(
                    app.req(pb::GetTopTracksRequest {
                        period: period as i32,
                        periods_ago: ago,
                        since: (period == pb::TopTracksPeriod::Unspecified)
                            .then(|| proto_time(explicit.since.unwrap_or(0))),
                        until: (period == pb::TopTracksPeriod::Unspecified)
                            .then(|| proto_time(explicit.until.unwrap_or(0))),
                        time_zone: name.into(),
                        page_size: 5,
                        page_token: token,
                        ..Default::default()
                    }),
                )
                .await
                .expect("top tracks")
                .into_inner();
            assert_eq!(
                (
                    micros(&page.period_start),
                    micros(&page.period_end),
                    micros(&page.previous_period_start)
                ),
                (
                    current.since.unwrap_or(0),
                    current.until.unwrap_or(0),
                    previous.since.unwrap_or(0)
                ),
                "{context}: bounds"
            );
            let total = page.total_size;
            got.extend(page.tracks.into_iter().map(|t| {
                let tally = crate::recount::Tally {
                    plays: t.plays,
                    counted: t.counted_plays,
                    seconds: t.listening_seconds,
                };
                (t.track_id, t.rank, t.previous_rank, tally, t.new_in_period)
            }));
            assert!(got.len() as u64 <= total, "{context}: total_size");
            if page.next_page_token.is_empty() {
                assert_eq!(got.len() as u64, total, "{context}: total_size");
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(got, expected_top(history, current, previous), "{context}");
    }
}

async fn check_play_counts(
    app: &TestApp,
    history: &[P],
    plays: &[pb::Play],
    now: i64,
    context: &str,
) {
    let mut client = app.client.clone();
    let liked: Vec<String> = client
        .list_liked_tracks(app.req(pb::ListLikedTracksRequest {
            page_size: 1000,
            ..Default::default()
        }))
        .await
        .expect("likes")
        .into_inner()
        .liked_tracks
        .into_iter()
        .map(|l| l.track_id)
        .collect();
    let mut ids: Vec<String> = plays.iter().map(|p| p.track_id.clone()).collect();
    ids.sort();
    ids.dedup();
    // Repeats come back once per mention, and a never-played track with zeros.
    ids.extend(ids.clone().into_iter().take(2));
    ids.push(track());
    let year = 365 * DAY * 1_000_000;
    for range in [
        Range::default(),
        Range {
            since: Some(now - year),
            until: None,
        },
        Range {
            since: Some(time("2025-03-01T13:07:00.5Z")),
            until: Some(time("2025-03-20T13:07:00Z")),
        },
    ] {
        let answer = client
            .get_track_play_counts(app.req(pb::GetTrackPlayCountsRequest {
                track_ids: ids.clone(),
                since: range.since.map(proto_time),
                until: range.until.map(proto_time),
                ..Default::default()
            }))
            .await
            .expect("play counts")
            .into_inner();
        let got: Vec<_> = answer
            .tracks
            .iter()
            .map(|t| {
                (
                    t.track_id.clone(),
                    (
                        t.plays,
                        t.counted_plays,
                        t.plays - t.skipped_plays,
                        t.listening_seconds,
                    ),
                    t.first_played_at
                        .as_ref()
                        .map(|_| micros(&t.first_played_at)),
                    t.last_played_at.as_ref().map(|_| micros(&t.last_played_at)),
                    t.liked,
                )
            })
            .collect();
        let want: Vec<_> = ids
            .iter()
            .map(|id| {
                let (tally, first, last) = expected_count(history, id, range);
                (
                    id.clone(),
                    (tally.plays, tally.counted, tally.counted, tally.seconds),
                    first,
                    last,
                    liked.contains(id),
                )
            })
            .collect();
        assert_eq!(got, want, "{context}: play counts in {range:?}");
    }
}

async fn every_figure_equals_a_recount_after_a_random_mix_of_every_write_path(app: TestApp) {
    // LIBRARY_TEST_SEED replays a failing run.
    let seed: u64 = std::env::var("LIBRARY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let context = format!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let tracks: Vec<String> = (0..12).map(|_| track()).collect();
    let mut keys = Vec::new();
    let mut client = app.client.clone();
    let mut admin = LibraryAdminServiceClient::new(app.channel().await);
    let other = uuid::Uuid::new_v4();
    let other_token = session_token(other);
    for liked in tracks.choose_multiple(&mut rng, 4) {
        client
            .like_track(app.req(pb::LikeTrackRequest {
                track_id: liked.clone(),
                ..Default::default()
            }))
            .await
            .expect("liked");
    }

    for round in 0..6 {
        // The first call is a full one, which PostgreSQL writes as two parts committing side
        // by side (keys repeated across them included).
        let size = if round == 0 { 1000 } else { 120 };
        let batch: Vec<pb::NewPlay> = (0..size)
            .map(|_| random_play(&mut rng, &tracks, &mut keys))
            .collect();
        record(&app, batch).await;
        let single = random_play(&mut rng, &tracks, &mut keys);
        client
            .record_play(app.req(pb::RecordPlayRequest {
                user_id: String::new(),
                track_id: single.track_id,
                played_for_seconds: single.played_for_seconds,
                completed: single.completed,
                source: single.source,
                played_at: single.played_at,
                request_id: single.request_id,
                track_duration_seconds: single.track_duration_seconds,
            }))
            .await
            .expect("one play recorded");
        // Another listener on the same tracks and days: must not leak into this one's figures.
        client
            .record_plays(with_token(
                pb::RecordPlaysRequest {
                    user_id: String::new(),
                    plays: (0..30)
                        .map(|_| random_play(&mut rng, &tracks, &mut Vec::new()))
                        .collect(),
                },
                &other_token,
            ))
            .await
            .expect("the other listener's plays");

        let plays = listed(&app, false).await;
        for victim in plays.choose_multiple(&mut rng, 20) {
            client
                .delete_play(app.req(pb::DeletePlayRequest {
                    user_id: String::new(),
                    play_id: victim.id.clone(),
                }))
                .await
                .expect("play deleted");
        }
        match round {
            1 => {
                // Everything older than a random day of the last month goes.
                let before = now_secs() - rng.random_range(20 * DAY..35 * DAY);
                client
                    .clear_history(app.req(pb::ClearHistoryRequest {
                        before: Some(proto_time(before * 1_000_000)),
                        ..Default::default()
                    }))
                    .await
                    .expect("history cleared");
            }
            2 => {
                let plays: Vec<pb::NewPlay> = (0..100)
                    .map(|_| random_play(&mut rng, &tracks, &mut keys))
                    .collect();
                let import = tokio_stream::iter(vec![pb::ImportHistoryRequest {
                    user_id: String::new(),
                    plays,
                }]);
                client
                    .import_history(app.req(import))
                    .await
                    .expect("import accepted");
            }
            3 => {
                // Retention: whole old partitions dropped, the one it cuts through trimmed.
                let before = now_secs() - rng.random_range(4 * 365 * DAY..5 * 365 * DAY);
                admin
                    .purge_history(as_admin(pb::PurgeHistoryRequest {
                        before: Some(proto_time(before * 1_000_000)),
                        dry_run: false,
                    }))
                    .await
                    .expect("purged");
            }
            4 => {
                let erased = tracks.choose(&mut rng).cloned().unwrap_or_default();
                admin
                    .delete_track_data(as_admin(pb::DeleteTrackDataRequest { track_id: erased }))
                    .await
                    .expect("track erased");
            }
            0 => {
                // A narrowed clean-up: a window of days, one track, perhaps one source.
                let since = now_secs() - rng.random_range(20 * DAY..40 * DAY);
                let source = ["radio", "album", ""]
                    .choose(&mut rng)
                    .copied()
                    .unwrap_or("");
                client
                    .clear_history(app.req(pb::ClearHistoryRequest {
                        since: Some(proto_time(since * 1_000_000)),
                        before: Some(proto_time((since + 10 * DAY) * 1_000_000)),
                        track_id: tracks.choose(&mut rng).cloned().unwrap_or_default(),
                        source: source.to_string(),
                        ..Default::default()
                    }))
                    .await
                    .expect("history cleared in part");
            }
            5 => {
                admin
                    .delete_user_data(as_admin(pb::DeleteUserDataRequest {
                        user_id: other.to_string(),
                    }))
                    .await
                    .expect("the other listener erased");
            }
            _ => {}
        }
        // Reading builds the snapshots of finished days and months; the next rounds' writes
        // into those periods must invalidate them.
        if round % 2 == 0 {
            check_everything(&app, &format!("{context}, round {round}")).await;
        }
    }
    let plays = listed(&app, false).await;
    assert!(plays.len() > 300, "{context}: {} plays left", plays.len());
    check_everything(&app, &format!("{context}, at the end")).await;

    // Erasing the listener leaves nothing behind in the aggregates.
    admin
        .delete_user_data(as_admin(pb::DeleteUserDataRequest {
            user_id: app.user.to_string(),
        }))
        .await
        .expect("listener erased");
    let empty = stats(&app, Range::default(), Bucket::Year, "UTC").await;
    assert_eq!(
        (
            empty.total_plays,
            empty.unique_tracks,
            empty.top_tracks.len()
        ),
        (0, 0, 0),
        "{context}"
    );
    assert!(empty.plays_by_source.is_empty(), "{context}");
    check_everything(&app, &format!("{context}, erased")).await;
}

/// Replicas keep period snapshots decoded in memory. An erased listener's periods start again
/// from the same write generations, so a replica that cached the old snapshot must notice that
/// the stored one is another: here the erasure and the new plays go through one replica and the
/// reads through the other, which never heard of the erasure.
async fn a_replica_never_answers_from_a_snapshot_of_erased_plays(app: TestApp) {
    let other = app.replica().await;
    let day = now_secs() / DAY * DAY - 10 * DAY;
    let at = |hour: i64| {
        jiff::Timestamp::from_second(day + hour * 3600)
            .expect("a time")
            .to_string()
    };
    let range = Range {
        since: Some((day - DAY) * 1_000_000),
        until: Some((day + 2 * DAY) * 1_000_000),
    };
    let (before, after) = (track(), track());
    let plays = |t: &str, n: i64| -> Vec<pb::NewPlay> {
        (0..n)
            .map(|i| crate::helpers::play(t, 300, &at(i + 1)))
            .collect()
    };
    let tops = |s: &pb::LibraryStats| -> Vec<(String, u64)> {
        s.top_tracks
            .iter()
            .map(|t| (t.track_id.clone(), t.plays))
            .collect()
    };
    record(&app, plays(&before, 3)).await;
    for read in 0..2 {
        let figures = stats(&app, range, Bucket::Day, "UTC").await;
        assert_eq!(tops(&figures), vec![(before.clone(), 3)], "read {read}");
    }

    let mut admin = LibraryAdminServiceClient::new(other.channel().await);
    admin
        .delete_user_data(as_admin(pb::DeleteUserDataRequest {
            user_id: app.user.to_string(),
        }))
        .await
        .expect("erased");
    record(&other, plays(&after, 2)).await;
    // The other replica builds and stores the period's snapshot anew.
    let there = stats(&other, range, Bucket::Day, "UTC").await;
    assert_eq!(tops(&there), vec![(after.clone(), 2)]);

    let here = stats(&app, range, Bucket::Day, "UTC").await;
    assert_eq!(
        tops(&here),
        vec![(after.clone(), 2)],
        "not the erased plays"
    );
    assert_eq!(here.total_plays, 2);
    let counts = app
        .client
        .clone()
        .get_track_play_counts(app.req(pb::GetTrackPlayCountsRequest {
            track_ids: vec![before.clone(), after.clone()],
            since: range.since.map(proto_time),
            until: range.until.map(proto_time),
            ..Default::default()
        }))
        .await
        .expect("counts")
        .into_inner();
    let plays_of: Vec<u64> = counts.tracks.iter().map(|c| c.plays).collect();
    assert_eq!(plays_of, vec![0, 2]);
}

backend_tests!(
    every_figure_equals_a_recount_after_a_random_mix_of_every_write_path,
    a_replica_never_answers_from_a_snapshot_of_erased_plays
);
