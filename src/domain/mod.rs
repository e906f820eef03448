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
pub use likes::{LikePosition, LikedTrack};
pub use play::{HistoryOrder, HistoryQuery, NewPlay, NewPlayInput, Play, PlayPosition, Recorded};
pub use stats::{
    DEFAULT_DAILY_DAYS, DailyWindow, DayActivity, MAX_DAILY_DAYS, PlayStats, QUARTER_HOUR_MICROS,
    QuarterHour, QuarterSplit, SourceCount, TimeRange, TrackCount, daily_activity, daily_window,
    last_days_window, parse_time_zone, split_quarters,
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
