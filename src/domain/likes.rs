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
