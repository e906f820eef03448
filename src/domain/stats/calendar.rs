//! The caller's calendar: local days, ISO weeks, months and years in an IANA zone, the windows
//! an activity series covers, and the periods of a top-tracks ranking. Every zone in use since
//! 2000 has offsets that are whole quarter hours and changes them on quarter-hour boundaries (a
//! test checks the bundled database), so a UTC quarter hour never straddles two local hours: the
//! statistics fold UTC quarter hours into local time exactly, the same on every backend.
use jiff::{Span, Unit, civil::Date, tz::TimeZone};

use super::pieces::quarter_floor;
use crate::domain::{TimeRange, Timestamp, play::EARLIEST_PLAY_SECONDS};

/// The length of the buckets of an activity series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActivityBucket {
    #[default]
    Day,
    /// ISO weeks, from Monday 00:00 local.
    Week,
    Month,
    Year,
}

/// Most buckets one series holds.
pub const MAX_BUCKETS: usize = 366;

/// Calendar periods of a top-tracks ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarPeriod {
    Week,
    Month,
    Year,
}

pub fn parse_time_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name).map_err(|_| format!("unknown IANA time zone {name:?}"))
}

/// The name to echo back for a zone.
pub fn zone_name(tz: &TimeZone) -> String {
    tz.iana_name().unwrap_or("UTC").to_string()
}

pub fn local_date(t: Timestamp, tz: &TimeZone) -> Date {
    t.to_jiff().to_zoned_datetime(tz.clone()).date()
}

/// The first instant of a local day. A day can start at 01:00 where midnight falls in a DST gap;
/// jiff's compatible disambiguation moves forward across the gap, which is the day's first
/// instant.
pub fn start_of(day: Date, tz: &TimeZone) -> Timestamp {
    match day.to_zoned_datetime(tz.clone()) {
        Ok(z) => Timestamp::from_jiff(z.timestamp()),
        Err(_) => Timestamp::MAX,
    }
}

pub fn add_days(day: Date, days: i64) -> Date {
    day.checked_add(Span::new().days(days)).unwrap_or(day)
}

/// Days since 1970-01-01 of a civil date.
pub fn day_number(day: Date) -> i64 {
    match day.since((Unit::Day, Date::constant(1970, 1, 1))) {
        Ok(span) => i64::from(span.get_days()),
        Err(_) => 0,
    }
}

pub fn date_of_number(n: i64) -> Date {
    add_days(Date::constant(1970, 1, 1), n)
}

impl ActivityBucket {
    /// The first day of the bucket holding `day`.
    pub fn start(self, day: Date) -> Date {
        match self {
            Self::Day => day,
            Self::Week => add_days(day, -i64::from(day.weekday().to_monday_zero_offset())),
            Self::Month => day.first_of_month(),
            Self::Year => day.first_of_year(),
        }
    }

    /// The first day of the bucket after the one starting on `start`.
    pub fn next(self, start: Date) -> Date {
        let step = match self {
            Self::Day => Span::new().days(1),
            Self::Week => Span::new().weeks(1),
            Self::Month => Span::new().months(1),
            Self::Year => Span::new().years(1),
        };
        start.checked_add(step).unwrap_or(start)
    }

    fn step_back(self, start: Date, buckets: i64) -> Date {
        let span = match self {
            Self::Day => Span::new().days(-buckets),
            Self::Week => Span::new().weeks(-buckets),
            Self::Month => Span::new().months(-buckets),
            Self::Year => Span::new().years(-buckets),
        };
        start.checked_add(span).unwrap_or(start)
    }

    /// Buckets when the range has no start: the last 30 days, 26 weeks, 24 months, or every year
    /// of the history (`None`).
    fn default_count(self) -> Option<i64> {
        match self {
            Self::Day => Some(30),
            Self::Week => Some(26),
            Self::Month => Some(24),
            Self::Year => None,
        }
    }
}

/// The buckets of an activity series, oldest first, and the instants they cover within the
/// requested range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub bucket: ActivityBucket,
    /// The first day of each bucket.
    pub starts: Vec<Date>,
    pub range: TimeRange,
}

/// The series of `bucket`s over `range` (until unset: now): from the bucket of `since` (or the
/// default count back, or the year of the first play) to the bucket of the range's last instant,
/// at most `MAX_BUCKETS`, the latest kept.
pub fn series(
    bucket: ActivityBucket,
    range: TimeRange,
    now: Timestamp,
    first_play: Option<Timestamp>,
    tz: &TimeZone,
) -> Series {
    let end = range.until.unwrap_or(now);
    let last_instant = Timestamp::from_micros(end.as_micros() - 1).unwrap_or(end);
    let last = bucket.start(local_date(last_instant, tz));
    let earliest = bucket.step_back(last, MAX_BUCKETS as i64 - 1);
    let first = match (range.since, bucket.default_count()) {
        (Some(since), _) => bucket.start(local_date(since, tz)),
        (None, Some(count)) => bucket.step_back(last, count - 1),
        (None, None) => bucket.start(local_date(first_play.unwrap_or(last_instant), tz)),
    }
    .max(earliest)
    .min(last);
    let mut starts = Vec::new();
    let mut day = first;
    while day <= last && starts.len() < MAX_BUCKETS {
        starts.push(day);
        day = bucket.next(day);
    }
    let window_since = start_of(first, tz);
    let window_until = start_of(bucket.next(last), tz);
    Series {
        bucket,
        starts,
        range: TimeRange {
            since: Some(range.since.map_or(window_since, |s| s.max(window_since))),
            until: Some(range.until.map_or(window_until, |u| u.min(window_until))),
        },
    }
}

