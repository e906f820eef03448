//! `stats`: the statistics of the million-play user for all time and for ranges of up to a year
//! (aligned and not, in UTC and Asia/Kathmandu), play counts of 500 tracks, and top tracks of
//! this week, month and year, each against recounting the same figures from `plays` (what the
//! aggregates and snapshots exist to avoid). The first answer of each side is also compared, as
//! a correctness check.
use std::{future::Future, sync::Arc, time::Duration};

use anyhow::{Context, ensure};
use jiff::{Span, civil::Time, tz::TimeZone};
use library_service::pb;
use uuid::Uuid;

use super::{
    Ctx,
    recount::{self, Tally, Window},
};
use crate::{
    client::{Api, Bearer},
    db::Db,
    load,
    report::{self, Report},
    seed::{self, BigUser},
    stats::Sample,
};

const DAY_MICROS: i64 = 86_400_000_000;
/// Plays before 2000 are refused by the service, so these bounds mean "all time".
const ALL_TIME: Window = Window {
    since: 946_684_800_000_000,
    until: 4_102_444_800_000_000,
};
const WARM_UP_CALLS: usize = 20;
const TOP_TRACKS: i64 = 10;
const COUNTED_TRACKS: i64 = 500;
const TOP_PAGE: u32 = 50;
const FAST: Duration = Duration::from_millis(5);
const RANGE: Duration = Duration::from_millis(25);

/// One measured request and the target it has.
struct Variant {
    name: &'static str,
    what: &'static str,
    goal: Duration,
    call: Call,
}

#[derive(Clone)]
enum Call {
    Stats {
        range: Option<Window>,
        zone: &'static str,
        bucket: pb::ActivityBucket,
    },
    Counts {
        range: Option<Window>,
    },
    Top {
        period: pb::TopTracksPeriod,
        zone: &'static str,
    },
}

/// 13:07 local, `days_ago` days before today in `zone`.
fn local_13_07(zone: &str, days_ago: i64) -> anyhow::Result<i64> {
    let tz = TimeZone::get(zone).context("a zone")?;
    let today = jiff::Timestamp::now().to_zoned_datetime(tz.clone()).date();
    let day = today - Span::new().days(days_ago);
    let at = day
        .to_datetime(Time::constant(13, 7, 0, 0))
        .to_zoned_datetime(tz)
        .context("13:07 exists")?;
    Ok(at.timestamp().as_microsecond())
}

fn variants() -> anyhow::Result<Vec<Variant>> {
    let now = seed::now_micros();
    let last = |days: i64| Window {
        since: now - days * DAY_MICROS,
        until: now + DAY_MICROS,
    };
    let unaligned = |zone: &'static str| -> anyhow::Result<Call> {
        let until = local_13_07(zone, 1)?;
        Ok(Call::Stats {
            range: Some(Window {
                since: until - 45 * DAY_MICROS,
                until,
            }),
            zone,
            bucket: pb::ActivityBucket::Week,
        })
    };
    let stats = |range, zone| Call::Stats {
        range,
        zone,
        bucket: pb::ActivityBucket::Day,
    };
    Ok(vec![
        Variant {
            name: "stats-all-time",
            what: "all-time p99 <= 5 ms",
            goal: FAST,
            call: stats(None, "UTC"),
        },
        Variant {
            name: "stats-30d",
            what: "30-day p99 <= 25 ms",
            goal: RANGE,
            call: stats(Some(last(30)), "UTC"),
        },
        Variant {
            name: "stats-365d",
            what: "365-day p99 <= 25 ms",
            goal: RANGE,
            call: stats(Some(last(365)), "UTC"),
        },
        Variant {
            name: "stats-45d-utc",
            what: "45 d 13:07 UTC p99 <= 25 ms",
            goal: RANGE,
            call: unaligned("UTC")?,
        },
        Variant {
            name: "stats-45d-ktm",
            what: "45 d 13:07 KTM p99 <= 25 ms",
            goal: RANGE,
            call: unaligned("Asia/Kathmandu")?,
        },
        Variant {
            name: "counts-all-time",
            what: "500 ids p99 <= 5 ms",
            goal: FAST,
            call: Call::Counts { range: None },
        },
        Variant {
            name: "counts-365d",
            what: "500 ids 365 d p99 <= 25 ms",
            goal: RANGE,
            call: Call::Counts {
                range: Some(last(365)),
            },
        },
        Variant {
            name: "top-week",
            what: "week p99 <= 25 ms",
            goal: RANGE,
            call: Call::Top {
                period: pb::TopTracksPeriod::Week,
                zone: "Asia/Kathmandu",
            },
        },
        Variant {
            name: "top-month",
            what: "month p99 <= 25 ms",
            goal: RANGE,
            call: Call::Top {
                period: pb::TopTracksPeriod::Month,
                zone: "Asia/Kathmandu",
            },
        },
        Variant {
            name: "top-year",
            what: "year p99 <= 25 ms",
            goal: RANGE,
            call: Call::Top {
                period: pb::TopTracksPeriod::Year,
                zone: "Asia/Kathmandu",
            },
        },
    ])
}

