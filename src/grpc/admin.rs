//! `LibraryAdminService`: platform-wide figures, retention, erasure and export. Every handler
//! takes an [`Admin`] caller, so every call needs the `library:admin` scope; erasures, purges
//! and exports are logged with the caller, for the audit trail.
use std::sync::Arc;

use tonic::Request;

use super::{
    convert::{check_range, optional_timestamp},
    drain::{Drain, DrainingStream},
    export,
    handler::{Admin, Reply, handle},
    limits::Limits,
};
use crate::{
    domain::{
        DEFAULT_DAILY_DAYS, MAX_DAILY_DAYS, TimeRange, Timestamp, TrackId, UserId, admin_limit,
        fold_series, last_days, parse_time_zone, zone_name,
    },
    error::{ApiError, ApiResult},
    pb::{self, library_admin_service_server::LibraryAdminService},
    store::Store,
};

#[derive(Clone)]
pub struct AdminApi<S> {
    pub(super) store: S,
    /// Ends an open export when the server shuts down.
    pub(super) drain: Drain,
    /// Caps how many streams (exports) are open.
    pub(super) limits: Arc<Limits>,
}

impl<S: Store> AdminApi<S> {
    pub fn new(store: S, drain: Drain, limits: Arc<Limits>) -> Self {
        Self {
            store,
            drain,
            limits,
        }
    }
}

#[tonic::async_trait]
impl<S: Store> LibraryAdminService for AdminApi<S> {
    async fn get_top_listeners(
        &self,
        request: Request<pb::GetTopListenersRequest>,
    ) -> Reply<pb::GetTopListenersResponse> {
        handle(self, request, top_listeners).await
    }

    async fn get_most_liked_tracks(
        &self,
        request: Request<pb::GetMostLikedTracksRequest>,
    ) -> Reply<pb::GetMostLikedTracksResponse> {
        handle(self, request, most_liked).await
    }

    async fn get_history_growth(
        &self,
        request: Request<pb::GetHistoryGrowthRequest>,
    ) -> Reply<pb::GetHistoryGrowthResponse> {
        handle(self, request, history_growth).await
    }

    async fn purge_history(
        &self,
        request: Request<pb::PurgeHistoryRequest>,
    ) -> Reply<pb::PurgeHistoryResponse> {
        handle(self, request, purge).await
    }

    async fn delete_user_data(
        &self,
        request: Request<pb::DeleteUserDataRequest>,
    ) -> Reply<pb::DeleteUserDataResponse> {
        handle(self, request, erase_user).await
    }

    async fn delete_track_data(
        &self,
        request: Request<pb::DeleteTrackDataRequest>,
    ) -> Reply<pb::DeleteTrackDataResponse> {
        handle(self, request, erase_track).await
    }

    type ExportUserDataStream = DrainingStream<pb::ExportChunk>;

    async fn export_user_data(
        &self,
        request: Request<pb::ExportUserDataRequest>,
    ) -> Reply<Self::ExportUserDataStream> {
        handle(self, request, export::export_user_data).await
    }
}

fn limit(limit: u32) -> ApiResult<u32> {
    admin_limit(limit).map_err(|why| ApiError::invalid("limit", why))
}

async fn top_listeners<S: Store>(
    api: &AdminApi<S>,
    _: Admin,
    r: pb::GetTopListenersRequest,
) -> ApiResult<pb::GetTopListenersResponse> {
    let since = optional_timestamp("since", r.since.as_ref())?;
    let until = optional_timestamp("until", r.until.as_ref())?;
    check_range(since, until)?;
    let limit = limit(r.limit)?;
    let listeners = api
        .store
        .top_listeners(TimeRange { since, until }, limit)
        .await?;
    Ok(pb::GetTopListenersResponse {
        listeners: listeners
            .into_iter()
            .map(|l| pb::ListenerStats {
                user_id: l.user_id.to_string(),
                plays: l.plays,
                listening_seconds: l.seconds,
            })
            .collect(),
    })
}

