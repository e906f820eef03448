//! What sits around the API: health, reflection, gRPC-web with CORS, graceful shutdown.
use library_service::pb;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1alpha;

use crate::{
    helpers::track,
    support::app::{TestApp, reflected_services, session_token},
};

const ORIGIN: &str = "https://app.audiohm.test";

async fn health_reports_serving_without_a_token(app: TestApp) {
    let mut health = HealthClient::new(app.channel().await);
    for service in ["", "audiohm.library.v1.LibraryService"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
}

async fn reflection_v1_and_v1alpha_list_the_library_service(app: TestApp) {
    let services = reflected_services(app.channel().await).await;
    assert!(
        services
            .iter()
            .any(|s| s == "audiohm.library.v1.LibraryService"),
        "{services:?}"
    );

    let mut alpha =
        v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel().await);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "audiohm.library.v1.LibraryService".into(),
            ),
        ),
    };
    let mut responses = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let Some(Ok(v1alpha::ServerReflectionResponse {
        message_response:
            Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)),
        ..
    })) = responses.next().await
    else {
        panic!("v1alpha returns the file descriptor");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

/// A raw HTTP/1.1 exchange, as a browser's fetch would make it. Returns the status line and
/// headers (lowercased) and the de-chunked body.
pub async fn http1(app: &TestApp, request: Vec<u8>) -> (String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connects");
    stream.write_all(&request).await.expect("sends");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("reads");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut plain = Vec::new();
        let mut rest = body.as_slice();
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size line");
            let size = usize::from_str_radix(
                std::str::from_utf8(&rest[..line_end])
                    .expect("ascii")
                    .trim(),
                16,
            )
            .expect("hex chunk size");
            if size == 0 {
                break;
            }
            plain.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        body = plain;
    }
    (head, body)
}

pub fn grpc_web_post(path: &str, token: Option<&str>, message: &impl Message) -> Vec<u8> {
    grpc_web_post_raw(path, token, &message.encode_to_vec())
}

/// A gRPC-web request carrying `payload` as its message, whatever bytes those are.
pub fn grpc_web_post_raw(path: &str, token: Option<&str>, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
         origin: {ORIGIN}\r\n{auth}connection: close\r\ncontent-length: {}\r\n\r\n",
        frame.len()
    )
    .into_bytes();
    request.extend_from_slice(&frame);
    request
}

/// Splits a gRPC-web body into its data messages and its trailer block.
pub fn frames(body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let (mut data, mut trailers, mut rest) = (Vec::new(), String::new(), body);
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let content = rest[5..5 + len].to_vec();
        if rest[0] & 0x80 != 0 {
            trailers.push_str(&String::from_utf8_lossy(&content).to_lowercase());
        } else {
            data.push(content);
        }
        rest = &rest[5 + len..];
    }
    (data, trailers)
}

async fn grpc_web_over_http1_works_for_an_allowed_origin(app: TestApp) {
    let t = track();
    let mut client = app.client.clone();
    client
        .like_track(app.req(pb::LikeTrackRequest {
            track_id: t.clone(),
            ..Default::default()
        }))
        .await
        .expect("liked");
    let token = session_token(app.user);
    let check = pb::CheckLikedTracksRequest {
        user_id: String::new(),
        track_ids: vec![t, track()],
    };
    let (head, body) = http1(
        &app,
        grpc_web_post(
            "/audiohm.library.v1.LibraryService/CheckLikedTracks",
            Some(&token),
            &check,
        ),
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("access-control-allow-origin: {ORIGIN}")),
        "{head}"
    );
    assert!(
        head.contains("access-control-expose-headers:") && head.contains("grpc-status"),
        "{head}"
    );
    for header in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        assert!(
            head.contains(&format!("\r\n{header}: ")),
            "{header} in {head}"
        );
        let exposed = head
            .lines()
            .find(|l| l.starts_with("access-control-expose-headers:"))
            .unwrap_or_default();
        assert!(
            exposed.contains(header),
            "a browser may read {header}: {head}"
        );
    }
    let (data, trailers) = frames(&body);
    let reply =
        pb::CheckLikedTracksResponse::decode(data[0].as_slice()).expect("a response message");
    assert_eq!(reply.liked, vec![true, false]);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
}

async fn grpc_web_without_a_token_is_unauthenticated(app: TestApp) {
    let (head, body) = http1(
        &app,
        grpc_web_post(
            "/audiohm.library.v1.LibraryService/GetLibraryStats",
            None,
            &pb::GetLibraryStatsRequest::default(),
        ),
    )
    .await;
    let (_, trailers) = frames(&body);
    assert!(
        head.contains("grpc-status: 16") || trailers.contains("grpc-status:16"),
        "{head}\n{trailers}"
    );
}

fn preflight(origin: &str) -> Vec<u8> {
    format!(
        "OPTIONS /audiohm.library.v1.LibraryService/GetLibraryStats HTTP/1.1\r\nhost: localhost\r\norigin: {origin}\r\n\
         access-control-request-method: POST\r\n\
         access-control-request-headers: authorization,content-type,x-grpc-web,traceparent,tracestate\r\n\
         connection: close\r\n\r\n"
    )
    .into_bytes()
}

async fn cors_preflights_are_answered_for_allowed_origins_only(app: TestApp) {
    let (head, _) = http1(&app, preflight(ORIGIN)).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("access-control-allow-origin: {ORIGIN}")),
        "{head}"
    );
    assert!(
        head.contains("authorization"),
        "the token header may be sent: {head}"
    );
    assert!(
        head.contains("traceparent") && head.contains("tracestate"),
        "the trace context may be sent: {head}"
    );
    let (head, _) = http1(&app, preflight("https://evil.test")).await;
    assert!(!head.contains("access-control-allow-origin"), "{head}");
}

async fn the_server_stops_gracefully(app: TestApp) {
    let mut health = HealthClient::new(app.channel().await);
    health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("serving");
    app.stop().await;
}

backend_tests! {
    health_reports_serving_without_a_token,
    reflection_v1_and_v1alpha_list_the_library_service,
    grpc_web_over_http1_works_for_an_allowed_origin,
    grpc_web_without_a_token_is_unauthenticated,
    cors_preflights_are_answered_for_allowed_origins_only,
    the_server_stops_gracefully,
}
