//! The statistics' SQL (the flow is `store::stats`).
use sqlx::{Postgres, QueryBuilder, Transaction};

use super::PgStore;
use crate::{
    domain::{
        Counts, Period, QuarterTally, SourceTally, TimeRange, Timestamp, TrackId, TrackTally,
        UserId,
    },
    store::{
        StoreResult,
        cache::SnapshotCache,
        stats::{
            AllTime, AllTimeRow, Built, CountsRow, Overview, OverviewRow, PeriodDbRow, PeriodRow,
            QuarterRow, SourceRow, StatsSql, TrackCountRow, TrackRow, overview, period_key,
            periods, quarters, sources, track_counts, tracks,
        },
    },
};

/// `{select} FROM plays WHERE user_id = $1 AND played_at in [since, until)`, for more clauses.
fn plays_in(
    select: &'static str,
    user: UserId,
    since: Timestamp,
    until: Option<Timestamp>,
) -> QueryBuilder<Postgres> {
    let mut sql = QueryBuilder::new(select);
    sql.push(" FROM plays WHERE user_id = ")
        .push_bind(user)
        .push(" AND played_at >= ")
        .push_bind(since);
    if let Some(until) = until {
        sql.push(" AND played_at < ").push_bind(until);
    }
    sql
}

impl StatsSql for PgStore {
    type Snapshot = Transaction<'static, Postgres>;

    fn snapshot_cache(&self) -> &SnapshotCache {
        &self.cache
    }

