//! Inbound messages: into the CRM contact's conversation, once.
//!
//! The sender is matched to a CRM contact (see [`super::contacts`]; an unknown sender
//! becomes a prospect with lead source "WhatsApp"), the message is stored on the
//! conversation with WhatsApp's id (a repeated delivery is recognised by it and changes
//! nothing), the conversation's 24-hour customer-service window restarts on the number
//! written to, and a `whatsapp.message.received` event is recorded.

use chrono::{TimeZone as _, Utc};
use edge_core::{Error, OrgId};
use edge_whatsapp::webhook::{InboundMessage, MessageContent};
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::json;
use uuid::Uuid;

use super::contacts::{self, Sender};
use super::{MessageStatus, WhatsApp, db_err, is_unique_violation, preview};
use crate::db::begin_write;
use crate::entities::{whatsapp_messages, whatsapp_numbers};

/// What receiving an inbound message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundOutcome {
    /// Stored; `prospect_created` when the sender was new to the CRM.
    Stored {
        /// A prospect was created for the sender.
        prospect_created: bool,
    },
    /// Seen before.
    Duplicate,
}

/// What a list shows of an inbound message.
fn preview_of(message: &InboundMessage) -> String {
    let text = match &message.content {
        MessageContent::Text { body } => body.clone(),
        MessageContent::Image(m)
        | MessageContent::Video(m)
        | MessageContent::Audio(m)
        | MessageContent::Document(m)
        | MessageContent::Sticker(m) => format!(
            "[{}] {}",
            message.type_name().unwrap_or("media"),
            m.caption.as_deref().or(m.filename.as_deref()).unwrap_or("")
        ),
        MessageContent::Location(l) => {
            format!(
                "[location] {}",
                l.name.as_deref().or(l.address.as_deref()).unwrap_or("")
            )
        }
        MessageContent::Button { text, .. } => text.clone().unwrap_or_default(),
        MessageContent::Reaction { emoji, .. } => {
            format!("[reaction] {}", emoji.as_deref().unwrap_or(""))
        }
        _ => format!("[{}]", message.type_name().unwrap_or("message")),
    };
    preview(&text)
}

/// Whether a message restarts the customer-service window: anything the user wrote, but
/// not a system notice or a message WhatsApp could not deliver to us.
fn opens_window(message: &InboundMessage) -> bool {
    !matches!(
        message.content,
        MessageContent::System(_) | MessageContent::Unsupported { .. }
    )
}

impl WhatsApp {
    /// Stores an inbound message written to `number`; see the module documentation.
    pub async fn receive_message(
        &self,
        number: &whatsapp_numbers::Model,
        message: &InboundMessage,
    ) -> Result<InboundOutcome, Error> {
        let org = super::org_of(number.organization_id);
        if self.inbound_exists(org, message.id.as_str()).await? {
            return Ok(InboundOutcome::Duplicate);
        }
        let now = self.now();
        let sender = Sender {
            wa_id: message
                .from
                .clone()
                .or_else(|| message.contact.as_ref().and_then(|c| c.wa_id.clone())),
            user_id: message
                .from_user_id
                .as_ref()
                .map(|u| u.as_str().to_owned())
                .or_else(|| {
                    message
                        .contact
                        .as_ref()
                        .and_then(|c| c.user_id.as_ref().map(|u| u.as_str().to_owned()))
                }),
            name: message.contact.as_ref().and_then(|c| c.name.clone()),
        };
        let (conversation, contact, prospect_created) =
            contacts::conversation_for_sender(&self.db, org, &sender, now).await?;
        let occurred_at = message
            .timestamp_secs()
            .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
            .unwrap_or(now);
        let currency = crate::entities::organizations::Entity::find_by_id(org.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or(Error::not_found("organization"))?
            .currency;
        let kind = message.type_name().unwrap_or("unknown");
        let row = whatsapp_messages::Model {
            organization_id: org.as_uuid(),
            id: Uuid::now_v7(),
            conversation_id: conversation.id,
            number_id: number.id,
            direction: "inbound".into(),
            wamid: Some(message.id.as_str().to_owned()),
            kind: kind.chars().take(16).collect(),
            content: message.raw.clone(),
            preview: Some(preview_of(message)),
            status: MessageStatus::Received.as_str().into(),
            category: None,
            fee_minor: 0,
            currency,
            hold_id: None,
            charge_status: super::ChargeStatus::None.as_str().into(),
            idempotency_key: None,
            request_fingerprint: None,
            error_code: message
                .errors
                .first()
                .and_then(|e| e.code.map(|c| c.to_string())),
            error_title: message
                .errors
                .first()
                .and_then(|e| e.title.clone().or_else(|| e.message.clone())),
            error_detail: message.errors.first().and_then(|e| e.details.clone()),
            attempts: 0,
            next_attempt_at: None,
            claimed_until: None,
            sent_by: None,
            occurred_at,
            created_at: now,
            updated_at: now,
        };
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        match whatsapp_messages::Entity::insert(whatsapp_messages::ActiveModel::from(row.clone()))
            .exec_without_returning(&txn)
            .await
        {
            Ok(_) => {}
            // The same message, delivered twice at once: the other delivery stored it.
            Err(err) if is_unique_violation(&err) => {
                txn.rollback().await.map_err(db_err)?;
                return Ok(InboundOutcome::Duplicate);
            }
            Err(err) => return Err(db_err(err)),
        }
        super::statuses::record_timeline(
            &txn,
            org,
            row.id,
            "received",
            Some("received"),
            occurred_at,
            None,
            now,
        )
        .await?;
        super::conversations::touch(&txn, org, conversation.id, &row, opens_window(message), now)
            .await?;
        crate::events::record(
            &txn,
            org,
            "whatsapp.message.received",
            ("whatsapp_message", row.id),
            json!({
                "conversation_id": conversation.id,
                "contact": contact,
                "prospect_created": prospect_created,
                "number_id": number.id,
                "kind": row.kind,
                "preview": row.preview,
            }),
            now,
        )
        .await
        .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        Ok(InboundOutcome::Stored { prospect_created })
    }

    async fn inbound_exists(&self, org: OrgId, wamid: &str) -> Result<bool, Error> {
        Ok(whatsapp_messages::Entity::find()
            .filter(whatsapp_messages::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_messages::Column::Wamid.eq(wamid))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .is_some())
    }
}
