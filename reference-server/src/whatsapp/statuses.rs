//! Status updates: each message's timeline, and the fee captured or released once.
//!
//! Statuses arrive late, twice, or out of order (`read` before `delivered`, `delivered`
//! without `sent`). Each is recorded in the timeline once (`dedup_key`), the message's
//! status only moves forward ([`MessageStatus::rank`]), and the fee follows the first
//! decisive evidence: `sent`, `delivered` or `read` captures it; `failed` releases it
//! while it is held, and after a capture refunds it with a transfer back to the wallet.
//! The ledger's idempotency keys (`whatsapp:{id}:capture`, `…:release`, `…:refund`)
//! make each of these happen once however often it is asked for.

use chrono::{DateTime, TimeZone as _, Utc};
use edge_core::ledger::{Account, CaptureRequest, TransferRequest};
use edge_core::{Currency, Error, HoldId, IdempotencyKey, Money, OrgId};
use edge_whatsapp::webhook::{DeliveryStatus, StatusUpdate};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _};
use serde_json::json;
use uuid::Uuid;

use super::{ChargeStatus, MessageStatus, WhatsApp, db_err};
use crate::db::begin_write;
use crate::entities::{whatsapp_message_statuses, whatsapp_messages};

/// An error's code, title and details, as stored.
pub(crate) type ErrorParts = (Option<String>, Option<String>, Option<String>);

/// What a status webhook did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusOutcome {
    /// It moved the message (and perhaps its fee).
    Applied,
    /// It was recorded, but the message had moved further already.
    Recorded,
    /// It was seen before.
    Duplicate,
    /// No message of the organization matches it.
    Unmatched,
    /// A status this server does not act on (such as `played`, or an unknown one).
    Ignored,
}

impl StatusOutcome {
    /// The name kept in the webhook inbox.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusOutcome::Applied => "applied",
            StatusOutcome::Recorded => "recorded",
            StatusOutcome::Duplicate => "duplicate",
            StatusOutcome::Unmatched => "unmatched",
            StatusOutcome::Ignored => "ignored",
        }
    }
}

/// Appends a timeline entry; with a `dedup_key`, a second entry with the same key is
/// ignored. Returns whether it was new.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_timeline<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    message: Uuid,
    status: &str,
    dedup_key: Option<&str>,
    occurred_at: DateTime<Utc>,
    error: Option<ErrorParts>,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let (code, title, detail) = error.unwrap_or_default();
    let row = whatsapp_message_statuses::ActiveModel {
        organization_id: Set(org.as_uuid()),
        id: Set(Uuid::now_v7()),
        message_id: Set(message),
        status: Set(status.to_owned()),
        dedup_key: Set(dedup_key.map(str::to_owned)),
        occurred_at: Set(occurred_at),
        error_code: Set(code),
        error_title: Set(title),
        error_detail: Set(detail),
        recorded_at: Set(now),
    };
    let inserted = match dedup_key {
        // Insert unless present: a plain insert would abort a PostgreSQL transaction.
        Some(_) => whatsapp_message_statuses::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    whatsapp_message_statuses::Column::OrganizationId,
                    whatsapp_message_statuses::Column::MessageId,
                    whatsapp_message_statuses::Column::DedupKey,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await
            .map_err(db_err)?,
        None => whatsapp_message_statuses::Entity::insert(row)
            .exec_without_returning(conn)
            .await
            .map_err(db_err)?,
    };
    Ok(inserted > 0)
}

fn status_of(status: &DeliveryStatus) -> Option<MessageStatus> {
    match status {
        DeliveryStatus::Sent => Some(MessageStatus::Sent),
        DeliveryStatus::Delivered => Some(MessageStatus::Delivered),
        DeliveryStatus::Read => Some(MessageStatus::Read),
        DeliveryStatus::Failed => Some(MessageStatus::Failed),
        _ => None,
    }
}

