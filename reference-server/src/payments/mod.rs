//! M-Pesa payments: top-ups and subscriptions paid to the platform, collections paid to a
//! tenant's own shortcode, their callbacks and their reconciliation.
//!
//! # The state machine
//!
//! A payment starts `pending` when we ask Daraja for an STK push and ends in exactly one
//! of `succeeded`, `failed`, `cancelled`, `timed_out` or `needs_review`. The move is one
//! conditional update (`… WHERE status = 'pending'`) in the same transaction as its
//! event, so two deliveries of one callback, or a callback racing reconciliation, change
//! the payment once. A success is then *applied* (the wallet credit, the subscription
//! period) under an idempotency key derived from the payment id, and `applied_at` is set;
//! a crash in between is finished by [`reconcile`], and applying twice changes nothing.
//!
//! A payment lands in `needs_review` instead of `succeeded` when M-Pesa reports a payment
//! that does not match what was asked (amount or phone), when its receipt was already
//! credited, when money arrives for a payment already closed as failed, or when we could
//! not learn the outcome. Nothing is credited until an operator looks.
//!
//! A succeeded payment becomes `reversed` when an M-Pesa reversal of it succeeds (see
//! [`requests`]): the money went back to the payer, and a top-up's wallet credit is taken
//! back through the ledger. When the wallet can no longer cover that, the payment goes to
//! `needs_review` instead, with the reason, and the credit stands until an operator acts.
//!
//! C2B payments (customers paying a paybill on their own, see [`c2b`]) enter the same
//! machine: a `pending` row keyed by the M-Pesa receipt, settled at once as paid.
//!
//! # Where the pieces are
//!
//! - [`accounts`]: the platform's account and tenants' own Daraja settings (sealed);
//! - [`tokens`]: the per-organization token in callback URLs;
//! - [`stk`]: starting a payment;
//! - [`settle`]: moving a payment out of `pending` and applying a success;
//! - [`inbox`]: receiving callbacks (stored raw before anything else);
//! - [`reconcile`]: following up payments whose callback did not come;
//! - [`c2b`]: customers paying a paybill or till on their own;
//! - [`requests`]: transaction status queries and reversals.

pub mod accounts;
pub mod c2b;
pub mod inbox;
pub mod reconcile;
pub mod requests;
pub mod settle;
pub mod stk;
pub mod tokens;

pub(crate) use crate::db::{db_err, is_unique_violation};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use edge_core::{Currency, Error, Money, OrgId, SharedClock};
use edge_mpesa::DarajaClient;
use edge_tenancy::Keyring;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use secrecy::SecretString;
use serde::Serialize;
use uuid::Uuid;

use self::requests::MpesaRequest;
use crate::config::MpesaConfig;
use crate::entities::payments;
use crate::events::Event;

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Asked for; M-Pesa has not told us the outcome yet.
    Pending,
    /// Paid, as asked.
    Succeeded,
    /// Not paid (insufficient funds, wrong PIN, a Daraja error, …).
    Failed,
    /// The payer declined the prompt.
    Cancelled,
    /// The payer did not answer the prompt in time (or it expired).
    TimedOut,
    /// Something does not add up; an operator must decide. Nothing was credited (or, after
    /// a reversal the wallet could not cover, the credit still stands: see the reason).
    NeedsReview,
    /// Paid, then reversed through M-Pesa: the money went back to the payer (and a
    /// top-up's wallet credit was taken back).
    Reversed,
}

impl PaymentStatus {
    /// Every status.
    pub const ALL: [PaymentStatus; 7] = [
        PaymentStatus::Pending,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Cancelled,
        PaymentStatus::TimedOut,
        PaymentStatus::NeedsReview,
        PaymentStatus::Reversed,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Cancelled => "cancelled",
            PaymentStatus::TimedOut => "timed_out",
            PaymentStatus::NeedsReview => "needs_review",
            PaymentStatus::Reversed => "reversed",
        }
    }

    /// Whether money was not taken (as far as M-Pesa told us).
    pub fn is_unpaid(self) -> bool {
        matches!(
            self,
            PaymentStatus::Failed | PaymentStatus::Cancelled | PaymentStatus::TimedOut
        )
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PaymentStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PaymentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "status",
                    format!(
                        "{s:?} is not one of pending, succeeded, failed, cancelled, timed_out, needs_review, reversed"
                    ),
                )
            })
    }
}

/// What a payment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Prepaid wallet credit, paid to the platform.
    WalletTopUp,
    /// A subscription period, paid to the platform.
    Subscription,
    /// The tenant collecting from its own customer, to its own shortcode.
    Collection,
}

impl Purpose {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::WalletTopUp => "wallet_top_up",
            Purpose::Subscription => "subscription",
            Purpose::Collection => "collection",
        }
    }

    /// Whether the money goes to the platform's account (else the tenant's own).
    pub fn pays_the_platform(self) -> bool {
        !matches!(self, Purpose::Collection)
    }
}

