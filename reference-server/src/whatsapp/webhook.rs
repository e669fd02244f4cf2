//! The platform webhook, `/webhooks/whatsapp`: one URL for every tenant's numbers.
//!
//! [`WhatsApp::receive_webhook`] checks `X-Hub-Signature-256` over the raw bytes (a bad
//! or missing signature is refused and nothing is stored), then stores the body byte for
//! byte before anything parses it. [`WhatsApp::process_webhook`] then routes **every**
//! change of the batch: by `metadata.phone_number_id` to the organization that connected
//! the number, or by WABA id for account-level changes. Changes for ids nobody connected
//! (offboarded tenants, Meta's "Test" button) are kept in the inbox as `unrouted` and
//! answered 200, as Meta would otherwise retry them for days. Each change is handled in
//! its organization's tenant scope; inbound messages and statuses de-duplicate
//! themselves, so a body processed twice (a redelivery, or a crash halfway) changes
//! nothing the second time.

use std::time::Duration;

use chrono::TimeDelta;
use edge_core::{Error, OrgId};
use edge_whatsapp::webhook::{EventKind, HandshakeError, SignatureError, TenantKey, parse_events};
use http::HeaderMap;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait as _, Condition, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::inbound::InboundOutcome;
use super::{WhatsApp, db_err, numbers};
use crate::entities::whatsapp_webhooks;
use crate::tenant_scope;

/// How long one processing holds a stored body before another may take it.
pub const CLAIM: TimeDelta = TimeDelta::seconds(60);

/// Bodies left unprocessed this long (a crash, a failed processing) are taken again by
/// the sweep.
pub const SWEEP_AFTER: TimeDelta = TimeDelta::seconds(30);

/// Why a webhook was refused.
#[derive(Debug)]
pub enum WebhookRefusal {
    /// The app secret is not configured: nothing can be verified (503).
    NotConfigured,
    /// The signature is missing or wrong (401).
    BadSignature(SignatureError),
    /// Storing failed (500: Meta retries).
    Store(Error),
}

/// How processing a stored body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Every change reached its organization.
    Processed,
    /// Some changes did; others name ids nobody connected.
    PartlyUnrouted,
    /// No change could be routed.
    Unrouted,
    /// The body is not a webhook notification.
    Invalid,
    /// Another processing holds it and will record the outcome.
    InProgress,
    /// It was processed before.
    AlreadyProcessed,
}

impl WebhookOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Processed => "processed",
            WebhookOutcome::PartlyUnrouted => "partly_unrouted",
            WebhookOutcome::Unrouted => "unrouted",
            WebhookOutcome::Invalid => "invalid",
            WebhookOutcome::InProgress => "in_progress",
            WebhookOutcome::AlreadyProcessed => "already_processed",
        }
    }
}

impl WhatsApp {
    /// The GET handshake: the challenge to echo, or why not.
    pub fn handshake(&self, query: &str) -> Result<String, Option<HandshakeError>> {
        match (&self.verifier, &self.config.verify_token) {
            (Some(verifier), Some(_)) => verifier.handshake(query).map_err(Some),
            _ => Err(None),
        }
    }

    /// Verifies and stores a webhook body; returns its id for [`Self::process_webhook`].
    pub async fn receive_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Uuid, WebhookRefusal> {
        let verifier = self.verifier.as_ref().ok_or(WebhookRefusal::NotConfigured)?;
        verifier
            .verify_headers(headers, body)
            .map_err(WebhookRefusal::BadSignature)?;
        let id = Uuid::now_v7();
        whatsapp_webhooks::Entity::insert(whatsapp_webhooks::ActiveModel {
            id: Set(id),
            body: Set(body.to_vec()),
            received_at: Set(self.now()),
            processed_at: Set(None),
            claimed_until: Set(None),
            outcome: Set(None),
            detail: Set(None),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(|err| WebhookRefusal::Store(db_err(err)))?;
        Ok(id)
    }

    /// Processes a stored body after the answer, bounded by [`super::PROCESSING_AT_ONCE`];
    /// a failure is left to the sweep.
    pub fn process_webhook_in_background(&self, id: Uuid) {
        let whatsapp = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = whatsapp.processing.clone().acquire_owned().await else {
                return;
            };
            if let Err(err) = tenant_scope::cross_tenant(whatsapp.process_webhook(id)).await {
                tracing::warn!(webhook = %id, error = %err, "processing a WhatsApp webhook failed; the sweep will retry");
            }
        });
    }

