//! What platform operators (`super_admin`) do across tenants: create, list, suspend and
//! reactivate organizations, and create the first operator account.

use chrono::{DateTime, Duration, Utc};
use edge_core::{Currency, Error, FieldError, OrgId, UserId};
use edge_tenancy::{Permission, Role, TenantContext};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use super::auth::{normalize_email, slugify};
use super::members::INVITATION_TTL_DAYS;
use super::{passwords, tokens};
use crate::audit::{self, Actor, ClientInfo};
use crate::billing::{plans, subscriptions};
use crate::db::begin_write;
use crate::entities::{invitations, memberships, organizations, users};

/// The slug of the organization operators belong to.
pub const PLATFORM_SLUG: &str = "platform";

/// A new organization, as an operator creates it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    /// Name.
    pub name: String,
    /// URL-safe unique name; derived from the name if absent.
    #[serde(default)]
    pub slug: Option<String>,
    /// The code of an active plan (see `GET /admin/plans`); default `standard`. The
    /// organization starts with a first period of the plan's length (none on a free plan).
    #[serde(default)]
    pub plan: Option<String>,
    /// Currency; default KES.
    #[serde(default)]
    pub currency: Option<String>,
    /// Country; default KE.
    #[serde(default)]
    pub country: Option<String>,
    /// If given, an `org_admin` invitation for this email is created.
    #[serde(default)]
    pub admin_email: Option<String>,
}

/// A created organization, with the first admin's invitation token if one was asked for.
pub struct CreatedOrganization {
    /// The organization.
    pub organization: organizations::Model,
    /// The invitation token (shown once) and the invitation's expiry.
    pub invitation: Option<(SecretString, DateTime<Utc>)>,
}

/// Requires the caller to be an operator.
pub fn require_operator(ctx: &TenantContext) -> Result<(), Error> {
    ctx.require(Permission::TenantsManage)
}

