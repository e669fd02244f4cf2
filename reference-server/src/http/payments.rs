//! Payments over M-Pesa: `POST /wallet/top-ups`, `POST /billing/subscription`,
//! `POST /mpesa/collections`, `GET /payments`, `GET /payments/{id}`, and
//! `POST /payments/{id}/status-query` and `…/reversal` (and the operators' versions under
//! `/admin/organizations/{id}/payments/{payment_id}/…`).
//!
//! Starting a payment answers 201 with the payment (`pending`: the payer has a PIN
//! prompt); poll `GET /payments/{id}` or listen for `payment.status_changed`. An
//! `Idempotency-Key` header makes a retry return the first payment (200) instead of
//! prompting the payer twice. When Daraja refuses the push the answer is 502 with the
//! (failed) payment in `details`; when it does not answer, 504 with the payment, which
//! stays pending until reconciliation learns the outcome.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use edge_core::{Country, Currency, Error, Money, Msisdn, OrgId, Page};
use edge_tenancy::TenantContext;
use sea_orm::EntityTrait as _;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::client::Client;
use super::error::ApiError;
use super::extract::{Json, Path, Query, idempotency_key, page_request};
use crate::AppState;
use crate::audit::{Actor, Entry};
use crate::entities::{organizations, relationships};
use crate::payments::requests::{NewRequest, RequestKind, Sent};
use crate::payments::stk::{NewPayment, Started};
use crate::payments::{Payment, PaymentDetail, PaymentFilter, Purpose};

/// The organization's currency and country.
pub(crate) async fn organization(
    state: &AppState,
    org: OrgId,
) -> Result<organizations::Model, Error> {
    organizations::Entity::find_by_id(org.as_uuid())
        .one(&state.db)
        .await
        .map_err(Error::internal)?
        .ok_or(Error::not_found("organization"))
}

fn country(org: &organizations::Model) -> Country {
    serde_json::from_value(Value::String(org.country.clone())).unwrap_or(Country::Kenya)
}

/// An amount in KES: `"100"`, `"100.00"` or `100`.
fn kes(field: &str, value: &Value) -> Result<Money, Error> {
    let text = match value {
        Value::String(text) => text.trim().to_owned(),
        Value::Number(number) => number.to_string(),
        _ => return Err(Error::invalid(field, "must be an amount such as \"100\"")),
    };
    let amount =
        Money::parse(&text, Currency::Kes).map_err(|e| Error::invalid(field, e.to_string()))?;
    crate::payments::stk::check_amount(field, amount)?;
    Ok(amount)
}

fn phone(field: &str, value: &str, country: Country) -> Result<Msisdn, Error> {
    Msisdn::parse(value, country).map_err(|e| Error::invalid(field, e.to_string()))
}

/// The answer to a started payment: 201, 200 for a replay, or the upstream error with
/// the payment in its details.
fn started(started: Started) -> Result<Response, ApiError> {
    if let Some(error) = started.upstream_error {
        return Err(ApiError::from(error).with_details(json!({ "payment": started.payment })));
    }
    let status = if started.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(started.payment)).into_response())
}

/// `POST /wallet/top-ups` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUp {
    /// Whole KES, e.g. `"100"`.
    amount: Value,
    /// The number that pays (national or international form).
    phone: String,
}

/// `POST /wallet/top-ups`: asks `phone` to pay `amount` into the organization's wallet.
pub async fn top_up(
    State(state): State<AppState>,
    ctx: TenantContext,
    headers: HeaderMap,
    Json(input): Json<TopUp>,
) -> Result<Response, ApiError> {
    let org = organization(&state, ctx.org()).await?;
    let mut problems = Vec::new();
    let amount = kes("amount", &input.amount)
        .map_err(|e| problems.push(e))
        .ok();
    let payer = phone("phone", &input.phone, country(&org))
        .map_err(|e| problems.push(e))
        .ok();
    if org.currency != Currency::Kes.code() {
        problems.push(Error::invalid(
            "amount",
            format!(
                "M-Pesa top-ups are in KES and this organization's wallet is in {}",
                org.currency
            ),
        ));
    }
    let (Some(amount), Some(payer), true) = (amount, payer, problems.is_empty()) else {
        return Err(merge(problems).into());
    };
    let reference: String = org.slug.chars().take(12).collect();
    let result = state
        .payments
        .start(
            ctx.org(),
            NewPayment {
                purpose: Purpose::WalletTopUp,
                amount,
                phone: payer,
                plan_code: None,
                relationship_id: None,
                account_reference: reference.to_uppercase(),
                description: "Wallet top-up".into(),
                idempotency_key: idempotency_key(&headers)?.map(|k| k.as_str().to_owned()),
                created_by: ctx.user().map(|u| u.as_uuid()),
            },
        )
        .await?;
    started(result)
}

