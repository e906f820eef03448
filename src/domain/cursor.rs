//! Opaque resume tokens. A token encodes a position plus a check tying it to the listener (and,
//! for history, the order), so that a token from another listing is refused instead of silently
//! resuming somewhere meaningless. Tokens are not secret: a forged one can only name a position
//! inside the caller's own library, which every query is scoped to anyway.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use super::{
    EventPosition, HistoryOrder, LikePosition, PlayId, PlayPosition, Timestamp, TrackId, UserId,
};

const HISTORY_VERSION: u8 = 1;
const LIKES_VERSION: u8 = 2;
const TOP_TRACKS_VERSION: u8 = 3;
const EVENTS_VERSION: u8 = 4;
// version + micros + uuid + check
const TOKEN_LEN: usize = 1 + 8 + 16 + 8;

/// FNV-1a: stable across builds and platforms, which `std`'s hasher does not promise.
fn check(user: UserId, tag: u8) -> [u8; 8] {
    check_with(user, tag, &[])
}

fn check_with(user: UserId, tag: u8, listing: &[u8]) -> [u8; 8] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in user
        .as_uuid()
        .as_bytes()
        .iter()
        .chain([tag].iter())
        .chain(listing)
    {
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

/// The `cursor` of a library event and the `after` of WatchLibrary. It names a position in the
/// listener's event numbering, which every replica shares, so a watcher can resume on any.
/// The token layout of the other cursors carries it: the number in the time slot, the index
/// in the id slot.
pub struct EventCursor;

impl EventCursor {
    pub fn encode(user: UserId, at: EventPosition) -> String {
        let seq = Timestamp::from_micros(at.seq).unwrap_or(Timestamp::MIN);
        encode(
            EVENTS_VERSION,
            seq,
            Uuid::from_u128(u128::from(at.index)),
            check(user, EVENTS_VERSION),
        )
    }

    pub fn decode(token: &str, user: UserId) -> Result<EventPosition, String> {
        let (seq, index) = decode(token, EVENTS_VERSION, check(user, EVENTS_VERSION))?;
        let index = u32::try_from(index.as_u128()).map_err(|_| "is not a valid token")?;
        let seq = seq.as_micros();
        if seq < 1 {
            return Err("is not a valid token".into());
        }
        Ok(EventPosition { seq, index })
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

/// Where a track sits in a ranking. Ordered as every ranking of tracks is: most counted plays
/// first, then most plays, most seconds, and track id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankPosition {
    pub counted: u64,
    pub plays: u64,
    pub seconds: u64,
    pub track_id: TrackId,
}

impl Ord for RankPosition {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.counted, other.plays, other.seconds)
            .cmp(&(self.counted, self.plays, self.seconds))
            .then(self.track_id.cmp(&other.track_id))
    }
}

impl PartialOrd for RankPosition {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The `page_token` of GetTopTracks: the last track of the page, tied to the listener and to
/// the ranked period (its bounds), so that it cannot resume another ranking.
pub struct TopTracksPageToken;

const TOP_TOKEN_LEN: usize = 1 + 8 * 3 + 16 + 8;

fn period_bytes(since: Timestamp, until: Timestamp) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&since.as_micros().to_be_bytes());
    bytes[8..].copy_from_slice(&until.as_micros().to_be_bytes());
    bytes
}

impl TopTracksPageToken {
    pub fn encode(user: UserId, period: (Timestamp, Timestamp), at: RankPosition) -> String {
        let mut buf = Vec::with_capacity(TOP_TOKEN_LEN);
        buf.push(TOP_TRACKS_VERSION);
        for n in [at.counted, at.plays, at.seconds] {
            buf.extend_from_slice(&n.to_be_bytes());
        }
        buf.extend_from_slice(at.track_id.as_uuid().as_bytes());
        buf.extend_from_slice(&check_with(user, 3, &period_bytes(period.0, period.1)));
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// The token's bytes, when it is one of ours at all (checkable without knowing the period).
    pub fn well_formed(token: &str) -> Result<Vec<u8>, String> {
        const MALFORMED: &str = "is not a valid token";
        if token.len() > 96 {
            return Err(MALFORMED.into());
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| MALFORMED.to_string())?;
        if bytes.len() != TOP_TOKEN_LEN || bytes[0] != TOP_TRACKS_VERSION {
            return Err(MALFORMED.into());
        }
        Ok(bytes)
    }

    pub fn decode(
        token: &str,
        user: UserId,
        period: (Timestamp, Timestamp),
    ) -> Result<RankPosition, String> {
        const MALFORMED: &str = "is not a valid token";
        let bytes = Self::well_formed(token)?;
        let number = |i: usize| -> Result<u64, String> {
            bytes
                .get(1 + 8 * i..9 + 8 * i)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| MALFORMED.to_string())
        };
        let id = Uuid::from_slice(&bytes[25..41]).map_err(|_| MALFORMED.to_string())?;
        if bytes[41..49] != check_with(user, 3, &period_bytes(period.0, period.1)) {
            return Err("belongs to another listing (another user, period or zone)".into());
        }
        Ok(RankPosition {
            counted: number(0)?,
            plays: number(1)?,
            seconds: number(2)?,
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
    fn a_top_tracks_token_resumes_only_its_own_ranking() {
        let (me, other) = (user(), user());
        let week = (Timestamp::MIN, Timestamp::now());
        let at = RankPosition {
            counted: 7,
            plays: 9,
            seconds: 1200,
            track_id: TrackId::from_uuid(Uuid::new_v4()),
        };
        let token = TopTracksPageToken::encode(me, week, at);
        assert_eq!(TopTracksPageToken::decode(&token, me, week), Ok(at));
        assert!(TopTracksPageToken::decode(&token, other, week).is_err());
        let another = (Timestamp::MIN, Timestamp::MAX);
        assert!(TopTracksPageToken::decode(&token, me, another).is_err());
        assert!(TopTracksPageToken::decode("garbage", me, week).is_err());
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
