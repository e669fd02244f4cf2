//! `mpesa_settings`: an organization's own Daraja credentials (tenant collections).

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mpesa_settings")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// `sandbox` or `production`.
    pub environment: String,
    /// The business shortcode (paybill, or the store number of a till).
    pub shortcode: String,
    /// `paybill` or `till`.
    pub account_type: String,
    /// The till number, for a till.
    pub till_number: Option<String>,
    /// The last characters of the consumer key, to show which key is set.
    pub consumer_key_hint: String,
    /// The initiator's user name, for status queries and reversals.
    pub initiator_name: Option<String>,
    /// The consumer key and secret, passkey and initiator password, sealed for the organization.
    pub sealed: String,
    /// How C2B validation checks the account reference: `any` or `prefixes`.
    pub c2b_account_rule: String,
    /// For `prefixes`: the accepted prefixes (a JSON array of strings).
    pub c2b_account_prefixes: Option<Json>,
    /// The smallest C2B payment accepted at validation, in minor units.
    pub c2b_min_amount_minor: Option<i64>,
    /// The largest C2B payment accepted at validation, in minor units.
    pub c2b_max_amount_minor: Option<i64>,
    /// When the C2B URLs were last registered with Daraja.
    pub c2b_registered_at: Option<DateTimeUtc>,
    /// The shortcode they were registered for.
    pub c2b_registered_shortcode: Option<String>,
    /// The `ResponseType` registered (`Completed` or `Cancelled`).
    pub c2b_registered_response_type: Option<String>,
    /// The C2B API version registered with (`v1` or `v2`).
    pub c2b_registered_version: Option<String>,
    /// Who registered them.
    pub c2b_registered_by: Option<Uuid>,
    /// When a token was last fetched with these credentials.
    pub verified_at: Option<DateTimeUtc>,
    /// Who last set them.
    pub updated_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
