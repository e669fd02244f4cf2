//! Starting a payment: a pending row first, then the STK push, then Daraja's ids.
//!
//! The row is written before Daraja is called, so a crash or a time-out never leaves a
//! push we know nothing about. If Daraja refuses the push the payment is `failed` at once;
//! if the push may have reached Safaricom without an answer (a time-out), it stays
//! `pending` and reconciliation decides.

use edge_core::{Error, Money, Msisdn, OrgId};
use edge_mpesa::StkPush;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::json;
use sha2::Digest as _;
use uuid::Uuid;

use super::accounts::upstream;
use super::{Payment, PaymentStatus, Payments, Purpose, db_err, is_unique_violation};
use crate::db::begin_write;
use crate::entities::payments;

/// What to ask a payer for.
#[derive(Debug, Clone)]
pub struct NewPayment {
    /// What it is for.
    pub purpose: Purpose,
    /// How much (whole KES).
    pub amount: Money,
    /// Who pays.
    pub phone: Msisdn,
    /// The plan, for a subscription.
    pub plan_code: Option<String>,
    /// The CRM relationship, for a collection.
    pub relationship_id: Option<Uuid>,
    /// Shown to the payer (at most 12 characters).
    pub account_reference: String,
    /// `TransactionDesc` (at most 13 characters).
    pub description: String,
    /// The request's `Idempotency-Key`, if any.
    pub idempotency_key: Option<String>,
    /// Who asks.
    pub created_by: Option<Uuid>,
}

