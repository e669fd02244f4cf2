//! The event outbox: what happened in an organization, written in the same transaction
//! as the change it describes, in order. Realtime delivery and outbound webhooks read it;
//! the services only write.
//!
//! Kinds are `noun.verb` strings such as `payment.status_changed`. The payload is the
//! event's data as JSON; it never carries secrets.
//!
//! Besides realtime (which tails the table), each [`Consumer`] gets its own queue row for
//! every event, written with it. A consumer [`claim`]s a batch for a while, applies each
//! event and calls [`complete`] in the same transaction as its effects, so every event is
//! handled once by each consumer, across restarts and by any number of servers.

use chrono::{DateTime, Utc};
use edge_core::OrgId;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait as _, QueryOrder as _};
use sea_orm::{
    ColumnTrait as _, Condition, DatabaseConnection, QueryFilter as _, QuerySelect as _,
};
use serde::Serialize;
use uuid::Uuid;

use crate::entities::{event_queue, events};

/// An event as read back.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Event {
    /// The event id; ids sort by time.
    pub id: Uuid,
    /// What happened.
    pub kind: String,
    /// What it happened to.
    pub subject_type: String,
    /// Its id.
    pub subject_id: Uuid,
    /// The event's data.
    pub data: serde_json::Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Appends an event. Call it on the connection or transaction that makes the change, so
/// the two commit together.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    kind: &str,
    subject: (&str, Uuid),
    data: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Uuid, DbErr> {
    let id = Uuid::now_v7();
    events::Entity::insert(events::ActiveModel {
        organization_id: Set(org.as_uuid()),
        id: Set(id),
        kind: Set(kind.to_owned()),
        subject_type: Set(subject.0.to_owned()),
        subject_id: Set(subject.1),
        payload: Set(data),
        created_at: Set(now),
    })
    .exec_without_returning(conn)
    .await?;
    event_queue::Entity::insert_many(Consumer::ALL.iter().map(|consumer| {
        event_queue::ActiveModel {
            organization_id: Set(org.as_uuid()),
            consumer: Set(consumer.as_str().to_owned()),
            event_id: Set(id),
            claimed_until: Set(None),
            created_at: Set(now),
        }
    }))
    .exec_without_returning(conn)
    .await?;
    Ok(id)
}

/// Who handles events besides realtime; each has its own queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    /// Outbound webhooks: fans events out to the endpoints that subscribe to them.
    Webhooks,
    /// Automation rules whose trigger is the event.
    Automation,
    /// In-app notifications the event gives members.
    Notifications,
}

impl Consumer {
    /// Every consumer.
    pub const ALL: [Consumer; 3] = [
        Consumer::Webhooks,
        Consumer::Automation,
        Consumer::Notifications,
    ];

    /// The name stored in `event_queue.consumer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Consumer::Webhooks => "webhooks",
            Consumer::Automation => "automation",
            Consumer::Notifications => "notifications",
        }
    }
}

/// An event claimed by a consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    /// The organization it happened in.
    pub org: OrgId,
    /// The event.
    pub event: Event,
}

/// Claims up to `limit` of `consumer`'s unhandled events, oldest first, across
/// organizations, for `lease`: no other server gets them until the lease ends. Handle each
/// in its organization's scope and call [`complete`] in the transaction that applies it;
/// one not completed (a crash, an error) is claimed again once its lease ends.
pub async fn claim(
    db: &DatabaseConnection,
    consumer: Consumer,
    now: DateTime<Utc>,
    lease: std::time::Duration,
    limit: u64,
) -> Result<Vec<Queued>, DbErr> {
    let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    crate::tenant_scope::cross_tenant(async {
        let free = Condition::any()
            .add(event_queue::Column::ClaimedUntil.is_null())
            .add(event_queue::Column::ClaimedUntil.lt(now));
        let candidates = event_queue::Entity::find()
            .filter(event_queue::Column::Consumer.eq(consumer.as_str()))
            .filter(free.clone())
            .order_by_asc(event_queue::Column::EventId)
            .limit(limit)
            .all(db)
            .await?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for row in candidates {
            let won = event_queue::Entity::update_many()
                .col_expr(event_queue::Column::ClaimedUntil, Expr::value(until))
                .filter(event_queue::Column::OrganizationId.eq(row.organization_id))
                .filter(event_queue::Column::Consumer.eq(consumer.as_str()))
                .filter(event_queue::Column::EventId.eq(row.event_id))
                .filter(free.clone())
                .exec(db)
                .await?
                .rows_affected
                == 1;
            if !won {
                continue;
            }
            if let Some(event) = events::Entity::find_by_id((row.organization_id, row.event_id))
                .one(db)
                .await?
            {
                claimed.push(Queued {
                    org: OrgId::from_uuid(event.organization_id),
                    event: Event::from(event),
                });
            }
        }
        Ok(claimed)
    })
    .await
}

/// Marks `event` handled by `consumer`. Call it on the transaction that applies the event.
pub async fn complete<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    consumer: Consumer,
    event_id: Uuid,
) -> Result<(), DbErr> {
    event_queue::Entity::delete_many()
        .filter(event_queue::Column::OrganizationId.eq(org.as_uuid()))
        .filter(event_queue::Column::Consumer.eq(consumer.as_str()))
        .filter(event_queue::Column::EventId.eq(event_id))
        .exec(conn)
        .await?;
    Ok(())
}

impl From<events::Model> for Event {
    fn from(row: events::Model) -> Self {
        Event {
            id: row.id,
            kind: row.kind,
            subject_type: row.subject_type,
            subject_id: row.subject_id,
            data: row.payload,
            created_at: row.created_at,
        }
    }
}

/// The events about one subject, oldest first.
pub async fn about<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    subject_id: Uuid,
) -> Result<Vec<Event>, DbErr> {
    let rows = events::Entity::find()
        .filter(events::Column::OrganizationId.eq(org.as_uuid()))
        .filter(events::Column::SubjectId.eq(subject_id))
        .order_by_asc(events::Column::Id)
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(Event::from).collect())
}
