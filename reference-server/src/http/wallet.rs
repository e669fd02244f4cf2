//! `/wallet`, `/wallet/entries` and the operator's wallet adjustments. Every balance
//! change goes through the ledger.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edge_core::{Account, Balance, Entry, TransferRequest};
use edge_core::{Currency, Error, IdempotencyKey, Money, OrgId, Page};
use edge_tenancy::TenantContext;
use serde::Deserialize;
use serde_json::json;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query, page_request};
use crate::AppState;
use crate::audit::{self, Actor};
use crate::entities::{audit_log, organizations};
use crate::identity::operator::require_operator;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

/// The organization's wallet, opened in its currency on first use.
async fn wallet(state: &AppState, org: OrgId) -> Result<Balance, ApiError> {
    let row = organizations::Entity::find_by_id(org.as_uuid())
        .one(&state.db)
        .await?
        .ok_or(Error::not_found("organization"))?;
    let currency: Currency = row.currency.parse().map_err(Error::from)?;
    Ok(state.ledger.open_wallet(org, currency).await?)
}

/// `GET /wallet`: posted, held and available balances.
pub async fn balance(
    State(state): State<AppState>,
    ctx: TenantContext,
) -> Result<Json<Balance>, ApiError> {
    Ok(Json(wallet(&state, ctx.org()).await?))
}

/// `GET /wallet/entries` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntriesQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /wallet/entries`: the ledger entries of the organization's transfers, oldest
/// first, in keyset pages.
pub async fn entries(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(query): Query<EntriesQuery>,
) -> Result<Json<Page<Entry>>, ApiError> {
    wallet(&state, ctx.org()).await?;
    let page = page_request(query.limit, query.cursor)?;
    Ok(Json(state.ledger.entries(ctx.org(), page).await?))
}

/// Credit or debit.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Adds to the wallet.
    Credit,
    /// Takes from the wallet (refused if available would go below the credit limit).
    Debit,
}

/// An operator's adjustment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    /// A positive amount in the wallet's currency.
    amount: Money,
    /// Credit or debit.
    direction: Direction,
    /// Why (kept with the transfer and in the audit log).
    reason: String,
    /// Makes the request safe to repeat.
    idempotency_key: IdempotencyKey,
}

/// `POST /admin/organizations/{id}/wallet/adjustments`: 201 with the transfer and the
/// balance after it; a repeat with the same key answers 200 with the first result.
pub async fn adjust(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(org): Path<OrgId>,
    Json(input): Json<Adjustment>,
) -> Result<Response, ApiError> {
    require_operator(&ctx)?;
    let reason = input.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Error::invalid("reason", "must be 1 to 500 characters").into());
    }
    // The operator acts on another organization's wallet: in that organization's scope.
    let outcome = crate::tenant_scope::in_organization(org, async {
        wallet(&state, org).await?;
        let (from, to) = match input.direction {
            Direction::Credit => (Account::Adjustments, Account::Wallet(org)),
            Direction::Debit => (Account::Wallet(org), Account::Adjustments),
        };
        let operator = ctx.user().map(|u| u.to_string());
        let outcome = state
            .ledger
            .transfer(
                org,
                TransferRequest::new(from, to, input.amount, input.idempotency_key).metadata(
                    json!({ "reason": reason, "operator": operator, "kind": "adjustment" }),
                ),
            )
            .await?;
        // The ledger commits first; the audit entry is written by whichever call (first or
        // replay) finds it missing, so a crash in between never loses it.
        let audited = audit_log::Entity::find()
            .filter(audit_log::Column::OrganizationId.eq(org.as_uuid()))
            .filter(audit_log::Column::Action.eq("wallet.adjust"))
            .filter(audit_log::Column::TargetId.eq(outcome.value.id.to_string()))
            .one(&state.db)
            .await?
            .is_some();
        if !audited {
            audit::Entry::new(org, Actor::of(&ctx), "wallet.adjust")
                .target("transfer", outcome.value.id)
                .details(json!({
                    "direction": match input.direction {
                        Direction::Credit => "credit",
                        Direction::Debit => "debit",
                    },
                    "amount": outcome.value.amount,
                    "reason": reason,
                }))
                .record(&state.db, &client, state.clock.now())
                .await?;
        }
        if !outcome.replayed {
            for event in &outcome.events {
                tracing::info!(organization = %org, ?event, "ledger event");
            }
        }
        Ok::<_, ApiError>(outcome)
    })
    .await?;
    let status = if outcome.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({
            "transfer": outcome.value,
            "balance": outcome.balance,
            "events": outcome.events,
            "replayed": outcome.replayed,
        })),
    )
        .into_response())
}

/// `PATCH /wallet`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletPatch {
    /// Below this available balance, a low-balance event is emitted; `null` turns it off.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    low_balance_threshold: Option<Option<Money>>,
}

/// `PATCH /wallet`: sets the organization's low-balance threshold.
pub async fn update(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Json(patch): Json<WalletPatch>,
) -> Result<Json<Balance>, ApiError> {
    let Some(threshold) = patch.low_balance_threshold else {
        return Ok(Json(wallet(&state, ctx.org()).await?));
    };
    if threshold.is_some_and(|t| t.is_negative()) {
        return Err(Error::invalid("low_balance_threshold", "must not be negative").into());
    }
    wallet(&state, ctx.org()).await?;
    let balance = state
        .ledger
        .set_low_balance_threshold(ctx.org(), threshold)
        .await?;
    audit::Entry::new(ctx.org(), Actor::of(&ctx), "wallet.threshold_update")
        .details(json!({ "low_balance_threshold": threshold }))
        .record(&state.db, &client, state.clock.now())
        .await?;
    Ok(Json(balance))
}

/// `PATCH /admin/organizations/{id}/wallet`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditLimit {
    /// How far below zero the organization's available balance may go.
    credit_limit: Money,
}

/// `PATCH /admin/organizations/{id}/wallet`: an operator sets an organization's credit
/// limit (zero unless set).
pub async fn set_credit_limit(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(org): Path<OrgId>,
    Json(input): Json<CreditLimit>,
) -> Result<Json<Balance>, ApiError> {
    require_operator(&ctx)?;
    if input.credit_limit.is_negative() {
        return Err(Error::invalid("credit_limit", "must not be negative").into());
    }
    let balance = crate::tenant_scope::in_organization(org, async {
        wallet(&state, org).await?;
        let balance = state
            .ledger
            .set_credit_limit(org, input.credit_limit)
            .await?;
        audit::Entry::new(org, Actor::of(&ctx), "wallet.credit_limit_update")
            .details(json!({ "credit_limit": input.credit_limit }))
            .record(&state.db, &client, state.clock.now())
            .await?;
        Ok::<_, ApiError>(balance)
    })
    .await?;
    Ok(Json(balance))
}
