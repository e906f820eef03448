//! Quotas (and, with [`leases`], per-caller stream caps) shared by every replica through Redis
//! (`--rate-limit-redis-url`). Behind a balancer
//! that spreads calls over N replicas, per-process limiters would give each caller N quotas;
//! here every replica takes its decision from the same Redis key, in one round trip (EVALSHA of
//! a GCRA script), with Redis's own clock so replica clocks do not matter.
//!
//! Redis is a helper, never a dependency: when it does not answer within [`ROUND_TRIP`], the
//! call is decided by the replica's local limiter (so a caller is never unlimited), the outage is
//! logged once, and Redis is probed again at most every [`PROBE_EVERY`] so an outage does not
//! cost every call a timeout. The connection manager reconnects on its own; the first answer
//! after an outage resumes sharing.
use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{
    Client, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::leases::{self, Held, Lease, Timing};

/// How long a call waits for Redis before its local limiter decides instead.
const ROUND_TRIP: Duration = Duration::from_millis(100);
/// While Redis is unreachable, how often one call tries it again.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Generic cell rate algorithm. KEYS[1]: the caller's key for one class. ARGV[1]: the quota
/// (also the burst, as with the local limiter: a fresh caller may spend a whole minute's quota
/// at once); ARGV[2]: the emission interval in microseconds (one minute / quota).
/// The key holds the theoretical arrival time (TAT) in microseconds of Redis's clock.
/// Returns {allowed (1/0), remaining, reset seconds (until the whole quota is back),
/// retry-after milliseconds (0 when allowed)}. Numbers stored are formatted with %d: Lua's
/// default formatting of a 16-digit number would lose digits.
const GCRA: &str = r"
local limit = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = interval * limit
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - window > now then
  local retry_us = new_tat - window - now
  return {0, 0, math.ceil((tat - now) / 1000000), math.ceil(retry_us / 1000)}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat),
  'PX', string.format('%d', math.ceil((new_tat - now) / 1000) + 1000))
local remaining = math.floor((now + window - new_tat) / interval)
return {1, remaining, math.ceil((new_tat - now) / 1000000), 0}
";

/// One decision taken in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub remaining: u32,
    pub reset_seconds: u64,
    pub retry_after: Duration,
}

pub struct SharedQuota {
    manager: ConnectionManager,
    script: Script,
    open_stream: Script,
    /// The stream leases this replica holds, renewed while held by `renewal`.
    held: Held,
    lease_timing: Timing,
    renewal: tokio::task::JoinHandle<()>,
    prefix: String,
    /// True from the first failed round trip to the next successful one.
    down: AtomicBool,
    /// While down: when the next call may try Redis again.
    next_probe: Mutex<Option<Instant>>,
}

impl SharedQuota {
    /// Prepares the connection without opening it, so a replica starts (and serves, on its local
    /// limits) while Redis is down. The URL's password is never logged: errors here do not
    /// repeat the URL.
    pub fn new(url: &str, prefix: &str) -> anyhow::Result<Self> {
        Self::with_lease_timing(url, prefix, Timing::default())
    }

