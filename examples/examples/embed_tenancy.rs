//! Someone else's axum app — a small shared contact book, "Duka Contacts" — that uses
//! `edge-tenancy` for *who is asking and for which tenant*: access tokens (JWT), API keys,
//! roles and per-plan rate limits, resolved over the app's **own** store. No Edge server
//! and no Edge database are involved: the app implements edge-tenancy's store traits
//! (`TenantDirectory`, `SessionStore`, `ApiKeyStore`) over its own tables.
//!
//! ```text
//! cargo run -p edge-examples --example embed_tenancy -- --fake
//! cargo run -p edge-examples --example embed_tenancy -- --listen 127.0.0.1:8080
//! ```
//!
//! `--fake` starts the app on `127.0.0.1:0`, calls it over HTTP as three companies' users
//! and an API key would, and checks each answer: no token is 401; a `user` may add
//! contacts but not delete them (403) while a `manager` may; another company's contact is
//! 404, never 403; an API key works like a token; a signed-out session and a suspended
//! company are refused at once; a company on the free plan hits 429 with `Retry-After`
//! after its burst. It prints one line per check and exits 0 when all pass, 1 otherwise.
//!
//! Without `--fake` it serves on the given address (default `127.0.0.1:8080`) and prints
//! a token for each demo user, to try with curl:
//! `curl -H "Authorization: Bearer <token>" http://127.0.0.1:8080/contacts`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};
use edge_core::{Error, OrgId, SessionId, SharedClock, SystemClock, UserId};
use edge_tenancy::axum::{ApiError, AuthLayer, RateLimitLayer, require};
use edge_tenancy::{
    ApiKeyRecord, ApiKeyStore, BoxFuture, InMemoryRateLimiter, JwtCodec, KeyEnvironment, NewApiKey,
    OrgRecord, OrgStatus, Permission, PlanLimits, Principal, Role, SessionStore, TenantContext,
    TenantDirectory, TenantResolver, TokenSubject,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ---------------------------------------------------------------------------------------
// The app's own data. Yours would be tables in your database; the shapes are your own.
// ---------------------------------------------------------------------------------------

/// The app's price plans, mapped onto edge-tenancy's `PlanLimits`.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Free,
    Business,
}

impl Plan {
    fn limits(self) -> PlanLimits {
        match self {
            // 6 requests a minute, 3 at once: small enough to see a 429 in the demo.
            Plan::Free => PlanLimits {
                requests_per_minute: 6,
                request_burst: 3,
                max_members: 3,
                max_api_keys: 1,
                monthly_messages: Some(100),
            },
            Plan::Business => PlanLimits {
                requests_per_minute: 600,
                request_burst: 100,
                max_members: 50,
                max_api_keys: 10,
                monthly_messages: None,
            },
        }
    }
}

/// A customer company of the app: the tenant.
#[derive(Debug, Clone)]
struct Company {
    id: OrgId,
    slug: String,
    plan: Plan,
    suspended: bool,
}

/// A contact, owned by one company.
#[derive(Debug, Clone, Serialize)]
struct Contact {
    id: u64,
    #[serde(skip)]
    company: OrgId,
    name: String,
    phone: String,
}

#[derive(Debug, Default)]
struct Tables {
    companies: HashMap<OrgId, Company>,
    /// Signed-in sessions: (company, user, session).
    sessions: HashSet<(OrgId, UserId, SessionId)>,
    /// API keys by their visible prefix; only the hash of a key is kept.
    api_keys: HashMap<String, ApiKeyRecord>,
    contacts: Vec<Contact>,
    next_contact: u64,
}

/// The app's store. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
struct Store {
    tables: RwLock<Tables>,
}

impl Store {
    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn add_company(&self, slug: &str, plan: Plan) -> OrgId {
        let id = OrgId::new();
        let company = Company {
            id,
            slug: slug.into(),
            plan,
            suspended: false,
        };
        self.write().companies.insert(id, company);
        id
    }
}

impl Company {
    /// What edge-tenancy needs to know about a company.
    fn record(&self) -> OrgRecord {
        OrgRecord {
            id: self.id,
            slug: self.slug.clone(),
            status: if self.suspended {
                OrgStatus::Suspended
            } else {
                OrgStatus::Active
            },
            limits: self.plan.limits(),
        }
    }
}

