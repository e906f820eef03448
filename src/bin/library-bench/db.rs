//! The bench's own connection to the server's database, for the baselines and for seeding likes.
//! The `record-batch` baseline goes through the store's own code (same statements, same tables),
//! so its ratio measures the service's overhead; the `record` baseline is the database's own rate
//! of single-play commits into a bare table, the bar a group commit has to clear.
use std::{str::FromStr, time::Duration};

use anyhow::Context;
use library_service::{
    domain::{CountingRule, NewPlay, NewPlayInput, Timestamp, UserId},
    store::{Database, PlayStore},
    with_store,
};
use sqlx::{
    PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use time::OffsetDateTime;
use uuid::Uuid;

/// One play as the baselines write it.
#[derive(Clone)]
pub struct PlayRow {
    pub track_id: Uuid,
    pub played_at_micros: i64,
    pub seconds: i32,
    pub completed: bool,
    pub source: String,
    pub request_id: Option<String>,
    pub duration: Option<u32>,
}

#[derive(Clone)]
pub enum Db {
    Postgres(PgPool),
    /// SQLite has one writer at a time, so the baselines write through one connection, as the
    /// service does: a pool of 64 writers would only add busy-waiting to the baseline.
    Sqlite {
        reader: SqlitePool,
        writer: SqlitePool,
    },
}

impl Db {
    pub async fn connect(url: &str, pool_size: u32) -> anyhow::Result<Self> {
        if url.starts_with("postgres") {
            let pool = PgPoolOptions::new()
                .max_connections(pool_size.max(1))
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await
                .context("connecting to PostgreSQL (--database-url)")?;
            return Ok(Self::Postgres(pool));
        }
        if !url.starts_with("sqlite:") {
            anyhow::bail!("--database-url must start with postgres:// or sqlite:");
        }
        // The same settings as the service, so the baseline is not handicapped by, say, a
        // synchronous=FULL the service does not pay. The file must exist: the server made it.
        let options = SqliteConnectOptions::from_str(url)
            .context("parsing --database-url")?
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .context("opening the SQLite database (--database-url)")?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .context("opening the SQLite database for reading")?;
        Ok(Self::Sqlite { reader, writer })
    }

    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite { reader, writer } => {
                reader.close().await;
                writer.close().await;
            }
        }
    }

    pub async fn describe(&self) -> anyhow::Result<String> {
        Ok(match self {
            Self::Postgres(pool) => {
                let v: String = sqlx::query_scalar("SELECT version()")
                    .fetch_one(pool)
                    .await
                    .context("reading the PostgreSQL version")?;
                v.split(" on ").next().unwrap_or(&v).to_string()
            }
            Self::Sqlite { reader, .. } => {
                let v: String = sqlx::query_scalar("SELECT sqlite_version()")
                    .fetch_one(reader)
                    .await
                    .context("reading the SQLite version")?;
                format!("SQLite {v}")
            }
        })
    }

    /// PostgreSQL: refreshes planner statistics after seeding, as autovacuum would a minute
    /// later, so the measured plans are the ones a settled database gets. Only the leaf
    /// partitions and plain tables: autovacuum never analyzes a partitioned parent.
    /// What autovacuum would have done by now in production (it is off on the bench machines):
    /// statistics for the planner and the visibility map for index-only scans. SQLite gets its
    /// planner statistics too.
    pub async fn analyze(&self) -> anyhow::Result<()> {
        let pool = match self {
            Self::Postgres(pool) => pool,
            Self::Sqlite { writer, .. } => {
                sqlx::query("ANALYZE")
                    .execute(writer)
                    .await
                    .context("analyzing the database")?;
                return Ok(());
            }
        };
        let mut tables: Vec<String> = sqlx::query_scalar(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'plays'::regclass",
        )
        .fetch_all(pool)
        .await
        .context("listing the plays partitions")?;
        tables.extend(
            [
                "play_requests",
                "liked_tracks",
                "user_stats",
                "user_track_stats",
                "user_source_stats",
                "user_quarter_stats",
                "user_period_stats",
            ]
            .map(String::from),
        );
        // regclass prints a name already quoted (and qualified) as SQL needs it; the others are
        // constants.
        let sql = format!("VACUUM (ANALYZE) {}", tables.join(", "));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .context("vacuuming and analyzing the tables")?;
        Ok(())
    }

    /// A bare plays-shaped table for the `record` baseline: the columns and primary key of
    /// `plays`, nothing else (no partitions, indexes, aggregates or idempotency keys), so one
    /// insert per transaction is the rate at which the database commits single plays. Made
    /// afresh for each run and dropped by [`Db::drop_bare_plays`].
    pub async fn create_bare_plays(&self) -> anyhow::Result<()> {
        let ddl = "CREATE TABLE bench_bare_plays (
             user_id BLOB NOT NULL, played_at INTEGER NOT NULL, id BLOB NOT NULL,
             track_id BLOB NOT NULL, played_for_seconds INTEGER NOT NULL,
             completed BOOLEAN NOT NULL, source TEXT NOT NULL, counted BOOLEAN NOT NULL,
             PRIMARY KEY (user_id, played_at, id))";
        self.drop_bare_plays().await?;
        match self {
            Self::Postgres(pool) => sqlx::query(
                "CREATE TABLE bench_bare_plays (
                     user_id uuid NOT NULL, played_at timestamptz NOT NULL, id uuid NOT NULL,
                     track_id uuid NOT NULL, played_for_seconds integer NOT NULL,
                     completed boolean NOT NULL, source text NOT NULL, counted boolean NOT NULL,
                     PRIMARY KEY (user_id, played_at, id))",
            )
            .execute(pool)
            .await
            .map(drop),
            Self::Sqlite { writer, .. } => sqlx::query(ddl).execute(writer).await.map(drop),
        }
        .context("creating the bare plays table")
    }

    pub async fn drop_bare_plays(&self) -> anyhow::Result<()> {
        let sql = "DROP TABLE IF EXISTS bench_bare_plays";
        match self {
            Self::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
            Self::Sqlite { writer, .. } => sqlx::query(sql).execute(writer).await.map(drop),
        }
        .context("dropping the bare plays table")
    }

    /// One play in its own transaction (autocommit), into the bare table.
    pub async fn insert_bare_play(&self, user: Uuid, row: &PlayRow) -> anyhow::Result<()> {
        let id = Uuid::now_v7();
        match self {
            Self::Postgres(pool) => {
                sqlx::query("INSERT INTO bench_bare_plays VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(user)
                    .bind(pg_time(row.played_at_micros)?)
                    .bind(id)
                    .bind(row.track_id)
                    .bind(row.seconds)
                    .bind(row.completed)
                    .bind(&row.source)
                    .bind(row.completed)
                    .execute(pool)
                    .await
                    .map(drop)
            }
            Self::Sqlite { writer, .. } => {
                sqlx::query("INSERT INTO bench_bare_plays VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                    .bind(user)
                    .bind(row.played_at_micros)
                    .bind(id)
                    .bind(row.track_id)
                    .bind(row.seconds)
                    .bind(row.completed)
                    .bind(&row.source)
                    .bind(row.completed)
                    .execute(writer)
                    .await
                    .map(drop)
            }
        }
        .context("inserting a bare play")
    }

    /// Up to `n` of the tracks `user` played, drawn at random (popular and rare alike).
    pub async fn some_tracks(&self, user: Uuid, n: i64) -> anyhow::Result<Vec<Uuid>> {
        let sql = match self {
            Self::Postgres(_) => {
                "SELECT track_id FROM user_track_stats WHERE user_id = $1 ORDER BY random() LIMIT $2"
            }
            Self::Sqlite { .. } => {
                "SELECT track_id FROM user_track_stats WHERE user_id = ? ORDER BY random() LIMIT ?"
            }
        };
        let query = sqlx::query_scalar(sql).bind(user).bind(n);
        match self {
            Self::Postgres(pool) => query.fetch_all(pool).await,
            Self::Sqlite { reader, .. } => {
                sqlx::query_scalar(sql)
                    .bind(user)
                    .bind(n)
                    .fetch_all(reader)
                    .await
            }
        }
        .context("choosing tracks")
    }

    pub async fn count_plays(&self, user: Uuid) -> anyhow::Result<u64> {
        let n: i64 = match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM plays WHERE user_id = $1")
                    .bind(user)
                    .fetch_one(pool)
                    .await
            }
            Self::Sqlite { reader, .. } => {
                sqlx::query_scalar("SELECT COUNT(*) FROM plays WHERE user_id = ?")
                    .bind(user)
                    .fetch_one(reader)
                    .await
            }
        }
        .context("counting a user's plays")?;
        u64::try_from(n).context("negative count")
    }
}

