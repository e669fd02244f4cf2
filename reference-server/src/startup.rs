//! Building and running the server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::identity::auth::Auth;
use crate::identity::stores::DbStores;
use crate::secrets::{Secrets, SecretsError};
use crate::{AppState, db, http};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// A secret is missing or malformed.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// Redis (for shared rate limits) could not be reached.
    #[error("redis: {0}")]
    Redis(edge_core::Error),
    /// The access-token signing key is unusable.
    #[error("access tokens: {0}")]
    Jwt(#[from] edge_tenancy::JwtError),
    /// The WhatsApp service could not be set up.
    #[error("whatsapp: {0}")]
    WhatsApp(edge_core::Error),
    /// The payments service could not be set up.
    #[error("payments: {0}")]
    Payments(edge_core::Error),
    /// The webhooks service could not be set up.
    #[error("webhooks: {0}")]
    Webhooks(edge_core::Error),
    /// The credentials key is unusable.
    #[error("credentials key: {0}")]
    CredentialsKey(#[from] edge_tenancy::SealError),
    /// The realtime (Socket.IO) server could not be set up, e.g. its Redis adapter.
    #[error("realtime: {0}")]
    Realtime(edge_core::Error),
    /// The listening address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A server that is bound to its port and ready to run.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    state: AppState,
    realtime: crate::realtime::Realtime,
    extra_routes: axum::Router<AppState>,
    wrap: Option<RouterWrap>,
}

/// What [`Application::wrap_router`] applies to the finished router.
type RouterWrap = Box<dyn FnOnce(axum::Router) -> axum::Router + Send>;

impl Application {
    /// Loads secrets, connects to the database, applies migrations if configured to, and
    /// binds the listener (use port 0 to get a free port; see [`Application::address`]).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Arc::new(edge_core::SystemClock)).await
    }

    /// Like [`Application::build`], with an injected clock.
    pub async fn build_with_clock(
        config: Config,
        clock: edge_core::SharedClock,
    ) -> Result<Self, StartupError> {
        let secrets = Secrets::load(&config)?;
        let db = db::connect(&config).await?;
        if config.migrate_on_start {
            db::migrate(&db).await?;
        }
        let state = db::migration_state(&db).await?;
        if !state.pending.is_empty() {
            tracing::warn!(
                pending = ?state.pending,
                "migrations are pending: /readyz answers 503 until `edge-server migrate` is run"
            );
        }
        let listener =
            TcpListener::bind(config.bind)
                .await
                .map_err(|source| StartupError::Bind {
                    address: config.bind,
                    source,
                })?;
        let address = listener.local_addr().map_err(|source| StartupError::Bind {
            address: config.bind,
            source,
        })?;
        let limiter: Arc<dyn edge_tenancy::RateLimiter> = match &config.redis_url {
            Some(url) => Arc::new(
                edge_tenancy::RedisRateLimiter::connect(url, "edge:ratelimit")
                    .await
                    .map_err(StartupError::Redis)?,
            ),
            None => Arc::new(edge_tenancy::InMemoryRateLimiter::new(clock.clone())),
        };
        let jwt = Arc::new(jwt_codec(&secrets)?);
        let stores = Arc::new(DbStores::new(db.clone(), clock.clone()));
        let standings = stores.standings();
        let resolver = edge_tenancy::TenantResolver::new(stores.clone(), clock.clone())
            .with_jwt(jwt.clone(), stores.clone())
            .with_api_keys(stores);
        let auth = Auth::new(db.clone(), clock.clone(), jwt, limiter.clone());
        let usage = Arc::new(crate::usage::DbUsageMeter::new(db.clone(), clock.clone()));
        let ledger: Arc<dyn edge_core::Ledger> =
            Arc::new(crate::ledger::SqlLedger::new(db.clone(), clock.clone()));
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"));
        let payments = crate::payments::Payments::new(
            db.clone(),
            clock.clone(),
            ledger.clone(),
            credentials_keyring(&secrets)?,
            config.mpesa.clone(),
            &public_url,
        )
        .map_err(StartupError::Payments)?
        .with_platform_token_key(&secrets.credentials_key_bytes());
        let whatsapp = crate::whatsapp::WhatsApp::new(
            db.clone(),
            clock.clone(),
            ledger.clone(),
            credentials_keyring(&secrets)?,
            config.whatsapp.clone(),
        )
        .map_err(StartupError::WhatsApp)?;
        let webhooks = crate::webhooks::Webhooks::new(
            db.clone(),
            clock.clone(),
            credentials_keyring(&secrets)?,
            config.webhooks_allow_private_addresses,
        )
        .map_err(StartupError::Webhooks)?;
        if config.webhooks_allow_private_addresses {
            tracing::warn!(
                "EDGE_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES is on: webhooks may reach private and \
                 loopback addresses; never set it in production"
            );
        }
        if config.whatsapp.app_secret.is_none() {
            tracing::warn!(
                "EDGE_WHATSAPP_APP_SECRET is not set: /webhooks/whatsapp answers 503 until it is"
            );
        }
        if config.mpesa.platform.is_none() {
            tracing::warn!(
                "the platform's M-Pesa account is not configured: wallet top-ups and subscriptions \
                 answer 409 until EDGE_MPESA_CONSUMER_KEY, EDGE_MPESA_CONSUMER_SECRET, \
                 EDGE_MPESA_SHORTCODE and EDGE_MPESA_PASSKEY are set"
            );
        }
        let state = AppState {
            db,
            config: Arc::new(config),
            secrets: Arc::new(secrets),
            clock,
            resolver,
            limiter,
            auth,
            usage,
            ledger,
            payments,
            whatsapp,
            webhooks,
            standings,
        };
        let realtime = crate::realtime::Realtime::build(&state)
            .await
            .map_err(StartupError::Realtime)?;
        Ok(Self {
            listener,
            address,
            state,
            realtime,
            extra_routes: axum::Router::new(),
            wrap: None,
        })
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The shared state (for tests and embedding).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Adds routes of your own (for example a partner's endpoints in a white-label
    /// build). They get the same state, layers and error envelope as Edge's routes; a path
    /// that Edge already serves is a start-up panic, as with any axum merge.
    pub fn with_routes(mut self, routes: axum::Router<AppState>) -> Self {
        self.extra_routes = self.extra_routes.merge(routes);
        self
    }

    /// Wraps the finished HTTP router (Edge's routes, yours from [`Application::with_routes`]
    /// and Edge's layers) before it is served: for layers that must see every request
    /// first, such as a white-label build resolving the organization from the host or
    /// adding the partner's headers. The realtime endpoint (`/socket.io`) stays outside.
    /// Calling it again wraps the previous wrapping.
    pub fn wrap_router<F>(mut self, wrap: F) -> Self
    where
        F: FnOnce(axum::Router) -> axum::Router + Send + 'static,
    {
        self.wrap = Some(match self.wrap.take() {
            Some(inner) => Box::new(move |router| wrap(inner(router))),
            None => Box::new(wrap),
        });
        self
    }

    /// Serves until `shutdown` resolves, then stops accepting connections and lets
    /// in-flight requests finish, for at most the configured grace period.
    pub async fn run_until<F>(self, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let grace = self.state.config.shutdown_grace;
        let sweeper = tokio::spawn(sweep_expired_holds(self.state.ledger.clone()));
        let reconciler = tokio::spawn(
            self.state
                .payments
                .clone()
                .reconcile_forever(reconcile_interval(&self.state.config)),
        );
        let whatsapp = tokio::spawn(
            self.state
                .whatsapp
                .clone()
                .work_forever(std::time::Duration::from_secs(2)),
        );
        let subscriptions = tokio::spawn(advance_subscriptions(
            self.state.db.clone(),
            self.state.clock.clone(),
        ));
        let consumers = self.state.config.event_consumers.then(|| {
            [
                tokio::spawn(self.state.webhooks.clone().work_forever(WEBHOOKS_IDLE)),
                tokio::spawn(
                    crate::automation::worker::Runner::new(
                        self.state.db.clone(),
                        self.state.clock.clone(),
                        self.state.whatsapp.clone(),
                    )
                    .work_forever(EVENT_POLL),
                ),
                tokio::spawn(crate::notifications::worker::work_forever(
                    self.state.db.clone(),
                    self.state.clock.clone(),
                    EVENT_POLL,
                )),
            ]
        });
        let overdue = tokio::spawn(crate::automation::overdue::sweep_forever(
            self.state.db.clone(),
            self.state.clock.clone(),
            OVERDUE_SWEEP_INTERVAL,
        ));
        let outbox = self.realtime.spawn_outbox(self.state.db.clone());
        let imports = tokio::spawn(crate::imports::worker::work_forever(
            self.state.db.clone(),
            self.state.clock.clone(),
            std::time::Duration::from_millis(500),
        ));
        let mut app = http::app_with(self.state.clone(), self.extra_routes);
        if let Some(wrap) = self.wrap {
            app = wrap(app);
        }
        let app = self.realtime.attach(app);
        let realtime = self.realtime;
        let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections; finishing requests in flight");
            // Socket.IO connections are long-lived: close them so they do not hold the
            // shutdown until the grace period ends.
            realtime.close().await;
            signalled_tx.send(()).ok();
        });
        let deadline = async move {
            if signalled_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let result = tokio::select! {
            result = server.into_future() => {
                tracing::info!("stopped");
                result
            }
            () = deadline => {
                tracing::warn!(grace_secs = grace.as_secs(), "requests still in flight after the grace period were dropped");
                Ok(())
            }
        };
        sweeper.abort();
        reconciler.abort();
        subscriptions.abort();
        whatsapp.abort();
        outbox.abort();
        imports.abort();
        for consumer in consumers.iter().flatten() {
            consumer.abort();
        }
        overdue.abort();
        result
    }
}

/// How often the automation and notification workers look for queued events.
const EVENT_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// How often tickets whose due time passed are looked for.
const OVERDUE_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// How long the webhooks worker waits after a pass that found nothing to do.
const WEBHOOKS_IDLE: std::time::Duration = std::time::Duration::from_millis(500);

/// How often expired holds are swept.
const HOLD_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Records holds that outlived their timeout as expired, every [`HOLD_SWEEP_INTERVAL`].
/// (An expired hold stops counting against the balance at its expiry whether or not the
/// sweep has run; the sweep records it.) Safe on several nodes: the ledger ends a hold once.
async fn sweep_expired_holds(ledger: Arc<dyn edge_core::Ledger>) {
    let mut interval = tokio::time::interval(HOLD_SWEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match crate::tenant_scope::cross_tenant(ledger.expire_holds(500)).await {
            Ok(expired) if !expired.is_empty() => {
                tracing::info!(count = expired.len(), "expired holds released");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "sweeping expired holds failed"),
        }
    }
}

/// How often payments are reconciled: every 5 s, or more often when payments are
/// followed up sooner than that.
fn reconcile_interval(config: &Config) -> std::time::Duration {
    config
        .mpesa
        .reconcile_after
        .min(std::time::Duration::from_secs(5))
}

/// The keyring that seals tenants' credentials. The key id is derived from the key, so a
/// rotated `EDGE_CREDENTIALS_KEY` is recognised (values sealed under the old key then
/// need the old key as a retired one to be opened).
fn credentials_keyring(
    secrets: &Secrets,
) -> Result<edge_tenancy::Keyring, edge_tenancy::SealError> {
    use secrecy::ExposeSecret as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(secrets.credentials_key.expose_secret().as_bytes());
    let key = edge_tenancy::MasterKey::from_base64(&secrets.credentials_key)?;
    Ok(edge_tenancy::Keyring::new(
        edge_tenancy::KeyId::new(hex::encode(&digest[..4]))?,
        key,
    ))
}

/// How often subscriptions are moved along (active → grace → suspended).
const SUBSCRIPTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs [`crate::billing::subscriptions::advance`] every [`SUBSCRIPTION_INTERVAL`], across
/// tenants. Safe on several nodes: each transition is a conditional update that happens
/// once, wherever it runs.
async fn advance_subscriptions(db: sea_orm::DatabaseConnection, clock: edge_core::SharedClock) {
    let mut interval = tokio::time::interval(SUBSCRIPTION_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let advanced = crate::tenant_scope::cross_tenant(crate::billing::subscriptions::advance(
            &db,
            clock.now(),
        ))
        .await;
        match advanced {
            Ok(moved) if !moved.is_empty() => {
                tracing::info!(count = moved.len(), "subscriptions moved along");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "moving subscriptions along failed"),
        }
    }
}

/// The access-token codec. The key id is derived from the secret, so rotating
/// `EDGE_JWT_SECRET` changes it and old tokens are refused cleanly.
fn jwt_codec(secrets: &Secrets) -> Result<edge_tenancy::JwtCodec, edge_tenancy::JwtError> {
    use secrecy::ExposeSecret as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(secrets.jwt_secret.expose_secret().as_bytes());
    let kid = hex::encode(&digest[..4]);
    edge_tenancy::JwtCodec::new("edge", "edge-api", kid, secrets.jwt_secret.clone())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
