//! Monthly partitions of `plays`. Migration 0002 defines `library_ensure_play_partition`; the
//! service calls it for the coming months at start-up and daily, and before writing plays into a
//! month it has not seen yet (imports reach back years). Known months are remembered in memory,
//! so the common write pays nothing.
use time::{Month, OffsetDateTime};

use super::{PgStore, to_pg};
use crate::{domain::Timestamp, store::StoreResult};

/// Months ahead of the current one kept ready.
const MONTHS_AHEAD: u8 = 2;

fn month_of(t: OffsetDateTime) -> (i32, u8) {
    (t.year(), u8::from(t.month()))
}

impl PgStore {
    pub(super) async fn ensure_partitions(
        &self,
        times: impl IntoIterator<Item = Timestamp>,
    ) -> StoreResult<()> {
        let missing: Vec<OffsetDateTime> = {
            let known = self
                .partitions
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut missing: Vec<OffsetDateTime> = Vec::new();
            for t in times.into_iter().map(to_pg) {
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
                .fetch_one(&self.pool)
                .await?;
            if created {
                tracing::info!(year = t.year(), month = u8::from(t.month()), "created a plays partition");
            }
            self.partitions
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(month_of(t));
        }
        Ok(())
    }

    /// Creates the partitions of this month and the next ones ahead of time.
    pub async fn prepare_partitions(&self) -> StoreResult<()> {
        let now = OffsetDateTime::now_utc();
        let (mut year, mut month) = (now.year(), now.month());
        let mut months = Vec::new();
        for _ in 0..=MONTHS_AHEAD {
            let first = time::Date::from_calendar_date(year, month, 1)
                .map(|d| d.midnight().assume_utc())
                .unwrap_or(now);
            months.push(Timestamp::from_micros(super::micros(first)?).unwrap_or(Timestamp::now()));
            if month == Month::December {
                year += 1;
            }
            month = month.next();
        }
        // Forget what is known so that a partition dropped behind the service's back is recreated.
        self.partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
        self.ensure_partitions(months).await
    }
}
