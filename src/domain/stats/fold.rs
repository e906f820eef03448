//! Folding UTC quarter hours into the caller's calendar: an activity series, the hour-by-weekday
//! cells and the listening streaks. It runs here, not in SQL, so both backends agree to the play.
use jiff::{civil::Date, tz::TimeZone};

use super::{
    calendar::{LocalClock, Series, date_of_number, day_number, local_date},
    tally::{Counts, QuarterTally},
};
use crate::domain::Timestamp;

/// One bucket of an activity series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketCounts {
    /// The bucket's first day.
    pub start: Date,
    pub counts: Counts,
}

/// The counts of every bucket of `series`, zeros included, from quarter hours of its range (a
/// quarter hour outside the series' range is left out).
pub fn fold_series(series: &Series, quarters: &[QuarterTally], tz: &TimeZone) -> Vec<BucketCounts> {
    let mut buckets: Vec<BucketCounts> = series
        .starts
        .iter()
        .map(|&start| BucketCounts {
            start,
            counts: Counts::default(),
        })
        .collect();
    let starts: Vec<i64> = series.starts.iter().copied().map(day_number).collect();
    let end = series
        .starts
        .last()
        .map(|&last| day_number(series.bucket.next(last)))
        .unwrap_or(i64::MIN);
    let (since, until) = (
        series.range.since.unwrap_or(Timestamp::MIN),
        series.range.until.unwrap_or(Timestamp::MAX),
    );
    let mut clock = LocalClock::new(tz);
    for q in quarters {
        if q.start < super::pieces::quarter_floor(since) || q.start >= until {
            continue;
        }
        let day = clock.at(q.start).day;
        if day >= end {
            continue;
        }
        // The last bucket that starts on or before the day.
        let i = starts.partition_point(|&s| s <= day);
        if let Some(bucket) = i.checked_sub(1).and_then(|i| buckets.get_mut(i)) {
            bucket.counts += q.counts;
        }
    }
    buckets
}

/// Counts by local weekday (Monday first) and hour.
pub type Hourly = [[Counts; 24]; 7];

pub fn fold_hourly(quarters: &[QuarterTally], tz: &TimeZone) -> Hourly {
    let mut cells = [[Counts::default(); 24]; 7];
    let mut clock = LocalClock::new(tz);
    for q in quarters {
        let local = clock.at(q.start);
        cells[local.weekday][local.hour] += q.counts;
    }
    cells
}

/// A run of consecutive local days with at least one counted play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streak {
    pub days: u32,
    pub first: Date,
    pub last: Date,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Streaks {
    /// The run that ends today or yesterday, if any.
    pub current: Option<Streak>,
    /// The longest run (the latest of equal ones).
    pub longest: Option<Streak>,
}

/// Streaks over the listener's whole history: `quarters` must cover it.
pub fn fold_streaks(quarters: &[QuarterTally], now: Timestamp, tz: &TimeZone) -> Streaks {
    let mut clock = LocalClock::new(tz);
    let days = quarters
        .iter()
        .filter(|q| q.counts.counted > 0)
        .map(|q| clock.at(q.start).day)
        .collect();
    streaks_of(days, now, tz)
}

/// `fold_hourly` and `fold_streaks` of the same quarters (the whole history), in one walk:
/// mapping each quarter to local time is most of the cost of either.
pub fn fold_hourly_and_streaks(
    quarters: &[QuarterTally],
    now: Timestamp,
    tz: &TimeZone,
) -> (Hourly, Streaks) {
    let mut cells = [[Counts::default(); 24]; 7];
    let mut days = Vec::new();
    let mut clock = LocalClock::new(tz);
    for q in quarters {
        let local = clock.at(q.start);
        cells[local.weekday][local.hour] += q.counts;
        if q.counts.counted > 0 && days.last() != Some(&local.day) {
            days.push(local.day);
        }
    }
    (cells, streaks_of(days, now, tz))
}

