//! The live library's store side: the event log every write path appends to, its encoding
//! (one for both backends), and the feed that wakes this process's watchers.
//!
//! A watcher never receives events from memory: a wake-up only tells it to read the log from
//! its position. So an event is seen exactly as committed, in the listener's order, whichever
//! replica wrote it; a lost wake-up delays an event (until the next one, or the watcher's
//! heartbeat read) and never loses it.
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError},
};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use super::{StoreError, StoreResult};
use crate::domain::{
    Change, ClearScope, DeviceId, EventPosition, LibraryEvent, LikedTrack, Play, PlayId, Playback,
    PlaybackId, PlaybackState, Timestamp, TrackId, UserId,
};

/// The stored kinds of event rows.
pub(super) const PLAYS_RECORDED: i16 = 1;
pub(super) const PLAY_DELETED: i16 = 2;
pub(super) const HISTORY_CLEARED: i16 = 3;
pub(super) const HISTORY_IMPORTED: i16 = 4;
pub(super) const TRACK_LIKED: i16 = 5;
pub(super) const TRACK_UNLIKED: i16 = 6;
pub(super) const NOW_PLAYING: i16 = 7;

/// A recorded play in an event row: `[id, track_id, played_at (µs), played_for_seconds,
/// completed, source, track_duration_seconds, counted]`. An array, not an object, because a
/// row may hold thousands, and PostgreSQL builds it with `json_build_array` in the statement
/// that stores them.
type PlayBody = (String, String, i64, u32, bool, String, Option<u32>, bool);

#[derive(Serialize, Deserialize)]
struct DeletedBody {
    play_id: String,
}

#[derive(Serialize, Deserialize)]
struct ClearedBody {
    since: Option<i64>,
    before: Option<i64>,
    track_id: Option<String>,
    source: Option<String>,
    deleted: u64,
}

#[derive(Serialize, Deserialize)]
struct ImportedBody {
    imported: u64,
}

#[derive(Serialize, Deserialize)]
struct LikeBody {
    track_id: String,
    notes: String,
    liked_at: i64,
    updated_at: i64,
}

#[derive(Serialize, Deserialize)]
struct UnlikedBody {
    track_id: String,
}

#[derive(Serialize, Deserialize)]
struct PlaybackBody {
    playback_id: String,
    track_id: String,
    state: i16,
    position_seconds: u32,
    track_duration_seconds: Option<u32>,
    source: String,
    started_at: i64,
    reported_at: i64,
}

#[derive(Serialize, Deserialize)]
struct NowPlayingBody {
    device_id: String,
    playback: Option<PlaybackBody>,
}

fn json<T: Serialize>(body: &T) -> String {
    // Serializing these plain structs cannot fail (no maps with non-string keys, no I/O).
    serde_json::to_string(body).unwrap_or_default()
}

fn play_body(p: &Play) -> PlayBody {
    (
        p.id.to_string(),
        p.track_id.to_string(),
        p.played_at.as_micros(),
        p.played_for_seconds,
        p.completed,
        p.source.clone(),
        p.track_duration_seconds,
        p.counted,
    )
}

/// One row to append: its kind and body. The constructors are the only way to make one, so
/// every body is one the reader decodes.
pub(super) struct Entry {
    pub kind: i16,
    pub body: String,
}

impl Entry {
    pub fn plays_recorded(plays: &[Play]) -> Self {
        let bodies: Vec<PlayBody> = plays.iter().map(play_body).collect();
        Self {
            kind: PLAYS_RECORDED,
            body: json(&bodies),
        }
    }

    pub fn play_deleted(play: PlayId) -> Self {
        Self {
            kind: PLAY_DELETED,
            body: json(&DeletedBody {
                play_id: play.to_string(),
            }),
        }
    }

    pub fn history_cleared(scope: &ClearScope, deleted: u64) -> Self {
        Self {
            kind: HISTORY_CLEARED,
            body: json(&ClearedBody {
                since: scope.since.map(|t| t.as_micros()),
                before: scope.before.map(|t| t.as_micros()),
                track_id: scope.track_id.map(|t| t.to_string()),
                source: scope.source.clone(),
                deleted,
            }),
        }
    }

