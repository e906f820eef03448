//! ExportLibrary (the listener's own, or any with `library:any_user`) and the admin service's
//! ExportUserData (a subject-access request): the same stream of [`crate::export`] parts, read
//! page by page by a spawned producer into a bounded channel, as ListHistory is. A slow client
//! holds at most the buffered pages in memory and no database connection.
use std::sync::Arc;

use tokio::sync::mpsc;
use tonic::Status;
use tracing::Instrument;

use super::{
    AdminApi, LibraryApi,
    convert::{authorize, liked_to_proto, play_to_proto, timestamp_to_proto},
    drain::{Drain, DrainingStream},
    handler::Admin,
    limits::{Limits, too_many_streams},
};
use crate::{
    auth::{Access, Principal},
    domain::{Timestamp, UserId},
    error::{ApiError, ApiResult},
    export::{Export, FORMAT, Part, VERSION},
    pb,
    store::Store,
};

/// Chunks buffered between the database reader and a slow client; when full, the reader waits.
/// With the one being sent, at most three pages are in memory per export.
const BUFFER: usize = 2;

pub(super) async fn export_library<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::ExportLibraryRequest,
) -> ApiResult<DrainingStream<pb::ExportChunk>> {
    let user = authorize(&caller, &r.user_id, Access::Read)?;
    stream(
        api.store.clone(),
        user,
        &caller,
        &api.limits,
        api.drain.clone(),
    )
    .await
}

pub(super) async fn export_user_data<S: Store>(
    api: &AdminApi<S>,
    Admin(caller): Admin,
    r: pb::ExportUserDataRequest,
) -> ApiResult<DrainingStream<pb::ExportChunk>> {
    let user = UserId::parse(&r.user_id).map_err(|why| ApiError::invalid("user_id", why))?;
    let exported = stream(
        api.store.clone(),
        user,
        &caller,
        &api.limits,
        api.drain.clone(),
    )
    .await?;
    tracing::info!(caller = %caller.subject, user = %user, "exporting a user's data");
    Ok(exported)
}

async fn stream<S: Store>(
    store: S,
    user: UserId,
    caller: &Principal,
    limits: &Arc<Limits>,
    drain: Drain,
) -> ApiResult<DrainingStream<pb::ExportChunk>> {
    let slot = limits
        .open_stream(&caller.subject)
        .await
        .ok_or_else(too_many_streams)?;
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(
        async move {
            let mut export = Export::new(store, user, Timestamp::now());
            loop {
                let chunk = match export.next().await {
                    Ok(Some(part)) => Ok(vec![chunk_of(part)]),
                    Ok(None) => return,
                    Err(e) => Err(Status::from(ApiError::from(e))),
                };
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    return; // the client went away, or the export ended in error
                }
            }
        }
        // The producer's logs belong to the call that started it.
        .in_current_span(),
    );
    Ok(DrainingStream::new(rx, drain, slot))
}

fn chunk_of(part: Part) -> pb::ExportChunk {
    use pb::export_chunk::Part as Chunk;
    let part = match part {
        Part::Header { user, exported_at } => Chunk::Header(pb::ExportHeader {
            format: FORMAT.into(),
            version: VERSION,
            user_id: user.to_string(),
            exported_at: Some(timestamp_to_proto(exported_at)),
        }),
        Part::Plays(plays) => Chunk::Plays(pb::ExportedPlays {
            plays: plays.into_iter().map(play_to_proto).collect(),
        }),
        Part::Likes(likes) => Chunk::Likes(pb::ExportedLikes {
            likes: likes.into_iter().map(liked_to_proto).collect(),
        }),
        Part::Trailer { plays, likes } => Chunk::Trailer(pb::ExportTrailer {
            play_count: plays,
            like_count: likes,
        }),
    };
    pb::ExportChunk { part: Some(part) }
}