    /// Routes and applies every change of a stored body (run it cross-tenant: each change
    /// is then handled in its own organization's scope).
    pub async fn process_webhook(&self, id: Uuid) -> Result<WebhookOutcome, Error> {
        let row = whatsapp_webhooks::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or(Error::not_found("webhook"))?;
        if row.processed_at.is_some() {
            return Ok(WebhookOutcome::AlreadyProcessed);
        }
        let now = self.now();
        let claimed = whatsapp_webhooks::Entity::update_many()
            .col_expr(whatsapp_webhooks::Column::ClaimedUntil, Expr::value(now + CLAIM))
            .filter(whatsapp_webhooks::Column::Id.eq(id))
            .filter(whatsapp_webhooks::Column::ProcessedAt.is_null())
            .filter(
                Condition::any()
                    .add(whatsapp_webhooks::Column::ClaimedUntil.is_null())
                    .add(whatsapp_webhooks::Column::ClaimedUntil.lt(now)),
            )
            .exec(&self.db)
            .await
            .map_err(db_err)?
            .rows_affected
            > 0;
        if !claimed {
            return Ok(WebhookOutcome::InProgress);
        }
        let (outcome, detail) = match parse_events(&row.body) {
            Err(err) => (WebhookOutcome::Invalid, vec![json!({ "error": err.to_string() })]),
            Ok(events) => {
                let mut detail = Vec::with_capacity(events.len());
                let (mut routed, mut unrouted) = (0usize, 0usize);
                for event in &events {
                    let key = event.dedup_key();
                    let (org, result) = self.route_and_apply(event).await?;
                    match org {
                        Some(_) => routed += 1,
                        None => unrouted += 1,
                    }
                    detail.push(json!({
                        "key": key,
                        "organization_id": org.map(|o| o.as_uuid()),
                        "result": result,
                    }));
                }
                let outcome = match (routed, unrouted) {
                    (_, 0) => WebhookOutcome::Processed,
                    (0, _) => WebhookOutcome::Unrouted,
                    _ => WebhookOutcome::PartlyUnrouted,
                };
                if unrouted > 0 {
                    tracing::warn!(webhook = %id, unrouted, "WhatsApp webhook changes for ids no organization has connected; kept in the inbox");
                }
                (outcome, detail)
            }
        };
        whatsapp_webhooks::Entity::update_many()
            .col_expr(whatsapp_webhooks::Column::Outcome, Expr::value(outcome.as_str()))
            .col_expr(whatsapp_webhooks::Column::Detail, Expr::value(Value::Array(detail)))
            .col_expr(whatsapp_webhooks::Column::ProcessedAt, Expr::value(self.now()))
            .filter(whatsapp_webhooks::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(outcome)
    }

    /// Finds the organization of one event and applies it there. Returns the
    /// organization (`None` when unrouted) and what happened, in words.
    async fn route_and_apply(
        &self,
        event: &edge_whatsapp::webhook::WebhookEvent,
    ) -> Result<(Option<OrgId>, String), Error> {
        let (org, number) = match event.routing.tenant_key() {
            Some(TenantKey::PhoneNumber(pnid)) => {
                match numbers::by_phone_number_id(&self.db, pnid.as_str()).await? {
                    Some(number) => (Some(super::org_of(number.organization_id)), Some(number)),
                    None => (None, None),
                }
            }
            Some(TenantKey::Waba(waba)) => (numbers::org_of_waba(&self.db, waba.as_str()).await?, None),
            None => (None, None),
        };
        let Some(org) = org else {
            return Ok((None, "unrouted".into()));
        };
        let result = tenant_scope::in_organization(org, async {
            match (&event.kind, &number) {
                (EventKind::Message(message), Some(number)) => {
                    Ok(match self.receive_message(number, message).await? {
                        InboundOutcome::Stored { prospect_created: true } => {
                            "message stored; new prospect".to_owned()
                        }
                        InboundOutcome::Stored { .. } => "message stored".to_owned(),
                        InboundOutcome::Duplicate => "duplicate".to_owned(),
                    })
                }
                (EventKind::Status(status), _) => self
                    .apply_webhook_status(org, status)
                    .await
                    .map(|outcome| format!("status {}: {}", status.status.as_str(), outcome.as_str())),
                (EventKind::Error(error), _) => {
                    tracing::warn!(%org, code = ?error.code, message = ?error.message, "WhatsApp reported an error for an organization's number");
                    Ok(format!("error {}", error.code.unwrap_or_default()))
                }
                (EventKind::Unknown(unknown), _) => Ok(format!("kept: {}", unknown.reason)),
                (other, None) => Ok(format!("kept: {} without a number", kind_name(other))),
                (other, _) => Ok(format!("kept: {}", kind_name(other))),
            }
        })
        .await?;
        Ok((Some(org), result))
    }

    /// Processes bodies stored but not processed (a crash between storing and processing,
    /// or a processing that failed), oldest first.
    pub async fn sweep_webhooks(&self) -> Result<usize, Error> {
        let cutoff = self.now() - SWEEP_AFTER;
        let ids: Vec<Uuid> = whatsapp_webhooks::Entity::find()
            .select_only()
            .column(whatsapp_webhooks::Column::Id)
            .filter(whatsapp_webhooks::Column::ProcessedAt.is_null())
            .filter(whatsapp_webhooks::Column::ReceivedAt.lt(cutoff))
            .order_by_asc(whatsapp_webhooks::Column::ReceivedAt)
            .limit(100)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut done = 0;
        for id in ids {
            match self.process_webhook(id).await {
                Ok(WebhookOutcome::InProgress) => {}
                Ok(_) => done += 1,
                Err(err) => tracing::warn!(webhook = %id, error = %err, "processing a WhatsApp webhook failed again"),
            }
        }
        Ok(done)
    }

    /// The background work of WhatsApp, forever: the webhook sweep and the retry queue.
    pub async fn work_forever(self, every: Duration) {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match tenant_scope::cross_tenant(self.sweep_webhooks()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(bodies = n, "unprocessed WhatsApp webhooks processed"),
                Err(err) => tracing::warn!(error = %err, "the WhatsApp webhook sweep failed"),
            }
            match tenant_scope::cross_tenant(self.retry_due()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(messages = n, "throttled WhatsApp messages tried again"),
                Err(err) => tracing::warn!(error = %err, "the WhatsApp retry queue failed"),
            }
        }
    }
}

fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Message(_) => "message",
        EventKind::Status(_) => "status",
        EventKind::Error(_) => "error",
        _ => "event",
    }
}