/// The local days of the last `days` days, today included.
pub fn last_days(days: u32, now: Timestamp, tz: &TimeZone) -> Series {
    let today = local_date(now, tz);
    let first = add_days(today, -(i64::from(days.max(1)) - 1));
    series(
        ActivityBucket::Day,
        TimeRange {
            since: Some(start_of(first, tz)),
            until: Some(start_of(add_days(today, 1), tz)),
        },
        now,
        None,
        tz,
    )
}

/// The calendar week, month or year `periods_ago` before the current one in `tz`, and the one
/// before it (to rank against).
pub fn calendar_period(
    kind: CalendarPeriod,
    periods_ago: u32,
    now: Timestamp,
    tz: &TimeZone,
) -> (TimeRange, TimeRange) {
    let bucket = match kind {
        CalendarPeriod::Week => ActivityBucket::Week,
        CalendarPeriod::Month => ActivityBucket::Month,
        CalendarPeriod::Year => ActivityBucket::Year,
    };
    let current = bucket.start(local_date(now, tz));
    let start = bucket.step_back(current, i64::from(periods_ago));
    let previous = bucket.step_back(start, 1);
    let end = bucket.next(start);
    (
        TimeRange {
            since: Some(start_of(start, tz)),
            until: Some(start_of(end, tz)),
        },
        TimeRange {
            since: Some(start_of(previous, tz)),
            until: Some(start_of(start, tz)),
        },
    )
}

/// The instants in `[since, until)` at which `tz` changes its offset off a UTC quarter hour. A
/// few zones did, at 00:01 local, until 2011 (America/St_Johns, Goose_Bay, Moncton) and after
/// (Antarctica/Casey, Asia/Gaza); a quarter-hour tally holding one must be split there.
pub fn off_quarter_changes(tz: &TimeZone, since: Timestamp, until: Timestamp) -> Vec<Timestamp> {
    tz.following(since.to_jiff())
        .map(|transition| Timestamp::from_jiff(transition.timestamp()))
        .take_while(|&t| t < until)
        .filter(|&t| quarter_floor(t) != t)
        .collect()
}

/// The off-quarter changes of `tz` over every time a play may have (from the earliest allowed
/// play to a day past `now`).
pub fn history_cuts(tz: &TimeZone, now: Timestamp) -> Vec<Timestamp> {
    let earliest = Timestamp::from_micros(EARLIEST_PLAY_SECONDS * 1_000_000).unwrap_or(now);
    off_quarter_changes(tz, earliest, now.saturating_add_seconds(86_400))
}

/// Maps the starts of UTC quarter hours, in ascending order, to local time in one zone, stepping
/// through the zone's transitions instead of looking each instant up.
pub struct LocalClock<'z> {
    tz: &'z TimeZone,
    offset_seconds: i64,
    next_change: Option<Timestamp>,
}

/// Where a UTC instant falls in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalInstant {
    /// Days since 1970-01-01, local.
    pub day: i64,
    /// 0 (Monday) to 6 (Sunday).
    pub weekday: usize,
    /// 0 to 23.
    pub hour: usize,
}

impl<'z> LocalClock<'z> {
    pub fn new(tz: &'z TimeZone) -> Self {
        Self {
            tz,
            offset_seconds: 0,
            next_change: Some(Timestamp::MIN),
        }
    }

