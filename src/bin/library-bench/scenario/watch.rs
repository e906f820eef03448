//! `watch`: how fast a change reaches a WatchLibrary stream, from another replica when
//! `--addr-b` names one (RecordPlay through B, the watcher on `--addr`); and what 1,000 idle
//! watchers cost one replica: its RSS, and RecordPlay's throughput with them against without
//! them, alternated in the same run.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use library_service::pb::{
    self, library_event::Event, library_service_client::LibraryServiceClient,
};
use tokio::task::JoinSet;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};
use uuid::Uuid;

use super::{Ctx, record::live_play};
use crate::{
    client::Client,
    load,
    report::{self, Report, ms},
    rss::rss_kib,
    seed,
    stats::Sample,
};

const P50_GOAL: Duration = Duration::from_millis(50);
const P99_GOAL: Duration = Duration::from_secs(1);
const RSS_GROWTH_GOAL_KIB: u64 = 64 * 1024;
const THROUGHPUT_RATIO_GOAL: f64 = 0.9;
/// Listeners watched while plays are recorded for them, and calls in flight through B.
const WATCHED: usize = 50;
const DELIVERY_CONCURRENCY: usize = 8;
/// Streams per HTTP/2 connection: under the server's default cap of concurrent streams.
const STREAMS_PER_CONNECTION: usize = 100;

