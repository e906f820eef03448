//! The statistics flow, written once for both backends. Every figure of a call is read in one
//! read snapshot, so figures agree with each other under concurrent writes. A span is cut into
//! pieces (`domain::decompose`): whole UTC days and months that are over come from their
//! snapshots, built here from the plays the first time they are needed (and again after a write
//! into the period marked them stale), and stored once the read is over; the partial days at the
//! ends and the unsettled tail come from the plays and the quarter-hour aggregates. Each backend
//! supplies only the SQL, through [`StatsSql`].
use std::{
    collections::{HashMap, HashSet},
    future::Future,
};

use super::{
    StatsStore, StoreResult,
    cache::{Decoded, SnapshotCache},
    rows::count,
    snapshot::{self, Encoded},
};
use crate::domain::{
    Counts, Figures, FiguresSum, Period, Piece, QUARTER_HOUR_MICROS, QuarterTally, SourceTally,
    TimeRange, Timestamp, TrackId, TrackTally, UserId, day_floor, decompose, quarter_floor,
    split_quarters,
};

/// A listener's all-time totals, as the aggregates keep them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllTime {
    pub counts: Counts,
    pub tracks: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// Everything GetLibraryStats folds into its answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LibraryFigures {
    pub all_time: AllTime,
    /// The best `top` tracks of all time (when the range is all time).
    pub all_time_top: Vec<TrackTally>,
    pub all_time_sources: Vec<SourceTally>,
    /// Tracks, sources and quarter hours of the range; `None` when the range is all time.
    pub range: Option<Figures>,
    /// Quarter hours of the whole history (streaks, and all-time activity).
    pub history_quarters: Vec<QuarterTally>,
    pub liked: u64,
}

/// What a statistics call reads first (see [`StatsSql::overview`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overview {
    pub all_time: AllTime,
    pub liked: u64,
    pub top: Vec<TrackTally>,
    pub sources: Vec<SourceTally>,
}

/// Each requested track's plays in a range (`None` when it has none), and which are liked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackCounts {
    pub tallies: HashMap<TrackId, TrackTally>,
    pub liked: Vec<TrackId>,
}

/// The tracks of a period and of the period before it, and the tracks first played ever in the
/// period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodTracks {
    pub current: Vec<TrackTally>,
    pub previous: Vec<TrackTally>,
    pub first_played: Vec<TrackId>,
}

/// What a period's row says: its write generation and, when built, its snapshot's id and
/// blobs (those asked for, and not when the caller holds that snapshot already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodRow {
    pub period: Period,
    pub generation: i64,
    pub built_generation: Option<i64>,
    pub snapshot_id: Option<i64>,
    pub tracks: Option<Vec<u8>>,
    pub sources: Option<Vec<u8>>,
    pub quarters: Option<Vec<u8>>,
}

/// A snapshot built during a read, to be stored if no write changed its period meanwhile.
pub struct Built {
    pub period: Period,
    /// The generation the snapshot was built from.
    pub generation: i64,
    /// A new id, so that no cache mistakes it for a snapshot built before.
    pub id: i64,
    pub blobs: Encoded,
}

/// The queries behind the statistics, per backend. Everything but `store_snapshots` runs in the
/// read snapshot `s`.
pub trait StatsSql: Send + Sync {
    type Snapshot: Send;

    /// The decoded snapshots this store's reads share.
    fn snapshot_cache(&self) -> &SnapshotCache;

    fn snapshot(&self) -> impl Future<Output = StoreResult<Self::Snapshot>> + Send;

    fn close(s: Self::Snapshot) -> impl Future<Output = StoreResult<()>> + Send;

    fn all_time(
        s: &mut Self::Snapshot,
        user: UserId,
    ) -> impl Future<Output = StoreResult<AllTime>> + Send;

    /// The all-time totals and the number of liked tracks, and with `top`, the best `top`
    /// tracks of all time (best first) and every source: what a statistics call reads first.
    fn overview(
        s: &mut Self::Snapshot,
        user: UserId,
        top: Option<u32>,
    ) -> impl Future<Output = StoreResult<Overview>> + Send;

