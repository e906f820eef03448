//! Liked tracks.
use library_service::pb;
use tonic::Code;

use crate::{helpers::track, support::app::TestApp};

fn like(track: &str, notes: Option<&str>) -> pb::LikeTrackRequest {
    pb::LikeTrackRequest {
        user_id: String::new(),
        track_id: track.into(),
        notes: notes.map(str::to_string),
    }
}

async fn liking_again_keeps_liked_at_and_changes_notes_only_when_given(app: TestApp) {
    let t = track();
    let mut client = app.client.clone();
    let first = client
        .like_track(app.req(like(&t, Some("great bassline"))))
        .await
        .expect("liked")
        .into_inner();
    assert!(!first.already_liked);
    let first = first.liked_track.expect("like");
    assert_eq!(first.notes, "great bassline");

    let again = client
        .like_track(app.req(like(&t, None)))
        .await
        .expect("liked again")
        .into_inner();
    assert!(again.already_liked);
    let again = again.liked_track.expect("like");
    assert_eq!(
        again.liked_at, first.liked_at,
        "liking again keeps the original liked_at"
    );
    assert_eq!(again.notes, "great bassline", "no notes given: notes kept");

    let replaced = client
        .like_track(app.req(like(&t, Some(""))))
        .await
        .expect("notes cleared")
        .into_inner();
    let replaced = replaced.liked_track.expect("like");
    assert_eq!(
        replaced.notes, "",
        "notes given (even empty): notes replaced"
    );
    assert_eq!(replaced.liked_at, first.liked_at);
}

async fn unliking_is_idempotent_and_says_whether_the_track_was_liked(app: TestApp) {
    let t = track();
    let mut client = app.client.clone();
    client
        .like_track(app.req(like(&t, None)))
        .await
        .expect("liked");
    let unlike = || pb::UnlikeTrackRequest {
        user_id: String::new(),
        track_id: t.clone(),
    };
    assert!(
        client
            .unlike_track(app.req(unlike()))
            .await
            .expect("unliked")
            .into_inner()
            .was_liked
    );
    assert!(
        !client
            .unlike_track(app.req(unlike()))
            .await
            .expect("unliked again")
            .into_inner()
            .was_liked
    );
    let check = pb::CheckLikedTracksRequest {
        user_id: String::new(),
        track_ids: vec![t.clone()],
    };
    assert_eq!(
        client
            .check_liked_tracks(app.req(check))
            .await
            .expect("checked")
            .into_inner()
            .liked,
        vec![false]
    );
}

async fn updating_notes_needs_a_liked_track(app: TestApp) {
    let t = track();
    let mut client = app.client.clone();
    let update = |notes: &str| pb::UpdateLikedTrackRequest {
        user_id: String::new(),
        track_id: t.clone(),
        notes: notes.into(),
    };
    let status = client
        .update_liked_track(app.req(update("nope")))
        .await
        .expect_err("not liked");
    assert_eq!(status.code(), Code::NotFound);

    client
        .like_track(app.req(like(&t, Some("first"))))
        .await
        .expect("liked");
    let emoji_notes = "🎸".repeat(1000);
    let updated = client
        .update_liked_track(app.req(update(&emoji_notes)))
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(
        updated.notes, emoji_notes,
        "1000 emoji are 1000 characters, and come back intact"
    );
}

async fn liked_tracks_list_newest_first_in_pages_with_a_total(app: TestApp) {
    let mut client = app.client.clone();
    let mut liked = Vec::new();
    for _ in 0..5 {
        let t = track();
        client
            .like_track(app.req(like(&t, None)))
            .await
            .expect("liked");
        liked.push(t);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    liked.reverse();
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_liked_tracks(app.req(pb::ListLikedTracksRequest {
                user_id: String::new(),
                page_size: 2,
                page_token: page_token.clone(),
            }))
            .await
            .expect("page")
            .into_inner();
        assert_eq!(page.total_size, 5);
        assert!(page.liked_tracks.len() <= 2);
        seen.extend(page.liked_tracks.into_iter().map(|l| l.track_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen, liked);
}

async fn checking_liked_tracks_answers_in_request_order(app: TestApp) {
    let (a, b, c) = (track(), track(), track());
    let mut client = app.client.clone();
    client
        .like_track(app.req(like(&a, None)))
        .await
        .expect("liked a");
    client
        .like_track(app.req(like(&c, None)))
        .await
        .expect("liked c");
    let request = pb::CheckLikedTracksRequest {
        user_id: String::new(),
        track_ids: vec![b.clone(), a.to_uppercase(), c.clone(), b, a],
    };
    let liked = client
        .check_liked_tracks(app.req(request))
        .await
        .expect("checked")
        .into_inner()
        .liked;
    assert_eq!(liked, vec![false, true, true, false, true]);
}

backend_tests! {
    liking_again_keeps_liked_at_and_changes_notes_only_when_given,
    unliking_is_idempotent_and_says_whether_the_track_was_liked,
    updating_notes_needs_a_liked_track,
    liked_tracks_list_newest_first_in_pages_with_a_total,
    checking_liked_tracks_answers_in_request_order,
}
