//! In-memory stores, for tests and for embedding Edge without a database.

use std::collections::{HashMap, HashSet};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use edge_core::{ApiKeyId, Error, OrgId, SessionId, UserId};

use crate::BoxFuture;
use crate::apikey::ApiKeyRecord;
use crate::store::{ApiKeyStore, OrgRecord, SessionStore, TenantDirectory};

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct Directory {
    orgs: HashMap<OrgId, OrgRecord>,
    domains: HashMap<String, OrgId>,
}

/// A [`TenantDirectory`] in memory.
#[derive(Debug, Default)]
pub struct InMemoryDirectory {
    inner: RwLock<Directory>,
}

impl InMemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an organization. The slug is stored lowercase.
    pub fn insert(&self, mut org: OrgRecord) {
        org.slug = org.slug.to_ascii_lowercase();
        write(&self.inner).orgs.insert(org.id, org);
    }

    /// Points a custom domain at an organization.
    pub fn add_domain(&self, domain: &str, org: OrgId) {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        write(&self.inner).domains.insert(domain, org);
    }

    /// Changes an organization's record in place; returns whether it existed.
    pub fn update(&self, org: OrgId, change: impl FnOnce(&mut OrgRecord)) -> bool {
        match write(&self.inner).orgs.get_mut(&org) {
            Some(record) => {
                change(record);
                true
            }
            None => false,
        }
    }
}

impl TenantDirectory for InMemoryDirectory {
    fn org_by_id(&self, org: OrgId) -> BoxFuture<'_, Result<Option<OrgRecord>, Error>> {
        let found = read(&self.inner).orgs.get(&org).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn org_by_slug<'a>(&'a self, slug: &'a str) -> BoxFuture<'a, Result<Option<OrgRecord>, Error>> {
        let found = read(&self.inner)
            .orgs
            .values()
            .find(|org| org.slug == slug)
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn org_by_domain<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFuture<'a, Result<Option<OrgRecord>, Error>> {
        let inner = read(&self.inner);
        let found = inner
            .domains
            .get(domain)
            .and_then(|org| inner.orgs.get(org))
            .cloned();
        Box::pin(async move { Ok(found) })
    }
}

/// An [`ApiKeyStore`] in memory.
#[derive(Debug, Default)]
pub struct InMemoryApiKeyStore {
    by_prefix: RwLock<HashMap<String, ApiKeyRecord>>,
}

impl InMemoryApiKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a key record (as returned by [`NewApiKey::issue`](crate::NewApiKey::issue)).
    pub fn insert(&self, record: ApiKeyRecord) {
        write(&self.by_prefix).insert(record.prefix.clone(), record);
    }

    /// Marks a key revoked at `at`; returns whether it existed.
    pub fn revoke(&self, id: ApiKeyId, at: DateTime<Utc>) -> bool {
        let mut keys = write(&self.by_prefix);
        match keys.values_mut().find(|record| record.id == id) {
            Some(record) => {
                record.revoked_at = Some(at);
                true
            }
            None => false,
        }
    }
}

impl ApiKeyStore for InMemoryApiKeyStore {
    fn find_by_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, Error>> {
        let found = read(&self.by_prefix).get(prefix).cloned();
        Box::pin(async move { Ok(found) })
    }
}

/// A [`SessionStore`] in memory: a session is active from [`start`](Self::start) until
/// [`revoke`](Self::revoke).
#[derive(Debug, Default)]
pub struct InMemorySessionStore {
    active: RwLock<HashSet<(OrgId, UserId, SessionId)>>,
}

impl InMemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks a session active.
    pub fn start(&self, org: OrgId, user: UserId, session: SessionId) {
        write(&self.active).insert((org, user, session));
    }

    /// Ends a session; returns whether it was active.
    pub fn revoke(&self, session: SessionId) -> bool {
        let mut active = write(&self.active);
        let before = active.len();
        active.retain(|(_, _, s)| *s != session);
        active.len() != before
    }
}

impl SessionStore for InMemorySessionStore {
    fn is_active(
        &self,
        org: OrgId,
        user: UserId,
        session: SessionId,
    ) -> BoxFuture<'_, Result<bool, Error>> {
        let active = read(&self.active).contains(&(org, user, session));
        Box::pin(async move { Ok(active) })
    }
}
