//! Turning a request's credentials, host or path into a [`TenantContext`].
//!
//! Each strategy is its own method and works with only the parts it needs configured:
//!
//! - [`TenantResolver::from_jwt`]: an access token; needs [`with_jwt`](TenantResolver::with_jwt);
//! - [`TenantResolver::from_api_key`]: an API key; needs
//!   [`with_api_keys`](TenantResolver::with_api_keys);
//! - [`TenantResolver::org_from_host`]: a subdomain of a base domain, or a custom domain;
//! - [`TenantResolver::org_from_slug`]: a path segment such as `/o/acme/...`.
//!
//! The host and slug strategies say *which* tenant a request is addressed to, not who is
//! asking; combine them with an authenticated context through
//! [`TenantContext::ensure_org`].

use std::fmt;
use std::sync::Arc;

use edge_core::{Error, SharedClock};

use crate::apikey::PresentedKey;
use crate::context::TenantContext;
use crate::jwt::JwtCodec;
use crate::store::{ApiKeyStore, OrgRecord, OrgStatus, SessionStore, TenantDirectory};

/// Resolves tenant contexts over the caller's own stores. Cheap to clone.
#[derive(Clone)]
pub struct TenantResolver {
    directory: Arc<dyn TenantDirectory>,
    clock: SharedClock,
    jwt: Option<(Arc<JwtCodec>, Arc<dyn SessionStore>)>,
    api_keys: Option<Arc<dyn ApiKeyStore>>,
    base_domains: Vec<String>,
}

impl TenantResolver {
    /// A resolver over `directory`, reading time from `clock`. Add strategies with the
    /// `with_*` methods.
    pub fn new(directory: Arc<dyn TenantDirectory>, clock: SharedClock) -> Self {
        Self {
            directory,
            clock,
            jwt: None,
            api_keys: None,
            base_domains: Vec::new(),
        }
    }

    /// Accepts access tokens verified by `codec`, whose sessions `sessions` confirms.
    pub fn with_jwt(mut self, codec: Arc<JwtCodec>, sessions: Arc<dyn SessionStore>) -> Self {
        self.jwt = Some((codec, sessions));
        self
    }

    /// Accepts API keys found in `store`.
    pub fn with_api_keys(mut self, store: Arc<dyn ApiKeyStore>) -> Self {
        self.api_keys = Some(store);
        self
    }

    /// Domains whose direct subdomains are organization slugs, e.g. `edge.example` makes
    /// `acme.edge.example` resolve to the organization `acme`. Any other host is looked
    /// up as a custom domain.
    pub fn with_base_domains<I, S>(mut self, domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.base_domains = domains
            .into_iter()
            .filter_map(|d| normalize_host(d.as_ref()))
            .collect();
        self
    }