    async fn snapshot(&self) -> StoreResult<Self::Snapshot> {
        Ok(super::begin(
            &self.pool,
            Some("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
        )
        .await?)
    }

    async fn close(snapshot: Self::Snapshot) -> StoreResult<()> {
        Ok(snapshot.commit().await?)
    }

    async fn all_time(s: &mut Self::Snapshot, user: UserId) -> StoreResult<AllTime> {
        let row: AllTimeRow = sqlx::query_as(
            "SELECT COALESCE(s.plays, 0) AS plays, COALESCE(s.counted, 0) AS counted,
                    COALESCE(s.completed, 0) AS completed, COALESCE(s.seconds, 0) AS seconds,
                    COALESCE(s.tracks, 0) AS tracks, s.first_played_at AS first,
                    s.last_played_at AS last
             FROM (SELECT 1) AS one LEFT JOIN user_stats s ON s.user_id = $1",
        )
        .bind(user)
        .fetch_one(&mut **s)
        .await?;
        row.into_all_time()
    }

    async fn overview(
        s: &mut Self::Snapshot,
        user: UserId,
        top: Option<u32>,
    ) -> StoreResult<Overview> {
        // One statement, so that a statistics call spends one round trip on all of it.
        let rows: Vec<OverviewRow> = sqlx::query_as(
            "SELECT 0::int2 AS part, NULL::uuid AS track_id, NULL::text AS source,
                    COALESCE(s.plays, 0) AS plays, COALESCE(s.counted, 0) AS counted,
                    COALESCE(s.completed, 0) AS completed, COALESCE(s.seconds, 0) AS seconds,
                    COALESCE(s.tracks, 0) AS number, s.first_played_at AS first,
                    s.last_played_at AS last
             FROM (SELECT 1) AS one LEFT JOIN user_stats s ON s.user_id = $1
             UNION ALL
             SELECT 1::int2, NULL, NULL, 0, 0, 0, 0, COUNT(*), NULL, NULL
             FROM liked_tracks WHERE user_id = $1
             UNION ALL
             SELECT * FROM (
                 SELECT 2::int2, track_id, NULL, plays, counted, 0, seconds, 0, first_played_at,
                        last_played_at
                 FROM user_track_stats WHERE user_id = $1
                 ORDER BY counted DESC, plays DESC, seconds DESC, track_id ASC LIMIT $2) AS top
             UNION ALL
             SELECT 3::int2, NULL, source, plays, counted, completed, seconds, 0, NULL, NULL
             FROM user_source_stats WHERE user_id = $1 AND $3",
        )
        .bind(user)
        .bind(i64::from(top.unwrap_or(0)))
        .bind(top.is_some())
        .fetch_all(&mut **s)
        .await?;
        overview(rows)
    }

    async fn all_time_track_counts(
        &self,
        user: UserId,
        among: &[TrackId],
    ) -> StoreResult<(Vec<TrackTally>, Vec<TrackId>)> {
        // One statement is one snapshot: no transaction, one round trip. Each part is one
        // index scan over the sorted id list, also under the generic plan a prepared statement
        // ends up with.
        let rows: Vec<TrackCountRow> = sqlx::query_as(
            "SELECT 0::int2 AS part, track_id, plays, counted, seconds,
                    first_played_at AS first, last_played_at AS last
             FROM user_track_stats WHERE user_id = $1 AND track_id = ANY($2)
             UNION ALL
             SELECT 1::int2, track_id, NULL, NULL, NULL, NULL, NULL
             FROM liked_tracks WHERE user_id = $1 AND track_id = ANY($2)",
        )
        .bind(user)
        .bind(among)
        .fetch_all(&self.pool)
        .await?;
        track_counts(rows)
    }

    async fn first_played_in(
        s: &mut Self::Snapshot,
        user: UserId,
        range: TimeRange,
    ) -> StoreResult<Vec<TrackId>> {
        Ok(sqlx::query_scalar(
            "SELECT track_id FROM user_track_stats
             WHERE user_id = $1 AND ($2::timestamptz IS NULL OR first_played_at >= $2)
               AND ($3::timestamptz IS NULL OR first_played_at < $3)",
        )
        .bind(user)
        .bind(range.since)
        .bind(range.until)
        .fetch_all(&mut **s)
        .await?)
    }

    async fn liked_among(
        s: &mut Self::Snapshot,
        user: UserId,
        among: &[TrackId],
    ) -> StoreResult<Vec<TrackId>> {
        Ok(sqlx::query_scalar(
            "SELECT track_id FROM liked_tracks WHERE user_id = $1 AND track_id = ANY($2)",
        )
        .bind(user)
        .bind(among)
        .fetch_all(&mut **s)
        .await?)
    }

    async fn period_rows(
        s: &mut Self::Snapshot,
        user: UserId,
        wanted: &[(Period, Option<i64>)],
        quarters_only: bool,
    ) -> StoreResult<Vec<PeriodRow>> {
        let mut kinds = Vec::with_capacity(wanted.len());
        let mut starts = Vec::with_capacity(wanted.len());
        let mut held = Vec::with_capacity(wanted.len());
        for &(period, id) in wanted {
            let (kind, start) = period_key(period);
            kinds.push(kind);
            starts.push(start);
            held.push(id);
        }
        let rows: Vec<PeriodDbRow> = sqlx::query_as(
            "SELECT p.period_kind, p.period_start, p.generation, p.built_generation,
                    p.snapshot_id,
                    CASE WHEN $5 OR p.snapshot_id = w.held THEN NULL ELSE p.tracks END AS tracks,
                    CASE WHEN $5 OR p.snapshot_id = w.held THEN NULL ELSE p.sources END AS sources,
                    CASE WHEN p.snapshot_id = w.held THEN NULL ELSE p.quarters END AS quarters
             FROM UNNEST($2::int2[], $3::timestamptz[], $4::int8[]) AS w(kind, start, held)
             JOIN user_period_stats p
               ON p.user_id = $1 AND p.period_kind = w.kind AND p.period_start = w.start",
        )
        .bind(user)
        .bind(&kinds)
        .bind(&starts)
        .bind(&held)
        .bind(quarters_only)
        .fetch_all(&mut **s)
        .await?;
        periods(rows)
    }

    async fn plays_tracks(
        s: &mut Self::Snapshot,
        user: UserId,
        since: Timestamp,
        until: Option<Timestamp>,
        among: Option<&[TrackId]>,
    ) -> StoreResult<Vec<TrackTally>> {
        let mut sql = plays_in(
            "SELECT track_id, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                    sum(played_for_seconds)::int8 AS seconds, min(played_at) AS first,
                    max(played_at) AS last",
            user,
            since,
            until,
        );
        if let Some(among) = among {
            sql.push(" AND track_id = ANY(")
                .push_bind(among.to_vec())
                .push(")");
        }
        sql.push(" GROUP BY track_id");
        let rows: Vec<TrackRow> = sql.build_query_as().fetch_all(&mut **s).await?;
        tracks(rows)
    }

    async fn plays_sources(
        s: &mut Self::Snapshot,
        user: UserId,
        since: Timestamp,
        until: Option<Timestamp>,
    ) -> StoreResult<Vec<SourceTally>> {
        let mut sql = plays_in(
            "SELECT source, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                    count(*) FILTER (WHERE completed) AS completed,
                    sum(played_for_seconds)::int8 AS seconds",
            user,
            since,
            until,
        );
        sql.push(" GROUP BY source");
        let rows: Vec<SourceRow> = sql.build_query_as().fetch_all(&mut **s).await?;
        sources(rows)
    }

    async fn plays_quarter(
        s: &mut Self::Snapshot,
        user: UserId,
        since: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Counts> {
        let row: CountsRow = plays_in(
            "SELECT count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                    count(*) FILTER (WHERE completed) AS completed,
                    COALESCE(sum(played_for_seconds), 0)::int8 AS seconds",
            user,
            since,
            Some(until),
        )
        .build_query_as()
        .fetch_one(&mut **s)
        .await?;
        row.into_counts()
    }

    async fn quarter_rows(
        s: &mut Self::Snapshot,
        user: UserId,
        from: Timestamp,
        to: Option<Timestamp>,
    ) -> StoreResult<Vec<QuarterTally>> {
        // The open end as 'infinity', not `$3 IS NULL OR ...`: a prepared statement's generic
        // plan can bound the index scan by an expression, not by an OR, and would otherwise
        // read every later quarter of the listener.
        let rows: Vec<QuarterRow> = sqlx::query_as(
            "SELECT quarter_start AS start, plays, counted, completed, seconds
             FROM user_quarter_stats
             WHERE user_id = $1 AND quarter_start >= $2
               AND quarter_start < COALESCE($3::timestamptz, 'infinity')
             ORDER BY quarter_start",
        )
        .bind(user)
        .bind(from)
        .bind(to)
        .fetch_all(&mut **s)
        .await?;
        quarters(rows)
    }

    /// One statement for all of them. A snapshot goes in only while its period's generation is
    /// the one it was built from (a write in between marked it stale), and only for a listener
    /// who still has plays (an erasure in between removed everything).
    async fn store_snapshots(&self, user: UserId, built: Vec<Built>) -> StoreResult<()> {
        let mut kinds = Vec::with_capacity(built.len());
        let mut starts = Vec::with_capacity(built.len());
        let mut generations = Vec::with_capacity(built.len());
        let mut ids = Vec::with_capacity(built.len());
        let (mut t, mut so, mut q) = (Vec::new(), Vec::new(), Vec::new());
        for b in built {
            let (kind, start) = period_key(b.period);
            kinds.push(kind);
            starts.push(start);
            generations.push(b.generation);
            ids.push(b.id);
            t.push(b.blobs.tracks);
            so.push(b.blobs.sources);
            q.push(b.blobs.quarters);
        }
        sqlx::query(
            "INSERT INTO user_period_stats AS p
                 (user_id, period_kind, period_start, generation, built_generation, snapshot_id,
                  tracks, sources, quarters)
             SELECT $1, kind, start, generation, generation, id, tracks, sources, quarters
             FROM UNNEST($2::int2[], $3::timestamptz[], $4::int8[], $5::int8[], $6::bytea[],
                         $7::bytea[], $8::bytea[])
                  AS b(kind, start, generation, id, tracks, sources, quarters)
             WHERE EXISTS (SELECT 1 FROM user_stats WHERE user_id = $1)
             ORDER BY kind, start
             ON CONFLICT (user_id, period_kind, period_start) DO UPDATE
                 SET built_generation = EXCLUDED.built_generation,
                     snapshot_id = EXCLUDED.snapshot_id, tracks = EXCLUDED.tracks,
                     sources = EXCLUDED.sources, quarters = EXCLUDED.quarters
                 WHERE p.generation = EXCLUDED.built_generation",
        )
        .bind(user)
        .bind(&kinds)
        .bind(&starts)
        .bind(&generations)
        .bind(&ids)
        .bind(&t)
        .bind(&so)
        .bind(&q)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
