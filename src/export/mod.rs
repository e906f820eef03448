//! A listener's whole library as one versioned export (data portability, subject access): a
//! header, every play oldest first, every like most recent first, and a trailer with the counts.
//! [`Export`] reads it from the store in keyset pages, so a library of any size leaves in the
//! memory of a page. The gRPC stream (`ExportLibrary`, admin `ExportUserData`) and the CLI's
//! NDJSON file ([`file`]) carry the same parts in the same order; docs/EXPORT.md is the format's
//! description, and [`import`] reads a file back.
use crate::{
    domain::{
        HistoryOrder, HistoryQuery, LikePosition, LikedTrack, Play, PlayPosition, Timestamp, UserId,
    },
    store::{LikeStore, PlayStore, StoreResult},
};

pub mod file;
pub mod import;

/// What every export says it is, in its header.
pub const FORMAT: &str = "audiohm.library.export";
/// The format's version; a change an older reader could misread gets a new one.
pub const VERSION: u32 = 1;

/// Plays read per keyset page, and sent per chunk of the gRPC stream: large enough to amortise
/// the round trip and the per-message cost, small enough (about 300 KB encoded) that a page is
/// never a memory concern.
pub const PLAYS_PAGE: u32 = 2000;
/// Likes read per page (and per chunk): a listener has far fewer likes than plays.
pub const LIKES_PAGE: u32 = 1000;

/// One part of an export, in the order [`Export`] yields them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Header {
        user: UserId,
        exported_at: Timestamp,
    },
    /// A page of plays, oldest first; never empty.
    Plays(Vec<Play>),
    /// A page of likes, most recent first; never empty.
    Likes(Vec<LikedTrack>),
    Trailer {
        plays: u64,
        likes: u64,
    },
}

enum Next {
    Header,
    Plays(Option<PlayPosition>),
    Likes(Option<LikePosition>),
    Trailer,
    Done,
}

/// Reads one listener's export page by page. Each page is its own short read, so no connection
/// or snapshot is held between pages: a play recorded while the export runs is in it if it sorts
/// after the page being read, and the trailer counts what was actually exported.
pub struct Export<S> {
    store: S,
    user: UserId,
    exported_at: Timestamp,
    next: Next,
    plays: u64,
    likes: u64,
}

impl<S: PlayStore + LikeStore> Export<S> {
    pub fn new(store: S, user: UserId, exported_at: Timestamp) -> Self {
        Self {
            store,
            user,
            exported_at,
            next: Next::Header,
            plays: 0,
            likes: 0,
        }
    }

    /// The next part, or `None` once the trailer has been given.
    pub async fn next(&mut self) -> StoreResult<Option<Part>> {
        loop {
            match self.next {
                Next::Header => {
                    self.next = Next::Plays(None);
                    return Ok(Some(Part::Header {
                        user: self.user,
                        exported_at: self.exported_at,
                    }));
                }
                Next::Plays(after) => {
                    let query = HistoryQuery {
                        order: HistoryOrder::OldestFirst,
                        ..HistoryQuery::default()
                    };
                    let page = self
                        .store
                        .history_page(self.user, &query, after, PLAYS_PAGE)
                        .await?;
                    self.next = match page.last() {
                        Some(last) if page.len() == PLAYS_PAGE as usize => {
                            Next::Plays(Some(last.position()))
                        }
                        _ => Next::Likes(None),
                    };
                    if !page.is_empty() {
                        self.plays += page.len() as u64;
                        return Ok(Some(Part::Plays(page)));
                    }
                }
                Next::Likes(after) => {
                    let page = self
                        .store
                        .liked_tracks_page(self.user, after, LIKES_PAGE)
                        .await?
                        .tracks;
                    self.next = match page.last() {
                        Some(last) if page.len() == LIKES_PAGE as usize => {
                            Next::Likes(Some(last.position()))
                        }
                        _ => Next::Trailer,
                    };
                    if !page.is_empty() {
                        self.likes += page.len() as u64;
                        return Ok(Some(Part::Likes(page)));
                    }
                }
                Next::Trailer => {
                    self.next = Next::Done;
                    return Ok(Some(Part::Trailer {
                        plays: self.plays,
                        likes: self.likes,
                    }));
                }
                Next::Done => return Ok(None),
            }
        }
    }
}