    /// The all-time tallies of these tracks (those the listener played) and which of them are
    /// liked, read together in one snapshot of their own.
    fn all_time_track_counts(
        &self,
        user: UserId,
        tracks: &[TrackId],
    ) -> impl Future<Output = StoreResult<(Vec<TrackTally>, Vec<TrackId>)>> + Send;

    /// The tracks whose first play ever is in `range`.
    fn first_played_in(
        s: &mut Self::Snapshot,
        user: UserId,
        range: TimeRange,
    ) -> impl Future<Output = StoreResult<Vec<TrackId>>> + Send;

    /// Which of these tracks the listener likes.
    fn liked_among(
        s: &mut Self::Snapshot,
        user: UserId,
        tracks: &[TrackId],
    ) -> impl Future<Output = StoreResult<Vec<TrackId>>> + Send;

    /// The rows of these periods that exist, with the snapshot columns (`quarters` only, when
    /// `quarters_only`), except where the row's snapshot id is the one given beside the
    /// period (the caller holds that snapshot).
    fn period_rows(
        s: &mut Self::Snapshot,
        user: UserId,
        periods: &[(Period, Option<i64>)],
        quarters_only: bool,
    ) -> impl Future<Output = StoreResult<Vec<PeriodRow>>> + Send;

    /// Per-track tallies of the plays in `[since, until)`, only of `among` when given.
    fn plays_tracks(
        s: &mut Self::Snapshot,
        user: UserId,
        since: Timestamp,
        until: Option<Timestamp>,
        among: Option<&[TrackId]>,
    ) -> impl Future<Output = StoreResult<Vec<TrackTally>>> + Send;

    fn plays_sources(
        s: &mut Self::Snapshot,
        user: UserId,
        since: Timestamp,
        until: Option<Timestamp>,
    ) -> impl Future<Output = StoreResult<Vec<SourceTally>>> + Send;

    /// The plays in `[since, until)`, a piece of one quarter hour, as that quarter's tally.
    fn plays_quarter(
        s: &mut Self::Snapshot,
        user: UserId,
        since: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = StoreResult<Counts>> + Send;

    /// The quarter-hour aggregates of the quarters starting in `[from, to)`.
    fn quarter_rows(
        s: &mut Self::Snapshot,
        user: UserId,
        from: Timestamp,
        to: Option<Timestamp>,
    ) -> impl Future<Output = StoreResult<Vec<QuarterTally>>> + Send;

    /// Stores snapshots built by a read, each only if its period's generation is still the one
    /// it was built from.
    fn store_snapshots(
        &self,
        user: UserId,
        built: Vec<Built>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Which figures a span needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts<'a> {
    tracks: bool,
    sources: bool,
    quarters: bool,
    /// Only these tracks (sorted, without repeats).
    among: Option<&'a [TrackId]>,
}

const EVERYTHING: Parts<'static> = Parts {
    tracks: true,
    sources: true,
    quarters: true,
    among: None,
};

/// One read: the snapshot, the periods' rows seen so far, and the snapshots built on the way.
struct Read<'a, T: StatsSql> {
    store: &'a T,
    s: T::Snapshot,
    user: UserId,
    now: Timestamp,
    rows: HashMap<Period, Seen>,
    /// Periods whose every column was read (rows read for their quarters only are not).
    whole: HashSet<Period>,
    built: Vec<Built>,
    /// Snapshots built by this read, so a month built from its days reuses them.
    fresh: HashMap<Period, Decoded>,
}

/// A period as this read sees it: its write generation, and its stored snapshot when that is
/// current.
struct Seen {
    generation: i64,
    snapshot: Option<Decoded>,
}

/// Whether a period's stored snapshot is current and holds the parts asked for.
fn usable<'s>(seen: &'s Seen, parts: Parts<'_>) -> Option<&'s Decoded> {
    seen.snapshot
        .as_ref()
        .filter(|d| d.holds(parts.tracks || parts.sources))
}

fn decode(row: PeriodRow, id: i64) -> StoreResult<Decoded> {
    Ok(Decoded {
        id,
        tracks: row
            .tracks
            .as_deref()
            .map(snapshot::decode_tracks)
            .transpose()?
            .map(Into::into),
        sources: row
            .sources
            .as_deref()
            .map(snapshot::decode_sources)
            .transpose()?
            .map(Into::into),
        quarters: row
            .quarters
            .as_deref()
            .map(|q| snapshot::decode_quarters(row.period, q))
            .transpose()?
            .map(Into::into),
    })
}

