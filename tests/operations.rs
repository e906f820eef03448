//! Operating the service: health that follows the database, start-up while the database is down,
//! retention, the purge command, metrics, call logs, SIGTERM with calls in flight, and SIGKILL
//! under write load from 64 listeners.
#[path = "support/mod.rs"]
mod support;

use std::{
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use library_service::{
    config::{LimitArgs, ServeArgs},
    pb::{
        self, library_admin_service_client::LibraryAdminServiceClient,
        library_service_client::LibraryServiceClient,
    },
};
use support::{
    app::{AUDIENCE, ISSUER, SECRET, TestApp, now_secs, service_token, session_token, with_token},
    cluster::Cluster,
    db::{self, TestDb},
    process::{Served, binary, free_port, run},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use uuid::Uuid;

const DAY: i64 = 86_400;

fn play_at(seconds_ago: i64) -> pb::NewPlay {
    let at = jiff::Timestamp::from_second(now_secs() - seconds_ago).expect("time");
    pb::NewPlay {
        track_id: Uuid::new_v4().to_string(),
        played_for_seconds: 60,
        played_at: Some(prost_types::Timestamp {
            seconds: at.as_second(),
            nanos: 0,
        }),
        ..Default::default()
    }
}

fn record_one(request_id: String) -> pb::RecordPlayRequest {
    pb::RecordPlayRequest {
        track_id: Uuid::new_v4().to_string(),
        played_for_seconds: 30,
        request_id,
        ..Default::default()
    }
}

/// The binary on an embedded database in `dir`, with the tests' signing secret.
fn service_in(dir: &std::path::Path) -> Command {
    let mut cmd = binary();
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("LIBRARY_JWT_PUBLIC_KEYS")
        .env("LIBRARY_JWT_SECRET", SECRET)
        .env("LIBRARY_JWT_ISSUER", ISSUER)
        .env("LIBRARY_JWT_AUDIENCE", AUDIENCE);
    cmd
}

async fn next_status(
    watch: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
    within: Duration,
) -> ServingStatus {
    let next = tokio::time::timeout(within, watch.next())
        .await
        .expect("a health change in time")
        .expect("the watch goes on")
        .expect("a status");
    ServingStatus::try_from(next.status).expect("a known status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_postgres_going_down_and_coming_back() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let serve = ServeArgs {
        health_probe_seconds: 1,
        ..ServeArgs::default()
    };
    let app = TestApp::spawn_with(TestDb::external(cluster.url()), serve).await;
    let mut health = HealthClient::new(app.channel().await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "audiohm.library.v1.LibraryService".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let wait = Duration::from_secs(20);
    assert_eq!(next_status(&mut watch, wait).await, ServingStatus::Serving);

    cluster.stop();
    assert_eq!(
        next_status(&mut watch, wait).await,
        ServingStatus::NotServing
    );
    let mut client = app.client.clone();
    let down = client
        .record_play(app.req(record_one(String::new())))
        .await
        .expect_err("no database");
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");

    cluster.start_again();
    assert_eq!(next_status(&mut watch, wait).await, ServingStatus::Serving);
    client
        .record_play(app.req(record_one(String::new())))
        .await
        .expect("writes work again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_waits_for_an_unreachable_database() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    cluster.stop();
    let url = cluster.url();
    let starting = tokio::spawn(async move {
        TestApp::spawn_with(TestDb::external(url), ServeArgs::default()).await
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!starting.is_finished(), "start-up waits instead of failing");
    cluster.start_again();
    let app = tokio::time::timeout(Duration::from_secs(60), starting)
        .await
        .expect("starts once the database is back")
        .expect("start-up task");
    let mut client = app.client.clone();
    client
        .record_play(app.req(record_one(String::new())))
        .await
        .expect("serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarting_under_write_load_loses_and_duplicates_no_acknowledged_play() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let serve = ServeArgs {
        health_probe_seconds: 1,
        limits: LimitArgs {
            rate_writes_per_minute: 1_000_000,
            ..LimitArgs::default()
        },
        ..ServeArgs::default()
    };
    let app = TestApp::spawn_with(TestDb::external(cluster.url()), serve).await;
    let stop = Arc::new(AtomicBool::new(false));
    let restarted_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, restarted_at) = (stop.clone(), restarted_at.clone());
            let mut client = app.client.clone();
            tokio::spawn(async move {
                let user = Uuid::new_v4();
                let token = session_token(user);
                let (mut acknowledged, mut refusals, mut recovery) = (Vec::new(), Vec::new(), None);
                let mut key = 0;
                // Like a player: each play is retried with its request_id until acknowledged.
                while !stop.load(Ordering::Relaxed) {
                    key += 1;
                    loop {
                        let request = with_token(record_one(format!("w{w}-{key}")), &token);
                        match client.record_play(request).await {
                            Ok(r) => {
                                acknowledged.push(r.into_inner().play.expect("play").id);
                                let restart = *restarted_at.lock().expect("lock");
                                if let (Some(at), None) = (restart, recovery) {
                                    recovery = Some(at.elapsed());
                                }
                                break;
                            }
                            Err(status) => {
                                refusals.push(status);
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                }
                (user, acknowledged, refusals, recovery)
            })
        })
        .collect();
    let mut health = HealthClient::new(app.channel().await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "audiohm.library.v1.LibraryService".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let wait = Duration::from_secs(20);
    assert_eq!(next_status(&mut watch, wait).await, ServingStatus::Serving);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.stop();
    let down_at = Instant::now();
    // The outage is seen: health says so, and a call arriving now is refused at once.
    assert_eq!(
        next_status(&mut watch, wait).await,
        ServingStatus::NotServing,
        "the outage was seen"
    );
    let mut client = app.client.clone();
    let refused = client
        .record_play(app.req(record_one(String::new())))
        .await
        .expect_err("refused while the database is down");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(down_at.elapsed())).await;
    cluster.start_again();
    *restarted_at.lock().expect("lock") = Some(Instant::now());
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);

    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&cluster.url())
        .await
        .expect("the cluster");
    for writer in writers {
        let (user, acknowledged, refusals, recovery) = writer.await.expect("writer");
        // A call already waiting for a connection when the database went down may simply
        // succeed after the restart; calls arriving during the outage are refused at once.
        for status in &refusals {
            assert_eq!(status.code(), Code::Unavailable, "retryable: {status:?}");
        }
        let recovery = recovery.expect("writes succeeded after the restart");
        assert!(
            recovery < Duration::from_secs(5),
            "recovered in {recovery:?}"
        );
        let stored: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM plays WHERE user_id = $1")
            .bind(user)
            .fetch_all(&mut db)
            .await
            .expect("plays");
        let mut acknowledged: Vec<Uuid> = acknowledged
            .iter()
            .map(|id| id.parse().expect("uuid"))
            .collect();
        acknowledged.sort_unstable();
        let mut stored_sorted = stored.clone();
        stored_sorted.sort_unstable();
        assert_eq!(
            stored_sorted, acknowledged,
            "exactly the acknowledged plays are stored, once each"
        );
    }
}

async fn retention_task_deletes_plays_older_than_the_period(db: TestDb) {
    let serve = ServeArgs {
        history_retention_days: Some(30),
        retention_interval_seconds: 1,
        ..ServeArgs::default()
    };
    let app = TestApp::spawn_with(db, serve).await;
    let mut client = app.client.clone();
    client
        .record_plays(app.req(pb::RecordPlaysRequest {
            user_id: String::new(),
            plays: vec![
                play_at(400 * DAY),
                play_at(60 * DAY),
                play_at(31 * DAY),
                play_at(29 * DAY),
                play_at(DAY),
            ],
        }))
        .await
        .expect("recorded");
    let mut left = usize::MAX;
    for _ in 0..100 {
        let mut stream = client
            .list_history(app.req(pb::ListHistoryRequest::default()))
            .await
            .expect("history")
            .into_inner();
        left = 0;
        while let Some(entry) = stream.next().await {
            entry.expect("entry");
            left += 1;
        }
        if left == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(left, 2, "only the plays of the last 30 days are left");
    let stats = client
        .get_library_stats(app.req(pb::GetLibraryStatsRequest::default()))
        .await
        .expect("stats")
        .into_inner();
    assert_eq!((stats.total_plays, stats.unique_tracks), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_task_deletes_plays_older_than_the_period_on_sqlite() {
    retention_task_deletes_plays_older_than_the_period(db::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_task_deletes_plays_older_than_the_period_on_postgres() {
    if let Some(db) = db::postgres().await {
        retention_task_deletes_plays_older_than_the_period(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_command_deletes_old_plays_and_says_how_many() {
    let dir = tempfile::tempdir().expect("tempdir");
    let user = Uuid::new_v4();
    let (served, channel) = Served::start(service_in(dir.path()), &[]).await;
    LibraryServiceClient::new(channel)
        .record_plays(with_token(
            pb::RecordPlaysRequest {
                user_id: String::new(),
                plays: vec![play_at(100 * DAY), play_at(90 * DAY), play_at(DAY)],
            },
            &session_token(user),
        ))
        .await
        .expect("recorded");
    served.sigterm();
    let (status, logs) = served.wait();
    assert!(status.success(), "{logs}");

    let purge = |extra: &[&str]| {
        let mut cmd = service_in(dir.path());
        cmd.args(["purge", "--older-than-days", "30"]).args(extra);
        String::from_utf8(run(&mut cmd).stdout).expect("utf-8")
    };
    assert!(
        purge(&["--dry-run"]).starts_with("2 plays played before "),
        "dry run"
    );
    assert!(purge(&[]).starts_with("deleted 2 plays played before "));
    assert!(
        purge(&[]).starts_with("deleted 0 plays"),
        "nothing more the second time"
    );

    let refused = service_in(dir.path())
        .args(["purge", "--before", "2999-01-01T00:00:00Z"])
        .output()
        .expect("runs");
    assert!(
        !refused.status.success(),
        "a cutoff in the future is refused"
    );
}

async fn scrape(port: u16) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("metrics endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("response");
    body
}

/// The value of the sample whose line contains every one of `parts`.
fn sample(metrics: &str, parts: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_counts_calls_by_method_and_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let (_served, channel) =
        Served::start(service_in(dir.path()), &["--metrics-listen", &metrics_addr]).await;
    let mut client = LibraryServiceClient::new(channel);
    let token = session_token(Uuid::new_v4());
    for i in 0..2 {
        client
            .record_play(with_token(record_one(format!("m-{i}")), &token))
            .await
            .expect("recorded");
    }
    let mut bad = record_one(String::new());
    bad.track_id = "nope".into();
    let refused = client.record_play(with_token(bad, &token)).await;
    assert_eq!(refused.expect_err("refused").code(), Code::InvalidArgument);

    let metrics = scrape(metrics_port).await;
    let handled = |code: &str| {
        sample(
            &metrics,
            &[
                "grpc_server_handled_total{",
                "grpc_method=\"RecordPlay\"",
                &format!("grpc_code=\"{code}\""),
            ],
        )
    };
    assert_eq!(handled("Ok"), Some(2.0), "{metrics}");
    assert_eq!(handled("InvalidArgument"), Some(1.0), "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            &["grpc_server_started_total{", "grpc_method=\"RecordPlay\""]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(&metrics, &["library_plays_recorded_total"]),
        Some(2.0)
    );
    assert!(
        sample(
            &metrics,
            &["grpc_server_handling_seconds_count{", "RecordPlay"]
        )
        .is_some(),
        "{metrics}"
    );
    assert!(metrics.contains("library_db_pool_connections{state=\"idle\"}"));
    assert_eq!(sample(&metrics, &["library_database_up"]), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_call_and_never_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = service_in(dir.path());
    cmd.args(["--log-format", "json"]);
    let (served, channel) = Served::start(cmd, &[]).await;
    let user = Uuid::new_v4();
    let token = session_token(user);
    LibraryServiceClient::new(channel)
        .record_play(with_token(record_one(String::new()), &token))
        .await
        .expect("recorded");
    served.sigterm();
    let (status, logs) = served.wait();
    assert!(status.success());
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let call = lines
        .iter()
        .find(|l| l["method"] == "RecordPlay")
        .unwrap_or_else(|| panic!("no call line in {logs}"));
    assert_eq!(call["service"], "audiohm.library.v1.LibraryService");
    assert_eq!(call["caller"], user.to_string());
    assert_eq!(call["code"], "Ok");
    assert!(call["latency_ms"].is_number());
    assert!(!logs.contains(&token), "the token is never logged");
    assert!(!logs.contains(SECRET), "the secret is never logged");
}

/// A handler's own log line (here the admin audit line) sits in the call's span: an operator
/// searching for a trace id or a caller finds every line of that call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_of_a_call_carries_its_method_caller_and_trace_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = service_in(dir.path());
    cmd.args(["--log-format", "json"]);
    let (served, channel) = Served::start(cmd, &[]).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = with_token(
        pb::PurgeHistoryRequest {
            before: Some(prost_types::Timestamp {
                seconds: now_secs() - 10 * DAY,
                nanos: 0,
            }),
            dry_run: true,
        },
        &service_token("ops-console", "library:admin"),
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-00f067aa0ba902b7-01")
            .parse()
            .expect("ascii"),
    );
    LibraryAdminServiceClient::new(channel)
        .purge_history(request)
        .await
        .expect("a dry run");
    served.sigterm();
    let (status, logs) = served.wait();
    assert!(status.success());
    let audit: serde_json::Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "purged history")
        .unwrap_or_else(|| panic!("no audit line in {logs}"));
    let span = &audit["span"];
    assert_eq!(span["name"], "call", "{audit}");
    assert_eq!(span["service"], "audiohm.library.v1.LibraryAdminService");
    assert_eq!(span["method"], "PurgeHistory");
    assert_eq!(span["caller"], "ops-console");
    assert_eq!(span["trace_id"], trace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_streams_and_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (served, channel) = Served::start(service_in(dir.path()), &["--shutdown-grace", "1"]).await;
    let reader = Uuid::new_v4();
    let mut client = LibraryServiceClient::new(channel.clone());
    // More plays than the HTTP/2 windows and the server's buffer hold, so the listing is still
    // open when the signal comes.
    for batch in 0..50 {
        let plays = (0..1000).map(|i| play_at(batch * 1000 + i + 60)).collect();
        client
            .record_plays(with_token(
                pb::RecordPlaysRequest {
                    user_id: String::new(),
                    plays,
                },
                &session_token(reader),
            ))
            .await
            .expect("seeded");
    }
    let mut stream = client
        .list_history(with_token(
            pb::ListHistoryRequest::default(),
            &session_token(reader),
        ))
        .await
        .expect("listing")
        .into_inner();
    stream.next().await.expect("a first entry").expect("entry");
    // A live watch too: it never ends on its own, so the drain must end it.
    let mut watch = client
        .watch_library(with_token(
            pb::WatchLibraryRequest::default(),
            &session_token(Uuid::new_v4()),
        ))
        .await
        .expect("watching")
        .into_inner();
    watch.next().await.expect("watching").expect("watching");

    let writers: Vec<_> = (0..4)
        .map(|w| {
            let channel: Channel = channel.clone();
            tokio::spawn(async move {
                let user = Uuid::new_v4();
                let token = session_token(user);
                let mut client = LibraryServiceClient::new(channel);
                let mut acknowledged = Vec::new();
                for i in 0..100_000 {
                    match client
                        .record_play(with_token(record_one(format!("w{w}-{i}")), &token))
                        .await
                    {
                        Ok(r) => acknowledged.push(r.into_inner().play.expect("play").id),
                        Err(_) => break,
                    }
                }
                (user, acknowledged)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    served.sigterm();
    // A slow reader: nothing read until the grace period is over, when the server must end the
    // stream rather than wait for it.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let mut listed = 1;
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("the stream ends within the grace period")
        {
            Some(Ok(_)) => listed += 1,
            Some(Err(status)) => break Some(status),
            None => break None,
        }
    };
    let ended =
        ended.unwrap_or_else(|| panic!("the stream ended as if complete after {listed} plays"));
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(
        listed < 50_000,
        "the listing was cut short ({listed} plays)"
    );
    let watch_end = loop {
        match tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .expect("the watch ends within the grace period")
        {
            Some(Ok(_)) => continue,
            Some(Err(status)) => break status,
            None => panic!("the watch ended as if complete"),
        }
    };
    assert_eq!(watch_end.code(), Code::Unavailable, "{watch_end:?}");

    let mut written = Vec::new();
    for writer in writers {
        written.push(writer.await.expect("writer"));
    }
    let (status, logs) = served.wait();
    assert!(status.success(), "exit 0 after SIGTERM: {logs}");
    assert!(logs.contains("grace period over"), "{logs}");

    let url = format!("sqlite://{}", dir.path().join("data/library.db").display());
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("the database");
    let mut total = 0;
    for (user, acknowledged) in written {
        assert!(!acknowledged.is_empty(), "writes were in flight");
        total += acknowledged.len();
        let stored: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM plays WHERE user_id = ?")
            .bind(user)
            .fetch_all(&mut db)
            .await
            .expect("plays");
        for id in &acknowledged {
            let id: Uuid = id.parse().expect("uuid");
            assert!(stored.contains(&id), "acknowledged play {id} is stored");
        }
    }
    assert!(total > 0);
}

/// Each listener's aggregates that differ from a recount of their plays (none, when exact).
const AGGREGATE_DRIFT: &str = "SELECT
    (SELECT count(*) FROM (
         SELECT user_id, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                count(*) FILTER (WHERE completed) AS completed,
                sum(played_for_seconds) AS seconds, count(DISTINCT track_id) AS tracks,
                min(played_at) AS first, max(played_at) AS last
         FROM plays GROUP BY user_id) r
     FULL JOIN user_stats u USING (user_id)
     WHERE (r.plays, r.counted, r.completed, r.seconds, r.tracks, r.first, r.last)
           IS DISTINCT FROM (u.plays, u.counted, u.completed, u.seconds, u.tracks,
                             u.first_played_at, u.last_played_at))
  + (SELECT count(*) FROM (
         SELECT user_id, track_id, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                sum(played_for_seconds) AS seconds, min(played_at) AS first,
                max(played_at) AS last
         FROM plays GROUP BY 1, 2) r
     FULL JOIN user_track_stats t USING (user_id, track_id)
     WHERE (r.plays, r.counted, r.seconds, r.first, r.last)
           IS DISTINCT FROM (t.plays, t.counted, t.seconds, t.first_played_at, t.last_played_at))
  + (SELECT count(*) FROM (
         SELECT user_id, source, count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                count(*) FILTER (WHERE completed) AS completed, sum(played_for_seconds) AS seconds
         FROM plays GROUP BY 1, 2) r
     FULL JOIN user_source_stats s USING (user_id, source)
     WHERE (r.plays, r.counted, r.completed, r.seconds)
           IS DISTINCT FROM (s.plays, s.counted, s.completed, s.seconds))
  + (SELECT count(*) FROM (
         SELECT user_id, date_bin('15 minutes', played_at, timestamptz 'epoch') AS quarter_start,
                count(*) AS plays, count(*) FILTER (WHERE counted) AS counted,
                count(*) FILTER (WHERE completed) AS completed, sum(played_for_seconds) AS seconds
         FROM plays GROUP BY 1, 2) r
     FULL JOIN user_quarter_stats q USING (user_id, quarter_start)
     WHERE (r.plays, r.counted, r.completed, r.seconds)
           IS DISTINCT FROM (q.plays, q.counted, q.completed, q.seconds))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_from_64_listeners_loses_and_duplicates_no_acknowledged_play() {
    let Some(test_db) = db::postgres().await else {
        return;
    };
    let server = |url: &str| {
        let mut cmd = binary();
        cmd.env("DATABASE_URL", url)
            .env("LIBRARY_JWT_SECRET", SECRET)
            .env("LIBRARY_JWT_ISSUER", ISSUER)
            .env("LIBRARY_JWT_AUDIENCE", AUDIENCE)
            .env("LIBRARY_RATE_WRITES_PER_MINUTE", "1000000");
        cmd
    };
    let (mut served, channel) = Served::start(server(test_db.url()), &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    // 64 listeners, one call in flight each, every play with its own request_id. A writer stops
    // at its first failure (the kill) and keeps that call's key to retry after the restart.
    let writers: Vec<_> = (0..64)
        .map(|w| {
            let stop = stop.clone();
            let mut client = LibraryServiceClient::new(channel.clone());
            tokio::spawn(async move {
                let user = Uuid::new_v4();
                let token = session_token(user);
                let mut acknowledged = Vec::new();
                for key in 0.. {
                    let request_id = format!("w{w}-{key}");
                    let request = with_token(record_one(request_id.clone()), &token);
                    match client.record_play(request).await {
                        Ok(r) => {
                            acknowledged.push((request_id, r.into_inner().play.expect("play").id))
                        }
                        Err(_) => return (user, acknowledged, Some(request_id)),
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                (user, acknowledged, None)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    served.child.kill().expect("SIGKILL");
    let _ = served.child.wait();
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for writer in writers {
        results.push(writer.await.expect("writer"));
    }
    let acknowledged_total: usize = results.iter().map(|(_, a, _)| a.len()).sum();
    assert!(
        acknowledged_total > 64,
        "load ran: {acknowledged_total} plays"
    );

    let (_restarted, channel) = Served::start(server(test_db.url()), &[]).await;
    let mut client = LibraryServiceClient::new(channel);
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(test_db.url())
        .await
        .expect("the database");
    for (user, mut acknowledged, in_flight) in results {
        // The call cut off by the kill, retried with its key: stored once whether or not its
        // group had committed.
        if let Some(request_id) = in_flight {
            let token = session_token(user);
            let retried = client
                .record_play(with_token(record_one(request_id.clone()), &token))
                .await
                .expect("the retry after the restart")
                .into_inner();
            acknowledged.push((request_id, retried.play.expect("play").id));
        }
        let mut stored: Vec<(String, Uuid)> = sqlx::query_as(
            "SELECT r.request_id, p.id FROM plays p
             JOIN play_requests r ON r.user_id = p.user_id AND r.play_id = p.id
             WHERE p.user_id = $1",
        )
        .bind(user)
        .fetch_all(&mut db)
        .await
        .expect("plays");
        stored.sort();
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM plays WHERE user_id = $1")
            .bind(user)
            .fetch_one(&mut db)
            .await
            .expect("count");
        let mut expected: Vec<(String, Uuid)> = acknowledged
            .into_iter()
            .map(|(key, id)| (key, id.parse().expect("uuid")))
            .collect();
        expected.sort();
        assert_eq!(
            stored, expected,
            "every acknowledged play, once, and no other"
        );
        assert_eq!(count as usize, expected.len(), "no play without its key");
    }
    let drift: i64 = sqlx::query_scalar(AGGREGATE_DRIFT)
        .fetch_one(&mut db)
        .await
        .expect("recount");
    assert_eq!(drift, 0, "every aggregate equals a recount of the plays");
}
