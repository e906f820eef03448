//! `LibraryAdminService`: platform-wide figures, retention and erasure. Every call needs the
//! `library:admin` scope; erasures and purges are logged with the caller, for the audit trail.
use tonic::{Request, Response, Status};

use super::{
    convert::{check_range, optional_timestamp},
    interceptor::principal,
};
use crate::{
    auth::{Principal, SCOPE_ADMIN},
    domain::{
        DEFAULT_DAILY_DAYS, MAX_DAILY_DAYS, TimeRange, Timestamp, TrackId, UserId, admin_limit,
        daily_activity, last_days_window, parse_time_zone,
    },
    error::{ApiError, ApiResult},
    pb::{self, library_admin_service_server::LibraryAdminService},
    store::Store,
};

#[derive(Clone)]
pub struct AdminApi<S> {
    store: S,
}

impl<S: Store> AdminApi<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// The verified caller, if it holds `library:admin`.
fn admin<T>(request: &Request<T>) -> Result<Principal, Status> {
    let caller = principal(request)?;
    if caller.has_scope(SCOPE_ADMIN) {
        Ok(caller)
    } else {
        Err(ApiError::PermissionDenied(format!("admin calls need the {SCOPE_ADMIN} scope")).into())
    }
}

fn limit(limit: u32) -> ApiResult<u32> {
    admin_limit(limit).map_err(|why| ApiError::invalid("limit", why))
}

#[tonic::async_trait]
impl<S: Store> LibraryAdminService for AdminApi<S> {
    async fn get_top_listeners(
        &self,
        request: Request<pb::GetTopListenersRequest>,
    ) -> Reply<pb::GetTopListenersResponse> {
        admin(&request)?;
        let r = request.into_inner();
        let since = optional_timestamp("since", r.since.as_ref())?;
        let until = optional_timestamp("until", r.until.as_ref())?;
        check_range(since, until)?;
        let limit = limit(r.limit)?;
        let listeners = self
            .store
            .top_listeners(TimeRange { since, until }, limit)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::GetTopListenersResponse {
            listeners: listeners
                .into_iter()
                .map(|l| pb::ListenerStats {
                    user_id: l.user_id.to_string(),
                    plays: l.plays,
                    listening_seconds: l.seconds,
                })
                .collect(),
        }))
    }

    async fn get_most_liked_tracks(
        &self,
        request: Request<pb::GetMostLikedTracksRequest>,
    ) -> Reply<pb::GetMostLikedTracksResponse> {
        admin(&request)?;
        let limit = limit(request.into_inner().limit)?;
        let tracks = self
            .store
            .most_liked_tracks(limit)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::GetMostLikedTracksResponse {
            tracks: tracks
                .into_iter()
                .map(|t| pb::TrackLikes {
                    track_id: t.track_id.to_string(),
                    likes: t.likes,
                })
                .collect(),
        }))
    }

    async fn get_history_growth(
        &self,
        request: Request<pb::GetHistoryGrowthRequest>,
    ) -> Reply<pb::GetHistoryGrowthResponse> {
        admin(&request)?;
        let r = request.into_inner();
        let tz =
            parse_time_zone(&r.time_zone).map_err(|why| ApiError::invalid("time_zone", why))?;
        let days = match i64::from(r.days) {
            0 => DEFAULT_DAILY_DAYS,
            n if n <= MAX_DAILY_DAYS => n,
            _ => {
                return Err(
                    ApiError::invalid("days", format!("must be at most {MAX_DAILY_DAYS}")).into(),
                );
            }
        };
        let window = last_days_window(days as u32, Timestamp::now(), &tz);
        let (Some(since), Some(until)) = (window.range.since, window.range.until) else {
            return Err(ApiError::Internal("a day window without bounds".into()).into());
        };
        let quarters = self
            .store
            .platform_quarter_hours(since, until)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::GetHistoryGrowthResponse {
            days: daily_activity(&window, &quarters, &tz)
                .into_iter()
                .map(|d| pb::DayGrowth {
                    date: d.date.to_string(),
                    plays: d.plays,
                })
                .collect(),
            time_zone: tz.iana_name().unwrap_or("UTC").to_string(),
        }))
    }

    async fn purge_history(
        &self,
        request: Request<pb::PurgeHistoryRequest>,
    ) -> Reply<pb::PurgeHistoryResponse> {
        let caller = admin(&request)?;
        let r = request.into_inner();
        let before = optional_timestamp("before", r.before.as_ref())?
            .ok_or_else(|| ApiError::invalid("before", "is required"))?;
        if before > Timestamp::now() {
            return Err(ApiError::invalid("before", "must not be in the future").into());
        }
        let deleted = self
            .store
            .purge_plays_before(before, r.dry_run)
            .await
            .map_err(ApiError::from)?;
        tracing::info!(caller = %caller.subject, before = ?before, dry_run = r.dry_run, deleted, "purged history");
        Ok(Response::new(pb::PurgeHistoryResponse {
            deleted_count: deleted,
            dry_run: r.dry_run,
        }))
    }

    async fn delete_user_data(
        &self,
        request: Request<pb::DeleteUserDataRequest>,
    ) -> Reply<pb::DeleteUserDataResponse> {
        let caller = admin(&request)?;
        let user = UserId::parse(&request.into_inner().user_id)
            .map_err(|why| ApiError::invalid("user_id", why))?;
        let erased = self
            .store
            .delete_user_data(user)
            .await
            .map_err(ApiError::from)?;
        tracing::info!(caller = %caller.subject, user = %user, plays = erased.plays, likes = erased.likes, "erased a user's data");
        Ok(Response::new(pb::DeleteUserDataResponse {
            deleted_plays: erased.plays,
            deleted_likes: erased.likes,
            deleted_requests: erased.requests,
        }))
    }

    async fn delete_track_data(
        &self,
        request: Request<pb::DeleteTrackDataRequest>,
    ) -> Reply<pb::DeleteTrackDataResponse> {
        let caller = admin(&request)?;
        let track = TrackId::parse(&request.into_inner().track_id)
            .map_err(|why| ApiError::invalid("track_id", why))?;
        let erased = self
            .store
            .delete_track_data(track)
            .await
            .map_err(ApiError::from)?;
        tracing::info!(caller = %caller.subject, track = %track, plays = erased.plays, likes = erased.likes, users = erased.users, "erased a track's data");
        Ok(Response::new(pb::DeleteTrackDataResponse {
            deleted_plays: erased.plays,
            deleted_likes: erased.likes,
            affected_users: erased.users,
        }))
    }
}
