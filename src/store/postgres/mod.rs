//! The PostgreSQL store, for production. Plays are keyed `(user_id, played_at, id)`; every query
//! is scoped to one user and served from an index that starts with `user_id`.
use std::{sync::Arc, time::Duration};

use sqlx::{PgPool, migrate::Migrator, postgres::PgPoolOptions};

use super::{
    CacheStatus, EventFeed, GroupStatus, PoolStatus, StoreResult, Upkeep,
    cache::SnapshotCache,
    group::{GroupCommit, GroupLimits},
};
use crate::domain::Timestamp;

mod admin;
mod counting;
mod likes;
mod live;
mod partitions;
mod plays;
mod relay;
mod stats;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    partitions: partitions::Partitions,
    cache: Arc<SnapshotCache>,
    group: GroupCommit,
    feed: EventFeed,
    /// Started by a serving process only (see `Upkeep::relay_events`).
    relay: Arc<std::sync::OnceLock<relay::Relay>>,
}

impl PgStore {
    /// Connects lazily-checked: the first connection is made here, so a wrong URL fails at start.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        let partitions = partitions::Partitions::default();
        let feed = EventFeed::relayed();
        let group = GroupCommit::start(
            plays::PgWriter {
                pool: pool.clone(),
                partitions: partitions.clone(),
                feed: feed.clone(),
            },
            // Two groups at once: one forms and travels while the other commits.
            GroupLimits {
                in_flight: 2,
                group_plays: 5_000,
                // A RecordPlays of 1,000 is two parts, committed side by side.
                part_plays: 500,
                queue_plays: GroupLimits::DEFAULT_QUEUE_PLAYS,
                max_wait: GroupLimits::DEFAULT_MAX_WAIT,
                live_floor_calls: GroupLimits::DEFAULT_LIVE_FLOOR_CALLS,
            },
        );
        Ok(Self {
            pool,
            partitions,
            cache: Arc::default(),
            group,
            feed,
            relay: Arc::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        Ok(MIGRATOR.run(&self.pool).await?)
    }

    /// Reverts the most recently applied migration; `None` when none is applied.
    pub async fn undo_last_migration(&self) -> StoreResult<Option<i64>> {
        let has_table: bool =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        if !has_table {
            return Ok(None);
        }
        let applied: Vec<i64> = sqlx::query_scalar(super::database::APPLIED_MIGRATIONS)
            .fetch_all(&self.pool)
            .await?;
        let Some(&last) = applied.first() else {
            return Ok(None);
        };
        MIGRATOR
            .undo(&self.pool, applied.get(1).copied().unwrap_or(0))
            .await?;
        Ok(Some(last))
    }
}

/// Idempotency records deleted per statement: each batch is a short transaction.
const KEY_BATCH: i64 = 10_000;

impl Upkeep for PgStore {
    async fn housekeeping(&self) -> StoreResult<()> {
        self.prepare_partitions().await
    }

    fn relay_events(&self) {
        self.relay
            .get_or_init(|| relay::Relay::start(self.pool.clone(), self.feed.clone()));
    }

    fn stats_cache_status(&self) -> CacheStatus {
        self.cache.status()
    }

    fn write_group_status(&self) -> GroupStatus {
        self.group.status()
    }

    fn pool_status(&self) -> PoolStatus {
        PoolStatus {
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.pool.options().get_max_connections(),
        }
    }

    async fn history_size_estimate(&self) -> StoreResult<u64> {
        // reltuples is -1 for a partition never analyzed yet.
        let rows: f64 = sqlx::query_scalar(
            "SELECT COALESCE(sum(GREATEST(c.reltuples, 0)), 0)::float8
             FROM library_play_partitions p JOIN pg_class c ON c.oid = p.part",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(rows as u64)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn forget_request_ids(
        &self,
        played_before: Timestamp,
        used_before: Timestamp,
    ) -> StoreResult<u64> {
        let mut forgotten = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM play_requests WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM play_requests
                     WHERE played_at < $1 AND created_at < $2 LIMIT $3))",
            )
            .bind(played_before)
            .bind(used_before)
            .bind(KEY_BATCH)
            .execute(&self.pool)
            .await?;
            forgotten += done.rows_affected();
            if done.rows_affected() < KEY_BATCH as u64 {
                return Ok(forgotten);
            }
        }
    }
}
