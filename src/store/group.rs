//! Group commit. Concurrent writes of plays (`RecordPlay`, `RecordPlays`, `ImportHistory`), from
//! any listeners, are written together: while one group commits, the calls that arrive queue,
//! and the next group takes all of them (up to a size) into one transaction. A lone call waits
//! for nobody; many concurrent calls share a few commits instead of paying one each. Every
//! caller is answered after the commit that holds its plays, so an acknowledged play is durable.
//!
//! The queue is bounded twice. In plays: a call that would overfill it is shed at once
//! ([`StoreError::Overloaded`]), which bounds memory. In time: a live call (`RecordPlay`,
//! `RecordPlays`) is shed at once when more live calls wait than a floor and more live plays
//! wait than the store has lately been committing in [`GroupLimits::max_wait`] ([`pace`]), so
//! that under more load than the database can take, the calls it takes are answered quickly
//! and the rest are told at once to come back, instead of every call waiting longer and longer.
//! A closed loop of callers (each waiting for its answer before it sends again) no larger than
//! the floor is never shed by it. Bulk calls (`ImportHistory` batches, whose caller bounds how
//! many it queues) wait their turn instead, and live calls go ahead of them, except that every
//! group takes the oldest bulk call, so an import is slowed by live load but never starved by
//! it ([`queues`]).
//!
//! A caller that gave up while queued (its deadline passed, so the API layer dropped the call)
//! is left out of the next group: its plays are not written. One whose group is already
//! committing may still be stored; its `request_id` makes a retry safe.
//!
//! When a group fails for any reason but the database being unreachable, each of its calls is
//! written again on its own, so one call's bad luck is nobody else's.
use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::{Instrument, Span};

use super::{StoreError, StoreResult};
use crate::domain::{NewPlay, Recorded, UserId};

mod pace;
mod queues;

use pace::Pace;
use queues::Queues;

/// One call's plays, as a group holds them.
pub struct Job {
    pub user: UserId,
    pub plays: Vec<NewPlay>,
    /// A batch of an import (its event counts the plays instead of carrying them).
    pub imported: bool,
}

/// What a backend does with a group: store every job's plays in one transaction and give each
/// job its results, in order (see `PlayStore::record_plays` for what a result says).
pub trait GroupWrite: Clone + Send + Sync + 'static {
    fn write_group(
        &self,
        jobs: &[Job],
    ) -> impl Future<Output = StoreResult<Vec<Vec<Recorded>>>> + Send;
}

/// How a store groups its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimits {
    /// Groups committing at once. One keeps a single writer busy (SQLite); two let a
    /// PostgreSQL group form and travel while the one before it commits.
    pub in_flight: usize,
    /// Plays in one group at most.
    pub group_plays: usize,
    /// A live call of more plays than this is queued as parts of at most this many, so that
    /// groups committing at once can share one large call: with two groups in flight, a
    /// `RecordPlays` of 1,000 plays is written as two statements on two connections at the
    /// same time, and answered once both have committed. `usize::MAX`: calls are never split
    /// (one writer, as SQLite has, gains nothing from it).
    pub part_plays: usize,
    /// Plays queued or committing at most; beyond it calls are shed.
    pub queue_plays: usize,
    /// The wait a live call should not exceed: live calls are shed once more live plays wait
    /// than the store lately commits in this long.
    pub max_wait: Duration,
    /// Live calls that may always wait, however slow the last commits were and however many
    /// plays they carry: a closed loop of up to this many callers (each waiting for its answer
    /// before it sends again), or a burst of retries, is never shed.
    pub live_floor_calls: u64,
}

impl GroupLimits {
    /// A few groups' worth, and room for an import's batches beside live calls.
    pub const DEFAULT_QUEUE_PLAYS: usize = 16_000;
    /// Leaves an accepted call time to commit, and a shed one time to come back, within the
    /// 100 ms a player would wait.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_millis(25);
    /// Half the server's default cap on unary calls in flight (so that this bound still acts
    /// below it), and twice the 64 calls in flight of the benchmark's closed loop.
    pub const DEFAULT_LIVE_FLOOR_CALLS: u64 = 128;
}

