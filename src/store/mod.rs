//! Persistence. SQL lives here and only here. One trait, two backends (PostgreSQL in production,
//! SQLite embedded by default) that pass the same conformance suite (`tests/`).
use std::future::Future;

use crate::domain::{
    HistoryQuery, LikePosition, LikedTrack, ListenerCount, NewPlay, Notes, Play, PlayId,
    PlayPosition, PlayStats, QuarterHour, Recorded, TimeRange, Timestamp, TrackErasure, TrackId,
    TrackLikes, UserErasure, UserId,
};

mod error;
mod postgres;
mod rows;
mod sqlite;

pub use error::StoreError;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

pub type StoreResult<T> = Result<T, StoreError>;

/// The result of liking a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikeOutcome {
    pub liked: LikedTrack,
    /// The track was liked before this call (its `liked_at` is unchanged).
    pub already_liked: bool,
}

/// One page of liked tracks plus the listener's total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikedPage {
    pub tracks: Vec<LikedTrack>,
    pub total: u64,
}

/// Connections of the store's pool(s), for the metrics gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// Which database `DATABASE_URL` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseKind {
    Postgres,
    Sqlite,
}

impl DatabaseKind {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }
}

/// Everything the service asks of its database. Every method is scoped to one listener, and every
/// write is committed before the method returns `Ok`.
pub trait Store: Clone + Send + Sync + 'static {
    /// Upkeep run at start-up and then daily: PostgreSQL creates the coming months' partitions.
    fn housekeeping(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// Connections open and idle, for the metrics gauges.
    fn pool_status(&self) -> PoolStatus;

    /// Roughly how many plays are stored, for monitoring: PostgreSQL's planner statistics, or
    /// the aggregates' exact total on SQLite.
    fn history_size_estimate(&self) -> impl Future<Output = StoreResult<u64>> + Send;

    /// A cheap round trip, for health checks.
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// Stores the plays in order, in one transaction. A play whose `request_id` the listener has
    /// used before is not stored again: its result is the first play with `duplicate = true`
    /// (this holds within one call too). Concurrent calls with one `request_id` store one play.
    fn record_plays(
        &self,
        user: UserId,
        plays: Vec<NewPlay>,
    ) -> impl Future<Output = StoreResult<Vec<Recorded>>> + Send;

    /// Up to `limit` plays matching `query`, in its order, strictly after `after`.
    fn history_page(
        &self,
        user: UserId,
        query: &HistoryQuery,
        after: Option<PlayPosition>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<Play>>> + Send;

    /// Deletes one play; false when the listener has no such play.
    fn delete_play(
        &self,
        user: UserId,
        play: PlayId,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Deletes (or with `dry_run` counts) the plays played before `before` (all when `None`).
    fn clear_history(
        &self,
        user: UserId,
        before: Option<Timestamp>,
        dry_run: bool,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Retention across all listeners: deletes (or with `dry_run` counts) every play played before
    /// `cutoff`, keeping the aggregates right. PostgreSQL drops whole monthly partitions where it
    /// can instead of deleting row by row.
    fn purge_plays_before(
        &self,
        cutoff: Timestamp,
        dry_run: bool,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Forgets the idempotency keys of plays played before `played_before` that were first used
    /// before `used_before` (retention keeps them as long as their play, and at least a day).
    fn forget_request_ids(
        &self,
        played_before: Timestamp,
        used_before: Timestamp,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Likes a track at `now`. Liking again keeps `liked_at`; notes change only when given
    /// (and then `updated_at` becomes `now`).
    fn like_track(
        &self,
        user: UserId,
        track: TrackId,
        notes: Option<Notes>,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<LikeOutcome>> + Send;

    /// Removes a like; true when there was one.
    fn unlike_track(
        &self,
        user: UserId,
        track: TrackId,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Replaces the notes of a liked track; `None` when the track is not liked.
    fn update_liked_track(
        &self,
        user: UserId,
        track: TrackId,
        notes: Notes,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Option<LikedTrack>>> + Send;

    /// Up to `limit` likes, newest first (`liked_at` desc, then `track_id` desc), strictly after
    /// `after`, plus the total number of likes.
    fn liked_tracks_page(
        &self,
        user: UserId,
        after: Option<LikePosition>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<LikedPage>> + Send;

    /// For each track, in order, whether the listener likes it.
    fn check_liked(
        &self,
        user: UserId,
        tracks: &[TrackId],
    ) -> impl Future<Output = StoreResult<Vec<bool>>> + Send;

    /// Statistics of the plays in `range`, with `top_tracks` top tracks, and plays per UTC quarter
    /// hour within `buckets` (the daily-activity window). All-time statistics come from
    /// aggregates kept with every write, never from a scan of the history.
    fn play_stats(
        &self,
        user: UserId,
        range: TimeRange,
        top_tracks: u32,
        buckets: TimeRange,
    ) -> impl Future<Output = StoreResult<PlayStats>> + Send;

    /// Platform-wide: the `limit` listeners with the most plays in `range` (all time when
    /// unbounded), most plays first, then most seconds, then user id.
    fn top_listeners(
        &self,
        range: TimeRange,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<ListenerCount>>> + Send;

    /// Platform-wide: the `limit` tracks with the most likes, then by track id.
    fn most_liked_tracks(
        &self,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<TrackLikes>>> + Send;

    /// Platform-wide: plays per UTC quarter hour in `[since, until)`, ordered by start.
    fn platform_quarter_hours(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = StoreResult<Vec<QuarterHour>>> + Send;

    /// Erases every trace of a user (plays, likes, idempotency records, aggregates) in one
    /// transaction. Erasing again removes nothing.
    fn delete_user_data(
        &self,
        user: UserId,
    ) -> impl Future<Output = StoreResult<UserErasure>> + Send;

    /// Erases a track's plays, likes and idempotency records in every library, keeping each
    /// listener's aggregates exact, in one transaction.
    fn delete_track_data(
        &self,
        track: TrackId,
    ) -> impl Future<Output = StoreResult<TrackErasure>> + Send;
}
