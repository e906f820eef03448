//! Recording, listing and deleting one listener's plays.
use std::collections::{HashMap, HashSet};

use sqlx::{PgPool, Postgres, QueryBuilder};

use super::{
    PgStore,
    counting::{INSERT_PLAYS, counted_delete, tidy},
    live::append,
    partitions::Partitions,
};
use crate::{
    domain::{
        ClearScope, HistoryOrder, HistoryQuery, NewPlay, Play, PlayId, PlayPosition, Recorded,
        Timestamp, TrackId, UserId,
    },
    store::{
        EventFeed, PlayStore, StoreError, StoreResult,
        events::Entry,
        group::{GroupWrite, Job, Patience},
        rows::{KeyedPlayRow, PlayRow, count, into_plays, new_play, play_columns},
    },
};

/// A group's plays as columns, for `UNNEST`. A `request_id` repeated within the group (by one
/// call, or by concurrent retries that landed in one group) is sent once: the later plays are
/// duplicates of the first, which the lookup after the insert resolves.
#[derive(Default)]
struct Columns {
    users: Vec<UserId>,
    ids: Vec<PlayId>,
    track_ids: Vec<TrackId>,
    played_at: Vec<Timestamp>,
    seconds: Vec<i32>,
    completed: Vec<bool>,
    sources: Vec<String>,
    request_ids: Vec<Option<String>>,
    durations: Vec<Option<i32>>,
    counted: Vec<bool>,
    /// Whether the play came from an import: its event only counts it.
    imported: Vec<bool>,
}

impl Columns {
    /// The columns, and each job's plays as they would be stored.
    fn of(jobs: &[Job]) -> (Self, Vec<Vec<Play>>) {
        let n = jobs.iter().map(|j| j.plays.len()).sum();
        let mut seen = HashSet::new();
        let mut c = Columns {
            users: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            track_ids: Vec::with_capacity(n),
            played_at: Vec::with_capacity(n),
            seconds: Vec::with_capacity(n),
            completed: Vec::with_capacity(n),
            sources: Vec::with_capacity(n),
            request_ids: Vec::with_capacity(n),
            durations: Vec::with_capacity(n),
            counted: Vec::with_capacity(n),
            imported: Vec::with_capacity(n),
        };
        let plays = jobs
            .iter()
            .map(|job| {
                job.plays
                    .iter()
                    .map(|p| {
                        let play = new_play(job.user, p);
                        let key = p.request_id.as_ref().map(|k| k.as_str());
                        if key.is_none_or(|k| seen.insert((job.user, k))) {
                            c.push(&play, key, job.imported);
                        }
                        play
                    })
                    .collect()
            })
            .collect();
        (c, plays)
    }

    fn push(&mut self, play: &Play, key: Option<&str>, imported: bool) {
        self.users.push(play.user_id);
        self.ids.push(play.id);
        self.track_ids.push(play.track_id);
        self.played_at.push(play.played_at);
        // At most MAX_PLAYED_FOR_SECONDS (86,400), which fits.
        self.seconds.push(play.played_for_seconds as i32);
        self.completed.push(play.completed);
        self.sources.push(play.source.clone());
        self.request_ids.push(key.map(str::to_string));
        self.durations
            .push(play.track_duration_seconds.map(|d| d as i32));
        self.counted.push(play.counted);
        self.imported.push(imported);
    }

    /// Every listener of the group, once: the statement names them (routing on a sharded
    /// database).
    fn listeners(&self) -> Vec<UserId> {
        let mut users = self.users.clone();
        users.sort_unstable();
        users.dedup();
        users
    }
}

/// The plays a `ClearHistory` scope selects, for its count and its delete: `$1` the listener,
/// `$2`..`$3` the time range, `$4` the track and `$5` the source, where NULL matches any. The
/// open time bounds are '-infinity' and 'infinity' rather than ORs, so that a generic plan still
/// prunes partitions and bounds the index range by them.
macro_rules! cleared {
    () => {
        "FROM plays
         WHERE user_id = $1 AND played_at >= COALESCE($2::timestamptz, '-infinity')
           AND played_at < COALESCE($3::timestamptz, 'infinity')
           AND ($4::uuid IS NULL OR track_id = $4) AND ($5::text IS NULL OR source = $5)"
    };
}

/// PostgreSQL's check_violation for a row that no partition accepts.
fn is_missing_partition(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.code().as_deref() == Some("23514") && db.constraint().is_none())
}

