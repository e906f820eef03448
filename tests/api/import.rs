//! ImportHistory: a listener's whole history streamed in from another service.
use library_service::pb;
use tonic::Code;

use crate::{
    helpers::{assert_bad_fields, history_ids, play, track},
    support::app::{TestApp, service_token, with_token},
};

fn message(plays: Vec<pb::NewPlay>) -> pb::ImportHistoryRequest {
    pb::ImportHistoryRequest {
        user_id: String::new(),
        plays,
    }
}

async fn import(
    app: &TestApp,
    messages: Vec<pb::ImportHistoryRequest>,
) -> Result<pb::ImportHistorySummary, tonic::Status> {
    let mut client = app.client.clone();
    client
        .import_history(app.req(tokio_stream::iter(messages)))
        .await
        .map(|r| r.into_inner())
}

/// `n` plays a minute apart from `start_minute` minutes after 2019-03-01, half of them with the
/// source system's id as `request_id`.
fn plays(tracks: &[String], start_minute: usize, n: usize) -> Vec<pb::NewPlay> {
    (start_minute..start_minute + n)
        .map(|i| {
            let at = jiff::Timestamp::from_second(1_551_398_400 + 60 * i as i64)
                .expect("in range")
                .to_string();
            let mut p = play(&tracks[i % tracks.len()], 60, &at);
            if i % 2 == 0 {
                p.request_id = format!("old-service-{i}");
            }
            p
        })
        .collect()
}

async fn an_import_stores_every_play_once_even_when_run_again(app: TestApp) {
    let tracks: Vec<String> = (0..7).map(|_| track()).collect();
    let batches = || {
        vec![
            message(plays(&tracks, 0, 1000)),
            message(plays(&tracks, 1000, 1000)),
            message(plays(&tracks, 2000, 500)),
        ]
    };
    let first = import(&app, batches()).await.expect("import");
    assert_eq!(
        (
            first.received_count,
            first.imported_count,
            first.duplicate_count,
            first.rejected_count
        ),
        (2500, 2500, 0, 0)
    );
    let again = import(&app, batches()).await.expect("second import");
    assert_eq!(
        (
            again.received_count,
            again.imported_count,
            again.duplicate_count
        ),
        (2500, 0, 2500),
        "a re-run stores nothing twice"
    );
    assert_eq!(history_ids(&app, Default::default()).await.len(), 2500);
}

async fn concurrent_re_runs_of_an_import_store_it_once(app: TestApp) {
    let tracks: Vec<String> = (0..5).map(|_| track()).collect();
    // Four: the most streams one caller may have open at once.
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let messages = vec![
                message(plays(&tracks, 0, 400)),
                message(plays(&tracks, 400, 400)),
            ];
            let mut client = app.client.clone();
            let request = app.req(tokio_stream::iter(messages));
            tokio::spawn(
                async move { client.import_history(request).await.map(|r| r.into_inner()) },
            )
        })
        .collect();
    let (mut imported, mut duplicates) = (0, 0);
    for run in runs {
        let summary = run.await.expect("task").expect("every run succeeds");
        assert_eq!(summary.received_count, 800);
        imported += summary.imported_count;
        duplicates += summary.duplicate_count;
    }
    assert_eq!((imported, duplicates), (800, 2400));
    assert_eq!(history_ids(&app, Default::default()).await.len(), 800);
}

async fn an_import_skips_invalid_plays_and_counts_them_by_reason(app: TestApp) {
    let t = track();
    let mut batch = vec![play(&t, 30, "2020-05-01T10:00:00Z")];
    let mut no_time = play(&t, 30, "2020-05-01T10:01:00Z");
    no_time.played_at = None;
    batch.push(no_time);
    for minute in 2..5 {
        let mut bad = play(&t, 30, &format!("2020-05-01T10:0{minute}:00Z"));
        bad.track_id = "not-a-uuid".into();
        batch.push(bad);
    }
    let mut too_long = play(&t, 86_401, "2020-05-01T10:06:00Z");
    too_long.source = "x".repeat(51);
    batch.push(too_long);
    batch.push(play(&t, 30, "2020-05-01T10:07:00Z"));

    let summary = import(&app, vec![message(batch)]).await.expect("import");
    assert_eq!(
        (
            summary.received_count,
            summary.imported_count,
            summary.rejected_count
        ),
        (7, 2, 5)
    );
    let reasons: Vec<(String, u64, Vec<u64>)> = summary
        .rejections
        .iter()
        .map(|r| {
            (
                r.reason.split(':').next().unwrap_or_default().to_string(),
                r.count,
                r.first_positions.clone(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("track_id".to_string(), 3, vec![2, 3, 4]),
            ("played_at".to_string(), 1, vec![1]),
            ("played_for_seconds".to_string(), 1, vec![5]),
            ("source".to_string(), 1, vec![5]),
        ],
        "{:?}",
        summary.rejections
    );
    assert_eq!(history_ids(&app, Default::default()).await.len(), 2);
}

async fn an_import_for_another_listener_needs_the_any_user_scope(app: TestApp) {
    let other = uuid::Uuid::new_v4().to_string();
    let t = track();
    let request = |user: &str| {
        tokio_stream::iter(vec![pb::ImportHistoryRequest {
            user_id: user.to_string(),
            plays: vec![play(&t, 30, "2021-01-01T00:00:00Z")],
        }])
    };
    let mut client = app.client.clone();
    let denied = client
        .import_history(app.req(request(&other)))
        .await
        .expect_err("a listener cannot import into another library");
    assert_eq!(denied.code(), Code::PermissionDenied);

    let migrator = service_token("migration-job", "library:write library:any_user");
    let summary = client
        .import_history(with_token(request(&other), &migrator))
        .await
        .expect("a service may")
        .into_inner();
    assert_eq!(summary.imported_count, 1);
}

async fn an_import_refuses_a_stream_that_changes_listener_or_sends_too_many_plays(app: TestApp) {
    let t = track();
    let me = app.user.to_string();
    let switching = vec![
        pb::ImportHistoryRequest {
            user_id: me,
            plays: vec![play(&t, 30, "2021-01-01T00:00:00Z")],
        },
        pb::ImportHistoryRequest {
            user_id: uuid::Uuid::new_v4().to_string(),
            plays: vec![play(&t, 30, "2021-01-01T00:01:00Z")],
        },
    ];
    let status = import(&app, switching).await.expect_err("refused");
    assert_bad_fields(&status, &["user_id"]);

    let t = track();
    let oversized: Vec<pb::NewPlay> = (0..1001)
        .map(|i| play(&t, 1, &format!("2021-02-01T00:00:{:02}Z", i % 60)))
        .collect();
    let status = import(&app, vec![message(oversized)])
        .await
        .expect_err("refused");
    assert_bad_fields(&status, &["plays"]);
}

async fn an_empty_import_reports_zeros(app: TestApp) {
    let summary = import(&app, Vec::new()).await.expect("empty import");
    assert_eq!(summary, pb::ImportHistorySummary::default());
}

backend_tests! {
    an_import_stores_every_play_once_even_when_run_again,
    concurrent_re_runs_of_an_import_store_it_once,
    an_import_skips_invalid_plays_and_counts_them_by_reason,
    an_import_for_another_listener_needs_the_any_user_scope,
    an_import_refuses_a_stream_that_changes_listener_or_sends_too_many_plays,
    an_empty_import_reports_zeros,
}
