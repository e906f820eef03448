//! Reading an export file back (`library-service import FILE`). The file is read twice: once
//! to check all of it (header, every line, the trailer and its counts), so a truncated or damaged
//! file is refused with nothing written; then to store it, plays through the same store path as
//! ImportHistory (batches of at most 1000, each play keyed by its exported id) and likes with
//! their original times and notes. Both steps are idempotent, so importing again stores nothing
//! twice. Memory stays that of a batch whatever the file's size.
use std::path::Path;

use anyhow::{Context, bail};
use tokio::{
    fs::File,
    io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader},
    task::JoinSet,
};

use super::file::{HeaderLine, Line, TrailerLine};
use crate::{
    domain::{LikedTrack, MAX_PLAYS_PER_CALL, NewPlay, Recorded, Timestamp, UserId},
    store::{Store, StoreResult},
};

/// No valid line comes near this (notes are at most 1000 characters); a longer one means the
/// file is not an export, and reading it whole could exhaust memory.
const MAX_LINE_BYTES: u64 = 64 * 1024;
/// Likes restored per transaction.
const LIKES_BATCH: usize = 1000;
/// Play batches written at once: the group commit overlaps them, as it does ImportHistory's.
const BATCHES_IN_FLIGHT: usize = 4;

/// What a checked file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub user: UserId,
    pub plays: u64,
    pub likes: u64,
}

/// What an import stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    pub plays_imported: u64,
    /// Plays already in the library (an earlier import of the same file, say).
    pub plays_duplicate: u64,
    pub likes_restored: u64,
    /// Likes of tracks the listener already likes, left as they are.
    pub likes_present: u64,
}

/// The lines of a file, numbered from 1, blank lines skipped, each at most [`MAX_LINE_BYTES`].
struct Lines<R> {
    reader: R,
    number: u64,
    buf: String,
}

impl<R: AsyncBufRead + Unpin> Lines<R> {
    async fn next(&mut self) -> anyhow::Result<Option<(u64, Line)>> {
        loop {
            self.buf.clear();
            let read = (&mut self.reader)
                .take(MAX_LINE_BYTES + 1)
                .read_line(&mut self.buf)
                .await
                .with_context(|| format!("reading line {}", self.number + 1))?;
            if read == 0 {
                return Ok(None);
            }
            self.number += 1;
            if read as u64 > MAX_LINE_BYTES {
                bail!(
                    "line {}: longer than {MAX_LINE_BYTES} bytes: not an export line",
                    self.number
                );
            }
            if self.buf.trim().is_empty() {
                continue;
            }
            let line = serde_json::from_str(&self.buf)
                .with_context(|| format!("line {}: not an export line", self.number))?;
            return Ok(Some((self.number, line)));
        }
    }
}

async fn open(path: &Path) -> anyhow::Result<Lines<BufReader<File>>> {
    let file = File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    Ok(Lines {
        reader: BufReader::with_capacity(256 * 1024, file),
        number: 0,
        buf: String::new(),
    })
}

/// The file's header: its first line.
async fn header<R: AsyncBufRead + Unpin>(lines: &mut Lines<R>) -> anyhow::Result<UserId> {
    match lines.next().await? {
        Some((_, Line::Header(h))) => {
            HeaderLine::check(&h).map_err(|why| anyhow::anyhow!("line 1: {why}"))
        }
        Some((n, _)) => bail!("line {n}: an export starts with its header"),
        None => bail!("the file is empty"),
    }
}

