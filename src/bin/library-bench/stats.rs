//! Latency samples and nearest-rank percentiles.
use std::time::Duration;

/// What one timed phase measured.
#[derive(Clone)]
pub struct Sample {
    /// Per-call latencies, sorted ascending.
    latencies: Vec<Duration>,
    /// Wall time of the whole phase (calls overlap when concurrent, so this is not their sum).
    pub elapsed: Duration,
    /// Work done: calls, or plays for batch and stream phases.
    pub units: u64,
}

impl Sample {
    pub fn new(mut latencies: Vec<Duration>, elapsed: Duration, units: u64) -> Self {
        latencies.sort_unstable();
        Self {
            latencies,
            elapsed,
            units,
        }
    }

    /// Phases run one after another, as one: their calls, work and wall times added up.
    pub fn merged(samples: &[Sample]) -> Self {
        Self::new(
            samples
                .iter()
                .flat_map(|s| s.latencies.iter().copied())
                .collect(),
            samples.iter().map(|s| s.elapsed).sum(),
            samples.iter().map(|s| s.units).sum(),
        )
    }

    pub fn calls(&self) -> usize {
        self.latencies.len()
    }

    /// Units per second over the phase's wall time.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.units as f64 / secs
        } else {
            0.0
        }
    }

    pub fn p50(&self) -> Duration {
        percentile(&self.latencies, 50.0)
    }

    pub fn p99(&self) -> Duration {
        percentile(&self.latencies, 99.0)
    }

    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }
}

/// Nearest rank: the smallest sample with at least `p`% of the samples at or below it. No
/// interpolation, so the figure is always a latency that was actually observed.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_picks_an_observed_sample() {
        let s = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&s, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&s, 99.0), Duration::from_millis(99));
        let s = ms(&[1, 2, 3]);
        assert_eq!(percentile(&s, 50.0), Duration::from_millis(2));
        assert_eq!(percentile(&s, 99.0), Duration::from_millis(3));
        assert_eq!(percentile(&ms(&[7]), 99.0), Duration::from_millis(7));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }
}
