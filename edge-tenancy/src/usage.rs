//! Usage metering: counting what each tenant consumes (API calls, messages sent, …).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use edge_core::{Error, OrgId};

use crate::BoxFuture;

/// Records what a tenant consumed. Implementations add `amount` to the running total of
/// `metric` for `org` (the server's implementation writes usage rows).
pub trait UsageMeter: Send + Sync {
    /// Adds `amount` to `metric` (e.g. `"api.requests"`, `"whatsapp.messages"`) of `org`.
    fn record<'a>(
        &'a self,
        org: OrgId,
        metric: &'a str,
        amount: u64,
    ) -> BoxFuture<'a, Result<(), Error>>;
}

/// A [`UsageMeter`] keeping running totals in memory.
#[derive(Debug, Default)]
pub struct InMemoryUsageMeter {
    totals: Mutex<HashMap<(OrgId, String), u64>>,
}

impl InMemoryUsageMeter {
    /// An empty meter.
    pub fn new() -> Self {
        Self::default()
    }

    /// The total of `metric` recorded for `org` (zero if none).
    pub fn total(&self, org: OrgId, metric: &str) -> u64 {
        self.totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(org, metric.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Every total of `org`, sorted by metric.
    pub fn totals_for(&self, org: OrgId) -> Vec<(String, u64)> {
        let mut totals: Vec<(String, u64)> = self
            .totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((o, _), _)| *o == org)
            .map(|((_, metric), total)| (metric.clone(), *total))
            .collect();
        totals.sort();
        totals
    }
}

impl UsageMeter for InMemoryUsageMeter {
    fn record<'a>(
        &'a self,
        org: OrgId,
        metric: &'a str,
        amount: u64,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let result = if metric.is_empty() {
            Err(Error::invalid("metric", "must not be empty"))
        } else {
            let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
            let total = totals.entry((org, metric.to_owned())).or_insert(0);
            *total = total.saturating_add(amount);
            Ok(())
        };
        Box::pin(async move { result })
    }
}
