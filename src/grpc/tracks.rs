//! Per-track figures: play counts for any track list, and top tracks by calendar period.
use std::collections::{HashMap, HashSet};

use super::{
    LibraryApi,
    convert::{Checks, authorize, timestamp_to_proto},
};
use crate::{
    auth::{Access, Principal},
    domain::{
        CalendarPeriod, TimeRange, Timestamp, TopTracksPageToken, TrackId, calendar_period,
        parse_time_zone, rank_tracks, zone_name,
    },
    error::{ApiError, ApiResult},
    pb,
    store::Store,
};

/// A top-tracks page's size when the client asks for none.
const DEFAULT_TOP_PAGE: u32 = 50;
const MAX_TOP_PAGE: u32 = 500;
/// How far back a calendar period may be asked for: enough for any history this service keeps.
const MAX_PERIODS_AGO: u32 = 10_000;

pub(super) async fn play_counts<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::GetTrackPlayCountsRequest,
) -> ApiResult<pb::GetTrackPlayCountsResponse> {
    let user = authorize(&caller, &r.user_id, Access::Read)?;
    let mut checks = Checks::default();
    if r.track_ids.is_empty() {
        checks.refuse("track_ids", "at least one track id is required");
    }
    let tracks = checks.track_ids(&r.track_ids);
    let since = checks.timestamp("since", r.since.as_ref());
    let until = checks.timestamp("until", r.until.as_ref());
    checks.range(since, until);
    checks.finish()?;
    let counts = api
        .store
        .track_play_counts(user, &tracks, TimeRange { since, until })
        .await?;
    let liked: HashSet<TrackId> = counts.liked.into_iter().collect();
    Ok(pb::GetTrackPlayCountsResponse {
        tracks: tracks
            .iter()
            .map(|id| {
                let tally = counts.tallies.get(id);
                let c = tally.map(|t| t.counts).unwrap_or_default();
                pb::TrackPlayCount {
                    track_id: id.to_string(),
                    plays: c.plays,
                    counted_plays: c.counted,
                    skipped_plays: c.skipped(),
                    listening_seconds: c.seconds,
                    first_played_at: tally.map(|t| timestamp_to_proto(t.first)),
                    last_played_at: tally.map(|t| timestamp_to_proto(t.last)),
                    liked: liked.contains(id),
                }
            })
            .collect(),
    })
}

/// The period to rank and the one before it.
fn periods(
    checks: &mut Checks,
    r: &pb::GetTopTracksRequest,
    tz: &jiff::tz::TimeZone,
    now: Timestamp,
) -> Option<(TimeRange, TimeRange)> {
    let since = checks.timestamp("since", r.since.as_ref());
    let until = checks.timestamp("until", r.until.as_ref());
    let kind = match pb::TopTracksPeriod::try_from(r.period) {
        Ok(pb::TopTracksPeriod::Unspecified) => None,
        Ok(pb::TopTracksPeriod::Week) => Some(CalendarPeriod::Week),
        Ok(pb::TopTracksPeriod::Month) => Some(CalendarPeriod::Month),
        Ok(pb::TopTracksPeriod::Year) => Some(CalendarPeriod::Year),
        Err(_) => {
            checks.refuse("period", format!("unknown period {}", r.period));
            return None;
        }
    };
    if r.periods_ago > MAX_PERIODS_AGO {
        checks.refuse("periods_ago", format!("must be at most {MAX_PERIODS_AGO}"));
    }
    match kind {
        Some(kind) => {
            if r.since.is_some() || r.until.is_some() {
                checks.refuse("since", "a calendar period takes no since or until");
            }
            Some(calendar_period(kind, r.periods_ago, now, tz))
        }
        None => {
            if r.periods_ago != 0 {
                checks.refuse("periods_ago", "only calendar periods go back by periods");
            }
            match (since, until) {
                (Some(s), Some(u)) if s < u => {
                    let length = u.as_micros() - s.as_micros();
                    let before =
                        Timestamp::from_micros(s.as_micros() - length).unwrap_or(Timestamp::MIN);
                    Some((
                        TimeRange {
                            since: Some(s),
                            until: Some(u),
                        },
                        TimeRange {
                            since: Some(before),
                            until: Some(s),
                        },
                    ))
                }
                (Some(_), Some(_)) => {
                    checks.refuse("until", "must be after since");
                    None
                }
                _ => {
                    if r.since.is_none() {
                        checks.refuse("since", "is required without a calendar period");
                    }
                    if r.until.is_none() {
                        checks.refuse("until", "is required without a calendar period");
                    }
                    None
                }
            }
        }
    }
}

