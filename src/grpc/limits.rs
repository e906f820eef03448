//! Per-caller rate limits and stream caps. A caller is the token's subject, whatever connection
//! or address it calls from, so the limits hold across every connection and replica restart of
//! the client. Each class of call has its own quota per minute; callers with `library:any_user`
//! (other services, calling for many listeners) get a higher one.
use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};

use super::rpc::CallClass;
use crate::auth::{Principal, SCOPE_ANY_USER};

mod leases;
mod shared;

pub use shared::SharedQuota;

/// Calls per minute per caller for each class, and the caps on open streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSettings {
    pub reads_per_minute: u32,
    pub writes_per_minute: u32,
    pub streams_per_minute: u32,
    pub admin_per_minute: u32,
    /// Service callers (`library:any_user`) get this many times a listener's quota.
    pub service_multiplier: u32,
    pub max_streams_per_caller: usize,
    pub max_streams: usize,
}

/// What the `ratelimit-*` response metadata says after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the full quota is available again.
    pub reset_seconds: u64,
}

/// A refused call: when to retry, and the metadata to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after: Duration,
    pub info: RateInfo,
}

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

struct Tier {
    limit: u32,
    limiter: Keyed,
}

impl Tier {
    fn new(per_minute: u32) -> Self {
        let limit = per_minute.max(1);
        let quota = Quota::per_minute(NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN));
        Self {
            limit,
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
        }
    }

    /// Seconds until `used` cells have been replenished.
    fn refill_seconds(&self, used: u32) -> u64 {
        (u64::from(used) * 60).div_ceil(u64::from(self.limit))
    }
}

/// A listener's and a service's tier of one class.
struct Pair {
    listener: Tier,
    service: Tier,
}

pub struct Limits {
    settings: LimitSettings,
    read: Pair,
    write: Pair,
    stream: Pair,
    admin: Pair,
    clock: DefaultClock,
    streams: Mutex<StreamCounts>,
    /// Quotas kept in Redis for every replica, when configured; the tiers above then decide
    /// only while Redis is unreachable.
    shared: Option<SharedQuota>,
}

#[derive(Default)]
struct StreamCounts {
    total: usize,
    per_caller: HashMap<String, usize>,
}

impl Limits {
    /// Limits kept by this process alone.
    pub fn new(settings: LimitSettings) -> Arc<Self> {
        Self::with_shared(settings, None)
    }

    /// Limits kept in Redis for every replica, falling back to this process's own.
    pub fn with_shared(settings: LimitSettings, shared: Option<SharedQuota>) -> Arc<Self> {
        let m = settings.service_multiplier.max(1);
        let pair = |per_minute: u32| Pair {
            listener: Tier::new(per_minute),
            service: Tier::new(per_minute.saturating_mul(m)),
        };
        Arc::new(Self {
            read: pair(settings.reads_per_minute),
            write: pair(settings.writes_per_minute),
            stream: pair(settings.streams_per_minute),
            admin: pair(settings.admin_per_minute),
            settings,
            clock: DefaultClock::default(),
            streams: Mutex::default(),
            shared,
        })
    }

    fn pairs(&self) -> [&Pair; 4] {
        [&self.read, &self.write, &self.stream, &self.admin]
    }

    /// Counts one call of `class` against the caller's quota: in Redis when shared and
    /// reachable, else in this process.
    pub async fn check(
        &self,
        caller: &Principal,
        class: CallClass,
    ) -> Result<RateInfo, RateLimited> {
        let (pair, class_name) = match class {
            CallClass::Read => (&self.read, "read"),
            CallClass::Write => (&self.write, "write"),
            CallClass::Stream => (&self.stream, "stream"),
            CallClass::Admin => (&self.admin, "admin"),
        };
        let (tier, tier_name) = if caller.has_scope(SCOPE_ANY_USER) {
            (&pair.service, "service")
        } else {
            (&pair.listener, "listener")
        };
        if let Some(shared) = &self.shared {
            let key = format!("{class_name}:{tier_name}:{}", caller.subject);
            if let Some(decision) = shared.check(&key, tier.limit).await {
                let info = RateInfo {
                    limit: tier.limit,
                    remaining: decision.remaining.min(tier.limit),
                    reset_seconds: decision.reset_seconds,
                };
                return if decision.allowed {
                    Ok(info)
                } else {
                    Err(RateLimited {
                        retry_after: decision.retry_after,
                        info,
                    })
                };
            }
        }
        self.check_locally(tier, caller)
    }

