//! The database behind `edge-tenancy`'s resolver.

use crate::db::db_err;
use std::str::FromStr as _;

use edge_core::{ApiKeyId, Error, OrgId, SessionId, SharedClock, UserId};
use edge_tenancy::apikey::{ApiKeyRecord, KeyEnvironment, KeyHash};
use edge_tenancy::{
    ApiKeyStore, BoxFuture, OrgRecord, OrgStatus, PlanLimits, Role, SessionStore, TenantDirectory,
};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter, Statement,
};

use crate::billing::{Standing, Standings};
use crate::entities::{api_keys, memberships, sessions, users};

/// Reads organizations, sessions and API keys from the database.
///
/// An organization is read in one query together with its subscription and its plan:
/// the plan's limits go into the [`OrgRecord`] (so they come from the `plans` table, and
/// an edited plan applies on the next request), and the subscription's standing is
/// recorded in [`DbStores::standings`] for the subscription gate, which then needs no
/// query of its own.
#[derive(Clone)]
pub struct DbStores {
    db: DatabaseConnection,
    clock: SharedClock,
    standings: Standings,
}

impl DbStores {
    /// Stores over `db`.
    pub fn new(db: DatabaseConnection, clock: SharedClock) -> Self {
        Self {
            db,
            clock,
            standings: Standings::default(),
        }
    }

    /// Where the organizations resolved lately stand; share it with the subscription
    /// gate (`AppState::standings`).
    pub fn standings(&self) -> Standings {
        self.standings.clone()
    }

    /// The organization whose `column` is `value`, with its plan's limits; records its
    /// standing.
    async fn org_where(
        &self,
        column: OrgKey,
        value: sea_orm::Value,
    ) -> Result<Option<OrgRecord>, Error> {
        let backend = self.db.get_database_backend();
        let sql = format!(
            "SELECT o.id, o.slug, o.status, \
               s.plan_code, s.status AS subscription_status, s.current_period_end, \
               s.grace_ends_at, p.requests_per_minute, p.request_burst, p.seats, \
               p.max_api_keys, p.included_messages \
             FROM organizations o \
             LEFT JOIN subscriptions s ON s.organization_id = o.id \
             LEFT JOIN plans p ON p.code = s.plan_code \
             WHERE o.{} = $1",
            column.as_str()
        );
        let Some(row) =
            ResolvedOrg::find_by_statement(Statement::from_sql_and_values(backend, sql, [value]))
                .one(&self.db)
                .await
                .map_err(db_err)?
        else {
            return Ok(None);
        };
        Ok(Some(row.into_record(&self.standings)?))
    }
}

/// The columns an organization is looked up by.
#[derive(Debug, Clone, Copy)]
enum OrgKey {
    Id,
    Slug,
    CustomDomain,
}

impl OrgKey {
    fn as_str(self) -> &'static str {
        match self {
            OrgKey::Id => "id",
            OrgKey::Slug => "slug",
            OrgKey::CustomDomain => "custom_domain",
        }
    }
}

/// An organization with its subscription and plan, as the resolver reads it.
#[derive(Debug, FromQueryResult)]
struct ResolvedOrg {
    id: uuid::Uuid,
    slug: String,
    status: String,
    plan_code: Option<String>,
    subscription_status: Option<String>,
    current_period_end: Option<chrono::DateTime<chrono::Utc>>,
    grace_ends_at: Option<chrono::DateTime<chrono::Utc>>,
    requests_per_minute: Option<i32>,
    request_burst: Option<i32>,
    seats: Option<i32>,
    max_api_keys: Option<i32>,
    included_messages: Option<i64>,
}

impl ResolvedOrg {
    fn into_record(self, standings: &Standings) -> Result<OrgRecord, Error> {
        let org = OrgId::from_uuid(self.id);
        let limits = match (
            self.requests_per_minute,
            self.request_burst,
            self.seats,
            self.max_api_keys,
        ) {
            (Some(rpm), Some(burst), Some(seats), Some(keys)) => {
                crate::billing::plans::limits(rpm, burst, seats, keys, self.included_messages)
            }
            _ => {
                // Every organization is created with a subscription (and the migration
                // gave one to those that existed before); this one has none.
                tracing::warn!(organization = %org, "organization has no subscription: using the smallest limits");
                PlanLimits::default()
            }
        };
        if let (Some(plan_code), Some(status)) = (self.plan_code, self.subscription_status) {
            standings.record(
                org,
                Standing {
                    plan_code,
                    status: status.parse()?,
                    current_period_end: self.current_period_end,
                    grace_ends_at: self.grace_ends_at,
                },
            );
        }
        Ok(OrgRecord {
            id: org,
            slug: self.slug,
            status: if self.status == "active" {
                OrgStatus::Active
            } else {
                OrgStatus::Suspended
            },
            limits,
        })
    }
}

impl TenantDirectory for DbStores {
    fn org_by_id(&self, org: OrgId) -> BoxFuture<'_, Result<Option<OrgRecord>, Error>> {
        Box::pin(async move { self.org_where(OrgKey::Id, org.as_uuid().into()).await })
    }

    fn org_by_slug<'a>(&'a self, slug: &'a str) -> BoxFuture<'a, Result<Option<OrgRecord>, Error>> {
        Box::pin(async move { self.org_where(OrgKey::Slug, slug.into()).await })
    }

    fn org_by_domain<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFuture<'a, Result<Option<OrgRecord>, Error>> {
        Box::pin(async move { self.org_where(OrgKey::CustomDomain, domain.into()).await })
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
