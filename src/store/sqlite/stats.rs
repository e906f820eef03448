//! The statistics' SQL (the flow is `store::stats`), as in the PostgreSQL store.
use sqlx::{QueryBuilder, Sqlite, Transaction};

use super::SqliteStore;
use crate::{
    domain::{
        Counts, Period, QuarterTally, SourceTally, TimeRange, Timestamp, TrackId, TrackTally,
        UserId,
    },
    store::{
        StoreError, StoreResult,
        cache::SnapshotCache,
        rows::count,
        stats::{
            AllTime, AllTimeRow, Built, CountsRow, Overview, PeriodDbRow, PeriodRow, QuarterRow,
            SourceRow, StatsSql, TrackRow, period_key, periods, quarters, sources, tracks,
        },
    },
};

/// `{select} FROM {table} WHERE user_id = ? AND {column} in [since, until)`, for more clauses.
fn span_of(
    select: &'static str,
    table: &'static str,
    column: &'static str,
    user: UserId,
    since: Timestamp,
    until: Option<Timestamp>,
) -> QueryBuilder<Sqlite> {
    let mut sql = QueryBuilder::new(select);
    sql.push(format_args!(" FROM {table} WHERE user_id = "))
        .push_bind(user)
        .push(format_args!(" AND {column} >= "))
        .push_bind(since);
    if let Some(until) = until {
        sql.push(format_args!(" AND {column} < ")).push_bind(until);
    }
    sql
}

fn plays_in(
    select: &'static str,
    user: UserId,
    since: Timestamp,
    until: Option<Timestamp>,
) -> QueryBuilder<Sqlite> {
    span_of(select, "plays", "played_at", user, since, until)
}

fn json<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("aggregated rows: {e}")))
}

fn hex_id(hex: &str) -> StoreResult<TrackId> {
    uuid::Uuid::try_parse(hex)
        .map(TrackId::from_uuid)
        .map_err(|e| StoreError::Corrupt(format!("track id {hex:?}: {e}")))
}

fn micros(t: i64) -> StoreResult<Timestamp> {
    Timestamp::from_micros(t).ok_or_else(|| StoreError::Corrupt(format!("timestamp {t}")))
}

/// ` AND track_id IN (...)`.
fn among_tracks(sql: &mut QueryBuilder<Sqlite>, among: &[TrackId]) {
    sql.push(" AND track_id IN (");
    let mut ids = sql.separated(", ");
    for t in among {
        ids.push_bind(*t);
    }
    sql.push(")");
}

impl StatsSql for SqliteStore {
    /// One read transaction is one WAL snapshot.
    type Snapshot = Transaction<'static, Sqlite>;

    fn snapshot_cache(&self) -> &SnapshotCache {
        &self.cache
    }

    async fn snapshot(&self) -> StoreResult<Self::Snapshot> {
        Ok(self.reader.begin().await?)
    }

    async fn close(snapshot: Self::Snapshot) -> StoreResult<()> {
        Ok(snapshot.commit().await?)
    }

