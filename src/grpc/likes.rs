//! Liked tracks.
use super::{
    LibraryApi,
    convert::{Checks, authorize, liked_to_proto},
};
use crate::{
    auth::{Access, Principal},
    domain::{LikesPageToken, Notes, Timestamp, TrackId, likes_page_size},
    error::{ApiError, ApiResult},
    pb,
    store::Store,
};

fn track(id: &str) -> ApiResult<TrackId> {
    TrackId::parse(id).map_err(|why| ApiError::invalid("track_id", why))
}

fn notes(text: &str) -> ApiResult<Notes> {
    Notes::parse(text).map_err(|why| ApiError::invalid("notes", why))
}

pub(super) async fn like<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::LikeTrackRequest,
) -> ApiResult<pb::LikeTrackResponse> {
    let user = authorize(&caller, &r.user_id, Access::Write)?;
    let track = track(&r.track_id)?;
    let notes = r.notes.as_deref().map(notes).transpose()?;
    let outcome = api
        .store
        .like_track(user, track, notes, Timestamp::now())
        .await?;
    if !outcome.already_liked {
        metrics::counter!("library_likes_added_total").increment(1);
    }
    Ok(pb::LikeTrackResponse {
        liked_track: Some(liked_to_proto(outcome.liked)),
        already_liked: outcome.already_liked,
    })
}

pub(super) async fn unlike<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::UnlikeTrackRequest,
) -> ApiResult<pb::UnlikeTrackResponse> {
    let user = authorize(&caller, &r.user_id, Access::Write)?;
    let track = track(&r.track_id)?;
    let was_liked = api.store.unlike_track(user, track).await?;
    if was_liked {
        metrics::counter!("library_likes_removed_total").increment(1);
    }
    Ok(pb::UnlikeTrackResponse { was_liked })
}

pub(super) async fn change_notes<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::UpdateLikedTrackRequest,
) -> ApiResult<pb::LikedTrack> {
    let user = authorize(&caller, &r.user_id, Access::Write)?;
    let track = track(&r.track_id)?;
    let notes = notes(&r.notes)?;
    match api
        .store
        .update_liked_track(user, track, notes, Timestamp::now())
        .await?
    {
        Some(liked) => Ok(liked_to_proto(liked)),
        None => Err(ApiError::NotFound(format!("track {track} is not liked"))),
    }
}

pub(super) async fn page_of_likes<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::ListLikedTracksRequest,
) -> ApiResult<pb::ListLikedTracksResponse> {
    let user = authorize(&caller, &r.user_id, Access::Read)?;
    let page_size = likes_page_size(r.page_size);
    let after = match r.page_token.as_str() {
        "" => None,
        token => Some(
            LikesPageToken::decode(token, user)
                .map_err(|why| ApiError::invalid("page_token", format!("page token {why}")))?,
        ),
    };
    // One extra row tells whether another page follows without a second query.
    let mut page = api
        .store
        .liked_tracks_page(user, after, page_size + 1)
        .await?;
    let next_page_token = if page.tracks.len() > page_size as usize {
        page.tracks.truncate(page_size as usize);
        page.tracks
            .last()
            .map(|l| LikesPageToken::encode(user, l.position()))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(pb::ListLikedTracksResponse {
        liked_tracks: page.tracks.into_iter().map(liked_to_proto).collect(),
        next_page_token,
        total_size: page.total,
    })
}

pub(super) async fn hearts<S: Store>(
    api: &LibraryApi<S>,
    caller: Principal,
    r: pb::CheckLikedTracksRequest,
) -> ApiResult<pb::CheckLikedTracksResponse> {
    let user = authorize(&caller, &r.user_id, Access::Read)?;
    let mut checks = Checks::default();
    let tracks = checks.track_ids(&r.track_ids);
    checks.finish()?;
    let liked = if tracks.is_empty() {
        Vec::new()
    } else {
        api.store.check_liked(user, &tracks).await?
    };
    Ok(pb::CheckLikedTracksResponse { liked })
}