// The three store traits, over the app's own tables. They return boxed futures so the
// resolver can hold them as trait objects; a database-backed store would await its
// queries inside `Box::pin(async move { … })`.

impl TenantDirectory for Store {
    fn org_by_id(&self, org: OrgId) -> BoxFuture<'_, Result<Option<OrgRecord>, Error>> {
        let found = self.read().companies.get(&org).map(Company::record);
        Box::pin(async move { Ok(found) })
    }

    fn org_by_slug<'a>(&'a self, slug: &'a str) -> BoxFuture<'a, Result<Option<OrgRecord>, Error>> {
        let found = self
            .read()
            .companies
            .values()
            .find(|c| c.slug == slug)
            .map(Company::record);
        Box::pin(async move { Ok(found) })
    }

    fn org_by_domain<'a>(
        &'a self,
        _domain: &'a str,
    ) -> BoxFuture<'a, Result<Option<OrgRecord>, Error>> {
        // This app has no custom domains (see the white_label example for those).
        Box::pin(async move { Ok(None) })
    }
}

impl SessionStore for Store {
    fn is_active(
        &self,
        org: OrgId,
        user: UserId,
        session: SessionId,
    ) -> BoxFuture<'_, Result<bool, Error>> {
        let active = self.read().sessions.contains(&(org, user, session));
        Box::pin(async move { Ok(active) })
    }
}

impl ApiKeyStore for Store {
    fn find_by_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Option<ApiKeyRecord>, Error>> {
        let found = self.read().api_keys.get(prefix).cloned();
        Box::pin(async move { Ok(found) })
    }
}

// ---------------------------------------------------------------------------------------
// Signing in: the app's own login decides who the user is; edge-tenancy issues the token.
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Accounts {
    store: Arc<Store>,
    codec: Arc<JwtCodec>,
    clock: SharedClock,
}

impl Accounts {
    /// Called after the app's own login succeeded: starts a session and issues a token.
    fn sign_in(&self, org: OrgId, role: Role) -> Result<(SessionId, String), BoxError> {
        let (user, session) = (UserId::new(), SessionId::new());
        self.store.write().sessions.insert((org, user, session));
        let subject = TokenSubject {
            user,
            org,
            role,
            session,
        };
        let (token, _claims) = self.codec.issue(subject, self.clock.now())?;
        Ok((session, token))
    }

    /// Signing out ends the session: its token stops working on the next request.
    fn sign_out(&self, session: SessionId) {
        self.store
            .write()
            .sessions
            .retain(|(_, _, s)| *s != session);
    }

    /// Issues an API key; only its hash is stored, the key is shown once.
    fn issue_api_key(&self, org: OrgId, name: &str, role: Role) -> Result<SecretString, BoxError> {
        let issued = NewApiKey {
            org,
            name: name.into(),
            role,
            environment: KeyEnvironment::Live,
            expires_at: None,
        }
        .issue(self.clock.now())?;
        let mut tables = self.store.write();
        tables
            .api_keys
            .insert(issued.record.prefix.clone(), issued.record);
        Ok(issued.key)
    }
}

// ---------------------------------------------------------------------------------------
// The HTTP API. Every handler takes the organization from the `TenantContext`, never from
// the request.
// ---------------------------------------------------------------------------------------

async fn whoami(tenant: TenantContext) -> Json<Value> {
    let caller = match tenant.principal() {
        Principal::User { user, .. } => json!({ "user": user.to_string() }),
        Principal::ApiKey { key } => json!({ "api_key": key.to_string() }),
    };
    Json(json!({
        "organization": tenant.org().to_string(),
        "role": tenant.role().as_str(),
        "caller": caller,
    }))
}

async fn list_contacts(State(store): State<Arc<Store>>, tenant: TenantContext) -> Json<Value> {
    let tables = store.read();
    let mine: Vec<&Contact> = tables
        .contacts
        .iter()
        .filter(|c| c.company == tenant.org())
        .collect();
    Json(json!({ "contacts": mine }))
}

#[derive(Deserialize)]
struct NewContact {
    name: String,
    phone: String,
}

