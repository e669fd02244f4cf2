//! Start-up, restart and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use sea_orm::{ConnectionTrait as _, Statement};
use secrecy::ExposeSecret as _;

use crate::helpers::{Backend, Options, for_each_backend, spawn_with};

for_each_backend!(
    a_second_start_reuses_the_database_and_the_secrets,
    shutdown_finishes_requests_in_flight,
);

async fn a_second_start_reuses_the_database_and_the_secrets(backend: Backend) {
    let first = spawn_with(backend, "restart", Options::default())
        .await
        .unwrap();
    let jwt = first.state.secrets.jwt_secret.expose_secret().to_owned();
    assert_eq!(
        first.state.secrets.generated,
        vec!["EDGE_JWT_SECRET", "EDGE_CREDENTIALS_KEY"]
    );
    let now = chrono::Utc::now();
    first
        .db()
        .execute_raw(Statement::from_sql_and_values(
            first.db().get_database_backend(),
            "INSERT INTO organizations (id, slug, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
            [
                uuid::Uuid::now_v7().into(),
                "acme".into(),
                "Acme Ltd".into(),
                now.into(),
                now.into(),
            ],
        ))
        .await
        .unwrap();
    let (data_dir, postgres) = first.stop_keeping_data().await;

    let second = spawn_with(
        backend,
        "restart",
        Options {
            data_dir: Some(data_dir),
            postgres,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    assert!(
        second.state.secrets.generated.is_empty(),
        "secrets are reused"
    );
    assert_eq!(second.state.secrets.jwt_secret.expose_secret(), jwt);
    let row = second
        .db()
        .query_one_raw(Statement::from_string(
            second.db().get_database_backend(),
            "SELECT name FROM organizations WHERE slug = 'acme'",
        ))
        .await
        .unwrap()
        .expect("the organization written before the restart is still there");
    assert_eq!(row.try_get::<String>("", "name").unwrap(), "Acme Ltd");
    assert_eq!(second.get("/readyz").await.status(), 200);
}

async fn shutdown_finishes_requests_in_flight(backend: Backend) {
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let routes = {
        let started = started.clone();
        let release = release.clone();
        axum::Router::new().route(
            "/in-flight",
            get(move || {
                let started = started.clone();
                let release = release.clone();
                async move {
                    started.notify_one();
                    release.notified().await;
                    "finished"
                }
            }),
        )
    };
    let mut app = spawn_with(
        backend,
        "shutdown_finishes_requests_in_flight",
        Options {
            routes,
            ..Options::default()
        },
    )
    .await
    .unwrap();

    let url = app.url("/in-flight");
    let client = app.client.clone();
    let request = tokio::spawn(async move { client.get(url).send().await });
    started.notified().await;

    app.signal_shutdown();
    // The server has been told to stop; the request is still being handled.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!request.is_finished());
    release.notify_one();

    let response = request.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");
    app.wait_stopped().await.unwrap();

    // Stopped: new connections are refused.
    let after = reqwest::Client::new().get(app.url("/healthz")).send().await;
    assert!(after.is_err(), "the server still answered after shutdown");
}
