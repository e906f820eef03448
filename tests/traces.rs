//! Distributed tracing as an operator sees it: the service binary started with `--otlp-endpoint`
//! pointing at an OTLP/gRPC receiver inside the test (the real protocol, as a collector serves
//! it), calls carrying a W3C `traceparent`, and what the receiver and the logs show.
#[path = "support/mod.rs"]
mod support;

use std::{
    collections::HashMap,
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use library_service::pb::{self, library_service_client::LibraryServiceClient};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value},
    trace::v1::{Span, span::SpanKind},
};
use support::{
    app::{AUDIENCE, ISSUER, SECRET, session_token, with_token},
    db,
    process::{Served, binary},
};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, transport::server::TcpIncoming};
use uuid::Uuid;

/// A span as received, with the resource it came with.
#[derive(Clone, Debug)]
struct Received {
    span: Span,
    resource: HashMap<String, String>,
}

/// An OTLP/gRPC trace receiver on a free port: what a collector would be given.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
    exports: Arc<Mutex<u32>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        *self.exports.lock().expect("lock") += 1;
        let mut spans = self.spans.lock().expect("lock");
        for batch in request.into_inner().resource_spans {
            let resource = batch
                .resource
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            for scope in batch.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| Received {
                    span,
                    resource: resource.clone(),
                }));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves on 127.0.0.1; returns the endpoint to give `--otlp-endpoint`.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        format!("http://{addr}")
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().expect("lock").clone()
    }

    fn exports(&self) -> u32 {
        *self.exports.lock().expect("lock")
    }

    /// The spans of one trace.
    fn trace(&self, trace: &str) -> Vec<Received> {
        self.spans()
            .into_iter()
            .filter(|r| hex(&r.span.trace_id) == trace)
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attributes(list: &[KeyValue]) -> HashMap<String, String> {
    list.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

fn named<'a>(spans: &'a [Received], name: &str) -> &'a Span {
    &spans
        .iter()
        .find(|r| r.span.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {:#?}", names(spans)))
        .span
}

fn names(spans: &[Received]) -> Vec<&str> {
    spans.iter().map(|r| r.span.name.as_str()).collect()
}

/// The service binary in a fresh directory (SQLite there), with no OTEL_* setting inherited.
fn service_in(dir: &std::path::Path) -> Command {
    let mut cmd = binary();
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("LIBRARY_JWT_PUBLIC_KEYS")
        .env("LIBRARY_JWT_SECRET", SECRET)
        .env("LIBRARY_JWT_ISSUER", ISSUER)
        .env("LIBRARY_JWT_AUDIENCE", AUDIENCE);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OTEL_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn traced<T>(message: T, token: &str, traceparent: &str) -> Request<T> {
    let mut request = with_token(message, token);
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().expect("ascii"));
    request
        .metadata_mut()
        .insert("tracestate", "audiohm=player".parse().expect("ascii"));
    request
}

fn play() -> pb::RecordPlayRequest {
    pb::RecordPlayRequest {
        track_id: Uuid::new_v4().to_string(),
        played_for_seconds: 60,
        ..Default::default()
    }
}

/// Stops the server (SIGTERM: the exporter flushes on the way out) and returns its logs.
fn stop(served: Served) -> String {
    served.sigterm();
    let (status, logs) = served.wait();
    assert!(status.success(), "{logs}");
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_exported_as_a_child_of_the_callers_span_with_its_store_queries() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = service_in(dir.path());
    cmd.args(["--log-format", "json"])
        .env("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=library-0");
    let (served, channel) = Served::start(cmd, &["--otlp-endpoint", &endpoint]).await;
    let user = Uuid::new_v4();
    let token = session_token(user);
    let mut client = LibraryServiceClient::new(channel);
    let (trace, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let traceparent = format!("00-{trace}-{caller_span}-01");
    client
        .record_play(traced(play(), &token, &traceparent))
        .await
        .expect("recorded");
    let (listing, listing_span) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let mut history = client
        .list_history(traced(
            pb::ListHistoryRequest::default(),
            &token,
            &format!("00-{listing}-{listing_span}-01"),
        ))
        .await
        .expect("listing")
        .into_inner();
    while let Some(entry) = history.next().await {
        entry.expect("entry");
    }
    let logs = stop(served);

    let spans = receiver.trace(trace);
    let call = named(&spans, "audiohm.library.v1.LibraryService/RecordPlay");
    assert_eq!(call.kind, SpanKind::Server as i32);
    assert_eq!(
        hex(&call.parent_span_id),
        caller_span,
        "a child of the caller's span"
    );
    assert_eq!(
        call.trace_state, "audiohm=player",
        "the caller's tracestate goes on"
    );
    let attrs = attributes(&call.attributes);
    assert_eq!(attrs["rpc.system"], "grpc");
    assert_eq!(attrs["rpc.service"], "audiohm.library.v1.LibraryService");
    assert_eq!(attrs["rpc.method"], "RecordPlay");
    assert_eq!(attrs["rpc.grpc.status_code"], "0");
    assert_eq!(attrs["caller"], user.to_string());
    let resource = &spans[0].resource;
    assert_eq!(resource["service.name"], "library-service");
    assert_eq!(resource["service.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        resource["k8s.pod.name"], "library-0",
        "as deploy/kubernetes.yaml sets it"
    );

    // The store's query, and the group commit that wrote the play, beneath the call.
    let query = named(&spans, "record_plays");
    assert_eq!(query.kind, SpanKind::Client as i32);
    assert_eq!(query.parent_span_id, call.span_id);
    assert_eq!(attributes(&query.attributes)["db.system.name"], "sqlite");
    let commit = named(&spans, "write_group");
    assert_eq!(commit.parent_span_id, query.span_id);
    assert!(
        commit.start_time_unix_nano >= query.start_time_unix_nano,
        "the commit happens while the call waits for it"
    );

    // A stream's pages are read by a task of its own: still in the call's trace.
    let spans = receiver.trace(listing);
    let call = named(&spans, "audiohm.library.v1.LibraryService/ListHistory");
    assert_eq!(hex(&call.parent_span_id), listing_span);
    let page = named(&spans, "history_page");
    assert_eq!(page.parent_span_id, call.span_id);

    // And the call's log line carries the same trace id.
    let line: serde_json::Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "call" && l["method"] == "RecordPlay")
        .unwrap_or_else(|| panic!("no call line in {logs}"));
    assert_eq!(line["span"]["trace_id"], trace, "{line}");
}

/// One RecordPlay with a `traceparent` to a server on a fresh PostgreSQL database, exporting
/// when `export`; the server's logs, with what the receiver got of the trace (`None` when
/// PostgreSQL is not configured for the tests).
async fn record_on_postgresql(trace: &str, export: bool) -> Option<(String, Vec<Received>)> {
    let test_db = db::postgres().await?;
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = service_in(dir.path());
    cmd.env("DATABASE_URL", test_db.url());
    let args = if export {
        vec!["--otlp-endpoint", &endpoint]
    } else {
        Vec::new()
    };
    let (served, channel) = Served::start(cmd, &args).await;
    LibraryServiceClient::new(channel)
        .record_play(traced(
            play(),
            &session_token(Uuid::new_v4()),
            &format!("00-{trace}-00f067aa0ba902b7-01"),
        ))
        .await
        .expect("recorded");
    let logs = stop(served);
    Some((logs, receiver.trace(trace)))
}

/// sqlx asks the logger whether to log each query without then logging it, which could leave
/// the next span out of the logs (see `telemetry::Fresh`): the call's line must keep its trace id.
fn assert_call_line_has_trace(logs: &str, trace: &str) {
    let line = logs
        .lines()
        .find(|l| l.contains("method=RecordPlay") && l.contains(" call "))
        .unwrap_or_else(|| panic!("no call line in {logs}"));
    assert!(line.contains(&format!("trace_id=\"{trace}\"")), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_call_and_its_store_spans_are_exported_and_logged() {
    let trace = "5bf92f3577b34da6a3ce929d0e0e4736";
    let Some((logs, spans)) = record_on_postgresql(trace, true).await else {
        return;
    };
    let call = named(&spans, "audiohm.library.v1.LibraryService/RecordPlay");
    let query = named(&spans, "record_plays");
    assert_eq!(query.parent_span_id, call.span_id);
    assert_eq!(
        attributes(&query.attributes)["db.system.name"],
        "postgresql"
    );
    assert_eq!(named(&spans, "write_group").parent_span_id, query.span_id);
    assert_call_line_has_trace(&logs, trace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_without_an_exporter_a_calls_log_line_has_its_trace_id() {
    let trace = "6bf92f3577b34da6a3ce929d0e0e4736";
    let Some((logs, spans)) = record_on_postgresql(trace, false).await else {
        return;
    };
    assert_eq!(names(&spans), Vec::<&str>::new());
    assert_call_line_has_trace(&logs, trace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_a_malformed_traceparent_starts_its_own_trace_and_logs_its_id() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (served, channel) =
        Served::start(service_in(dir.path()), &["--otlp-endpoint", &endpoint]).await;
    let token = session_token(Uuid::new_v4());
    let malformed = "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01";
    LibraryServiceClient::new(channel)
        .check_liked_tracks(traced(
            pb::CheckLikedTracksRequest {
                track_ids: vec![Uuid::new_v4().to_string()],
                ..Default::default()
            },
            &token,
            malformed,
        ))
        .await
        .expect("a malformed traceparent is no error");
    let logs = stop(served);

    let spans = receiver.spans();
    let call = named(&spans, "audiohm.library.v1.LibraryService/CheckLikedTracks");
    assert!(call.parent_span_id.is_empty(), "a trace of its own");
    let trace = hex(&call.trace_id);
    assert_ne!(trace, "0".repeat(32));
    let check = named(&spans, "check_liked");
    assert_eq!(check.trace_id, call.trace_id);
    // The text log line names the trace the collector holds.
    let line = logs
        .lines()
        .find(|l| l.contains("CheckLikedTracks") && l.contains(" call "))
        .unwrap_or_else(|| panic!("no call line in {logs}"));
    assert!(line.contains(&format!("trace_id=\"{trace}\"")), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_its_caller_did_not_sample_is_not_exported() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (served, channel) =
        Served::start(service_in(dir.path()), &["--otlp-endpoint", &endpoint]).await;
    let token = session_token(Uuid::new_v4());
    let mut client = LibraryServiceClient::new(channel);
    let unsampled = "11111111111111111111111111111111";
    let sampled = "22222222222222222222222222222222";
    for (trace, flags) in [(unsampled, "00"), (sampled, "01")] {
        client
            .record_play(traced(
                play(),
                &token,
                &format!("00-{trace}-00f067aa0ba902b7-{flags}"),
            ))
            .await
            .expect("recorded");
    }
    stop(served);
    assert!(!receiver.trace(sampled).is_empty(), "the sampled call is");
    assert_eq!(receiver.trace(unsampled).len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_otlp_endpoint_nothing_is_exported() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = service_in(dir.path());
    // The exporter library reads this one on its own: it must not start an exporter.
    cmd.env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint);
    let (served, channel) = Served::start(cmd, &[]).await;
    LibraryServiceClient::new(channel)
        .record_play(traced(
            play(),
            &session_token(Uuid::new_v4()),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ))
        .await
        .expect("recorded");
    let logs = stop(served);
    assert_eq!(receiver.exports(), 0, "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_work_and_health_checks_make_no_traces() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (served, channel) = Served::start(
        service_in(dir.path()),
        &["--otlp-endpoint", &endpoint, "--health-probe-seconds", "1"],
    )
    .await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for _ in 0..3 {
        health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .expect("health");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop(served);
    assert_eq!(names(&receiver.spans()), Vec::<&str>::new());
}
