//! The people of an organization: listing, inviting, accepting an invitation, changing a
//! role, deactivating and reactivating. A role change or deactivation ends the member's
//! sessions in the organization at once, so it takes effect on their next request.

use crate::db::begin_write;
use crate::db::db_err;
use std::str::FromStr as _;

use chrono::{DateTime, Duration, Utc};
use edge_core::{Error, FieldError, OrgId, UserId};
use edge_tenancy::{Permission, Role, TenantContext};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::api_keys::rank;
use super::auth::normalize_email;
use super::{passwords, tokens};
use crate::audit::{self, Actor, ClientInfo};
use crate::entities::{invitations, memberships, sessions, users};

/// How long an invitation stays valid.
pub const INVITATION_TTL_DAYS: i64 = 7;

/// A member as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    /// The user's id (used in `/users/{id}`).
    pub id: uuid::Uuid,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Role in this organization.
    pub role: String,
    /// `active` or `deactivated` (in this organization).
    pub status: String,
    /// Joined.
    pub joined_at: DateTime<Utc>,
}

/// An invitation as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    /// Id.
    pub id: uuid::Uuid,
    /// Who is invited.
    pub email: String,
    /// The role they will have.
    pub role: String,
    /// Until when it can be accepted.
    pub expires_at: DateTime<Utc>,
}

/// Who to invite.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    /// Their email.
    pub email: String,
    /// Their role; at most the inviter's. Default `user`.
    #[serde(default)]
    pub role: Option<Role>,
}

/// Accepting an invitation: a new person gives a name and password; someone who already
/// has an account proves it with their password.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Accept {
    /// The invitation token.
    #[schema(value_type = String)]
    pub token: SecretString,
    /// The name for a new account.
    #[serde(default)]
    pub name: Option<String>,
    /// The new account's password, or the existing account's.
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// Lists the organization's members.
pub async fn list(db: &DatabaseConnection, ctx: &TenantContext) -> Result<Vec<MemberView>, Error> {
    ctx.require(Permission::MembersRead)?;
    let rows = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .order_by_asc(memberships::Column::CreatedAt)
        .all(db)
        .await
        .map_err(db_err)?;
    let mut members = Vec::with_capacity(rows.len());
    for m in rows {
        if let Some(user) = users::Entity::find_by_id(m.user_id)
            .one(db)
            .await
            .map_err(db_err)?
        {
            members.push(MemberView {
                id: user.id,
                email: user.email,
                name: user.name,
                role: m.role,
                status: m.status,
                joined_at: m.created_at,
            });
        }
    }
    Ok(members)
}

