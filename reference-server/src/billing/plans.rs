//! Plans: what an organization subscribes to, managed by the platform operator.
//!
//! A plan is a row of `plans`. Its limits are read with every request's organization
//! (see `identity::stores`), so an edited limit applies to the next request of every
//! organization on the plan, on every node. A plan is never deleted: archiving it
//! (`active: false`) stops new organizations and payments from choosing it, while the
//! organizations already on it keep working and may keep paying for it.
//!
//! A plan whose price is zero is free: its subscriptions have no period end and never
//! lapse. A plan cannot move between free and paid (its subscribers' periods would not
//! make sense any more); create another plan instead.

use crate::db::begin_write;
use crate::db::db_err;
use chrono::{DateTime, Duration, Utc};
use edge_core::{Currency, Error, FieldError, Money};
use edge_tenancy::{PlanLimits, TenantContext};
use sea_orm::{
    ActiveModelTrait as _, ActiveValue::Set, ColumnTrait as _, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter as _, QueryOrder as _, SqlErr,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, Actor, ClientInfo};
use crate::entities::plans;
use crate::identity::operator::require_operator;

/// The plan new organizations start on (a trial of one period) when none is chosen. It
/// cannot be archived.
pub const DEFAULT_PLAN: &str = "standard";

/// The plan of the platform operators' own organization. It cannot be archived.
pub const PLATFORM_PLAN: &str = "platform";

/// A plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// A slug, e.g. `standard`.
    pub code: String,
    /// The name shown to customers.
    pub name: String,
    /// The price of one period; zero for a free plan.
    pub price: Money,
    /// Days one payment buys.
    pub period_days: u32,
    /// Days a lapsed subscription keeps working before it is suspended.
    pub grace_days: u32,
    /// WhatsApp messages included a month; `None` is unmetered. (The same number as
    /// `limits.monthly_messages`.)
    pub included_messages: Option<u64>,
    /// The limits the tenant resolver enforces.
    pub limits: PlanLimits,
    /// What each WhatsApp message costs, charged to the wallet.
    pub message_prices: MessagePrices,
    /// Whether it can be chosen.
    pub active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl Plan {
    /// Whether the plan is free: no period end, never lapses.
    pub fn is_free(&self) -> bool {
        !self.price.is_positive()
    }

    /// What one payment buys.
    pub fn period(&self) -> Duration {
        Duration::days(i64::from(self.period_days))
    }

    /// How long a lapsed subscription keeps working.
    pub fn grace(&self) -> Duration {
        Duration::days(i64::from(self.grace_days))
    }

    /// The plan of a row. A currency the server does not know is an internal error
    /// (the API never writes one).
    pub fn from_row(row: plans::Model) -> Result<Self, Error> {
        let currency: Currency = row.currency.parse().map_err(Error::internal)?;
        let count = |value: i32| u32::try_from(value).map_err(Error::internal);
        let included_messages = row
            .included_messages
            .map(u64::try_from)
            .transpose()
            .map_err(Error::internal)?;
        Ok(Self {
            limits: limits(
                row.requests_per_minute,
                row.request_burst,
                row.seats,
                row.max_api_keys,
                row.included_messages,
            ),
            price: Money::from_minor(row.price_minor, currency),
            message_prices: MessagePrices {
                marketing: Money::from_minor(row.price_marketing_minor, currency),
                utility: Money::from_minor(row.price_utility_minor, currency),
                authentication: Money::from_minor(row.price_authentication_minor, currency),
                service: Money::from_minor(row.price_service_minor, currency),
            },
            period_days: count(row.period_days)?,
            grace_days: count(row.grace_days)?,
            included_messages,
            code: row.code,
            name: row.name,
            active: row.active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A WhatsApp message's pricing category: what it costs on a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageCategory {
    /// A marketing template.
    Marketing,
    /// A utility template (order updates, reminders).
    Utility,
    /// An authentication template (one-time codes).
    Authentication,
    /// A free-form message inside the customer-service window.
    Service,
}

impl MessageCategory {
    /// Every category.
    pub const ALL: [MessageCategory; 4] = [
        MessageCategory::Marketing,
        MessageCategory::Utility,
        MessageCategory::Authentication,
        MessageCategory::Service,
    ];

    /// The stored and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageCategory::Marketing => "marketing",
            MessageCategory::Utility => "utility",
            MessageCategory::Authentication => "authentication",
            MessageCategory::Service => "service",
        }
    }

    /// The category of a stored or API name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// What each WhatsApp message category costs on a plan, in the plan's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MessagePrices {
    /// A marketing template.
    pub marketing: Money,
    /// A utility template.
    pub utility: Money,
    /// An authentication template.
    pub authentication: Money,
    /// A service message.
    pub service: Money,
}

impl MessagePrices {
    /// The price of one message of `category`.
    pub fn of(&self, category: MessageCategory) -> Money {
        match category {
            MessageCategory::Marketing => self.marketing,
            MessageCategory::Utility => self.utility,
            MessageCategory::Authentication => self.authentication,
            MessageCategory::Service => self.service,
        }
    }
}

/// Message prices in a request body, each a decimal string in the plan's currency; absent
/// ones stay as they are (on a new plan: KES 0.80, 0.40, 0.40 and 0.20 in minor units).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessagePricesInput {
    /// A marketing template.
    #[serde(default)]
    pub marketing: Option<String>,
    /// A utility template.
    #[serde(default)]
    pub utility: Option<String>,
    /// An authentication template.
    #[serde(default)]
    pub authentication: Option<String>,
    /// A service message.
    #[serde(default)]
    pub service: Option<String>,
}