async fn most_liked<S: Store>(
    api: &AdminApi<S>,
    _: Admin,
    r: pb::GetMostLikedTracksRequest,
) -> ApiResult<pb::GetMostLikedTracksResponse> {
    let tracks = api.store.most_liked_tracks(limit(r.limit)?).await?;
    Ok(pb::GetMostLikedTracksResponse {
        tracks: tracks
            .into_iter()
            .map(|t| pb::TrackLikes {
                track_id: t.track_id.to_string(),
                likes: t.likes,
            })
            .collect(),
    })
}

async fn history_growth<S: Store>(
    api: &AdminApi<S>,
    _: Admin,
    r: pb::GetHistoryGrowthRequest,
) -> ApiResult<pb::GetHistoryGrowthResponse> {
    let tz = parse_time_zone(&r.time_zone).map_err(|why| ApiError::invalid("time_zone", why))?;
    let days = match i64::from(r.days) {
        0 => DEFAULT_DAILY_DAYS,
        n if n <= MAX_DAILY_DAYS => n,
        _ => {
            return Err(ApiError::invalid(
                "days",
                format!("must be at most {MAX_DAILY_DAYS}"),
            ));
        }
    };
    let window = last_days(days as u32, Timestamp::now(), &tz);
    let (Some(since), Some(until)) = (window.range.since, window.range.until) else {
        return Err(ApiError::Internal("a day window without bounds".into()));
    };
    let quarters = api.store.platform_quarter_hours(since, until).await?;
    Ok(pb::GetHistoryGrowthResponse {
        days: fold_series(&window, &quarters, &tz)
            .into_iter()
            .map(|d| pb::DayGrowth {
                date: d.start.to_string(),
                plays: d.counts.plays,
            })
            .collect(),
        time_zone: zone_name(&tz),
    })
}

async fn purge<S: Store>(
    api: &AdminApi<S>,
    Admin(caller): Admin,
    r: pb::PurgeHistoryRequest,
) -> ApiResult<pb::PurgeHistoryResponse> {
    let before = optional_timestamp("before", r.before.as_ref())?
        .ok_or_else(|| ApiError::invalid("before", "is required"))?;
    if before > Timestamp::now() {
        return Err(ApiError::invalid("before", "must not be in the future"));
    }
    let deleted = api.store.purge_plays_before(before, r.dry_run).await?;
    tracing::info!(caller = %caller.subject, before = ?before, dry_run = r.dry_run, deleted, "purged history");
    Ok(pb::PurgeHistoryResponse {
        deleted_count: deleted,
        dry_run: r.dry_run,
    })
}

async fn erase_user<S: Store>(
    api: &AdminApi<S>,
    Admin(caller): Admin,
    r: pb::DeleteUserDataRequest,
) -> ApiResult<pb::DeleteUserDataResponse> {
    let user = UserId::parse(&r.user_id).map_err(|why| ApiError::invalid("user_id", why))?;
    let erased = api.store.delete_user_data(user).await?;
    tracing::info!(caller = %caller.subject, user = %user, plays = erased.plays, likes = erased.likes, "erased a user's data");
    Ok(pb::DeleteUserDataResponse {
        deleted_plays: erased.plays,
        deleted_likes: erased.likes,
        deleted_requests: erased.requests,
    })
}

async fn erase_track<S: Store>(
    api: &AdminApi<S>,
    Admin(caller): Admin,
    r: pb::DeleteTrackDataRequest,
) -> ApiResult<pb::DeleteTrackDataResponse> {
    let track = TrackId::parse(&r.track_id).map_err(|why| ApiError::invalid("track_id", why))?;
    let erased = api.store.delete_track_data(track).await?;
    tracing::info!(caller = %caller.subject, track = %track, plays = erased.plays, likes = erased.likes, users = erased.users, "erased a track's data");
    Ok(pb::DeleteTrackDataResponse {
        deleted_plays: erased.plays,
        deleted_likes: erased.likes,
        affected_users: erased.users,
    })
}
