//! `record-batch`: RecordPlays of 1000 plays, one call after another (a player syncing after a
//! flight), against the same 1000 rows written directly in one statement.
use std::sync::{Arc, Mutex};

use anyhow::{Context, ensure};
use library_service::pb;
use uuid::Uuid;

use super::Ctx;
use crate::{
    db::{self, PlayRow},
    load,
    report::{self, Report},
    seed,
};

const HOUR_MICROS: i64 = 3_600_000_000;
const PLAYS_PER_SECOND_GOAL: f64 = 50_000.0;

/// `batches` batches of `size` plays over the last day, each play of a batch on a different
/// track (a listener's pool of `size` tracks, in a new order each time); with a `prefix`, each
/// play gets its own request_id, as a player that wants its retried syncs to store nothing
/// twice would send.
fn batches(batches: usize, size: usize, prefix: Option<&str>) -> Vec<Vec<PlayRow>> {
    let mut rng = rand::rng();
    let mut tracks = seed::track_pool(size);
    let now = seed::now_micros();
    (0..batches)
        .map(|b| {
            rand::seq::SliceRandom::shuffle(&mut tracks[..], &mut rng);
            tracks
                .iter()
                .enumerate()
                .map(|(j, &track)| {
                    let at = now - rand::Rng::random_range(&mut rng, 60_000_000..24 * HOUR_MICROS);
                    let key = prefix.map(|p| format!("{p}-{b}-{j}"));
                    PlayRow {
                        track_id: track,
                        ..seed::random_row(&mut rng, &tracks, at, key)
                    }
                })
                .collect()
        })
        .collect()
}

pub async fn run(ctx: &Ctx, report: &mut Report) -> anyhow::Result<()> {
    let args = &ctx.args;
    let size = args.batch_size;
    let tag = Uuid::new_v4().simple().to_string();
    let keys = |side: &str| args.batch_request_ids.then(|| format!("{side}{tag}"));
    eprintln!(
        "record-batch: {} RecordPlays calls of {size} plays...",
        args.batches
    );

    // Built before timing: the bench measures the service, not its own data generation. The
    // first batch of each side warms up and is not timed.
    let user = Uuid::new_v4();
    let mut for_service: Vec<Vec<pb::NewPlay>> =
        batches(args.batches + 1, size, keys("s").as_deref())
            .iter()
            .map(|batch| batch.iter().map(|r| seed::to_new_play(r, true)).collect())
            .collect();
    record(ctx, user, for_service.remove(0)).await?;
    // Each call takes its batch out, so the timed part does not copy 1000 plays first.
    let for_service: Arc<Vec<Mutex<Vec<pb::NewPlay>>>> =
        Arc::new(for_service.into_iter().map(Mutex::new).collect());
    let service = {
        let (api, all) = (ctx.api.clone(), for_service.clone());
        load::run(args.batches, 1, size as u64, args.budget(), move |b| {
            let plays = std::mem::take(&mut *all[b].lock().unwrap_or_else(|p| p.into_inner()));
            let api = api.clone();
            async move {
                let n = plays.len() as u32;
                let request = api.service.request(pb::RecordPlaysRequest {
                    user_id: user.to_string(),
                    plays,
                });
                let done = api
                    .client(0)
                    .record_plays(request)
                    .await
                    .context("RecordPlays")?
                    .into_inner();
                ensure!(
                    done.recorded_count == n,
                    "RecordPlays stored {} of {n} plays",
                    done.recorded_count
                );
                Ok(())
            }
        })
        .await?
    };

    let user = Uuid::new_v4();
    let for_baseline = Arc::new(batches(args.batches + 1, size, keys("b").as_deref()));
    db::record_plays(&ctx.store, user, &for_baseline[0]).await?;
    let baseline = {
        let (store, all) = (ctx.store.clone(), for_baseline.clone());
        load::run(args.batches, 1, size as u64, args.budget(), move |b| {
            let (store, all) = (store.clone(), all.clone());
            async move {
                let stored = db::record_plays(&store, user, &all[b + 1]).await?;
                ensure!(
                    stored == size as u64,
                    "the baseline stored {stored} of {size} plays"
                );
                Ok(())
            }
        })
        .await?
    };

    report::emit(report::line(
        "record-batch",
        "plays/s",
        &service,
        &baseline,
        &format!(
            "{} calls x {size} plays of {size} tracks, sequential, {}",
            service.calls(),
            if args.batch_request_ids {
                "every play with a request_id"
            } else {
                "no request_id"
            }
        ),
    ));
    let r = service.rate();
    report.at_least(
        "record-batch",
        ">= 50,000 plays/s",
        r,
        PLAYS_PER_SECOND_GOAL,
        format!("{} plays/s", report::rate(r)),
    );
    Ok(())
}

async fn record(ctx: &Ctx, user: Uuid, plays: Vec<pb::NewPlay>) -> anyhow::Result<()> {
    let request = ctx.api.service.request(pb::RecordPlaysRequest {
        user_id: user.to_string(),
        plays,
    });
    ctx.api
        .client(0)
        .record_plays(request)
        .await
        .context("RecordPlays (warm-up)")?;
    Ok(())
}
