//! What a listener sees of their library, to compare it before and after something that must
//! not change it (an export, erased, then imported again): the history without play ids and
//! cursors, every like, and the statistics without `computed_at`.
use library_service::pb;
use tokio_stream::StreamExt;
use uuid::Uuid;

use super::app::{TestApp, session_token, with_token};

#[derive(Debug, PartialEq)]
pub struct LibraryView {
    /// Newest first, each play's `id` blanked.
    pub history: Vec<pb::Play>,
    pub likes: Vec<pb::LikedTrack>,
    /// All time in UTC, then a range in a zone 5:45 ahead, by week.
    pub stats: Vec<pb::LibraryStats>,
}

pub async fn view(app: &TestApp, user: Uuid) -> LibraryView {
    let token = session_token(user);
    let mut client = app.client.clone();

    let mut stream = client
        .list_history(with_token(pb::ListHistoryRequest::default(), &token))
        .await
        .expect("history lists")
        .into_inner();
    let mut history = Vec::new();
    while let Some(entry) = stream.next().await {
        let mut play = entry.expect("history streams").play.expect("a play");
        play.id.clear();
        history.push(play);
    }
    // Plays of one instant list in id order, and an import gives plays new ids (written in
    // batches side by side), so such ties may come back in another order: put them in one.
    let at = |p: &pb::Play| p.played_at.map(|t| (t.seconds, t.nanos));
    history.sort_by(|a, b| {
        at(b).cmp(&at(a)).then_with(|| {
            (&a.track_id, a.played_for_seconds, &a.source, a.completed).cmp(&(
                &b.track_id,
                b.played_for_seconds,
                &b.source,
                b.completed,
            ))
        })
    });

    let mut likes = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_liked_tracks(with_token(
                pb::ListLikedTracksRequest {
                    page_size: 7,
                    page_token,
                    ..Default::default()
                },
                &token,
            ))
            .await
            .expect("likes list")
            .into_inner();
        likes.extend(page.liked_tracks);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }

    let requests = [
        pb::GetLibraryStatsRequest {
            top_tracks_limit: 100,
            ..Default::default()
        },
        pb::GetLibraryStatsRequest {
            since: Some(prost_types::Timestamp {
                seconds: 1_546_300_800, // 2019-01-01
                nanos: 0,
            }),
            time_zone: "Asia/Kathmandu".into(),
            top_tracks_limit: 10,
            activity_bucket: pb::ActivityBucket::Week.into(),
            ..Default::default()
        },
    ];
    let mut stats = Vec::new();
    for request in requests {
        let mut figures = client
            .get_library_stats(with_token(request, &token))
            .await
            .expect("stats")
            .into_inner();
        figures.computed_at = None;
        stats.push(figures);
    }
    LibraryView {
        history,
        likes,
        stats,
    }
}
