//! A per-number pacer: a token bucket per `phone_number_id` that callers await before
//! sending, so one tenant's burst stays under Meta's throughput limit (80 messages/s by
//! default) without slowing the other tenants.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::ids::PhoneNumberId;

/// Meta's default throughput per business number.
pub const DEFAULT_RATE_PER_SECOND: u32 = 80;

/// Paces sends per business number. Cheap to clone; clones share the buckets.
#[derive(Debug, Clone)]
pub struct Pacer {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    default_rate: u32,
    rates: HashMap<PhoneNumberId, u32>,
    buckets: HashMap<PhoneNumberId, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new(DEFAULT_RATE_PER_SECOND)
    }
}

impl Pacer {
    /// A pacer allowing `rate_per_second` messages per second per number (at least 1).
    pub fn new(rate_per_second: u32) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                default_rate: rate_per_second.max(1),
                rates: HashMap::new(),
                buckets: HashMap::new(),
            })),
        }
    }

    /// Sets the rate of one number (1000/s for upgraded numbers, 20/s for coexistence
    /// numbers, or lower after a 130429).
    pub fn set_rate(&self, number: &PhoneNumberId, rate_per_second: u32) {
        let mut state = self.lock();
        state.rates.insert(number.clone(), rate_per_second.max(1));
        if let Some(bucket) = state.buckets.get_mut(number) {
            bucket.tokens = bucket.tokens.min(f64::from(rate_per_second.max(1)));
        }
    }

    /// Sets the rate of `number` unless it already has one: for the rate a number was
    /// connected with, learnt again after a restart, which must not undo a
    /// [`slow_down`](Self::slow_down) in force.
    pub fn set_rate_if_unset(&self, number: &PhoneNumberId, rate_per_second: u32) {
        let mut state = self.lock();
        state
            .rates
            .entry(number.clone())
            .or_insert(rate_per_second.max(1));
    }

    /// Halves the rate of `number` (not below 1/s): call it after a 130429 throughput
    /// error ([`RetryScope::Number`](crate::RetryScope::Number)). Returns the new rate.
    pub fn slow_down(&self, number: &PhoneNumberId) -> u32 {
        let rate = (self.rate(number) / 2).max(1);
        self.set_rate(number, rate);
        rate
    }

    /// The rate in force for `number`.
    pub fn rate(&self, number: &PhoneNumberId) -> u32 {
        let state = self.lock();
        state
            .rates
            .get(number)
            .copied()
            .unwrap_or(state.default_rate)
    }

    /// Takes a slot for `number` at `now` if one is free; otherwise says how long to wait.
    /// Pure with respect to time, so it can be tested without a clock.
    pub fn try_acquire_at(&self, number: &PhoneNumberId, now: Instant) -> Result<(), Duration> {
        let mut state = self.lock();
        let rate = f64::from(
            state
                .rates
                .get(number)
                .copied()
                .unwrap_or(state.default_rate),
        );
        let bucket = state.buckets.entry(number.clone()).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = bucket.last.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Takes a slot for `number` now if one is free.
    pub fn try_acquire(&self, number: &PhoneNumberId) -> Result<(), Duration> {
        self.try_acquire_at(number, Instant::now())
    }

    /// Waits until `number` may send one more message, then takes the slot.
    pub async fn acquire(&self, number: &PhoneNumberId) {
        while let Err(wait) = self.try_acquire(number) {
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few numbers; a panic elsewhere cannot leave it inconsistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_rate_does_not_undo_a_slow_down() {
        let pacer = Pacer::new(80);
        let a = PhoneNumberId::new("a");
        pacer.set_rate_if_unset(&a, 1000);
        assert_eq!(pacer.rate(&a), 1000);
        assert_eq!(pacer.slow_down(&a), 500);
        pacer.set_rate_if_unset(&a, 1000);
        assert_eq!(pacer.rate(&a), 500);
        // An explicit change of tier still applies.
        pacer.set_rate(&a, 20);
        assert_eq!(pacer.rate(&a), 20);
    }

    #[test]
    fn a_burst_up_to_the_rate_then_waits() {
        let pacer = Pacer::new(3);
        let a = PhoneNumberId::new("a");
        let b = PhoneNumberId::new("b");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(pacer.try_acquire_at(&a, t0), Ok(()));
        }
        let wait = pacer.try_acquire_at(&a, t0).err();
        assert!(wait.is_some_and(|w| w > Duration::ZERO && w <= Duration::from_millis(334)));
        // Another number is not affected.
        assert_eq!(pacer.try_acquire_at(&b, t0), Ok(()));
        // A third of a second later one slot is free again.
        assert_eq!(
            pacer.try_acquire_at(&a, t0 + Duration::from_millis(340)),
            Ok(())
        );
        assert!(
            pacer
                .try_acquire_at(&a, t0 + Duration::from_millis(340))
                .is_err()
        );
    }

    #[test]
    fn per_number_rates() {
        let pacer = Pacer::default();
        let a = PhoneNumberId::new("a");
        assert_eq!(pacer.rate(&a), 80);
        assert_eq!(pacer.slow_down(&a), 40);
        assert_eq!(pacer.rate(&a), 40);
        pacer.set_rate(&a, 1);
        let t0 = Instant::now();
        assert_eq!(pacer.try_acquire_at(&a, t0), Ok(()));
        assert!(pacer.try_acquire_at(&a, t0).is_err());
    }
}
