//! Transaction status queries and reversals: asking M-Pesa about a paid payment, or to
//! give the money back.
//!
//! Organization admins may query and reverse their own `collection` payments, with the
//! initiator in their M-Pesa settings; operators may query and reverse any payment, with
//! the platform's initiator for payments made to the platform. Each request is written
//! `pending` before Daraja is called (so a crash never leaves a request we know nothing
//! of), with Daraja's `OriginatorConversationID` and `ConversationID` once it accepts.
//! At most one request of each kind is pending per payment: a second is refused (409)
//! naming the first, until the first has its result or has been pending longer than
//! `EDGE_MPESA_GIVE_UP_AFTER_SECS` (then it no longer blocks, though its result is still
//! recorded if it ever comes).
//!
//! The result arrives on the organization's `…/result` URL and completes the request
//! once (a repeat changes nothing), with its code, description and parameters, and an
//! event on the payment's history (`payment.status_query_completed`,
//! `payment.reversal_completed`). A queue time-out notice (`…/timeout`) closes the request
//! as failed; a real result arriving after it still completes it, since the time-out is
//! no proof that nothing happened.
//!
//! A successful reversal (result `0`, or `R000001` "already reversed": the money is back
//! with the payer either way) moves the payment from `succeeded` to `reversed`. For a
//! wallet top-up the credit is first taken back through the ledger, keyed by the payment
//! (`mpesa-reversal:{payment}`), so no number of reversal results can debit the wallet
//! twice. If the wallet can no longer cover it, nothing is debited and the payment goes to
//! `needs_review` with the reason. A subscription payment is marked reversed; the period it
//! paid for is not taken back here. The effect is carried out after the result is
//! recorded and marked with `applied_at`; reconciliation finishes it after a crash.

use chrono::{DateTime, TimeDelta, Utc};
use edge_core::{Account as LedgerAccount, Error, IdempotencyKey, Money, OrgId, TransferRequest};
use edge_mpesa::{Reversal, TransactionStatusQuery, parse_result};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _,
};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::accounts::upstream;
use super::inbox::{CallbackKind, Handled, Processed, UNMATCHED_RETRY_WINDOW};
use super::{PaymentStatus, Payments, Purpose, db_err, is_unique_violation};
use crate::db::begin_write;
use crate::entities::{mpesa_callbacks, mpesa_requests, payments};

/// What M-Pesa is asked about a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// Transaction status query: what M-Pesa knows of the receipt.
    TransactionStatus,
    /// Reversal: give the money back to the payer.
    Reversal,
}

impl RequestKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::TransactionStatus => "transaction_status",
            RequestKind::Reversal => "reversal",
        }
    }

    fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "transaction_status" => Ok(RequestKind::TransactionStatus),
            "reversal" => Ok(RequestKind::Reversal),
            other => Err(Error::internal(format!(
                "unknown M-Pesa request kind {other:?}"
            ))),
        }
    }

    fn words(self) -> &'static str {
        match self {
            RequestKind::TransactionStatus => "status query",
            RequestKind::Reversal => "reversal",
        }
    }

    fn event(self, what: &str) -> String {
        match self {
            RequestKind::TransactionStatus => format!("payment.status_query_{what}"),
            RequestKind::Reversal => format!("payment.reversal_{what}"),
        }
    }
}

/// A status query or reversal, as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MpesaRequest {
    /// The request id.
    pub id: Uuid,
    /// The payment it is about.
    pub payment_id: Uuid,
    /// `transaction_status` or `reversal`.
    pub kind: RequestKind,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// Why (sent to M-Pesa as the remarks).
    pub reason: Option<String>,
    /// Daraja's `OriginatorConversationID` (ours, `edge-…`, until Daraja accepted it).
    pub originator_conversation_id: String,
    /// Daraja's `ConversationID`.
    pub conversation_id: Option<String>,
    /// The result code (`0` is success).
    pub result_code: Option<String>,
    /// The result description, or why the request failed.
    pub result_description: Option<String>,
    /// The result's transaction id and parameters, as M-Pesa sent them.
    pub result: Option<Value>,
    /// When a queue time-out notice arrived.
    pub timed_out_at: Option<DateTime<Utc>>,
    /// When a successful reversal's effect was carried out.
    pub applied_at: Option<DateTime<Utc>>,
    /// Who asked.
    pub created_by: Option<Uuid>,
    /// Sent.
    pub created_at: DateTime<Utc>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
}

