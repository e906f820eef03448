//! Event wake-ups between replicas, through PostgreSQL's LISTEN/NOTIFY: the database is the only
//! component the replicas share, so nothing else is needed.
//!
//! The notification is sent after the commit, by one task per process, not inside the writing
//! transaction: a NOTIFY in a transaction takes a database-wide lock from its commit until the
//! end of it, which would make every group commit wait for the one before it. Changed listeners
//! pile up while a notification is in flight and go out together, up to [`PER_PAYLOAD`] in one
//! payload. Nothing depends on a notification arriving: the log is the truth, and a watcher
//! reads it again on its heartbeat, so a notification lost with a crashed replica delays an
//! event by at most a heartbeat.
use std::time::Duration;

use sqlx::{
    PgPool,
    postgres::{PgListener, PgPoolOptions},
};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::{domain::UserId, store::EventFeed};

const CHANNEL: &str = "library_events";
/// 32 hex digits and a comma each: well under NOTIFY's 8,000-byte payload.
const PER_PAYLOAD: usize = 200;

/// The relay's two tasks; stopped when the store is dropped.
pub(super) struct Relay(Vec<JoinHandle<()>>);

impl Drop for Relay {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Relay {
    pub fn start(pool: PgPool, feed: EventFeed) -> Self {
        Self(vec![
            tokio::spawn(tell(pool.clone(), feed.clone())),
            tokio::spawn(hear(pool, feed)),
        ])
    }
}

/// Sends the listeners this process changed to every replica.
async fn tell(pool: PgPool, feed: EventFeed) {
    loop {
        let users = feed.take_relayed().await;
        let payloads: Vec<String> = users
            .chunks(PER_PAYLOAD)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|u| u.as_uuid().simple().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        let sent = sqlx::query("SELECT pg_notify($1, p) FROM UNNEST($2::text[]) AS p")
            .bind(CHANNEL)
            .bind(&payloads)
            .execute(&pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, listeners = users.len(), "event relay: notify failed; retrying");
            metrics::counter!("library_event_relay_failures_total").increment(1);
            feed.relay_again(users);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Wakes this process's watchers of the listeners other replicas (and this one) changed.
async fn hear(pool: PgPool, feed: EventFeed) {
    // A listener keeps its connection for good: it gets a pool of its own, so that the store's
    // pool keeps every connection it was sized with.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with((*pool.connect_options()).clone());
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "event relay: cannot listen; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "event relay: LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Anything committed while not listening went unheard.
        feed.wake_all();
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => feed.wake(
                    n.payload()
                        .split(',')
                        .filter_map(|u| Uuid::try_parse(u).ok().map(UserId::from_uuid)),
                ),
                Ok(None) => {
                    tracing::warn!("event relay: connection lost and restored");
                    feed.wake_all();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event relay: listening failed; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}
