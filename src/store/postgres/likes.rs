//! One listener's liked tracks.
use std::collections::HashSet;

use sqlx::FromRow;

use super::{PgStore, live::append};
use crate::{
    domain::{LikePosition, LikedTrack, Notes, Timestamp, TrackId, UserId},
    store::{
        LikeOutcome, LikeStore, LikedPage, StoreResult,
        events::Entry,
        rows::{LikeRow, count, like_columns},
    },
};

#[derive(FromRow)]
struct UpsertRow {
    #[sqlx(flatten)]
    like: LikeRow,
    inserted: bool,
}

impl LikeStore for PgStore {
    async fn like_track(
        &self,
        user: UserId,
        track: TrackId,
        notes: Option<Notes>,
        now: Timestamp,
    ) -> StoreResult<LikeOutcome> {
        let mut tx = super::begin(&self.pool, None).await?;
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
        .bind(user)
        .bind(track)
        .bind(notes.as_ref().map(Notes::as_str))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let liked: LikedTrack = row.like.into();
        // Liking again without notes changes nothing, and tells nobody.
        let changed = row.inserted || notes.is_some();
        if changed {
            append(&mut tx, user, Entry::track_liked(&liked)).await?;
        }
        tx.commit().await?;
        if changed {
            self.feed.published([user]);
        }
        Ok(LikeOutcome {
            liked,
            already_liked: !row.inserted,
        })
    }

    async fn unlike_track(&self, user: UserId, track: TrackId) -> StoreResult<bool> {
        let mut tx = super::begin(&self.pool, None).await?;
        let done = sqlx::query("DELETE FROM liked_tracks WHERE user_id = $1 AND track_id = $2")
            .bind(user)
            .bind(track)
            .execute(&mut *tx)
            .await?;
        let was_liked = done.rows_affected() > 0;
        if was_liked {
            append(&mut tx, user, Entry::track_unliked(track)).await?;
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
        let mut tx = super::begin(&self.pool, None).await?;
        let row: Option<LikeRow> = sqlx::query_as(concat!(
            "UPDATE liked_tracks SET notes = $3, updated_at = $4 WHERE user_id = $1 AND track_id = $2
             RETURNING ",
            like_columns!()
        ))
        .bind(user)
        .bind(track)
        .bind(notes.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(liked) = row.map(LikedTrack::from) else {
            return Ok(None);
        };
        append(&mut tx, user, Entry::track_liked(&liked)).await?;
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
        let page: Vec<LikeRow> = sqlx::query_as(concat!(
            "SELECT ",
            like_columns!(),
            " FROM liked_tracks
             WHERE user_id = $1 AND ($2::timestamptz IS NULL OR (liked_at, track_id) < ($2, $3))
             ORDER BY liked_at DESC, track_id DESC LIMIT $4"
        ))
        .bind(user)
        .bind(after.map(|a| a.liked_at))
        .bind(after.map(|a| a.track_id))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM liked_tracks WHERE user_id = $1")
            .bind(user)
            .fetch_one(&self.pool)
            .await?;
        Ok(LikedPage {
            tracks: page.into_iter().map(LikedTrack::from).collect(),
            total: count(total)?,
        })
    }

    async fn check_liked(&self, user: UserId, tracks: &[TrackId]) -> StoreResult<Vec<bool>> {
        let liked: HashSet<TrackId> = sqlx::query_scalar(
            "SELECT track_id FROM liked_tracks WHERE user_id = $1 AND track_id = ANY($2)",
        )
        .bind(user)
        .bind(tracks)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        Ok(tracks.iter().map(|t| liked.contains(t)).collect())
    }

    async fn restore_likes(&self, user: UserId, likes: &[LikedTrack]) -> StoreResult<u64> {
        // One statement over arrays: nothing else derives from `liked_tracks` (the most-liked
        // figures and the liked count are read from it), so the rows, and an event for each
        // like added, are the whole write.
        let mut tx = super::begin(&self.pool, None).await?;
        let added: Vec<LikedTrack> = sqlx::query_as::<_, LikeRow>(concat!(
            "INSERT INTO liked_tracks (user_id, track_id, notes, liked_at, updated_at)
             SELECT $1, t, n, l, u
             FROM UNNEST($2::uuid[], $3::text[], $4::timestamptz[], $5::timestamptz[]) AS x(t, n, l, u)
             ON CONFLICT (user_id, track_id) DO NOTHING
             RETURNING ",
            like_columns!()
        ))
        .bind(user)
        .bind(likes.iter().map(|l| l.track_id).collect::<Vec<_>>())
        .bind(likes.iter().map(|l| l.notes.as_str()).collect::<Vec<_>>())
        .bind(likes.iter().map(|l| l.liked_at).collect::<Vec<_>>())
        .bind(likes.iter().map(|l| l.updated_at).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(LikedTrack::from)
        .collect();
        for like in &added {
            append(&mut tx, user, Entry::track_liked(like)).await?;
        }
        tx.commit().await?;
        if !added.is_empty() {
            self.feed.published([user]);
        }
        Ok(added.len() as u64)
    }
}
