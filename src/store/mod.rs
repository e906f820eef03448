//! Persistence. SQL lives here and only here. Two backends (PostgreSQL in production, SQLite
//! embedded by default) implement one trait per aggregate, each in the file that holds its SQL,
//! and pass the same conformance suite (`tests/`). Control flow that does not depend on the
//! database (the statistics, the likes page) is written once, in this folder; only the SQL is
//! per backend.
use std::future::Future;

use crate::domain::{
    ClearScope, DeviceId, EventPosition, HistoryQuery, LikePosition, LikedTrack, ListenerCount,
    NewPlay, Notes, Play, PlayId, PlayPosition, Playback, QuarterTally, Recorded, TimeRange,
    Timestamp, TrackErasure, TrackId, TrackLikes, UserErasure, UserId,
};

mod admin;
mod cache;
mod database;
mod error;
mod events;
mod group;
mod postgres;
mod rows;
mod snapshot;
mod sqlite;
mod stats;
mod traced;
mod types;

pub use cache::CacheStatus;
pub use database::{Database, DatabaseKind};
pub use error::StoreError;
pub use events::{EventFeed, EventsFrom, Subscription};
pub use group::GroupStatus;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use stats::{AllTime, LibraryFigures, PeriodTracks, TrackCounts};
pub use traced::Traced;

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

/// Everything the service asks of its database. Every write is committed before its method
/// returns `Ok`.
pub trait Store:
    Upkeep + PlayStore + LikeStore + StatsStore + AdminStore + LiveStore + Clone + Send + Sync + 'static
{
}

impl<T> Store for T where
    T: Upkeep
        + PlayStore
        + LikeStore
        + StatsStore
        + AdminStore
        + LiveStore
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The live library: the log of every listener's changes (each write path appends to it in
/// its own transaction), and what each device is playing.
pub trait LiveStore {
    /// Wakes this process's watchers when a listener's library changes, on any replica.
    fn event_feed(&self) -> &EventFeed;

    /// Where a watcher starting now begins: just after the listener's last event.
    fn event_head(&self, user: UserId) -> impl Future<Output = StoreResult<EventPosition>> + Send;

    /// The listener's events from `from` on, from at most `rows` stored rows (a row of plays
    /// recorded together holds several events).
    fn events_from(
        &self,
        user: UserId,
        from: EventPosition,
        rows: u32,
    ) -> impl Future<Output = StoreResult<EventsFrom>> + Send;

    /// Deletes the events made before `before`; how many rows went.
    fn trim_events(&self, before: Timestamp) -> impl Future<Output = StoreResult<u64>> + Send;

    /// The device's playback as last reported, even when it has expired (so that its play is
    /// still recorded when the device reports the next one).
    fn playback(
        &self,
        user: UserId,
        device: &DeviceId,
    ) -> impl Future<Output = StoreResult<Option<Playback>>> + Send;

