//! Moving a payment out of `pending`, and applying a success.
//!
//! Every source of news (the push itself, a callback, an STK query, an operator) ends
//! here. The move is a conditional update on the status read, written with its event in
//! one transaction: of two concurrent deliveries only one changes the row; the other
//! sees the new status and changes nothing. Applying a success (the wallet credit, the
//! subscription period) is keyed by the payment id, so a repeat, or the reconciliation
//! loop finishing an application a crash interrupted, never applies it twice.

use chrono::{DateTime, Utc};
use edge_core::{Account, Error, IdempotencyKey, Money, OrgId, TransferRequest};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::json;
use uuid::Uuid;

use super::{Payment, PaymentStatus, Payments, Purpose, db_err};
use crate::db::begin_write;
use crate::entities::payments;

/// What M-Pesa (or an operator) says happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Paid. Each detail is optional: an STK query reports none of them.
    Paid {
        /// The M-Pesa receipt.
        receipt: Option<String>,
        /// The amount reported paid.
        amount: Option<Money>,
        /// The number reported paid from (E.164 when known).
        phone: Option<String>,
        /// When.
        paid_at: Option<DateTime<Utc>>,
        /// The result code and description.
        code: String,
        /// The result description.
        description: String,
    },
    /// Not paid.
    Unpaid {
        /// `failed`, `cancelled` or `timed_out`.
        status: PaymentStatus,
        /// Daraja's result code, if it gave one.
        code: Option<String>,
        /// Why, in words.
        description: String,
    },
    /// We could not learn the outcome: an operator must look.
    Unknown {
        /// Why.
        reason: String,
    },
}

/// Where the news came from (kept in the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Daraja's answer to the push.
    Push,
    /// A callback.
    Callback,
    /// Reconciliation's STK query.
    Query,
    /// An operator's decision.
    Operator,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Push => "push",
            Source::Callback => "callback",
            Source::Query => "stk_query",
            Source::Operator => "operator",
        }
    }
}

/// What [`Payments::settle`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// The payment moved.
    Changed {
        /// From this status.
        from: PaymentStatus,
        /// To this one.
        to: PaymentStatus,
    },
    /// Nothing changed: the news repeats (or contradicts) what is already recorded.
    Unchanged {
        /// The payment's status.
        status: PaymentStatus,
    },
}

/// The decision for one reading of the row.
struct Decision {
    to: PaymentStatus,
    review_reason: Option<String>,
    keep_receipt: bool,
}

impl Payments {
    /// Records `outcome` for a payment, once. See the module documentation.
    pub async fn settle(
        &self,
        org: OrgId,
        id: Uuid,
        outcome: Outcome,
        source: Source,
    ) -> Result<Settlement, Error> {
        // A lost race means someone else moved the row between our read and our write:
        // read again and decide again (the second reading always sees a final state).
        for _ in 0..3 {
            let row = self.row(org, id).await?;
            let from: PaymentStatus = row.status.parse()?;
            let Some(decision) = self.decide(org, &row, from, &outcome).await? else {
                if from.is_unpaid() || from == PaymentStatus::Succeeded {
                    let contradicts = match &outcome {
                        Outcome::Paid { .. } => false,
                        Outcome::Unpaid { .. } | Outcome::Unknown { .. } => {
                            from == PaymentStatus::Succeeded
                        }
                    };
                    if contradicts {
                        tracing::warn!(payment = %id, status = %from, source = source.as_str(), "news of a failure for a payment already succeeded: ignored");
                    }
                }
                return Ok(Settlement::Unchanged { status: from });
            };
            let now = self.now();
            let mut update = payments::Entity::update_many()
                .col_expr(payments::Column::Status, Expr::value(decision.to.as_str()))
                .col_expr(payments::Column::UpdatedAt, Expr::value(now))
                .col_expr(
                    payments::Column::NextCheckAt,
                    Expr::value(None::<DateTime<Utc>>),
                )
                .col_expr(payments::Column::CompletedAt, Expr::value(now))
                .col_expr(
                    payments::Column::ReviewReason,
                    Expr::value(decision.review_reason.clone()),
                );
            match &outcome {
                Outcome::Paid {
                    receipt,
                    amount,
                    phone,
                    paid_at,
                    code,
                    description,
                } => {
                    if decision.keep_receipt {
                        update = update
                            .col_expr(payments::Column::Receipt, Expr::value(receipt.clone()));
                    }
                    update = update
                        .col_expr(
                            payments::Column::PaidAmountMinor,
                            Expr::value(amount.map(|a| a.minor())),
                        )
                        .col_expr(payments::Column::PaidPhone, Expr::value(phone.clone()))
                        .col_expr(payments::Column::PaidAt, Expr::value(*paid_at))
                        .col_expr(payments::Column::ResultCode, Expr::value(code.clone()))
                        .col_expr(
                            payments::Column::ResultDescription,
                            Expr::value(description.clone()),
                        );
                }
                Outcome::Unpaid {
                    code, description, ..
                } => {
                    update = update
                        .col_expr(payments::Column::ResultCode, Expr::value(code.clone()))
                        .col_expr(
                            payments::Column::ResultDescription,
                            Expr::value(description.clone()),
                        );
                }
                Outcome::Unknown { .. } => {}
            }
            let txn = begin_write(&self.db).await.map_err(db_err)?;
            let result = update
                .filter(payments::Column::OrganizationId.eq(org.as_uuid()))
                .filter(payments::Column::Id.eq(id))
                .filter(payments::Column::Status.eq(from.as_str()))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            if result.rows_affected != 1 {
                txn.rollback().await.map_err(db_err)?;
                continue;
            }
            crate::events::record(
                &txn,
                org,
                "payment.status_changed",
                ("payment", id),
                json!({
                    "id": id,
                    "purpose": row.purpose,
                    "from": from,
                    "to": decision.to,
                    "amount": Money::from_minor(row.amount_minor, row.currency.parse().map_err(Error::from)?),
                    "source": source.as_str(),
                    "review_reason": decision.review_reason,
                }),
                now,
            )
            .await
            .map_err(db_err)?;
            txn.commit().await.map_err(db_err)?;
            tracing::info!(payment = %id, %from, to = %decision.to, source = source.as_str(), "payment settled");
            if decision.to == PaymentStatus::Succeeded {
                self.apply(org, id).await?;
            }
            return Ok(Settlement::Changed {
                from,
                to: decision.to,
            });
        }
        Err(Error::Conflict(format!(
            "payment {id} kept changing while being settled; try again"
        )))
    }

