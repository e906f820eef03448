//! The PostgreSQL store, for production. Plays are keyed `(user_id, played_at, id)`; every query
//! is scoped to one user and served from an index that starts with `user_id`.
use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::{PgPool, migrate::Migrator, postgres::PgPoolOptions};
use time::OffsetDateTime;

use super::{LikeOutcome, LikedPage, PoolStatus, Store, StoreError, StoreResult};
use crate::domain::{
    HistoryQuery, LikePosition, LikedTrack, ListenerCount, NewPlay, Notes, Play, PlayId,
    PlayPosition, PlayStats, QuarterHour, Recorded, TimeRange, Timestamp, TrackErasure, TrackId,
    TrackLikes, UserErasure, UserId,
};

mod admin;
mod likes;
mod partitions;
mod plays;
mod stats;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Months (UTC) whose plays partition is known to exist, so that writes skip the check.
    partitions: Arc<Mutex<HashSet<(i32, u8)>>>,
}

impl PgStore {
    /// Connects lazily-checked: the first connection is made here, so a wrong URL fails at start.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            partitions: Arc::default(),
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
        let applied: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version DESC LIMIT 2",
        )
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

/// PostgreSQL keeps microseconds, exactly what `Timestamp` holds, so both conversions are exact.
fn to_pg(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.as_micros()) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn micros(t: OffsetDateTime) -> StoreResult<i64> {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1000))
        .map_err(|_| StoreError::Corrupt(format!("timestamp {t} out of range")))
}

impl Store for PgStore {
    async fn housekeeping(&self) -> StoreResult<()> {
        self.prepare_partitions().await
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
