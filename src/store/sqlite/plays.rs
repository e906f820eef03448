//! Recording, listing and deleting one listener's plays.
use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::{
    SqliteStore,
    live::{append, append_all},
};
use crate::{
    domain::{
        ClearScope, HistoryOrder, HistoryQuery, NewPlay, Period, Play, PlayId, PlayPosition,
        Recorded, Timestamp, UserId,
    },
    store::{
        EventFeed, PlayStore, StoreResult,
        events::Entry,
        group::{GroupWrite, Job, Patience},
        rows::{KeyedPlayRow, PlayRow, count, into_plays, new_play, play_columns},
        stats::period_key,
    },
};

/// The plays a `ClearHistory` scope selects, for its count and its delete: `?1` the listener,
/// `?2`..`?3` the time range, `?4` the track and `?5` the source, where NULL matches any.
macro_rules! cleared {
    () => {
        "FROM plays WHERE user_id = ?1 AND played_at >= ?2 AND played_at < ?3
           AND (?4 IS NULL OR track_id = ?4) AND (?5 IS NULL OR source = ?5)"
    };
}

/// The single writer, as the group commit drives it: a group is one `BEGIN IMMEDIATE`
/// transaction of a few multi-row statements (the keys already claimed, the new plays, their
/// keys, the stale snapshots), whatever its size: sqlx hands every statement and every row
/// to SQLite's worker thread and back, which costs more than SQLite's own work on a play.
/// The aggregates are still kept by the row triggers.
#[derive(Clone)]
pub(super) struct SqliteWriter {
    pub(super) writer: SqlitePool,
    pub(super) feed: EventFeed,
}

/// Rows per multi-row statement: 11 parameters each, well under SQLite's 32,766.
const ROWS_PER_STATEMENT: usize = 1000;

impl GroupWrite for SqliteWriter {
    async fn write_group(&self, jobs: &[Job]) -> StoreResult<Vec<Vec<Recorded>>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let now = Timestamp::now();
        let mut firsts = claimed(&mut tx, jobs).await?;
        let mut fresh: Vec<(Play, Option<&str>)> = Vec::new();
        let results: Vec<Vec<Recorded>> = jobs
            .iter()
            .map(|job| {
                job.plays
                    .iter()
                    .map(|p| {
                        let key = p.request_id.as_ref().map(|k| k.as_str());
                        if let Some(first) =
                            key.and_then(|k| firsts.get(&(job.user, k.to_string())))
                        {
                            return Recorded {
                                play: first.clone(),
                                duplicate: true,
                            };
                        }
                        let play = new_play(job.user, p);
                        if let Some(k) = key {
                            // A later play of the group with this key is its duplicate.
                            firsts.insert((job.user, k.to_string()), play.clone());
                        }
                        fresh.push((play.clone(), key));
                        Recorded {
                            play,
                            duplicate: false,
                        }
                    })
                    .collect()
            })
            .collect();
        for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
            insert_plays(&mut tx, chunk, now).await?;
        }
        let keyed: Vec<(&Play, &str)> = fresh
            .iter()
            .filter_map(|(play, key)| key.map(|k| (play, k)))
            .collect();
        for chunk in keyed.chunks(ROWS_PER_STATEMENT) {
            claim(&mut tx, chunk, now).await?;
        }
        mark_stale(&mut tx, fresh.iter().map(|(play, _)| play), now).await?;
        let mut entries = Vec::new();
        for (job, results) in jobs.iter().zip(&results) {
            let stored: Vec<Play> = results
                .iter()
                .filter(|r| !r.duplicate)
                .map(|r| r.play.clone())
                .collect();
            if stored.is_empty() {
                continue;
            }
            let entry = if job.imported {
                Entry::history_imported(stored.len() as u64)
            } else {
                Entry::plays_recorded(&stored)
            };
            entries.push((job.user, entry));
        }
        let changed: Vec<UserId> = entries.iter().map(|(user, _)| *user).collect();
        append_all(&mut tx, entries, now).await?;
        tx.commit().await?;
        self.feed.published(changed);
        Ok(results)
    }
}

