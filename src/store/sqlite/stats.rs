//! Statistics, as in the PostgreSQL store: all-time figures come from the aggregate tables the
//! triggers of migration 0002 keep (no scan of the history); a bounded range reads only that
//! range's plays. Daily activity reads whole quarter hours from the aggregates and only the
//! partial ones at the ends of the window from plays.
use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::SqliteStore;
use crate::{
    domain::{PlayStats, QUARTER_HOUR_MICROS, TimeRange, Timestamp, UserId, split_quarters},
    store::{StoreResult, rows::RawStats},
};

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
        // One read transaction is one WAL snapshot: the figures agree with each other under
        // concurrent writes.
        let mut tx = self.reader.begin().await?;
        let mut raw = if range == TimeRange::default() {
            all_time(&mut tx, user, top_tracks).await?
        } else {
            in_range(&mut tx, user, range, top_tracks).await?
        };
        if let (Some(since), Some(until)) = (buckets.since, buckets.until) {
            raw.quarters = quarters(&mut tx, user, since, until).await?;
        }
        raw.liked = sqlx::query_scalar("SELECT COUNT(*) FROM liked_tracks WHERE user_id = ?")
            .bind(user.as_uuid())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        raw.into_stats()
    }
}

async fn all_time(
    conn: &mut SqliteConnection,
    user: UserId,
    top_tracks: u32,
) -> StoreResult<RawStats> {
    // The totals row; MIN and MAX over the leading key columns are single index probes.
    let (plays, completed, seconds, tracks, first, last): (
        i64,
        i64,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
    ) = sqlx::query_as(
        "SELECT COALESCE(s.plays, 0), COALESCE(s.completed, 0), COALESCE(s.seconds, 0),
                    COALESCE(s.tracks, 0),
                    (SELECT MIN(played_at) FROM plays WHERE user_id = ?1),
                    (SELECT MAX(played_at) FROM plays WHERE user_id = ?1)
             FROM (SELECT 1) AS one LEFT JOIN user_stats s ON s.user_id = ?1",
    )
    .bind(user.as_uuid())
    .fetch_one(&mut *conn)
    .await?;
    let sources: Vec<(String, i64)> = sqlx::query_as(
        "SELECT source, plays FROM user_source_stats WHERE user_id = ?
         ORDER BY plays DESC, source ASC",
    )
    .bind(user.as_uuid())
    .fetch_all(&mut *conn)
    .await?;
    let top: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "SELECT track_id, plays, seconds FROM user_track_stats WHERE user_id = ?
         ORDER BY plays DESC, seconds DESC, track_id ASC LIMIT ?",
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
        first,
        last,
        top,
        sources,
        quarters: Vec::new(),
        liked: 0,
    })
}

async fn in_range(
    conn: &mut SqliteConnection,
    user: UserId,
    range: TimeRange,
    top_tracks: u32,
) -> StoreResult<RawStats> {
    let totals: Totals = scoped(
        "SELECT COUNT(*) AS plays, COALESCE(SUM(completed), 0) AS completed,
                COALESCE(SUM(played_for_seconds), 0) AS seconds, COUNT(DISTINCT track_id) AS tracks,
                MIN(played_at) AS first, MAX(played_at) AS last",
        user,
        range,
    )
    .build_query_as()
    .fetch_one(&mut *conn)
    .await?;

    let mut top = scoped(
        "SELECT track_id, COUNT(*), SUM(played_for_seconds)",
        user,
        range,
    );
    top.push(" GROUP BY track_id ORDER BY 2 DESC, 3 DESC, track_id ASC LIMIT ")
        .push_bind(i64::from(top_tracks));
    let top: Vec<(Uuid, i64, i64)> = top.build_query_as().fetch_all(&mut *conn).await?;

    let mut sources = scoped("SELECT source, COUNT(*)", user, range);
    sources.push(" GROUP BY source ORDER BY 2 DESC, source ASC");
    let sources: Vec<(String, i64)> = sources.build_query_as().fetch_all(&mut *conn).await?;

    Ok(RawStats {
        plays: totals.plays,
        completed: totals.completed,
        seconds: totals.seconds,
        tracks: totals.tracks,
        first: totals.first,
        last: totals.last,
        top,
        sources,
        quarters: Vec::new(),
        liked: 0,
    })
}

/// Plays and seconds per UTC quarter hour in `[since, until)`, ordered by start.
async fn quarters(
    conn: &mut SqliteConnection,
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
            "SELECT quarter_start, plays, seconds FROM user_quarter_stats
             WHERE user_id = ? AND quarter_start >= ? AND quarter_start < ?
             ORDER BY quarter_start",
        )
        .bind(user.as_uuid())
        .bind(from.as_micros())
        .bind(to.as_micros())
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
    conn: &mut SqliteConnection,
    user: UserId,
    (from, to): (Timestamp, Timestamp),
) -> StoreResult<Option<(i64, i64, i64)>> {
    let start = from.as_micros().div_euclid(QUARTER_HOUR_MICROS) * QUARTER_HOUR_MICROS;
    let range = TimeRange {
        since: Some(from),
        until: Some(to),
    };
    let (plays, seconds): (i64, i64) = scoped(
        "SELECT COUNT(*), COALESCE(SUM(played_for_seconds), 0)",
        user,
        range,
    )
    .build_query_as()
    .fetch_one(&mut *conn)
    .await?;
    Ok((plays > 0).then_some((start, plays, seconds)))
}
