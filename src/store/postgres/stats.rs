use sqlx::{FromRow, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{PgStore, micros, to_pg};
use crate::{
    domain::{PlayStats, TimeRange, UserId},
    store::{StoreResult, rows::RawStats},
};

#[derive(FromRow)]
struct Totals {
    plays: i64,
    completed: i64,
    seconds: i64,
    tracks: i64,
    first: Option<OffsetDateTime>,
    last: Option<OffsetDateTime>,
}

fn scoped(select: &str, user: UserId, range: TimeRange) -> QueryBuilder<Postgres> {
    let mut sql = QueryBuilder::new(format!("{select} FROM plays WHERE user_id = "));
    sql.push_bind(user.as_uuid());
    if let Some(since) = range.since {
        sql.push(" AND played_at >= ").push_bind(to_pg(since));
    }
    if let Some(until) = range.until {
        sql.push(" AND played_at < ").push_bind(to_pg(until));
    }
    sql
}

impl PgStore {
    pub(super) async fn compute_stats(
        &self,
        user: UserId,
        range: TimeRange,
        top_tracks: u32,
        buckets: TimeRange,
    ) -> StoreResult<PlayStats> {
        let totals: Totals = scoped(
            "SELECT COUNT(*) AS plays, COUNT(*) FILTER (WHERE completed) AS completed,
                    COALESCE(SUM(played_for_seconds), 0)::int8 AS seconds, COUNT(DISTINCT track_id) AS tracks,
                    MIN(played_at) AS first, MAX(played_at) AS last",
            user,
            range,
        )
        .build_query_as()
        .fetch_one(&self.pool)
        .await?;

        let mut top = scoped(
            "SELECT track_id, COUNT(*), SUM(played_for_seconds)::int8",
            user,
            range,
        );
        top.push(" GROUP BY track_id ORDER BY 2 DESC, 3 DESC, track_id ASC LIMIT ")
            .push_bind(i64::from(top_tracks));
        let top: Vec<(Uuid, i64, i64)> = top.build_query_as().fetch_all(&self.pool).await?;

        // Byte order, as SQLite sorts, whatever the database's collation.
        let mut sources = scoped("SELECT source, COUNT(*)", user, range);
        sources.push(" GROUP BY source ORDER BY 2 DESC, source COLLATE \"C\" ASC");
        let sources: Vec<(String, i64)> = sources.build_query_as().fetch_all(&self.pool).await?;

        // extract(epoch) is numeric (exact) since PostgreSQL 14.
        let mut quarters = scoped(
            "SELECT (floor(extract(epoch FROM played_at) / 900) * 900)::int8 * 1000000 AS start,
                    COUNT(*), SUM(played_for_seconds)::int8",
            user,
            buckets,
        );
        quarters.push(" GROUP BY 1 ORDER BY 1");
        let quarters: Vec<(i64, i64, i64)> =
            quarters.build_query_as().fetch_all(&self.pool).await?;

        let liked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM liked_tracks WHERE user_id = $1")
            .bind(user.as_uuid())
            .fetch_one(&self.pool)
            .await?;

        RawStats {
            plays: totals.plays,
            completed: totals.completed,
            seconds: totals.seconds,
            tracks: totals.tracks,
            first: totals.first.map(micros).transpose()?,
            last: totals.last.map(micros).transpose()?,
            top,
            sources,
            quarters,
            liked,
        }
        .into_stats()
    }
}