/// `POST /billing/subscription` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    /// The plan to pay a period of (default: the organization's current plan).
    #[serde(default)]
    plan: Option<String>,
    /// The number that pays.
    phone: String,
}

/// `POST /billing/subscription`: asks `phone` to pay one period of `plan` by STK push;
/// when it succeeds the subscription is extended (and a lapsed one restored).
pub async fn subscribe(
    State(state): State<AppState>,
    ctx: TenantContext,
    headers: HeaderMap,
    Json(input): Json<Subscribe>,
) -> Result<Response, ApiError> {
    let org = organization(&state, ctx.org()).await?;
    let code = match input.plan.as_deref().map(str::trim) {
        Some(code) => code.to_owned(),
        None => {
            crate::billing::subscriptions::get(&state.db, ctx.org())
                .await?
                .plan
                .code
        }
    };
    let mut problems = Vec::new();
    let plan = crate::billing::subscriptions::payable_plan(&state.db, ctx.org(), &code, "plan")
        .await
        .map_err(|e| problems.push(e))
        .ok();
    let payer = phone("phone", &input.phone, country(&org))
        .map_err(|e| problems.push(e))
        .ok();
    let (Some(plan), Some(payer), true) = (plan, payer, problems.is_empty()) else {
        return Err(merge(problems).into());
    };
    crate::payments::stk::check_amount("plan", plan.price)?;
    let reference: String = org.slug.chars().take(12).collect();
    let result = state
        .payments
        .start(
            ctx.org(),
            NewPayment {
                purpose: Purpose::Subscription,
                amount: plan.price,
                phone: payer,
                plan_code: Some(plan.code.clone()),
                relationship_id: None,
                account_reference: reference.to_uppercase(),
                description: "Subscription".into(),
                idempotency_key: idempotency_key(&headers)?.map(|k| k.as_str().to_owned()),
                created_by: ctx.user().map(|u| u.as_uuid()),
            },
        )
        .await?;
    started(result)
}

/// `POST /mpesa/collections` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    /// Whole KES.
    amount: Value,
    /// Who pays; defaults to the relationship's phone.
    #[serde(default)]
    phone: Option<String>,
    /// The CRM relationship collected from.
    #[serde(default)]
    relationship_id: Option<Uuid>,
    /// Shown to the payer, at most 12 characters (default `PAYMENT`).
    #[serde(default)]
    account_reference: Option<String>,
    /// At most 13 characters (default `Payment`).
    #[serde(default)]
    description: Option<String>,
}

/// `POST /mpesa/collections`: the organization asks its customer to pay its own
/// shortcode (set in `PUT /mpesa/settings`).
pub async fn collect(
    State(state): State<AppState>,
    ctx: TenantContext,
    headers: HeaderMap,
    Json(input): Json<Collection>,
) -> Result<Response, ApiError> {
    let org = organization(&state, ctx.org()).await?;
    let mut problems = Vec::new();
    let amount = kes("amount", &input.amount)
        .map_err(|e| problems.push(e))
        .ok();
    let relationship = match input.relationship_id {
        Some(id) => {
            let found = relationships::Entity::find_by_id((ctx.org().as_uuid(), id))
                .one(&state.db)
                .await
                .map_err(Error::internal)?
                .filter(|r| r.deleted_at.is_none());
            if found.is_none() {
                problems.push(Error::invalid(
                    "relationship_id",
                    "no such relationship in this organization",
                ));
            }
            found
        }
        None => None,
    };
    let phone_text = input
        .phone
        .clone()
        .or_else(|| relationship.as_ref().and_then(|r| r.phone.clone()));
    let payer = match phone_text {
        Some(text) => phone("phone", &text, country(&org))
            .map_err(|e| problems.push(e))
            .ok(),
        None => {
            problems.push(Error::invalid(
                "phone",
                "is required (the relationship has no phone)",
            ));
            None
        }
    };
    let reference = text_field(
        "account_reference",
        input.account_reference,
        "PAYMENT",
        12,
        &mut problems,
    );
    let description = text_field(
        "description",
        input.description,
        "Payment",
        13,
        &mut problems,
    );
    let (Some(amount), Some(payer), true) = (amount, payer, problems.is_empty()) else {
        return Err(merge(problems).into());
    };
    let result = state
        .payments
        .start(
            ctx.org(),
            NewPayment {
                purpose: Purpose::Collection,
                amount,
                phone: payer,
                plan_code: None,
                relationship_id: input.relationship_id,
                account_reference: reference,
                description,
                idempotency_key: idempotency_key(&headers)?.map(|k| k.as_str().to_owned()),
                created_by: ctx.user().map(|u| u.as_uuid()),
            },
        )
        .await?;
    started(result)
}