    pub fn history_imported(imported: u64) -> Self {
        Self {
            kind: HISTORY_IMPORTED,
            body: json(&ImportedBody { imported }),
        }
    }

    pub fn track_liked(like: &LikedTrack) -> Self {
        Self {
            kind: TRACK_LIKED,
            body: json(&LikeBody {
                track_id: like.track_id.to_string(),
                notes: like.notes.clone(),
                liked_at: like.liked_at.as_micros(),
                updated_at: like.updated_at.as_micros(),
            }),
        }
    }

    pub fn track_unliked(track: TrackId) -> Self {
        Self {
            kind: TRACK_UNLIKED,
            body: json(&UnlikedBody {
                track_id: track.to_string(),
            }),
        }
    }

    pub fn now_playing(device: &DeviceId, playback: Option<&Playback>) -> Self {
        Self {
            kind: NOW_PLAYING,
            body: json(&NowPlayingBody {
                device_id: device.as_str().to_string(),
                playback: playback.map(|p| PlaybackBody {
                    playback_id: p.playback_id.as_str().to_string(),
                    track_id: p.track_id.to_string(),
                    state: p.state.code(),
                    position_seconds: p.position_seconds,
                    track_duration_seconds: p.track_duration_seconds,
                    source: p.source.clone(),
                    started_at: p.started_at.as_micros(),
                    reported_at: p.reported_at.as_micros(),
                }),
            }),
        }
    }
}

/// One stored event row, as read back.
pub(super) struct EventRow {
    pub seq: i64,
    pub at: Timestamp,
    pub kind: i16,
    pub body: String,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("event row: {what}"))
}

fn parse<T: for<'de> Deserialize<'de>>(body: &str) -> StoreResult<T> {
    serde_json::from_str(body).map_err(|e| corrupt(&e.to_string()))
}

fn micros(us: i64) -> StoreResult<Timestamp> {
    Timestamp::from_micros(us).ok_or_else(|| corrupt("time out of range"))
}

fn track(id: &str) -> StoreResult<TrackId> {
    TrackId::parse(id).map_err(|e| corrupt(&e))
}

fn decode_play(user: UserId, b: PlayBody) -> StoreResult<Play> {
    let (id, track_id, played_at, played_for_seconds, completed, source, duration, counted) = b;
    Ok(Play {
        id: PlayId::parse(&id).map_err(|e| corrupt(&e))?,
        user_id: user,
        track_id: track(&track_id)?,
        played_at: micros(played_at)?,
        played_for_seconds,
        completed,
        source,
        track_duration_seconds: duration,
        counted,
    })
}

fn decode_playback(user: UserId, device: &DeviceId, b: PlaybackBody) -> StoreResult<Playback> {
    Ok(Playback {
        user_id: user,
        device_id: device.clone(),
        playback_id: PlaybackId::parse(&b.playback_id).map_err(|e| corrupt(&e))?,
        track_id: track(&b.track_id)?,
        state: PlaybackState::from_code(b.state).ok_or_else(|| corrupt("playback state"))?,
        position_seconds: b.position_seconds,
        track_duration_seconds: b.track_duration_seconds,
        source: b.source,
        started_at: micros(b.started_at)?,
        reported_at: micros(b.reported_at)?,
    })
}

