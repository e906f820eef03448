//! What browsers and tools need around the gRPC services: reflection and CORS for gRPC-web.
use std::time::Duration;

use anyhow::Context;
use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::pb;

/// Both reflection versions are served: grpcurl and buf speak v1, Python's grpcio client only
/// v1alpha.
pub(super) fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Browsers call over gRPC-web; they must be able to send the token and read the gRPC status
/// from the response headers and trailers.
pub(super) fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list = origins
            .iter()
            .map(|o| HeaderValue::from_str(o).with_context(|| format!("invalid CORS origin {o:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(list)
    };
    let headers = |names: &[&'static str]| {
        names
            .iter()
            .map(|n| HeaderName::from_static(n))
            .collect::<Vec<_>>()
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::POST])
        .allow_headers(headers(&[
            "authorization",
            "content-type",
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout",
            // W3C trace context, so a page's calls join its traces (docs/OPERATIONS.md, Traces).
            "traceparent",
            "tracestate",
        ]))
        .expose_headers(headers(&[
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
        ]))
        .max_age(Duration::from_secs(24 * 60 * 60)))
}
