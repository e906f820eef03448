//! TLS on the service port (`--tls-cert`, `--tls-key`, `--tls-client-ca`): gRPC, health,
//! reflection and gRPC-web over TLS, plaintext refused, mutual TLS, and certificate files replaced
//! under a running server the way cert-manager and the kubelet replace them. Certificates are made
//! by the tests; the clients are tonic's and raw rustls ones. TLS does not depend on the store, so
//! these run on SQLite only.
#[path = "support/mod.rs"]
mod support;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use library_service::{
    config::{ServeArgs, TlsArgs},
    pb::{self, library_service_client::LibraryServiceClient},
    server::{Application, Settings},
};
use prost::Message;
use support::{
    app::{SECRET, TestApp, reflected_services, session_token},
    db,
    process::{binary, free_port},
    tls::{Ca, Leaf, SecretDir, connect, served_certificate, write},
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Channel, ClientTlsConfig};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use uuid::Uuid;

/// Short, so that a replaced file is seen within a second or two.
const RELOAD_SECONDS: u64 = 1;
/// Far longer than a reload takes: a switch not seen by then is a failure.
const SWITCH_DEADLINE: Duration = Duration::from_secs(20);

fn files(leaf: &Leaf) -> [(&'static str, &str); 2] {
    [("tls.crt", &leaf.cert_pem), ("tls.key", &leaf.key_pem)]
}

fn tls_args(secret: &SecretDir, client_ca: Option<PathBuf>) -> ServeArgs {
    ServeArgs {
        tls: TlsArgs {
            tls_cert: Some(secret.path("tls.crt")),
            tls_key: Some(secret.path("tls.key")),
            tls_client_ca: client_ca,
            tls_reload_seconds: RELOAD_SECONDS,
            health_listen: None,
        },
        ..ServeArgs::default()
    }
}

/// A TLS server with `leaf`, its files in a Secret-like directory, and a client trusting `ca`.
async fn tls_app(ca: &Ca, leaf: &Leaf) -> (TestApp, SecretDir) {
    let secret = SecretDir::new(&files(leaf));
    let app = TestApp::spawn_tls(
        db::sqlite(),
        tls_args(&secret, None),
        ca.client_config(None),
    )
    .await;
    (app, secret)
}

async fn health(channel: Channel) -> Result<i32, tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
}

/// A client of `app`'s port with these TLS settings, connecting at its first call.
fn client_channel(app: &TestApp, tls: ClientTlsConfig) -> Channel {
    Channel::from_shared(format!("https://{}", app.addr))
        .expect("uri")
        .tls_config(tls)
        .expect("client tls settings")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect_lazy()
}

async fn like_and_check(app: &TestApp) {
    let track = Uuid::new_v4().to_string();
    let mut client = app.client.clone();
    client
        .like_track(app.req(pb::LikeTrackRequest {
            track_id: track.clone(),
            ..Default::default()
        }))
        .await
        .expect("LikeTrack over TLS");
    let liked = client
        .check_liked_tracks(app.req(pb::CheckLikedTracksRequest {
            user_id: String::new(),
            track_ids: vec![track],
        }))
        .await
        .expect("CheckLikedTracks over TLS")
        .into_inner()
        .liked;
    assert_eq!(liked, vec![true]);
}

