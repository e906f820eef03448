//! The live library: playback reports, now playing, and WatchLibrary's events, resumes and
//! refusals.
use std::time::Duration;

use library_service::pb::{
    self, library_admin_service_client::LibraryAdminServiceClient, library_event::Event,
};
use tokio_stream::StreamExt;
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt;
use uuid::Uuid;

use super::helpers::{assert_bad_fields, play, record, track};
use crate::support::app::{TestApp, service_token, with_token};

backend_tests!(
    a_watcher_is_told_every_change_in_order_and_resumes_exactly_after_its_cursor,
    reported_playbacks_show_in_now_playing_and_end_as_plays_recorded_once,
    bad_reports_and_cursors_are_refused_and_change_nothing,
    a_cursor_from_before_an_erasure_is_refused_as_expired,
    services_see_now_playing_of_many_listeners_and_listeners_only_their_own,
);

async fn watch(app: &TestApp, after: &str) -> Result<Streaming<pb::LibraryEvent>, Status> {
    let mut client = app.client.clone();
    Ok(client
        .watch_library(app.req(pb::WatchLibraryRequest {
            user_id: String::new(),
            after: after.into(),
        }))
        .await?
        .into_inner())
}

/// The next change (heartbeats skipped), waiting at most 5 s.
async fn next_change(stream: &mut Streaming<pb::LibraryEvent>) -> pb::LibraryEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an event within 5 s")
            .expect("the stream goes on")
            .expect("an event, not an error");
        if !matches!(event.event, Some(Event::Heartbeat(_))) {
            return event;
        }
    }
}

/// A short name for each event, to compare sequences.
fn name(event: &pb::LibraryEvent) -> String {
    match event.event.as_ref().expect("an event") {
        Event::Watching(_) => "watching".into(),
        Event::Heartbeat(_) => "heartbeat".into(),
        Event::PlayRecorded(p) => format!("recorded {}", p.track_id),
        Event::PlayDeleted(d) => format!("deleted {}", d.play_id),
        Event::HistoryCleared(c) => format!("cleared {}", c.deleted_count),
        Event::HistoryImported(i) => format!("imported {}", i.imported_count),
        Event::TrackLiked(l) => format!("liked {} {:?}", l.track_id, l.notes),
        Event::TrackUnliked(u) => format!("unliked {}", u.track_id),
        Event::NowPlayingChanged(n) => format!(
            "now playing {} {}",
            n.device_id,
            n.playback.as_ref().map_or("-", |p| p.playback_id.as_str())
        ),
    }
}

async fn a_watcher_is_told_every_change_in_order_and_resumes_exactly_after_its_cursor(
    app: TestApp,
) {
    let mut stream = watch(&app, "").await.expect("watching");
    let first = next_change(&mut stream).await;
    assert_eq!(name(&first), "watching");

    let (a, b) = (track(), track());
    let plays = record(
        &app,
        vec![
            play(&a, 200, "2026-01-01T10:00:00Z"),
            play(&b, 100, "2026-01-01T11:00:00Z"),
        ],
    )
    .await;
    let mut client = app.client.clone();
    client
        .delete_play(app.req(pb::DeletePlayRequest {
            user_id: String::new(),
            play_id: plays[0].id.clone(),
        }))
        .await
        .expect("deleted");
    client
        .like_track(app.req(pb::LikeTrackRequest {
            user_id: String::new(),
            track_id: b.clone(),
            notes: Some("catchy".into()),
        }))
        .await
        .expect("liked");
    // Liking again without notes changes nothing, so it tells nobody.
    client
        .like_track(app.req(pb::LikeTrackRequest {
            user_id: String::new(),
            track_id: b.clone(),
            notes: None,
        }))
        .await
        .expect("liked again");
    client
        .update_liked_track(app.req(pb::UpdateLikedTrackRequest {
            user_id: String::new(),
            track_id: b.clone(),
            notes: "very catchy".into(),
        }))
        .await
        .expect("notes changed");
    client
        .unlike_track(app.req(pb::UnlikeTrackRequest {
            user_id: String::new(),
            track_id: b.clone(),
        }))
        .await
        .expect("unliked");
    client
        .clear_history(app.req(pb::ClearHistoryRequest::default()))
        .await
        .expect("cleared");

    let expected = [
        format!("recorded {a}"),
        format!("recorded {b}"),
        format!("deleted {}", plays[0].id),
        format!("liked {b} \"catchy\""),
        format!("liked {b} \"very catchy\""),
        format!("unliked {b}"),
        "cleared 1".to_string(),
    ];
    let mut seen = Vec::new();
    for _ in 0..expected.len() {
        seen.push(next_change(&mut stream).await);
    }
    let names: Vec<String> = seen.iter().map(name).collect();
    assert_eq!(names, expected);
    match seen[0].event.as_ref() {
        Some(Event::PlayRecorded(p)) => assert_eq!(p, &plays[0], "the event carries the play"),
        other => panic!("expected a recorded play, got {other:?}"),
    }
    drop(stream);

    // Resuming after the second event (inside the row of the two plays recorded together)
    // replays exactly what followed it, on a new stream.
    let mut resumed = watch(&app, &seen[1].cursor).await.expect("resumed");
    assert_eq!(name(&next_change(&mut resumed).await), "watching");
    let mut replayed = Vec::new();
    for _ in 2..expected.len() {
        replayed.push(name(&next_change(&mut resumed).await));
    }
    assert_eq!(replayed, expected[2..]);

    // Resuming from the last cursor replays nothing, and sees the next change.
    let mut caught_up = watch(&app, &seen[6].cursor).await.expect("resumed");
    assert_eq!(name(&next_change(&mut caught_up).await), "watching");
    let c = track();
    record(&app, vec![play(&c, 30, "2026-01-02T10:00:00Z")]).await;
    assert_eq!(
        name(&next_change(&mut caught_up).await),
        format!("recorded {c}")
    );
}

