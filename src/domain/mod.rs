//! Validated domain types: every value here has passed its rules, so the layers below never
//! re-check them. No tonic, no sqlx.
mod admin;
mod cursor;
mod ids;
mod likes;
mod play;
mod stats;
mod text;
mod time;

pub use admin::{
    DEFAULT_ADMIN_LIMIT, ListenerCount, MAX_ADMIN_LIMIT, TrackErasure, TrackLikes, UserErasure,
    admin_limit,
};
pub use cursor::{HistoryCursor, LikesPageToken};
pub use ids::{PlayId, TrackId, UserId};
pub use likes::{
    DEFAULT_LIKES_PAGE_SIZE, LikePosition, LikedTrack, MAX_CHECKED_TRACKS, MAX_LIKES_PAGE_SIZE,
    likes_page_size,
};
pub use play::{
    HistoryOrder, HistoryQuery, MAX_PLAYS_PER_CALL, NewPlay, NewPlayInput, Play, PlayPosition,
    Recorded,
};
pub use stats::{
    DEFAULT_DAILY_DAYS, DEFAULT_TOP_TRACKS, DailyWindow, DayActivity, MAX_DAILY_DAYS,
    MAX_TOP_TRACKS, PlayStats, QUARTER_HOUR_MICROS, QuarterHour, QuarterSplit, SourceCount,
    TimeRange, TrackCount, daily_activity, daily_window, last_days_window, parse_time_zone,
    split_quarters, top_tracks_limit,
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