impl WhatsApp {
    /// Applies a status webhook for `org`: finds the message by our id in
    /// `biz_opaque_callback_data`, else by its wamid.
    pub async fn apply_webhook_status(
        &self,
        org: OrgId,
        update: &StatusUpdate,
    ) -> Result<StatusOutcome, Error> {
        let Some(status) = status_of(&update.status) else {
            return Ok(StatusOutcome::Ignored);
        };
        let by_ours = update
            .biz_opaque_callback_data
            .as_deref()
            .and_then(|data| Uuid::parse_str(data).ok());
        let mut select = whatsapp_messages::Entity::find()
            .filter(whatsapp_messages::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_messages::Column::Direction.eq("outbound"));
        select = match by_ours {
            Some(id) => select.filter(whatsapp_messages::Column::Id.eq(id)),
            None => select.filter(whatsapp_messages::Column::Wamid.eq(update.id.as_str())),
        };
        let Some(message) = select.one(&self.db).await.map_err(db_err)? else {
            return Ok(StatusOutcome::Unmatched);
        };
        let occurred_at = update
            .timestamp_secs()
            .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
            .unwrap_or_else(|| self.now());
        let error = update.errors.first().map(|e| {
            (
                e.code.map(|c| c.to_string()),
                e.title.clone().or_else(|| e.message.clone()),
                e.details.clone(),
            )
        });
        if message.wamid.is_none() {
            // The status came before Graph's answer to the send was stored.
            whatsapp_messages::Entity::update_many()
                .col_expr(
                    whatsapp_messages::Column::Wamid,
                    Expr::value(update.id.as_str()),
                )
                .filter(whatsapp_messages::Column::OrganizationId.eq(org.as_uuid()))
                .filter(whatsapp_messages::Column::Id.eq(message.id))
                .filter(whatsapp_messages::Column::Wamid.is_null())
                .exec(&self.db)
                .await
                .map_err(db_err)?;
        }
        let before = self.message_row(org, message.id).await?;
        let new = self
            .apply_status_inner(org, message.id, status, occurred_at, error)
            .await?;
        let after = self.message_row(org, message.id).await?;
        Ok(if !new {
            StatusOutcome::Duplicate
        } else if after.status != before.status || after.charge_status != before.charge_status {
            StatusOutcome::Applied
        } else {
            StatusOutcome::Recorded
        })
    }

    /// Records `status` for message `id` and settles its fee; see the module docs.
    pub(crate) async fn apply_status(
        &self,
        org: OrgId,
        id: Uuid,
        status: MessageStatus,
        occurred_at: DateTime<Utc>,
        error: Option<ErrorParts>,
    ) -> Result<(), Error> {
        self.apply_status_inner(org, id, status, occurred_at, error)
            .await
            .map(|_| ())
    }

