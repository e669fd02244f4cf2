//! `/imports`: CSV imports of prospects and relationships (see `crate::imports`).
//!
//! The file is uploaded as the raw request body, `Content-Type: text/csv`, with the kind
//! in the query: `POST /imports?kind=prospects`. It may be up to
//! [`crate::imports::MAX_FILE_BYTES`], above the server's general body limit.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edge_core::Page;
use edge_tenancy::TenantContext;
use serde::Deserialize;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query, page_request};
use crate::AppState;
use crate::imports::{self, DryRun, ImportView, MappingInput, Uploaded};
use crate::tenant_scope;

/// `?kind=` of an upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// `prospects` or `relationships`.
    pub kind: Option<String>,
}

/// `POST /imports?kind=prospects|relationships`, body `text/csv`: 201 with the import,
/// its columns and a suggested mapping.
pub async fn upload(
    State(state): State<AppState>,
    ctx: TenantContext,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence != "text/csv" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as the request body with Content-Type: text/csv",
        ));
    }
    let kind = query.kind.ok_or_else(|| {
        edge_core::Error::invalid(
            "kind",
            "is required: ?kind=prospects or ?kind=relationships",
        )
    })?;
    let bytes: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|err| {
            let too_large = std::error::Error::source(&err)
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE, None)
            } else {
                ApiError::from_status(StatusCode::BAD_REQUEST, None)
            }
        })?;
    let uploaded = imports::upload(&state.db, &ctx, state.clock.now(), &kind, &bytes).await?;
    Ok((StatusCode::CREATED, Json(uploaded)))
}

/// `?limit=&cursor=` of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size.
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// `GET /imports`: newest first, keyset pages.
pub async fn list(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<ImportView>>, ApiError> {
    let page = page_request(query.limit, query.cursor)?;
    Ok(Json(imports::list(&state.db, &ctx, page).await?))
}

/// `GET /imports/{id}`: status and progress.
pub async fn get(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<ImportView>, ApiError> {
    Ok(Json(imports::get(&state.db, &ctx, id).await?))
}

/// `PUT /imports/{id}/mapping`.
pub async fn set_mapping(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
    Json(input): Json<MappingInput>,
) -> Result<Json<ImportView>, ApiError> {
    let view = imports::set_mapping(&state.db, &ctx, state.clock.now(), id, input).await?;
    Ok(Json(view))
}

/// `POST /imports/{id}/dry-run`: every row checked, nothing written.
pub async fn dry_run(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<DryRun>, ApiError> {
    Ok(Json(
        imports::dry_run(&state.db, &ctx, state.clock.now(), id).await?,
    ))
}

/// `POST /imports/{id}/start`: 202 with the queued import.
pub async fn start(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
) -> Result<(StatusCode, Json<ImportView>), ApiError> {
    let view = imports::start(&state.db, &ctx, &client, state.clock.now(), id).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// `GET /imports/{id}/errors.csv`: one line per problem (row, column, code, message,
/// then the row's original values), streamed page by page.
pub async fn errors_csv(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<uuid::Uuid>,
) -> Result<Response, ApiError> {
    let columns = imports::error_report(&state.db, &ctx, id).await?;
    let mut header = String::new();
    imports::csv::write_record(
        &mut header,
        ["row", "column", "code", "message"]
            .into_iter()
            .chain(columns.iter().map(String::as_str)),
    );
    let org = ctx.org();
    let db = state.db.clone();
    // The body is read after the handler returns, outside the request's tenant scope:
    // each page is read in the organization's scope explicitly.
    let pages = futures::stream::unfold(Some(None), move |cursor| {
        let db = db.clone();
        async move {
            let after = cursor?;
            let page =
                tenant_scope::in_organization(org, imports::error_page(&db, org, id, after)).await;
            match page {
                Ok((text, next)) => {
                    Some((Ok::<_, edge_core::Error>(Bytes::from(text)), next.map(Some)))
                }
                Err(err) => {
                    tracing::error!(error = %err, import = %id, "errors.csv stopped");
                    Some((Err(err), None))
                }
            }
        }
    });
    let body = futures::StreamExt::chain(
        futures::stream::once(async move { Ok(Bytes::from(header)) }),
        pages,
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"import-{id}-errors.csv\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
