//! Counts of plays, per track, per source and per UTC quarter hour: what a period's snapshot
//! holds, what a query over a span of plays returns, and what adding disjoint spans gives.
use std::collections::HashMap;

use crate::domain::{RankPosition, Timestamp, TrackId};

/// Plays, the plays that count, completed plays and seconds listened, of a set of plays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub plays: u64,
    pub counted: u64,
    pub completed: u64,
    pub seconds: u64,
}

impl Counts {
    pub fn of_play(played_for_seconds: u32, completed: bool, counted: bool) -> Self {
        Self {
            plays: 1,
            counted: u64::from(counted),
            completed: u64::from(completed),
            seconds: u64::from(played_for_seconds),
        }
    }

    /// Plays that do not count.
    pub fn skipped(&self) -> u64 {
        self.plays.saturating_sub(self.counted)
    }

    pub fn is_empty(&self) -> bool {
        self.plays == 0
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Self) {
        self.plays += other.plays;
        self.counted += other.counted;
        self.completed += other.completed;
        self.seconds += other.seconds;
    }
}

/// One track's plays in some span, with the first and last of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackTally {
    pub track_id: TrackId,
    pub counts: Counts,
    pub first: Timestamp,
    pub last: Timestamp,
}

impl TrackTally {
    pub fn rank_position(&self) -> RankPosition {
        RankPosition {
            counted: self.counts.counted,
            plays: self.counts.plays,
            seconds: self.counts.seconds,
            track_id: self.track_id,
        }
    }

    fn absorb(&mut self, other: &TrackTally) {
        self.counts += other.counts;
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTally {
    /// "" for plays recorded without a source.
    pub source: String,
    pub counts: Counts,
}

/// The plays started in the UTC quarter hour beginning at `start` (a multiple of 15 minutes),
/// or in the part of it a span covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarterTally {
    pub start: Timestamp,
    pub counts: Counts,
}

/// The figures of the plays of one span of time. Each list is sorted: tracks by id, sources by
/// name (byte order), quarters by start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub tracks: Vec<TrackTally>,
    pub sources: Vec<SourceTally>,
    pub quarters: Vec<QuarterTally>,
}

/// The sum of the figures of disjoint spans.
#[derive(Debug)]
pub struct FiguresSum {
    /// One entry per track. A range adds tens of lists of thousands of tracks; summing each into
    /// a map costs one probe per entry, where merging sorted lists walked the whole sum each
    /// time. foldhash is seeded per process, so crafted track ids cannot force collisions.
    tracks: HashMap<TrackId, TrackTally, foldhash::fast::RandomState>,
    sources: HashMap<String, Counts>,
    /// In order of start as long as the spans come in order (they do: a read walks its range
    /// from the start), so adding is an append; out of order, `finish` sorts.
    quarters: Vec<QuarterTally>,
    quarters_sorted: bool,
}

impl Default for FiguresSum {
    fn default() -> Self {
        Self {
            tracks: HashMap::default(),
            sources: HashMap::new(),
            quarters: Vec::new(),
            quarters_sorted: true,
        }
    }
}

impl FiguresSum {
    /// Sums in the tallies of another span (a track may appear more than once).
    pub fn add_tracks<'a>(&mut self, tracks: impl IntoIterator<Item = &'a TrackTally>) {
        let tracks = tracks.into_iter();
        if self.tracks.is_empty() {
            // Later spans mostly repeat the tracks held: reserving for them would only grow
            // the table.
            self.tracks.reserve(tracks.size_hint().0.min(1 << 16));
        }
        for t in tracks {
            self.tracks
                .entry(t.track_id)
                .and_modify(|held| held.absorb(t))
                .or_insert(*t);
        }
    }

    pub fn add_sources<'a>(&mut self, sources: impl IntoIterator<Item = &'a SourceTally>) {
        for s in sources {
            *self.sources.entry(s.source.clone()).or_default() += s.counts;
        }
    }

    pub fn add_quarters<'a>(&mut self, quarters: impl IntoIterator<Item = &'a QuarterTally>) {
        for q in quarters {
            match self.quarters.last_mut() {
                // The quarter a span's partial head shares with the previous span's tail.
                Some(last) if last.start == q.start => last.counts += q.counts,
                Some(last) if last.start > q.start => {
                    self.quarters_sorted = false;
                    self.quarters.push(*q);
                }
                _ => self.quarters.push(*q),
            }
        }
    }

    pub fn finish(self) -> Figures {
        let mut tracks: Vec<TrackTally> = self.tracks.into_values().collect();
        tracks.sort_unstable_by_key(|t| t.track_id);
        let mut sources: Vec<SourceTally> = self
            .sources
            .into_iter()
            .map(|(source, counts)| SourceTally { source, counts })
            .collect();
        sources.sort_unstable_by(|a, b| a.source.cmp(&b.source));
        let mut quarters = self.quarters;
        if !self.quarters_sorted {
            quarters.sort_by_key(|q| q.start);
            quarters.dedup_by(|later, earlier| {
                let same = later.start == earlier.start;
                if same {
                    earlier.counts += later.counts;
                }
                same
            });
        }
        Figures {
            tracks,
            sources,
            quarters,
        }
    }
}

impl Figures {
    /// Plays, counted, completed and seconds over every quarter.
    pub fn totals(&self) -> Counts {
        let mut sum = Counts::default();
        for q in &self.quarters {
            sum += q.counts;
        }
        sum
    }

    pub fn first_played(&self) -> Option<Timestamp> {
        self.tracks.iter().map(|t| t.first).min()
    }

    pub fn last_played(&self) -> Option<Timestamp> {
        self.tracks.iter().map(|t| t.last).max()
    }
}

/// The order of every ranking of tracks (see `RankPosition`).
pub fn rank_tracks(tracks: &mut [TrackTally]) {
    tracks.sort_unstable_by_key(TrackTally::rank_position);
}

/// Most plays first, then source in byte order.
pub fn rank_sources(sources: &mut [SourceTally]) {
    sources.sort_unstable_by(|a, b| {
        b.counts
            .plays
            .cmp(&a.counts.plays)
            .then_with(|| a.source.as_bytes().cmp(b.source.as_bytes()))
    });
}
