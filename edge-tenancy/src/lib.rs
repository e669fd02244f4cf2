//! Who is asking and for which tenant.
//!
//! `edge-tenancy` is the wall between tenants. It answers, for every request, *who* is
//! asking, *for which organization*, and *what they may do*:
//!
//! - [`TenantContext`]: the organization, the principal (user or API key), the role and
//!   the plan limits; resolved by [`TenantResolver`] from an access token ([`jwt`]), an
//!   API key ([`apikey`]), a host or custom domain, or a path slug, over stores the
//!   caller implements ([`store`]; in-memory versions in [`memory`]);
//! - [`Role`] and [`Permission`]: the permission matrix, in one place ([`Role::allows`]);
//! - [`seal`]: per-tenant credentials sealed with AES-256-GCM, bound to their
//!   organization and purpose, under rotatable master keys;
//! - [`ratelimit`]: per-tenant GCRA rate limits, in memory or (feature `redis`) in Redis;
//! - [`usage`]: a usage meter;
//! - `axum` (feature `axum`): an extractor and layers that reject with Edge's JSON error
//!   envelope.
//!
//! The crate reads no environment variables and starts no runtime. Time always comes
//! from an injected [`edge_core::Clock`].
//!
//! Store traits return [`BoxFuture`]s, so they work as trait objects.
//!
//! ```
//! use std::sync::Arc;
//!
//! use edge_core::{OrgId, SessionId, SharedClock, SystemClock, UserId};
//! use edge_tenancy::{
//!     InMemoryDirectory, InMemorySessionStore, JwtCodec, OrgRecord, OrgStatus, Permission,
//!     PlanLimits, Role, TenantResolver, TokenSubject,
//! };
//! use secrecy::SecretString;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock: SharedClock = Arc::new(SystemClock);
//! let directory = Arc::new(InMemoryDirectory::new());
//! let org = OrgId::new();
//! directory.insert(OrgRecord {
//!     id: org,
//!     slug: "acme".into(),
//!     status: OrgStatus::Active,
//!     limits: PlanLimits::default(),
//! });
//! let sessions = Arc::new(InMemorySessionStore::new());
//! let codec = Arc::new(JwtCodec::new(
//!     "https://edge.example",
//!     "edge-api",
//!     "2026-11",
//!     SecretString::from("a-secret-of-at-least-thirty-two-bytes!"),
//! )?);
//! let resolver = TenantResolver::new(directory, clock.clone())
//!     .with_jwt(codec.clone(), sessions.clone());
//!
//! // At sign-in: start a session and issue a token.
//! let (user, session) = (UserId::new(), SessionId::new());
//! sessions.start(org, user, session);
//! let subject = TokenSubject { user, org, role: Role::Manager, session };
//! let (token, _claims) = codec.issue(subject, clock.now())?;
//!
//! // On every request: resolve, then authorize.
//! # let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! # runtime.block_on(async {
//! let tenant = resolver.from_authorization(&format!("Bearer {token}")).await?;
//! assert_eq!(tenant.org(), org);
//! tenant.require(Permission::CrmDelete)?;
//! assert!(tenant.require(Permission::BillingManage).is_err());
//! # Ok::<(), edge_core::Error>(())
//! # })?;
//! # Ok(())
//! # }
//! ```
//!
//! Sealing a tenant's credential, then rotating the master key: new values are sealed
//! under the new key, old ones still open until they are sealed again.
//!
//! ```
//! use edge_core::OrgId;
//! use edge_tenancy::{KeyId, Keyring, MasterKey};
//! use secrecy::{ExposeSecret, SecretString};
//!
//! let org = OrgId::new();
//! let keyring = Keyring::new(KeyId::new("2026-01")?, MasterKey::generate());
//! let token = SecretString::from("EAAG-tenant-access-token");
//! let stored = keyring.seal(org, "whatsapp.access_token", &token)?.to_string();
//!
//! let keyring = keyring.rotate_to(KeyId::new("2026-07")?, MasterKey::generate())?;
//! let sealed = stored.parse()?;
//! assert!(keyring.needs_reseal(&sealed));
//! let resealed = keyring.reseal(org, "whatsapp.access_token", &sealed)?;
//! assert_eq!(resealed.key_id().as_str(), "2026-07");
//! let opened = keyring.open(org, "whatsapp.access_token", &resealed)?;
//! assert_eq!(opened.expose_secret(), "EAAG-tenant-access-token");
//! # Ok::<(), edge_tenancy::SealError>(())
//! ```

use std::future::Future;
use std::pin::Pin;

pub mod apikey;
pub mod context;
pub mod jwt;
pub mod memory;
pub mod ratelimit;
pub mod resolver;
pub mod role;
pub mod seal;
pub mod store;
pub mod usage;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "redis")]
pub mod redis;

pub use apikey::{ApiKeyRecord, IssuedApiKey, KeyEnvironment, KeyHash, NewApiKey, PresentedKey};
pub use context::{PlanLimits, Principal, TenantContext};
pub use jwt::{Claims, JwtCodec, JwtError, TokenSubject};
pub use memory::{InMemoryApiKeyStore, InMemoryDirectory, InMemorySessionStore};
pub use ratelimit::{InMemoryRateLimiter, Quota, RateDecision, RateKey, RateLimiter};
#[cfg(feature = "redis")]
pub use redis::RedisRateLimiter;
pub use resolver::TenantResolver;
pub use role::{Permission, Role};
pub use seal::{CacheStats, CredentialCache, KeyId, Keyring, MasterKey, SealError, Sealed};
pub use store::{ApiKeyStore, OrgRecord, OrgStatus, SessionStore, TenantDirectory};
pub use usage::{InMemoryUsageMeter, UsageMeter};

/// A boxed, sendable future: what the store traits return so they can be used as
/// `dyn` trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
