//! What the statistics would cost without their aggregates: the same figures recounted from
//! `plays` with one scan per figure, grouped by the database (quarter hours are folded into local
//! hours and buckets here, as the zone rules are not in SQLite). These are the baselines of
//! `stats`, and their first answers check the service's.
use std::collections::HashMap;

use anyhow::Context;
use jiff::{Span, civil::Date, tz::TimeZone};
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::db::{Db, pg_time};

/// Plays, counted plays and seconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub plays: i64,
    pub counted: i64,
    pub seconds: i64,
}

/// The figures of GetLibraryStats a recount checks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Library {
    pub totals: Tally,
    pub tracks: i64,
    /// The best tracks: counted plays, plays, seconds, track ID.
    pub top: Vec<(Uuid, Tally)>,
    pub sources: usize,
    /// Plays per hour of the week, Monday 00:00 first.
    pub hourly: Vec<i64>,
    /// Plays per ISO week, by the week's Monday.
    pub weeks: Vec<(Date, i64)>,
}

/// A range `[since, until)` in micros.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub since: i64,
    pub until: i64,
}

type TrackRow = (Uuid, i64, i64, i64);
type QuarterRow = (i64, i64);

/// Every figure of GetLibraryStats over `range`, in `tz`, with its top `top` tracks.
pub async fn library(
    db: &Db,
    user: Uuid,
    range: Window,
    tz: &TimeZone,
    top: i64,
) -> anyhow::Result<Library> {
    let (totals, tracks, top, sources, quarters) = match db {
        Db::Postgres(pool) => {
            let mut c = pool.acquire().await.context("a connection")?;
            let (since, until) = (pg_time(range.since)?, pg_time(range.until)?);
            let (plays, counted, seconds, tracks): (i64, i64, i64, i64) = sqlx::query_as(
                "SELECT count(*), count(*) FILTER (WHERE counted),
                        COALESCE(sum(played_for_seconds), 0)::int8, count(DISTINCT track_id)
                 FROM plays WHERE user_id = $1 AND played_at >= $2 AND played_at < $3",
            )
            .bind(user)
            .bind(since)
            .bind(until)
            .fetch_one(&mut *c)
            .await
            .context("recounting totals")?;
            let top: Vec<TrackRow> = sqlx::query_as(
                "SELECT track_id, count(*) FILTER (WHERE counted) AS c, count(*) AS n,
                        sum(played_for_seconds)::int8 AS s
                 FROM plays WHERE user_id = $1 AND played_at >= $2 AND played_at < $3
                 GROUP BY track_id ORDER BY c DESC, n DESC, s DESC, track_id LIMIT $4",
            )
            .bind(user)
            .bind(since)
            .bind(until)
            .bind(top)
            .fetch_all(&mut *c)
            .await
            .context("recounting top tracks")?;
            let sources: Vec<(String, i64)> = sqlx::query_as(
                "SELECT source, count(*) FROM plays
                 WHERE user_id = $1 AND played_at >= $2 AND played_at < $3 GROUP BY source",
            )
            .bind(user)
            .bind(since)
            .bind(until)
            .fetch_all(&mut *c)
            .await
            .context("recounting sources")?;
            let quarters: Vec<QuarterRow> = sqlx::query_as(
                "SELECT (extract(epoch FROM date_bin('15 minutes', played_at, timestamptz 'epoch'))
                         * 1000000)::int8, count(*)
                 FROM plays WHERE user_id = $1 AND played_at >= $2 AND played_at < $3
                 GROUP BY 1",
            )
            .bind(user)
            .bind(since)
            .bind(until)
            .fetch_all(&mut *c)
            .await
            .context("recounting quarter hours")?;
            (
                Tally {
                    plays,
                    counted,
                    seconds,
                },
                tracks,
                top,
                sources.len(),
                quarters,
            )
        }
        Db::Sqlite { reader, .. } => {
            let mut c = reader.acquire().await.context("a connection")?;
            let (plays, counted, seconds, tracks): (i64, i64, i64, i64) = sqlx::query_as(
                "SELECT count(*), COALESCE(sum(counted), 0), COALESCE(sum(played_for_seconds), 0),
                        count(DISTINCT track_id)
                 FROM plays WHERE user_id = ? AND played_at >= ? AND played_at < ?",
            )
            .bind(user)
            .bind(range.since)
            .bind(range.until)
            .fetch_one(&mut *c)
            .await
            .context("recounting totals")?;
            let top: Vec<TrackRow> = sqlx::query_as(
                "SELECT track_id, sum(counted) AS c, count(*) AS n, sum(played_for_seconds) AS s
                 FROM plays WHERE user_id = ? AND played_at >= ? AND played_at < ?
                 GROUP BY track_id ORDER BY c DESC, n DESC, s DESC, track_id LIMIT ?",
            )
            .bind(user)
            .bind(range.since)
            .bind(range.until)
            .bind(top)
            .fetch_all(&mut *c)
            .await
            .context("recounting top tracks")?;
            let sources: Vec<(String, i64)> = sqlx::query_as(
                "SELECT source, count(*) FROM plays
                 WHERE user_id = ? AND played_at >= ? AND played_at < ? GROUP BY source",
            )
            .bind(user)
            .bind(range.since)
            .bind(range.until)
            .fetch_all(&mut *c)
            .await
            .context("recounting sources")?;
            let quarters: Vec<QuarterRow> = sqlx::query_as(
                "SELECT played_at - played_at % 900000000, count(*)
                 FROM plays WHERE user_id = ? AND played_at >= ? AND played_at < ? GROUP BY 1",
            )
            .bind(user)
            .bind(range.since)
            .bind(range.until)
            .fetch_all(&mut *c)
            .await
            .context("recounting quarter hours")?;
            (
                Tally {
                    plays,
                    counted,
                    seconds,
                },
                tracks,
                top,
                sources.len(),
                quarters,
            )
        }
    };
    let (hourly, weeks) = fold(&quarters, tz);
    Ok(Library {
        totals,
        tracks,
        top: top
            .into_iter()
            .map(|(t, c, n, s)| {
                (
                    t,
                    Tally {
                        plays: n,
                        counted: c,
                        seconds: s,
                    },
                )
            })
            .collect(),
        sources,
        hourly,
        weeks,
    })
}

