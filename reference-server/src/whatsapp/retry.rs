//! The retry queue: sends Graph refused for throughput (130429 on the number, 131056 on
//! the number → recipient pair) are tried again later, not refunded at once.
//!
//! The first refusal stores `next_attempt_at` (exponential backoff, 4^n seconds for the
//! pair limit) and keeps the fee held. Every few seconds each server takes the due
//! messages, claiming each one first (so two servers never send the same message twice),
//! and sends it again through the number's pacer. A message that runs out of attempts
//! (five) fails and its fee is released; one whose number was disconnected meanwhile
//! fails the same way.

use chrono::TimeDelta;
use edge_core::{Error, OrgId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait as _, Condition, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _,
};

use super::send::{Sent, SendError, content_of};
use super::{MessageStatus, WhatsApp, db_err};
use crate::entities::whatsapp_messages;
use crate::tenant_scope;

/// How long one worker holds a due message while sending it.
pub const CLAIM: TimeDelta = TimeDelta::seconds(60);

/// How many due messages one pass takes.
pub const BATCH: u64 = 50;

impl WhatsApp {
    /// Sends the messages whose next attempt is due; returns how many were tried. Run it
    /// cross-tenant: each message is sent in its organization's scope.
    pub async fn retry_due(&self) -> Result<usize, Error> {
        let now = self.now();
        let due = whatsapp_messages::Entity::find()
            .filter(whatsapp_messages::Column::NextAttemptAt.lte(now))
            .filter(whatsapp_messages::Column::Status.eq(MessageStatus::Queued.as_str()))
            .filter(whatsapp_messages::Column::Direction.eq("outbound"))
            .filter(
                Condition::any()
                    .add(whatsapp_messages::Column::ClaimedUntil.is_null())
                    .add(whatsapp_messages::Column::ClaimedUntil.lt(now)),
            )
            .order_by_asc(whatsapp_messages::Column::NextAttemptAt)
            .limit(BATCH)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut tried = 0;
        for message in due {
            let org = super::org_of(message.organization_id);
            let claimed = whatsapp_messages::Entity::update_many()
                .col_expr(whatsapp_messages::Column::ClaimedUntil, Expr::value(now + CLAIM))
                .filter(whatsapp_messages::Column::OrganizationId.eq(message.organization_id))
                .filter(whatsapp_messages::Column::Id.eq(message.id))
                .filter(whatsapp_messages::Column::Status.eq(MessageStatus::Queued.as_str()))
                .filter(whatsapp_messages::Column::NextAttemptAt.lte(now))
                .filter(
                    Condition::any()
                        .add(whatsapp_messages::Column::ClaimedUntil.is_null())
                        .add(whatsapp_messages::Column::ClaimedUntil.lt(now)),
                )
                .exec(&self.db)
                .await
                .map_err(db_err)?
                .rows_affected
                > 0;
            if !claimed {
                continue;
            }
            tried += 1;
            let result = tenant_scope::in_organization(org, self.retry_one(org, message)).await;
            if let Err(err) = result {
                tracing::warn!(%org, error = %err, "a WhatsApp retry failed; it is tried again when its claim expires");
            }
        }
        Ok(tried)
    }

    async fn retry_one(&self, org: OrgId, message: whatsapp_messages::Model) -> Result<(), Error> {
        let number = self.number_row(&self.db, org, message.number_id).await?;
        if number.status != "connected" {
            let err = edge_whatsapp::Error::invalid(
                "the number was disconnected before the message could be sent",
            );
            return self
                .fail(org, message.id, message.attempts, &err, self.now())
                .await;
        }
        let content = content_of(&message)?;
        let id = message.id;
        match self.attempt(message, &number, content).await {
            Ok(Sent::Accepted(_)) => tracing::info!(message = %id, "a throttled WhatsApp message was sent"),
            Ok(_) => {}
            Err(SendError::Rejected { error, .. }) => {
                tracing::info!(message = %id, %error, "a throttled WhatsApp message failed; its fee was released");
            }
            Err(SendError::Refused(err)) => return Err(err),
            Err(SendError::TemplateRequired(reason)) => {
                return Err(Error::internal(format!(
                    "a retry asked for a template: {reason}"
                )));
            }
        }
        Ok(())
    }
}
