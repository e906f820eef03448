//! The all-time statistics come from aggregates kept with every write; they must equal a full
//! recount of the history whatever mix of writes, deletes, clears and imports came before.
use std::collections::{BTreeMap, HashMap, HashSet};

use library_service::pb;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

use crate::{
    helpers::{history, record, track},
    support::app::{TestApp, now_secs},
};

const ZONE: &str = "Asia/Kathmandu";
const DAY: i64 = 86_400;

fn at(seconds: i64, micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds,
        nanos: (micros * 1000) as i32,
    }
}

fn micros(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("a timestamp");
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1000
}

fn local_date(played_at_micros: i64) -> String {
    let t = jiff::Timestamp::from_microsecond(played_at_micros).expect("in range");
    t.to_zoned_datetime(jiff::tz::TimeZone::get(ZONE).expect("zone"))
        .date()
        .to_string()
}

/// A random play in the last 40 days, or now and then years back (another PostgreSQL partition).
fn random_play(rng: &mut StdRng, tracks: &[String], keys: &mut Vec<String>) -> pb::NewPlay {
    let now = now_secs();
    let seconds = if rng.random_bool(0.1) {
        now - rng.random_range(3 * 365 * DAY..6 * 365 * DAY)
    } else {
        now - rng.random_range(60..40 * DAY)
    };
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
        completed: rng.random_bool(0.5),
        source: ["album", "playlist", "radio", "search", ""]
            .choose(rng)
            .map(|s| s.to_string())
            .unwrap_or_default(),
        played_at: Some(at(seconds, rng.random_range(0..1_000_000))),
        request_id,
    }
}

async fn all_plays(app: &TestApp) -> Vec<pb::Play> {
    history(app, Default::default())
        .await
        .expect("history")
        .into_iter()
        .map(|e| e.play.expect("play"))
        .collect()
}

async fn stats(app: &TestApp, since: Option<i64>, until: Option<i64>) -> pb::LibraryStats {
    let mut client = app.client.clone();
    client
        .get_library_stats(app.req(pb::GetLibraryStatsRequest {
            since: since.map(|m| at(m.div_euclid(1_000_000), m.rem_euclid(1_000_000))),
            until: until.map(|m| at(m.div_euclid(1_000_000), m.rem_euclid(1_000_000))),
            time_zone: ZONE.into(),
            top_tracks_limit: 100,
            ..Default::default()
        }))
        .await
        .expect("stats")
        .into_inner()
}

/// What the statistics must say about `plays`, recounted here from the listed history.
fn assert_recount(stats: &pb::LibraryStats, plays: &[&pb::Play], context: &str) {
    let total = plays.len() as u64;
    let completed = plays.iter().filter(|p| p.completed).count() as u64;
    let seconds: u64 = plays.iter().map(|p| u64::from(p.played_for_seconds)).sum();
    let tracks: HashSet<&str> = plays.iter().map(|p| p.track_id.as_str()).collect();
    assert_eq!(
        (
            stats.total_plays,
            stats.completed_plays,
            stats.listening_seconds,
            stats.unique_tracks
        ),
        (total, completed, seconds, tracks.len() as u64),
        "{context}: totals"
    );
    let first = plays.iter().map(|p| micros(&p.played_at)).min();
    let last = plays.iter().map(|p| micros(&p.played_at)).max();
    assert_eq!(
        stats
            .first_played_at
            .as_ref()
            .map(|_| micros(&stats.first_played_at)),
        first,
        "{context}: first played"
    );
    assert_eq!(
        stats
            .last_played_at
            .as_ref()
            .map(|_| micros(&stats.last_played_at)),
        last,
        "{context}: last played"
    );

    let mut per_track: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut per_source: HashMap<&str, u64> = HashMap::new();
    let mut per_day: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for p in plays {
        let t = per_track.entry(&p.track_id).or_default();
        t.0 += 1;
        t.1 += u64::from(p.played_for_seconds);
        *per_source.entry(&p.source).or_default() += 1;
        let d = per_day.entry(local_date(micros(&p.played_at))).or_default();
        d.0 += 1;
        d.1 += u64::from(p.played_for_seconds);
    }
    let mut top: Vec<(String, u64, u64)> = per_track
        .into_iter()
        .map(|(t, (n, s))| (t.to_string(), n, s))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
    let got: Vec<(String, u64, u64)> = stats
        .top_tracks
        .iter()
        .map(|t| (t.track_id.clone(), t.plays, t.listening_seconds))
        .collect();
    assert_eq!(got, top, "{context}: top tracks");

    let mut sources: Vec<(String, u64)> = per_source
        .into_iter()
        .map(|(s, n)| (s.to_string(), n))
        .collect();
    sources.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let got: Vec<(String, u64)> = stats
        .plays_by_source
        .iter()
        .map(|s| (s.source.clone(), s.plays))
        .collect();
    assert_eq!(got, sources, "{context}: plays by source");

    assert!(
        !stats.daily_activity.is_empty(),
        "{context}: daily activity"
    );
    for day in &stats.daily_activity {
        let expected = per_day.get(&day.date).copied().unwrap_or_default();
        assert_eq!(
            (day.plays, day.listening_seconds),
            expected,
            "{context}: daily activity of {}",
            day.date
        );
    }
}

