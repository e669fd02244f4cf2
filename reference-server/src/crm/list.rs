//! The query language every CRM list shares: filters, search, sort and keyset pagination.
//!
//! A list route takes its raw query pairs and the entity's [`ListSpec`]:
//!
//! - `limit` (1–200, default 50) and `cursor` (the previous page's `next_cursor`);
//! - `sort`: one of the spec's sortable fields, `-` in front for descending
//!   (e.g. `sort=-created_at`, `sort=name`); ties are broken by id, so pages never skip or
//!   repeat a record;
//! - `q`: search (when the spec has a search column): a case-insensitive substring of the
//!   record's search text (name, company, email, phones). A whole phone number in any
//!   usual form (`0712 345 678`, `+254712345678`) is looked up exactly on the record's
//!   main phone, through its index, when the spec has a phone column;
//! - `owner_id` (a user id, or `me`), `tag`, `created_after`, `created_before`
//!   (RFC 3339 or `YYYY-MM-DD`) when the spec has them;
//! - `cf.<key>=<value>` for the organization's custom fields of the record's kind;
//! - the entity's own filters, named in the spec and read by the service with
//!   [`ListQuery::text`], [`ListQuery::uuid`], [`ListQuery::time`], [`ListQuery::flag`].
//!
//! Any other parameter is refused (422), so a misspelt filter never silently lists
//! everything. The service builds its select (organization, visibility, its own filters),
//! then calls [`ListQuery::finish`] (search, tags, custom fields, common filters, keyset
//! condition, order, limit) and [`ListQuery::page`] on the rows.
//!
//! Keyset pagination compares the row value `(sort column, id)` with the cursor's, which
//! an index on `(organization_id, sort column, id)` answers with one seek however deep
//! the page: the cost of page 500 is the cost of page 1.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use edge_core::{Country, Cursor, Error, FieldError, Msisdn, Page, PageRequest};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LikeExpr, Query, SimpleExpr};
use sea_orm::{DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select, Value};
use serde::{Deserialize, Serialize};

use super::custom_fields::{self, FieldKind, RecordKind};
use crate::organization_settings::OrganizationSettings;

/// The type of a sortable column, for decoding cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKind {
    /// A timestamp column.
    Time,
    /// A text column.
    Text,
    /// An integer column.
    Integer,
}

/// A field a list can be sorted by.
#[derive(Debug, Clone, Copy)]
pub struct Sortable {
    /// The name in `sort=`, which is also the column's name.
    pub name: &'static str,
    /// Its type.
    pub kind: SortKind,
}

/// What one list accepts.
#[derive(Debug, Clone, Copy)]
pub struct ListSpec {
    /// The record kind in `record_tags` (`prospect`, `deal`, …), when the list filters
    /// by `tag`.
    pub tag_kind: Option<&'static str>,
    /// The sortable fields.
    pub sorts: &'static [Sortable],
    /// The default `sort` value, e.g. `-created_at`.
    pub default_sort: &'static str,
    /// The column `owner_id=` filters on, if any.
    pub owner_column: Option<&'static str>,
    /// The column `q=` searches, if any (lower-cased text kept by the service).
    pub search_column: Option<&'static str>,
    /// The main phone column (E.164), which a `q=` that is a whole phone number matches
    /// exactly.
    pub phone_column: Option<&'static str>,
    /// The kind whose custom fields `cf.<key>=` filters on, if any.
    pub custom_fields: Option<RecordKind>,
    /// The entity's own filters.
    pub filters: &'static [&'static str],
}

/// The value of a row's sort column, as a cursor carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SortValue {
    /// An integer.
    Integer(i64),
    /// A timestamp.
    Time(DateTime<Utc>),
    /// Text.
    Text(String),
}

impl From<SortValue> for Value {
    fn from(value: SortValue) -> Self {
        match value {
            SortValue::Integer(n) => n.into(),
            SortValue::Time(t) => t.into(),
            SortValue::Text(s) => s.into(),
        }
    }
}

