//! `stream`: ListHistory of a whole million-play history, against the database's fastest way to
//! hand the same rows out (COPY on PostgreSQL, a plain row-by-row SELECT on SQLite); the server's
//! RSS growth while it streams; and resuming from a deep cursor against starting at the top.
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use library_service::pb;
use tokio_stream::StreamExt;
use uuid::Uuid;

use super::Ctx;
use crate::{
    client::{Bearer, Client},
    db::Db,
    report::{self, Report, ms},
    rss::{Rss, Sampler},
    seed::BigUser,
    stats::Sample,
};

const PLAYS_PER_SECOND_GOAL: f64 = 200_000.0;
const COPY_RATIO_GOAL: f64 = 0.5;
const RSS_GROWTH_GOAL_KIB: u64 = 32 * 1024;
const SELECT_PLAYS: &str =
    "SELECT user_id, id, track_id, played_at, played_for_seconds, completed, source FROM plays";

struct Read {
    count: u64,
    first_entry: Duration,
    /// The cursor of the entry at the requested depth, if the stream reached it.
    cursor: Option<String>,
}

pub async fn run(ctx: &Ctx, user: BigUser, report: &mut Report) -> anyhow::Result<()> {
    let args = &ctx.args;
    let bearer = ctx.api.session(user.id)?;
    let client = ctx.api.client(0);
    let depth = user.plays * 9 / 10;
    eprintln!(
        "stream: {} full reads of {} plays each way...",
        args.stream_runs, user.plays
    );

    // Of several runs, the one whose RSS grew most is reported.
    let (mut runs, mut firsts, mut worst, mut cursor) = (Vec::new(), Vec::new(), None::<Rss>, None);
    for _ in 0..args.stream_runs {
        let sampler = args.server_pid.map(Sampler::start).transpose()?;
        let t0 = Instant::now();
        let read = tokio::time::timeout(args.budget(), read(&client, &bearer, 0, "", Some(depth)))
            .await
            .context("the whole-history stream exceeded the phase budget")??;
        runs.push(t0.elapsed());
        if let Some(s) = sampler {
            let rss = s.stop()?;
            if worst.is_none_or(|w| rss.growth() > w.growth()) {
                worst = Some(rss);
            }
        }
        ensure!(
            read.count == user.plays,
            "ListHistory streamed {} plays, the user has {}",
            read.count,
            user.plays
        );
        firsts.push(read.first_entry);
        cursor = cursor.or(read.cursor);
    }
    let service = runs_sample(runs, user.plays);

    let mut runs = Vec::new();
    for _ in 0..args.stream_runs {
        let t0 = Instant::now();
        let rows = tokio::time::timeout(args.budget(), baseline(&ctx.db, user.id))
            .await
            .context("the baseline read exceeded the phase budget")??;
        runs.push(t0.elapsed());
        ensure!(
            rows == user.plays,
            "the baseline read {rows} plays, the user has {}",
            user.plays
        );
    }
    let baseline = runs_sample(runs, user.plays);

    firsts.sort_unstable();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let rss = match worst {
        Some(w) => format!(
            "rss growth {:.1} MiB (before {:.1} MiB, peak {:.1} MiB)",
            mib(w.growth()),
            mib(w.before),
            mib(w.peak)
        ),
        None => "rss n/a".to_string(),
    };
    let what = match ctx.db {
        Db::Postgres(_) => "COPY TO STDOUT",
        Db::Sqlite { .. } => "row-by-row SELECT",
    };
    report::emit(report::line(
        "stream",
        "plays/s",
        &service,
        &baseline,
        &format!(
            "{} runs x {} plays, p50/p99 = whole stream, first entry {}; baseline {what}; {rss}",
            service.calls(),
            user.plays,
            ms(firsts.first().copied().unwrap_or_default()),
        ),
    ));
    let r = service.rate();
    report.at_least(
        "stream",
        ">= 200,000 plays/s",
        r,
        PLAYS_PER_SECOND_GOAL,
        format!("{} plays/s", report::rate(r)),
    );
    let ratio = report::ratio(&service, &baseline);
    report.at_least(
        "stream",
        ">= 0.5 x baseline",
        ratio,
        COPY_RATIO_GOAL,
        format!("{ratio:.2} x {what}"),
    );
    match worst {
        Some(w) => report.target(
            "stream",
            "RSS growth < 32 MiB",
            Some(w.growth() < RSS_GROWTH_GOAL_KIB),
            format!("{:.1} MiB", mib(w.growth())),
        ),
        None => report.target(
            "stream",
            "RSS growth < 32 MiB",
            None,
            "no --server-pid".into(),
        ),
    }

    let cursor = cursor.context("the stream never reached 90% depth")?;
    resume(ctx, user, &client, &bearer, &cursor, depth).await
}

