//! The delivery worker: claims due deliveries, posts them signed, records each try and
//! schedules the next one, gives up after about three days, and disables an endpoint
//! that has failed without a success for more than five days.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use edge_core::{Error, OrgId};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait as _, Condition, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _,
};
use serde_json::json;
use url::{Host, Url};
use uuid::Uuid;

use super::endpoints::cancel_pending;
use super::signing::signature_header;
use super::{DeliveryStatus, Webhooks, db_err, guard, org_of};
use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::{webhook_deliveries, webhook_delivery_attempts, webhook_endpoints};
use crate::tenant_scope;

/// The waits between tries: after the first failed try the next comes 5 s later, then 5
/// min, 30 min, 2 h, 5 h and 10 h apart; the last (the 12th try) comes about 67.6 hours
/// after the first. A delivery whose 12th try fails is `failed`.
pub const SCHEDULE: [TimeDelta; 11] = [
    TimeDelta::seconds(5),
    TimeDelta::minutes(5),
    TimeDelta::minutes(30),
    TimeDelta::hours(2),
    TimeDelta::hours(5),
    TimeDelta::hours(10),
    TimeDelta::hours(10),
    TimeDelta::hours(10),
    TimeDelta::hours(10),
    TimeDelta::hours(10),
    TimeDelta::hours(10),
];

/// How many tries a delivery gets.
pub const MAX_ATTEMPTS: i32 = SCHEDULE.len() as i32 + 1;

/// An endpoint failing with no success for longer than this is disabled.
pub const DISABLE_AFTER: TimeDelta = TimeDelta::days(5);

/// How long a server holds a delivery it is sending (more than the request timeout).
pub const LEASE: TimeDelta = TimeDelta::seconds(60);

/// How many deliveries one pass looks at.
pub const BATCH: u64 = 200;

/// How many deliveries to one endpoint a server sends at once.
pub const PER_ENDPOINT: usize = 8;

/// How much of an answer's body is kept with a try.
pub const EXCERPT_BYTES: usize = 1024;

/// The wait before the next try after `attempts` failed tries; `None`: give up.
pub fn next_delay(attempts: i32) -> Option<TimeDelta> {
    usize::try_from(attempts)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| SCHEDULE.get(i).copied())
}