/// The streaks of the local days (in any order, repeats allowed) with a counted play.
fn streaks_of(mut days: Vec<i64>, now: Timestamp, tz: &TimeZone) -> Streaks {
    // Local days can step back once where a zone's clocks go back across midnight.
    days.sort_unstable();
    days.dedup();
    let mut longest: Option<(i64, i64)> = None;
    let mut run: Option<(i64, i64)> = None;
    for day in days {
        run = match run {
            Some((first, last)) if day == last + 1 => Some((first, day)),
            _ => Some((day, day)),
        };
        if let Some((first, last)) = run
            && longest.is_none_or(|(f, l)| last - first >= l - f)
        {
            longest = Some((first, last));
        }
    }
    let today = day_number(local_date(now, tz));
    let streak = |(first, last): (i64, i64)| Streak {
        days: u32::try_from(last - first + 1).unwrap_or(u32::MAX),
        first: date_of_number(first),
        last: date_of_number(last),
    };
    Streaks {
        current: run.filter(|&(_, last)| last >= today - 1).map(streak),
        longest: longest.map(streak),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        TimeRange,
        stats::calendar::{ActivityBucket, parse_time_zone, series},
    };

    fn ts(s: &str) -> Timestamp {
        Timestamp::from_jiff(s.parse().expect("a timestamp"))
    }

    fn q(s: &str, plays: u64, counted: u64) -> QuarterTally {
        QuarterTally {
            start: ts(s),
            counts: Counts {
                plays,
                counted,
                completed: 0,
                seconds: plays * 60,
            },
        }
    }

    #[test]
    fn quarter_hours_land_on_the_local_day_and_hour_in_kathmandu() {
        let tz = parse_time_zone("Asia/Kathmandu").expect("zone");
        let range = TimeRange {
            since: Some(ts("2026-03-01T00:00:00Z")),
            until: Some(ts("2026-03-03T00:00:00Z")),
        };
        let days = series(ActivityBucket::Day, range, Timestamp::now(), None, &tz);
        let quarters = [
            q("2026-03-01T18:00:00Z", 1, 1),
            q("2026-03-01T18:15:00Z", 2, 0),
        ];
        let by_date: Vec<_> = fold_series(&days, &quarters, &tz)
            .iter()
            .map(|b| (b.start.to_string(), b.counts.plays))
            .collect();
        assert_eq!(
            by_date,
            vec![
                ("2026-03-01".into(), 1),
                ("2026-03-02".into(), 2),
                ("2026-03-03".into(), 0)
            ]
        );
        let cells = fold_hourly(&quarters, &tz);
        // March 1 2026 is a Sunday (6), March 2 a Monday (0).
        assert_eq!(cells[6][23].plays, 1);
        assert_eq!(cells[0][0].plays, 2);
    }

    #[test]
    fn streaks_count_days_with_a_counted_play() {
        let tz = parse_time_zone("").expect("utc");
        let quarters = [
            q("2026-05-01T10:00:00Z", 1, 1),
            q("2026-05-02T10:00:00Z", 1, 1),
            q("2026-05-03T10:00:00Z", 1, 1),
            q("2026-05-05T10:00:00Z", 3, 0),
            q("2026-05-09T10:00:00Z", 1, 1),
            q("2026-05-10T23:45:00Z", 1, 1),
        ];
        let streaks = fold_streaks(&quarters, ts("2026-05-11T08:00:00Z"), &tz);
        let longest = streaks.longest.expect("a longest");
        assert_eq!(
            (longest.days, longest.first.to_string()),
            (3, "2026-05-01".into())
        );
        let current = streaks.current.expect("ends yesterday");
        assert_eq!(
            (current.days, current.last.to_string()),
            (2, "2026-05-10".into())
        );
        let kathmandu = parse_time_zone("Asia/Kathmandu").expect("zone");
        for zone in [&tz, &kathmandu] {
            let now = ts("2026-05-11T08:00:00Z");
            assert_eq!(
                fold_hourly_and_streaks(&quarters, now, zone),
                (
                    fold_hourly(&quarters, zone),
                    fold_streaks(&quarters, now, zone)
                ),
                "one walk folds as the two do"
            );
        }
        let later = fold_streaks(&quarters, ts("2026-05-12T08:00:00Z"), &tz);
        assert_eq!(later.current, None, "a day without counted plays ends it");
    }
}
