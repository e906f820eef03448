//! Store errors. Their `Display` is generic on purpose: the detail is in the source chain, which
//! goes to the log and never to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or asked us to retry: the call may succeed later.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// A row that breaks the schema's rules (it was written behind the service's back).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("DATABASE_URL must start with postgres://, postgresql:// or sqlite:")]
    UnknownUrl,
    /// The write queue is full: the call is shed before it is queued, and may be retried.
    #[error("too many writes are queued")]
    Overloaded,
    /// The store is shutting down and takes no more writes.
    #[error("the store is stopping")]
    Stopped,
    /// One error answered to every call of a group commit.
    #[error(transparent)]
    Shared(std::sync::Arc<StoreError>),
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) | Self::Stopped => true,
            Self::Shared(e) => e.is_unavailable(),
            _ => false,
        }
    }
}

/// PostgreSQL SQLSTATEs that mean "try again": connection exceptions (class 08), shutdown and
/// start-up (57P01-57P03), too many connections, serialization failure and deadlock.
fn retryable_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01"
        )
}

/// SQLite primary result codes BUSY (5) and LOCKED (6), possibly extended.
fn sqlite_busy(code: &str) -> bool {
    code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let unavailable = match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => true,
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|code| retryable_sqlstate(&code) || sqlite_busy(&code)),
            _ => false,
        };
        if unavailable {
            Self::Unavailable(e)
        } else {
            Self::Database(e)
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Migration(e)
    }
}
