//! Extractors that answer bad input with the JSON error envelope.
//!
//! Use these instead of axum's own `Json`, `Path` and `Query`: theirs answer plain text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON request or response body.
///
/// As an extractor it refuses, with the envelope: a body that is not JSON (400
/// `malformed_json`), JSON of the wrong shape (422 `invalid_body`), a missing
/// `Content-Type: application/json` (415) and a body over the size limit (413).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match <axum::Json<T> as FromRequest<S>>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// As `Option<Json<T>>`: `None` for a request without a body (no `Content-Type`), so a
/// route may take an optional JSON body; a body that is there is checked as above.
impl<T, S> OptionalFromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        match <axum::Json<T> as OptionalFromRequest<S>>::from_request(req, state).await {
            Ok(value) => Ok(value.map(|axum::Json(value)| Json(value))),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", text)
        }
        JsonRejection::JsonDataError(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", text)
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a body with Content-Type: application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE, None)
        }
        other => ApiError::new(other.status(), "bad_request", text),
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters. A value that does not parse (say, a malformed id) is a 404: to the
/// client, a record with an impossible id simply does not exist.
#[derive(Debug, Clone, Copy)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("not found ({})", e.body_text()),
            )),
            Err(other) => Err(ApiError::internal(&other)),
        }
    }
}

/// Query-string parameters; a bad one is a 400 `invalid_query` naming the problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection @ QueryRejection::FailedToDeserializeQueryString(_)) => Err(
                ApiError::bad_request("invalid_query", rejection.body_text()),
            ),
            Err(other) => Err(ApiError::bad_request("invalid_query", other.body_text())),
        }
    }
}

/// `?limit=…&cursor=…` of a keyset-paginated list, read into a [`PageRequest`](edge_core::PageRequest); a cursor
/// that is not one this server issued is a 422 naming `cursor`.
pub fn page_request(
    limit: Option<u32>,
    cursor: Option<String>,
) -> Result<edge_core::PageRequest, ApiError> {
    let cursor = cursor
        .map(edge_core::Cursor::from_client)
        .transpose()
        .map_err(edge_core::Error::from)?;
    Ok(edge_core::PageRequest { limit, cursor })
}

/// The `Idempotency-Key` header, if any; a key that is not printable ASCII of the allowed
/// length is a 422 naming the header.
pub fn idempotency_key(
    headers: &axum::http::HeaderMap,
) -> Result<Option<edge_core::IdempotencyKey>, edge_core::Error> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| edge_core::Error::invalid("Idempotency-Key", "must be printable ASCII"))?;
    edge_core::IdempotencyKey::new(text)
        .map(Some)
        .map_err(|e| edge_core::Error::invalid("Idempotency-Key", e.to_string()))
}