async fn add_contact(
    State(store): State<Arc<Store>>,
    tenant: TenantContext,
    Json(body): Json<NewContact>,
) -> Result<impl IntoResponse, ApiError> {
    // Authorization inside the handler; `delete_contact` shows the layer instead.
    tenant.require(Permission::CrmWrite)?;
    let phone: edge_core::Msisdn = body.phone.parse().map_err(Error::from)?;
    let mut tables = store.write();
    tables.next_contact += 1;
    let contact = Contact {
        id: tables.next_contact,
        company: tenant.org(),
        name: body.name,
        phone: phone.to_string(),
    };
    tables.contacts.push(contact.clone());
    Ok((StatusCode::CREATED, Json(contact)))
}

async fn delete_contact(
    State(store): State<Arc<Store>>,
    tenant: TenantContext,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    let mut tables = store.write();
    // Another company's contact is "not found": its existence is never revealed.
    let index = tables
        .contacts
        .iter()
        .position(|c| c.id == id && c.company == tenant.org())
        .ok_or(Error::not_found("contact"))?;
    tables.contacts.remove(index);
    Ok(StatusCode::NO_CONTENT)
}

fn app(store: Arc<Store>, resolver: TenantResolver, clock: SharedClock) -> Router {
    let limiter = Arc::new(InMemoryRateLimiter::new(clock));
    Router::new()
        .route("/whoami", get(whoami))
        .route("/contacts", get(list_contacts).post(add_contact))
        .route(
            "/contacts/{id}",
            delete(delete_contact).layer(require(Permission::CrmDelete)),
        )
        // Layers run outside-in from the last one: authenticate, then rate-limit per
        // company by its plan, then the route's permission.
        .layer(RateLimitLayer::new(limiter, "api"))
        .layer(AuthLayer::new(resolver))
        .with_state(store)
}

// ---------------------------------------------------------------------------------------
// Running it.
// ---------------------------------------------------------------------------------------

struct Demo {
    accounts: Accounts,
    resolver: TenantResolver,
    acme: OrgId,
    globex: OrgId,
    kiosk: OrgId,
}

fn demo_setup() -> Result<Demo, BoxError> {
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Arc::new(Store::default());
    let acme = store.add_company("acme", Plan::Business);
    let globex = store.add_company("globex", Plan::Business);
    let kiosk = store.add_company("kiosk", Plan::Free);
    let codec = Arc::new(JwtCodec::new(
        "https://duka.example",
        "duka-api",
        "2026-01",
        // A real app loads this from its secret store; at least 32 bytes.
        SecretString::from("duka-demo-signing-secret-of-32-bytes-or-more"),
    )?);
    let resolver = TenantResolver::new(store.clone(), clock.clone())
        .with_jwt(codec.clone(), store.clone())
        .with_api_keys(store.clone());
    let accounts = Accounts {
        store,
        codec,
        clock,
    };
    Ok(Demo {
        accounts,
        resolver,
        acme,
        globex,
        kiosk,
    })
}

async fn serve(demo: Demo, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let router = app(
        demo.accounts.store.clone(),
        demo.resolver.clone(),
        demo.resolver.clock().clone(),
    );
    axum::serve(listener, router).await
}

/// One request of the demo and the status it must get.
struct Call<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
}

impl Call<'_> {
    async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        expected: u16,
    ) -> Result<(reqwest::header::HeaderMap, Value), BoxError> {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().unwrap_or("");
        if status != expected {
            return Err(format!("{what}: expected {expected}, got {status} {text}").into());
        }
        println!("ok  {what} -> {status} {code}");
        Ok((headers, body))
    }

    fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
    }
}

