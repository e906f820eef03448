//! The live library: playback reports, now playing, and the stream of a listener's changes.
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::Status;
use tracing::Instrument;

use super::{
    LibraryApi,
    convert::{Checks, authorize, liked_to_proto, play_to_proto, timestamp_to_proto},
    drain::DrainingStream,
    limits::too_many_streams,
};
use crate::{
    auth::{Access, Principal},
    domain::{
        Change, EventCursor, EventPosition, LibraryEvent, Playback, PlaybackChange, PlaybackReport,
        PlaybackReportInput, PlaybackState, Timestamp, UserId,
    },
    error::{ApiError, ApiResult},
    pb,
    store::{EventsFrom, Store},
};

/// At most this many listeners in one GetNowPlaying.
const MAX_NOW_PLAYING_USERS: usize = 100;
/// A heartbeat after this long without a message: under the idle timeouts of common proxies
/// and browsers (30 s and up).
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Event rows read at once while catching up.
const CATCH_UP_ROWS: u32 = 200;
/// Pages of events buffered for a slow client.
const WATCH_BUFFER: usize = 16;
/// A client that has not taken a page for this long is ended (resumably): its stream must not
/// hold the server's memory or a slot for ever.
const SLOW_CLIENT: Duration = Duration::from_secs(30);

fn state_to_proto(s: PlaybackState) -> i32 {
    match s {
        PlaybackState::Playing => pb::PlaybackState::Playing as i32,
        PlaybackState::Paused => pb::PlaybackState::Paused as i32,
        PlaybackState::Stopped => pb::PlaybackState::Stopped as i32,
    }
}

fn state_from_proto(n: i32) -> Option<PlaybackState> {
    match pb::PlaybackState::try_from(n) {
        Ok(pb::PlaybackState::Playing) => Some(PlaybackState::Playing),
        Ok(pb::PlaybackState::Paused) => Some(PlaybackState::Paused),
        Ok(pb::PlaybackState::Stopped) => Some(PlaybackState::Stopped),
        Ok(pb::PlaybackState::Unspecified) | Err(_) => None,
    }
}

fn playback_to_proto(p: Playback, now: Timestamp) -> pb::NowPlaying {
    pb::NowPlaying {
        user_id: p.user_id.to_string(),
        device_id: p.device_id.as_str().to_string(),
        playback_id: p.playback_id.as_str().to_string(),
        track_id: p.track_id.to_string(),
        state: state_to_proto(p.state),
        position_seconds: p.position_at(now),
        track_duration_seconds: p.track_duration_seconds.unwrap_or(0),
        started_at: Some(timestamp_to_proto(p.started_at)),
        reported_at: Some(timestamp_to_proto(p.reported_at)),
        source: p.source,
    }
}

pub(super) async fn report_playback<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::ReportPlaybackRequest,
) -> ApiResult<pb::ReportPlaybackResponse> {
    let user = authorize(&caller, &r.user_id, Access::Write)?;
    let report = PlaybackReport::parse(PlaybackReportInput {
        device_id: &r.device_id,
        playback_id: &r.playback_id,
        track_id: &r.track_id,
        state: state_from_proto(r.state),
        position_seconds: r.position_seconds,
        track_duration_seconds: r.track_duration_seconds,
        source: &r.source,
    })
    .map_err(ApiError::InvalidArgument)?;
    let device = report.device_id.clone();
    let now = Timestamp::now();
    let current = api.store.playback(user, &device).await?;
    let change = PlaybackChange::of(user, report, current.as_ref(), now, &api.rule);
    // The finished plays are stored before the device's playback moves on: if that fails, a
    // retried report still finds the old playback, and the plays' keys store them once.
    let recorded = if change.finished.is_empty() {
        Vec::new()
    } else {
        api.store.record_plays(user, change.finished).await?
    };
    api.store
        .set_playback(user, &device, change.next.as_ref(), change.news)
        .await?;
    // The report's own playback is the last one recorded (STOPPED); otherwise it is the one
    // the new playback ended.
    let last = recorded.into_iter().last();
    if last.as_ref().is_some_and(|r| !r.duplicate) {
        metrics::counter!("library_plays_recorded_total").increment(1);
    }
    Ok(pb::ReportPlaybackResponse {
        duplicate: last.as_ref().is_some_and(|r| r.duplicate),
        recorded_play: last.map(|r| play_to_proto(r.play)),
    })
}

pub(super) async fn now_playing<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::GetNowPlayingRequest,
) -> ApiResult<pb::GetNowPlayingResponse> {
    let users: Vec<UserId> = if r.user_ids.is_empty() {
        vec![authorize(&caller, &r.user_id, Access::Read)?]
    } else {
        let mut checks = Checks::default();
        if r.user_ids.len() > MAX_NOW_PLAYING_USERS {
            checks.refuse(
                "user_ids",
                format!("at most {MAX_NOW_PLAYING_USERS} listeners per call"),
            );
        }
        let parsed: Vec<UserId> = r
            .user_ids
            .iter()
            .take(MAX_NOW_PLAYING_USERS)
            .enumerate()
            .filter_map(|(i, id)| checks.field(&format!("user_ids[{i}]"), UserId::parse(id)))
            .collect();
        checks.finish()?;
        let mut users = Vec::with_capacity(parsed.len());
        for user in parsed {
            users.push(caller.authorize(Some(user), Access::Read)?);
        }
        users.sort_unstable();
        users.dedup();
        users
    };
    let now = Timestamp::now();
    let playbacks = api.store.now_playing(&users, now).await?;
    Ok(pb::GetNowPlayingResponse {
        playbacks: playbacks
            .into_iter()
            .map(|p| playback_to_proto(p, now))
            .collect(),
    })
}

