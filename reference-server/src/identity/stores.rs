//! The database behind `edge-tenancy`'s resolver.

use std::str::FromStr as _;

use edge_core::{ApiKeyId, Error, OrgId, SessionId, SharedClock, UserId};
use edge_tenancy::apikey::{ApiKeyRecord, KeyEnvironment, KeyHash};
use edge_tenancy::{
    ApiKeyStore, BoxFuture, OrgRecord, OrgStatus, Role, SessionStore, TenantDirectory,
};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::entities::{api_keys, memberships, organizations, sessions, users};

/// Reads organizations, sessions and API keys from the database.
#[derive(Clone)]
pub struct DbStores {
    db: DatabaseConnection,
    clock: SharedClock,
}

impl DbStores {
    /// Stores over `db`.
    pub fn new(db: DatabaseConnection, clock: SharedClock) -> Self {
        Self { db, clock }
    }
}

fn db_err(err: sea_orm::DbErr) -> Error {
    Error::internal(err)
}

/// The resolver's view of an organization row.
pub fn org_record(row: &organizations::Model) -> OrgRecord {
    OrgRecord {
        id: OrgId::from_uuid(row.id),
        slug: row.slug.clone(),
        status: if row.status == "active" {
            OrgStatus::Active
        } else {
            OrgStatus::Suspended
        },
        limits: super::plan_limits(&row.plan),
    }
}

impl TenantDirectory for DbStores {
    fn org_by_id(&self, org: OrgId) -> BoxFuture<'_, Result<Option<OrgRecord>, Error>> {
        Box::pin(async move {
            Ok(organizations::Entity::find_by_id(org.as_uuid())
                .one(&self.db)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(org_record))
        })
    }

    fn org_by_slug<'a>(&'a self, slug: &'a str) -> BoxFuture<'a, Result<Option<OrgRecord>, Error>> {
        Box::pin(async move {
            Ok(organizations::Entity::find()
                .filter(organizations::Column::Slug.eq(slug))
                .one(&self.db)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(org_record))
        })
    }

    fn org_by_domain<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFuture<'a, Result<Option<OrgRecord>, Error>> {
        Box::pin(async move {
            Ok(organizations::Entity::find()
                .filter(organizations::Column::CustomDomain.eq(domain))
                .one(&self.db)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(org_record))
        })
    }
}

impl SessionStore for DbStores {
    /// A session is active while it is neither revoked nor expired, and its user and
    /// membership are both active. Checked on every request, so a revoked session's
    /// tokens stop working at once.
    fn is_active(
        &self,
        org: OrgId,
        user: UserId,
        session: SessionId,
    ) -> BoxFuture<'_, Result<bool, Error>> {
        Box::pin(async move {
            let now = self.clock.now();
            let Some(row) = sessions::Entity::find_by_id((org.as_uuid(), session.as_uuid()))
                .one(&self.db)
                .await
                .map_err(db_err)?
            else {
                return Ok(false);
            };
            if row.user_id != user.as_uuid() || row.revoked_at.is_some() || row.expires_at <= now {
                return Ok(false);
            }
            let user_row = users::Entity::find_by_id(user.as_uuid())
                .one(&self.db)
                .await
                .map_err(db_err)?;
            if user_row.is_none_or(|u| u.status != "active") {
                return Ok(false);
            }
            if user_is_operator(&self.db, user).await? {
                return Ok(true);
            }
            let membership = memberships::Entity::find()
                .filter(memberships::Column::OrganizationId.eq(org.as_uuid()))
                .filter(memberships::Column::UserId.eq(user.as_uuid()))
                .one(&self.db)
                .await
                .map_err(db_err)?;
            Ok(membership.is_some_and(|m| m.status == "active"))
        })
    }
}

async fn user_is_operator(db: &DatabaseConnection, user: UserId) -> Result<bool, Error> {
    Ok(users::Entity::find_by_id(user.as_uuid())
        .one(db)
        .await
        .map_err(db_err)?
        .is_some_and(|u| u.is_operator))
}

impl ApiKeyStore for DbStores {
    fn find_by_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, Error>> {
        Box::pin(async move {
            let Some(row) = api_keys::Entity::find()
                .filter(api_keys::Column::Prefix.eq(prefix))
                .one(&self.db)
                .await
                .map_err(db_err)?
            else {
                return Ok(None);
            };
            Ok(api_key_record(&row))
        })
    }
}

/// The resolver's view of an API key row; `None` if the row is unreadable (treated as
/// no such key).
pub fn api_key_record(row: &api_keys::Model) -> Option<ApiKeyRecord> {
    Some(ApiKeyRecord {
        id: ApiKeyId::from_uuid(row.id),
        org: OrgId::from_uuid(row.organization_id),
        name: row.name.clone(),
        prefix: row.prefix.clone(),
        hash: KeyHash::from_hex(&row.key_hash)?,
        role: Role::from_str(&row.role).ok()?,
        environment: if row.environment == "test" {
            KeyEnvironment::Test
        } else {
            KeyEnvironment::Live
        },
        created_at: row.created_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
    })
}
