//! Background tasks of a running server: partition upkeep, retention, the health probe and the
//! gauges of the metrics endpoint. Each logs its failures and tries again at its next round.
use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tonic_health::server::HealthReporter;

use crate::{
    config::ServeArgs,
    domain::Timestamp,
    error::chain,
    grpc::{DatabaseGate, Limits},
    pb::{library_admin_service_server, library_service_server},
    store::Store,
};

const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
const GAUGE_INTERVAL: Duration = Duration::from_secs(15);
const SECONDS_PER_DAY: i64 = 86_400;

/// The health status of this server. The two API services need the database, so they follow
/// it (readiness); the overall status `""` stays SERVING while the process runs, so that a
/// liveness probe does not restart every replica during a database outage.
#[derive(Clone)]
pub(super) struct Services {
    health: HealthReporter,
}

impl Services {
    pub fn new(health: HealthReporter) -> Self {
        Self { health }
    }

    pub async fn set_serving(&self, serving: bool) {
        let status = if serving {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        for service in [
            library_service_server::SERVICE_NAME,
            library_admin_service_server::SERVICE_NAME,
        ] {
            self.health.set_service_status(service, status).await;
        }
    }

    /// At shutdown: NOT_SERVING for good, everywhere, so load balancers stop sending calls.
    pub async fn shutting_down(&self) {
        self.set_serving(false).await;
        self.health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
    }
}

pub(super) fn spawn_all<S: Store>(
    store: S,
    settings: &ServeArgs,
    services: Services,
    gate: DatabaseGate,
    limits: Arc<Limits>,
) -> Vec<JoinHandle<()>> {
    store.relay_events();
    let mut tasks = vec![
        tokio::spawn(housekeeping(store.clone(), settings.history_retention_days)),
        tokio::spawn(health_probe(
            store.clone(),
            services,
            gate,
            Duration::from_secs(settings.health_probe_seconds),
        )),
        tokio::spawn(gauges(store.clone())),
        tokio::spawn(forget_idle_callers(limits)),
        tokio::spawn(tidy_live(store.clone(), settings.event_retention_minutes)),
    ];
    if let Some(days) = settings.history_retention_days {
        tasks.push(tokio::spawn(retention(
            store,
            days,
            Duration::from_secs(settings.retention_interval_seconds),
        )));
    }
    tasks
}

/// Daily upkeep: the partitions are prepared months ahead and writes create a missing one
/// themselves, so a failed round costs nothing. With retention on, the idempotency keys of plays
/// past the retention period go too (kept at least a day after their first use, whatever their
/// play's time); without it, keys are kept as long as the plays.
async fn housekeeping<S: Store>(store: S, retention_days: Option<u32>) {
    let mut every = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(e) = store.housekeeping().await {
            tracing::warn!(error = %chain(&e), "housekeeping failed");
        }
        if let Some(days) = retention_days {
            let now = Timestamp::now();
            let played_before = now.saturating_add_seconds(-i64::from(days) * SECONDS_PER_DAY);
            let used_before = now.saturating_add_seconds(-SECONDS_PER_DAY);
            match store.forget_request_ids(played_before, used_before).await {
                Ok(forgotten) => tracing::info!(forgotten, "old idempotency keys forgotten"),
                Err(e) => tracing::warn!(error = %chain(&e), "forgetting idempotency keys failed"),
            }
        }
    }
}

/// Health that tells the truth: NOT_SERVING while the database does not answer, SERVING again
/// as soon as it does; the gate refuses API calls meanwhile. Only changes are logged.
async fn health_probe<S: Store>(store: S, services: Services, gate: DatabaseGate, every: Duration) {
    let mut serving = true;
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        // A healthy ping takes milliseconds; waiting longer only delays the verdict.
        let patience = every.clamp(Duration::from_millis(500), Duration::from_secs(2));
        let ok = match tokio::time::timeout(patience, store.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                if serving {
                    tracing::error!(error = %chain(&e), "database unreachable: NOT_SERVING");
                }
                false
            }
            Err(_) => {
                if serving {
                    tracing::error!("database did not answer in time: NOT_SERVING");
                }
                false
            }
        };
        metrics::gauge!("library_database_up").set(if ok { 1.0 } else { 0.0 });
        gate.set_reachable(ok);
        if ok != serving {
            if ok {
                tracing::info!("database reachable again: SERVING");
            }
            services.set_serving(ok).await;
            serving = ok;
        }
    }
}

