//! Opaque resume tokens. A token encodes a position plus a check tying it to the listener (and,
//! for history, the order), so that a token from another listing is refused instead of silently
//! resuming somewhere meaningless. Tokens are not secret: a forged one can only name a position
//! inside the caller's own library, which every query is scoped to anyway.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use super::{HistoryOrder, LikePosition, PlayId, PlayPosition, Timestamp, TrackId, UserId};

const HISTORY_VERSION: u8 = 1;
const LIKES_VERSION: u8 = 2;
// version + micros + uuid + check
const TOKEN_LEN: usize = 1 + 8 + 16 + 8;

/// FNV-1a: stable across builds and platforms, which `std`'s hasher does not promise.
fn check(user: UserId, tag: u8) -> [u8; 8] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in user.as_uuid().as_bytes().iter().chain([tag].iter()) {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.to_be_bytes()
}

fn encode(version: u8, at: Timestamp, id: Uuid, check: [u8; 8]) -> String {
    let mut buf = Vec::with_capacity(TOKEN_LEN);
    buf.push(version);
    buf.extend_from_slice(&at.as_micros().to_be_bytes());
    buf.extend_from_slice(id.as_bytes());
    buf.extend_from_slice(&check);
    URL_SAFE_NO_PAD.encode(buf)
}

fn decode(token: &str, version: u8, expected: [u8; 8]) -> Result<(Timestamp, Uuid), String> {
    const MALFORMED: &str = "is not a valid token";
    // Bound the work before decoding anything a client sent.
    if token.len() > 64 {
        return Err(MALFORMED.into());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| MALFORMED.to_string())?;
    if bytes.len() != TOKEN_LEN || bytes[0] != version {
        return Err(MALFORMED.into());
    }
    let micros = i64::from_be_bytes(bytes[1..9].try_into().map_err(|_| MALFORMED.to_string())?);
    let id = Uuid::from_slice(&bytes[9..25]).map_err(|_| MALFORMED.to_string())?;
    if bytes[25..33] != expected {
        return Err("belongs to another listing (another user or order)".into());
    }
    let at = Timestamp::from_micros(micros).ok_or_else(|| MALFORMED.to_string())?;
    Ok((at, id))
}

fn order_tag(order: HistoryOrder) -> u8 {
    match order {
        HistoryOrder::NewestFirst => 1,
        HistoryOrder::OldestFirst => 2,
    }
}

/// The `cursor` of a streamed play and the `after` of a history request.
pub struct HistoryCursor;

impl HistoryCursor {
    pub fn encode(user: UserId, order: HistoryOrder, at: PlayPosition) -> String {
        encode(
            HISTORY_VERSION,
            at.played_at,
            at.id.as_uuid(),
            check(user, order_tag(order)),
        )
    }

    pub fn decode(token: &str, user: UserId, order: HistoryOrder) -> Result<PlayPosition, String> {
        let (played_at, id) = decode(token, HISTORY_VERSION, check(user, order_tag(order)))?;
        Ok(PlayPosition {
            played_at,
            id: PlayId::from_uuid(id),
        })
    }
}

/// The `page_token` of ListLikedTracks.
pub struct LikesPageToken;

impl LikesPageToken {
    pub fn encode(user: UserId, at: LikePosition) -> String {
        encode(
            LIKES_VERSION,
            at.liked_at,
            at.track_id.as_uuid(),
            check(user, 0),
        )
    }

    pub fn decode(token: &str, user: UserId) -> Result<LikePosition, String> {
        let (liked_at, id) = decode(token, LIKES_VERSION, check(user, 0))?;
        Ok(LikePosition {
            liked_at,
            track_id: TrackId::from_uuid(id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserId {
        UserId::from_uuid(Uuid::new_v4())
    }

    #[test]
    fn a_history_cursor_round_trips_for_its_own_listing_only() {
        let (me, other) = (user(), user());
        let pos = PlayPosition {
            played_at: Timestamp::now(),
            id: PlayId::new_v7(),
        };
        let token = HistoryCursor::encode(me, HistoryOrder::NewestFirst, pos);
        assert_eq!(
            HistoryCursor::decode(&token, me, HistoryOrder::NewestFirst),
            Ok(pos)
        );
        assert!(HistoryCursor::decode(&token, other, HistoryOrder::NewestFirst).is_err());
        assert!(HistoryCursor::decode(&token, me, HistoryOrder::OldestFirst).is_err());
        assert!(LikesPageToken::decode(&token, me).is_err());
    }

    #[test]
    fn garbage_tokens_are_refused() {
        let me = user();
        for bad in [
            "",
            "x",
            "!!!!",
            &"A".repeat(44),
            &"A".repeat(5000),
            "\0\0\0",
        ] {
            assert!(
                HistoryCursor::decode(bad, me, HistoryOrder::NewestFirst).is_err(),
                "{bad:?}"
            );
        }
    }
}
