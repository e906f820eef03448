//! Small builders and readers shared by the API tests.
use library_service::pb;
use tokio_stream::StreamExt;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

use crate::support::app::TestApp;

pub fn ts(rfc3339: &str) -> prost_types::Timestamp {
    let t: jiff::Timestamp = rfc3339.parse().expect("valid RFC 3339 timestamp");
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

pub fn track() -> String {
    Uuid::new_v4().to_string()
}

/// A valid play of `track` at `at`.
pub fn play(track: &str, seconds: u32, at: &str) -> pb::NewPlay {
    pb::NewPlay {
        track_id: track.to_string(),
        played_for_seconds: seconds,
        completed: false,
        source: String::new(),
        played_at: Some(ts(at)),
        request_id: String::new(),
        track_duration_seconds: None,
    }
}

/// Records plays for the default listener and asserts that all were stored.
pub async fn record(app: &TestApp, plays: Vec<pb::NewPlay>) -> Vec<pb::Play> {
    let mut client = app.client.clone();
    let response = client
        .record_plays(app.req(pb::RecordPlaysRequest {
            user_id: String::new(),
            plays,
        }))
        .await
        .expect("plays recorded")
        .into_inner();
    assert_eq!(response.rejected_count, 0, "{:?}", response.results);
    response
        .results
        .into_iter()
        .map(|r| r.play.expect("stored play"))
        .collect()
}

/// The whole stream of a history listing.
pub async fn history(
    app: &TestApp,
    request: pb::ListHistoryRequest,
) -> Result<Vec<pb::HistoryEntry>, Status> {
    let mut client = app.client.clone();
    let mut stream = client.list_history(app.req(request)).await?.into_inner();
    let mut entries = Vec::new();
    while let Some(entry) = stream.next().await {
        entries.push(entry?);
    }
    Ok(entries)
}

pub async fn history_ids(app: &TestApp, request: pb::ListHistoryRequest) -> Vec<String> {
    history(app, request)
        .await
        .expect("history streams")
        .into_iter()
        .map(|e| e.play.expect("play").id)
        .collect()
}

/// Asserts INVALID_ARGUMENT with a BadRequest naming exactly these fields.
pub fn assert_bad_fields(status: &Status, fields: &[&str]) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let bad = status
        .get_details_bad_request()
        .expect("a google.rpc.BadRequest detail");
    let mut named: Vec<&str> = bad
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    named.sort_unstable();
    let mut expected = fields.to_vec();
    expected.sort_unstable();
    assert_eq!(named, expected, "{status:?}");
}