/// Deletes plays older than the retention period, every `every`.
async fn retention<S: Store>(store: S, days: u32, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let cutoff = Timestamp::now().saturating_add_seconds(-i64::from(days) * SECONDS_PER_DAY);
        match store.purge_plays_before(cutoff, false).await {
            Ok(deleted) => {
                metrics::counter!("library_plays_purged_total").increment(deleted);
                tracing::info!(retention_days = days, deleted, "retention run");
            }
            Err(e) => tracing::warn!(error = %chain(&e), "retention run failed"),
        }
    }
}

/// Pool, snapshot-cache and history-size gauges, for dashboards and the alerts in deploy/.
async fn gauges<S: Store>(store: S) {
    let mut ticks = tokio::time::interval(GAUGE_INTERVAL);
    loop {
        ticks.tick().await;
        let pool = store.pool_status();
        metrics::gauge!("library_db_pool_connections", "state" => "idle").set(pool.idle as f64);
        metrics::gauge!("library_db_pool_connections", "state" => "in_use")
            .set(pool.size.saturating_sub(pool.idle) as f64);
        metrics::gauge!("library_db_pool_max_connections").set(pool.max as f64);
        let cache = store.stats_cache_status();
        metrics::gauge!("library_stats_cache_bytes").set(cache.bytes as f64);
        metrics::gauge!("library_stats_cache_budget_bytes").set(cache.budget as f64);
        metrics::gauge!("library_stats_cache_snapshots").set(cache.entries as f64);
        // Monotonic in the cache; exported as counters so rates can be taken.
        metrics::counter!("library_stats_cache_lookups_total", "result" => "hit")
            .absolute(cache.hits);
        metrics::counter!("library_stats_cache_lookups_total", "result" => "miss")
            .absolute(cache.misses);
        let writes = store.write_group_status();
        metrics::gauge!("library_write_queue_plays").set(writes.queued_plays as f64);
        metrics::gauge!("library_write_queue_capacity_plays").set(writes.queue_plays as f64);
        metrics::counter!("library_write_groups_total").absolute(writes.groups);
        metrics::counter!("library_write_group_calls_total").absolute(writes.calls);
        metrics::counter!("library_write_group_plays_total").absolute(writes.plays);
        metrics::counter!("library_write_calls_shed_total").absolute(writes.shed);
        metrics::counter!("library_write_calls_abandoned_total").absolute(writes.abandoned);
        metrics::counter!("library_write_groups_split_total").absolute(writes.split);
        match store.history_size_estimate().await {
            Ok(rows) => metrics::gauge!("library_history_rows_estimate").set(rows as f64),
            Err(e) => tracing::debug!(error = %chain(&e), "history size estimate failed"),
        }
    }
}

/// Every minute: events older than the retention go (a watcher resuming from before them is
/// told to reload), and so do playbacks that expired.
async fn tidy_live<S: Store>(store: S, retention_minutes: u32) {
    let mut ticks = tokio::time::interval(Duration::from_secs(60));
    loop {
        ticks.tick().await;
        let now = Timestamp::now();
        match store
            .trim_events(now.saturating_add_seconds(-i64::from(retention_minutes) * 60))
            .await
        {
            Ok(trimmed) => metrics::counter!("library_events_trimmed_total").increment(trimmed),
            Err(e) => tracing::warn!(error = %chain(&e), "trimming events failed"),
        }
        if let Err(e) = store.forget_playbacks(now).await {
            tracing::warn!(error = %chain(&e), "forgetting expired playbacks failed");
        }
        metrics::gauge!("library_watched_listeners").set(store.event_feed().watched() as f64);
    }
}

/// The rate limiter keeps a state per caller; idle callers are forgotten so that its memory
/// follows the active callers.
async fn forget_idle_callers(limits: Arc<Limits>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(60));
    loop {
        ticks.tick().await;
        limits.forget_idle();
    }
}