/// Waits until new handshakes are given `expected`.
async fn until_served(app: &TestApp, ca: &Ca, expected: &Leaf) {
    let started = Instant::now();
    while served_certificate(app.addr, &ca.pem()).await != expected.der {
        assert!(
            started.elapsed() < SWITCH_DEADLINE,
            "the new certificate was not served within {SWITCH_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn grpc_health_and_reflection_work_over_tls() {
    let ca = Ca::new("test ca");
    let (app, _secret) = tls_app(&ca, &ca.server("server one")).await;
    like_and_check(&app).await;
    assert_eq!(
        health(app.channel().await).await.expect("health over TLS"),
        ServingStatus::Serving as i32
    );

    let services = reflected_services(app.channel().await).await;
    assert!(
        services
            .iter()
            .any(|s| s == "audiohm.library.v1.LibraryService"),
        "{services:?}"
    );
    // Shutdown drains and exits cleanly over TLS too.
    app.stop().await;
}

#[tokio::test]
async fn the_server_offers_http2_and_http1_by_alpn() {
    let ca = Ca::new("test ca");
    let (app, _secret) = tls_app(&ca, &ca.server("server one")).await;
    for (offered, chosen) in [
        (&[&b"h2"[..], b"http/1.1"][..], &b"h2"[..]),
        (&[&b"http/1.1"[..]][..], b"http/1.1"),
    ] {
        let stream = connect(app.addr, &ca.pem(), offered, None)
            .await
            .expect("handshake");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(chosen));
    }
}

#[tokio::test]
async fn grpc_web_over_http1_works_over_tls() {
    let ca = Ca::new("test ca");
    let (app, _secret) = tls_app(&ca, &ca.server("server one")).await;
    let track = Uuid::new_v4().to_string();
    app.client
        .clone()
        .like_track(app.req(pb::LikeTrackRequest {
            track_id: track.clone(),
            ..Default::default()
        }))
        .await
        .expect("liked");
    let message = pb::CheckLikedTracksRequest {
        user_id: String::new(),
        track_ids: vec![track],
    }
    .encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let mut request = format!(
        "POST /audiohm.library.v1.LibraryService/CheckLikedTracks HTTP/1.1\r\nhost: localhost\r\n\
         content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
         authorization: Bearer {}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        session_token(app.user),
        frame.len()
    )
    .into_bytes();
    request.extend_from_slice(&frame);

    let mut stream = connect(app.addr, &ca.pem(), &[b"http/1.1"], None)
        .await
        .expect("handshake");
    stream.write_all(&request).await.expect("sends");
    let (head, body) = http1_response(&mut stream).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let (data, trailers) = grpc_web_frames(&body);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let answer =
        pb::CheckLikedTracksResponse::decode(data.first().map(Vec::as_slice).unwrap_or_default())
            .expect("an answer");
    assert_eq!(answer.liked, vec![true]);
}

#[tokio::test]
async fn a_plaintext_client_is_refused() {
    let ca = Ca::new("test ca");
    let (app, _secret) = tls_app(&ca, &ca.server("server one")).await;
    let plaintext = Channel::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    assert!(health(plaintext).await.is_err());
    // ...and costs the server nothing lasting.
    like_and_check(&app).await;
}

#[tokio::test]
async fn a_connection_that_never_handshakes_does_not_stall_others() {
    let ca = Ca::new("test ca");
    let (app, _secret) = tls_app(&ca, &ca.server("server one")).await;
    let _silent = silent_connections(app.addr, 8).await;
    // Far below the handshake timeout (10 s): a server handshaking inline would still wait.
    tokio::time::timeout(Duration::from_secs(5), async {
        let fresh = app.channel().await;
        health(fresh).await.expect("health")
    })
    .await
    .expect("a new client is served while silent connections are open");
}

/// `n` TCP connections that never start a handshake.
async fn silent_connections(addr: std::net::SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut silent = Vec::new();
    for _ in 0..n {
        silent.push(
            tokio::net::TcpStream::connect(addr)
                .await
                .expect("tcp connects"),
        );
    }
    silent
}

#[tokio::test]
async fn with_mutual_tls_only_clients_with_a_certificate_from_the_client_ca_get_in() {
    let ca = Ca::new("server ca");
    let callers = Ca::new("callers ca");
    let strangers = Ca::new("another ca");
    let server = ca.server("server one");
    let secret = SecretDir::new(&[
        ("tls.crt", &server.cert_pem),
        ("tls.key", &server.key_pem),
        ("ca.crt", &callers.pem()),
    ]);
    let player = callers.client("player");
    let app = TestApp::spawn_tls(
        db::sqlite(),
        tls_args(&secret, Some(secret.path("ca.crt"))),
        ca.client_config(Some(&player)),
    )
    .await;
    like_and_check(&app).await;

    let anonymous = client_channel(&app, ca.client_config(None));
    assert!(
        health(anonymous).await.is_err(),
        "a client without a certificate is refused"
    );
    let stranger = strangers.client("player");
    let foreign = client_channel(&app, ca.client_config(Some(&stranger)));
    assert!(
        health(foreign).await.is_err(),
        "a certificate from another CA is refused"
    );
    let admitted = client_channel(&app, ca.client_config(Some(&callers.client("catalog"))));
    assert_eq!(
        health(admitted).await.expect("a caller of the CA gets in"),
        ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn the_health_port_answers_probes_in_plaintext_beside_a_mutual_tls_port() {
    let (ca, callers) = (Ca::new("server ca"), Ca::new("callers ca"));
    let server = ca.server("server one");
    let secret = SecretDir::new(&[
        ("tls.crt", &server.cert_pem),
        ("tls.key", &server.key_pem),
        ("ca.crt", &callers.pem()),
    ]);
    let port = free_port();
    let mut serve = tls_args(&secret, Some(secret.path("ca.crt")));
    serve.tls.health_listen = Some(([127, 0, 0, 1], port).into());
    let app = TestApp::spawn_tls(
        db::sqlite(),
        serve,
        ca.client_config(Some(&callers.client("player"))),
    )
    .await;
    // The kubelet's probe: plaintext, no certificate.
    let probe = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("uri")
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    for service in ["", "audiohm.library.v1.LibraryService"] {
        let status = HealthClient::new(probe.clone())
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("the probe is answered")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    // Health only: the API is not reachable that way.
    let refused = LibraryServiceClient::new(probe)
        .check_liked_tracks(app.req(pb::CheckLikedTracksRequest {
            user_id: String::new(),
            track_ids: vec![Uuid::new_v4().to_string()],
        }))
        .await
        .expect_err("no API on the health port");
    assert_eq!(refused.code(), tonic::Code::Unimplemented);
}

#[tokio::test]
async fn a_replaced_client_ca_is_trusted_without_a_restart() {
    let ca = Ca::new("server ca");
    let (old, new) = (Ca::new("old callers ca"), Ca::new("new callers ca"));
    let server = ca.server("server one");
    let mut secret = SecretDir::new(&[
        ("tls.crt", &server.cert_pem),
        ("tls.key", &server.key_pem),
        ("ca.crt", &old.pem()),
    ]);
    let app = TestApp::spawn_tls(
        db::sqlite(),
        tls_args(&secret, Some(secret.path("ca.crt"))),
        ca.client_config(Some(&old.client("player"))),
    )
    .await;
    let caller = new.client("player");
    assert!(
        health(client_channel(&app, ca.client_config(Some(&caller))))
            .await
            .is_err()
    );

    secret.update(&[
        ("tls.crt", &server.cert_pem),
        ("tls.key", &server.key_pem),
        ("ca.crt", &new.pem()),
    ]);
    let started = Instant::now();
    while health(client_channel(&app, ca.client_config(Some(&caller))))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < SWITCH_DEADLINE,
            "the new client CA was not trusted within {SWITCH_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn replacing_the_certificate_files_switches_the_served_certificate_without_a_restart() {
    let ca = Ca::new("test ca");
    let (first, second) = (ca.server("server one"), ca.server("server two"));
    let (app, mut secret) = tls_app(&ca, &first).await;
    assert!(served_certificate(app.addr, &ca.pem()).await == first.der);
    like_and_check(&app).await;

    secret.update(&files(&second));
    until_served(&app, &ca, &second).await;
    // The connection opened before the switch goes on.
    like_and_check(&app).await;
}

#[tokio::test]
async fn a_broken_replacement_keeps_the_last_good_certificate_serving() {
    let ca = Ca::new("test ca");
    let (first, second, third) = (
        ca.server("server one"),
        ca.server("server two"),
        ca.server("server three"),
    );
    let (app, mut secret) = tls_app(&ca, &first).await;

    // Half written: the key file cut short.
    let cut = &second.key_pem[..second.key_pem.len() / 2];
    secret.update(&[("tls.crt", &second.cert_pem), ("tls.key", cut)]);
    tokio::time::sleep(Duration::from_secs(3 * RELOAD_SECONDS)).await;
    assert!(served_certificate(app.addr, &ca.pem()).await == first.der);
    like_and_check(&app).await;

    // A certificate with the key of another one.
    secret.update(&[("tls.crt", &second.cert_pem), ("tls.key", &third.key_pem)]);
    tokio::time::sleep(Duration::from_secs(3 * RELOAD_SECONDS)).await;
    assert!(served_certificate(app.addr, &ca.pem()).await == first.der);

    // The watcher was alive all along: a good pair is taken.
    secret.update(&files(&third));
    until_served(&app, &ca, &third).await;
}

#[tokio::test]
async fn bad_tls_settings_fail_at_start_up_naming_the_flag() {
    let ca = Ca::new("test ca");
    let (one, two) = (ca.server("server one"), ca.server("server two"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = |name: &str| dir.path().join(name);
    write(&path("one.crt"), &one.cert_pem);
    write(&path("one.key"), &one.key_pem);
    write(&path("two.key"), &two.key_pem);
    write(&path("garbage.pem"), "not a certificate\n");

    let cases = [
        (Some("missing.crt"), Some("one.key"), None, "--tls-cert"),
        (Some("one.crt"), Some("missing.key"), None, "--tls-key"),
        (Some("garbage.pem"), Some("one.key"), None, "--tls-cert"),
        (
            Some("one.crt"),
            Some("two.key"),
            None,
            "is not the private key of the certificate in --tls-cert",
        ),
        (
            Some("one.crt"),
            Some("one.key"),
            Some("garbage.pem"),
            "--tls-client-ca",
        ),
        (
            None,
            None,
            Some("one.crt"),
            "--tls-client-ca needs --tls-cert",
        ),
    ];
    for (cert, key, client_ca, expected) in cases {
        let serve = ServeArgs {
            tls: TlsArgs {
                tls_cert: cert.map(path),
                tls_key: key.map(path),
                tls_client_ca: client_ca.map(path),
                ..TlsArgs::default()
            },
            ..ServeArgs::default()
        };
        let error = start(serve).await;
        assert!(error.contains(expected), "{cert:?} {key:?}: {error}");
    }

    // The binary says so and exits before serving.
    let out = binary()
        .env("LIBRARY_JWT_SECRET", SECRET)
        .args(["--data-dir", &dir.path().display().to_string()])
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--tls-cert", &path("one.crt").display().to_string()])
        .args(["--tls-key", &path("two.key").display().to_string()])
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

/// The start-up error of a server with `serve`.
async fn start(serve: ServeArgs) -> String {
    let db = db::sqlite();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let auth =
        library_service::auth::Authenticator::from_config(&library_service::auth::AuthConfig {
            hs256_secret: Some(SECRET.into()),
            hs256_kid: None,
            public_keys: Vec::new(),
            issuer: None,
            audience: None,
            leeway_seconds: 5,
            data_dir: std::env::temp_dir(),
            jwks: None,
        })
        .expect("auth");
    let settings = Settings {
        database_url: db.url().to_string(),
        db_max_connections: 2,
        auth,
        serve,
    };
    match Application::build(settings, listener).await {
        Ok(_) => panic!("the server started"),
        Err(e) => format!("{e:#}"),
    }
}

/// Reads an HTTP/1.1 response to its end: the status line and headers (lowercased), and the
/// body, de-chunked.
async fn http1_response(stream: &mut (impl AsyncRead + Unpin)) -> (String, Vec<u8>) {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            // A peer that closes without TLS close_notify: the response is complete anyway.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("reading the response: {e}"),
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let (mut plain, mut rest) = (Vec::new(), body.as_slice());
        loop {
            let end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("a chunk size");
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..end]).expect("ascii").trim(), 16)
                    .expect("a hex chunk size");
            if size == 0 {
                break;
            }
            plain.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 2 + size + 2..];
        }
        body = plain;
    }
    (head, body)
}

/// A gRPC-web body's data messages and its trailer block.
fn grpc_web_frames(body: &[u8]) -> (Vec<Vec<u8>>, String) {
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