/// How long a call will wait in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// A player or a listener is waiting: shed at once when the live queue holds more than
    /// [`GroupLimits::max_wait`] of commits.
    Live,
    /// One of many batches of an import: waits its turn, behind live calls.
    Bulk,
}

/// Counters for the metrics.
#[derive(Debug, Default)]
pub struct GroupCounters {
    pub groups: AtomicU64,
    pub calls: AtomicU64,
    pub plays: AtomicU64,
    pub shed: AtomicU64,
    pub abandoned: AtomicU64,
    pub split: AtomicU64,
    /// Live calls, and their plays, queued and not yet in a group.
    waiting_calls: AtomicU64,
    waiting_plays: AtomicU64,
}

impl GroupCounters {
    fn waiting(&self, calls: u64, plays: u64) {
        self.waiting_calls.fetch_add(calls, Ordering::Relaxed);
        self.waiting_plays.fetch_add(plays, Ordering::Relaxed);
    }

    fn taken(&self, calls: u64, plays: u64) {
        self.waiting_calls.fetch_sub(calls, Ordering::Relaxed);
        self.waiting_plays.fetch_sub(plays, Ordering::Relaxed);
    }
}

/// What the metrics show of the group commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStatus {
    pub groups: u64,
    pub calls: u64,
    pub plays: u64,
    pub shed: u64,
    pub abandoned: u64,
    pub split: u64,
    pub queued_plays: u64,
    pub queue_plays: u64,
}

struct Queued {
    job: Job,
    patience: Patience,
    reply: oneshot::Sender<StoreResult<Vec<Recorded>>>,
    /// The caller's span: the group's work for it is traced and logged in it.
    span: Span,
    /// The job's room in the queue, given back once it is answered.
    _room: Option<OwnedSemaphorePermit>,
}

type Answer = oneshot::Receiver<StoreResult<Vec<Recorded>>>;

/// The handle calls go through; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    live: mpsc::UnboundedSender<Queued>,
    bulk: mpsc::UnboundedSender<Queued>,
    room: Arc<Semaphore>,
    limits: GroupLimits,
    counters: Arc<GroupCounters>,
    pace: Arc<Pace>,
}

impl GroupCommit {
    /// Starts the task that forms groups; it ends when the last handle is dropped.
    pub fn start<W: GroupWrite>(writer: W, limits: GroupLimits) -> Self {
        let limits = GroupLimits {
            in_flight: limits.in_flight.max(1),
            group_plays: limits.group_plays.max(1),
            part_plays: limits.part_plays.max(1),
            queue_plays: limits.queue_plays.clamp(1, Semaphore::MAX_PERMITS),
            max_wait: limits.max_wait,
            live_floor_calls: limits.live_floor_calls.max(1),
        };
        let (live, live_jobs) = mpsc::unbounded_channel();
        let (bulk, bulk_jobs) = mpsc::unbounded_channel();
        let counters = Arc::new(GroupCounters::default());
        let queues = Queues::new(live_jobs, bulk_jobs);
        let pace = Arc::new(Pace::default());
        tokio::spawn(form_groups(
            writer,
            queues,
            limits,
            counters.clone(),
            pace.clone(),
        ));
        Self {
            live,
            bulk,
            room: Arc::new(Semaphore::new(limits.queue_plays)),
            limits,
            counters,
            pace,
        }
    }

