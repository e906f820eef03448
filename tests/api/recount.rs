//! The statistics recounted from a listed history, straight from their definitions (the issue's
//! words, jiff's calendar), to compare with what the service answers.
use std::collections::{BTreeSet, HashMap};

use jiff::{Span, ZonedDateTime, civil::Date, tz::TimeZone};
use library_service::pb;

/// A play as the recount needs it.
#[derive(Debug, Clone)]
pub struct P {
    pub track: String,
    pub at: i64,
    pub seconds: u64,
    pub completed: bool,
    pub counted: bool,
    pub source: String,
}

impl P {
    pub fn of(play: &pb::Play) -> Self {
        Self {
            track: play.track_id.clone(),
            at: micros(&play.played_at),
            seconds: u64::from(play.played_for_seconds),
            completed: play.completed,
            counted: play.counted,
            source: play.source.clone(),
        }
    }
}

pub fn micros(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("a timestamp");
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1000
}

pub fn proto_time(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// The server's default rule, as the issue states it.
pub fn counts(played: u32, completed: bool, duration: Option<u32>) -> bool {
    let needed = duration.map_or(240.0, |d| f64::min(240.0, f64::from(d) / 2.0));
    completed || (f64::from(played) >= needed && played >= 30)
}

pub fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).expect("a zone")
}

fn zoned(at: i64, tz: &TimeZone) -> ZonedDateTime {
    jiff::Timestamp::from_microsecond(at)
        .expect("in range")
        .to_zoned_datetime(tz.clone())
}

fn date_of(at: i64, tz: &TimeZone) -> Date {
    zoned(at, tz).date()
}

/// Local midnight (or the first instant of the day, where midnight is skipped), in micros.
pub fn start_of(day: Date, tz: &TimeZone) -> i64 {
    day.to_zoned_datetime(tz.clone())
        .expect("a day")
        .start_of_day()
        .expect("a day")
        .timestamp()
        .as_microsecond()
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub plays: u64,
    pub counted: u64,
    pub seconds: u64,
}

impl Tally {
    fn add(&mut self, p: &P) {
        self.plays += 1;
        self.counted += u64::from(p.counted);
        self.seconds += p.seconds;
    }
}

/// A range of `[since, until)` in micros; `None` for an open end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Range {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl Range {
    pub fn holds(&self, at: i64) -> bool {
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at < u)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Day,
    Week,
    Month,
    Year,
}

impl Bucket {
    pub fn proto(self) -> i32 {
        (match self {
            Self::Day => pb::ActivityBucket::Day,
            Self::Week => pb::ActivityBucket::Week,
            Self::Month => pb::ActivityBucket::Month,
            Self::Year => pb::ActivityBucket::Year,
        }) as i32
    }

    pub fn start(self, day: Date) -> Date {
        match self {
            Self::Day => day,
            Self::Week => day - Span::new().days(i64::from(day.weekday().to_monday_zero_offset())),
            Self::Month => day.first_of_month(),
            Self::Year => day.first_of_year(),
        }
    }

    fn step(self, n: i64) -> Span {
        match self {
            Self::Day => Span::new().days(n),
            Self::Week => Span::new().weeks(n),
            Self::Month => Span::new().months(n),
            Self::Year => Span::new().years(n),
        }
    }
}

/// Tracks ranked as every ranking is: counted plays, plays, seconds (all most first), track ID.
pub fn ranked(plays: &[&P]) -> Vec<(String, Tally)> {
    let mut per: HashMap<&str, Tally> = HashMap::new();
    for p in plays {
        per.entry(&p.track).or_default().add(p);
    }
    let mut out: Vec<(String, Tally)> = per.into_iter().map(|(t, n)| (t.to_string(), n)).collect();
    out.sort_by(|a, b| {
        (b.1.counted, b.1.plays, b.1.seconds)
            .cmp(&(a.1.counted, a.1.plays, a.1.seconds))
            .then(a.0.cmp(&b.0))
    });
    out
}

