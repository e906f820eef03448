//! How a span of time is answered: whole UTC months and days from their snapshots (built once a
//! period is over, kept exact by the writes that touch it), and the rest (the partial days at the
//! ends, today, a day that ended only minutes ago) from the plays themselves.
use jiff::{Span, civil::Date, tz::TimeZone};

use crate::domain::Timestamp;

pub const QUARTER_HOUR_MICROS: i64 = 900_000_000;
pub const DAY_MICROS: i64 = 86_400_000_000;
/// A period's snapshot is built only once it has been over this long. A write that started
/// before the period ended and commits within this margin is therefore always seen by the
/// snapshot; writes into a period that is already over mark its snapshot stale (every write of
/// plays bumps its generation). Write transactions, group commit's wait included, are far
/// shorter than this.
pub const SETTLE_MICROS: i64 = 15 * 60 * 1_000_000;

/// A UTC day or a UTC month of one listener's plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    Day(Timestamp),
    Month(Timestamp),
}

fn utc_date(t: Timestamp) -> Date {
    t.to_jiff().to_zoned_datetime(TimeZone::UTC).date()
}

fn utc_start(d: Date) -> Timestamp {
    d.to_zoned_datetime(TimeZone::UTC)
        .map(|z| Timestamp::from_jiff(z.timestamp()))
        .unwrap_or(Timestamp::MAX)
}

fn floor_to(t: Timestamp, unit: i64) -> Timestamp {
    Timestamp::from_micros(t.as_micros().div_euclid(unit) * unit).unwrap_or(t)
}

/// The start of the UTC day holding `t`.
pub fn day_floor(t: Timestamp) -> Timestamp {
    floor_to(t, DAY_MICROS)
}

/// The first UTC day boundary at or after `t`.
pub fn day_ceil(t: Timestamp) -> Timestamp {
    let floor = day_floor(t);
    if floor == t {
        t
    } else {
        floor.saturating_add_seconds(86_400)
    }
}

pub fn quarter_floor(t: Timestamp) -> Timestamp {
    floor_to(t, QUARTER_HOUR_MICROS)
}

fn month_start(t: Timestamp) -> Timestamp {
    let d = utc_date(t);
    utc_start(d.first_of_month())
}

fn next_month(start: Timestamp) -> Timestamp {
    utc_date(start)
        .checked_add(Span::new().months(1))
        .map(utc_start)
        .unwrap_or(Timestamp::MAX)
}

impl Period {
    pub fn start(self) -> Timestamp {
        match self {
            Self::Day(start) | Self::Month(start) => start,
        }
    }

    pub fn end(self) -> Timestamp {
        match self {
            Self::Day(start) => start.saturating_add_seconds(86_400),
            Self::Month(start) => next_month(start),
        }
    }

    /// The day and the month that hold `t`.
    pub fn holding(t: Timestamp) -> [Period; 2] {
        [Self::Day(day_floor(t)), Self::Month(month_start(t))]
    }

    /// The days of a month (a day is its own only day).
    pub fn days(self) -> Vec<Period> {
        let mut days = Vec::new();
        let mut day = self.start();
        while day < self.end() {
            days.push(Self::Day(day));
            day = day.saturating_add_seconds(86_400);
        }
        days
    }
}

/// Where the figures of a part of a span come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// A whole UTC day or month that is over: its snapshot.
    Period(Period),
    /// The plays in `[since, until)` (`until` unset: to the end of time).
    Plays {
        since: Timestamp,
        until: Option<Timestamp>,
    },
}

/// Cuts `[since, until)` into snapshots of whole UTC months and days that have been over for
/// `SETTLE_MICROS` at `now`, and at most two spans of plays: the partial day at the start and
/// everything after the last settled day boundary (or the partial day at the end).
pub fn decompose(since: Timestamp, until: Option<Timestamp>, now: Timestamp) -> Vec<Piece> {
    let settled = day_floor(Timestamp::from_micros(now.as_micros() - SETTLE_MICROS).unwrap_or(now));
    let first_whole = day_ceil(since);
    let last_whole = match until {
        Some(u) => day_floor(u).min(settled),
        None => settled,
    };
    if first_whole >= last_whole {
        return vec![Piece::Plays { since, until }];
    }
    let mut pieces = Vec::new();
    if since < first_whole {
        pieces.push(Piece::Plays {
            since,
            until: Some(first_whole),
        });
    }
    let mut at = first_whole;
    while at < last_whole {
        let month = month_start(at);
        let month_end = next_month(month);
        if month == at && month_end <= last_whole {
            pieces.push(Piece::Period(Period::Month(month)));
            at = month_end;
        } else {
            pieces.push(Piece::Period(Period::Day(at)));
            at = at.saturating_add_seconds(86_400);
        }
    }
    if until.is_none_or(|u| u > last_whole) {
        pieces.push(Piece::Plays {
            since: last_whole,
            until,
        });
    }
    pieces
}

/// A span of plays cut along UTC quarter hours: the whole quarter hours inside it, which the
/// quarter-hour aggregates answer, and at most two partial quarter hours at its ends, which need
/// the plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarterSplit {
    pub whole: Option<(Timestamp, Option<Timestamp>)>,
    pub head: Option<(Timestamp, Timestamp)>,
    pub tail: Option<(Timestamp, Timestamp)>,
}