async fn all_time_stats_equal_a_full_recount_after_a_random_mix_of_writes_and_deletes(
    app: TestApp,
) {
    let seed: u64 = rand::random();
    let context = format!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let tracks: Vec<String> = (0..12).map(|_| track()).collect();
    let mut keys = Vec::new();
    let mut client = app.client.clone();

    for round in 0..6 {
        let batch: Vec<pb::NewPlay> = (0..150)
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
            }))
            .await
            .expect("one play recorded");

        let plays = all_plays(&app).await;
        for victim in plays.choose_multiple(&mut rng, 25) {
            client
                .delete_play(app.req(pb::DeletePlayRequest {
                    user_id: String::new(),
                    play_id: victim.id.clone(),
                }))
                .await
                .expect("play deleted");
        }
        if round == 2 {
            // Everything older than a random day of the last month goes.
            let before = now_secs() - rng.random_range(20 * DAY..35 * DAY);
            client
                .clear_history(app.req(pb::ClearHistoryRequest {
                    before: Some(at(before, 0)),
                    ..Default::default()
                }))
                .await
                .expect("history cleared");
        }
        if round == 4 {
            let plays: Vec<pb::NewPlay> = (0..120)
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
    }
    // Another listener's plays must not leak into this one's figures.
    let other = crate::support::app::session_token(uuid::Uuid::new_v4());
    client
        .record_plays(crate::support::app::with_token(
            pb::RecordPlaysRequest {
                user_id: String::new(),
                plays: (0..50)
                    .map(|_| random_play(&mut rng, &tracks, &mut Vec::new()))
                    .collect(),
            },
            &other,
        ))
        .await
        .expect("the other listener's plays");

    let plays = all_plays(&app).await;
    assert!(plays.len() > 300, "{context}: {} plays left", plays.len());
    let all: Vec<&pb::Play> = plays.iter().collect();
    assert_recount(&stats(&app, None, None).await, &all, &context);

    // A range with ends inside quarter hours: totals from the plays, daily activity from whole
    // quarter hours plus the partial ends.
    let now = now_secs() * 1_000_000;
    let (since, until) = (
        now - 20 * DAY * 1_000_000 + 7_300_001,
        now - 2 * DAY * 1_000_000 + 11,
    );
    let in_range: Vec<&pb::Play> = plays
        .iter()
        .filter(|p| (since..until).contains(&micros(&p.played_at)))
        .collect();
    assert_recount(
        &stats(&app, Some(since), Some(until)).await,
        &in_range,
        &format!("{context}, range"),
    );

    // Clearing everything leaves nothing behind in the aggregates.
    client
        .clear_history(app.req(pb::ClearHistoryRequest::default()))
        .await
        .expect("history cleared");
    let empty = stats(&app, None, None).await;
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
}

backend_tests!(all_time_stats_equal_a_full_recount_after_a_random_mix_of_writes_and_deletes);
