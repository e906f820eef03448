//! Store-level behaviour the API does not expose yet: retention across every listener (the admin
//! service's PurgeHistory builds on it), and likes restored from an export. Run on SQLite always and on PostgreSQL when
//! LIBRARY_TEST_POSTGRES_URL is set.
#[path = "support/mod.rs"]
mod support;

use library_service::{
    domain::{
        Change, CountingRule, HistoryQuery, LikedTrack, NewPlay, NewPlayInput, Notes, TimeRange,
        Timestamp, TrackId, UserId, rank_tracks,
    },
    export::{Export, Part},
    store::{EventsFrom, PgStore, SqliteStore, Store},
};
use support::db;

fn time(rfc3339: &str) -> Timestamp {
    let t: jiff::Timestamp = rfc3339.parse().expect("RFC 3339");
    Timestamp::from_micros(t.as_microsecond()).expect("in range")
}

fn new_play(at: Timestamp, seconds: u32) -> NewPlay {
    keyed_play(at, seconds, "")
}

fn keyed_play(at: Timestamp, seconds: u32, request_id: &str) -> NewPlay {
    NewPlay::parse(
        NewPlayInput {
            track_id: &uuid::Uuid::new_v4().to_string(),
            played_for_seconds: seconds,
            completed: true,
            source: "album",
            played_at: Some(Ok(at)),
            request_id,
            track_duration_seconds: None,
        },
        Timestamp::now(),
        &CountingRule::DEFAULT,
    )
    .expect("a valid play")
}

/// Three plays on the 1st, 10th and 20th of January to June 2024, at midnight UTC.
fn half_a_year() -> Vec<NewPlay> {
    (1..=6)
        .flat_map(|month| {
            [1, 10, 20]
                .map(|day| new_play(time(&format!("2024-{month:02}-{day:02}T00:00:00Z")), 60))
        })
        .collect()
}

async fn played_at(store: &impl Store, user: UserId) -> Vec<Timestamp> {
    store
        .history_page(user, &HistoryQuery::default(), None, 1000)
        .await
        .expect("history")
        .into_iter()
        .map(|p| p.played_at)
        .collect()
}

async fn retention_deletes_every_listeners_plays_before_the_cutoff(store: impl Store) {
    let (a, b) = (
        UserId::from_uuid(uuid::Uuid::new_v4()),
        UserId::from_uuid(uuid::Uuid::new_v4()),
    );
    store
        .record_plays(a, half_a_year())
        .await
        .expect("plays of a");
    store
        .record_plays(b, half_a_year())
        .await
        .expect("plays of b");
    let cutoff = time("2024-04-10T12:00:00Z");

    // January to March whole, and April 1st and 10th: 11 plays each.
    let counted = store
        .purge_plays_before(cutoff, true)
        .await
        .expect("dry run");
    assert_eq!(counted, 22);
    assert_eq!(
        played_at(&store, a).await.len(),
        18,
        "a dry run deletes nothing"
    );

    let purged = store
        .purge_plays_before(cutoff, false)
        .await
        .expect("purge");
    assert_eq!(purged, 22);
    for user in [a, b] {
        let left = played_at(&store, user).await;
        assert_eq!(left.len(), 7);
        assert!(left.iter().all(|t| *t >= cutoff), "{left:?}");

        // The aggregates lost exactly the purged plays: all time equals a recount of a range
        // that holds every play.
        let all_time = store
            .library_stats(user, TimeRange::default(), 100, &[])
            .await
            .expect("stats");
        let recount = store
            .library_stats(
                user,
                TimeRange {
                    since: Some(time("2000-01-01T00:00:00Z")),
                    until: Some(time("2030-01-01T00:00:00Z")),
                },
                100,
                &[],
            )
            .await
            .expect("stats")
            .range
            .expect("a range");
        let mut recounted_top = recount.tracks.clone();
        rank_tracks(&mut recounted_top);
        assert_eq!(all_time.all_time_top, recounted_top);
        assert_eq!(all_time.all_time.counts, recount.totals());
        assert_eq!(all_time.all_time.counts.plays, 7);
        assert_eq!(all_time.all_time.counts.seconds, 7 * 60);
        assert_eq!(all_time.all_time.tracks, 7);
        assert_eq!(all_time.all_time.first, Some(time("2024-04-20T00:00:00Z")));
        assert_eq!(all_time.all_time.first, recount.first_played());
    }

    // A late import into a purged month still works.
    store
        .record_plays(a, vec![new_play(time("2024-02-15T00:00:00Z"), 1)])
        .await
        .expect("an old play after retention");
    assert_eq!(played_at(&store, a).await.len(), 8);
    assert_eq!(
        store
            .purge_plays_before(cutoff, false)
            .await
            .expect("purge"),
        1
    );
}

