//! The caller's organization: profile, branding and vocabulary.

use edge_core::{Currency, Error, FieldError};
use edge_tenancy::{Permission, TenantContext};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait, SqlErr};
use serde::Deserialize;
use serde_json::json;

use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::organizations;
use crate::organization_settings::OrganizationSettings;

/// A partial update of the organization; absent fields stay as they are, and `null`
/// clears an optional branding field.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationPatch {
    /// Name.
    pub name: Option<String>,
    /// ISO currency code (KES, UGX, TZS, RWF, USD).
    pub currency: Option<String>,
    /// ISO country (KE, UG, TZ, RW).
    pub country: Option<String>,
    /// A new login ends the user's other sessions.
    pub single_active_session: Option<bool>,
    /// White-label branding.
    pub branding: Option<BrandingPatch>,
}

/// Branding fields; `Some(None)` (JSON `null`) clears one.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingPatch {
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    logo_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    primary_color: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    accent_color: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    custom_domain: Option<Option<String>>,
}

/// Reads the caller's organization.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &TenantContext,
) -> Result<organizations::Model, Error> {
    ctx.require(Permission::OrgRead)?;
    organizations::Entity::find_by_id(ctx.org().as_uuid())
        .one(db)
        .await
        .map_err(Error::internal)?
        .ok_or(Error::not_found("organization"))
}

/// Applies `patch` to the caller's organization, audited with the changed fields.
pub async fn update(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: chrono::DateTime<chrono::Utc>,
    patch: OrganizationPatch,
) -> Result<organizations::Model, Error> {
    ctx.require(Permission::OrgUpdate)?;
    let current = get(db, ctx).await?;
    let mut row: organizations::ActiveModel = current.clone().into();
    let mut problems = Vec::new();
    let mut changed = Vec::new();

    if let Some(name) = patch.name {
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            problems.push(FieldError::new("name", "must be 1 to 200 characters"));
        } else {
            row.name = Set(name);
            changed.push("name");
        }
    }
    if let Some(currency) = patch.currency {
        match currency.parse::<Currency>() {
            Ok(c) => {
                row.currency = Set(c.code().to_owned());
                changed.push("currency");
            }
            Err(e) => problems.push(FieldError::new("currency", e.to_string())),
        }
    }
    if let Some(country) = patch.country {
        let country = country.trim().to_ascii_uppercase();
        if edge_core::Country::ALL
            .iter()
            .any(|c| c.iso_code() == country)
        {
            row.country = Set(country);
            changed.push("country");
        } else {
            problems.push(FieldError::new("country", "must be one of KE, UG, TZ, RW"));
        }
    }
    if let Some(single) = patch.single_active_session {
        row.single_active_session = Set(single);
        changed.push("single_active_session");
    }
    if let Some(b) = patch.branding {
        if let Some(value) = b.display_name {
            let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
            if value.as_ref().is_some_and(|v| v.chars().count() > 200) {
                problems.push(FieldError::new(
                    "branding.display_name",
                    "must be at most 200 characters",
                ));
            }
            row.display_name = Set(value);
            changed.push("branding.display_name");
        }
        if let Some(value) = b.logo_url {
            if let Some(url) = &value
                && !is_https_url(url)
            {
                problems.push(FieldError::new(
                    "branding.logo_url",
                    "must be an https:// URL of at most 2048 characters",
                ));
            }
            row.logo_url = Set(value);
            changed.push("branding.logo_url");
        }
        for (field, value, slot) in [
            (
                "branding.primary_color",
                b.primary_color,
                &mut row.primary_color,
            ),
            (
                "branding.accent_color",
                b.accent_color,
                &mut row.accent_color,
            ),
        ] {
            if let Some(value) = value {
                let value = value.map(|v| v.to_ascii_lowercase());
                if value.as_ref().is_some_and(|v| !is_hex_colour(v)) {
                    problems.push(FieldError::new(field, "must be a colour like #1a7f37"));
                }
                *slot = Set(value);
                changed.push(field);
            }
        }
        if let Some(value) = b.custom_domain {
            let value = match value {
                Some(domain) => match edge_tenancy::resolver::normalize_host(&domain) {
                    Some(host) if host.contains('.') => Some(host),
                    _ => {
                        problems.push(FieldError::new(
                            "branding.custom_domain",
                            "must be a domain name like crm.example.co.ke",
                        ));
                        None
                    }
                },
                None => None,
            };
            row.custom_domain = Set(value);
            changed.push("branding.custom_domain");
        }
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    if changed.is_empty() {
        return Ok(current);
    }
    row.updated_at = Set(now);
    let txn = begin_write(db).await.map_err(Error::internal)?;
    let updated = row.update(&txn).await.map_err(|e| match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            Error::Conflict("that custom domain is already used by another organization".into())
        }
        _ => Error::internal(e),
    })?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "organization.update")
        .target("organization", ctx.org())
        .details(json!({ "changed": changed }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(Error::internal)?;
    Ok(updated)
}

/// Reads the organization's vocabulary.
pub async fn settings(
    db: &DatabaseConnection,
    ctx: &TenantContext,
) -> Result<OrganizationSettings, Error> {
    Ok(OrganizationSettings::from_stored(
        &get(db, ctx).await?.settings,
    ))
}

/// Replaces the organization's vocabulary.
pub async fn replace_settings(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: chrono::DateTime<chrono::Utc>,
    settings: OrganizationSettings,
) -> Result<OrganizationSettings, Error> {
    ctx.require(Permission::OrgUpdate)?;
    let settings = settings.validated()?;
    let current = get(db, ctx).await?;
    let mut row: organizations::ActiveModel = current.into();
    row.settings = Set(serde_json::to_value(&settings).map_err(Error::internal)?);
    row.updated_at = Set(now);
    let txn = begin_write(db).await.map_err(Error::internal)?;
    row.update(&txn).await.map_err(Error::internal)?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "organization.settings_update")
        .target("organization", ctx.org())
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(Error::internal)?;
    Ok(settings)
}

fn is_https_url(url: &str) -> bool {
    url.len() <= 2048
        && url.starts_with("https://")
        && url.len() > "https://".len()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_hex_colour(value: &str) -> bool {
    value.len() == 7 && value.starts_with('#') && value[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branding_values_are_checked() {
        assert!(is_hex_colour("#1a7f37"));
        assert!(!is_hex_colour("1a7f37"));
        assert!(!is_hex_colour("#1a7f3"));
        assert!(is_https_url("https://cdn.example.com/logo.png"));
        assert!(!is_https_url("http://cdn.example.com/logo.png"));
        assert!(!is_https_url("https://"));
    }

    #[test]
    fn null_clears_and_absent_keeps() {
        let patch: BrandingPatch =
            serde_json::from_str(r#"{"display_name": null, "logo_url": "https://x.io/l.png"}"#)
                .unwrap();
        assert_eq!(patch.display_name, Some(None));
        assert_eq!(patch.logo_url, Some(Some("https://x.io/l.png".into())));
        assert_eq!(patch.primary_color, None);
    }
}
