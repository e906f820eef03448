//! Rows as both databases return them, and their conversion into domain types. A value outside
//! the domain's rules means the row was written behind the service's back: it becomes
//! `StoreError::Corrupt`, never a panic.
use sqlx::FromRow;

use super::{StoreError, StoreResult};
use crate::domain::{LikedTrack, NewPlay, Play, PlayId, Timestamp, TrackId, UserId};

pub(super) fn count(n: i64) -> StoreResult<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count {n}")))
}

/// The columns of a play in `plays`, for `concat!` into static SQL.
macro_rules! play_columns {
    () => {
        "user_id, id, track_id, played_at, played_for_seconds, completed, source, \
         track_duration_seconds, counted"
    };
}
pub(super) use play_columns;

#[derive(FromRow, Clone)]
pub(super) struct PlayRow {
    pub user_id: UserId,
    pub id: PlayId,
    pub track_id: TrackId,
    pub played_at: Timestamp,
    pub played_for_seconds: i32,
    pub completed: bool,
    pub source: String,
    pub track_duration_seconds: Option<i32>,
    pub counted: bool,
}

impl PlayRow {
    pub fn into_play(self) -> StoreResult<Play> {
        let played_for_seconds = u32::try_from(self.played_for_seconds).map_err(|_| {
            StoreError::Corrupt(format!("played_for_seconds {}", self.played_for_seconds))
        })?;
        Ok(Play {
            id: self.id,
            user_id: self.user_id,
            track_id: self.track_id,
            played_at: self.played_at,
            played_for_seconds,
            completed: self.completed,
            source: self.source,
            track_duration_seconds: self
                .track_duration_seconds
                .map(|d| {
                    u32::try_from(d)
                        .map_err(|_| StoreError::Corrupt(format!("track_duration_seconds {d}")))
                })
                .transpose()?,
            counted: self.counted,
        })
    }
}

/// A play's first record under its idempotency key.
#[derive(FromRow)]
pub(super) struct KeyedPlayRow {
    pub request_id: String,
    #[sqlx(flatten)]
    pub play: PlayRow,
}

pub(super) fn into_plays(rows: Vec<PlayRow>) -> StoreResult<Vec<Play>> {
    rows.into_iter().map(PlayRow::into_play).collect()
}

/// The columns of a like in `liked_tracks`, for `concat!` into static SQL.
macro_rules! like_columns {
    () => {
        "user_id, track_id, notes, liked_at, updated_at"
    };
}
pub(super) use like_columns;

#[derive(FromRow)]
pub(super) struct LikeRow {
    pub user_id: UserId,
    pub track_id: TrackId,
    pub notes: String,
    pub liked_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<LikeRow> for LikedTrack {
    fn from(row: LikeRow) -> Self {
        LikedTrack {
            user_id: row.user_id,
            track_id: row.track_id,
            notes: row.notes,
            liked_at: row.liked_at,
            updated_at: row.updated_at,
        }
    }
}

/// The play a `NewPlay` becomes once stored.
pub(super) fn new_play(user: UserId, p: &NewPlay) -> Play {
    Play {
        id: PlayId::new_v7(),
        user_id: user,
        track_id: p.track_id,
        played_at: p.played_at,
        played_for_seconds: p.played_for_seconds,
        completed: p.completed,
        source: p.source.as_str().to_string(),
        track_duration_seconds: p.track_duration_seconds,
        counted: p.counted,
    }
}
