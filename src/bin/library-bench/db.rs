//! The bench's own connection to the server's database, for the baselines and for seeding likes.
//! The baselines write exactly what the service writes (same tables, same triggers), so a ratio
//! measures the service's overhead, not a different amount of work.
use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    PgPool, QueryBuilder, Sqlite, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use time::OffsetDateTime;
use uuid::Uuid;

/// One play as the baselines write it.
#[derive(Clone)]
pub struct PlayRow {
    pub id: Uuid,
    pub track_id: Uuid,
    pub played_at_micros: i64,
    pub seconds: i32,
    pub completed: bool,
    pub source: String,
    pub request_id: Option<String>,
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

    /// PostgreSQL only: makes sure the monthly partitions of these times exist, as the service
    /// does before writing, so a baseline insert never fails for want of a partition.
    pub async fn ensure_partitions(
        &self,
        micros: impl IntoIterator<Item = i64>,
    ) -> anyhow::Result<()> {
        let Self::Postgres(pool) = self else {
            return Ok(());
        };
        let mut months: Vec<OffsetDateTime> = Vec::new();
        for m in micros {
            let t = pg_time(m)?;
            if !months
                .iter()
                .any(|k| (k.year(), k.month()) == (t.year(), t.month()))
            {
                months.push(t);
            }
        }
        for t in months {
            let _: bool = sqlx::query_scalar("SELECT library_ensure_play_partition($1)")
                .bind(t)
                .fetch_one(pool)
                .await
                .context("creating a plays partition")?;
        }
        Ok(())
    }

    /// Writes plays and their idempotency records in one transaction: on PostgreSQL with the
    /// service's own statement (a plain INSERT ... SELECT FROM UNNEST when no play has a key), on
    /// SQLite with one multi-row INSERT per table.
    pub async fn write_plays(&self, user: Uuid, rows: &[PlayRow]) -> anyhow::Result<u64> {
        match self {
            Self::Postgres(pool) => pg_write_plays(pool, user, rows).await,
            Self::Sqlite { writer, .. } => sqlite_write_plays(writer, user, rows).await,
        }
    }

    /// PostgreSQL: refreshes planner statistics after seeding, as autovacuum would a minute
    /// later, so the measured plans are the ones a settled database gets. Only the leaf
    /// partitions and plain tables: autovacuum never analyzes a partitioned parent.
    pub async fn analyze(&self) -> anyhow::Result<()> {
        let Self::Postgres(pool) = self else {
            return Ok(());
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
                "user_track_stats",
                "user_source_stats",
                "user_quarter_stats",
            ]
            .map(String::from),
        );
        // regclass prints a name already quoted (and qualified) as SQL needs it; the others are
        // constants.
        let sql = format!("ANALYZE {}", tables.join(", "));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .context("analyzing the tables")?;
        Ok(())
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

/// Copied from `src/store/postgres/plays.rs` (`insert_plays`): the baseline must do what the
/// service does, so keep the two in step.
const PG_INSERT_PLAYS: &str = "WITH input AS (
         SELECT * FROM UNNEST($2::uuid[], $3::uuid[], $4::timestamptz[], $5::int4[],
                              $6::bool[], $7::text[], $8::text[])
             AS t(id, track_id, played_at, played_for_seconds, completed, source, request_id)
     ),
     claimed AS (
         INSERT INTO play_requests
             (user_id, request_id, play_id, track_id, played_at, played_for_seconds, completed, source)
         SELECT $1, request_id, id, track_id, played_at, played_for_seconds, completed, source
         FROM input WHERE request_id IS NOT NULL
         ON CONFLICT (user_id, request_id) DO NOTHING
         RETURNING play_id
     )
     INSERT INTO plays (user_id, played_at, id, track_id, played_for_seconds, completed, source)
     SELECT $1, played_at, id, track_id, played_for_seconds, completed, source
     FROM input WHERE request_id IS NULL OR id IN (SELECT play_id FROM claimed)
     RETURNING id";

/// Without idempotency keys there is nothing to claim: the plain insert is the direct way.
const PG_INSERT_PLAYS_UNKEYED: &str = "INSERT INTO plays (user_id, played_at, id, track_id, played_for_seconds, completed, source)
     SELECT $1, played_at, id, track_id, played_for_seconds, completed, source
     FROM UNNEST($2::uuid[], $3::uuid[], $4::timestamptz[], $5::int4[], $6::bool[], $7::text[], $8::text[])
         AS t(id, track_id, played_at, played_for_seconds, completed, source, request_id)
     RETURNING id";

async fn pg_write_plays(pool: &PgPool, user: Uuid, rows: &[PlayRow]) -> anyhow::Result<u64> {
    let played_at = rows
        .iter()
        .map(|r| pg_time(r.played_at_micros))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sql = if rows.iter().any(|r| r.request_id.is_some()) {
        PG_INSERT_PLAYS
    } else {
        PG_INSERT_PLAYS_UNKEYED
    };
    let stored: Vec<Uuid> = sqlx::query_scalar(sql)
        .bind(user)
        .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.track_id).collect::<Vec<_>>())
        .bind(played_at)
        .bind(rows.iter().map(|r| r.seconds).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.completed).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.source.clone()).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.request_id.clone())
                .collect::<Vec<_>>(),
        )
        .fetch_all(pool)
        .await
        .context("inserting plays (baseline)")?;
    Ok(stored.len() as u64)
}

async fn sqlite_write_plays(
    writer: &SqlitePool,
    user: Uuid,
    rows: &[PlayRow],
) -> anyhow::Result<u64> {
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1000;
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .context("starting a SQLite write transaction")?;
    // Claim the keys first, as the service's ON CONFLICT does; the plays follow.
    let keyed: Vec<&PlayRow> = rows.iter().filter(|r| r.request_id.is_some()).collect();
    if !keyed.is_empty() {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "INSERT INTO play_requests (user_id, request_id, play_id, track_id, played_at, \
             played_for_seconds, completed, source, created_at) ",
        );
        sql.push_values(&keyed, |mut b, r| {
            b.push_bind(user)
                .push_bind(r.request_id.clone())
                .push_bind(r.id)
                .push_bind(r.track_id)
                .push_bind(r.played_at_micros)
                .push_bind(r.seconds)
                .push_bind(r.completed)
                .push_bind(r.source.clone())
                .push_bind(now);
        });
        sql.push(" ON CONFLICT (user_id, request_id) DO NOTHING");
        sql.build()
            .execute(&mut *tx)
            .await
            .context("inserting play_requests (baseline)")?;
    }
    let mut sql = QueryBuilder::<Sqlite>::new(
        "INSERT INTO plays (user_id, played_at, id, track_id, played_for_seconds, completed, \
         source, recorded_at) ",
    );
    sql.push_values(rows, |mut b, r| {
        b.push_bind(user)
            .push_bind(r.played_at_micros)
            .push_bind(r.id)
            .push_bind(r.track_id)
            .push_bind(r.seconds)
            .push_bind(r.completed)
            .push_bind(r.source.clone())
            .push_bind(now);
    });
    let done = sql
        .build()
        .execute(&mut *tx)
        .await
        .context("inserting plays (baseline)")?;
    tx.commit().await.context("committing plays (baseline)")?;
    Ok(done.rows_affected())
}