fn text_field(
    field: &str,
    value: Option<String>,
    default: &str,
    max: usize,
    problems: &mut Vec<Error>,
) -> String {
    let text = value
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| default.to_owned());
    if text.is_empty() || text.chars().count() > max {
        problems.push(Error::invalid(
            field,
            format!("must be 1 to {max} characters (M-Pesa's limit)"),
        ));
    }
    text
}

/// Several validation errors as one 422 naming every field.
pub(crate) fn merge(problems: Vec<Error>) -> Error {
    let mut fields = Vec::new();
    for problem in problems {
        match problem {
            Error::Validation(mut more) => fields.append(&mut more),
            other => return other,
        }
    }
    Error::Validation(fields)
}

/// `GET /payments` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    status: Option<String>,
    purpose: Option<String>,
    phone: Option<String>,
    relationship_id: Option<Uuid>,
    created_from: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /payments`: newest first, filtered by `status`, `purpose`, `phone`,
/// `relationship_id`, `created_from` and `created_before`.
pub async fn list(
    State(state): State<AppState>,
    ctx: TenantContext,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Page<Payment>>, ApiError> {
    let org = organization(&state, ctx.org()).await?;
    let filter = PaymentFilter {
        status: query.status.as_deref().map(str::parse).transpose()?,
        purpose: query.purpose.as_deref().map(str::parse).transpose()?,
        phone: query
            .phone
            .as_deref()
            .map(|p| phone("phone", p, country(&org)).map(|m| m.as_e164().to_owned()))
            .transpose()?,
        relationship_id: query.relationship_id,
        created_from: query.created_from,
        created_before: query.created_before,
    };
    let page = page_request(query.limit, query.cursor)?;
    Ok(axum::Json(
        state.payments.list(ctx.org(), &filter, &page).await?,
    ))
}

/// `GET /payments/{id}`: the payment, its history and its requests (for polling).
pub async fn get(
    State(state): State<AppState>,
    ctx: TenantContext,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PaymentDetail>, ApiError> {
    Ok(axum::Json(state.payments.detail(ctx.org(), id).await?))
}

/// `POST /payments/{id}/status-query` body (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusQueryInput {
    /// Sent to M-Pesa as the remarks (2 to 100 characters).
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /payments/{id}/reversal` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReversalInput {
    /// Why the money goes back (2 to 100 characters; sent to M-Pesa as the remarks).
    reason: String,
}

/// The answer to a request sent: 202 with it, or the upstream error with it in details.
fn sent(sent: Sent) -> Result<Response, ApiError> {
    if let Some(error) = sent.upstream_error {
        return Err(ApiError::from(error).with_details(json!({ "request": sent.request })));
    }
    Ok((StatusCode::ACCEPTED, axum::Json(sent.request)).into_response())
}

/// Sends a status query or reversal for a payment of `org`, and writes the audit entry.
async fn send_request(
    state: &AppState,
    ctx: &TenantContext,
    client: &crate::audit::ClientInfo,
    org: OrgId,
    payment: Uuid,
    kind: RequestKind,
    reason: Option<String>,
) -> Result<Response, ApiError> {
    let operator = ctx.role().is_operator();
    let result = state
        .payments
        .start_request(
            org,
            payment,
            NewRequest {
                kind,
                reason,
                created_by: ctx.user().map(|u| u.as_uuid()),
                operator,
            },
        )
        .await?;
    let action = match kind {
        RequestKind::TransactionStatus => "payment.status_query",
        RequestKind::Reversal => "payment.reversal",
    };
    // Operators' requests are recorded in the audit log of the organization they act in.
    Entry::new(org, Actor::of(ctx), action)
        .target("payment", payment)
        .details(json!({
            "request_id": result.request.id,
            "reason": result.request.reason,
            "status": result.request.status,
        }))
        .record(&state.db, client, state.clock.now())
        .await?;
    sent(result)
}

