//! What counts as a play. A play counts when it completed, or when it played at least
//! min(`cap`, `fraction` of the track's duration) and at least `floor`; without a duration, at
//! least `cap`. The rule is decided when a play is written and stored with it, so changing the
//! settings never rewrites history.

/// The thresholds of the counting rule (settings: `--count-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountingRule {
    /// Seconds that always count (240 by default).
    pub cap_seconds: u32,
    /// Seconds below which a play that did not complete never counts (30 by default).
    pub floor_seconds: u32,
    /// Percent of the track's duration that counts (50 by default).
    pub fraction_percent: u32,
}

impl CountingRule {
    pub const DEFAULT: Self = Self {
        cap_seconds: 240,
        floor_seconds: 30,
        fraction_percent: 50,
    };

    /// Refuses settings no rule could mean.
    pub fn new(
        cap_seconds: u32,
        floor_seconds: u32,
        fraction_percent: u32,
    ) -> Result<Self, String> {
        if floor_seconds > cap_seconds {
            return Err(format!(
                "the floor ({floor_seconds} s) must not be above the cap ({cap_seconds} s)"
            ));
        }
        if !(1..=100).contains(&fraction_percent) {
            return Err("the fraction must be between 1 and 100 percent".into());
        }
        Ok(Self {
            cap_seconds,
            floor_seconds,
            fraction_percent,
        })
    }

    pub fn counts(&self, played_for_seconds: u32, completed: bool, duration: Option<u32>) -> bool {
        if completed {
            return true;
        }
        if played_for_seconds < self.floor_seconds {
            return false;
        }
        if played_for_seconds >= self.cap_seconds {
            return true;
        }
        // played / duration >= fraction / 100, in integers: half of a 61 s track is 30.5 s.
        duration.is_some_and(|d| {
            u64::from(played_for_seconds) * 100 >= u64::from(d) * u64::from(self.fraction_percent)
        })
    }
}

impl Default for CountingRule {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_count_by_the_rule_listeners_know() {
        let rule = CountingRule::DEFAULT;
        // Completed always counts, even a 10 s interlude.
        assert!(rule.counts(10, true, Some(10)));
        // Without a duration: four minutes.
        assert!(!rule.counts(239, false, None));
        assert!(rule.counts(240, false, None));
        // Half of a 3-minute track is 90 s.
        assert!(!rule.counts(89, false, Some(180)));
        assert!(rule.counts(90, false, Some(180)));
        // Half of 61 s is 30.5 s: 30 is not enough, 31 is.
        assert!(!rule.counts(30, false, Some(61)));
        assert!(rule.counts(31, false, Some(61)));
        // A 40 s track: half is 20 s, but never under 30 s.
        assert!(!rule.counts(29, false, Some(40)));
        assert!(rule.counts(30, false, Some(40)));
        // A 20-minute track: four minutes are enough, not ten.
        assert!(rule.counts(240, false, Some(1200)));
        assert!(!rule.counts(239, false, Some(1200)));
    }

    #[test]
    fn settings_that_mean_nothing_are_refused() {
        assert!(CountingRule::new(20, 30, 50).is_err());
        assert!(CountingRule::new(240, 30, 0).is_err());
        assert!(CountingRule::new(240, 30, 101).is_err());
        assert_eq!(CountingRule::new(240, 30, 50), Ok(CountingRule::DEFAULT));
    }
}
