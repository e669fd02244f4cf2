//! Where a request came from: peer address, user agent and request id.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;

use super::middleware::RequestIdentity;
use crate::audit::ClientInfo;

/// Extracts a [`ClientInfo`] for the audit log and login rate limits. Never fails.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(512).collect());
        let request_id = parts
            .extensions
            .get::<RequestIdentity>()
            .map(|RequestIdentity(id)| id.clone());
        Ok(Client(ClientInfo {
            ip,
            user_agent,
            request_id,
        }))
    }
}