/// The list prices of a new plan, in minor units (the migration's column defaults).
const LIST_PRICES_MINOR: [(MessageCategory, i64); 4] = [
    (MessageCategory::Marketing, 80),
    (MessageCategory::Utility, 40),
    (MessageCategory::Authentication, 40),
    (MessageCategory::Service, 20),
];

/// The resolver's limits from a plan's columns. The table's CHECK constraints keep them
/// positive; a negative value would read as zero.
pub fn limits(
    requests_per_minute: i32,
    request_burst: i32,
    seats: i32,
    max_api_keys: i32,
    included_messages: Option<i64>,
) -> PlanLimits {
    let count = |value: i32| u32::try_from(value).unwrap_or(0);
    PlanLimits {
        requests_per_minute: count(requests_per_minute),
        request_burst: count(request_burst),
        max_members: count(seats),
        max_api_keys: count(max_api_keys),
        monthly_messages: included_messages.map(|n| u64::try_from(n).unwrap_or(0)),
    }
}

/// The plan with this code, archived or not; [`Error::NotFound`] if there is none.
pub async fn find<C: ConnectionTrait>(db: &C, code: &str) -> Result<Plan, Error> {
    plans::Entity::find_by_id(code.to_owned())
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("plan"))
        .and_then(Plan::from_row)
}

/// Every plan, archived ones included when `include_archived`, cheapest first.
pub async fn list<C: ConnectionTrait>(db: &C, include_archived: bool) -> Result<Vec<Plan>, Error> {
    let mut select = plans::Entity::find();
    if !include_archived {
        select = select.filter(plans::Column::Active.eq(true));
    }
    select
        .order_by_asc(plans::Column::PriceMinor)
        .order_by_asc(plans::Column::Code)
        .all(db)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(Plan::from_row)
        .collect()
}

/// The plan `code` if it may be chosen (it exists and is not archived); otherwise a
/// validation error on `field` that lists the plans that may be.
pub async fn choosable<C: ConnectionTrait>(db: &C, code: &str, field: &str) -> Result<Plan, Error> {
    match find(db, code).await {
        Ok(plan) if plan.active => Ok(plan),
        Ok(_) | Err(Error::NotFound { .. }) => {
            let codes: Vec<String> = list(db, false).await?.into_iter().map(|p| p.code).collect();
            Err(Error::invalid(
                field,
                format!("must be one of the active plans: {}", codes.join(", ")),
            ))
        }
        Err(err) => Err(err),
    }
}

