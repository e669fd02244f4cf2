//! The Edge reference server.
//!
//! It assembles the Edge crates into a deployable multi-tenant service on SQLite (the
//! embedded default) or PostgreSQL. It is a library with a thin binary (`edge-server`),
//! so a team can build the [`Application`] in its own process or mount [`http::routes`]
//! inside its own axum app.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = edge_server::Config::from_env()?;
//! let app = edge_server::Application::build(config).await?;
//! println!("listening on {}", app.address());
//! app.run_until(edge_server::shutdown_signal()).await?;
//! # Ok(()) }
//! ```
//!
//! Routes of your own join Edge's with [`Application::with_routes`]: they get the same
//! [`AppState`], layers and JSON error envelope, and the background jobs and Socket.IO run
//! as usual:
//!
//! ```no_run
//! use axum::Router;
//! use axum::extract::State;
//! use axum::routing::get;
//! use edge_server::{AppState, Application, Config, shutdown_signal};
//!
//! async fn backend(State(state): State<AppState>) -> String {
//!     format!("edge on {}", state.backend_name())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let partner: Router<AppState> = Router::new().route("/partner/backend", get(backend));
//! let app = Application::build(Config::from_env()?).await?.with_routes(partner);
//! app.run_until(shutdown_signal()).await?;
//! # Ok(()) }
//! ```
//!
//! Or serve Edge's HTTP API from an axum app of your own: [`http::app`] is [`http::routes`]
//! with its state and layers applied. Served this way, only HTTP runs: the background
//! jobs (payment reconciliation, WhatsApp retries and webhook sweeps, outbound webhook
//! deliveries, imports, automation, notifications, expiring holds, subscriptions) and
//! Socket.IO are started by [`Application::run_until`], so run at least one node that
//! way. The application still binds `EDGE_BIND` when it is built; give it a free port.
//!
//! ```no_run
//! use std::net::SocketAddr;
//!
//! use axum::Router;
//! use axum::routing::get;
//! use edge_server::{Application, Config};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = Config::from_env()?;
//! config.bind = "127.0.0.1:0".parse()?;
//! let edge = Application::build(config).await?;
//! let app = Router::new()
//!     .route("/", get(|| async { "my app" }))
//!     .merge(edge_server::http::app(edge.state().clone()));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! // The peer address feeds the audit log and the per-address login limits.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```

pub mod analytics;
pub mod audit;
pub mod automation;
pub mod billing;
pub mod chat;
pub mod cli;
pub mod config;
pub mod crm;
pub mod db;
pub mod entities;
pub mod events;
pub mod exports;
pub mod http;
pub mod identity;
pub mod imports;
pub mod ledger;
pub mod migrations;
pub mod notifications;
pub mod organization_settings;
pub mod patch;
pub mod payments;
pub mod realtime;
pub mod secrets;
pub mod seed;
pub mod startup;
pub mod telemetry;
pub mod tenant_scope;
pub mod usage;
pub mod webhooks;
pub mod whatsapp;

use std::sync::Arc;

use sea_orm::DatabaseConnection;

pub use config::{Config, Environment, LogFormat};
pub use secrets::Secrets;
pub use startup::{Application, StartupError, shutdown_signal};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// The server's secrets.
    pub secrets: Arc<Secrets>,
    /// The clock; tests may fix it.
    pub clock: edge_core::SharedClock,
    /// Resolves who is asking, for which organization, from a token or API key.
    pub resolver: edge_tenancy::TenantResolver,
    /// Rate limits (in memory, or shared through Redis).
    pub limiter: Arc<dyn edge_tenancy::RateLimiter>,
    /// Sign-up, login and sessions.
    pub auth: identity::auth::Auth,
    /// Counts what each organization consumes.
    pub usage: Arc<dyn edge_tenancy::UsageMeter>,
    /// The wallet ledger: the only way a balance moves.
    pub ledger: Arc<dyn edge_core::Ledger>,
    /// M-Pesa payments: top-ups, subscriptions, collections, callbacks, reconciliation.
    pub payments: payments::Payments,
    /// WhatsApp: numbers, the platform webhook, sends, conversations.
    pub whatsapp: whatsapp::WhatsApp,
    /// Outbound webhooks: endpoints, fan-out, signed deliveries, the delivery log.
    pub webhooks: webhooks::Webhooks,
    /// Where each organization's subscription stands, as the tenant resolver last read
    /// it; the subscription gate reads it instead of querying again.
    pub standings: billing::Standings,
}

impl AppState {
    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => "sqlite",
            sea_orm::DatabaseBackend::Postgres => "postgres",
            _ => "other",
        }
    }
}

/// Installs rustls' `ring` crypto provider for this process. Safe to call more than once.
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is what we want.
    drop(rustls::crypto::ring::default_provider().install_default());
}