pub async fn run(ctx: &Ctx, user: BigUser, report: &mut Report) -> anyhow::Result<()> {
    let tracks: Arc<Vec<Uuid>> = Arc::new(ctx.db.some_tracks(user.id, COUNTED_TRACKS).await?);
    let bearer = ctx.api.session(user.id)?;
    let wanted = &ctx.args.stats_variants;
    for variant in variants()? {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == variant.name) {
            continue;
        }
        measure(ctx, user, &bearer, tracks.clone(), variant, report).await?;
    }
    Ok(())
}

/// What one call answered, as far as the recount checks it.
enum Answer {
    Stats(Box<pb::LibraryStats>),
    Counts(pb::GetTrackPlayCountsResponse),
    Top(pb::GetTopTracksResponse),
}

async fn call(api: &Api, bearer: &Bearer, call: &Call, tracks: &[Uuid]) -> anyhow::Result<Answer> {
    let mut client = api.client(0);
    Ok(match call {
        Call::Stats {
            range,
            zone,
            bucket,
        } => {
            let stats = client
                .get_library_stats(bearer.request(pb::GetLibraryStatsRequest {
                    since: range.map(|r| seed::timestamp(r.since)),
                    until: range.map(|r| seed::timestamp(r.until)),
                    time_zone: zone.to_string(),
                    top_tracks_limit: TOP_TRACKS as u32,
                    activity_bucket: *bucket as i32,
                    ..Default::default()
                }))
                .await
                .context("GetLibraryStats")?
                .into_inner();
            ensure!(stats.total_plays > 0, "GetLibraryStats counted no plays");
            Answer::Stats(Box::new(stats))
        }
        Call::Counts { range } => Answer::Counts(
            client
                .get_track_play_counts(bearer.request(pb::GetTrackPlayCountsRequest {
                    track_ids: tracks.iter().map(Uuid::to_string).collect(),
                    since: range.map(|r| seed::timestamp(r.since)),
                    until: range.map(|r| seed::timestamp(r.until)),
                    ..Default::default()
                }))
                .await
                .context("GetTrackPlayCounts")?
                .into_inner(),
        ),
        Call::Top { period, zone } => Answer::Top(
            client
                .get_top_tracks(bearer.request(pb::GetTopTracksRequest {
                    period: *period as i32,
                    time_zone: zone.to_string(),
                    page_size: TOP_PAGE,
                    ..Default::default()
                }))
                .await
                .context("GetTopTracks")?
                .into_inner(),
        ),
    })
}

