//! Organization API keys: created (the key is shown once), listed, revoked.

use chrono::{DateTime, Utc};
use edge_core::{ApiKeyId, Error, FieldError};
use edge_tenancy::apikey::{KeyEnvironment, NewApiKey};
use edge_tenancy::{Permission, Role, TenantContext};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::api_keys;

/// What creating a key needs.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for.
    pub name: String,
    /// The role requests with the key get; at most the creator's. Default `user`.
    #[serde(default)]
    pub role: Option<Role>,
    /// `live` (default) or `test`.
    #[serde(default)]
    pub environment: Option<String>,
    /// When the key stops working; never if absent.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// An API key as listed (never the key itself).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    /// Id.
    pub id: uuid::Uuid,
    /// Label.
    pub name: String,
    /// The visible prefix, to recognise the key.
    pub prefix: String,
    /// `live` or `test`.
    pub environment: String,
    /// Role.
    pub role: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_keys::Model> for ApiKeyView {
    fn from(row: api_keys::Model) -> Self {
        Self {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            environment: row.environment,
            role: row.role,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// How much a role may grant: nobody hands out more than they have.
pub fn rank(role: Role) -> u8 {
    match role {
        Role::SuperAdmin => 4,
        Role::OrgAdmin => 3,
        Role::Manager => 2,
        Role::User => 1,
    }
}

/// Creates a key; returns it with the key text, shown only this once.
pub async fn create(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: CreateApiKey,
) -> Result<(ApiKeyView, SecretString), Error> {
    ctx.require(Permission::ApiKeysManage)?;
    let mut problems = Vec::new();
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        problems.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let role = input.role.unwrap_or(Role::User);
    if role.is_operator() || rank(role) > rank(ctx.role()) {
        problems.push(FieldError::new(
            "role",
            "cannot be higher than your own role",
        ));
    }
    let environment = match input.environment.as_deref() {
        None | Some("live") => KeyEnvironment::Live,
        Some("test") => KeyEnvironment::Test,
        Some(_) => {
            problems.push(FieldError::new("environment", "must be live or test"));
            KeyEnvironment::Live
        }
    };
    if input.expires_at.is_some_and(|at| at <= now) {
        problems.push(FieldError::new("expires_at", "must be in the future"));
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }

    let txn = begin_write(db).await.map_err(Error::internal)?;
    let active = api_keys::Entity::find()
        .filter(api_keys::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(api_keys::Column::RevokedAt.is_null())
        .count(&txn)
        .await
        .map_err(Error::internal)?;
    let allowed = u64::from(ctx.limits().max_api_keys);
    if active >= allowed {
        return Err(Error::Conflict(format!(
            "the plan allows {allowed} active API keys; revoke one first"
        )));
    }
    let issued = NewApiKey {
        org: ctx.org(),
        name,
        role,
        environment,
        expires_at: input.expires_at,
    }
    .issue(now)?;
    let record = issued.record;
    let row = api_keys::Model {
        organization_id: ctx.org().as_uuid(),
        id: record.id.as_uuid(),
        name: record.name,
        prefix: record.prefix,
        key_hash: record.hash.to_hex(),
        environment: record.environment.as_str().to_owned(),
        role: record.role.as_str().to_owned(),
        created_by: ctx.user().map(|u| u.as_uuid()),
        created_at: now,
        expires_at: record.expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    api_keys::Entity::insert(api_keys::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(Error::internal)?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "api_key.create")
        .target("api_key", row.id)
        .details(serde_json::json!({ "name": row.name, "role": row.role, "prefix": row.prefix }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(Error::internal)?;
    Ok((row.into(), issued.key))
}

/// Lists the organization's keys, newest first.
pub async fn list(db: &DatabaseConnection, ctx: &TenantContext) -> Result<Vec<ApiKeyView>, Error> {
    ctx.require(Permission::ApiKeysManage)?;
    Ok(api_keys::Entity::find()
        .filter(api_keys::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .order_by_desc(api_keys::Column::Id)
        .all(db)
        .await
        .map_err(Error::internal)?
        .into_iter()
        .map(ApiKeyView::from)
        .collect())
}

/// Revokes a key at once. Revoking a revoked key changes nothing.
pub async fn revoke(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: ApiKeyId,
) -> Result<(), Error> {
    ctx.require(Permission::ApiKeysManage)?;
    let txn = begin_write(db).await.map_err(Error::internal)?;
    let row = api_keys::Entity::find_by_id((ctx.org().as_uuid(), id.as_uuid()))
        .one(&txn)
        .await
        .map_err(Error::internal)?
        .ok_or(Error::not_found("API key"))?;
    if row.revoked_at.is_some() {
        return Ok(());
    }
    api_keys::Entity::update_many()
        .col_expr(api_keys::Column::RevokedAt, Expr::value(now))
        .filter(api_keys::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(api_keys::Column::Id.eq(id.as_uuid()))
        .exec(&txn)
        .await
        .map_err(Error::internal)?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "api_key.revoke")
        .target("api_key", id)
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(Error::internal)?;
    Ok(())
}