/// Invites someone; returns the invitation and its token (shown once, to pass on).
pub async fn invite(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: Invite,
) -> Result<(InvitationView, SecretString), Error> {
    ctx.require(Permission::MembersManage)?;
    let email = normalize_email(&input.email).map_err(|m| Error::invalid("email", m))?;
    let role = input.role.unwrap_or(Role::User);
    if role.is_operator() || rank(role) > rank(ctx.role()) {
        return Err(Error::invalid(
            "role",
            "cannot be higher than your own role",
        ));
    }
    let txn = begin_write(db).await.map_err(db_err)?;
    let members = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(memberships::Column::Status.eq("active"))
        .count(&txn)
        .await
        .map_err(db_err)?;
    let allowed = u64::from(ctx.limits().max_members);
    if members >= allowed {
        return Err(Error::Conflict(format!(
            "the plan allows {allowed} active members"
        )));
    }
    if let Some(user) = users::Entity::find()
        .filter(users::Column::Email.eq(&email))
        .one(&txn)
        .await
        .map_err(db_err)?
        && membership(&txn, ctx.org(), UserId::from_uuid(user.id))
            .await?
            .is_some()
    {
        return Err(Error::Conflict("that person is already a member".into()));
    }
    let token = tokens::generate("inv");
    let row = invitations::Model {
        organization_id: ctx.org().as_uuid(),
        id: uuid::Uuid::now_v7(),
        email,
        role: role.as_str().to_owned(),
        token_hash: token.hash,
        invited_by: ctx.user().map(|u| u.as_uuid()),
        created_at: now,
        expires_at: now + Duration::days(INVITATION_TTL_DAYS),
        accepted_at: None,
        revoked_at: None,
    };
    invitations::Entity::insert(invitations::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "user.invite")
        .target("invitation", row.id)
        .details(json!({ "email": row.email, "role": row.role }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    Ok((
        InvitationView {
            id: row.id,
            email: row.email,
            role: row.role,
            expires_at: row.expires_at,
        },
        token.token,
    ))
}

/// Accepts an invitation: creates the account if needed and the membership. Returns the
/// user and the organization joined, for the caller to log them in.
pub async fn accept(
    db: &DatabaseConnection,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: Accept,
) -> Result<(users::Model, OrgId), Error> {
    let invalid = || {
        Error::invalid(
            "token",
            "this invitation is not valid: it may have expired, been used or been withdrawn",
        )
    };
    let hash = tokens::hash_secret(&input.token);
    let invitation = invitations::Entity::find()
        .filter(invitations::Column::TokenHash.eq(hash))
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or_else(invalid)?;
    if invitation.accepted_at.is_some()
        || invitation.revoked_at.is_some()
        || invitation.expires_at <= now
    {
        return Err(invalid());
    }
    let org = OrgId::from_uuid(invitation.organization_id);
    let existing = users::Entity::find()
        .filter(users::Column::Email.eq(&invitation.email))
        .one(db)
        .await
        .map_err(db_err)?;
    let user = match existing {
        Some(user) => {
            if !passwords::verify(input.password, user.password_hash.clone()).await? {
                return Err(Error::invalid(
                    "password",
                    "is not the password of the existing account for this email",
                ));
            }
            user
        }
        None => {
            let name = input
                .name
                .as_deref()
                .map(str::trim)
                .unwrap_or_default()
                .to_owned();
            let mut problems = Vec::new();
            if name.is_empty() || name.chars().count() > 200 {
                problems.push(FieldError::new("name", "must be 1 to 200 characters"));
            }
            if let Err(Error::Validation(mut fields)) =
                passwords::check_new("password", &input.password)
            {
                problems.append(&mut fields);
            }
            if !problems.is_empty() {
                return Err(Error::Validation(problems));
            }
            users::Model {
                id: UserId::new().as_uuid(),
                email: invitation.email.clone(),
                name,
                password_hash: passwords::hash(input.password).await?,
                is_operator: false,
                status: "active".into(),
                created_at: now,
                updated_at: now,
            }
        }
    };

    let txn = begin_write(db).await.map_err(db_err)?;
    // Claim the invitation: only one acceptance wins.
    let claimed = invitations::Entity::update_many()
        .col_expr(invitations::Column::AcceptedAt, Expr::value(now))
        .filter(invitations::Column::OrganizationId.eq(invitation.organization_id))
        .filter(invitations::Column::Id.eq(invitation.id))
        .filter(invitations::Column::AcceptedAt.is_null())
        .exec(&txn)
        .await
        .map_err(db_err)?
        .rows_affected;
    if claimed != 1 {
        return Err(invalid());
    }
    if users::Entity::find_by_id(user.id)
        .one(&txn)
        .await
        .map_err(db_err)?
        .is_none()
    {
        users::Entity::insert(users::ActiveModel::from(user.clone()))
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
    }
    if membership(&txn, org, UserId::from_uuid(user.id))
        .await?
        .is_some()
    {
        return Err(Error::Conflict(
            "you are already a member of this organization".into(),
        ));
    }
    memberships::Entity::insert(memberships::ActiveModel {
        organization_id: Set(org.as_uuid()),
        id: Set(uuid::Uuid::now_v7()),
        user_id: Set(user.id),
        role: Set(invitation.role.clone()),
        status: Set("active".into()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await
    .map_err(db_err)?;
    audit::Entry::new(org, Actor::User(user.id), "user.accept_invitation")
        .target("invitation", invitation.id)
        .details(json!({ "role": invitation.role }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    Ok((user, org))
}

/// What can change about a member.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    /// The new role.
    pub role: Role,
}

/// Changes a member's role.
pub async fn change_role(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    user: UserId,
    patch: MemberPatch,
) -> Result<MemberView, Error> {
    ctx.require(Permission::MembersManage)?;
    if patch.role.is_operator() || rank(patch.role) > rank(ctx.role()) {
        return Err(Error::invalid(
            "role",
            "cannot be higher than your own role",
        ));
    }
    if ctx.user() == Some(user) {
        return Err(Error::Conflict("you cannot change your own role".into()));
    }
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = membership(&txn, ctx.org(), user)
        .await?
        .ok_or(Error::not_found("user"))?;
    if rank(Role::from_str(&current.role).unwrap_or(Role::User)) > rank(ctx.role()) {
        return Err(Error::Forbidden(
            "you cannot change the role of someone above you".into(),
        ));
    }
    if current.role == Role::OrgAdmin.as_str() && patch.role != Role::OrgAdmin {
        ensure_another_admin(&txn, ctx.org(), user).await?;
    }
    set_membership(&txn, &current, Some(patch.role.as_str()), None, now).await?;
    end_sessions(&txn, ctx.org(), user, "role_changed", now).await?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "user.role_change")
        .target("user", user)
        .details(json!({ "from": current.role, "to": patch.role }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    view(db, ctx.org(), user).await
}

/// Deactivates (`active = false`) or reactivates a member.
pub async fn set_active(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    user: UserId,
    active: bool,
) -> Result<MemberView, Error> {
    ctx.require(Permission::MembersManage)?;
    if ctx.user() == Some(user) {
        return Err(Error::Conflict(
            "you cannot deactivate or reactivate yourself".into(),
        ));
    }
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = membership(&txn, ctx.org(), user)
        .await?
        .ok_or(Error::not_found("user"))?;
    if rank(Role::from_str(&current.role).unwrap_or(Role::User)) > rank(ctx.role()) {
        return Err(Error::Forbidden(
            "you cannot change someone above you".into(),
        ));
    }
    let status = if active { "active" } else { "deactivated" };
    if current.status != status {
        if !active && current.role == Role::OrgAdmin.as_str() {
            ensure_another_admin(&txn, ctx.org(), user).await?;
        }
        set_membership(&txn, &current, None, Some(status), now).await?;
        if !active {
            end_sessions(&txn, ctx.org(), user, "deactivated", now).await?;
        }
        audit::Entry::new(
            ctx.org(),
            Actor::of(ctx),
            if active {
                "user.reactivate"
            } else {
                "user.deactivate"
            },
        )
        .target("user", user)
        .record(&txn, client, now)
        .await?;
    }
    txn.commit().await.map_err(db_err)?;
    view(db, ctx.org(), user).await
}

async fn membership<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    user: UserId,
) -> Result<Option<memberships::Model>, Error> {
    memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(org.as_uuid()))
        .filter(memberships::Column::UserId.eq(user.as_uuid()))
        .one(conn)
        .await
        .map_err(db_err)
}

async fn view(db: &DatabaseConnection, org: OrgId, user: UserId) -> Result<MemberView, Error> {
    let m = membership(db, org, user)
        .await?
        .ok_or(Error::not_found("user"))?;
    let u = users::Entity::find_by_id(user.as_uuid())
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("user"))?;
    Ok(MemberView {
        id: u.id,
        email: u.email,
        name: u.name,
        role: m.role,
        status: m.status,
        joined_at: m.created_at,
    })
}

async fn ensure_another_admin(
    txn: &DatabaseTransaction,
    org: OrgId,
    except: UserId,
) -> Result<(), Error> {
    let admins = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(org.as_uuid()))
        .filter(memberships::Column::Role.eq(Role::OrgAdmin.as_str()))
        .filter(memberships::Column::Status.eq("active"))
        .filter(memberships::Column::UserId.ne(except.as_uuid()))
        .count(txn)
        .await
        .map_err(db_err)?;
    if admins == 0 {
        Err(Error::Conflict(
            "an organization needs at least one active org_admin".into(),
        ))
    } else {
        Ok(())
    }
}

async fn set_membership(
    txn: &DatabaseTransaction,
    current: &memberships::Model,
    role: Option<&str>,
    status: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let mut update = memberships::Entity::update_many()
        .col_expr(memberships::Column::UpdatedAt, Expr::value(now))
        .filter(memberships::Column::OrganizationId.eq(current.organization_id))
        .filter(memberships::Column::Id.eq(current.id));
    if let Some(role) = role {
        update = update.col_expr(memberships::Column::Role, Expr::value(role));
    }
    if let Some(status) = status {
        update = update.col_expr(memberships::Column::Status, Expr::value(status));
    }
    update.exec(txn).await.map_err(db_err)?;
    Ok(())
}

async fn end_sessions(
    txn: &DatabaseTransaction,
    org: OrgId,
    user: UserId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .col_expr(sessions::Column::RevokedReason, Expr::value(reason))
        .filter(sessions::Column::OrganizationId.eq(org.as_uuid()))
        .filter(sessions::Column::UserId.eq(user.as_uuid()))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(txn)
        .await
        .map_err(db_err)?;
    Ok(())
}