    async fn all_time(s: &mut Self::Snapshot, user: UserId) -> StoreResult<AllTime> {
        // MIN and MAX over the leading key columns are single index probes.
        let row: AllTimeRow = sqlx::query_as(
            "SELECT COALESCE(s.plays, 0) AS plays, COALESCE(s.counted, 0) AS counted,
                    COALESCE(s.completed, 0) AS completed, COALESCE(s.seconds, 0) AS seconds,
                    COALESCE(s.tracks, 0) AS tracks,
                    (SELECT MIN(played_at) FROM plays WHERE user_id = ?1) AS first,
                    (SELECT MAX(played_at) FROM plays WHERE user_id = ?1) AS last
             FROM (SELECT 1) AS one LEFT JOIN user_stats s ON s.user_id = ?1",
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
        // In-process: separate statements cost no round trips.
        let all_time = Self::all_time(s, user).await?;
        let liked = count(
            sqlx::query_scalar("SELECT COUNT(*) FROM liked_tracks WHERE user_id = ?")
                .bind(user)
                .fetch_one(&mut **s)
                .await?,
        )?;
        let (top, sources) = match top {
            Some(limit) => (
                all_time_top(s, user, limit).await?,
                all_time_sources(s, user).await?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        Ok(Overview {
            all_time,
            liked,
            top,
            sources,
        })
    }

    async fn all_time_track_counts(
        &self,
        user: UserId,
        among: &[TrackId],
    ) -> StoreResult<(Vec<TrackTally>, Vec<TrackId>)> {
        // One statement, so one snapshot without a transaction. Each list comes back as one
        // JSON value: sqlx hands SQLite rows over from its worker thread one by one, which cost
        // more than the lookups (1.7 ms of 3.0 for 500 rows). The ids are numbered parameters,
        // bound once for both lists; the text holds only those numbers.
        let ids: String = (0..among.len())
            .map(|i| format!("?{}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT (SELECT json_group_array(json_array(hex(track_id), plays, counted, seconds,
                                                        first_played_at, last_played_at))
                     FROM user_track_stats WHERE user_id = ?1 AND track_id IN ({ids})),
                    (SELECT json_group_array(hex(track_id))
                     FROM liked_tracks WHERE user_id = ?1 AND track_id IN ({ids}))"
        );
        let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql)).bind(user);
        for id in among {
            query = query.bind(*id);
        }
        let (tallies, liked) = query.fetch_one(&self.reader).await?;
        let tallies: Vec<(String, i64, i64, i64, i64, i64)> = json(&tallies)?;
        let liked: Vec<String> = json(&liked)?;
        let tallies = tallies
            .into_iter()
            .map(|(id, plays, counted, seconds, first, last)| {
                Ok(TrackTally {
                    track_id: hex_id(&id)?,
                    counts: Counts {
                        plays: count(plays)?,
                        counted: count(counted)?,
                        completed: 0,
                        seconds: count(seconds)?,
                    },
                    first: micros(first)?,
                    last: micros(last)?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let liked = liked
            .iter()
            .map(|id| hex_id(id))
            .collect::<StoreResult<_>>()?;
        Ok((tallies, liked))
    }

    async fn first_played_in(
        s: &mut Self::Snapshot,
        user: UserId,
        range: TimeRange,
    ) -> StoreResult<Vec<TrackId>> {
        Ok(sqlx::query_scalar(
            "SELECT track_id FROM user_track_stats
             WHERE user_id = ?1 AND (?2 IS NULL OR first_played_at >= ?2)
               AND (?3 IS NULL OR first_played_at < ?3)",
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
        let mut sql =
            QueryBuilder::<Sqlite>::new("SELECT track_id FROM liked_tracks WHERE user_id = ");
        sql.push_bind(user);
        among_tracks(&mut sql, among);
        Ok(sql.build_query_scalar().fetch_all(&mut **s).await?)
    }

    async fn period_rows(
        s: &mut Self::Snapshot,
        user: UserId,
        wanted: &[(Period, Option<i64>)],
        quarters_only: bool,
    ) -> StoreResult<Vec<PeriodRow>> {
        let mut sql = QueryBuilder::<Sqlite>::new("WITH w(kind, start, held) AS (VALUES ");
        let mut values = sql.separated(", ");
        for &(period, held) in wanted {
            let (kind, start) = period_key(period);
            values
                .push("(")
                .push_bind_unseparated(kind)
                .push_unseparated(", ")
                .push_bind_unseparated(start)
                .push_unseparated(", ")
                .push_bind_unseparated(held)
                .push_unseparated(")");
        }
        let (same, blobs) = (
            "p.snapshot_id IS w.held",
            if quarters_only { "0" } else { "1" },
        );
        sql.push(format!(
            ") SELECT p.period_kind, p.period_start, p.generation, p.built_generation,
                      p.snapshot_id,
                      CASE WHEN {blobs} AND NOT {same} THEN p.tracks END AS tracks,
                      CASE WHEN {blobs} AND NOT {same} THEN p.sources END AS sources,
                      CASE WHEN NOT {same} THEN p.quarters END AS quarters
               FROM w JOIN user_period_stats p
                 ON p.user_id = "
        ))
        .push_bind(user)
        .push(" AND p.period_kind = w.kind AND p.period_start = w.start");
        let rows: Vec<PeriodDbRow> = sql.build_query_as().fetch_all(&mut **s).await?;
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
            "SELECT track_id, count(*) AS plays, COALESCE(sum(counted), 0) AS counted,
                    sum(played_for_seconds) AS seconds, min(played_at) AS first,
                    max(played_at) AS last",
            user,
            since,
            until,
        );
        if let Some(among) = among {
            among_tracks(&mut sql, among);
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
            "SELECT source, count(*) AS plays, COALESCE(sum(counted), 0) AS counted,
                    COALESCE(sum(completed), 0) AS completed,
                    sum(played_for_seconds) AS seconds",
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
            "SELECT count(*) AS plays, COALESCE(sum(counted), 0) AS counted,
                    COALESCE(sum(completed), 0) AS completed,
                    COALESCE(sum(played_for_seconds), 0) AS seconds",
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
        let mut sql = span_of(
            "SELECT quarter_start AS start, plays, counted, completed, seconds",
            "user_quarter_stats",
            "quarter_start",
            user,
            from,
            to,
        );
        sql.push(" ORDER BY quarter_start");
        let rows: Vec<QuarterRow> = sql.build_query_as().fetch_all(&mut **s).await?;
        quarters(rows)
    }

    /// As on PostgreSQL: only while the period's generation is the one the snapshot was built
    /// from, and only for a listener who still has plays.
    async fn store_snapshots(&self, user: UserId, built: Vec<Built>) -> StoreResult<()> {
        let mut tx = self.write().await?;
        for b in built {
            let (kind, start) = period_key(b.period);
            sqlx::query(
                "INSERT INTO user_period_stats
                     (user_id, period_kind, period_start, generation, built_generation,
                      snapshot_id, tracks, sources, quarters)
                 SELECT ?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8
                 WHERE EXISTS (SELECT 1 FROM user_stats WHERE user_id = ?1)
                 ON CONFLICT (user_id, period_kind, period_start) DO UPDATE
                     SET built_generation = excluded.built_generation,
                         snapshot_id = excluded.snapshot_id, tracks = excluded.tracks,
                         sources = excluded.sources, quarters = excluded.quarters
                     WHERE generation = excluded.built_generation",
            )
            .bind(user)
            .bind(kind)
            .bind(start)
            .bind(b.generation)
            .bind(b.id)
            .bind(b.blobs.tracks)
            .bind(b.blobs.sources)
            .bind(b.blobs.quarters)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn all_time_top(
    s: &mut Transaction<'static, Sqlite>,
    user: UserId,
    limit: u32,
) -> StoreResult<Vec<TrackTally>> {
    let rows: Vec<TrackRow> = sqlx::query_as(
        "SELECT track_id, plays, counted, seconds, first_played_at AS first,
                    last_played_at AS last
             FROM user_track_stats WHERE user_id = ?
             ORDER BY counted DESC, plays DESC, seconds DESC, track_id ASC LIMIT ?",
    )
    .bind(user)
    .bind(i64::from(limit))
    .fetch_all(&mut **s)
    .await?;
    tracks(rows)
}

async fn all_time_sources(
    s: &mut Transaction<'static, Sqlite>,
    user: UserId,
) -> StoreResult<Vec<SourceTally>> {
    let rows: Vec<SourceRow> = sqlx::query_as(
        "SELECT source, plays, counted, completed, seconds FROM user_source_stats
             WHERE user_id = ?",
    )
    .bind(user)
    .fetch_all(&mut **s)
    .await?;
    sources(rows)
}
