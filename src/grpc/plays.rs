//! Recording, listing and deleting plays.
use tokio::sync::mpsc;
use tonic::Status;
use tracing::Instrument;

use super::{
    LibraryApi,
    convert::{
        Checks, authorize, check_range, optional_timestamp, play_to_proto, prefixed,
        timestamp_from_proto,
    },
    drain::DrainingStream,
    limits::too_many_streams,
};
use crate::{
    auth::{Access, Principal},
    domain::{
        ClearScope, HistoryCursor, HistoryOrder, HistoryQuery, MAX_PLAYS_PER_CALL, NewPlay,
        NewPlayInput, PlayId, PlaySource, Recorded, Timestamp, TrackId,
    },
    error::{ApiError, ApiResult},
    pb,
    store::Store,
};

/// Plays fetched per keyset page while streaming: large enough to amortise the round trip, small
/// enough that a page is never a memory concern.
const STREAM_PAGE: u32 = 2000;
/// Pages buffered between the database reader and a slow client; when full, the reader waits,
/// holding no connection. At most this many pages, plus the one being sent, are in memory.
const STREAM_BUFFER: usize = 2;

fn recorded_to_proto(r: Recorded) -> pb::RecordPlayResponse {
    pb::RecordPlayResponse {
        play: Some(play_to_proto(r.play)),
        duplicate: r.duplicate,
    }
}

pub(super) fn input_of(p: &pb::NewPlay) -> NewPlayInput<'_> {
    NewPlayInput {
        track_id: &p.track_id,
        played_for_seconds: p.played_for_seconds,
        completed: p.completed,
        source: &p.source,
        played_at: p
            .played_at
            .as_ref()
            .map(|t| timestamp_from_proto(t).map_err(|_| "is not a valid timestamp")),
        request_id: &p.request_id,
        track_duration_seconds: p.track_duration_seconds,
    }
}

pub(super) async fn record_one<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::RecordPlayRequest,
) -> ApiResult<pb::RecordPlayResponse> {
    let user = authorize(&caller, &r.user_id, Access::Write)?;
    let item = pb::NewPlay {
        track_id: r.track_id,
        played_for_seconds: r.played_for_seconds,
        completed: r.completed,
        source: r.source,
        played_at: r.played_at,
        request_id: r.request_id,
        track_duration_seconds: r.track_duration_seconds,
    };
    let play = NewPlay::parse(input_of(&item), Timestamp::now(), &api.rule)
        .map_err(ApiError::InvalidArgument)?;
    let recorded = api.store.record_plays(user, vec![play]).await?;
    let first = recorded
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("store returned no result for one play".into()))?;
    if !first.duplicate {
        metrics::counter!("library_plays_recorded_total").increment(1);
    }
    Ok(recorded_to_proto(first))
}

pub(super) async fn record_batch<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::RecordPlaysRequest,
) -> ApiResult<pb::RecordPlaysResponse> {
    let user = authorize(&caller, &r.user_id, Access::Write)?;
    if r.plays.is_empty() {
        return Err(ApiError::invalid("plays", "at least one play is required"));
    }
    if r.plays.len() > MAX_PLAYS_PER_CALL {
        return Err(ApiError::invalid(
            "plays",
            format!("at most {MAX_PLAYS_PER_CALL} plays per call"),
        ));
    }
    let now = Timestamp::now();
    let mut results: Vec<pb::RecordPlayResult> = Vec::with_capacity(r.plays.len());
    let mut valid = Vec::new();
    let mut valid_index = Vec::new();
    for (i, item) in r.plays.iter().enumerate() {
        let mut result = pb::RecordPlayResult {
            index: i as u32,
            ..Default::default()
        };
        match NewPlay::parse(input_of(item), now, &api.rule) {
            Ok(play) => {
                valid.push(play);
                valid_index.push(i);
            }
            Err(bad) => {
                result.violations = prefixed(&format!("plays[{i}]."), bad)
                    .into_iter()
                    .map(|v| pb::FieldViolation {
                        field: v.field,
                        description: v.description,
                    })
                    .collect();
            }
        }
        results.push(result);
    }
    let stored = if valid.is_empty() {
        Vec::new()
    } else {
        api.store.record_plays(user, valid).await?
    };
    for (i, recorded) in valid_index.into_iter().zip(stored) {
        results[i].duplicate = recorded.duplicate;
        results[i].play = Some(play_to_proto(recorded.play));
    }
    let count =
        |f: fn(&pb::RecordPlayResult) -> bool| results.iter().filter(|r| f(r)).count() as u32;
    let recorded_count = count(|r| r.play.is_some() && !r.duplicate);
    metrics::counter!("library_plays_recorded_total").increment(u64::from(recorded_count));
    Ok(pb::RecordPlaysResponse {
        recorded_count,
        duplicate_count: count(|r| r.duplicate),
        rejected_count: count(|r| !r.violations.is_empty()),
        results,
    })
}

