//! The embedded SQLite store: one file, nothing to install. Writes go through a single writer
//! connection in `BEGIN IMMEDIATE` transactions, so concurrent writers queue inside the service
//! instead of meeting SQLITE_BUSY; reads use their own pool and, with WAL, never wait for writes.
use std::{str::FromStr, time::Duration};

use sqlx::{
    Sqlite, SqlitePool, Transaction,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::{LikeOutcome, LikedPage, PoolStatus, Store, StoreError, StoreResult, rows::count};
use crate::domain::{
    HistoryQuery, LikePosition, LikedTrack, ListenerCount, NewPlay, Notes, Play, PlayId,
    PlayPosition, PlayStats, QuarterHour, Recorded, TimeRange, Timestamp, TrackErasure, TrackId,
    TrackLikes, UserErasure, UserId,
};

mod admin;
mod likes;
mod plays;
mod stats;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

#[derive(Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
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
        Ok(Self { reader, writer })
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
        let applied: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version DESC LIMIT 2",
        )
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
}

impl Store for SqliteStore {
    async fn housekeeping(&self) -> StoreResult<()> {
        Ok(())
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

    async fn record_plays(&self, user: UserId, plays: Vec<NewPlay>) -> StoreResult<Vec<Recorded>> {
        self.insert_plays(user, plays).await
    }

    async fn history_page(
        &self,
        user: UserId,
        query: &HistoryQuery,
        after: Option<PlayPosition>,
        limit: u32,
    ) -> StoreResult<Vec<Play>> {
        self.select_history(user, query, after, limit).await
    }

    async fn delete_play(&self, user: UserId, play: PlayId) -> StoreResult<bool> {
        self.remove_play(user, play).await
    }

    async fn clear_history(
        &self,
        user: UserId,
        before: Option<Timestamp>,
        dry_run: bool,
    ) -> StoreResult<u64> {
        self.remove_history(user, before, dry_run).await
    }

    async fn purge_plays_before(&self, cutoff: Timestamp, dry_run: bool) -> StoreResult<u64> {
        self.purge_before(cutoff, dry_run).await
    }

    async fn forget_request_ids(
        &self,
        played_before: Timestamp,
        used_before: Timestamp,
    ) -> StoreResult<u64> {
        self.forget_keys(played_before, used_before).await
    }

    async fn like_track(
        &self,
        user: UserId,
        track: TrackId,
        notes: Option<Notes>,
        now: Timestamp,
    ) -> StoreResult<LikeOutcome> {
        self.upsert_like(user, track, notes, now).await
    }

    async fn unlike_track(&self, user: UserId, track: TrackId) -> StoreResult<bool> {
        self.remove_like(user, track).await
    }

    async fn update_liked_track(
        &self,
        user: UserId,
        track: TrackId,
        notes: Notes,
        now: Timestamp,
    ) -> StoreResult<Option<LikedTrack>> {
        self.set_notes(user, track, notes, now).await
    }

    async fn liked_tracks_page(
        &self,
        user: UserId,
        after: Option<LikePosition>,
        limit: u32,
    ) -> StoreResult<LikedPage> {
        self.select_likes(user, after, limit).await
    }

    async fn check_liked(&self, user: UserId, tracks: &[TrackId]) -> StoreResult<Vec<bool>> {
        self.select_liked(user, tracks).await
    }

    async fn play_stats(
        &self,
        user: UserId,
        range: TimeRange,
        top_tracks: u32,
        buckets: TimeRange,
    ) -> StoreResult<PlayStats> {
        self.compute_stats(user, range, top_tracks, buckets).await
    }

    async fn top_listeners(&self, range: TimeRange, limit: u32) -> StoreResult<Vec<ListenerCount>> {
        self.select_top_listeners(range, limit).await
    }

    async fn most_liked_tracks(&self, limit: u32) -> StoreResult<Vec<TrackLikes>> {
        self.select_most_liked(limit).await
    }

    async fn platform_quarter_hours(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Vec<QuarterHour>> {
        self.select_platform_quarters(since, until).await
    }

    async fn delete_user_data(&self, user: UserId) -> StoreResult<UserErasure> {
        self.erase_user(user).await
    }

    async fn delete_track_data(&self, track: TrackId) -> StoreResult<TrackErasure> {
        self.erase_track(track).await
    }
}
