//! Property tests of everything that decodes or validates what a client sends: cursors, page
//! tokens, timestamps and play fields. Whatever the input, nothing panics, and whatever is
//! accepted keeps the rules. `cargo test` runs a few hundred cases each; `.ci/fuzz SECONDS` runs
//! many more for a bounded time.
use library_service::domain::{
    CountingRule, HistoryCursor, HistoryOrder, LikePosition, LikesPageToken, NewPlay, NewPlayInput,
    Notes, PlayId, PlayPosition, PlaySource, RequestId, Timestamp, TrackId, UserId,
};
use proptest::prelude::*;
use uuid::Uuid;

fn user(bytes: [u8; 16]) -> UserId {
    UserId::from_uuid(Uuid::from_bytes(bytes))
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (Timestamp::MIN.as_micros()..=Timestamp::MAX.as_micros())
        .prop_map(|m| Timestamp::from_micros(m).unwrap_or(Timestamp::MIN))
}

fn order() -> impl Strategy<Value = HistoryOrder> {
    prop_oneof![
        Just(HistoryOrder::NewestFirst),
        Just(HistoryOrder::OldestFirst)
    ]
}

/// Base64url-ish noise, near-valid tokens, and arbitrary strings.
fn token_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,80}",
        ".{0,100}",
        proptest::collection::vec(any::<u8>(), 0..60)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

proptest! {
    #[test]
    fn history_cursors_round_trip_and_belong_to_one_listing(
        owner in any::<[u8; 16]>(),
        other in any::<[u8; 16]>(),
        at in timestamp(),
        id in any::<[u8; 16]>(),
        order in order(),
    ) {
        let position = PlayPosition { played_at: at, id: PlayId::from_uuid(Uuid::from_bytes(id)) };
        let cursor = HistoryCursor::encode(user(owner), order, position);
        prop_assert_eq!(HistoryCursor::decode(&cursor, user(owner), order), Ok(position));
        if other != owner {
            prop_assert!(HistoryCursor::decode(&cursor, user(other), order).is_err());
        }
        let flipped = match order {
            HistoryOrder::NewestFirst => HistoryOrder::OldestFirst,
            HistoryOrder::OldestFirst => HistoryOrder::NewestFirst,
        };
        prop_assert!(HistoryCursor::decode(&cursor, user(owner), flipped).is_err());
    }

    #[test]
    fn decoding_any_cursor_or_page_token_never_panics(
        token in token_like(),
        owner in any::<[u8; 16]>(),
        order in order(),
    ) {
        let _ = HistoryCursor::decode(&token, user(owner), order);
        let _ = LikesPageToken::decode(&token, user(owner));
    }

    #[test]
    fn a_tampered_cursor_is_refused_or_still_in_range(
        owner in any::<[u8; 16]>(),
        at in timestamp(),
        id in any::<[u8; 16]>(),
        flip in 0usize..44,
        bit in 0u8..6,
    ) {
        let position = LikePosition { liked_at: at, track_id: TrackId::from_uuid(Uuid::from_bytes(id)) };
        let token = LikesPageToken::encode(user(owner), position);
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bytes = token.into_bytes();
        let i = flip % bytes.len();
        let pos = ALPHABET.iter().position(|c| *c == bytes[i]).unwrap_or(0);
        bytes[i] = ALPHABET[(pos ^ (1 << bit)) % ALPHABET.len()];
        let tampered = String::from_utf8(bytes).unwrap_or_default();
        if let Ok(decoded) = LikesPageToken::decode(&tampered, user(owner)) {
            // Only the position bits may have changed, and they stay a valid position.
            prop_assert!(decoded.liked_at >= Timestamp::MIN && decoded.liked_at <= Timestamp::MAX);
        }
    }

    #[test]
    fn timestamps_from_any_parts_are_refused_or_in_range(seconds in any::<i64>(), nanos in any::<i32>()) {
        if let Ok(t) = Timestamp::from_parts(seconds, nanos) {
            prop_assert!(t >= Timestamp::MIN && t <= Timestamp::MAX);
            prop_assert!((0..1_000_000_000).contains(&nanos));
        }
    }

    #[test]
    fn any_play_is_refused_or_keeps_every_rule(
        track_id in prop_oneof![Just(Uuid::new_v4().to_string()), ".{0,40}"],
        played_for_seconds in any::<u32>(),
        completed in any::<bool>(),
        source in ".{0,60}",
        played_at in proptest::option::of((any::<i64>(), any::<i32>())),
        request_id in ".{0,70}",
        track_duration_seconds in proptest::option::of(any::<u32>()),
    ) {
        let now = Timestamp::now();
        let parsed_at = played_at.map(|(s, n)| Timestamp::from_parts(s, n).map_err(|_| "is not a valid timestamp"));
        let input = NewPlayInput {
            track_id: &track_id,
            played_for_seconds,
            completed,
            source: &source,
            played_at: parsed_at,
            request_id: &request_id,
            track_duration_seconds,
        };
        let rule = CountingRule::DEFAULT;
        match NewPlay::parse(input, now, &rule) {
            Ok(play) => {
                prop_assert!(play.played_for_seconds <= 86_400);
                prop_assert!(play.track_duration_seconds.is_none_or(|d| (1..=86_400).contains(&d)));
                prop_assert_eq!(
                    play.counted,
                    rule.counts(play.played_for_seconds, play.completed, play.track_duration_seconds)
                );
                prop_assert!(play.source.as_str().chars().count() <= 50);
                prop_assert!(!play.source.as_str().chars().any(char::is_control));
                prop_assert!(play.played_at <= now.saturating_add_seconds(300));
                if let Some(key) = &play.request_id {
                    prop_assert!((1..=64).contains(&key.as_str().len()));
                    prop_assert!(key.as_str().bytes().all(|b| (0x20..0x7f).contains(&b)));
                }
            }
            Err(violations) => prop_assert!(!violations.is_empty()),
        }
    }

    #[test]
    fn notes_sources_and_keys_are_refused_or_within_their_rules(text in ".{0,1100}") {
        if let Ok(notes) = Notes::parse(&text) {
            prop_assert!(notes.as_str().chars().count() <= 1000);
            prop_assert!(!notes.as_str().chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')));
        }
        if let Ok(source) = PlaySource::parse(&text) {
            prop_assert!(source.as_str().chars().count() <= 50);
        }
        if let Ok(Some(key)) = RequestId::parse_optional(&text) {
            prop_assert!(key.as_str().len() <= 64);
        }
    }
}