fn report(
    device: &str,
    playback: &str,
    track: &str,
    state: pb::PlaybackState,
    position: u32,
) -> pb::ReportPlaybackRequest {
    pb::ReportPlaybackRequest {
        user_id: String::new(),
        device_id: device.into(),
        playback_id: playback.into(),
        track_id: track.into(),
        state: state as i32,
        position_seconds: position,
        track_duration_seconds: Some(200),
        source: "album".into(),
    }
}

async fn now_playing(app: &TestApp) -> Vec<pb::NowPlaying> {
    let mut client = app.client.clone();
    client
        .get_now_playing(app.req(pb::GetNowPlayingRequest::default()))
        .await
        .expect("now playing")
        .into_inner()
        .playbacks
}

async fn reported_playbacks_show_in_now_playing_and_end_as_plays_recorded_once(app: TestApp) {
    let mut stream = watch(&app, "").await.expect("watching");
    assert_eq!(name(&next_change(&mut stream).await), "watching");
    let mut client = app.client.clone();
    let (a, b) = (track(), track());

    let playing = client
        .report_playback(app.req(report("phone", "p1", &a, pb::PlaybackState::Playing, 40)))
        .await
        .expect("reported")
        .into_inner();
    assert_eq!(playing.recorded_play, None, "nothing ended yet");
    let now = now_playing(&app).await;
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].device_id, "phone");
    assert_eq!(now[0].track_id, a);
    assert_eq!(now[0].state, pb::PlaybackState::Playing as i32);
    assert!((40..=45).contains(&now[0].position_seconds), "{:?}", now[0]);
    assert_eq!(
        name(&next_change(&mut stream).await),
        "now playing phone p1"
    );
    // Confirming the position is stored, not announced (watchers extrapolate it); a pause is.
    for (state, position) in [
        (pb::PlaybackState::Playing, 40),
        (pb::PlaybackState::Paused, 41),
    ] {
        client
            .report_playback(app.req(report("phone", "p1", &a, state, position)))
            .await
            .expect("reported");
    }
    match next_change(&mut stream).await.event {
        Some(Event::NowPlayingChanged(n)) => {
            let playback = n.playback.expect("still playing");
            assert_eq!(playback.state, pb::PlaybackState::Paused as i32);
            assert_eq!(playback.position_seconds, 41);
        }
        other => panic!("expected the pause, got {other:?}"),
    }

    // Another playback on the phone ends the first one, which is recorded.
    let next = client
        .report_playback(app.req(report("phone", "p2", &b, pb::PlaybackState::Playing, 0)))
        .await
        .expect("reported")
        .into_inner();
    let first = next.recorded_play.expect("the first playback was recorded");
    assert_eq!(first.track_id, a);
    assert_eq!(first.played_for_seconds, 41, "paused at 41 s");
    assert_eq!(first.source, "album");
    assert!(!next.duplicate);
    assert_eq!(
        name(&next_change(&mut stream).await),
        format!("recorded {a}")
    );
    assert_eq!(
        name(&next_change(&mut stream).await),
        "now playing phone p2"
    );

    // STOPPED records the playback and clears the device; a repeated STOPPED stores nothing.
    let stopped = client
        .report_playback(app.req(report("phone", "p2", &b, pb::PlaybackState::Stopped, 200)))
        .await
        .expect("reported")
        .into_inner();
    let second = stopped.recorded_play.expect("recorded");
    assert_eq!(second.track_id, b);
    assert!(second.completed && second.counted, "{second:?}");
    assert_eq!(
        name(&next_change(&mut stream).await),
        format!("recorded {b}")
    );
    assert_eq!(name(&next_change(&mut stream).await), "now playing phone -");
    assert!(now_playing(&app).await.is_empty());
    let again = client
        .report_playback(app.req(report("phone", "p2", &b, pb::PlaybackState::Stopped, 200)))
        .await
        .expect("reported")
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.recorded_play.expect("the first record").id, second.id);

    let listed = super::helpers::history_ids(&app, pb::ListHistoryRequest::default()).await;
    assert_eq!(listed, [second.id, first.id], "each playback is one play");
}

