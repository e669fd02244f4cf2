//! Fan-out: each event of the `webhooks` queue becomes one delivery per enabled endpoint
//! of its organization that subscribes to it, in one transaction with the queue row's
//! completion, so an event is fanned out once across restarts and servers (and the unique
//! `(endpoint, event)` key makes a second fan-out create nothing).

use chrono::{DateTime, SecondsFormat, Utc};
use edge_core::{Error, OrgId};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _};
use serde_json::json;
use uuid::Uuid;

use super::{AUTOMATION_WEBHOOK, DeliveryStatus, Webhooks, db_err, matches};
use crate::db::begin_write;
use crate::entities::{webhook_deliveries, webhook_endpoints};
use crate::events::{self, Consumer, Event};
use crate::tenant_scope;

/// How long a server holds the events it fans out.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// How many events one pass takes.
pub const BATCH: u64 = 200;

/// The exact body of a message: `{"type", "timestamp", "data"}`.
pub fn body(kind: &str, timestamp: DateTime<Utc>, data: &serde_json::Value) -> String {
    json!({
        "type": kind,
        "timestamp": timestamp.to_rfc3339_opts(SecondsFormat::Micros, true),
        "data": data,
    })
    .to_string()
}

impl Webhooks {
    /// Fans out the queued events of every organization; returns how many were handled.
    /// Each event is handled in its organization's scope.
    pub async fn fan_out(&self) -> Result<usize, Error> {
        let queued = events::claim(&self.db, Consumer::Webhooks, self.now(), LEASE, BATCH)
            .await
            .map_err(db_err)?;
        let count = queued.len();
        for item in queued {
            let org = item.org;
            let id = item.event.id;
            if let Err(err) =
                tenant_scope::in_organization(org, self.fan_out_one(org, item.event)).await
            {
                tracing::warn!(%org, event = %id, error = %err, "fanning a webhook event out failed; it is tried again when its lease ends");
            }
        }
        Ok(count)
    }

    async fn fan_out_one(&self, org: OrgId, event: Event) -> Result<(), Error> {
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let targets = targets(&txn, org, &event).await?;
        let payload = body(&event.kind, event.created_at, &event.data);
        let rows: Vec<webhook_deliveries::ActiveModel> = targets
            .iter()
            .map(|endpoint| new_delivery(org, *endpoint, event.id, &event.kind, &payload, now))
            .collect();
        if !rows.is_empty() {
            webhook_deliveries::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::columns([
                        webhook_deliveries::Column::OrganizationId,
                        webhook_deliveries::Column::EndpointId,
                        webhook_deliveries::Column::EventId,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await
                .map_err(db_err)?;
        }
        events::complete(&txn, org, Consumer::Webhooks, event.id)
            .await
            .map_err(db_err)?;
        txn.commit().await.map_err(db_err)
    }
}

/// A pending delivery due now.
pub(crate) fn new_delivery(
    org: OrgId,
    endpoint: Uuid,
    event_id: Uuid,
    kind: &str,
    payload: &str,
    now: DateTime<Utc>,
) -> webhook_deliveries::ActiveModel {
    webhook_deliveries::ActiveModel {
        organization_id: Set(org.as_uuid()),
        id: Set(Uuid::now_v7()),
        endpoint_id: Set(endpoint),
        event_id: Set(event_id),
        event_type: Set(kind.to_owned()),
        payload: Set(payload.to_owned()),
        status: Set(DeliveryStatus::Pending.as_str().to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        claimed_until: Set(None),
        last_status_code: Set(None),
        last_error: Set(None),
        last_duration_ms: Set(None),
        created_at: Set(now),
        completed_at: Set(None),
    }
}

/// The endpoints an event goes to: `automation.webhook` to the one enabled endpoint it
/// names; any other kind to every enabled endpoint whose filter matches.
async fn targets<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    event: &Event,
) -> Result<Vec<Uuid>, Error> {
    let enabled = webhook_endpoints::Entity::find()
        .filter(webhook_endpoints::Column::OrganizationId.eq(org.as_uuid()))
        .filter(webhook_endpoints::Column::Enabled.eq(true));
    if event.kind == AUTOMATION_WEBHOOK {
        let named = event
            .data
            .get("endpoint_id")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<Uuid>().ok());
        let Some(named) = named else {
            tracing::warn!(%org, event = %event.id, "an automation.webhook event names no endpoint; nothing is sent");
            return Ok(Vec::new());
        };
        let found = enabled
            .filter(webhook_endpoints::Column::Id.eq(named))
            .one(conn)
            .await
            .map_err(db_err)?;
        if found.is_none() {
            tracing::info!(%org, endpoint = %named, "an automation.webhook event names an endpoint that is gone or disabled; nothing is sent");
        }
        return Ok(found.map(|e| e.id).into_iter().collect());
    }
    let endpoints = enabled.all(conn).await.map_err(db_err)?;
    Ok(endpoints
        .iter()
        .filter(|endpoint| matches(&super::endpoints::filters_of(endpoint), &event.kind))
        .map(|endpoint| endpoint.id)
        .collect())
}
