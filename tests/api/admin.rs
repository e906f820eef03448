//! LibraryAdminService: platform-wide figures, retention and erasure, for `library:admin` only.
use std::collections::BTreeMap;

use library_service::pb::{self, library_admin_service_client::LibraryAdminServiceClient};
use tonic::{Code, Request, transport::Channel};
use uuid::Uuid;

use crate::{
    helpers::{assert_bad_fields, history_ids, play, track, ts},
    support::app::{TestApp, now_secs, service_token, session_token, with_token},
};

async fn admin_client(app: &TestApp) -> LibraryAdminServiceClient<Channel> {
    LibraryAdminServiceClient::new(app.channel().await)
}

fn as_admin<T>(message: T) -> Request<T> {
    with_token(message, &service_token("ops-console", "library:admin"))
}

/// Records plays (or likes) for a listener other than the test's default one.
async fn record_for(app: &TestApp, user: Uuid, plays: Vec<pb::NewPlay>) {
    let mut client = app.client.clone();
    let response = client
        .record_plays(with_token(
            pb::RecordPlaysRequest {
                user_id: String::new(),
                plays,
            },
            &session_token(user),
        ))
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!(response.rejected_count, 0);
}

async fn like_for(app: &TestApp, user: Uuid, track: &str) {
    let mut client = app.client.clone();
    client
        .like_track(with_token(
            pb::LikeTrackRequest {
                user_id: String::new(),
                track_id: track.to_string(),
                notes: None,
            },
            &session_token(user),
        ))
        .await
        .expect("liked");
}

async fn stats_of(app: &TestApp, user: Uuid, since: Option<&str>) -> pb::LibraryStats {
    let mut client = app.client.clone();
    client
        .get_library_stats(with_token(
            pb::GetLibraryStatsRequest {
                since: since.map(ts),
                until: since.map(|_| ts("2100-01-01T00:00:00Z")),
                top_tracks_limit: 100,
                ..Default::default()
            },
            &session_token(user),
        ))
        .await
        .expect("stats")
        .into_inner()
}

/// The all-time figures (from aggregates) equal a recount over an explicit range (from plays).
async fn assert_stats_exact(app: &TestApp, user: Uuid) -> pb::LibraryStats {
    let all_time = stats_of(app, user, None).await;
    let recount = stats_of(app, user, Some("2000-01-01T00:00:00Z")).await;
    assert_eq!(
        (
            all_time.total_plays,
            all_time.completed_plays,
            all_time.listening_seconds,
            all_time.unique_tracks,
            &all_time.top_tracks,
            &all_time.plays_by_source,
            &all_time.first_played_at,
        ),
        (
            recount.total_plays,
            recount.completed_plays,
            recount.listening_seconds,
            recount.unique_tracks,
            &recount.top_tracks,
            &recount.plays_by_source,
            &recount.first_played_at,
        )
    );
    all_time
}

