//! Library statistics. The store hands over counts (per track, per source, per UTC quarter hour)
//! of the pieces a span is cut into (`pieces`); this module adds them up (`tally`), and folds
//! quarter hours into the caller's calendar (`calendar`, `fold`).
mod calendar;
mod fold;
mod pieces;
mod tally;

pub use calendar::{
    ActivityBucket, CalendarPeriod, MAX_BUCKETS, Series, calendar_period, history_cuts, last_days,
    local_date, off_quarter_changes, parse_time_zone, series, zone_name,
};
pub use fold::{
    BucketCounts, Hourly, Streak, Streaks, fold_hourly, fold_hourly_and_streaks, fold_series,
    fold_streaks,
};
pub use pieces::{
    DAY_MICROS, Period, Piece, QUARTER_HOUR_MICROS, QuarterSplit, SETTLE_MICROS, day_ceil,
    day_floor, decompose, quarter_floor, split_quarters,
};
pub use tally::{
    Counts, Figures, FiguresSum, QuarterTally, SourceTally, TrackTally, rank_sources, rank_tracks,
};

use super::Timestamp;

/// A half-open time range `[since, until)`; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl TimeRange {
    pub fn is_all_time(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

pub const DEFAULT_DAILY_DAYS: i64 = 30;
pub const MAX_DAILY_DAYS: i64 = 366;

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