/// A parsed list request.
#[derive(Debug)]
pub struct ListQuery {
    page: PageRequest,
    sort: Sortable,
    descending: bool,
    search: Option<Search>,
    owner: Option<uuid::Uuid>,
    tag: Option<String>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    custom: Vec<(String, FieldKind, serde_json::Value)>,
    filters: BTreeMap<String, String>,
    spec: ListSpec,
    page_size: Option<u32>,
}

/// The largest page an export reads at a time ([`ListQuery::with_page_size`]).
pub const MAX_EXPORT_PAGE: u32 = 5_000;

const COMMON: &[&str] = &["limit", "cursor", "sort"];

impl ListQuery {
    /// Parses the raw query pairs. `me` is the caller (for `owner_id=me`); `country` the
    /// organization's, for reading phone numbers in `q`.
    pub fn parse(
        pairs: Vec<(String, String)>,
        spec: ListSpec,
        settings: &OrganizationSettings,
        me: Option<uuid::Uuid>,
        country: Country,
    ) -> Result<Self, Error> {
        let mut problems = Vec::new();
        let mut raw = BTreeMap::new();
        for (key, value) in pairs {
            if raw.insert(key.clone(), value).is_some() {
                problems.push(FieldError::new(key, "is given more than once"));
            }
        }
        let take = |raw: &mut BTreeMap<String, String>, key: &str| raw.remove(key);

        let limit = match take(&mut raw, "limit") {
            Some(text) => match text.parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    problems.push(FieldError::new("limit", "must be a number from 1 to 200"));
                    None
                }
            },
            None => None,
        };
        let cursor = match take(&mut raw, "cursor")
            .map(Cursor::from_client)
            .transpose()
        {
            Ok(cursor) => cursor,
            Err(e) => {
                problems.push(FieldError::new("cursor", e.to_string()));
                None
            }
        };
        if limit.is_some_and(|n| !(1..=200).contains(&n)) {
            problems.push(FieldError::new("limit", "must be a number from 1 to 200"));
        }
        let page = PageRequest { limit, cursor };

        let sort_text = take(&mut raw, "sort").unwrap_or_else(|| spec.default_sort.to_owned());
        let (descending, name) = match sort_text.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, sort_text.as_str()),
        };
        let sort = match spec.sorts.iter().find(|s| s.name == name) {
            Some(sort) => *sort,
            None => {
                let names: Vec<_> = spec.sorts.iter().map(|s| s.name).collect();
                problems.push(FieldError::new(
                    "sort",
                    format!(
                        "must be one of {} (with - in front for descending)",
                        names.join(", ")
                    ),
                ));
                spec.sorts[0]
            }
        };

        let search = match (spec.search_column, take(&mut raw, "q")) {
            (Some(_), Some(q)) => match normalize_search(&q, country) {
                Some(q) => Some(q),
                None => {
                    problems.push(FieldError::new("q", "must have at least 2 characters"));
                    None
                }
            },
            (None, Some(_)) => {
                problems.push(FieldError::new("q", "this list has no search"));
                None
            }
            _ => None,
        };

        let owner = match (spec.owner_column, take(&mut raw, "owner_id")) {
            (Some(_), Some(text)) if text == "me" => match me {
                Some(me) => Some(me),
                None => {
                    problems.push(FieldError::new("owner_id", "`me` needs a signed-in user"));
                    None
                }
            },
            (Some(_), Some(text)) => match text.parse() {
                Ok(id) => Some(id),
                Err(_) => {
                    problems.push(FieldError::new("owner_id", "must be a user id or `me`"));
                    None
                }
            },
            (None, Some(_)) => {
                problems.push(FieldError::new("owner_id", "this list has no owner"));
                None
            }
            _ => None,
        };

        let tag = match (spec.tag_kind, take(&mut raw, "tag")) {
            (Some(_), Some(tag)) => Some(tag.trim().to_owned()),
            (None, Some(_)) => {
                problems.push(FieldError::new("tag", "this list has no tags"));
                None
            }
            _ => None,
        };

        let mut time = |raw: &mut BTreeMap<String, String>, key: &str| {
            take(raw, key).and_then(|text| match parse_time(&text) {
                Some(t) => Some(t),
                None => {
                    problems.push(FieldError::new(key, "must be RFC 3339 or YYYY-MM-DD"));
                    None
                }
            })
        };
        let created_after = time(&mut raw, "created_after");
        let created_before = time(&mut raw, "created_before");

        let mut custom = Vec::new();
        let custom_keys: Vec<String> = raw
            .keys()
            .filter(|k| k.starts_with("cf."))
            .cloned()
            .collect();
        for key in custom_keys {
            let Some(text) = raw.remove(&key) else {
                continue;
            };
            let name = &key[3..];
            let field = spec.custom_fields.and_then(|kind| {
                settings
                    .custom_fields
                    .iter()
                    .find(|f| f.key == name && f.applies_to.contains(&kind))
            });
            match field {
                Some(field) => match custom_fields::filter_value(field, &text) {
                    Ok(value) => custom.push((field.key.clone(), field.kind, value)),
                    Err(Error::Validation(mut p)) => problems.append(&mut p),
                    Err(other) => return Err(other),
                },
                None => problems.push(FieldError::new(
                    key.clone(),
                    "is not a custom field of these records",
                )),
            }
        }

        let mut filters = BTreeMap::new();
        for (key, value) in raw {
            if spec.filters.contains(&key.as_str()) {
                filters.insert(key, value);
            } else if !COMMON.contains(&key.as_str()) {
                let mut known: Vec<&str> = spec.filters.to_vec();
                known.extend(["limit", "cursor", "sort", "created_after", "created_before"]);
                if spec.search_column.is_some() {
                    known.push("q");
                }
                if spec.owner_column.is_some() {
                    known.push("owner_id");
                }
                if spec.tag_kind.is_some() {
                    known.push("tag");
                }
                if spec.custom_fields.is_some() {
                    known.push("cf.<custom field>");
                }
                problems.push(FieldError::new(
                    key,
                    format!("is not a filter of this list; use {}", known.join(", ")),
                ));
            }
        }

        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }
        Ok(Self {
            page,
            sort,
            descending,
            search,
            owner,
            tag,
            created_after,
            created_before,
            custom,
            filters,
            spec,
            page_size: None,
        })
    }

    /// An entity filter's raw text.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.filters.get(name).map(String::as_str)
    }

    /// An entity filter that must be an id.
    pub fn uuid(&self, name: &str) -> Result<Option<uuid::Uuid>, Error> {
        self.text(name)
            .map(|text| {
                text.parse()
                    .map_err(|_| Error::invalid(name.to_owned(), "must be an id"))
            })
            .transpose()
    }

    /// An entity filter that must be a time (RFC 3339, or a date meaning its midnight UTC).
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, Error> {
        self.text(name)
            .map(|text| {
                parse_time(text).ok_or_else(|| {
                    Error::invalid(name.to_owned(), "must be RFC 3339 or YYYY-MM-DD")
                })
            })
            .transpose()
    }

    /// An entity filter that must be `true` or `false`.
    pub fn flag(&self, name: &str) -> Result<Option<bool>, Error> {
        self.text(name)
            .map(|text| match text {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Error::invalid(name.to_owned(), "must be true or false")),
            })
            .transpose()
    }

    /// The page size asked for (or set by [`Self::with_page_size`]).
    pub fn limit(&self) -> u32 {
        self.page_size.unwrap_or_else(|| self.page.limit())
    }

    /// Reads pages of `size` rows (at most [`MAX_EXPORT_PAGE`]) instead of the `limit`
    /// a client may ask for: exports walk a whole list in larger pages than the API's.
    pub fn with_page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size.clamp(1, MAX_EXPORT_PAGE));
        self
    }

    /// Adds the common filters, search, tags, custom fields, the keyset condition, the
    /// order and the limit (one row more than the page, see [`Self::page`]) to `select`.
    /// `org` is the caller's organization (for the tag lookup).
    pub fn finish<E: EntityTrait>(
        &self,
        mut select: Select<E>,
        backend: DbBackend,
        org: uuid::Uuid,
    ) -> Result<Select<E>, Error> {
        let col = |name: &'static str| Expr::col(Alias::new(name));
        if let (Some(column), Some(owner)) = (self.spec.owner_column, self.owner) {
            select = select.filter(col(column).eq(owner));
        }
        match (
            &self.search,
            self.spec.phone_column,
            self.spec.search_column,
        ) {
            (Some(Search::Phone(phone)), Some(column), _) => {
                select = select.filter(col(column).eq(phone.as_e164()));
            }
            (Some(search), _, Some(column)) => {
                let text = match search {
                    Search::Phone(phone) => phone.as_e164().trim_start_matches('+').to_owned(),
                    Search::Text(text) => text.clone(),
                };
                select = select.filter(
                    col(column)
                        .like(LikeExpr::new(format!("%{}%", escape_like(&text))).escape('\\')),
                );
            }
            _ => {}
        }
        if let (Some(kind), Some(tag)) = (self.spec.tag_kind, &self.tag) {
            select = select.filter(
                col("id").in_subquery(
                    Query::select()
                        .column(Alias::new("record_id"))
                        .from(Alias::new("record_tags"))
                        .and_where(col("organization_id").eq(org))
                        .and_where(col("record_type").eq(kind))
                        .and_where(col("tag").eq(tag.to_lowercase()))
                        .to_owned(),
                ),
            );
        }
        if let Some(after) = self.created_after {
            select = select.filter(col("created_at").gte(after));
        }
        if let Some(before) = self.created_before {
            select = select.filter(col("created_at").lt(before));
        }
        for (key, kind, value) in &self.custom {
            select = select.filter(custom_condition(backend, key, *kind, value));
        }
        let after: Option<(SortValue, uuid::Uuid)> = self.page.after().map_err(Error::from)?;
        if let Some((value, id)) = after {
            let value = self.check_cursor_value(value)?;
            let row = Expr::tuple([col(self.sort.name), col("id")]);
            let at = Expr::tuple([Expr::val(Value::from(value)), Expr::val(id)]);
            select = select.filter(if self.descending {
                row.lt(at)
            } else {
                row.gt(at)
            });
        }
        let order = if self.descending {
            sea_orm::Order::Desc
        } else {
            sea_orm::Order::Asc
        };
        Ok(select
            .order_by(col(self.sort.name), order.clone())
            .order_by(col("id"), order)
            .limit(u64::from(self.limit()) + 1))
    }

    fn check_cursor_value(&self, value: SortValue) -> Result<SortValue, Error> {
        let ok = matches!(
            (&value, self.sort.kind),
            (SortValue::Integer(_), SortKind::Integer)
                | (SortValue::Time(_), SortKind::Time)
                | (SortValue::Text(_), SortKind::Text)
        );
        // A text that looks like a time decodes as a time; take it back as text.
        match (value, self.sort.kind) {
            (SortValue::Time(t), SortKind::Text) => Ok(SortValue::Text(t.to_rfc3339())),
            (value, _) if ok => Ok(value),
            _ => Err(Error::invalid(
                "cursor",
                "belongs to a list with another sort; start again without a cursor",
            )),
        }
    }

    /// Builds the page from rows fetched by a select passed through [`Self::finish`].
    /// `sort_value` reads a row's value of the named sort column.
    pub fn page<M>(
        &self,
        rows: Vec<M>,
        sort_value: impl Fn(&M, &str) -> SortValue,
        id: impl Fn(&M) -> uuid::Uuid,
    ) -> Page<M> {
        let name = self.sort.name;
        Page::from_overfetch(rows, self.limit(), |row| (sort_value(row, name), id(row)))
    }
}

