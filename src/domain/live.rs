//! The live library: what each device is playing, how a report changes it, and the changes a
//! watcher is told about.
use super::{
    ClearScope, CountingRule, LikedTrack, MAX_PLAYED_FOR_SECONDS, NewPlay, Play, PlayId,
    PlaySource, RequestId, Timestamp, TrackId, UserId, Violation,
};

const MAX_ID_CHARS: usize = 64;
/// How long a playback stays after its track would have ended.
const GRACE_SECONDS: i64 = 30;
/// How long a playback of unknown duration stays after its last report.
const UNKNOWN_DURATION_SECONDS: i64 = 600;
/// A reported position this far from the extrapolated one is a seek, worth announcing.
const SEEK_SECONDS: u32 = 2;

/// 1 to 64 printable ASCII characters: what a player can put in a URL or a log line as is.
fn printable_id(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("is required".into());
    }
    if s.len() > MAX_ID_CHARS {
        return Err(format!("must be at most {MAX_ID_CHARS} characters"));
    }
    if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err("must be printable ASCII".into());
    }
    Ok(s.to_string())
}

/// A listener's device, as the player names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceId(String);

impl DeviceId {
    pub fn parse(s: &str) -> Result<Self, String> {
        printable_id(s).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The player's ID for one playback of one track.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlaybackId(String);

impl PlaybackId {
    pub fn parse(s: &str) -> Result<Self, String> {
        printable_id(s).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaybackState {
    Playing,
    Paused,
    Stopped,
}

impl PlaybackState {
    /// The stored form (also the proto's numbers).
    pub fn code(self) -> i16 {
        match self {
            Self::Playing => 1,
            Self::Paused => 2,
            Self::Stopped => 3,
        }
    }

    pub fn from_code(code: i16) -> Option<Self> {
        match code {
            1 => Some(Self::Playing),
            2 => Some(Self::Paused),
            3 => Some(Self::Stopped),
            _ => None,
        }
    }
}

/// A report as received, before its rules are checked.
pub struct PlaybackReportInput<'a> {
    pub device_id: &'a str,
    pub playback_id: &'a str,
    pub track_id: &'a str,
    /// `None` for a state number that is not PLAYING, PAUSED or STOPPED.
    pub state: Option<PlaybackState>,
    pub position_seconds: u32,
    pub track_duration_seconds: Option<u32>,
    pub source: &'a str,
}

/// A validated report of what a device is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybackReport {
    pub device_id: DeviceId,
    pub playback_id: PlaybackId,
    pub track_id: TrackId,
    pub state: PlaybackState,
    pub position_seconds: u32,
    pub track_duration_seconds: Option<u32>,
    pub source: PlaySource,
}

impl PlaybackReport {
    /// Every broken rule, each under the field the client sent.
    pub fn parse(input: PlaybackReportInput<'_>) -> Result<Self, Vec<Violation>> {
        let mut bad = Vec::new();
        let mut report = |field: &str, why: String| bad.push(Violation::new(field, why));
        let device_id = DeviceId::parse(input.device_id).map_err(|e| report("device_id", e));
        let playback_id =
            PlaybackId::parse(input.playback_id).map_err(|e| report("playback_id", e));
        let track_id = TrackId::parse(input.track_id).map_err(|e| report("track_id", e));
        let state = input
            .state
            .ok_or_else(|| report("state", "must be PLAYING, PAUSED or STOPPED".into()));
        let duration = input.track_duration_seconds;
        if duration.is_some_and(|d| !(1..=MAX_PLAYED_FOR_SECONDS).contains(&d)) {
            report(
                "track_duration_seconds",
                format!("must be between 1 and {MAX_PLAYED_FOR_SECONDS} when given"),
            );
        }
        if input.position_seconds > MAX_PLAYED_FOR_SECONDS {
            report(
                "position_seconds",
                format!("must be between 0 and {MAX_PLAYED_FOR_SECONDS}"),
            );
        } else if let Some(d) = duration
            && input.position_seconds > d
        {
            report(
                "position_seconds",
                "must not be past track_duration_seconds".into(),
            );
        }
        let source = PlaySource::parse(input.source).map_err(|e| report("source", e));
        match (device_id, playback_id, track_id, state, source) {
            (Ok(device_id), Ok(playback_id), Ok(track_id), Ok(state), Ok(source))
                if bad.is_empty() =>
            {
                Ok(Self {
                    device_id,
                    playback_id,
                    track_id,
                    state,
                    position_seconds: input.position_seconds,
                    track_duration_seconds: duration,
                    source,
                })
            }
            _ => Err(bad),
        }
    }
}

/// What one device is playing, as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playback {
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub playback_id: PlaybackId,
    pub track_id: TrackId,
    /// Playing or paused: a stopped playback is not kept.
    pub state: PlaybackState,
    /// The position at `reported_at`.
    pub position_seconds: u32,
    pub track_duration_seconds: Option<u32>,
    pub source: String,
    pub started_at: Timestamp,
    pub reported_at: Timestamp,
}

impl Playback {
    /// The position at `now`: advancing while playing, never past the end of the track.
    pub fn position_at(&self, now: Timestamp) -> u32 {
        let mut position = i64::from(self.position_seconds);
        if self.state == PlaybackState::Playing {
            position += (now.seconds() - self.reported_at.seconds()).max(0);
        }
        let end = self
            .track_duration_seconds
            .unwrap_or(MAX_PLAYED_FOR_SECONDS);
        u32::try_from(position.min(i64::from(end))).unwrap_or(end)
    }