pub(super) async fn top_tracks<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::GetTopTracksRequest,
) -> ApiResult<pb::GetTopTracksResponse> {
    let user = authorize(&caller, &r.user_id, Access::Read)?;
    let now = Timestamp::now();
    let mut checks = Checks::default();
    let tz = checks.field("time_zone", parse_time_zone(&r.time_zone));
    let ranges = tz.as_ref().and_then(|tz| periods(&mut checks, &r, tz, now));
    let page_size = match r.page_size {
        0 => DEFAULT_TOP_PAGE,
        n => n.min(MAX_TOP_PAGE),
    };
    let after = match (&ranges, r.page_token.as_str()) {
        (_, "") => None,
        // Without a period the token cannot be matched to it, but garbage is still named.
        (None, token) => {
            let shape =
                TopTracksPageToken::well_formed(token).map_err(|why| format!("page token {why}"));
            checks.field("page_token", shape);
            None
        }
        (Some((period, _)), token) => {
            let bounds = (
                period.since.unwrap_or(Timestamp::MIN),
                period.until.unwrap_or(Timestamp::MAX),
            );
            checks.field(
                "page_token",
                TopTracksPageToken::decode(token, user, bounds)
                    .map_err(|why| format!("page token {why}")),
            )
        }
    };
    checks.finish()?;
    let (Some(tz), Some((period, previous))) = (tz, ranges) else {
        return Err(ApiError::Internal("a checked field has no value".into()));
    };
    let found = api.store.period_tracks(user, period, previous).await?;
    let mut current = found.current;
    rank_tracks(&mut current);
    let mut before = found.previous;
    rank_tracks(&mut before);
    let previous_rank: HashMap<TrackId, u32> = before
        .iter()
        .enumerate()
        .map(|(i, t)| (t.track_id, i as u32 + 1))
        .collect();
    let new: HashSet<TrackId> = found.first_played.into_iter().collect();
    let start = after.map_or(0, |at| current.partition_point(|t| t.rank_position() <= at));
    let end = (start + page_size as usize).min(current.len());
    let page = current.get(start..end).unwrap_or_default();
    let bounds = (
        period.since.unwrap_or(Timestamp::MIN),
        period.until.unwrap_or(Timestamp::MAX),
    );
    let next_page_token = match page.last() {
        Some(last) if end < current.len() => {
            TopTracksPageToken::encode(user, bounds, last.rank_position())
        }
        _ => String::new(),
    };
    Ok(pb::GetTopTracksResponse {
        tracks: page
            .iter()
            .enumerate()
            .map(|(i, t)| pb::TopTrack {
                rank: (start + i) as u32 + 1,
                previous_rank: previous_rank.get(&t.track_id).copied().unwrap_or(0),
                track_id: t.track_id.to_string(),
                plays: t.counts.plays,
                counted_plays: t.counts.counted,
                skipped_plays: t.counts.skipped(),
                listening_seconds: t.counts.seconds,
                new_in_period: new.contains(&t.track_id),
            })
            .collect(),
        next_page_token,
        total_size: current.len() as u64,
        period_start: period.since.map(timestamp_to_proto),
        period_end: period.until.map(timestamp_to_proto),
        previous_period_start: previous.since.map(timestamp_to_proto),
        time_zone: zone_name(&tz),
    })
}
