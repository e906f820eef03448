//! Library statistics.
use super::{
    LibraryApi,
    convert::{authorize, check_range, optional_timestamp, timestamp_to_proto},
};
use crate::{
    auth::{Access, Principal},
    domain::{
        TimeRange, Timestamp, daily_activity, daily_window, parse_time_zone, top_tracks_limit,
    },
    error::{ApiError, ApiResult},
    pb,
    store::Store,
};

pub(super) async fn library_stats<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::GetLibraryStatsRequest,
) -> ApiResult<pb::LibraryStats> {
    let user = authorize(&caller, &r.user_id, Access::Read)?;
    let since = optional_timestamp("since", r.since.as_ref())?;
    let until = optional_timestamp("until", r.until.as_ref())?;
    check_range(since, until)?;
    let tz = parse_time_zone(&r.time_zone).map_err(|why| ApiError::invalid("time_zone", why))?;
    let top = top_tracks_limit(r.top_tracks_limit)
        .map_err(|why| ApiError::invalid("top_tracks_limit", why))?;
    let range = TimeRange { since, until };
    let now = Timestamp::now();
    let window = daily_window(range, now, &tz);
    let stats = api.store.play_stats(user, range, top, window.range).await?;
    let days = daily_activity(&window, &stats.quarter_hours, &tz);
    Ok(pb::LibraryStats {
        user_id: user.to_string(),
        total_plays: stats.total_plays,
        completed_plays: stats.completed_plays,
        listening_seconds: stats.listening_seconds,
        unique_tracks: stats.unique_tracks,
        liked_tracks: stats.liked_tracks,
        first_played_at: stats.first_played_at.map(timestamp_to_proto),
        last_played_at: stats.last_played_at.map(timestamp_to_proto),
        top_tracks: stats
            .top_tracks
            .into_iter()
            .map(|t| pb::TrackStats {
                track_id: t.track_id.to_string(),
                plays: t.plays,
                listening_seconds: t.seconds,
            })
            .collect(),
        plays_by_source: stats
            .sources
            .into_iter()
            .map(|s| pb::SourceStats {
                source: s.source,
                plays: s.plays,
            })
            .collect(),
        daily_activity: days
            .into_iter()
            .map(|d| pb::DailyActivity {
                date: d.date.to_string(),
                plays: d.plays,
                listening_seconds: d.seconds,
            })
            .collect(),
        time_zone: tz.iana_name().unwrap_or("UTC").to_string(),
        computed_at: Some(timestamp_to_proto(now)),
    })
}