/// Keys are kept as long as their play is within retention, and at least a day after first use.
async fn idempotency_keys_are_forgotten_past_retention_and_a_day(store: impl Store) {
    let user = UserId::from_uuid(uuid::Uuid::new_v4());
    let old = time("2024-01-01T00:00:00Z");
    let now = Timestamp::now();
    let record = |request_id: &'static str, at: Timestamp| {
        let store = store.clone();
        async move {
            store
                .record_plays(user, vec![keyed_play(at, 10, request_id)])
                .await
                .expect("recorded")
                .remove(0)
        }
    };
    record("old-play", old).await;
    record("new-play", now).await;
    let retention_cutoff = time("2025-01-01T00:00:00Z");
    let a_day_ago = now.saturating_add_seconds(-86_400);
    assert_eq!(
        store
            .forget_request_ids(retention_cutoff, a_day_ago)
            .await
            .expect("forget"),
        0,
        "first used just now: kept for a day"
    );
    assert!(record("old-play", old).await.duplicate, "still remembered");
    let later = now.saturating_add_seconds(2 * 86_400);
    assert_eq!(
        store
            .forget_request_ids(retention_cutoff, later)
            .await
            .expect("forget"),
        1,
        "only the key of the play past retention"
    );
    assert!(!record("old-play", old).await.duplicate, "forgotten");
    assert!(record("new-play", now).await.duplicate, "kept");
}

/// 2,500 likes restored with their own times and notes, beside one the listener already has.
async fn restored_likes_keep_their_times_and_notes_and_an_export_pages_through_them(
    store: impl Store,
) {
    let user = UserId::from_uuid(uuid::Uuid::new_v4());
    let base = time("2022-06-01T00:00:00Z");
    let likes: Vec<LikedTrack> = (0..2500)
        .map(|i| LikedTrack {
            user_id: user,
            track_id: TrackId::from_uuid(uuid::Uuid::new_v4()),
            notes: format!("note {i}"),
            liked_at: base.saturating_add_seconds(60 * (i / 2)),
            updated_at: base.saturating_add_seconds(60 * i + 7),
        })
        .collect();
    let kept = store
        .like_track(
            user,
            likes[10].track_id,
            Some(Notes::parse("mine").expect("notes")),
            time("2026-01-01T00:00:00Z"),
        )
        .await
        .expect("liked");
    let before = store.event_head(user).await.expect("head");
    assert_eq!(
        store.restore_likes(user, &likes).await.expect("restored"),
        2499
    );
    // Watchers hear of each like added, as they would of a LikeTrack.
    let mut told = 0;
    let mut at = before;
    loop {
        let EventsFrom::Events(events) = store.events_from(user, at, 1000).await.expect("events")
        else {
            panic!("the events are kept");
        };
        let Some(last) = events.last() else { break };
        at = last.next;
        told += events
            .iter()
            .filter(
                |e| matches!(&e.change, Change::TrackLiked(l) if l.track_id != likes[10].track_id),
            )
            .count();
    }
    assert_eq!(told, 2499);
    assert_eq!(
        store.restore_likes(user, &likes).await.expect("again"),
        0,
        "restoring again adds nothing"
    );

    let mut export = Export::new(store.clone(), user, Timestamp::now());
    let (mut exported, mut pages) = (Vec::new(), 0);
    while let Some(part) = export.next().await.expect("export reads") {
        match part {
            Part::Likes(page) => {
                pages += 1;
                exported.extend(page);
            }
            Part::Plays(_) => panic!("no plays"),
            Part::Trailer { plays, likes } => assert_eq!((plays, likes), (0, 2500)),
            Part::Header { .. } => {}
        }
    }
    assert_eq!(pages, 3);
    let mut expected = likes.clone();
    expected[10] = kept.liked;
    expected.sort_by_key(|l| std::cmp::Reverse((l.liked_at, l.track_id)));
    assert_eq!(
        exported, expected,
        "every like as restored, most recent first"
    );
}