fn event_to_proto(user: UserId, e: LibraryEvent) -> pb::LibraryEvent {
    use pb::library_event::Event;
    let now = Timestamp::now();
    let event = match e.change {
        Change::PlayRecorded(play) => Event::PlayRecorded(play_to_proto(play)),
        Change::PlayDeleted(id) => Event::PlayDeleted(pb::PlayDeleted {
            play_id: id.to_string(),
        }),
        Change::HistoryCleared { scope, deleted } => Event::HistoryCleared(pb::HistoryCleared {
            before: scope.before.map(timestamp_to_proto),
            since: scope.since.map(timestamp_to_proto),
            track_id: scope.track_id.map(|t| t.to_string()).unwrap_or_default(),
            source: scope.source.unwrap_or_default(),
            deleted_count: deleted,
        }),
        Change::HistoryImported { imported } => Event::HistoryImported(pb::HistoryImported {
            imported_count: imported,
        }),
        Change::TrackLiked(like) => Event::TrackLiked(liked_to_proto(like)),
        Change::TrackUnliked(track) => Event::TrackUnliked(pb::TrackUnliked {
            track_id: track.to_string(),
        }),
        Change::NowPlaying {
            device_id,
            playback,
        } => Event::NowPlayingChanged(pb::NowPlayingChanged {
            device_id: device_id.as_str().to_string(),
            playback: playback.map(|p| playback_to_proto(p, now)),
        }),
    };
    pb::LibraryEvent {
        cursor: EventCursor::encode(user, e.next),
        occurred_at: Some(timestamp_to_proto(e.at)),
        event: Some(event),
    }
}

/// A message that is not a change (`watching`, `heartbeat`), at `position`.
fn marker(
    user: UserId,
    position: EventPosition,
    event: pb::library_event::Event,
) -> pb::LibraryEvent {
    pb::LibraryEvent {
        cursor: EventCursor::encode(user, position),
        occurred_at: Some(timestamp_to_proto(Timestamp::now())),
        event: Some(event),
    }
}

pub(super) async fn watch<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::WatchLibraryRequest,
) -> ApiResult<DrainingStream<pb::LibraryEvent>> {
    let user = authorize(&caller, &r.user_id, Access::Read)?;
    let after = match r.after.as_str() {
        "" => None,
        token => Some(
            EventCursor::decode(token, user)
                .map_err(|why| ApiError::invalid("after", format!("cursor {why}")))?,
        ),
    };
    let slot = api
        .limits
        .open_stream(&caller.subject)
        .await
        .ok_or_else(too_many_streams)?;
    // Subscribed before the log is read, so that nothing committed after the read goes
    // unnoticed.
    let mut wakes = api.store.event_feed().subscribe(user);
    let mut position = match after {
        Some(p) => p,
        None => api.store.event_head(user).await?,
    };
    // A resumed stream checks its cursor (and sends what it missed) before it says it is live,
    // so that an expired cursor is the call's status, not an error after a first message.
    let missed = match api.store.events_from(user, position, CATCH_UP_ROWS).await? {
        EventsFrom::Events(events) => events,
        EventsFrom::Expired => return Err(ApiError::EventsExpired),
    };
    let (tx, rx) = mpsc::channel(WATCH_BUFFER);
    let store = api.store.clone();
    let watching = marker(
        user,
        position,
        pb::library_event::Event::Watching(pb::Watching {}),
    );
    tokio::spawn(
        async move {
            let send = |page: Result<Vec<pb::LibraryEvent>, Status>| {
                let tx = tx.clone();
                async move {
                    match tokio::time::timeout(SLOW_CLIENT, tx.send(page)).await {
                        Ok(Ok(())) => true,
                        // The client went away.
                        Ok(Err(_)) => false,
                        Err(_) => {
                            tracing::info!("watcher ended: the client stopped reading");
                            false
                        }
                    }
                }
            };
            if !send(Ok(vec![watching])).await {
                return;
            }
            let mut pending = missed;
            loop {
                // Deliver what was read; or, with nothing to deliver, wait for a change. On a
                // quiet stream the log is read anyway (a wake-up from another replica may have
                // been lost), and a heartbeat goes out if there is still nothing.
                let woken = if pending.is_empty() {
                    tokio::time::timeout(HEARTBEAT, wakes.changed())
                        .await
                        .is_ok()
                } else {
                    let last = pending.last().map(|e| e.next);
                    let page = pending.drain(..).map(|e| event_to_proto(user, e)).collect();
                    if !send(Ok(page)).await {
                        return;
                    }
                    if let Some(next) = last {
                        position = next;
                    }
                    true
                };
                pending = match store.events_from(user, position, CATCH_UP_ROWS).await {
                    Ok(EventsFrom::Events(events)) => events,
                    Ok(EventsFrom::Expired) => {
                        let _ = send(Err(Status::from(ApiError::EventsExpired))).await;
                        return;
                    }
                    Err(e) => {
                        let _ = send(Err(Status::from(ApiError::from(e)))).await;
                        return;
                    }
                };
                if pending.is_empty() && !woken {
                    let beat = marker(
                        user,
                        position,
                        pb::library_event::Event::Heartbeat(pb::Heartbeat {}),
                    );
                    if !send(Ok(vec![beat])).await {
                        return;
                    }
                }
            }
        }
        // The producer's logs belong to the call that started it.
        .in_current_span(),
    );
    Ok(DrainingStream::new(rx, api.drain.clone(), slot).closing_with(Status::unavailable(
        "the watch ended (the client read too slowly); resume with `after` set to the last cursor",
    )))
}
