//! Quotas shared by replicas through Redis (`--rate-limit-redis-url`): a caller whose calls are
//! spread over two replicas gets one quota, not two, with the same metadata and RetryInfo as a
//! single replica gives; when Redis goes away each replica limits on its own (never not at all)
//! and sharing resumes when it is back. Rate limiting does not depend on the store, so each
//! replica runs on a SQLite database of its own. These run when LIBRARY_TEST_REDIS_URL is set.
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use library_service::{
    config::{LimitArgs, ServeArgs},
    pb,
};
use support::{
    app::{TestApp, session_token, with_token},
    db,
    process::free_port,
    redis::{self, OwnRedis},
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Code, Status, metadata::MetadataMap};
use tonic_types::StatusExt;
use uuid::Uuid;

const QUOTA: u32 = 6;

/// A replica whose reads are limited to QUOTA a minute, sharing `redis` (with `prefix`) if given.
async fn replica(redis: Option<(&str, &str)>) -> TestApp {
    replica_with(
        redis,
        LimitArgs {
            rate_reads_per_minute: QUOTA,
            ..LimitArgs::default()
        },
    )
    .await
}

async fn replica_with(redis: Option<(&str, &str)>, limits: LimitArgs) -> TestApp {
    TestApp::spawn_with(
        db::sqlite(),
        ServeArgs {
            limits: LimitArgs {
                rate_limit_redis_url: redis.map(|(url, _)| url.into()),
                rate_limit_redis_prefix: redis.map_or_else(
                    || LimitArgs::default().rate_limit_redis_prefix,
                    |(_, p)| p.to_string(),
                ),
                ..limits
            },
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

/// One read as `user`; its response metadata, or the refusal.
async fn read(app: &TestApp, user: Uuid) -> Result<MetadataMap, Status> {
    let mut client = app.client.clone();
    let response = client
        .get_library_stats(with_token(
            pb::GetLibraryStatsRequest::default(),
            &session_token(user),
        ))
        .await?;
    Ok(response.metadata().clone())
}

/// Reads as `user`, alternating between the replicas, until one is refused: how many were
/// allowed, and the refusal.
async fn allowed_until_refused(apps: [&TestApp; 2], user: Uuid) -> (u32, Status) {
    let mut allowed = 0;
    loop {
        match read(apps[allowed as usize % 2], user).await {
            Ok(_) => allowed += 1,
            Err(status) => return (allowed, status),
        }
        assert!(allowed <= 4 * QUOTA, "never limited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_spreading_calls_over_two_replicas_gets_one_quota_with_the_usual_metadata() {
    let Some(url) = redis::url() else { return };
    let prefix = redis::prefix();
    let a = replica(Some((&url, &prefix))).await;
    let b = replica(Some((&url, &prefix))).await;
    let user = Uuid::new_v4();

    let mut remaining = Vec::new();
    for i in 0..QUOTA {
        let app = if i % 2 == 0 { &a } else { &b };
        let metadata = read(app, user).await.expect("within the quota");
        assert_eq!(number(&metadata, "ratelimit-limit"), u64::from(QUOTA));
        assert!(number(&metadata, "ratelimit-reset") <= 60);
        remaining.push(number(&metadata, "ratelimit-remaining"));
    }
    // One count across both replicas: 5, 4, ... 0 (a slot may refill meanwhile: 10 s each).
    assert_eq!(remaining[0], u64::from(QUOTA) - 1, "{remaining:?}");
    assert!(remaining.windows(2).all(|w| w[1] <= w[0]), "{remaining:?}");

    let (more, refused) = allowed_until_refused([&b, &a], user).await;
    assert!(more <= 1, "{more} more reads allowed past the quota");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let retry = refused
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("a google.rpc.RetryInfo");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_secs(60 / u64::from(QUOTA)),
        "{retry:?}"
    );
    assert_eq!(number(refused.metadata(), "ratelimit-remaining"), 0);
    assert_eq!(
        number(refused.metadata(), "ratelimit-limit"),
        u64::from(QUOTA)
    );
    assert!(number(refused.metadata(), "ratelimit-reset") <= 60);

    // Another listener has a quota of its own, on either replica.
    read(&b, Uuid::new_v4()).await.expect("another caller");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_each_replica_keeps_a_quota_of_its_own() {
    let a = replica(None).await;
    let b = replica(None).await;
    let (allowed, refused) = allowed_until_refused([&a, &b], Uuid::new_v4()).await;
    assert!(
        (2 * QUOTA..=2 * QUOTA + 1).contains(&allowed),
        "{allowed} reads allowed"
    );
    assert_eq!(refused.code(), Code::ResourceExhausted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_goes_down_replicas_limit_on_their_own_and_share_again_when_it_returns() {
    if redis::url().is_none() {
        return;
    }
    let port = free_port();
    let own = OwnRedis::start(port);
    let url = own.url();
    let prefix = redis::prefix();
    let a = replica(Some((&url, &prefix))).await;
    let b = replica(Some((&url, &prefix))).await;
    let (allowed, _) = allowed_until_refused([&a, &b], Uuid::new_v4()).await;
    assert!((QUOTA..=QUOTA + 1).contains(&allowed), "shared: {allowed}");

    own.kill();
    // Each replica falls back to its own limiter: a quota per replica, still limited.
    let user = Uuid::new_v4();
    let started = Instant::now();
    let mut on_a = 0;
    let refused = loop {
        match read(&a, user).await {
            Ok(_) => on_a += 1,
            Err(status) => break status,
        }
        assert!(on_a <= 4 * QUOTA, "unlimited while redis is down");
    };
    assert!((QUOTA..=QUOTA + 1).contains(&on_a), "fallback: {on_a}");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.get_details_retry_info().is_some());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the fallback is quick: {:?}",
        started.elapsed()
    );
    read(&b, user)
        .await
        .expect("b's own quota, while redis is down");

    // Redis is back (empty: it kept nothing): sharing resumes on its own.
    let _own = OwnRedis::start(port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (allowed, refused) = allowed_until_refused([&a, &b], Uuid::new_v4()).await;
        assert_eq!(refused.code(), Code::ResourceExhausted);
        if allowed <= QUOTA + 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still not shared again: {allowed}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An ImportHistory call held open until the sender is dropped; its outcome.
fn open_import(
    app: &TestApp,
    user: Uuid,
) -> (
    mpsc::Sender<pb::ImportHistoryRequest>,
    tokio::task::JoinHandle<Result<pb::ImportHistorySummary, Status>>,
) {
    let (tx, rx) = mpsc::channel(1);
    let mut client = app.client.clone();
    let request = with_token(ReceiverStream::new(rx), &session_token(user));
    let call =
        tokio::spawn(async move { client.import_history(request).await.map(|r| r.into_inner()) });
    (tx, call)
}

/// A whole ListHistory as `user`.
async fn list(app: &TestApp, user: Uuid) -> Result<(), Status> {
    let mut client = app.client.clone();
    let mut stream = client
        .list_history(with_token(
            pb::ListHistoryRequest::default(),
            &session_token(user),
        ))
        .await?
        .into_inner();
    while let Some(entry) = stream.next().await {
        entry?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_open_streams_are_capped_across_replicas_sharing_redis() {
    let Some(url) = redis::url() else { return };
    let prefix = redis::prefix();
    let limits = LimitArgs {
        max_streams_per_caller: 2,
        ..LimitArgs::default()
    };
    let a = replica_with(Some((&url, &prefix)), limits.clone()).await;
    let b = replica_with(Some((&url, &prefix)), limits).await;
    let user = Uuid::new_v4();
    let first = open_import(&a, user);
    let second = open_import(&b, user);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for app in [&a, &b] {
        let refused = list(app, user).await.expect_err("a third stream");
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    }
    list(&a, Uuid::new_v4())
        .await
        .expect("another caller's streams are separate");

    drop(first.0);
    first.1.await.expect("task").expect("the import completes");
    // The lease is given back without waiting for Redis's answer: it is back shortly.
    let deadline = Instant::now() + Duration::from_secs(5);
    while list(&b, user).await.is_err() {
        assert!(Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(second);
}