impl MpesaRequest {
    fn from_row(row: &mpesa_requests::Model) -> Result<Self, Error> {
        Ok(Self {
            id: row.id,
            payment_id: row.payment_id,
            kind: RequestKind::parse(&row.kind)?,
            status: row.status.clone(),
            reason: row.reason.clone(),
            originator_conversation_id: row.originator_conversation_id.clone(),
            conversation_id: row.conversation_id.clone(),
            result_code: row.result_code.clone(),
            result_description: row.result_description.clone(),
            result: row.result.clone(),
            timed_out_at: row.timed_out_at,
            applied_at: row.applied_at,
            created_by: row.created_by,
            created_at: row.created_at,
            completed_at: row.completed_at,
        })
    }
}

/// A payment's requests, oldest first.
pub(crate) async fn of_payment<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    payment_id: Uuid,
) -> Result<Vec<MpesaRequest>, Error> {
    mpesa_requests::Entity::find()
        .filter(mpesa_requests::Column::OrganizationId.eq(org.as_uuid()))
        .filter(mpesa_requests::Column::PaymentId.eq(payment_id))
        .order_by_asc(mpesa_requests::Column::Id)
        .all(conn)
        .await
        .map_err(db_err)?
        .iter()
        .map(MpesaRequest::from_row)
        .collect()
}

/// Marks a successful reversal's effect carried out (once).
async fn mark_applied<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    request: Uuid,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    mpesa_requests::Entity::update_many()
        .col_expr(mpesa_requests::Column::AppliedAt, Expr::value(now))
        .filter(mpesa_requests::Column::OrganizationId.eq(org.as_uuid()))
        .filter(mpesa_requests::Column::Id.eq(request))
        .filter(mpesa_requests::Column::AppliedAt.is_null())
        .exec(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// What to ask.
    pub kind: RequestKind,
    /// Why: required for a reversal (2 to 100 characters), optional for a status query.
    pub reason: Option<String>,
    /// Who asks.
    pub created_by: Option<Uuid>,
    /// Whether an operator asks (else an organization admin, who may only ask about
    /// collections).
    pub operator: bool,
}

/// The result of [`Payments::start_request`].
#[derive(Debug)]
pub struct Sent {
    /// The request as it stands.
    pub request: MpesaRequest,
    /// Set when Daraja refused the request (it is `failed`) or did not answer (it stays
    /// `pending`; its result may still come).
    pub upstream_error: Option<Error>,
}

/// Daraja's `Remarks`: 2 to 100 characters, no control characters.
fn remarks(field: &str, text: &str) -> Result<String, Error> {
    let text = text.trim();
    let len = text.chars().count();
    if !(2..=100).contains(&len) || text.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            "must be 2 to 100 characters, without line breaks (M-Pesa's limit)",
        ));
    }
    Ok(text.to_owned())
}

