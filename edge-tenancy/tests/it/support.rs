//! Shared fixtures.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use edge_core::{FixedClock, OrgId, SessionId, SharedClock, UserId};
use edge_tenancy::{
    InMemoryApiKeyStore, InMemoryDirectory, InMemorySessionStore, JwtCodec, OrgRecord, OrgStatus,
    PlanLimits, Role, TenantResolver, TokenSubject,
};
use secrecy::SecretString;

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
}

pub const SECRET: &str = "0123456789abcdef0123456789abcdef-test-only";

pub fn codec() -> JwtCodec {
    JwtCodec::new("edge-test", "edge-api", "k1", SecretString::from(SECRET)).unwrap()
}

pub fn org_record(slug: &str) -> OrgRecord {
    OrgRecord {
        id: OrgId::new(),
        slug: slug.to_owned(),
        status: OrgStatus::Active,
        limits: PlanLimits::default(),
    }
}

/// A resolver with every strategy, over in-memory stores, and two organizations.
pub struct World {
    pub clock: FixedClock,
    pub directory: Arc<InMemoryDirectory>,
    pub sessions: Arc<InMemorySessionStore>,
    pub keys: Arc<InMemoryApiKeyStore>,
    pub codec: Arc<JwtCodec>,
    pub resolver: TenantResolver,
    pub acme: OrgRecord,
    pub globex: OrgRecord,
}

impl World {
    pub fn new() -> Self {
        let clock = FixedClock::new(start());
        let shared: SharedClock = Arc::new(clock.clone());
        let directory = Arc::new(InMemoryDirectory::new());
        let sessions = Arc::new(InMemorySessionStore::new());
        let keys = Arc::new(InMemoryApiKeyStore::new());
        let codec = Arc::new(codec());
        let acme = org_record("acme");
        let globex = org_record("globex");
        directory.insert(acme.clone());
        directory.insert(globex.clone());
        directory.add_domain("crm.acme.co.ke", acme.id);
        let resolver = TenantResolver::new(directory.clone(), shared)
            .with_jwt(codec.clone(), sessions.clone())
            .with_api_keys(keys.clone())
            .with_base_domains(["edge.example"]);
        Self {
            clock,
            directory,
            sessions,
            keys,
            codec,
            resolver,
            acme,
            globex,
        }
    }

    /// Signs in a new user of `org` with `role`; returns the token and the session.
    pub fn sign_in(&self, org: OrgId, role: Role) -> (String, UserId, SessionId) {
        let user = UserId::new();
        let session = SessionId::new();
        self.sessions.start(org, user, session);
        let (token, _) = self
            .codec
            .issue(
                TokenSubject {
                    user,
                    org,
                    role,
                    session,
                },
                self.clock_now(),
            )
            .unwrap();
        (token, user, session)
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        use edge_core::Clock;
        self.clock.now()
    }
}
