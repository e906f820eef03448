//! A span per store operation of a call, for distributed tracing: the one place that wraps the
//! store, so neither backend's SQL carries tracing code. Each operation runs in a CLIENT span
//! named after it (`check_liked`, `record_plays`, ...) with `db.system.name`, a child of the call
//! it serves. Operations outside a call (the background tasks' health probes, gauges and
//! retention) get no span: they would be a trace every few seconds.
//!
//! The spans are at debug level for the `library_service::store` target: only the OTLP
//! exporter's layer enables them (and the logs at `RUST_LOG=library_service::store=debug`).
//! Without either they are disabled callsites, and the wrapper costs nothing but a check.
use std::future::Future;

use tracing::Instrument;

use super::{
    AdminStore, CacheStatus, DatabaseKind, EventFeed, EventsFrom, GroupStatus, LibraryFigures,
    LikeOutcome, LikeStore, LikedPage, LiveStore, PeriodTracks, PlayStore, PoolStatus, StatsStore,
    StoreResult, TrackCounts, Upkeep,
};
use crate::domain::{
    ClearScope, DeviceId, EventPosition, HistoryQuery, LikePosition, LikedTrack, ListenerCount,
    NewPlay, Notes, Play, PlayId, PlayPosition, Playback, QuarterTally, Recorded, TimeRange,
    Timestamp, TrackErasure, TrackId, TrackLikes, UserErasure, UserId,
};

/// A store whose operations inside a call are traced.
#[derive(Clone)]
pub struct Traced<S> {
    inner: S,
    /// OpenTelemetry's `db.system.name`.
    system: &'static str,
}

impl<S> Traced<S> {
    pub fn new(inner: S, kind: DatabaseKind) -> Self {
        let system = match kind {
            DatabaseKind::Postgres => "postgresql",
            DatabaseKind::Sqlite => "sqlite",
        };
        Self { inner, system }
    }
}

/// Whether this thread is inside a span (a call's, or a stream's task's).
fn in_call() -> bool {
    tracing::dispatcher::get_default(|d| d.current_span().id().is_some())
}

/// The span of one operation; each operation is its own callsite, so the span carries its name.
macro_rules! operation_span {
    ($system:expr, $name:ident) => {
        if in_call() {
            tracing::debug_span!(target: "library_service::store", stringify!($name),
                otel.kind = "client", db.system.name = $system)
        } else {
            tracing::Span::none()
        }
    };
}

/// The traced forwarding of async operations: same name, same arguments.
macro_rules! traced {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {$(
        fn $name(&self, $($arg: $ty),*) -> impl Future<Output = StoreResult<$out>> + Send {
            self.inner.$name($($arg),*).instrument(operation_span!(self.system, $name))
        }
    )*};
}

impl<S: LiveStore + Sync> LiveStore for Traced<S> {
    fn event_feed(&self) -> &EventFeed {
        self.inner.event_feed()
    }

    traced! {
        event_head(user: UserId) -> EventPosition;
        events_from(user: UserId, from: EventPosition, rows: u32) -> EventsFrom;
        trim_events(before: Timestamp) -> u64;
        playback(user: UserId, device: &DeviceId) -> Option<Playback>;
        set_playback(user: UserId, device: &DeviceId, next: Option<&Playback>, announce: bool) -> ();
        now_playing(users: &[UserId], now: Timestamp) -> Vec<Playback>;
        forget_playbacks(before: Timestamp) -> u64;
    }
}

impl<S: Upkeep + Sync> Upkeep for Traced<S> {
    fn relay_events(&self) {
        self.inner.relay_events();
    }

    fn pool_status(&self) -> PoolStatus {
        self.inner.pool_status()
    }

    fn stats_cache_status(&self) -> CacheStatus {
        self.inner.stats_cache_status()
    }

    fn write_group_status(&self) -> GroupStatus {
        self.inner.write_group_status()
    }

    traced! {
        housekeeping() -> ();
        history_size_estimate() -> u64;
        ping() -> ();
        forget_request_ids(played_before: Timestamp, used_before: Timestamp) -> u64;
    }
}

impl<S: PlayStore + Sync> PlayStore for Traced<S> {
    traced! {
        record_plays(user: UserId, plays: Vec<NewPlay>) -> Vec<Recorded>;
        import_plays(user: UserId, plays: Vec<NewPlay>) -> Vec<Recorded>;
        history_page(user: UserId, query: &HistoryQuery, after: Option<PlayPosition>, limit: u32)
            -> Vec<Play>;
        delete_play(user: UserId, play: PlayId) -> bool;
        clear_history(user: UserId, scope: &ClearScope, dry_run: bool) -> u64;
    }
}

impl<S: LikeStore + Sync> LikeStore for Traced<S> {
    traced! {
        like_track(user: UserId, track: TrackId, notes: Option<Notes>, now: Timestamp)
            -> LikeOutcome;
        unlike_track(user: UserId, track: TrackId) -> bool;
        update_liked_track(user: UserId, track: TrackId, notes: Notes, now: Timestamp)
            -> Option<LikedTrack>;
        liked_tracks_page(user: UserId, after: Option<LikePosition>, limit: u32) -> LikedPage;
        check_liked(user: UserId, tracks: &[TrackId]) -> Vec<bool>;
        restore_likes(user: UserId, likes: &[LikedTrack]) -> u64;
    }
}

impl<S: StatsStore + Sync> StatsStore for Traced<S> {
    traced! {
        library_stats(user: UserId, range: TimeRange, top: u32, cuts: &[Timestamp])
            -> LibraryFigures;
        track_play_counts(user: UserId, tracks: &[TrackId], range: TimeRange) -> TrackCounts;
        period_tracks(user: UserId, period: TimeRange, previous: TimeRange) -> PeriodTracks;
    }
}

impl<S: AdminStore + Sync> AdminStore for Traced<S> {
    traced! {
        top_listeners(range: TimeRange, limit: u32) -> Vec<ListenerCount>;
        most_liked_tracks(limit: u32) -> Vec<TrackLikes>;
        platform_quarter_hours(since: Timestamp, until: Timestamp) -> Vec<QuarterTally>;
        purge_plays_before(cutoff: Timestamp, dry_run: bool) -> u64;
        delete_user_data(user: UserId) -> UserErasure;
        delete_track_data(track: TrackId) -> TrackErasure;
    }
}
