//! Holding up under load and abuse: per-caller rate limits with their metadata, stream caps,
//! load shedding, message size and deadlines. Rate limiting does not depend on the store, so
//! these run on SQLite.
#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use library_service::{
    config::{LimitArgs, ServeArgs},
    pb::{self, library_service_client::LibraryServiceClient},
};
use support::{
    app::{TestApp, service_token, session_token, with_token},
    db,
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Code, Status, metadata::MetadataMap};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_types::StatusExt;
use uuid::Uuid;

async fn app_with(limits: LimitArgs) -> TestApp {
    TestApp::spawn_with(
        db::sqlite(),
        ServeArgs {
            limits,
            ..ServeArgs::default()
        },
    )
    .await
}

fn number(metadata: &MetadataMap, name: &str) -> u64 {
    metadata
        .get(name)
        .unwrap_or_else(|| panic!("{name} in {metadata:?}"))
        .to_str()
        .expect("ascii")
        .parse()
        .expect("a number")
}

async fn list(app: &TestApp, token: &str) -> Result<MetadataMap, Status> {
    let mut client = app.client.clone();
    let response = client
        .list_history(with_token(pb::ListHistoryRequest::default(), token))
        .await?;
    let metadata = response.metadata().clone();
    let mut stream = response.into_inner();
    while let Some(entry) = stream.next().await {
        entry?;
    }
    Ok(metadata)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_listings_are_limited_to_sixty_a_minute_per_caller_by_default() {
    let app = app_with(LimitArgs::default()).await;
    let token = session_token(app.user);
    let first = list(&app, &token).await.expect("first listing");
    assert_eq!(number(&first, "ratelimit-limit"), 60);
    assert_eq!(number(&first, "ratelimit-remaining"), 59);
    assert!(number(&first, "ratelimit-reset") <= 60);
    // The quota refills smoothly (one listing a second), so a caller who keeps going gets the
    // burst of 60 plus what refilled meanwhile, then is refused.
    let started = std::time::Instant::now();
    let mut allowed = 1;
    let refused = loop {
        match list(&app, &token).await {
            Ok(_) => allowed += 1,
            Err(status) => break status,
        }
        assert!(allowed < 200, "never limited");
    };
    let refilled = started.elapsed().as_secs() + 1;
    assert!(
        (60..=60 + refilled).contains(&allowed),
        "{allowed} listings allowed in {:?}",
        started.elapsed()
    );
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let retry = refused
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("a google.rpc.RetryInfo");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_secs(1),
        "{retry:?}"
    );
    assert_eq!(number(refused.metadata(), "ratelimit-remaining"), 0);
    assert_eq!(number(refused.metadata(), "ratelimit-limit"), 60);

    // Another listener, and other classes of call, have their own quota.
    list(&app, &session_token(Uuid::new_v4()))
        .await
        .expect("another caller");
    let mut client = app.client.clone();
    let stats = client
        .get_library_stats(app.req(pb::GetLibraryStatsRequest::default()))
        .await
        .expect("reads have their own quota");
    assert_eq!(number(stats.metadata(), "ratelimit-limit"), 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_quota_is_shared_by_all_its_connections() {
    let app = app_with(LimitArgs {
        rate_writes_per_minute: 5,
        ..LimitArgs::default()
    })
    .await;
    let token = session_token(app.user);
    let record = |i: usize| {
        with_token(
            pb::RecordPlayRequest {
                track_id: Uuid::new_v4().to_string(),
                request_id: format!("conn-{i}"),
                ..Default::default()
            },
            &token,
        )
    };
    let mut outcomes = Vec::new();
    for i in 0..6 {
        // A new connection for every call.
        let mut client = LibraryServiceClient::new(app.channel().await);
        outcomes.push(client.record_play(record(i)).await.map(|_| ()));
    }
    let codes: Vec<Code> = outcomes
        .iter()
        .map(|o| o.as_ref().err().map_or(Code::Ok, |s| s.code()))
        .collect();
    assert_eq!(
        codes,
        [vec![Code::Ok; 5], vec![Code::ResourceExhausted]].concat()
    );
    let mut client = app.client.clone();
    let mut stream = client
        .list_history(with_token(pb::ListHistoryRequest::default(), &token))
        .await
        .expect("listing")
        .into_inner();
    let mut stored = 0;
    while let Some(entry) = stream.next().await {
        entry.expect("entry");
        stored += 1;
    }
    assert_eq!(stored, 5, "the refused write wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_their_own_higher_quota() {
    let app = app_with(LimitArgs {
        rate_streams_per_minute: 2,
        rate_service_multiplier: 10,
        ..LimitArgs::default()
    })
    .await;
    let listener = session_token(app.user);
    for _ in 0..2 {
        list(&app, &listener).await.expect("within quota");
    }
    assert_eq!(
        list(&app, &listener).await.expect_err("over").code(),
        Code::ResourceExhausted
    );
    let service = service_token("history-exporter", "library:read library:any_user");
    let mut client = app.client.clone();
    for _ in 0..20 {
        let response = client
            .list_history(with_token(
                pb::ListHistoryRequest {
                    user_id: app.user.to_string(),
                    ..Default::default()
                },
                &service,
            ))
            .await
            .expect("a service's quota is ten times larger");
        assert_eq!(number(response.metadata(), "ratelimit-limit"), 20);
    }
}

/// An ImportHistory call held open: its client side stays open until the sender is dropped.
fn open_import(
    app: &TestApp,
    token: &str,
) -> (
    mpsc::Sender<pb::ImportHistoryRequest>,
    tokio::task::JoinHandle<Result<pb::ImportHistorySummary, Status>>,
) {
    let (tx, rx) = mpsc::channel(1);
    let mut client = app.client.clone();
    let request = with_token(ReceiverStream::new(rx), token);
    let call =
        tokio::spawn(async move { client.import_history(request).await.map(|r| r.into_inner()) });
    (tx, call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_are_capped_per_caller() {
    let app = app_with(LimitArgs {
        max_streams_per_caller: 2,
        ..LimitArgs::default()
    })
    .await;
    let token = session_token(app.user);
    let first = open_import(&app, &token);
    let second = open_import(&app, &token);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = list(&app, &token).await.expect_err("a third stream");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    list(&app, &session_token(Uuid::new_v4()))
        .await
        .expect("another caller's streams are separate");

    drop(first.0);
    let summary = first.1.await.expect("task").expect("the import completes");
    assert_eq!(summary.received_count, 0);
    list(&app, &token).await.expect("a slot came back");
    drop(second);
}

/// A unary call that the server has begun (its headers arrived) and that never ends: its
/// request message is never sent, over a raw HTTP/2 connection. Dropped, it ends.
struct HeldCall {
    _connection: tokio::task::JoinHandle<()>,
    _client: h2::client::SendRequest<bytes::Bytes>,
    _request: h2::SendStream<bytes::Bytes>,
}

async fn hold_unary_call(app: &TestApp) -> HeldCall {
    let tcp = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.expect("ready");
    let request = http::Request::post(format!(
        "http://{}/audiohm.library.v1.LibraryService/GetLibraryStats",
        app.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .header(
        "authorization",
        format!("Bearer {}", session_token(Uuid::new_v4())),
    )
    .body(())
    .expect("request");
    let (_response, request) = client.send_request(request, false).expect("sent");
    HeldCall {
        _connection: connection,
        _client: client,
        _request: request,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_beyond_the_in_flight_cap_are_shed_but_streams_and_health_still_answer() {
    let app = app_with(LimitArgs {
        max_in_flight: 2,
        ..LimitArgs::default()
    })
    .await;
    let mut client = app.client.clone();
    // Open streams have their own cap: they take no unary call's place.
    let imports: Vec<_> = (0..2)
        .map(|_| open_import(&app, &session_token(Uuid::new_v4())))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    client
        .get_library_stats(app.req(pb::GetLibraryStatsRequest::default()))
        .await
        .expect("two open streams leave the unary calls their room");
    let held = vec![hold_unary_call(&app).await, hold_unary_call(&app).await];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shed = client
        .get_library_stats(app.req(pb::GetLibraryStatsRequest::default()))
        .await
        .expect_err("over the cap");
    assert_eq!(shed.code(), Code::Unavailable, "{shed:?}");
    assert!(
        shed.get_details_retry_info().is_some(),
        "a shed call says when to come back: {shed:?}"
    );
    assert_eq!(list_count(&app).await, 0, "a stream still opens");
    let mut health = HealthClient::new(app.channel().await);
    health
        .check(HealthCheckRequest::default())
        .await
        .expect("health is never shed");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    client
        .get_library_stats(app.req(pb::GetLibraryStatsRequest::default()))
        .await
        .expect("served again once calls finished");
    drop(imports);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_refused_and_writes_nothing() {
    let app = app_with(LimitArgs {
        max_message_bytes: 16 * 1024,
        ..LimitArgs::default()
    })
    .await;
    let plays: Vec<pb::NewPlay> = (0..500)
        .map(|i| pb::NewPlay {
            track_id: Uuid::new_v4().to_string(),
            source: format!("source-{i}"),
            ..Default::default()
        })
        .collect();
    let mut client = app.client.clone();
    let refused = client
        .record_plays(app.req(pb::RecordPlaysRequest {
            user_id: String::new(),
            plays,
        }))
        .await
        .expect_err("too large");
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(list_count(&app).await == 0);
}

async fn list_count(app: &TestApp) -> usize {
    let mut client = app.client.clone();
    let mut stream = client
        .list_history(app.req(pb::ListHistoryRequest::default()))
        .await
        .expect("listing")
        .into_inner();
    let mut n = 0;
    while let Some(entry) = stream.next().await {
        entry.expect("entry");
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_deadline_has_passed_does_no_work() {
    let app = app_with(LimitArgs::default()).await;
    let mut client = app.client.clone();
    let mut request = app.req(pb::RecordPlayRequest {
        track_id: Uuid::new_v4().to_string(),
        ..Default::default()
    });
    request.set_timeout(Duration::from_nanos(1));
    let late = client.record_play(request).await.expect_err("too late");
    assert!(
        matches!(late.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{late:?}"
    );
    assert_eq!(list_count(&app).await, 0, "nothing was written");
}
