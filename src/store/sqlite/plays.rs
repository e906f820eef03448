//! Recording, listing and deleting one listener's plays.
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::SqliteStore;
use crate::{
    domain::{
        HistoryOrder, HistoryQuery, NewPlay, Period, Play, PlayId, PlayPosition, Recorded,
        Timestamp, UserId,
    },
    store::{
        PlayStore, StoreResult,
        group::{GroupWrite, Job, Patience},
        rows::{PlayRow, count, into_plays, new_play, play_columns},
        stats::period_key,
    },
};

/// The single writer, as the group commit drives it: a group is one `BEGIN IMMEDIATE`
/// transaction, one statement per play (SQLite has no round trip to save, and a key seen
/// earlier in the group is found by the next lookup).
#[derive(Clone)]
pub(super) struct SqliteWriter {
    pub(super) writer: SqlitePool,
}

impl GroupWrite for SqliteWriter {
    async fn write_group(&self, jobs: &[Job]) -> StoreResult<Vec<Vec<Recorded>>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let now = Timestamp::now();
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            results.push(record_into(&mut tx, job.user, &job.plays, now).await?);
        }
        tx.commit().await?;
        Ok(results)
    }
}

/// Stores one call's plays in the writer's open transaction.
async fn record_into(
    conn: &mut SqliteConnection,
    user: UserId,
    plays: &[NewPlay],
    now: Timestamp,
) -> StoreResult<Vec<Recorded>> {
    let mut results = Vec::with_capacity(plays.len());
    for p in plays {
        if let Some(request_id) = &p.request_id {
            let first: Option<PlayRow> = sqlx::query_as(
                "SELECT user_id, play_id AS id, track_id, played_at, played_for_seconds, completed,
                        source, track_duration_seconds, counted
                 FROM play_requests WHERE user_id = ? AND request_id = ?",
            )
            .bind(user)
            .bind(request_id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(first) = first {
                results.push(Recorded {
                    play: first.into_play()?,
                    duplicate: true,
                });
                continue;
            }
        }
        let play = new_play(user, p);
        sqlx::query(
            "INSERT INTO plays (user_id, played_at, id, track_id, played_for_seconds, completed, source,
                                recorded_at, track_duration_seconds, counted)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user)
        .bind(play.played_at)
        .bind(play.id)
        .bind(play.track_id)
        .bind(i64::from(play.played_for_seconds))
        .bind(play.completed)
        .bind(&play.source)
        .bind(now)
        .bind(play.track_duration_seconds.map(i64::from))
        .bind(play.counted)
        .execute(&mut *conn)
        .await?;
        if let Some(request_id) = &p.request_id {
            sqlx::query(
                "INSERT INTO play_requests
                   (user_id, request_id, play_id, track_id, played_at, played_for_seconds, completed,
                    source, created_at, track_duration_seconds, counted)
                 SELECT user_id, ?, id, track_id, played_at, played_for_seconds, completed, source,
                        ?, track_duration_seconds, counted
                 FROM plays WHERE user_id = ? AND played_at = ? AND id = ?",
            )
            .bind(request_id.as_str())
            .bind(now)
            .bind(user)
            .bind(play.played_at)
            .bind(play.id)
            .execute(&mut *conn)
            .await?;
        }
        results.push(Recorded {
            play,
            duplicate: false,
        });
    }
    // The snapshots of the finished days and months that gained plays are stale from now
    // on, in this transaction; once per period, where a row trigger would do it per play.
    let mut stale: Vec<Period> = results
        .iter()
        .filter(|r| !r.duplicate)
        .flat_map(|r| Period::holding(r.play.played_at))
        .filter(|period| period.end() <= now)
        .collect();
    stale.sort_unstable();
    stale.dedup();
    for period in stale {
        let (kind, start) = period_key(period);
        sqlx::query(
            "INSERT INTO user_period_stats (user_id, period_kind, period_start, generation)
             VALUES (?, ?, ?, 1)
             ON CONFLICT (user_id, period_kind, period_start) DO UPDATE
             SET generation = generation + 1, built_generation = NULL,
                 tracks = NULL, sources = NULL, quarters = NULL",
        )
        .bind(user)
        .bind(kind)
        .bind(start)
        .execute(&mut *conn)
        .await?;
    }
    Ok(results)
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
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn clear_history(
        &self,
        user: UserId,
        before: Option<Timestamp>,
        dry_run: bool,
    ) -> StoreResult<u64> {
        let before = before.unwrap_or(Timestamp::MAX);
        if dry_run {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM plays WHERE user_id = ? AND played_at < ?",
            )
            .bind(user)
            .bind(before)
            .fetch_one(&self.reader)
            .await?;
            return count(n);
        }
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM plays WHERE user_id = ? AND played_at < ?")
            .bind(user)
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
