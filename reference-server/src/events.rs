//! The event outbox: what happened in an organization, written in the same transaction
//! as the change it describes, in order. Realtime delivery and outbound webhooks read it;
//! the services only write.
//!
//! Kinds are `noun.verb` strings such as `payment.status_changed`. The payload is the
//! event's data as JSON; it never carries secrets.

use chrono::{DateTime, Utc};
use edge_core::OrgId;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait as _, QueryOrder as _};
use sea_orm::{ColumnTrait as _, QueryFilter as _};
use serde::Serialize;
use uuid::Uuid;

use crate::entities::events;

/// An event as read back.
#[derive(Debug, Clone, Serialize, PartialEq)]
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
    Ok(id)
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
    Ok(rows
        .into_iter()
        .map(|row| Event {
            id: row.id,
            kind: row.kind,
            subject_type: row.subject_type,
            subject_id: row.subject_id,
            data: row.payload,
            created_at: row.created_at,
        })
        .collect())
}