fn custom_condition(
    backend: DbBackend,
    key: &str,
    kind: FieldKind,
    value: &serde_json::Value,
) -> SimpleExpr {
    let bound: Value = match value {
        serde_json::Value::Number(n) => n.as_f64().unwrap_or_default().into(),
        serde_json::Value::String(s) => s.clone().into(),
        other => other.to_string().into(),
    };
    match (backend, kind) {
        (DbBackend::Postgres, FieldKind::Number) => Expr::cust_with_values(
            "(\"custom\"->>$1)::double precision = $2",
            [Value::from(key.to_owned()), bound],
        ),
        (DbBackend::Postgres, _) => Expr::cust_with_values(
            "(\"custom\"->>$1) = $2",
            [Value::from(key.to_owned()), bound],
        ),
        _ => Expr::cust_with_values(
            "json_extract(\"custom\", ?) = ?",
            [Value::from(format!("$.{key}")), bound],
        ),
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What `q=` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    /// A whole phone number.
    Phone(Msisdn),
    /// Text, lower-cased and trimmed.
    Text(String),
}

/// Reads a search: a whole phone number in any usual form, or text. `None` if shorter
/// than 2 characters.
pub fn normalize_search(q: &str, country: Country) -> Option<Search> {
    let q = q.trim();
    if q.chars().count() < 2 {
        return None;
    }
    let looks_like_phone = q.chars().filter(char::is_ascii_digit).count() >= 9
        && q.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c));
    if looks_like_phone && let Ok(msisdn) = Msisdn::parse(q, country) {
        return Some(Search::Phone(msisdn));
    }
    Some(Search::Text(q.to_lowercase()))
}