impl Payments {
    /// Asks M-Pesa for the status of a payment, or to reverse it. See the module
    /// documentation for who may ask what.
    pub async fn start_request(
        &self,
        org: OrgId,
        payment_id: Uuid,
        new: NewRequest,
    ) -> Result<Sent, Error> {
        let payment = self.row(org, payment_id).await?;
        let purpose: Purpose = payment.purpose.parse()?;
        if !new.operator && purpose != Purpose::Collection {
            return Err(Error::Forbidden(
                "only operators query or reverse payments made to the platform; organization \
                 admins may for their own collections"
                    .into(),
            ));
        }
        let reason = match (new.kind, new.reason.as_deref()) {
            (_, Some(reason)) => remarks("reason", reason)?,
            (RequestKind::Reversal, None) => {
                return Err(Error::invalid("reason", "is required for a reversal"));
            }
            (RequestKind::TransactionStatus, None) => "Payment status check".to_owned(),
        };
        let receipt = payment.receipt.clone().ok_or_else(|| {
            Error::Conflict(format!(
                "payment {payment_id} has no M-Pesa receipt yet, so M-Pesa cannot be asked about it"
            ))
        })?;
        let status: PaymentStatus = payment.status.parse()?;
        let currency = payment.currency.parse().map_err(Error::from)?;
        let amount = Money::from_minor(
            payment.paid_amount_minor.unwrap_or(payment.amount_minor),
            currency,
        );
        if new.kind == RequestKind::Reversal {
            if status != PaymentStatus::Succeeded {
                return Err(Error::Conflict(format!(
                    "only a succeeded payment can be reversed; payment {payment_id} is {status}"
                )));
            }
            if amount.whole_major().is_none() {
                return Err(Error::Conflict(format!(
                    "payment {payment_id} is not a whole number of shillings, which M-Pesa cannot reverse"
                )));
            }
        }
        let account = if purpose.pays_the_platform() {
            self.platform_account()?
        } else {
            self.tenant_account(org).await?
        };
        if !account.has_initiator {
            return Err(Error::Conflict(if purpose.pays_the_platform() {
                "the platform's initiator is not configured (EDGE_MPESA_INITIATOR_NAME and \
                 EDGE_MPESA_SECURITY_CREDENTIAL)"
                    .to_owned()
            } else {
                "this organization's M-Pesa settings have no initiator: set initiator_name and \
                 initiator_security_credential with PUT /api/v1/mpesa/settings"
                    .to_owned()
            }));
        }
        let urls = self.callback_urls(org).await?;
        let id = self
            .insert_request(org, payment_id, new.kind, &reason, new.created_by, &receipt)
            .await?;

        let client = self.client(account.production);
        let sent = match new.kind {
            RequestKind::TransactionStatus => {
                TransactionStatusQuery::new(reason.as_str(), &urls.result, &urls.timeout)
                    .transaction_id(&receipt)
                    .send(client, &account.credentials)
                    .await
            }
            RequestKind::Reversal => {
                Reversal::new(
                    &receipt,
                    amount,
                    reason.as_str(),
                    &urls.result,
                    &urls.timeout,
                )
                .send(client, &account.credentials)
                .await
            }
        };
        let upstream_error = match sent {
            Ok(accepted) => {
                let mut update = mpesa_requests::Entity::update_many();
                if !accepted.originator_conversation_id.trim().is_empty() {
                    update = update.col_expr(
                        mpesa_requests::Column::OriginatorConversationId,
                        Expr::value(accepted.originator_conversation_id.trim()),
                    );
                }
                update
                    .col_expr(
                        mpesa_requests::Column::ConversationId,
                        Expr::value(
                            Some(accepted.conversation_id.trim().to_owned())
                                .filter(|c| !c.is_empty()),
                        ),
                    )
                    .filter(mpesa_requests::Column::OrganizationId.eq(org.as_uuid()))
                    .filter(mpesa_requests::Column::Id.eq(id))
                    .exec(&self.db)
                    .await
                    .map_err(db_err)?;
                None
            }
            Err(err) if !err.may_have_been_sent() => {
                tracing::warn!(request = %id, payment = %payment_id, error = %err, "Daraja refused a {}", new.kind.words());
                self.complete_request(
                    org,
                    id,
                    Completion {
                        status: "failed",
                        code: None,
                        description: format!("Daraja refused the request: {err}"),
                        result: None,
                        timed_out: false,
                    },
                )
                .await?;
                Some(match &err {
                    edge_mpesa::Error::InvalidRequest { field, reason } => {
                        Error::Conflict(format!("M-Pesa cannot be asked: {field}: {reason}"))
                    }
                    other => upstream(other),
                })
            }
            Err(err) => {
                tracing::warn!(request = %id, payment = %payment_id, error = %err, "no answer from Daraja to a {}; its result may still come", new.kind.words());
                mpesa_requests::Entity::update_many()
                    .col_expr(
                        mpesa_requests::Column::ResultDescription,
                        Expr::value(format!("no answer from Daraja yet: {err}")),
                    )
                    .filter(mpesa_requests::Column::OrganizationId.eq(org.as_uuid()))
                    .filter(mpesa_requests::Column::Id.eq(id))
                    .exec(&self.db)
                    .await
                    .map_err(db_err)?;
                Some(upstream(&err))
            }
        };
        Ok(Sent {
            request: self.request(org, id).await?,
            upstream_error,
        })
    }

