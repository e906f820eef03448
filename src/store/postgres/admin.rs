//! Platform-wide queries and erasures for the admin service. Unlike listener queries these span
//! every user; each is either served by an index or bounded by partition pruning on `played_at`.
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::{PgStore, micros, to_pg};
use crate::{
    domain::{
        ListenerCount, QuarterHour, TimeRange, Timestamp, TrackErasure, TrackId, TrackLikes,
        UserErasure, UserId,
    },
    store::{
        StoreResult,
        rows::{count, timestamp},
    },
};

impl PgStore {
    pub(super) async fn select_top_listeners(
        &self,
        range: TimeRange,
        limit: u32,
    ) -> StoreResult<Vec<ListenerCount>> {
        let rows: Vec<(Uuid, i64, i64)> = if range == TimeRange::default() {
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
                sql.push(" AND played_at >= ").push_bind(to_pg(since));
            }
            if let Some(until) = range.until {
                sql.push(" AND played_at < ").push_bind(to_pg(until));
            }
            sql.push(" GROUP BY user_id ORDER BY 2 DESC, 3 DESC, user_id LIMIT ")
                .push_bind(i64::from(limit));
            sql.build_query_as().fetch_all(&self.pool).await?
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
             GROUP BY track_id ORDER BY 2 DESC, track_id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        let rows: Vec<(time::OffsetDateTime, i64, i64)> = sqlx::query_as(
            "SELECT date_bin('15 minutes', played_at, timestamptz 'epoch') AS q, count(*),
                    sum(played_for_seconds)::int8
             FROM plays WHERE played_at >= $1 AND played_at < $2 GROUP BY q ORDER BY q",
        )
        .bind(to_pg(since))
        .bind(to_pg(until))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(start, plays, seconds)| {
                Ok(QuarterHour {
                    start: timestamp(micros(start)?)?,
                    plays: count(plays)?,
                    seconds: count(seconds)?,
                })
            })
            .collect()
    }

    /// One transaction: either every trace of the user goes, or none.
    pub(super) async fn erase_user(&self, user: UserId) -> StoreResult<UserErasure> {
        let mut tx = self.pool.begin().await?;
        let id = user.as_uuid();
        let plays = sqlx::query("DELETE FROM plays WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let likes = sqlx::query("DELETE FROM liked_tracks WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let requests = sqlx::query("DELETE FROM play_requests WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // The delete trigger already emptied these; this makes sure nothing is left even if an
        // aggregate row had drifted.
        for statement in [
            "DELETE FROM user_stats WHERE user_id = $1",
            "DELETE FROM user_track_stats WHERE user_id = $1",
            "DELETE FROM user_source_stats WHERE user_id = $1",
            "DELETE FROM user_quarter_stats WHERE user_id = $1",
        ] {
            sqlx::query(statement).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(UserErasure {
            plays,
            likes,
            requests,
        })
    }

    /// The listeners who played the track are found through the per-track aggregates (indexed
    /// by track), so each of their plays is deleted through an index that starts with user_id.
    pub(super) async fn erase_track(&self, track: TrackId) -> StoreResult<TrackErasure> {
        let mut tx = self.pool.begin().await?;
        let id = track.as_uuid();
        let players: Vec<Uuid> =
            sqlx::query_scalar("SELECT user_id FROM user_track_stats WHERE track_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        let plays = sqlx::query("DELETE FROM plays WHERE user_id = ANY($1) AND track_id = $2")
            .bind(&players)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM play_requests WHERE user_id = ANY($1) AND track_id = $2")
            .bind(&players)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let likers: Vec<Uuid> =
            sqlx::query_scalar("DELETE FROM liked_tracks WHERE track_id = $1 RETURNING user_id")
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
