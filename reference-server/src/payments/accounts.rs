//! The Daraja accounts payments are made to: the platform's own (from the server's
//! configuration) and each tenant's (its `PUT /mpesa/settings`, sealed at rest).
//!
//! A tenant's consumer key and secret, passkey and initiator security credential are
//! sealed together for the organization (AES-256-GCM with the organization bound as
//! associated data), so a copied row cannot be opened as another tenant's. They are never
//! returned: the API shows the last characters of the consumer key and whether each
//! secret is set.
//!
//! The settings also carry the rule C2B validation applies to payments to the tenant's
//! own shortcode (see [`C2bRule`]) and when its C2B URLs were last registered.

use chrono::{DateTime, Utc};
use edge_core::{Currency, Error, Money, OrgId};
use edge_mpesa::Credentials;
use edge_tenancy::Sealed;
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait as _, EntityTrait as _, IntoActiveModel as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Payments, db_err};
use crate::entities::mpesa_settings;

/// What the tenant's sealed blob is sealed for.
const SEAL_PURPOSE: &str = "mpesa.settings";

/// A Daraja account with the credentials to use it.
pub(crate) struct Account {
    pub credentials: Credentials,
    pub production: bool,
    /// Whether the credentials carry an initiator (status queries, reversals).
    pub has_initiator: bool,
    /// The shortcode (a till's store number).
    pub shortcode: String,
}

/// The most prefixes a C2B rule may list.
pub const MAX_C2B_PREFIXES: usize = 50;

/// How C2B validation judges a payment to the organization's own shortcode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct C2bRule {
    /// Account references that start with one of these (compared without case, after
    /// trimming) are accepted; `None` accepts every reference (`any`).
    pub prefixes: Option<Vec<String>>,
    /// The smallest amount accepted.
    pub min_amount: Option<Money>,
    /// The largest amount accepted.
    pub max_amount: Option<Money>,
}

/// Why C2B validation turns a payment away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum C2bRefusal {
    /// The account reference does not fit the rule (`C2B00012`).
    Account(String),
    /// The amount does not (`C2B00013`).
    Amount(String),
}