    fn with_lease_timing(url: &str, prefix: &str, lease_timing: Timing) -> anyhow::Result<Self> {
        let client = Client::open(url).map_err(|e| {
            anyhow::anyhow!(
                "--rate-limit-redis-url is not a valid Redis URL ({:?})",
                e.kind()
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(ROUND_TRIP))
            .set_response_timeout(Some(ROUND_TRIP));
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| anyhow::anyhow!("preparing the Redis connection: {:?}", e.kind()))?;
        metrics::gauge!("library_rate_limit_shared").set(1.0);
        let held = Held::default();
        let renewal = held.spawn_renewal(manager.clone(), lease_timing);
        Ok(Self {
            manager,
            script: Script::new(GCRA),
            open_stream: Script::new(leases::OPEN),
            held,
            lease_timing,
            renewal,
            prefix: prefix.to_string(),
            down: AtomicBool::new(false),
            next_probe: Mutex::new(None),
        })
    }

    /// Counts one call against `key`'s shared quota of `limit` per minute; `None` when Redis
    /// could not decide and the caller's local limiter must.
    pub async fn check(&self, key: &str, limit: u32) -> Option<Decision> {
        if !self.may_try() {
            metrics::counter!("library_rate_limit_fallbacks_total").increment(1);
            return None;
        }
        let limit = limit.max(1);
        let interval_us = 60_000_000 / u64::from(limit);
        let mut connection = self.manager.clone();
        let mut invocation = self.script.key(format!("{}:rate:{key}", self.prefix));
        invocation.arg(limit).arg(interval_us.max(1));
        let answer = tokio::time::timeout(
            ROUND_TRIP,
            invocation.invoke_async::<(i64, i64, i64, i64)>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok((allowed, remaining, reset, retry_ms))) => {
                self.up();
                Some(Decision {
                    allowed: allowed == 1,
                    remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
                    reset_seconds: u64::try_from(reset.max(0)).unwrap_or(0),
                    retry_after: Duration::from_millis(u64::try_from(retry_ms.max(1)).unwrap_or(1)),
                })
            }
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                None
            }
            Err(_) => {
                self.failed("no answer in time");
                None
            }
        }
    }

    /// Takes a lease on one of `subject`'s `cap` open-stream slots across replicas:
    /// `Some(Some(lease))` when taken, `Some(None)` when the caller has `cap` open already,
    /// `None` when Redis could not decide and the local cap alone applies.
    pub async fn open_stream(&self, subject: &str, cap: usize) -> Option<Option<Lease>> {
        if !self.may_try() {
            metrics::counter!("library_rate_limit_fallbacks_total").increment(1);
            return None;
        }
        let lease = Lease {
            key: format!("{}:streams:{subject}", self.prefix),
            id: uuid::Uuid::new_v4().simple().to_string(),
        };
        let mut connection = self.manager.clone();
        let mut invocation = self.open_stream.key(&lease.key);
        invocation
            .arg(cap)
            .arg(&lease.id)
            .arg(self.lease_timing.lease_ms());
        let answer =
            tokio::time::timeout(ROUND_TRIP, invocation.invoke_async::<i64>(&mut connection)).await;
        match answer {
            Ok(Ok(taken)) => {
                self.up();
                if taken == 1 {
                    self.held.add(&lease);
                    Some(Some(lease))
                } else {
                    Some(None)
                }
            }
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                None
            }
            Err(_) => {
                self.failed("no answer in time");
                None
            }
        }
    }

    /// Gives back a lease: the stream ended.
    pub fn close_stream(&self, lease: Lease) {
        self.held.remove(&lease);
        leases::release(&self.manager, lease);
    }

    /// Whether this call should ask Redis: always while it answers; while it does not, one call
    /// per probe interval.
    fn may_try(&self) -> bool {
        if !self.down.load(Ordering::Acquire) {
            return true;
        }
        let mut next = self.next_probe.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match *next {
            Some(at) if now < at => false,
            _ => {
                *next = Some(now + PROBE_EVERY);
                true
            }
        }
    }

    fn up(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("redis reachable again: rate limits are shared across replicas");
            metrics::gauge!("library_rate_limit_shared").set(1.0);
        }
    }

    fn failed(&self, error: &str) {
        metrics::counter!("library_rate_limit_fallbacks_total").increment(1);
        *self.next_probe.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + PROBE_EVERY);
        // Once per outage, not once per call.
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error,
                "redis unreachable: rate limits fall back to this replica's own until it answers"
            );
            metrics::gauge!("library_rate_limit_shared").set(0.0);
        }
    }
}

/// A replica's quota going away (tests start many in one process) stops renewing its leases,
/// as a replica that died would.
impl Drop for SharedQuota {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leases short enough to see them renewed and expire within a test.
    const SHORT: Timing = Timing {
        lease: Duration::from_millis(1_500),
        renew_every: Duration::from_millis(400),
    };

    fn redis_url() -> Option<String> {
        let url = std::env::var("LIBRARY_TEST_REDIS_URL").ok();
        if url.is_none() {
            eprintln!("skipped: LIBRARY_TEST_REDIS_URL not set");
        }
        url
    }

    fn replica(url: &str, prefix: &str) -> SharedQuota {
        match SharedQuota::with_lease_timing(url, prefix, SHORT) {
            Ok(quota) => quota,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// Whether `subject` may open one more stream under a cap of one, as Redis decides.
    async fn may_open(quota: &SharedQuota, subject: &str) -> bool {
        match quota.open_stream(subject, 1).await {
            Some(Some(lease)) => {
                quota.close_stream(lease);
                true
            }
            Some(None) => false,
            None => panic!("redis did not answer"),
        }
    }

    #[tokio::test]
    async fn a_held_stream_keeps_its_slot_and_a_dead_replicas_slot_comes_back() {
        let Some(url) = redis_url() else { return };
        let prefix = format!("library-test:{}", uuid::Uuid::new_v4().simple());
        let (a, b) = (replica(&url, &prefix), replica(&url, &prefix));

        let Some(Some(held)) = a.open_stream("alice", 1).await else {
            panic!("the first stream should get the slot");
        };
        // Three lease lengths later the slot is still taken: replica A renewed it.
        tokio::time::sleep(SHORT.lease * 3).await;
        assert!(!may_open(&b, "alice").await, "a renewed lease expired");

        // A closed stream gives its slot back at once (well before the lease would expire).
        a.close_stream(held);
        let freed = tokio::time::timeout(SHORT.lease / 2, async {
            while !may_open(&b, "alice").await {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(freed.is_ok(), "a closed stream's slot was not given back");

        // Replica A dies holding a stream (B's probe above gives its lease back without waiting,
        // so A may need a moment to get the slot): the slot stays taken until the lease runs out.
        let orphan = tokio::time::timeout(SHORT.lease / 2, async {
            loop {
                match a.open_stream("alice", 1).await {
                    Some(Some(lease)) => return lease,
                    Some(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                    None => panic!("redis did not answer"),
                }
            }
        })
        .await;
        assert!(orphan.is_ok(), "the slot was not free again");
        drop(a);
        assert!(!may_open(&b, "alice").await, "the slot came back too early");
        tokio::time::sleep(SHORT.lease + SHORT.renew_every).await;
        assert!(
            may_open(&b, "alice").await,
            "a dead replica's slot never came back"
        );
    }
}
