//! Custom fields: typed fields an organization defines for its records (in its settings,
//! `custom_fields`), validated on every write and usable as list filters (`cf.<key>=`).

use std::collections::HashSet;

use chrono::NaiveDate;
use edge_core::{Error, FieldError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most custom fields an organization may define.
pub const MAX_FIELDS: usize = 50;
/// The longest text value, in characters.
pub const MAX_TEXT_LEN: usize = 2000;

/// The kinds of record that carry custom fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Prospects (leads).
    Prospect,
    /// Relationships (customers).
    Relationship,
    /// Deals.
    Deal,
}

/// The type of a custom field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// Free text, up to [`MAX_TEXT_LEN`] characters.
    Text,
    /// A JSON number.
    Number,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// One of the field's `choices`.
    Choice,
}

/// One custom field definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomField {
    /// The key in a record's `custom_fields` object: lower-case letters, digits and `_`,
    /// starting with a letter, at most 40 characters.
    pub key: String,
    /// The label shown to people.
    pub label: String,
    /// The value's type.
    pub kind: FieldKind,
    /// The allowed values of a `choice` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Which records carry it.
    pub applies_to: Vec<RecordKind>,
    /// Whether a record must have a value when created.
    #[serde(default)]
    pub required: bool,
}

fn is_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= 40
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks a list of definitions; problems are reported as `custom_fields[i].…`.
pub fn check_definitions(fields: &mut [CustomField]) -> Vec<FieldError> {
    let mut problems = Vec::new();
    if fields.len() > MAX_FIELDS {
        problems.push(FieldError::new(
            "custom_fields",
            format!("must have at most {MAX_FIELDS} entries"),
        ));
    }
    let mut keys = HashSet::new();
    for (i, field) in fields.iter_mut().enumerate() {
        let at = |name: &str| format!("custom_fields[{i}].{name}");
        field.label = field.label.trim().to_owned();
        if !is_key(&field.key) {
            problems.push(FieldError::new(
                at("key"),
                "must be 1 to 40 lower-case letters, digits or _, starting with a letter",
            ));
        } else if !keys.insert(field.key.clone()) {
            problems.push(FieldError::new(
                at("key"),
                format!("{:?} appears twice", field.key),
            ));
        }
        if field.label.is_empty() || field.label.chars().count() > 64 {
            problems.push(FieldError::new(at("label"), "must be 1 to 64 characters"));
        }
        if field.applies_to.is_empty() {
            problems.push(FieldError::new(
                at("applies_to"),
                "must name at least one of prospect, relationship, deal",
            ));
        }
        match field.kind {
            FieldKind::Choice => {
                for choice in &mut field.choices {
                    *choice = choice.trim().to_owned();
                }
                let distinct: HashSet<_> = field.choices.iter().collect();
                if field.choices.is_empty()
                    || distinct.len() != field.choices.len()
                    || field.choices.iter().any(|c| c.is_empty() || c.len() > 64)
                {
                    problems.push(FieldError::new(
                        at("choices"),
                        "a choice field needs distinct, non-empty choices of at most 64 characters",
                    ));
                }
            }
            _ if !field.choices.is_empty() => {
                problems.push(FieldError::new(
                    at("choices"),
                    "only a choice field has choices",
                ));
            }
            _ => {}
        }
    }
    problems
}