    /// Writes a pending request (with its event), or refuses one while another of the same
    /// kind is pending for the payment.
    async fn insert_request(
        &self,
        org: OrgId,
        payment_id: Uuid,
        kind: RequestKind,
        reason: &str,
        by: Option<Uuid>,
        receipt: &str,
    ) -> Result<Uuid, Error> {
        let pending_key = format!("{payment_id}:{}", kind.as_str());
        // One retry: after releasing a stale request's hold on the key.
        for _ in 0..2 {
            let now = self.now();
            let id = Uuid::now_v7();
            let row = mpesa_requests::ActiveModel {
                organization_id: Set(org.as_uuid()),
                id: Set(id),
                payment_id: Set(payment_id),
                kind: Set(kind.as_str().to_owned()),
                originator_conversation_id: Set(format!("edge-{id}")),
                conversation_id: Set(None),
                status: Set("pending".into()),
                reason: Set(Some(reason.to_owned())),
                pending_key: Set(Some(pending_key.clone())),
                result_code: Set(None),
                result_description: Set(None),
                result: Set(None),
                timed_out_at: Set(None),
                applied_at: Set(None),
                created_by: Set(by),
                created_at: Set(now),
                completed_at: Set(None),
            };
            let txn = begin_write(&self.db).await.map_err(db_err)?;
            match mpesa_requests::Entity::insert(row)
                .exec_without_returning(&txn)
                .await
            {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    drop(txn);
                    let Some(other) = mpesa_requests::Entity::find()
                        .filter(mpesa_requests::Column::OrganizationId.eq(org.as_uuid()))
                        .filter(mpesa_requests::Column::PendingKey.eq(pending_key.as_str()))
                        .one(&self.db)
                        .await
                        .map_err(db_err)?
                    else {
                        // It completed in between: try again.
                        continue;
                    };
                    let stale_after =
                        TimeDelta::from_std(self.config.give_up_after).unwrap_or(TimeDelta::MAX);
                    if now - other.created_at < stale_after {
                        return Err(Error::Conflict(format!(
                            "a {} of this payment is already pending (request {}, sent {}); \
                             wait for its result",
                            kind.words(),
                            other.id,
                            other.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        )));
                    }
                    tracing::warn!(request = %other.id, "a pending {} without a result for too long no longer blocks a new one", kind.words());
                    mpesa_requests::Entity::update_many()
                        .col_expr(
                            mpesa_requests::Column::PendingKey,
                            Expr::value(None::<String>),
                        )
                        .filter(mpesa_requests::Column::OrganizationId.eq(org.as_uuid()))
                        .filter(mpesa_requests::Column::Id.eq(other.id))
                        .filter(mpesa_requests::Column::PendingKey.eq(pending_key.as_str()))
                        .exec(&self.db)
                        .await
                        .map_err(db_err)?;
                    continue;
                }
                Err(e) => return Err(db_err(e)),
            }
            crate::events::record(
                &txn,
                org,
                &kind.event("requested"),
                ("payment", payment_id),
                json!({
                    "request_id": id,
                    "payment_id": payment_id,
                    "kind": kind,
                    "receipt": receipt,
                    "reason": reason,
                }),
                now,
            )
            .await
            .map_err(db_err)?;
            txn.commit().await.map_err(db_err)?;
            return Ok(id);
        }
        Err(Error::Conflict(format!(
            "another {} of this payment was started at the same time; try again",
            kind.words()
        )))
    }

    /// One request of the organization.
    pub async fn request(&self, org: OrgId, id: Uuid) -> Result<MpesaRequest, Error> {
        let row = mpesa_requests::Entity::find_by_id((org.as_uuid(), id))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or(Error::not_found("request"))?;
        MpesaRequest::from_row(&row)
    }

    /// A payment's requests, oldest first.
    pub async fn requests(&self, org: OrgId, payment_id: Uuid) -> Result<Vec<MpesaRequest>, Error> {
        of_payment(&self.db, org, payment_id).await
    }

    /// Completes a request once, with its event. `false` when it was already complete
    /// (a result completes a request that only timed out; a time-out only a pending one).
    async fn complete_request(
        &self,
        org: OrgId,
        id: Uuid,
        completion: Completion,
    ) -> Result<bool, Error> {
        let now = self.now();
        let row = mpesa_requests::Entity::find_by_id((org.as_uuid(), id))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or(Error::not_found("request"))?;
        let kind = RequestKind::parse(&row.kind)?;
        let mut update = mpesa_requests::Entity::update_many()
            .col_expr(
                mpesa_requests::Column::Status,
                Expr::value(completion.status),
            )
            .col_expr(
                mpesa_requests::Column::PendingKey,
                Expr::value(None::<String>),
            )
            .col_expr(
                mpesa_requests::Column::ResultDescription,
                Expr::value(completion.description.chars().take(255).collect::<String>()),
            )
            .col_expr(mpesa_requests::Column::CompletedAt, Expr::value(now))
            .filter(mpesa_requests::Column::OrganizationId.eq(org.as_uuid()))
            .filter(mpesa_requests::Column::Id.eq(id));
        if completion.timed_out {
            update = update
                .col_expr(mpesa_requests::Column::TimedOutAt, Expr::value(now))
                .filter(mpesa_requests::Column::Status.eq("pending"));
        } else {
            update = update
                .col_expr(
                    mpesa_requests::Column::ResultCode,
                    Expr::value(completion.code.clone()),
                )
                .col_expr(
                    mpesa_requests::Column::Result,
                    Expr::value(completion.result.clone()),
                )
                .filter(mpesa_requests::Column::ResultCode.is_null())
                .filter(
                    Condition::any()
                        .add(mpesa_requests::Column::Status.eq("pending"))
                        .add(mpesa_requests::Column::TimedOutAt.is_not_null()),
                );
        }
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let changed = update.exec(&txn).await.map_err(db_err)?.rows_affected == 1;
        if !changed {
            txn.rollback().await.map_err(db_err)?;
            return Ok(false);
        }
        crate::events::record(
            &txn,
            org,
            &kind.event("completed"),
            ("payment", row.payment_id),
            json!({
                "request_id": id,
                "payment_id": row.payment_id,
                "kind": kind,
                "status": if completion.timed_out { "timed_out" } else { completion.status },
                "result_code": completion.code,
                "result_description": completion.description,
                "result": completion.result,
            }),
            now,
        )
        .await
        .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        tracing::info!(request = %id, payment = %row.payment_id, status = completion.status, "M-Pesa {} completed", kind.words());
        Ok(true)
    }

    /// Processes a stored result or queue time-out of a status query or reversal.
    pub(crate) async fn process_initiator_result(
        &self,
        org: OrgId,
        kind: CallbackKind,
        row: &mpesa_callbacks::Model,
    ) -> Result<Handled, Error> {
        let parsed = parse_result(&row.body);
        let ids = match &parsed {
            Ok(result) => Some((
                result.originator_conversation_id.trim().to_owned(),
                result.conversation_id.trim().to_owned(),
            )),
            // Daraja does not document the time-out notice: its ids are enough.
            Err(_) if kind == CallbackKind::Timeout => notice_ids(&row.body),
            Err(_) => None,
        };
        let Some((originator, conversation)) = ids else {
            let reason = parsed.err().map_or(
                "neither OriginatorConversationID nor ConversationID is present",
                |e| e.reason(),
            );
            tracing::warn!(callback = %row.id, reason, "unreadable initiator result stored");
            return Ok((Processed::Invalid, None, Some(reason.to_owned()), true));
        };
        let (originator, conversation) = (originator.as_str(), conversation.as_str());
        let mut matches = Condition::any();
        if !originator.is_empty() {
            matches = matches.add(mpesa_requests::Column::OriginatorConversationId.eq(originator));
        }
        if !conversation.is_empty() {
            matches = matches.add(mpesa_requests::Column::ConversationId.eq(conversation));
        }
        let request = mpesa_requests::Entity::find()
            .filter(mpesa_requests::Column::OrganizationId.eq(org.as_uuid()))
            .filter(matches)
            .one(&self.db)
            .await
            .map_err(db_err)?;
        let Some(request) = request else {
            // Daraja's answer carrying the ids may not be stored yet: retry for a while.
            let give_up = self.now() - row.received_at >= UNMATCHED_RETRY_WINDOW;
            if give_up {
                tracing::warn!(callback = %row.id, %originator, %conversation, "initiator result matches no request: flagged");
            }
            return Ok((
                Processed::Unmatched,
                None,
                Some(format!(
                    "no request has OriginatorConversationID {originator:?} or ConversationID {conversation:?}"
                )),
                give_up,
            ));
        };
        let request_kind = RequestKind::parse(&request.kind)?;
        if kind == CallbackKind::Timeout {
            let changed = self
                .complete_request(
                    org,
                    request.id,
                    Completion {
                        status: "failed",
                        code: None,
                        description: "the request expired in M-Pesa's queue before it was \
                                      processed (not proof that nothing happened: query the \
                                      status before trying again)"
                            .into(),
                        result: None,
                        timed_out: true,
                    },
                )
                .await?;
            let processed = if changed {
                Processed::Recorded
            } else {
                Processed::Duplicate
            };
            return Ok((processed, Some(request.payment_id), None, true));
        }
        let result = match parsed {
            Ok(result) => result,
            Err(err) => {
                return Ok((
                    Processed::Invalid,
                    Some(request.payment_id),
                    Some(err.reason().to_owned()),
                    true,
                ));
            }
        };
        if !result.is_final() {
            return Ok((
                Processed::Recorded,
                Some(request.payment_id),
                Some("an intermediate result (ResultType 1): waiting for the final one".into()),
                true,
            ));
        }
        let code = result.result_code.as_str().to_owned();
        // R000001 "already reversed": the money is back with the payer either way.
        let succeeded =
            result.is_success() || (request_kind == RequestKind::Reversal && code == "R000001");
        let parameters: Vec<Value> = result
            .parameters
            .iter()
            .map(|kv| json!({ "key": kv.key, "value": kv.value }))
            .collect();
        let changed = self
            .complete_request(
                org,
                request.id,
                Completion {
                    status: if succeeded { "succeeded" } else { "failed" },
                    code: Some(code.chars().take(32).collect()),
                    description: result.result_desc.clone(),
                    result: Some(json!({
                        "transaction_id": result.transaction_id,
                        "parameters": parameters,
                    })),
                    timed_out: false,
                },
            )
            .await?;
        if !changed {
            return Ok((Processed::Duplicate, Some(request.payment_id), None, true));
        }
        if request_kind == RequestKind::Reversal && succeeded {
            self.apply_reversal(org, request.id).await?;
        }
        Ok((Processed::Recorded, Some(request.payment_id), None, true))
    }

    /// Carries out a successful reversal: takes a top-up's credit back (or flags the
    /// payment when the wallet cannot cover it) and marks the payment reversed. Safe to
    /// call again: it does nothing once `applied_at` is set, and the debit is keyed by the
    /// payment.
    pub(crate) async fn apply_reversal(&self, org: OrgId, request_id: Uuid) -> Result<(), Error> {
        let request = mpesa_requests::Entity::find_by_id((org.as_uuid(), request_id))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or(Error::not_found("request"))?;
        if request.kind != RequestKind::Reversal.as_str()
            || request.status != "succeeded"
            || request.applied_at.is_some()
        {
            return Ok(());
        }
        let payment = self.row(org, request.payment_id).await?;
        if payment.status == PaymentStatus::Succeeded.as_str() {
            let purpose: Purpose = payment.purpose.parse()?;
            let amount = Money::from_minor(
                payment.amount_minor,
                payment.currency.parse().map_err(Error::from)?,
            );
            let mut to = PaymentStatus::Reversed;
            let mut reason = None;
            let mut debit = None;
            if purpose == Purpose::WalletTopUp {
                let key = IdempotencyKey::new(format!("mpesa-reversal:{}", payment.id))
                    .map_err(Error::internal)?;
                let transfer = self
                    .ledger
                    .transfer(
                        org,
                        TransferRequest::new(
                            LedgerAccount::Wallet(org),
                            LedgerAccount::MpesaClearing,
                            amount,
                            key,
                        )
                        .metadata(json!({
                            "kind": "mpesa_reversal",
                            "payment_id": payment.id,
                            "receipt": payment.receipt,
                            "request_id": request.id,
                        })),
                    )
                    .await;
                match transfer {
                    Ok(outcome) => debit = Some(outcome.value.id.as_uuid()),
                    // Another reversal of this payment already took the credit back.
                    Err(Error::IdempotencyMismatch) => {}
                    Err(Error::InsufficientFunds { available, .. }) => {
                        to = PaymentStatus::NeedsReview;
                        reason = Some(format!(
                            "M-Pesa reversed it (request {}) but the wallet could not cover {} {} \
                             ({} available): the credit stands until an operator recovers it",
                            request.id,
                            amount.currency().code(),
                            amount.to_decimal_string(),
                            available.to_decimal_string()
                        ));
                        tracing::error!(payment = %payment.id, request = %request.id, "a reversed top-up could not be taken back from the wallet: needs review");
                    }
                    Err(other) => return Err(other),
                }
            }
            // Marks the request applied in the same transaction.
            return self
                .mark_reversed(org, &payment, to, reason, request.id, debit)
                .await;
        }
        mark_applied(&self.db, org, request_id, self.now()).await
    }

    /// Moves a succeeded payment to `reversed` (or `needs_review`), with its event, and
    /// marks the reversal request applied, in one transaction: a reader that sees the
    /// payment moved sees the request applied.
    async fn mark_reversed(
        &self,
        org: OrgId,
        payment: &payments::Model,
        to: PaymentStatus,
        reason: Option<String>,
        request: Uuid,
        debit: Option<Uuid>,
    ) -> Result<(), Error> {
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let changed = payments::Entity::update_many()
            .col_expr(payments::Column::Status, Expr::value(to.as_str()))
            .col_expr(payments::Column::ReviewReason, Expr::value(reason.clone()))
            .col_expr(payments::Column::UpdatedAt, Expr::value(now))
            .filter(payments::Column::OrganizationId.eq(org.as_uuid()))
            .filter(payments::Column::Id.eq(payment.id))
            .filter(payments::Column::Status.eq(PaymentStatus::Succeeded.as_str()))
            .exec(&txn)
            .await
            .map_err(db_err)?
            .rows_affected
            == 1;
        if !changed {
            // Moved already (by another delivery of the result): only mark this applied.
            mark_applied(&txn, org, request, now).await?;
            txn.commit().await.map_err(db_err)?;
            return Ok(());
        }
        crate::events::record(
            &txn,
            org,
            "payment.status_changed",
            ("payment", payment.id),
            json!({
                "id": payment.id,
                "purpose": payment.purpose,
                "from": PaymentStatus::Succeeded,
                "to": to,
                "amount": Money::from_minor(payment.amount_minor, payment.currency.parse().map_err(Error::from)?),
                "source": "reversal",
                "request_id": request,
                "ledger_transfer_id": debit,
                "review_reason": reason,
            }),
            now,
        )
        .await
        .map_err(db_err)?;
        mark_applied(&txn, org, request, now).await?;
        txn.commit().await.map_err(db_err)?;
        tracing::info!(payment = %payment.id, %request, to = %to, "payment reversed");
        Ok(())
    }

    /// Carries out successful reversals whose effect a crash interrupted.
    pub(crate) async fn apply_left_over_reversals(&self, limit: u64) -> Result<usize, Error> {
        let left: Vec<(Uuid, Uuid)> = mpesa_requests::Entity::find()
            .select_only()
            .column(mpesa_requests::Column::OrganizationId)
            .column(mpesa_requests::Column::Id)
            .filter(mpesa_requests::Column::Kind.eq(RequestKind::Reversal.as_str()))
            .filter(mpesa_requests::Column::Status.eq("succeeded"))
            .filter(mpesa_requests::Column::AppliedAt.is_null())
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut done = 0;
        for (org, id) in left {
            match self.apply_reversal(OrgId::from_uuid(org), id).await {
                Ok(()) => done += 1,
                Err(err) => {
                    tracing::error!(request = %id, error = %err, "applying a reversal failed; will retry");
                }
            }
        }
        Ok(done)
    }
}