async fn run_fake() -> Result<(), BoxError> {
    let demo = demo_setup()?;
    let accounts = demo.accounts.clone();
    let (acme, globex, kiosk) = (demo.acme, demo.globex, demo.kiosk);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(demo, listener));
    println!("Duka Contacts at {base}");

    let (amina_session, amina) = accounts.sign_in(acme, Role::User)?;
    let (_, baraka) = accounts.sign_in(acme, Role::Manager)?;
    let (_, gloria) = accounts.sign_in(globex, Role::OrgAdmin)?;
    let (_, kamau) = accounts.sign_in(kiosk, Role::OrgAdmin)?;
    let acme_key = accounts.issue_api_key(acme, "reporting", Role::User)?;

    let http = reqwest::Client::new();
    let call = Call {
        http: &http,
        base: &base,
    };

    let (headers, _) = call
        .send("no token", http.get(format!("{base}/contacts")), 401)
        .await?;
    if headers.get("www-authenticate").is_none() {
        return Err("401 without WWW-Authenticate".into());
    }
    call.send("forged token", call.get("/contacts", "e30.e30.sig"), 401)
        .await?;

    let (_, me) = call
        .send("user asks who she is", call.get("/whoami", &amina), 200)
        .await?;
    if me["organization"] != acme.to_string() || me["role"] != "user" {
        return Err(format!("whoami answered {me}").into());
    }

    let (_, contact) = call
        .send(
            "user adds a contact",
            http.post(format!("{base}/contacts"))
                .bearer_auth(&amina)
                .json(&json!({ "name": "Wanjiku", "phone": "0712345678" })),
            201,
        )
        .await?;
    let id = contact["id"].as_u64().ok_or("the new contact has no id")?;
    if contact["phone"] != "+254712345678" {
        return Err(format!("phone not normalized: {contact}").into());
    }
    call.send(
        "bad phone number",
        http.post(format!("{base}/contacts"))
            .bearer_auth(&amina)
            .json(&json!({ "name": "X", "phone": "12" })),
        422,
    )
    .await?;
    call.send(
        "user deletes a contact (needs crm_delete)",
        http.delete(format!("{base}/contacts/{id}"))
            .bearer_auth(&amina),
        403,
    )
    .await?;

    let (_, theirs) = call
        .send(
            "another company lists contacts",
            call.get("/contacts", &gloria),
            200,
        )
        .await?;
    if theirs["contacts"].as_array().is_none_or(|c| !c.is_empty()) {
        return Err(format!("globex sees {theirs}").into());
    }
    call.send(
        "another company deletes Acme's contact",
        http.delete(format!("{base}/contacts/{id}"))
            .bearer_auth(&gloria),
        404,
    )
    .await?;

    let (_, listed) = call
        .send(
            "API key lists Acme's contacts",
            call.get("/contacts", acme_key.expose_secret()),
            200,
        )
        .await?;
    if listed["contacts"].as_array().map(Vec::len) != Some(1) {
        return Err(format!("the API key sees {listed}").into());
    }
    call.send(
        "manager deletes the contact",
        http.delete(format!("{base}/contacts/{id}"))
            .bearer_auth(&baraka),
        204,
    )
    .await?;

    accounts.sign_out(amina_session);
    call.send(
        "token of a signed-out session",
        call.get("/contacts", &amina),
        401,
    )
    .await?;

    if let Some(company) = accounts.store.write().companies.get_mut(&globex) {
        company.suspended = true;
    }
    call.send("suspended company", call.get("/contacts", &gloria), 403)
        .await?;

    // The free plan bursts to 3 requests; the 4th within the minute is refused.
    for n in 1..=3 {
        call.send(
            &format!("free plan request {n}"),
            call.get("/contacts", &kamau),
            200,
        )
        .await?;
    }
    let (headers, _) = call
        .send("free plan request 4", call.get("/contacts", &kamau), 429)
        .await?;
    let retry_after = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .ok_or("429 without Retry-After")?;
    println!("    Retry-After: {retry_after} s");

    println!("OK: every check passed");
    Ok(())
}

async fn run_server(listen: SocketAddr) -> Result<(), BoxError> {
    let demo = demo_setup()?;
    for (name, org, role) in [
        ("acme user", demo.acme, Role::User),
        ("acme manager", demo.acme, Role::Manager),
        ("globex admin", demo.globex, Role::OrgAdmin),
        ("kiosk admin (free plan)", demo.kiosk, Role::OrgAdmin),
    ] {
        let (_, token) = demo.accounts.sign_in(org, role)?;
        println!("{name}: {token}");
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "Duka Contacts on http://{} (tokens live 15 minutes)",
        listener.local_addr()?
    );
    serve(demo, listener).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    // reqwest is built without a default crypto provider; Edge uses ring.
    drop(rustls::crypto::ring::default_provider().install_default());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.iter().any(|a| a == "--fake") {
        run_fake().await
    } else {
        let listen = args
            .iter()
            .position(|a| a == "--listen")
            .and_then(|i| args.get(i + 1))
            .map_or("127.0.0.1:8080", String::as_str);
        match listen.parse() {
            Ok(addr) => run_server(addr).await,
            Err(e) => Err(format!("--listen {listen}: {e}").into()),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
