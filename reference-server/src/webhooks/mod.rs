//! Outbound webhooks: organizations register HTTPS endpoints and receive the events they
//! subscribe to, signed as Standard Webhooks specifies, retried on a schedule, with a
//! delivery log they can read and replay.
//!
//! - [`endpoints`]: `/webhook-endpoints` CRUD. The signing secret (`whsec_…`) is shown
//!   once, when the endpoint is created or its secret rotated, and is kept sealed for the
//!   organization; the URL must be a public address ([`guard`]).
//! - [`fanout`]: a worker consumes the `webhooks` event queue and creates one delivery
//!   per enabled endpoint whose filter matches the event (exact kind, `prefix.*` or `*`);
//!   `automation.webhook` events go to the one endpoint they name, whatever its filter.
//!   The body is fixed then: `{"type", "timestamp", "data"}`.
//! - [`delivery`]: a worker claims due deliveries with a lease (several servers never
//!   send the same try twice), posts them with a 10 s timeout and no redirects, at most
//!   [`delivery::PER_ENDPOINT`] at once per endpoint and server, and schedules failed
//!   tries by [`delivery::SCHEDULE`] (5 s growing to 10 h, about three days in all)
//!   before giving up. An endpoint failing without a success for more than five days is
//!   disabled, its pending deliveries cancelled, with an audit entry and a
//!   `webhook_endpoint.disabled` event.
//! - [`log`]: each endpoint's deliveries, one delivery with its tries, replay, and the
//!   `webhook.test` message.
//!
//! Message ids: a delivery's id is its `webhook-id`. Retries and manual replays send the
//! same message again with the same id and the same body (only `webhook-timestamp` and
//! the signature change), so receivers that de-duplicate by `webhook-id` see one message.

pub mod delivery;
pub mod endpoints;
pub mod fanout;
pub mod guard;
pub mod log;
pub mod signing;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use edge_core::{Error, OrgId, SharedClock};
use edge_tenancy::Keyring;
use sea_orm::DatabaseConnection;
use serde::Serialize;

pub(crate) use crate::db::db_err;

/// How long one try may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a sealed signing secret is sealed for.
pub(crate) const SEAL_PURPOSE: &str = "webhooks.signing_secret";

/// The event kinds an endpoint can subscribe to (besides `prefix.*` and `*`).
/// `webhook.test` is sent only by `POST /webhook-endpoints/{id}/test`, and
/// `automation.webhook` only to the endpoint its rule names.
pub const EVENT_TYPES: &[&str] = &[
    "deal.created",
    "deal.updated",
    "deal.stage_changed",
    "prospect.created",
    "prospect.updated",
    "relationship.created",
    "relationship.updated",
    "ticket.created",
    "ticket.updated",
    "ticket.overdue",
    "payment.created",
    "payment.status_changed",
    "wallet.low_balance",
    "whatsapp.message.created",
    "whatsapp.message.received",
    "whatsapp.message.status_changed",
    "whatsapp.message.charge_changed",
    "import.completed",
    "webhook_endpoint.disabled",
];

/// The kind of the events automation rules send to one chosen endpoint.
pub const AUTOMATION_WEBHOOK: &str = "automation.webhook";

/// The kind of the message `POST /webhook-endpoints/{id}/test` sends.
pub const TEST_EVENT: &str = "webhook.test";

/// Whether an endpoint subscribed with `filters` gets events of `kind`.
pub fn matches(filters: &[String], kind: &str) -> bool {
    filters.iter().any(|filter| {
        filter == "*"
            || filter == kind
            || filter
                .strip_suffix('*')
                .is_some_and(|prefix| prefix.ends_with('.') && kind.starts_with(prefix))
    })
}

/// Whether `filter` is an event type an endpoint may subscribe to.
pub fn is_known_filter(filter: &str) -> bool {
    if filter == "*" || EVENT_TYPES.contains(&filter) {
        return true;
    }
    filter
        .strip_suffix('*')
        .filter(|prefix| prefix.ends_with('.') && prefix.len() > 1)
        .is_some_and(|prefix| EVENT_TYPES.iter().any(|kind| kind.starts_with(prefix)))
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next try.
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Every try failed: given up.
    Failed,
    /// Not sent: its endpoint was disabled.
    Cancelled,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [DeliveryStatus; 4] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
        DeliveryStatus::Cancelled,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    /// The status named `s`; a 422 on `field` otherwise.
    pub fn parse(field: &str, s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    format!("{s:?} is not one of pending, succeeded, failed, cancelled"),
                )
            })
    }
}