/// Checks every figure of a `GetLibraryStats` answer for `range` in `tz`, against `history`
/// (all the listener's plays).
pub fn check_stats(
    stats: &pb::LibraryStats,
    history: &[P],
    range: Range,
    bucket: Bucket,
    tz: &TimeZone,
    context: &str,
) {
    let now = stats
        .computed_at
        .as_ref()
        .map(|_| micros(&stats.computed_at))
        .expect("computed_at");
    let plays: Vec<&P> = history.iter().filter(|p| range.holds(p.at)).collect();
    let mut total = Tally::default();
    for p in &plays {
        total.add(p);
    }
    let completed = plays.iter().filter(|p| p.completed).count() as u64;
    let tracks: BTreeSet<&str> = plays.iter().map(|p| p.track.as_str()).collect();
    assert_eq!(
        (
            stats.total_plays,
            stats.counted_plays,
            stats.skipped_plays,
            stats.completed_plays,
            stats.listening_seconds,
            stats.unique_tracks,
        ),
        (
            total.plays,
            total.counted,
            total.plays - total.counted,
            completed,
            total.seconds,
            tracks.len() as u64
        ),
        "{context}: totals"
    );
    let first = plays.iter().map(|p| p.at).min();
    let last = plays.iter().map(|p| p.at).max();
    let got_first = stats
        .first_played_at
        .as_ref()
        .map(|_| micros(&stats.first_played_at));
    let got_last = stats
        .last_played_at
        .as_ref()
        .map(|_| micros(&stats.last_played_at));
    assert_eq!(
        (got_first, got_last),
        (first, last),
        "{context}: first and last"
    );

    let top: Vec<(String, Tally)> = ranked(&plays);
    let got: Vec<(String, Tally)> = stats
        .top_tracks
        .iter()
        .map(|t| {
            assert_eq!(
                t.skipped_plays,
                t.plays - t.counted_plays,
                "{context}: skipped"
            );
            (
                t.track_id.clone(),
                Tally {
                    plays: t.plays,
                    counted: t.counted_plays,
                    seconds: t.listening_seconds,
                },
            )
        })
        .collect();
    assert_eq!(got, top, "{context}: top tracks");

    let mut per_source: HashMap<&str, Tally> = HashMap::new();
    for p in &plays {
        per_source.entry(&p.source).or_default().add(p);
    }
    let mut sources: Vec<(String, Tally)> = per_source
        .into_iter()
        .map(|(s, n)| (s.to_string(), n))
        .collect();
    sources.sort_by(|a, b| b.1.plays.cmp(&a.1.plays).then(a.0.cmp(&b.0)));
    let got: Vec<(String, Tally)> = stats
        .plays_by_source
        .iter()
        .map(|s| {
            (
                s.source.clone(),
                Tally {
                    plays: s.plays,
                    counted: s.counted_plays,
                    seconds: s.listening_seconds,
                },
            )
        })
        .collect();
    assert_eq!(got, sources, "{context}: sources");

    let series = expected_series(&plays, history, range, bucket, now, tz);
    let got: Vec<(String, Tally)> = stats
        .activity
        .iter()
        .map(|b| {
            assert_eq!(
                b.skipped_plays,
                b.plays - b.counted_plays,
                "{context}: skipped"
            );
            (
                b.start_date.clone(),
                Tally {
                    plays: b.plays,
                    counted: b.counted_plays,
                    seconds: b.listening_seconds,
                },
            )
        })
        .collect();
    assert_eq!(got, series, "{context}: {bucket:?} activity");
    let days = expected_series(&plays, history, range, Bucket::Day, now, tz);
    let got: Vec<(String, Tally)> = stats
        .daily_activity
        .iter()
        .map(|d| {
            (
                d.date.clone(),
                Tally {
                    plays: d.plays,
                    counted: d.counted_plays,
                    seconds: d.listening_seconds,
                },
            )
        })
        .collect();
    assert_eq!(got, days, "{context}: daily activity");

    let mut cells = [[Tally::default(); 24]; 7];
    for p in &plays {
        let local = zoned(p.at, tz);
        let weekday = local.weekday().to_monday_zero_offset() as usize;
        cells[weekday][local.hour() as usize].add(p);
    }
    assert_eq!(stats.hourly_activity.len(), 168, "{context}: 168 cells");
    for (i, cell) in stats.hourly_activity.iter().enumerate() {
        let (weekday, hour) = (i / 24, i % 24);
        assert_eq!(
            (cell.weekday as usize, cell.hour as usize),
            (weekday + 1, hour),
            "{context}: cell order"
        );
        let want = cells[weekday][hour];
        assert_eq!(
            (cell.plays, cell.counted_plays, cell.listening_seconds),
            (want.plays, want.counted, want.seconds),
            "{context}: hourly cell {weekday}/{hour}"
        );
        assert_eq!(cell.skipped_plays, cell.plays - cell.counted_plays);
    }

    let (current, longest) = expected_streaks(history, now, tz);
    let streaks = stats.streaks.as_ref().expect("streaks");
    let shown = |s: &Option<pb::Streak>| {
        s.as_ref()
            .filter(|s| s.days > 0)
            .map(|s| (s.days, s.first_date.clone(), s.last_date.clone()))
    };
    assert_eq!(
        shown(&streaks.current),
        current,
        "{context}: current streak"
    );
    assert_eq!(
        shown(&streaks.longest),
        longest,
        "{context}: longest streak"
    );
}

