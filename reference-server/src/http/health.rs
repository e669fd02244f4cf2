//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::Json;
use crate::AppState;
use crate::db;

/// `GET /healthz`: the process is alive and serving HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// `GET /readyz`: the database answers and every migration is applied. Load balancers
/// should send traffic only to ready nodes; a 503 names what is not ready.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if let Err(err) = db::ping(&state.db).await {
        tracing::warn!(error = %err, "readiness: database unreachable");
        return Err(not_ready(json!({ "database": "unreachable" })));
    }
    let migrations = db::migration_state(&state.db).await.map_err(|err| {
        tracing::warn!(error = %err, "readiness: cannot read migration state");
        not_ready(json!({ "database": "ok", "migrations": "unreadable" }))
    })?;
    if !migrations.pending.is_empty() {
        return Err(not_ready(json!({
            "database": "ok",
            "pending_migrations": migrations.pending,
            "hint": "run `edge-server migrate`",
        })));
    }
    Ok(Json(json!({
        "status": "ready",
        "database": { "status": "ok", "backend": state.backend_name() },
        "migrations": { "applied": migrations.applied.len(), "pending": 0 },
    })))
}

fn not_ready(details: Value) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "the server is not ready",
    )
    .with_details(details)
}
