//! Drives calls: a fixed number, at a fixed concurrency, timing each.
use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::task::JoinSet;

use crate::stats::Sample;

/// A call that does not answer in this long is a failure, not a latency.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `op(0..calls)` with `concurrency` calls in flight, stopping early once `budget` has
/// passed. Each worker takes the next index when its call ends (closed loop), so concurrency
/// stays constant and the throughput is what the system sustains at that concurrency.
/// `units_per_call` turns calls into plays for batch phases. The first failure stops the phase.
pub async fn run<F, Fut>(
    calls: usize,
    concurrency: usize,
    units_per_call: u64,
    budget: Duration,
    op: F,
) -> anyhow::Result<Sample>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.clamp(1, calls.max(1)) {
        let (op, next) = (op.clone(), next.clone());
        workers.spawn(async move {
            let mut latencies = Vec::with_capacity(calls / concurrency + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls || started.elapsed() > budget {
                    return anyhow::Ok(latencies);
                }
                let t0 = Instant::now();
                tokio::time::timeout(CALL_TIMEOUT, op(i))
                    .await
                    .with_context(|| format!("call {i} timed out after {CALL_TIMEOUT:?}"))??;
                latencies.push(t0.elapsed());
            }
        });
    }
    let mut latencies = Vec::with_capacity(calls);
    while let Some(done) = workers.join_next().await {
        latencies.extend(done.context("a load worker panicked")??);
    }
    let elapsed = started.elapsed();
    if latencies.len() < calls {
        eprintln!(
            "  note: phase budget of {budget:?} reached after {} of {calls} calls",
            latencies.len()
        );
    }
    let units = latencies.len() as u64 * units_per_call;
    Ok(Sample::new(latencies, elapsed, units))
}
