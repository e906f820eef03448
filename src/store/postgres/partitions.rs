//! Monthly partitions of `plays`. Migration 0002 defines `library_ensure_play_partition`; the
//! service calls it for the coming months at start-up and daily, and before writing plays into a
//! month it has not seen yet (imports reach back years). Known months are remembered in memory,
//! so the common write pays nothing.
use jiff::{Span, civil::Date, tz::TimeZone};

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use sqlx::PgPool;

use super::PgStore;
use crate::{domain::Timestamp, store::StoreResult};

/// Months ahead of the current one kept ready.
const MONTHS_AHEAD: i64 = 2;

/// The UTC month of an instant, as (year, month).
fn month_of(t: Timestamp) -> (i16, i8) {
    let day = t.to_jiff().to_zoned_datetime(TimeZone::UTC).date();
    (day.year(), day.month())
}

/// The months whose plays partition is known to exist, so that writes skip the check. Shared
/// by the store and its group writer.
#[derive(Clone, Default)]
pub(super) struct Partitions(Arc<Mutex<HashSet<(i16, i8)>>>);

impl Partitions {
    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<(i16, i8)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn forget(&self) {
        self.known().clear();
    }

    pub(super) async fn ensure(
        &self,
        pool: &PgPool,
        times: impl IntoIterator<Item = Timestamp>,
    ) -> StoreResult<()> {
        let missing: Vec<Timestamp> = {
            let known = self.known();
            let mut missing: Vec<Timestamp> = Vec::new();
            for t in times {
                let month = month_of(t);
                if !known.contains(&month) && !missing.iter().any(|m| month_of(*m) == month) {
                    missing.push(t);
                }
            }
            missing
        };
        for t in missing {
            let created: bool = sqlx::query_scalar("SELECT library_ensure_play_partition($1)")
                .bind(t)
                .fetch_one(pool)
                .await?;
            let (year, month) = month_of(t);
            if created {
                tracing::info!(year, month, "created a plays partition");
            }
            self.known().insert((year, month));
        }
        Ok(())
    }
}

impl PgStore {
    /// Creates the partitions of this month and the next ones ahead of time.
    pub async fn prepare_partitions(&self) -> StoreResult<()> {
        let (year, month) = month_of(Timestamp::now());
        let first = Date::new(year, month, 1).unwrap_or_default();
        let months: Vec<Timestamp> = (0..=MONTHS_AHEAD)
            .filter_map(|ahead| first.checked_add(Span::new().months(ahead)).ok())
            .filter_map(|day| day.to_zoned_datetime(TimeZone::UTC).ok())
            .map(|start| Timestamp::from_jiff(start.timestamp()))
            .collect();
        // Forget what is known so that a partition dropped behind the service's back is recreated.
        self.partitions.forget();
        self.partitions.ensure(&self.pool, months).await
    }
}