pub(super) async fn connect(addr: &str) -> anyhow::Result<Client> {
    let channel: Channel = Endpoint::from_shared(addr.to_string())
        .with_context(|| format!("address {addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    Ok(LibraryServiceClient::new(channel))
}

/// Opens a watcher of `user` and waits for its `watching`, so that the stream is live.
async fn open(
    ctx: &Ctx,
    client: &mut Client,
    user: Uuid,
) -> anyhow::Result<tonic::Streaming<pb::LibraryEvent>> {
    let request = ctx.api.session(user)?.request(pb::WatchLibraryRequest {
        user_id: String::new(),
        after: String::new(),
    });
    let mut stream = client
        .watch_library(request)
        .await
        .context("WatchLibrary")?
        .into_inner();
    match stream.next().await {
        Some(Ok(pb::LibraryEvent {
            event: Some(Event::Watching(_)),
            ..
        })) => Ok(stream),
        other => bail!("expected `watching` first, got {other:?}"),
    }
}

pub async fn run(ctx: &Ctx, report: &mut Report) -> anyhow::Result<()> {
    delivery(ctx, report).await?;
    idle_watchers(ctx, report).await
}

/// Each play has a track of its own, so its event is matched to the call that recorded it.
async fn delivery(ctx: &Ctx, report: &mut Report) -> anyhow::Result<()> {
    let args = &ctx.args;
    let (b_addr, across) = match &args.addr_b {
        Some(b) => (b.clone(), "across replicas"),
        None => (args.addr.clone(), "one replica"),
    };
    eprintln!(
        "watch: {} plays through {b_addr}, watched on {} ({across})...",
        args.watch_plays, args.addr
    );
    let users: Vec<Uuid> = seed::track_pool(WATCHED);
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let delays: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut watchers = JoinSet::new();
    let mut a = connect(&args.addr).await?;
    for &user in &users {
        let mut stream = open(ctx, &mut a, user).await?;
        let (sent, delays) = (sent.clone(), delays.clone());
        watchers.spawn(async move {
            while let Some(Ok(event)) = stream.next().await {
                if let Some(Event::PlayRecorded(play)) = event.event {
                    let at = Instant::now();
                    let started = sent
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&play.track_id);
                    if let Some(started) = started {
                        delays
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(at - started);
                    }
                }
            }
        });
    }
    let b = connect(&b_addr).await?;
    let tag = Uuid::new_v4().simple().to_string();
    let calls = {
        let (b, users, sent, service) = (
            b.clone(),
            users.clone(),
            sent.clone(),
            ctx.api.service.clone(),
        );
        load::run(
            args.watch_plays,
            DELIVERY_CONCURRENCY,
            1,
            args.budget(),
            move |i| {
                let (mut b, users, sent, service) =
                    (b.clone(), users.clone(), sent.clone(), service.clone());
                let tag = tag.clone();
                async move {
                    let track = Uuid::new_v4();
                    let play =
                        live_play(users[i % users.len()], &[track], format!("watch-{tag}-{i}"));
                    // Timed from before the call: the commit is somewhere inside it, so this
                    // counts the call's own time too, and never flatters the figure.
                    sent.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(track.to_string(), Instant::now());
                    b.record_play(service.request(play))
                        .await
                        .context("RecordPlay through B")?;
                    Ok(())
                }
            },
        )
        .await?
    };
    // The last events are still on their way.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && !sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watchers.abort_all();
    let missing = sent.lock().unwrap_or_else(PoisonError::into_inner).len();
    let delays = std::mem::take(&mut *delays.lock().unwrap_or_else(PoisonError::into_inner));
    ensure!(!delays.is_empty(), "no event reached a watcher");
    let delivered = delays.len();
    let sample = Sample::new(delays, calls.elapsed, delivered as u64);
    report::emit(format!(
        "{:<16} {delivered} events of {} plays, p50 {} p99 {} max {} | RecordPlay p50 {} p99 {} | {} missing after 5 s | {WATCHED} listeners watched, {DELIVERY_CONCURRENCY} calls in flight, {across}",
        "watch-delivery",
        args.watch_plays,
        ms(sample.p50()),
        ms(sample.p99()),
        ms(sample.max()),
        ms(calls.p50()),
        ms(calls.p99()),
        missing,
    ));
    report.at_most("watch", "delivery p50 <= 50 ms", sample.p50(), P50_GOAL);
    report.at_most("watch", "delivery p99 <= 1 s", sample.p99(), P99_GOAL);
    report.target(
        "watch",
        "every event delivered",
        Some(missing == 0),
        format!("{missing} missing"),
    );
    Ok(())
}

/// RecordPlay as the `record` scenario drives it, for `calls` calls.
async fn record(ctx: &Ctx, users: &Arc<Vec<Uuid>>, prefix: String) -> anyhow::Result<Sample> {
    let args = &ctx.args;
    let tracks = Arc::new(seed::track_pool(5000));
    let (api, users) = (ctx.api.clone(), users.clone());
    load::run(
        args.record_calls,
        args.concurrency,
        1,
        args.budget(),
        move |i| {
            let (api, users, tracks) = (api.clone(), users.clone(), tracks.clone());
            let request_id = format!("{prefix}-{i}");
            async move {
                let play = live_play(users[i % users.len()], &tracks, request_id);
                api.client(i)
                    .record_play(api.service.request(play))
                    .await
                    .context("RecordPlay")?;
                Ok(())
            }
        },
    )
    .await
}

async fn idle_watchers(ctx: &Ctx, report: &mut Report) -> anyhow::Result<()> {
    let args = &ctx.args;
    let n = args.idle_watchers;
    let writers = Arc::new(seed::track_pool(1024));
    let tag = Uuid::new_v4().simple().to_string();
    eprintln!("watch: RecordPlay without and with {n} idle watchers, alternated twice...");
    record(ctx, &writers, format!("idle-warm-{tag}")).await?;
    let (mut without, mut with, mut growth) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..2 {
        without.push(record(ctx, &writers, format!("idle-{tag}-{round}-without")).await?);
        let before = args.server_pid.map(rss_kib).transpose()?;
        let mut streams = Vec::with_capacity(n);
        let mut client = None;
        for i in 0..n {
            if i % STREAMS_PER_CONNECTION == 0 {
                client = Some(connect(&args.addr).await?);
            }
            if let Some(c) = client.as_mut() {
                // Listeners of their own: nothing they watch changes (idle).
                streams.push(open(ctx, c, Uuid::new_v4()).await?);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let (Some(pid), Some(before)) = (args.server_pid, before) {
            growth.push(rss_kib(pid)?.saturating_sub(before));
        }
        with.push(record(ctx, &writers, format!("idle-{tag}-{round}-with")).await?);
        drop(streams);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rate = |s: &[Sample]| s.iter().map(Sample::rate).sum::<f64>() / s.len() as f64;
    let ratio = rate(&with) / rate(&without);
    for (round, (w, wo)) in with.iter().zip(&without).enumerate() {
        report::emit(report::line(
            "watch-idle",
            "ops/s",
            w,
            wo,
            &format!("round {round}: RecordPlay with {n} idle watchers open; baseline: without"),
        ));
    }
    report.at_least(
        "watch",
        "RecordPlay with idle >= 0.9 x",
        ratio,
        THROUGHPUT_RATIO_GOAL,
        format!("{ratio:.2} x (mean of 2 rounds)"),
    );
    match growth.iter().max() {
        Some(&kib) => {
            report::emit(format!(
                "{:<16} RSS growth with {n} idle watchers open: {:.1} MiB (rounds: {})",
                "watch-idle-rss",
                kib as f64 / 1024.0,
                growth
                    .iter()
                    .map(|g| format!("{:.1}", *g as f64 / 1024.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            report.target(
                "watch",
                "RSS growth <= 64 MiB",
                Some(kib <= RSS_GROWTH_GOAL_KIB),
                format!("{:.1} MiB", kib as f64 / 1024.0),
            );
        }
        None => report.target(
            "watch",
            "RSS growth <= 64 MiB",
            None,
            "no --server-pid".into(),
        ),
    }
    Ok(())
}