impl C2bRule {
    /// Accepts a payment of `amount` with `account_reference`, or says why not.
    pub fn check(&self, account_reference: &str, amount: Option<Money>) -> Result<(), C2bRefusal> {
        let Some(amount) = amount.filter(|a| a.is_positive()) else {
            return Err(C2bRefusal::Amount(
                "the amount is not a positive number".into(),
            ));
        };
        if let Some(min) = self.min_amount
            && amount.minor() < min.minor()
        {
            return Err(C2bRefusal::Amount(format!(
                "{} is below the minimum of {}",
                amount.to_decimal_string(),
                min.to_decimal_string()
            )));
        }
        if let Some(max) = self.max_amount
            && amount.minor() > max.minor()
        {
            return Err(C2bRefusal::Amount(format!(
                "{} is above the maximum of {}",
                amount.to_decimal_string(),
                max.to_decimal_string()
            )));
        }
        if let Some(prefixes) = &self.prefixes {
            let reference = account_reference.trim().to_lowercase();
            if !prefixes
                .iter()
                .any(|p| reference.starts_with(&p.to_lowercase()))
            {
                return Err(C2bRefusal::Account(format!(
                    "account reference {:?} does not start with any of {}",
                    account_reference
                        .trim()
                        .chars()
                        .take(40)
                        .collect::<String>(),
                    prefixes.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// When and how the organization's C2B URLs were last registered with Daraja.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct C2bRegistration {
    /// When.
    pub registered_at: DateTime<Utc>,
    /// For which shortcode.
    pub shortcode: String,
    /// `Completed` or `Cancelled`: what M-Pesa does when validation does not answer.
    pub response_type: String,
    /// `v1` or `v2`.
    pub version: String,
    /// Who registered them.
    pub registered_by: Option<Uuid>,
    /// True when the registered URLs are no longer the organization's: its callback token
    /// was rotated, or its shortcode changed, since. Register again.
    pub outdated: bool,
}

/// The secrets of a tenant's settings, as sealed.
#[derive(Serialize, Deserialize)]
struct SealedSecrets {
    consumer_key: String,
    consumer_secret: String,
    passkey: String,
    security_credential: Option<String>,
}

/// `PUT /mpesa/settings`: the organization's own Daraja app and shortcode. Secrets may
/// be left out when settings already exist, to keep the stored ones.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    /// `sandbox` or `production`.
    pub environment: String,
    /// The paybill, or the store number of a till.
    pub shortcode: String,
    /// `paybill` (default) or `till`.
    #[serde(default)]
    pub account_type: Option<String>,
    /// The till number, for a till.
    #[serde(default)]
    pub till_number: Option<String>,
    /// The Daraja app's consumer key.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub consumer_key: Option<SecretString>,
    /// The Daraja app's consumer secret.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub consumer_secret: Option<SecretString>,
    /// The Lipa na M-Pesa Online passkey.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub passkey: Option<SecretString>,
    /// The initiator's user name (status queries and reversals).
    #[serde(default)]
    pub initiator_name: Option<String>,
    /// The initiator's security credential, as the Daraja portal generates it.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub initiator_security_credential: Option<SecretString>,
    /// How C2B validation checks the account reference: `any` (default) or `prefixes`.
    #[serde(default)]
    pub c2b_account_rule: Option<String>,
    /// For `prefixes`: the accepted prefixes (compared without case), 1 to 50 of them.
    #[serde(default)]
    pub c2b_account_prefixes: Option<Vec<String>>,
    /// The smallest C2B payment accepted at validation, e.g.
    /// `{"amount": "100", "currency": "KES"}`.
    #[serde(default)]
    pub c2b_min_amount: Option<Money>,
    /// The largest C2B payment accepted at validation.
    #[serde(default)]
    pub c2b_max_amount: Option<Money>,
}

/// The settings as shown: never a secret.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SettingsView {
    /// `sandbox` or `production`.
    pub environment: String,
    /// The shortcode.
    pub shortcode: String,
    /// `paybill` or `till`.
    pub account_type: String,
    /// The till number.
    pub till_number: Option<String>,
    /// The consumer key, masked (`••••abcd`).
    pub consumer_key: String,
    /// Whether a consumer secret is set.
    pub consumer_secret_set: bool,
    /// Whether a passkey is set.
    pub passkey_set: bool,
    /// The initiator's user name.
    pub initiator_name: Option<String>,
    /// Whether an initiator security credential is set.
    pub initiator_security_credential_set: bool,
    /// `any` or `prefixes`.
    pub c2b_account_rule: String,
    /// The prefixes of the `prefixes` rule (empty for `any`).
    pub c2b_account_prefixes: Vec<String>,
    /// The smallest C2B payment accepted at validation.
    pub c2b_min_amount: Option<Money>,
    /// The largest C2B payment accepted at validation.
    pub c2b_max_amount: Option<Money>,
    /// The last registration of the C2B URLs (`POST /mpesa/c2b/register`), if any.
    pub c2b_registration: Option<C2bRegistration>,
    /// When a token was last fetched with these credentials ("test connection").
    pub verified_at: Option<DateTime<Utc>>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

fn view(
    row: &mpesa_settings::Model,
    initiator_set: bool,
    token_issued_at: Option<DateTime<Utc>>,
) -> SettingsView {
    let rule = c2b_rule(row);
    let registration = match (
        row.c2b_registered_at,
        &row.c2b_registered_shortcode,
        &row.c2b_registered_response_type,
        &row.c2b_registered_version,
    ) {
        (Some(at), Some(shortcode), Some(response_type), Some(version)) => Some(C2bRegistration {
            registered_at: at,
            shortcode: shortcode.clone(),
            response_type: response_type.clone(),
            version: version.clone(),
            registered_by: row.c2b_registered_by,
            outdated: *shortcode != row.shortcode
                || token_issued_at.is_some_and(|issued| issued > at),
        }),
        _ => None,
    };
    SettingsView {
        environment: row.environment.clone(),
        shortcode: row.shortcode.clone(),
        account_type: row.account_type.clone(),
        till_number: row.till_number.clone(),
        consumer_key: format!("••••{}", row.consumer_key_hint),
        consumer_secret_set: true,
        passkey_set: true,
        initiator_name: row.initiator_name.clone(),
        initiator_security_credential_set: initiator_set,
        c2b_account_rule: row.c2b_account_rule.clone(),
        c2b_account_prefixes: rule.prefixes.unwrap_or_default(),
        c2b_min_amount: rule.min_amount,
        c2b_max_amount: rule.max_amount,
        c2b_registration: registration,
        verified_at: row.verified_at,
        updated_at: row.updated_at,
    }
}

/// The C2B rule stored in a settings row.
fn c2b_rule(row: &mpesa_settings::Model) -> C2bRule {
    let prefixes = (row.c2b_account_rule == "prefixes").then(|| {
        row.c2b_account_prefixes
            .as_ref()
            .and_then(|v| v.as_array())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    });
    C2bRule {
        prefixes,
        min_amount: row
            .c2b_min_amount_minor
            .map(|m| Money::from_minor(m, Currency::Kes)),
        max_amount: row
            .c2b_max_amount_minor
            .map(|m| Money::from_minor(m, Currency::Kes)),
    }
}

/// Checks the C2B rule of a settings input, naming each bad field.
fn c2b_input(
    input: &SettingsInput,
    problems: &mut Vec<edge_core::FieldError>,
) -> (String, Option<Vec<String>>, Option<i64>, Option<i64>) {
    let rule = input
        .c2b_account_rule
        .as_deref()
        .map(str::trim)
        .unwrap_or("any")
        .to_owned();
    let mut prefixes = None;
    match rule.as_str() {
        "any" => {
            if input
                .c2b_account_prefixes
                .as_ref()
                .is_some_and(|p| !p.is_empty())
            {
                problems.push(edge_core::FieldError::new(
                    "c2b_account_prefixes",
                    "is only for c2b_account_rule prefixes",
                ));
            }
        }
        "prefixes" => {
            let given: Vec<String> = input
                .c2b_account_prefixes
                .iter()
                .flatten()
                .map(|p| p.trim().to_owned())
                .collect();
            if given.is_empty() || given.len() > MAX_C2B_PREFIXES {
                problems.push(edge_core::FieldError::new(
                    "c2b_account_prefixes",
                    format!("must list 1 to {MAX_C2B_PREFIXES} prefixes"),
                ));
            } else if given
                .iter()
                .any(|p| p.is_empty() || p.chars().count() > 20 || p.chars().any(char::is_control))
            {
                problems.push(edge_core::FieldError::new(
                    "c2b_account_prefixes",
                    "each prefix must be 1 to 20 printable characters",
                ));
            } else {
                prefixes = Some(given);
            }
        }
        _ => problems.push(edge_core::FieldError::new(
            "c2b_account_rule",
            "must be any or prefixes",
        )),
    }
    let amount = |field: &str, value: Option<Money>, problems: &mut Vec<edge_core::FieldError>| {
        let value = value?;
        if value.currency() != Currency::Kes {
            problems.push(edge_core::FieldError::new(
                field,
                "M-Pesa amounts are in KES",
            ));
            return None;
        }
        if !value.is_positive() {
            problems.push(edge_core::FieldError::new(field, "must be more than zero"));
            return None;
        }
        Some(value.minor())
    };
    let min = amount("c2b_min_amount", input.c2b_min_amount, problems);
    let max = amount("c2b_max_amount", input.c2b_max_amount, problems);
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        problems.push(edge_core::FieldError::new(
            "c2b_max_amount",
            "must not be below c2b_min_amount",
        ));
    }
    (rule, prefixes, min, max)
}

/// A shortcode or till: 5 to 7 digits (Daraja's are 5–7; sandbox ones are 6).
fn is_shortcode(value: &str) -> bool {
    (5..=7).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
}

impl Payments {
    /// The platform's account, or a clear error when it is not configured.
    pub(crate) fn platform_account(&self) -> Result<Account, Error> {
        let platform = self.config.platform.as_ref().ok_or_else(|| {
            Error::Conflict(
                "the platform's M-Pesa account is not configured (EDGE_MPESA_CONSUMER_KEY, \
                 EDGE_MPESA_CONSUMER_SECRET, EDGE_MPESA_SHORTCODE, EDGE_MPESA_PASSKEY)"
                    .into(),
            )
        })?;
        let mut credentials =
            Credentials::new(&platform.consumer_key, platform.consumer_secret.clone())
                .shortcode(&platform.shortcode)
                .passkey(platform.passkey.clone());
        if let Some(till) = &platform.till_number {
            credentials = credentials.till(till);
        }
        if let Some(initiator) = &platform.initiator {
            credentials =
                credentials.initiator(&initiator.name, initiator.security_credential.clone());
        }
        Ok(Account {
            credentials,
            production: self.config.production,
            has_initiator: platform.initiator.is_some(),
            shortcode: platform.shortcode.clone(),
        })
    }

    /// The organization's own account, or a 409 saying how to set it up.
    pub(crate) async fn tenant_account(&self, org: OrgId) -> Result<Account, Error> {
        let row = mpesa_settings::Entity::find_by_id(org.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or_else(|| {
                Error::Conflict(
                    "this organization has no M-Pesa account yet: set one with PUT /api/v1/mpesa/settings"
                        .into(),
                )
            })?;
        let secrets = self.open(org, &row)?;
        let mut credentials = Credentials::new(
            secrets.consumer_key,
            SecretString::from(secrets.consumer_secret),
        )
        .shortcode(&row.shortcode)
        .passkey(SecretString::from(secrets.passkey));
        if let Some(till) = &row.till_number {
            credentials = credentials.till(till);
        }
        let mut has_initiator = false;
        if let (Some(name), Some(credential)) = (&row.initiator_name, secrets.security_credential) {
            credentials = credentials.initiator(name, SecretString::from(credential));
            has_initiator = true;
        }
        Ok(Account {
            credentials,
            production: row.environment == "production",
            has_initiator,
            shortcode: row.shortcode.clone(),
        })
    }

    /// The organization's settings row, if any.
    pub(crate) async fn settings_row(
        &self,
        org: OrgId,
    ) -> Result<Option<mpesa_settings::Model>, Error> {
        mpesa_settings::Entity::find_by_id(org.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)
    }

    /// The organization's C2B validation rule (`any`, without limits, when it has no
    /// settings).
    pub(crate) async fn c2b_rule(&self, org: OrgId) -> Result<C2bRule, Error> {
        Ok(self
            .settings_row(org)
            .await?
            .map(|row| c2b_rule(&row))
            .unwrap_or_default())
    }

    /// When the organization's callback token was issued, if it has one.
    async fn token_issued_at(&self, org: OrgId) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(
            crate::entities::mpesa_callback_tokens::Entity::find_by_id(org.as_uuid())
                .one(&self.db)
                .await
                .map_err(db_err)?
                .map(|row| row.rotated_at),
        )
    }

    fn open(&self, org: OrgId, row: &mpesa_settings::Model) -> Result<SealedSecrets, Error> {
        let sealed: Sealed = row.sealed.parse().map_err(Error::internal)?;
        let opened = self
            .keyring
            .open(org, SEAL_PURPOSE, &sealed)
            .map_err(Error::internal)?;
        serde_json::from_str(opened.expose_secret()).map_err(Error::internal)
    }

    /// The organization's settings as shown, if it has any.
    pub async fn settings(&self, org: OrgId) -> Result<Option<SettingsView>, Error> {
        let Some(row) = mpesa_settings::Entity::find_by_id(org.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let initiator_set = self.open(org, &row)?.security_credential.is_some();
        let issued = self.token_issued_at(org).await?;
        Ok(Some(view(&row, initiator_set, issued)))
    }

    /// Replaces the organization's settings, checking every field and naming each bad
    /// one. Secrets left out keep their stored values.
    pub async fn save_settings(
        &self,
        org: OrgId,
        by: Option<Uuid>,
        input: SettingsInput,
    ) -> Result<SettingsView, Error> {
        let existing = mpesa_settings::Entity::find_by_id(org.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)?;
        let stored = match &existing {
            Some(row) => Some(self.open(org, row)?),
            None => None,
        };
        let mut problems = Vec::new();
        let mut fail = |field: &str, message: &str| {
            problems.push(edge_core::FieldError::new(field, message));
        };
        let environment = input.environment.trim().to_owned();
        if environment != "sandbox" && environment != "production" {
            fail("environment", "must be sandbox or production");
        }
        let shortcode = input.shortcode.trim().to_owned();
        if !is_shortcode(&shortcode) {
            fail("shortcode", "must be 5 to 7 digits");
        }
        let account_type = input
            .account_type
            .as_deref()
            .map(str::trim)
            .unwrap_or("paybill")
            .to_owned();
        let till_number = input
            .till_number
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        match (account_type.as_str(), &till_number) {
            ("paybill", None) => {}
            ("paybill", Some(_)) => fail("till_number", "is only for account_type till"),
            ("till", Some(till)) if is_shortcode(till) => {}
            ("till", Some(_)) => fail("till_number", "must be 5 to 7 digits"),
            ("till", None) => fail("till_number", "is required for account_type till"),
            _ => fail("account_type", "must be paybill or till"),
        }
        let (c2b_rule, c2b_prefixes, c2b_min, c2b_max) = c2b_input(&input, &mut problems);
        let secret = |field: &str,
                      given: Option<SecretString>,
                      kept: Option<String>,
                      problems: &mut Vec<edge_core::FieldError>|
         -> String {
            match given.map(|s| s.expose_secret().trim().to_owned()) {
                Some(value) if !value.is_empty() && value.len() <= 512 => value,
                Some(_) => {
                    problems.push(edge_core::FieldError::new(
                        field,
                        "must be 1 to 512 characters",
                    ));
                    String::new()
                }
                None => kept.unwrap_or_else(|| {
                    problems.push(edge_core::FieldError::new(field, "is required"));
                    String::new()
                }),
            }
        };
        let consumer_key = secret(
            "consumer_key",
            input.consumer_key,
            stored.as_ref().map(|s| s.consumer_key.clone()),
            &mut problems,
        );
        let consumer_secret = secret(
            "consumer_secret",
            input.consumer_secret,
            stored.as_ref().map(|s| s.consumer_secret.clone()),
            &mut problems,
        );
        let passkey = secret(
            "passkey",
            input.passkey,
            stored.as_ref().map(|s| s.passkey.clone()),
            &mut problems,
        );
        let initiator_name = input
            .initiator_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        if initiator_name.as_ref().is_some_and(|n| n.len() > 64) {
            problems.push(edge_core::FieldError::new(
                "initiator_name",
                "must be at most 64 characters",
            ));
        }
        let security_credential = match input.initiator_security_credential {
            Some(given) => Some(given.expose_secret().trim().to_owned()).filter(|c| !c.is_empty()),
            None => stored.as_ref().and_then(|s| s.security_credential.clone()),
        };
        if security_credential.is_some() && initiator_name.is_none() {
            problems.push(edge_core::FieldError::new(
                "initiator_name",
                "is required with initiator_security_credential",
            ));
        }
        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }

        let hint: String = {
            let chars: Vec<char> = consumer_key.chars().collect();
            chars[chars.len().saturating_sub(4)..].iter().collect()
        };
        let initiator_set = security_credential.is_some();
        let blob = serde_json::to_string(&SealedSecrets {
            consumer_key,
            consumer_secret,
            passkey,
            security_credential,
        })
        .map_err(Error::internal)?;
        let sealed = self
            .keyring
            .seal(org, SEAL_PURPOSE, &SecretString::from(blob))
            .map_err(Error::internal)?
            .to_string();
        let now = self.now();
        let row = match existing {
            Some(row) => {
                let mut active = row.into_active_model();
                active.environment = Set(environment);
                active.shortcode = Set(shortcode);
                active.account_type = Set(account_type);
                active.till_number = Set(till_number);
                active.consumer_key_hint = Set(hint);
                active.initiator_name = Set(initiator_name);
                active.sealed = Set(sealed);
                active.c2b_account_rule = Set(c2b_rule);
                active.c2b_account_prefixes = Set(c2b_prefixes.map(|p| serde_json::json!(p)));
                active.c2b_min_amount_minor = Set(c2b_min);
                active.c2b_max_amount_minor = Set(c2b_max);
                // New credentials are untested until "test connection" succeeds again.
                active.verified_at = Set(None);
                active.updated_by = Set(by);
                active.updated_at = Set(now);
                active.update(&self.db).await.map_err(db_err)?
            }
            None => mpesa_settings::ActiveModel {
                organization_id: Set(org.as_uuid()),
                environment: Set(environment),
                shortcode: Set(shortcode),
                account_type: Set(account_type),
                till_number: Set(till_number),
                consumer_key_hint: Set(hint),
                initiator_name: Set(initiator_name),
                sealed: Set(sealed),
                c2b_account_rule: Set(c2b_rule),
                c2b_account_prefixes: Set(c2b_prefixes.map(|p| serde_json::json!(p))),
                c2b_min_amount_minor: Set(c2b_min),
                c2b_max_amount_minor: Set(c2b_max),
                c2b_registered_at: Set(None),
                c2b_registered_shortcode: Set(None),
                c2b_registered_response_type: Set(None),
                c2b_registered_version: Set(None),
                c2b_registered_by: Set(None),
                verified_at: Set(None),
                updated_by: Set(by),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&self.db)
            .await
            .map_err(db_err)?,
        };
        let issued = self.token_issued_at(org).await?;
        Ok(view(&row, initiator_set, issued))
    }

    /// "Test connection": fetches a Daraja token with the organization's credentials.
    /// On success `verified_at` is set; a refusal is a 422 naming the credentials, an
    /// unreachable Daraja a 502/504.
    pub async fn test_connection(&self, org: OrgId) -> Result<SettingsView, Error> {
        let account = self.tenant_account(org).await?;
        // Tokens are cached per consumer key: a new key is always tried afresh.
        let client = self.client(account.production);
        match client.access_token(&account.credentials).await {
            Ok(_) => {}
            Err(
                edge_mpesa::Error::Daraja(_)
                | edge_mpesa::Error::UnexpectedResponse {
                    status: 400..=499, ..
                },
            ) => {
                return Err(Error::invalid(
                    "consumer_key",
                    "Daraja refused these consumer key and secret",
                ));
            }
            Err(err) => return Err(upstream(&err)),
        }
        let row = mpesa_settings::Entity::find_by_id(org.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or(Error::not_found("mpesa settings"))?;
        let initiator_set = self.open(org, &row)?.security_credential.is_some();
        let mut active = row.into_active_model();
        active.verified_at = Set(Some(self.now()));
        let row = active.update(&self.db).await.map_err(db_err)?;
        let issued = self.token_issued_at(org).await?;
        Ok(view(&row, initiator_set, issued))
    }
}

/// A Daraja failure as an API error (502, or 504 when the request may still have been
/// processed). The message is Daraja's own, which never carries our secrets.
pub(crate) fn upstream(err: &edge_mpesa::Error) -> Error {
    Error::Upstream {
        service: "daraja",
        message: err.to_string(),
        timed_out: err.may_have_been_sent(),
    }
}
