//! The event log and now playing on SQLite. The single writer orders every listener's events;
//! watchers are woken in this process only (one process owns the file).
use sqlx::SqliteConnection;

use super::SqliteStore;
use crate::{
    domain::{DeviceId, EventPosition, Playback, Timestamp, UserId},
    store::{
        EventFeed, EventsFrom, LiveStore, StoreResult,
        events::{Entry, LogRow, PlaybackRow, playback_columns, read_log, stored_seconds},
    },
};

/// Appends one event row for the listener (the caller commits, then calls `published`).
pub(super) async fn append(
    conn: &mut SqliteConnection,
    user: UserId,
    entry: Entry,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO library_event_heads (user_id, seq) VALUES (?1, 1)
         ON CONFLICT (user_id) DO UPDATE SET seq = seq + 1
         RETURNING seq",
    )
    .bind(user)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO library_events (user_id, seq, at, kind, body) VALUES (?, ?, ?, ?, ?)")
        .bind(user)
        .bind(seq)
        .bind(now)
        .bind(entry.kind)
        .bind(entry.body)
        .execute(conn)
        .await?;
    Ok(())
}

impl LiveStore for SqliteStore {
    fn event_feed(&self) -> &EventFeed {
        &self.feed
    }

    async fn event_head(&self, user: UserId) -> StoreResult<EventPosition> {
        let head: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM library_event_heads WHERE user_id = ?")
                .bind(user)
                .fetch_optional(&self.reader)
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
             LEFT JOIN (
                 SELECT seq, at, kind, body FROM library_events
                 WHERE user_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3
             ) e
             WHERE h.user_id = ?1
             ORDER BY e.seq",
        )
        .bind(user)
        .bind(from.seq)
        .bind(i64::from(rows))
        .fetch_all(&self.reader)
        .await?;
        read_log(user, from, read)
    }

    async fn trim_events(&self, before: Timestamp) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM library_events WHERE at < ?")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn playback(&self, user: UserId, device: &DeviceId) -> StoreResult<Option<Playback>> {
        let row: Option<PlaybackRow> = sqlx::query_as(concat!(
            "SELECT ",
            playback_columns!(),
            " FROM now_playing WHERE user_id = ? AND device_id = ?"
        ))
        .bind(user)
        .bind(device.as_str())
        .fetch_optional(&self.reader)
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
        let now = Timestamp::now();
        let mut tx = self.write().await?;
        match next {
            Some(p) => {
                sqlx::query(
                    "INSERT INTO now_playing (user_id, device_id, playback_id, track_id, state,
                         position_seconds, track_duration_seconds, source, started_at, reported_at,
                         expires_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (user_id, device_id) DO UPDATE SET
                         playback_id = excluded.playback_id, track_id = excluded.track_id,
                         state = excluded.state, position_seconds = excluded.position_seconds,
                         track_duration_seconds = excluded.track_duration_seconds,
                         source = excluded.source, started_at = excluded.started_at,
                         reported_at = excluded.reported_at, expires_at = excluded.expires_at",
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
                sqlx::query("DELETE FROM now_playing WHERE user_id = ? AND device_id = ?")
                    .bind(user)
                    .bind(device.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if announce {
            append(&mut tx, user, Entry::now_playing(device, next), now).await?;
        }
        tx.commit().await?;
        if announce {
            self.feed.published([user]);
        }
        Ok(())
    }

    async fn now_playing(&self, users: &[UserId], now: Timestamp) -> StoreResult<Vec<Playback>> {
        let mut playbacks = Vec::new();
        // At most 100 listeners: one indexed lookup each.
        for user in users {
            let rows: Vec<PlaybackRow> = sqlx::query_as(concat!(
                "SELECT ",
                playback_columns!(),
                " FROM now_playing WHERE user_id = ? AND expires_at > ? ORDER BY device_id"
            ))
            .bind(user)
            .bind(now)
            .fetch_all(&self.reader)
            .await?;
            for row in rows {
                playbacks.push(row.into_playback()?);
            }
        }
        playbacks.sort_by(|a, b| {
            (a.user_id, &a.device_id.as_str()).cmp(&(b.user_id, &b.device_id.as_str()))
        });
        Ok(playbacks)
    }

    async fn forget_playbacks(&self, before: Timestamp) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM now_playing WHERE expires_at < ?")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