/// Validates a record's custom values against the definitions for `kind`.
///
/// `current` holds the record's stored values (empty for a create); `input` the values
/// sent, where `null` removes a value. Unknown keys, values of the wrong type and, when
/// `creating`, missing required fields are refused. Returns the values to store.
pub fn apply(
    definitions: &[CustomField],
    kind: RecordKind,
    current: &Map<String, Value>,
    input: &Map<String, Value>,
    creating: bool,
) -> Result<Map<String, Value>, Error> {
    let fields: Vec<&CustomField> = definitions
        .iter()
        .filter(|f| f.applies_to.contains(&kind))
        .collect();
    let mut out = current.clone();
    let mut problems = Vec::new();
    for (key, value) in input {
        let at = format!("custom_fields.{key}");
        let Some(field) = fields.iter().find(|f| &f.key == key) else {
            problems.push(FieldError::new(
                at,
                "is not a custom field of this organization (see /organization/settings)",
            ));
            continue;
        };
        if value.is_null() {
            if field.required {
                problems.push(FieldError::new(at, "is required"));
            } else {
                out.remove(key);
            }
            continue;
        }
        match check_value(field, value) {
            Ok(value) => {
                out.insert(key.clone(), value);
            }
            Err(message) => problems.push(FieldError::new(at, message)),
        }
    }
    if creating {
        for field in fields.iter().filter(|f| f.required) {
            if !out.contains_key(&field.key) && !input.contains_key(&field.key) {
                problems.push(FieldError::new(
                    format!("custom_fields.{}", field.key),
                    "is required",
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Error::Validation(problems))
    }
}

fn check_value(field: &CustomField, value: &Value) -> Result<Value, String> {
    match field.kind {
        FieldKind::Text => match value.as_str().map(str::trim) {
            Some(text) if !text.is_empty() && text.chars().count() <= MAX_TEXT_LEN => {
                Ok(Value::String(text.to_owned()))
            }
            _ => Err(format!("must be text of 1 to {MAX_TEXT_LEN} characters")),
        },
        FieldKind::Number => match value {
            Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => Ok(value.clone()),
            _ => Err("must be a number".into()),
        },
        FieldKind::Date => value
            .as_str()
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
            .ok_or_else(|| "must be a date, YYYY-MM-DD".to_owned()),
        FieldKind::Choice => match value.as_str() {
            Some(choice) if field.choices.iter().any(|c| c == choice) => Ok(value.clone()),
            _ => Err(format!("must be one of: {}", field.choices.join(", "))),
        },
    }
}

/// Parses a list filter's value (`cf.<key>=<text>`) into the JSON value stored for the
/// field, so that filtering compares like with like.
pub fn filter_value(field: &CustomField, text: &str) -> Result<Value, Error> {
    let value = match field.kind {
        FieldKind::Number => text
            .parse::<f64>()
            .ok()
            .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
            .ok_or_else(|| Error::invalid(format!("cf.{}", field.key), "must be a number"))?,
        _ => Value::String(text.to_owned()),
    };
    check_value(field, &value).map_err(|m| Error::invalid(format!("cf.{}", field.key), m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> Vec<CustomField> {
        serde_json::from_value(json!([
            {"key": "region", "label": "Region", "kind": "choice",
             "choices": ["Nairobi", "Mombasa"], "applies_to": ["prospect"], "required": true},
            {"key": "staff", "label": "Staff", "kind": "number", "applies_to": ["prospect", "relationship"]},
            {"key": "founded", "label": "Founded", "kind": "date", "applies_to": ["prospect"]},
            {"key": "notes", "label": "Notes", "kind": "text", "applies_to": ["deal"]}
        ]))
        .unwrap()
    }

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn values_are_checked_by_type() {
        let ok = apply(
            &defs(),
            RecordKind::Prospect,
            &Map::new(),
            &map(json!({"region": "Nairobi", "staff": 12, "founded": "2019-03-01"})),
            true,
        )
        .unwrap();
        assert_eq!(ok["staff"], json!(12));
        let Err(Error::Validation(problems)) = apply(
            &defs(),
            RecordKind::Prospect,
            &Map::new(),
            &map(json!({"region": "Kisumu", "staff": "many", "founded": "1/3/2019", "notes": "x"})),
            true,
        ) else {
            panic!("expected a validation error");
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "custom_fields.founded",
                "custom_fields.notes",
                "custom_fields.region",
                "custom_fields.staff"
            ]
        );
    }

    #[test]
    fn required_fields_are_required_on_create_only() {
        let Err(Error::Validation(problems)) = apply(
            &defs(),
            RecordKind::Prospect,
            &Map::new(),
            &Map::new(),
            true,
        ) else {
            panic!("expected a validation error");
        };
        assert_eq!(problems[0].field, "custom_fields.region");
        let current = map(json!({"region": "Mombasa", "staff": 3}));
        let updated = apply(
            &defs(),
            RecordKind::Prospect,
            &current,
            &map(json!({"staff": null})),
            false,
        )
        .unwrap();
        assert_eq!(Value::Object(updated), json!({"region": "Mombasa"}));
    }

    #[test]
    fn definitions_are_checked() {
        let mut fields = defs();
        fields.push(fields[0].clone());
        fields[1].key = "Bad Key".into();
        fields[2].choices = vec!["x".into()];
        let problems = check_definitions(&mut fields);
        let names: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "custom_fields[1].key",
                "custom_fields[2].choices",
                "custom_fields[4].key"
            ]
        );
    }

    #[test]
    fn filter_values_take_the_field_type() {
        let defs = defs();
        assert_eq!(filter_value(&defs[1], "12").unwrap(), json!(12.0));
        assert!(filter_value(&defs[1], "twelve").is_err());
        assert!(filter_value(&defs[0], "Kisumu").is_err());
    }
}
