//! Property tests: parsers of outside input never panic, and GCRA never over-admits.

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Span;
use edge_core::{FixedClock, OrgId, SharedClock};
use edge_tenancy::{InMemoryRateLimiter, PresentedKey, Quota, RateKey, Sealed};
use proptest::prelude::*;

use crate::support::{codec, start};

proptest! {
    #[test]
    fn arbitrary_text_never_panics_the_parsers(text in ".{0,300}") {
        let _ = text.parse::<Sealed>();
        let _ = PresentedKey::parse(&text);
        prop_assert!(codec().verify(&text, start()).is_err());
    }

    #[test]
    fn token_shaped_garbage_is_refused(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,80}", c in "[A-Za-z0-9_-]{0,80}") {
        let token = format!("{a}.{b}.{c}");
        prop_assert!(codec().verify(&token, start()).is_err());
    }

    #[test]
    fn gcra_never_admits_more_than_burst_plus_rate(
        burst in 1u32..10,
        per_second in 1u32..20,
        gaps_ms in proptest::collection::vec(0i64..400, 1..200),
    ) {
        let clock = FixedClock::new(start());
        let shared: SharedClock = Arc::new(clock.clone());
        let limiter = InMemoryRateLimiter::new(shared);
        let quota = Quota::per_period(per_second, Duration::from_secs(1), burst);
        let key = RateKey::new(OrgId::new(), "api");
        let mut allowed = 0u64;
        let mut elapsed_ms = 0i64;
        for gap in gaps_ms {
            clock.advance(Span::milliseconds(gap));
            elapsed_ms += gap;
            if limiter.check_now(&key, quota).is_allowed() {
                allowed += 1;
            }
        }
        let emission_us = quota.emission_interval().as_micros() as i64;
        let ceiling = u64::from(burst) + (elapsed_ms * 1000 / emission_us) as u64;
        prop_assert!(allowed <= ceiling, "{allowed} > {ceiling}");
        // And the first request from idle is always allowed.
        prop_assert!(allowed >= 1);
    }
}