impl FromStr for Purpose {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wallet_top_up" => Ok(Purpose::WalletTopUp),
            "subscription" => Ok(Purpose::Subscription),
            "collection" => Ok(Purpose::Collection),
            other => Err(Error::invalid(
                "purpose",
                format!("{other:?} is not one of wallet_top_up, subscription, collection"),
            )),
        }
    }
}

/// A payment as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Payment {
    /// The payment id.
    pub id: Uuid,
    /// What it is for.
    pub purpose: Purpose,
    /// `stk` or `c2b`.
    pub channel: String,
    /// Where it stands.
    pub status: PaymentStatus,
    /// The amount asked for.
    pub amount: Money,
    /// The payer's number (E.164), or as C2B reports it.
    pub phone: Option<String>,
    /// The account reference shown to the payer.
    pub account_reference: String,
    /// What it is for, in words.
    pub description: String,
    /// The plan paid for (subscriptions).
    pub plan: Option<String>,
    /// The CRM relationship collected from (collections).
    pub relationship_id: Option<Uuid>,
    /// Daraja's ids and result.
    pub mpesa: MpesaDetails,
    /// Why it needs review.
    pub review_reason: Option<String>,
    /// The wallet credit (top-ups).
    pub ledger_transfer_id: Option<Uuid>,
    /// When its effect (credit, subscription period) was applied.
    pub applied_at: Option<DateTime<Utc>>,
    /// Who started it.
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// When it left `pending`.
    pub completed_at: Option<DateTime<Utc>>,
}

/// What Daraja told us about a payment.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MpesaDetails {
    /// `MerchantRequestID`.
    pub merchant_request_id: Option<String>,
    /// `CheckoutRequestID`.
    pub checkout_request_id: Option<String>,
    /// The M-Pesa receipt.
    pub receipt: Option<String>,
    /// The result code.
    pub result_code: Option<String>,
    /// The result description.
    pub result_description: Option<String>,
    /// The amount M-Pesa reported paid.
    pub paid_amount: Option<Money>,
    /// The number M-Pesa reported paid from.
    pub paid_phone: Option<String>,
    /// When M-Pesa says it was paid.
    pub paid_at: Option<DateTime<Utc>>,
}

impl Payment {
    /// The view of a stored row.
    pub fn from_row(row: &payments::Model) -> Result<Self, Error> {
        let currency: Currency = row.currency.parse().map_err(Error::from)?;
        Ok(Self {
            id: row.id,
            purpose: row.purpose.parse()?,
            channel: row.channel.clone(),
            status: row.status.parse()?,
            amount: Money::from_minor(row.amount_minor, currency),
            phone: row.phone.clone(),
            account_reference: row.account_reference.clone(),
            description: row.description.clone(),
            plan: row.plan_code.clone(),
            relationship_id: row.relationship_id,
            mpesa: MpesaDetails {
                merchant_request_id: row.merchant_request_id.clone(),
                checkout_request_id: row.checkout_request_id.clone(),
                receipt: row.receipt.clone(),
                result_code: row.result_code.clone(),
                result_description: row.result_description.clone(),
                paid_amount: row
                    .paid_amount_minor
                    .map(|minor| Money::from_minor(minor, currency)),
                paid_phone: row.paid_phone.clone(),
                paid_at: row.paid_at,
            },
            review_reason: row.review_reason.clone(),
            ledger_transfer_id: row.ledger_transfer_id,
            applied_at: row.applied_at,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            completed_at: row.completed_at,
        })
    }
}

