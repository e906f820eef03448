//! What the admin queries of both backends share: turning their rows into the domain's figures,
//! and the bookkeeping of an erasure.
use super::{StoreResult, rows::count};
use crate::domain::{
    Counts, ListenerCount, QuarterTally, Timestamp, TrackErasure, TrackId, TrackLikes, UserId,
};

/// `(user, plays, seconds)`, most plays first.
pub(super) type ListenerRow = (UserId, i64, i64);
/// `(track, likes)`, most likes first.
pub(super) type TrackLikesRow = (TrackId, i64);
/// `(quarter start, plays, seconds)`.
pub(super) type PlatformQuarterRow = (Timestamp, i64, i64);

pub(super) fn listeners(rows: Vec<ListenerRow>) -> StoreResult<Vec<ListenerCount>> {
    rows.into_iter()
        .map(|(user_id, plays, seconds)| {
            Ok(ListenerCount {
                user_id,
                plays: count(plays)?,
                seconds: count(seconds)?,
            })
        })
        .collect()
}

pub(super) fn track_likes(rows: Vec<TrackLikesRow>) -> StoreResult<Vec<TrackLikes>> {
    rows.into_iter()
        .map(|(track_id, likes)| {
            Ok(TrackLikes {
                track_id,
                likes: count(likes)?,
            })
        })
        .collect()
}

pub(super) fn quarter_hours(rows: Vec<PlatformQuarterRow>) -> StoreResult<Vec<QuarterTally>> {
    rows.into_iter()
        .map(|(start, plays, seconds)| {
            Ok(QuarterTally {
                start,
                counts: Counts {
                    plays: count(plays)?,
                    seconds: count(seconds)?,
                    ..Counts::default()
                },
            })
        })
        .collect()
}

/// A track's erasure: `players` had plays of it, `likers` liked it; a listener in both counts
/// once among the affected users.
pub(super) fn track_erasure(plays: u64, players: &[UserId], likers: &[UserId]) -> TrackErasure {
    let mut users: Vec<UserId> = players.iter().chain(likers).copied().collect();
    users.sort_unstable();
    users.dedup();
    TrackErasure {
        plays,
        likes: likers.len() as u64,
        users: users.len() as u64,
    }
}
