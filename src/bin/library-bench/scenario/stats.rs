//! `stats`: GetLibraryStats of the million-play user, all time and for the last 30 days, against
//! recounting the same figures with a scan of `plays`, which is what the service's aggregate
//! tables exist to avoid. The first answer of each side is also compared, as a correctness check.
use std::time::Duration;

use anyhow::{Context, ensure};
use library_service::pb;
use sqlx::FromRow;
use uuid::Uuid;

use super::Ctx;
use crate::{
    db::{Db, pg_time},
    load,
    report::{self, Report},
    seed::{self, BigUser},
};

const DAY_MICROS: i64 = 86_400_000_000;
/// Plays before 2000 are refused by the service, so this bound means "all time".
const ALL_TIME_MICROS: i64 = 946_684_800_000_000;
const WARM_UP_CALLS: usize = 20;
const TOP_TRACKS: i64 = 10;

/// The figures both sides produce.
#[derive(Debug, PartialEq, Eq, FromRow)]
struct Totals {
    plays: i64,
    completed: i64,
    seconds: i64,
    tracks: i64,
}

struct Recount {
    totals: Totals,
    top: Vec<(Uuid, i64, i64)>,
}

pub async fn run(ctx: &Ctx, user: BigUser, report: &mut Report) -> anyhow::Result<()> {
    let now = seed::now_micros();
    let month_ago = now - 30 * DAY_MICROS;
    variant(
        ctx,
        user,
        report,
        "stats-all-time",
        None,
        month_ago,
        Duration::from_millis(5),
    )
    .await?;
    variant(
        ctx,
        user,
        report,
        "stats-30d",
        Some(month_ago),
        month_ago,
        Duration::from_millis(20),
    )
    .await
}

async fn variant(
    ctx: &Ctx,
    user: BigUser,
    report: &mut Report,
    name: &'static str,
    since: Option<i64>,
    days_since: i64,
    p99_goal: Duration,
) -> anyhow::Result<()> {
    let args = &ctx.args;
    eprintln!(
        "{name}: {} GetLibraryStats calls, {} direct recounts...",
        args.stats_calls, args.stats_baseline_calls
    );
    let bearer = ctx.api.session(user.id)?;
    let call = {
        let (api, bearer) = (ctx.api.clone(), bearer.clone());
        move |_| {
            let (api, bearer) = (api.clone(), bearer.clone());
            async move {
                let request = bearer.request(pb::GetLibraryStatsRequest {
                    since: since.map(seed::timestamp),
                    ..Default::default()
                });
                let stats = api
                    .client(0)
                    .get_library_stats(request)
                    .await
                    .context("GetLibraryStats")?
                    .into_inner();
                ensure!(stats.total_plays > 0, "GetLibraryStats counted no plays");
                anyhow::Ok(stats)
            }
        }
    };
    let first = call(0).await?;
    for i in 0..WARM_UP_CALLS {
        call(i).await?;
    }
    let service = load::run(args.stats_calls, 1, 1, args.budget(), move |i| {
        let pending = call(i);
        async move { pending.await.map(drop) }
    })
    .await?;

    let since_micros = since.unwrap_or(ALL_TIME_MICROS);
    let check = recount(&ctx.db, user.id, since_micros, days_since).await?;
    compare(name, &first, &check);
    let baseline = {
        let db = ctx.db.clone();
        load::run(args.stats_baseline_calls, 1, 1, args.budget(), move |_| {
            let db = db.clone();
            async move {
                recount(&db, user.id, since_micros, days_since)
                    .await
                    .map(drop)
            }
        })
        .await?
    };

    report::emit(report::line(
        name,
        "ops/s",
        &service,
        &baseline,
        &format!(
            "{} calls vs {} recounts; {} plays in range, {} in all",
            service.calls(),
            baseline.calls(),
            first.total_plays,
            user.plays
        ),
    ));
    let what = if since.is_none() {
        "all-time p99 <= 5 ms"
    } else {
        "30-day p99 <= 20 ms"
    };
    report.at_most("stats", what, service.p99(), p99_goal);
    Ok(())
}

/// A disagreement is a finding about the service, not a reason to stop the bench.
fn compare(name: &str, service: &pb::LibraryStats, recount: &Recount) {
    let got = Totals {
        plays: service.total_plays as i64,
        completed: service.completed_plays as i64,
        seconds: service.listening_seconds as i64,
        tracks: service.unique_tracks as i64,
    };
    if got != recount.totals {
        println!(
            "WARNING {name}: service says {got:?}, a recount says {:?}",
            recount.totals
        );
    }
    let top: Vec<(Uuid, i64, i64)> = service
        .top_tracks
        .iter()
        .map(|t| {
            (
                Uuid::parse_str(&t.track_id).unwrap_or_default(),
                t.plays as i64,
                t.listening_seconds as i64,
            )
        })
        .collect();
    if top != recount.top {
        println!(
            "WARNING {name}: top tracks differ from a recount: service {top:?}, recount {:?}",
            recount.top
        );
    }
}

