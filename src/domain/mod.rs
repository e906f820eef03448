//! Validated domain types: every value here has passed its rules, so the layers below never
//! re-check them. No tonic, no sqlx.
mod admin;
mod counting;
mod cursor;
mod ids;
mod likes;
mod live;
mod play;
mod stats;
mod text;
mod time;

pub use admin::{
    DEFAULT_ADMIN_LIMIT, ListenerCount, MAX_ADMIN_LIMIT, TrackErasure, TrackLikes, UserErasure,
    admin_limit,
};
pub use counting::CountingRule;
pub use cursor::{EventCursor, HistoryCursor, LikesPageToken, RankPosition, TopTracksPageToken};
pub use ids::{PlayId, TrackId, UserId};
pub use likes::{
    DEFAULT_LIKES_PAGE_SIZE, LikePosition, LikedTrack, MAX_CHECKED_TRACKS, MAX_LIKES_PAGE_SIZE,
    likes_page_size,
};
pub use live::{
    Change, DeviceId, EventPosition, LibraryEvent, Playback, PlaybackChange, PlaybackId,
    PlaybackReport, PlaybackReportInput, PlaybackState,
};
pub use play::{
    ClearScope, HistoryOrder, HistoryQuery, MAX_PLAYS_PER_CALL, NewPlay, NewPlayInput, Play,
    PlayPosition, Recorded,
};
pub use stats::{
    ActivityBucket, BucketCounts, CalendarPeriod, Counts, DAY_MICROS, DEFAULT_DAILY_DAYS,
    DEFAULT_TOP_TRACKS, Figures, FiguresSum, Hourly, MAX_BUCKETS, MAX_DAILY_DAYS, MAX_TOP_TRACKS,
    Period, Piece, QUARTER_HOUR_MICROS, QuarterSplit, QuarterTally, SETTLE_MICROS, Series,
    SourceTally, Streak, Streaks, TimeRange, TrackTally, calendar_period, day_ceil, day_floor,
    decompose, fold_hourly, fold_hourly_and_streaks, fold_series, fold_streaks, history_cuts,
    last_days, local_date, off_quarter_changes, parse_time_zone, quarter_floor, rank_sources,
    rank_tracks, series, split_quarters, top_tracks_limit, zone_name,
};
pub use text::{Notes, PlaySource, RequestId};
pub use time::{MAX_PLAYED_FOR_SECONDS, Timestamp};

/// One refused field: the name as the client spelled it, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}
