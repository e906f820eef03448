//! The event log and now playing on PostgreSQL. Appends run inside the transaction of the
//! change they record; the listener's counter row is the last row it locks, so concurrent
//! writers of one listener commit their events in number order.
use sqlx::PgConnection;

use super::PgStore;
use crate::{
    domain::{DeviceId, EventPosition, Playback, Timestamp, UserId},
    store::{
        EventFeed, EventsFrom, LiveStore, StoreResult,
        events::{Entry, LogRow, PlaybackRow, playback_columns, read_log, stored_seconds},
    },
};

/// Appends one event row for the listener (the caller commits, then calls `published`).
pub(super) async fn append(
    conn: &mut PgConnection,
    user: UserId,
    entry: Entry,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH head AS (
             INSERT INTO library_event_heads AS h (user_id, seq) VALUES ($1, 1)
             ON CONFLICT (user_id) DO UPDATE SET seq = h.seq + 1
             RETURNING seq
         )
         INSERT INTO library_events (user_id, seq, kind, body)
         SELECT $1, seq, $2, $3 FROM head",
    )
    .bind(user)
    .bind(entry.kind)
    .bind(entry.body)
    .execute(conn)
    .await?;
    Ok(())
}

impl LiveStore for PgStore {
    fn event_feed(&self) -> &EventFeed {
        &self.feed
    }

    async fn event_head(&self, user: UserId) -> StoreResult<EventPosition> {
        let head: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM library_event_heads WHERE user_id = $1")
                .bind(user)
                .fetch_optional(&self.pool)
                .await?;
        Ok(EventPosition {
            seq: head.unwrap_or(0) + 1,
            index: 0,
        })
    }

    async fn events_from(
        &self,
        user: UserId,
        from: EventPosition,
        rows: u32,
    ) -> StoreResult<EventsFrom> {
        let read: Vec<LogRow> = sqlx::query_as(
            "SELECT h.seq AS head, e.seq, e.at, e.kind, e.body
             FROM library_event_heads h
             LEFT JOIN LATERAL (
                 SELECT seq, at, kind, body FROM library_events
                 WHERE user_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3
             ) e ON true
             WHERE h.user_id = $1
             ORDER BY e.seq",
        )
        .bind(user)
        .bind(from.seq)
        .bind(i64::from(rows))
        .fetch_all(&self.pool)
        .await?;
        read_log(user, from, read)
    }

    async fn trim_events(&self, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM library_events WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn playback(&self, user: UserId, device: &DeviceId) -> StoreResult<Option<Playback>> {
        let row: Option<PlaybackRow> = sqlx::query_as(concat!(
            "SELECT ",
            playback_columns!(),
            " FROM now_playing WHERE user_id = $1 AND device_id = $2"
        ))
        .bind(user)
        .bind(device.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(PlaybackRow::into_playback).transpose()
    }

    async fn set_playback(
        &self,
        user: UserId,
        device: &DeviceId,
        next: Option<&Playback>,
        announce: bool,
    ) -> StoreResult<()> {
        let mut tx = super::begin(&self.pool, None).await?;
        match next {
            Some(p) => {
                sqlx::query(
                    "INSERT INTO now_playing (user_id, device_id, playback_id, track_id, state,
                         position_seconds, track_duration_seconds, source, started_at, reported_at,
                         expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                     ON CONFLICT (user_id, device_id) DO UPDATE SET
                         playback_id = EXCLUDED.playback_id, track_id = EXCLUDED.track_id,
                         state = EXCLUDED.state, position_seconds = EXCLUDED.position_seconds,
                         track_duration_seconds = EXCLUDED.track_duration_seconds,
                         source = EXCLUDED.source, started_at = EXCLUDED.started_at,
                         reported_at = EXCLUDED.reported_at, expires_at = EXCLUDED.expires_at",
                )
                .bind(user)
                .bind(device.as_str())
                .bind(p.playback_id.as_str())
                .bind(p.track_id)
                .bind(p.state.code())
                .bind(stored_seconds(p.position_seconds))
                .bind(p.track_duration_seconds.map(stored_seconds))
                .bind(&p.source)
                .bind(p.started_at)
                .bind(p.reported_at)
                .bind(p.expires_at())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM now_playing WHERE user_id = $1 AND device_id = $2")
                    .bind(user)
                    .bind(device.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if announce {
            append(&mut tx, user, Entry::now_playing(device, next)).await?;
        }
        tx.commit().await?;
        if announce {
            self.feed.published([user]);
        }
        Ok(())
    }

    async fn now_playing(&self, users: &[UserId], now: Timestamp) -> StoreResult<Vec<Playback>> {
        let rows: Vec<PlaybackRow> = sqlx::query_as(concat!(
            "SELECT ",
            playback_columns!(),
            " FROM now_playing WHERE user_id = ANY($1) AND expires_at > $2
             ORDER BY user_id, device_id"
        ))
        .bind(users)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(PlaybackRow::into_playback).collect()
    }

    async fn forget_playbacks(&self, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM now_playing WHERE expires_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
