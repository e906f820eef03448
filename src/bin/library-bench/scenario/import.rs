//! `import`: one ImportHistory stream of a listener's whole past (1,000,000 plays over a year,
//! oldest first, in messages of 1000 without request_ids, so the service keys each play by
//! track and time), against the same plays written through the store's own `record_plays` one
//! batch after another, with the same keys.
use std::{sync::Arc, time::Instant};

use anyhow::{Context, ensure};
use library_service::pb;
use uuid::Uuid;

use super::Ctx;
use crate::{
    db::{self, PlayRow},
    load,
    report::{self, Report},
    rss::Sampler,
    seed,
    stats::Sample,
};

const DAY_MICROS: i64 = 86_400_000_000;
const BATCH: usize = 1000;
const PLAYS_PER_SECOND_GOAL: f64 = 50_000.0;

/// `n` plays spread over the past 365 days, oldest first, in batches of [`BATCH`].
fn history(n: usize) -> Vec<Vec<PlayRow>> {
    let mut rng = rand::rng();
    let tracks = seed::track_pool(5000);
    let end = seed::now_micros() - 60_000_000;
    let step = 365 * DAY_MICROS / n.max(1) as i64;
    let rows: Vec<PlayRow> = (0..n)
        .map(|i| {
            let jitter = rand::Rng::random_range(&mut rng, 0..step.max(1));
            let at = end - 365 * DAY_MICROS + i as i64 * step + jitter;
            seed::random_row(&mut rng, &tracks, at, None)
        })
        .collect();
    rows.chunks(BATCH).map(<[PlayRow]>::to_vec).collect()
}

/// The key the service gives an imported play that came without one.
fn natural_key(row: &PlayRow) -> String {
    format!("import:{}@{}", row.track_id, row.played_at_micros)
}

pub async fn run(ctx: &Ctx, report: &mut Report) -> anyhow::Result<()> {
    let args = &ctx.args;
    let n = args.import_plays;
    eprintln!("import: ImportHistory of {n} plays...");
    let user = Uuid::new_v4();
    // Built before timing: the bench measures the service, not its own data generation.
    let messages: Vec<pb::ImportHistoryRequest> = history(n)
        .iter()
        .map(|batch| pb::ImportHistoryRequest {
            user_id: user.to_string(),
            plays: batch.iter().map(|r| seed::to_new_play(r, true)).collect(),
        })
        .collect();
    let rss = args.server_pid.map(Sampler::start).transpose()?;
    let started = Instant::now();
    let summary = ctx
        .api
        .client(0)
        .import_history(ctx.api.service.request(tokio_stream::iter(messages)))
        .await
        .context("ImportHistory")?
        .into_inner();
    let elapsed = started.elapsed();
    let rss = rss.map(Sampler::stop).transpose()?;
    ensure!(
        summary.imported_count == n as u64 && summary.rejected_count == 0,
        "ImportHistory imported {} of {n} plays ({} duplicates, {} rejected)",
        summary.imported_count,
        summary.duplicate_count,
        summary.rejected_count
    );
    ensure!(
        ctx.db.count_plays(user).await? == n as u64,
        "the database does not hold the {n} imported plays"
    );
    let service = Sample::new(vec![elapsed], elapsed, n as u64);

    let user = Uuid::new_v4();
    let batches: Vec<Vec<PlayRow>> = history(n)
        .into_iter()
        .map(|mut batch| {
            for row in &mut batch {
                row.request_id = Some(natural_key(row));
            }
            batch
        })
        .collect();
    let batches = Arc::new(batches);
    let baseline = {
        let (store, all) = (ctx.store.clone(), batches.clone());
        load::run(all.len(), 1, BATCH as u64, args.budget(), move |b| {
            let (store, all) = (store.clone(), all.clone());
            async move {
                let stored = db::record_plays(&store, user, &all[b]).await?;
                ensure!(
                    stored == all[b].len() as u64,
                    "the baseline stored {stored} plays"
                );
                Ok(())
            }
        })
        .await?
    };

    let memory = match rss {
        Some(r) => format!("server RSS growth {} MiB", r.growth() / 1024),
        None => "server RSS not sampled (no --server-pid)".into(),
    };
    report::emit(report::line(
        "import",
        "plays/s",
        &service,
        &baseline,
        &format!(
            "one stream of {n} plays in messages of {BATCH}; baseline the store's record_plays, \
             one batch after another; {memory}"
        ),
    ));
    let r = service.rate();
    report.at_least(
        "import",
        ">= 50,000 plays/s",
        r,
        PLAYS_PER_SECOND_GOAL,
        format!("{} plays/s", report::rate(r)),
    );
    Ok(())
}