impl NewPayment {
    /// A digest of what makes two requests "the same payment" for an idempotency key.
    fn fingerprint(&self) -> String {
        let canonical = json!({
            "purpose": self.purpose.as_str(),
            "amount": self.amount.minor(),
            "currency": self.amount.currency().code(),
            "phone": self.phone.as_e164(),
            "plan": self.plan_code,
            "relationship": self.relationship_id,
            "account_reference": self.account_reference,
        });
        hex::encode(sha2::Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// The result of [`Payments::start`].
#[derive(Debug)]
pub struct Started {
    /// The payment as it stands.
    pub payment: Payment,
    /// True when an earlier request with the same idempotency key made it.
    pub replayed: bool,
    /// Set when Daraja refused the push (the payment is `failed`) or did not answer (it
    /// stays `pending` for reconciliation).
    pub upstream_error: Option<Error>,
}

/// The largest amount one STK push may ask for (KES).
pub const MAX_STK_AMOUNT_KES: i64 = 250_000;

/// An amount one STK push can ask for: whole KES, from 1 to [`MAX_STK_AMOUNT_KES`].
pub fn check_amount(field: &str, amount: Money) -> Result<(), Error> {
    if amount.currency() != edge_core::Currency::Kes {
        return Err(Error::invalid(field, "M-Pesa payments are in KES"));
    }
    match amount.whole_major().filter(|kes| *kes >= 1) {
        Some(kes) if kes <= MAX_STK_AMOUNT_KES => Ok(()),
        Some(_) => Err(Error::invalid(
            field,
            format!("M-Pesa takes at most {MAX_STK_AMOUNT_KES} KES in one payment"),
        )),
        None => Err(Error::invalid(
            field,
            "must be a whole number of KES, at least 1 (M-Pesa takes no cents)",
        )),
    }
}

impl Payments {
    /// Asks `new.phone` to pay, by STK push to the platform's account (top-ups,
    /// subscriptions) or the organization's own (collections).
    pub async fn start(&self, org: OrgId, new: NewPayment) -> Result<Started, Error> {
        check_amount("amount", new.amount)?;
        let fingerprint = new.fingerprint();
        if let Some(key) = &new.idempotency_key
            && let Some(existing) = self.by_idempotency_key(org, key).await?
        {
            return replay(existing, &fingerprint);
        }
        let account = if new.purpose.pays_the_platform() {
            self.platform_account()?
        } else {
            self.tenant_account(org).await?
        };
        let callback_url = self.callback_urls(org).await?.stk;

        let now = self.now();
        let id = Uuid::now_v7();
        let mut row = payments::ActiveModel::pending(
            org.as_uuid(),
            id,
            new.purpose.as_str(),
            "stk",
            new.amount,
            now,
        );
        row.phone = Set(Some(new.phone.as_e164().to_owned()));
        row.account_reference = Set(new.account_reference.clone());
        row.description = Set(new.description.clone());
        row.plan_code = Set(new.plan_code.clone());
        row.relationship_id = Set(new.relationship_id);
        row.idempotency_key = Set(new.idempotency_key.clone());
        row.request_fingerprint = Set(Some(fingerprint.clone()));
        row.next_check_at = Set(Some(
            now + chrono::TimeDelta::from_std(self.config.reconcile_after)
                .unwrap_or(chrono::TimeDelta::MAX),
        ));
        row.created_by = Set(new.created_by);
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        match payments::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
        {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) && new.idempotency_key.is_some() => {
                drop(txn);
                // A concurrent request with the same key won the race.
                let key = new.idempotency_key.as_deref().unwrap_or_default();
                let existing = self
                    .by_idempotency_key(org, key)
                    .await?
                    .ok_or_else(|| Error::internal(e))?;
                return replay(existing, &fingerprint);
            }
            Err(e) => return Err(db_err(e)),
        }
        crate::events::record(
            &txn,
            org,
            "payment.created",
            ("payment", id),
            json!({ "id": id, "purpose": new.purpose, "status": PaymentStatus::Pending, "amount": new.amount }),
            now,
        )
        .await
        .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;

        let push = StkPush::new(
            new.phone.clone(),
            new.amount,
            &new.account_reference,
            callback_url,
        )
        .description(&new.description);
        let client = self.client(account.production);
        let upstream_error = match push.send(client, &account.credentials).await {
            Ok(accepted) => {
                payments::Entity::update_many()
                    .col_expr(
                        payments::Column::MerchantRequestId,
                        Expr::value(accepted.merchant_request_id),
                    )
                    .col_expr(
                        payments::Column::CheckoutRequestId,
                        Expr::value(accepted.checkout_request_id),
                    )
                    .col_expr(payments::Column::UpdatedAt, Expr::value(self.now()))
                    .filter(payments::Column::OrganizationId.eq(org.as_uuid()))
                    .filter(payments::Column::Id.eq(id))
                    .filter(payments::Column::CheckoutRequestId.is_null())
                    .exec(&self.db)
                    .await
                    .map_err(db_err)?;
                None
            }
            Err(err) if !err.may_have_been_sent() => {
                tracing::warn!(payment = %id, error = %err, "Daraja refused an STK push");
                let error = match &err {
                    edge_mpesa::Error::InvalidRequest { field, reason } => {
                        Error::invalid(field.to_string(), reason.clone())
                    }
                    other => upstream(other),
                };
                self.settle(
                    org,
                    id,
                    super::settle::Outcome::Unpaid {
                        status: PaymentStatus::Failed,
                        code: None,
                        description: format!("Daraja refused the push: {err}"),
                    },
                    super::settle::Source::Push,
                )
                .await?;
                Some(error)
            }
            Err(err) => {
                tracing::warn!(payment = %id, error = %err, "no answer to an STK push; reconciliation will follow it up");
                payments::Entity::update_many()
                    .col_expr(
                        payments::Column::ResultDescription,
                        Expr::value(format!("no answer from Daraja to the push: {err}")),
                    )
                    .col_expr(payments::Column::UpdatedAt, Expr::value(self.now()))
                    .filter(payments::Column::OrganizationId.eq(org.as_uuid()))
                    .filter(payments::Column::Id.eq(id))
                    .exec(&self.db)
                    .await
                    .map_err(db_err)?;
                Some(upstream(&err))
            }
        };
        Ok(Started {
            payment: self.get(org, id).await?,
            replayed: false,
            upstream_error,
        })
    }

    async fn by_idempotency_key(
        &self,
        org: OrgId,
        key: &str,
    ) -> Result<Option<payments::Model>, Error> {
        payments::Entity::find()
            .filter(payments::Column::OrganizationId.eq(org.as_uuid()))
            .filter(payments::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await
            .map_err(db_err)
    }
}

fn replay(existing: payments::Model, fingerprint: &str) -> Result<Started, Error> {
    if existing.request_fingerprint.as_deref() != Some(fingerprint) {
        return Err(Error::IdempotencyMismatch);
    }
    Ok(Started {
        payment: Payment::from_row(&existing)?,
        replayed: true,
        upstream_error: None,
    })
}