    /// Replaces the device's playback (`None`: it ended), and with `announce` tells the
    /// listener's watchers.
    fn set_playback(
        &self,
        user: UserId,
        device: &DeviceId,
        next: Option<&Playback>,
        announce: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The playbacks of these listeners that have not expired at `now`, by listener and device.
    fn now_playing(
        &self,
        users: &[UserId],
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Vec<Playback>>> + Send;

    /// Deletes the playbacks that expired before `before`.
    fn forget_playbacks(&self, before: Timestamp) -> impl Future<Output = StoreResult<u64>> + Send;
}

/// What keeps the store running and observable.
pub trait Upkeep {
    /// Upkeep run at start-up and then daily: PostgreSQL creates the coming months' partitions.
    fn housekeeping(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// Starts telling other replicas about this process's changes and waking this process's
    /// watchers for theirs (PostgreSQL; SQLite has one process). A serving process calls it
    /// once; CLI commands never do.
    fn relay_events(&self) {}

    /// Connections open and idle, for the metrics gauges.
    fn pool_status(&self) -> PoolStatus;

    /// What the statistics' snapshot cache holds, for the metrics gauges.
    fn stats_cache_status(&self) -> CacheStatus;

    /// How the group commit of plays is doing, for the metrics.
    fn write_group_status(&self) -> GroupStatus;

    /// Roughly how many plays are stored, for monitoring: PostgreSQL's planner statistics, or
    /// the aggregates' exact total on SQLite.
    fn history_size_estimate(&self) -> impl Future<Output = StoreResult<u64>> + Send;

    /// A cheap round trip, for health checks.
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// Forgets the idempotency keys of plays played before `played_before` that were first used
    /// before `used_before` (retention keeps them as long as their play, and at least a day).
    fn forget_request_ids(
        &self,
        played_before: Timestamp,
        used_before: Timestamp,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
}

/// One listener's plays.
pub trait PlayStore {
    /// Stores the plays in order, in one transaction (shared with concurrent calls: see
    /// `group`), and returns once it is committed. A play whose `request_id` the listener has
    /// used before is not stored again: its result is the first play with `duplicate = true`
    /// (this holds within one call too). Concurrent calls with one `request_id` store one play.
    fn record_plays(
        &self,
        user: UserId,
        plays: Vec<NewPlay>,
    ) -> impl Future<Output = StoreResult<Vec<Recorded>>> + Send;

    /// Stores one batch of an import as `record_plays` does, but as bulk: behind live calls,
    /// and never shed for waiting long (the import bounds how many batches it queues).
    fn import_plays(
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

    /// Deletes (or with `dry_run` counts) the plays in `scope`.
    fn clear_history(
        &self,
        user: UserId,
        scope: &ClearScope,
        dry_run: bool,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
}

/// One listener's liked tracks.
pub trait LikeStore {
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

    /// Puts back likes as an export recorded them (their `liked_at`, `updated_at` and notes),
    /// in one transaction; each like's `user_id` is ignored for `user`. A track the listener
    /// already likes is left as it is, so restoring again writes nothing. Returns how many
    /// likes were added.
    fn restore_likes(
        &self,
        user: UserId,
        likes: &[LikedTrack],
    ) -> impl Future<Output = StoreResult<u64>> + Send;
}

/// One listener's statistics, each call read in one snapshot. Figures come from aggregates:
/// all time from the per-listener totals, any other span from the snapshots of its finished
/// UTC days and months plus the plays of its partial ends (see `stats`).
pub trait StatsStore {
    /// Everything GetLibraryStats reports for `range`: all-time totals, the range's tracks,
    /// sources and quarter hours (or, for all time, the `top` best tracks and the sources), and
    /// the quarter hours of the whole history. A quarter hour holding one of `cuts` (instants
    /// where the caller's zone changes offset off the quarter hour) comes split there, its
    /// second part keyed by the cut, so that it folds into local time exactly.
    fn library_stats(
        &self,
        user: UserId,
        range: TimeRange,
        top: u32,
        cuts: &[Timestamp],
    ) -> impl Future<Output = StoreResult<LibraryFigures>> + Send;

    /// The plays in `range` of each of `tracks`, and which of them are liked.
    fn track_play_counts(
        &self,
        user: UserId,
        tracks: &[TrackId],
        range: TimeRange,
    ) -> impl Future<Output = StoreResult<TrackCounts>> + Send;

    /// Every track played in `period` and in `previous`, and the tracks first played ever in
    /// `period`.
    fn period_tracks(
        &self,
        user: UserId,
        period: TimeRange,
        previous: TimeRange,
    ) -> impl Future<Output = StoreResult<PeriodTracks>> + Send;
}

/// Platform-wide figures, retention and erasure, for the admin service.
pub trait AdminStore {
    /// The `limit` listeners with the most plays in `range` (all time when unbounded), most
    /// plays first, then most seconds, then user id.
    fn top_listeners(
        &self,
        range: TimeRange,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<ListenerCount>>> + Send;

    /// The `limit` tracks with the most likes, then by track id.
    fn most_liked_tracks(
        &self,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<TrackLikes>>> + Send;

    /// Plays per UTC quarter hour in `[since, until)`, ordered by start.
    fn platform_quarter_hours(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = StoreResult<Vec<QuarterTally>>> + Send;

    /// Retention across all listeners: deletes (or with `dry_run` counts) every play played before
    /// `cutoff`, keeping the aggregates right. PostgreSQL drops whole monthly partitions where it
    /// can instead of deleting row by row.
    fn purge_plays_before(
        &self,
        cutoff: Timestamp,
        dry_run: bool,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

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