/// Two groups (or a group and a delete) that met on the same aggregate rows in different
/// orders: PostgreSQL aborts one, which is then simply run again.
fn is_deadlock(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.code().as_deref() == Some("40P01"))
}

/// Times a group is run again after a deadlock before its error is returned.
const DEADLOCK_RETRIES: usize = 3;

/// What the group commit writes with: the pool and the known partitions, without the rest of
/// the store (which holds the group commit).
#[derive(Clone)]
pub(super) struct PgWriter {
    pub(super) pool: PgPool,
    pub(super) partitions: Partitions,
    pub(super) feed: EventFeed,
}

impl PgWriter {
    async fn insert(&self, c: &Columns, listeners: &[UserId]) -> Result<Vec<PlayId>, sqlx::Error> {
        sqlx::query_scalar(INSERT_PLAYS)
            .bind(&c.users)
            .bind(&c.ids)
            .bind(&c.track_ids)
            .bind(&c.played_at)
            .bind(&c.seconds)
            .bind(&c.completed)
            .bind(&c.sources)
            .bind(&c.request_ids)
            .bind(&c.durations)
            .bind(&c.counted)
            .bind(listeners)
            .bind(&c.imported)
            .fetch_all(&self.pool)
            .await
    }

    /// The group's one statement: again after a missing partition (another instance's
    /// retention dropped a month this one still believed existed) or a deadlock.
    async fn insert_retrying(&self, c: &Columns) -> StoreResult<Vec<PlayId>> {
        let listeners = c.listeners();
        self.partitions
            .ensure(&self.pool, c.played_at.iter().copied())
            .await?;
        let mut deadlocks = 0;
        loop {
            match self.insert(c, &listeners).await {
                Err(e) if is_missing_partition(&e) => {
                    self.partitions.forget();
                    self.partitions
                        .ensure(&self.pool, c.played_at.iter().copied())
                        .await?;
                    return Ok(self.insert(c, &listeners).await?);
                }
                Err(e) if is_deadlock(&e) && deadlocks < DEADLOCK_RETRIES => deadlocks += 1,
                stored => return Ok(stored?),
            }
        }
    }

    /// The first plays recorded under these keys.
    async fn first_plays(
        &self,
        keys: &[(UserId, &str)],
    ) -> StoreResult<HashMap<(UserId, String), Play>> {
        let (users, ids): (Vec<UserId>, Vec<&str>) = keys.iter().copied().unzip();
        let mut listeners = users.clone();
        listeners.sort_unstable();
        listeners.dedup();
        let rows: Vec<KeyedPlayRow> = sqlx::query_as(
            "SELECT r.request_id, r.user_id, r.play_id AS id, r.track_id, r.played_at,
                    r.played_for_seconds, r.completed, r.source, r.track_duration_seconds,
                    r.counted
             FROM play_requests r JOIN UNNEST($1::uuid[], $2::text[]) AS k(user_id, request_id)
                  ON r.user_id = k.user_id AND r.request_id = k.request_id
             WHERE r.user_id = ANY($3)",
        )
        .bind(&users)
        .bind(&ids)
        .bind(&listeners)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let play = r.play.into_play()?;
                Ok(((play.user_id, r.request_id), play))
            })
            .collect()
    }
}

impl GroupWrite for PgWriter {
    async fn write_group(&self, jobs: &[Job]) -> StoreResult<Vec<Vec<Recorded>>> {
        let (columns, plays) = Columns::of(jobs);
        let stored: HashSet<PlayId> = self.insert_retrying(&columns).await?.into_iter().collect();
        if !stored.is_empty() {
            self.feed.published(columns.listeners());
        }
        let missing: Vec<(UserId, &str)> = jobs
            .iter()
            .zip(&plays)
            .flat_map(|(job, plays)| {
                job.plays
                    .iter()
                    .zip(plays)
                    .map(|(p, play)| (job.user, p, play))
            })
            .filter(|(_, _, play)| !stored.contains(&play.id))
            .filter_map(|(user, p, _)| p.request_id.as_ref().map(|k| (user, k.as_str())))
            .collect();
        let firsts = if missing.is_empty() {
            HashMap::new()
        } else {
            self.first_plays(&missing).await?
        };
        jobs.iter()
            .zip(plays)
            .map(|(job, plays)| {
                job.plays
                    .iter()
                    .zip(plays)
                    .map(|(p, play)| {
                        if stored.contains(&play.id) {
                            return Ok(Recorded {
                                play,
                                duplicate: false,
                            });
                        }
                        let first = p
                            .request_id
                            .as_ref()
                            .and_then(|k| firsts.get(&(job.user, k.as_str().to_string())))
                            .ok_or_else(|| {
                                StoreError::Corrupt("a claimed request_id has no record".into())
                            })?;
                        Ok(Recorded {
                            play: first.clone(),
                            duplicate: true,
                        })
                    })
                    .collect()
            })
            .collect()
    }
}

