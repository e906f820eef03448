//! A circuit breaker on the database. The health probe pings the database every few seconds;
//! while the last ping failed, API calls are refused at once with UNAVAILABLE (retryable)
//! instead of each waiting for a connection that will not come, which would pile up calls,
//! memory and client timeouts. The next successful ping opens the gate again.
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

#[derive(Clone, Default)]
pub struct DatabaseGate {
    down: Arc<AtomicBool>,
}

impl DatabaseGate {
    pub fn set_reachable(&self, reachable: bool) {
        self.down.store(!reachable, Ordering::Release);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }
}