    fn check_locally(&self, tier: &Tier, caller: &Principal) -> Result<RateInfo, RateLimited> {
        match tier.limiter.check_key(&caller.subject) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Ok(RateInfo {
                    limit: tier.limit,
                    remaining,
                    reset_seconds: tier.refill_seconds(tier.limit - remaining.min(tier.limit)),
                })
            }
            Err(not_until) => {
                let retry_after = not_until.wait_time_from(self.clock.now());
                Err(RateLimited {
                    retry_after,
                    info: RateInfo {
                        limit: tier.limit,
                        remaining: 0,
                        reset_seconds: tier.refill_seconds(tier.limit),
                    },
                })
            }
        }
    }

    /// Forgets callers that have been idle long enough to have their whole quota back, so the
    /// limiter's memory follows the active callers, not every caller ever seen.
    pub fn forget_idle(&self) {
        for pair in self.pairs() {
            for tier in [&pair.listener, &pair.service] {
                tier.limiter.retain_recent();
                tier.limiter.shrink_to_fit();
            }
        }
    }

    /// A slot for one open stream of `caller`, or `None` when the caller (on every replica
    /// sharing Redis, else on this one) or this server has as many open as allowed. The slot is
    /// given back when the guard is dropped.
    pub async fn open_stream(self: &Arc<Self>, caller: &str) -> Option<StreamGuard> {
        let mut guard = self.open_stream_locally(caller)?;
        if let Some(shared) = &self.shared {
            match shared
                .open_stream(caller, self.settings.max_streams_per_caller)
                .await
            {
                // Dropping the guard gives the local slot back.
                Some(None) => return None,
                Some(Some(lease)) => guard.lease = Some(lease),
                None => {}
            }
        }
        Some(guard)
    }

    fn open_stream_locally(self: &Arc<Self>, caller: &str) -> Option<StreamGuard> {
        let mut counts = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let mine = counts.per_caller.get(caller).copied().unwrap_or(0);
        if counts.total >= self.settings.max_streams || mine >= self.settings.max_streams_per_caller
        {
            return None;
        }
        counts.total += 1;
        counts.per_caller.insert(caller.to_string(), mine + 1);
        Some(StreamGuard {
            limits: self.clone(),
            caller: caller.to_string(),
            lease: None,
        })
    }
}

/// The refusal when no stream slot is free.
pub fn too_many_streams() -> crate::error::ApiError {
    crate::error::ApiError::ResourceExhausted {
        message: "too many streams open at once; finish one, or retry shortly".into(),
        retry_after: Duration::from_secs(1),
    }
}

pub struct StreamGuard {
    limits: Arc<Limits>,
    caller: String,
    /// The caller's slot across replicas, when shared through Redis.
    lease: Option<leases::Lease>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let (Some(lease), Some(shared)) = (self.lease.take(), &self.limits.shared) {
            shared.close_stream(lease);
        }
        let mut counts = self
            .limits
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_caller.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                counts.per_caller.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(subject: &str, scope: Option<&str>) -> Principal {
        Principal {
            subject: subject.into(),
            scopes: scope.map(|s| vec![s.to_string()]),
        }
    }

    /// The served defaults.
    fn defaults() -> LimitSettings {
        crate::config::LimitArgs::default().settings()
    }

    #[tokio::test]
    async fn a_caller_gets_its_quota_then_a_retry_time_and_services_get_more() {
        let limits = Limits::new(LimitSettings {
            streams_per_minute: 3,
            service_multiplier: 2,
            ..defaults()
        });
        let listener = caller("a", None);
        let mut remaining = Vec::new();
        for _ in 0..3 {
            let info = limits.check(&listener, CallClass::Stream).await;
            remaining.push(info.expect("within quota").remaining);
        }
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = limits
            .check(&listener, CallClass::Stream)
            .await
            .expect_err("over quota");
        assert!(
            refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(20)
        );
        assert_eq!(refused.info.limit, 3);
        // Other callers and other classes are not affected.
        let other = limits.check(&caller("b", None), CallClass::Stream).await;
        assert!(other.is_ok());
        assert!(limits.check(&listener, CallClass::Read).await.is_ok());
        let service = caller("player", Some(SCOPE_ANY_USER));
        for _ in 0..6 {
            limits
                .check(&service, CallClass::Stream)
                .await
                .expect("a service's larger quota");
        }
        assert!(limits.check(&service, CallClass::Stream).await.is_err());
    }

    #[tokio::test]
    async fn streams_are_capped_per_caller_and_overall() {
        let limits = Limits::new(LimitSettings {
            max_streams_per_caller: 2,
            max_streams: 3,
            ..defaults()
        });
        let a1 = limits.open_stream("a").await.expect("first");
        let _a2 = limits.open_stream("a").await.expect("second");
        assert!(limits.open_stream("a").await.is_none(), "per caller");
        let _b1 = limits.open_stream("b").await.expect("b's first");
        assert!(limits.open_stream("c").await.is_none(), "overall");
        drop(a1);
        assert!(limits.open_stream("a").await.is_some(), "a slot came back");
    }
}
