//! `record`: RecordPlay at 64 concurrent calls, as a fleet of players sends them (each listener
//! with one call in flight), and then all for one listener, against the rate at which the
//! database commits single plays into a bare table at as many connections: one commit per play,
//! which only a group commit can beat.
use std::{sync::Arc, time::Duration};

use anyhow::{Context, ensure};
use library_service::pb;
use uuid::Uuid;

use super::Ctx;
use crate::{
    db::Db,
    load, pgbench,
    report::{self, Report},
    seed,
    stats::Sample,
    thin::Thin,
};

/// Listeners the plays are spread over: each has at most one call in flight, as a real player
/// does.
const USERS: usize = 1024;
const WARM_UP_CALLS: usize = 256;
const P99_GOAL: Duration = Duration::from_millis(25);

/// A play as a player sends it when a track ends: no played_at, so the service stamps it with
/// its own clock.
pub(super) fn live_play(user: Uuid, tracks: &[Uuid], request_id: String) -> pb::RecordPlayRequest {
    let row = seed::random_row(&mut rand::rng(), tracks, 0, Some(request_id));
    let play = seed::to_new_play(&row, false);
    pb::RecordPlayRequest {
        user_id: user.to_string(),
        track_id: play.track_id,
        played_for_seconds: play.played_for_seconds,
        completed: play.completed,
        source: play.source,
        played_at: None,
        request_id: play.request_id,
        track_duration_seconds: play.track_duration_seconds,
    }
}

pub async fn run(ctx: &Ctx, report: &mut Report) -> anyhow::Result<()> {
    let args = &ctx.args;
    let users: Arc<Vec<Uuid>> = Arc::new(seed::track_pool(USERS));
    let tracks = Arc::new(seed::track_pool(5000));
    // Unique per run, so a re-run never replays an old request_id.
    let run_tag = Uuid::new_v4().simple().to_string();

    eprintln!(
        "record: {} RecordPlay calls, {} in flight...",
        args.record_calls, args.concurrency
    );
    let service = |prefix: &'static str, calls: usize, users: Arc<Vec<Uuid>>| {
        let (api, tracks, tag) = (ctx.api.clone(), tracks.clone(), run_tag.clone());
        load::run(calls, args.concurrency, 1, args.budget(), move |i| {
            let (api, users, tracks) = (api.clone(), users.clone(), tracks.clone());
            let request_id = format!("{prefix}-{tag}-{i}");
            async move {
                let play = live_play(users[i % users.len()], &tracks, request_id);
                let request = api.service.request(play);
                let done = api
                    .client(i)
                    .record_play(request)
                    .await
                    .context("RecordPlay")?
                    .into_inner();
                ensure!(
                    !done.duplicate,
                    "a fresh request_id was reported as a duplicate"
                );
                Ok(())
            }
        })
    };
    service("warm", WARM_UP_CALLS, users.clone()).await?;
    let many = service("svc", args.record_calls, users.clone()).await?;
    let one_listener = Arc::new(vec![Uuid::new_v4()]);
    let one = service("one", args.record_calls, one_listener).await?;
    let thin = thin_service(ctx, &users, &tracks, &run_tag).await?;

    ctx.db.create_bare_plays().await?;
    // Connections of its own, closed before pgbench opens as many again.
    let bare = Db::connect(&args.database_url, args.concurrency as u32).await?;
    let baseline = |calls: usize| {
        let (db, users, tracks) = (bare.clone(), users.clone(), tracks.clone());
        load::run(calls, args.concurrency, 1, args.budget(), move |i| {
            let (db, users, tracks) = (db.clone(), users.clone(), tracks.clone());
            async move {
                let row = seed::random_row(&mut rand::rng(), &tracks, seed::now_micros(), None);
                db.insert_bare_play(users[i % users.len()], &row).await
            }
        })
    };
    baseline(WARM_UP_CALLS).await?;
    let baseline = baseline(args.record_calls).await;
    bare.close().await;
    let pgbench = match (&ctx.db, baseline.is_ok()) {
        (Db::Postgres(_), true) if pgbench::available() => {
            eprintln!("record: the same inserts from pgbench...");
            let url = args.database_url.clone();
            let (clients, calls) = (args.concurrency, args.record_calls);
            Some(
                tokio::task::spawn_blocking(move || pgbench::bare_inserts(&url, clients, calls))
                    .await?,
            )
        }
        (Db::Postgres(_), true) => {
            eprintln!("  note: no pgbench on PATH: record-thin is compared with the sqlx baseline");
            None
        }
        _ => None,
    };
    ctx.db.drop_bare_plays().await?;
    let baseline = baseline?;
    let thin_baseline = match pgbench {
        Some(sample) => (sample?, "pgbench"),
        None => (baseline.clone(), "the bench's own connections"),
    };
    let service = many;

    report::emit(report::line(
        "record",
        "ops/s",
        &service,
        &baseline,
        &format!(
            "{} calls, {} concurrent, {} listeners",
            service.calls(),
            args.concurrency,
            USERS
        ),
    ));
    report::emit(report::line(
        "record-one",
        "ops/s",
        &one,
        &service,
        &format!(
            "{} calls for one listener, {} concurrent; baseline: the 64-listener figure",
            one.calls(),
            args.concurrency
        ),
    ));
    report::emit(report::line(
        "record-thin",
        "ops/s",
        &thin,
        &thin_baseline.0,
        &format!(
            "{} calls, {} concurrent, {} listeners, over raw HTTP/2; baseline: bare inserts from {}",
            thin.calls(),
            args.concurrency,
            USERS,
            thin_baseline.1
        ),
    ));
    let ratio = report::ratio(&service, &baseline);
    report.at_least(
        "record",
        ">= 1.0 x bare inserts",
        ratio,
        1.0,
        format!("{ratio:.2} x"),
    );
    report.at_most("record", "p99 <= 25 ms", service.p99(), P99_GOAL);
    let one_ratio = report::ratio(&one, &service);
    report.at_least(
        "record",
        "one listener >= 0.5 x",
        one_ratio,
        0.5,
        format!("{one_ratio:.2} x"),
    );
    Ok(())
}