/// A row's changes, in order.
fn changes(user: UserId, row: &EventRow) -> StoreResult<Vec<Change>> {
    Ok(match row.kind {
        PLAYS_RECORDED => parse::<Vec<PlayBody>>(&row.body)?
            .into_iter()
            .map(|b| decode_play(user, b).map(Change::PlayRecorded))
            .collect::<StoreResult<_>>()?,
        PLAY_DELETED => {
            let b: DeletedBody = parse(&row.body)?;
            vec![Change::PlayDeleted(
                PlayId::parse(&b.play_id).map_err(|e| corrupt(&e))?,
            )]
        }
        HISTORY_CLEARED => {
            let b: ClearedBody = parse(&row.body)?;
            let scope = ClearScope {
                since: b.since.map(micros).transpose()?,
                before: b.before.map(micros).transpose()?,
                track_id: b.track_id.as_deref().map(track).transpose()?,
                source: b.source,
            };
            vec![Change::HistoryCleared {
                scope,
                deleted: b.deleted,
            }]
        }
        HISTORY_IMPORTED => {
            let b: ImportedBody = parse(&row.body)?;
            vec![Change::HistoryImported {
                imported: b.imported,
            }]
        }
        TRACK_LIKED => {
            let b: LikeBody = parse(&row.body)?;
            vec![Change::TrackLiked(LikedTrack {
                user_id: user,
                track_id: track(&b.track_id)?,
                notes: b.notes,
                liked_at: micros(b.liked_at)?,
                updated_at: micros(b.updated_at)?,
            })]
        }
        TRACK_UNLIKED => {
            let b: UnlikedBody = parse(&row.body)?;
            vec![Change::TrackUnliked(track(&b.track_id)?)]
        }
        NOW_PLAYING => {
            let b: NowPlayingBody = parse(&row.body)?;
            let device = DeviceId::parse(&b.device_id).map_err(|e| corrupt(&e))?;
            let playback = b
                .playback
                .map(|p| decode_playback(user, &device, p))
                .transpose()?;
            vec![Change::NowPlaying {
                device_id: device,
                playback,
            }]
        }
        other => return Err(corrupt(&format!("unknown kind {other}"))),
    })
}

/// What reading the log from a position found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsFrom {
    /// The events from the position on (empty when there are none yet).
    Events(Vec<LibraryEvent>),
    /// Events the position still needs were trimmed (or never existed): the watcher must
    /// reload and watch from now.
    Expired,
}

/// The events of `rows` (read with `seq >= from.seq`, in order, the listener's last number
/// being `head`) from `from` on.
pub(super) fn events_from(
    user: UserId,
    from: EventPosition,
    head: i64,
    rows: &[EventRow],
) -> StoreResult<EventsFrom> {
    if from.seq > head + 1 || (from.seq <= head && rows.first().is_none_or(|r| r.seq != from.seq)) {
        return Ok(EventsFrom::Expired);
    }
    let mut events = Vec::new();
    for row in rows {
        let changes = changes(user, row)?;
        let count = changes.len();
        for (index, change) in changes.into_iter().enumerate() {
            if row.seq == from.seq && (index as u64) < u64::from(from.index) {
                continue;
            }
            let next = if index + 1 == count {
                EventPosition {
                    seq: row.seq + 1,
                    index: 0,
                }
            } else {
                EventPosition {
                    seq: row.seq,
                    index: u32::try_from(index + 1).unwrap_or(u32::MAX),
                }
            };
            events.push(LibraryEvent {
                at: row.at,
                change,
                next,
            });
        }
    }
    Ok(EventsFrom::Events(events))
}

/// Wakes this process's watchers when their listener's library changed, here or (through the
/// backend's relay) on another replica. Writers only flip a counter: a watcher that is slow or
/// stuck never slows a write.
#[derive(Clone, Default)]
pub struct EventFeed(Arc<FeedInner>);

#[derive(Default)]
struct FeedInner {
    watchers: Mutex<HashMap<UserId, watch::Sender<u64>>>,
    /// Changed listeners not yet told to the other replicas (PostgreSQL), and its wake-up.
    relay: Mutex<HashSet<UserId>>,
    relay_wake: Notify,
    /// Set for a backend whose other replicas must hear of changes (PostgreSQL).
    relays: bool,
}

/// A watcher's wake-ups; leaving the feed when dropped.
pub struct Subscription {
    rx: Option<watch::Receiver<u64>>,
    user: UserId,
    feed: EventFeed,
}

impl Subscription {
    /// Completes at the next change of the listener's library after the last call.
    pub async fn changed(&mut self) {
        if let Some(rx) = self.rx.as_mut()
            && rx.changed().await.is_ok()
        {
            return;
        }
        // The sender lives as long as a subscription does; never reached.
        std::future::pending().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut watchers = self
            .feed
            .0
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if watchers
            .get(&self.user)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            watchers.remove(&self.user);
        }
    }
}

impl EventFeed {
    /// A feed whose changes are also relayed to other replicas (see `take_relayed`).
    pub(super) fn relayed() -> Self {
        Self(Arc::new(FeedInner {
            relays: true,
            ..FeedInner::default()
        }))
    }