pub(super) async fn stream_history<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::ListHistoryRequest,
) -> ApiResult<DrainingStream<pb::HistoryEntry>> {
    let user = authorize(&caller, &r.user_id, Access::Read)?;
    let slot = api
        .limits
        .open_stream(&caller.subject)
        .await
        .ok_or_else(too_many_streams)?;
    let order = match pb::HistoryOrder::try_from(r.order) {
        Ok(pb::HistoryOrder::OldestFirst) => HistoryOrder::OldestFirst,
        Ok(pb::HistoryOrder::NewestFirst | pb::HistoryOrder::Unspecified) => {
            HistoryOrder::NewestFirst
        }
        Err(_) => return Err(ApiError::invalid("order", "unknown order")),
    };
    let since = optional_timestamp("since", r.since.as_ref())?;
    let until = optional_timestamp("until", r.until.as_ref())?;
    check_range(since, until)?;
    let mut checks = Checks::default();
    let (track_id, source) = track_and_source(&mut checks, &r.track_id, &r.source);
    checks.finish()?;
    let after = match r.after.as_str() {
        "" => None,
        token => Some(
            HistoryCursor::decode(token, user, order)
                .map_err(|why| ApiError::invalid("after", format!("cursor {why}")))?,
        ),
    };
    let query = HistoryQuery {
        since,
        until,
        track_id,
        source,
        completed_only: r.completed_only,
        counted_only: r.counted_only,
        order,
    };
    let limit = if r.limit == 0 {
        u64::MAX
    } else {
        u64::from(r.limit)
    };

    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    let store = api.store.clone();
    tokio::spawn(
        async move {
            let mut after = after;
            let mut remaining = limit;
            while remaining > 0 {
                let page_limit = STREAM_PAGE.min(u32::try_from(remaining).unwrap_or(u32::MAX));
                let page = match store.history_page(user, &query, after, page_limit).await {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(ApiError::from(e)))).await;
                        return;
                    }
                };
                let fetched = page.len();
                after = page.last().map(|p| p.position());
                let entries = page
                    .into_iter()
                    .map(|play| pb::HistoryEntry {
                        cursor: HistoryCursor::encode(user, order, play.position()),
                        play: Some(play_to_proto(play)),
                    })
                    .collect();
                if tx.send(Ok(entries)).await.is_err() {
                    return; // the client went away
                }
                remaining -= fetched as u64;
                if fetched < page_limit as usize {
                    return;
                }
            }
        }
        // The producer's logs belong to the call that started it.
        .in_current_span(),
    );
    Ok(DrainingStream::new(rx, api.drain.clone(), slot))
}

/// The `track_id` and `source` filters of a listing or a clean-up: empty means any.
fn track_and_source(
    checks: &mut Checks,
    track_id: &str,
    source: &str,
) -> (Option<TrackId>, Option<String>) {
    let track_id = match track_id {
        "" => None,
        id => checks.field("track_id", TrackId::parse(id)),
    };
    let source = match source {
        "" => None,
        s => checks
            .field("source", PlaySource::parse(s))
            .map(PlaySource::into_string),
    };
    (track_id, source)
}

pub(super) async fn delete_one<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::DeletePlayRequest,
) -> ApiResult<pb::DeletePlayResponse> {
    let user = authorize(&caller, &r.user_id, Access::Write)?;
    let id = PlayId::parse(&r.play_id).map_err(|why| ApiError::invalid("play_id", why))?;
    if api.store.delete_play(user, id).await? {
        Ok(pb::DeletePlayResponse {})
    } else {
        Err(ApiError::NotFound(format!("play {id} not found")))
    }
}

pub(super) async fn clear<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::ClearHistoryRequest,
) -> ApiResult<pb::ClearHistoryResponse> {
    let user = authorize(&caller, &r.user_id, Access::Write)?;
    let mut checks = Checks::default();
    let since = checks.timestamp("since", r.since.as_ref());
    let before = checks.timestamp("before", r.before.as_ref());
    if let (Some(since), Some(before)) = (since, before)
        && since > before
    {
        checks.refuse("before", "must not be before since");
    }
    let (track_id, source) = track_and_source(&mut checks, &r.track_id, &r.source);
    checks.finish()?;
    let scope = ClearScope {
        since,
        before,
        track_id,
        source,
    };
    let deleted_count = api.store.clear_history(user, &scope, r.dry_run).await?;
    Ok(pb::ClearHistoryResponse {
        deleted_count,
        dry_run: r.dry_run,
    })
}
