//! WhatsApp in the reference server: tenants' business numbers, the platform webhook,
//! inbound messages into the CRM, and paid sends that refund themselves on failure.
//!
//! - [`numbers`]: an organization connects a number (its access token sealed at rest),
//!   checked against Graph; a connected number belongs to exactly one organization.
//! - [`webhook`]: `/webhooks/whatsapp` checks the signature over the raw bytes, stores the
//!   body, answers, then routes every change of the batch to its organization by phone
//!   number id (WABA id for account-level changes).
//! - [`inbound`]: inbound messages land on the matching CRM contact's conversation (an
//!   unknown sender becomes a prospect) and open the 24-hour customer-service window.
//! - [`send`]: `POST /whatsapp/messages` checks the window, reserves the fee, sends with
//!   our message id as `biz_opaque_callback_data`, and releases the fee on a synchronous
//!   error. [`statuses`] captures it on `sent`/`delivered`/`read` and releases it on
//!   `failed`; [`retry`] sends throttled messages again later, keeping the hold.
//! - [`conversations`]: the inbox and each conversation's messages.
//! - [`contacts`]: which CRM contact a phone number or WhatsApp id is.

pub mod contacts;
pub mod conversations;
pub mod inbound;
pub mod numbers;
pub mod retry;
pub mod send;
pub mod statuses;
pub mod webhook;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use edge_core::{Error, OrgId, SharedClock};
use edge_tenancy::Keyring;
use edge_whatsapp::webhook::WebhookVerifier;
use edge_whatsapp::{Pacer, WhatsAppClient};
use sea_orm::DatabaseConnection;

use crate::config::WhatsAppConfig;

pub(crate) use crate::db::{db_err, is_unique_violation};

/// Where an outbound message stands (inbound ones are `received`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// An inbound message, stored.
    Received,
    /// Waiting to be sent: a throttled send waiting for its next attempt, or a send whose
    /// answer never came, waiting for its status.
    Queued,
    /// Graph accepted it.
    Accepted,
    /// WhatsApp sent it.
    Sent,
    /// It reached the phone.
    Delivered,
    /// The recipient read it.
    Read,
    /// It was not sent or not delivered; the fee was refunded.
    Failed,
}

impl MessageStatus {
    /// Every status.
    pub const ALL: [MessageStatus; 7] = [
        MessageStatus::Received,
        MessageStatus::Queued,
        MessageStatus::Accepted,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Read,
        MessageStatus::Failed,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Received => "received",
            MessageStatus::Queued => "queued",
            MessageStatus::Accepted => "accepted",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
        }
    }

    /// How far along it is: a status only replaces one of a lower rank, so statuses that
    /// arrive late or twice never move a message back. `failed` and `read` are final.
    pub fn rank(self) -> u8 {
        match self {
            MessageStatus::Received | MessageStatus::Queued => 0,
            MessageStatus::Accepted => 1,
            MessageStatus::Sent => 2,
            MessageStatus::Delivered => 3,
            MessageStatus::Read => 4,
            MessageStatus::Failed => 5,
        }
    }

    /// Whether nothing moves it any more.
    pub fn is_final(self) -> bool {
        matches!(self, MessageStatus::Read | MessageStatus::Failed)
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "status",
                    format!(
                        "{s:?} is not one of received, queued, accepted, sent, delivered, read, failed"
                    ),
                )
            })
    }
}

/// Where a message's fee stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    /// Nothing charged (inbound messages, free categories).
    None,
    /// Reserved in the wallet, waiting for the outcome.
    Held,
    /// Charged: the message was sent.
    Captured,
    /// Given back: the message failed.
    Released,
}

impl ChargeStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeStatus::None => "none",
            ChargeStatus::Held => "held",
            ChargeStatus::Captured => "captured",
            ChargeStatus::Released => "released",
        }
    }

    /// The status of a stored name.
    pub fn parse(s: &str) -> Result<Self, Error> {
        [
            ChargeStatus::None,
            ChargeStatus::Held,
            ChargeStatus::Captured,
            ChargeStatus::Released,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
        .ok_or_else(|| Error::internal(format!("unknown charge status {s:?}")))
    }
}

/// How many webhook bodies are processed at once in the background, per server.
pub const PROCESSING_AT_ONCE: usize = 8;

/// The WhatsApp service: everything in this module hangs off it. Cheap to clone.
#[derive(Clone)]
pub struct WhatsApp {
    pub(crate) db: DatabaseConnection,
    pub(crate) clock: SharedClock,
    pub(crate) ledger: Arc<dyn edge_core::Ledger>,
    pub(crate) keyring: Keyring,
    pub(crate) client: WhatsAppClient,
    /// Paces sends per business number, on this server.
    pub(crate) pacer: Pacer,
    pub(crate) config: Arc<WhatsAppConfig>,
    /// Checks webhook signatures; `None` until the app secret is configured.
    pub(crate) verifier: Option<Arc<WebhookVerifier>>,
    /// Bounds the webhook bodies processed at once in the background.
    pub(crate) processing: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for WhatsApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsApp")
            .field("base_url", &self.client.base_url())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WhatsApp {
    /// Builds the service.
    pub fn new(
        db: DatabaseConnection,
        clock: SharedClock,
        ledger: Arc<dyn edge_core::Ledger>,
        keyring: Keyring,
        config: WhatsAppConfig,
    ) -> Result<Self, Error> {
        let mut builder = WhatsAppClient::builder();
        if let Some(url) = &config.base_url {
            builder = builder.base_url(url.clone());
        }
        let client = builder.build().map_err(Error::internal)?;
        let verifier = match (&config.app_secret, &config.verify_token) {
            (Some(secret), token) => Some(Arc::new(WebhookVerifier::new(
                secret.clone(),
                // Without a verify token no handshake can succeed: an empty token never
                // matches, as Meta always sends one.
                token
                    .clone()
                    .unwrap_or_else(|| secrecy::SecretString::from(String::new())),
            ))),
            (None, _) => None,
        };
        Ok(Self {
            db,
            clock,
            ledger,
            keyring,
            client,
            pacer: Pacer::default(),
            config: Arc::new(config),
            verifier,
            processing: Arc::new(tokio::sync::Semaphore::new(PROCESSING_AT_ONCE)),
        })
    }

    /// The time now.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// How long a fee stays reserved.
    pub(crate) fn hold_for(&self) -> TimeDelta {
        TimeDelta::from_std(self.config.hold_for).unwrap_or(TimeDelta::hours(72))
    }
}

/// The first characters of a text, for lists (at most 120 characters, on one line).
pub(crate) fn preview(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(121)
        .collect();
    let line = line.trim();
    if line.chars().count() > 120 {
        format!("{}…", line.chars().take(119).collect::<String>())
    } else {
        line.to_owned()
    }
}

/// A Graph failure as the server's error (502, or 504 when the request may have arrived).
pub(crate) fn upstream(err: &edge_whatsapp::Error) -> Error {
    Error::Upstream {
        service: "whatsapp",
        message: err.to_string(),
        timed_out: err.may_have_been_sent(),
    }
}

/// The organization of a row's `organization_id`.
pub(crate) fn org_of(id: uuid::Uuid) -> OrgId {
    OrgId::from_uuid(id)
}
