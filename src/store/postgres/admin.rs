//! Platform-wide queries, retention and erasures for the admin service. Unlike listener queries
//! these span every user; each is either served by an index or bounded by partition pruning on
//! `played_at`.
use sqlx::{Postgres, QueryBuilder};

use super::{
    PgStore,
    counting::{counted_delete, tidy},
};

/// Plays deleted per transaction where retention cuts through a month.
const PURGE_CHUNK: i64 = 10_000;
use crate::{
    domain::{
        ListenerCount, QuarterTally, TimeRange, Timestamp, TrackErasure, TrackId, TrackLikes,
        UserErasure, UserId,
    },
    store::{
        AdminStore, StoreResult,
        admin::{ListenerRow, listeners, quarter_hours, track_erasure, track_likes},
        rows::count,
    },
};

impl AdminStore for PgStore {
    async fn top_listeners(&self, range: TimeRange, limit: u32) -> StoreResult<Vec<ListenerCount>> {
        let rows: Vec<ListenerRow> = if range == TimeRange::default() {
            // All time: one totals row per listener.
            sqlx::query_as(
                "SELECT user_id, plays, seconds FROM user_stats
                 ORDER BY plays DESC, seconds DESC, user_id LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
        } else {
            // Conditions only when set, so that the planner prunes the partitions outside them.
            let mut sql = QueryBuilder::<Postgres>::new(
                "SELECT user_id, count(*), sum(played_for_seconds)::int8 FROM plays WHERE true",
            );
            if let Some(since) = range.since {
                sql.push(" AND played_at >= ").push_bind(since);
            }
            if let Some(until) = range.until {
                sql.push(" AND played_at < ").push_bind(until);
            }
            sql.push(" GROUP BY user_id ORDER BY 2 DESC, 3 DESC, user_id LIMIT ")
                .push_bind(i64::from(limit));
            sql.build_query_as().fetch_all(&self.pool).await?
        };
        listeners(rows)
    }

    async fn most_liked_tracks(&self, limit: u32) -> StoreResult<Vec<TrackLikes>> {
        let rows = sqlx::query_as(
            "SELECT track_id, count(*) FROM liked_tracks
             GROUP BY track_id ORDER BY 2 DESC, track_id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        track_likes(rows)
    }

    async fn platform_quarter_hours(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Vec<QuarterTally>> {
        let rows = sqlx::query_as(
            "SELECT date_bin('15 minutes', played_at, timestamptz 'epoch') AS q, count(*),
                    sum(played_for_seconds)::int8
             FROM plays WHERE played_at >= $1 AND played_at < $2 GROUP BY q ORDER BY q",
        )
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        quarter_hours(rows)
    }

    /// Every partition that ends at or before `cutoff` is dropped whole (its plays taken out of
    /// the aggregates first, by `library_drop_play_partition`); the plays before `cutoff` in the
    /// one partition it cuts through are deleted by counted deletes of `PURGE_CHUNK` plays. Each
    /// partition and each chunk goes in its own transaction, so a failure part-way leaves every
    /// figure right and a re-run finishes the job. These statements span every listener: on a
    /// database sharded by user they run on every shard.
    async fn purge_plays_before(&self, cutoff: Timestamp, dry_run: bool) -> StoreResult<u64> {
        if dry_run {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plays WHERE played_at < $1")
                .bind(cutoff)
                .fetch_one(&self.pool)
                .await?;
            return count(n);
        }
        let whole: Vec<String> = sqlx::query_scalar(
            "SELECT part::text FROM library_play_partitions WHERE upper_bound <= $1 ORDER BY upper_bound",
        )
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        let mut deleted = 0u64;
        for part in whole {
            let mut tx = self.pool.begin().await?;
            // First, so that no write can add plays to the partition between the counting of
            // its plays out of the aggregates and its drop (they would vanish uncounted). A
            // write waiting for it then finds no partition and creates it again. The name is
            // a regclass's text, quoted as SQL needs it.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "LOCK TABLE {part} IN ACCESS EXCLUSIVE MODE"
            )))
            .execute(&mut *tx)
            .await?;
            let n: i64 = sqlx::query_scalar("SELECT library_drop_play_partition($1::regclass)")
                .bind(&part)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            self.partitions.forget();
            tracing::info!(partition = %part, plays = n, "dropped a plays partition for retention");
            deleted += count(n)?;
        }
        loop {
            let mut tx = self.pool.begin().await?;
            let rows = sqlx::query_as(counted_delete!(
                "DELETE FROM plays WHERE (user_id, played_at, id) IN (
                     SELECT user_id, played_at, id FROM plays WHERE played_at < $1 LIMIT $2)"
            ))
            .bind(cutoff)
            .bind(PURGE_CHUNK)
            .fetch_all(&mut *tx)
            .await?;
            let n = tidy(&mut tx, rows).await?;
            tx.commit().await?;
            deleted += n;
            if n < PURGE_CHUNK as u64 {
                return Ok(deleted);
            }
        }
    }

    /// One transaction: either every trace of the user goes, or none.
    async fn delete_user_data(&self, user: UserId) -> StoreResult<UserErasure> {
        let mut tx = self.pool.begin().await?;
        let mut erased = UserErasure::default();
        for (statement, removed) in [
            (
                "DELETE FROM plays WHERE user_id = $1",
                Some(&mut erased.plays),
            ),
            (
                "DELETE FROM liked_tracks WHERE user_id = $1",
                Some(&mut erased.likes),
            ),
            (
                "DELETE FROM play_requests WHERE user_id = $1",
                Some(&mut erased.requests),
            ),
            // Nothing of the listener is left to count: the aggregates go whole.
            ("DELETE FROM user_stats WHERE user_id = $1", None),
            ("DELETE FROM user_track_stats WHERE user_id = $1", None),
            ("DELETE FROM user_source_stats WHERE user_id = $1", None),
            ("DELETE FROM user_quarter_stats WHERE user_id = $1", None),
            ("DELETE FROM user_period_stats WHERE user_id = $1", None),
            // The events go; the listener's event counter (a number, nothing else) stays, so
            // that a cursor from before is refused as expired instead of meeting new events
            // that reuse its numbers.
            ("DELETE FROM library_events WHERE user_id = $1", None),
            ("DELETE FROM now_playing WHERE user_id = $1", None),
        ] {
            let done = sqlx::query(statement).bind(user).execute(&mut *tx).await?;
            if let Some(removed) = removed {
                *removed = done.rows_affected();
            }
        }
        tx.commit().await?;
        // Erased data leaves this process's memory too.
        self.cache.forget_user(user);
        Ok(erased)
    }

    /// The listeners who played the track are found through the per-track aggregates (indexed
    /// by track), so each of their plays is deleted through an index that starts with user_id.
    async fn delete_track_data(&self, track: TrackId) -> StoreResult<TrackErasure> {
        let mut tx = self.pool.begin().await?;
        let players: Vec<UserId> =
            sqlx::query_scalar("SELECT user_id FROM user_track_stats WHERE track_id = $1")
                .bind(track)
                .fetch_all(&mut *tx)
                .await?;
        let rows = sqlx::query_as(counted_delete!(
            "DELETE FROM plays WHERE user_id = ANY($1) AND track_id = $2"
        ))
        .bind(&players)
        .bind(track)
        .fetch_all(&mut *tx)
        .await?;
        let plays = tidy(&mut tx, rows).await?;
        sqlx::query("DELETE FROM play_requests WHERE user_id = ANY($1) AND track_id = $2")
            .bind(&players)
            .bind(track)
            .execute(&mut *tx)
            .await?;
        let likers: Vec<UserId> =
            sqlx::query_scalar("DELETE FROM liked_tracks WHERE track_id = $1 RETURNING user_id")
                .bind(track)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(track_erasure(plays, &players, &likers))
    }
}
