//! JSON views of records, as the API shows them. Secrets and hashes never appear here.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::entities::{organizations, users};
use crate::organization_settings::OrganizationSettings;

/// An organization as its members see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationView {
    /// Id.
    pub id: uuid::Uuid,
    /// URL-safe unique name.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Currency of prices and the wallet.
    pub currency: String,
    /// Default country for phone numbers.
    pub country: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Plan.
    pub plan: String,
    /// Whether a new login ends the user's other sessions.
    pub single_active_session: bool,
    /// White-label branding.
    pub branding: BrandingView,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// White-label branding.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BrandingView {
    /// Name shown instead of Edge's.
    pub display_name: Option<String>,
    /// Logo.
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    pub primary_color: Option<String>,
    /// `#rrggbb`.
    pub accent_color: Option<String>,
    /// The organization's own domain.
    pub custom_domain: Option<String>,
}

impl From<&organizations::Model> for OrganizationView {
    fn from(org: &organizations::Model) -> Self {
        Self {
            id: org.id,
            slug: org.slug.clone(),
            name: org.name.clone(),
            currency: org.currency.clone(),
            country: org.country.clone(),
            status: org.status.clone(),
            plan: org.plan.clone(),
            single_active_session: org.single_active_session,
            branding: BrandingView {
                display_name: org.display_name.clone(),
                logo_url: org.logo_url.clone(),
                primary_color: org.primary_color.clone(),
                accent_color: org.accent_color.clone(),
                custom_domain: org.custom_domain.clone(),
            },
            created_at: org.created_at,
        }
    }
}

/// A user as the API shows them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Id.
    pub id: uuid::Uuid,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// `active` or `deactivated`.
    pub status: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl From<&users::Model> for UserView {
    fn from(user: &users::Model) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            status: user.status.clone(),
            created_at: user.created_at,
        }
    }
}

/// The organization's vocabulary.
pub type SettingsView = OrganizationSettings;
