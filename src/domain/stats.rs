//! Library statistics. The store reports plays per UTC quarter hour; this module folds them into
//! calendar days of the caller's time zone. Every zone in use today has an offset that is a whole
//! number of quarter hours and changes it on a quarter-hour boundary, so a quarter hour never
//! straddles two local days: the fold is exact for Asia/Kolkata (+05:30), Asia/Kathmandu (+05:45)
//! and across daylight-saving changes, and it is the same on every backend because it runs here.
use jiff::{Span, civil::Date, tz::TimeZone};

use super::{Timestamp, TrackId};

/// A half-open time range `[since, until)`; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackCount {
    pub track_id: TrackId,
    pub plays: u64,
    pub seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCount {
    pub source: String,
    pub plays: u64,
}

/// Plays started in the quarter hour beginning at `start` (UTC, a multiple of 900 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarterHour {
    pub start: Timestamp,
    pub plays: u64,
    pub seconds: u64,
}

/// What the store computes for GetLibraryStats.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlayStats {
    pub total_plays: u64,
    pub completed_plays: u64,
    pub listening_seconds: u64,
    pub unique_tracks: u64,
    pub first_played_at: Option<Timestamp>,
    pub last_played_at: Option<Timestamp>,
    /// Most plays first, then most seconds, then track id.
    pub top_tracks: Vec<TrackCount>,
    /// Most plays first, then source (byte order).
    pub sources: Vec<SourceCount>,
    /// Ordered by start; only the quarter hours of the daily window, only those with plays.
    pub quarter_hours: Vec<QuarterHour>,
    pub liked_tracks: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayActivity {
    pub date: Date,
    pub plays: u64,
    pub seconds: u64,
}

pub const DEFAULT_DAILY_DAYS: i64 = 30;
pub const MAX_DAILY_DAYS: i64 = 366;

/// The local days the daily activity covers, and the instants that bound them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyWindow {
    pub first_day: Date,
    pub last_day: Date,
    /// The instants of those days, intersected with the requested range.
    pub range: TimeRange,
}

pub fn parse_time_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name).map_err(|_| format!("unknown IANA time zone {name:?}"))
}

fn day_of(t: Timestamp, tz: &TimeZone) -> Date {
    t.to_jiff().to_zoned_datetime(tz.clone()).date()
}

/// Start of a local day. A day can start at 01:00 where midnight falls in a DST gap; jiff's
/// compatible disambiguation moves forward across the gap, which is the day's first instant.
fn start_of(day: Date, tz: &TimeZone) -> Timestamp {
    match day.to_zoned_datetime(tz.clone()) {
        Ok(z) => Timestamp::from_jiff(z.timestamp()),
        Err(_) => Timestamp::MAX,
    }
}

fn add_days(day: Date, days: i64) -> Date {
    day.checked_add(Span::new().days(days)).unwrap_or(day)
}

/// The daily window: from `since`'s day (or 30 days back) to the day of the range's last instant
/// (`until` is exclusive; unset means now), at most the last 366 days.
pub fn daily_window(range: TimeRange, now: Timestamp, tz: &TimeZone) -> DailyWindow {
    let end = range.until.unwrap_or(now);
    let last_instant = Timestamp::from_micros(end.as_micros() - 1).unwrap_or(end);
    let last_day = day_of(last_instant, tz);
    let earliest = add_days(last_day, -(MAX_DAILY_DAYS - 1));
    let first_day = match range.since {
        Some(since) => day_of(since, tz).max(earliest),
        None => add_days(last_day, -(DEFAULT_DAILY_DAYS - 1)),
    }
    .min(last_day);
    let window_since = start_of(first_day, tz);
    let window_until = start_of(add_days(last_day, 1), tz);
    DailyWindow {
        first_day,
        last_day,
        range: TimeRange {
            since: Some(range.since.map_or(window_since, |s| s.max(window_since))),
            until: Some(range.until.map_or(window_until, |u| u.min(window_until))),
        },
    }
}

