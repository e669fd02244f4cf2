//! What the benches share: a PostgreSQL database of their own, migrated by its owner and
//! used by a runtime role that row-level security applies to, and percentiles.

// Each bench is its own crate and uses only part of this module.
#![allow(dead_code)]

use std::time::Duration;

use sea_orm::{ConnectionTrait as _, Database, DatabaseConnection};

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
