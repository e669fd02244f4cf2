//! Sign-up, login, refresh-token rotation, logout, password change and switching
//! organization.
//!
//! Access tokens are short-lived JWTs naming the organization, role and session. Each
//! login starts a session; its refresh tokens are single-use and rotate on every refresh.
//! Presenting a refresh token a second time means it was stolen or replayed: the whole
//! session (the token family) is revoked. Revoking a session stops its access tokens at
//! once, because every request checks the session (see [`super::stores`]).

use std::str::FromStr as _;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use edge_core::{Error, OrgId, SessionId, SharedClock, UserId};
use edge_tenancy::{JwtCodec, Quota, RateKey, RateLimiter, Role, TenantContext, TokenSubject};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, SqlErr, TransactionTrait as _,
};
use secrecy::SecretString;
use serde::Serialize;

use super::{passwords, tokens};
use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::{memberships, organizations, refresh_tokens, sessions, users};

/// How long a session lasts at most; refresh tokens cannot outlive it.
pub const SESSION_TTL_DAYS: i64 = 30;

/// Why an authentication step was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown email or wrong password (deliberately indistinguishable).
    #[error("wrong email or password")]
    InvalidCredentials,
    /// The refresh token is unknown, used, expired or its session ended.
    #[error("the refresh token is not valid; log in again")]
    InvalidRefreshToken,
    /// The user's account, or their membership of this organization, is deactivated.
    #[error("this account is deactivated")]
    AccountDeactivated,
    /// The organization is suspended.
    #[error("this organization is suspended")]
    OrganizationSuspended,
    /// The user is a member of several organizations and must choose one.
    #[error("choose an organization: pass organization_id")]
    ChooseOrganization(Vec<OrganizationChoice>),
    /// The user is not an active member of the requested organization.
    #[error("you are not a member of that organization")]
    NotAMember,
    /// Anything else (validation, conflicts, rate limits, internal errors).
    #[error(transparent)]
    Core(#[from] Error),
}

impl From<DbErr> for AuthError {
    fn from(err: DbErr) -> Self {
        AuthError::Core(Error::internal(err))
    }
}

/// One organization a user may log in to.
#[derive(Debug, Clone, Serialize)]
pub struct OrganizationChoice {
    /// Its id.
    pub id: OrgId,
    /// Its name.
    pub name: String,
    /// The user's role there.
    pub role: Role,
}

/// A new pair of tokens.
#[derive(Debug)]
pub struct Tokens {
    /// The JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The single-use refresh token.
    pub refresh_token: SecretString,
    /// The session the tokens belong to.
    pub session: SessionId,
}

/// Who is logged in, where, and their tokens.
#[derive(Debug)]
pub struct Login {
    /// The user row.
    pub user: users::Model,
    /// The organization row.
    pub organization: organizations::Model,
    /// The role in that organization.
    pub role: Role,
    /// The tokens.
    pub tokens: Tokens,
}

/// What sign-up needs.
#[derive(Debug)]
pub struct Signup {
    /// The new organization's name.
    pub organization_name: String,
    /// The first administrator's name.
    pub name: String,
    /// Their email.
    pub email: String,
    /// Their password.
    pub password: SecretString,
}

/// The authentication service.
#[derive(Clone)]
pub struct Auth {
    db: DatabaseConnection,
    clock: SharedClock,
    jwt: Arc<JwtCodec>,
    limiter: Arc<dyn RateLimiter>,
}

/// Login attempts per client address: 20 a minute, bursts of 10.
fn per_address_quota() -> Quota {
    Quota::per_minute(20).with_burst(10)
}

/// Login attempts per account: 10 a minute, bursts of 5.
fn per_account_quota() -> Quota {
    Quota::per_minute(10).with_burst(5)
}

/// The rate-limit "organization" for limits that are not per tenant (logins).
const PLATFORM_SCOPE: OrgId = OrgId::from_uuid(uuid::Uuid::nil());

