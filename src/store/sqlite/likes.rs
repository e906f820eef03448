//! One listener's liked tracks.
use std::collections::HashSet;

use sqlx::{QueryBuilder, Sqlite};

use super::{SqliteStore, live::append};
use crate::{
    domain::{LikePosition, LikedTrack, Notes, Timestamp, TrackId, UserId},
    store::{
        LikeOutcome, LikeStore, LikedPage, StoreResult,
        events::Entry,
        rows::{LikeRow, count, like_columns},
    },
};

impl LikeStore for SqliteStore {
    async fn like_track(
        &self,
        user: UserId,
        track: TrackId,
        notes: Option<Notes>,
        now: Timestamp,
    ) -> StoreResult<LikeOutcome> {
        // The single writer serializes likes, so a read then a write cannot race. The upsert
        // keeps liked_at, and notes unless new ones are given; `already_liked` is read first.
        let mut tx = self.write().await?;
        let already_liked: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM liked_tracks WHERE user_id = ? AND track_id = ?)",
        )
        .bind(user)
        .bind(track)
        .fetch_one(&mut *tx)
        .await?;
        let row: LikeRow = sqlx::query_as(concat!(
            "INSERT INTO liked_tracks (user_id, track_id, notes, liked_at, updated_at)
             VALUES (?1, ?2, COALESCE(?3, ''), ?4, ?4)
             ON CONFLICT (user_id, track_id) DO UPDATE
               SET notes = COALESCE(?3, notes),
                   updated_at = CASE WHEN ?3 IS NULL THEN updated_at ELSE excluded.updated_at END
             RETURNING ",
            like_columns!()
        ))
        .bind(user)
        .bind(track)
        .bind(notes.as_ref().map(Notes::as_str))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let liked: LikedTrack = row.into();
        // Liking again without notes changes nothing, and tells nobody.
        let changed = !already_liked || notes.is_some();
        if changed {
            append(&mut tx, user, Entry::track_liked(&liked), now).await?;
        }
        tx.commit().await?;
        if changed {
            self.feed.published([user]);
        }
        Ok(LikeOutcome {
            liked,
            already_liked,
        })
    }

    async fn unlike_track(&self, user: UserId, track: TrackId) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM liked_tracks WHERE user_id = ? AND track_id = ?")
            .bind(user)
            .bind(track)
            .execute(&mut *tx)
            .await?;
        let was_liked = done.rows_affected() > 0;
        if was_liked {
            append(&mut tx, user, Entry::track_unliked(track), Timestamp::now()).await?;
        }
        tx.commit().await?;
        if was_liked {
            self.feed.published([user]);
        }
        Ok(was_liked)
    }

    async fn update_liked_track(
        &self,
        user: UserId,
        track: TrackId,
        notes: Notes,
        now: Timestamp,
    ) -> StoreResult<Option<LikedTrack>> {
        let mut tx = self.write().await?;
        let row: Option<LikeRow> = sqlx::query_as(concat!(
            "UPDATE liked_tracks SET notes = ?, updated_at = ? WHERE user_id = ? AND track_id = ?
             RETURNING ",
            like_columns!()
        ))
        .bind(notes.as_str())
        .bind(now)
        .bind(user)
        .bind(track)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(liked) = row.map(LikedTrack::from) else {
            return Ok(None);
        };
        append(&mut tx, user, Entry::track_liked(&liked), now).await?;
        tx.commit().await?;
        self.feed.published([user]);
        Ok(Some(liked))
    }

    async fn liked_tracks_page(
        &self,
        user: UserId,
        after: Option<LikePosition>,
        limit: u32,
    ) -> StoreResult<LikedPage> {
        let mut sql = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            like_columns!(),
            " FROM liked_tracks WHERE user_id = "
        ));
        sql.push_bind(user);
        if let Some(after) = after {
            sql.push(" AND (liked_at, track_id) < (")
                .push_bind(after.liked_at)
                .push(", ")
                .push_bind(after.track_id)
                .push(")");
        }
        sql.push(" ORDER BY liked_at DESC, track_id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let page: Vec<LikeRow> = sql.build_query_as().fetch_all(&self.reader).await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM liked_tracks WHERE user_id = ?")
            .bind(user)
            .fetch_one(&self.reader)
            .await?;
        Ok(LikedPage {
            tracks: page.into_iter().map(LikedTrack::from).collect(),
            total: count(total)?,
        })
    }

    async fn check_liked(&self, user: UserId, tracks: &[TrackId]) -> StoreResult<Vec<bool>> {
        let mut sql =
            QueryBuilder::<Sqlite>::new("SELECT track_id FROM liked_tracks WHERE user_id = ");
        sql.push_bind(user).push(" AND track_id IN (");
        let mut ids = sql.separated(", ");
        for t in tracks {
            ids.push_bind(*t);
        }
        sql.push(")");
        let liked: HashSet<TrackId> = sql
            .build_query_scalar()
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .collect();
        Ok(tracks.iter().map(|t| liked.contains(t)).collect())
    }

    async fn restore_likes(&self, user: UserId, likes: &[LikedTrack]) -> StoreResult<u64> {
        // Nothing else derives from `liked_tracks` (the most-liked figures and the liked count
        // are read from it), so the rows are the whole write.
        let mut tx = self.write().await?;
        let mut added = 0;
        // 500 rows of 5 values stay far below SQLite's bound-parameter limit.
        for chunk in likes.chunks(500) {
            let mut sql = QueryBuilder::<Sqlite>::new(
                "INSERT INTO liked_tracks (user_id, track_id, notes, liked_at, updated_at) ",
            );
            sql.push_values(chunk, |mut row, like| {
                row.push_bind(user)
                    .push_bind(like.track_id)
                    .push_bind(like.notes.as_str())
                    .push_bind(like.liked_at)
                    .push_bind(like.updated_at);
            });
            sql.push(concat!(
                " ON CONFLICT (user_id, track_id) DO NOTHING RETURNING ",
                like_columns!()
            ));
            let rows: Vec<LikeRow> = sql.build_query_as().fetch_all(&mut *tx).await?;
            // Each like added is an event, as a LikeTrack would be.
            let now = Timestamp::now();
            for row in rows {
                append(
                    &mut tx,
                    user,
                    Entry::track_liked(&LikedTrack::from(row)),
                    now,
                )
                .await?;
                added += 1;
            }
        }
        tx.commit().await?;
        if added > 0 {
            self.feed.published([user]);
        }
        Ok(added)
    }
}
