//! Per-tenant rate limiting with GCRA.
//!
//! The generic cell rate algorithm keeps one number per key, the *theoretical arrival
//! time* (TAT): when the key would be back to a full burst. A request is allowed if, after
//! adding one emission interval, the TAT lies no further ahead than `burst` intervals.
//! Keys are an organization plus a bucket name (`"api"`, `"whatsapp.send"`, …), so one
//! tenant can never spend another's allowance.
//!
//! [`InMemoryRateLimiter`] serves one process; with the `redis` feature,
//! `RedisRateLimiter` runs the same algorithm atomically in Redis, on Redis's own clock,
//! so several server nodes share one limit.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use edge_core::{Error, OrgId, SharedClock};

use crate::BoxFuture;

/// How many requests a key may make: a sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    emission_micros: u64,
    burst: u32,
}

impl Quota {
    /// `count` requests per `period` on average, and up to `burst` at once from idle.
    /// Zero counts and bursts are raised to one.
    pub fn per_period(count: u32, period: Duration, burst: u32) -> Self {
        let period = u64::try_from(period.as_micros()).unwrap_or(u64::MAX);
        Self {
            emission_micros: (period / u64::from(count.max(1))).max(1),
            burst: burst.max(1),
        }
    }

    /// `count` per second, bursting to `count`.
    pub fn per_second(count: u32) -> Self {
        Self::per_period(count, Duration::from_secs(1), count)
    }

    /// `count` per minute, bursting to `count`.
    pub fn per_minute(count: u32) -> Self {
        Self::per_period(count, Duration::from_secs(60), count)
    }

    /// The same rate with another burst.
    pub fn with_burst(self, burst: u32) -> Self {
        Self {
            burst: burst.max(1),
            ..self
        }
    }

    /// The time one request "costs": the period divided by the count.
    pub fn emission_interval(&self) -> Duration {
        Duration::from_micros(self.emission_micros)
    }

    /// Requests allowed at once from idle.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    fn emission(&self) -> i64 {
        i64::try_from(self.emission_micros).unwrap_or(i64::MAX)
    }

    fn limit(&self) -> i64 {
        self.emission().saturating_mul(i64::from(self.burst))
    }
}

/// What is being limited: an organization and a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey {
    /// The organization.
    pub org: OrgId,
    /// The bucket, e.g. `"api"` or `"whatsapp.send"`.
    pub bucket: Cow<'static, str>,
}

impl RateKey {
    /// A key for `bucket` of `org`.
    pub fn new(org: OrgId, bucket: impl Into<Cow<'static, str>>) -> Self {
        Self {
            org,
            bucket: bucket.into(),
        }
    }
}

/// The answer to "may this request go ahead?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Go ahead.
    Allowed {
        /// How many more requests would be allowed right now.
        remaining: u32,
        /// When the full burst is available again.
        reset_after: Duration,
    },
    /// Too many; nothing was counted.
    Limited {
        /// When the next request would be allowed.
        retry_after: Duration,
    },
}

impl RateDecision {
    /// Whether the request may go ahead.
    pub fn is_allowed(&self) -> bool {
        matches!(self, RateDecision::Allowed { .. })
    }

    /// `Ok` when allowed, else [`Error::RateLimited`].
    pub fn into_result(self) -> Result<Self, Error> {
        match self {
            RateDecision::Limited { retry_after } => Err(Error::RateLimited { retry_after }),
            allowed => Ok(allowed),
        }
    }
}

/// Decides whether a request for a key may go ahead, and counts it if so.
pub trait RateLimiter: Send + Sync {
    /// Checks (and, when allowed, counts) one request for `key` under `quota`.
    fn check<'a>(
        &'a self,
        key: &'a RateKey,
        quota: Quota,
    ) -> BoxFuture<'a, Result<RateDecision, Error>>;
}

fn micros(value: i64) -> Duration {
    Duration::from_micros(u64::try_from(value).unwrap_or(0))
}