impl Auth {
    /// The service over `db`, signing tokens with `jwt`.
    pub fn new(
        db: DatabaseConnection,
        clock: SharedClock,
        jwt: Arc<JwtCodec>,
        limiter: Arc<dyn RateLimiter>,
    ) -> Self {
        Self {
            db,
            clock,
            jwt,
            limiter,
        }
    }

    /// Creates an organization and its first `org_admin`, and logs them in.
    pub async fn signup(&self, input: Signup, client: &ClientInfo) -> Result<Login, AuthError> {
        let mut problems = Vec::new();
        let organization_name = input.organization_name.trim().to_owned();
        if organization_name.is_empty() || organization_name.chars().count() > 200 {
            problems.push(edge_core::FieldError::new(
                "organization_name",
                "must be 1 to 200 characters",
            ));
        }
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            problems.push(edge_core::FieldError::new(
                "name",
                "must be 1 to 200 characters",
            ));
        }
        let email = match normalize_email(&input.email) {
            Ok(email) => email,
            Err(message) => {
                problems.push(edge_core::FieldError::new("email", message));
                String::new()
            }
        };
        if let Err(Error::Validation(mut fields)) =
            passwords::check_new("password", &input.password)
        {
            problems.append(&mut fields);
        }
        if !problems.is_empty() {
            return Err(Error::Validation(problems).into());
        }
        self.limit(
            format!("signup:ip:{}", client.ip.as_deref().unwrap_or("-")),
            per_address_quota(),
        )
        .await?;
        if users::Entity::find()
            .filter(users::Column::Email.eq(&email))
            .one(&self.db)
            .await?
            .is_some()
        {
            return Err(email_taken().into());
        }

