use super::{
    CountingRule, MAX_PLAYED_FOR_SECONDS, PlayId, PlaySource, RequestId, Timestamp, TrackId,
    UserId, Violation,
};

/// A validated play, ready to store, with whether it counts decided by the rule in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPlay {
    pub track_id: TrackId,
    pub played_for_seconds: u32,
    pub completed: bool,
    pub source: PlaySource,
    pub played_at: Timestamp,
    pub request_id: Option<RequestId>,
    pub track_duration_seconds: Option<u32>,
    pub counted: bool,
}

/// A stored play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    pub id: PlayId,
    pub user_id: UserId,
    pub track_id: TrackId,
    pub played_at: Timestamp,
    pub played_for_seconds: u32,
    pub completed: bool,
    pub source: String,
    /// The track's duration as the player reported it; `None` when it did not.
    pub track_duration_seconds: Option<u32>,
    /// Whether the play counts, by the rule in force when it was written.
    pub counted: bool,
}

impl Play {
    pub fn position(&self) -> PlayPosition {
        PlayPosition {
            played_at: self.played_at,
            id: self.id,
        }
    }
}

/// The outcome of storing one play: the play, and whether its request_id was already known (in
/// which case `play` is the one stored the first time and nothing was written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub play: Play,
    pub duplicate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HistoryOrder {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// Where a play sits in the history order: `(played_at, id)` is unique and total, which is what
/// lets a cursor resume exactly even when many plays share one timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlayPosition {
    pub played_at: Timestamp,
    pub id: PlayId,
}

/// Filters of a history listing. `since` is inclusive, `until` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub track_id: Option<TrackId>,
    pub source: Option<String>,
    pub completed_only: bool,
    pub counted_only: bool,
    pub order: HistoryOrder,
}

/// Which of a listener's plays `ClearHistory` deletes: every condition set must hold, and none
/// set means the whole history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClearScope {
    /// Played at or after.
    pub since: Option<Timestamp>,
    /// Played before.
    pub before: Option<Timestamp>,
    pub track_id: Option<TrackId>,
    pub source: Option<String>,
}

/// A play as a client sent it, before validation.
#[derive(Debug, Clone, Copy)]
pub struct NewPlayInput<'a> {
    pub track_id: &'a str,
    pub played_for_seconds: u32,
    pub completed: bool,
    pub source: &'a str,
    /// Unset means now.
    pub played_at: Option<Result<Timestamp, &'a str>>,
    pub request_id: &'a str,
    /// Unset when the player did not say.
    pub track_duration_seconds: Option<u32>,
}

/// Most plays one RecordPlays call, or one ImportHistory message, may carry.
pub const MAX_PLAYS_PER_CALL: usize = 1000;

/// How far ahead of the server's clock a play may be dated: clients' clocks drift.
pub const MAX_FUTURE_SKEW_SECONDS: i64 = 5 * 60;
/// Plays dated before this are refused as absurd: 2000-01-01T00:00:00Z.
pub const EARLIEST_PLAY_SECONDS: i64 = 946_684_800;

impl NewPlay {
    /// Checks every rule and reports every bad field (named as in the request), so a client fixes
    /// all of them in one round; `rule` decides whether the play counts.
    pub fn parse(
        input: NewPlayInput<'_>,
        now: Timestamp,
        rule: &CountingRule,
    ) -> Result<Self, Vec<Violation>> {
        let mut bad = Vec::new();
        let mut report = |field: &str, why: String| bad.push(Violation::new(field, why));

        let track_id = TrackId::parse(input.track_id).map_err(|e| report("track_id", e));
        if input.played_for_seconds > MAX_PLAYED_FOR_SECONDS {
            report(
                "played_for_seconds",
                format!("must be between 0 and {MAX_PLAYED_FOR_SECONDS}"),
            );
        }
        let source = PlaySource::parse(input.source).map_err(|e| report("source", e));
        let latest = now.saturating_add_seconds(MAX_FUTURE_SKEW_SECONDS);
        let played_at = match input.played_at {
            None => Ok(now),
            Some(Err(why)) => Err(why.to_string()),
            Some(Ok(t)) if t > latest => {
                Err("must not be more than 5 minutes in the future".into())
            }
            Some(Ok(t)) if t.seconds() < EARLIEST_PLAY_SECONDS => {
                Err("must not be before 2000-01-01T00:00:00Z".into())
            }
            Some(Ok(t)) => Ok(t),
        }
        .map_err(|why| report("played_at", why));
        let request_id =
            RequestId::parse_optional(input.request_id).map_err(|e| report("request_id", e));
        if input
            .track_duration_seconds
            .is_some_and(|d| !(1..=MAX_PLAYED_FOR_SECONDS).contains(&d))
        {
            report(
                "track_duration_seconds",
                format!("must be between 1 and {MAX_PLAYED_FOR_SECONDS} when given"),
            );
        }

        match (track_id, source, played_at, request_id) {
            (Ok(track_id), Ok(source), Ok(played_at), Ok(request_id)) if bad.is_empty() => {
                Ok(Self {
                    track_id,
                    played_for_seconds: input.played_for_seconds,
                    completed: input.completed,
                    source,
                    played_at,
                    request_id,
                    track_duration_seconds: input.track_duration_seconds,
                    counted: rule.counts(
                        input.played_for_seconds,
                        input.completed,
                        input.track_duration_seconds,
                    ),
                })
            }
            _ => Err(bad),
        }
    }
}