/// The buckets of the series, each with the range's plays of its local days.
fn expected_series(
    plays: &[&P],
    history: &[P],
    range: Range,
    bucket: Bucket,
    now: i64,
    tz: &TimeZone,
) -> Vec<(String, Tally)> {
    let end = range.until.unwrap_or(now);
    let last = bucket.start(date_of(end - 1, tz));
    let first = match (range.since, bucket) {
        (Some(since), _) => bucket.start(date_of(since, tz)),
        (None, Bucket::Day) => last - bucket.step(29),
        (None, Bucket::Week) => last - bucket.step(25),
        (None, Bucket::Month) => last - bucket.step(23),
        (None, Bucket::Year) => {
            let first_play = history.iter().map(|p| p.at).min().unwrap_or(end - 1);
            bucket.start(date_of(first_play, tz))
        }
    };
    let first = first.max(last - bucket.step(365));
    let mut starts = Vec::new();
    let mut day = first;
    while day <= last {
        starts.push(day);
        day += bucket.step(1);
    }
    let mut tallies = vec![Tally::default(); starts.len()];
    for p in plays {
        let day = date_of(p.at, tz);
        let i = starts.partition_point(|s| *s <= day);
        if i > 0 && day < starts[i - 1] + bucket.step(1) {
            tallies[i - 1].add(p);
        }
    }
    starts
        .into_iter()
        .map(|d| d.to_string())
        .zip(tallies)
        .collect()
}

type Run = Option<(u32, String, String)>;

fn expected_streaks(history: &[P], now: i64, tz: &TimeZone) -> (Run, Run) {
    let days: BTreeSet<Date> = history
        .iter()
        .filter(|p| p.counted)
        .map(|p| date_of(p.at, tz))
        .collect();
    let mut runs: Vec<(Date, Date)> = Vec::new();
    for day in days {
        match runs.last_mut() {
            Some((_, last)) if *last + Span::new().days(1) == day => *last = day,
            _ => runs.push((day, day)),
        }
    }
    let length = |(first, last): (Date, Date)| (last - first).get_days() as u32 + 1;
    let shown = |run: (Date, Date)| (length(run), run.0.to_string(), run.1.to_string());
    let today = date_of(now, tz);
    let current = runs
        .last()
        .copied()
        .filter(|&(_, last)| last >= today - Span::new().days(1))
        .map(shown);
    let mut longest: Option<(Date, Date)> = None;
    for &run in &runs {
        if longest.is_none_or(|l| length(run) >= length(l)) {
            longest = Some(run);
        }
    }
    (current, longest.map(shown))
}

/// A calendar period `ago` periods back from the one holding `now`, in micros, and the one before.
pub fn calendar_period(bucket: Bucket, ago: i64, now: i64, tz: &TimeZone) -> (Range, Range) {
    let current = bucket.start(date_of(now, tz));
    let start = current - bucket.step(ago);
    let previous = start - bucket.step(1);
    let end = start + bucket.step(1);
    (
        Range {
            since: Some(start_of(start, tz)),
            until: Some(start_of(end, tz)),
        },
        Range {
            since: Some(start_of(previous, tz)),
            until: Some(start_of(start, tz)),
        },
    )
}

/// The full ranking of a period as GetTopTracks must give it: track, rank, previous rank, tally,
/// new in the period.
pub fn expected_top(
    history: &[P],
    period: Range,
    previous: Range,
) -> Vec<(String, u32, u32, Tally, bool)> {
    let of = |r: Range| -> Vec<&P> { history.iter().filter(|p| r.holds(p.at)).collect() };
    let before: HashMap<String, u32> = ranked(&of(previous))
        .into_iter()
        .enumerate()
        .map(|(i, (t, _))| (t, i as u32 + 1))
        .collect();
    let mut first_ever: HashMap<&str, i64> = HashMap::new();
    for p in history {
        let first = first_ever.entry(&p.track).or_insert(p.at);
        *first = (*first).min(p.at);
    }
    ranked(&of(period))
        .into_iter()
        .enumerate()
        .map(|(i, (track, tally))| {
            let previous_rank = before.get(&track).copied().unwrap_or(0);
            let new = period.holds(first_ever[track.as_str()]);
            (track, i as u32 + 1, previous_rank, tally, new)
        })
        .collect()
}

/// One GetTrackPlayCounts entry as it must be: tally, first and last play in the range.
pub fn expected_count(
    history: &[P],
    track: &str,
    range: Range,
) -> (Tally, Option<i64>, Option<i64>) {
    let mut tally = Tally::default();
    let (mut first, mut last) = (None::<i64>, None::<i64>);
    for p in history
        .iter()
        .filter(|p| p.track == track && range.holds(p.at))
    {
        tally.add(p);
        first = Some(first.map_or(p.at, |f| f.min(p.at)));
        last = Some(last.map_or(p.at, |l| l.max(p.at)));
    }
    (tally, first, last)
}