/// Quarter hours into hour-of-week cells and ISO weeks (every zone's offsets are whole quarter
/// hours since 2000, so each quarter lies in one local hour).
fn fold(quarters: &[QuarterRow], tz: &TimeZone) -> (Vec<i64>, Vec<(Date, i64)>) {
    let mut hourly = vec![0; 168];
    let mut weeks: HashMap<Date, i64> = HashMap::new();
    for &(start, plays) in quarters {
        let Ok(t) = jiff::Timestamp::from_microsecond(start) else {
            continue;
        };
        let local = t.to_zoned_datetime(tz.clone());
        let weekday = i64::from(local.weekday().to_monday_zero_offset());
        hourly[(weekday * 24 + i64::from(local.hour())) as usize] += plays;
        let monday = local.date() - Span::new().days(weekday);
        *weeks.entry(monday).or_default() += plays;
    }
    let mut weeks: Vec<(Date, i64)> = weeks.into_iter().collect();
    weeks.sort_unstable();
    (hourly, weeks)
}

/// Each track's plays in `range`.
pub async fn play_counts(
    db: &Db,
    user: Uuid,
    tracks: &[Uuid],
    range: Window,
) -> anyhow::Result<HashMap<Uuid, Tally>> {
    let rows: Vec<TrackRow> = match db {
        Db::Postgres(pool) => sqlx::query_as(
            "SELECT track_id, count(*) FILTER (WHERE counted), count(*),
                    sum(played_for_seconds)::int8
             FROM plays WHERE user_id = $1 AND track_id = ANY($2)
               AND played_at >= $3 AND played_at < $4
             GROUP BY track_id",
        )
        .bind(user)
        .bind(tracks)
        .bind(pg_time(range.since)?)
        .bind(pg_time(range.until)?)
        .fetch_all(pool)
        .await
        .context("recounting play counts")?,
        Db::Sqlite { reader, .. } => {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT track_id, sum(counted), count(*), sum(played_for_seconds) FROM plays
                 WHERE user_id = ",
            );
            q.push_bind(user)
                .push(" AND played_at >= ")
                .push_bind(range.since)
                .push(" AND played_at < ")
                .push_bind(range.until)
                .push(" AND track_id IN (");
            let mut ids = q.separated(", ");
            for t in tracks {
                ids.push_bind(*t);
            }
            q.push(") GROUP BY track_id");
            q.build_query_as()
                .fetch_all(reader)
                .await
                .context("recounting play counts")?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(t, c, n, s)| {
            (
                t,
                Tally {
                    plays: n,
                    counted: c,
                    seconds: s,
                },
            )
        })
        .collect())
}

