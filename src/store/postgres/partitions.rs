//! Monthly partitions of `plays`. Migration 0002 defines `library_ensure_play_partition`; the
//! service calls it for the coming months at start-up and daily, and before writing plays into a
//! month it has not seen yet (imports reach back years). Known months are remembered in memory,
//! so the common write pays nothing.
use time::{Month, OffsetDateTime};

use super::{PgStore, to_pg};
use crate::{
    domain::Timestamp,
    store::{StoreResult, rows::count},
};

/// Months ahead of the current one kept ready.
const MONTHS_AHEAD: u8 = 2;

fn month_of(t: OffsetDateTime) -> (i32, u8) {
    (t.year(), u8::from(t.month()))
}

impl PgStore {
    pub(super) fn forget_partitions(&self) {
        self.partitions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    pub(super) async fn ensure_partitions(
        &self,
        times: impl IntoIterator<Item = OffsetDateTime>,
    ) -> StoreResult<()> {
        let missing: Vec<OffsetDateTime> = {
            let known = self
                .partitions
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut missing: Vec<OffsetDateTime> = Vec::new();
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
                .fetch_one(&self.pool)
                .await?;
            if created {
                tracing::info!(
                    year = t.year(),
                    month = u8::from(t.month()),
                    "created a plays partition"
                );
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
            months.push(first);
            if month == Month::December {
                year += 1;
            }
            month = month.next();
        }
        // Forget what is known so that a partition dropped behind the service's back is recreated.
        self.forget_partitions();
        self.ensure_partitions(months).await
    }
}

impl PgStore {
    /// Retention: every partition that ends at or before `cutoff` is dropped whole (its plays
    /// taken out of the aggregates first, by `library_drop_play_partition`); the plays before
    /// `cutoff` in the one partition it cuts through are deleted row by row, which the delete
    /// trigger accounts for. Each partition goes in its own transaction, so a failure part-way
    /// leaves every figure right and a re-run finishes the job.
    pub(super) async fn purge_before(&self, cutoff: Timestamp, dry_run: bool) -> StoreResult<u64> {
        let cutoff = to_pg(cutoff);
        if dry_run {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plays WHERE played_at < $1")
                .bind(cutoff)
                .fetch_one(&self.pool)
                .await?;
            return count(n);
        }
        let whole: Vec<String> = sqlx::query_scalar(
            "SELECT part::text FROM library_play_partitions WHERE upper_bound <= $1 ORDER BY upper_bound",
        )
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        let mut deleted = 0u64;
        for part in whole {
            let mut tx = self.pool.begin().await?;
            let n: i64 = sqlx::query_scalar("SELECT library_drop_play_partition($1::regclass)")
                .bind(&part)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            self.forget_partitions();
            tracing::info!(partition = %part, plays = n, "dropped a plays partition for retention");
            deleted += count(n)?;
        }
        let rest = sqlx::query("DELETE FROM plays WHERE played_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(deleted + rest.rows_affected())
    }
}
