//! GetLibraryStats: the store's figures folded into the caller's calendar.
use super::{
    LibraryApi,
    convert::{Checks, authorize, timestamp_to_proto},
};
use crate::{
    auth::{Access, Principal},
    domain::{
        ActivityBucket, BucketCounts, Counts, Streak, TimeRange, Timestamp, fold_hourly,
        fold_hourly_and_streaks, fold_series, fold_streaks, history_cuts, parse_time_zone,
        rank_sources, rank_tracks, series, top_tracks_limit, zone_name,
    },
    error::ApiResult,
    pb,
    store::Store,
};

pub(super) fn bucket_of(value: i32) -> Result<ActivityBucket, String> {
    match pb::ActivityBucket::try_from(value) {
        Ok(pb::ActivityBucket::Unspecified | pb::ActivityBucket::Day) => Ok(ActivityBucket::Day),
        Ok(pb::ActivityBucket::Week) => Ok(ActivityBucket::Week),
        Ok(pb::ActivityBucket::Month) => Ok(ActivityBucket::Month),
        Ok(pb::ActivityBucket::Year) => Ok(ActivityBucket::Year),
        Err(_) => Err(format!("unknown bucket {value}")),
    }
}

fn bucket_to_proto(bucket: ActivityBucket) -> pb::ActivityBucket {
    match bucket {
        ActivityBucket::Day => pb::ActivityBucket::Day,
        ActivityBucket::Week => pb::ActivityBucket::Week,
        ActivityBucket::Month => pb::ActivityBucket::Month,
        ActivityBucket::Year => pb::ActivityBucket::Year,
    }
}

fn streak_to_proto(streak: Option<Streak>) -> pb::Streak {
    streak.map_or_else(pb::Streak::default, |s| pb::Streak {
        days: s.days,
        first_date: s.first.to_string(),
        last_date: s.last.to_string(),
    })
}

fn activity_to_proto(b: &BucketCounts) -> pb::ActivityStats {
    pb::ActivityStats {
        start_date: b.start.to_string(),
        plays: b.counts.plays,
        counted_plays: b.counts.counted,
        skipped_plays: b.counts.skipped(),
        listening_seconds: b.counts.seconds,
    }
}

pub(super) async fn library_stats<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::GetLibraryStatsRequest,
) -> ApiResult<pb::LibraryStats> {
    let user = authorize(&caller, &r.user_id, Access::Read)?;
    let mut checks = Checks::default();
    let since = checks.timestamp("since", r.since.as_ref());
    let until = checks.timestamp("until", r.until.as_ref());
    checks.range(since, until);
    let tz = checks.field("time_zone", parse_time_zone(&r.time_zone));
    let top = checks.field("top_tracks_limit", top_tracks_limit(r.top_tracks_limit));
    let bucket = checks.field("activity_bucket", bucket_of(r.activity_bucket));
    checks.finish()?;
    let (Some(tz), Some(top), Some(bucket)) = (tz, top, bucket) else {
        return Err(crate::error::ApiError::Internal(
            "a checked field has no value".into(),
        ));
    };
    let range = TimeRange { since, until };
    let now = Timestamp::now();
    let cuts = history_cuts(&tz, now);
    let figures = api.store.library_stats(user, range, top, &cuts).await?;
    let all_time = figures.all_time;
    let (totals, unique, first, last, mut top_tracks, mut sources, range_quarters) =
        match figures.range {
            None => (
                all_time.counts,
                all_time.tracks,
                all_time.first,
                all_time.last,
                figures.all_time_top,
                figures.all_time_sources,
                None,
            ),
            Some(f) => (
                f.totals(),
                f.tracks.len() as u64,
                f.first_played(),
                f.last_played(),
                f.tracks,
                f.sources,
                Some(f.quarters),
            ),
        };
    let quarters = range_quarters
        .as_deref()
        .unwrap_or(&figures.history_quarters);
    rank_tracks(&mut top_tracks);
    top_tracks.truncate(top as usize);
    rank_sources(&mut sources);
    let daily = fold_series(
        &series(ActivityBucket::Day, range, now, all_time.first, &tz),
        quarters,
        &tz,
    );
    // The day series is the activity series when days are asked for; it is folded once.
    let activity = if bucket == ActivityBucket::Day {
        daily.clone()
    } else {
        fold_series(
            &series(bucket, range, now, all_time.first, &tz),
            quarters,
            &tz,
        )
    };
    let (hourly, streaks) = match range_quarters {
        None => fold_hourly_and_streaks(quarters, now, &tz),
        Some(_) => (
            fold_hourly(quarters, &tz),
            fold_streaks(&figures.history_quarters, now, &tz),
        ),
    };
    Ok(pb::LibraryStats {
        user_id: user.to_string(),
        total_plays: totals.plays,
        completed_plays: totals.completed,
        counted_plays: totals.counted,
        skipped_plays: totals.skipped(),
        listening_seconds: totals.seconds,
        unique_tracks: unique,
        liked_tracks: figures.liked,
        first_played_at: first.map(timestamp_to_proto),
        last_played_at: last.map(timestamp_to_proto),
        top_tracks: top_tracks
            .into_iter()
            .map(|t| pb::TrackStats {
                track_id: t.track_id.to_string(),
                plays: t.counts.plays,
                counted_plays: t.counts.counted,
                skipped_plays: t.counts.skipped(),
                listening_seconds: t.counts.seconds,
            })
            .collect(),
        plays_by_source: sources
            .into_iter()
            .map(|s| pb::SourceStats {
                source: s.source,
                plays: s.counts.plays,
                counted_plays: s.counts.counted,
                skipped_plays: s.counts.skipped(),
                listening_seconds: s.counts.seconds,
            })
            .collect(),
        daily_activity: daily
            .iter()
            .map(|d| pb::DailyActivity {
                date: d.start.to_string(),
                plays: d.counts.plays,
                listening_seconds: d.counts.seconds,
                counted_plays: d.counts.counted,
                skipped_plays: d.counts.skipped(),
            })
            .collect(),
        activity: activity.iter().map(activity_to_proto).collect(),
        activity_bucket: bucket_to_proto(bucket).into(),
        hourly_activity: hourly
            .iter()
            .enumerate()
            .flat_map(|(weekday, hours)| {
                hours
                    .iter()
                    .enumerate()
                    .map(move |(hour, c): (usize, &Counts)| pb::HourlyActivity {
                        weekday: weekday as u32 + 1,
                        hour: hour as u32,
                        plays: c.plays,
                        counted_plays: c.counted,
                        skipped_plays: c.skipped(),
                        listening_seconds: c.seconds,
                    })
            })
            .collect(),
        streaks: Some(pb::Streaks {
            current: Some(streak_to_proto(streaks.current)),
            longest: Some(streak_to_proto(streaks.longest)),
        }),
        time_zone: zone_name(&tz),
        computed_at: Some(timestamp_to_proto(now)),
    })
}
