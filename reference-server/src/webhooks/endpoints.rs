//! `/webhook-endpoints`: register, list, change, delete endpoints and rotate their secret.

use chrono::{DateTime, TimeDelta, Utc};
use edge_core::{Error, FieldError, OrgId};
use edge_tenancy::Sealed;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _,
    QueryOrder as _,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::json;
use url::Url;
use uuid::Uuid;

use super::guard::{self, AddressError};
use super::signing::{self, generate_secret};
use super::{DeliveryStatus, SEAL_PURPOSE, Webhooks, db_err};
use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::{webhook_deliveries, webhook_endpoints};

/// How long a rotated-out secret still signs (next to the new one).
pub const ROTATION_OVERLAP: TimeDelta = TimeDelta::hours(24);

/// The most event types one endpoint may list.
pub const MAX_EVENT_TYPES: usize = 50;

/// Why an endpoint could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Any other error.
    #[error(transparent)]
    Core(#[from] Error),
    /// The URL's host is not a public internet address (422 `address_not_allowed`).
    #[error("{0}")]
    AddressNotAllowed(AddressError),
}

/// A request to register an endpoint.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// Where to post (`https://…` or `http://…`).
    #[serde(default)]
    pub url: Option<String>,
    /// What the organization calls it.
    #[serde(default)]
    pub description: Option<String>,
    /// Exact kinds, `prefix.*` or `*`.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
}

/// Changes to an endpoint; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    /// A new URL (checked like a new endpoint's).
    #[serde(default)]
    pub url: Option<String>,
    /// A new description; `null` removes it.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub description: Option<Option<String>>,
    /// New event types.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// `false` stops deliveries (pending ones are cancelled); `true` resumes them and
    /// clears a disabled endpoint's failure record.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// An endpoint as the API shows it. The secret is never in it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct EndpointView {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// What the organization calls it.
    pub description: Option<String>,
    /// What it subscribes to.
    pub event_types: Vec<String>,
    /// Whether deliveries are sent.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// When it was disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Since when its deliveries fail with no success.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the previous secret also signs, after a rotation.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// An endpoint with its signing secret: the answer to a creation or a rotation, the only
/// times the secret is shown. `Debug` redacts it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: keep it; it is not shown again.
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String)]
    pub secret: SecretString,
}

fn expose<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

