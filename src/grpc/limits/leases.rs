//! Open streams per caller across replicas. Each open stream holds a lease in a sorted set per
//! caller (member: a random lease id; score: its expiry on Redis's clock). Opening drops the
//! expired leases and adds one only below the cap, atomically. The replica that holds a stream
//! renews its leases while they are held; so a replica that dies holding streams costs its
//! callers those slots for at most [`Timing::lease`] (30 s), and no count can be left wrong for
//! ever (a plain counter could: a decrement that never came). A closed stream gives its lease
//! back at once.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use redis::{Script, aio::ConnectionManager};

/// How long a lease lives without renewal, and how often the holding replica renews it: a third
/// of the lease, so two renewals in a row can fail before a held stream's slot is freed.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub lease: Duration,
    pub renew_every: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
        }
    }
}

impl Timing {
    pub fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }
}

/// KEYS[1]: the caller's set; ARGV[1]: the cap; ARGV[2]: the lease id; ARGV[3]: the lease in ms.
/// Returns 1 when the lease was taken, 0 when the caller has the cap open already.
pub const OPEN: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[3])), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// KEYS[1]: the caller's set; ARGV[1]: the lease id; ARGV[2]: the lease in ms. Renews a lease
/// still held (XX: one that expired meanwhile is not brought back).
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// A lease this replica holds: the caller's set and the lease id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    pub key: String,
    pub id: String,
}

/// The leases this replica holds, renewed by a background task while they are held.
#[derive(Clone, Default)]
pub struct Held(Arc<Mutex<HashMap<String, String>>>);

impl Held {
    pub fn add(&self, lease: &Lease) {
        self.lock().insert(lease.id.clone(), lease.key.clone());
    }

    pub fn remove(&self, lease: &Lease) {
        self.lock().remove(&lease.id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Renews every held lease every `timing.renew_every`, until the returned task is aborted. A
    /// failed renewal is retried at the next round; meanwhile the lease may expire, which frees
    /// a slot early rather than holding one wrongly.
    pub fn spawn_renewal(
        &self,
        manager: ConnectionManager,
        timing: Timing,
    ) -> tokio::task::JoinHandle<()> {
        let held = self.clone();
        tokio::spawn(async move {
            let script = Script::new(RENEW);
            let lease_ms = timing.lease_ms();
            loop {
                tokio::time::sleep(timing.renew_every).await;
                let leases: Vec<(String, String)> = held
                    .lock()
                    .iter()
                    .map(|(id, key)| (id.clone(), key.clone()))
                    .collect();
                for (id, key) in leases {
                    let mut connection = manager.clone();
                    let mut invocation = script.key(key);
                    invocation.arg(id).arg(lease_ms);
                    let renewed = tokio::time::timeout(
                        Duration::from_secs(1),
                        invocation.invoke_async::<i64>(&mut connection),
                    )
                    .await;
                    if !matches!(renewed, Ok(Ok(_))) {
                        metrics::counter!("library_stream_lease_renewal_failures_total")
                            .increment(1);
                    }
                }
            }
        })
    }
}

/// Gives a lease back (the stream ended), without waiting for the answer.
pub fn release(manager: &ConnectionManager, lease: Lease) {
    let mut connection = manager.clone();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut zrem = redis::cmd("ZREM");
            zrem.arg(&lease.key).arg(&lease.id);
            let released = zrem.query_async::<i64>(&mut connection);
            // On failure the lease simply expires.
            let _ = tokio::time::timeout(Duration::from_secs(1), released).await;
        });
    }
}
