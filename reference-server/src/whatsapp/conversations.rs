//! The WhatsApp inbox: conversations, most recent first, and each conversation's
//! messages, newest first, both in keyset pages; and how a message is shown.

use chrono::{DateTime, Utc};
use edge_core::{Currency, Error, Money, OrgId, Page, PageRequest};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, EntityTrait as _, QueryFilter as _,
    QueryOrder as _, QuerySelect as _,
};
use serde::Serialize;
use uuid::Uuid;

use super::contacts::{self, Contact};
use super::{ChargeStatus, MessageStatus, WhatsApp, db_err};
use crate::entities::{whatsapp_conversations, whatsapp_message_statuses, whatsapp_messages};

/// A message as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MessageView {
    /// Our id (sent to Graph as `biz_opaque_callback_data`).
    pub id: Uuid,
    /// The conversation.
    pub conversation_id: Uuid,
    /// The organization's number it went from or came to.
    pub number_id: Uuid,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Graph's message id.
    pub wamid: Option<String>,
    /// `text`, `template`, `image`, … (inbound: the type WhatsApp reported).
    pub kind: String,
    /// What was sent or received.
    pub content: serde_json::Value,
    /// Where it stands.
    pub status: MessageStatus,
    /// The charge: category, fee, and whether it is held, captured or released.
    pub charge: Charge,
    /// The last error Graph reported for it.
    pub error: Option<MessageError>,
    /// Send attempts made.
    pub attempts: i32,
    /// When a throttled send is tried again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Who sent it.
    pub sent_by: Option<Uuid>,
    /// When it was sent or written.
    pub occurred_at: DateTime<Utc>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Its statuses, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// A message's fee.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Charge {
    /// The pricing category.
    pub category: Option<String>,
    /// The fee.
    pub fee: Money,
    /// `none`, `held`, `captured` or `released`.
    pub status: ChargeStatus,
    /// The wallet hold.
    pub hold_id: Option<Uuid>,
}

/// An error Graph reported.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MessageError {
    /// Graph's code, such as `131026`.
    pub code: Option<String>,
    /// Its title or message.
    pub title: Option<String>,
    /// Its details.
    pub detail: Option<String>,
}

/// One status in a message's timeline.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// `accepted`, `retry_scheduled`, `sent`, `delivered`, `read`, `failed`, `received`.
    pub status: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The error, for `failed` and `retry_scheduled`.
    pub error: Option<MessageError>,
}

fn error_of(
    code: &Option<String>,
    title: &Option<String>,
    detail: &Option<String>,
) -> Option<MessageError> {
    (code.is_some() || title.is_some() || detail.is_some()).then(|| MessageError {
        code: code.clone(),
        title: title.clone(),
        detail: detail.clone(),
    })
}

impl MessageView {
    /// The view of a row and its timeline.
    pub fn new(
        row: &whatsapp_messages::Model,
        timeline: &[whatsapp_message_statuses::Model],
    ) -> Result<Self, Error> {
        let currency: Currency = row.currency.parse().map_err(Error::internal)?;
        Ok(Self {
            id: row.id,
            conversation_id: row.conversation_id,
            number_id: row.number_id,
            direction: row.direction.clone(),
            wamid: row.wamid.clone(),
            kind: row.kind.clone(),
            content: row.content.clone(),
            status: row.status.parse()?,
            charge: Charge {
                category: row.category.clone(),
                fee: Money::from_minor(row.fee_minor, currency),
                status: ChargeStatus::parse(&row.charge_status)?,
                hold_id: row.hold_id,
            },
            error: error_of(&row.error_code, &row.error_title, &row.error_detail),
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            sent_by: row.sent_by,
            occurred_at: row.occurred_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            timeline: timeline
                .iter()
                .map(|t| TimelineEntry {
                    status: t.status.clone(),
                    at: t.occurred_at,
                    error: error_of(&t.error_code, &t.error_title, &t.error_detail),
                })
                .collect(),
        })
    }
}