/// The text a record is searched by: its name, company and email lower-cased, and each
/// phone as E.164 digits and in national form, separated by `|` so a search never matches
/// across two fields.
pub fn search_text<'a>(texts: impl IntoIterator<Item = &'a str>, phones: &[Msisdn]) -> String {
    let mut parts: Vec<String> = texts
        .into_iter()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for phone in phones {
        parts.push(phone.as_e164().trim_start_matches('+').to_owned());
        parts.push(format!("0{}", phone.national_number()));
    }
    parts.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: ListSpec = ListSpec {
        tag_kind: Some("prospect"),
        sorts: &[
            Sortable {
                name: "created_at",
                kind: SortKind::Time,
            },
            Sortable {
                name: "name",
                kind: SortKind::Text,
            },
        ],
        default_sort: "-created_at",
        owner_column: Some("owner_id"),
        search_column: Some("search_text"),
        phone_column: Some("phone"),
        custom_fields: Some(RecordKind::Prospect),
        filters: &["lead_source"],
    };

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse(items: &[(&str, &str)]) -> Result<ListQuery, Error> {
        ListQuery::parse(
            pairs(items),
            SPEC,
            &OrganizationSettings::default(),
            None,
            Country::Kenya,
        )
    }

    #[test]
    fn unknown_filters_and_bad_values_are_named() {
        let Err(Error::Validation(problems)) = parse(&[
            ("lead_sorce", "x"),
            ("sort", "colour"),
            ("q", "a"),
            ("owner_id", "me"),
            ("cf.region", "Nairobi"),
        ]) else {
            panic!("expected a validation error");
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["sort", "q", "owner_id", "cf.region", "lead_sorce"]);
        assert!(problems[4].message.contains("lead_source"));
    }

    #[test]
    fn entity_filters_are_kept_for_the_service() {
        let query = parse(&[("lead_source", "Referral"), ("sort", "name")]).unwrap();
        assert_eq!(query.text("lead_source"), Some("Referral"));
        assert_eq!(query.sort.name, "name");
        assert!(!query.descending);
        assert!(query.uuid("lead_source").is_err());
    }

    #[test]
    fn phones_are_searched_in_one_form() {
        let phone = Msisdn::parse("0712345678", Country::Kenya).unwrap();
        assert_eq!(
            normalize_search("0712 345 678", Country::Kenya),
            Some(Search::Phone(phone.clone()))
        );
        assert_eq!(
            normalize_search("+254712345678", Country::Kenya),
            Some(Search::Phone(phone))
        );
        assert_eq!(
            normalize_search(" Wanjiku ", Country::Kenya),
            Some(Search::Text("wanjiku".into()))
        );
        assert_eq!(normalize_search("a", Country::Kenya), None);
        let phone = Msisdn::parse("0712345678", Country::Kenya).unwrap();
        let text = search_text(["Wanjiku Kamau", "", "Acme Ltd"], &[phone]);
        assert_eq!(text, "wanjiku kamau|acme ltd|254712345678|0712345678");
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }
}
