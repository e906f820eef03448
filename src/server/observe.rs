//! One tower layer around every gRPC call: load shedding (a cap on calls in flight), the
//! conventional gRPC server metrics (started, handled by code, handling time), the `ratelimit-*`
//! response metadata, one span per call (service, method, caller and the caller's W3C trace id)
//! inside which the call runs, so every log line of the call carries them (with
//! `--otlp-endpoint` the span also joins the caller's trace and is exported: `telemetry`), and
//! one log line per call with method, caller, code and latency. It sits inside the gRPC-web
//! layer, so browser calls are seen as the gRPC calls they become.
//!
//! A call ends when its response body ends: a stream's status comes in the trailers after its
//! last message, so the body is wrapped to read them.
use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use http::HeaderValue;
use http_body::{Body as HttpBody, Frame};
use tonic::{Code, body::Body};
use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};

use crate::{
    grpc::{CallClass, CallContext, Rpc},
    telemetry,
};

/// Observes every call, and sheds API calls beyond `max_in_flight` at once: refusing at the door
/// costs nothing, while queueing them would grow memory and wait on the connection pool.
#[derive(Clone)]
pub struct ObserveLayer {
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
}

impl ObserveLayer {
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            in_flight: Arc::default(),
            max_in_flight,
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            in_flight: self.in_flight.clone(),
            max_in_flight: self.max_in_flight,
        }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
}

/// One call in flight; given back when the call is over.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What is known about a call from its path: `/package.Service/Method`. Labels come from the
/// RPC table, so a client sending made-up paths cannot create new metric series.
struct Call {
    service: &'static str,
    method: &'static str,
    kind: &'static str,
    context: CallContext,
    _in_flight: Option<InFlight>,
}

impl Call {
    fn of<B>(request: &mut http::Request<B>) -> Self {
        let rpc = Rpc::of_path(request.uri().path());
        let (service, method) = rpc.map_or(("unknown", "unknown"), Rpc::name);
        // Health and reflection at debug, like their log lines: load balancers probe them every
        // few seconds, and they are not worth a trace each.
        let span = if rpc.is_some_and(|rpc| rpc.class().is_none()) {
            tracing::debug_span!("call", service, method, trace_id = Empty)
        } else {
            tracing::info_span!(
                "call",
                service,
                method,
                caller = Empty,
                trace_id = Empty,
                otel.kind = Empty
            )
        };
        // Recorded only when known: an empty record would leave a stray space in text logs.
        if let Some(trace) = telemetry::join_trace(&span, request.headers(), service, method) {
            span.record("trace_id", trace.as_str());
        } else if let Some(trace) = telemetry::caller_trace_id(request.headers()) {
            span.record("trace_id", trace);
        }
        if rpc.is_none() {
            span.in_scope(|| tracing::debug!(path = %request.uri().path(), "no such method"));
        }
        let context = CallContext::new(rpc, span);
        request.extensions_mut().insert(context.clone());
        Self {
            kind: rpc.map_or("unknown", |r| r.kind().label()),
            service,
            method,
            context,
            _in_flight: None,
        }
    }

    /// Health and reflection: probed by infrastructure, never shed, logged quietly.
    fn infrastructure(&self) -> bool {
        self.context.rpc.is_some_and(|rpc| rpc.class().is_none())
    }

    /// Whether the call counts against `--max-in-flight`: unary calls of the two services (and
    /// paths this server does not serve, refused at once). Health and reflection never do,
    /// and streams are bounded by `--max-streams` instead: a `ListHistory` holding a slot for
    /// minutes would take it from thousands of short calls, and a cap low enough to keep
    /// short calls fast would refuse them all once the streams filled it.
    fn counts_in_flight(&self) -> bool {
        self.context
            .rpc
            .is_none_or(|rpc| rpc.class().is_some_and(|class| class != CallClass::Stream))
    }

    fn start(&self) {
        metrics::counter!("grpc_server_started_total", "grpc_service" => self.service,
            "grpc_method" => self.method, "grpc_type" => self.kind)
        .increment(1);
    }

    fn finish(&self, code: Code) {
        let elapsed = self.context.arrived.elapsed();
        let code_name = format!("{code:?}");
        metrics::counter!("grpc_server_handled_total", "grpc_service" => self.service,
            "grpc_method" => self.method, "grpc_type" => self.kind,
            "grpc_code" => code_name.clone())
        .increment(1);
        metrics::histogram!("grpc_server_handling_seconds", "grpc_service" => self.service,
            "grpc_method" => self.method, "grpc_type" => self.kind)
        .record(elapsed.as_secs_f64());
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        let caller = self.context.caller();
        telemetry::end_call(&self.context.span, code);
        let _call = self.context.span.enter();
        if self.infrastructure() {
            // Load balancers probe health every few seconds: not worth a line each at info.
            tracing::debug!(service = %self.service, method = %self.method, code = %code_name, latency_ms, "call");
        } else if matches!(code, Code::Internal | Code::Unknown | Code::DataLoss) {
            tracing::error!(service = %self.service, method = %self.method, caller = %caller, code = %code_name, latency_ms, "call");
        } else {
            tracing::info!(service = %self.service, method = %self.method, caller = %caller, code = %code_name, latency_ms, "call");
        }
    }
}

fn code_in(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)
}

impl<S, B> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let mut call = Call::of(&mut request);
        let span = call.context.span.clone();
        // The interceptor runs inside `inner.call`, the handler inside its future: both in the
        // call's span.
        let _call = span.enter();
        call.start();
        if call.counts_in_flight() {
            let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
            call._in_flight = Some(InFlight(self.in_flight.clone()));
            if before >= self.max_in_flight {
                call.finish(Code::Unavailable);
                let shed = crate::error::shed("the server is overloaded; retry with backoff");
                return Box::pin(async move { Ok(shed.into_http()) });
            }
        }
        let response = self.inner.call(request).instrument(span.clone());
        Box::pin(async move {
            let mut response = match response.await {
                Ok(response) => response,
                Err(e) => {
                    call.finish(Code::Unknown);
                    return Err(e);
                }
            };
            if let Some(rate) = call.context.rate() {
                let headers = response.headers_mut();
                for (name, value) in [
                    ("ratelimit-limit", u64::from(rate.limit)),
                    ("ratelimit-remaining", u64::from(rate.remaining)),
                    ("ratelimit-reset", rate.reset_seconds),
                ] {
                    headers.insert(name, HeaderValue::from(value));
                }
            }
            // A trailers-only response (most errors) carries its status in the headers.
            if let Some(code) = code_in(response.headers()) {
                call.finish(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(ObservedBody {
                    inner: body,
                    call: Some(call),
                })
            }))
        })
    }
}

/// The response body, reporting the call when its trailers (or its end) go by. A body dropped
/// before its end is a call the client cancelled.
struct ObservedBody {
    inner: Body,
    call: Option<Call>,
}

impl ObservedBody {
    fn report(&mut self, code: Code) {
        if let Some(call) = self.call.take() {
            call.finish(code);
        }
    }
}

impl HttpBody for ObservedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = code_in(trailers).unwrap_or(Code::Unknown);
                    self.report(code);
                }
            }
            Poll::Ready(Some(Err(status))) => {
                let code = status.code();
                self.report(code);
            }
            Poll::Ready(None) => self.report(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        self.report(Code::Cancelled);
    }
}
