//! `organizations`: the tenants.

use sea_orm::entity::prelude::*;

/// An organization row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    /// The organization id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// URL-safe unique name.
    pub slug: String,
    /// Legal or trading name.
    pub name: String,
    /// ISO currency of the wallet and prices.
    pub currency: String,
    /// ISO country, the default for national phone numbers.
    pub country: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
    /// White-label display name.
    pub display_name: Option<String>,
    /// White-label logo.
    pub logo_url: Option<String>,
    /// White-label primary colour, `#rrggbb`.
    pub primary_color: Option<String>,
    /// White-label accent colour, `#rrggbb`.
    pub accent_color: Option<String>,
    /// White-label custom domain.
    pub custom_domain: Option<String>,
    /// A copy of `subscriptions.plan_code`, the source of truth: written only by
    /// `crate::billing`, in the same transaction as the subscription, for the readers
    /// that show it. Limits are resolved from the subscription's plan, never from here.
    pub plan: String,
    /// A new login ends the user's other sessions in this organization.
    pub single_active_session: bool,
    /// The organization's vocabulary (milestones, lead sources, …), as JSON.
    pub settings: Json,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// A new active organization with default branding and vocabulary, on `plan`. Insert
    /// it together with its subscription (`crate::billing::subscriptions::start`), in one
    /// transaction.
    pub fn new_active(
        slug: String,
        name: String,
        currency: String,
        country: String,
        plan: String,
        now: DateTimeUtc,
    ) -> Self {
        Self {
            id: edge_core::OrgId::new().as_uuid(),
            slug,
            name,
            currency,
            country,
            status: "active".into(),
            created_at: now,
            updated_at: now,
            display_name: None,
            logo_url: None,
            primary_color: None,
            accent_color: None,
            custom_domain: None,
            plan,
            single_active_session: false,
            settings: crate::organization_settings::default_settings(),
        }
    }
}
