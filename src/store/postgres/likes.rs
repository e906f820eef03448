use std::collections::HashSet;

use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{PgStore, micros, to_pg};
use crate::{
    domain::{LikePosition, LikedTrack, Notes, Timestamp, TrackId, UserId},
    store::{LikeOutcome, LikedPage, StoreResult, rows},
};

#[derive(FromRow)]
struct LikeRow {
    user_id: Uuid,
    track_id: Uuid,
    notes: String,
    liked_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl LikeRow {
    fn into_liked(self) -> StoreResult<LikedTrack> {
        rows::liked(
            self.user_id,
            self.track_id,
            self.notes,
            micros(self.liked_at)?,
            micros(self.updated_at)?,
        )
    }
}

#[derive(FromRow)]
struct UpsertRow {
    #[sqlx(flatten)]
    like: LikeRow,
    inserted: bool,
}

impl PgStore {
    pub(super) async fn upsert_like(
        &self,
        user: UserId,
        track: TrackId,
        notes: Option<Notes>,
        now: Timestamp,
    ) -> StoreResult<LikeOutcome> {
        // One statement, so concurrent likes of one track cannot race. `xmax = 0` holds only for
        // a row this statement inserted (an updated row carries our transaction id in xmax).
        let row: UpsertRow = sqlx::query_as(
            "INSERT INTO liked_tracks AS l (user_id, track_id, notes, liked_at, updated_at)
             VALUES ($1, $2, COALESCE($3, ''), $4, $4)
             ON CONFLICT (user_id, track_id) DO UPDATE
               SET notes = COALESCE($3, l.notes),
                   updated_at = CASE WHEN $3 IS NULL THEN l.updated_at ELSE EXCLUDED.updated_at END
             RETURNING l.user_id, l.track_id, l.notes, l.liked_at, l.updated_at, (l.xmax = 0) AS inserted",
        )
        .bind(user.as_uuid())
        .bind(track.as_uuid())
        .bind(notes.as_ref().map(Notes::as_str))
        .bind(to_pg(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(LikeOutcome {
            liked: row.like.into_liked()?,
            already_liked: !row.inserted,
        })
    }

    pub(super) async fn remove_like(&self, user: UserId, track: TrackId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM liked_tracks WHERE user_id = $1 AND track_id = $2")
            .bind(user.as_uuid())
            .bind(track.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn set_notes(
        &self,
        user: UserId,
        track: TrackId,
        notes: Notes,
        now: Timestamp,
    ) -> StoreResult<Option<LikedTrack>> {
        let row: Option<LikeRow> = sqlx::query_as(
            "UPDATE liked_tracks SET notes = $3, updated_at = $4 WHERE user_id = $1 AND track_id = $2
             RETURNING user_id, track_id, notes, liked_at, updated_at",
        )
        .bind(user.as_uuid())
        .bind(track.as_uuid())
        .bind(notes.as_str())
        .bind(to_pg(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(LikeRow::into_liked).transpose()
    }

    pub(super) async fn select_likes(
        &self,
        user: UserId,
        after: Option<LikePosition>,
        limit: u32,
    ) -> StoreResult<LikedPage> {
        let (after_at, after_track) = match after {
            Some(a) => (Some(to_pg(a.liked_at)), Some(a.track_id.as_uuid())),
            None => (None, None),
        };
        let page: Vec<LikeRow> = sqlx::query_as(
            "SELECT user_id, track_id, notes, liked_at, updated_at FROM liked_tracks
             WHERE user_id = $1 AND ($2::timestamptz IS NULL OR (liked_at, track_id) < ($2, $3))
             ORDER BY liked_at DESC, track_id DESC LIMIT $4",
        )
        .bind(user.as_uuid())
        .bind(after_at)
        .bind(after_track)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM liked_tracks WHERE user_id = $1")
            .bind(user.as_uuid())
            .fetch_one(&self.pool)
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
        let ids: Vec<Uuid> = tracks.iter().map(TrackId::as_uuid).collect();
        let liked: HashSet<Uuid> = sqlx::query_scalar(
            "SELECT track_id FROM liked_tracks WHERE user_id = $1 AND track_id = ANY($2)",
        )
        .bind(user.as_uuid())
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        Ok(tracks
            .iter()
            .map(|t| liked.contains(&t.as_uuid()))
            .collect())
    }
}
