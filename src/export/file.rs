//! The export as a file: NDJSON, one JSON object per line, each with a `"type"`: `header` first,
//! then one `play` per play, one `like` per like, and the `trailer` last (docs/EXPORT.md). The
//! lines carry exactly what the gRPC stream's messages carry; the listener's id is said once, in
//! the header. Times are RFC 3339 in UTC with microseconds, as stored.
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Export, FORMAT, Part, VERSION};
use crate::{
    domain::{
        CountingRule, LikedTrack, NewPlay, NewPlayInput, Notes, Play, PlayId, RequestId, Timestamp,
        TrackId, UserId,
    },
    store::{LikeStore, PlayStore},
};

/// One line of an export file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Header(HeaderLine),
    Play(PlayLine),
    Like(LikeLine),
    Trailer(TrailerLine),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderLine {
    pub format: String,
    pub version: u32,
    pub user_id: String,
    pub exported_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayLine {
    pub id: String,
    pub track_id: String,
    pub played_at: String,
    pub played_for_seconds: u32,
    pub completed: bool,
    pub source: String,
    /// Absent (or null) when the player did not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_duration_seconds: Option<u32>,
    pub counted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LikeLine {
    pub track_id: String,
    pub notes: String,
    pub liked_at: String,
    pub update_time: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailerLine {
    pub play_count: u64,
    pub like_count: u64,
}

impl From<&Play> for PlayLine {
    fn from(p: &Play) -> Self {
        Self {
            id: p.id.to_string(),
            track_id: p.track_id.to_string(),
            played_at: p.played_at.to_string(),
            played_for_seconds: p.played_for_seconds,
            completed: p.completed,
            source: p.source.clone(),
            track_duration_seconds: p.track_duration_seconds,
            counted: p.counted,
        }
    }
}

impl From<&LikedTrack> for LikeLine {
    fn from(l: &LikedTrack) -> Self {
        Self {
            track_id: l.track_id.to_string(),
            notes: l.notes.clone(),
            liked_at: l.liked_at.to_string(),
            update_time: l.updated_at.to_string(),
        }
    }
}

/// An RFC 3339 time of a file, named by its field when it is not one.
pub fn parse_time(field: &str, text: &str) -> Result<Timestamp, String> {
    let t: jiff::Timestamp = text
        .parse()
        .map_err(|_| format!("{field}: {text:?} is not an RFC 3339 time"))?;
    Timestamp::from_micros(t.as_microsecond())
        .ok_or_else(|| format!("{field}: {text:?} is out of range"))
}

impl HeaderLine {
    /// The listener the file is an export of, once the format and version are known ones.
    pub fn check(&self) -> Result<UserId, String> {
        if self.format != FORMAT {
            return Err(format!(
                "the header's format is {:?}, not {FORMAT:?}: this is not a library export",
                self.format
            ));
        }
        if self.version != VERSION {
            return Err(format!(
                "the export is version {}; this build reads version {VERSION}",
                self.version
            ));
        }
        parse_time("exported_at", &self.exported_at)?;
        UserId::parse(&self.user_id).map_err(|why| format!("user_id: {why}"))
    }
}

impl PlayLine {
    /// The play to store again: validated by the rules every recorded play obeys, keyed by its
    /// exported id (so importing twice stores it once), and counted as it was when exported.
    pub fn to_new_play(&self, now: Timestamp) -> Result<NewPlay, String> {
        let id = PlayId::parse(&self.id).map_err(|why| format!("id: {why}"))?;
        let played_at = parse_time("played_at", &self.played_at)?;
        let input = NewPlayInput {
            track_id: &self.track_id,
            played_for_seconds: self.played_for_seconds,
            completed: self.completed,
            source: &self.source,
            played_at: Some(Ok(played_at)),
            request_id: "",
            track_duration_seconds: self.track_duration_seconds,
        };
        let mut play = NewPlay::parse(input, now, &CountingRule::DEFAULT).map_err(|bad| {
            bad.iter()
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        play.request_id = RequestId::parse_optional(&id.to_string())?;
        // Whether a play counts was decided when it was first recorded; an import keeps that.
        play.counted = self.counted;
        Ok(play)
    }
}

impl LikeLine {
    /// The like to restore for `user`.
    pub fn to_liked(&self, user: UserId) -> Result<LikedTrack, String> {
        Ok(LikedTrack {
            user_id: user,
            track_id: TrackId::parse(&self.track_id).map_err(|why| format!("track_id: {why}"))?,
            notes: Notes::parse(&self.notes)?.into_string(),
            liked_at: parse_time("liked_at", &self.liked_at)?,
            updated_at: parse_time("update_time", &self.update_time)?,
        })
    }
}

/// Writes the export of `user` to `out` as NDJSON, page by page; returns the trailer's counts.
pub async fn write<S, W>(store: S, user: UserId, out: &mut W) -> anyhow::Result<TrailerLine>
where
    S: PlayStore + LikeStore,
    W: AsyncWrite + Unpin,
{
    let mut export = Export::new(store, user, Timestamp::now());
    let mut buf = Vec::with_capacity(256 * 1024);
    let mut trailer = None;
    while let Some(part) = export.next().await? {
        buf.clear();
        match part {
            Part::Header { user, exported_at } => push(
                &mut buf,
                &Line::Header(HeaderLine {
                    format: FORMAT.into(),
                    version: VERSION,
                    user_id: user.to_string(),
                    exported_at: exported_at.to_string(),
                }),
            )?,
            Part::Plays(plays) => {
                for play in &plays {
                    push(&mut buf, &Line::Play(play.into()))?;
                }
            }
            Part::Likes(likes) => {
                for like in &likes {
                    push(&mut buf, &Line::Like(like.into()))?;
                }
            }
            Part::Trailer { plays, likes } => {
                let counts = TrailerLine {
                    play_count: plays,
                    like_count: likes,
                };
                trailer = Some(counts);
                push(&mut buf, &Line::Trailer(counts))?;
            }
        }
        out.write_all(&buf).await?;
    }
    out.flush().await?;
    trailer.ok_or_else(|| anyhow::anyhow!("the export ended without its trailer"))
}

fn push(buf: &mut Vec<u8>, line: &Line) -> serde_json::Result<()> {
    serde_json::to_writer(&mut *buf, line)?;
    buf.push(b'\n');
    Ok(())
}
