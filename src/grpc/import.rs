//! ImportHistory: a client stream of batches, each validated and committed as it arrives, so an
//! import of any size runs in the memory of a few batches. Up to [`BATCHES_IN_FLIGHT`] batches
//! are written at once while the next ones are read: the group commit puts them in one group,
//! or in groups committing side by side, instead of one round trip and one commit after another.
use std::collections::HashMap;

use tokio::task::JoinSet;
use tonic::Streaming;

use super::{
    LibraryApi, convert::authorize, drain::shutting_down, limits::too_many_streams, plays::input_of,
};
use crate::{
    auth::{Access, Principal},
    domain::{MAX_PLAYS_PER_CALL, NewPlay, Recorded, RequestId, Timestamp, UserId},
    error::{ApiError, ApiResult},
    pb,
    store::{Store, StoreResult},
};

/// Positions of refused plays reported per reason.
const MAX_POSITIONS: usize = 10;

/// Batches of one import being written at once.
const BATCHES_IN_FLIGHT: usize = 8;

#[derive(Default)]
struct Rejections(HashMap<String, (u64, Vec<u64>)>);

impl Rejections {
    fn add(&mut self, reason: String, position: u64) {
        let (count, positions) = self.0.entry(reason).or_default();
        *count += 1;
        if positions.len() < MAX_POSITIONS {
            positions.push(position);
        }
    }

    fn into_proto(self) -> Vec<pb::ImportRejection> {
        let mut list: Vec<pb::ImportRejection> = self
            .0
            .into_iter()
            .map(|(reason, (count, first_positions))| pb::ImportRejection {
                reason,
                count,
                first_positions,
            })
            .collect();
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        list
    }
}

/// The key that makes a re-run idempotent when the source system gave the play no id: the same
/// track started at the same microsecond is the same play.
fn natural_key(play: &NewPlay) -> Option<RequestId> {
    let key = format!("import:{}@{}", play.track_id, play.played_at.as_micros());
    RequestId::parse_optional(&key).ok().flatten()
}

pub(super) async fn import<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    mut stream: Streaming<pb::ImportHistoryRequest>,
) -> ApiResult<pb::ImportHistorySummary> {
    let _slot = api
        .limits
        .open_stream(&caller.subject)
        .await
        .ok_or_else(too_many_streams)?;
    let mut listener: Option<(String, UserId)> = None;
    let mut summary = pb::ImportHistorySummary::default();
    let mut rejections = Rejections::default();
    // Dropped with the call (an error, the client gone, shutdown): the batches still queued
    // are then left out of their groups, and one already committing may still be stored.
    let mut writing = JoinSet::new();
    loop {
        // Every stored batch is committed, so ending here at shutdown loses nothing: a re-run
        // (every play has a request_id, its own or a natural key) stores only what is missing.
        let next = tokio::select! {
            next = stream.message() => next?,
            () = api.drain.clone().ended() => return Err(shutting_down().into()),
        };
        let Some(message) = next else { break };
        let user = match &listener {
            None => {
                let user = authorize(&caller, &message.user_id, Access::Write)?;
                listener = Some((message.user_id.clone(), user));
                user
            }
            Some((first, user)) => {
                if !message.user_id.is_empty() && message.user_id != *first {
                    return Err(ApiError::invalid(
                        "user_id",
                        "must be the same on every message of the stream",
                    ));
                }
                *user
            }
        };
        if message.plays.is_empty() || message.plays.len() > MAX_PLAYS_PER_CALL {
            return Err(ApiError::invalid(
                "plays",
                format!("each message carries 1 to {MAX_PLAYS_PER_CALL} plays"),
            ));
        }
        let now = Timestamp::now();
        let mut valid = Vec::with_capacity(message.plays.len());
        for item in &message.plays {
            let position = summary.received_count;
            summary.received_count += 1;
            if item.played_at.is_none() {
                rejections.add("played_at: is required for an import".into(), position);
                continue;
            }
            match NewPlay::parse(input_of(item), now, &api.rule) {
                Ok(mut play) => {
                    if play.request_id.is_none() {
                        play.request_id = natural_key(&play);
                    }
                    valid.push(play);
                }
                Err(violations) => {
                    for v in violations {
                        rejections.add(format!("{}: {}", v.field, v.description), position);
                    }
                }
            }
        }
        if valid.is_empty() {
            continue;
        }
        if writing.len() >= BATCHES_IN_FLIGHT
            && let Some(done) = writing.join_next().await
        {
            tally(done, &mut summary)?;
        }
        let store = api.store.clone();
        writing.spawn(async move { store.import_plays(user, valid).await });
    }
    while let Some(done) = writing.join_next().await {
        tally(done, &mut summary)?;
    }
    if listener.is_none() {
        // An empty import still needs a caller allowed to write.
        authorize(&caller, "", Access::Write)?;
    }
    summary.rejected_count =
        summary.received_count - summary.imported_count - summary.duplicate_count;
    summary.rejections = rejections.into_proto();
    Ok(summary)
}

/// Counts a written batch into the summary.
fn tally(
    done: Result<StoreResult<Vec<Recorded>>, tokio::task::JoinError>,
    summary: &mut pb::ImportHistorySummary,
) -> ApiResult<()> {
    let recorded =
        done.map_err(|e| ApiError::Internal(format!("an import batch failed: {e}")))??;
    let fresh = recorded.iter().filter(|r| !r.duplicate).count() as u64;
    metrics::counter!("library_plays_recorded_total").increment(fresh);
    summary.imported_count += fresh;
    summary.duplicate_count += recorded.len() as u64 - fresh;
    Ok(())
}
