//! Period snapshots kept decoded in the process. A stored snapshot never changes: a write into
//! its period makes a new generation, and a rebuild stores it under a new `snapshot_id`. So an
//! entry is good exactly while the row the read sees carries the same id, and a read asks the
//! database only for the ids (the blobs stay there). Reads stay exact however stale the cache
//! is; the cache only saves transferring and decoding the blobs, which was most of a range
//! read's cost. Bounded by a byte budget, least recently used first out.
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use crate::domain::{Period, QuarterTally, SourceTally, TrackTally, UserId};

/// The decoded parts of one stored snapshot; a part is `None` when it was not read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    pub id: i64,
    pub tracks: Option<Arc<[TrackTally]>>,
    pub sources: Option<Arc<[SourceTally]>>,
    pub quarters: Option<Arc<[QuarterTally]>>,
}

impl Decoded {
    /// Whether it holds the parts a read needs.
    pub fn holds(&self, tracks_and_sources: bool) -> bool {
        self.quarters.is_some()
            && (!tracks_and_sources || (self.tracks.is_some() && self.sources.is_some()))
    }

    fn bytes(&self) -> usize {
        let tracks = self.tracks.as_ref().map_or(0, |t| size_of_val(&**t));
        let sources = self.sources.as_ref().map_or(0, |s| {
            s.iter()
                .map(|s| size_of::<SourceTally>() + s.source.len())
                .sum()
        });
        let quarters = self.quarters.as_ref().map_or(0, |q| size_of_val(&**q));
        // The key, the map's slot and the Arcs' counters.
        const OVERHEAD: usize = 128;
        OVERHEAD + tracks + sources + quarters
    }

    /// Adds the parts of `other` (the same snapshot) that this one lacks.
    fn fill_from(&mut self, other: Decoded) {
        self.tracks = self.tracks.take().or(other.tracks);
        self.sources = self.sources.take().or(other.sources);
        self.quarters = self.quarters.take().or(other.quarters);
    }
}

struct Entry {
    snapshot: Decoded,
    bytes: usize,
    used: u64,
}

#[derive(Default)]
struct Entries {
    map: HashMap<(UserId, Period), Entry>,
    bytes: usize,
    clock: u64,
}

/// What the cache holds and how often it answered, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStatus {
    pub bytes: usize,
    pub entries: usize,
    pub budget: usize,
    pub hits: u64,
    pub misses: u64,
}

pub struct SnapshotCache {
    entries: Mutex<Entries>,
    budget: AtomicUsize,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// 256 MiB: a listener with a million plays over a year needs about 40 MiB for every day and
/// month of it, and a range read touches far fewer.
pub const DEFAULT_BUDGET: usize = 256 << 20;

impl Default for SnapshotCache {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET)
    }
}

