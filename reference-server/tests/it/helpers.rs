//! `spawn_app()`: the real server on port 0 with a fresh database.

use std::io::Write as _;
use std::net::SocketAddr;

use edge_server::{AppState, Application, Config};
use sea_orm::{ConnectionTrait as _, Database};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    pub state: AppState,
    /// On PostgreSQL, a connection as the owner of the tables (the server itself runs as
    /// a runtime role that row-level security applies to); on SQLite, the server's own.
    owner: sea_orm::DatabaseConnection,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    // Dropped last: drops the PostgreSQL database after the server is gone.
    _database: Option<PgDatabase>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// A connection for tests to read and change rows directly, past row-level security.
    pub fn db(&self) -> &sea_orm::DatabaseConnection {
        &self.owner
    }

    /// The PostgreSQL database URL of this test (as the owner), if it runs on PostgreSQL.
    pub fn postgres_url(&self) -> Option<&str> {
        self._database.as_ref().map(|db| db.url.as_str())
    }

    /// The database URL the server itself connects with (the runtime role on PostgreSQL),
    /// for a second server node on the same database.
    pub fn server_database_url(&self) -> String {
        match &self._database {
            Some(db) => db.runtime_url.clone(),
            None => sqlite_url(self.data_dir.path()),
        }
    }

    /// Sends the shutdown signal without waiting.
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            tx.send(()).ok();
        }
    }

    /// Stops the server and hands back its data directory and database, so a second
    /// server can start on them.
    pub async fn stop_keeping_data(mut self) -> (tempfile::TempDir, Option<PgDatabase>) {
        self.signal_shutdown();
        self.wait_stopped().await.unwrap();
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        (data_dir, self._database.take())
    }

    /// Waits for the server task after [`TestApp::signal_shutdown`].
    pub async fn wait_stopped(&mut self) -> std::io::Result<()> {
        match self.server.take() {
            Some(handle) => handle.await.unwrap(),
            None => Ok(()),
        }
    }
}

/// Options for [`spawn_with`].
pub struct Options {
    pub vars: Vec<(String, String)>,
    pub routes: axum::Router<AppState>,
    /// Reuse this data directory (and so its SQLite database and secrets).
    pub data_dir: Option<tempfile::TempDir>,
    /// Reuse this PostgreSQL database instead of creating one.
    pub postgres: Option<PgDatabase>,
    /// The server's clock (default: the system clock).
    pub clock: Option<edge_core::SharedClock>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            vars: Vec::new(),
            routes: axum::Router::new(),
            data_dir: None,
            postgres: None,
            clock: None,
        }
    }
}

/// Starts the server on `backend` with default options. Returns `None` (after saying so
/// on stderr) for PostgreSQL when `EDGE_TEST_DATABASE_URL` is not set.
pub async fn spawn_app(backend: Backend, test: &str) -> Option<TestApp> {
    spawn_with(backend, test, Options::default()).await
}

/// The configuration a test server gets: port 0 and the data directory of the test.
pub fn test_config(
    data_dir: &std::path::Path,
    database_url: &str,
    extra: &[(String, String)],
) -> Config {
    let mut vars = vec![
        ("EDGE_BIND".to_owned(), "127.0.0.1:0".to_owned()),
        ("EDGE_DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("EDGE_DATABASE_URL".to_owned(), database_url.to_owned()),
        ("EDGE_DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
        // No test reaches the real Daraja: unless a test points it at a fake, every
        // M-Pesa call is refused at once (nothing listens on the discard port).
        (
            "EDGE_MPESA_BASE_URL".to_owned(),
            "http://127.0.0.1:9".to_owned(),
        ),
        // Nor the real Graph; and webhooks are signed with a known test secret.
        (
            "EDGE_WHATSAPP_BASE_URL".to_owned(),
            "http://127.0.0.1:9".to_owned(),
        ),
        (
            "EDGE_WHATSAPP_APP_SECRET".to_owned(),
            "test-whatsapp-app-secret".to_owned(),
        ),
        (
            "EDGE_WHATSAPP_VERIFY_TOKEN".to_owned(),
            "test-whatsapp-verify-token".to_owned(),
        ),
    ];
    vars.extend(extra.iter().cloned());
    Config::from_vars(vars).unwrap()
}

pub async fn spawn_with(backend: Backend, test: &str, options: Options) -> Option<TestApp> {
    edge_server::install_crypto_provider();
    let data_dir = match options.data_dir {
        Some(dir) => dir,
        None => tempfile::tempdir().unwrap(),
    };
    let migrate = !options
        .vars
        .iter()
        .any(|(k, v)| k == "EDGE_MIGRATE_ON_START" && v == "false");
    let mut vars = options.vars.clone();
    let (database_url, database, owner) = match backend {
        Backend::Sqlite => (sqlite_url(data_dir.path()), None, None),
        Backend::Postgres => {
            let db = match options.postgres {
                Some(db) => db,
                None => {
                    let Some(admin_url) = postgres_admin_url() else {
                        skip(
                            &format!("{test} [postgres]"),
                            "EDGE_TEST_DATABASE_URL is not set",
                        );
                        return None;
                    };
                    PgDatabase::create(&admin_url).await
                }
            };
            // Migrations run as the owner; the server runs as the runtime role.
            let owner = Database::connect(db.url.as_str()).await.unwrap();
            if migrate {
                edge_server::db::migrate(&owner).await.unwrap();
            }
            vars.push(("EDGE_MIGRATE_ON_START".into(), "false".into()));
            (db.runtime_url.clone(), Some(db), Some(owner))
        }
    };
    let config = test_config(data_dir.path(), &database_url, &vars);
    let clock = options
        .clock
        .unwrap_or_else(|| std::sync::Arc::new(edge_core::SystemClock));
    let app = Application::build_with_clock(config, clock)
        .await
        .unwrap()
        .with_routes(options.routes);
    let address = app.address();
    let state = app.state().clone();
    let owner = owner.unwrap_or_else(|| state.db.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        rx.await.ok();
    }));
    Some(TestApp {
        address,
        client: reqwest::Client::new(),
        backend,
        data_dir,
        state,
        owner,
        shutdown: Some(tx),
        server: Some(server),
        _database: database,
    })
}

