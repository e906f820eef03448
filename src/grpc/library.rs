//! `LibraryService`: each RPC hands its request to [`handle`] with its handler in `plays`,
//! `import`, `likes` or `stats`, which authorizes the caller for the library it names.
use std::sync::Arc;

use tonic::{Request, Streaming};

use super::{
    drain::{Drain, DrainingStream},
    export,
    handler::{Reply, handle},
    import, likes,
    limits::Limits,
    live, plays, stats, tracks,
};
use crate::{domain::CountingRule, pb, pb::library_service_server::LibraryService, store::Store};

#[derive(Clone)]
pub struct LibraryApi<S> {
    pub(super) store: S,
    pub(super) drain: Drain,
    pub(super) limits: Arc<Limits>,
    /// Decides whether each recorded play counts.
    pub(super) rule: CountingRule,
}

impl<S: Store> LibraryApi<S> {
    /// `drain` ends open streams when the server shuts down; `limits` caps how many are open.
    pub fn new(store: S, drain: Drain, limits: Arc<Limits>, rule: CountingRule) -> Self {
        Self {
            store,
            drain,
            limits,
            rule,
        }
    }
}

#[tonic::async_trait]
impl<S: Store> LibraryService for LibraryApi<S> {
    async fn record_play(
        &self,
        request: Request<pb::RecordPlayRequest>,
    ) -> Reply<pb::RecordPlayResponse> {
        handle(self, request, plays::record_one).await
    }

    async fn record_plays(
        &self,
        request: Request<pb::RecordPlaysRequest>,
    ) -> Reply<pb::RecordPlaysResponse> {
        handle(self, request, plays::record_batch).await
    }

    async fn import_history(
        &self,
        request: Request<Streaming<pb::ImportHistoryRequest>>,
    ) -> Reply<pb::ImportHistorySummary> {
        handle(self, request, import::import).await
    }

    type ListHistoryStream = DrainingStream<pb::HistoryEntry>;

    async fn list_history(
        &self,
        request: Request<pb::ListHistoryRequest>,
    ) -> Reply<Self::ListHistoryStream> {
        handle(self, request, plays::stream_history).await
    }

    async fn delete_play(
        &self,
        request: Request<pb::DeletePlayRequest>,
    ) -> Reply<pb::DeletePlayResponse> {
        handle(self, request, plays::delete_one).await
    }

    async fn clear_history(
        &self,
        request: Request<pb::ClearHistoryRequest>,
    ) -> Reply<pb::ClearHistoryResponse> {
        handle(self, request, plays::clear).await
    }

    async fn like_track(
        &self,
        request: Request<pb::LikeTrackRequest>,
    ) -> Reply<pb::LikeTrackResponse> {
        handle(self, request, likes::like).await
    }

    async fn unlike_track(
        &self,
        request: Request<pb::UnlikeTrackRequest>,
    ) -> Reply<pb::UnlikeTrackResponse> {
        handle(self, request, likes::unlike).await
    }

    async fn update_liked_track(
        &self,
        request: Request<pb::UpdateLikedTrackRequest>,
    ) -> Reply<pb::LikedTrack> {
        handle(self, request, likes::change_notes).await
    }

    async fn list_liked_tracks(
        &self,
        request: Request<pb::ListLikedTracksRequest>,
    ) -> Reply<pb::ListLikedTracksResponse> {
        handle(self, request, likes::page_of_likes).await
    }

    async fn check_liked_tracks(
        &self,
        request: Request<pb::CheckLikedTracksRequest>,
    ) -> Reply<pb::CheckLikedTracksResponse> {
        handle(self, request, likes::hearts).await
    }

    async fn get_library_stats(
        &self,
        request: Request<pb::GetLibraryStatsRequest>,
    ) -> Reply<pb::LibraryStats> {
        handle(self, request, stats::library_stats).await
    }

    async fn get_track_play_counts(
        &self,
        request: Request<pb::GetTrackPlayCountsRequest>,
    ) -> Reply<pb::GetTrackPlayCountsResponse> {
        handle(self, request, tracks::play_counts).await
    }

    async fn get_top_tracks(
        &self,
        request: Request<pb::GetTopTracksRequest>,
    ) -> Reply<pb::GetTopTracksResponse> {
        handle(self, request, tracks::top_tracks).await
    }

    async fn report_playback(
        &self,
        request: Request<pb::ReportPlaybackRequest>,
    ) -> Reply<pb::ReportPlaybackResponse> {
        handle(self, request, live::report_playback).await
    }

    async fn get_now_playing(
        &self,
        request: Request<pb::GetNowPlayingRequest>,
    ) -> Reply<pb::GetNowPlayingResponse> {
        handle(self, request, live::now_playing).await
    }

    type WatchLibraryStream = DrainingStream<pb::LibraryEvent>;

    async fn watch_library(
        &self,
        request: Request<pb::WatchLibraryRequest>,
    ) -> Reply<Self::WatchLibraryStream> {
        handle(self, request, live::watch).await
    }

    type ExportLibraryStream = DrainingStream<pb::ExportChunk>;

    async fn export_library(
        &self,
        request: Request<pb::ExportLibraryRequest>,
    ) -> Reply<Self::ExportLibraryStream> {
        handle(self, request, export::export_library).await
    }
}
