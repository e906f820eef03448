//! The stored form of a period's figures (`user_period_stats`), the same bytes on both backends.
//! Tracks are fixed-width records sorted by track id; sources and quarter hours are short
//! varint lists. Every blob starts with a format byte, so a later format can be told apart (and
//! rebuilt).
use crate::domain::{
    Counts, Figures, Period, QUARTER_HOUR_MICROS, QuarterTally, SourceTally, Timestamp, TrackId,
    TrackTally,
};

use super::{StoreError, StoreResult};

const FORMAT: u8 = 1;
/// track id, plays, counted, seconds, first, last.
const TRACK_RECORD: usize = 16 + 4 + 4 + 8 + 8 + 8;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("period snapshot: {what}"))
}

/// The three blobs of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub tracks: Vec<u8>,
    pub sources: Vec<u8>,
    pub quarters: Vec<u8>,
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn varint(&mut self) -> StoreResult<u64> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self
                .bytes
                .split_first()
                .ok_or_else(|| corrupt("truncated"))?;
            self.bytes = rest;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(corrupt("varint too long"))
    }

    fn take(&mut self, len: usize) -> StoreResult<&[u8]> {
        if self.bytes.len() < len {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    fn counts(&mut self) -> StoreResult<Counts> {
        Ok(Counts {
            plays: self.varint()?,
            counted: self.varint()?,
            completed: self.varint()?,
            seconds: self.varint()?,
        })
    }
}

fn put_counts(out: &mut Vec<u8>, c: &Counts) {
    for n in [c.plays, c.counted, c.completed, c.seconds] {
        put_varint(out, n);
    }
}

/// Encodes a period's figures; `figures.tracks` must be sorted by track id (as `FiguresSum`
/// leaves them).
pub fn encode(period: Period, figures: &Figures) -> Encoded {
    let mut tracks = Vec::with_capacity(1 + figures.tracks.len() * TRACK_RECORD);
    tracks.push(FORMAT);
    for t in &figures.tracks {
        tracks.extend_from_slice(t.track_id.as_uuid().as_bytes());
        tracks.extend_from_slice(&saturate(t.counts.plays).to_le_bytes());
        tracks.extend_from_slice(&saturate(t.counts.counted).to_le_bytes());
        tracks.extend_from_slice(&t.counts.seconds.to_le_bytes());
        tracks.extend_from_slice(&t.first.as_micros().to_le_bytes());
        tracks.extend_from_slice(&t.last.as_micros().to_le_bytes());
    }
    let mut sources = vec![FORMAT];
    put_varint(&mut sources, figures.sources.len() as u64);
    for s in &figures.sources {
        put_varint(&mut sources, s.source.len() as u64);
        sources.extend_from_slice(s.source.as_bytes());
        put_counts(&mut sources, &s.counts);
    }
    let mut quarters = vec![FORMAT];
    let base = period.start().as_micros();
    let mut previous: i64 = -1;
    put_varint(&mut quarters, figures.quarters.len() as u64);
    for q in &figures.quarters {
        let index = (q.start.as_micros() - base).div_euclid(QUARTER_HOUR_MICROS);
        put_varint(&mut quarters, (index - previous) as u64);
        previous = index;
        put_counts(&mut quarters, &q.counts);
    }
    Encoded {
        tracks,
        sources,
        quarters,
    }
}

fn body<'a>(blob: &'a [u8], what: &str) -> StoreResult<&'a [u8]> {
    match blob.split_first() {
        Some((&FORMAT, rest)) => Ok(rest),
        _ => Err(corrupt(what)),
    }
}

fn track_at(record: &[u8]) -> StoreResult<TrackTally> {
    let field = |from: usize, to: usize| -> StoreResult<[u8; 8]> {
        let mut buf = [0u8; 8];
        let bytes = record
            .get(from..to)
            .ok_or_else(|| corrupt("track record"))?;
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(buf)
    };
    let id = uuid::Uuid::from_slice(record.get(..16).ok_or_else(|| corrupt("track record"))?)
        .map_err(|_| corrupt("track id"))?;
    let time = |from| {
        Timestamp::from_micros(i64::from_le_bytes(field(from, from + 8)?))
            .ok_or_else(|| corrupt("track time"))
    };
    Ok(TrackTally {
        track_id: TrackId::from_uuid(id),
        counts: Counts {
            plays: u64::from_le_bytes(field(16, 20)?),
            counted: u64::from_le_bytes(field(20, 24)?),
            completed: 0,
            seconds: u64::from_le_bytes(field(24, 32)?),
        },
        first: time(32)?,
        last: time(40)?,
    })
}