/// The first plays already recorded under the group's keys.
async fn claimed(
    conn: &mut SqliteConnection,
    jobs: &[Job],
) -> StoreResult<HashMap<(UserId, String), Play>> {
    let keys: Vec<(UserId, &str)> = jobs
        .iter()
        .flat_map(|job| {
            job.plays
                .iter()
                .filter_map(move |p| p.request_id.as_ref().map(|k| (job.user, k.as_str())))
        })
        .collect();
    let mut firsts = HashMap::new();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "SELECT request_id, user_id, play_id AS id, track_id, played_at, played_for_seconds,
                    completed, source, track_duration_seconds, counted
             FROM play_requests WHERE (user_id, request_id) IN (VALUES ",
        );
        let mut values = sql.separated(", ");
        for (user, key) in chunk {
            values
                .push("(")
                .push_bind_unseparated(*user)
                .push_unseparated(", ")
                .push_bind_unseparated(*key)
                .push_unseparated(")");
        }
        sql.push(")");
        let rows: Vec<KeyedPlayRow> = sql.build_query_as().fetch_all(&mut *conn).await?;
        for row in rows {
            let play = row.play.into_play()?;
            firsts.insert((play.user_id, row.request_id), play);
        }
    }
    Ok(firsts)
}

async fn insert_plays(
    conn: &mut SqliteConnection,
    plays: &[(Play, Option<&str>)],
    now: Timestamp,
) -> StoreResult<()> {
    let mut sql = QueryBuilder::<Sqlite>::new(
        "INSERT INTO plays (user_id, played_at, id, track_id, played_for_seconds, completed, source,
                            recorded_at, track_duration_seconds, counted) ",
    );
    sql.push_values(plays, |mut row, (play, _)| {
        row.push_bind(play.user_id)
            .push_bind(play.played_at)
            .push_bind(play.id)
            .push_bind(play.track_id)
            .push_bind(i64::from(play.played_for_seconds))
            .push_bind(play.completed)
            .push_bind(play.source.clone())
            .push_bind(now)
            .push_bind(play.track_duration_seconds.map(i64::from))
            .push_bind(play.counted);
    });
    sql.build().execute(&mut *conn).await?;
    Ok(())
}

/// Claims the keys of the plays just stored.
async fn claim(
    conn: &mut SqliteConnection,
    keyed: &[(&Play, &str)],
    now: Timestamp,
) -> StoreResult<()> {
    let mut sql = QueryBuilder::<Sqlite>::new(
        "INSERT INTO play_requests
           (user_id, request_id, play_id, track_id, played_at, played_for_seconds, completed,
            source, created_at, track_duration_seconds, counted) ",
    );
    sql.push_values(keyed, |mut row, (play, key)| {
        row.push_bind(play.user_id)
            .push_bind(*key)
            .push_bind(play.id)
            .push_bind(play.track_id)
            .push_bind(play.played_at)
            .push_bind(i64::from(play.played_for_seconds))
            .push_bind(play.completed)
            .push_bind(play.source.clone())
            .push_bind(now)
            .push_bind(play.track_duration_seconds.map(i64::from))
            .push_bind(play.counted);
    });
    sql.build().execute(&mut *conn).await?;
    Ok(())
}

/// The snapshots of the finished days and months that gained plays are stale from now on, in
/// this transaction; once per listener and period, where a row trigger would do it per play.
async fn mark_stale<'a>(
    conn: &mut SqliteConnection,
    stored: impl Iterator<Item = &'a Play>,
    now: Timestamp,
) -> StoreResult<()> {
    let mut stale: Vec<(UserId, Period)> = stored
        .flat_map(|play| Period::holding(play.played_at).map(move |period| (play.user_id, period)))
        .filter(|(_, period)| period.end() <= now)
        .collect();
    stale.sort_unstable();
    stale.dedup();
    for chunk in stale.chunks(ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "INSERT INTO user_period_stats (user_id, period_kind, period_start, generation) ",
        );
        sql.push_values(chunk, |mut row, (user, period)| {
            let (kind, start) = period_key(*period);
            row.push_bind(*user)
                .push_bind(kind)
                .push_bind(start)
                .push_bind(1_i64);
        });
        sql.push(
            " ON CONFLICT (user_id, period_kind, period_start) DO UPDATE
             SET generation = generation + 1, built_generation = NULL,
                 tracks = NULL, sources = NULL, quarters = NULL",
        );
        sql.build().execute(&mut *conn).await?;
    }
    Ok(())
}

