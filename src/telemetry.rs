//! Logging, metrics and distributed tracing set-up.
use std::net::SocketAddr;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing::{Event, Metadata, Subscriber, span, subscriber::Interest};
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::LevelFilter,
    fmt,
    layer::{Context as LayerContext, Filter, SubscriberExt},
    util::SubscriberInitExt,
};

use crate::config::{LogFormat, TraceArgs};

mod traces;

pub use traces::{Traces, caller_trace_id, end_call, join_trace};

/// Logs go to stderr; `RUST_LOG` refines the level (default `info`). With `traces` naming an
/// OTLP endpoint, spans are exported there too (see `traces`); without it, no exporter exists
/// and no span is built for it. The returned handle flushes the spans not yet exported.
pub fn init(format: LogFormat, traces: Option<&TraceArgs>) -> anyhow::Result<Traces> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    // The log level filters the logs only: exported spans do not depend on RUST_LOG.
    let logs = match format {
        LogFormat::Text => logs.boxed(),
        LogFormat::Json => logs.json().flatten_event(true).boxed(),
    }
    .with_filter(Fresh(filter));
    let (exporter, traces) = match traces.and_then(|t| t.otlp_endpoint.as_deref().map(|e| (t, e))) {
        Some((args, endpoint)) => {
            let (layer, traces) = traces::layer(args, endpoint)
                .with_context(|| format!("--otlp-endpoint {endpoint}"))?;
            (Some(layer), traces)
        }
        None => (None, Traces::default()),
    };
    // try_init: tests may initialise more than once.
    if tracing_subscriber::registry()
        .with(logs)
        .with(exporter)
        .try_init()
        .is_ok()
    {
        traces.installed();
    }
    Ok(traces)
}

/// A per-layer filter asked at every span and event, never answering from the callsite's
/// cache. tracing-subscriber hands each per-layer filter's decision from `enabled` to the span or
/// event through a thread-local, which goes stale when something asks `enabled` without then
/// logging: sqlx does, after every query (tokio-rs/tracing#2519). A callsite that cached
/// `Interest::always` skips `enabled`, reads the stale state, and its span silently vanishes
/// from the logs and the exporter: with the exporter's layer beside the logs', a call's span on
/// PostgreSQL did, and its log lines lost their trace id (tests/traces.rs). Asking afresh costs
/// a level comparison per enabled callsite.
struct Fresh<F>(F);

impl<S: Subscriber, F: Filter<S>> Filter<S> for Fresh<F> {
    fn enabled(&self, meta: &Metadata<'_>, cx: &LayerContext<'_, S>) -> bool {
        self.0.enabled(meta, cx)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        let interest = self.0.callsite_enabled(meta);
        if interest.is_always() {
            Interest::sometimes()
        } else {
            interest
        }
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &LayerContext<'_, S>) -> bool {
        self.0.event_enabled(event, cx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.0.max_level_hint()
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: LayerContext<'_, S>) {
        self.0.on_new_span(attrs, id, cx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: LayerContext<'_, S>) {
        self.0.on_record(id, values, cx);
    }

    fn on_enter(&self, id: &span::Id, cx: LayerContext<'_, S>) {
        self.0.on_enter(id, cx);
    }

    fn on_exit(&self, id: &span::Id, cx: LayerContext<'_, S>) {
        self.0.on_exit(id, cx);
    }

    fn on_close(&self, id: span::Id, cx: LayerContext<'_, S>) {
        self.0.on_close(id, cx);
    }
}

/// Latency buckets (seconds) of `grpc_server_handling_seconds`: from a cached read to a long
/// stream, with the alert's 0.5 s among them.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// Where this process serves its metrics, once installed.
static METRICS_AT: std::sync::OnceLock<SocketAddr> = std::sync::OnceLock::new();

/// Serves `GET /metrics` in the Prometheus text format on `addr`. One process has one recorder:
/// a second server in the same process (tests) keeps using the first endpoint. Installing at the
/// same address again does nothing, so `serve` can install it before its start-up work (the
/// JWKS fetch counts) and the server again when it starts.
pub fn install_metrics(addr: SocketAddr) -> anyhow::Result<()> {
    if let Some(first) = METRICS_AT.get() {
        if *first != addr {
            tracing::warn!(%first, %addr, "metrics already served at another address");
        }
        return Ok(());
    }
    let installed = PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(LATENCY_BUCKETS)
        .context("configuring metric buckets")?
        .install();
    match installed {
        Ok(()) => {
            let _ = METRICS_AT.set(addr);
            describe_metrics();
            tracing::info!(%addr, "serving Prometheus metrics at /metrics");
        }
        Err(e) => tracing::warn!(error = %e, "metrics endpoint not started"),
    }
    Ok(())
}

fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!("grpc_server_started_total", "RPCs started on the server.");
    describe_counter!(
        "grpc_server_handled_total",
        "RPCs completed on the server, by status code."
    );
    describe_histogram!(
        "grpc_server_handling_seconds",
        Unit::Seconds,
        "Time to handle an RPC, to the end of its response."
    );
    describe_counter!(
        "library_plays_recorded_total",
        "Plays newly stored (retries and duplicates excluded)."
    );
    describe_counter!("library_likes_added_total", "Tracks newly liked.");
    describe_counter!("library_likes_removed_total", "Likes removed.");
    describe_counter!("library_plays_purged_total", "Plays deleted by retention.");
    describe_gauge!(
        "library_history_rows_estimate",
        "Plays stored, estimated (planner statistics on PostgreSQL)."
    );
    describe_gauge!(
        "library_db_pool_connections",
        "Database connections held, by state."
    );
    describe_gauge!(
        "library_db_pool_max_connections",
        "Most database connections the pool may hold."
    );
    describe_gauge!(
        "library_database_up",
        "1 while the database answers the health probe, else 0."
    );
}
