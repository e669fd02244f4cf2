//! `plans`: what an organization can subscribe to. Platform-owned (no `organization_id`);
//! managed by the operator through `crate::billing::plans`.

use sea_orm::entity::prelude::*;

/// A plan row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plans")]
pub struct Model {
    /// A slug, e.g. `standard`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    /// The name shown to customers.
    pub name: String,
    /// The price of one period, in minor units of `currency`; zero for a free plan.
    pub price_minor: i64,
    /// ISO 4217 currency of the price.
    pub currency: String,
    /// Days one payment buys.
    pub period_days: i32,
    /// Days a lapsed subscription keeps working before it is suspended.
    pub grace_days: i32,
    /// WhatsApp messages included a month; `None` is unmetered.
    pub included_messages: Option<i64>,
    /// Sustained API requests a minute.
    pub requests_per_minute: i32,
    /// API requests allowed at once from idle.
    pub request_burst: i32,
    /// Active members allowed.
    pub seats: i32,
    /// Active API keys allowed.
    pub max_api_keys: i32,
    /// The fee for one WhatsApp marketing template, in minor units of `currency`.
    pub price_marketing_minor: i64,
    /// The fee for one utility template.
    pub price_utility_minor: i64,
    /// The fee for one authentication template.
    pub price_authentication_minor: i64,
    /// The fee for one service (non-template) message.
    pub price_service_minor: i64,
    /// Whether it can be chosen; organizations on an archived plan keep working.
    pub active: bool,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
