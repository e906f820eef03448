use sqlx::{FromRow, QueryBuilder, Sqlite};
use uuid::Uuid;

use super::SqliteStore;
use crate::{
    domain::{PlayStats, TimeRange, UserId},
    store::{StoreResult, rows::RawStats},
};

const QUARTER_HOUR_MICROS: i64 = 900_000_000;

#[derive(FromRow)]
struct Totals {
    plays: i64,
    completed: i64,
    seconds: i64,
    tracks: i64,
    first: Option<i64>,
    last: Option<i64>,
}

/// `FROM plays WHERE user_id = ? [AND played_at in range]`, ready for more clauses.
fn scoped(select: &str, user: UserId, range: TimeRange) -> QueryBuilder<Sqlite> {
    let mut sql = QueryBuilder::new(format!("{select} FROM plays WHERE user_id = "));
    sql.push_bind(user.as_uuid());
    if let Some(since) = range.since {
        sql.push(" AND played_at >= ").push_bind(since.as_micros());
    }
    if let Some(until) = range.until {
        sql.push(" AND played_at < ").push_bind(until.as_micros());
    }
    sql
}

impl SqliteStore {
    pub(super) async fn compute_stats(
        &self,
        user: UserId,
        range: TimeRange,
        top_tracks: u32,
        buckets: TimeRange,
    ) -> StoreResult<PlayStats> {
        let totals: Totals = scoped(
            "SELECT COUNT(*) AS plays, COALESCE(SUM(completed), 0) AS completed,
                    COALESCE(SUM(played_for_seconds), 0) AS seconds, COUNT(DISTINCT track_id) AS tracks,
                    MIN(played_at) AS first, MAX(played_at) AS last",
            user,
            range,
        )
        .build_query_as()
        .fetch_one(&self.reader)
        .await?;

        let mut top = scoped(
            "SELECT track_id, COUNT(*), SUM(played_for_seconds)",
            user,
            range,
        );
        top.push(" GROUP BY track_id ORDER BY 2 DESC, 3 DESC, track_id ASC LIMIT ")
            .push_bind(i64::from(top_tracks));
        let top: Vec<(Uuid, i64, i64)> = top.build_query_as().fetch_all(&self.reader).await?;

        let mut sources = scoped("SELECT source, COUNT(*)", user, range);
        sources.push(" GROUP BY source ORDER BY 2 DESC, source ASC");
        let sources: Vec<(String, i64)> = sources.build_query_as().fetch_all(&self.reader).await?;

        // Floor division, also right for times before 1970.
        let mut quarters = scoped(
            &format!(
                "SELECT played_at - (((played_at % {q}) + {q}) % {q}) AS start, COUNT(*), SUM(played_for_seconds)",
                q = QUARTER_HOUR_MICROS
            ),
            user,
            buckets,
        );
        quarters.push(" GROUP BY start ORDER BY start");
        let quarters: Vec<(i64, i64, i64)> =
            quarters.build_query_as().fetch_all(&self.reader).await?;

        let liked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM liked_tracks WHERE user_id = ?")
            .bind(user.as_uuid())
            .fetch_one(&self.reader)
            .await?;

        RawStats {
            plays: totals.plays,
            completed: totals.completed,
            seconds: totals.seconds,
            tracks: totals.tracks,
            first: totals.first,
            last: totals.last,
            top,
            sources,
            quarters,
            liked,
        }
        .into_stats()
    }
}