    pub fn subscribe(&self, user: UserId) -> Subscription {
        let mut watchers = self
            .0
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let rx = watchers
            .entry(user)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Subscription {
            rx: Some(rx),
            user,
            feed: self.clone(),
        }
    }

    /// Listeners with a watcher here.
    pub fn watched(&self) -> usize {
        self.0
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Wakes the watchers here of these listeners.
    pub(super) fn wake(&self, users: impl IntoIterator<Item = UserId>) {
        let watchers = self
            .0
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for user in users {
            if let Some(tx) = watchers.get(&user) {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// Wakes every watcher here: after the relay lost its connection, when changes may have
    /// gone unheard.
    pub(super) fn wake_all(&self) {
        let watchers = self
            .0
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for tx in watchers.values() {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Called after a commit that appended events for these listeners.
    pub(super) fn published(&self, users: impl IntoIterator<Item = UserId> + Clone) {
        self.wake(users.clone());
        if self.0.relays {
            self.0
                .relay
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(users);
            self.0.relay_wake.notify_one();
        }
    }

    /// Waits for changed listeners to tell the other replicas, and takes them.
    pub(super) async fn take_relayed(&self) -> Vec<UserId> {
        loop {
            let taken: Vec<UserId> = self
                .0
                .relay
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain()
                .collect();
            if !taken.is_empty() {
                return taken;
            }
            self.0.relay_wake.notified().await;
        }
    }

    /// Puts back listeners a failed relay did not tell.
    pub(super) fn relay_again(&self, users: Vec<UserId>) {
        self.0
            .relay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(users);
    }
}

/// A listener's last event number beside one row of their events from a position (none when
/// there is none): what `events_from` reads in one statement, so the two agree.
#[derive(sqlx::FromRow)]
pub(super) struct LogRow {
    pub head: i64,
    pub seq: Option<i64>,
    pub at: Option<Timestamp>,
    pub kind: Option<i16>,
    pub body: Option<String>,
}

/// The listener's events from `from` on, out of what `events_from`'s statement read.
pub(super) fn read_log(
    user: UserId,
    from: EventPosition,
    rows: Vec<LogRow>,
) -> StoreResult<EventsFrom> {
    let head = rows.first().map_or(0, |r| r.head);
    let rows: Vec<EventRow> = rows
        .into_iter()
        .filter_map(|r| match (r.seq, r.at, r.kind, r.body) {
            (Some(seq), Some(at), Some(kind), Some(body)) => Some(EventRow {
                seq,
                at,
                kind,
                body,
            }),
            _ => None,
        })
        .collect();
    events_from(user, from, head, &rows)
}

/// The columns of a playback in `now_playing`, for `concat!` into static SQL.
macro_rules! playback_columns {
    () => {
        "user_id, device_id, playback_id, track_id, state, position_seconds,
         track_duration_seconds, source, started_at, reported_at"
    };
}
pub(super) use playback_columns;

#[derive(sqlx::FromRow)]
pub(super) struct PlaybackRow {
    pub user_id: UserId,
    pub device_id: String,
    pub playback_id: String,
    pub track_id: TrackId,
    pub state: i16,
    pub position_seconds: i32,
    pub track_duration_seconds: Option<i32>,
    pub source: String,
    pub started_at: Timestamp,
    pub reported_at: Timestamp,
}

impl PlaybackRow {
    pub fn into_playback(self) -> StoreResult<Playback> {
        let seconds = |s: i32| u32::try_from(s).map_err(|_| corrupt("negative seconds"));
        Ok(Playback {
            user_id: self.user_id,
            device_id: DeviceId::parse(&self.device_id).map_err(|e| corrupt(&e))?,
            playback_id: PlaybackId::parse(&self.playback_id).map_err(|e| corrupt(&e))?,
            track_id: self.track_id,
            state: PlaybackState::from_code(self.state).ok_or_else(|| corrupt("playback state"))?,
            position_seconds: seconds(self.position_seconds)?,
            track_duration_seconds: self.track_duration_seconds.map(seconds).transpose()?,
            source: self.source,
            started_at: self.started_at,
            reported_at: self.reported_at,
        })
    }
}

/// A playback's seconds as stored (at most 86,400, which fits).
pub(super) fn stored_seconds(s: u32) -> i32 {
    i32::try_from(s).unwrap_or(i32::MAX)
}