/// The webhooks service. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    pub(crate) db: DatabaseConnection,
    pub(crate) clock: SharedClock,
    pub(crate) keyring: Keyring,
    /// Posts deliveries: guarded resolver, no redirects, [`REQUEST_TIMEOUT`].
    pub(crate) http: reqwest::Client,
    /// Whether the address guard is off (`EDGE_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES`).
    pub(crate) allow_private: bool,
}

impl fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhooks")
            .field("allow_private", &self.allow_private)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// Builds the service. `allow_private` turns the address guard off.
    pub fn new(
        db: DatabaseConnection,
        clock: SharedClock,
        keyring: Keyring,
        allow_private: bool,
    ) -> Result<Self, Error> {
        Ok(Self {
            db,
            clock,
            keyring,
            http: http_client(allow_private)?,
            allow_private,
        })
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Fans events out and sends due deliveries until the task is aborted, in two loops
    /// side by side (a burst of events does not hold up deliveries already due): each
    /// pass that found work is followed at once by another, otherwise it waits `idle`.
    pub async fn work_forever(self, idle: Duration) {
        let fan_out = repeat(idle, "fanning webhook events out", || {
            crate::tenant_scope::cross_tenant(self.fan_out())
        });
        let deliver = repeat(idle, "sending webhook deliveries", || {
            crate::tenant_scope::cross_tenant(self.deliver_due())
        });
        tokio::join!(fan_out, deliver);
    }
}

/// Runs `pass` forever: again at once after a pass that did something, after `idle`
/// otherwise (and after an error, which is logged).
async fn repeat<F, Fut>(idle: Duration, what: &'static str, pass: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<usize, Error>>,
{
    loop {
        let busy = match pass().await {
            Ok(done) => done > 0,
            Err(err) => {
                tracing::warn!(error = %err, "{what} failed; trying again shortly");
                false
            }
        };
        if !busy {
            tokio::time::sleep(idle).await;
        }
    }
}

/// The client deliveries are posted with: rustls with the platform's verifier, the
/// guarded resolver, no redirects, explicit timeouts.
fn http_client(allow_private: bool) -> Result<reqwest::Client, Error> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::internal)?
        .with_platform_verifier()
        .map_err(Error::internal)?
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .dns_resolver(guard::GuardedResolver::new(allow_private))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(REQUEST_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("Edge-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(Error::internal)
}

/// The organization of a stored `organization_id`.
pub(crate) fn org_of(id: uuid::Uuid) -> OrgId {
    OrgId::from_uuid(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn filters_match_exact_kinds_prefixes_and_everything() {
        assert!(matches(
            &filters(&["deal.stage_changed"]),
            "deal.stage_changed"
        ));
        assert!(!matches(&filters(&["deal.stage_changed"]), "deal.updated"));
        assert!(matches(&filters(&["payment.*"]), "payment.status_changed"));
        assert!(!matches(&filters(&["payment.*"]), "payments.x"));
        assert!(matches(
            &filters(&["whatsapp.*"]),
            "whatsapp.message.received"
        ));
        assert!(matches(&filters(&["*"]), "ticket.created"));
        assert!(!matches(&filters(&[]), "ticket.created"));
    }

    #[test]
    fn only_known_kinds_and_prefixes_are_filters() {
        for ok in [
            "*",
            "payment.*",
            "whatsapp.message.*",
            "whatsapp.*",
            "deal.created",
        ] {
            assert!(is_known_filter(ok), "{ok}");
        }
        for bad in [
            "",
            "payment",
            "pay*",
            "payments.*",
            ".*",
            "deal.nope",
            "webhook.test",
            "**",
            "automation.webhook",
        ] {
            assert!(!is_known_filter(bad), "{bad}");
        }
    }
}
