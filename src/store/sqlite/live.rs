//! The event log and now playing on SQLite. The single writer orders every listener's events;
//! watchers are woken in this process only (one process owns the file).
use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

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

/// Rows per multi-row statement: 5 parameters each, well under SQLite's 32,766.
const ROWS_PER_STATEMENT: usize = 1000;

/// Appends a group commit's event rows in a few multi-row statements rather than two per row:
/// each statement is a round trip to SQLite's worker thread, which costs more than the row.
pub(super) async fn append_all(
    conn: &mut SqliteConnection,
    entries: Vec<(UserId, Entry)>,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    let mut per_user: HashMap<UserId, i64> = HashMap::new();
    for (user, _) in &entries {
        *per_user.entry(*user).or_default() += 1;
    }
    let counts: Vec<(UserId, i64)> = per_user.into_iter().collect();
    let mut next: HashMap<UserId, i64> = HashMap::with_capacity(counts.len());
    for chunk in counts.chunks(ROWS_PER_STATEMENT) {
        let mut sql =
            QueryBuilder::<Sqlite>::new("INSERT INTO library_event_heads (user_id, seq) ");
        sql.push_values(chunk, |mut row, (user, n)| {
            row.push_bind(*user).push_bind(*n);
        });
        sql.push(
            " ON CONFLICT (user_id) DO UPDATE SET seq = seq + excluded.seq RETURNING user_id, seq",
        );
        let heads: Vec<(UserId, i64)> = sql.build_query_as().fetch_all(&mut *conn).await?;
        next.extend(heads);
    }
    // Each listener's rows take the numbers up to its new head, in order.
    for (user, n) in &counts {
        if let Some(head) = next.get_mut(user) {
            *head -= n - 1;
        }
    }
    let mut rows = Vec::with_capacity(entries.len());
    for (user, entry) in entries {
        let seq = next.get_mut(&user).map(|s| {
            *s += 1;
            *s - 1
        });
        if let Some(seq) = seq {
            rows.push((user, seq, entry));
        }
    }
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "INSERT INTO library_events (user_id, seq, at, kind, body) ",
        );
        sql.push_values(chunk, |mut row, (user, seq, entry)| {
            row.push_bind(*user)
                .push_bind(*seq)
                .push_bind(now)
                .push_bind(entry.kind)
                .push_bind(entry.body.as_str());
        });
        sql.build().execute(&mut *conn).await?;
    }
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
