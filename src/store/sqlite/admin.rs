//! Platform-wide queries, retention and erasures for the admin service, as in the PostgreSQL
//! store.
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::{
    domain::{
        ListenerCount, QUARTER_HOUR_MICROS, QuarterTally, TimeRange, Timestamp, TrackErasure,
        TrackId, TrackLikes, UserErasure, UserId,
    },
    store::{
        AdminStore, StoreResult,
        admin::{ListenerRow, listeners, quarter_hours, track_erasure, track_likes},
        rows::count,
    },
};

impl AdminStore for SqliteStore {
    async fn top_listeners(&self, range: TimeRange, limit: u32) -> StoreResult<Vec<ListenerCount>> {
        let rows: Vec<ListenerRow> = if range == TimeRange::default() {
            sqlx::query_as(
                "SELECT user_id, plays, seconds FROM user_stats
                 ORDER BY plays DESC, seconds DESC, user_id LIMIT ?",
            )
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?
        } else {
            let mut sql = QueryBuilder::<Sqlite>::new(
                "SELECT user_id, count(*), sum(played_for_seconds) FROM plays WHERE 1",
            );
            if let Some(since) = range.since {
                sql.push(" AND played_at >= ").push_bind(since);
            }
            if let Some(until) = range.until {
                sql.push(" AND played_at < ").push_bind(until);
            }
            sql.push(" GROUP BY user_id ORDER BY 2 DESC, 3 DESC, user_id LIMIT ")
                .push_bind(i64::from(limit));
            sql.build_query_as().fetch_all(&self.reader).await?
        };
        listeners(rows)
    }

    async fn most_liked_tracks(&self, limit: u32) -> StoreResult<Vec<TrackLikes>> {
        let rows = sqlx::query_as(
            "SELECT track_id, count(*) FROM liked_tracks
             GROUP BY track_id ORDER BY 2 DESC, track_id LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        track_likes(rows)
    }

    async fn platform_quarter_hours(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Vec<QuarterTally>> {
        // Floor division, written out: SQLite's % truncates toward zero.
        let rows = sqlx::query_as(
            "SELECT played_at - (((played_at % ?1) + ?1) % ?1) AS start, count(*),
                    sum(played_for_seconds)
             FROM plays WHERE played_at >= ?2 AND played_at < ?3 GROUP BY start ORDER BY start",
        )
        .bind(QUARTER_HOUR_MICROS)
        .bind(since)
        .bind(until)
        .fetch_all(&self.reader)
        .await?;
        quarter_hours(rows)
    }

    /// In chunks, each its own write transaction; the delete trigger keeps the aggregates.
    async fn purge_plays_before(&self, cutoff: Timestamp, dry_run: bool) -> StoreResult<u64> {
        if dry_run {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plays WHERE played_at < ?")
                .bind(cutoff)
                .fetch_one(&self.reader)
                .await?;
            return count(n);
        }
        self.delete_in_chunks(
            "DELETE FROM plays WHERE (user_id, played_at, id) IN
               (SELECT user_id, played_at, id FROM plays WHERE played_at < ? LIMIT ?)",
            |q| q.bind(cutoff),
        )
        .await
    }

    async fn delete_user_data(&self, user: UserId) -> StoreResult<UserErasure> {
        let mut tx = self.write().await?;
        let mut erased = UserErasure::default();
        for (statement, removed) in [
            (
                "DELETE FROM plays WHERE user_id = ?",
                Some(&mut erased.plays),
            ),
            (
                "DELETE FROM liked_tracks WHERE user_id = ?",
                Some(&mut erased.likes),
            ),
            (
                "DELETE FROM play_requests WHERE user_id = ?",
                Some(&mut erased.requests),
            ),
            // Emptied by the delete trigger already; this leaves nothing even if a row drifted.
            ("DELETE FROM user_stats WHERE user_id = ?", None),
            ("DELETE FROM user_track_stats WHERE user_id = ?", None),
            ("DELETE FROM user_source_stats WHERE user_id = ?", None),
            ("DELETE FROM user_quarter_stats WHERE user_id = ?", None),
            ("DELETE FROM user_period_stats WHERE user_id = ?", None),
            // The events go; the listener's event counter (a number, nothing else) stays, so
            // that a cursor from before is refused as expired instead of meeting new events
            // that reuse its numbers.
            ("DELETE FROM library_events WHERE user_id = ?", None),
            ("DELETE FROM now_playing WHERE user_id = ?", None),
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

    async fn delete_track_data(&self, track: TrackId) -> StoreResult<TrackErasure> {
        let mut tx = self.write().await?;
        let players: Vec<UserId> =
            sqlx::query_scalar("SELECT user_id FROM user_track_stats WHERE track_id = ?")
                .bind(track)
                .fetch_all(&mut *tx)
                .await?;
        let mut plays = 0;
        for user in &players {
            plays += sqlx::query("DELETE FROM plays WHERE user_id = ? AND track_id = ?")
                .bind(user)
                .bind(track)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM play_requests WHERE user_id = ? AND track_id = ?")
                .bind(user)
                .bind(track)
                .execute(&mut *tx)
                .await?;
        }
        let likers: Vec<UserId> =
            sqlx::query_scalar("DELETE FROM liked_tracks WHERE track_id = ? RETURNING user_id")
                .bind(track)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(track_erasure(plays, &players, &likers))
    }
}
