//! What one call carries between the outer layer that observes it and the interceptor that
//! authenticates it: the layer runs first and knows the path and arrival time; the interceptor
//! learns the caller and the rate-limit decision, which the layer then logs and returns as
//! `ratelimit-*` metadata.
use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use super::limits::RateInfo;

#[derive(Default)]
struct Learned {
    caller: Option<String>,
    rate: Option<RateInfo>,
}

#[derive(Clone)]
pub struct CallContext {
    pub path: Arc<str>,
    pub arrived: Instant,
    learned: Arc<Mutex<Learned>>,
}

impl CallContext {
    pub fn new(path: &str) -> Self {
        Self {
            path: path.into(),
            arrived: Instant::now(),
            learned: Arc::default(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Learned) -> T) -> T {
        let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut learned)
    }

    pub fn set_caller(&self, subject: &str) {
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