impl<'a, T: StatsSql> Read<'a, T> {
    async fn begin(store: &'a T, user: UserId) -> StoreResult<Self> {
        Ok(Self {
            store,
            s: store.snapshot().await?,
            user,
            now: Timestamp::now(),
            rows: HashMap::new(),
            whole: HashSet::new(),
            built: Vec::new(),
            fresh: HashMap::new(),
        })
    }

    /// Ends the read, then stores what it built.
    async fn finish(self) -> StoreResult<()> {
        T::close(self.s).await?;
        if !self.built.is_empty() {
            self.store.store_snapshots(self.user, self.built).await?;
        }
        Ok(())
    }

    /// Reads the rows of the periods of `pieces` not read yet: their generations, and the
    /// blobs of their current snapshots unless the cache holds those snapshots.
    async fn load(&mut self, pieces: &[Piece], quarters_only: bool) -> StoreResult<()> {
        let cache = self.store.snapshot_cache();
        let missing: Vec<(Period, Option<Decoded>)> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Period(period) => Some(*period),
                Piece::Plays { .. } => None,
            })
            .filter(|p| !self.whole.contains(p) && (!quarters_only || !self.rows.contains_key(p)))
            .map(|p| {
                let held = cache.get(self.user, p).filter(|d| d.holds(!quarters_only));
                (p, held)
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let asked: Vec<(Period, Option<i64>)> = missing
            .iter()
            .map(|(p, d)| (*p, d.as_ref().map(|d| d.id)))
            .collect();
        let mut held: HashMap<Period, Decoded> = missing
            .into_iter()
            .filter_map(|(p, d)| Some((p, d?)))
            .collect();
        for row in T::period_rows(&mut self.s, self.user, &asked, quarters_only).await? {
            let period = row.period;
            let current = row
                .snapshot_id
                .filter(|_| row.built_generation == Some(row.generation));
            let generation = row.generation;
            let snapshot = match current {
                None => None,
                Some(id) => match held.remove(&period).filter(|d| d.id == id) {
                    Some(cached) => Some(cached),
                    None => {
                        let decoded = decode(row, id)?;
                        cache.put(self.user, period, decoded.clone());
                        Some(decoded)
                    }
                },
            };
            self.rows.insert(
                period,
                Seen {
                    generation,
                    snapshot,
                },
            );
        }
        if !quarters_only {
            self.whole.extend(asked.into_iter().map(|(p, _)| p));
        }
        Ok(())
    }

    /// Adds the figures of `[since, until)` to `sum`.
    async fn add_span(
        &mut self,
        sum: &mut FiguresSum,
        since: Timestamp,
        until: Option<Timestamp>,
        parts: Parts<'_>,
    ) -> StoreResult<()> {
        let pieces = decompose(since, until, self.now);
        self.load(&pieces, !parts.tracks && !parts.sources).await?;
        for piece in pieces {
            match piece {
                Piece::Period(period) => self.add_period(sum, period, parts).await?,
                Piece::Plays { since, until } => {
                    self.add_plays(sum, since, until, parts).await?;
                }
            }
        }
        Ok(())
    }

    async fn add_period(
        &mut self,
        sum: &mut FiguresSum,
        period: Period,
        parts: Parts<'_>,
    ) -> StoreResult<()> {
        let stored = self
            .fresh
            .get(&period)
            .or_else(|| self.rows.get(&period).and_then(|seen| usable(seen, parts)));
        if let Some(stored) = stored {
            add_stored(sum, stored, parts);
            return Ok(());
        }
        let built = match period {
            Period::Day(_) => self.build_day(period).await?,
            Period::Month(_) => self.build_month(period).await?,
        };
        add_stored(sum, &built, parts);
        self.fresh.insert(period, built);
        Ok(())
    }

    /// Keeps a snapshot built by this read (in the cache at once, in the database once the read
    /// is over).
    fn remember(&mut self, period: Period, figures: Figures) -> Decoded {
        let generation = self.rows.get(&period).map_or(0, |seen| seen.generation);
        let id = new_snapshot_id();
        self.built.push(Built {
            period,
            generation,
            id,
            blobs: snapshot::encode(period, &figures),
        });
        let built = Decoded {
            id,
            tracks: Some(figures.tracks.into()),
            sources: Some(figures.sources.into()),
            quarters: Some(figures.quarters.into()),
        };
        // Cached before it is stored: should the store refuse it (a write came first), no row
        // will carry its id, so it is never used.
        self.store
            .snapshot_cache()
            .put(self.user, period, built.clone());
        built
    }

    /// A day's figures from its plays.
    async fn build_day(&mut self, day: Period) -> StoreResult<Decoded> {
        let mut sum = FiguresSum::default();
        self.add_plays(&mut sum, day.start(), Some(day.end()), EVERYTHING)
            .await?;
        Ok(self.remember(day, sum.finish()))
    }

    /// A month's figures from its days' snapshots, building those that are missing.
    async fn build_month(&mut self, month: Period) -> StoreResult<Decoded> {
        let days = month.days();
        let pieces: Vec<Piece> = days.iter().copied().map(Piece::Period).collect();
        self.load(&pieces, false).await?;
        let mut sum = FiguresSum::default();
        for day in days {
            let stored = self.fresh.get(&day).or_else(|| {
                self.rows
                    .get(&day)
                    .and_then(|seen| usable(seen, EVERYTHING))
            });
            if let Some(stored) = stored {
                add_stored(&mut sum, stored, EVERYTHING);
            } else {
                let built = self.build_day(day).await?;
                add_stored(&mut sum, &built, EVERYTHING);
                self.fresh.insert(day, built);
            }
        }
        Ok(self.remember(month, sum.finish()))
    }

    /// The plays of `[since, until)`: tracks and sources from the plays, whole quarter hours
    /// from their aggregates and the partial ones at the ends from the plays.
    async fn add_plays(
        &mut self,
        sum: &mut FiguresSum,
        since: Timestamp,
        until: Option<Timestamp>,
        parts: Parts<'_>,
    ) -> StoreResult<()> {
        let user = self.user;
        if parts.tracks {
            let tracks = T::plays_tracks(&mut self.s, user, since, until, parts.among).await?;
            sum.add_tracks(&tracks);
        }
        if parts.sources {
            sum.add_sources(&T::plays_sources(&mut self.s, user, since, until).await?);
        }
        if parts.quarters {
            let split = split_quarters(since, until);
            for (from, to) in [split.head, split.tail].into_iter().flatten() {
                let counts = T::plays_quarter(&mut self.s, user, from, to).await?;
                if !counts.is_empty() {
                    sum.add_quarters(&[QuarterTally {
                        start: quarter_floor(from),
                        counts,
                    }]);
                }
            }
            if let Some((from, to)) = split.whole {
                sum.add_quarters(&T::quarter_rows(&mut self.s, user, from, to).await?);
            }
        }
        Ok(())
    }

    /// Splits the tally of each quarter hour that holds a cut, from its plays: the part before
    /// the cut keeps the quarter's start, the part after is keyed by the cut. `quarters` are
    /// those of `range`, in order.
    async fn split_at(
        &mut self,
        quarters: &mut Vec<QuarterTally>,
        cuts: &[Timestamp],
        range: TimeRange,
    ) -> StoreResult<()> {
        for &cut in cuts {
            let quarter = quarter_floor(cut);
            let Ok(i) = quarters.binary_search_by_key(&quarter, |q| q.start) else {
                continue;
            };
            let from = range.since.map_or(quarter, |s| s.max(quarter));
            let end = quarter.saturating_add_seconds(QUARTER_HOUR_MICROS / 1_000_000);
            let to = range.until.map_or(end, |u| u.min(end));
            if cut >= to {
                continue;
            }
            if cut <= from {
                // Every play of the tally is after the cut.
                quarters[i].start = from;
                continue;
            }
            let before = T::plays_quarter(&mut self.s, self.user, from, cut).await?;
            let after = T::plays_quarter(&mut self.s, self.user, cut, to).await?;
            let parts = [(quarter, before), (cut, after)]
                .into_iter()
                .filter(|(_, counts)| !counts.is_empty())
                .map(|(start, counts)| QuarterTally { start, counts });
            quarters.splice(i..=i, parts);
        }
        Ok(())
    }

    /// The figures of `range`, clipped to the history (nothing is played before the first play).
    async fn figures(
        &mut self,
        range: TimeRange,
        first_play: Option<Timestamp>,
        parts: Parts<'_>,
    ) -> StoreResult<Figures> {
        let mut sum = FiguresSum::default();
        let Some(first) = first_play else {
            return Ok(sum.finish());
        };
        let since = range
            .since
            .map_or(day_floor(first), |s| s.max(day_floor(first)));
        if range.until.is_none_or(|u| u > since) {
            self.add_span(&mut sum, since, range.until, parts).await?;
        }
        Ok(sum.finish())
    }
}