    /// Returns whether the status was new to the timeline.
    async fn apply_status_inner(
        &self,
        org: OrgId,
        id: Uuid,
        status: MessageStatus,
        occurred_at: DateTime<Utc>,
        error: Option<ErrorParts>,
    ) -> Result<bool, Error> {
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let new = record_timeline(
            &txn,
            org,
            id,
            status.as_str(),
            Some(status.as_str()),
            occurred_at,
            error.clone(),
            now,
        )
        .await?;
        // Move forward only: a lower-ranked or equal status changes nothing.
        let lower: Vec<&str> = MessageStatus::ALL
            .into_iter()
            .filter(|s| s.rank() < status.rank() && !s.is_final())
            .map(MessageStatus::as_str)
            .collect();
        let mut update = whatsapp_messages::Entity::update_many()
            .col_expr(
                whatsapp_messages::Column::Status,
                Expr::value(status.as_str()),
            )
            .col_expr(
                whatsapp_messages::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(whatsapp_messages::Column::UpdatedAt, Expr::value(now));
        if let Some((code, title, detail)) = &error {
            update = update
                .col_expr(
                    whatsapp_messages::Column::ErrorCode,
                    Expr::value(code.clone()),
                )
                .col_expr(
                    whatsapp_messages::Column::ErrorTitle,
                    Expr::value(title.clone()),
                )
                .col_expr(
                    whatsapp_messages::Column::ErrorDetail,
                    Expr::value(detail.clone()),
                );
        }
        let moved = update
            .filter(whatsapp_messages::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_messages::Column::Id.eq(id))
            .filter(whatsapp_messages::Column::Status.is_in(lower))
            .exec(&txn)
            .await
            .map_err(db_err)?
            .rows_affected
            > 0;
        if moved {
            crate::events::record(
                &txn,
                org,
                "whatsapp.message.status_changed",
                ("whatsapp_message", id),
                json!({
                    "status": status.as_str(),
                    "error_code": error.as_ref().and_then(|e| e.0.clone()),
                }),
                now,
            )
            .await
            .map_err(db_err)?;
        }
        txn.commit().await.map_err(db_err)?;
        self.settle_fee(org, id, status).await?;
        Ok(new)
    }

    /// Captures or gives back a message's fee according to `status`, once.
    async fn settle_fee(&self, org: OrgId, id: Uuid, status: MessageStatus) -> Result<(), Error> {
        let row = self.message_row(org, id).await?;
        let charge = ChargeStatus::parse(&row.charge_status)?;
        match (status, charge, row.hold_id) {
            (
                MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Read,
                ChargeStatus::Held,
                Some(hold),
            ) => {
                let request = CaptureRequest {
                    amount: None,
                    idempotency_key: key(id, "capture")?,
                };
                match self
                    .ledger
                    .capture(org, HoldId::from_uuid(hold), request)
                    .await
                {
                    Ok(_) => {
                        self.set_charge(org, id, ChargeStatus::Held, ChargeStatus::Captured)
                            .await
                    }
                    Err(Error::Conflict(reason)) => {
                        // The hold expired before any status came: the wallet has had it
                        // back, so the message stays uncharged.
                        tracing::warn!(message = %id, %reason, "a message's hold ended before it could be captured");
                        self.set_charge(org, id, ChargeStatus::Held, ChargeStatus::Released)
                            .await
                    }
                    Err(err) => Err(err),
                }
            }
            (MessageStatus::Failed, ChargeStatus::Held, Some(hold)) => {
                self.release(org, id, hold).await?;
                self.set_charge(org, id, ChargeStatus::Held, ChargeStatus::Released)
                    .await
            }
            (MessageStatus::Failed, ChargeStatus::Captured, _) if row.fee_minor > 0 => {
                // Sent, then failed: the capture is given back with a transfer.
                let currency: Currency = row.currency.parse().map_err(Error::internal)?;
                let refund = TransferRequest::new(
                    Account::PlatformRevenue,
                    Account::Wallet(org),
                    Money::from_minor(row.fee_minor, currency),
                    key(id, "refund")?,
                )
                .metadata(json!({ "whatsapp_message_id": id, "reason": "failed after sent" }));
                self.ledger.transfer(org, refund).await?;
                self.set_charge(org, id, ChargeStatus::Captured, ChargeStatus::Released)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// Moves the charge status from `from` to `to` (no change if it moved already).
    async fn set_charge(
        &self,
        org: OrgId,
        id: Uuid,
        from: ChargeStatus,
        to: ChargeStatus,
    ) -> Result<(), Error> {
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let moved = whatsapp_messages::Entity::update_many()
            .col_expr(
                whatsapp_messages::Column::ChargeStatus,
                Expr::value(to.as_str()),
            )
            .col_expr(whatsapp_messages::Column::UpdatedAt, Expr::value(now))
            .filter(whatsapp_messages::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_messages::Column::Id.eq(id))
            .filter(whatsapp_messages::Column::ChargeStatus.eq(from.as_str()))
            .exec(&txn)
            .await
            .map_err(db_err)?
            .rows_affected
            > 0;
        if moved {
            crate::events::record(
                &txn,
                org,
                "whatsapp.message.charge_changed",
                ("whatsapp_message", id),
                json!({ "charge": to.as_str() }),
                now,
            )
            .await
            .map_err(db_err)?;
        }
        txn.commit().await.map_err(db_err)
    }

    pub(crate) async fn message_row(
        &self,
        org: OrgId,
        id: Uuid,
    ) -> Result<whatsapp_messages::Model, Error> {
        whatsapp_messages::Entity::find_by_id((org.as_uuid(), id))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or(Error::not_found("message"))
    }
}

fn key(id: Uuid, what: &str) -> Result<IdempotencyKey, Error> {
    IdempotencyKey::new(format!("whatsapp:{id}:{what}")).map_err(Error::internal)
}