impl PlayStore for PgStore {
    async fn record_plays(&self, user: UserId, plays: Vec<NewPlay>) -> StoreResult<Vec<Recorded>> {
        self.group.record(user, plays, Patience::Live).await
    }

    async fn import_plays(&self, user: UserId, plays: Vec<NewPlay>) -> StoreResult<Vec<Recorded>> {
        self.group.record(user, plays, Patience::Bulk).await
    }

    async fn history_page(
        &self,
        user: UserId,
        query: &HistoryQuery,
        after: Option<PlayPosition>,
        limit: u32,
    ) -> StoreResult<Vec<Play>> {
        // Built per request so that each query carries only its own conditions and the planner
        // can range-scan the (user_id, played_at, id) key from the cursor on.
        let mut sql = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            play_columns!(),
            " FROM plays WHERE user_id = "
        ));
        sql.push_bind(user);
        if let Some(since) = query.since {
            sql.push(" AND played_at >= ").push_bind(since);
        }
        if let Some(until) = query.until {
            sql.push(" AND played_at < ").push_bind(until);
        }
        if let Some(track) = query.track_id {
            sql.push(" AND track_id = ").push_bind(track);
        }
        if let Some(source) = &query.source {
            sql.push(" AND source = ").push_bind(source.clone());
        }
        if query.completed_only {
            sql.push(" AND completed");
        }
        if query.counted_only {
            sql.push(" AND counted");
        }
        let (cmp, dir) = match query.order {
            HistoryOrder::NewestFirst => ("<", "DESC"),
            HistoryOrder::OldestFirst => (">", "ASC"),
        };
        if let Some(after) = after {
            // The plain comparison on played_at is implied by the row comparison, but only it lets
            // the planner skip the partitions on the far side of the cursor.
            sql.push(format_args!(" AND played_at {cmp}= "))
                .push_bind(after.played_at);
            sql.push(format_args!(" AND (played_at, id) {cmp} ("))
                .push_bind(after.played_at)
                .push(", ")
                .push_bind(after.id)
                .push(")");
        }
        sql.push(format_args!(" ORDER BY played_at {dir}, id {dir} LIMIT "))
            .push_bind(i64::from(limit));
        let rows: Vec<PlayRow> = sql.build_query_as().fetch_all(&self.pool).await?;
        into_plays(rows)
    }

    async fn delete_play(&self, user: UserId, play: PlayId) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query_as(counted_delete!(
            "DELETE FROM plays WHERE user_id = $1 AND id = $2"
        ))
        .bind(user)
        .bind(play)
        .fetch_all(&mut *tx)
        .await?;
        let deleted = tidy(&mut tx, rows).await?;
        if deleted > 0 {
            append(&mut tx, user, Entry::play_deleted(play)).await?;
        }
        tx.commit().await?;
        if deleted > 0 {
            self.feed.published([user]);
        }
        Ok(deleted > 0)
    }

    async fn clear_history(
        &self,
        user: UserId,
        scope: &ClearScope,
        dry_run: bool,
    ) -> StoreResult<u64> {
        if dry_run {
            let n: i64 = sqlx::query_scalar(concat!("SELECT COUNT(*) ", cleared!()))
                .bind(user)
                .bind(scope.since)
                .bind(scope.before)
                .bind(scope.track_id)
                .bind(scope.source.as_deref())
                .fetch_one(&self.pool)
                .await?;
            return count(n);
        }
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query_as(counted_delete!(concat!("DELETE ", cleared!())))
            .bind(user)
            .bind(scope.since)
            .bind(scope.before)
            .bind(scope.track_id)
            .bind(scope.source.as_deref())
            .fetch_all(&mut *tx)
            .await?;
        let deleted = tidy(&mut tx, rows).await?;
        if deleted > 0 {
            append(&mut tx, user, Entry::history_cleared(scope, deleted)).await?;
        }
        tx.commit().await?;
        if deleted > 0 {
            self.feed.published([user]);
        }
        Ok(deleted)
    }
}