/// What one try came to.
#[derive(Debug, Clone)]
struct Outcome {
    status_code: Option<u16>,
    error: Option<String>,
    excerpt: Option<String>,
    duration_ms: i64,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.error.is_none() && self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

impl Webhooks {
    /// Sends the deliveries that are due, across organizations; returns how many were
    /// tried. Each delivery is sent and recorded in its organization's scope.
    pub async fn deliver_due(&self) -> Result<usize, Error> {
        let now = self.now();
        let free = || {
            Condition::any()
                .add(webhook_deliveries::Column::ClaimedUntil.is_null())
                .add(webhook_deliveries::Column::ClaimedUntil.lt(now))
        };
        // The queue is read and claimed across organizations, whatever the caller's scope.
        let claimed = tenant_scope::cross_tenant(async {
            let due = webhook_deliveries::Entity::find()
                .filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending.as_str()))
                .filter(webhook_deliveries::Column::NextAttemptAt.lte(now))
                .filter(free())
                .order_by_asc(webhook_deliveries::Column::NextAttemptAt)
                .order_by_asc(webhook_deliveries::Column::Id)
                .limit(BATCH)
                .all(&self.db)
                .await
                .map_err(db_err)?;
            let mut per_endpoint: HashMap<Uuid, usize> = HashMap::new();
            let mut claimed = Vec::new();
            for row in due {
                let taken = per_endpoint.entry(row.endpoint_id).or_default();
                if *taken >= PER_ENDPOINT {
                    continue;
                }
                let won = webhook_deliveries::Entity::update_many()
                    .col_expr(
                        webhook_deliveries::Column::ClaimedUntil,
                        Expr::value(now + LEASE),
                    )
                    .filter(webhook_deliveries::Column::OrganizationId.eq(row.organization_id))
                    .filter(webhook_deliveries::Column::Id.eq(row.id))
                    .filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending.as_str()))
                    .filter(webhook_deliveries::Column::NextAttemptAt.lte(now))
                    .filter(free())
                    .exec(&self.db)
                    .await
                    .map_err(db_err)?
                    .rows_affected
                    == 1;
                if won {
                    *taken += 1;
                    claimed.push(row);
                }
            }
            Ok::<_, Error>(claimed)
        })
        .await?;
        let count = claimed.len();
        let sends = claimed.into_iter().map(|row| {
            let org = org_of(row.organization_id);
            let id = row.id;
            async move {
                if let Err(err) = tenant_scope::in_organization(org, self.deliver_one(org, row)).await {
                    tracing::warn!(%org, delivery = %id, error = %err, "a webhook delivery could not be recorded; it is tried again when its claim ends");
                }
            }
        });
        futures::future::join_all(sends).await;
        Ok(count)
    }

    async fn deliver_one(&self, org: OrgId, row: webhook_deliveries::Model) -> Result<(), Error> {
        let Some(endpoint) =
            webhook_endpoints::Entity::find_by_id((org.as_uuid(), row.endpoint_id))
                .one(&self.db)
                .await
                .map_err(db_err)?
        else {
            // Deleted meanwhile: its deliveries went with it.
            return Ok(());
        };
        if !endpoint.enabled {
            let txn = begin_write(&self.db).await.map_err(db_err)?;
            cancel_pending(
                &txn,
                org,
                endpoint.id,
                "the endpoint was disabled",
                self.now(),
            )
            .await?;
            return txn.commit().await.map_err(db_err);
        }
        // One reading of the clock: the signed timestamp and the try's time agree.
        let started = self.now();
        let timestamp = started.timestamp();
        let mut keys = vec![self.key(org, &endpoint.sealed)?];
        if let (Some(previous), Some(until)) =
            (&endpoint.previous_sealed, endpoint.previous_expires_at)
            && until > started
        {
            keys.push(self.key(org, previous)?);
        }
        let message_id = row.id.to_string();
        let signature = signature_header(&keys, &message_id, timestamp, row.payload.as_bytes());
        let outcome = self
            .post(
                &endpoint.url,
                &message_id,
                timestamp,
                &signature,
                row.payload.clone(),
            )
            .await;
        self.record(org, &row, started, outcome).await
    }

    async fn post(
        &self,
        url: &str,
        message_id: &str,
        timestamp: i64,
        signature: &str,
        body: String,
    ) -> Outcome {
        let clock = std::time::Instant::now();
        let failed = |error: String, clock: std::time::Instant| Outcome {
            status_code: None,
            error: Some(error),
            excerpt: None,
            duration_ms: elapsed_ms(clock),
        };
        let parsed = match Url::parse(url) {
            Ok(parsed) => parsed,
            Err(err) => return failed(format!("invalid URL: {err}"), clock),
        };
        // Names are checked by the client's resolver; IP literals never reach it.
        if !matches!(parsed.host(), Some(Host::Domain(_)))
            && let Err(err) = guard::check_url(&parsed, self.allow_private).await
        {
            return failed(format!("address_not_allowed: {err}"), clock);
        }
        let sent = self
            .http
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(err) => return failed(describe(&err), clock),
        };
        let status = response.status().as_u16();
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        excerpt.truncate(EXCERPT_BYTES);
        let excerpt = String::from_utf8_lossy(&excerpt).into_owned();
        Outcome {
            status_code: Some(status),
            error: (!(200..300).contains(&status))
                .then(|| format!("the endpoint answered {status}")),
            excerpt: (!excerpt.is_empty()).then_some(excerpt),
            duration_ms: elapsed_ms(clock),
        }
    }

    /// Records a try: its log row, the delivery's new state and the endpoint's failure
    /// record (disabling it after [`DISABLE_AFTER`] of failures).
    async fn record(
        &self,
        org: OrgId,
        row: &webhook_deliveries::Model,
        started: DateTime<Utc>,
        outcome: Outcome,
    ) -> Result<(), Error> {
        let now = self.now();
        let attempts = row.attempts + 1;
        let succeeded = outcome.succeeded();
        let (status, next, completed) = if succeeded {
            (DeliveryStatus::Succeeded, None, Some(now))
        } else if let Some(delay) = next_delay(attempts) {
            (DeliveryStatus::Pending, Some(started + delay), None)
        } else {
            (DeliveryStatus::Failed, None, Some(now))
        };
        let status_code = outcome.status_code.map(i32::from);
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        webhook_delivery_attempts::Entity::insert(webhook_delivery_attempts::ActiveModel {
            organization_id: Set(org.as_uuid()),
            id: Set(Uuid::now_v7()),
            delivery_id: Set(row.id),
            started_at: Set(started),
            duration_ms: Set(Some(outcome.duration_ms)),
            status_code: Set(status_code),
            error: Set(outcome.error.clone()),
            response_excerpt: Set(outcome.excerpt.clone()),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
        // Only the try that claimed it moves it on (a replay or a cancellation meanwhile
        // wins).
        webhook_deliveries::Entity::update_many()
            .col_expr(
                webhook_deliveries::Column::Status,
                Expr::value(status.as_str()),
            )
            .col_expr(webhook_deliveries::Column::Attempts, Expr::value(attempts))
            .col_expr(webhook_deliveries::Column::NextAttemptAt, Expr::value(next))
            .col_expr(
                webhook_deliveries::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                webhook_deliveries::Column::LastStatusCode,
                Expr::value(status_code),
            )
            .col_expr(
                webhook_deliveries::Column::LastError,
                Expr::value(outcome.error.clone()),
            )
            .col_expr(
                webhook_deliveries::Column::LastDurationMs,
                Expr::value(outcome.duration_ms),
            )
            .col_expr(
                webhook_deliveries::Column::CompletedAt,
                Expr::value(completed),
            )
            .filter(webhook_deliveries::Column::OrganizationId.eq(org.as_uuid()))
            .filter(webhook_deliveries::Column::Id.eq(row.id))
            .filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .filter(webhook_deliveries::Column::Attempts.eq(row.attempts))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        if let Some(endpoint) =
            webhook_endpoints::Entity::find_by_id((org.as_uuid(), row.endpoint_id))
                .one(&txn)
                .await
                .map_err(db_err)?
        {
            if succeeded {
                if endpoint.failing_since.is_some() {
                    set_failing_since(&txn, org, endpoint.id, None).await?;
                }
            } else {
                let since = endpoint.failing_since.unwrap_or(started);
                if endpoint.failing_since.is_none() {
                    set_failing_since(&txn, org, endpoint.id, Some(since)).await?;
                }
                if endpoint.enabled && started - since > DISABLE_AFTER {
                    disable(&txn, org, &endpoint, since, now).await?;
                }
            }
        }
        txn.commit().await.map_err(db_err)
    }
}

async fn set_failing_since<C: sea_orm::ConnectionTrait>(
    conn: &C,
    org: OrgId,
    endpoint: Uuid,
    since: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    webhook_endpoints::Entity::update_many()
        .col_expr(webhook_endpoints::Column::FailingSince, Expr::value(since))
        .filter(webhook_endpoints::Column::OrganizationId.eq(org.as_uuid()))
        .filter(webhook_endpoints::Column::Id.eq(endpoint))
        .exec(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Disables an endpoint that has failed since `since`: its pending deliveries are
/// cancelled (they can be replayed once it is enabled again), with an audit entry and a
/// `webhook_endpoint.disabled` event.
async fn disable<C: sea_orm::ConnectionTrait>(
    conn: &C,
    org: OrgId,
    endpoint: &webhook_endpoints::Model,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let reason = format!(
        "every delivery failed for more than {} days (since {})",
        DISABLE_AFTER.num_days(),
        since.to_rfc3339()
    );
    webhook_endpoints::Entity::update_many()
        .col_expr(webhook_endpoints::Column::Enabled, Expr::value(false))
        .col_expr(
            webhook_endpoints::Column::DisabledReason,
            Expr::value(reason.clone()),
        )
        .col_expr(webhook_endpoints::Column::DisabledAt, Expr::value(now))
        .col_expr(webhook_endpoints::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_endpoints::Column::OrganizationId.eq(org.as_uuid()))
        .filter(webhook_endpoints::Column::Id.eq(endpoint.id))
        .exec(conn)
        .await
        .map_err(db_err)?;
    let cancelled =
        cancel_pending(conn, org, endpoint.id, "the endpoint was disabled", now).await?;
    audit::Entry::new(org, Actor::System, "webhook_endpoint.disable")
        .target("webhook_endpoint", endpoint.id)
        .details(json!({
            "reason": reason,
            "failing_since": since,
            "cancelled_deliveries": cancelled,
        }))
        .record(conn, &ClientInfo::default(), now)
        .await?;
    crate::events::record(
        conn,
        org,
        "webhook_endpoint.disabled",
        ("webhook_endpoint", endpoint.id),
        json!({
            "endpoint_id": endpoint.id,
            "url": endpoint.url,
            "failing_since": since,
            "reason": reason,
        }),
        now,
    )
    .await
    .map_err(db_err)?;
    tracing::warn!(%org, endpoint = %endpoint.id, "a webhook endpoint failing for days was disabled");
    Ok(())
}

fn elapsed_ms(since: std::time::Instant) -> i64 {
    i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// Words for a failed request: the address guard's refusal, a timeout, a refused
/// connection, or the client's own description.
fn describe(err: &reqwest::Error) -> String {
    if let Some(refusal) = guard::refusal_in(err) {
        return format!("address_not_allowed: {refusal}");
    }
    if err.is_timeout() {
        return format!("timed out after {} s", super::REQUEST_TIMEOUT.as_secs());
    }
    if err.is_connect() {
        return format!("could not connect: {}", crate::http::error::ErrorChain(err));
    }
    format!("request failed: {}", crate::http::error::ErrorChain(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_grows_from_seconds_to_hours_over_about_three_days() {
        assert_eq!(next_delay(0), None);
        assert_eq!(next_delay(1), Some(TimeDelta::seconds(5)));
        assert_eq!(next_delay(2), Some(TimeDelta::minutes(5)));
        assert_eq!(next_delay(11), Some(TimeDelta::hours(10)));
        assert_eq!(next_delay(MAX_ATTEMPTS), None);
        let total: TimeDelta = SCHEDULE.iter().copied().sum();
        assert!(
            total > TimeDelta::hours(60) && total < TimeDelta::hours(73),
            "{total}"
        );
    }
}