/// The `OriginatorConversationID` and `ConversationID` of a body (under `Result`, or at
/// the top), read leniently; `None` when it has neither.
fn notice_ids(body: &[u8]) -> Option<(String, String)> {
    let root: Value = serde_json::from_slice(body).ok()?;
    let inner = root.get("Result").unwrap_or(&root);
    let text = |key: &str| match inner.get(key) {
        Some(Value::String(text)) => text.trim().to_owned(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    };
    let ids = (text("OriginatorConversationID"), text("ConversationID"));
    (!ids.0.is_empty() || !ids.1.is_empty()).then_some(ids)
}

/// How a request ends.
struct Completion {
    status: &'static str,
    code: Option<String>,
    description: String,
    result: Option<Value>,
    timed_out: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remarks_follow_darajas_limits() {
        assert_eq!(remarks("reason", "  Refund  ").unwrap(), "Refund");
        assert!(remarks("reason", "x").is_err());
        assert!(remarks("reason", &"x".repeat(101)).is_err());
        assert!(remarks("reason", "two\nlines").is_err());
    }

    #[test]
    fn time_out_notices_are_read_for_their_ids_only() {
        assert_eq!(
            notice_ids(br#"{"Result":{"OriginatorConversationID":"a-1","ConversationID":"AG_1"}}"#),
            Some(("a-1".to_owned(), "AG_1".to_owned()))
        );
        assert_eq!(
            notice_ids(br#"{"ConversationID":"AG_2"}"#),
            Some((String::new(), "AG_2".to_owned()))
        );
        assert_eq!(notice_ids(br#"{"Result":{}}"#), None);
        assert_eq!(notice_ids(b"timeout"), None);
    }

    #[test]
    fn kinds_round_trip_and_name_their_events() {
        for kind in [RequestKind::TransactionStatus, RequestKind::Reversal] {
            assert_eq!(RequestKind::parse(kind.as_str()).unwrap(), kind);
        }
        assert_eq!(
            RequestKind::TransactionStatus.event("completed"),
            "payment.status_query_completed"
        );
        assert_eq!(
            RequestKind::Reversal.event("completed"),
            "payment.reversal_completed"
        );
    }
}
