//! Checks shared by every CRM record's fields: names and texts, phones, email, values
//! from the organization's vocabulary, money in the organization's currency, and who may
//! own a record. Problems are collected so one answer names every bad field.

use edge_core::{Country, Currency, Error, FieldError, Money, Msisdn};
use edge_tenancy::{Permission, Principal, TenantContext};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::entities::memberships;
use crate::organization_settings::OrganizationSettings;

/// The most phones one record may have.
pub const MAX_PHONES: usize = 5;

/// Collects field problems; [`Checks::finish`] turns them into one validation error.
#[derive(Debug, Default)]
pub struct Checks(Vec<FieldError>);

impl Checks {
    /// No problems yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem.
    pub fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Records the problems of a nested check.
    pub fn absorb<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(Error::Validation(mut problems)) => {
                self.0.append(&mut problems);
                None
            }
            Err(other) => {
                self.fail("_", other.to_string());
                None
            }
        }
    }

    /// A required text of 1 to `max` characters, trimmed.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> String {
        let value = value.trim();
        if value.is_empty() || value.chars().count() > max {
            self.fail(field, format!("must be 1 to {max} characters"));
        }
        value.to_owned()
    }

    /// An optional text; blank means none.
    pub fn optional_text(
        &mut self,
        field: &str,
        value: Option<&str>,
        max: usize,
    ) -> Option<String> {
        let value = value.map(str::trim).filter(|v| !v.is_empty())?;
        if value.chars().count() > max {
            self.fail(field, format!("must be at most {max} characters"));
        }
        Some(value.to_owned())
    }

    /// Phone numbers, read with the organization's country when they have no country
    /// code; duplicates dropped, the first is the main one.
    pub fn phones(&mut self, field: &str, values: &[String], country: Country) -> Vec<Msisdn> {
        let mut out: Vec<Msisdn> = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let at = if values.len() == 1 {
                field.to_owned()
            } else {
                format!("{field}[{i}]")
            };
            match Msisdn::parse(value, country) {
                Ok(phone) if !out.contains(&phone) => out.push(phone),
                Ok(_) => {}
                Err(e) => self.fail(
                    at,
                    format!("{value:?} is not a mobile number: {}", e.reason()),
                ),
            }
        }
        if out.len() > MAX_PHONES {
            self.fail(field, format!("at most {MAX_PHONES} phone numbers"));
        }
        out
    }

    /// An optional email address, lower-cased.
    pub fn email(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        let value = value.map(str::trim).filter(|v| !v.is_empty())?;
        let ok = value.len() <= 254
            && !value.chars().any(char::is_whitespace)
            && value.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if !ok {
            self.fail(field, format!("{value:?} is not an email address"));
        }
        Some(value.to_lowercase())
    }

    /// A value from one of the organization's vocabulary lists, spelt as the list spells
    /// it. `list_name` is the settings field, e.g. `lead_sources`.
    pub fn vocabulary(
        &mut self,
        field: &str,
        value: &str,
        list: &[String],
        list_name: &str,
    ) -> String {
        match OrganizationSettings::find(list, value) {
            Some(entry) => entry.to_owned(),
            None => {
                let known = if list.is_empty() {
                    "the list is empty".to_owned()
                } else {
                    format!("one of: {}", list.join(", "))
                };
                self.fail(
                    field,
                    format!(
                        "{value:?} is not in this organization's {} ({known}; see /organization/settings)",
                        list_name.replace('_', " ")
                    ),
                );
                value.to_owned()
            }
        }
    }

    /// Several vocabulary values, deduplicated.
    pub fn vocabulary_list(
        &mut self,
        field: &str,
        values: &[String],
        list: &[String],
        list_name: &str,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let value = self.vocabulary(&format!("{field}[{i}]"), value, list, list_name);
            if !out.contains(&value) {
                out.push(value);
            }
        }
        out
    }

    /// A money value that must be in the organization's currency and not negative.
    pub fn money(&mut self, field: &str, value: Money, currency: Currency) -> i64 {
        if value.currency() != currency {
            self.fail(
                field,
                format!(
                    "must be in {}, the organization's currency (got {})",
                    currency.code(),
                    value.currency().code()
                ),
            );
        } else if value.is_negative() {
            self.fail(field, "must not be negative");
        }
        value.minor()
    }

    /// Fails with every problem found, if any.
    pub fn finish(self) -> Result<(), Error> {
        validation(self.0)
    }
}

/// `Ok` when there are no problems, else one validation error naming them all.
pub fn validation(problems: Vec<FieldError>) -> Result<(), Error> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(problems))
    }
}

/// The signed-in user behind a request, if it is a person.
pub fn caller(ctx: &TenantContext) -> Option<uuid::Uuid> {
    match ctx.principal() {
        Principal::User { user, .. } => Some(user.as_uuid()),
        Principal::ApiKey { .. } => None,
    }
}

/// Checks that `user` may be given a record by the caller: giving a record to someone
/// else needs [`Permission::CrmAssign`], and the user must be an active member.
pub async fn check_assignee(
    db: &impl ConnectionTrait,
    ctx: &TenantContext,
    field: &str,
    user: uuid::Uuid,
) -> Result<(), Error> {
    if caller(ctx) != Some(user) {
        ctx.require(Permission::CrmAssign)?;
    }
    let member = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(memberships::Column::UserId.eq(user))
        .filter(memberships::Column::Status.eq("active"))
        .one(db)
        .await
        .map_err(Error::internal)?;
    if member.is_none() {
        return Err(Error::invalid(
            field,
            "is not an active member of this organization",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_collected_with_clear_messages() {
        let mut checks = Checks::new();
        let settings = OrganizationSettings::default();
        assert_eq!(
            checks.vocabulary(
                "lead_source",
                "referral",
                &settings.lead_sources,
                "lead_sources"
            ),
            "Referral"
        );
        checks.vocabulary(
            "lead_source",
            "Radio",
            &settings.lead_sources,
            "lead_sources",
        );
        checks.phones("phone", &["12345".into()], Country::Kenya);
        checks.email("email", Some("not-an-email"));
        checks.money(
            "estimated_value",
            Money::from_minor(100, Currency::Ugx),
            Currency::Kes,
        );
        let Err(Error::Validation(problems)) = checks.finish() else {
            panic!("expected problems");
        };
        let text: Vec<_> = problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect();
        assert_eq!(problems.len(), 4, "{text:?}");
        assert!(text[0].contains("\"Radio\" is not in this organization's lead sources"));
        assert!(text[1].starts_with("phone: \"12345\" is not a mobile number"));
        assert!(text[2].starts_with("email:"));
        assert!(text[3].contains("must be in KES"));
    }

    #[test]
    fn phones_are_deduplicated_in_one_form() {
        let mut checks = Checks::new();
        let phones = checks.phones(
            "phones",
            &[
                "0712345678".into(),
                "+254 712 345 678".into(),
                "0722000000".into(),
            ],
            Country::Kenya,
        );
        checks.finish().unwrap();
        let e164: Vec<_> = phones.iter().map(Msisdn::as_e164).collect();
        assert_eq!(e164, ["+254712345678", "+254722000000"]);
    }
}
