//! The delivery log: an endpoint's deliveries, one delivery with its tries, replays, and
//! the `webhook.test` message.

use chrono::{DateTime, Utc};
use edge_core::{Error, OrgId, Page, PageRequest};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _,
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::fanout::{body, new_delivery};
use super::{DeliveryStatus, TEST_EVENT, Webhooks, db_err};
use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::{webhook_deliveries, webhook_delivery_attempts};

/// A delivery as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DeliveryView {
    /// Its id: the `webhook-id` header of every try.
    pub id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The event it carries.
    pub event_id: Uuid,
    /// The event's kind.
    pub event_type: String,
    /// `pending`, `succeeded`, `failed` (gave up) or `cancelled`.
    pub status: String,
    /// Tries since it was queued (or replayed).
    pub attempts: i32,
    /// When the next try is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last answer's status code.
    pub last_status_code: Option<i32>,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// How long the last try took.
    pub last_duration_ms: Option<i64>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Succeeded, gave up or was cancelled.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<&webhook_deliveries::Model> for DeliveryView {
    fn from(row: &webhook_deliveries::Model) -> Self {
        Self {
            id: row.id,
            endpoint_id: row.endpoint_id,
            event_id: row.event_id,
            event_type: row.event_type.clone(),
            status: row.status.clone(),
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_status_code: row.last_status_code,
            last_error: row.last_error.clone(),
            last_duration_ms: row.last_duration_ms,
            created_at: row.created_at,
            completed_at: row.completed_at,
        }
    }
}

/// One try.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AttemptView {
    /// Its id.
    pub id: Uuid,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: Option<i64>,
    /// The answer's status code.
    pub status_code: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// The first KiB of the answer.
    pub response_excerpt: Option<String>,
}

/// A delivery with the exact body it sends and every try, oldest first.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DeliveryDetail {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// The body sent, as JSON.
    pub payload: serde_json::Value,
    /// Every try.
    pub tries: Vec<AttemptView>,
}

impl Webhooks {
    async fn delivery_row<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        org: OrgId,
        id: Uuid,
    ) -> Result<webhook_deliveries::Model, Error> {
        webhook_deliveries::Entity::find_by_id((org.as_uuid(), id))
            .one(conn)
            .await
            .map_err(db_err)?
            .ok_or(Error::not_found("webhook delivery"))
    }

    /// An endpoint's deliveries, newest first, optionally of one status.
    pub async fn deliveries(
        &self,
        org: OrgId,
        endpoint: Uuid,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> Result<Page<DeliveryView>, Error> {
        self.endpoint_row(&self.db, org, endpoint).await?;
        let limit = page.limit();
        let mut query = webhook_deliveries::Entity::find()
            .filter(webhook_deliveries::Column::OrganizationId.eq(org.as_uuid()))
            .filter(webhook_deliveries::Column::EndpointId.eq(endpoint));
        if let Some(status) = status {
            query = query.filter(webhook_deliveries::Column::Status.eq(status.as_str()));
        }
        if let Some(after) = page.after::<Uuid>()? {
            query = query.filter(webhook_deliveries::Column::Id.lt(after));
        }
        let rows = query
            .order_by_desc(webhook_deliveries::Column::Id)
            .limit(u64::from(limit) + 1)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let views = rows.iter().map(DeliveryView::from).collect();
        Ok(Page::from_overfetch(views, limit, |d: &DeliveryView| d.id))
    }

    /// One delivery with its body and tries.
    pub async fn delivery(&self, org: OrgId, id: Uuid) -> Result<DeliveryDetail, Error> {
        let row = self.delivery_row(&self.db, org, id).await?;
        let tries = webhook_delivery_attempts::Entity::find()
            .filter(webhook_delivery_attempts::Column::OrganizationId.eq(org.as_uuid()))
            .filter(webhook_delivery_attempts::Column::DeliveryId.eq(id))
            .order_by_asc(webhook_delivery_attempts::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(DeliveryDetail {
            delivery: DeliveryView::from(&row),
            payload: serde_json::from_str(&row.payload).map_err(Error::internal)?,
            tries: tries
                .into_iter()
                .map(|t| AttemptView {
                    id: t.id,
                    started_at: t.started_at,
                    duration_ms: t.duration_ms,
                    status_code: t.status_code,
                    error: t.error,
                    response_excerpt: t.response_excerpt,
                })
                .collect(),
        })
    }

    /// Queues a finished delivery again, due now, with the same message id and body; its
    /// retry schedule starts over. A pending one is a 409 (it is sent at its next try),
    /// and so is one whose endpoint is disabled.
    pub async fn replay(
        &self,
        org: OrgId,
        actor: Actor,
        client: &ClientInfo,
        id: Uuid,
    ) -> Result<DeliveryView, Error> {
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let row = self.delivery_row(&txn, org, id).await?;
        if row.status == DeliveryStatus::Pending.as_str() {
            return Err(Error::Conflict(
                "the delivery is pending: it is sent at its next attempt".into(),
            ));
        }
        let endpoint = self.endpoint_row(&txn, org, row.endpoint_id).await?;
        if !endpoint.enabled {
            return Err(Error::Conflict(
                "the endpoint is disabled: enable it before replaying its deliveries".into(),
            ));
        }
        let previous = row.status.clone();
        let mut active: webhook_deliveries::ActiveModel = row.into();
        active.status = Set(DeliveryStatus::Pending.as_str().to_owned());
        active.attempts = Set(0);
        active.next_attempt_at = Set(Some(now));
        active.claimed_until = Set(None);
        active.completed_at = Set(None);
        let row = active.update(&txn).await.map_err(db_err)?;
        audit::Entry::new(org, actor, "webhook_delivery.replay")
            .target("webhook_delivery", id)
            .details(json!({ "endpoint_id": row.endpoint_id, "previous_status": previous }))
            .record(&txn, client, now)
            .await?;
        txn.commit().await.map_err(db_err)?;
        Ok(DeliveryView::from(&row))
    }

    /// Queues a `webhook.test` message to one endpoint, due now.
    pub async fn send_test(
        &self,
        org: OrgId,
        actor: Actor,
        id: Uuid,
    ) -> Result<DeliveryView, Error> {
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let endpoint = self.endpoint_row(&txn, org, id).await?;
        if !endpoint.enabled {
            return Err(Error::Conflict(
                "the endpoint is disabled: enable it to send it a test".into(),
            ));
        }
        let payload = body(
            TEST_EVENT,
            now,
            &json!({
                "endpoint_id": endpoint.id,
                "requested_by": actor.id(),
                "message": "A test message from Edge: your endpoint receives and verifies webhooks.",
            }),
        );
        let row = new_delivery(org, endpoint.id, Uuid::now_v7(), TEST_EVENT, &payload, now);
        let row = row.insert(&txn).await.map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        Ok(DeliveryView::from(&row))
    }
}
