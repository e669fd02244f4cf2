//! Who is asking, for which tenant, with which role and limits.

use std::time::Duration;

use edge_core::{ApiKeyId, Error, OrgId, SessionId, UserId};
use serde::{Deserialize, Serialize};

use crate::ratelimit::Quota;
use crate::role::{Permission, Role};

/// The caller behind a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A signed-in user, in one login session.
    User {
        /// The user.
        user: UserId,
        /// The session the access token belongs to.
        session: SessionId,
    },
    /// A machine client holding an API key.
    ApiKey {
        /// The key's id (never the key itself).
        key: ApiKeyId,
    },
}

/// What an organization's plan allows. Stored by the caller, carried in every
/// [`TenantContext`] so handlers and rate limits need no second lookup.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanLimits {
    /// Sustained API requests allowed per minute.
    pub requests_per_minute: u32,
    /// Requests allowed at once from idle, on top of the sustained rate.
    pub request_burst: u32,
    /// Members the organization may have.
    pub max_members: u32,
    /// Active API keys the organization may hold.
    pub max_api_keys: u32,
    /// WhatsApp messages per calendar month; `None` means unmetered by plan.
    pub monthly_messages: Option<u64>,
}

impl PlanLimits {
    /// The API request quota these limits describe.
    pub fn request_quota(&self) -> Quota {
        Quota::per_period(
            self.requests_per_minute.max(1),
            Duration::from_secs(60),
            self.request_burst.max(1),
        )
    }
}

impl Default for PlanLimits {
    /// A small free plan: 120 requests a minute with bursts of 30, 5 members, 2 API keys.
    fn default() -> Self {
        Self {
            requests_per_minute: 120,
            request_burst: 30,
            max_members: 5,
            max_api_keys: 2,
            monthly_messages: Some(1_000),
        }
    }
}

/// The resolved answer to "who is asking, and for which tenant".
///
/// Every tenant-scoped operation takes the organization from here, never from the request
/// body. The fields are private: a context comes from a
/// [`TenantResolver`](crate::TenantResolver) (or, in tests and embedded use, from the
/// constructors below), and [`TenantContext::act_in`] is the only way to point it at
/// another organization, which only the operator may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantContext {
    org: OrgId,
    home_org: OrgId,
    principal: Principal,
    role: Role,
    limits: PlanLimits,
}

impl TenantContext {
    /// A context for a signed-in user.
    pub fn for_user(
        org: OrgId,
        user: UserId,
        session: SessionId,
        role: Role,
        limits: PlanLimits,
    ) -> Self {
        Self {
            org,
            home_org: org,
            principal: Principal::User { user, session },
            role,
            limits,
        }
    }

    /// A context for an API key.
    pub fn for_api_key(org: OrgId, key: ApiKeyId, role: Role, limits: PlanLimits) -> Self {
        Self {
            org,
            home_org: org,
            principal: Principal::ApiKey { key },
            role,
            limits,
        }
    }

    /// The organization every operation in this request is scoped to.
    pub fn org(&self) -> OrgId {
        self.org
    }

    /// The organization the caller belongs to. Differs from [`org`](Self::org) only when
    /// the operator acts in another tenant.
    pub fn home_org(&self) -> OrgId {
        self.home_org
    }

    /// Who is asking.
    pub fn principal(&self) -> Principal {
        self.principal
    }

    /// The user, when a user (not an API key) is asking.
    pub fn user(&self) -> Option<UserId> {
        match self.principal {
            Principal::User { user, .. } => Some(user),
            Principal::ApiKey { .. } => None,
        }
    }

    /// The caller's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The plan limits of the organization in scope.
    pub fn limits(&self) -> &PlanLimits {
        &self.limits
    }

    /// Whether the caller's role grants `permission`.
    pub fn can(&self, permission: Permission) -> bool {
        self.role.allows(permission)
    }

    /// `Ok` if the caller's role grants `permission`, else [`Error::Forbidden`].
    pub fn require(&self, permission: Permission) -> Result<(), Error> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "your role ({}) does not allow {}",
                self.role, permission
            )))
        }
    }

    /// `Ok` if `org` is the organization in scope. Use it when a route names an
    /// organization (path slug, host) and the credentials name one too.
    ///
    /// A mismatch is reported as [`Error::NotFound`], so that another tenant's existence
    /// is never revealed.
    pub fn ensure_org(&self, org: OrgId) -> Result<(), Error> {
        if self.org == org {
            Ok(())
        } else {
            Err(Error::not_found("organization"))
        }
    }

    /// Points the context at another organization. Only the operator
    /// ([`Role::SuperAdmin`]) may; anyone else gets [`Error::Forbidden`] unless `org` is
    /// already their own.
    pub fn act_in(&self, org: OrgId, limits: PlanLimits) -> Result<Self, Error> {
        if org == self.home_org {
            return Ok(Self {
                org,
                limits,
                ..self.clone()
            });
        }
        if !self.role.is_operator() {
            return Err(Error::Forbidden(
                "only the platform operator may act in another organization".into(),
            ));
        }
        Ok(Self {
            org,
            limits,
            ..self.clone()
        })
    }
}