fn add_stored(sum: &mut FiguresSum, stored: &Decoded, parts: Parts<'_>) {
    if parts.tracks
        && let Some(tracks) = &stored.tracks
    {
        match parts.among {
            Some(among) => sum.add_tracks(among.iter().filter_map(|id| {
                tracks
                    .binary_search_by_key(id, |t| t.track_id)
                    .ok()
                    .map(|i| &tracks[i])
            })),
            None => sum.add_tracks(tracks.iter()),
        }
    }
    if parts.sources
        && let Some(sources) = &stored.sources
    {
        sum.add_sources(sources.iter());
    }
    if parts.quarters
        && let Some(quarters) = &stored.quarters
    {
        sum.add_quarters(quarters.iter());
    }
}

/// Random, so that ids from every replica and from before an erasure never meet.
fn new_snapshot_id() -> i64 {
    let (high, _) = uuid::Uuid::new_v4().as_u64_pair();
    i64::from_ne_bytes(high.to_ne_bytes())
}

impl<T: StatsSql> StatsStore for T {
    async fn library_stats(
        &self,
        user: UserId,
        range: TimeRange,
        top: u32,
        cuts: &[Timestamp],
    ) -> StoreResult<LibraryFigures> {
        let mut read = Read::begin(self, user).await?;
        let overview = T::overview(&mut read.s, user, range.is_all_time().then_some(top)).await?;
        let all_time = overview.all_time;
        let history = TimeRange::default();
        let mut history_quarters = read
            .figures(
                history,
                all_time.first,
                Parts {
                    tracks: false,
                    sources: false,
                    quarters: true,
                    among: None,
                },
            )
            .await?
            .quarters;
        read.split_at(&mut history_quarters, cuts, history).await?;
        let figures = if range.is_all_time() {
            None
        } else {
            let mut figures = read.figures(range, all_time.first, EVERYTHING).await?;
            read.split_at(&mut figures.quarters, cuts, range).await?;
            Some(figures)
        };
        read.finish().await?;
        Ok(LibraryFigures {
            all_time,
            all_time_top: overview.top,
            all_time_sources: overview.sources,
            range: figures,
            history_quarters,
            liked: overview.liked,
        })
    }