async fn measure(
    ctx: &Ctx,
    user: BigUser,
    bearer: &Bearer,
    tracks: Arc<Vec<Uuid>>,
    variant: Variant,
    report: &mut Report,
) -> anyhow::Result<()> {
    let args = &ctx.args;
    eprintln!(
        "{}: {} calls, {} direct recounts...",
        variant.name, args.stats_calls, args.stats_baseline_calls
    );
    let first = call(&ctx.api, bearer, &variant.call, &tracks).await?;
    for _ in 0..WARM_UP_CALLS {
        call(&ctx.api, bearer, &variant.call, &tracks).await?;
    }
    let service = {
        let (api, bearer, what, tracks) = (
            ctx.api.clone(),
            bearer.clone(),
            variant.call.clone(),
            tracks.clone(),
        );
        timed(args.stats_calls, args.budget(), move || {
            let (api, bearer, what, tracks) =
                (api.clone(), bearer.clone(), what.clone(), tracks.clone());
            async move { call(&api, &bearer, &what, &tracks).await.map(drop) }
        })
        .await?
    };
    let findings = check(&ctx.db, user.id, &variant.call, &first, &tracks).await?;
    let baseline = {
        let (db, what, tracks) = (ctx.db.clone(), variant.call.clone(), tracks.clone());
        timed(args.stats_baseline_calls, args.budget(), move || {
            let (db, what, tracks) = (db.clone(), what.clone(), tracks.clone());
            async move { recount_once(&db, user.id, &what, &tracks).await }
        })
        .await?
    };
    report::emit(report::line(
        variant.name,
        "ops/s",
        &service,
        &baseline,
        &format!(
            "{} calls vs {} recounts; {}",
            service.calls(),
            baseline.calls(),
            findings
        ),
    ));
    report.at_most("stats", variant.what, service.p99(), variant.goal);
    Ok(())
}

async fn timed<F, Fut>(calls: usize, budget: Duration, op: F) -> anyhow::Result<Sample>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    load::run(calls, 1, 1, budget, move |_| op()).await
}

/// The range a call covers, as the recount needs it.
fn span_of(range: Option<Window>) -> Window {
    range.unwrap_or(ALL_TIME)
}

async fn recount_once(db: &Db, user: Uuid, what: &Call, tracks: &[Uuid]) -> anyhow::Result<()> {
    match what {
        Call::Stats { range, zone, .. } => {
            let tz = TimeZone::get(zone).context("a zone")?;
            recount::library(db, user, span_of(*range), &tz, TOP_TRACKS).await?;
        }
        Call::Counts { range } => {
            recount::play_counts(db, user, tracks, span_of(*range)).await?;
        }
        Call::Top { period, zone } => {
            // The same calendar period as the service's (its bounds are checked by the tests).
            let tz = TimeZone::get(zone).context("a zone")?;
            let (current, previous) = calendar_period(*period, &tz)?;
            recount::ranking(db, user, current).await?;
            recount::ranking(db, user, previous).await?;
            recount::first_played_in(db, user, current).await?;
        }
    }
    Ok(())
}

/// This period and the one before, in `tz`.
fn calendar_period(period: pb::TopTracksPeriod, tz: &TimeZone) -> anyhow::Result<(Window, Window)> {
    let today = jiff::Timestamp::now().to_zoned_datetime(tz.clone()).date();
    let (start, step) = match period {
        pb::TopTracksPeriod::Week => (
            today - Span::new().days(i64::from(today.weekday().to_monday_zero_offset())),
            Span::new().weeks(1),
        ),
        pb::TopTracksPeriod::Month => (today.first_of_month(), Span::new().months(1)),
        _ => (today.first_of_year(), Span::new().years(1)),
    };
    let at = |d: jiff::civil::Date| -> anyhow::Result<i64> {
        Ok(d.to_zoned_datetime(tz.clone())
            .context("a local day")?
            .timestamp()
            .as_microsecond())
    };
    let (previous, end) = (start - step, start + step);
    Ok((
        Window {
            since: at(start)?,
            until: at(end)?,
        },
        Window {
            since: at(previous)?,
            until: at(start)?,
        },
    ))
}