    /// `t` must not be earlier than the previous instant asked about.
    pub fn at(&mut self, t: Timestamp) -> LocalInstant {
        if self.next_change.is_some_and(|change| t >= change) {
            let jt = t.to_jiff();
            self.offset_seconds = i64::from(self.tz.to_offset(jt).seconds());
            self.next_change = self
                .tz
                .following(jt)
                .next()
                .map(|transition| Timestamp::from_jiff(transition.timestamp()));
        }
        let local = t.seconds() + self.offset_seconds;
        let day = local.div_euclid(86_400);
        LocalInstant {
            day,
            // 1970-01-01 was a Thursday: day 0 is weekday 3 counted from Monday.
            weekday: (day + 3).rem_euclid(7) as usize,
            hour: (local.rem_euclid(86_400) / 3600) as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::from_jiff(s.parse().expect("a timestamp"))
    }

    /// Quarter-hour tallies fold into local hours exactly only where offsets are whole quarter
    /// hours, which they are in every zone since 2000 (no play is older); changes off the
    /// quarter hour are the cuts.
    #[test]
    fn every_zone_keeps_whole_quarter_hour_offsets_since_2000() {
        let since = ts("2000-01-01T00:00:00Z");
        let until = ts("2040-01-01T00:00:00Z");
        let mut zones = 0;
        let mut changes_off_the_quarter = Vec::new();
        for name in jiff::tz::db().available() {
            let Ok(tz) = TimeZone::get(name.as_str()) else {
                continue;
            };
            zones += 1;
            assert_eq!(tz.to_offset(since.to_jiff()).seconds() % 900, 0, "{name}");
            for transition in tz.following(since.to_jiff()) {
                if transition.timestamp() > until.to_jiff() {
                    break;
                }
                assert_eq!(transition.offset().seconds() % 900, 0, "{name}");
            }
            if !off_quarter_changes(&tz, since, until).is_empty() {
                changes_off_the_quarter.push(name.as_str().to_string());
            }
        }
        assert!(zones > 300, "the bundled database has the zones ({zones})");
        assert!(
            changes_off_the_quarter
                .iter()
                .any(|z| z == "America/St_Johns"),
            "{changes_off_the_quarter:?}"
        );
    }

    #[test]
    fn changes_off_the_quarter_hour_are_found_and_others_are_not() {
        let st_johns = parse_time_zone("America/St_Johns").expect("zone");
        let cuts = off_quarter_changes(
            &st_johns,
            ts("2010-01-01T00:00:00Z"),
            ts("2012-01-01T00:00:00Z"),
        );
        // 00:01 local: NST (-03:30) to NDT in March 2010, back in November, and March 2011;
        // from November 2011 St. John's changes at 02:00 local.
        assert_eq!(
            cuts,
            [
                ts("2010-03-14T03:31:00Z"),
                ts("2010-11-07T02:31:00Z"),
                ts("2011-03-13T03:31:00Z"),
            ]
        );
        let kathmandu = parse_time_zone("Asia/Kathmandu").expect("zone");
        let new_york = parse_time_zone("America/New_York").expect("zone");
        for tz in [kathmandu, new_york] {
            let all =
                off_quarter_changes(&tz, ts("2000-01-01T00:00:00Z"), ts("2040-01-01T00:00:00Z"));
            assert!(all.is_empty(), "{all:?}");
        }
    }

    #[test]
    fn the_clock_follows_daylight_saving_and_odd_offsets() {
        let ny = parse_time_zone("America/New_York").expect("zone");
        let mut clock = LocalClock::new(&ny);
        // 2026-03-08 06:45Z is 01:45 EST; 07:00Z is 03:00 EDT (the gap).
        let before = clock.at(ts("2026-03-08T06:45:00Z"));
        let after = clock.at(ts("2026-03-08T07:00:00Z"));
        assert_eq!((before.hour, after.hour), (1, 3));
        assert_eq!(before.weekday, 6, "a Sunday");
        let ktm = parse_time_zone("Asia/Kathmandu").expect("zone");
        let mut clock = LocalClock::new(&ktm);
        // 18:00Z is 23:45 on the 1st; 18:15Z is 00:00 on the 2nd (+05:45).
        let a = clock.at(ts("2026-03-01T18:00:00Z"));
        let b = clock.at(ts("2026-03-01T18:15:00Z"));
        assert_eq!((a.hour, b.hour), (23, 0));
        assert_eq!(b.day - a.day, 1);
        assert_eq!(date_of_number(b.day), Date::constant(2026, 3, 2));
    }

    #[test]
    fn default_windows_and_calendar_periods() {
        let tz = parse_time_zone("").expect("utc");
        let now = ts("2026-06-30T12:00:00Z");
        let days = series(ActivityBucket::Day, TimeRange::default(), now, None, &tz);
        assert_eq!(days.starts.len(), 30);
        assert_eq!(days.starts[0], Date::constant(2026, 6, 1));
        let weeks = series(ActivityBucket::Week, TimeRange::default(), now, None, &tz);
        assert_eq!(weeks.starts.len(), 26);
        assert_eq!(weeks.starts[25], Date::constant(2026, 6, 29), "a Monday");
        let months = series(ActivityBucket::Month, TimeRange::default(), now, None, &tz);
        assert_eq!(months.starts.len(), 24);
        let years = series(
            ActivityBucket::Year,
            TimeRange::default(),
            now,
            Some(ts("2019-05-01T00:00:00Z")),
            &tz,
        );
        assert_eq!(years.starts.len(), 8);
        let long = series(
            ActivityBucket::Day,
            TimeRange {
                since: Some(ts("2020-01-01T00:00:00Z")),
                until: Some(ts("2026-01-01T00:00:00Z")),
            },
            now,
            None,
            &tz,
        );
        assert_eq!(long.starts.len(), MAX_BUCKETS);
        assert_eq!(long.starts[0], Date::constant(2024, 12, 31));

        let (week, before) = calendar_period(CalendarPeriod::Week, 0, now, &tz);
        assert_eq!(week.since, Some(ts("2026-06-29T00:00:00Z")));
        assert_eq!(before.until, week.since);
        let ktm = parse_time_zone("Asia/Kathmandu").expect("zone");
        let (year, last_year) = calendar_period(CalendarPeriod::Year, 1, now, &ktm);
        assert_eq!(year.since, Some(ts("2024-12-31T18:15:00Z")));
        assert_eq!(last_year.until, year.since);
    }
}
