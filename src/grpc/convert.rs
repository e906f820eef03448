//! Conversions between proto messages and domain types. Parsing functions name the offending
//! field exactly as the client spelled it.
use crate::{
    auth::{Access, Principal},
    domain::{LikedTrack, MAX_CHECKED_TRACKS, Play, Timestamp, TrackId, UserId, Violation},
    error::{ApiError, ApiResult},
    pb,
};

pub fn timestamp_to_proto(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.seconds(),
        nanos: t.subsec_nanos(),
    }
}

pub fn timestamp_from_proto(t: &prost_types::Timestamp) -> Result<Timestamp, String> {
    Timestamp::from_parts(t.seconds, t.nanos)
}

/// An optional proto timestamp: unset stays `None`, a malformed one is a violation of `field`.
pub fn optional_timestamp(
    field: &str,
    t: Option<&prost_types::Timestamp>,
) -> ApiResult<Option<Timestamp>> {
    t.map(timestamp_from_proto)
        .transpose()
        .map_err(|why| ApiError::invalid(field, why))
}

/// `user_id` of a request: empty means the caller.
pub fn optional_user(user_id: &str) -> ApiResult<Option<UserId>> {
    if user_id.is_empty() {
        return Ok(None);
    }
    UserId::parse(user_id)
        .map(Some)
        .map_err(|why| ApiError::invalid("user_id", why))
}

/// Whose library the call acts on, given the request's `user_id` and what the call does.
pub fn authorize(caller: &Principal, user_id: &str, access: Access) -> ApiResult<UserId> {
    let requested = optional_user(user_id)?;
    Ok(caller.authorize(requested, access)?)
}

/// Checks that `since` is not after `until`.
pub fn check_range(since: Option<Timestamp>, until: Option<Timestamp>) -> ApiResult<()> {
    match (since, until) {
        (Some(s), Some(u)) if s > u => Err(ApiError::invalid("until", "must not be before since")),
        _ => Ok(()),
    }
}

/// Collects every bad field of a request, so the client hears about all of them at once.
#[derive(Default)]
pub struct Checks(Vec<Violation>);

impl Checks {
    /// The value, or `None` after noting why `field` is refused.
    pub fn field<T>(&mut self, field: &str, value: Result<T, String>) -> Option<T> {
        match value {
            Ok(v) => Some(v),
            Err(why) => {
                self.0.push(Violation::new(field, why));
                None
            }
        }
    }

    pub fn refuse(&mut self, field: &str, why: impl Into<String>) {
        self.0.push(Violation::new(field, why));
    }

    /// The track ids of a request (at most `MAX_CHECKED_TRACKS`), each named by its position.
    pub fn track_ids(&mut self, ids: &[String]) -> Vec<TrackId> {
        if ids.len() > MAX_CHECKED_TRACKS {
            self.refuse(
                "track_ids",
                format!("at most {MAX_CHECKED_TRACKS} track ids per call"),
            );
            return Vec::new();
        }
        ids.iter()
            .enumerate()
            .filter_map(|(i, id)| self.field(&format!("track_ids[{i}]"), TrackId::parse(id)))
            .collect()
    }

    pub fn timestamp(
        &mut self,
        field: &str,
        t: Option<&prost_types::Timestamp>,
    ) -> Option<Timestamp> {
        self.field(field, t.map(timestamp_from_proto).transpose())
            .flatten()
    }

    /// Refuses a range whose `since` is not before its `until`.
    pub fn range(&mut self, since: Option<Timestamp>, until: Option<Timestamp>) {
        if let (Some(s), Some(u)) = (since, until)
            && s >= u
        {
            self.refuse("until", "must be after since");
        }
    }

    pub fn finish(self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }
}

pub fn prefixed(prefix: &str, violations: Vec<Violation>) -> Vec<Violation> {
    violations
        .into_iter()
        .map(|v| Violation::new(format!("{prefix}{}", v.field), v.description))
        .collect()
}

pub fn play_to_proto(p: Play) -> pb::Play {
    pb::Play {
        id: p.id.to_string(),
        user_id: p.user_id.to_string(),
        track_id: p.track_id.to_string(),
        played_at: Some(timestamp_to_proto(p.played_at)),
        played_for_seconds: p.played_for_seconds,
        completed: p.completed,
        source: p.source,
        track_duration_seconds: p.track_duration_seconds.unwrap_or(0),
        counted: p.counted,
    }
}

pub fn liked_to_proto(l: LikedTrack) -> pb::LikedTrack {
    pb::LikedTrack {
        user_id: l.user_id.to_string(),
        track_id: l.track_id.to_string(),
        notes: l.notes,
        liked_at: Some(timestamp_to_proto(l.liked_at)),
        update_time: Some(timestamp_to_proto(l.updated_at)),
    }
}
