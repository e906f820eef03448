//! ImportHistory: a client stream of batches, each validated and committed as it arrives, so an
//! import of any size runs in the memory of one batch.
use std::collections::HashMap;

use tonic::Streaming;

use super::{
    LibraryApi, convert::authorize, drain::shutting_down, limits::too_many_streams, plays::input_of,
};
use crate::{
    auth::{Access, Principal},
    domain::{MAX_PLAYS_PER_CALL, NewPlay, RequestId, Timestamp, UserId},
    error::{ApiError, ApiResult},
    pb,
    store::Store,
};

/// Positions of refused plays reported per reason.
const MAX_POSITIONS: usize = 10;

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
        .ok_or_else(too_many_streams)?;
    let mut listener: Option<(String, UserId)> = None;
    let mut summary = pb::ImportHistorySummary::default();
    let mut rejections = Rejections::default();
    loop {
        // Each batch is committed as it comes, so ending here at shutdown loses nothing: a
        // re-run stores only what is missing.
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
        let recorded = api.store.record_plays(user, valid).await?;
        let fresh = recorded.iter().filter(|r| !r.duplicate).count() as u64;
        metrics::counter!("library_plays_recorded_total").increment(fresh);
        for r in recorded {
            if r.duplicate {
                summary.duplicate_count += 1;
            } else {
                summary.imported_count += 1;
            }
        }
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
