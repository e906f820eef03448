//! Platform-wide figures and erasures of the admin service.
use super::{TrackId, UserId};

/// Most rows an admin listing returns.
pub const MAX_ADMIN_LIMIT: u32 = 100;
pub const DEFAULT_ADMIN_LIMIT: u32 = 10;

/// One listener's plays in a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerCount {
    pub user_id: UserId,
    pub plays: u64,
    pub seconds: u64,
}

/// How many listeners like one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackLikes {
    pub track_id: TrackId,
    pub likes: u64,
}

/// What erasing a user removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserErasure {
    pub plays: u64,
    pub likes: u64,
    pub requests: u64,
}

/// What erasing a track removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackErasure {
    pub plays: u64,
    pub likes: u64,
    pub users: u64,
}

/// An admin listing's `limit`: 0 means the default; above the maximum is refused.
pub fn admin_limit(limit: u32) -> Result<u32, String> {
    match limit {
        0 => Ok(DEFAULT_ADMIN_LIMIT),
        n if n <= MAX_ADMIN_LIMIT => Ok(n),
        _ => Err(format!("must be at most {MAX_ADMIN_LIMIT}")),
    }
}