impl SnapshotCache {
    pub fn new(budget: usize) -> Self {
        Self {
            entries: Mutex::default(),
            budget: AtomicUsize::new(budget),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Changes the budget (0 turns the cache off), evicting at once if it shrank.
    pub fn set_budget(&self, budget: usize) {
        self.budget.store(budget, Ordering::Relaxed);
        let mut entries = self.lock();
        evict(&mut entries, budget);
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves at worst a stale byte count: keep serving.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The snapshot of a period held for a listener, if any (whichever id it has).
    pub fn get(&self, user: UserId, period: Period) -> Option<Decoded> {
        let mut entries = self.lock();
        entries.clock += 1;
        let now = entries.clock;
        let found = entries.map.get_mut(&(user, period)).map(|entry| {
            entry.used = now;
            entry.snapshot.clone()
        });
        drop(entries);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps a snapshot read from the database or built by a read; parts of the same snapshot
    /// held already are kept.
    pub fn put(&self, user: UserId, period: Period, mut snapshot: Decoded) {
        let budget = self.budget.load(Ordering::Relaxed);
        let mut entries = self.lock();
        entries.clock += 1;
        let used = entries.clock;
        if let Some(old) = entries.map.remove(&(user, period)) {
            entries.bytes -= old.bytes;
            if old.snapshot.id == snapshot.id {
                snapshot.fill_from(old.snapshot);
            }
        }
        let bytes = snapshot.bytes();
        if bytes > budget / 4 {
            // Bigger than a quarter of the budget: it would push out everything else.
            return;
        }
        entries.bytes += bytes;
        entries.map.insert(
            (user, period),
            Entry {
                snapshot,
                bytes,
                used,
            },
        );
        evict(&mut entries, budget);
    }

    /// Drops a listener's snapshots (after an erasure: their ids would not match again anyway,
    /// but their memory is freed now).
    pub fn forget_user(&self, user: UserId) {
        let mut entries = self.lock();
        let mut freed = 0;
        entries.map.retain(|(u, _), entry| {
            let keep = *u != user;
            if !keep {
                freed += entry.bytes;
            }
            keep
        });
        entries.bytes -= freed;
    }

    pub fn status(&self) -> CacheStatus {
        let entries = self.lock();
        CacheStatus {
            bytes: entries.bytes,
            entries: entries.map.len(),
            budget: self.budget.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

/// Removes the least recently used entries until the rest fit in 90 % of the budget, so that
/// evictions come in batches rather than on every insert.
fn evict(entries: &mut Entries, budget: usize) {
    if entries.bytes <= budget {
        return;
    }
    let target = budget / 10 * 9;
    let mut by_age: Vec<((UserId, Period), u64)> =
        entries.map.iter().map(|(k, e)| (*k, e.used)).collect();
    by_age.sort_unstable_by_key(|&(_, used)| used);
    for (key, _) in by_age {
        if entries.bytes <= target {
            break;
        }
        if let Some(entry) = entries.map.remove(&key) {
            entries.bytes -= entry.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Counts, Timestamp, TrackId};

    fn day(n: i64) -> Period {
        Period::Day(Timestamp::from_micros(n * 86_400_000_000).expect("a day"))
    }

    fn snapshot(id: i64, tracks: usize) -> Decoded {
        let tally = TrackTally {
            track_id: TrackId::from_uuid(uuid::Uuid::nil()),
            counts: Counts::default(),
            first: Timestamp::MIN,
            last: Timestamp::MIN,
        };
        Decoded {
            id,
            tracks: Some(vec![tally; tracks].into()),
            sources: Some(Vec::new().into()),
            quarters: Some(Vec::new().into()),
        }
    }

    #[test]
    fn the_least_recently_used_snapshots_leave_first_when_the_budget_is_full() {
        let one = snapshot(1, 100).bytes();
        let cache = SnapshotCache::new(one * 4);
        let user = UserId::from_uuid(uuid::Uuid::new_v4());
        for n in 0..4 {
            cache.put(user, day(n), snapshot(n, 100));
        }
        // Day 0 was used last, so day 1 is the oldest when day 4 arrives.
        assert!(cache.get(user, day(0)).is_some());
        cache.put(user, day(4), snapshot(4, 100));
        assert!(cache.get(user, day(1)).is_none());
        assert!(cache.get(user, day(0)).is_some());
        assert!(cache.get(user, day(4)).is_some());
        let status = cache.status();
        assert!(status.bytes <= status.budget, "{status:?}");
        assert_eq!(status.bytes, status.entries * one);
    }

    #[test]
    fn parts_of_the_same_snapshot_are_kept_and_a_new_snapshot_replaces_them() {
        let cache = SnapshotCache::default();
        let user = UserId::from_uuid(uuid::Uuid::new_v4());
        let quarters_only = Decoded {
            tracks: None,
            sources: None,
            ..snapshot(7, 0)
        };
        cache.put(user, day(1), snapshot(7, 3));
        cache.put(user, day(1), quarters_only.clone());
        let held = cache.get(user, day(1)).expect("held");
        assert_eq!(held.tracks.map(|t| t.len()), Some(3));
        cache.put(
            user,
            day(1),
            Decoded {
                id: 8,
                ..quarters_only
            },
        );
        let held = cache.get(user, day(1)).expect("held");
        assert_eq!((held.id, held.holds(true)), (8, false));
        cache.forget_user(user);
        assert_eq!(cache.status().bytes, 0);
        assert!(cache.get(user, day(1)).is_none());
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let cache = SnapshotCache::new(0);
        let user = UserId::from_uuid(uuid::Uuid::new_v4());
        cache.put(user, day(1), snapshot(1, 1));
        assert!(cache.get(user, day(1)).is_none());
    }
}