    async fn track_play_counts(
        &self,
        user: UserId,
        tracks: &[TrackId],
        range: TimeRange,
    ) -> StoreResult<TrackCounts> {
        let mut wanted = tracks.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let (tallies, liked) = if range.is_all_time() {
            self.all_time_track_counts(user, &wanted).await?
        } else {
            let mut read = Read::begin(self, user).await?;
            let first = T::all_time(&mut read.s, user).await?.first;
            let parts = Parts {
                tracks: true,
                sources: false,
                quarters: false,
                among: Some(&wanted),
            };
            let tallies = read.figures(range, first, parts).await?.tracks;
            let liked = T::liked_among(&mut read.s, user, &wanted).await?;
            read.finish().await?;
            (tallies, liked)
        };
        Ok(TrackCounts {
            tallies: tallies.into_iter().map(|t| (t.track_id, t)).collect(),
            liked,
        })
    }

    async fn period_tracks(
        &self,
        user: UserId,
        period: TimeRange,
        previous: TimeRange,
    ) -> StoreResult<PeriodTracks> {
        let mut read = Read::begin(self, user).await?;
        let first = T::all_time(&mut read.s, user).await?.first;
        let parts = Parts {
            tracks: true,
            sources: false,
            quarters: false,
            among: None,
        };
        let current = read.figures(period, first, parts).await?.tracks;
        let before = read.figures(previous, first, parts).await?.tracks;
        let first_played = T::first_played_in(&mut read.s, user, period).await?;
        read.finish().await?;
        Ok(PeriodTracks {
            current,
            previous: before,
            first_played,
        })
    }
}

