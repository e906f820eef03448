use std::collections::HashSet;

use sqlx::{FromRow, QueryBuilder, Sqlite};
use uuid::Uuid;

use super::SqliteStore;
use crate::{
    domain::{LikePosition, LikedTrack, Notes, Timestamp, TrackId, UserId},
    store::{LikeOutcome, LikedPage, StoreResult, rows},
};

#[derive(FromRow)]
struct LikeRow {
    user_id: Uuid,
    track_id: Uuid,
    notes: String,
    liked_at: i64,
    updated_at: i64,
}

impl LikeRow {
    fn into_liked(self) -> StoreResult<LikedTrack> {
        rows::liked(
            self.user_id,
            self.track_id,
            self.notes,
            self.liked_at,
            self.updated_at,
        )
    }
}

impl SqliteStore {
    pub(super) async fn upsert_like(
        &self,
        user: UserId,
        track: TrackId,
        notes: Option<Notes>,
        now: Timestamp,
    ) -> StoreResult<LikeOutcome> {
        let mut tx = self.write().await?;
        let existing: Option<LikeRow> =
            sqlx::query_as("SELECT user_id, track_id, notes, liked_at, updated_at FROM liked_tracks WHERE user_id = ? AND track_id = ?")
                .bind(user.as_uuid())
                .bind(track.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
        let already_liked = existing.is_some();
        let row: LikeRow = match (existing, notes) {
            (Some(row), None) => row,
            (Some(_), Some(notes)) => {
                sqlx::query_as(
                    "UPDATE liked_tracks SET notes = ?, updated_at = ? WHERE user_id = ? AND track_id = ?
                     RETURNING user_id, track_id, notes, liked_at, updated_at",
                )
                .bind(notes.as_str())
                .bind(now.as_micros())
                .bind(user.as_uuid())
                .bind(track.as_uuid())
                .fetch_one(&mut *tx)
                .await?
            }
            (None, notes) => {
                sqlx::query_as(
                    "INSERT INTO liked_tracks (user_id, track_id, notes, liked_at, updated_at) VALUES (?, ?, ?, ?, ?)
                     RETURNING user_id, track_id, notes, liked_at, updated_at",
                )
                .bind(user.as_uuid())
                .bind(track.as_uuid())
                .bind(notes.as_ref().map_or("", Notes::as_str))
                .bind(now.as_micros())
                .bind(now.as_micros())
                .fetch_one(&mut *tx)
                .await?
            }
        };
        tx.commit().await?;
        Ok(LikeOutcome {
            liked: row.into_liked()?,
            already_liked,
        })
    }

    pub(super) async fn remove_like(&self, user: UserId, track: TrackId) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM liked_tracks WHERE user_id = ? AND track_id = ?")
            .bind(user.as_uuid())
            .bind(track.as_uuid())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn set_notes(
        &self,
        user: UserId,
        track: TrackId,
        notes: Notes,
        now: Timestamp,
    ) -> StoreResult<Option<LikedTrack>> {
        let mut tx = self.write().await?;
        let row: Option<LikeRow> = sqlx::query_as(
            "UPDATE liked_tracks SET notes = ?, updated_at = ? WHERE user_id = ? AND track_id = ?
             RETURNING user_id, track_id, notes, liked_at, updated_at",
        )
        .bind(notes.as_str())
        .bind(now.as_micros())
        .bind(user.as_uuid())
        .bind(track.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(LikeRow::into_liked).transpose()
    }

    pub(super) async fn select_likes(
        &self,
        user: UserId,
        after: Option<LikePosition>,
        limit: u32,
    ) -> StoreResult<LikedPage> {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "SELECT user_id, track_id, notes, liked_at, updated_at FROM liked_tracks WHERE user_id = ",
        );
        sql.push_bind(user.as_uuid());
        if let Some(after) = after {
            sql.push(" AND (liked_at, track_id) < (")
                .push_bind(after.liked_at.as_micros())
                .push(", ")
                .push_bind(after.track_id.as_uuid())
                .push(")");
        }
        sql.push(" ORDER BY liked_at DESC, track_id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let page: Vec<LikeRow> = sql.build_query_as().fetch_all(&self.reader).await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM liked_tracks WHERE user_id = ?")
            .bind(user.as_uuid())
            .fetch_one(&self.reader)
            .await?;
        Ok(LikedPage {
            tracks: page
                .into_iter()
                .map(LikeRow::into_liked)
                .collect::<StoreResult<_>>()?,
            total: rows::count(total)?,
        })
    }

    pub(super) async fn select_liked(
        &self,
        user: UserId,
        tracks: &[TrackId],
    ) -> StoreResult<Vec<bool>> {
        let mut sql =
            QueryBuilder::<Sqlite>::new("SELECT track_id FROM liked_tracks WHERE user_id = ");
        sql.push_bind(user.as_uuid()).push(" AND track_id IN (");
        let mut ids = sql.separated(", ");
        for t in tracks {
            ids.push_bind(t.as_uuid());
        }
        sql.push(")");
        let liked: HashSet<Uuid> = sql
            .build_query_scalar()
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .collect();
        Ok(tracks
            .iter()
            .map(|t| liked.contains(&t.as_uuid()))
            .collect())
    }
}
