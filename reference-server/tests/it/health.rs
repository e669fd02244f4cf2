use serde_json::Value;

use crate::helpers::{Backend, Options, TestApp, for_each_backend, on_both_backends, spawn_with};

on_both_backends!(
    healthz_answers_ok_with_json,
    readyz_answers_ready_when_migrated,
    migrations_roll_back_and_reapply,
);
for_each_backend!(readyz_is_503_while_migrations_are_pending);

async fn healthz_answers_ok_with_json(app: TestApp) {
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

async fn readyz_answers_ready_when_migrated(app: TestApp) {
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["migrations"]["pending"], 0);
    assert!(body["migrations"]["applied"].as_u64().unwrap() >= 1);
    let backend = match app.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(body["database"]["backend"], backend);
}

async fn readyz_is_503_while_migrations_are_pending(backend: Backend) {
    let options = Options {
        vars: vec![("EDGE_MIGRATE_ON_START".into(), "false".into())],
        ..Options::default()
    };
    let Some(app) = spawn_with(
        backend,
        "readyz_is_503_while_migrations_are_pending",
        options,
    )
    .await
    else {
        return;
    };
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_ready");
    let pending = body["error"]["details"]["pending_migrations"]
        .as_array()
        .unwrap();
    assert!(
        pending
            .iter()
            .any(|m| m.as_str().unwrap().contains("organizations"))
    );

    // Alive all the same.
    assert_eq!(app.get("/healthz").await.status(), 200);

    // Once migrated (as `edge-server migrate` does), it is ready.
    edge_server::db::migrate(app.db()).await.unwrap();
    assert_eq!(app.get("/readyz").await.status(), 200);
}

async fn migrations_roll_back_and_reapply(app: TestApp) {
    use edge_server::migrations::Migrator;
    use sea_orm_migration::MigratorTrait as _;

    let before = edge_server::db::migration_state(app.db()).await.unwrap();
    assert!(before.pending.is_empty());
    Migrator::down(app.db(), None).await.unwrap();
    let down = edge_server::db::migration_state(app.db()).await.unwrap();
    assert!(down.applied.is_empty());
    assert_eq!(down.pending, before.applied);
    assert_eq!(app.get("/readyz").await.status(), 503);
    edge_server::db::migrate(app.db()).await.unwrap();
    assert_eq!(app.get("/readyz").await.status(), 200);
}