        let password_hash = passwords::hash(input.password).await?;
        let now = self.clock.now();
        let txn = begin_write(&self.db).await?;
        // A new organization starts on the default plan, with a first period as a trial.
        let plan = crate::billing::plans::find(&txn, crate::billing::plans::DEFAULT_PLAN).await?;
        // On PostgreSQL a concurrent sign-up can take the free slug between the check and
        // the insert (on SQLite the write lock keeps sign-ups apart): the insert runs in a
        // savepoint, and a slug taken meanwhile is looked for again.
        let mut attempt = 0;
        let organization = loop {
            let slug = self.free_slug(&txn, &organization_name).await?;
            let organization = organizations::Model::new_active(
                slug,
                organization_name.clone(),
                "KES".into(),
                "KE".into(),
                plan.code.clone(),
                now,
            );
            let savepoint = txn.begin().await?;
            match organizations::Entity::insert(organizations::ActiveModel::from(
                organization.clone(),
            ))
            .exec_without_returning(&savepoint)
            .await
            {
                Ok(_) => {
                    savepoint.commit().await?;
                    break organization;
                }
                Err(e) if attempt < 3 && is_slug_taken(&e) => {
                    savepoint.rollback().await?;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let org = OrgId::from_uuid(organization.id);
        crate::billing::subscriptions::start(&txn, org, &plan, now).await?;
        crate::crm::pipelines::create_default(&txn, org, now).await?;
        let user = users::Model {
            id: UserId::new().as_uuid(),
            email,
            name,
            password_hash,
            is_operator: false,
            status: "active".into(),
            created_at: now,
            updated_at: now,
        };
        users::Entity::insert(users::ActiveModel::from(user.clone()))
            .exec_without_returning(&txn)
            .await
            .map_err(|e| match e.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(_)) => AuthError::Core(email_taken()),
                _ => AuthError::from(e),
            })?;
        memberships::Entity::insert(memberships::ActiveModel {
            organization_id: Set(org.as_uuid()),
            id: Set(uuid::Uuid::now_v7()),
            user_id: Set(user.id),
            role: Set(Role::OrgAdmin.as_str().to_owned()),
            status: Set("active".into()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        let tokens = self
            .start_session(&txn, org, &user, Role::OrgAdmin, client, now)
            .await?;
        audit::Entry::new(org, Actor::User(user.id), "organization.signup")
            .target("organization", org)
            .record(&txn, client, now)
            .await?;
        txn.commit().await?;
        Ok(Login {
            user,
            organization,
            role: Role::OrgAdmin,
            tokens,
        })
    }

    /// Logs in with email and password, into `organization` or the user's only one.
    pub async fn login(
        &self,
        email: &str,
        password: SecretString,
        organization: Option<OrgId>,
        client: &ClientInfo,
    ) -> Result<Login, AuthError> {
        let email = normalize_email(email).map_err(|_| AuthError::InvalidCredentials)?;
        self.limit(
            format!("login:ip:{}", client.ip.as_deref().unwrap_or("-")),
            per_address_quota(),
        )
        .await?;
        self.limit(
            format!("login:account:{}", tokens::hash(&email)),
            per_account_quota(),
        )
        .await?;

        let user = users::Entity::find()
            .filter(users::Column::Email.eq(&email))
            .one(&self.db)
            .await?;
        // Verify against a real hash even for unknown emails, so timing does not reveal
        // which emails have accounts.
        let stored = user
            .as_ref()
            .map_or_else(|| DUMMY_HASH.to_owned(), |u| u.password_hash.clone());
        let matches = passwords::verify(password, stored).await?;
        let user = match user {
            Some(user) if matches => user,
            _ => return Err(AuthError::InvalidCredentials),
        };
        if user.status != "active" {
            return Err(AuthError::AccountDeactivated);
        }
        let (organization, role) = self.choose_organization(&user, organization).await?;
        self.log_in_to(user, organization, role, client, "user.login")
            .await
    }

    /// Ends the caller's current session and starts one in `organization`.
    pub async fn switch(
        &self,
        ctx: &TenantContext,
        organization: OrgId,
        client: &ClientInfo,
    ) -> Result<Login, AuthError> {
        let (user_id, session) = user_session(ctx)?;
        let user = users::Entity::find_by_id(user_id.as_uuid())
            .one(&self.db)
            .await?
            .ok_or(AuthError::Core(Error::Unauthenticated))?;
        let (target, role) = self.choose_organization(&user, Some(organization)).await?;
        let login = self
            .log_in_to(user, target, role, client, "user.switch_organization")
            .await?;
        self.revoke_session(ctx.org(), session, "switched").await?;
        Ok(login)
    }

    async fn log_in_to(
        &self,
        user: users::Model,
        organization: organizations::Model,
        role: Role,
        client: &ClientInfo,
        action: &'static str,
    ) -> Result<Login, AuthError> {
        let org = OrgId::from_uuid(organization.id);
        let now = self.clock.now();
        let txn = begin_write(&self.db).await?;
        if organization.single_active_session {
            sessions::Entity::update_many()
                .col_expr(sessions::Column::RevokedAt, Expr::value(now))
                .col_expr(sessions::Column::RevokedReason, Expr::value("superseded"))
                .filter(sessions::Column::OrganizationId.eq(organization.id))
                .filter(sessions::Column::UserId.eq(user.id))
                .filter(sessions::Column::RevokedAt.is_null())
                .exec(&txn)
                .await?;
        }
        let tokens = self
            .start_session(&txn, org, &user, role, client, now)
            .await?;
        audit::Entry::new(org, Actor::User(user.id), action)
            .target("session", tokens.session)
            .record(&txn, client, now)
            .await?;
        txn.commit().await?;
        Ok(Login {
            user,
            organization,
            role,
            tokens,
        })
    }

    /// The organization to log in to, and the role there.
    async fn choose_organization(
        &self,
        user: &users::Model,
        requested: Option<OrgId>,
    ) -> Result<(organizations::Model, Role), AuthError> {
        let rows = memberships::Entity::find()
            .filter(memberships::Column::UserId.eq(user.id))
            .order_by_asc(memberships::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let membership = match requested {
            Some(org) => rows
                .into_iter()
                .find(|m| m.organization_id == org.as_uuid())
                .ok_or(AuthError::NotAMember)?,
            None => {
                let active: Vec<_> = rows.into_iter().filter(|m| m.status == "active").collect();
                match active.len() {
                    0 => return Err(AuthError::AccountDeactivated),
                    1 => active.into_iter().next().ok_or(AuthError::NotAMember)?,
                    _ => {
                        let mut choices = Vec::with_capacity(active.len());
                        for m in &active {
                            if let Some(org) = organizations::Entity::find_by_id(m.organization_id)
                                .one(&self.db)
                                .await?
                            {
                                choices.push(OrganizationChoice {
                                    id: OrgId::from_uuid(org.id),
                                    name: org.name,
                                    role: parse_role(&m.role)?,
                                });
                            }
                        }
                        return Err(AuthError::ChooseOrganization(choices));
                    }
                }
            }
        };
        if membership.status != "active" {
            return Err(AuthError::AccountDeactivated);
        }
        let organization = organizations::Entity::find_by_id(membership.organization_id)
            .one(&self.db)
            .await?
            .ok_or(AuthError::NotAMember)?;
        if organization.status != "active" {
            return Err(AuthError::OrganizationSuspended);
        }
        let role = if user.is_operator {
            Role::SuperAdmin
        } else {
            parse_role(&membership.role)?
        };
        Ok((organization, role))
    }

    /// Exchanges a refresh token for a new pair. A token presented twice revokes its
    /// whole session.
    pub async fn refresh(&self, token: &SecretString) -> Result<Login, AuthError> {
        let hash = tokens::hash_secret(token);
        let now = self.clock.now();
        let row = refresh_tokens::Entity::find()
            .filter(refresh_tokens::Column::TokenHash.eq(&hash))
            .one(&self.db)
            .await?
            .ok_or(AuthError::InvalidRefreshToken)?;
        let org = OrgId::from_uuid(row.organization_id);
        let session_id = SessionId::from_uuid(row.session_id);

        // Claim the token: only one caller can move `used_at` from NULL.
        let claimed = refresh_tokens::Entity::update_many()
            .col_expr(refresh_tokens::Column::UsedAt, Expr::value(now))
            .filter(refresh_tokens::Column::OrganizationId.eq(row.organization_id))
            .filter(refresh_tokens::Column::Id.eq(row.id))
            .filter(refresh_tokens::Column::UsedAt.is_null())
            .exec(&self.db)
            .await?
            .rows_affected
            == 1;
        if !claimed {
            tracing::warn!(
                organization = %org,
                session = %session_id,
                "refresh token reused: revoking the session"
            );
            self.revoke_session(org, session_id, "refresh_reuse")
                .await?;
            return Err(AuthError::InvalidRefreshToken);
        }
        if row.expires_at <= now {
            return Err(AuthError::InvalidRefreshToken);
        }
        let session = sessions::Entity::find_by_id((row.organization_id, row.session_id))
            .one(&self.db)
            .await?
            .ok_or(AuthError::InvalidRefreshToken)?;
        if session.revoked_at.is_some() || session.expires_at <= now {
            return Err(AuthError::InvalidRefreshToken);
        }
        let user = users::Entity::find_by_id(session.user_id)
            .one(&self.db)
            .await?
            .ok_or(AuthError::InvalidRefreshToken)?;
        if user.status != "active" {
            return Err(AuthError::AccountDeactivated);
        }
        let (organization, role) = self.choose_organization(&user, Some(org)).await?;

        let txn = begin_write(&self.db).await?;
        let refresh = self
            .issue_refresh_token(&txn, org, session_id, session.expires_at, now)
            .await?;
        txn.commit().await?;
        let (access_token, expires_in) = self.access_token(&user, org, role, session_id, now)?;
        Ok(Login {
            user,
            organization,
            role,
            tokens: Tokens {
                access_token,
                expires_in,
                refresh_token: refresh,
                session: session_id,
            },
        })
    }

    /// Ends the caller's session; its tokens stop working at once.
    pub async fn logout(&self, ctx: &TenantContext, client: &ClientInfo) -> Result<(), AuthError> {
        let (user, session) = user_session(ctx)?;
        self.revoke_session(ctx.org(), session, "logout").await?;
        audit::Entry::new(ctx.org(), Actor::User(user.as_uuid()), "user.logout")
            .target("session", session)
            .record(&self.db, client, self.clock.now())
            .await?;
        Ok(())
    }

    /// Changes the caller's password and ends every other session of theirs, in every
    /// organization.
    pub async fn change_password(
        &self,
        ctx: &TenantContext,
        current: SecretString,
        new: SecretString,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let (user_id, session) = user_session(ctx)?;
        passwords::check_new("new_password", &new)?;
        let user = users::Entity::find_by_id(user_id.as_uuid())
            .one(&self.db)
            .await?
            .ok_or(AuthError::Core(Error::Unauthenticated))?;
        if !passwords::verify(current, user.password_hash.clone()).await? {
            return Err(Error::invalid("current_password", "is not your current password").into());
        }
        let hash = passwords::hash(new).await?;
        let now = self.clock.now();
        let txn = begin_write(&self.db).await?;
        users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, Expr::value(hash))
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(users::Column::Id.eq(user.id))
            .exec(&txn)
            .await?;
        sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(now))
            .col_expr(
                sessions::Column::RevokedReason,
                Expr::value("password_changed"),
            )
            .filter(sessions::Column::UserId.eq(user.id))
            .filter(sessions::Column::RevokedAt.is_null())
            .filter(sessions::Column::Id.ne(session.as_uuid()))
            .exec(&txn)
            .await?;
        audit::Entry::new(ctx.org(), Actor::User(user.id), "user.password_change")
            .target("user", user.id)
            .record(&txn, client, now)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    async fn revoke_session(
        &self,
        org: OrgId,
        session: SessionId,
        reason: &'static str,
    ) -> Result<(), AuthError> {
        sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(self.clock.now()))
            .col_expr(sessions::Column::RevokedReason, Expr::value(reason))
            .filter(sessions::Column::OrganizationId.eq(org.as_uuid()))
            .filter(sessions::Column::Id.eq(session.as_uuid()))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn start_session<C: ConnectionTrait>(
        &self,
        conn: &C,
        org: OrgId,
        user: &users::Model,
        role: Role,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<Tokens, AuthError> {
        let session = SessionId::new();
        let expires_at = now + Duration::days(SESSION_TTL_DAYS);
        sessions::Entity::insert(sessions::ActiveModel {
            organization_id: Set(org.as_uuid()),
            id: Set(session.as_uuid()),
            user_id: Set(user.id),
            created_at: Set(now),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
            revoked_reason: Set(None),
            user_agent: Set(client.user_agent.clone()),
            ip_address: Set(client.ip.clone()),
        })
        .exec_without_returning(conn)
        .await?;
        let refresh_token = self
            .issue_refresh_token(conn, org, session, expires_at, now)
            .await?;
        let (access_token, expires_in) = self.access_token(user, org, role, session, now)?;
        Ok(Tokens {
            access_token,
            expires_in,
            refresh_token,
            session,
        })
    }

    async fn issue_refresh_token<C: ConnectionTrait>(
        &self,
        conn: &C,
        org: OrgId,
        session: SessionId,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<SecretString, AuthError> {
        let token = tokens::generate("rt");
        refresh_tokens::Entity::insert(refresh_tokens::ActiveModel {
            organization_id: Set(org.as_uuid()),
            id: Set(uuid::Uuid::now_v7()),
            session_id: Set(session.as_uuid()),
            token_hash: Set(token.hash),
            created_at: Set(now),
            expires_at: Set(expires_at),
            used_at: Set(None),
        })
        .exec_without_returning(conn)
        .await?;
        Ok(token.token)
    }

    fn access_token(
        &self,
        user: &users::Model,
        org: OrgId,
        role: Role,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<(String, i64), AuthError> {
        let (token, claims) = self
            .jwt
            .issue(
                TokenSubject {
                    user: UserId::from_uuid(user.id),
                    org,
                    role,
                    session,
                },
                now,
            )
            .map_err(|e| AuthError::Core(Error::internal(e)))?;
        Ok((token, claims.exp - claims.iat))
    }

    async fn free_slug<C: ConnectionTrait>(
        &self,
        conn: &C,
        name: &str,
    ) -> Result<String, AuthError> {
        let base = slugify(name);
        for attempt in 0..5 {
            let candidate = if attempt == 0 {
                base.clone()
            } else {
                let mut bytes = [0u8; 3];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
                format!("{base}-{}", hex::encode(bytes))
            };
            let taken = organizations::Entity::find()
                .filter(organizations::Column::Slug.eq(&candidate))
                .one(conn)
                .await?
                .is_some();
            if !taken {
                return Ok(candidate);
            }
        }
        Err(
            Error::Conflict("could not find a free organization slug; try another name".into())
                .into(),
        )
    }

    async fn limit(&self, bucket: String, quota: Quota) -> Result<(), AuthError> {
        let key = RateKey::new(PLATFORM_SCOPE, bucket);
        self.limiter.check(&key, quota).await?.into_result()?;
        Ok(())
    }
}

/// Whether an insert failed because another organization has the slug.
fn is_slug_taken(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains("slug")
    )
}

fn user_session(ctx: &TenantContext) -> Result<(UserId, SessionId), AuthError> {
    match ctx.principal() {
        edge_tenancy::Principal::User { user, session } => Ok((user, session)),
        edge_tenancy::Principal::ApiKey { .. } => Err(AuthError::Core(Error::Forbidden(
            "this needs a user's access token, not an API key".into(),
        ))),
    }
}

fn parse_role(text: &str) -> Result<Role, AuthError> {
    Role::from_str(text).map_err(|e| AuthError::Core(Error::internal(e)))
}

fn email_taken() -> Error {
    Error::Conflict("an account with this email already exists; log in instead".into())
}

/// Lower-cases and checks an email address.
pub fn normalize_email(input: &str) -> Result<String, &'static str> {
    let email = input.trim().to_lowercase();
    if email.is_empty() || email.len() > 320 {
        return Err("must be an email address of at most 320 characters");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("must be an email address like name@example.com");
    };
    let valid = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err("must be an email address like name@example.com")
    }
}

/// A DNS-label slug from an organization name: `"Acme Traders Ltd."` → `acme-traders-ltd`.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug: String = slug.trim_matches('-').chars().take(48).collect();
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() {
        "org".to_owned()
    } else {
        slug
    }
}

/// An argon2id hash of a random password nobody knows, verified against when the email
/// is unknown so that both paths take the same time.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Wq3vv2VQlGYdqN5a9o3BaxUNQa5HtMhqTx0XXj8Ze5M";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email("  Wanjiru@Example.CO.KE ").unwrap(),
            "wanjiru@example.co.ke"
        );
        for bad in [
            "",
            "no-at",
            "@example.com",
            "a@b",
            "a@.com",
            "a b@c.com",
            "a@b.com.",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash() {
        let parsed = argon2::password_hash::PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
    }

    #[test]
    fn slugs_are_dns_labels() {
        assert_eq!(slugify("Acme Traders Ltd."), "acme-traders-ltd");
        assert_eq!(slugify("  --Mama Mboga's  Shop-- "), "mama-mboga-s-shop");
        assert_eq!(slugify("日本"), "org");
        assert!(edge_tenancy::resolver::is_valid_slug(&slugify(
            &"x".repeat(100)
        )));
    }
}