/// The `days` local days ending today (`now`'s day in `tz`).
pub fn last_days_window(days: u32, now: Timestamp, tz: &TimeZone) -> DailyWindow {
    let last_day = day_of(now, tz);
    let first_day = add_days(last_day, -(i64::from(days.max(1)) - 1));
    DailyWindow {
        first_day,
        last_day,
        range: TimeRange {
            since: Some(start_of(first_day, tz)),
            until: Some(start_of(add_days(last_day, 1), tz)),
        },
    }
}

/// One entry per day of the window, zeros included, oldest first.
pub fn daily_activity(
    window: &DailyWindow,
    quarter_hours: &[QuarterHour],
    tz: &TimeZone,
) -> Vec<DayActivity> {
    let mut days = Vec::new();
    let mut day = window.first_day;
    while day <= window.last_day {
        days.push(DayActivity {
            date: day,
            plays: 0,
            seconds: 0,
        });
        day = add_days(day, 1);
    }
    for q in quarter_hours {
        let date = day_of(q.start, tz);
        if let Ok(i) = days.binary_search_by(|d| d.date.cmp(&date)) {
            days[i].plays += q.plays;
            days[i].seconds += q.seconds;
        }
    }
    days
}

pub const QUARTER_HOUR_MICROS: i64 = 900_000_000;

/// A bounded range cut along UTC quarter hours: the whole quarter hours inside it, which the
/// aggregates answer, and at most two partial quarter hours at its ends, which need the plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarterSplit {
    pub whole: Option<(Timestamp, Timestamp)>,
    pub head: Option<(Timestamp, Timestamp)>,
    pub tail: Option<(Timestamp, Timestamp)>,
}

pub fn split_quarters(since: Timestamp, until: Timestamp) -> QuarterSplit {
    let (s, u) = (since.as_micros(), until.as_micros());
    let up = s.div_euclid(QUARTER_HOUR_MICROS) * QUARTER_HOUR_MICROS;
    let first_whole = if up == s { s } else { up + QUARTER_HOUR_MICROS };
    let last_whole = u.div_euclid(QUARTER_HOUR_MICROS) * QUARTER_HOUR_MICROS;
    let ts = |m: i64| Timestamp::from_micros(m).unwrap_or(since);
    let part = |a: i64, b: i64| (a < b).then(|| (ts(a), ts(b)));
    if s >= u {
        return QuarterSplit {
            whole: None,
            head: None,
            tail: None,
        };
    }
    if first_whole >= last_whole {
        // No whole quarter hour inside: at most the two pieces around one boundary.
        let mid = first_whole.min(u);
        return QuarterSplit {
            whole: None,
            head: part(s, mid),
            tail: part(mid, u),
        };
    }
    QuarterSplit {
        whole: part(first_whole, last_whole),
        head: part(s, first_whole),
        tail: part(last_whole, u),
    }
}

pub const DEFAULT_TOP_TRACKS: u32 = 10;
pub const MAX_TOP_TRACKS: u32 = 100;