/// A price in a request body: `{"amount": "2500.00", "currency": "KES"}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    /// A decimal string with at most the currency's decimal places.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
}

/// A new plan. Every field but `included_messages` and `active` is required; each
/// missing or bad one is named in the 422 answer.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    /// A slug: 1 to 32 of `a-z`, `0-9` and `-`, starting and ending with a letter or digit.
    #[serde(default)]
    pub code: Option<String>,
    /// 1 to 100 characters.
    #[serde(default)]
    pub name: Option<String>,
    /// The price of one period, zero or more.
    #[serde(default)]
    pub price: Option<PriceInput>,
    /// 1 to 366.
    #[serde(default)]
    pub period_days: Option<i64>,
    /// 0 to 90.
    #[serde(default)]
    pub grace_days: Option<i64>,
    /// Messages a month, or `null`/absent for unmetered.
    #[serde(default)]
    pub included_messages: Option<i64>,
    /// 1 to 1,000,000.
    #[serde(default)]
    pub requests_per_minute: Option<i64>,
    /// 1 to 1,000,000.
    #[serde(default)]
    pub request_burst: Option<i64>,
    /// Active members, 1 to 100,000.
    #[serde(default)]
    pub seats: Option<i64>,
    /// Active API keys, 0 to 10,000.
    #[serde(default)]
    pub max_api_keys: Option<i64>,
    /// Per-message prices; absent ones are the list prices.
    #[serde(default)]
    pub message_prices: Option<MessagePricesInput>,
    /// Default `true`.
    #[serde(default)]
    pub active: Option<bool>,
}

/// Changes to a plan; absent fields stay. `included_messages: null` makes messages
/// unmetered; `active: false` archives the plan, `true` brings it back.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanPatch {
    /// A new name.
    #[serde(default)]
    pub name: Option<String>,
    /// A new price (for periods paid from now on); must stay zero on a free plan and
    /// above zero on a paid one.
    #[serde(default)]
    pub price: Option<PriceInput>,
    /// New period length.
    #[serde(default)]
    pub period_days: Option<i64>,
    /// New grace length (for subscriptions that lapse from now on).
    #[serde(default)]
    pub grace_days: Option<i64>,
    /// New included messages, or `null` for unmetered.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub included_messages: Option<Option<i64>>,
    /// New rate.
    #[serde(default)]
    pub requests_per_minute: Option<i64>,
    /// New burst.
    #[serde(default)]
    pub request_burst: Option<i64>,
    /// New seat count.
    #[serde(default)]
    pub seats: Option<i64>,
    /// New API key allowance.
    #[serde(default)]
    pub max_api_keys: Option<i64>,
    /// New per-message prices (for messages sent from now on); absent ones stay.
    #[serde(default)]
    pub message_prices: Option<MessagePricesInput>,
    /// Archive (`false`) or bring back (`true`).
    #[serde(default)]
    pub active: Option<bool>,
}

/// Collects the field errors of a plan's values.
#[derive(Default)]
struct Checker {
    problems: Vec<FieldError>,
}

impl Checker {
    fn problem(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(FieldError::new(field, message));
    }

    /// `check(value)` if the value is there, else a "is required" problem.
    fn required<T, U>(
        &mut self,
        field: &str,
        value: Option<T>,
        check: impl FnOnce(&mut Self, T) -> Option<U>,
    ) -> Option<U> {
        match value {
            Some(value) => check(self, value),
            None => {
                self.problem(field, "is required");
                None
            }
        }
    }

