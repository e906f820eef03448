//! ExportLibrary and the admin service's ExportUserData: a listener's whole library as one
//! versioned stream (docs/EXPORT.md), and a library exported, erased and imported again reads
//! the same as before.
use library_service::{
    domain::{LikedTrack, Notes, Timestamp, TrackId, UserId},
    pb::{self, export_chunk::Part, library_admin_service_client::LibraryAdminServiceClient},
    store::{Database, LikeStore},
    with_store,
};
use tokio_stream::StreamExt;
use tonic::{Code, Request, Status};
use uuid::Uuid;

use crate::{
    helpers::{assert_bad_fields, history, play, record, track},
    support::{
        app::{TestApp, service_token, session_token, with_token},
        library::view,
    },
};

/// Every message of an export stream, in order.
async fn export_of(
    app: &TestApp,
    request: Request<pb::ExportLibraryRequest>,
) -> Result<Vec<Part>, Status> {
    let mut client = app.client.clone();
    let stream = client.export_library(request).await?.into_inner();
    parts(stream).await
}

async fn parts(mut stream: tonic::Streaming<pb::ExportChunk>) -> Result<Vec<Part>, Status> {
    let mut parts = Vec::new();
    while let Some(chunk) = stream.next().await {
        parts.push(chunk?.part.expect("every chunk has a part"));
    }
    Ok(parts)
}

async fn admin_export(app: &TestApp, user_id: &str, token: &str) -> Result<Vec<Part>, Status> {
    let mut admin = LibraryAdminServiceClient::new(app.channel().await);
    let request = with_token(
        pb::ExportUserDataRequest {
            user_id: user_id.to_string(),
        },
        token,
    );
    parts(admin.export_user_data(request).await?.into_inner()).await
}

/// The parts taken apart: header, plays, likes, trailer; asserts their order.
struct Exported {
    header: pb::ExportHeader,
    plays: Vec<pb::Play>,
    play_chunks: usize,
    likes: Vec<pb::LikedTrack>,
    trailer: pb::ExportTrailer,
}

fn exported(parts: Vec<Part>) -> Exported {
    let mut parts = parts.into_iter();
    let Some(Part::Header(header)) = parts.next() else {
        panic!("an export starts with its header");
    };
    let (mut plays, mut play_chunks, mut likes, mut trailer) = (Vec::new(), 0, Vec::new(), None);
    for part in parts {
        assert!(trailer.is_none(), "nothing follows the trailer");
        match part {
            Part::Plays(chunk) => {
                assert!(likes.is_empty(), "plays come before likes");
                play_chunks += 1;
                plays.extend(chunk.plays);
            }
            Part::Likes(chunk) => likes.extend(chunk.likes),
            Part::Trailer(t) => trailer = Some(t),
            Part::Header(_) => panic!("a second header"),
        }
    }
    Exported {
        header,
        plays,
        play_chunks,
        likes,
        trailer: trailer.expect("an export ends with its trailer"),
    }
}

async fn like(app: &TestApp, track: &str, notes: Option<&str>) -> pb::LikedTrack {
    let mut client = app.client.clone();
    client
        .like_track(app.req(pb::LikeTrackRequest {
            user_id: String::new(),
            track_id: track.to_string(),
            notes: notes.map(str::to_string),
        }))
        .await
        .expect("liked")
        .into_inner()
        .liked_track
        .expect("a like")
}

async fn likes_listed(app: &TestApp) -> Vec<pb::LikedTrack> {
    let mut client = app.client.clone();
    client
        .list_liked_tracks(app.req(pb::ListLikedTracksRequest {
            page_size: 500,
            ..Default::default()
        }))
        .await
        .expect("likes list")
        .into_inner()
        .liked_tracks
}

/// 2,100 plays a minute apart (more than one chunk), several sharing each second at the start.
async fn a_history(app: &TestApp, tracks: &[String]) {
    let mut plays: Vec<pb::NewPlay> = (0..2100)
        .map(|i| {
            let at = jiff::Timestamp::from_second(1_600_000_000 + 60 * (i as i64 / 3))
                .expect("in range")
                .to_string();
            let mut p = play(&tracks[i % tracks.len()], 10 + (i % 300) as u32, &at);
            p.completed = i % 4 == 0;
            p.source = ["album", "radio", "", "search"][i % 4].into();
            p.track_duration_seconds = (i % 5 != 0).then_some(200);
            p
        })
        .collect();
    // And a few recent ones, so the last days' activity is not empty.
    for minutes_ago in [5, 600, 3000] {
        let at = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(minutes_ago);
        let mut p = play(&tracks[0], 240, &at.to_string());
        p.completed = true;
        plays.push(p);
    }
    for batch in plays.chunks(1000) {
        record(app, batch.to_vec()).await;
    }
}