async fn bad_reports_and_cursors_are_refused_and_change_nothing(app: TestApp) {
    let mut client = app.client.clone();
    let mut bad = report(
        "d".repeat(65).as_str(),
        "",
        "not-a-uuid",
        pb::PlaybackState::Playing,
        0,
    );
    bad.state = 42;
    bad.position_seconds = 90_000;
    let status = client
        .report_playback(app.req(bad))
        .await
        .expect_err("refused");
    assert_bad_fields(
        &status,
        &[
            "device_id",
            "playback_id",
            "track_id",
            "state",
            "position_seconds",
        ],
    );
    let mut past_end = report("phone", "p1", &track(), pb::PlaybackState::Paused, 201);
    past_end.track_duration_seconds = Some(200);
    let status = client
        .report_playback(app.req(past_end))
        .await
        .expect_err("refused");
    assert_bad_fields(&status, &["position_seconds"]);
    let mut unspecified = report("phone", "p1", &track(), pb::PlaybackState::Playing, 1);
    unspecified.state = pb::PlaybackState::Unspecified as i32;
    let status = client
        .report_playback(app.req(unspecified))
        .await
        .expect_err("refused");
    assert_bad_fields(&status, &["state"]);
    assert!(now_playing(&app).await.is_empty(), "nothing was written");

    // A cursor of another listener, and one that is not a cursor.
    let mut stream = watch(&app, "").await.expect("watching");
    let watching = next_change(&mut stream).await;
    let other = Uuid::new_v4();
    let mut other_client = app.client.clone();
    let status = other_client
        .watch_library(with_token(
            pb::WatchLibraryRequest {
                user_id: String::new(),
                after: watching.cursor.clone(),
            },
            &crate::support::app::session_token(other),
        ))
        .await
        .expect_err("refused");
    assert_bad_fields(&status, &["after"]);
    let status = watch(&app, "garbage").await.expect_err("refused");
    assert_bad_fields(&status, &["after"]);
}

async fn a_cursor_from_before_an_erasure_is_refused_as_expired(app: TestApp) {
    let mut stream = watch(&app, "").await.expect("watching");
    assert_eq!(name(&next_change(&mut stream).await), "watching");
    record(&app, vec![play(&track(), 30, "2026-01-01T10:00:00Z")]).await;
    record(&app, vec![play(&track(), 30, "2026-01-01T11:00:00Z")]).await;
    let first = next_change(&mut stream).await;
    drop(stream);

    let mut admin = LibraryAdminServiceClient::new(app.channel().await);
    admin
        .delete_user_data(with_token(
            pb::DeleteUserDataRequest {
                user_id: app.user.to_string(),
            },
            &service_token("account-service", "library:admin"),
        ))
        .await
        .expect("erased");
    record(&app, vec![play(&track(), 30, "2026-01-02T10:00:00Z")]).await;

    let status = watch(&app, &first.cursor).await.expect_err("expired");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "EVENTS_EXPIRED");
    assert_bad_fields_of_precondition(&status);
    // Watching from now works, and sees what comes next.
    let mut fresh = watch(&app, "").await.expect("watching from now");
    assert_eq!(name(&next_change(&mut fresh).await), "watching");
    let t = track();
    record(&app, vec![play(&t, 30, "2026-01-03T10:00:00Z")]).await;
    assert_eq!(
        name(&next_change(&mut fresh).await),
        format!("recorded {t}")
    );
}

