use super::{Timestamp, TrackId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikedTrack {
    pub user_id: UserId,
    pub track_id: TrackId,
    /// Empty when the listener wrote none.
    pub notes: String,
    pub liked_at: Timestamp,
    pub updated_at: Timestamp,
}

impl LikedTrack {
    pub fn position(&self) -> LikePosition {
        LikePosition {
            liked_at: self.liked_at,
            track_id: self.track_id,
        }
    }
}

/// Where a like sits in the listing order (newest first): `(liked_at, track_id)` is unique per
/// listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LikePosition {
    pub liked_at: Timestamp,
    pub track_id: TrackId,
}

/// A likes page's size when the client asks for none.
pub const DEFAULT_LIKES_PAGE_SIZE: u32 = 50;
pub const MAX_LIKES_PAGE_SIZE: u32 = 500;
/// Most tracks one CheckLikedTracks call may ask about.
pub const MAX_CHECKED_TRACKS: usize = 500;

/// AIP-158: 0 means the default, and a page size above the maximum is coerced, not refused.
pub fn likes_page_size(requested: u32) -> u32 {
    match requested {
        0 => DEFAULT_LIKES_PAGE_SIZE,
        n => n.min(MAX_LIKES_PAGE_SIZE),
    }
}