#[tokio::test]
async fn restored_likes_keep_their_times_and_notes_and_an_export_pages_through_them_on_sqlite() {
    let test_db = db::sqlite();
    let store = SqliteStore::connect(test_db.url(), 4)
        .await
        .expect("sqlite opens");
    store.migrate().await.expect("migrations");
    restored_likes_keep_their_times_and_notes_and_an_export_pages_through_them(store).await;
}

#[tokio::test]
async fn restored_likes_keep_their_times_and_notes_and_an_export_pages_through_them_on_postgres() {
    let Some(test_db) = db::postgres().await else {
        return;
    };
    let store = PgStore::connect(test_db.url(), 4)
        .await
        .expect("postgres connects");
    store.migrate().await.expect("migrations");
    restored_likes_keep_their_times_and_notes_and_an_export_pages_through_them(store).await;
}

#[tokio::test]
async fn idempotency_keys_are_forgotten_past_retention_and_a_day_on_sqlite() {
    let test_db = db::sqlite();
    let store = SqliteStore::connect(test_db.url(), 4)
        .await
        .expect("sqlite opens");
    store.migrate().await.expect("migrations");
    idempotency_keys_are_forgotten_past_retention_and_a_day(store).await;
}

#[tokio::test]
async fn idempotency_keys_are_forgotten_past_retention_and_a_day_on_postgres() {
    let Some(test_db) = db::postgres().await else {
        return;
    };
    let store = PgStore::connect(test_db.url(), 4)
        .await
        .expect("postgres connects");
    store.migrate().await.expect("migrations");
    idempotency_keys_are_forgotten_past_retention_and_a_day(store).await;
}

#[tokio::test]
async fn retention_deletes_every_listeners_plays_before_the_cutoff_on_sqlite() {
    let test_db = db::sqlite();
    let store = SqliteStore::connect(test_db.url(), 4)
        .await
        .expect("sqlite opens");
    store.migrate().await.expect("migrations");
    retention_deletes_every_listeners_plays_before_the_cutoff(store).await;
}

#[tokio::test]
async fn retention_drops_whole_monthly_partitions_on_postgres() {
    let Some(test_db) = db::postgres().await else {
        return;
    };
    let store = PgStore::connect(test_db.url(), 4)
        .await
        .expect("postgres connects");
    store.migrate().await.expect("migrations");
    retention_deletes_every_listeners_plays_before_the_cutoff(store.clone()).await;
    let partitions: Vec<String> = sqlx::query_scalar(
        "SELECT part::text FROM library_play_partitions
         WHERE upper_bound <= '2024-07-01T00:00:00Z' ORDER BY upper_bound",
    )
    .fetch_all(store.pool())
    .await
    .expect("partitions");
    assert_eq!(
        partitions,
        ["plays_2024_04", "plays_2024_05", "plays_2024_06"],
        "January to March were dropped whole (February twice: the late play brought it back), \
         April was cut through"
    );
}

