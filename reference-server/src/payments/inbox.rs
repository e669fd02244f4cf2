//! Receiving callbacks: check the URL's token, store the raw body, answer, then process.
//!
//! [`Payments::receive`] stores the body byte for byte before anything reads it (and, with
//! `EDGE_MPESA_CALLBACK_DIR`, also writes it to a file), so a body we cannot parse or
//! match is never lost. [`Payments::process_callback`] then matches it and settles the
//! payment; it runs after the answer to Daraja, and the reconciliation loop runs it again
//! for any callback left unprocessed (a crash, or an STK result that arrived before
//! Daraja's answer to the push was stored).

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use edge_core::{Error, OrgId};
use edge_mpesa::{StkOutcome, parse_stk_callback};
use sea_orm::ActiveValue::Set;
use sea_orm::QuerySelect as _;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait as _, Condition, EntityTrait as _, QueryFilter as _, QueryOrder as _};
use uuid::Uuid;

use super::settle::{Outcome, Settlement, Source};
use super::{PaymentStatus, Payments, db_err};
use crate::entities::{mpesa_callbacks, payments};

/// How long one processing holds a callback before another may take it.
pub const CLAIM: TimeDelta = TimeDelta::seconds(60);

/// How many callbacks are processed at once in the background, per server.
pub const PROCESSING_AT_ONCE: usize = 8;

/// How long an STK result that matches no payment is retried before it is left flagged
/// as unmatched: Daraja's answer to the push, carrying the id, may be stored after the
/// result arrives.
pub const UNMATCHED_RETRY_WINDOW: TimeDelta = TimeDelta::minutes(10);

/// Which callback a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackKind {
    /// An STK push result.
    Stk,
    /// The result of a transaction status query or reversal.
    Result,
    /// Their queue time-out.
    Timeout,
    /// C2B validation.
    C2bValidation,
    /// C2B confirmation.
    C2bConfirmation,
    /// C2B validation on the platform's paybill (no organization until matched).
    PlatformC2bValidation,
    /// C2B confirmation on the platform's paybill.
    PlatformC2bConfirmation,
}

impl CallbackKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackKind::Stk => "stk",
            CallbackKind::Result => "result",
            CallbackKind::Timeout => "timeout",
            CallbackKind::C2bValidation => "c2b_validation",
            CallbackKind::C2bConfirmation => "c2b_confirmation",
            CallbackKind::PlatformC2bValidation => "platform_c2b_validation",
            CallbackKind::PlatformC2bConfirmation => "platform_c2b_confirmation",
        }
    }

    /// Whether this is a C2B validation request (answered with a decision).
    pub fn is_validation(self) -> bool {
        matches!(
            self,
            CallbackKind::C2bValidation | CallbackKind::PlatformC2bValidation
        )
    }

    /// The kind of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            CallbackKind::Stk,
            CallbackKind::Result,
            CallbackKind::Timeout,
            CallbackKind::C2bValidation,
            CallbackKind::C2bConfirmation,
            CallbackKind::PlatformC2bValidation,
            CallbackKind::PlatformC2bConfirmation,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == s)
    }
}