    /// Where `outcome` takes a payment that is `from`, or `None` for "nowhere".
    async fn decide(
        &self,
        org: OrgId,
        row: &payments::Model,
        from: PaymentStatus,
        outcome: &Outcome,
    ) -> Result<Option<Decision>, Error> {
        let review = |reason: String, keep_receipt: bool| {
            Some(Decision {
                to: PaymentStatus::NeedsReview,
                review_reason: Some(reason),
                keep_receipt,
            })
        };
        Ok(match (from, outcome) {
            (
                PaymentStatus::Pending,
                Outcome::Paid {
                    receipt,
                    amount,
                    phone,
                    ..
                },
            ) => {
                let mut problems = Vec::new();
                let mut keep_receipt = true;
                if let Some(paid) = amount
                    && (paid.minor() != row.amount_minor || paid.currency().code() != row.currency)
                {
                    problems.push(format!(
                        "M-Pesa reports {} {} paid but {} was asked",
                        paid.to_decimal_string(),
                        paid.currency().code(),
                        Money::from_minor(row.amount_minor, paid.currency()).to_decimal_string()
                    ));
                }
                if let (Some(paid_from), Some(asked)) = (phone, &row.phone)
                    && paid_from != asked
                {
                    problems.push(format!(
                        "M-Pesa reports it paid from {paid_from} but {asked} was asked"
                    ));
                }
                if let Some(receipt) = receipt
                    && let Some(other) = payments::Entity::find()
                        .filter(payments::Column::OrganizationId.eq(org.as_uuid()))
                        .filter(payments::Column::Receipt.eq(receipt.as_str()))
                        .filter(payments::Column::Id.ne(row.id))
                        .one(&self.db)
                        .await
                        .map_err(db_err)?
                {
                    keep_receipt = false;
                    problems.push(format!(
                        "receipt {receipt} is already recorded on payment {}",
                        other.id
                    ));
                }
                if problems.is_empty() {
                    Some(Decision {
                        to: PaymentStatus::Succeeded,
                        review_reason: None,
                        keep_receipt,
                    })
                } else {
                    review(problems.join("; "), keep_receipt)
                }
            }
            (PaymentStatus::Pending, Outcome::Unpaid { status, .. }) => Some(Decision {
                to: *status,
                review_reason: None,
                keep_receipt: false,
            }),
            (PaymentStatus::Pending, Outcome::Unknown { reason }) => review(reason.clone(), false),
            // Money arriving for a payment we closed as unpaid must not be lost or
            // credited blindly.
            (closed, Outcome::Paid { .. }) if closed.is_unpaid() => review(
                format!("M-Pesa reports it paid after it was closed as {closed}"),
                true,
            ),
            _ => None,
        })
    }