/// The payments service: everything in this module hangs off it. Cheap to clone.
#[derive(Clone)]
pub struct Payments {
    /// The token in the platform's C2B URLs (see [`Payments::with_platform_token_key`]);
    /// `None` refuses every platform C2B callback.
    pub(crate) platform_c2b_token: Option<Arc<SecretString>>,
    pub(crate) db: DatabaseConnection,
    pub(crate) clock: SharedClock,
    pub(crate) ledger: Arc<dyn edge_core::Ledger>,
    pub(crate) keyring: Keyring,
    pub(crate) config: Arc<MpesaConfig>,
    /// Talks to the Daraja the platform account lives on (sandbox or production, or
    /// `EDGE_MPESA_BASE_URL`).
    pub(crate) platform_client: DarajaClient,
    /// Talks to the other Daraja, for tenants whose settings name it.
    pub(crate) other_client: DarajaClient,
    /// The base of callback URLs, without a trailing slash.
    pub(crate) public_url: Arc<str>,
    /// Bounds the callbacks processed at once in the background.
    pub(crate) processing: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for Payments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payments")
            .field("public_url", &self.public_url)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Payments {
    /// Builds the service. `public_url` is the base of the callback URLs (see
    /// `EDGE_PUBLIC_URL`).
    pub fn new(
        db: DatabaseConnection,
        clock: SharedClock,
        ledger: Arc<dyn edge_core::Ledger>,
        keyring: Keyring,
        config: MpesaConfig,
        public_url: &str,
    ) -> Result<Self, Error> {
        let environment = |production: bool| match &config.base_url {
            Some(url) => edge_mpesa::Environment::Custom(url.clone()),
            None if production => edge_mpesa::Environment::Production,
            None => edge_mpesa::Environment::Sandbox,
        };
        let build = |production: bool| {
            DarajaClient::builder(environment(production))
                .clock(clock.clone())
                .allow_http_callbacks(public_url.starts_with("http://"))
                .build()
                .map_err(Error::internal)
        };
        Ok(Self {
            platform_client: build(config.production)?,
            other_client: build(!config.production)?,
            db,
            clock,
            ledger,
            keyring,
            config: Arc::new(config),
            public_url: public_url.trim_end_matches('/').into(),
            platform_c2b_token: None,
            processing: Arc::new(tokio::sync::Semaphore::new(inbox::PROCESSING_AT_ONCE)),
        })
    }

    /// The Daraja client for an account in `production` (or sandbox).
    pub(crate) fn client(&self, production: bool) -> &DarajaClient {
        if production == self.config.production {
            &self.platform_client
        } else {
            &self.other_client
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MpesaConfig {
        &self.config
    }

    /// The time now.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// One payment of `org`, or `NotFound`.
    pub async fn get(&self, org: OrgId, id: Uuid) -> Result<Payment, Error> {
        Payment::from_row(&self.row(org, id).await?)
    }

    pub(crate) async fn row(&self, org: OrgId, id: Uuid) -> Result<payments::Model, Error> {
        row_in(&self.db, org, id).await
    }

    /// One payment of `org` with its history and its requests, or `NotFound`.
    ///
    /// The three are read in one snapshot: a request's row and its history event are
    /// committed together, so a reader polling for a request's result sees its event
    /// with it, never the row alone.
    pub async fn detail(&self, org: OrgId, id: Uuid) -> Result<PaymentDetail, Error> {
        let txn = crate::db::begin_read(&self.db).await.map_err(db_err)?;
        let payment = Payment::from_row(&row_in(&txn, org, id).await?)?;
        let history = crate::events::about(&txn, org, id).await.map_err(db_err)?;
        let requests = requests::of_payment(&txn, org, id).await?;
        txn.commit().await.map_err(db_err)?;
        Ok(PaymentDetail {
            payment,
            history,
            requests,
        })
    }
}

/// One payment of `org`, or `NotFound`.
async fn row_in<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    id: Uuid,
) -> Result<payments::Model, Error> {
    use sea_orm::EntityTrait as _;
    payments::Entity::find_by_id((org.as_uuid(), id))
        .one(conn)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("payment"))
}

/// A payment with its history and its requests (`GET /payments/{id}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentDetail {
    /// The payment.
    #[serde(flatten)]
    pub payment: Payment,
    /// Every state change, oldest first.
    pub history: Vec<Event>,
    /// Its transaction status queries and reversals, oldest first.
    pub requests: Vec<MpesaRequest>,
}

/// Filters of `GET /payments`.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    /// Only in this status.
    pub status: Option<PaymentStatus>,
    /// Only for this purpose.
    pub purpose: Option<Purpose>,
    /// Only from this phone (E.164).
    pub phone: Option<String>,
    /// Only against this relationship.
    pub relationship_id: Option<Uuid>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
}

impl Payments {
    /// The organization's payments, newest first, in keyset pages.
    pub async fn list(
        &self,
        org: OrgId,
        filter: &PaymentFilter,
        page: &edge_core::PageRequest,
    ) -> Result<edge_core::Page<Payment>, Error> {
        use sea_orm::sea_query::{Expr, ExprTrait as _};
        use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _};
        use sea_orm::{Condition, QuerySelect as _};
        let after: Option<(DateTime<Utc>, Uuid)> = page.after().map_err(Error::from)?;
        let mut select =
            payments::Entity::find().filter(payments::Column::OrganizationId.eq(org.as_uuid()));
        if let Some(status) = filter.status {
            select = select.filter(payments::Column::Status.eq(status.as_str()));
        }
        if let Some(purpose) = filter.purpose {
            select = select.filter(payments::Column::Purpose.eq(purpose.as_str()));
        }
        if let Some(phone) = &filter.phone {
            select = select.filter(payments::Column::Phone.eq(phone.as_str()));
        }
        if let Some(relationship) = filter.relationship_id {
            select = select.filter(payments::Column::RelationshipId.eq(relationship));
        }
        if let Some(from) = filter.created_from {
            select = select.filter(payments::Column::CreatedAt.gte(from));
        }
        if let Some(before) = filter.created_before {
            select = select.filter(payments::Column::CreatedAt.lt(before));
        }
        if let Some((at, id)) = after {
            select = select.filter(
                Condition::any()
                    .add(payments::Column::CreatedAt.lt(at))
                    .add(
                        Expr::col(payments::Column::CreatedAt)
                            .eq(at)
                            .and(Expr::col(payments::Column::Id).lt(id)),
                    ),
            );
        }
        let limit = page.limit();
        let rows = select
            .order_by_desc(payments::Column::CreatedAt)
            .order_by_desc(payments::Column::Id)
            .limit(u64::from(limit) + 1)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let items = rows
            .iter()
            .map(Payment::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(edge_core::Page::from_overfetch(items, limit, |p| {
            (p.created_at, p.id)
        }))
    }
}