/// One GCRA step at `now` (microseconds) for a key whose TAT is `tat`. Returns the
/// decision and, when allowed, the new TAT.
pub(crate) fn gcra(tat: Option<i64>, now: i64, quota: Quota) -> (RateDecision, Option<i64>) {
    let emission = quota.emission();
    let limit = quota.limit();
    let tat = tat.map_or(now, |tat| tat.max(now));
    let new_tat = tat.saturating_add(emission);
    let ahead = new_tat - now;
    if ahead > limit {
        return (
            RateDecision::Limited {
                retry_after: micros(ahead - limit),
            },
            None,
        );
    }
    let remaining = u32::try_from((limit - ahead) / emission).unwrap_or(u32::MAX);
    (
        RateDecision::Allowed {
            remaining,
            reset_after: micros(ahead),
        },
        Some(new_tat),
    )
}

const SHARDS: usize = 16;

/// A [`RateLimiter`] for one process: a sharded map from key to TAT.
///
/// A key whose TAT has passed is the same as an absent key, so such keys are evicted
/// whenever a shard grows past its share of `max_keys`; eviction never changes a decision.
pub struct InMemoryRateLimiter {
    clock: SharedClock,
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<RateKey, i64>>]>,
    max_keys_per_shard: usize,
}

impl InMemoryRateLimiter {
    /// A limiter reading time from `clock`, sweeping idle keys once more than about
    /// 100 000 are held.
    pub fn new(clock: SharedClock) -> Self {
        Self::with_capacity_hint(clock, 100_000)
    }

    /// A limiter that sweeps idle keys once more than about `max_keys` are held.
    pub fn with_capacity_hint(clock: SharedClock, max_keys: usize) -> Self {
        Self {
            clock,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_keys_per_shard: (max_keys / SHARDS).max(1),
        }
    }

    /// Checks one request at the clock's current time.
    pub fn check_now(&self, key: &RateKey, quota: Quota) -> RateDecision {
        let now = self.clock.now().timestamp_micros();
        let mut shard = self.shard(key);
        let (decision, new_tat) = gcra(shard.get(key).copied(), now, quota);
        if let Some(new_tat) = new_tat {
            if shard.len() >= self.max_keys_per_shard && !shard.contains_key(key) {
                shard.retain(|_, tat| *tat > now);
            }
            shard.insert(key.clone(), new_tat);
        }
        decision
    }

    /// Removes every key that is back to a full burst. Returns how many were removed.
    pub fn evict_idle(&self) -> usize {
        let now = self.clock.now().timestamp_micros();
        self.shards
            .iter()
            .map(|shard| {
                let mut shard = lock(shard);
                let before = shard.len();
                shard.retain(|_, tat| *tat > now);
                before - shard.len()
            })
            .sum()
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &RateKey) -> MutexGuard<'_, HashMap<RateKey, i64>> {
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        lock(&self.shards[index])
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RateLimiter for InMemoryRateLimiter {
    fn check<'a>(
        &'a self,
        key: &'a RateKey,
        quota: Quota,
    ) -> BoxFuture<'a, Result<RateDecision, Error>> {
        let decision = self.check_now(key, quota);
        Box::pin(async move { Ok(decision) })
    }
}

impl std::fmt::Debug for InMemoryRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryRateLimiter")
            .field("keys", &self.len())
            .field("max_keys_per_shard", &self.max_keys_per_shard)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_allows_the_burst_then_spaces_requests_by_the_emission_interval() {
        let quota = Quota::per_period(10, Duration::from_secs(10), 3);
        let second = 1_000_000;
        let mut tat = None;
        for expected_remaining in [2, 1, 0] {
            let (decision, new_tat) = gcra(tat, 0, quota);
            assert!(
                matches!(decision, RateDecision::Allowed { remaining, .. } if remaining == expected_remaining),
                "{decision:?}"
            );
            tat = new_tat;
        }
        let (decision, new_tat) = gcra(tat, 0, quota);
        assert_eq!(
            decision,
            RateDecision::Limited {
                retry_after: Duration::from_secs(1)
            }
        );
        assert_eq!(new_tat, None);
        let (decision, _) = gcra(tat, second, quota);
        assert_eq!(
            decision,
            RateDecision::Allowed {
                remaining: 0,
                reset_after: Duration::from_secs(3)
            }
        );
    }
}
