//! C2B: customers paying a paybill or till on their own (no STK prompt), on an
//! organization's own shortcode or on the platform's paybill.
//!
//! # On an organization's own shortcode
//!
//! [`Payments::register_c2b`] registers `/callbacks/c2b/{org}/{token}/validation` and
//! `…/confirmation` for the organization's shortcode with Daraja, and records when and
//! how. Validation requests are answered at once with the organization's rule
//! ([`super::accounts::C2bRule`]: any account reference, or only references that start with
//! one of a list of prefixes, and optional minimum and maximum amounts). A confirmation
//! becomes a `collection` payment on channel `c2b`, keyed by its `TransID` as the receipt:
//! created `pending` and settled as paid at once, so it has the same history and events as
//! any other payment, and a second delivery of the same `TransID` changes nothing (the
//! receipt is unique per organization).
//!
//! The payer's number is stored as M-Pesa sends it: masked (`2547 ***** 149`, C2B v2) or a
//! SHA-256 of the number (v1). The account reference (`BillRefNumber`) links the payment to
//! a CRM relationship when it is that relationship's id, or a phone number that is the main
//! phone of exactly one relationship.
//!
//! Confirmations are recorded whatever the validation rule says: validation is off at
//! Safaricom unless the shortcode owner asks for it, and the money is in the account
//! either way. A confirmation for another shortcode than the organization's goes to
//! `needs_review`.
//!
//! # On the platform's paybill
//!
//! Tenants may also top up their wallet by paying the platform's paybill with their
//! organization's slug as the account number. `/callbacks/c2b/platform/{token}/…` carries a
//! token derived from the server's credentials key. Validation accepts only a reference
//! that is an organization's slug (trimmed, any case) whose wallet is in KES. A
//! confirmation becomes a `wallet_top_up` payment on channel `c2b` in that organization,
//! settled as paid, so the wallet is credited through the ledger once per `TransID`. A
//! confirmation whose reference matches no organization stays in the platform's inbox
//! (`mpesa_callbacks`, outcome `unmatched`, no organization) for operators to resolve:
//! `GET /api/v1/admin/mpesa/callbacks?outcome=unmatched`.

use chrono::{DateTime, Utc};
use edge_core::{Country, Currency, Error, Money, Msisdn, OrgId};
use edge_mpesa::callbacks::C2bRejection;
use edge_mpesa::{
    C2bRegisterResponse, C2bTransaction, C2bValidationReply, C2bVersion, RegisterUrls,
    ResponseType, parse_c2b,
};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QuerySelect as _};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::accounts::{Account, C2bRefusal, upstream};
use super::inbox::{CallbackKind, Handled, Processed};
use super::settle::{Outcome, Source};
use super::{PaymentStatus, Payments, Purpose, db_err, is_unique_violation};
use crate::db::begin_write;
use crate::entities::{mpesa_callbacks, mpesa_settings, organizations, payments, relationships};

/// The longest `TransID` accepted (M-Pesa's are 10 characters).
const MAX_TRANS_ID: usize = 32;

/// `POST /mpesa/c2b/register` (and the operators' platform registration).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    /// What M-Pesa does when validation does not answer in time: `Completed` (default) or
    /// `Cancelled`.
    #[serde(default)]
    pub response_type: Option<String>,
    /// The C2B API version of the Daraja app: `v2` (default) or `v1`.
    #[serde(default)]
    pub version: Option<String>,
}

impl RegisterInput {
    fn parse(&self) -> Result<(ResponseType, C2bVersion), Error> {
        let mut problems = Vec::new();
        let response_type = match self.response_type.as_deref().map(str::trim) {
            None | Some("Completed") => ResponseType::Completed,
            Some("Cancelled") => ResponseType::Cancelled,
            Some(_) => {
                problems.push(edge_core::FieldError::new(
                    "response_type",
                    "must be Completed or Cancelled",
                ));
                ResponseType::Completed
            }
        };
        let version = match self.version.as_deref().map(str::trim) {
            None | Some("v2") => C2bVersion::V2,
            Some("v1") => C2bVersion::V1,
            Some(_) => {
                problems.push(edge_core::FieldError::new("version", "must be v1 or v2"));
                C2bVersion::V2
            }
        };
        if problems.is_empty() {
            Ok((response_type, version))
        } else {
            Err(Error::Validation(problems))
        }
    }
}

