//! The server's resident memory, sampled from /proc while a stream runs. A plain thread rather
//! than a task: the runtime is busy draining the stream, and a late sample could miss the peak.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::Context;

const PERIOD: Duration = Duration::from_millis(20);

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

pub struct Sampler {
    before: u64,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl Sampler {
    pub fn start(pid: u32) -> anyhow::Result<Self> {
        let before = rss_kib(pid)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = before;
            while !flag.load(Ordering::Relaxed) {
                // The server may exit mid-run; the peak so far is still the answer.
                if let Ok(now) = rss_kib(pid) {
                    peak = peak.max(now);
                }
                std::thread::sleep(PERIOD);
            }
            peak
        });
        Ok(Self {
            before,
            stop,
            thread,
        })
    }

    /// The RSS just before the start and the peak since, in KiB.
    pub fn stop(self) -> anyhow::Result<Rss> {
        self.stop.store(true, Ordering::Relaxed);
        let peak = self
            .thread
            .join()
            .map_err(|_| anyhow::anyhow!("the RSS sampler panicked"))?;
        Ok(Rss {
            before: self.before,
            peak,
        })
    }
}

#[derive(Clone, Copy)]
pub struct Rss {
    pub before: u64,
    pub peak: u64,
}

impl Rss {
    /// Peak minus the RSS just before the start, in KiB (never negative).
    pub fn growth(&self) -> u64 {
        self.peak.saturating_sub(self.before)
    }
}