    /// When the playback leaves now playing without another report: 30 s after its track
    /// would end (counting from the last report), or 10 minutes after the last report when
    /// the duration is unknown.
    pub fn expires_at(&self) -> Timestamp {
        let remaining = match self.track_duration_seconds {
            Some(d) => i64::from(d.saturating_sub(self.position_seconds)) + GRACE_SECONDS,
            None => UNKNOWN_DURATION_SECONDS,
        };
        self.reported_at.saturating_add_seconds(remaining)
    }

    /// The play this playback makes when it ends at `position`. Its `playback_id` is the
    /// play's `request_id`, so that a repeated report records it once.
    pub fn finished_play(&self, position: u32, rule: &CountingRule) -> NewPlay {
        let completed = self.track_duration_seconds.is_some_and(|d| position >= d);
        NewPlay {
            track_id: self.track_id,
            played_for_seconds: position,
            completed,
            source: PlaySource::parse(&self.source).unwrap_or_default(),
            played_at: self.started_at,
            request_id: RequestId::parse_optional(self.playback_id.as_str())
                .ok()
                .flatten(),
            track_duration_seconds: self.track_duration_seconds,
            counted: rule.counts(position, completed, self.track_duration_seconds),
        }
    }
}

/// What a report does to a device: the playbacks it ends (each recorded as a play) and what
/// the device plays afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybackChange {
    pub finished: Vec<NewPlay>,
    pub next: Option<Playback>,
    /// Whether watchers are told (see `of`).
    pub news: bool,
}

impl PlaybackChange {
    /// The rules of `ReportPlayback`: another playback on the device ends the one it was
    /// playing (at its extrapolated position); STOPPED ends the reported one; a playback
    /// that goes on keeps the time it started.
    pub fn of(
        user: UserId,
        report: PlaybackReport,
        current: Option<&Playback>,
        now: Timestamp,
        rule: &CountingRule,
    ) -> Self {
        let mut finished = Vec::new();
        let same = current.filter(|c| c.playback_id == report.playback_id);
        if let Some(c) = current
            && same.is_none()
        {
            // A playback that expired unreported played at most until it expired.
            finished.push(c.finished_play(c.position_at(now.min(c.expires_at())), rule));
        }
        let started_at = same.map_or_else(
            || now.saturating_add_seconds(-i64::from(report.position_seconds)),
            |c| c.started_at,
        );
        let playback = Playback {
            user_id: user,
            device_id: report.device_id,
            playback_id: report.playback_id,
            track_id: report.track_id,
            state: report.state,
            position_seconds: report.position_seconds,
            track_duration_seconds: report.track_duration_seconds,
            source: report.source.into_string(),
            started_at,
            reported_at: now,
        };
        if report.state == PlaybackState::Stopped {
            finished.push(playback.finished_play(report.position_seconds, rule));
            return Self {
                finished,
                next: None,
                news: true,
            };
        }
        // Watchers extrapolate a playing position themselves: a report that only confirms it
        // (same playback and state, within a couple of seconds of where it should be) is
        // stored, not announced. A seek, a pause or a new track is.
        let news = same.is_none_or(|c| {
            c.state != playback.state
                || c.track_id != playback.track_id
                || c.position_at(now).abs_diff(playback.position_seconds) > SEEK_SECONDS
        });
        Self {
            finished,
            next: Some(playback),
            news,
        }
    }
}

/// Where a watcher is in a listener's events: the next one it has not seen. Each stored row
/// has a number (`seq`, 1, 2, ... per listener) and may hold several events (the plays one
/// commit stored), `index` counting within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventPosition {
    pub seq: i64,
    pub index: u32,
}

/// One change of a listener's library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    PlayRecorded(Play),
    PlayDeleted(PlayId),
    HistoryCleared {
        scope: ClearScope,
        deleted: u64,
    },
    HistoryImported {
        imported: u64,
    },
    TrackLiked(LikedTrack),
    TrackUnliked(TrackId),
    NowPlaying {
        device_id: DeviceId,
        playback: Option<Playback>,
    },
}

