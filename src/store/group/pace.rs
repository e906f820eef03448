//! How fast the store has lately been committing plays, which says how many live plays may
//! wait: as many as it commits in the wait bound (a queue length from a rate and a target
//! delay, by Little's law).
use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

/// Commits are counted over windows at least this long; the rate is the last full window's.
const WINDOW: Duration = Duration::from_millis(200);

#[derive(Default)]
pub(super) struct Pace(Mutex<Window>);

#[derive(Default)]
struct Window {
    started: Option<Instant>,
    plays: u64,
    /// Plays per second over the last full window.
    rate: f64,
}

impl Pace {
    /// Counts a group's plays, committed (or failed) just now.
    pub(super) fn committed(&self, plays: u64) {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let started = *w.started.get_or_insert(now);
        w.plays += plays;
        let elapsed = now.duration_since(started);
        if elapsed >= WINDOW {
            w.rate = w.plays as f64 / elapsed.as_secs_f64();
            w.started = Some(now);
            w.plays = 0;
        }
    }

    /// Live plays that may wait: what the store commits in `wait` at its last rate.
    pub(super) fn plays_within(&self, wait: Duration) -> u64 {
        let rate = self.0.lock().unwrap_or_else(|p| p.into_inner()).rate;
        (rate * wait.as_secs_f64()) as u64
    }
}