async fn an_export_streams_the_header_every_play_oldest_first_the_likes_with_notes_and_a_trailer(
    app: TestApp,
) {
    let tracks: Vec<String> = (0..9).map(|_| track()).collect();
    a_history(&app, &tracks).await;
    like(&app, &tracks[1], Some("that bassline")).await;
    like(&app, &tracks[2], None).await;
    like(&app, &tracks[3], Some("for rainy days")).await;
    let started = Timestamp::now();

    let export = exported(
        export_of(&app, app.req(Default::default()))
            .await
            .expect("exports"),
    );

    assert_eq!(export.header.format, "audiohm.library.export");
    assert_eq!(export.header.version, 1);
    assert_eq!(export.header.user_id, app.user.to_string());
    let at = export.header.exported_at.expect("exported_at");
    assert!(
        at.seconds >= started.seconds() - 1,
        "exported_at is when the export ran"
    );

    let oldest_first: Vec<pb::Play> = history(
        &app,
        pb::ListHistoryRequest {
            order: pb::HistoryOrder::OldestFirst.into(),
            ..Default::default()
        },
    )
    .await
    .expect("history")
    .into_iter()
    .map(|e| e.play.expect("a play"))
    .collect();
    assert_eq!(oldest_first.len(), 2103);
    assert_eq!(export.plays, oldest_first, "every play, oldest first");
    assert!(export.play_chunks > 1, "plays come in chunks");

    let likes = likes_listed(&app).await;
    assert_eq!(likes.len(), 3);
    assert_eq!(export.likes, likes, "every like, most recent first");
    assert_eq!(export.likes[0].notes, "for rainy days");
    assert_eq!(export.likes[2].notes, "that bassline");

    assert_eq!(
        (export.trailer.play_count, export.trailer.like_count),
        (2103, 3)
    );
}

async fn an_empty_library_exports_a_header_and_a_trailer_of_zeros(app: TestApp) {
    let parts = export_of(&app, app.req(Default::default()))
        .await
        .expect("exports");
    assert_eq!(parts.len(), 2, "{parts:?}");
    let export = exported(parts);
    assert_eq!(
        (export.trailer.play_count, export.trailer.like_count),
        (0, 0)
    );
}

async fn another_listeners_export_is_refused_without_the_any_user_scope(app: TestApp) {
    let other = Uuid::new_v4();
    let t = track();
    let mut client = app.client.clone();
    client
        .record_play(with_token(
            pb::RecordPlayRequest {
                track_id: t.clone(),
                played_for_seconds: 30,
                ..Default::default()
            },
            &session_token(other),
        ))
        .await
        .expect("recorded");
    let request = || pb::ExportLibraryRequest {
        user_id: other.to_string(),
    };

    let denied = export_of(&app, app.req(request()))
        .await
        .expect_err("a listener cannot export another library");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let reader_only = service_token("support-tool", "library:read");
    let denied = export_of(&app, with_token(request(), &reader_only))
        .await
        .expect_err("library:read alone is one's own library");
    assert_eq!(denied.code(), Code::PermissionDenied);

    let service = service_token("portability-service", "library:read library:any_user");
    let export = exported(
        export_of(&app, with_token(request(), &service))
            .await
            .expect("a service may"),
    );
    assert_eq!(export.header.user_id, other.to_string());
    assert_eq!(export.plays.len(), 1);
    assert_eq!(export.plays[0].track_id, t);
}

async fn export_user_data_needs_the_admin_scope_and_a_valid_user_id(app: TestApp) {
    let t = track();
    record(&app, vec![play(&t, 60, "2024-03-01T10:00:00Z")]).await;
    like(&app, &t, Some("notes")).await;
    let me = app.user.to_string();

    for token in [
        session_token(app.user),
        service_token("portability-service", "library:read library:any_user"),
    ] {
        let denied = admin_export(&app, &me, &token)
            .await
            .expect_err("only admins");
        assert_eq!(denied.code(), Code::PermissionDenied);
    }

    let admin = service_token("ops-console", "library:admin");
    for bad in ["", "not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        let status = admin_export(&app, bad, &admin)
            .await
            .expect_err("a user_id is required");
        assert_bad_fields(&status, &["user_id"]);
    }

    let by_admin = exported(admin_export(&app, &me, &admin).await.expect("exports"));
    let own = exported(
        export_of(&app, app.req(Default::default()))
            .await
            .expect("exports"),
    );
    assert_eq!(by_admin.header.user_id, me);
    assert_eq!(by_admin.plays, own.plays);
    assert_eq!(by_admin.likes, own.likes);
    assert_eq!(by_admin.trailer, own.trailer);
    assert_eq!(
        (by_admin.trailer.play_count, by_admin.trailer.like_count),
        (1, 1)
    );
}

