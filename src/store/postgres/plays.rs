use sqlx::{FromRow, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{PgStore, micros, to_pg};
use crate::{
    domain::{
        HistoryOrder, HistoryQuery, NewPlay, Play, PlayId, PlayPosition, Recorded, Timestamp,
        UserId,
    },
    store::{
        StoreResult,
        rows::{PlayParts, count, new_play},
    },
};

#[derive(FromRow)]
struct PlayRow {
    user_id: Uuid,
    id: Uuid,
    track_id: Uuid,
    played_at: OffsetDateTime,
    played_for_seconds: i32,
    completed: bool,
    source: String,
}

impl PlayRow {
    fn into_play(self) -> StoreResult<Play> {
        PlayParts {
            user_id: self.user_id,
            id: self.id,
            track_id: self.track_id,
            played_at_micros: micros(self.played_at)?,
            played_for_seconds: i64::from(self.played_for_seconds),
            completed: self.completed,
            source: self.source,
        }
        .into_play()
    }
}

impl PgStore {
    pub(super) async fn insert_plays(
        &self,
        user: UserId,
        plays: Vec<NewPlay>,
    ) -> StoreResult<Vec<Recorded>> {
        let mut tx = self.pool.begin().await?;
        let mut results = Vec::with_capacity(plays.len());
        for p in &plays {
            let play = new_play(user, p);
            if let Some(request_id) = &p.request_id {
                // Claim the key first. A concurrent claimant waits here until the first commits,
                // then finds the key taken: exactly one play is stored.
                let claimed: Option<Uuid> = sqlx::query_scalar(
                    "INSERT INTO play_requests
                       (user_id, request_id, play_id, track_id, played_at, played_for_seconds, completed, source)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (user_id, request_id) DO NOTHING
                     RETURNING play_id",
                )
                .bind(user.as_uuid())
                .bind(request_id.as_str())
                .bind(play.id.as_uuid())
                .bind(play.track_id.as_uuid())
                .bind(to_pg(play.played_at))
                .bind(play.played_for_seconds as i32)
                .bind(play.completed)
                .bind(&play.source)
                .fetch_optional(&mut *tx)
                .await?;
                if claimed.is_none() {
                    let first: PlayRow = sqlx::query_as(
                        "SELECT user_id, play_id AS id, track_id, played_at, played_for_seconds, completed, source
                         FROM play_requests WHERE user_id = $1 AND request_id = $2",
                    )
                    .bind(user.as_uuid())
                    .bind(request_id.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                    results.push(Recorded {
                        play: first.into_play()?,
                        duplicate: true,
                    });
                    continue;
                }
            }
            sqlx::query(
                "INSERT INTO plays (user_id, played_at, id, track_id, played_for_seconds, completed, source)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(user.as_uuid())
            .bind(to_pg(play.played_at))
            .bind(play.id.as_uuid())
            .bind(play.track_id.as_uuid())
            .bind(play.played_for_seconds as i32)
            .bind(play.completed)
            .bind(&play.source)
            .execute(&mut *tx)
            .await?;
            results.push(Recorded {
                play,
                duplicate: false,
            });
        }
        tx.commit().await?;
        Ok(results)
    }

    pub(super) async fn select_history(
        &self,
        user: UserId,
        query: &HistoryQuery,
        after: Option<PlayPosition>,
        limit: u32,
    ) -> StoreResult<Vec<Play>> {
        // Built per request so that each query carries only its own conditions and the planner
        // can range-scan the (user_id, played_at, id) key from the cursor on.
        let mut sql = QueryBuilder::<Postgres>::new(
            "SELECT user_id, id, track_id, played_at, played_for_seconds, completed, source FROM plays WHERE user_id = ",
        );
        sql.push_bind(user.as_uuid());
        if let Some(since) = query.since {
            sql.push(" AND played_at >= ").push_bind(to_pg(since));
        }
        if let Some(until) = query.until {
            sql.push(" AND played_at < ").push_bind(to_pg(until));
        }
        if let Some(track) = query.track_id {
            sql.push(" AND track_id = ").push_bind(track.as_uuid());
        }
        if let Some(source) = &query.source {
            sql.push(" AND source = ").push_bind(source.clone());
        }
        if query.completed_only {
            sql.push(" AND completed");
        }
        let (cmp, dir) = match query.order {
            HistoryOrder::NewestFirst => ("<", "DESC"),
            HistoryOrder::OldestFirst => (">", "ASC"),
        };
        if let Some(after) = after {
            sql.push(format_args!(" AND (played_at, id) {cmp} ("))
                .push_bind(to_pg(after.played_at))
                .push(", ")
                .push_bind(after.id.as_uuid())
                .push(")");
        }
        sql.push(format_args!(" ORDER BY played_at {dir}, id {dir} LIMIT "))
            .push_bind(i64::from(limit));
        let rows: Vec<PlayRow> = sql.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(PlayRow::into_play).collect()
    }

    pub(super) async fn remove_play(&self, user: UserId, play: PlayId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM plays WHERE user_id = $1 AND id = $2")
            .bind(user.as_uuid())
            .bind(play.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn remove_history(
        &self,
        user: UserId,
        before: Option<Timestamp>,
        dry_run: bool,
    ) -> StoreResult<u64> {
        let before = before.map(to_pg);
        if dry_run {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM plays WHERE user_id = $1 AND ($2::timestamptz IS NULL OR played_at < $2)",
            )
            .bind(user.as_uuid())
            .bind(before)
            .fetch_one(&self.pool)
            .await?;
            return count(n);
        }
        let done = sqlx::query(
            "DELETE FROM plays WHERE user_id = $1 AND ($2::timestamptz IS NULL OR played_at < $2)",
        )
        .bind(user.as_uuid())
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