impl From<&webhook_endpoints::Model> for EndpointView {
    fn from(row: &webhook_endpoints::Model) -> Self {
        Self {
            id: row.id,
            url: row.url.clone(),
            description: row.description.clone(),
            event_types: filters_of(row),
            enabled: row.enabled,
            disabled_reason: row.disabled_reason.clone(),
            disabled_at: row.disabled_at,
            failing_since: row.failing_since,
            previous_secret_expires_at: row.previous_expires_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The stored filters of an endpoint.
pub(crate) fn filters_of(row: &webhook_endpoints::Model) -> Vec<String> {
    serde_json::from_value(row.event_types.clone()).unwrap_or_default()
}

fn check_url(value: &str, problems: &mut Vec<FieldError>) -> Option<Url> {
    let value = value.trim();
    let problem = |message: &str| FieldError::new("url", message);
    if value.is_empty() || value.len() > 2048 {
        problems.push(problem(
            "must be an http or https URL of at most 2048 characters",
        ));
        return None;
    }
    let url = match Url::parse(value) {
        Ok(url) => url,
        Err(err) => {
            problems.push(problem(&format!("is not a URL: {err}")));
            return None;
        }
    };
    if !matches!(url.scheme(), "https" | "http") {
        problems.push(problem("must start with https:// or http://"));
        return None;
    }
    if url.host().is_none() {
        problems.push(problem("must name a host"));
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        problems.push(problem(
            "must not carry a user name or password: deliveries are authenticated by their signature",
        ));
        return None;
    }
    if url.fragment().is_some() {
        problems.push(problem("must not have a #fragment"));
        return None;
    }
    Some(url)
}

fn check_event_types(types: Vec<String>, problems: &mut Vec<FieldError>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    if types.is_empty() {
        problems.push(FieldError::new(
            "event_types",
            "must list at least one event type (or \"*\")",
        ));
    }
    if types.len() > MAX_EVENT_TYPES {
        problems.push(FieldError::new(
            "event_types",
            format!("may list at most {MAX_EVENT_TYPES} event types"),
        ));
    }
    for (i, kind) in types.into_iter().enumerate() {
        let kind = kind.trim().to_owned();
        if !super::is_known_filter(&kind) {
            problems.push(FieldError::new(
                format!("event_types[{i}]"),
                format!(
                    "{kind:?} is not a known event type, a known prefix followed by .*, or *; \
                     known types: {}",
                    super::EVENT_TYPES.join(", ")
                ),
            ));
        } else if !kept.contains(&kind) {
            kept.push(kind);
        }
    }
    kept
}

fn check_description(value: Option<String>, problems: &mut Vec<FieldError>) -> Option<String> {
    let value = value
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())?;
    if value.chars().count() > 500 {
        problems.push(FieldError::new(
            "description",
            "must be at most 500 characters",
        ));
    }
    Some(value)
}

impl Webhooks {
    async fn guard_url(&self, url: &Url) -> Result<(), EndpointError> {
        match guard::check_url(url, self.allow_private).await {
            Ok(()) => Ok(()),
            Err(err @ AddressError::NotAllowed { .. }) => {
                Err(EndpointError::AddressNotAllowed(err))
            }
            Err(err @ AddressError::Unresolvable { .. }) => {
                Err(Error::invalid("url", err.to_string()).into())
            }
        }
    }

    fn seal(&self, org: OrgId, secret: &SecretString) -> Result<String, Error> {
        Ok(self
            .keyring
            .seal(org, SEAL_PURPOSE, secret)
            .map_err(Error::internal)?
            .to_string())
    }

    /// Opens a sealed secret of `org` into its HMAC key.
    pub(crate) fn key(&self, org: OrgId, sealed: &str) -> Result<Vec<u8>, Error> {
        let sealed: Sealed = sealed.parse().map_err(Error::internal)?;
        let secret = self
            .keyring
            .open(org, SEAL_PURPOSE, &sealed)
            .map_err(Error::internal)?;
        signing::key_of(&secret)
    }

    /// Registers an endpoint; the answer carries its secret, shown this once.
    pub async fn create_endpoint(
        &self,
        org: OrgId,
        actor: Actor,
        client: &ClientInfo,
        input: CreateEndpoint,
    ) -> Result<EndpointWithSecret, EndpointError> {
        let mut problems = Vec::new();
        let url = match input.url.as_deref() {
            Some(url) => check_url(url, &mut problems),
            None => {
                problems.push(FieldError::new("url", "is required"));
                None
            }
        };
        let description = check_description(input.description, &mut problems);
        let event_types = match input.event_types {
            Some(types) => check_event_types(types, &mut problems),
            None => {
                problems.push(FieldError::new("event_types", "is required"));
                Vec::new()
            }
        };
        let Some(url) = url.filter(|_| problems.is_empty()) else {
            return Err(Error::Validation(problems).into());
        };
        self.guard_url(&url).await?;
        let secret = generate_secret();
        let now = self.now();
        let row = webhook_endpoints::Model {
            organization_id: org.as_uuid(),
            id: Uuid::now_v7(),
            url: url.to_string(),
            description,
            event_types: json!(event_types),
            sealed: self.seal(org, &secret)?,
            previous_sealed: None,
            previous_expires_at: None,
            enabled: true,
            disabled_reason: None,
            disabled_at: None,
            failing_since: None,
            created_by: actor.id(),
            created_at: now,
            updated_at: now,
        };
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        webhook_endpoints::Entity::insert(webhook_endpoints::ActiveModel::from(row.clone()))
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
        audit::Entry::new(org, actor, "webhook_endpoint.create")
            .target("webhook_endpoint", row.id)
            .details(json!({ "url": row.url, "event_types": event_types }))
            .record(&txn, client, now)
            .await?;
        txn.commit().await.map_err(db_err)?;
        Ok(EndpointWithSecret {
            endpoint: EndpointView::from(&row),
            secret,
        })
    }

    /// The organization's endpoints, oldest first.
    pub async fn endpoints(&self, org: OrgId) -> Result<Vec<EndpointView>, Error> {
        let rows = webhook_endpoints::Entity::find()
            .filter(webhook_endpoints::Column::OrganizationId.eq(org.as_uuid()))
            .order_by_asc(webhook_endpoints::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(EndpointView::from).collect())
    }

    /// One endpoint row of `org`, or `NotFound`.
    pub(crate) async fn endpoint_row<C: ConnectionTrait>(
        &self,
        conn: &C,
        org: OrgId,
        id: Uuid,
    ) -> Result<webhook_endpoints::Model, Error> {
        webhook_endpoints::Entity::find_by_id((org.as_uuid(), id))
            .one(conn)
            .await
            .map_err(db_err)?
            .ok_or(Error::not_found("webhook endpoint"))
    }

    /// One endpoint.
    pub async fn endpoint(&self, org: OrgId, id: Uuid) -> Result<EndpointView, Error> {
        Ok(EndpointView::from(
            &self.endpoint_row(&self.db, org, id).await?,
        ))
    }

    /// Changes an endpoint.
    pub async fn update_endpoint(
        &self,
        org: OrgId,
        actor: Actor,
        client: &ClientInfo,
        id: Uuid,
        patch: EndpointPatch,
    ) -> Result<EndpointView, EndpointError> {
        self.endpoint_row(&self.db, org, id).await?;
        let mut problems = Vec::new();
        let url = patch
            .url
            .as_deref()
            .and_then(|url| check_url(url, &mut problems));
        let description = patch
            .description
            .map(|d| check_description(d, &mut problems));
        let event_types = patch
            .event_types
            .map(|types| check_event_types(types, &mut problems));
        if !problems.is_empty() {
            return Err(Error::Validation(problems).into());
        }
        if let Some(url) = &url {
            self.guard_url(url).await?;
        }
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let current = self.endpoint_row(&txn, org, id).await?;
        let mut row: webhook_endpoints::ActiveModel = current.clone().into();
        let mut changed = Vec::new();
        if let Some(url) = url {
            row.url = Set(url.to_string());
            changed.push("url");
        }
        if let Some(description) = description {
            row.description = Set(description);
            changed.push("description");
        }
        if let Some(types) = &event_types {
            row.event_types = Set(json!(types));
            changed.push("event_types");
        }
        match patch.enabled {
            Some(true) if !current.enabled => {
                row.enabled = Set(true);
                row.disabled_reason = Set(None);
                row.disabled_at = Set(None);
                row.failing_since = Set(None);
                changed.push("enabled");
            }
            Some(false) if current.enabled => {
                row.enabled = Set(false);
                row.disabled_reason = Set(Some("disabled by a member".to_owned()));
                row.disabled_at = Set(Some(now));
                changed.push("enabled");
                cancel_pending(&txn, org, id, "the endpoint was disabled", now).await?;
            }
            _ => {}
        }
        row.updated_at = Set(now);
        let row = row.update(&txn).await.map_err(db_err)?;
        audit::Entry::new(org, actor, "webhook_endpoint.update")
            .target("webhook_endpoint", id)
            .details(json!({ "changed": changed, "url": row.url, "enabled": row.enabled }))
            .record(&txn, client, now)
            .await?;
        txn.commit().await.map_err(db_err)?;
        Ok(EndpointView::from(&row))
    }

    /// Deletes an endpoint with its delivery log.
    pub async fn delete_endpoint(
        &self,
        org: OrgId,
        actor: Actor,
        client: &ClientInfo,
        id: Uuid,
    ) -> Result<(), Error> {
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let row = self.endpoint_row(&txn, org, id).await?;
        webhook_endpoints::Entity::delete_by_id((org.as_uuid(), id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        audit::Entry::new(org, actor, "webhook_endpoint.delete")
            .target("webhook_endpoint", id)
            .details(json!({ "url": row.url }))
            .record(&txn, client, now)
            .await?;
        txn.commit().await.map_err(db_err)
    }

    /// Gives an endpoint a new secret, shown this once. The old one keeps signing next to
    /// it for [`ROTATION_OVERLAP`], so receivers can switch without losing a delivery.
    pub async fn rotate_secret(
        &self,
        org: OrgId,
        actor: Actor,
        client: &ClientInfo,
        id: Uuid,
    ) -> Result<EndpointWithSecret, Error> {
        let secret = generate_secret();
        let sealed = self.seal(org, &secret)?;
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let current = self.endpoint_row(&txn, org, id).await?;
        let mut row: webhook_endpoints::ActiveModel = current.clone().into();
        row.previous_sealed = Set(Some(current.sealed));
        row.previous_expires_at = Set(Some(now + ROTATION_OVERLAP));
        row.sealed = Set(sealed);
        row.updated_at = Set(now);
        let row = row.update(&txn).await.map_err(db_err)?;
        audit::Entry::new(org, actor, "webhook_endpoint.rotate_secret")
            .target("webhook_endpoint", id)
            .record(&txn, client, now)
            .await?;
        txn.commit().await.map_err(db_err)?;
        Ok(EndpointWithSecret {
            endpoint: EndpointView::from(&row),
            secret,
        })
    }
}

/// Cancels the pending deliveries of an endpoint (it was disabled).
pub(crate) async fn cancel_pending<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    endpoint: Uuid,
    why: &str,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    let result = webhook_deliveries::Entity::update_many()
        .col_expr(
            webhook_deliveries::Column::Status,
            Expr::value(DeliveryStatus::Cancelled.as_str()),
        )
        .col_expr(
            webhook_deliveries::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(webhook_deliveries::Column::LastError, Expr::value(why))
        .col_expr(webhook_deliveries::Column::CompletedAt, Expr::value(now))
        .filter(webhook_deliveries::Column::OrganizationId.eq(org.as_uuid()))
        .filter(webhook_deliveries::Column::EndpointId.eq(endpoint))
        .filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .exec(conn)
        .await
        .map_err(db_err)?;
    Ok(result.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let now = Utc::now();
        let shown = EndpointWithSecret {
            endpoint: EndpointView {
                id: Uuid::now_v7(),
                url: "https://hooks.example.com/edge".into(),
                description: None,
                event_types: vec!["*".into()],
                enabled: true,
                disabled_reason: None,
                disabled_at: None,
                failing_since: None,
                previous_secret_expires_at: None,
                created_at: now,
                updated_at: now,
            },
            secret: SecretString::from("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==".to_owned()),
        };
        let debug = format!("{shown:?}");
        assert!(!debug.contains("whsec_"), "{debug}");
        let json = serde_json::to_value(&shown).unwrap();
        assert_eq!(
            json["secret"],
            "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="
        );
        assert_eq!(json["url"], "https://hooks.example.com/edge");
    }
}
