//! The contact part that prospects and relationships share: name, company, phones, email,
//! industry, services, happiness rating, tags and custom fields, checked the same way
//! for both, and the search text derived from them; and who a record belongs to.

use edge_core::{Error, Msisdn};
use edge_tenancy::TenantContext;
use sea_orm::ConnectionTrait;
use serde_json::{Map, Value, json};

use super::custom_fields::{self, RecordKind};
use super::fields::{Checks, caller};
use super::list::search_text;
use super::records::check_assignment;
use super::{CrmContext, tags};

/// The contact fields of a create or update; absent fields stay as they are, `Some(None)`
/// clears an optional one.
#[derive(Debug, Default)]
pub struct ContactInput {
    /// Name.
    pub name: Option<String>,
    /// Company.
    pub company: Option<Option<String>>,
    /// One phone (shorthand for `phones: [phone]`).
    pub phone: Option<String>,
    /// Every phone, the main one first.
    pub phones: Option<Vec<String>>,
    /// Email.
    pub email: Option<Option<String>>,
    /// Industry (vocabulary `industries`).
    pub industry: Option<Option<String>>,
    /// Services (vocabulary `services`).
    pub services: Option<Vec<String>>,
    /// Happiness rating (vocabulary `happiness_ratings`).
    pub happiness: Option<Option<String>>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Custom field values; `null` removes one.
    pub custom_fields: Option<Map<String, Value>>,
}

/// The stored contact fields of one record, borrowed to be checked and written.
#[derive(Debug)]
pub struct ContactRow<'a> {
    /// Name.
    pub name: &'a mut String,
    /// Company.
    pub company: &'a mut Option<String>,
    /// Main phone, E.164.
    pub phone: &'a mut Option<String>,
    /// Every phone, E.164 (JSON array).
    pub phones: &'a mut Value,
    /// Email.
    pub email: &'a mut Option<String>,
    /// Industry.
    pub industry: &'a mut Option<String>,
    /// Services (JSON array).
    pub services: &'a mut Value,
    /// Happiness rating.
    pub happiness: &'a mut Option<String>,
    /// Tags (JSON array).
    pub tags: &'a mut Value,
    /// Custom field values (JSON object).
    pub custom: &'a mut Value,
    /// What `q=` searches.
    pub search_text: &'a mut String,
}

/// A JSON array of strings as a list (empty if it is anything else).
pub fn strings(value: &Value) -> Vec<String> {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

impl ContactRow<'_> {
    /// Checks `input` against the organization's vocabulary, country and custom fields of
    /// `kind`, recording problems in `checks`, and writes what is valid. On a create the
    /// name and required custom fields must be there.
    pub fn apply(
        self,
        checks: &mut Checks,
        cx: &CrmContext,
        kind: RecordKind,
        input: ContactInput,
        creating: bool,
    ) {
        let settings = &cx.settings;
        match &input.name {
            Some(name) => *self.name = checks.text("name", name, 200),
            None if creating => checks.fail("name", "is required"),
            None => {}
        }
        if let Some(company) = input.company {
            *self.company = checks.optional_text("company", company.as_deref(), 200);
        }
        let phones = match (input.phone, input.phones) {
            (Some(_), Some(_)) => {
                checks.fail("phone", "give either phone or phones, not both");
                None
            }
            (Some(phone), None) => Some(checks.phones("phone", &[phone], cx.country)),
            (None, Some(phones)) => Some(checks.phones("phones", &phones, cx.country)),
            (None, None) => None,
        };
        if let Some(phones) = &phones {
            *self.phone = phones.first().map(|p| p.as_e164().to_owned());
            *self.phones = json!(phones.iter().map(Msisdn::as_e164).collect::<Vec<_>>());
        }
        if let Some(email) = input.email {
            *self.email = checks.email("email", email.as_deref());
        }
        if let Some(industry) = input.industry {
            *self.industry = industry
                .map(|s| checks.vocabulary("industry", &s, &settings.industries, "industries"));
        }
        if let Some(services) = input.services {
            *self.services = json!(checks.vocabulary_list(
                "services",
                &services,
                &settings.services,
                "services"
            ));
        }
        if let Some(happiness) = input.happiness {
            *self.happiness = happiness.map(|s| {
                checks.vocabulary(
                    "happiness",
                    &s,
                    &settings.happiness_ratings,
                    "happiness_ratings",
                )
            });
        }
        if let Some(list) = input.tags
            && let Some(list) = checks.absorb(tags::normalize(list))
        {
            *self.tags = json!(list);
        }
        let custom_input = input.custom_fields.unwrap_or_default();
        if creating || !custom_input.is_empty() {
            let current = self.custom.as_object().cloned().unwrap_or_default();
            if let Some(custom) = checks.absorb(custom_fields::apply(
                &settings.custom_fields,
                kind,
                &current,
                &custom_input,
                creating,
            )) {
                *self.custom = Value::Object(custom);
            }
        }
        let phones: Vec<Msisdn> = strings(self.phones)
            .iter()
            .filter_map(|p| Msisdn::parse_international(p).ok())
            .collect();
        *self.search_text = search_text(
            [
                self.name.as_str(),
                self.company.as_deref().unwrap_or_default(),
                self.email.as_deref().unwrap_or_default(),
            ],
            &phones,
        );
    }
}

/// Sets who a record belongs to (`field`: `owner_id`, `account_manager_id`): on a
/// create the default is the caller; changes follow [`check_assignment`].
pub async fn assign(
    db: &impl ConnectionTrait,
    ctx: &TenantContext,
    field: &str,
    current: &mut Option<uuid::Uuid>,
    requested: Option<Option<uuid::Uuid>>,
    creating: bool,
) -> Result<(), Error> {
    let owner = match requested {
        Some(owner) => owner,
        None if creating => caller(ctx),
        None => *current,
    };
    let before = if creating { None } else { *current };
    check_assignment(db, ctx, field, before, owner).await?;
    *current = owner;
    Ok(())
}