pub fn pg_time(micros: i64) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .context("timestamp out of range")
}

/// Writes plays through the store's own code (`PlayStore::record_plays`: on PostgreSQL the
/// service's one-statement `UNNEST` insert, on SQLite its single-writer transaction), so that a
/// baseline does exactly the database work the service does, without the gRPC around it.
/// Returns how many plays were newly stored.
pub async fn record_plays(store: &Database, user: Uuid, rows: &[PlayRow]) -> anyhow::Result<u64> {
    let now = Timestamp::now();
    let plays = rows
        .iter()
        .map(|r| {
            let played_at = Timestamp::from_micros(r.played_at_micros).context("played_at")?;
            NewPlay::parse(
                NewPlayInput {
                    track_id: &r.track_id.to_string(),
                    played_for_seconds: r.seconds as u32,
                    completed: r.completed,
                    source: &r.source,
                    played_at: Some(Ok(played_at)),
                    request_id: r.request_id.as_deref().unwrap_or_default(),
                    track_duration_seconds: r.duration,
                },
                now,
                // The server's default rule: the bench runs against servers with their defaults.
                &CountingRule::DEFAULT,
            )
            .map_err(|bad| anyhow::anyhow!("a baseline play is invalid: {bad:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let user = UserId::from_uuid(user);
    let recorded = with_store!(store, s => s.record_plays(user, plays).await)
        .context("recording plays (baseline)")?;
    Ok(recorded.iter().filter(|r| !r.duplicate).count() as u64)
}