/// Reads the whole file and checks it, storing nothing.
pub async fn check(path: &Path) -> anyhow::Result<Checked> {
    let mut lines = open(path).await?;
    let user = header(&mut lines).await?;
    let now = Timestamp::now();
    let (mut plays, mut likes) = (0u64, 0u64);
    let trailer = loop {
        let Some((n, line)) = lines.next().await? else {
            bail!(
                "the file ends after line {} without its trailer: it is incomplete",
                lines.number
            );
        };
        match line {
            Line::Play(p) if likes == 0 => {
                p.to_new_play(now)
                    .map_err(|why| anyhow::anyhow!("line {n}: play: {why}"))?;
                plays += 1;
            }
            Line::Play(_) => bail!("line {n}: a play after the likes"),
            Line::Like(l) => {
                l.to_liked(user)
                    .map_err(|why| anyhow::anyhow!("line {n}: like: {why}"))?;
                likes += 1;
            }
            Line::Header(_) => bail!("line {n}: a second header"),
            Line::Trailer(t) => break t,
        }
    };
    let counted = TrailerLine {
        play_count: plays,
        like_count: likes,
    };
    if trailer != counted {
        bail!(
            "the trailer counts {} plays and {} likes, the file holds {plays} and {likes}",
            trailer.play_count,
            trailer.like_count
        );
    }
    if let Some((n, _)) = lines.next().await? {
        bail!("line {n}: more after the trailer");
    }
    Ok(Checked { user, plays, likes })
}

/// Checks the file, then stores it into the library its header names.
pub async fn import<S: Store>(store: &S, path: &Path) -> anyhow::Result<(Checked, Imported)> {
    let checked = check(path).await.with_context(|| {
        format!(
            "{} is not a complete library export; nothing was imported",
            path.display()
        )
    })?;
    let user = checked.user;
    let mut lines = open(path).await?;
    header(&mut lines).await?;
    let now = Timestamp::now();
    let mut done = Imported::default();
    let mut plays: Vec<NewPlay> = Vec::with_capacity(MAX_PLAYS_PER_CALL);
    let mut likes: Vec<LikedTrack> = Vec::with_capacity(LIKES_BATCH);
    let mut writing = JoinSet::new();
    // The check above proved every line; a file changed since is caught again here.
    while let Some((n, line)) = lines.next().await? {
        match line {
            Line::Play(p) => {
                plays.push(
                    p.to_new_play(now)
                        .map_err(|why| anyhow::anyhow!("line {n}: play: {why}"))?,
                );
                if plays.len() == MAX_PLAYS_PER_CALL {
                    let batch =
                        std::mem::replace(&mut plays, Vec::with_capacity(MAX_PLAYS_PER_CALL));
                    if writing.len() >= BATCHES_IN_FLIGHT
                        && let Some(written) = writing.join_next().await
                    {
                        tally(written, &mut done)?;
                    }
                    let store = store.clone();
                    writing.spawn(async move { store.import_plays(user, batch).await });
                }
            }
            Line::Like(l) => {
                likes.push(
                    l.to_liked(user)
                        .map_err(|why| anyhow::anyhow!("line {n}: like: {why}"))?,
                );
                if likes.len() == LIKES_BATCH {
                    restore(store, user, &mut likes, &mut done).await?;
                }
            }
            Line::Header(_) | Line::Trailer(_) => {}
        }
    }
    if !plays.is_empty() {
        let store = store.clone();
        writing.spawn(async move { store.import_plays(user, plays).await });
    }
    while let Some(written) = writing.join_next().await {
        tally(written, &mut done)?;
    }
    restore(store, user, &mut likes, &mut done).await?;
    Ok((checked, done))
}

fn tally(
    written: Result<StoreResult<Vec<Recorded>>, tokio::task::JoinError>,
    done: &mut Imported,
) -> anyhow::Result<()> {
    let recorded = written
        .context("an import batch failed")?
        .context("storing plays")?;
    let fresh = recorded.iter().filter(|r| !r.duplicate).count() as u64;
    done.plays_imported += fresh;
    done.plays_duplicate += recorded.len() as u64 - fresh;
    Ok(())
}

async fn restore<S: Store>(
    store: &S,
    user: UserId,
    likes: &mut Vec<LikedTrack>,
    done: &mut Imported,
) -> anyhow::Result<()> {
    if likes.is_empty() {
        return Ok(());
    }
    let added = store
        .restore_likes(user, likes)
        .await
        .context("restoring likes")?;
    done.likes_restored += added;
    done.likes_present += likes.len() as u64 - added;
    likes.clear();
    Ok(())
}