    /// Queues one call's plays and waits for the commit that holds them, or, for a live call
    /// of more than [`GroupLimits::part_plays`], the commits of its parts. Such a call may
    /// fail after some of its parts were committed; its `request_id`s make the retry safe.
    pub async fn record(
        &self,
        user: UserId,
        mut plays: Vec<NewPlay>,
        patience: Patience,
    ) -> StoreResult<Vec<Recorded>> {
        if plays.is_empty() {
            return Ok(Vec::new());
        }
        // Admitted or shed whole: a call is never half queued.
        if patience == Patience::Live && self.over_pace(plays.len()) {
            self.counters.shed.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Overloaded);
        }
        // A call larger than the whole queue waits for an empty queue rather than never fitting.
        let need = u32::try_from(plays.len().min(self.limits.queue_plays)).unwrap_or(u32::MAX);
        let Ok(mut room) = self.room.clone().try_acquire_many_owned(need) else {
            self.counters.shed.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Overloaded);
        };
        let part = match patience {
            Patience::Live => self.limits.part_plays,
            Patience::Bulk => usize::MAX,
        };
        let total = plays.len();
        let mut answers = Vec::with_capacity(total.div_ceil(part));
        while plays.len() > part {
            let rest = plays.split_off(part);
            let share = room.split(part.min(room.num_permits()));
            answers.push(self.queue(user, plays, patience, share)?);
            plays = rest;
        }
        answers.push(self.queue(user, plays, patience, Some(room))?);
        let mut recorded = Vec::with_capacity(total);
        for answer in answers {
            recorded.extend(answer.await.unwrap_or(Err(StoreError::Stopped))?);
        }
        Ok(recorded)
    }

    /// Whether more live calls wait than the floor and more live plays than the store lately
    /// commits in [`GroupLimits::max_wait`].
    fn over_pace(&self, plays: usize) -> bool {
        let calls = self.counters.waiting_calls.load(Ordering::Relaxed);
        let waiting = self.counters.waiting_plays.load(Ordering::Relaxed);
        let budget = self.pace.plays_within(self.limits.max_wait);
        calls >= self.limits.live_floor_calls && waiting + plays as u64 > budget
    }

    /// Sends one job to its queue; its answer comes on the receiver.
    fn queue(
        &self,
        user: UserId,
        plays: Vec<NewPlay>,
        patience: Patience,
        room: Option<OwnedSemaphorePermit>,
    ) -> StoreResult<Answer> {
        let (reply, answer) = oneshot::channel();
        let n = plays.len() as u64;
        let queued = Queued {
            job: Job {
                user,
                plays,
                imported: patience == Patience::Bulk,
            },
            patience,
            reply,
            span: Span::current(),
            _room: room,
        };
        let sent = match patience {
            // Counted before it is sent, so the group that takes it never counts it out first.
            Patience::Live => {
                self.counters.waiting(1, n);
                let sent = self.live.send(queued);
                if sent.is_err() {
                    self.counters.taken(1, n);
                }
                sent
            }
            Patience::Bulk => self.bulk.send(queued),
        };
        sent.map_err(|_| StoreError::Stopped)?;
        Ok(answer)
    }

    pub fn status(&self) -> GroupStatus {
        let c = &self.counters;
        let free = self.room.available_permits();
        GroupStatus {
            groups: c.groups.load(Ordering::Relaxed),
            calls: c.calls.load(Ordering::Relaxed),
            plays: c.plays.load(Ordering::Relaxed),
            shed: c.shed.load(Ordering::Relaxed),
            abandoned: c.abandoned.load(Ordering::Relaxed),
            split: c.split.load(Ordering::Relaxed),
            queued_plays: (self.limits.queue_plays.saturating_sub(free)) as u64,
            queue_plays: self.limits.queue_plays as u64,
        }
    }
}

