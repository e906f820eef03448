//! When the key set is fetched again: the provider's `Cache-Control: max-age` within bounds,
//! the configured interval without one, sooner (with backoff) after a failure, and early (at
//! most once per [`EARLY_REFRESH_GAP`]) when a token names a key id nobody has seen yet.
use std::time::Duration;

/// Never sooner than this, whatever `max-age` says: N replicas must not poll the provider in a
/// loop because it sends `no-cache`.
pub const MIN_REFRESH: Duration = Duration::from_secs(60);
/// Never later than this, whatever `max-age` says: a removed key stops verifying within a day.
pub const MAX_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);
/// At most one early refresh per this long, however many unknown key ids arrive: forged
/// tokens must not turn this service into a flood on the identity provider. Not configurable.
pub const EARLY_REFRESH_GAP: Duration = Duration::from_secs(30);
/// First wait after a failed refresh; it doubles up to the regular interval.
const RETRY_FIRST: Duration = Duration::from_secs(5);

/// `max-age` of a `Cache-Control` value, in seconds; `no-cache` and `no-store` count as 0
/// (refresh as soon as allowed). `None` when it gives no lifetime.
pub fn max_age(cache_control: &str) -> Option<u64> {
    let mut lifetime: Option<u64> = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive, None),
        };
        let seconds =
            if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                Some(0)
            } else if name.eq_ignore_ascii_case("max-age") {
                // A lifetime too large for u64 is "very long": the upper bound applies anyway.
                value
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .map(|v| v.parse().unwrap_or(u64::MAX))
            } else {
                None
            };
        // Several lifetimes: the shortest is the safe reading.
        if let Some(s) = seconds {
            lifetime = Some(lifetime.map_or(s, |l| l.min(s)));
        }
    }
    lifetime
}

/// The wait until the next regular refresh after a good fetch.
pub fn next_refresh(max_age: Option<u64>, interval: Duration) -> Duration {
    max_age
        .map_or(interval, Duration::from_secs)
        .clamp(MIN_REFRESH, MAX_REFRESH)
}

/// The wait after `failures` failed refreshes in a row (at least 1): 5 s, 10 s, 20 s, ... up to
/// the regular interval.
pub fn retry_after(failures: u32, interval: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    RETRY_FIRST
        .saturating_mul(1 << doublings)
        .min(interval.max(RETRY_FIRST))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_among_other_directives() {
        assert_eq!(max_age("public, max-age=3600"), Some(3600));
        assert_eq!(max_age("max-age=600, must-revalidate"), Some(600));
        assert_eq!(max_age("Max-Age = \"120\""), Some(120));
        assert_eq!(max_age("s-maxage=10, max-age=90"), Some(90));
    }

    #[test]
    fn no_cache_and_no_store_mean_as_soon_as_allowed() {
        assert_eq!(max_age("no-cache"), Some(0));
        assert_eq!(max_age("private, no-store, max-age=3600"), Some(0));
    }

    #[test]
    fn a_value_without_a_lifetime_or_with_a_bad_one_gives_none() {
        assert_eq!(max_age(""), None);
        assert_eq!(max_age("public, must-revalidate"), None);
        assert_eq!(max_age("max-age=-5"), None);
        assert_eq!(max_age("max-age=soon"), None);
        assert_eq!(max_age("max-age="), None);
    }

    #[test]
    fn several_lifetimes_take_the_shortest() {
        assert_eq!(max_age("max-age=600, max-age=60"), Some(60));
    }

    #[test]
    fn a_huge_max_age_is_very_long_not_an_error() {
        assert_eq!(max_age("max-age=99999999999999999999999"), Some(u64::MAX));
        assert_eq!(
            next_refresh(Some(u64::MAX), Duration::from_secs(300)),
            MAX_REFRESH
        );
    }

    #[test]
    fn the_refresh_interval_is_max_age_clamped_between_a_minute_and_a_day() {
        let interval = Duration::from_secs(300);
        assert_eq!(next_refresh(None, interval), interval);
        assert_eq!(next_refresh(Some(0), interval), MIN_REFRESH);
        assert_eq!(next_refresh(Some(59), interval), MIN_REFRESH);
        assert_eq!(next_refresh(Some(900), interval), Duration::from_secs(900));
        assert_eq!(next_refresh(Some(7 * 86_400), interval), MAX_REFRESH);
    }

    #[test]
    fn failed_refreshes_back_off_up_to_the_regular_interval() {
        let interval = Duration::from_secs(300);
        let waits: Vec<u64> = (1..=8)
            .map(|n| retry_after(n, interval).as_secs())
            .collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(retry_after(u32::MAX, interval), interval);
    }
}
