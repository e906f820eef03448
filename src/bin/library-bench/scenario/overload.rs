//! `overload`: RecordPlay sent at twice the rate the server sustains (open loop: calls start on
//! a clock, whether or not earlier ones have been answered, as a fleet of players does). The
//! capacity is measured first in the same run, closed loop at `--concurrency`. The server must
//! answer the calls it accepts quickly, shed the rest with UNAVAILABLE and RetryInfo, and store
//! exactly the plays it acknowledged.
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use tokio::task::JoinSet;
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

use super::{Ctx, record::live_play};
use crate::{
    load,
    report::{self, Report},
    seed,
    stats::Sample,
};

const USERS: usize = 1024;
const P99_GOAL: Duration = Duration::from_millis(100);
/// Calls started per tick of the clock.
const TICK: Duration = Duration::from_millis(2);
/// More calls than this in flight means the server stopped answering: the run fails.
const MAX_IN_FLIGHT: usize = 20_000;

enum Answer {
    Accepted(Duration),
    Shed,
}

pub async fn run(ctx: &Ctx, report: &mut Report) -> anyhow::Result<()> {
    let args = &ctx.args;
    let users: Arc<Vec<Uuid>> = Arc::new(seed::track_pool(USERS));
    let tracks: Arc<Vec<Uuid>> = Arc::new(seed::track_pool(5000));
    let tag = Uuid::new_v4().simple().to_string();
    let accepted_plays = Arc::new(AtomicU64::new(0));

    eprintln!(
        "overload: capacity, closed loop at {} in flight...",
        args.concurrency
    );
    let capacity = {
        let (api, users, tracks, tag, stored) = (
            ctx.api.clone(),
            users.clone(),
            tracks.clone(),
            tag.clone(),
            accepted_plays.clone(),
        );
        load::run(
            args.record_calls,
            args.concurrency,
            1,
            args.budget(),
            move |i| {
                let (api, users, tracks, stored) =
                    (api.clone(), users.clone(), tracks.clone(), stored.clone());
                let play = live_play(users[i % USERS], &tracks, format!("cap-{tag}-{i}"));
                async move {
                    api.client(i)
                        .record_play(api.service.request(play))
                        .await
                        .context("RecordPlay")?;
                    stored.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
            },
        )
        .await?
    };
    let rate = 2.0 * capacity.rate();
    let seconds = args.overload_seconds;
    eprintln!(
        "overload: {} calls/s (twice {}) for {seconds} s, open loop...",
        report::rate(rate),
        report::rate(capacity.rate())
    );

    let mut calls = JoinSet::new();
    let (mut accepted, mut shed) = (Vec::new(), 0u64);
    let started = Instant::now();
    let mut sent = 0usize;
    let mut clock = tokio::time::interval(TICK);
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while started.elapsed() < Duration::from_secs(seconds) {
        clock.tick().await;
        let due = (started.elapsed().as_secs_f64() * rate) as usize;
        while sent < due {
            let i = sent;
            sent += 1;
            let api = ctx.api.clone();
            let play = live_play(users[i % USERS], &tracks, format!("over-{tag}-{i}"));
            calls.spawn(async move {
                let t0 = Instant::now();
                match api.client(i).record_play(api.service.request(play)).await {
                    Ok(_) => Ok(Answer::Accepted(t0.elapsed())),
                    Err(s)
                        if s.code() == Code::Unavailable
                            && s.get_details_retry_info().is_some() =>
                    {
                        Ok(Answer::Shed)
                    }
                    Err(s) => Err(anyhow::anyhow!("RecordPlay under overload: {s:?}")),
                }
            });
        }
        while let Some(done) = calls.try_join_next() {
            tally(done, &mut accepted, &mut shed)?;
        }
        if calls.len() > MAX_IN_FLIGHT {
            bail!(
                "{} calls in flight: the server stopped answering",
                calls.len()
            );
        }
    }
    while let Some(done) = calls.join_next().await {
        tally(done, &mut accepted, &mut shed)?;
    }
    let elapsed = started.elapsed();
    let acknowledged = accepted.len() as u64;
    let overloaded = Sample::new(accepted, elapsed, acknowledged);

    let mut stored = 0;
    for &user in users.iter() {
        stored += ctx.db.count_plays(user).await?;
    }
    let expected = accepted_plays.load(Ordering::Relaxed) + acknowledged;
    ensure!(
        stored == expected,
        "the database holds {stored} plays of these listeners, but {expected} were acknowledged"
    );

    report::emit(report::line(
        "overload",
        "ops/s",
        &overloaded,
        &capacity,
        &format!(
            "{sent} calls at {} calls/s for {seconds} s: {acknowledged} accepted, {shed} shed \
             with UNAVAILABLE + RetryInfo ({:.0}%), every acknowledged play stored once; \
             baseline the closed-loop capacity",
            report::rate(rate),
            100.0 * shed as f64 / sent.max(1) as f64
        ),
    ));
    report.at_most(
        "overload",
        "p99 of accepted calls <= 100 ms",
        overloaded.p99(),
        P99_GOAL,
    );
    Ok(())
}

fn tally(
    done: Result<anyhow::Result<Answer>, tokio::task::JoinError>,
    accepted: &mut Vec<Duration>,
    shed: &mut u64,
) -> anyhow::Result<()> {
    match done.context("a call panicked")?? {
        Answer::Accepted(latency) => accepted.push(latency),
        Answer::Shed => *shed += 1,
    }
    Ok(())
}
