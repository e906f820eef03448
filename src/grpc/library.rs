//! `LibraryService`: each RPC authorizes the caller, then delegates to a handler in `plays`,
//! `likes` or `stats`, whose `ApiError` becomes the client's `Status` here, in one place.
use tonic::{Request, Response, Status, Streaming};

use std::sync::Arc;

use super::{
    drain::{Drain, DrainingStream},
    interceptor::principal,
    limits::Limits,
};
use crate::{pb, pb::library_service_server::LibraryService, store::Store};

#[derive(Clone)]
pub struct LibraryApi<S> {
    pub(super) store: S,
    pub(super) drain: Drain,
    pub(super) limits: Arc<Limits>,
}

impl<S: Store> LibraryApi<S> {
    /// `drain` ends open streams when the server shuts down; `limits` caps how many are open.
    pub fn new(store: S, drain: Drain, limits: Arc<Limits>) -> Self {
        Self {
            store,
            drain,
            limits,
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl<S: Store> LibraryService for LibraryApi<S> {
    async fn record_play(
        &self,
        request: Request<pb::RecordPlayRequest>,
    ) -> Reply<pb::RecordPlayResponse> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.record_play(&caller, request.into_inner()).await?,
        ))
    }

    async fn record_plays(
        &self,
        request: Request<pb::RecordPlaysRequest>,
    ) -> Reply<pb::RecordPlaysResponse> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.record_plays(&caller, request.into_inner()).await?,
        ))
    }

    async fn import_history(
        &self,
        request: Request<Streaming<pb::ImportHistoryRequest>>,
    ) -> Reply<pb::ImportHistorySummary> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.import_history(&caller, request.into_inner()).await?,
        ))
    }

    type ListHistoryStream = DrainingStream<pb::HistoryEntry>;

    async fn list_history(
        &self,
        request: Request<pb::ListHistoryRequest>,
    ) -> Reply<Self::ListHistoryStream> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.list_history(&caller, request.into_inner())?,
        ))
    }

    async fn delete_play(
        &self,
        request: Request<pb::DeletePlayRequest>,
    ) -> Reply<pb::DeletePlayResponse> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.delete_play(&caller, request.into_inner()).await?,
        ))
    }

    async fn clear_history(
        &self,
        request: Request<pb::ClearHistoryRequest>,
    ) -> Reply<pb::ClearHistoryResponse> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.clear_history(&caller, request.into_inner()).await?,
        ))
    }

    async fn like_track(
        &self,
        request: Request<pb::LikeTrackRequest>,
    ) -> Reply<pb::LikeTrackResponse> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.like_track(&caller, request.into_inner()).await?,
        ))
    }

    async fn unlike_track(
        &self,
        request: Request<pb::UnlikeTrackRequest>,
    ) -> Reply<pb::UnlikeTrackResponse> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.unlike_track(&caller, request.into_inner()).await?,
        ))
    }

    async fn update_liked_track(
        &self,
        request: Request<pb::UpdateLikedTrackRequest>,
    ) -> Reply<pb::LikedTrack> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.update_liked_track(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn list_liked_tracks(
        &self,
        request: Request<pb::ListLikedTracksRequest>,
    ) -> Reply<pb::ListLikedTracksResponse> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.list_liked_tracks(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn check_liked_tracks(
        &self,
        request: Request<pb::CheckLikedTracksRequest>,
    ) -> Reply<pb::CheckLikedTracksResponse> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.check_liked_tracks(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn get_library_stats(
        &self,
        request: Request<pb::GetLibraryStatsRequest>,
    ) -> Reply<pb::LibraryStats> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.library_stats(&caller, request.into_inner()).await?,
        ))
    }
}