/// The tables a database sharded by listener distributes by `user_id` (OPERATIONS.md, "Sharding
/// by user"). Citus runs no ordinary triggers on distributed tables, so none may carry one: the
/// store's own statements keep the aggregates.
const DISTRIBUTED: [&str; 11] = [
    "library_event_heads",
    "library_events",
    "liked_tracks",
    "now_playing",
    "play_requests",
    "plays",
    "user_period_stats",
    "user_quarter_stats",
    "user_source_stats",
    "user_stats",
    "user_track_stats",
];

#[tokio::test]
async fn no_trigger_is_on_a_table_that_sharding_distributes_on_postgres() {
    let Some(test_db) = db::postgres().await else {
        return;
    };
    let store = PgStore::connect(test_db.url(), 2)
        .await
        .expect("postgres connects");
    store.migrate().await.expect("migrations");
    // Every table with listener data is in the list, so a new one cannot slip past the check.
    let keyed: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
         ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .expect("tables with a user_id");
    assert_eq!(keyed, DISTRIBUTED, "the tables sharding would distribute");
    assert_eq!(triggers_on_distributed(&store).await, []);
    // The check sees a trigger when there is one, on a partition of plays too.
    sqlx::raw_sql(
        "CREATE FUNCTION test_nothing() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN RETURN NULL; END $$;
         CREATE TRIGGER test_nothing AFTER INSERT ON user_stats
             FOR EACH STATEMENT EXECUTE FUNCTION test_nothing();
         CREATE TRIGGER test_nothing_part AFTER INSERT ON plays
             FOR EACH ROW EXECUTE FUNCTION test_nothing();",
    )
    .execute(store.pool())
    .await
    .expect("triggers for the check");
    let seen = triggers_on_distributed(&store).await;
    assert!(seen.contains(&("user_stats".into(), "test_nothing".into())));
    assert!(
        seen.iter()
            .any(|(table, name)| table.starts_with("plays_") && name == "test_nothing_part"),
        "{seen:?}"
    );
}

/// Every user-defined trigger on a distributed table or on a partition of plays.
async fn triggers_on_distributed(store: &PgStore) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT c.relname::text, t.tgname::text FROM pg_trigger t
         JOIN pg_class c ON c.oid = t.tgrelid
         WHERE NOT t.tgisinternal
           AND (c.relname = ANY($1)
                OR c.oid IN (SELECT inhrelid FROM pg_inherits
                             WHERE inhparent = 'plays'::regclass))
         ORDER BY 1, 2",
    )
    .bind(&DISTRIBUTED[..])
    .fetch_all(store.pool())
    .await
    .expect("triggers")
}

/// A client that cancels a call while its BEGIN is in flight must not leave the connection
/// inside a transaction: the next statement on it (here a group commit, one statement on the
/// pool's only connection) would run in that transaction and never be committed.
#[tokio::test]
async fn a_call_cancelled_during_begin_leaves_no_transaction_open_on_postgres() {
    use library_service::{
        domain::TrackId,
        store::{LikeStore, PlayStore},
    };
    let Some(test_db) = db::postgres().await else {
        return;
    };
    let store = PgStore::connect(test_db.url(), 1)
        .await
        .expect("postgres connects");
    store.migrate().await.expect("migrations");
    let observer = sqlx::PgPool::connect(test_db.url())
        .await
        .expect("observer");
    let user = UserId::from_uuid(uuid::Uuid::new_v4());
    for i in 0..300u64 {
        let track = TrackId::from_uuid(uuid::Uuid::new_v4());
        // Cancelled somewhere between before its BEGIN and after its commit.
        let _ = tokio::time::timeout(
            std::time::Duration::from_micros(i % 60 * 10),
            store.like_track(user, track, None, Timestamp::now()),
        )
        .await;
        let recorded = store
            .record_plays(user, vec![new_play(time("2026-01-01T10:00:00Z"), 30)])
            .await
            .expect("recorded");
        let id = recorded[0].play.id;
        let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM plays WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_one(&observer)
            .await
            .expect("count");
        assert_eq!(visible, 1, "round {i}: an acknowledged play is committed");
    }
}