/// A period's full ranking.
pub async fn ranking(db: &Db, user: Uuid, range: Window) -> anyhow::Result<Vec<(Uuid, Tally)>> {
    let mut rows: Vec<(Uuid, Tally)> = library_tracks(db, user, range)
        .await?
        .into_iter()
        .map(|(t, c, n, s)| {
            (
                t,
                Tally {
                    plays: n,
                    counted: c,
                    seconds: s,
                },
            )
        })
        .collect();
    rows.sort_unstable_by(|a, b| {
        (b.1.counted, b.1.plays, b.1.seconds)
            .cmp(&(a.1.counted, a.1.plays, a.1.seconds))
            .then(a.0.cmp(&b.0))
    });
    Ok(rows)
}

async fn library_tracks(db: &Db, user: Uuid, range: Window) -> anyhow::Result<Vec<TrackRow>> {
    match db {
        Db::Postgres(pool) => sqlx::query_as(
            "SELECT track_id, count(*) FILTER (WHERE counted), count(*), sum(played_for_seconds)::int8
             FROM plays WHERE user_id = $1 AND played_at >= $2 AND played_at < $3 GROUP BY track_id",
        )
        .bind(user)
        .bind(pg_time(range.since)?)
        .bind(pg_time(range.until)?)
        .fetch_all(pool)
        .await
        .context("recounting a period's tracks"),
        Db::Sqlite { reader, .. } => sqlx::query_as(
            "SELECT track_id, sum(counted), count(*), sum(played_for_seconds)
             FROM plays WHERE user_id = ? AND played_at >= ? AND played_at < ? GROUP BY track_id",
        )
        .bind(user)
        .bind(range.since)
        .bind(range.until)
        .fetch_all(reader)
        .await
        .context("recounting a period's tracks"),
    }
}

/// The tracks whose first play ever is in `range` (a scan of the whole history).
pub async fn first_played_in(db: &Db, user: Uuid, range: Window) -> anyhow::Result<Vec<Uuid>> {
    match db {
        Db::Postgres(pool) => sqlx::query_scalar(
            "SELECT track_id FROM plays WHERE user_id = $1 GROUP BY track_id
             HAVING min(played_at) >= $2 AND min(played_at) < $3",
        )
        .bind(user)
        .bind(pg_time(range.since)?)
        .bind(pg_time(range.until)?)
        .fetch_all(pool)
        .await
        .context("recounting first plays"),
        Db::Sqlite { reader, .. } => sqlx::query_scalar(
            "SELECT track_id FROM plays WHERE user_id = ? GROUP BY track_id
             HAVING min(played_at) >= ? AND min(played_at) < ?",
        )
        .bind(user)
        .bind(range.since)
        .bind(range.until)
        .fetch_all(reader)
        .await
        .context("recounting first plays"),
    }
}
