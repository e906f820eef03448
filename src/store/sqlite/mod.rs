//! The embedded SQLite store: one file, nothing to install. Writes go through a single writer
//! connection in `BEGIN IMMEDIATE` transactions, so concurrent writers queue inside the service
//! instead of meeting SQLITE_BUSY; reads use their own pool and, with WAL, never wait for writes.
use std::{str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    Sqlite, SqlitePool, Transaction,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::{
    CacheStatus, EventFeed, GroupStatus, PoolStatus, StoreError, StoreResult, Upkeep,
    cache::SnapshotCache,
    group::{GroupCommit, GroupLimits},
    rows::count,
};
use crate::domain::Timestamp;

mod admin;
mod likes;
mod live;
mod plays;
mod stats;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// Rows deleted per write transaction by retention: the single writer is released between
/// chunks, so listeners' writes are never held up for a whole purge.
const CHUNK: i64 = 10_000;

#[derive(Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    cache: Arc<SnapshotCache>,
    group: GroupCommit,
    feed: EventFeed,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file named by a `sqlite://path` URL.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        if let Some(dir) = options
            .get_filename()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        let feed = EventFeed::default();
        let group = GroupCommit::start(
            plays::SqliteWriter {
                writer: writer.clone(),
                feed: feed.clone(),
            },
            // One writer: a second group would only wait for it.
            GroupLimits {
                in_flight: 1,
                group_plays: 5_000,
                part_plays: usize::MAX,
                queue_plays: GroupLimits::DEFAULT_QUEUE_PLAYS,
                // One writer commits a group at a time, and a busy one takes tens of
                // milliseconds: a call waits up to a whole group before its own.
                max_wait: Duration::from_millis(100),
                live_floor_calls: GroupLimits::DEFAULT_LIVE_FLOOR_CALLS,
            },
        );
        Ok(Self {
            reader,
            writer,
            cache: Arc::default(),
            group,
            feed,
        })
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        Ok(MIGRATOR.run(&self.writer).await?)
    }

    /// Reverts the most recently applied migration; `None` when none is applied.
    pub async fn undo_last_migration(&self) -> StoreResult<Option<i64>> {
        let has_table: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
        )
        .fetch_one(&self.writer)
        .await?;
        if !has_table {
            return Ok(None);
        }
        let applied: Vec<i64> = sqlx::query_scalar(super::database::APPLIED_MIGRATIONS)
            .fetch_all(&self.writer)
            .await?;
        let Some(&last) = applied.first() else {
            return Ok(None);
        };
        MIGRATOR
            .undo(&self.writer, applied.get(1).copied().unwrap_or(0))
            .await?;
        Ok(Some(last))
    }

    /// A write transaction that takes the write lock up front, so it can never fail half-way
    /// with SQLITE_BUSY when upgrading from a read.
    async fn write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Runs `statement` (which binds its arguments with `bind`, and deletes at most `CHUNK` rows)
    /// in write transactions of its own until it deletes fewer than `CHUNK`; the total deleted.
    async fn delete_in_chunks(
        &self,
        statement: &'static str,
        bind: impl Fn(
            sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments>,
        ) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> StoreResult<u64> {
        let mut deleted = 0;
        loop {
            let mut tx = self.write().await?;
            let done = bind(sqlx::query(statement))
                .bind(CHUNK)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            deleted += done.rows_affected();
            if done.rows_affected() < CHUNK as u64 {
                return Ok(deleted);
            }
        }
    }
}

impl Upkeep for SqliteStore {
    async fn housekeeping(&self) -> StoreResult<()> {
        Ok(())
    }

    fn stats_cache_status(&self) -> CacheStatus {
        self.cache.status()
    }

    fn write_group_status(&self) -> GroupStatus {
        self.group.status()
    }

    fn pool_status(&self) -> PoolStatus {
        let pools = [&self.reader, &self.writer];
        PoolStatus {
            size: pools.iter().map(|p| p.size()).sum(),
            idle: pools.iter().map(|p| p.num_idle() as u32).sum(),
            max: pools
                .iter()
                .map(|p| p.options().get_max_connections())
                .sum(),
        }
    }

    async fn history_size_estimate(&self) -> StoreResult<u64> {
        let rows: i64 = sqlx::query_scalar("SELECT COALESCE(sum(plays), 0) FROM user_stats")
            .fetch_one(&self.reader)
            .await?;
        count(rows)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn forget_request_ids(
        &self,
        played_before: Timestamp,
        used_before: Timestamp,
    ) -> StoreResult<u64> {
        self.delete_in_chunks(
            "DELETE FROM play_requests WHERE (user_id, request_id) IN
               (SELECT user_id, request_id FROM play_requests
                WHERE played_at < ? AND created_at < ? LIMIT ?)",
            |q| q.bind(played_before).bind(used_before),
        )
        .await
    }
}
