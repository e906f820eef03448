//! What one call carries between the outer layer that observes it and the interceptor that
//! authenticates it: the layer runs first and knows the RPC, the arrival time and the call's
//! span; the interceptor learns the caller and the rate-limit decision, which the layer then logs
//! and returns as `ratelimit-*` metadata.
use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use super::{limits::RateInfo, rpc::Rpc};

#[derive(Default)]
struct Learned {
    caller: Option<String>,
    rate: Option<RateInfo>,
}

#[derive(Clone)]
pub struct CallContext {
    /// `None` for a path this server does not serve.
    pub rpc: Option<Rpc>,
    pub arrived: Instant,
    /// The call's span: every log line of the call is inside it.
    pub span: tracing::Span,
    learned: Arc<Mutex<Learned>>,
}

impl CallContext {
    pub fn new(rpc: Option<Rpc>, span: tracing::Span) -> Self {
        Self {
            rpc,
            arrived: Instant::now(),
            span,
            learned: Arc::default(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Learned) -> T) -> T {
        let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut learned)
    }

    /// Records the verified subject, also on the call's span.
    pub fn set_caller(&self, subject: &str) {
        self.span.record("caller", subject);
        self.with(|l| l.caller = Some(subject.to_string()));
    }

    /// The verified subject, or "-" before (or without) authentication.
    pub fn caller(&self) -> String {
        self.with(|l| l.caller.clone())
            .unwrap_or_else(|| "-".into())
    }

    pub fn set_rate(&self, rate: RateInfo) {
        self.with(|l| l.rate = Some(rate));
    }

    pub fn rate(&self) -> Option<RateInfo> {
        self.with(|l| l.rate)
    }
}
