//! The two queues a group is formed from: live calls first, bulk ones after, and the oldest
//! bulk call in every group so that an import is never starved.
use tokio::sync::mpsc;

use super::Queued;

/// The two queues, and a call taken from one that did not fit in the group it was taken for.
pub(super) struct Queues {
    live: mpsc::UnboundedReceiver<Queued>,
    bulk: mpsc::UnboundedReceiver<Queued>,
    held: Option<Queued>,
}

impl Queues {
    pub(super) fn new(
        live: mpsc::UnboundedReceiver<Queued>,
        bulk: mpsc::UnboundedReceiver<Queued>,
    ) -> Self {
        Self {
            live,
            bulk,
            held: None,
        }
    }

    /// The next call, waiting for one; `None` once every handle is gone.
    async fn first(&mut self) -> Option<Queued> {
        if let Some(job) = self.held.take() {
            return Some(job);
        }
        if let Ok(job) = self.bulk.try_recv() {
            return Some(job);
        }
        tokio::select! {
            biased;
            Some(job) = self.live.recv() => Some(job),
            Some(job) = self.bulk.recv() => Some(job),
            else => None,
        }
    }

    /// Adds queued calls from `from` to the group while they fit; false once one did not.
    fn fill(
        from: &mut mpsc::UnboundedReceiver<Queued>,
        held: &mut Option<Queued>,
        group: &mut Vec<Queued>,
        plays: &mut usize,
        limit: usize,
    ) -> bool {
        while *plays < limit {
            match from.try_recv() {
                Ok(job) if *plays + job.job.plays.len() > limit => {
                    *held = Some(job);
                    return false;
                }
                Ok(job) => {
                    *plays += job.job.plays.len();
                    group.push(job);
                }
                Err(_) => return true,
            }
        }
        true
    }

    /// A group: the first call (the oldest bulk one, when any waits), then live calls, then
    /// bulk ones, up to `limit()` plays, asked once the first call is there.
    pub(super) async fn group(&mut self, limit: impl FnOnce() -> usize) -> Option<Vec<Queued>> {
        let first = self.first().await?;
        let limit = limit();
        let mut plays = first.job.plays.len();
        let mut group = vec![first];
        if Self::fill(
            &mut self.live,
            &mut self.held,
            &mut group,
            &mut plays,
            limit,
        ) {
            Self::fill(
                &mut self.bulk,
                &mut self.held,
                &mut group,
                &mut plays,
                limit,
            );
        }
        Some(group)
    }
}