fn records(blob: &[u8]) -> StoreResult<std::slice::ChunksExact<'_, u8>> {
    let body = body(blob, "tracks")?;
    if body.len() % TRACK_RECORD != 0 {
        return Err(corrupt("tracks length"));
    }
    Ok(body.chunks_exact(TRACK_RECORD))
}

pub fn decode_tracks(blob: &[u8]) -> StoreResult<Vec<TrackTally>> {
    records(blob)?.map(track_at).collect()
}

pub fn decode_sources(blob: &[u8]) -> StoreResult<Vec<SourceTally>> {
    let mut r = Reader {
        bytes: body(blob, "sources")?,
    };
    let n = r.varint()?;
    let mut sources = Vec::new();
    for _ in 0..n {
        let len = usize::try_from(r.varint()?).map_err(|_| corrupt("source length"))?;
        let source = String::from_utf8(r.take(len)?.to_vec()).map_err(|_| corrupt("source"))?;
        sources.push(SourceTally {
            source,
            counts: r.counts()?,
        });
    }
    Ok(sources)
}

pub fn decode_quarters(period: Period, blob: &[u8]) -> StoreResult<Vec<QuarterTally>> {
    let mut r = Reader {
        bytes: body(blob, "quarters")?,
    };
    let n = r.varint()?;
    let base = period.start().as_micros();
    let end = period.end();
    let mut index: i64 = -1;
    let mut quarters = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(3000));
    for _ in 0..n {
        let step = i64::try_from(r.varint()?).map_err(|_| corrupt("quarter index"))?;
        index = index
            .checked_add(step)
            .ok_or_else(|| corrupt("quarter index"))?;
        let start = index
            .checked_mul(QUARTER_HOUR_MICROS)
            .and_then(|m| m.checked_add(base))
            .and_then(Timestamp::from_micros)
            .filter(|&t| t < end)
            .ok_or_else(|| corrupt("quarter outside its period"))?;
        quarters.push(QuarterTally {
            start,
            counts: r.counts()?,
        });
    }
    Ok(quarters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::from_jiff(s.parse().expect("a timestamp"))
    }

    fn counts(plays: u64) -> Counts {
        Counts {
            plays,
            counted: plays / 2,
            completed: plays / 3,
            seconds: plays * 200,
        }
    }

    #[test]
    fn a_snapshot_reads_back_as_it_was_written() {
        let period = Period::Month(ts("2026-02-01T00:00:00Z"));
        let mut ids: Vec<TrackId> = (0..5)
            .map(|_| TrackId::from_uuid(uuid::Uuid::new_v4()))
            .collect();
        ids.sort();
        let figures = Figures {
            tracks: ids
                .iter()
                .enumerate()
                .map(|(i, &track_id)| TrackTally {
                    track_id,
                    counts: Counts {
                        completed: 0,
                        ..counts(i as u64 + 1)
                    },
                    first: ts("2026-02-03T10:00:00Z"),
                    last: ts("2026-02-27T23:59:59.999999Z"),
                })
                .collect(),
            sources: vec![
                SourceTally {
                    source: String::new(),
                    counts: counts(3),
                },
                SourceTally {
                    source: "radio ☂".into(),
                    counts: counts(700),
                },
            ],
            quarters: vec![
                QuarterTally {
                    start: ts("2026-02-01T00:00:00Z"),
                    counts: counts(1),
                },
                QuarterTally {
                    start: ts("2026-02-28T23:45:00Z"),
                    counts: counts(100_000),
                },
            ],
        };
        let blobs = encode(period, &figures);
        assert_eq!(
            decode_tracks(&blobs.tracks).expect("tracks"),
            figures.tracks
        );
        assert_eq!(
            decode_sources(&blobs.sources).expect("sources"),
            figures.sources
        );
        assert_eq!(
            decode_quarters(period, &blobs.quarters).expect("quarters"),
            figures.quarters
        );
    }

    #[test]
    fn damaged_blobs_are_refused_not_misread() {
        let period = Period::Day(ts("2026-02-01T00:00:00Z"));
        assert!(decode_tracks(&[FORMAT, 1, 2, 3]).is_err());
        assert!(decode_tracks(&[9]).is_err());
        assert!(decode_sources(&[FORMAT, 5]).is_err());
        // A quarter after the end of its day.
        let mut quarters = vec![FORMAT];
        put_varint(&mut quarters, 1);
        put_varint(&mut quarters, 97);
        put_counts(&mut quarters, &counts(1));
        assert!(decode_quarters(period, &quarters).is_err());
    }
}
