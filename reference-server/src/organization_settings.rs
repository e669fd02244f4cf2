//! An organization's own vocabulary: pipeline milestones, happiness-rating choices, lead
//! sources, services and industries, its custom fields, and who sees which CRM records.
//! CRM records and imports validate their values against these lists.

use edge_core::{Error, FieldError};

use crate::crm::custom_fields::{self, CustomField};
use crate::crm::visibility::RecordVisibility;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most entries one list may have.
pub const MAX_ENTRIES: usize = 100;
/// The longest entry, in characters.
pub const MAX_ENTRY_LEN: usize = 64;

/// The vocabulary lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationSettings {
    /// Stages a prospect moves through, in order.
    pub milestones: Vec<String>,
    /// Choices for a customer's happiness rating, worst to best.
    pub happiness_ratings: Vec<String>,
    /// Where leads come from.
    pub lead_sources: Vec<String>,
    /// What the organization sells.
    pub services: Vec<String>,
    /// Industries its customers are in.
    pub industries: Vec<String>,
    /// Typed fields of its own on prospects, relationships and deals.
    #[serde(default)]
    pub custom_fields: Vec<CustomField>,
    /// Whether members see every CRM record or only their own (see
    /// [`crate::crm::visibility`]).
    #[serde(default)]
    pub record_visibility: RecordVisibility,
}

impl Default for OrganizationSettings {
    fn default() -> Self {
        let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Self {
            milestones: list(&[
                "New",
                "Contacted",
                "Qualified",
                "Proposal",
                "Negotiation",
                "Won",
                "Lost",
            ]),
            happiness_ratings: list(&["Unhappy", "Neutral", "Happy", "Delighted"]),
            lead_sources: list(&[
                "WhatsApp",
                "Referral",
                "Walk-in",
                "Website",
                "Phone call",
                "Event",
            ]),
            services: Vec::new(),
            industries: list(&[
                "Retail",
                "Agriculture",
                "Manufacturing",
                "Hospitality",
                "Logistics",
                "Services",
            ]),
            custom_fields: Vec::new(),
            record_visibility: RecordVisibility::Everyone,
        }
    }
}

impl OrganizationSettings {
    /// The entry of `list` equal to `value` ignoring case and surrounding spaces, as
    /// the organization spells it; `None` when the list has no such entry.
    pub fn find<'a>(list: &'a [String], value: &str) -> Option<&'a str> {
        let value = value.trim();
        list.iter()
            .find(|entry| {
                entry.eq_ignore_ascii_case(value) || entry.to_lowercase() == value.to_lowercase()
            })
            .map(String::as_str)
    }

    /// Trims every entry and checks the lists: at most [`MAX_ENTRIES`] entries of 1 to
    /// [`MAX_ENTRY_LEN`] characters, no duplicates (ignoring case), and at least one
    /// milestone and one happiness rating.
    pub fn validated(mut self) -> Result<Self, Error> {
        let mut problems = Vec::new();
        for (field, list, required) in [
            ("milestones", &mut self.milestones, true),
            ("happiness_ratings", &mut self.happiness_ratings, true),
            ("lead_sources", &mut self.lead_sources, false),
            ("services", &mut self.services, false),
            ("industries", &mut self.industries, false),
        ] {
            for item in list.iter_mut() {
                *item = item.trim().to_owned();
            }
            if required && list.is_empty() {
                problems.push(FieldError::new(field, "must have at least one entry"));
            }
            if list.len() > MAX_ENTRIES {
                problems.push(FieldError::new(
                    field,
                    format!("must have at most {MAX_ENTRIES} entries"),
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for (i, item) in list.iter().enumerate() {
                let len = item.chars().count();
                if len == 0 || len > MAX_ENTRY_LEN {
                    problems.push(FieldError::new(
                        format!("{field}[{i}]"),
                        format!("must be 1 to {MAX_ENTRY_LEN} characters"),
                    ));
                } else if !seen.insert(item.to_lowercase()) {
                    problems.push(FieldError::new(
                        format!("{field}[{i}]"),
                        format!("{item:?} appears twice"),
                    ));
                }
            }
        }
        problems.extend(custom_fields::check_definitions(&mut self.custom_fields));
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(Error::Validation(problems))
        }
    }

    /// Reads the stored JSON; anything unreadable falls back to the defaults field by field.
    pub fn from_stored(value: &Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_else(|_| {
            let defaults = Self::default();
            let field = |name: &str, default: Vec<String>| {
                value
                    .get(name)
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or(default)
            };
            Self {
                milestones: field("milestones", defaults.milestones),
                happiness_ratings: field("happiness_ratings", defaults.happiness_ratings),
                lead_sources: field("lead_sources", defaults.lead_sources),
                services: field("services", defaults.services),
                industries: field("industries", defaults.industries),
                custom_fields: value
                    .get("custom_fields")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default(),
                record_visibility: value
                    .get("record_visibility")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default(),
            }
        })
    }
}

/// The settings a new organization starts with, as stored.
pub fn default_settings() -> Value {
    serde_json::to_value(OrganizationSettings::default()).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let settings = OrganizationSettings::default().validated().unwrap();
        assert_eq!(
            OrganizationSettings::from_stored(&default_settings()),
            settings
        );
    }

    #[test]
    fn lists_are_trimmed_and_checked() {
        let settings = OrganizationSettings {
            lead_sources: vec![" Radio ".into(), "radio".into(), "".into()],
            milestones: Vec::new(),
            ..OrganizationSettings::default()
        };
        let Err(Error::Validation(fields)) = settings.validated() else {
            panic!("expected a validation error");
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["milestones", "lead_sources[1]", "lead_sources[2]"]);
    }
}