fn response_type_name(response_type: ResponseType) -> &'static str {
    match response_type {
        ResponseType::Completed => "Completed",
        ResponseType::Cancelled => "Cancelled",
    }
}

fn version_name(version: C2bVersion) -> &'static str {
    match version {
        C2bVersion::V1 => "v1",
        _ => "v2",
    }
}

/// A registration Daraja accepted.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct C2bRegistered {
    /// When.
    pub registered_at: DateTime<Utc>,
    /// The shortcode registered.
    pub shortcode: String,
    /// `Completed` or `Cancelled`.
    pub response_type: String,
    /// `v1` or `v2`.
    pub version: String,
    /// Daraja's `OriginatorCoversationID` (sic) for the registration.
    pub originator_conversation_id: String,
    /// Daraja's `ResponseDescription`.
    pub response_description: String,
}

/// A Daraja failure to register URLs as an API error: what the caller must fix (409), or
/// an upstream failure (502, 504).
pub(crate) fn registration_error(err: &edge_mpesa::Error, shortcode: &str) -> Error {
    use edge_mpesa::DarajaErrorKind as Kind;
    match err {
        edge_mpesa::Error::InvalidRequest { field, reason } => Error::Conflict(format!(
            "the C2B URLs cannot be registered: {field}: {reason}"
        )),
        edge_mpesa::Error::Daraja(daraja) => match daraja.kind() {
            Kind::AlreadyRegistered => Error::Conflict(format!(
                "Daraja says C2B URLs are already registered for shortcode {shortcode} \
                 ({}). In production a shortcode's URLs are registered once: delete them in \
                 the Daraja portal's URL management, then register again",
                daraja.message
            )),
            Kind::NoApiProduct => Error::Conflict(format!(
                "the Daraja app does not have this C2B API version ({}): register with the \
                 version the app has (\"version\": \"v1\" or \"v2\")",
                daraja.message
            )),
            Kind::WrongCredentials | Kind::InvalidToken => Error::Conflict(format!(
                "Daraja refused the credentials ({}): check them with POST /api/v1/mpesa/settings/test",
                daraja.message
            )),
            _ => upstream(err),
        },
        _ => upstream(err),
    }
}

/// The parts of a C2B body every payment needs, checked.
struct Paid {
    receipt: String,
    amount: Money,
}

fn checked(tx: &C2bTransaction) -> Result<Paid, String> {
    let receipt = tx.trans_id.trim();
    if receipt.is_empty()
        || receipt.chars().count() > MAX_TRANS_ID
        || receipt.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("TransID is not a receipt number".into());
    }
    match tx.amount {
        Some(amount) if amount.is_positive() => Ok(Paid {
            receipt: receipt.to_owned(),
            amount,
        }),
        _ => Err(format!(
            "TransAmount {:?} is not a positive amount",
            tx.amount_raw.chars().take(20).collect::<String>()
        )),
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.trim().chars().take(max).collect()
}

/// Why a body paid to `shortcode` does not belong to `account`, if it does not.
fn shortcode_mismatch(tx: &C2bTransaction, shortcode: &str, till: Option<&str>) -> Option<String> {
    let paid_to = tx.business_short_code.trim();
    if paid_to.is_empty() || paid_to == shortcode || Some(paid_to) == till {
        return None;
    }
    Some(format!(
        "paid to shortcode {} but this account's shortcode is {shortcode}",
        truncate(paid_to, 16)
    ))
}