impl PlayStore for SqliteStore {
    async fn record_plays(&self, user: UserId, plays: Vec<NewPlay>) -> StoreResult<Vec<Recorded>> {
        self.group.record(user, plays, Patience::Live).await
    }

    async fn import_plays(&self, user: UserId, plays: Vec<NewPlay>) -> StoreResult<Vec<Recorded>> {
        self.group.record(user, plays, Patience::Bulk).await
    }

    async fn history_page(
        &self,
        user: UserId,
        query: &HistoryQuery,
        after: Option<PlayPosition>,
        limit: u32,
    ) -> StoreResult<Vec<Play>> {
        let mut sql = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            play_columns!(),
            " FROM plays WHERE user_id = "
        ));
        sql.push_bind(user);
        if let Some(since) = query.since {
            sql.push(" AND played_at >= ").push_bind(since);
        }
        if let Some(until) = query.until {
            sql.push(" AND played_at < ").push_bind(until);
        }
        if let Some(track) = query.track_id {
            sql.push(" AND track_id = ").push_bind(track);
        }
        if let Some(source) = &query.source {
            sql.push(" AND source = ").push_bind(source.clone());
        }
        if query.completed_only {
            sql.push(" AND completed = 1");
        }
        if query.counted_only {
            sql.push(" AND counted = 1");
        }
        let (cmp, dir) = match query.order {
            HistoryOrder::NewestFirst => ("<", "DESC"),
            HistoryOrder::OldestFirst => (">", "ASC"),
        };
        if let Some(after) = after {
            sql.push(format_args!(" AND (played_at, id) {cmp} ("))
                .push_bind(after.played_at)
                .push(", ")
                .push_bind(after.id)
                .push(")");
        }
        sql.push(format_args!(" ORDER BY played_at {dir}, id {dir} LIMIT "))
            .push_bind(i64::from(limit));
        let rows: Vec<PlayRow> = sql.build_query_as().fetch_all(&self.reader).await?;
        into_plays(rows)
    }

    async fn delete_play(&self, user: UserId, play: PlayId) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM plays WHERE user_id = ? AND id = ?")
            .bind(user)
            .bind(play)
            .execute(&mut *tx)
            .await?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            append(&mut tx, user, Entry::play_deleted(play), Timestamp::now()).await?;
        }
        tx.commit().await?;
        if deleted {
            self.feed.published([user]);
        }
        Ok(deleted)
    }

    async fn clear_history(
        &self,
        user: UserId,
        scope: &ClearScope,
        dry_run: bool,
    ) -> StoreResult<u64> {
        let since = scope.since.unwrap_or(Timestamp::MIN);
        let before = scope.before.unwrap_or(Timestamp::MAX);
        let track = scope.track_id;
        let source = scope.source.as_deref();
        if dry_run {
            let n: i64 = sqlx::query_scalar(concat!("SELECT COUNT(*) ", cleared!()))
                .bind(user)
                .bind(since)
                .bind(before)
                .bind(track)
                .bind(source)
                .fetch_one(&self.reader)
                .await?;
            return count(n);
        }
        // The delete trigger takes each play out of the aggregates and marks its snapshots stale.
        let mut tx = self.write().await?;
        let done = sqlx::query(concat!("DELETE ", cleared!()))
            .bind(user)
            .bind(since)
            .bind(before)
            .bind(track)
            .bind(source)
            .execute(&mut *tx)
            .await?;
        let deleted = done.rows_affected();
        if deleted > 0 {
            let entry = Entry::history_cleared(scope, deleted);
            append(&mut tx, user, entry, Timestamp::now()).await?;
        }
        tx.commit().await?;
        if deleted > 0 {
            self.feed.published([user]);
        }
        Ok(deleted)
    }
}
