//! The one place that opens the store a `DATABASE_URL` names.
use super::{PgStore, SqliteStore, StoreError, StoreResult, stats::StatsSql};

/// Which database `DATABASE_URL` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Postgres,
    Sqlite,
}

impl DatabaseKind {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }
}

/// An open store of either backend. Code that needs the store's type (the server, the CLI)
/// matches once and continues generically: see [`with_store!`](crate::with_store).
#[derive(Clone)]
pub enum Database {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

impl Database {
    /// Opens the database the URL names, with at most `max_connections` connections.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        match DatabaseKind::of_url(url) {
            Some(DatabaseKind::Postgres) => Ok(Self::Postgres(
                PgStore::connect(url, max_connections).await?,
            )),
            Some(DatabaseKind::Sqlite) => Ok(Self::Sqlite(
                SqliteStore::connect(url, max_connections).await?,
            )),
            None => Err(StoreError::UnknownUrl),
        }
    }

    /// Sets the memory the statistics may keep decoded snapshots in (0 keeps none).
    pub fn set_stats_cache_bytes(&self, bytes: usize) {
        match self {
            Self::Postgres(store) => store.snapshot_cache().set_budget(bytes),
            Self::Sqlite(store) => store.snapshot_cache().set_budget(bytes),
        }
    }

    pub fn kind(&self) -> DatabaseKind {
        match self {
            Self::Postgres(_) => DatabaseKind::Postgres,
            Self::Sqlite(_) => DatabaseKind::Sqlite,
        }
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Self::Postgres(store) => store.migrate().await,
            Self::Sqlite(store) => store.migrate().await,
        }
    }

    /// Reverts the most recently applied migration; `None` when none is applied.
    pub async fn undo_last_migration(&self) -> StoreResult<Option<i64>> {
        match self {
            Self::Postgres(store) => store.undo_last_migration().await,
            Self::Sqlite(store) => store.undo_last_migration().await,
        }
    }
}

/// Runs `$body` with `$store` bound to the concrete store inside a [`Database`], so generic code
/// (`fn f<S: Store>(store: S)`) is written once for both backends.
#[macro_export]
macro_rules! with_store {
    ($database:expr, $store:ident => $body:expr) => {
        match $database {
            $crate::store::Database::Postgres($store) => $body,
            $crate::store::Database::Sqlite($store) => $body,
        }
    };
}

/// The two most recent successful migrations (sqlx's own table, alike on both backends): the
/// one `--undo` reverts, and the one it reverts to.
pub(super) const APPLIED_MIGRATIONS: &str =
    "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version DESC LIMIT 2";