/// A per-track row as both backends return it.
#[derive(sqlx::FromRow)]
pub struct TrackRow {
    pub track_id: TrackId,
    pub plays: i64,
    pub counted: i64,
    pub seconds: i64,
    pub first: Timestamp,
    pub last: Timestamp,
}

/// A row of the overview: `part` says which (see `OVERVIEW_*`); the columns it does not use
/// are NULL or 0.
#[derive(sqlx::FromRow)]
pub struct OverviewRow {
    pub part: i16,
    pub track_id: Option<TrackId>,
    pub source: Option<String>,
    #[sqlx(flatten)]
    pub counts: CountsRow,
    /// Distinct tracks (totals) or liked tracks (liked).
    pub number: i64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

pub const OVERVIEW_TOTALS: i16 = 0;
pub const OVERVIEW_LIKED: i16 = 1;
pub const OVERVIEW_TOP: i16 = 2;
pub const OVERVIEW_SOURCE: i16 = 3;

/// Sorts the overview's rows into its parts; the top tracks keep the order they came in.
pub fn overview(rows: Vec<OverviewRow>) -> StoreResult<Overview> {
    let mut overview = Overview::default();
    for row in rows {
        match (row.part, row.track_id, row.source) {
            (OVERVIEW_TOTALS, _, _) => {
                overview.all_time = AllTime {
                    counts: row.counts.into_counts()?,
                    tracks: count(row.number)?,
                    first: row.first,
                    last: row.last,
                };
            }
            (OVERVIEW_LIKED, _, _) => overview.liked = count(row.number)?,
            (OVERVIEW_TOP, Some(track_id), _) => {
                let (Some(first), Some(last)) = (row.first, row.last) else {
                    return Err(super::StoreError::Corrupt("top track without times".into()));
                };
                let mut counts = row.counts.into_counts()?;
                counts.completed = 0;
                overview.top.push(TrackTally {
                    track_id,
                    counts,
                    first,
                    last,
                });
            }
            (OVERVIEW_SOURCE, _, Some(source)) => overview.sources.push(SourceTally {
                source,
                counts: row.counts.into_counts()?,
            }),
            (part, _, _) => {
                return Err(super::StoreError::Corrupt(format!("overview part {part}")));
            }
        }
    }
    Ok(overview)
}

/// A row of the all-time play counts: a played track's tallies (`part` 0) or a liked track
/// (`part` 1, tallies NULL).
#[derive(sqlx::FromRow)]
pub struct TrackCountRow {
    pub part: i16,
    pub track_id: TrackId,
    pub plays: Option<i64>,
    pub counted: Option<i64>,
    pub seconds: Option<i64>,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// The played tracks' tallies and the liked tracks among the rows.
pub fn track_counts(rows: Vec<TrackCountRow>) -> StoreResult<(Vec<TrackTally>, Vec<TrackId>)> {
    let mut tallies = Vec::with_capacity(rows.len());
    let mut liked = Vec::new();
    for r in rows {
        match (r.part, r.plays, r.counted, r.seconds, r.first, r.last) {
            (0, Some(plays), Some(counted), Some(seconds), Some(first), Some(last)) => {
                tallies.push(TrackTally {
                    track_id: r.track_id,
                    counts: Counts {
                        plays: count(plays)?,
                        counted: count(counted)?,
                        completed: 0,
                        seconds: count(seconds)?,
                    },
                    first,
                    last,
                });
            }
            (1, ..) => liked.push(r.track_id),
            (part, ..) => {
                return Err(super::StoreError::Corrupt(format!(
                    "play counts part {part}"
                )));
            }
        }
    }
    Ok((tallies, liked))
}

/// A per-source row.
#[derive(sqlx::FromRow)]
pub struct SourceRow {
    pub source: String,
    pub plays: i64,
    pub counted: i64,
    pub completed: i64,
    pub seconds: i64,
}

/// A quarter-hour row.
#[derive(sqlx::FromRow)]
pub struct QuarterRow {
    pub start: Timestamp,
    pub plays: i64,
    pub counted: i64,
    pub completed: i64,
    pub seconds: i64,
}

/// Plays, counted, completed and seconds of a set of plays.
#[derive(sqlx::FromRow)]
pub struct CountsRow {
    pub plays: i64,
    pub counted: i64,
    pub completed: i64,
    pub seconds: i64,
}

/// The all-time totals row (all zero, and no first play, for a listener without plays).
#[derive(sqlx::FromRow)]
pub struct AllTimeRow {
    #[sqlx(flatten)]
    pub counts: CountsRow,
    pub tracks: i64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// A period's row, its kind and start as stored.
#[derive(sqlx::FromRow)]
pub struct PeriodDbRow {
    pub period_kind: i16,
    pub period_start: Timestamp,
    pub generation: i64,
    pub built_generation: Option<i64>,
    pub snapshot_id: Option<i64>,
    pub tracks: Option<Vec<u8>>,
    pub sources: Option<Vec<u8>>,
    pub quarters: Option<Vec<u8>>,
}

pub const DAY_KIND: i16 = 1;
pub const MONTH_KIND: i16 = 2;

/// How a period is keyed in `user_period_stats`.
pub fn period_key(period: Period) -> (i16, Timestamp) {
    match period {
        Period::Day(start) => (DAY_KIND, start),
        Period::Month(start) => (MONTH_KIND, start),
    }
}

impl CountsRow {
    pub fn into_counts(self) -> StoreResult<Counts> {
        Ok(Counts {
            plays: count(self.plays)?,
            counted: count(self.counted)?,
            completed: count(self.completed)?,
            seconds: count(self.seconds)?,
        })
    }
}

impl AllTimeRow {
    pub fn into_all_time(self) -> StoreResult<AllTime> {
        Ok(AllTime {
            counts: self.counts.into_counts()?,
            tracks: count(self.tracks)?,
            first: self.first,
            last: self.last,
        })
    }
}

pub fn tracks(rows: Vec<TrackRow>) -> StoreResult<Vec<TrackTally>> {
    rows.into_iter()
        .map(|r| {
            Ok(TrackTally {
                track_id: r.track_id,
                counts: Counts {
                    plays: count(r.plays)?,
                    counted: count(r.counted)?,
                    completed: 0,
                    seconds: count(r.seconds)?,
                },
                first: r.first,
                last: r.last,
            })
        })
        .collect()
}

pub fn sources(rows: Vec<SourceRow>) -> StoreResult<Vec<SourceTally>> {
    rows.into_iter()
        .map(|r| {
            Ok(SourceTally {
                source: r.source,
                counts: CountsRow {
                    plays: r.plays,
                    counted: r.counted,
                    completed: r.completed,
                    seconds: r.seconds,
                }
                .into_counts()?,
            })
        })
        .collect()
}

pub fn quarters(rows: Vec<QuarterRow>) -> StoreResult<Vec<QuarterTally>> {
    rows.into_iter()
        .map(|r| {
            Ok(QuarterTally {
                start: r.start,
                counts: CountsRow {
                    plays: r.plays,
                    counted: r.counted,
                    completed: r.completed,
                    seconds: r.seconds,
                }
                .into_counts()?,
            })
        })
        .collect()
}

pub fn periods(rows: Vec<PeriodDbRow>) -> StoreResult<Vec<PeriodRow>> {
    rows.into_iter()
        .map(|r| {
            let period = match r.period_kind {
                DAY_KIND => Period::Day(r.period_start),
                MONTH_KIND => Period::Month(r.period_start),
                kind => {
                    return Err(super::StoreError::Corrupt(format!("period kind {kind}")));
                }
            };
            Ok(PeriodRow {
                period,
                generation: r.generation,
                built_generation: r.built_generation,
                snapshot_id: r.snapshot_id,
                tracks: r.tracks,
                sources: r.sources,
                quarters: r.quarters,
            })
        })
        .collect()
}
