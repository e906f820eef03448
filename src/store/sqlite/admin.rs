//! Platform-wide queries and erasures for the admin service, as in the PostgreSQL store.
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use super::SqliteStore;
use crate::{
    domain::{
        ListenerCount, QUARTER_HOUR_MICROS, QuarterHour, TimeRange, Timestamp, TrackErasure,
        TrackId, TrackLikes, UserErasure, UserId,
    },
    store::{
        StoreResult,
        rows::{count, timestamp},
    },
};

impl SqliteStore {
    pub(super) async fn select_top_listeners(
        &self,
        range: TimeRange,
        limit: u32,
    ) -> StoreResult<Vec<ListenerCount>> {
        let rows: Vec<(Uuid, i64, i64)> = if range == TimeRange::default() {
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
                sql.push(" AND played_at >= ").push_bind(since.as_micros());
            }
            if let Some(until) = range.until {
                sql.push(" AND played_at < ").push_bind(until.as_micros());
            }
            sql.push(" GROUP BY user_id ORDER BY 2 DESC, 3 DESC, user_id LIMIT ")
                .push_bind(i64::from(limit));
            sql.build_query_as().fetch_all(&self.reader).await?
        };
        rows.into_iter()
            .map(|(user, plays, seconds)| {
                Ok(ListenerCount {
                    user_id: UserId::from_uuid(user),
                    plays: count(plays)?,
                    seconds: count(seconds)?,
                })
            })
            .collect()
    }

    pub(super) async fn select_most_liked(&self, limit: u32) -> StoreResult<Vec<TrackLikes>> {
        let rows: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT track_id, count(*) FROM liked_tracks
             GROUP BY track_id ORDER BY 2 DESC, track_id LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(track, likes)| {
                Ok(TrackLikes {
                    track_id: TrackId::from_uuid(track),
                    likes: count(likes)?,
                })
            })
            .collect()
    }

    pub(super) async fn select_platform_quarters(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Vec<QuarterHour>> {
        // Floor division, written out: SQLite's % truncates toward zero.
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT played_at - (((played_at % ?1) + ?1) % ?1) AS start, count(*),
                    sum(played_for_seconds)
             FROM plays WHERE played_at >= ?2 AND played_at < ?3 GROUP BY start ORDER BY start",
        )
        .bind(QUARTER_HOUR_MICROS)
        .bind(since.as_micros())
        .bind(until.as_micros())
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(start, plays, seconds)| {
                Ok(QuarterHour {
                    start: timestamp(start)?,
                    plays: count(plays)?,
                    seconds: count(seconds)?,
                })
            })
            .collect()
    }

    pub(super) async fn erase_user(&self, user: UserId) -> StoreResult<UserErasure> {
        let mut tx = self.write().await?;
        let id = user.as_uuid();
        let mut removed = [0u64; 3];
        for (i, statement) in [
            "DELETE FROM plays WHERE user_id = ?",
            "DELETE FROM liked_tracks WHERE user_id = ?",
            "DELETE FROM play_requests WHERE user_id = ?",
            // Emptied by the delete trigger already; this leaves nothing even if a row drifted.
            "DELETE FROM user_stats WHERE user_id = ?",
            "DELETE FROM user_track_stats WHERE user_id = ?",
            "DELETE FROM user_source_stats WHERE user_id = ?",
            "DELETE FROM user_quarter_stats WHERE user_id = ?",
        ]
        .into_iter()
        .enumerate()
        {
            let done = sqlx::query(statement).bind(id).execute(&mut *tx).await?;
            if let Some(slot) = removed.get_mut(i) {
                *slot = done.rows_affected();
            }
        }
        tx.commit().await?;
        let [plays, likes, requests] = removed;
        Ok(UserErasure {
            plays,
            likes,
            requests,
        })
    }

    pub(super) async fn erase_track(&self, track: TrackId) -> StoreResult<TrackErasure> {
        let mut tx = self.write().await?;
        let id = track.as_uuid();
        let players: Vec<Uuid> =
            sqlx::query_scalar("SELECT user_id FROM user_track_stats WHERE track_id = ?")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        let mut plays = 0;
        for user in &players {
            plays += sqlx::query("DELETE FROM plays WHERE user_id = ? AND track_id = ?")
                .bind(user)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM play_requests WHERE user_id = ? AND track_id = ?")
                .bind(user)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let likers: Vec<Uuid> =
            sqlx::query_scalar("DELETE FROM liked_tracks WHERE track_id = ? RETURNING user_id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        let mut users: Vec<Uuid> = players.into_iter().chain(likers.iter().copied()).collect();
        users.sort_unstable();
        users.dedup();
        Ok(TrackErasure {
            plays,
            likes: likers.len() as u64,
            users: users.len() as u64,
        })
    }
}
