//! The statistics' SQL (the flow is `store::stats`). All-time figures come from the aggregate
//! tables the triggers of migration 0002 keep (no scan of the history); a bounded range reads
//! only that range's plays.
use sqlx::{Postgres, QueryBuilder, Transaction};

use super::PgStore;
use crate::{
    domain::{TimeRange, Timestamp, UserId},
    store::{
        StoreResult,
        stats::{QuarterRow, SourceRow, StatsSql, TotalsRow, TrackRow},
    },
};

/// `{select} FROM plays WHERE user_id = $1 [AND played_at in range]`, ready for more clauses.
fn scoped(select: &'static str, user: UserId, range: TimeRange) -> QueryBuilder<Postgres> {
    let mut sql = QueryBuilder::new(select);
    sql.push(" FROM plays WHERE user_id = ").push_bind(user);
    if let Some(since) = range.since {
        sql.push(" AND played_at >= ").push_bind(since);
    }
    if let Some(until) = range.until {
        sql.push(" AND played_at < ").push_bind(until);
    }
    sql
}

fn all_time(range: TimeRange) -> bool {
    range == TimeRange::default()
}

impl StatsSql for PgStore {
    type Snapshot = Transaction<'static, Postgres>;

    async fn snapshot(&self) -> StoreResult<Self::Snapshot> {
        Ok(self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?)
    }

    async fn close(snapshot: Self::Snapshot) -> StoreResult<()> {
        Ok(snapshot.commit().await?)
    }

    async fn totals(
        s: &mut Self::Snapshot,
        user: UserId,
        range: TimeRange,
    ) -> StoreResult<TotalsRow> {
        if all_time(range) {
            // The totals row: one probe, not a walk over every monthly partition.
            return Ok(sqlx::query_as(
                "SELECT COALESCE(s.plays, 0) AS plays, COALESCE(s.completed, 0) AS completed,
                        COALESCE(s.seconds, 0) AS seconds, COALESCE(s.tracks, 0) AS tracks,
                        s.first_played_at AS first, s.last_played_at AS last
                 FROM (SELECT 1) AS one LEFT JOIN user_stats s ON s.user_id = $1",
            )
            .bind(user)
            .fetch_one(&mut **s)
            .await?);
        }
        Ok(scoped(
            "SELECT COUNT(*) AS plays, COUNT(*) FILTER (WHERE completed) AS completed,
                    COALESCE(SUM(played_for_seconds), 0)::int8 AS seconds,
                    COUNT(DISTINCT track_id) AS tracks, MIN(played_at) AS first,
                    MAX(played_at) AS last",
            user,
            range,
        )
        .build_query_as()
        .fetch_one(&mut **s)
        .await?)
    }

    async fn top_tracks(
        s: &mut Self::Snapshot,
        user: UserId,
        range: TimeRange,
        limit: u32,
    ) -> StoreResult<Vec<TrackRow>> {
        if all_time(range) {
            return Ok(sqlx::query_as(
                "SELECT track_id, plays, seconds FROM user_track_stats WHERE user_id = $1
                 ORDER BY plays DESC, seconds DESC, track_id ASC LIMIT $2",
            )
            .bind(user)
            .bind(i64::from(limit))
            .fetch_all(&mut **s)
            .await?);
        }
        let mut sql = scoped(
            "SELECT track_id, COUNT(*), SUM(played_for_seconds)::int8",
            user,
            range,
        );
        sql.push(" GROUP BY track_id ORDER BY 2 DESC, 3 DESC, track_id ASC LIMIT ")
            .push_bind(i64::from(limit));
        Ok(sql.build_query_as().fetch_all(&mut **s).await?)
    }

    async fn sources(
        s: &mut Self::Snapshot,
        user: UserId,
        range: TimeRange,
    ) -> StoreResult<Vec<SourceRow>> {
        // Byte order, as SQLite sorts, whatever the database's collation.
        if all_time(range) {
            return Ok(sqlx::query_as(
                "SELECT source, plays FROM user_source_stats WHERE user_id = $1
                 ORDER BY plays DESC, source COLLATE \"C\" ASC",
            )
            .bind(user)
            .fetch_all(&mut **s)
            .await?);
        }
        let mut sql = scoped("SELECT source, COUNT(*)", user, range);
        sql.push(" GROUP BY source ORDER BY 2 DESC, source COLLATE \"C\" ASC");
        Ok(sql.build_query_as().fetch_all(&mut **s).await?)
    }

    async fn whole_quarters(
        s: &mut Self::Snapshot,
        user: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<QuarterRow>> {
        Ok(sqlx::query_as(
            "SELECT quarter_start, plays, seconds FROM user_quarter_stats
             WHERE user_id = $1 AND quarter_start >= $2 AND quarter_start < $3
             ORDER BY quarter_start",
        )
        .bind(user)
        .bind(from)
        .bind(to)
        .fetch_all(&mut **s)
        .await?)
    }

    async fn plays_between(
        s: &mut Self::Snapshot,
        user: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<(i64, i64)> {
        Ok(sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(played_for_seconds), 0)::int8 FROM plays
             WHERE user_id = $1 AND played_at >= $2 AND played_at < $3",
        )
        .bind(user)
        .bind(from)
        .bind(to)
        .fetch_one(&mut **s)
        .await?)
    }

    async fn liked_count(s: &mut Self::Snapshot, user: UserId) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM liked_tracks WHERE user_id = $1")
                .bind(user)
                .fetch_one(&mut **s)
                .await?,
        )
    }
}
