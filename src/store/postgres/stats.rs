//! Statistics. All-time figures come from the aggregate tables the triggers of migration 0002
//! keep (no scan of the history); a bounded range reads only that range's plays. Daily activity
//! reads whole quarter hours from the aggregates and only the partial ones at the ends from plays.
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{PgStore, micros, to_pg};
use crate::{
    domain::{PlayStats, TimeRange, Timestamp, UserId, split_quarters},
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
        // One snapshot for every figure, so they agree with each other under concurrent writes.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let mut raw = if range == TimeRange::default() {
            all_time(&mut tx, user, top_tracks).await?
        } else {
            in_range(&mut tx, user, range, top_tracks).await?
        };
        if let (Some(since), Some(until)) = (buckets.since, buckets.until) {
            raw.quarters = quarters(&mut tx, user, since, until).await?;
        }
        raw.liked = sqlx::query_scalar("SELECT COUNT(*) FROM liked_tracks WHERE user_id = $1")
            .bind(user.as_uuid())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        raw.into_stats()
    }
}

async fn all_time(conn: &mut PgConnection, user: UserId, top_tracks: u32) -> StoreResult<RawStats> {
    // The totals row: one probe, not a walk over every monthly partition of the history.
    let (plays, completed, seconds, tracks, first, last): Totals6 = sqlx::query_as(
        "SELECT COALESCE(s.plays, 0), COALESCE(s.completed, 0), COALESCE(s.seconds, 0),
                COALESCE(s.tracks, 0), s.first_played_at, s.last_played_at
         FROM (SELECT 1) AS one LEFT JOIN user_stats s ON s.user_id = $1",
    )
    .bind(user.as_uuid())
    .fetch_one(&mut *conn)
    .await?;
    let sources: Vec<(String, i64)> = sqlx::query_as(
        "SELECT source, plays FROM user_source_stats WHERE user_id = $1
         ORDER BY plays DESC, source COLLATE \"C\" ASC",
    )
    .bind(user.as_uuid())
    .fetch_all(&mut *conn)
    .await?;
    let top: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "SELECT track_id, plays, seconds FROM user_track_stats WHERE user_id = $1
         ORDER BY plays DESC, seconds DESC, track_id ASC LIMIT $2",
    )
    .bind(user.as_uuid())
    .bind(i64::from(top_tracks))
    .fetch_all(&mut *conn)
    .await?;
    Ok(RawStats {
        plays,
        completed,
        seconds,
        tracks,
        first: first.map(micros).transpose()?,
        last: last.map(micros).transpose()?,
        top,
        sources,
        quarters: Vec::new(),
        liked: 0,
    })
}

type Totals6 = (
    i64,
    i64,
    i64,
    i64,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
);

async fn in_range(
    conn: &mut PgConnection,
    user: UserId,
    range: TimeRange,
    top_tracks: u32,
) -> StoreResult<RawStats> {
    let totals: Totals = scoped(
        "SELECT COUNT(*) AS plays, COUNT(*) FILTER (WHERE completed) AS completed,
                COALESCE(SUM(played_for_seconds), 0)::int8 AS seconds, COUNT(DISTINCT track_id) AS tracks,
                MIN(played_at) AS first, MAX(played_at) AS last",
        user,
        range,
    )
    .build_query_as()
    .fetch_one(&mut *conn)
    .await?;

    let mut top = scoped(
        "SELECT track_id, COUNT(*), SUM(played_for_seconds)::int8",
        user,
        range,
    );
    top.push(" GROUP BY track_id ORDER BY 2 DESC, 3 DESC, track_id ASC LIMIT ")
        .push_bind(i64::from(top_tracks));
    let top: Vec<(Uuid, i64, i64)> = top.build_query_as().fetch_all(&mut *conn).await?;

    // Byte order, as SQLite sorts, whatever the database's collation.
    let mut sources = scoped("SELECT source, COUNT(*)", user, range);
    sources.push(" GROUP BY source ORDER BY 2 DESC, source COLLATE \"C\" ASC");
    let sources: Vec<(String, i64)> = sources.build_query_as().fetch_all(&mut *conn).await?;

    Ok(RawStats {
        plays: totals.plays,
        completed: totals.completed,
        seconds: totals.seconds,
        tracks: totals.tracks,
        first: totals.first.map(micros).transpose()?,
        last: totals.last.map(micros).transpose()?,
        top,
        sources,
        quarters: Vec::new(),
        liked: 0,
    })
}

/// Plays and seconds per UTC quarter hour in `[since, until)`, ordered by start.
async fn quarters(
    conn: &mut PgConnection,
    user: UserId,
    since: Timestamp,
    until: Timestamp,
) -> StoreResult<Vec<(i64, i64, i64)>> {
    let split = split_quarters(since, until);
    let mut rows = Vec::new();
    if let Some(piece) = split.head {
        rows.extend(partial_quarter(conn, user, piece).await?);
    }
    if let Some((from, to)) = split.whole {
        let whole: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT (extract(epoch FROM quarter_start) * 1000000)::int8, plays, seconds
             FROM user_quarter_stats
             WHERE user_id = $1 AND quarter_start >= $2 AND quarter_start < $3
             ORDER BY quarter_start",
        )
        .bind(user.as_uuid())
        .bind(to_pg(from))
        .bind(to_pg(to))
        .fetch_all(&mut *conn)
        .await?;
        rows.extend(whole);
    }
    if let Some(piece) = split.tail {
        rows.extend(partial_quarter(conn, user, piece).await?);
    }
    Ok(rows)
}

/// The plays of part of one quarter hour, as that quarter hour's row (if any).
async fn partial_quarter(
    conn: &mut PgConnection,
    user: UserId,
    (from, to): (Timestamp, Timestamp),
) -> StoreResult<Option<(i64, i64, i64)>> {
    let range = TimeRange {
        since: Some(from),
        until: Some(to),
    };
    let mut sql = scoped(
        "SELECT (extract(epoch FROM date_bin('15 minutes', played_at, timestamptz 'epoch')) * 1000000)::int8 AS start,
                COUNT(*), SUM(played_for_seconds)::int8",
        user,
        range,
    );
    sql.push(" GROUP BY start");
    Ok(sql.build_query_as().fetch_optional(&mut *conn).await?)
}
