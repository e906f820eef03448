//! Ending long-lived calls at shutdown. On SIGTERM unary calls simply finish; streams could run
//! for minutes, so once the grace period is over they end with UNAVAILABLE, which tells the
//! client to retry elsewhere (a history listing resumes from its last cursor, an import re-runs
//! idempotently). A stream that just stopped would look complete to the client.
use std::{
    pin::Pin,
    task::{Context, Poll},
};

use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tonic::Status;

use super::limits::StreamGuard;

/// Set once, when the grace period is over.
pub struct DrainTrigger(watch::Sender<bool>);

impl DrainTrigger {
    pub fn end_streams(&self) {
        let _ = self.0.send(true);
    }
}

#[derive(Clone)]
pub struct Drain(watch::Receiver<bool>);

impl Drain {
    pub fn new() -> (DrainTrigger, Drain) {
        let (tx, rx) = watch::channel(false);
        (DrainTrigger(tx), Drain(rx))
    }

    /// Completes when streams must end; never, if the trigger is gone without firing.
    pub async fn ended(mut self) {
        if self.0.wait_for(|ended| *ended).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

pub fn shutting_down() -> Status {
    Status::unavailable(
        "the server is shutting down; retry (a listing resumes from its last cursor)",
    )
}

type Ended = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A server stream fed by a producer task through a bounded channel of pages (one send per page,
/// not per entry), which ends with UNAVAILABLE as soon as the drain fires, even when the client
/// has stopped reading.
pub struct DrainingStream<T> {
    rx: mpsc::Receiver<Result<Vec<T>, Status>>,
    page: std::vec::IntoIter<T>,
    ended: Option<Ended>,
    /// What the client hears when the producer stops: nothing more for a listing (it ended
    /// at its last page), a status for a stream that never ends on its own.
    closed: Option<Status>,
    /// The caller's open-stream slot, held until the client has read (or dropped) the stream.
    _slot: StreamGuard,
}

impl<T> DrainingStream<T> {
    pub fn new(
        rx: mpsc::Receiver<Result<Vec<T>, Status>>,
        drain: Drain,
        slot: StreamGuard,
    ) -> Self {
        Self {
            rx,
            page: Vec::new().into_iter(),
            ended: Some(Box::pin(drain.ended())),
            closed: None,
            _slot: slot,
        }
    }

    /// Ends with `status` instead of OK when the producer stops.
    pub fn closing_with(mut self, status: Status) -> Self {
        self.closed = Some(status);
        self
    }
}

impl<T: Unpin> Stream for DrainingStream<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(ended) = self.ended.as_mut() {
            if ended.as_mut().poll(cx).is_ready() {
                self.ended = None;
                self.rx.close();
                return Poll::Ready(Some(Err(shutting_down())));
            }
        } else {
            return Poll::Ready(None);
        }
        loop {
            if let Some(entry) = self.page.next() {
                return Poll::Ready(Some(Ok(entry)));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(page))) => self.page = page.into_iter(),
                Poll::Ready(Some(Err(status))) => return Poll::Ready(Some(Err(status))),
                Poll::Ready(None) => return Poll::Ready(self.closed.take().map(Err)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
