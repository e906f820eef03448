//! `ratelimit`: many callers each calling at four times their quota, against a server started
//! with its default read quota (or `--rate-quota-per-minute`). What the limiter lets through is
//! compared with what the quota allows in the same run (the burst plus the refill over the run),
//! and the server's memory is watched: with refusals at the door it must stay flat. With
//! `--addr-b` each caller alternates its calls between the two replicas: started with one
//! `--rate-limit-redis-url`, they must let through one quota's worth, not two.
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use library_service::pb;
use tokio::time::MissedTickBehavior;
use tonic::Code;
use uuid::Uuid;

use super::Ctx;
use crate::{
    report::{self, Report},
    rss::rss_kib,
};

/// Within 5% of what the quota allows.
const TOLERANCE: f64 = 0.05;
const LOAD_FACTOR: f64 = 4.0;
/// Memory is compared after this much of the run, once every caller's state exists.
const SETTLE: Duration = Duration::from_secs(5);
const FLAT_KIB: u64 = 2 * 1024;

pub async fn run(ctx: &Ctx, report: &mut Report) -> anyhow::Result<()> {
    let args = &ctx.args;
    let quota = f64::from(args.rate_quota_per_minute);
    let duration = Duration::from_secs(args.rate_seconds);
    let period = Duration::from_secs_f64(60.0 / (quota * LOAD_FACTOR));
    let (b, replicas) = match &args.addr_b {
        Some(b) => (Some(super::watch::connect(b).await?), "2 replicas"),
        None => (None, "1 replica"),
    };
    eprintln!(
        "ratelimit: {} callers at {LOAD_FACTOR}x a quota of {quota}/min for {duration:?} on {replicas}...",
        args.rate_callers
    );
    let started = Instant::now();
    let deadline = started + duration;
    let mut callers = Vec::new();
    for i in 0..args.rate_callers {
        let bearer = ctx.api.session(Uuid::new_v4())?;
        let a = ctx.api.client(i);
        // Calls alternate between the replicas: a balancer that spreads them per call.
        let clients: Vec<_> = std::iter::once(a).chain(b.clone()).collect();
        callers.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let (mut allowed, mut refused) = (0u64, 0u64);
            let mut calls = clients.into_iter().cycle();
            while Instant::now() < deadline {
                ticks.tick().await;
                let Some(mut client) = calls.next() else {
                    bail!("no client");
                };
                let request = bearer.request(pb::CheckLikedTracksRequest {
                    user_id: String::new(),
                    track_ids: vec![Uuid::new_v4().to_string()],
                });
                match client.check_liked_tracks(request).await {
                    Ok(_) => allowed += 1,
                    Err(s) if s.code() == Code::ResourceExhausted => refused += 1,
                    Err(s) => bail!("CheckLikedTracks failed: {s:?}"),
                }
            }
            Ok((allowed, refused))
        }));
    }
    let pid = args.server_pid;
    let settled_rss = async {
        tokio::time::sleep(SETTLE).await;
        pid.map(rss_kib).transpose()
    };
    let settled = settled_rss.await?;
    let (mut allowed, mut refused) = (0u64, 0u64);
    for caller in callers {
        let (a, r) = caller.await.context("caller task")??;
        allowed += a;
        refused += r;
    }
    let elapsed = started.elapsed();
    let end_rss = pid.map(rss_kib).transpose()?;

    // GCRA: the whole quota at once, then quota/60 a second.
    let per_caller = quota + quota * elapsed.as_secs_f64() / 60.0;
    let expected = per_caller * args.rate_callers as f64;
    let attempted = allowed + refused;
    let deviation = (allowed as f64 - expected).abs() / expected;
    let memory = match (settled, end_rss) {
        (Some(s), Some(e)) => format!(
            "server RSS {:.1} MiB after {SETTLE:?}, {:.1} MiB at the end",
            s as f64 / 1024.0,
            e as f64 / 1024.0
        ),
        _ => "rss n/a (no --server-pid)".into(),
    };
    report::emit(format!(
        "ratelimit        {} callers x {:.1} calls/s ({LOAD_FACTOR}x a quota of {quota}/min) for {:.1} s on {replicas} | attempted {} | allowed {} vs the quota's {} (ratio {:.3}, off by {:.1}%) | refused {} | {memory}",
        args.rate_callers,
        quota * LOAD_FACTOR / 60.0,
        elapsed.as_secs_f64(),
        report::rate(attempted as f64),
        report::rate(allowed as f64),
        report::rate(expected),
        allowed as f64 / expected,
        deviation * 100.0,
        report::rate(refused as f64),
    ));
    report.target(
        "ratelimit",
        "allowed within 5% of the quota at 4x load",
        Some(deviation <= TOLERANCE),
        format!("off by {:.1}%", deviation * 100.0),
    );
    let flat = settled
        .zip(end_rss)
        .map(|(s, e)| e.saturating_sub(s) <= FLAT_KIB);
    report.target(
        "ratelimit",
        "server memory flat (< 2 MiB growth after warm-up)",
        flat,
        match settled.zip(end_rss) {
            Some((s, e)) => format!("{:+.1} MiB", (e as f64 - s as f64) / 1024.0),
            None => "n/a".into(),
        },
    );
    Ok(())
}