pub fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("edge.db").display())
}

pub fn postgres_admin_url() -> Option<String> {
    std::env::var("EDGE_TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Says on the real stderr (not the captured one) that a test or variant was skipped.
pub fn skip(test: &str, why: &str) {
    let mut err = std::io::stderr();
    writeln!(err, "SKIPPED {test}: {why}").ok();
}

/// A PostgreSQL database created for one test and dropped after it, with a runtime role
/// (neither superuser nor owner, so row-level security applies to it) that may read and
/// write every table the owner creates in it.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    role: String,
    /// The database as the owner (the admin user).
    pub url: String,
    /// The database as the runtime role.
    pub runtime_url: String,
}

impl PgDatabase {
    pub async fn create(admin_url: &str) -> Self {
        let name = format!("edge_test_{}", uuid::Uuid::now_v7().simple());
        let admin = Database::connect(admin_url).await.unwrap();
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        let role = format!("{name}_runtime");
        admin
            .execute_unprepared(&format!("CREATE ROLE \"{role}\" LOGIN"))
            .await
            .unwrap();
        admin.close().await.ok();
        let mut url = url::Url::parse(admin_url).unwrap();
        url.set_path(&format!("/{name}"));
        let owner = Database::connect(url.as_str()).await.unwrap();
        owner
            .execute_unprepared(&format!(
                "GRANT USAGE ON SCHEMA public TO \"{role}\"; \
                 ALTER DEFAULT PRIVILEGES IN SCHEMA public \
                 GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO \"{role}\";"
            ))
            .await
            .unwrap();
        owner.close().await.ok();
        let mut runtime = url.clone();
        runtime.set_username(&role).unwrap();
        runtime.set_password(None).unwrap();
        Self {
            admin_url: admin_url.to_owned(),
            name,
            role,
            url: url.to_string(),
            runtime_url: runtime.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let role = self.role.clone();
        // Drop runs inside the test's runtime; use a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let admin = Database::connect(admin_url.as_str()).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await?;
                admin
                    .execute_unprepared(&format!("DROP ROLE IF EXISTS \"{role}\""))
                    .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let mut err = std::io::stderr();
            writeln!(err, "warning: could not drop test database {}", self.name).ok();
        }
    }
}

/// Runs an async test body against SQLite and, when configured, PostgreSQL:
/// `on_both_backends!(name)` expects `async fn name(app: TestApp)` in scope.
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = crate::helpers::spawn_app(
                        crate::helpers::Backend::Sqlite,
                        module_path!(),
                    )
                    .await
                    .unwrap();
                    super::$test(app).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = crate::helpers::spawn_app(
                        crate::helpers::Backend::Postgres,
                        module_path!(),
                    )
                    .await
                    {
                        super::$test(app).await;
                    }
                }
            }
        )+
    };
}
pub(crate) use on_both_backends;

/// Like [`on_both_backends`] for tests that start their own server:
/// `for_each_backend!(name)` expects `async fn name(backend: Backend)` in scope. For
/// PostgreSQL the test is skipped (and says so) when `EDGE_TEST_DATABASE_URL` is not set.
macro_rules! for_each_backend {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$test(crate::helpers::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if crate::helpers::postgres_admin_url().is_some() {
                        super::$test(crate::helpers::Backend::Postgres).await;
                    } else {
                        crate::helpers::skip(
                            concat!(module_path!(), " [postgres]"),
                            "EDGE_TEST_DATABASE_URL is not set",
                        );
                    }
                }
            }
        )+
    };
}
pub(crate) use for_each_backend;
