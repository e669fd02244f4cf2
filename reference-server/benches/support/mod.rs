//! What the benches share: where their database is (SQLite in a temporary directory, or a
//! PostgreSQL database of their own, migrated by its owner and used by a runtime role that
//! row-level security applies to), checks that print as they go, and percentiles.

// Each bench is its own crate and uses only part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use edge_server::{Application, Config};

use sea_orm::{ConnectionTrait as _, Database, DatabaseConnection};

/// The PostgreSQL server to bench on: `EDGE_BENCH_DATABASE_URL`, else
/// `EDGE_TEST_DATABASE_URL`; `None` when neither is set.
pub fn admin_url() -> Option<String> {
    ["EDGE_BENCH_DATABASE_URL", "EDGE_TEST_DATABASE_URL"]
        .into_iter()
        .find_map(|var| std::env::var(var).ok().filter(|url| !url.is_empty()))
}

/// Where a bench's server keeps its data.
pub struct Target {
    /// `SQLite` or `PostgreSQL`, for the report.
    pub backend: &'static str,
    /// The server's database URL (the runtime role's on PostgreSQL).
    pub server_url: String,
    /// The URL to seed and check with (the owner's on PostgreSQL).
    pub owner_url: String,
    /// Whether the server must apply the migrations itself (SQLite); on PostgreSQL the
    /// owner already did.
    pub migrate_on_start: bool,
}

/// PostgreSQL when [`admin_url`] is set (a fresh `db_name` with `role`, see
/// [`fresh_postgres`]), otherwise an SQLite file in `dir`.
pub async fn target(dir: &Path, db_name: &str, role: &str) -> Target {
    match admin_url() {
        Some(admin_url) => {
            let db = fresh_postgres(&admin_url, db_name, role).await;
            Target {
                backend: "PostgreSQL",
                server_url: db.runtime_url,
                owner_url: db.owner_url,
                migrate_on_start: false,
            }
        }
        None => {
            let url = format!("sqlite://{}/edge.db?mode=rwc", dir.to_str().unwrap());
            Target {
                backend: "SQLite",
                server_url: url.clone(),
                owner_url: url,
                migrate_on_start: true,
            }
        }
    }
}

impl Target {
    /// The server's configuration for this target: its database and migrations, a free
    /// loopback port, `dir` for its data and an unreachable Daraja, then `extra`.
    pub fn config(&self, dir: &Path, extra: &[(&str, &str)]) -> Config {
        let migrate = if self.migrate_on_start {
            "true"
        } else {
            "false"
        };
        let mut vars = vec![
            ("EDGE_DATABASE_URL", self.server_url.as_str()),
            ("EDGE_MIGRATE_ON_START", migrate),
            ("EDGE_BIND", "127.0.0.1:0"),
            ("EDGE_DATA_DIR", dir.to_str().unwrap()),
            ("EDGE_MPESA_BASE_URL", "http://127.0.0.1:9"),
        ];
        vars.extend_from_slice(extra);
        Config::from_vars(vars).unwrap()
    }
}

/// The real server, running in this process until [`Server::stop`].
pub struct Server {
    /// Where it listens.
    pub address: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Builds the server from `config` and runs it (with its background jobs).
pub async fn serve(config: Config) -> Server {
    let app = Application::build(config).await.unwrap();
    let address = app.address();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        stopped.await.ok();
    }));
    Server {
        address,
        stop,
        task,
    }
}

impl Server {
    /// Shuts it down and waits until it has stopped.
    pub async fn stop(self) {
        self.stop.send(()).ok();
        self.task.await.unwrap().unwrap();
    }
}

/// Checks that print `ok` or `FAILED` as they are made, and count the failures.
#[derive(Default)]
pub struct Checks {
    pub failed: usize,
}

impl Checks {
    pub fn check(&mut self, ok: bool, what: &str) {
        if ok {
            println!("  ok      {what}");
        } else {
            self.failed += 1;
            println!("  FAILED  {what}");
        }
    }
}

/// A bench's database: the owner's URL (migrations, direct seeding, checks) and the
/// runtime role's URL (the server).
pub struct BenchDatabase {
    pub owner_url: String,
    pub runtime_url: String,
}

/// Drops `db_name` and `role` if they exist, creates them again, grants the role what the
/// server's runtime role gets in production, and applies the migrations as the owner.
pub async fn fresh_postgres(admin_url: &str, db_name: &str, role: &str) -> BenchDatabase {
    let owner_url = url_with_db(admin_url, db_name, None);
    let runtime_url = url_with_db(admin_url, db_name, Some(role));
    let admin = Database::connect(admin_url).await.unwrap();
    exec(
        &admin,
        &format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"),
    )
    .await;
    exec(&admin, &format!("DROP ROLE IF EXISTS {role}")).await;
    exec(&admin, &format!("CREATE DATABASE {db_name}")).await;
    exec(&admin, &format!("CREATE ROLE {role} LOGIN")).await;
    admin.close().await.unwrap();
    let owner = Database::connect(owner_url.as_str()).await.unwrap();
    exec(
        &owner,
        &format!(
            "GRANT USAGE ON SCHEMA public TO {role};
             ALTER DEFAULT PRIVILEGES IN SCHEMA public
               GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};"
        ),
    )
    .await;
    edge_server::db::migrate(&owner).await.unwrap();
    owner.close().await.unwrap();
    BenchDatabase {
        owner_url,
        runtime_url,
    }
}

/// `admin_url` pointed at database `db`, as `user` (without a password) when given.
pub fn url_with_db(admin_url: &str, db: &str, user: Option<&str>) -> String {
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(&format!("/{db}"));
    if let Some(user) = user {
        url.set_username(user).unwrap();
        url.set_password(None).unwrap();
    }
    url.to_string()
}

/// Runs SQL that returns nothing, panicking on failure.
pub async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql).await.unwrap();
}

/// The `p` quantile (0.0 to 1.0, nearest rank) of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1_000.0
}