/// Creates an organization (and optionally its first admin's invitation).
pub async fn create_organization(
    db: &DatabaseConnection,
    actor: Actor,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: NewOrganization,
) -> Result<CreatedOrganization, Error> {
    let mut problems = Vec::new();
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        problems.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
    let slug = input
        .slug
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_else(|| slugify(&name));
    if !edge_tenancy::resolver::is_valid_slug(&slug) {
        problems.push(FieldError::new(
            "slug",
            "must be a DNS label: a-z, 0-9 and '-', 1 to 63 characters",
        ));
    }
    let plan = match plans::choosable(
        db,
        input.plan.as_deref().unwrap_or(plans::DEFAULT_PLAN),
        "plan",
    )
    .await
    {
        Ok(plan) => Some(plan),
        Err(Error::Validation(mut fields)) => {
            problems.append(&mut fields);
            None
        }
        Err(err) => return Err(err),
    };
    let currency = match input
        .currency
        .as_deref()
        .unwrap_or("KES")
        .parse::<Currency>()
    {
        Ok(c) => c.code().to_owned(),
        Err(e) => {
            problems.push(FieldError::new("currency", e.to_string()));
            String::new()
        }
    };
    let country = input
        .country
        .unwrap_or_else(|| "KE".into())
        .to_ascii_uppercase();
    if !edge_core::Country::ALL
        .iter()
        .any(|c| c.iso_code() == country)
    {
        problems.push(FieldError::new("country", "must be one of KE, UG, TZ, RW"));
    }
    let admin_email = match input.admin_email.as_deref().map(normalize_email) {
        Some(Ok(email)) => Some(email),
        Some(Err(message)) => {
            problems.push(FieldError::new("admin_email", message));
            None
        }
        None => None,
    };
    let Some(plan) = plan.filter(|_| problems.is_empty()) else {
        return Err(Error::Validation(problems));
    };

    let txn = begin_write(db).await.map_err(Error::internal)?;
    if organizations::Entity::find()
        .filter(organizations::Column::Slug.eq(&slug))
        .one(&txn)
        .await
        .map_err(Error::internal)?
        .is_some()
    {
        return Err(Error::Conflict(format!("the slug {slug:?} is taken")));
    }
    let organization =
        organizations::Model::new_active(slug, name, currency, country, plan.code.clone(), now);
    organizations::Entity::insert(organizations::ActiveModel::from(organization.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(Error::internal)?;
    let org = OrgId::from_uuid(organization.id);
    subscriptions::start(&txn, org, &plan, now).await?;
    crate::crm::pipelines::create_default(&txn, org, now).await?;
    let invitation = match admin_email {
        Some(email) => {
            let token = tokens::generate("inv");
            let expires_at = now + Duration::days(INVITATION_TTL_DAYS);
            invitations::Entity::insert(invitations::ActiveModel {
                organization_id: Set(organization.id),
                id: Set(uuid::Uuid::now_v7()),
                email: Set(email),
                role: Set(Role::OrgAdmin.as_str().to_owned()),
                token_hash: Set(token.hash),
                invited_by: Set(None),
                created_at: Set(now),
                expires_at: Set(expires_at),
                accepted_at: Set(None),
                revoked_at: Set(None),
            })
            .exec_without_returning(&txn)
            .await
            .map_err(Error::internal)?;
            Some((token.token, expires_at))
        }
        None => None,
    };
    audit::Entry::new(org, actor, "organization.create")
        .target("organization", org)
        .details(json!({ "slug": organization.slug, "plan": organization.plan }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(Error::internal)?;
    Ok(CreatedOrganization {
        organization,
        invitation,
    })
}

/// Lists organizations, oldest first, `limit + 1` at most after `after`.
pub async fn list_organizations(
    db: &DatabaseConnection,
    status: Option<&str>,
    after: Option<uuid::Uuid>,
    limit: u32,
) -> Result<Vec<organizations::Model>, Error> {
    let mut select = organizations::Entity::find();
    if let Some(status) = status {
        select = select.filter(organizations::Column::Status.eq(status));
    }
    if let Some(after) = after {
        select = select.filter(organizations::Column::Id.gt(after));
    }
    select
        .order_by_asc(organizations::Column::Id)
        .limit(u64::from(limit) + 1)
        .all(db)
        .await
        .map_err(Error::internal)
}

/// Suspends (`active = false`) or reactivates an organization. Its members' requests are
/// refused with 403 while it is suspended.
pub async fn set_organization_active(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    org: OrgId,
    active: bool,
) -> Result<organizations::Model, Error> {
    require_operator(ctx)?;
    if !active && org == ctx.home_org() {
        return Err(Error::Conflict(
            "you cannot suspend your own organization".into(),
        ));
    }
    let txn = begin_write(db).await.map_err(Error::internal)?;
    organizations::Entity::find_by_id(org.as_uuid())
        .one(&txn)
        .await
        .map_err(Error::internal)?
        .ok_or(Error::not_found("organization"))?;
    let status = if active { "active" } else { "suspended" };
    organizations::Entity::update_many()
        .col_expr(organizations::Column::Status, Expr::value(status))
        .col_expr(organizations::Column::UpdatedAt, Expr::value(now))
        .filter(organizations::Column::Id.eq(org.as_uuid()))
        .exec(&txn)
        .await
        .map_err(Error::internal)?;
    audit::Entry::new(
        org,
        Actor::of(ctx),
        if active {
            "organization.reactivate"
        } else {
            "organization.suspend"
        },
    )
    .target("organization", org)
    .record(&txn, client, now)
    .await?;
    let row = organizations::Entity::find_by_id(org.as_uuid())
        .one(&txn)
        .await
        .map_err(Error::internal)?
        .ok_or(Error::not_found("organization"))?;
    txn.commit().await.map_err(Error::internal)?;
    Ok(row)
}

/// Creates a platform operator (`super_admin`), and the platform organization they
/// belong to if it does not exist yet. An existing account with this email is promoted
/// (its password is left unchanged).
pub async fn create_operator(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    email: &str,
    name: &str,
    password: SecretString,
) -> Result<(users::Model, organizations::Model), Error> {
    let email = normalize_email(email).map_err(|m| Error::invalid("email", m))?;
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(Error::invalid("name", "must not be empty"));
    }
    passwords::check_new("password", &password)?;
    let hash = passwords::hash(password).await?;
    let txn = begin_write(db).await.map_err(Error::internal)?;
    let platform = match organizations::Entity::find()
        .filter(organizations::Column::Slug.eq(PLATFORM_SLUG))
        .one(&txn)
        .await
        .map_err(Error::internal)?
    {
        Some(org) => org,
        None => {
            let plan = plans::find(&txn, plans::PLATFORM_PLAN).await?;
            let org = organizations::Model::new_active(
                PLATFORM_SLUG.into(),
                "Platform operators".into(),
                "KES".into(),
                "KE".into(),
                plan.code.clone(),
                now,
            );
            organizations::Entity::insert(organizations::ActiveModel::from(org.clone()))
                .exec_without_returning(&txn)
                .await
                .map_err(Error::internal)?;
            subscriptions::start(&txn, OrgId::from_uuid(org.id), &plan, now).await?;
            crate::crm::pipelines::create_default(&txn, OrgId::from_uuid(org.id), now).await?;
            org
        }
    };
    let user = match users::Entity::find()
        .filter(users::Column::Email.eq(&email))
        .one(&txn)
        .await
        .map_err(Error::internal)?
    {
        Some(user) => {
            users::Entity::update_many()
                .col_expr(users::Column::IsOperator, Expr::value(true))
                .col_expr(users::Column::UpdatedAt, Expr::value(now))
                .filter(users::Column::Id.eq(user.id))
                .exec(&txn)
                .await
                .map_err(Error::internal)?;
            users::Model {
                is_operator: true,
                ..user
            }
        }
        None => {
            let user = users::Model {
                id: UserId::new().as_uuid(),
                email,
                name,
                password_hash: hash,
                is_operator: true,
                status: "active".into(),
                created_at: now,
                updated_at: now,
            };
            users::Entity::insert(users::ActiveModel::from(user.clone()))
                .exec_without_returning(&txn)
                .await
                .map_err(Error::internal)?;
            user
        }
    };
    let member = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(platform.id))
        .filter(memberships::Column::UserId.eq(user.id))
        .one(&txn)
        .await
        .map_err(Error::internal)?;
    if member.is_none() {
        memberships::Entity::insert(memberships::ActiveModel {
            organization_id: Set(platform.id),
            id: Set(uuid::Uuid::now_v7()),
            user_id: Set(user.id),
            role: Set(Role::OrgAdmin.as_str().to_owned()),
            status: Set("active".into()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(Error::internal)?;
    }
    audit::Entry::new(
        OrgId::from_uuid(platform.id),
        Actor::System,
        "operator.create",
    )
    .target("user", user.id)
    .record(&txn, &ClientInfo::default(), now)
    .await?;
    txn.commit().await.map_err(Error::internal)?;
    Ok((user, platform))
}