/// Every figure of GetLibraryStats, counted from `plays` on one connection.
async fn recount(db: &Db, user: Uuid, since: i64, days_since: i64) -> anyhow::Result<Recount> {
    match db {
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await.context("acquiring a connection")?;
            let (since, days_since) = (pg_time(since)?, pg_time(days_since)?);
            let totals: Totals = sqlx::query_as(
                "SELECT COUNT(*) AS plays, COUNT(*) FILTER (WHERE completed) AS completed,
                        COALESCE(SUM(played_for_seconds), 0)::int8 AS seconds,
                        COUNT(DISTINCT track_id) AS tracks, MIN(played_at), MAX(played_at)
                 FROM plays WHERE user_id = $1 AND played_at >= $2",
            )
            .bind(user)
            .bind(since)
            .fetch_one(&mut *conn)
            .await
            .context("recounting totals")?;
            let top: Vec<(Uuid, i64, i64)> = sqlx::query_as(
                "SELECT track_id, COUNT(*), SUM(played_for_seconds)::int8 FROM plays
                 WHERE user_id = $1 AND played_at >= $2
                 GROUP BY track_id ORDER BY 2 DESC, 3 DESC, track_id LIMIT $3",
            )
            .bind(user)
            .bind(since)
            .bind(TOP_TRACKS)
            .fetch_all(&mut *conn)
            .await
            .context("recounting top tracks")?;
            let _sources: Vec<(String, i64)> = sqlx::query_as(
                "SELECT source, COUNT(*) FROM plays WHERE user_id = $1 AND played_at >= $2 GROUP BY source",
            )
            .bind(user)
            .bind(since)
            .fetch_all(&mut *conn)
            .await
            .context("recounting sources")?;
            let _days: Vec<(time::PrimitiveDateTime, i64, i64)> = sqlx::query_as(
                "SELECT date_trunc('day', played_at AT TIME ZONE 'UTC'), COUNT(*), SUM(played_for_seconds)::int8
                 FROM plays WHERE user_id = $1 AND played_at >= $2 GROUP BY 1",
            )
            .bind(user)
            .bind(days_since)
            .fetch_all(&mut *conn)
            .await
            .context("recounting daily activity")?;
            let _liked: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM liked_tracks WHERE user_id = $1")
                    .bind(user)
                    .fetch_one(&mut *conn)
                    .await
                    .context("counting likes")?;
            Ok(Recount { totals, top })
        }
        Db::Sqlite { reader, .. } => {
            let mut conn = reader.acquire().await.context("acquiring a connection")?;
            let totals: Totals = sqlx::query_as(
                "SELECT COUNT(*) AS plays, COALESCE(SUM(completed), 0) AS completed,
                        COALESCE(SUM(played_for_seconds), 0) AS seconds,
                        COUNT(DISTINCT track_id) AS tracks, MIN(played_at), MAX(played_at)
                 FROM plays WHERE user_id = ? AND played_at >= ?",
            )
            .bind(user)
            .bind(since)
            .fetch_one(&mut *conn)
            .await
            .context("recounting totals")?;
            let top: Vec<(Uuid, i64, i64)> = sqlx::query_as(
                "SELECT track_id, COUNT(*), SUM(played_for_seconds) FROM plays
                 WHERE user_id = ? AND played_at >= ?
                 GROUP BY track_id ORDER BY 2 DESC, 3 DESC, track_id LIMIT ?",
            )
            .bind(user)
            .bind(since)
            .bind(TOP_TRACKS)
            .fetch_all(&mut *conn)
            .await
            .context("recounting top tracks")?;
            let _sources: Vec<(String, i64)> = sqlx::query_as(
                "SELECT source, COUNT(*) FROM plays WHERE user_id = ? AND played_at >= ? GROUP BY source",
            )
            .bind(user)
            .bind(since)
            .fetch_all(&mut *conn)
            .await
            .context("recounting sources")?;
            let _days: Vec<(i64, i64, i64)> = sqlx::query_as(
                "SELECT played_at / 86400000000, COUNT(*), SUM(played_for_seconds)
                 FROM plays WHERE user_id = ? AND played_at >= ? GROUP BY 1",
            )
            .bind(user)
            .bind(days_since)
            .fetch_all(&mut *conn)
            .await
            .context("recounting daily activity")?;
            let _liked: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM liked_tracks WHERE user_id = ?")
                    .bind(user)
                    .fetch_one(&mut *conn)
                    .await
                    .context("counting likes")?;
            Ok(Recount { totals, top })
        }
    }
}