/// A conversation as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ConversationView {
    /// The conversation's id.
    pub id: Uuid,
    /// The CRM contact.
    pub contact: Contact,
    /// Their WhatsApp id.
    pub wa_id: Option<String>,
    /// Their business-scoped user id.
    pub user_id: Option<String>,
    /// Their WhatsApp profile name.
    pub profile_name: Option<String>,
    /// The number they last wrote to.
    pub number_id: Option<Uuid>,
    /// Whether free-form messages may be sent now.
    pub window_open: bool,
    /// When the customer-service window closes (or closed).
    pub window_expires_at: Option<DateTime<Utc>>,
    /// When they last wrote.
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// The latest message.
    pub last_message_at: DateTime<Utc>,
    /// Its preview.
    pub last_message_preview: Option<String>,
    /// Inbound messages not yet read by the organization.
    pub unread_count: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// Records `message` as the conversation's latest; an inbound one also counts as unread
/// and, when `opens_window`, restarts the 24-hour window on its number.
pub(crate) async fn touch<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    conversation: Uuid,
    message: &whatsapp_messages::Model,
    opens_window: bool,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let mut update = whatsapp_conversations::Entity::update_many()
        .col_expr(
            whatsapp_conversations::Column::LastMessageAt,
            Expr::value(message.occurred_at),
        )
        .col_expr(
            whatsapp_conversations::Column::LastMessageId,
            Expr::value(message.id),
        )
        .col_expr(
            whatsapp_conversations::Column::LastMessagePreview,
            Expr::value(message.preview.clone()),
        )
        .col_expr(whatsapp_conversations::Column::UpdatedAt, Expr::value(now));
    if message.direction == "inbound" {
        update = update.col_expr(
            whatsapp_conversations::Column::UnreadCount,
            Expr::col(whatsapp_conversations::Column::UnreadCount).add(1),
        );
    }
    if opens_window {
        update = update
            .col_expr(
                whatsapp_conversations::Column::LastInboundAt,
                Expr::value(message.occurred_at),
            )
            .col_expr(
                whatsapp_conversations::Column::WindowExpiresAt,
                Expr::value(message.occurred_at + chrono::TimeDelta::hours(24)),
            )
            .col_expr(
                whatsapp_conversations::Column::NumberId,
                Expr::value(message.number_id),
            );
    }
    // A message older than the conversation's latest changes nothing here: webhooks may
    // arrive out of order, and the later message already set all of this.
    update
        .filter(whatsapp_conversations::Column::OrganizationId.eq(org.as_uuid()))
        .filter(whatsapp_conversations::Column::Id.eq(conversation))
        .filter(
            Condition::any()
                .add(whatsapp_conversations::Column::LastMessageId.is_null())
                .add(whatsapp_conversations::Column::LastMessageAt.lte(message.occurred_at)),
        )
        .exec(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

impl WhatsApp {
    /// One message with its timeline; `NotFound` for another organization's.
    pub async fn message(&self, org: OrgId, id: Uuid) -> Result<MessageView, Error> {
        let row = self.message_row(org, id).await?;
        let timeline = whatsapp_message_statuses::Entity::find()
            .filter(whatsapp_message_statuses::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_message_statuses::Column::MessageId.eq(id))
            .order_by_asc(whatsapp_message_statuses::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        MessageView::new(&row, &timeline)
    }

    /// The organization's conversations, most recent first.
    pub async fn conversations(
        &self,
        org: OrgId,
        page: &PageRequest,
    ) -> Result<Page<ConversationView>, Error> {
        let after: Option<(DateTime<Utc>, Uuid)> = page.after().map_err(Error::from)?;
        let mut select = whatsapp_conversations::Entity::find()
            .filter(whatsapp_conversations::Column::OrganizationId.eq(org.as_uuid()));
        if let Some((at, id)) = after {
            select = select.filter(
                Condition::any()
                    .add(whatsapp_conversations::Column::LastMessageAt.lt(at))
                    .add(
                        Expr::col(whatsapp_conversations::Column::LastMessageAt)
                            .eq(at)
                            .and(Expr::col(whatsapp_conversations::Column::Id).lt(id)),
                    ),
            );
        }
        let limit = page.limit();
        let rows = select
            .order_by_desc(whatsapp_conversations::Column::LastMessageAt)
            .order_by_desc(whatsapp_conversations::Column::Id)
            .limit(u64::from(limit) + 1)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let now = self.now();
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(self.conversation_view(org, row, now).await?);
        }
        Ok(Page::from_overfetch(views, limit, |c| {
            (c.last_message_at, c.id)
        }))
    }

    async fn conversation_view(
        &self,
        org: OrgId,
        row: whatsapp_conversations::Model,
        now: DateTime<Utc>,
    ) -> Result<ConversationView, Error> {
        let contact = match contacts::find_contact(&self.db, org, row.contact_id).await? {
            Some(contact) => contact,
            // Deleted since: shown as it was known.
            None => Contact {
                kind: if row.contact_type == "relationship" {
                    contacts::ContactKind::Relationship
                } else {
                    contacts::ContactKind::Prospect
                },
                id: row.contact_id,
                name: row.profile_name.clone().unwrap_or_default(),
                phone: row.phone.clone(),
            },
        };
        Ok(ConversationView {
            id: row.id,
            contact,
            wa_id: row.wa_id,
            user_id: row.user_id,
            profile_name: row.profile_name,
            number_id: row.number_id,
            window_open: row.window_expires_at.is_some_and(|at| at > now),
            window_expires_at: row.window_expires_at,
            last_inbound_at: row.last_inbound_at,
            last_message_at: row.last_message_at,
            last_message_preview: row.last_message_preview,
            unread_count: row.unread_count,
            created_at: row.created_at,
        })
    }

    /// The conversation with contact `contact_id` (a prospect or relationship id), or
    /// `NotFound`.
    pub async fn conversation(
        &self,
        org: OrgId,
        contact_id: Uuid,
    ) -> Result<ConversationView, Error> {
        let row = contacts::conversation_of(&self.db, org, contact_id)
            .await?
            .ok_or(Error::not_found("conversation"))?;
        self.conversation_view(org, row, self.now()).await
    }

    /// The messages of the conversation with contact `contact_id`, newest first.
    pub async fn conversation_messages(
        &self,
        org: OrgId,
        contact_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<MessageView>, Error> {
        let conversation = contacts::conversation_of(&self.db, org, contact_id)
            .await?
            .ok_or(Error::not_found("conversation"))?;
        let after: Option<Uuid> = page.after().map_err(Error::from)?;
        let mut select = whatsapp_messages::Entity::find()
            .filter(whatsapp_messages::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_messages::Column::ConversationId.eq(conversation.id));
        if let Some(id) = after {
            select = select.filter(whatsapp_messages::Column::Id.lt(id));
        }
        let limit = page.limit();
        let rows = select
            .order_by_desc(whatsapp_messages::Column::Id)
            .limit(u64::from(limit) + 1)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let timelines = whatsapp_message_statuses::Entity::find()
            .filter(whatsapp_message_statuses::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_message_statuses::Column::MessageId.is_in(ids))
            .order_by_asc(whatsapp_message_statuses::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let views = rows
            .iter()
            .map(|row| {
                let timeline: Vec<_> = timelines
                    .iter()
                    .filter(|t| t.message_id == row.id)
                    .cloned()
                    .collect();
                MessageView::new(row, &timeline)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(views, limit, |m| m.id))
    }

    /// Marks the conversation with contact `contact_id` read (its unread count to zero).
    pub async fn mark_read(&self, org: OrgId, contact_id: Uuid) -> Result<ConversationView, Error> {
        let row = contacts::conversation_of(&self.db, org, contact_id)
            .await?
            .ok_or(Error::not_found("conversation"))?;
        whatsapp_conversations::Entity::update_many()
            .col_expr(whatsapp_conversations::Column::UnreadCount, Expr::value(0))
            .filter(whatsapp_conversations::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_conversations::Column::Id.eq(row.id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        self.conversation(org, contact_id).await
    }
}
