//! `export`: ExportLibrary of the million-play listener (plus likes), against ListHistory of the
//! same listener, oldest first, in the same run: both read the same rows page by page, so the
//! ratio shows what the export's chunked messages cost or save over one message per play. The
//! server's RSS growth is sampled while it exports.
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use library_service::pb::{self, export_chunk::Part};
use tokio_stream::StreamExt;

use super::Ctx;
use crate::{
    client::{Bearer, Client},
    report::{self, Report},
    rss::{Rss, Sampler},
    seed::{self, BigUser},
    stats::Sample,
};

const PLAYS_PER_SECOND_GOAL: f64 = 200_000.0;
const RSS_GROWTH_GOAL_KIB: u64 = 32 * 1024;
/// Likes added to the listener before exporting (a heavy user's count).
const LIKES: usize = 5_000;

pub async fn run(ctx: &Ctx, user: BigUser, report: &mut Report) -> anyhow::Result<()> {
    let args = &ctx.args;
    seed::likes(&ctx.db, user.id, LIKES).await?;
    ctx.db.analyze().await?;
    let bearer = ctx.api.session(user.id)?;
    let client = ctx.api.client(0);
    eprintln!(
        "export: {} full exports and {} oldest-first listings of {} plays...",
        args.stream_runs, args.stream_runs, user.plays
    );
    // Warm-up: the first read brings the listener's pages into the database's cache.
    export(&client, &bearer).await?;

    let (mut runs, mut worst, mut likes) = (Vec::new(), None::<Rss>, 0);
    for _ in 0..args.stream_runs {
        let sampler = args.server_pid.map(Sampler::start).transpose()?;
        let t0 = Instant::now();
        let (plays, liked) = tokio::time::timeout(args.budget(), export(&client, &bearer))
            .await
            .context("the export exceeded the phase budget")??;
        runs.push(t0.elapsed());
        if let Some(s) = sampler {
            let rss = s.stop()?;
            if worst.is_none_or(|w| rss.growth() > w.growth()) {
                worst = Some(rss);
            }
        }
        ensure!(
            plays == user.plays,
            "ExportLibrary gave {plays} plays, the user has {}",
            user.plays
        );
        likes = liked;
    }
    let service = sample(runs, user.plays);

    let mut runs = Vec::new();
    for _ in 0..args.stream_runs {
        let t0 = Instant::now();
        let n = tokio::time::timeout(args.budget(), list(&client, &bearer))
            .await
            .context("the listing exceeded the phase budget")??;
        runs.push(t0.elapsed());
        ensure!(
            n == user.plays,
            "ListHistory gave {n} plays, the user has {}",
            user.plays
        );
    }
    let baseline = sample(runs, user.plays);

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
    report::emit(report::line(
        "export",
        "plays/s",
        &service,
        &baseline,
        &format!(
            "{} runs x {} plays and {likes} likes, p50/p99 = whole export; baseline ListHistory oldest first; {rss}",
            service.calls(),
            user.plays,
        ),
    ));
    let r = service.rate();
    report.at_least(
        "export",
        ">= 200,000 plays/s",
        r,
        PLAYS_PER_SECOND_GOAL,
        format!("{} plays/s", report::rate(r)),
    );
    report.target(
        "export",
        "RSS growth < 32 MiB",
        worst.map(|w| w.growth() < RSS_GROWTH_GOAL_KIB),
        worst.map_or("no --server-pid".into(), |w| {
            format!("{:.1} MiB", mib(w.growth()))
        }),
    );
    Ok(())
}

fn sample(runs: Vec<Duration>, plays_per_run: u64) -> Sample {
    let total = runs.iter().sum();
    let units = plays_per_run * runs.len() as u64;
    Sample::new(runs, total, units)
}

/// Drains one export, checking its shape (header first, plays oldest first, trailer last with
/// the counts received); returns the plays and likes it held.
async fn export(client: &Client, bearer: &Bearer) -> anyhow::Result<(u64, u64)> {
    let mut stream = client
        .clone()
        .export_library(bearer.request(pb::ExportLibraryRequest::default()))
        .await
        .context("ExportLibrary")?
        .into_inner();
    let (mut plays, mut likes, mut header, mut trailer) = (0u64, 0u64, false, None);
    let mut previous = (i64::MIN, i32::MIN);
    while let Some(chunk) = stream.next().await {
        let part = chunk.context("reading the export")?.part;
        ensure!(trailer.is_none(), "a chunk after the trailer");
        match part.context("a chunk without a part")? {
            Part::Header(h) => {
                ensure!(!header && h.version == 1, "a bad header: {h:?}");
                header = true;
            }
            Part::Plays(chunk) => {
                for play in &chunk.plays {
                    let at = play
                        .played_at
                        .as_ref()
                        .map(|t| (t.seconds, t.nanos))
                        .context("a play without played_at")?;
                    ensure!(
                        at >= previous,
                        "the export is not oldest first at play {plays}"
                    );
                    previous = at;
                    plays += 1;
                }
            }
            Part::Likes(chunk) => likes += chunk.likes.len() as u64,
            Part::Trailer(t) => trailer = Some(t),
        }
    }
    let trailer = trailer.context("the export ended without its trailer")?;
    ensure!(
        header && (trailer.play_count, trailer.like_count) == (plays, likes),
        "the trailer says {trailer:?}, the stream held {plays} plays and {likes} likes"
    );
    Ok((plays, likes))
}

/// Drains ListHistory of the whole history, oldest first (the export's order); returns how many.
async fn list(client: &Client, bearer: &Bearer) -> anyhow::Result<u64> {
    let mut stream = client
        .clone()
        .list_history(bearer.request(pb::ListHistoryRequest {
            order: pb::HistoryOrder::OldestFirst.into(),
            ..Default::default()
        }))
        .await
        .context("ListHistory")?
        .into_inner();
    let mut n = 0;
    while let Some(entry) = stream.next().await {
        entry.context("reading ListHistory")?;
        n += 1;
    }
    Ok(n)
}
