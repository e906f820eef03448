use sqlx::{FromRow, QueryBuilder, Sqlite};
use uuid::Uuid;

use super::SqliteStore;
use crate::{
    domain::{
        HistoryOrder, HistoryQuery, NewPlay, Play, PlayId, PlayPosition, Recorded, Timestamp,
        UserId,
    },
    store::{
        StoreResult,
        rows::{PlayParts, count, new_play},
    },
};

#[derive(FromRow)]
struct PlayRow {
    user_id: Uuid,
    id: Uuid,
    track_id: Uuid,
    played_at: i64,
    played_for_seconds: i64,
    completed: bool,
    source: String,
}

impl PlayRow {
    fn into_play(self) -> StoreResult<Play> {
        PlayParts {
            user_id: self.user_id,
            id: self.id,
            track_id: self.track_id,
            played_at_micros: self.played_at,
            played_for_seconds: self.played_for_seconds,
            completed: self.completed,
            source: self.source,
        }
        .into_play()
    }
}

impl SqliteStore {
    pub(super) async fn insert_plays(
        &self,
        user: UserId,
        plays: Vec<NewPlay>,
    ) -> StoreResult<Vec<Recorded>> {
        let mut tx = self.write().await?;
        let now = Timestamp::now().as_micros();
        let mut results = Vec::with_capacity(plays.len());
        for p in &plays {
            if let Some(request_id) = &p.request_id {
                let first: Option<PlayRow> = sqlx::query_as(
                    "SELECT user_id, play_id AS id, track_id, played_at, played_for_seconds, completed, source
                     FROM play_requests WHERE user_id = ? AND request_id = ?",
                )
                .bind(user.as_uuid())
                .bind(request_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(first) = first {
                    results.push(Recorded {
                        play: first.into_play()?,
                        duplicate: true,
                    });
                    continue;
                }
            }
            let play = new_play(user, p);
            sqlx::query(
                "INSERT INTO plays (user_id, played_at, id, track_id, played_for_seconds, completed, source, recorded_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(user.as_uuid())
            .bind(play.played_at.as_micros())
            .bind(play.id.as_uuid())
            .bind(play.track_id.as_uuid())
            .bind(i64::from(play.played_for_seconds))
            .bind(play.completed)
            .bind(&play.source)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if let Some(request_id) = &p.request_id {
                sqlx::query(
                    "INSERT INTO play_requests
                       (user_id, request_id, play_id, track_id, played_at, played_for_seconds, completed, source, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(user.as_uuid())
                .bind(request_id.as_str())
                .bind(play.id.as_uuid())
                .bind(play.track_id.as_uuid())
                .bind(play.played_at.as_micros())
                .bind(i64::from(play.played_for_seconds))
                .bind(play.completed)
                .bind(&play.source)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            results.push(Recorded {
                play,
                duplicate: false,
            });
        }
        tx.commit().await?;
        Ok(results)
    }

    pub(super) async fn select_history(
        &self,
        user: UserId,
        query: &HistoryQuery,
        after: Option<PlayPosition>,
        limit: u32,
    ) -> StoreResult<Vec<Play>> {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "SELECT user_id, id, track_id, played_at, played_for_seconds, completed, source FROM plays WHERE user_id = ",
        );
        sql.push_bind(user.as_uuid());
        if let Some(since) = query.since {
            sql.push(" AND played_at >= ").push_bind(since.as_micros());
        }
        if let Some(until) = query.until {
            sql.push(" AND played_at < ").push_bind(until.as_micros());
        }
        if let Some(track) = query.track_id {
            sql.push(" AND track_id = ").push_bind(track.as_uuid());
        }
        if let Some(source) = &query.source {
            sql.push(" AND source = ").push_bind(source.clone());
        }
        if query.completed_only {
            sql.push(" AND completed = 1");
        }
        let (cmp, dir) = match query.order {
            HistoryOrder::NewestFirst => ("<", "DESC"),
            HistoryOrder::OldestFirst => (">", "ASC"),
        };
        if let Some(after) = after {
            sql.push(format_args!(" AND (played_at, id) {cmp} ("))
                .push_bind(after.played_at.as_micros())
                .push(", ")
                .push_bind(after.id.as_uuid())
                .push(")");
        }
        sql.push(format_args!(" ORDER BY played_at {dir}, id {dir} LIMIT "))
            .push_bind(i64::from(limit));
        let rows: Vec<PlayRow> = sql.build_query_as().fetch_all(&self.reader).await?;
        rows.into_iter().map(PlayRow::into_play).collect()
    }

    pub(super) async fn remove_play(&self, user: UserId, play: PlayId) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM plays WHERE user_id = ? AND id = ?")
            .bind(user.as_uuid())
            .bind(play.as_uuid())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn remove_history(
        &self,
        user: UserId,
        before: Option<Timestamp>,
        dry_run: bool,
    ) -> StoreResult<u64> {
        let before = before.map_or(i64::MAX, |b| b.as_micros());
        if dry_run {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM plays WHERE user_id = ? AND played_at < ?",
            )
            .bind(user.as_uuid())
            .bind(before)
            .fetch_one(&self.reader)
            .await?;
            return count(n);
        }
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM plays WHERE user_id = ? AND played_at < ?")
            .bind(user.as_uuid())
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

/// Plays deleted per retention transaction: the single writer is released between chunks, so
/// listeners' writes are never held up for the whole purge.
const PURGE_CHUNK: i64 = 10_000;

impl SqliteStore {
    pub(super) async fn purge_before(&self, cutoff: Timestamp, dry_run: bool) -> StoreResult<u64> {
        if dry_run {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plays WHERE played_at < ?")
                .bind(cutoff.as_micros())
                .fetch_one(&self.reader)
                .await?;
            return count(n);
        }
        let mut deleted = 0;
        loop {
            let mut tx = self.write().await?;
            let done = sqlx::query(
                "DELETE FROM plays WHERE (user_id, played_at, id) IN
                   (SELECT user_id, played_at, id FROM plays WHERE played_at < ? LIMIT ?)",
            )
            .bind(cutoff.as_micros())
            .bind(PURGE_CHUNK)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            deleted += done.rows_affected();
            if done.rows_affected() < PURGE_CHUNK as u64 {
                return Ok(deleted);
            }
        }
    }
}

impl SqliteStore {
    pub(super) async fn forget_keys(
        &self,
        played_before: Timestamp,
        used_before: Timestamp,
    ) -> StoreResult<u64> {
        let mut forgotten = 0;
        loop {
            let mut tx = self.write().await?;
            let done = sqlx::query(
                "DELETE FROM play_requests WHERE (user_id, request_id) IN
                   (SELECT user_id, request_id FROM play_requests
                    WHERE played_at < ? AND created_at < ? LIMIT ?)",
            )
            .bind(played_before.as_micros())
            .bind(used_before.as_micros())
            .bind(PURGE_CHUNK)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            forgotten += done.rows_affected();
            if done.rows_affected() < PURGE_CHUNK as u64 {
                return Ok(forgotten);
            }
        }
    }
}
