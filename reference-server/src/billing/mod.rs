//! Billing: the plans the operator sells and each organization's subscription to one.
//!
//! - [`plans`]: the `plans` table. A plan carries its price (a [`edge_core::Money`]), the
//!   period one payment buys, the days of grace after it lapses, and the limits the tenant
//!   resolver enforces on every request (rate limits, seats, API keys, included
//!   messages). Operators create, edit and archive plans.
//! - [`subscriptions`]: one per organization. `active` → `grace` (the period ended; the
//!   organization keeps working for the plan's grace days) → `suspended` (paid features
//!   answer 402 `subscription_suspended`), and back to `active` when a payment is applied
//!   with [`subscriptions::apply_paid_period`]. [`subscriptions::advance`] moves
//!   subscriptions along as time passes; the server runs it every minute.
//!
//! Where a request's organization stands is read with its organization row, in the
//! same query that resolves its plan's limits (see `identity::stores`), and handed to the
//! subscription gate of the HTTP API through [`Standings`], so the gate costs no query of
//! its own.

pub mod plans;
pub mod subscriptions;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use edge_core::OrgId;

pub use plans::Plan;
pub use subscriptions::{Subscription, SubscriptionStatus, Transition};

/// Where an organization's subscription stands: what the subscription gate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The plan's code.
    pub plan_code: String,
    /// Active, in grace, or suspended.
    pub status: SubscriptionStatus,
    /// When the current period ends (`None` on a free plan).
    pub current_period_end: Option<DateTime<Utc>>,
    /// When grace ends (set once the subscription has entered grace).
    pub grace_ends_at: Option<DateTime<Utc>>,
}

/// How long a recorded standing is trusted. The tenant resolver records the standing of
/// the organization it resolves on every request, a moment before the gate reads it; an
/// older one is read again from the database.
const STANDING_FRESH_FOR: Duration = Duration::from_secs(5);

/// Past this many organizations, stale standings are dropped when a new one is recorded.
const STANDINGS_PRUNE_AT: usize = 10_000;

/// The standings the tenant resolver read most recently, per organization, shared with
/// the subscription gate. Cheap to clone; share one per process.
#[derive(Debug, Clone, Default)]
pub struct Standings {
    inner: Arc<Mutex<HashMap<OrgId, (Standing, Instant)>>>,
}

impl Standings {
    /// Records what was just read from the database for `org`.
    pub fn record(&self, org: OrgId, standing: Standing) {
        let now = Instant::now();
        let mut map = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if map.len() >= STANDINGS_PRUNE_AT {
            map.retain(|_, (_, at)| now.duration_since(*at) < STANDING_FRESH_FOR);
        }
        map.insert(org, (standing, now));
    }

    /// `org`'s standing if it was read within the last few seconds.
    pub fn recent(&self, org: OrgId) -> Option<Standing> {
        let map = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        map.get(&org)
            .filter(|(_, at)| at.elapsed() < STANDING_FRESH_FOR)
            .map(|(standing, _)| standing.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standings_are_kept_per_organization() {
        let standings = Standings::default();
        let (a, b) = (OrgId::new(), OrgId::new());
        assert_eq!(standings.recent(a), None);
        let suspended = Standing {
            plan_code: "standard".into(),
            status: SubscriptionStatus::Suspended,
            current_period_end: None,
            grace_ends_at: None,
        };
        standings.record(a, suspended.clone());
        assert_eq!(standings.recent(a), Some(suspended.clone()));
        assert_eq!(standings.recent(b), None);
        let active = Standing {
            status: SubscriptionStatus::Active,
            ..suspended
        };
        standings.record(a, active.clone());
        assert_eq!(standings.recent(a), Some(active));
    }
}