    /// The clock this resolver reads.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Resolves an `Authorization` header value: `Bearer <access token or API key>`.
    pub async fn from_authorization(&self, header: &str) -> Result<TenantContext, Error> {
        let (scheme, credential) = header
            .trim()
            .split_once(' ')
            .ok_or(Error::Unauthenticated)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Error::Unauthenticated);
        }
        self.from_bearer(credential.trim()).await
    }

    /// Resolves a bearer credential: an API key if it looks like one, else an access
    /// token.
    pub async fn from_bearer(&self, credential: &str) -> Result<TenantContext, Error> {
        if PresentedKey::looks_like_key(credential) {
            self.from_api_key(credential).await
        } else {
            self.from_jwt(credential).await
        }
    }

    /// Resolves an access token: verifies it, checks that its session is still active and
    /// that its organization exists and is active.
    ///
    /// The role comes from the token, so a role change applies when the token is next
    /// refreshed; revoke the session to apply it at once.
    pub async fn from_jwt(&self, token: &str) -> Result<TenantContext, Error> {
        let (codec, sessions) = self.jwt.as_ref().ok_or(Error::Unauthenticated)?;
        let claims = codec.verify(token, self.clock.now())?;
        if !sessions
            .is_active(claims.org, claims.sub, claims.sid)
            .await?
        {
            return Err(Error::Unauthenticated);
        }
        let org = self.active_org(claims.org).await?;
        Ok(TenantContext::for_user(
            org.id,
            claims.sub,
            claims.sid,
            claims.role,
            org.limits,
        ))
    }

    /// Resolves an API key: finds it by prefix, compares hashes in constant time, checks
    /// revocation, expiry and the organization.
    pub async fn from_api_key(&self, key: &str) -> Result<TenantContext, Error> {
        let store = self.api_keys.as_ref().ok_or(Error::Unauthenticated)?;
        let presented = PresentedKey::parse(key)?;
        let record = store
            .find_by_prefix(presented.prefix())
            .await?
            .ok_or(Error::Unauthenticated)?;
        if !record.accepts(&presented, self.clock.now()) || record.role.is_operator() {
            return Err(Error::Unauthenticated);
        }
        let org = self.active_org(record.org).await?;
        Ok(TenantContext::for_api_key(
            org.id,
            record.id,
            record.role,
            org.limits,
        ))
    }

    /// The organization a request's `Host` addresses: a slug under one of the base
    /// domains, or a custom domain. [`Error::NotFound`] when none matches.
    pub async fn org_from_host(&self, host: &str) -> Result<OrgRecord, Error> {
        let host = normalize_host(host).ok_or(Error::not_found("organization"))?;
        for base in &self.base_domains {
            if let Some(sub) = host
                .strip_suffix(base.as_str())
                .and_then(|rest| rest.strip_suffix('.'))
            {
                if sub.contains('.') {
                    return Err(Error::not_found("organization"));
                }
                return self.org_from_slug(sub).await;
            }
            if &host == base {
                return Err(Error::not_found("organization"));
            }
        }
        let org = self
            .directory
            .org_by_domain(&host)
            .await?
            .ok_or(Error::not_found("organization"))?;
        found_and_active(org)
    }

    /// The organization with this slug. [`Error::NotFound`] when none has it.
    pub async fn org_from_slug(&self, slug: &str) -> Result<OrgRecord, Error> {
        let slug = slug.to_ascii_lowercase();
        if !is_valid_slug(&slug) {
            return Err(Error::not_found("organization"));
        }
        let org = self
            .directory
            .org_by_slug(&slug)
            .await?
            .ok_or(Error::not_found("organization"))?;
        found_and_active(org)
    }

    async fn active_org(&self, org: edge_core::OrgId) -> Result<OrgRecord, Error> {
        let org = self
            .directory
            .org_by_id(org)
            .await?
            .ok_or(Error::Unauthenticated)?;
        found_and_active(org)
    }
}

fn found_and_active(org: OrgRecord) -> Result<OrgRecord, Error> {
    match org.status {
        OrgStatus::Active => Ok(org),
        OrgStatus::Suspended => Err(Error::Forbidden("this organization is suspended".into())),
    }
}

impl fmt::Debug for TenantResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantResolver")
            .field("jwt", &self.jwt.as_ref().map(|(codec, _)| codec))
            .field("api_keys", &self.api_keys.is_some())
            .field("base_domains", &self.base_domains)
            .finish_non_exhaustive()
    }
}

/// Whether `slug` is a valid organization slug: 1 to 63 characters from `a-z 0-9 -`,
/// not starting or ending with `-` (so it is also a valid DNS label).
pub fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 63
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Lowercases a `Host` header value and removes its port and trailing dot. `None` for
/// IP literals and anything that is not a DNS name.
pub fn normalize_host(host: &str) -> Option<String> {
    let host = host.trim();
    if host.starts_with('[') {
        return None;
    }
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => host,
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        && !host
            .split('.')
            .all(|label| label.bytes().all(|b| b.is_ascii_digit()));
    valid.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalized_and_ip_literals_refused() {
        assert_eq!(
            normalize_host("Acme.Edge.Example:8080").as_deref(),
            Some("acme.edge.example")
        );
        assert_eq!(
            normalize_host("crm.acme.co.ke.").as_deref(),
            Some("crm.acme.co.ke")
        );
        assert_eq!(normalize_host("127.0.0.1:80"), None);
        assert_eq!(normalize_host("[::1]:80"), None);
        assert_eq!(normalize_host("bad host"), None);
        assert_eq!(normalize_host(""), None);
    }

    #[test]
    fn slugs_are_dns_labels() {
        assert!(is_valid_slug("acme-ltd"));
        assert!(!is_valid_slug("-acme"));
        assert!(!is_valid_slug("Acme"));
        assert!(!is_valid_slug("a.b"));
        assert!(!is_valid_slug(""));
    }
}