impl fmt::Display for CallbackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What processing a callback did (stored in `mpesa_callbacks.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// A payment succeeded and was applied.
    Applied,
    /// A payment closed unpaid.
    Closed,
    /// A payment went to review.
    Review,
    /// It repeated what was already recorded.
    Duplicate,
    /// No payment matches it (yet).
    Unmatched,
    /// The body could not be read.
    Invalid,
    /// A result for a status query or reversal was recorded.
    Recorded,
    /// A C2B validation request was accepted.
    Accepted,
    /// A C2B validation request was rejected.
    Rejected,
    /// Another processing holds the callback and will record its outcome (never stored).
    InProgress,
}

impl Processed {
    /// Whether this processing changed the payment's status (so this callback is the
    /// one that settled it).
    fn moved_the_payment(self) -> bool {
        matches!(
            self,
            Processed::Applied | Processed::Closed | Processed::Review
        )
    }

    /// Every outcome.
    pub const ALL: [Processed; 9] = [
        Processed::Applied,
        Processed::Closed,
        Processed::Review,
        Processed::Duplicate,
        Processed::Unmatched,
        Processed::Invalid,
        Processed::Recorded,
        Processed::Accepted,
        Processed::Rejected,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Processed::Applied => "applied",
            Processed::Closed => "closed",
            Processed::Review => "review",
            Processed::Duplicate => "duplicate",
            Processed::Unmatched => "unmatched",
            Processed::Invalid => "invalid",
            Processed::Recorded => "recorded",
            Processed::Accepted => "accepted",
            Processed::Rejected => "rejected",
            Processed::InProgress => "in_progress",
        }
    }

    /// The outcome of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Processed::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// What processing one callback found: `(what happened, the payment, why, whether
/// processing is finished)`. Unfinished callbacks are processed again by reconciliation.
pub(crate) type Handled = (Processed, Option<Uuid>, Option<String>, bool);

impl From<&Settlement> for Processed {
    /// What settling a payment from a callback did, as the callback's outcome.
    fn from(settlement: &Settlement) -> Self {
        match settlement {
            Settlement::Changed {
                to: PaymentStatus::Succeeded,
                ..
            } => Processed::Applied,
            Settlement::Changed {
                to: PaymentStatus::NeedsReview,
                ..
            } => Processed::Review,
            Settlement::Changed { .. } => Processed::Closed,
            Settlement::Unchanged { .. } => Processed::Duplicate,
        }
    }
}

/// An STK result (from a callback or a query) as the settle step's [`Outcome`].
pub(crate) fn stk_outcome(code: &str, description: &str, outcome: StkOutcome) -> Outcome {
    let unpaid = |status| Outcome::Unpaid {
        status,
        code: Some(code.to_owned()),
        description: description.to_owned(),
    };
    match outcome {
        StkOutcome::Paid(paid) => Outcome::Paid {
            receipt: paid.receipt,
            amount: paid.amount,
            phone: paid.phone.map(|p| p.as_e164().to_owned()),
            paid_at: paid.transaction_date,
            code: code.to_owned(),
            description: description.to_owned(),
        },
        StkOutcome::Cancelled => unpaid(PaymentStatus::Cancelled),
        StkOutcome::TimedOut => unpaid(PaymentStatus::TimedOut),
        _ => unpaid(PaymentStatus::Failed),
    }
}

impl Payments {
    /// Checks the URL's token and stores the body as received. A wrong token (or an
    /// unknown organization) is `NotFound` and stores nothing.
    pub async fn receive(
        &self,
        org: OrgId,
        token: &str,
        kind: CallbackKind,
        body: &[u8],
        remote_addr: Option<String>,
    ) -> Result<Uuid, Error> {
        if !self.verify_callback_token(org, token).await? {
            return Err(Error::not_found("callback"));
        }
        self.store(Some(org), kind, body, remote_addr).await
    }

    /// Stores a callback body (the first thing done with any callback).
    pub(crate) async fn store(
        &self,
        org: Option<OrgId>,
        kind: CallbackKind,
        body: &[u8],
        remote_addr: Option<String>,
    ) -> Result<Uuid, Error> {
        let id = Uuid::now_v7();
        let now = self.now();
        mpesa_callbacks::Entity::insert(mpesa_callbacks::ActiveModel {
            id: Set(id),
            organization_id: Set(org.map(|o| o.as_uuid())),
            kind: Set(kind.as_str().to_owned()),
            body: Set(body.to_vec()),
            remote_addr: Set(remote_addr),
            payment_id: Set(None),
            outcome: Set(None),
            detail: Set(None),
            received_at: Set(now),
            processed_at: Set(None),
            claimed_until: Set(None),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(db_err)?;
        if let Some(dir) = &self.config.callback_dir {
            // The database copy is the one that counts; the file is for disputes.
            let dir = dir.join(now.format("%Y-%m-%d").to_string());
            let path = dir.join(format!("{id}-{kind}.json"));
            let written = async {
                tokio::fs::create_dir_all(&dir).await?;
                tokio::fs::write(&path, body).await
            }
            .await;
            if let Err(err) = written {
                tracing::error!(callback = %id, path = %path.display(), error = %err, "could not write the callback file");
            }
        }
        Ok(id)
    }

    /// Processes a stored callback: matches it and settles its payment. Does nothing for
    /// a callback already processed.
    pub async fn process_callback(&self, id: Uuid) -> Result<Processed, Error> {
        let row = mpesa_callbacks::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or(Error::not_found("callback"))?;
        if row.processed_at.is_some() {
            return Ok(Processed::Duplicate);
        }
        if !self.claim_callback(id).await? {
            // Another processing (the handler's, a reconciliation pass, another node)
            // holds it; it records the outcome.
            return Ok(Processed::InProgress);
        }
        let kind = CallbackKind::parse(&row.kind)
            .ok_or_else(|| Error::internal(format!("callback {id} has kind {:?}", row.kind)))?;
        let org = row.organization_id.map(OrgId::from_uuid);
        let (processed, payment, detail, done) = match (kind, org) {
            (CallbackKind::Stk, Some(org)) => self.process_stk(org, &row).await?,
            (CallbackKind::Result | CallbackKind::Timeout, Some(org)) => {
                self.process_initiator_result(org, kind, &row).await?
            }
            (CallbackKind::C2bConfirmation | CallbackKind::C2bValidation, Some(org)) => {
                self.process_c2b(org, kind, &row).await?
            }
            (CallbackKind::PlatformC2bConfirmation | CallbackKind::PlatformC2bValidation, _) => {
                self.process_platform_c2b(kind, &row).await?
            }
            (_, None) => (
                Processed::Invalid,
                None,
                Some("no organization".to_owned()),
                true,
            ),
        };
        self.finish_callback(id, (processed, payment, detail, done))
            .await?;
        Ok(processed)
    }

    /// Takes a stored callback for one processing, for [`CLAIM`]: `false` when another
    /// holds it. A processing that crashes or fails leaves the claim to expire, and the
    /// reconciliation loop takes the callback again.
    async fn claim_callback(&self, id: Uuid) -> Result<bool, Error> {
        let now = self.now();
        let claimed = mpesa_callbacks::Entity::update_many()
            .col_expr(
                mpesa_callbacks::Column::ClaimedUntil,
                Expr::value(now + CLAIM),
            )
            .filter(mpesa_callbacks::Column::Id.eq(id))
            .filter(mpesa_callbacks::Column::ProcessedAt.is_null())
            .filter(
                Condition::any()
                    .add(mpesa_callbacks::Column::ClaimedUntil.is_null())
                    .add(mpesa_callbacks::Column::ClaimedUntil.lt(now)),
            )
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(claimed.rows_affected == 1)
    }

    /// Processes a stored callback after the answer to Daraja has gone, with at most
    /// [`PROCESSING_AT_ONCE`] processings running (the others wait), so a burst of
    /// callbacks does not take every database connection from the requests.
    pub fn process_in_background(&self, id: Uuid, scope: crate::tenant_scope::Scope) {
        let payments = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = payments.processing.clone().acquire_owned().await else {
                return;
            };
            let work = payments.process_callback(id);
            let result = match scope {
                crate::tenant_scope::Scope::Organization(org) => {
                    crate::tenant_scope::in_organization(org, work).await
                }
                crate::tenant_scope::Scope::CrossTenant => {
                    crate::tenant_scope::cross_tenant(work).await
                }
            };
            if let Err(err) = result {
                tracing::warn!(callback = %id, error = %err, "processing a callback failed; reconciliation will retry");
            }
        });
    }

    /// Records what processing a callback found; sets `processed_at` when it is finished.
    /// A callback already finished is left as it is.
    pub(crate) async fn finish_callback(&self, id: Uuid, handled: Handled) -> Result<(), Error> {
        let (processed, payment, detail, done) = handled;
        let mut update = mpesa_callbacks::Entity::update_many()
            .col_expr(
                mpesa_callbacks::Column::Outcome,
                Expr::value(processed.as_str()),
            )
            .col_expr(mpesa_callbacks::Column::PaymentId, Expr::value(payment))
            .col_expr(
                mpesa_callbacks::Column::Detail,
                Expr::value(detail.map(|d| d.chars().take(255).collect::<String>())),
            );
        if done {
            update = update.col_expr(
                mpesa_callbacks::Column::ProcessedAt,
                Expr::value(self.now()),
            );
        }
        // Released: a callback not finished (an STK result waiting for its payment) is
        // taken again by the next reconciliation pass.
        update = update.col_expr(
            mpesa_callbacks::Column::ClaimedUntil,
            Expr::value(None::<chrono::DateTime<chrono::Utc>>),
        );
        // Only the first processing to finish records its outcome, except that one which
        // moved the payment replaces a `duplicate` written meanwhile by a concurrent
        // processing of this same callback (the reconciliation loop takes callbacks left
        // unprocessed for a while, including ones whose first processing is still
        // running): that `duplicate` only saw this processing's own change.
        let mut open = Condition::any().add(mpesa_callbacks::Column::ProcessedAt.is_null());
        if processed.moved_the_payment() {
            open = open.add(mpesa_callbacks::Column::Outcome.eq(Processed::Duplicate.as_str()));
        }
        update
            .filter(mpesa_callbacks::Column::Id.eq(id))
            .filter(open)
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Processes an STK push result.
    async fn process_stk(
        &self,
        org: OrgId,
        row: &mpesa_callbacks::Model,
    ) -> Result<Handled, Error> {
        let callback = match parse_stk_callback(&row.body) {
            Ok(callback) => callback,
            Err(err) => {
                tracing::warn!(callback = %row.id, reason = err.reason(), "unreadable STK callback stored");
                return Ok((
                    Processed::Invalid,
                    None,
                    Some(err.reason().to_owned()),
                    true,
                ));
            }
        };
        let payment = payments::Entity::find()
            .filter(payments::Column::OrganizationId.eq(org.as_uuid()))
            .filter(payments::Column::CheckoutRequestId.eq(callback.checkout_request_id.as_str()))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        let Some(payment) = payment else {
            let give_up = self.now() - row.received_at >= UNMATCHED_RETRY_WINDOW;
            if give_up {
                tracing::warn!(callback = %row.id, checkout_request_id = %callback.checkout_request_id, "STK callback matches no payment: flagged");
            }
            return Ok((
                Processed::Unmatched,
                None,
                Some(format!(
                    "no payment has CheckoutRequestID {}",
                    callback.checkout_request_id
                )),
                give_up,
            ));
        };
        let outcome = stk_outcome(
            callback.result_code.as_str(),
            &callback.result_desc,
            callback.outcome,
        );
        let settlement = self
            .settle(org, payment.id, outcome, Source::Callback)
            .await?;
        let processed = Processed::from(&settlement);
        Ok((processed, Some(payment.id), None, true))
    }

    /// Processes callbacks left unprocessed that arrived before `before`, oldest first.
    pub(crate) async fn process_left_over(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<usize, Error> {
        let ids: Vec<Uuid> = mpesa_callbacks::Entity::find()
            .select_only()
            .column(mpesa_callbacks::Column::Id)
            .filter(mpesa_callbacks::Column::ProcessedAt.is_null())
            .filter(mpesa_callbacks::Column::ReceivedAt.lt(before))
            .order_by_asc(mpesa_callbacks::Column::ReceivedAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut done = 0;
        for id in ids {
            match self.process_callback(id).await {
                Ok(_) => done += 1,
                Err(err) => {
                    tracing::warn!(callback = %id, error = %err, "processing a stored callback failed; will retry")
                }
            }
        }
        Ok(done)
    }
}

/// A stored callback as operators see it (`GET /admin/mpesa/callbacks`).
#[derive(Debug, Clone, serde::Serialize, PartialEq, utoipa::ToSchema)]
pub struct StoredCallback {
    /// The callback id.
    pub id: Uuid,
    /// The organization of its URL, or the one it was matched to (platform C2B); empty
    /// for a platform payment that matches no organization.
    pub organization_id: Option<Uuid>,
    /// Which callback it is.
    pub kind: String,
    /// What processing did (empty until processed).
    pub outcome: Option<String>,
    /// Why, in words.
    pub detail: Option<String>,
    /// The payment it was matched to.
    pub payment_id: Option<Uuid>,
    /// Where it came from.
    pub remote_addr: Option<String>,
    /// Received.
    pub received_at: DateTime<Utc>,
    /// Processed.
    pub processed_at: Option<DateTime<Utc>>,
    /// The body as received: its JSON, or its text when it is not JSON.
    pub body: serde_json::Value,
}

impl StoredCallback {
    fn from_row(row: mpesa_callbacks::Model) -> Self {
        let body = serde_json::from_slice(&row.body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&row.body).into_owned())
        });
        Self {
            id: row.id,
            organization_id: row.organization_id,
            kind: row.kind,
            outcome: row.outcome,
            detail: row.detail,
            payment_id: row.payment_id,
            remote_addr: row.remote_addr,
            received_at: row.received_at,
            processed_at: row.processed_at,
            body,
        }
    }
}

/// Filters of the operators' callback list.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallbackFilter {
    /// Only with this outcome.
    pub outcome: Option<Processed>,
    /// Only of this kind.
    pub kind: Option<CallbackKind>,
}

impl Payments {
    /// Every organization's stored callbacks and the platform's, newest first, in keyset
    /// pages. For operators only: the caller checks, and runs it across tenants.
    pub async fn stored_callbacks(
        &self,
        filter: CallbackFilter,
        page: &edge_core::PageRequest,
    ) -> Result<edge_core::Page<StoredCallback>, Error> {
        let after: Option<Uuid> = page.after().map_err(Error::from)?;
        let mut select = mpesa_callbacks::Entity::find();
        if let Some(outcome) = filter.outcome {
            select = select.filter(mpesa_callbacks::Column::Outcome.eq(outcome.as_str()));
        }
        if let Some(kind) = filter.kind {
            select = select.filter(mpesa_callbacks::Column::Kind.eq(kind.as_str()));
        }
        if let Some(after) = after {
            select = select.filter(mpesa_callbacks::Column::Id.lt(after));
        }
        let limit = page.limit();
        let rows = select
            .order_by_desc(mpesa_callbacks::Column::Id)
            .limit(u64::from(limit) + 1)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let items = rows.into_iter().map(StoredCallback::from_row).collect();
        Ok(edge_core::Page::from_overfetch(items, limit, |c| c.id))
    }
}
