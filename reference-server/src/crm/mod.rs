//! The CRM: prospects (leads), relationships (customers), pipelines and deals, tickets,
//! targets and activities, each organization in its own vocabulary.
//!
//! Every record is tenant-owned (`organization_id` first in its primary key and foreign
//! keys) and every create, change and delete writes an audit entry in the same
//! transaction. Lists share one query language ([`list`]): filters, search, sort and
//! keyset pagination. Who sees which records follows the organization's
//! [`visibility`] setting.

pub mod activities;
pub mod contact;
pub mod custom_fields;
pub mod deals;
pub mod fields;
pub mod list;
pub mod pipelines;
pub mod prospects;
pub mod record_events;
pub mod records;
pub mod relationships;
pub mod tags;
pub mod targets;
pub mod tickets;
pub mod visibility;

use edge_core::{Country, Currency, Error};
use edge_tenancy::TenantContext;
use sea_orm::{ConnectionTrait, EntityTrait};

use crate::entities::organizations;
use crate::organization_settings::OrganizationSettings;
use visibility::Scope;

/// What a CRM operation needs to know about the caller's organization: its vocabulary,
/// currency and country, and what the caller may see.
#[derive(Debug, Clone)]
pub struct CrmContext {
    /// The organization's vocabulary and custom fields.
    pub settings: OrganizationSettings,
    /// Its currency: every money value of its records is in it.
    pub currency: Currency,
    /// Its country: phone numbers without a country code are read as this country's.
    pub country: Country,
    /// What the caller may see.
    pub scope: Scope,
}

impl CrmContext {
    /// Loads the caller's organization.
    pub async fn load(db: &impl ConnectionTrait, ctx: &TenantContext) -> Result<Self, Error> {
        let mut cx = Self::for_organization(db, ctx.org()).await?;
        cx.scope = Scope::of(ctx, cx.settings.record_visibility);
        Ok(cx)
    }

    /// Loads `org` for work done on its behalf, not for a caller (background jobs): the
    /// scope is every record.
    pub async fn for_organization(
        db: &impl ConnectionTrait,
        org: edge_core::OrgId,
    ) -> Result<Self, Error> {
        let org = organizations::Entity::find_by_id(org.as_uuid())
            .one(db)
            .await
            .map_err(Error::internal)?
            .ok_or(Error::not_found("organization"))?;
        let settings = OrganizationSettings::from_stored(&org.settings);
        let currency = org.currency.parse().map_err(Error::internal)?;
        let country = serde_json::from_value(serde_json::Value::String(org.country))
            .map_err(Error::internal)?;
        Ok(Self {
            scope: Scope::All,
            settings,
            currency,
            country,
        })
    }
}