pub fn split_quarters(since: Timestamp, until: Option<Timestamp>) -> QuarterSplit {
    let first_whole = {
        let floor = quarter_floor(since);
        if floor == since {
            since
        } else {
            Timestamp::from_micros(floor.as_micros() + QUARTER_HOUR_MICROS).unwrap_or(since)
        }
    };
    let Some(until) = until else {
        return QuarterSplit {
            whole: Some((first_whole, None)),
            head: (since < first_whole).then_some((since, first_whole)),
            tail: None,
        };
    };
    if since >= until {
        return QuarterSplit {
            whole: None,
            head: None,
            tail: None,
        };
    }
    let last_whole = quarter_floor(until);
    if first_whole >= last_whole {
        // No whole quarter hour inside: at most the two pieces around one boundary.
        let mid = first_whole.min(until);
        return QuarterSplit {
            whole: None,
            head: (since < mid).then_some((since, mid)),
            tail: (mid < until).then_some((mid, until)),
        };
    }
    QuarterSplit {
        whole: Some((first_whole, Some(last_whole))),
        head: (since < first_whole).then_some((since, first_whole)),
        tail: (last_whole < until).then_some((last_whole, until)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::from_jiff(s.parse().expect("a timestamp"))
    }

    /// Every instant of `[since, until)` is in exactly one piece.
    fn covers(since: &str, until: Option<&str>, now: &str) -> Vec<Piece> {
        let (since, until, now) = (ts(since), until.map(ts), ts(now));
        let pieces = decompose(since, until, now);
        let mut at = since;
        for piece in &pieces {
            let (a, b) = match *piece {
                Piece::Period(p) => {
                    assert!(p.end().as_micros() + SETTLE_MICROS <= now.as_micros());
                    (p.start(), Some(p.end()))
                }
                Piece::Plays { since, until } => (since, until),
            };
            assert_eq!(a, at, "{pieces:?}");
            match b {
                Some(b) => at = b,
                None => {
                    assert_eq!(until, None);
                    return pieces;
                }
            }
        }
        assert_eq!(Some(at), until, "{pieces:?}");
        pieces
    }

    #[test]
    fn a_year_is_whole_months_days_and_the_plays_at_its_ends() {
        let pieces = covers("2025-12-02T13:07:00Z", None, "2026-12-02T13:07:00Z");
        let months = pieces
            .iter()
            .filter(|p| matches!(p, Piece::Period(Period::Month(_))))
            .count();
        let days = pieces
            .iter()
            .filter(|p| matches!(p, Piece::Period(Period::Day(_))))
            .count();
        // December 3-31 2025 as days, January-November as months, December 1 2026 as a day.
        assert_eq!((months, days), (11, 30));
        assert_eq!(
            pieces.last(),
            Some(&Piece::Plays {
                since: ts("2026-12-02T00:00:00Z"),
                until: None
            })
        );
    }

    #[test]
    fn a_day_that_ended_minutes_ago_is_still_read_from_its_plays() {
        let pieces = covers("2026-11-30T00:00:00Z", None, "2026-12-02T00:10:00Z");
        assert_eq!(
            pieces,
            vec![
                Piece::Period(Period::Day(ts("2026-11-30T00:00:00Z"))),
                Piece::Plays {
                    since: ts("2026-12-01T00:00:00Z"),
                    until: None
                }
            ]
        );
    }

    #[test]
    fn ranges_inside_one_day_and_bounded_ranges_are_covered() {
        covers(
            "2026-03-04T01:00:00Z",
            Some("2026-03-04T02:00:00Z"),
            "2026-06-01T00:00:00Z",
        );
        covers(
            "2026-01-31T23:00:00Z",
            Some("2026-03-01T00:00:01Z"),
            "2026-06-01T00:00:00Z",
        );
        covers(
            "2026-02-01T00:00:00Z",
            Some("2026-03-01T00:00:00Z"),
            "2026-06-01T00:00:00Z",
        );
        covers(
            "2024-02-29T12:00:00Z",
            Some("2026-05-31T23:59:59Z"),
            "2026-06-01T00:00:00Z",
        );
        covers("2026-05-31T12:00:00Z", None, "2026-06-01T00:20:00Z");
    }

    #[test]
    fn spans_split_into_whole_quarter_hours_and_partial_ends() {
        let t = |s: &str| ts(&format!("2023-11-14T{s}Z"));
        let split = split_quarters(t("22:03:07"), Some(t("23:47:00")));
        assert_eq!(split.head, Some((t("22:03:07"), t("22:15:00"))));
        assert_eq!(split.whole, Some((t("22:15:00"), Some(t("23:45:00")))));
        assert_eq!(split.tail, Some((t("23:45:00"), t("23:47:00"))));
        let inside = split_quarters(t("22:03:00"), Some(t("22:07:00")));
        assert_eq!(inside.whole, None);
        assert_eq!(inside.head, Some((t("22:03:00"), t("22:07:00"))));
        let open = split_quarters(t("22:00:00"), None);
        assert_eq!(open.whole, Some((t("22:00:00"), None)));
        assert_eq!((open.head, open.tail), (None, None));
    }
}
