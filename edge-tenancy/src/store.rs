//! The stores a caller implements over its own database.
//!
//! All traits return boxed futures ([`BoxFuture`]) so they can be used as trait objects
//! (`Arc<dyn ApiKeyStore>`) inside a [`TenantResolver`](crate::TenantResolver). In-memory
//! implementations live in [`crate::memory`].

use edge_core::{Error, OrgId, SessionId, UserId};
use serde::{Deserialize, Serialize};

use crate::BoxFuture;
use crate::apikey::ApiKeyRecord;
use crate::context::PlanLimits;

/// Whether an organization may use the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgStatus {
    /// In good standing.
    Active,
    /// Blocked by the operator (or for non-payment): every request is refused.
    Suspended,
}

/// What tenant resolution needs to know about an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRecord {
    /// The organization.
    pub id: OrgId,
    /// Its URL slug, also its subdomain (`acme` in `acme.edge.example`).
    pub slug: String,
    /// Whether it may use the service.
    pub status: OrgStatus,
    /// Its plan's limits.
    pub limits: PlanLimits,
}

/// Finds organizations by id, slug and custom domain.
pub trait TenantDirectory: Send + Sync {
    /// The organization with this id.
    fn org_by_id(&self, org: OrgId) -> BoxFuture<'_, Result<Option<OrgRecord>, Error>>;

    /// The organization with this slug. `slug` is already lowercase.
    fn org_by_slug<'a>(&'a self, slug: &'a str) -> BoxFuture<'a, Result<Option<OrgRecord>, Error>>;

    /// The organization that has verified this custom domain (white-label builds).
    /// `domain` is already lowercase, without port or trailing dot.
    fn org_by_domain<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFuture<'a, Result<Option<OrgRecord>, Error>>;
}

/// Finds API keys by their visible prefix.
pub trait ApiKeyStore: Send + Sync {
    /// The key with this prefix, revoked or not.
    fn find_by_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, Error>>;
}

/// Says whether a login session is still active, so a revoked session stops at once
/// rather than when its access token expires.
pub trait SessionStore: Send + Sync {
    /// Whether `session` of `user` in `org` is active.
    fn is_active(
        &self,
        org: OrgId,
        user: UserId,
        session: SessionId,
    ) -> BoxFuture<'_, Result<bool, Error>>;
}
