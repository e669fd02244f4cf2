//! Following up payments whose callback did not come.
//!
//! Each pass ([`Payments::reconcile_once`]):
//!
//! 1. processes callbacks stored but not processed (a crash between storing and
//!    processing, or an STK result that arrived before the push's ids were stored);
//! 2. applies successes whose effect was not carried out (a crash after the status
//!    changed), and successful reversals whose effect was not (see [`super::requests`]);
//! 3. asks Daraja (STK query) about payments pending for longer than
//!    `EDGE_MPESA_RECONCILE_AFTER_SECS`, backing off between attempts, and settles them
//!    when the answer is final. A payment Daraja still calls "being processed" after
//!    `EDGE_MPESA_GIVE_UP_AFTER_SECS` is closed as timed out (the prompt expired long
//!    ago); one we could not ask about at all goes to review.
//!
//! Everything is in the database, so a restart loses nothing. Several nodes may run it at
//! once: a node *claims* a payment by moving its `next_check_at` forward with a
//! conditional update, so only one node queries it per round, and settling is
//! idempotent anyway.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use edge_core::{Error, OrgId};
use edge_mpesa::{StkQuery, StkQueryOutcome};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait as _, EntityTrait as _, ExprTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _,
};

use super::inbox::stk_outcome;
use super::settle::{Outcome, Source};
use super::{PaymentStatus, Payments, Purpose, db_err};
use crate::entities::payments;

/// How many payments one pass looks at, per step.
const BATCH: u64 = 100;

/// How long a stored callback may wait for its first processing before a pass takes it.
const LEFT_OVER_AFTER: TimeDelta = TimeDelta::seconds(2);

/// The wait before the `attempt`-th STK query of a payment (the first is 0): 30 s,
/// doubling, at most 10 minutes. Daraja throttles eager pollers.
pub fn backoff(attempt: i32) -> TimeDelta {
    let doublings = attempt.clamp(0, 5) as u32;
    TimeDelta::seconds(Ord::min(30i64 << doublings, 600))
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Stored callbacks processed.
    pub callbacks: usize,
    /// Successes applied.
    pub applied: usize,
    /// Successful reversals applied.
    pub reversals: usize,
    /// Payments asked about.
    pub queried: usize,
    /// Payments settled (final answer, or given up).
    pub settled: usize,
}

impl Payments {
    /// One reconciliation pass. See the module documentation.
    pub async fn reconcile_once(&self) -> Result<Pass, Error> {
        let now = self.now();
        let mut pass = Pass {
            callbacks: self.process_left_over(now - LEFT_OVER_AFTER, BATCH).await?,
            ..Pass::default()
        };

        let unapplied: Vec<(uuid::Uuid, uuid::Uuid)> = payments::Entity::find()
            .select_only()
            .column(payments::Column::OrganizationId)
            .column(payments::Column::Id)
            .filter(payments::Column::Status.eq(PaymentStatus::Succeeded.as_str()))
            .filter(payments::Column::AppliedAt.is_null())
            .limit(BATCH)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        for (org, id) in unapplied {
            match self.apply(OrgId::from_uuid(org), id).await {
                Ok(()) => pass.applied += 1,
                Err(err) => {
                    tracing::error!(payment = %id, error = %err, "applying a succeeded payment failed; will retry");
                }
            }
        }

        pass.reversals = self.apply_left_over_reversals(BATCH).await?;

        let due: Vec<payments::Model> = payments::Entity::find()
            .filter(payments::Column::Status.eq(PaymentStatus::Pending.as_str()))
            .filter(payments::Column::NextCheckAt.lte(now))
            .order_by_asc(payments::Column::NextCheckAt)
            .limit(BATCH)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        for payment in due {
            if !self.claim(&payment, now).await? {
                continue;
            }
            pass.queried += 1;
            match self.follow_up(&payment, now).await {
                Ok(true) => pass.settled += 1,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(payment = %payment.id, error = %err, "reconciling a payment failed; will retry");
                }
            }
        }
        Ok(pass)
    }

    /// Takes the payment for this round: only the node whose conditional update moves
    /// `next_check_at` queries it.
    async fn claim(&self, payment: &payments::Model, now: DateTime<Utc>) -> Result<bool, Error> {
        let result = payments::Entity::update_many()
            .col_expr(
                payments::Column::NextCheckAt,
                Expr::value(now + backoff(payment.check_attempts)),
            )
            .col_expr(
                payments::Column::CheckAttempts,
                Expr::col(payments::Column::CheckAttempts).add(1),
            )
            .filter(payments::Column::OrganizationId.eq(payment.organization_id))
            .filter(payments::Column::Id.eq(payment.id))
            .filter(payments::Column::Status.eq(PaymentStatus::Pending.as_str()))
            .filter(payments::Column::NextCheckAt.eq(payment.next_check_at))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(result.rows_affected == 1)
    }

    /// Asks Daraja about one pending payment; `true` when it was settled.
    async fn follow_up(
        &self,
        payment: &payments::Model,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let org = OrgId::from_uuid(payment.organization_id);
        let give_up_after =
            TimeDelta::from_std(self.config.give_up_after).unwrap_or(TimeDelta::MAX);
        let overdue = now - payment.created_at >= give_up_after;
        let Some(checkout) = payment.checkout_request_id.clone() else {
            // The push never got an answer, so there is nothing to ask about.
            if overdue {
                self.settle(
                    org,
                    payment.id,
                    Outcome::Unknown {
                        reason:
                            "Daraja never answered the push, so its outcome cannot be queried; \
                                 check the M-Pesa statement"
                                .into(),
                    },
                    Source::Query,
                )
                .await?;
                return Ok(true);
            }
            return Ok(false);
        };
        let purpose: Purpose = payment.purpose.parse()?;
        let account = if purpose.pays_the_platform() {
            self.platform_account()?
        } else {
            self.tenant_account(org).await?
        };
        let answer = StkQuery::new(checkout)
            .send(self.client(account.production), &account.credentials)
            .await;
        let outcome = match answer {
            Ok(StkQueryOutcome::Finished(result)) => stk_outcome(
                result.result_code.as_str(),
                &result.result_desc,
                result.outcome,
            ),
            Ok(StkQueryOutcome::Pending) if overdue => Outcome::Unpaid {
                status: PaymentStatus::TimedOut,
                code: None,
                description: format!(
                    "still being processed after {}; the prompt has expired",
                    humanize(self.config.give_up_after)
                ),
            },
            // `Pending`, or an answer this server does not know yet: ask again later.
            Ok(_) => return Ok(false),
            Err(err) if overdue => Outcome::Unknown {
                reason: format!(
                    "could not confirm the outcome with M-Pesa for {}: {err}",
                    humanize(self.config.give_up_after)
                ),
            },
            Err(err) => {
                tracing::info!(payment = %payment.id, error = %err, "STK query failed; will retry");
                return Ok(false);
            }
        };
        self.settle(org, payment.id, outcome, Source::Query).await?;
        Ok(true)
    }

    /// Runs [`Payments::reconcile_once`] forever, every `every`.
    pub async fn reconcile_forever(self, every: Duration) {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match crate::tenant_scope::cross_tenant(self.reconcile_once()).await {
                Ok(pass) if pass != Pass::default() => {
                    tracing::info!(?pass, "payments reconciled");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "payment reconciliation failed"),
            }
        }
    }
}

fn humanize(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_back_off_from_thirty_seconds_to_ten_minutes() {
        let waits: Vec<i64> = (0..8).map(|n| backoff(n).num_seconds()).collect();
        assert_eq!(waits, vec![30, 60, 120, 240, 480, 600, 600, 600]);
    }
}