    fn name(&mut self, value: String) -> Option<String> {
        let name = value.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            self.problem("name", "must be 1 to 100 characters");
            return None;
        }
        Some(name)
    }

    fn code(&mut self, value: String) -> Option<String> {
        let code = value.trim().to_owned();
        if !is_valid_code(&code) {
            self.problem(
                "code",
                "must be 1 to 32 of a-z, 0-9 and '-', starting and ending with a letter or digit",
            );
            return None;
        }
        Some(code)
    }

    fn price(&mut self, value: PriceInput) -> Option<Money> {
        let currency = match value.currency.parse::<Currency>() {
            Ok(currency) => currency,
            Err(err) => {
                self.problem("price.currency", err.to_string());
                return None;
            }
        };
        match Money::parse(&value.amount, currency) {
            Ok(price) if price.is_negative() => {
                self.problem("price.amount", "must be zero or more");
                None
            }
            Ok(price) => Some(price),
            Err(err) => {
                self.problem("price.amount", err.to_string());
                None
            }
        }
    }

    /// The message prices given, in minor units of `currency`, with each bad one named.
    fn message_prices(
        &mut self,
        input: MessagePricesInput,
        currency: Currency,
    ) -> Vec<(MessageCategory, i64)> {
        let given = [
            (MessageCategory::Marketing, input.marketing),
            (MessageCategory::Utility, input.utility),
            (MessageCategory::Authentication, input.authentication),
            (MessageCategory::Service, input.service),
        ];
        let mut prices = Vec::new();
        for (category, amount) in given {
            let Some(amount) = amount else { continue };
            let field = format!("message_prices.{}", category.as_str());
            match Money::parse(&amount, currency) {
                Ok(price) if price.is_negative() => self.problem(&field, "must be zero or more"),
                Ok(price) => prices.push((category, price.minor())),
                Err(err) => self.problem(&field, err.to_string()),
            }
        }
        prices
    }

    /// A whole number in `min..=max`, as the column's type.
    fn range<T: TryFrom<i64>>(&mut self, field: &str, value: i64, min: i64, max: i64) -> Option<T> {
        match T::try_from(value) {
            Ok(number) if (min..=max).contains(&value) => Some(number),
            _ => {
                self.problem(field, format!("must be a whole number from {min} to {max}"));
                None
            }
        }
    }

    fn finish(self) -> Result<(), Error> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.problems))
        }
    }
}