/// The `record` load again, through [`Thin`]: the same listeners, plays and unique
/// `request_id`s, with a client that costs the shared cores little per call.
async fn thin_service(
    ctx: &Ctx,
    users: &Arc<Vec<Uuid>>,
    tracks: &Arc<Vec<Uuid>>,
    tag: &str,
) -> anyhow::Result<Sample> {
    let args = &ctx.args;
    eprintln!("record: the same over raw HTTP/2...");
    let thin = Thin::connect(
        &args.addr,
        args.connections,
        ctx.api.service.value(),
        crate::client::TlsClient::from_args(args)?.as_ref(),
    )
    .await?;
    let calls = |prefix: &'static str, calls: usize| {
        let (thin, users, tracks, tag) =
            (thin.clone(), users.clone(), tracks.clone(), tag.to_string());
        load::run(calls, args.concurrency, 1, args.budget(), move |i| {
            let (thin, users, tracks) = (thin.clone(), users.clone(), tracks.clone());
            let request_id = format!("{prefix}-{tag}-{i}");
            async move {
                let play = live_play(users[i % users.len()], &tracks, request_id);
                let done: pb::RecordPlayResponse = thin
                    .unary(i, RECORD_PLAY, &play)
                    .await
                    .context("RecordPlay")?;
                ensure!(
                    !done.duplicate,
                    "a fresh request_id was reported as a duplicate"
                );
                Ok(())
            }
        })
    };
    calls("thin-warm", WARM_UP_CALLS).await?;
    calls("thin", args.record_calls).await
}

const RECORD_PLAY: &str = "/audiohm.library.v1.LibraryService/RecordPlay";