/// The plays of an export as ImportHistory takes them: each keyed by its exported id.
fn to_import(plays: &[pb::Play]) -> Vec<pb::ImportHistoryRequest> {
    plays
        .chunks(1000)
        .map(|chunk| pb::ImportHistoryRequest {
            user_id: String::new(),
            plays: chunk
                .iter()
                .map(|p| pb::NewPlay {
                    track_id: p.track_id.clone(),
                    played_for_seconds: p.played_for_seconds,
                    completed: p.completed,
                    source: p.source.clone(),
                    played_at: p.played_at,
                    request_id: p.id.clone(),
                    track_duration_seconds: (p.track_duration_seconds > 0)
                        .then_some(p.track_duration_seconds),
                })
                .collect(),
        })
        .collect()
}

/// The likes of an export, back through the store (the CLI's import does the same).
async fn restore(app: &TestApp, user: Uuid, likes: &[pb::LikedTrack]) -> u64 {
    let time = |t: Option<prost_types::Timestamp>| {
        let t = t.expect("a time");
        Timestamp::from_parts(t.seconds, t.nanos).expect("in range")
    };
    let likes: Vec<LikedTrack> = likes
        .iter()
        .map(|l| LikedTrack {
            user_id: UserId::from_uuid(user),
            track_id: TrackId::parse(&l.track_id).expect("a track id"),
            notes: Notes::parse(&l.notes).expect("notes").into_string(),
            liked_at: time(l.liked_at),
            updated_at: time(l.update_time),
        })
        .collect();
    let database = Database::connect(app.database_url(), 2)
        .await
        .expect("the store opens");
    with_store!(database, store => store.restore_likes(UserId::from_uuid(user), &likes).await)
        .expect("likes restored")
}

async fn a_library_exported_erased_and_imported_again_reads_the_same(app: TestApp) {
    let tracks: Vec<String> = (0..9).map(|_| track()).collect();
    a_history(&app, &tracks).await;
    like(&app, &tracks[1], Some("that bassline")).await;
    like(&app, &tracks[2], None).await;
    let mut client = app.client.clone();
    client
        .update_liked_track(app.req(pb::UpdateLikedTrackRequest {
            track_id: tracks[1].clone(),
            notes: "still".into(),
            ..Default::default()
        }))
        .await
        .expect("notes changed");
    let before = view(&app, app.user).await;
    assert_eq!(before.history.len(), 2103);
    assert_eq!(before.likes.len(), 2);
    assert_ne!(
        before.likes[1].liked_at, before.likes[1].update_time,
        "a like whose notes changed later"
    );

    let export = exported(
        export_of(&app, app.req(Default::default()))
            .await
            .expect("exports"),
    );
    let mut admin = LibraryAdminServiceClient::new(app.channel().await);
    let erased = admin
        .delete_user_data(with_token(
            pb::DeleteUserDataRequest {
                user_id: app.user.to_string(),
            },
            &service_token("account-service", "library:admin"),
        ))
        .await
        .expect("erased")
        .into_inner();
    assert_eq!((erased.deleted_plays, erased.deleted_likes), (2103, 2));
    let empty = view(&app, app.user).await;
    assert!(empty.history.is_empty() && empty.likes.is_empty());

    for run in 0..2 {
        let summary = client
            .import_history(app.req(tokio_stream::iter(to_import(&export.plays))))
            .await
            .expect("imported")
            .into_inner();
        let restored = restore(&app, app.user, &export.likes).await;
        let expected = if run == 0 { (2103, 0, 2) } else { (0, 2103, 0) };
        assert_eq!(
            (summary.imported_count, summary.duplicate_count, restored),
            expected,
            "run {run}: a second import stores nothing"
        );
        let after = view(&app, app.user).await;
        assert_eq!(after.history, before.history, "run {run}: the same history");
        assert_eq!(after.likes, before.likes, "run {run}: the same likes");
        assert_eq!(after.stats, before.stats, "run {run}: the same statistics");
    }
    let again = exported(
        export_of(&app, app.req(Default::default()))
            .await
            .expect("exports"),
    );
    assert_eq!(again.trailer, export.trailer);
    assert!(
        again
            .plays
            .iter()
            .zip(&export.plays)
            .all(|(new, old)| new.id != old.id),
        "imported plays get new ids"
    );
}

backend_tests! {
    an_export_streams_the_header_every_play_oldest_first_the_likes_with_notes_and_a_trailer,
    an_empty_library_exports_a_header_and_a_trailer_of_zeros,
    another_listeners_export_is_refused_without_the_any_user_scope,
    export_user_data_needs_the_admin_scope_and_a_valid_user_id,
    a_library_exported_erased_and_imported_again_reads_the_same,
}