fn is_valid_code(code: &str) -> bool {
    let bytes = code.as_bytes();
    (1..=32).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

const MAX_PERIOD_DAYS: i64 = 366;
const MAX_GRACE_DAYS: i64 = 90;
const MAX_MESSAGES: i64 = 1_000_000_000;
const MAX_RATE: i64 = 1_000_000;
const MAX_SEATS: i64 = 100_000;
const MAX_API_KEYS: i64 = 10_000;

/// Creates a plan (operators only). 409 if the code is taken.
pub async fn create(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: NewPlan,
) -> Result<Plan, Error> {
    require_operator(ctx)?;
    let mut check = Checker::default();
    let code = check.required("code", input.code, Checker::code);
    let name = check.required("name", input.name, Checker::name);
    let price = check.required("price", input.price, Checker::price);
    let mut number = |field: &str, value: Option<i64>, min: i64, max: i64| -> Option<i32> {
        check.required(field, value, |check, value| {
            check.range(field, value, min, max)
        })
    };
    let period_days = number("period_days", input.period_days, 1, MAX_PERIOD_DAYS);
    let grace_days = number("grace_days", input.grace_days, 0, MAX_GRACE_DAYS);
    let requests_per_minute = number(
        "requests_per_minute",
        input.requests_per_minute,
        1,
        MAX_RATE,
    );
    let request_burst = number("request_burst", input.request_burst, 1, MAX_RATE);
    let seats = number("seats", input.seats, 1, MAX_SEATS);
    let max_api_keys = number("max_api_keys", input.max_api_keys, 0, MAX_API_KEYS);
    let included_messages = input
        .included_messages
        .map(|n| check.range::<i64>("included_messages", n, 0, MAX_MESSAGES));
    let mut prices = LIST_PRICES_MINOR;
    if let (Some(given), Some(price)) = (input.message_prices, price) {
        for (category, minor) in check.message_prices(given, price.currency()) {
            for slot in &mut prices {
                if slot.0 == category {
                    slot.1 = minor;
                }
            }
        }
    }
    check.finish()?;
    let (
        Some(code),
        Some(name),
        Some(price),
        Some(period_days),
        Some(grace_days),
        Some(requests_per_minute),
        Some(request_burst),
        Some(seats),
        Some(max_api_keys),
    ) = (
        code,
        name,
        price,
        period_days,
        grace_days,
        requests_per_minute,
        request_burst,
        seats,
        max_api_keys,
    )
    else {
        // Each `None` recorded a problem, which `finish` answered with.
        return Err(Error::internal(
            "a plan field was missing without a problem",
        ));
    };
    let included_messages = included_messages.flatten();
    let price_of = |category: MessageCategory| {
        prices
            .iter()
            .find(|(c, _)| *c == category)
            .map_or(0, |(_, minor)| *minor)
    };

    let row = plans::Model {
        code: code.clone(),
        name,
        price_minor: price.minor(),
        currency: price.currency().code().to_owned(),
        period_days,
        grace_days,
        included_messages,
        requests_per_minute,
        request_burst,
        seats,
        max_api_keys,
        price_marketing_minor: price_of(MessageCategory::Marketing),
        price_utility_minor: price_of(MessageCategory::Utility),
        price_authentication_minor: price_of(MessageCategory::Authentication),
        price_service_minor: price_of(MessageCategory::Service),
        active: input.active.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    let txn = begin_write(db).await.map_err(db_err)?;
    plans::Entity::insert(plans::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(|err| match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                Error::Conflict(format!("a plan with the code {code:?} exists already"))
            }
            _ => db_err(err),
        })?;
    audit::Entry::new(ctx.home_org(), Actor::of(ctx), "plan.create")
        .target("plan", &code)
        .details(json!({ "plan": summary(&row) }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    Plan::from_row(row)
}

/// Changes a plan (operators only). 404 for an unknown code. The default and platform
/// plans cannot be archived; a plan cannot move between free and paid.
pub async fn update(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    code: &str,
    patch: PlanPatch,
) -> Result<Plan, Error> {
    require_operator(ctx)?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = plans::Entity::find_by_id(code.to_owned())
        .one(&txn)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("plan"))?;
    let mut check = Checker::default();
    let mut row: plans::ActiveModel = current.clone().into();
    if let Some(name) = patch.name.and_then(|name| check.name(name)) {
        row.name = Set(name);
    }
    if let Some(price) = patch.price.and_then(|price| check.price(price)) {
        if (price.is_positive()) != (current.price_minor > 0) {
            check.problem(
                "price",
                if current.price_minor > 0 {
                    "a paid plan cannot become free: create a free plan instead"
                } else {
                    "a free plan cannot become paid: create a paid plan instead"
                },
            );
        }
        row.price_minor = Set(price.minor());
        row.currency = Set(price.currency().code().to_owned());
    }
    if let Some(v) = patch
        .period_days
        .and_then(|v| check.range("period_days", v, 1, MAX_PERIOD_DAYS))
    {
        row.period_days = Set(v);
    }
    if let Some(v) = patch
        .grace_days
        .and_then(|v| check.range("grace_days", v, 0, MAX_GRACE_DAYS))
    {
        row.grace_days = Set(v);
    }
    match patch.included_messages {
        Some(None) => row.included_messages = Set(None),
        Some(Some(n)) => {
            if let Some(v) = check.range("included_messages", n, 0, MAX_MESSAGES) {
                row.included_messages = Set(Some(v));
            }
        }
        None => {}
    }
    if let Some(v) = patch
        .requests_per_minute
        .and_then(|v| check.range("requests_per_minute", v, 1, MAX_RATE))
    {
        row.requests_per_minute = Set(v);
    }
    if let Some(v) = patch
        .request_burst
        .and_then(|v| check.range("request_burst", v, 1, MAX_RATE))
    {
        row.request_burst = Set(v);
    }
    if let Some(v) = patch
        .seats
        .and_then(|v| check.range("seats", v, 1, MAX_SEATS))
    {
        row.seats = Set(v);
    }
    if let Some(v) = patch
        .max_api_keys
        .and_then(|v| check.range("max_api_keys", v, 0, MAX_API_KEYS))
    {
        row.max_api_keys = Set(v);
    }
    if let Some(input) = patch.message_prices {
        let currency = match &row.currency {
            sea_orm::ActiveValue::Set(code) | sea_orm::ActiveValue::Unchanged(code) => {
                code.parse::<Currency>().map_err(Error::internal)?
            }
            sea_orm::ActiveValue::NotSet => current.currency.parse().map_err(Error::internal)?,
        };
        for (category, minor) in check.message_prices(input, currency) {
            match category {
                MessageCategory::Marketing => row.price_marketing_minor = Set(minor),
                MessageCategory::Utility => row.price_utility_minor = Set(minor),
                MessageCategory::Authentication => row.price_authentication_minor = Set(minor),
                MessageCategory::Service => row.price_service_minor = Set(minor),
            }
        }
    }
    if let Some(active) = patch.active {
        if !active && [DEFAULT_PLAN, PLATFORM_PLAN].contains(&code) {
            check.problem(
                "active",
                format!("the {code} plan cannot be archived: new organizations start on it"),
            );
        }
        row.active = Set(active);
    }
    check.finish()?;
    row.updated_at = Set(now);
    let updated = row.update(&txn).await.map_err(db_err)?;
    audit::Entry::new(ctx.home_org(), Actor::of(ctx), "plan.update")
        .target("plan", code)
        .details(json!({ "before": summary(&current), "after": summary(&updated) }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    Plan::from_row(updated)
}

/// A plan's values for the audit log.
fn summary(row: &plans::Model) -> serde_json::Value {
    json!({
        "name": row.name,
        "price_minor": row.price_minor,
        "currency": row.currency,
        "period_days": row.period_days,
        "grace_days": row.grace_days,
        "included_messages": row.included_messages,
        "requests_per_minute": row.requests_per_minute,
        "request_burst": row.request_burst,
        "seats": row.seats,
        "max_api_keys": row.max_api_keys,
        "message_prices_minor": {
            "marketing": row.price_marketing_minor,
            "utility": row.price_utility_minor,
            "authentication": row.price_authentication_minor,
            "service": row.price_service_minor,
        },
        "active": row.active,
    })
}

/// A plan as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanView {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Price of one period.
    pub price: Money,
    /// Days one payment buys.
    pub period_days: u32,
    /// Days of grace after a period lapses.
    pub grace_days: u32,
    /// WhatsApp messages included a month; `null` is unmetered.
    pub included_messages: Option<u64>,
    /// Sustained API requests a minute.
    pub requests_per_minute: u32,
    /// API requests at once from idle.
    pub request_burst: u32,
    /// Active members.
    pub seats: u32,
    /// Active API keys.
    pub max_api_keys: u32,
    /// What each WhatsApp message costs.
    pub message_prices: MessagePrices,
    /// Whether it can be chosen.
    pub active: bool,
    /// Whether it is free (never lapses).
    pub free: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&Plan> for PlanView {
    fn from(plan: &Plan) -> Self {
        Self {
            code: plan.code.clone(),
            name: plan.name.clone(),
            price: plan.price,
            period_days: plan.period_days,
            grace_days: plan.grace_days,
            included_messages: plan.included_messages,
            requests_per_minute: plan.limits.requests_per_minute,
            request_burst: plan.limits.request_burst,
            seats: plan.limits.max_members,
            max_api_keys: plan.limits.max_api_keys,
            message_prices: plan.message_prices,
            active: plan.active,
            free: plan.is_free(),
            created_at: plan.created_at,
            updated_at: plan.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_codes_are_slugs() {
        for good in ["free", "standard", "pro-2026", "a", &"x".repeat(32)] {
            assert!(is_valid_code(good), "{good}");
        }
        for bad in [
            "",
            "-pro",
            "pro-",
            "Pro",
            "pro plan",
            "pro_plan",
            &"x".repeat(33),
        ] {
            assert!(!is_valid_code(bad), "{bad}");
        }
    }

    #[test]
    fn limits_come_from_the_columns() {
        let limits = limits(600, 100, 25, 10, Some(10_000));
        assert_eq!(
            limits,
            PlanLimits {
                requests_per_minute: 600,
                request_burst: 100,
                max_members: 25,
                max_api_keys: 10,
                monthly_messages: Some(10_000),
            }
        );
    }
}