async fn admin_calls_need_the_admin_scope(app: TestApp) {
    let t = track();
    crate::helpers::record(&app, vec![play(&t, 30, "2026-01-01T10:00:00Z")]).await;
    let mut admin = admin_client(&app).await;
    let me = app.user.to_string();
    for token in [
        session_token(app.user),
        service_token(
            "player-service",
            "library:read library:write library:any_user",
        ),
    ] {
        let erase = with_token(
            pb::DeleteUserDataRequest {
                user_id: me.clone(),
            },
            &token,
        );
        let denied = admin.delete_user_data(erase).await.expect_err("denied");
        assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
        let denied = admin
            .get_top_listeners(with_token(Default::default(), &token))
            .await
            .expect_err("denied");
        assert_eq!(denied.code(), Code::PermissionDenied);
        let denied = admin
            .purge_history(with_token(
                pb::PurgeHistoryRequest {
                    before: Some(ts("2027-01-01T00:00:00Z")),
                    dry_run: false,
                },
                &token,
            ))
            .await
            .expect_err("denied");
        assert_eq!(denied.code(), Code::PermissionDenied);
        for denied in [
            admin
                .get_most_liked_tracks(with_token(Default::default(), &token))
                .await
                .expect_err("denied"),
            admin
                .get_history_growth(with_token(Default::default(), &token))
                .await
                .expect_err("denied"),
            admin
                .delete_track_data(with_token(
                    pb::DeleteTrackDataRequest {
                        track_id: t.clone(),
                    },
                    &token,
                ))
                .await
                .expect_err("denied"),
        ] {
            assert_eq!(denied.code(), Code::PermissionDenied);
        }
    }
    let anonymous = admin
        .get_top_listeners(pb::GetTopListenersRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!(
        history_ids(&app, Default::default()).await.len(),
        1,
        "nothing was erased"
    );
}

async fn top_listeners_rank_by_plays_all_time_and_in_a_range(app: TestApp) {
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let t = track();
    record_for(
        &app,
        a,
        vec![
            play(&t, 10, "2026-03-01T00:00:00Z"),
            play(&t, 10, "2026-03-02T00:00:00Z"),
            play(&t, 10, "2026-03-03T00:00:00Z"),
        ],
    )
    .await;
    record_for(
        &app,
        b,
        vec![
            play(&t, 20, "2025-01-01T00:00:00Z"),
            play(&t, 20, "2025-01-02T00:00:00Z"),
            play(&t, 20, "2026-03-01T00:00:00Z"),
            play(&t, 20, "2026-03-02T00:00:00Z"),
        ],
    )
    .await;
    record_for(&app, c, vec![play(&t, 5, "2026-03-05T00:00:00Z")]).await;

    let mut admin = admin_client(&app).await;
    let top = |r: pb::GetTopListenersResponse| -> Vec<(String, u64, u64)> {
        r.listeners
            .into_iter()
            .map(|l| (l.user_id, l.plays, l.listening_seconds))
            .collect()
    };
    let all_time = admin
        .get_top_listeners(as_admin(pb::GetTopListenersRequest::default()))
        .await
        .expect("top listeners")
        .into_inner();
    assert_eq!(
        top(all_time),
        vec![
            (b.to_string(), 4, 80),
            (a.to_string(), 3, 30),
            (c.to_string(), 1, 5)
        ]
    );
    let this_year = admin
        .get_top_listeners(as_admin(pb::GetTopListenersRequest {
            since: Some(ts("2026-01-01T00:00:00Z")),
            until: None,
            limit: 2,
        }))
        .await
        .expect("top listeners")
        .into_inner();
    assert_eq!(
        top(this_year),
        vec![(a.to_string(), 3, 30), (b.to_string(), 2, 40)]
    );
    let status = admin
        .get_top_listeners(as_admin(pb::GetTopListenersRequest {
            limit: 101,
            ..Default::default()
        }))
        .await
        .expect_err("limit too high");
    assert_bad_fields(&status, &["limit"]);
}

async fn most_liked_tracks_count_the_listeners_who_like_each(app: TestApp) {
    let (popular, niche) = (track(), track());
    for _ in 0..3 {
        like_for(&app, Uuid::new_v4(), &popular).await;
    }
    like_for(&app, Uuid::new_v4(), &niche).await;
    let mut admin = admin_client(&app).await;
    let tracks = admin
        .get_most_liked_tracks(as_admin(pb::GetMostLikedTracksRequest { limit: 5 }))
        .await
        .expect("most liked")
        .into_inner()
        .tracks;
    let got: Vec<(String, u64)> = tracks.into_iter().map(|t| (t.track_id, t.likes)).collect();
    assert_eq!(got, vec![(popular, 3), (niche, 1)]);
}

async fn history_growth_counts_every_listeners_plays_per_local_day(app: TestApp) {
    let now = now_secs();
    let times = [now - 60, now - 120, now - 86_400 - 60, now - 5 * 86_400];
    let plays_at = |secs: i64| {
        let at = jiff::Timestamp::from_second(secs)
            .expect("time")
            .to_string();
        play(&track(), 30, &at)
    };
    record_for(
        &app,
        Uuid::new_v4(),
        times[..2].iter().map(|t| plays_at(*t)).collect(),
    )
    .await;
    record_for(
        &app,
        Uuid::new_v4(),
        times[2..].iter().map(|t| plays_at(*t)).collect(),
    )
    .await;

    let zone = jiff::tz::TimeZone::get("America/New_York").expect("zone");
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for t in times {
        let date = jiff::Timestamp::from_second(t)
            .expect("time")
            .to_zoned_datetime(zone.clone())
            .date()
            .to_string();
        *expected.entry(date).or_default() += 1;
    }
    let mut admin = admin_client(&app).await;
    let growth = admin
        .get_history_growth(as_admin(pb::GetHistoryGrowthRequest {
            days: 7,
            time_zone: "America/New_York".into(),
        }))
        .await
        .expect("growth")
        .into_inner();
    assert_eq!(growth.time_zone, "America/New_York");
    assert_eq!(growth.days.len(), 7);
    let got: BTreeMap<String, u64> = growth
        .days
        .iter()
        .filter(|d| d.plays > 0)
        .map(|d| (d.date.clone(), d.plays))
        .collect();
    assert_eq!(got, expected);

    for (days, zone, field) in [(367, "", "days"), (7, "Mars/Olympus", "time_zone")] {
        let status = admin
            .get_history_growth(as_admin(pb::GetHistoryGrowthRequest {
                days,
                time_zone: zone.into(),
            }))
            .await
            .expect_err("refused");
        assert_bad_fields(&status, &[field]);
    }
}

async fn purging_history_deletes_only_plays_before_the_cutoff_and_keeps_stats_exact(app: TestApp) {
    let other = Uuid::new_v4();
    let months = |t: &str| -> Vec<pb::NewPlay> {
        (1..=6)
            .map(|m| play(t, 60, &format!("2025-{m:02}-15T12:00:00Z")))
            .collect()
    };
    let (t, u) = (track(), track());
    crate::helpers::record(&app, months(&t)).await;
    record_for(&app, other, months(&u)).await;
    let mut admin = admin_client(&app).await;
    let purge = |dry_run| {
        as_admin(pb::PurgeHistoryRequest {
            before: Some(ts("2025-04-01T00:00:00Z")),
            dry_run,
        })
    };
    let counted = admin
        .purge_history(purge(true))
        .await
        .expect("dry run")
        .into_inner();
    assert_eq!((counted.deleted_count, counted.dry_run), (6, true));
    assert_eq!(history_ids(&app, Default::default()).await.len(), 6);

    let purged = admin
        .purge_history(purge(false))
        .await
        .expect("purge")
        .into_inner();
    assert_eq!(purged.deleted_count, 6, "three months of two listeners");
    let again = admin
        .purge_history(purge(false))
        .await
        .expect("purge")
        .into_inner();
    assert_eq!(again.deleted_count, 0);
    for user in [app.user, other] {
        let stats = assert_stats_exact(&app, user).await;
        assert_eq!(stats.total_plays, 3);
        assert_eq!(stats.first_played_at, Some(ts("2025-04-15T12:00:00Z")));
    }

    for (before, why) in [
        (None, "required"),
        (Some(ts("2100-01-01T00:00:00Z")), "future"),
    ] {
        let status = admin
            .purge_history(as_admin(pb::PurgeHistoryRequest {
                before,
                dry_run: false,
            }))
            .await
            .expect_err(why);
        assert_bad_fields(&status, &["before"]);
    }
}

async fn deleting_a_users_data_erases_every_trace_and_is_idempotent(app: TestApp) {
    let other = Uuid::new_v4();
    let t = track();
    let mut keyed = play(&t, 30, "2026-02-01T00:00:00Z");
    keyed.request_id = "player-7".into();
    crate::helpers::record(
        &app,
        vec![keyed.clone(), play(&t, 40, "2026-02-02T00:00:00Z")],
    )
    .await;
    like_for(&app, app.user, &t).await;
    record_for(&app, other, vec![play(&t, 50, "2026-02-03T00:00:00Z")]).await;
    like_for(&app, other, &t).await;

    let mut admin = admin_client(&app).await;
    let erase = || {
        as_admin(pb::DeleteUserDataRequest {
            user_id: app.user.to_string(),
        })
    };
    let erased = admin
        .delete_user_data(erase())
        .await
        .expect("erased")
        .into_inner();
    assert_eq!(
        (
            erased.deleted_plays,
            erased.deleted_likes,
            erased.deleted_requests
        ),
        (2, 1, 1)
    );
    let stats = stats_of(&app, app.user, None).await;
    assert_eq!(
        (
            stats.total_plays,
            stats.unique_tracks,
            stats.liked_tracks,
            stats.top_tracks.len()
        ),
        (0, 0, 0, 0)
    );
    assert!(history_ids(&app, Default::default()).await.is_empty());
    let again = admin
        .delete_user_data(erase())
        .await
        .expect("erased")
        .into_inner();
    assert_eq!(again, pb::DeleteUserDataResponse::default());

    // The idempotency record went too: the same request_id now stores a new play.
    let stored = crate::helpers::record(&app, vec![keyed]).await;
    assert_eq!(
        history_ids(&app, Default::default()).await,
        vec![stored[0].id.clone()]
    );

    let untouched = assert_stats_exact(&app, other).await;
    assert_eq!((untouched.total_plays, untouched.liked_tracks), (1, 1));

    let status = admin
        .delete_user_data(as_admin(pb::DeleteUserDataRequest {
            user_id: String::new(),
        }))
        .await
        .expect_err("a user is required");
    assert_bad_fields(&status, &["user_id"]);
}

async fn deleting_a_tracks_data_erases_it_in_every_library_and_keeps_stats_exact(app: TestApp) {
    let (gone, kept) = (track(), track());
    let (b, c) = (Uuid::new_v4(), Uuid::new_v4());
    crate::helpers::record(
        &app,
        vec![
            play(&gone, 30, "2026-01-01T00:00:00Z"),
            play(&gone, 30, "2026-01-02T00:00:00Z"),
            play(&kept, 45, "2026-01-03T00:00:00Z"),
        ],
    )
    .await;
    like_for(&app, app.user, &gone).await;
    record_for(&app, b, vec![play(&gone, 10, "2026-01-04T00:00:00Z")]).await;
    like_for(&app, c, &gone).await;
    like_for(&app, c, &kept).await;

    let mut admin = admin_client(&app).await;
    let erase = || {
        as_admin(pb::DeleteTrackDataRequest {
            track_id: gone.clone(),
        })
    };
    let erased = admin
        .delete_track_data(erase())
        .await
        .expect("erased")
        .into_inner();
    assert_eq!(
        (
            erased.deleted_plays,
            erased.deleted_likes,
            erased.affected_users
        ),
        (3, 2, 3)
    );
    let mine = assert_stats_exact(&app, app.user).await;
    assert_eq!((mine.total_plays, mine.liked_tracks), (1, 0));
    assert_eq!(mine.top_tracks[0].track_id, kept);
    assert_eq!(assert_stats_exact(&app, b).await.total_plays, 0);
    let mut client = app.client.clone();
    let liked = client
        .check_liked_tracks(with_token(
            pb::CheckLikedTracksRequest {
                user_id: String::new(),
                track_ids: vec![gone.clone(), kept.clone()],
            },
            &session_token(c),
        ))
        .await
        .expect("check")
        .into_inner()
        .liked;
    assert_eq!(liked, vec![false, true]);
    let again = admin
        .delete_track_data(erase())
        .await
        .expect("erased")
        .into_inner();
    assert_eq!(again, pb::DeleteTrackDataResponse::default());

    let status = admin
        .delete_track_data(as_admin(pb::DeleteTrackDataRequest {
            track_id: "not-a-track".into(),
        }))
        .await
        .expect_err("refused");
    assert_bad_fields(&status, &["track_id"]);
}

backend_tests! {
    admin_calls_need_the_admin_scope,
    top_listeners_rank_by_plays_all_time_and_in_a_range,
    most_liked_tracks_count_the_listeners_who_like_each,
    history_growth_counts_every_listeners_plays_per_local_day,
    purging_history_deletes_only_plays_before_the_cutoff_and_keeps_stats_exact,
    deleting_a_users_data_erases_every_trace_and_is_idempotent,
    deleting_a_tracks_data_erases_it_in_every_library_and_keeps_stats_exact,
}