    /// Carries out a success: credits the wallet (top-ups), extends the subscription
    /// (subscriptions); collections need nothing (the money is in the tenant's own
    /// account). Safe to call again: it does nothing once `applied_at` is set, and each
    /// effect is keyed by the payment id.
    pub(crate) async fn apply(&self, org: OrgId, id: Uuid) -> Result<(), Error> {
        let row = self.row(org, id).await?;
        if row.status != PaymentStatus::Succeeded.as_str() || row.applied_at.is_some() {
            return Ok(());
        }
        let payment = Payment::from_row(&row)?;
        let transfer = match payment.purpose {
            Purpose::WalletTopUp => {
                self.ledger
                    .open_wallet(org, payment.amount.currency())
                    .await?;
                let key =
                    IdempotencyKey::new(format!("mpesa-payment:{id}")).map_err(Error::internal)?;
                let outcome = self
                    .ledger
                    .transfer(
                        org,
                        TransferRequest::new(
                            Account::MpesaClearing,
                            Account::Wallet(org),
                            payment.amount,
                            key,
                        )
                        .metadata(json!({
                            "kind": "mpesa_top_up",
                            "payment_id": id,
                            "receipt": payment.mpesa.receipt,
                        })),
                    )
                    .await?;
                Some(outcome.value.id.as_uuid())
            }
            Purpose::Subscription => {
                let plan = payment.plan.as_deref().ok_or_else(|| {
                    Error::internal(format!("subscription payment {id} has no plan"))
                })?;
                crate::billing::subscriptions::apply_paid_period(
                    &self.db,
                    org,
                    plan,
                    id,
                    payment.amount,
                    payment.mpesa.paid_at.unwrap_or_else(|| self.now()),
                )
                .await?;
                None
            }
            Purpose::Collection => None,
        };
        payments::Entity::update_many()
            .col_expr(payments::Column::AppliedAt, Expr::value(self.now()))
            .col_expr(payments::Column::LedgerTransferId, Expr::value(transfer))
            .filter(payments::Column::OrganizationId.eq(org.as_uuid()))
            .filter(payments::Column::Id.eq(id))
            .filter(payments::Column::AppliedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

/// An operator's decision on a payment in review.
///
/// A top-up that M-Pesa reversed after its credit was applied, and that the wallet could
/// not give back (see [`super::requests`]), is in review with its credit applied. For it
/// the decisions mean: `accept`, the credit stands (written off); `reject`, the credit is
/// taken back from the wallet now (402 while the wallet still cannot cover it). Either way
/// the payment ends `reversed`, since the money is back with the payer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Review {
    /// The money arrived as it should count: the payment succeeds and is applied.
    Accept,
    /// It should not count (refunded outside Edge, or never arrived): the payment fails.
    Reject,
}

impl Payments {
    /// Ends a review: `needs_review` → `succeeded` (then applied) or `failed`, once, with
    /// the operator's reason in the event.
    pub async fn resolve_review(
        &self,
        org: OrgId,
        id: Uuid,
        review: Review,
        reason: &str,
        operator: Option<Uuid>,
    ) -> Result<Payment, Error> {
        let row = self.row(org, id).await?;
        if row.status != PaymentStatus::NeedsReview.as_str() {
            return Err(Error::Conflict(format!(
                "payment {id} is {}, not in review",
                row.status
            )));
        }
        // Only a reversal puts an applied payment in review: its credit is still there.
        let reversed = row.applied_at.is_some();
        let to = match review {
            _ if reversed => PaymentStatus::Reversed,
            Review::Accept => PaymentStatus::Succeeded,
            Review::Reject => PaymentStatus::Failed,
        };
        let mut debit = None;
        if reversed && review == Review::Reject && row.ledger_transfer_id.is_some() {
            let amount =
                Money::from_minor(row.amount_minor, row.currency.parse().map_err(Error::from)?);
            let key =
                IdempotencyKey::new(format!("mpesa-reversal:{id}")).map_err(Error::internal)?;
            let transfer = self
                .ledger
                .transfer(
                    org,
                    TransferRequest::new(Account::Wallet(org), Account::MpesaClearing, amount, key)
                        .metadata(json!({
                            "kind": "mpesa_reversal",
                            "payment_id": id,
                            "receipt": row.receipt,
                            "operator": operator,
                        })),
                )
                .await?;
            debit = Some(transfer.value.id.as_uuid());
        }
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let result = payments::Entity::update_many()
            .col_expr(payments::Column::Status, Expr::value(to.as_str()))
            .col_expr(payments::Column::UpdatedAt, Expr::value(now))
            .filter(payments::Column::OrganizationId.eq(org.as_uuid()))
            .filter(payments::Column::Id.eq(id))
            .filter(payments::Column::Status.eq(PaymentStatus::NeedsReview.as_str()))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        if result.rows_affected != 1 {
            txn.rollback().await.map_err(db_err)?;
            return Err(Error::Conflict(format!(
                "payment {id} was resolved by someone else"
            )));
        }
        crate::events::record(
            &txn,
            org,
            "payment.status_changed",
            ("payment", id),
            json!({
                "id": id,
                "purpose": row.purpose,
                "from": PaymentStatus::NeedsReview,
                "to": to,
                "amount": Money::from_minor(row.amount_minor, row.currency.parse().map_err(Error::from)?),
                "source": Source::Operator.as_str(),
                "review_reason": row.review_reason,
                "resolution": reason,
                "operator": operator,
                "decision": review,
                "ledger_transfer_id": debit,
            }),
            now,
        )
        .await
        .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        if to == PaymentStatus::Succeeded {
            self.apply(org, id).await?;
        }
        self.get(org, id).await
    }
}