/// Compares the service's first answer with a recount; a disagreement is a finding about the
/// service, printed, not a reason to stop the bench.
async fn check(
    db: &Db,
    user: Uuid,
    what: &Call,
    answer: &Answer,
    tracks: &[Uuid],
) -> anyhow::Result<String> {
    let mut differences = Vec::new();
    let summary = match (what, answer) {
        (
            Call::Stats {
                range,
                zone,
                bucket,
            },
            Answer::Stats(stats),
        ) => {
            let tz = TimeZone::get(zone).context("a zone")?;
            let want = recount::library(db, user, span_of(*range), &tz, TOP_TRACKS).await?;
            let totals = Tally {
                plays: stats.total_plays as i64,
                counted: stats.counted_plays as i64,
                seconds: stats.listening_seconds as i64,
            };
            if (totals, stats.unique_tracks as i64) != (want.totals, want.tracks) {
                differences.push(format!("totals {totals:?} vs {:?}", want.totals));
            }
            let top: Vec<(Uuid, Tally)> = stats
                .top_tracks
                .iter()
                .map(|t| {
                    let tally = Tally {
                        plays: t.plays as i64,
                        counted: t.counted_plays as i64,
                        seconds: t.listening_seconds as i64,
                    };
                    (Uuid::parse_str(&t.track_id).unwrap_or_default(), tally)
                })
                .collect();
            if top != want.top {
                differences.push("top tracks".into());
            }
            if stats.plays_by_source.len() != want.sources {
                differences.push("sources".into());
            }
            let hourly: Vec<i64> = stats
                .hourly_activity
                .iter()
                .map(|c| c.plays as i64)
                .collect();
            if hourly != want.hourly {
                differences.push("hourly cells".into());
            }
            if *bucket == pb::ActivityBucket::Week {
                let weeks: Vec<(String, i64)> = want
                    .weeks
                    .iter()
                    .map(|(d, n)| (d.to_string(), *n))
                    .collect();
                let got: Vec<(String, i64)> = stats
                    .activity
                    .iter()
                    .filter(|b| b.plays > 0)
                    .map(|b| (b.start_date.clone(), b.plays as i64))
                    .collect();
                if got != weeks {
                    differences.push("weeks".into());
                }
            }
            format!(
                "{} plays in range ({} counted), {} tracks; hourly and {} {:?} buckets",
                stats.total_plays,
                stats.counted_plays,
                stats.unique_tracks,
                stats.activity.len(),
                bucket
            )
        }
        (Call::Counts { range }, Answer::Counts(counts)) => {
            let want = recount::play_counts(db, user, tracks, span_of(*range)).await?;
            let mut played = 0;
            for entry in &counts.tracks {
                let id = Uuid::parse_str(&entry.track_id).unwrap_or_default();
                let got = Tally {
                    plays: entry.plays as i64,
                    counted: entry.counted_plays as i64,
                    seconds: entry.listening_seconds as i64,
                };
                played += entry.plays;
                if got != want.get(&id).copied().unwrap_or_default() {
                    differences.push(format!("track {id}"));
                }
            }
            format!("{} tracks, {played} of their plays", counts.tracks.len())
        }
        (Call::Top { period, zone }, Answer::Top(top)) => {
            let tz = TimeZone::get(zone).context("a zone")?;
            let (current, previous) = calendar_period(*period, &tz)?;
            let ranked = recount::ranking(db, user, current).await?;
            let before = recount::ranking(db, user, previous).await?;
            let new = recount::first_played_in(db, user, current).await?;
            for (i, entry) in top.tracks.iter().enumerate() {
                let id = Uuid::parse_str(&entry.track_id).unwrap_or_default();
                let previous_rank = before
                    .iter()
                    .position(|(t, _)| *t == id)
                    .map_or(0, |p| p as u32 + 1);
                let want = ranked.get(i).map(|(t, n)| (*t, n.counted, n.plays));
                let got = (id, entry.counted_plays as i64, entry.plays as i64);
                if want != Some(got)
                    || entry.previous_rank != previous_rank
                    || entry.new_in_period != new.contains(&id)
                {
                    differences.push(format!("rank {}", i + 1));
                }
            }
            if top.total_size != ranked.len() as u64 {
                differences.push("total_size".into());
            }
            format!(
                "{} tracks in the period, page of {}",
                top.total_size,
                top.tracks.len()
            )
        }
        _ => anyhow::bail!("an answer of another kind"),
    };
    if differences.is_empty() {
        Ok(format!("{summary}; agrees with the recount"))
    } else {
        println!(
            "WARNING: differs from the recount: {}",
            differences.join(", ")
        );
        Ok(format!("{summary}; DIFFERS from the recount"))
    }
}