/// The same number of plays read from a cursor at 90% depth and from the top: a keyset cursor
/// should make the two cost the same, where an OFFSET would make the first far slower.
async fn resume(
    ctx: &Ctx,
    user: BigUser,
    client: &Client,
    bearer: &Bearer,
    cursor: &str,
    depth: u64,
) -> anyhow::Result<()> {
    let limit = ctx.args.resume_plays;
    let expect_deep = u64::from(limit).min(user.plays - depth);
    let (mut deep, mut top) = (Vec::new(), Vec::new());
    for _ in 0..ctx.args.resume_runs {
        let t0 = Instant::now();
        let n = read(client, bearer, limit, cursor, None).await?.count;
        deep.push(t0.elapsed());
        ensure!(
            n == expect_deep,
            "resuming at 90% depth streamed {n} plays, expected {expect_deep}"
        );
        let t0 = Instant::now();
        let n = read(client, bearer, limit, "", None).await?.count;
        top.push(t0.elapsed());
        ensure!(
            n == u64::from(limit).min(user.plays),
            "a listing from the top streamed {n} plays"
        );
    }
    let deep = runs_sample(deep, expect_deep);
    let top = runs_sample(top, u64::from(limit).min(user.plays));
    report::emit(format!(
        "{:<16} from cursor at 90% depth {:>9} plays/s p50 {:>9} p99 {:>9} | from top {:>9} plays/s p50 {:>9} p99 {:>9} | ratio {:.2} | {} calls each of {limit} plays",
        "stream-resume",
        report::rate(deep.rate()),
        ms(deep.p50()),
        ms(deep.p99()),
        report::rate(top.rate()),
        ms(top.p50()),
        ms(top.p99()),
        report::ratio(&deep, &top),
        deep.calls(),
    ));
    Ok(())
}

fn runs_sample(runs: Vec<Duration>, plays_per_run: u64) -> Sample {
    let total = runs.iter().sum();
    let units = plays_per_run * runs.len() as u64;
    Sample::new(runs, total, units)
}

/// Drains one ListHistory stream (newest first), checking the order as it goes.
async fn read(
    client: &Client,
    bearer: &Bearer,
    limit: u32,
    after: &str,
    capture_at: Option<u64>,
) -> anyhow::Result<Read> {
    let request = bearer.request(pb::ListHistoryRequest {
        limit,
        after: after.to_string(),
        ..Default::default()
    });
    let t0 = Instant::now();
    let mut stream = client
        .clone()
        .list_history(request)
        .await
        .context("ListHistory")?
        .into_inner();
    let mut read = Read {
        count: 0,
        first_entry: Duration::ZERO,
        cursor: None,
    };
    let mut previous = (i64::MAX, i32::MAX);
    while let Some(entry) = stream
        .message()
        .await
        .context("reading the ListHistory stream")?
    {
        read.count += 1;
        if read.count == 1 {
            read.first_entry = t0.elapsed();
        }
        let at = entry
            .play
            .as_ref()
            .and_then(|p| p.played_at.as_ref())
            .map(|t| (t.seconds, t.nanos))
            .context("a streamed entry has no played_at")?;
        ensure!(
            at <= previous,
            "ListHistory is not newest first at entry {}",
            read.count
        );
        previous = at;
        if Some(read.count) == capture_at {
            read.cursor = Some(entry.cursor);
        }
    }
    Ok(read)
}

/// The same rows, in the same order, straight from the database; returns how many.
async fn baseline(db: &Db, user: Uuid) -> anyhow::Result<u64> {
    match db {
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await.context("acquiring a connection")?;
            // COPY takes no bind parameters; a Uuid prints as a plain hyphenated literal.
            let sql = format!(
                "COPY ({SELECT_PLAYS} WHERE user_id = '{user}' ORDER BY played_at DESC, id DESC) TO STDOUT"
            );
            let mut out = conn.copy_out_raw(&sql).await.context("starting COPY")?;
            let (mut rows, mut bytes) = (0u64, 0u64);
            while let Some(chunk) = out.next().await {
                let chunk = chunk.context("reading COPY output")?;
                bytes += chunk.len() as u64;
                rows += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            }
            ensure!(bytes > 0 || rows == 0, "COPY returned no bytes");
            Ok(rows)
        }
        Db::Sqlite { reader, .. } => {
            type Row = (Uuid, Uuid, Uuid, i64, i64, bool, String);
            let mut rows = sqlx::query_as::<_, Row>(
                "SELECT user_id, id, track_id, played_at, played_for_seconds, completed, source
                 FROM plays WHERE user_id = ? ORDER BY played_at DESC, id DESC",
            )
            .bind(user)
            .fetch(reader);
            let mut n = 0u64;
            while let Some(row) = rows.next().await {
                row.context("reading plays")?;
                n += 1;
            }
            Ok(n)
        }
    }
}
