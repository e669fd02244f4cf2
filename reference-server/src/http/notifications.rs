//! `/notifications`: the caller's in-app notifications. The rules live in
//! [`crate::notifications`].

use axum::extract::State;
use edge_tenancy::TenantContext;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Json, Path, Query, page_request};
use crate::AppState;
use crate::notifications::{self, NotificationList, NotificationView};

/// The query of `GET /notifications`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only unread ones.
    #[serde(default)]
    unread: Option<bool>,
    /// Page size.
    #[serde(default)]
    limit: Option<u32>,
    /// A previous page's `next_cursor`.
    #[serde(default)]
    cursor: Option<String>,
}

/// The answer of `POST /notifications/read-all`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadAll {
    /// How many notifications were marked read.
    pub marked: u64,
}

/// `GET /notifications`: the caller's notifications, newest first, with the unread count.
pub async fn list(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(query): Query<ListQuery>,
) -> Result<Json<NotificationList>, ApiError> {
    let page = page_request(query.limit, query.cursor)?;
    Ok(Json(
        notifications::list(&state.db, &ctx, query.unread.unwrap_or(false), &page).await?,
    ))
}

/// `POST /notifications/{id}/read`: the notification, read.
pub async fn read(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<NotificationView>, ApiError> {
    Ok(Json(
        notifications::mark_read(&state.db, &ctx, id, state.clock.now()).await?,
    ))
}

/// `POST /notifications/read-all`: marks every unread notification of the caller read.
pub async fn read_all(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<Json<ReadAll>, ApiError> {
    let marked = notifications::mark_all_read(&state.db, &ctx, state.clock.now()).await?;
    Ok(Json(ReadAll { marked }))
}