fn assert_bad_fields_of_precondition(status: &Status) {
    let bad = status.get_details_bad_request().expect("a BadRequest");
    let fields: Vec<&str> = bad
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["after"]);
}

async fn services_see_now_playing_of_many_listeners_and_listeners_only_their_own(app: TestApp) {
    let mut client = app.client.clone();
    let other = Uuid::new_v4();
    let service = service_token(
        "player-service",
        "library:read library:write library:any_user",
    );
    for (user, device) in [(app.user, "phone"), (other, "laptop")] {
        let mut r = report(device, "p1", &track(), pb::PlaybackState::Paused, 10);
        r.user_id = user.to_string();
        client
            .report_playback(with_token(r, &service))
            .await
            .expect("reported");
    }
    let both = client
        .get_now_playing(with_token(
            pb::GetNowPlayingRequest {
                user_id: String::new(),
                user_ids: vec![app.user.to_string(), other.to_string()],
            },
            &service,
        ))
        .await
        .expect("now playing")
        .into_inner()
        .playbacks;
    let mut devices: Vec<(String, String, u32)> = both
        .into_iter()
        .map(|p| (p.user_id, p.device_id, p.position_seconds))
        .collect();
    devices.sort();
    let mut expected = vec![
        (app.user.to_string(), "phone".to_string(), 10),
        (other.to_string(), "laptop".to_string(), 10),
    ];
    expected.sort();
    assert_eq!(devices, expected, "a paused position does not advance");

    let status = client
        .get_now_playing(app.req(pb::GetNowPlayingRequest {
            user_id: String::new(),
            user_ids: vec![other.to_string()],
        }))
        .await
        .expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = client
        .get_now_playing(with_token(
            pb::GetNowPlayingRequest {
                user_id: String::new(),
                user_ids: vec!["x".into(); 101],
            },
            &service,
        ))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
}

/// Two replicas on one PostgreSQL database: a play recorded through one reaches a watcher on
/// the other (LISTEN/NOTIFY), and the watcher can resume on the first replica from its cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_play_recorded_through_one_replica_reaches_a_watcher_on_another() {
    let Some(a) = TestApp::postgres().await else {
        return;
    };
    let b = a.replica().await;
    let mut on_a = watch(&a, "").await.expect("watching on A");
    assert_eq!(name(&next_change(&mut on_a).await), "watching");
    let t = track();
    record(&b, vec![play(&t, 30, "2026-01-01T10:00:00Z")]).await;
    // How fast is library-bench's to say (`--scenario watch`); here, that it arrives.
    let event = next_change(&mut on_a).await;
    assert_eq!(name(&event), format!("recorded {t}"));
    drop(on_a);
    // The cursor from A resumes on B.
    let u = track();
    record(&a, vec![play(&u, 30, "2026-01-01T11:00:00Z")]).await;
    let mut on_b = watch(&b, &event.cursor).await.expect("resumed on B");
    assert_eq!(name(&next_change(&mut on_b).await), "watching");
    assert_eq!(name(&next_change(&mut on_b).await), format!("recorded {u}"));
}

/// Proxies close streams idle for 30 s or more: an idle watch gets a heartbeat within 15 s,
/// carrying the position it has reached. (SQLite only: the heartbeat does not depend on it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_watch_gets_a_heartbeat_within_15_seconds() {
    let app = TestApp::sqlite().await;
    let mut stream = watch(&app, "").await.expect("watching");
    let watching = stream.next().await.expect("a message").expect("watching");
    let beat = tokio::time::timeout(Duration::from_secs(16), stream.next())
        .await
        .expect("a message within 16 s")
        .expect("the stream goes on")
        .expect("a heartbeat");
    assert_eq!(name(&beat), "heartbeat");
    assert_eq!(beat.cursor, watching.cursor, "nothing happened in between");
}
