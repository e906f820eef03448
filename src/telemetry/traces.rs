//! Distributed tracing over OTLP/gRPC. A call joins its caller's trace (W3C `traceparent` and
//! `tracestate`); its span, a SERVER span named `Service/Method` with the `rpc.*` attributes, and
//! the CLIENT spans of its store operations are exported in batches to the collector that
//! `--otlp-endpoint` names. Without that flag none of this is installed: [`join_trace`] and
//! [`end_call`] return at once, and the store's spans are disabled callsites.
use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use opentelemetry::{
    KeyValue,
    propagation::{Extractor, TextMapPropagator},
    trace::{Status, TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracerProvider},
};
use tonic::Code;
use tracing::{Level, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{Layer, filter::filter_fn, registry::LookupSpan};

use crate::config::TraceArgs;

/// Whether spans are exported: read on every call, so an atomic rather than a lock.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// How long shutdown waits for the last spans to reach the collector: within Kubernetes'
/// 30 s grace, after the server's own.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The exporter, when there is one: flushed by [`Traces::shutdown`].
#[derive(Default)]
pub struct Traces {
    provider: Option<SdkTracerProvider>,
}

impl Traces {
    /// The layer is in the process's subscriber: calls start joining traces.
    pub(super) fn installed(&self) {
        if self.provider.is_some() {
            EXPORTING.store(true, Ordering::Relaxed);
        }
    }

    /// Exports the spans still queued and stops the exporter (at most [`FLUSH_TIMEOUT`]).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        EXPORTING.store(false, Ordering::Relaxed);
        // The SDK blocks this thread until its export thread is done; the export itself runs
        // on the tonic channel's tasks, on this runtime.
        let done =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH_TIMEOUT))
                .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "spans not exported before exit"),
            Err(e) => tracing::warn!(error = %e, "spans not exported before exit"),
        }
    }
}

/// The exporter's layer: the spans of this crate (calls at info, store operations at debug)
/// whatever `RUST_LOG` says, and warnings and errors as events of the span they happen in.
pub(super) fn layer<S>(
    args: &TraceArgs,
    endpoint: &str,
) -> anyhow::Result<(impl Layer<S> + use<S>, Traces)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    let resource = Resource::builder()
        .with_service_name(args.otlp_service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    // The caller's sampled flag decides for a call that has one, so that a trace is whole or
    // absent; the ratio decides for the traces this service starts.
    let sampler =
        Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(args.otlp_sample_ratio)));
    // A batch exporter on its own thread: a call never waits for the collector, and a full
    // queue drops spans rather than memory growing (OTEL_BSP_* tune it).
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("library-service");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_location(false)
        .with_target(false)
        .with_filter(super::Fresh(filter_fn(|meta| {
            if meta.is_span() {
                meta.target().starts_with("library_service")
                    && *meta.level() <= Level::DEBUG
                    // Health and reflection, probed every few seconds, are not worth a trace.
                    && !(meta.name() == "call" && *meta.level() > Level::INFO)
            } else {
                *meta.level() <= Level::WARN
            }
        })));
    let traces = Traces {
        provider: Some(provider),
    };
    Ok((layer, traces))
}

/// Joins the call's span to the trace its `traceparent` names (a malformed one is ignored: the
/// call starts a trace of its own), names it after the RPC and gives it the `rpc.*`
/// attributes. Returns the call's trace id, or `None` when nothing is exported.
pub fn join_trace(
    span: &tracing::Span,
    headers: &http::HeaderMap,
    service: &str,
    method: &str,
) -> Option<String> {
    if !EXPORTING.load(Ordering::Relaxed) {
        return None;
    }
    // The SDK's parser takes a trace id of fewer than 32 digits; the W3C's does not.
    let parent = match caller_trace_id(headers) {
        Some(_) => TraceContextPropagator::new().extract(&Headers(headers)),
        None => opentelemetry::Context::new(),
    };
    // Both must come before the span is built, which `context()` below does.
    span.set_parent(parent).ok()?;
    span.record("otel.kind", "server");
    let context = span.context();
    let otel = context.span();
    otel.update_name(format!("{service}/{method}"));
    otel.set_attributes([
        KeyValue::new("rpc.system", "grpc"),
        KeyValue::new("rpc.service", service.to_string()),
        KeyValue::new("rpc.method", method.to_string()),
    ]);
    let trace = otel.span_context().trace_id();
    Some(trace.to_string())
}

/// Gives the call's span its gRPC status: an error status for the codes that mean the server
/// failed (OpenTelemetry's gRPC conventions), not for a client's mistakes.
pub fn end_call(span: &tracing::Span, code: Code) {
    if !EXPORTING.load(Ordering::Relaxed) {
        return;
    }
    span.set_attribute("rpc.grpc.status_code", code as i64);
    if matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    ) {
        span.set_status(Status::error(format!("{code:?}")));
    }
}

/// The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`, lowercase), when
/// it is well formed: all-zero ids are invalid by the specification, and version 00 has exactly
/// four parts (a later version may append more).
pub fn caller_trace_id(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    let mut parts = value.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    let valid = hex(version, 2)
        && version != "ff"
        && (version != "00" || parts.next().is_none())
        && hex(trace, 32)
        && nonzero(trace)
        && hex(parent, 16)
        && nonzero(parent)
        && hex(flags, 2);
    valid.then_some(trace)
}

/// The request's headers, as the propagator reads them.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::caller_trace_id;

    fn trace_of(traceparent: &str) -> Option<String> {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", traceparent.parse().expect("ascii"));
        caller_trace_id(&headers).map(str::to_string)
    }

    #[test]
    fn a_well_formed_traceparent_gives_its_trace_id() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            trace_of(&format!("00-{id}-00f067aa0ba902b7-01")).as_deref(),
            Some(id)
        );
        // A later version may carry more parts.
        assert_eq!(
            trace_of(&format!("01-{id}-00f067aa0ba902b7-01-x")).as_deref(),
            Some(id)
        );
    }

    #[test]
    fn a_malformed_traceparent_gives_none() {
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", // 31 digits
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // uppercase
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero parent
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // extra part in 00
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // forbidden version
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",   // no flags
            "garbage",
        ] {
            assert_eq!(trace_of(bad), None, "{bad}");
        }
    }
}