async fn form_groups<W: GroupWrite>(
    writer: W,
    mut queues: Queues,
    limits: GroupLimits,
    counters: Arc<GroupCounters>,
    pace: Arc<Pace>,
) {
    let slots = Arc::new(Semaphore::new(limits.in_flight));
    loop {
        // Waiting for a slot first is what makes groups: calls pile up while every slot commits.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // With slots free beside this one, the live plays waiting are shared out between
        // them, so that the parts of a large call commit side by side instead of in one group.
        let limit = || {
            let free = slots.available_permits() + 1;
            let waiting = counters.waiting_plays.load(Ordering::Relaxed) as usize;
            if free > 1 && waiting > limits.part_plays {
                waiting
                    .div_ceil(free)
                    .max(limits.part_plays)
                    .min(limits.group_plays)
            } else {
                limits.group_plays
            }
        };
        let Some(mut group) = queues.group(limit).await else {
            return;
        };
        let (calls, plays) = group
            .iter()
            .filter(|q| q.patience == Patience::Live)
            .fold((0, 0), |(c, p), q| (c + 1, p + q.job.plays.len() as u64));
        counters.taken(calls, plays);
        // A caller that is gone (its deadline passed while queued) is not written for.
        let before = group.len();
        group.retain(|q| !q.reply.is_closed());
        let abandoned = (before - group.len()) as u64;
        counters.abandoned.fetch_add(abandoned, Ordering::Relaxed);
        if group.is_empty() {
            continue;
        }
        let (writer, counters, pace) = (writer.clone(), counters.clone(), pace.clone());
        let plays = group.iter().map(|q| q.job.plays.len() as u64).sum();
        let span = group_span(&group, plays);
        tokio::spawn(
            async move {
                commit(&writer, group, &counters).await;
                pace.committed(plays);
                drop(slot);
            }
            .instrument(span),
        );
    }
}

/// The span of a group's commit, for tracing: in the trace of its oldest call (the one it was
/// formed for), linked both ways with the others', so each call's trace leads to the commit
/// that holds its plays. Disabled, like the store's spans, unless spans are exported.
fn group_span(group: &[Queued], plays: u64) -> Span {
    let Some(first) = group.first() else {
        return Span::none();
    };
    let span = tracing::debug_span!(target: "library_service::store", parent: &first.span,
        "write_group", calls = group.len(), plays);
    for other in &group[1..] {
        span.follows_from(&other.span);
        other.span.follows_from(&span);
    }
    span
}

async fn commit<W: GroupWrite>(writer: &W, group: Vec<Queued>, counters: &GroupCounters) {
    let (jobs, replies): (Vec<Job>, Vec<_>) = group
        .into_iter()
        .map(|q| (q.job, (q.reply, q.span, q._room)))
        .unzip();
    counters.groups.fetch_add(1, Ordering::Relaxed);
    counters
        .calls
        .fetch_add(jobs.len() as u64, Ordering::Relaxed);
    counters.plays.fetch_add(
        jobs.iter().map(|j| j.plays.len() as u64).sum(),
        Ordering::Relaxed,
    );
    match writer.write_group(&jobs).await {
        Ok(results) if results.len() == jobs.len() => {
            for ((reply, _span, _room), result) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok(result));
            }
        }
        Ok(_) => {
            for (reply, _span, _room) in replies {
                let _ = reply.send(Err(StoreError::Corrupt(
                    "a group's results do not match its calls".into(),
                )));
            }
        }
        // Nothing was written, and nothing would be now: every caller gets the same answer.
        Err(e) if e.is_unavailable() || jobs.len() == 1 => {
            let e = Arc::new(e);
            for (reply, _span, _room) in replies {
                let _ = reply.send(Err(StoreError::Shared(e.clone())));
            }
        }
        // Logged in each call's span, so that every call's trace id leads to this line.
        Err(e) => {
            counters.split.fetch_add(1, Ordering::Relaxed);
            let (error, calls) = (crate::error::chain(&e), jobs.len());
            for (job, (reply, span, _room)) in jobs.into_iter().zip(replies) {
                span.in_scope(|| {
                    tracing::warn!(%error, calls,
                        "the group holding this call failed; writing the call on its own");
                });
                let result = writer
                    .write_group(std::slice::from_ref(&job))
                    .instrument(span)
                    .await
                    .and_then(|mut r| {
                        r.pop()
                            .ok_or_else(|| StoreError::Corrupt("a call without results".into()))
                    });
                let _ = reply.send(result);
            }
        }
    }
}

#[cfg(test)]
mod tests;