/// `POST /payments/{id}/status-query`: asks M-Pesa about one of the organization's
/// collections (with the organization's initiator); 202 with the request, whose result
/// shows on `GET /payments/{id}`.
pub async fn status_query(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<Uuid>,
    input: Option<Json<StatusQueryInput>>,
) -> Result<Response, ApiError> {
    let reason = input.and_then(|Json(i)| i.reason);
    send_request(
        &state,
        &ctx,
        &client,
        ctx.org(),
        id,
        RequestKind::TransactionStatus,
        reason,
    )
    .await
}

/// `POST /payments/{id}/reversal`: asks M-Pesa to give a succeeded collection back to the
/// payer; 202 with the request.
pub async fn reversal(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path(id): Path<Uuid>,
    Json(input): Json<ReversalInput>,
) -> Result<Response, ApiError> {
    send_request(
        &state,
        &ctx,
        &client,
        ctx.org(),
        id,
        RequestKind::Reversal,
        Some(input.reason),
    )
    .await
}

/// `POST /admin/organizations/{id}/payments/{payment_id}/status-query`: an operator asks
/// M-Pesa about any payment (the platform's initiator for payments to the platform).
pub async fn admin_status_query(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path((org, id)): Path<(OrgId, Uuid)>,
    input: Option<Json<StatusQueryInput>>,
) -> Result<Response, ApiError> {
    crate::identity::operator::require_operator(&ctx)?;
    let reason = input.and_then(|Json(i)| i.reason);
    crate::tenant_scope::in_organization(
        org,
        send_request(
            &state,
            &ctx,
            &client,
            org,
            id,
            RequestKind::TransactionStatus,
            reason,
        ),
    )
    .await
}

/// `POST /admin/organizations/{id}/payments/{payment_id}/reversal`: an operator reverses
/// any succeeded payment; a top-up's credit is taken back from the wallet.
pub async fn admin_reversal(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
    Path((org, id)): Path<(OrgId, Uuid)>,
    Json(input): Json<ReversalInput>,
) -> Result<Response, ApiError> {
    crate::identity::operator::require_operator(&ctx)?;
    crate::tenant_scope::in_organization(
        org,
        send_request(
            &state,
            &ctx,
            &client,
            org,
            id,
            RequestKind::Reversal,
            Some(input.reason),
        ),
    )
    .await
}

/// `POST /admin/organizations/{id}/payments/{payment_id}/review` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecision {
    /// `accept` (the payment succeeds and is applied) or `reject` (it fails).
    decision: crate::payments::settle::Review,
    /// Why, for the history and the audit log.
    reason: String,
}

/// `POST /admin/organizations/{id}/payments/{payment_id}/review`: an operator ends the
/// review of a payment.
pub async fn review(
    State(state): State<AppState>,
    ctx: TenantContext,
    super::client::Client(client): super::client::Client,
    Path((org, id)): Path<(OrgId, Uuid)>,
    Json(input): Json<ReviewDecision>,
) -> Result<axum::Json<Payment>, ApiError> {
    crate::identity::operator::require_operator(&ctx)?;
    let reason = input.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Error::invalid("reason", "must be 1 to 500 characters").into());
    }
    let payment = crate::tenant_scope::in_organization(org, async {
        let payment = state
            .payments
            .resolve_review(
                org,
                id,
                input.decision,
                &reason,
                ctx.user().map(|u| u.as_uuid()),
            )
            .await?;
        crate::audit::Entry::new(org, crate::audit::Actor::of(&ctx), "payment.review")
            .target("payment", id)
            .details(json!({ "decision": input.decision, "reason": reason }))
            .record(&state.db, &client, state.clock.now())
            .await?;
        Ok::<_, Error>(payment)
    })
    .await?;
    Ok(axum::Json(payment))
}