impl Payments {
    /// Registers the organization's C2B URLs for its own shortcode with Daraja, and
    /// records when and how. Needs the organization's M-Pesa settings (409 without).
    pub async fn register_c2b(
        &self,
        org: OrgId,
        by: Option<Uuid>,
        input: &RegisterInput,
    ) -> Result<C2bRegistered, Error> {
        let (response_type, version) = input.parse()?;
        let account = self.tenant_account(org).await?;
        let urls = self.callback_urls(org).await?;
        let answer = self
            .send_registration(
                &account,
                &urls.c2b_confirmation,
                &urls.c2b_validation,
                response_type,
                version,
            )
            .await?;
        let now = self.now();
        mpesa_settings::Entity::update_many()
            .col_expr(
                mpesa_settings::Column::C2bRegisteredAt,
                Expr::value(Some(now)),
            )
            .col_expr(
                mpesa_settings::Column::C2bRegisteredShortcode,
                Expr::value(Some(account.shortcode.clone())),
            )
            .col_expr(
                mpesa_settings::Column::C2bRegisteredResponseType,
                Expr::value(Some(response_type_name(response_type))),
            )
            .col_expr(
                mpesa_settings::Column::C2bRegisteredVersion,
                Expr::value(Some(version_name(version))),
            )
            .col_expr(mpesa_settings::Column::C2bRegisteredBy, Expr::value(by))
            .filter(mpesa_settings::Column::OrganizationId.eq(org.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        tracing::info!(organization = %org, shortcode = %account.shortcode, "C2B URLs registered");
        Ok(registered(now, &account, response_type, version, answer))
    }

    /// Registers the platform's C2B URLs for the platform's shortcode with Daraja.
    pub async fn register_platform_c2b(
        &self,
        input: &RegisterInput,
    ) -> Result<C2bRegistered, Error> {
        let (response_type, version) = input.parse()?;
        let account = self.platform_account()?;
        let urls = self.platform_c2b_urls()?;
        let answer = self
            .send_registration(
                &account,
                &urls.confirmation,
                &urls.validation,
                response_type,
                version,
            )
            .await?;
        tracing::info!(shortcode = %account.shortcode, "the platform's C2B URLs registered");
        Ok(registered(
            self.now(),
            &account,
            response_type,
            version,
            answer,
        ))
    }

    async fn send_registration(
        &self,
        account: &Account,
        confirmation: &str,
        validation: &str,
        response_type: ResponseType,
        version: C2bVersion,
    ) -> Result<C2bRegisterResponse, Error> {
        RegisterUrls::new(confirmation, validation)
            .response_type(response_type)
            .version(version)
            .send(self.client(account.production), &account.credentials)
            .await
            .map_err(|err| {
                tracing::warn!(shortcode = %account.shortcode, error = %err, "C2B URL registration failed");
                registration_error(&err, &account.shortcode)
            })
    }

    /// Checks the platform's C2B token and stores the body as received (without an
    /// organization: it is matched when processed). A wrong token is `NotFound` and stores
    /// nothing.
    pub async fn receive_platform(
        &self,
        token: &str,
        kind: CallbackKind,
        body: &[u8],
        remote_addr: Option<String>,
    ) -> Result<Uuid, Error> {
        if !self.verify_platform_token(token) {
            return Err(Error::not_found("callback"));
        }
        self.store(None, kind, body, remote_addr).await
    }

    /// Decides a stored C2B validation request, records the decision on it, and returns
    /// the answer for Daraja.
    pub async fn validate_c2b(&self, callback: Uuid) -> Result<C2bValidationReply, Error> {
        let row = mpesa_callbacks::Entity::find_by_id(callback)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or(Error::not_found("callback"))?;
        let kind = CallbackKind::parse(&row.kind)
            .filter(|k| k.is_validation())
            .ok_or_else(|| Error::internal(format!("callback {callback} is not a validation")))?;
        let platform = kind == CallbackKind::PlatformC2bValidation;
        let org = row.organization_id.map(OrgId::from_uuid);
        let (reply, why) = self.validation_decision(org, platform, &row.body).await?;
        let processed = match reply {
            C2bValidationReply::Accept { .. } => Processed::Accepted,
            C2bValidationReply::Reject(_) => Processed::Rejected,
        };
        self.finish_callback(callback, (processed, None, Some(why), true))
            .await?;
        Ok(reply)
    }

    /// The answer to a validation request, and why.
    async fn validation_decision(
        &self,
        org: Option<OrgId>,
        platform: bool,
        body: &[u8],
    ) -> Result<(C2bValidationReply, String), Error> {
        let reject = |reason: C2bRejection, why: String| {
            Ok((
                C2bValidationReply::Reject(reason),
                format!("{}: {why}", reason.code()),
            ))
        };
        let tx = match parse_c2b(body) {
            Ok(tx) => tx,
            Err(err) => return reject(C2bRejection::Other, err.reason().to_owned()),
        };
        if platform {
            if !tx.amount.is_some_and(|a| a.is_positive()) {
                return reject(
                    C2bRejection::InvalidAmount,
                    "the amount is not a positive number".into(),
                );
            }
            return match self.organization_for_reference(&tx.bill_ref_number).await? {
                None => reject(
                    C2bRejection::InvalidAccountNumber,
                    format!(
                        "no organization has the account number {:?}",
                        truncate(&tx.bill_ref_number, 40)
                    ),
                ),
                Some(found) if found.currency != Currency::Kes.code() => reject(
                    C2bRejection::InvalidAccountNumber,
                    format!(
                        "organization {}'s wallet is in {}",
                        found.slug, found.currency
                    ),
                ),
                Some(found) => Ok((
                    C2bValidationReply::Accept {
                        third_party_trans_id: None,
                    },
                    format!("accepted for organization {}", found.slug),
                )),
            };
        }
        let Some(org) = org else {
            return reject(C2bRejection::Other, "no organization".into());
        };
        match self
            .c2b_rule(org)
            .await?
            .check(&tx.bill_ref_number, tx.amount)
        {
            Ok(()) => Ok((
                C2bValidationReply::Accept {
                    third_party_trans_id: None,
                },
                "accepted".into(),
            )),
            Err(C2bRefusal::Account(why)) => reject(C2bRejection::InvalidAccountNumber, why),
            Err(C2bRefusal::Amount(why)) => reject(C2bRejection::InvalidAmount, why),
        }
    }

    /// Processes a stored C2B callback on an organization's own shortcode.
    pub(crate) async fn process_c2b(
        &self,
        org: OrgId,
        kind: CallbackKind,
        row: &mpesa_callbacks::Model,
    ) -> Result<Handled, Error> {
        if kind.is_validation() {
            let (reply, why) = self
                .validation_decision(Some(org), false, &row.body)
                .await?;
            return Ok((decided(&reply), None, Some(why), true));
        }
        let tx = match parse_c2b(&row.body) {
            Ok(tx) => tx,
            Err(err) => {
                tracing::warn!(callback = %row.id, reason = err.reason(), "unreadable C2B confirmation stored");
                return Ok((Processed::Invalid, None, Some(err.reason().into()), true));
            }
        };
        let paid = match checked(&tx) {
            Ok(paid) => paid,
            Err(why) => {
                tracing::warn!(callback = %row.id, %why, "unusable C2B confirmation stored");
                return Ok((Processed::Invalid, None, Some(why), true));
            }
        };
        let review = match self.settings_row(org).await? {
            Some(settings) => {
                shortcode_mismatch(&tx, &settings.shortcode, settings.till_number.as_deref())
            }
            None => None,
        };
        let relationship = self
            .relationship_for_reference(org, &tx.bill_ref_number)
            .await?;
        self.record_c2b(org, Purpose::Collection, &tx, paid, review, relationship)
            .await
    }

    /// Processes a stored C2B callback on the platform's paybill.
    pub(crate) async fn process_platform_c2b(
        &self,
        kind: CallbackKind,
        row: &mpesa_callbacks::Model,
    ) -> Result<Handled, Error> {
        if kind.is_validation() {
            let (reply, why) = self.validation_decision(None, true, &row.body).await?;
            return Ok((decided(&reply), None, Some(why), true));
        }
        let tx = match parse_c2b(&row.body) {
            Ok(tx) => tx,
            Err(err) => {
                tracing::warn!(callback = %row.id, reason = err.reason(), "unreadable platform C2B confirmation stored");
                return Ok((Processed::Invalid, None, Some(err.reason().into()), true));
            }
        };
        let paid = match checked(&tx) {
            Ok(paid) => paid,
            Err(why) => {
                tracing::warn!(callback = %row.id, %why, "unusable platform C2B confirmation stored");
                return Ok((Processed::Invalid, None, Some(why), true));
            }
        };
        let Some(found) = self.organization_for_reference(&tx.bill_ref_number).await? else {
            tracing::warn!(callback = %row.id, receipt = %paid.receipt, "platform C2B payment matches no organization: left for operators");
            return Ok((
                Processed::Unmatched,
                None,
                Some(format!(
                    "no organization has the account number {:?}",
                    truncate(&tx.bill_ref_number, 40)
                )),
                true,
            ));
        };
        if found.currency != Currency::Kes.code() {
            tracing::warn!(callback = %row.id, organization = %found.id, "platform C2B payment for a wallet not in KES: left for operators");
            return Ok((
                Processed::Unmatched,
                None,
                Some(format!(
                    "organization {} has its wallet in {}, not KES",
                    found.slug, found.currency
                )),
                true,
            ));
        }
        // A TransID is credited once on the platform, whichever organization it names.
        if let Some(other) = payments::Entity::find()
            .filter(payments::Column::Receipt.eq(paid.receipt.as_str()))
            .filter(payments::Column::Channel.eq("c2b"))
            .filter(payments::Column::Purpose.eq(Purpose::WalletTopUp.as_str()))
            .filter(payments::Column::OrganizationId.ne(found.id))
            .one(&self.db)
            .await
            .map_err(db_err)?
        {
            return Ok((
                Processed::Duplicate,
                None,
                Some(format!(
                    "receipt {} is already recorded for organization {}",
                    paid.receipt, other.organization_id
                )),
                true,
            ));
        }
        let org = OrgId::from_uuid(found.id);
        mpesa_callbacks::Entity::update_many()
            .col_expr(
                mpesa_callbacks::Column::OrganizationId,
                Expr::value(Some(found.id)),
            )
            .filter(mpesa_callbacks::Column::Id.eq(row.id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        let review = match &self.config.platform {
            Some(platform) => {
                shortcode_mismatch(&tx, &platform.shortcode, platform.till_number.as_deref())
            }
            None => None,
        };
        crate::tenant_scope::in_organization(
            org,
            self.record_c2b(org, Purpose::WalletTopUp, &tx, paid, review, None),
        )
        .await
    }

    /// Creates the payment of a confirmation (pending, with its receipt) and settles it as
    /// paid, or for review. A receipt already recorded changes nothing, except that a
    /// payment left pending by an interrupted first delivery is settled.
    async fn record_c2b(
        &self,
        org: OrgId,
        purpose: Purpose,
        tx: &C2bTransaction,
        paid: Paid,
        review: Option<String>,
        relationship: Option<Uuid>,
    ) -> Result<Handled, Error> {
        let phone = Some(truncate(&tx.msisdn, 64)).filter(|p| !p.is_empty());
        let outcome = match review {
            Some(reason) => Outcome::Unknown { reason },
            None => Outcome::Paid {
                receipt: Some(paid.receipt.clone()),
                amount: Some(paid.amount),
                phone: phone.clone(),
                paid_at: tx.trans_time,
                code: "0".into(),
                description: format!("paid to {} by C2B", truncate(&tx.business_short_code, 16)),
            },
        };
        if let Some(existing) = self.by_receipt(org, &paid.receipt).await? {
            return self.settle_again(org, existing, outcome).await;
        }
        let now = self.now();
        let id = Uuid::now_v7();
        let description = match purpose {
            Purpose::WalletTopUp => "Wallet top-up (paybill)".to_owned(),
            _ => format!("C2B payment ({})", truncate(&tx.transaction_type, 40)),
        };
        // Nothing to ask Daraja about (no `next_check_at`): reconciliation leaves C2B
        // payments alone.
        let mut row = payments::ActiveModel::pending(
            org.as_uuid(),
            id,
            purpose.as_str(),
            "c2b",
            paid.amount,
            now,
        );
        row.phone = Set(phone);
        row.account_reference = Set(truncate(&tx.bill_ref_number, 64));
        row.description = Set(truncate(&description, 64));
        row.relationship_id = Set(relationship);
        row.receipt = Set(Some(paid.receipt.clone()));
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        match payments::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
        {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                drop(txn);
                // Another delivery of the same TransID got there first.
                let existing = self
                    .by_receipt(org, &paid.receipt)
                    .await?
                    .ok_or_else(|| Error::internal(e))?;
                return self.settle_again(org, existing, outcome).await;
            }
            Err(e) => return Err(db_err(e)),
        }
        crate::events::record(
            &txn,
            org,
            "payment.created",
            ("payment", id),
            json!({
                "id": id,
                "purpose": purpose,
                "channel": "c2b",
                "status": PaymentStatus::Pending,
                "amount": paid.amount,
                "receipt": paid.receipt,
            }),
            now,
        )
        .await
        .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        let settlement = self.settle(org, id, outcome, Source::Callback).await?;
        Ok((Processed::from(&settlement), Some(id), None, true))
    }

    /// A receipt already recorded: nothing changes, unless the first delivery was
    /// interrupted before its payment was settled.
    async fn settle_again(
        &self,
        org: OrgId,
        existing: payments::Model,
        outcome: Outcome,
    ) -> Result<Handled, Error> {
        if existing.status == PaymentStatus::Pending.as_str() && existing.channel == "c2b" {
            let settlement = self
                .settle(org, existing.id, outcome, Source::Callback)
                .await?;
            return Ok((Processed::from(&settlement), Some(existing.id), None, true));
        }
        Ok((
            Processed::Duplicate,
            Some(existing.id),
            Some(format!(
                "receipt {} is already recorded",
                existing.receipt.as_deref().unwrap_or_default()
            )),
            true,
        ))
    }

    async fn by_receipt(
        &self,
        org: OrgId,
        receipt: &str,
    ) -> Result<Option<payments::Model>, Error> {
        payments::Entity::find()
            .filter(payments::Column::OrganizationId.eq(org.as_uuid()))
            .filter(payments::Column::Receipt.eq(receipt))
            .one(&self.db)
            .await
            .map_err(db_err)
    }

    /// The organization whose slug is `reference` (trimmed, any case). The operators'
    /// own organization is never paid this way.
    async fn organization_for_reference(
        &self,
        reference: &str,
    ) -> Result<Option<organizations::Model>, Error> {
        let slug = reference.trim().to_ascii_lowercase();
        if !edge_tenancy::resolver::is_valid_slug(&slug)
            || slug == crate::identity::operator::PLATFORM_SLUG
        {
            return Ok(None);
        }
        organizations::Entity::find()
            .filter(organizations::Column::Slug.eq(slug))
            .one(&self.db)
            .await
            .map_err(db_err)
    }

    /// The relationship a C2B account reference names: its id, or a phone number that is
    /// the main phone of exactly one (not deleted) relationship.
    async fn relationship_for_reference(
        &self,
        org: OrgId,
        reference: &str,
    ) -> Result<Option<Uuid>, Error> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Ok(None);
        }
        if let Ok(id) = Uuid::parse_str(reference) {
            return Ok(relationships::Entity::find_by_id((org.as_uuid(), id))
                .one(&self.db)
                .await
                .map_err(db_err)?
                .filter(|r| r.deleted_at.is_none())
                .map(|r| r.id));
        }
        let country = organizations::Entity::find_by_id(org.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .and_then(|o| serde_json::from_value(serde_json::Value::String(o.country)).ok())
            .unwrap_or(Country::Kenya);
        let Ok(phone) = Msisdn::parse(reference, country) else {
            return Ok(None);
        };
        let found: Vec<Uuid> = relationships::Entity::find()
            .select_only()
            .column(relationships::Column::Id)
            .filter(relationships::Column::OrganizationId.eq(org.as_uuid()))
            .filter(relationships::Column::Phone.eq(phone.as_e164()))
            .filter(relationships::Column::DeletedAt.is_null())
            .limit(2)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(match found.as_slice() {
            [only] => Some(*only),
            _ => None,
        })
    }
}

fn registered(
    at: DateTime<Utc>,
    account: &Account,
    response_type: ResponseType,
    version: C2bVersion,
    answer: C2bRegisterResponse,
) -> C2bRegistered {
    C2bRegistered {
        registered_at: at,
        shortcode: account.shortcode.clone(),
        response_type: response_type_name(response_type).into(),
        version: version_name(version).into(),
        originator_conversation_id: answer.originator_conversation_id,
        response_description: answer.response_description,
    }
}

fn decided(reply: &C2bValidationReply) -> Processed {
    match reply {
        C2bValidationReply::Accept { .. } => Processed::Accepted,
        C2bValidationReply::Reject(_) => Processed::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_mpesa::DarajaError;

    fn daraja(status: u16, code: &str, message: &str) -> edge_mpesa::Error {
        edge_mpesa::Error::Daraja(DarajaError {
            status,
            code: code.into(),
            message: message.into(),
            request_id: "r-1".into(),
        })
    }

    #[test]
    fn registration_failures_say_what_to_fix() {
        let already = registration_error(
            &daraja(500, "500.003.1001", "Urls are already registered"),
            "600984",
        );
        assert!(
            matches!(&already, Error::Conflict(m) if m.contains("already registered") && m.contains("600984")),
            "{already:?}"
        );
        let product = registration_error(
            &daraja(
                401,
                "401.003.01",
                "Invalid Access Token - no apiproduct match found",
            ),
            "600984",
        );
        assert!(
            matches!(&product, Error::Conflict(m) if m.contains("version")),
            "{product:?}"
        );
        let busy = registration_error(
            &daraja(500, "500.003.02", "Spike Arrest Violation"),
            "600984",
        );
        assert!(matches!(busy, Error::Upstream { .. }), "{busy:?}");
        let down = registration_error(
            &edge_mpesa::Error::Connect {
                message: "refused".into(),
            },
            "600984",
        );
        assert!(
            matches!(
                down,
                Error::Upstream {
                    timed_out: false,
                    ..
                }
            ),
            "{down:?}"
        );
    }

    #[test]
    fn register_input_defaults_and_refusals() {
        let defaults = RegisterInput::default().parse().unwrap();
        assert_eq!(defaults, (ResponseType::Completed, C2bVersion::V2));
        let chosen = RegisterInput {
            response_type: Some("Cancelled".into()),
            version: Some("v1".into()),
        }
        .parse()
        .unwrap();
        assert_eq!(chosen, (ResponseType::Cancelled, C2bVersion::V1));
        let bad = RegisterInput {
            response_type: Some("completed".into()),
            version: Some("v3".into()),
        }
        .parse();
        assert!(matches!(bad, Err(Error::Validation(fields)) if fields.len() == 2));
    }

    #[test]
    fn a_body_for_another_shortcode_is_flagged() {
        let mut tx = parse_c2b(
            br#"{"TransID":"TESTC2B001","TransAmount":"10","BusinessShortCode":"600984"}"#,
        )
        .unwrap();
        assert_eq!(shortcode_mismatch(&tx, "600984", None), None);
        assert!(shortcode_mismatch(&tx, "600100", None).is_some());
        assert_eq!(shortcode_mismatch(&tx, "600100", Some("600984")), None);
        tx.business_short_code = String::new();
        assert_eq!(shortcode_mismatch(&tx, "600100", None), None);
    }

    #[test]
    fn receipts_and_amounts_are_checked() {
        let tx = |body: &str| parse_c2b(body.as_bytes()).unwrap();
        assert!(checked(&tx(r#"{"TransID":"TESTC2B001","TransAmount":"1500.00"}"#)).is_ok());
        assert!(checked(&tx(r#"{"TransID":"TESTC2B001","TransAmount":"0"}"#)).is_err());
        assert!(checked(&tx(r#"{"TransID":"TESTC2B001","TransAmount":"ten"}"#)).is_err());
        assert!(checked(&tx(r#"{"TransID":"TEST C2B","TransAmount":"10"}"#)).is_err());
        let long = format!(r#"{{"TransID":"{}","TransAmount":"10"}}"#, "X".repeat(40));
        assert!(checked(&tx(&long)).is_err());
    }
}