/// The number of top tracks a GetLibraryStats asks for: 0 means the default; above the maximum
/// is refused (the client would otherwise silently get fewer than it asked).
pub fn top_tracks_limit(requested: u32) -> Result<u32, String> {
    match requested {
        0 => Ok(DEFAULT_TOP_TRACKS),
        n if n <= MAX_TOP_TRACKS => Ok(n),
        _ => Err(format!("must be at most {MAX_TOP_TRACKS}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::from_jiff(s.parse().unwrap())
    }

    fn q(s: &str, plays: u64) -> QuarterHour {
        QuarterHour {
            start: ts(s),
            plays,
            seconds: plays * 60,
        }
    }

    #[test]
    fn quarter_hours_land_on_the_local_day_in_kathmandu() {
        let tz = parse_time_zone("Asia/Kathmandu").unwrap();
        // 18:15Z is 00:00 the next day in Kathmandu (+05:45); 18:00Z is 23:45 the same day.
        let range = TimeRange {
            since: Some(ts("2026-03-01T00:00:00Z")),
            until: Some(ts("2026-03-03T00:00:00Z")),
        };
        let window = daily_window(range, Timestamp::now(), &tz);
        let days = daily_activity(
            &window,
            &[q("2026-03-01T18:00:00Z", 1), q("2026-03-01T18:15:00Z", 2)],
            &tz,
        );
        let by_date: Vec<_> = days.iter().map(|d| (d.date.to_string(), d.plays)).collect();
        assert_eq!(
            by_date,
            vec![
                ("2026-03-01".into(), 1),
                ("2026-03-02".into(), 2),
                ("2026-03-03".into(), 0)
            ]
        );
    }

    #[test]
    fn the_default_window_is_the_last_thirty_days() {
        let tz = parse_time_zone("").unwrap();
        let window = daily_window(TimeRange::default(), ts("2026-06-30T12:00:00Z"), &tz);
        assert_eq!(window.first_day.to_string(), "2026-06-01");
        assert_eq!(window.last_day.to_string(), "2026-06-30");
        assert_eq!(window.range.since, Some(ts("2026-06-01T00:00:00Z")));
    }

    #[test]
    fn a_long_range_keeps_its_last_366_days() {
        let tz = TimeZone::UTC;
        let range = TimeRange {
            since: Some(ts("2020-01-01T00:00:00Z")),
            until: Some(ts("2026-01-01T00:00:00Z")),
        };
        let window = daily_window(range, Timestamp::now(), &tz);
        assert_eq!(window.last_day.to_string(), "2025-12-31");
        // 2025 has 365 days: the 366th back is the last day of 2024.
        assert_eq!(window.first_day.to_string(), "2024-12-31");
        assert_eq!(daily_activity(&window, &[], &tz).len(), 366);
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert!(parse_time_zone("Mars/Olympus_Mons").is_err());
        assert!(parse_time_zone("Asia/Kolkata").is_ok());
    }
}

#[cfg(test)]
mod quarter_tests {
    use super::*;

    /// 2023-11-14 22:00:00 UTC, on a quarter hour.
    const ALIGNED_MICROS: i64 = 1_699_999_200_000_000;

    fn t(minutes: i64, seconds: i64) -> Timestamp {
        Timestamp::from_micros(ALIGNED_MICROS + (minutes * 60 + seconds) * 1_000_000).unwrap()
    }

    /// Every instant of the range is in exactly one piece, `whole` is made of whole quarter
    /// hours, and the ends are shorter than one.
    fn covers_exactly(since: Timestamp, until: Timestamp) {
        let split = split_quarters(since, until);
        let pieces: Vec<_> = [split.head, split.whole, split.tail]
            .into_iter()
            .flatten()
            .collect();
        let mut at = since;
        for (a, b) in &pieces {
            assert_eq!(*a, at, "{since:?}..{until:?}: {split:?}");
            assert!(a < b);
            at = *b;
        }
        assert_eq!(at, until, "{since:?}..{until:?}: {split:?}");
        if let Some((a, b)) = split.whole {
            assert_eq!(a.as_micros() % QUARTER_HOUR_MICROS, 0);
            assert_eq!(b.as_micros() % QUARTER_HOUR_MICROS, 0);
        }
        for (a, b) in [split.head, split.tail].into_iter().flatten() {
            assert!(b.as_micros() - a.as_micros() < QUARTER_HOUR_MICROS);
        }
    }

    #[test]
    fn ranges_split_into_whole_quarter_hours_and_partial_ends() {
        for (a, b) in [
            (0, 1),
            (0, 15),
            (3, 14),
            (3, 16),
            (3, 47),
            (0, 600),
            (14, 15),
            (15, 30),
        ] {
            covers_exactly(t(a, 7), t(b, 0));
            covers_exactly(t(a, 0), t(b, 3));
            covers_exactly(t(a, 0), t(b, 0));
        }
        let whole = split_quarters(t(0, 0), t(30, 0));
        assert_eq!(whole.whole, Some((t(0, 0), t(30, 0))));
        assert_eq!((whole.head, whole.tail), (None, None));
        let inside_one = split_quarters(t(3, 0), t(7, 0));
        assert_eq!(inside_one.whole, None);
        let empty = QuarterSplit {
            whole: None,
            head: None,
            tail: None,
        };
        assert_eq!(split_quarters(t(5, 0), t(5, 0)), empty);
    }
}