/// A change as a watcher receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryEvent {
    /// When the change was made.
    pub at: Timestamp,
    pub change: Change,
    /// Where to resume after this event.
    pub next: EventPosition,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(playback: &str, state: PlaybackState, position: u32) -> PlaybackReport {
        PlaybackReport {
            device_id: DeviceId::parse("phone").unwrap(),
            playback_id: PlaybackId::parse(playback).unwrap(),
            track_id: TrackId::parse("0190a000-0000-7000-8000-000000000001").unwrap(),
            state,
            position_seconds: position,
            track_duration_seconds: Some(200),
            source: PlaySource::parse("album").unwrap(),
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_parts(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_playing_position_advances_with_time_and_stops_at_the_end_of_the_track() {
        let user = UserId::parse("0190a000-0000-7000-8000-0000000000aa").unwrap();
        let rule = CountingRule::default();
        let change = PlaybackChange::of(
            user,
            report("p1", PlaybackState::Playing, 10),
            None,
            at(0),
            &rule,
        );
        let playing = change.next.unwrap();
        assert!(change.finished.is_empty());
        assert_eq!(playing.position_at(at(50)), 60);
        assert_eq!(playing.position_at(at(5000)), 200);
        assert_eq!(playing.started_at, at(-10));
        // 190 s to the end of the track, then the grace period.
        assert_eq!(playing.expires_at(), at(190 + 30));
    }

    #[test]
    fn another_playback_on_the_device_ends_the_current_one_where_it_had_got_to() {
        let user = UserId::parse("0190a000-0000-7000-8000-0000000000aa").unwrap();
        let rule = CountingRule::default();
        let first = PlaybackChange::of(
            user,
            report("p1", PlaybackState::Playing, 0),
            None,
            at(0),
            &rule,
        )
        .next
        .unwrap();
        let change = PlaybackChange::of(
            user,
            report("p2", PlaybackState::Playing, 0),
            Some(&first),
            at(120),
            &rule,
        );
        assert_eq!(change.finished.len(), 1);
        let play = &change.finished[0];
        assert_eq!(play.played_for_seconds, 120);
        assert_eq!(play.played_at, at(0));
        assert_eq!(play.request_id.as_ref().unwrap().as_str(), "p1");
        assert!(!play.completed);
        assert_eq!(change.next.unwrap().playback_id.as_str(), "p2");
    }

    #[test]
    fn stopped_ends_the_playback_keeping_the_time_it_started() {
        let user = UserId::parse("0190a000-0000-7000-8000-0000000000aa").unwrap();
        let rule = CountingRule::default();
        let first = PlaybackChange::of(
            user,
            report("p1", PlaybackState::Playing, 0),
            None,
            at(0),
            &rule,
        )
        .next
        .unwrap();
        let change = PlaybackChange::of(
            user,
            report("p1", PlaybackState::Stopped, 200),
            Some(&first),
            at(300),
            &rule,
        );
        assert_eq!(change.next, None);
        assert_eq!(change.finished.len(), 1);
        assert_eq!(change.finished[0].played_at, at(0));
        assert!(change.finished[0].completed);
        assert!(change.finished[0].counted);
    }

    #[test]
    fn a_report_that_only_confirms_the_position_is_not_news_but_a_seek_or_pause_is() {
        let user = UserId::parse("0190a000-0000-7000-8000-0000000000aa").unwrap();
        let rule = CountingRule::default();
        let first = PlaybackChange::of(
            user,
            report("p1", PlaybackState::Playing, 0),
            None,
            at(0),
            &rule,
        );
        assert!(first.news);
        let first = first.next.unwrap();
        let confirm = |state, position| {
            PlaybackChange::of(
                user,
                report("p1", state, position),
                Some(&first),
                at(30),
                &rule,
            )
            .news
        };
        assert!(!confirm(PlaybackState::Playing, 31));
        assert!(confirm(PlaybackState::Playing, 90), "a seek");
        assert!(confirm(PlaybackState::Paused, 30), "a pause");
    }

    #[test]
    fn a_playback_that_expired_unreported_is_recorded_as_played_until_it_expired() {
        let user = UserId::parse("0190a000-0000-7000-8000-0000000000aa").unwrap();
        let rule = CountingRule::default();
        let mut unknown = report("p1", PlaybackState::Playing, 0);
        unknown.track_duration_seconds = None;
        let first = PlaybackChange::of(user, unknown, None, at(0), &rule)
            .next
            .unwrap();
        let later = PlaybackChange::of(
            user,
            report("p2", PlaybackState::Playing, 0),
            Some(&first),
            at(5 * 3600),
            &rule,
        );
        assert_eq!(later.finished[0].played_for_seconds, 600);
    }

    #[test]
    fn reports_name_every_bad_field() {
        let bad = PlaybackReport::parse(PlaybackReportInput {
            device_id: &"d".repeat(65),
            playback_id: "",
            track_id: "nope",
            state: None,
            position_seconds: 300,
            track_duration_seconds: Some(200),
            source: "",
        })
        .unwrap_err();
        let fields: Vec<&str> = bad.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "device_id",
                "playback_id",
                "track_id",
                "state",
                "position_seconds"
            ]
        );
    }
}
