//! The organization's own M-Pesa account: `GET`/`PUT /mpesa/settings`,
//! `POST /mpesa/settings/test`, `POST /mpesa/callback-token/rotate` and
//! `POST /mpesa/c2b/register`; and the operators' `POST /admin/mpesa/c2b/register` (the
//! platform's paybill) and `GET /admin/mpesa/callbacks` (the inbox of every callback).
//!
//! Secrets go in and never come out: the answer shows the last characters of the consumer
//! key and whether each secret is set, with the callback URLs to register with Daraja.

use axum::extract::State;
use edge_core::{Error, Page};
use edge_tenancy::TenantContext;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Query, page_request};
use crate::AppState;
use crate::audit::{Actor, Entry};
use crate::payments::accounts::{SettingsInput, SettingsView};
use crate::payments::c2b::{C2bRegistered, RegisterInput};
use crate::payments::inbox::{CallbackFilter, CallbackKind, Processed, StoredCallback};
use crate::payments::tokens::CallbackUrls;

/// The settings and the callback URLs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MpesaSettings {
    /// The account, or `null` when none is set.
    settings: Option<SettingsView>,
    /// Where Daraja must send this organization's callbacks.
    callback_urls: CallbackUrls,
}

/// `GET /mpesa/settings`.
pub async fn get(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<Json<MpesaSettings>, ApiError> {
    Ok(Json(MpesaSettings {
        settings: state.payments.settings(ctx.org()).await?,
        callback_urls: state.payments.callback_urls(ctx.org()).await?,
    }))
}

/// `PUT /mpesa/settings`: sets the account (secrets left out keep their stored values).
pub async fn put(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(input): Json<SettingsInput>,
) -> Result<Json<MpesaSettings>, ApiError> {
    let view = state
        .payments
        .save_settings(ctx.org(), ctx.user().map(|u| u.as_uuid()), input)
        .await?;
    Entry::new(ctx.org(), Actor::of(&ctx), "mpesa.settings.update")
        .details(json!({
            "environment": view.environment,
            "shortcode": view.shortcode,
            "account_type": view.account_type,
        }))
        .record(&state.db, &client, state.clock.now())
        .await?;
    Ok(Json(MpesaSettings {
        settings: Some(view),
        callback_urls: state.payments.callback_urls(ctx.org()).await?,
    }))
}

/// `POST /mpesa/settings/test`: fetches a Daraja token with the stored credentials.
pub async fn test(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(state.payments.test_connection(ctx.org()).await?))
}

/// `POST /mpesa/callback-token/rotate`: new callback URLs. The old ones keep working for
/// 24 hours; C2B URLs must be registered again.
pub async fn rotate_token(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
) -> Result<Json<CallbackUrls>, ApiError> {
    let urls = state.payments.rotate_callback_token(ctx.org()).await?;
    Entry::new(ctx.org(), Actor::of(&ctx), "mpesa.callback_token.rotate")
        .record(&state.db, &client, state.clock.now())
        .await?;
    Ok(Json(urls))
}

/// `POST /mpesa/c2b/register`: registers the organization's C2B validation and
/// confirmation URLs for its shortcode with Daraja (`{"response_type": "Completed" |
/// "Cancelled", "version": "v2" | "v1"}`, both optional). Daraja's refusals that need a
/// fix (URLs already registered, the app lacks the API version, bad credentials) are 409;
/// an unreachable Daraja is 502/504.
pub async fn register_c2b(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    input: Option<Json<RegisterInput>>,
) -> Result<Json<C2bRegistered>, ApiError> {
    let input = input.map(|Json(i)| i).unwrap_or_default();
    let registered = state
        .payments
        .register_c2b(ctx.org(), ctx.user().map(|u| u.as_uuid()), &input)
        .await?;
    Entry::new(ctx.org(), Actor::of(&ctx), "mpesa.c2b.register")
        .details(json!({
            "shortcode": registered.shortcode,
            "response_type": registered.response_type,
            "version": registered.version,
        }))
        .record(&state.db, &client, state.clock.now())
        .await?;
    Ok(Json(registered))
}

/// `POST /admin/mpesa/c2b/register`: an operator registers the platform's C2B URLs for
/// the platform's shortcode (tenants then top up by paying the paybill with their slug as
/// the account number).
pub async fn admin_register_c2b(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    input: Option<Json<RegisterInput>>,
) -> Result<Json<C2bRegistered>, ApiError> {
    crate::identity::operator::require_operator(&ctx)?;
    let input = input.map(|Json(i)| i).unwrap_or_default();
    let registered = state.payments.register_platform_c2b(&input).await?;
    Entry::new(ctx.org(), Actor::of(&ctx), "mpesa.platform_c2b.register")
        .details(json!({
            "shortcode": registered.shortcode,
            "response_type": registered.response_type,
            "version": registered.version,
        }))
        .record(&state.db, &client, state.clock.now())
        .await?;
    Ok(Json(registered))
}

/// `GET /admin/mpesa/callbacks` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbacksQuery {
    outcome: Option<String>,
    kind: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /admin/mpesa/callbacks`: every stored callback, newest first, for operators;
/// `?outcome=unmatched` lists, among others, platform paybill payments whose account
/// number names no organization. Also `?kind=`, `limit`, `cursor`.
pub async fn admin_callbacks(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(query): Query<CallbacksQuery>,
) -> Result<Json<Page<StoredCallback>>, ApiError> {
    crate::identity::operator::require_operator(&ctx)?;
    let outcome = query
        .outcome
        .as_deref()
        .map(|o| {
            Processed::parse(o).ok_or_else(|| {
                let names: Vec<&str> = Processed::ALL.iter().map(|p| p.as_str()).collect();
                Error::invalid("outcome", format!("must be one of {}", names.join(", ")))
            })
        })
        .transpose()?;
    let kind = query
        .kind
        .as_deref()
        .map(|k| {
            CallbackKind::parse(k).ok_or_else(|| Error::invalid("kind", "is not a callback kind"))
        })
        .transpose()?;
    let page = page_request(query.limit, query.cursor)?;
    let callbacks = crate::tenant_scope::cross_tenant(
        state
            .payments
            .stored_callbacks(CallbackFilter { outcome, kind }, &page),
    )
    .await?;
    Ok(Json(callbacks))
}
