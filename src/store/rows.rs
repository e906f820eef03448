//! Turning database values into domain types. A value outside the domain's rules means the row
//! was written behind the service's back: it becomes `StoreError::Corrupt`, never a panic.
use uuid::Uuid;

use super::{StoreError, StoreResult};
use crate::domain::{
    LikedTrack, Play, PlayId, PlayStats, QuarterHour, SourceCount, Timestamp, TrackCount, TrackId,
    UserId,
};

pub(super) fn timestamp(micros: i64) -> StoreResult<Timestamp> {
    Timestamp::from_micros(micros)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {micros} out of range")))
}

pub(super) fn count(n: i64) -> StoreResult<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count {n}")))
}

pub(super) struct PlayParts {
    pub user_id: Uuid,
    pub id: Uuid,
    pub track_id: Uuid,
    pub played_at_micros: i64,
    pub played_for_seconds: i64,
    pub completed: bool,
    pub source: String,
}

impl PlayParts {
    pub fn into_play(self) -> StoreResult<Play> {
        let played_for_seconds = u32::try_from(self.played_for_seconds).map_err(|_| {
            StoreError::Corrupt(format!("played_for_seconds {}", self.played_for_seconds))
        })?;
        Ok(Play {
            id: PlayId::from_uuid(self.id),
            user_id: UserId::from_uuid(self.user_id),
            track_id: TrackId::from_uuid(self.track_id),
            played_at: timestamp(self.played_at_micros)?,
            played_for_seconds,
            completed: self.completed,
            source: self.source,
        })
    }
}

pub(super) fn liked(
    user_id: Uuid,
    track_id: Uuid,
    notes: String,
    liked_at: i64,
    updated_at: i64,
) -> StoreResult<LikedTrack> {
    Ok(LikedTrack {
        user_id: UserId::from_uuid(user_id),
        track_id: TrackId::from_uuid(track_id),
        notes,
        liked_at: timestamp(liked_at)?,
        updated_at: timestamp(updated_at)?,
    })
}

/// The play a `NewPlay` becomes once stored.
pub(super) fn new_play(user: UserId, p: &crate::domain::NewPlay) -> Play {
    Play {
        id: PlayId::new_v7(),
        user_id: user,
        track_id: p.track_id,
        played_at: p.played_at,
        played_for_seconds: p.played_for_seconds,
        completed: p.completed,
        source: p.source.as_str().to_string(),
    }
}

/// What both backends' statistics queries return, before conversion: counts are `i64` (SQL
/// `COUNT`/`SUM`), times are microseconds.
pub(super) struct RawStats {
    pub plays: i64,
    pub completed: i64,
    pub seconds: i64,
    pub tracks: i64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub top: Vec<(Uuid, i64, i64)>,
    pub sources: Vec<(String, i64)>,
    pub quarters: Vec<(i64, i64, i64)>,
    pub liked: i64,
}

impl RawStats {
    pub fn into_stats(self) -> StoreResult<PlayStats> {
        Ok(PlayStats {
            total_plays: count(self.plays)?,
            completed_plays: count(self.completed)?,
            listening_seconds: count(self.seconds)?,
            unique_tracks: count(self.tracks)?,
            first_played_at: self.first.map(timestamp).transpose()?,
            last_played_at: self.last.map(timestamp).transpose()?,
            top_tracks: self
                .top
                .into_iter()
                .map(|(t, plays, seconds)| {
                    Ok(TrackCount {
                        track_id: TrackId::from_uuid(t),
                        plays: count(plays)?,
                        seconds: count(seconds)?,
                    })
                })
                .collect::<StoreResult<_>>()?,
            sources: self
                .sources
                .into_iter()
                .map(|(source, plays)| {
                    Ok(SourceCount {
                        source,
                        plays: count(plays)?,
                    })
                })
                .collect::<StoreResult<_>>()?,
            quarter_hours: self
                .quarters
                .into_iter()
                .map(|(start, plays, seconds)| {
                    Ok(QuarterHour {
                        start: timestamp(start)?,
                        plays: count(plays)?,
                        seconds: count(seconds)?,
                    })
                })
                .collect::<StoreResult<_>>()?,
            liked_tracks: count(self.liked)?,
        })
    }
}
