//! The statistics flow, written once for both backends: every figure is read inside one read
//! snapshot (so they agree with each other under concurrent writes), the daily-activity window is
//! cut into whole UTC quarter hours, which the aggregates answer, and at most two partial ones at
//! its ends, which the plays answer. Each backend supplies only the SQL, through [`StatsSql`].
use std::future::Future;

use sqlx::FromRow;

use super::{StatsStore, StoreResult, rows::count};
use crate::domain::{
    PlayStats, QUARTER_HOUR_MICROS, QuarterHour, SourceCount, TimeRange, Timestamp, TrackCount,
    TrackId, UserId, split_quarters,
};

/// The totals of a range, as the SQL returns them.
#[derive(FromRow)]
pub struct TotalsRow {
    pub plays: i64,
    pub completed: i64,
    pub seconds: i64,
    pub tracks: i64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// `(track, plays, seconds)`, best first.
pub type TrackRow = (TrackId, i64, i64);
/// `(source, plays)`, most first, then source in byte order.
pub type SourceRow = (String, i64);
/// `(quarter start, plays, seconds)`.
pub type QuarterRow = (Timestamp, i64, i64);

/// The queries behind `play_stats`, per backend. `range` unbounded on both sides means all time,
/// which a backend answers from its aggregates.
pub trait StatsSql: Send + Sync {
    /// A read-only transaction whose snapshot every query below sees.
    type Snapshot: Send;

    fn snapshot(&self) -> impl Future<Output = StoreResult<Self::Snapshot>> + Send;

    fn close(snapshot: Self::Snapshot) -> impl Future<Output = StoreResult<()>> + Send;

    fn totals(
        s: &mut Self::Snapshot,
        user: UserId,
        range: TimeRange,
    ) -> impl Future<Output = StoreResult<TotalsRow>> + Send;

    /// Most plays first, then most seconds, then track id.
    fn top_tracks(
        s: &mut Self::Snapshot,
        user: UserId,
        range: TimeRange,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<TrackRow>>> + Send;

    fn sources(
        s: &mut Self::Snapshot,
        user: UserId,
        range: TimeRange,
    ) -> impl Future<Output = StoreResult<Vec<SourceRow>>> + Send;

    /// The aggregates' quarter hours starting in `[from, to)` (both on quarter-hour boundaries),
    /// ordered by start.
    fn whole_quarters(
        s: &mut Self::Snapshot,
        user: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = StoreResult<Vec<QuarterRow>>> + Send;

    /// Plays and seconds of the plays in `[from, to)`, a piece of one quarter hour.
    fn plays_between(
        s: &mut Self::Snapshot,
        user: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = StoreResult<(i64, i64)>> + Send;

    fn liked_count(
        s: &mut Self::Snapshot,
        user: UserId,
    ) -> impl Future<Output = StoreResult<i64>> + Send;
}

impl<T: StatsSql> StatsStore for T {
    async fn play_stats(
        &self,
        user: UserId,
        range: TimeRange,
        top_tracks: u32,
        buckets: TimeRange,
    ) -> StoreResult<PlayStats> {
        let mut s = self.snapshot().await?;
        let totals = T::totals(&mut s, user, range).await?;
        let top = T::top_tracks(&mut s, user, range, top_tracks).await?;
        let sources = T::sources(&mut s, user, range).await?;
        let quarter_hours = match (buckets.since, buckets.until) {
            (Some(since), Some(until)) => quarters::<T>(&mut s, user, since, until).await?,
            _ => Vec::new(),
        };
        let liked = T::liked_count(&mut s, user).await?;
        T::close(s).await?;
        Ok(PlayStats {
            total_plays: count(totals.plays)?,
            completed_plays: count(totals.completed)?,
            listening_seconds: count(totals.seconds)?,
            unique_tracks: count(totals.tracks)?,
            first_played_at: totals.first,
            last_played_at: totals.last,
            top_tracks: top
                .into_iter()
                .map(|(track_id, plays, seconds)| {
                    Ok(TrackCount {
                        track_id,
                        plays: count(plays)?,
                        seconds: count(seconds)?,
                    })
                })
                .collect::<StoreResult<_>>()?,
            sources: sources
                .into_iter()
                .map(|(source, plays)| {
                    Ok(SourceCount {
                        source,
                        plays: count(plays)?,
                    })
                })
                .collect::<StoreResult<_>>()?,
            quarter_hours,
            liked_tracks: count(liked)?,
        })
    }
}

pub(super) fn quarter(start: Timestamp, plays: i64, seconds: i64) -> StoreResult<QuarterHour> {
    Ok(QuarterHour {
        start,
        plays: count(plays)?,
        seconds: count(seconds)?,
    })
}

/// Plays and seconds per UTC quarter hour in `[since, until)`, ordered by start; only quarter
/// hours with plays.
async fn quarters<T: StatsSql>(
    s: &mut T::Snapshot,
    user: UserId,
    since: Timestamp,
    until: Timestamp,
) -> StoreResult<Vec<QuarterHour>> {
    let split = split_quarters(since, until);
    let mut out = Vec::new();
    if let Some(piece) = split.head {
        out.extend(partial::<T>(s, user, piece).await?);
    }
    if let Some((from, to)) = split.whole {
        for (start, plays, seconds) in T::whole_quarters(s, user, from, to).await? {
            out.push(quarter(start, plays, seconds)?);
        }
    }
    if let Some(piece) = split.tail {
        out.extend(partial::<T>(s, user, piece).await?);
    }
    Ok(out)
}

/// The plays of part of one quarter hour, as that quarter hour's entry (if any).
async fn partial<T: StatsSql>(
    s: &mut T::Snapshot,
    user: UserId,
    (from, to): (Timestamp, Timestamp),
) -> StoreResult<Option<QuarterHour>> {
    let (plays, seconds) = T::plays_between(s, user, from, to).await?;
    if plays == 0 {
        return Ok(None);
    }
    let start = from.as_micros().div_euclid(QUARTER_HOUR_MICROS) * QUARTER_HOUR_MICROS;
    let start = Timestamp::from_micros(start).unwrap_or(from);
    quarter(start, plays, seconds).map(Some)
}
