//! From CSV cells to records: the fields a column can map to, the mapping suggested
//! from a header, reading a row into the same input the API takes (and checking it with
//! the same checks), duplicate keys, and the work on one batch of rows.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use edge_core::{Error, FieldError, Money};
use sea_orm::{ActiveModelTrait as _, DbBackend, IntoActiveModel as _, Statement};
use sea_orm::{ColumnTrait as _, Condition, ConnectionTrait, EntityTrait as _, QueryFilter as _};
use sea_orm::{TransactionSession as _, TransactionTrait};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Kind;
use crate::crm::CrmContext;
use crate::crm::contact::strings;
use crate::crm::custom_fields::{FieldKind, RecordKind};
use crate::crm::{prospects, relationships};
use crate::entities::{self, record_tags};

/// The prefix of a custom field's name in a mapping: `custom_fields.<key>`.
pub const CUSTOM: &str = "custom_fields.";

/// What to do with a row that matches an existing record (or an earlier row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Duplicates {
    /// Count it as a skipped duplicate.
    Skip,
    /// Patch the existing record with the row's non-empty values.
    Update,
    /// Create a record anyway.
    Create,
}

impl Duplicates {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Duplicates::Skip => "skip",
            Duplicates::Update => "update",
            Duplicates::Create => "create",
        }
    }

    /// Reads a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        [Duplicates::Skip, Duplicates::Update, Duplicates::Create]
            .into_iter()
            .find(|d| d.as_str() == value)
    }
}

/// The fields a CSV column can fill for `kind`, custom fields of the organization
/// included (`custom_fields.<key>`). `phones`, `services` and `tags` take several values
/// separated by `;` or `,`; money fields take a decimal amount in the organization's
/// currency (`15000`, `15000.50`). The owner is always the importer.
pub fn fields(kind: Kind, cx: &CrmContext) -> Vec<String> {
    let base: &[&str] = match kind {
        Kind::Prospects => &[
            "name",
            "company",
            "phone",
            "phones",
            "email",
            "lead_source",
            "industry",
            "services",
            "milestone",
            "happiness",
            "estimated_value",
            "tags",
        ],
        Kind::Relationships => &[
            "name",
            "company",
            "phone",
            "phones",
            "email",
            "industry",
            "services",
            "happiness",
            "contract_value",
            "tags",
        ],
    };
    let record = kind.record_kind();
    base.iter()
        .map(|f| (*f).to_owned())
        .chain(
            cx.settings
                .custom_fields
                .iter()
                .filter(|f| f.applies_to.contains(&record))
                .map(|f| format!("{CUSTOM}{}", f.key)),
        )
        .collect()
}

/// A header cell reduced for matching: lower-case letters and digits, words joined by `_`.
fn simplify(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// Other names people give the standard columns.
const ALIASES: &[(&str, &str)] = &[
    ("full_name", "name"),
    ("contact_name", "name"),
    ("customer_name", "name"),
    ("client_name", "name"),
    ("company_name", "company"),
    ("organisation", "company"),
    ("organization", "company"),
    ("business", "company"),
    ("mobile", "phone"),
    ("mobile_number", "phone"),
    ("phone_number", "phone"),
    ("telephone", "phone"),
    ("tel", "phone"),
    ("msisdn", "phone"),
    ("whatsapp", "phone"),
    ("email_address", "email"),
    ("e_mail", "email"),
    ("source", "lead_source"),
    ("sector", "industry"),
    ("stage", "milestone"),
    ("value", "estimated_value"),
    ("deal_value", "estimated_value"),
    ("contract", "contract_value"),
    ("labels", "tags"),
];

/// The field each column most likely fills (by name, alias, or a custom field's key or
/// label), or `null`; each field is suggested for one column at most.
pub fn suggest(columns: &[String], kind: Kind, cx: &CrmContext) -> Map<String, Value> {
    let fields = fields(kind, cx);
    let record = kind.record_kind();
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = Map::new();
    for column in columns {
        let simple = simplify(column);
        let candidate = if fields.contains(&simple) {
            Some(simple.clone())
        } else if let Some((_, field)) = ALIASES.iter().find(|(alias, _)| *alias == simple) {
            Some((*field).to_owned())
        } else {
            cx.settings
                .custom_fields
                .iter()
                .filter(|f| f.applies_to.contains(&record))
                .find(|f| simplify(&f.key) == simple || simplify(&f.label) == simple)
                .map(|f| format!("{CUSTOM}{}", f.key))
        };
        let suggestion = candidate.filter(|f| fields.contains(f) && taken.insert(f.clone()));
        out.insert(
            column.clone(),
            suggestion.map(Value::String).unwrap_or(Value::Null),
        );
    }
    out
}

/// Checks a mapping sent by a client against the file's columns and `kind`'s fields;
/// returns column index → field for the mapped columns.
pub fn check_mapping(
    mapping: &Map<String, Value>,
    columns: &[String],
    kind: Kind,
    cx: &CrmContext,
) -> Result<Vec<(usize, String)>, Error> {
    let fields = fields(kind, cx);
    let mut problems = Vec::new();
    let mut out: Vec<(usize, String)> = Vec::new();
    for (column, field) in mapping {
        let at = format!("mapping.{column}");
        let Some(index) = columns.iter().position(|c| c == column) else {
            problems.push(FieldError::new(at, "is not a column of the file"));
            continue;
        };
        match field {
            Value::Null => {}
            Value::String(field) if fields.contains(field) => {
                if out.iter().any(|(_, f)| f == field) {
                    problems.push(FieldError::new(
                        at,
                        format!("{field:?} is mapped from another column already"),
                    ));
                } else {
                    out.push((index, field.clone()));
                }
            }
            _ => problems.push(FieldError::new(
                at,
                format!("must be null or one of: {}", fields.join(", ")),
            )),
        }
    }
    if !out.iter().any(|(_, f)| f == "name") {
        problems.push(FieldError::new("mapping", "a column must map to \"name\""));
    }
    if out.iter().any(|(_, f)| f == "phone") && out.iter().any(|(_, f)| f == "phones") {
        problems.push(FieldError::new(
            "mapping",
            "map a column to either \"phone\" or \"phones\", not both",
        ));
    }
    crate::crm::fields::validation(problems)?;
    out.sort_by_key(|(i, _)| *i);
    Ok(out)
}

/// One problem of one row, as `errors.csv` and the dry run show it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// The row number in the file (the header is row 1).
    pub row: u64,
    /// The CSV column at fault, if one.
    pub column: Option<String>,
    /// `required`, `invalid` or `malformed_row`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

/// A record of either kind.
#[derive(Debug, Clone)]
pub enum Record {
    /// A prospect.
    Prospect(entities::prospects::Model),
    /// A relationship.
    Relationship(entities::relationships::Model),
}

impl Record {
    /// Its id.
    pub fn id(&self) -> uuid::Uuid {
        match self {
            Record::Prospect(r) => r.id,
            Record::Relationship(r) => r.id,
        }
    }

    /// When it was created.
    fn created_at(&self) -> DateTime<Utc> {
        match self {
            Record::Prospect(r) => r.created_at,
            Record::Relationship(r) => r.created_at,
        }
    }

    /// Who it belongs to (owner, account manager).
    fn owner(&self) -> Option<uuid::Uuid> {
        match self {
            Record::Prospect(r) => r.owner_id,
            Record::Relationship(r) => r.account_manager_id,
        }
    }

    fn tags(&self) -> Vec<String> {
        match self {
            Record::Prospect(r) => strings(&r.tags),
            Record::Relationship(r) => strings(&r.tags),
        }
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        match self {
            Record::Prospect(r) => r.updated_at = now,
            Record::Relationship(r) => r.updated_at = now,
        }
    }

    /// What identifies it as the same person: each phone (E.164) and the email
    /// (lower-cased, as stored).
    pub fn keys(&self) -> Vec<String> {
        let (phones, email) = match self {
            Record::Prospect(r) => (&r.phones, &r.email),
            Record::Relationship(r) => (&r.phones, &r.email),
        };
        let mut keys: Vec<String> = strings(phones)
            .into_iter()
            .map(|p| format!("p:{p}"))
            .collect();
        if let Some(email) = email {
            keys.push(format!("e:{}", email.to_lowercase()));
        }
        keys
    }
}

/// One file row read into the API's input for its kind.
enum Input {
    Prospect(prospects::ProspectInput),
    Relationship(relationships::RelationshipInput),
}

/// Splits a list cell on `;` or `,`.
fn list(cell: &str) -> Vec<String> {
    cell.split([';', ','])
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads the non-empty mapped cells of a row into the input the API takes. Problems of
/// reading (a money amount that is not one) are returned beside it, with the field left
/// out, so the checks still report everything else.
fn read(
    kind: Kind,
    cx: &CrmContext,
    mapping: &[(usize, String)],
    cells: &[String],
) -> (Input, Vec<FieldError>) {
    let mut problems = Vec::new();
    let mut prospect = prospects::ProspectInput::default();
    let mut relationship = relationships::RelationshipInput::default();
    let mut custom = Map::new();
    for (index, field) in mapping {
        let cell = cells.get(*index).map(|c| c.trim()).unwrap_or_default();
        if cell.is_empty() {
            continue;
        }
        let text = Some(cell.to_owned());
        match field.as_str() {
            "name" => {
                prospect.name = text.clone();
                relationship.name = text;
            }
            "company" => {
                prospect.company = Some(text.clone());
                relationship.company = Some(text);
            }
            "phone" => {
                prospect.phone = text.clone();
                relationship.phone = text;
            }
            "phones" => {
                prospect.phones = Some(list(cell));
                relationship.phones = Some(list(cell));
            }
            "email" => {
                prospect.email = Some(text.clone());
                relationship.email = Some(text);
            }
            "industry" => {
                prospect.industry = Some(text.clone());
                relationship.industry = Some(text);
            }
            "services" => {
                prospect.services = Some(list(cell));
                relationship.services = Some(list(cell));
            }
            "happiness" => {
                prospect.happiness = Some(text.clone());
                relationship.happiness = Some(text);
            }
            "tags" => {
                prospect.tags = Some(list(cell));
                relationship.tags = Some(list(cell));
            }
            "lead_source" => prospect.lead_source = Some(text),
            "milestone" => prospect.milestone = text,
            "estimated_value" | "contract_value" => match Money::parse(cell, cx.currency) {
                Ok(money) => {
                    prospect.estimated_value = Some(Some(money));
                    relationship.contract_value = Some(Some(money));
                }
                Err(e) => problems.push(FieldError::new(field.clone(), e.to_string())),
            },
            other => {
                if let Some(key) = other.strip_prefix(CUSTOM) {
                    let number = cx
                        .settings
                        .custom_fields
                        .iter()
                        .any(|f| f.key == key && f.kind == FieldKind::Number);
                    let value = number
                        .then(|| cell.parse::<f64>().ok())
                        .flatten()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                        .unwrap_or_else(|| Value::String(cell.to_owned()));
                    custom.insert(key.to_owned(), value);
                }
            }
        }
    }
    if !custom.is_empty() {
        prospect.custom_fields = Some(custom.clone());
        relationship.custom_fields = Some(custom);
    }
    let input = match kind {
        Kind::Prospects => Input::Prospect(prospect),
        Kind::Relationships => Input::Relationship(relationship),
    };
    (input, problems)
}

/// What a job knows while it works through its rows.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The organization.
    pub org: uuid::Uuid,
    /// Prospects or relationships.
    pub kind: Kind,
    /// The file's columns.
    pub columns: Vec<String>,
    /// Column index → field.
    pub mapping: Vec<(usize, String)>,
    /// The duplicate rule.
    pub duplicates: Duplicates,
    /// Who created records belong to.
    pub owner: Option<uuid::Uuid>,
    /// Who created them (the importing user).
    pub created_by: Option<uuid::Uuid>,
    /// When set, only this user's records may be updated.
    pub visible_to: Option<uuid::Uuid>,
}

impl Plan {
    fn column_of(&self, field: &str) -> Option<String> {
        let base = field.split('[').next().unwrap_or(field);
        self.mapping
            .iter()
            .find(|(_, f)| f == base)
            .and_then(|(i, _)| self.columns.get(*i).cloned())
    }

    fn errors(&self, row: u64, problems: Vec<FieldError>) -> Vec<RowError> {
        problems
            .into_iter()
            .map(|p| RowError {
                row,
                column: self.column_of(&p.field),
                code: if p.message == "is required" {
                    "required"
                } else {
                    "invalid"
                },
                message: if p.field == "_" {
                    p.message
                } else {
                    format!("{}: {}", p.field, p.message)
                },
            })
            .collect()
    }

    /// Checks one row as a create, exactly as the API checks the same record.
    fn validate(
        &self,
        cx: &CrmContext,
        row: u64,
        cells: &[String],
        now: DateTime<Utc>,
    ) -> Result<Record, Vec<RowError>> {
        if cells.len() > self.columns.len()
            && cells[self.columns.len()..]
                .iter()
                .any(|c| !c.trim().is_empty())
        {
            return Err(vec![RowError {
                row,
                column: None,
                code: "malformed_row",
                message: format!(
                    "the row has {} cells; the header has {} columns",
                    cells.len(),
                    self.columns.len()
                ),
            }]);
        }
        let (input, mut problems) = read(self.kind, cx, &self.mapping, cells);
        let checked = match input {
            Input::Prospect(input) => {
                let mut record = prospects::blank(self.org, cx, now);
                record.owner_id = self.owner;
                record.created_by = self.created_by;
                prospects::check(cx, &mut record, input, true).map(|_| Record::Prospect(record))
            }
            Input::Relationship(input) => {
                let mut record = relationships::blank(self.org, cx, now, None);
                record.account_manager_id = self.owner;
                record.created_by = self.created_by;
                relationships::check(cx, &mut record, input, true)
                    .map(|_| Record::Relationship(record))
            }
        };
        match checked {
            Ok(record) if problems.is_empty() => Ok(record),
            Ok(_) => Err(self.errors(row, problems)),
            Err(Error::Validation(mut more)) => {
                problems.append(&mut more);
                Err(self.errors(row, problems))
            }
            Err(other) => Err(self.errors(row, vec![FieldError::new("_", other.to_string())])),
        }
    }

    /// Patches `record` with the row's non-empty values, as `PATCH` would.
    fn patch(
        &self,
        cx: &CrmContext,
        record: &mut Record,
        row: u64,
        cells: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), Vec<RowError>> {
        let (input, problems) = read(self.kind, cx, &self.mapping, cells);
        if !problems.is_empty() {
            return Err(self.errors(row, problems));
        }
        let mut updated = record.clone();
        let checked = match (input, &mut updated) {
            (Input::Prospect(input), Record::Prospect(r)) => {
                prospects::check(cx, r, input, false).map(|_| ())
            }
            (Input::Relationship(input), Record::Relationship(r)) => {
                relationships::check(cx, r, input, false).map(|_| ())
            }
            _ => Err(Error::internal("an import row of another kind")),
        };
        match checked {
            Ok(()) => {
                updated.touch(now);
                *record = updated;
                Ok(())
            }
            Err(Error::Validation(problems)) => Err(self.errors(row, problems)),
            Err(other) => Err(self.errors(row, vec![FieldError::new("_", other.to_string())])),
        }
    }
}

/// What a job remembers across batches: the records created or matched by earlier rows
/// of the file, by duplicate key.
#[derive(Debug, Default)]
pub struct Seen(HashMap<String, uuid::Uuid>);

/// The outcome of one batch.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Records to create.
    pub inserts: Vec<Record>,
    /// Existing records to update.
    pub updates: Vec<Record>,
    /// Each refused row: its number, original values and problems.
    pub failed: Vec<(u64, Vec<String>, Vec<RowError>)>,
    /// Rows that created a record.
    pub imported: u64,
    /// Rows that updated a record.
    pub updated: u64,
    /// Rows skipped as duplicates.
    pub skipped: u64,
    /// Rows that matched an existing record or an earlier row, whatever the rule.
    pub duplicates: u64,
}

/// Where a duplicate's record is, within the batch being built.
enum Slot {
    Insert(usize),
    Update(usize),
}

/// Validates a batch of rows and decides for each: create, update, skip or refuse.
/// Existing records are matched with one query per batch (see `matching`); earlier rows
/// of the file through `seen` (and, once committed, the database).
pub async fn process<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    plan: &Plan,
    cx: &CrmContext,
    rows: Vec<(u64, Vec<String>)>,
    seen: &mut Seen,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome::default();
    let mut valid = Vec::with_capacity(rows.len());
    for (row, cells) in rows {
        match plan.validate(cx, row, &cells, now) {
            Ok(record) => valid.push((row, cells, record)),
            Err(errors) => outcome.failed.push((row, cells, errors)),
        }
    }
    let existing = if plan.duplicates == Duplicates::Create {
        HashMap::new()
    } else {
        let keys: Vec<String> = valid.iter().flat_map(|(_, _, r)| r.keys()).collect();
        matching(conn, plan, &keys).await?
    };
    let mut slots: HashMap<uuid::Uuid, Slot> = HashMap::new();
    for (row, cells, record) in valid {
        let keys = record.keys();
        let found = if plan.duplicates == Duplicates::Create {
            None
        } else {
            keys.iter().find_map(|k| {
                existing
                    .get(k)
                    .map(Record::id)
                    .or_else(|| seen.0.get(k).copied())
            })
        };
        let Some(target) = found else {
            for key in keys {
                seen.0.entry(key).or_insert(record.id());
            }
            slots.insert(record.id(), Slot::Insert(outcome.inserts.len()));
            outcome.inserts.push(record);
            outcome.imported += 1;
            continue;
        };
        outcome.duplicates += 1;
        for key in &keys {
            seen.0.entry(key.clone()).or_insert(target);
        }
        if plan.duplicates == Duplicates::Skip {
            outcome.skipped += 1;
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(vacant) = slots.entry(target) {
            // A record of the organization: matched in this batch's lookup, or (by a
            // second phone) through an earlier batch of this run.
            let record = match existing.values().find(|r| r.id() == target) {
                Some(record) => Some(record.clone()),
                None => by_id(conn, plan, target).await?,
            };
            match record {
                Some(record)
                    if plan
                        .visible_to
                        .is_none_or(|user| record.owner() == Some(user)) =>
                {
                    vacant.insert(Slot::Update(outcome.updates.len()));
                    outcome.updates.push(record);
                }
                // Hidden from the importer: left alone.
                Some(_) => {
                    outcome.skipped += 1;
                    continue;
                }
                // Only in a dry run: created by an earlier batch that was never written.
                None => {
                    outcome.updated += 1;
                    continue;
                }
            }
        }
        let slot = match slots.get(&target) {
            Some(Slot::Insert(i)) => outcome.inserts.get_mut(*i),
            Some(Slot::Update(i)) => outcome.updates.get_mut(*i),
            None => None,
        };
        let Some(target) = slot else {
            return Err(Error::internal("an import slot points nowhere"));
        };
        match plan.patch(cx, target, row, &cells, now) {
            Ok(()) => {
                outcome.updated += 1;
                for key in target.keys() {
                    seen.0.entry(key).or_insert(target.id());
                }
            }
            Err(errors) => outcome.failed.push((row, cells, errors)),
        }
    }
    outcome.failed.sort_by_key(|(row, _, _)| *row);
    Ok(outcome)
}

/// The organization's records of the plan's kind that have one of `keys`, by key (the
/// oldest record wins a key).
///
/// On PostgreSQL each key is looked up on its own `(organization_id, phone|email)` index
/// (see [`lookup_sql`]); elsewhere one query asks for the phones and emails with `IN`.
async fn matching<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    plan: &Plan,
    keys: &[String],
) -> Result<HashMap<String, Record>, Error> {
    let distinct = |prefix: &str| -> Vec<String> {
        let mut values: Vec<String> = keys
            .iter()
            .filter_map(|k| k.strip_prefix(prefix))
            .map(str::to_owned)
            .collect();
        values.sort_unstable();
        values.dedup();
        values
    };
    let phones = distinct("p:");
    let emails = distinct("e:");
    if phones.is_empty() && emails.is_empty() {
        return Ok(HashMap::new());
    }
    let backend = conn.get_database_backend();
    if backend == DbBackend::Postgres {
        // A plan cached while the table was nearly empty (a sequential scan per key) would
        // otherwise be kept as the table grows; each lookup is planned for the table as it is.
        let txn = conn.begin().await.map_err(Error::internal)?;
        txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
            .await
            .map_err(Error::internal)?;
        let found = lookup(&txn, plan, backend, &phones, &emails).await?;
        txn.commit().await.map_err(Error::internal)?;
        return Ok(found);
    }
    lookup(conn, plan, backend, &phones, &emails).await
}

/// The records [`matching`] looks for, keyed by phone and email, oldest first.
async fn lookup<C: ConnectionTrait>(
    conn: &C,
    plan: &Plan,
    backend: DbBackend,
    phones: &[String],
    emails: &[String],
) -> Result<HashMap<String, Record>, Error> {
    let statement = (backend == DbBackend::Postgres).then(|| {
        Statement::from_sql_and_values(
            backend,
            lookup_sql(plan.kind),
            [
                plan.org.into(),
                Value::Array(phones.iter().cloned().map(Value::String).collect()).into(),
                Value::Array(emails.iter().cloned().map(Value::String).collect()).into(),
            ],
        )
    });
    let mut records: Vec<Record> = match plan.kind {
        Kind::Prospects => {
            use entities::prospects::{Column, Entity};
            let found = match statement {
                Some(statement) => Entity::find().from_raw_sql(statement).all(conn).await,
                None => {
                    Entity::find()
                        .filter(Column::OrganizationId.eq(plan.org))
                        .filter(Column::DeletedAt.is_null())
                        .filter(
                            Condition::any()
                                .add(Column::Phone.is_in(phones.iter().cloned()))
                                .add(Column::Email.is_in(emails.iter().cloned())),
                        )
                        .all(conn)
                        .await
                }
            };
            found
                .map_err(Error::internal)?
                .into_iter()
                .map(Record::Prospect)
                .collect()
        }
        Kind::Relationships => {
            use entities::relationships::{Column, Entity};
            let found = match statement {
                Some(statement) => Entity::find().from_raw_sql(statement).all(conn).await,
                None => {
                    Entity::find()
                        .filter(Column::OrganizationId.eq(plan.org))
                        .filter(Column::DeletedAt.is_null())
                        .filter(
                            Condition::any()
                                .add(Column::Phone.is_in(phones.iter().cloned()))
                                .add(Column::Email.is_in(emails.iter().cloned())),
                        )
                        .all(conn)
                        .await
                }
            };
            found
                .map_err(Error::internal)?
                .into_iter()
                .map(Record::Relationship)
                .collect()
        }
    };
    // Oldest first, so the oldest record wins each key.
    records.sort_by_key(|r| (r.created_at(), r.id()));
    let mut out = HashMap::new();
    for record in records {
        for key in record.keys() {
            out.entry(key).or_insert_with(|| record.clone());
        }
    }
    Ok(out)
}

/// The PostgreSQL lookup of `kind`'s records by phone (`$2`) or email (`$3`, JSON arrays
/// of strings) in organization `$1`. Each key is one seek on `(organization_id, phone)`
/// or `(organization_id, email)`: the `LATERAL … OFFSET 0` subquery keeps the planner from
/// reading the organization's rows and filtering them, which it otherwise prefers while
/// the table's statistics predate a bulk load (with no statistics, 500 phones look like
/// they match every row) and which made each batch slower as the table grew.
fn lookup_sql(kind: Kind) -> String {
    let table = match kind {
        Kind::Prospects => "prospects",
        Kind::Relationships => "relationships",
    };
    let by = |column: &str, param: &str| {
        format!(
            "SELECT r.* FROM jsonb_array_elements_text({param}) AS k(v) \
             CROSS JOIN LATERAL (SELECT * FROM {table} \
             WHERE organization_id = $1 AND {column} = k.v AND deleted_at IS NULL \
             OFFSET 0) AS r"
        )
    };
    format!("{} UNION ALL {}", by("phone", "$2"), by("email", "$3"))
}

/// One record of the plan's kind, by id (not deleted).
async fn by_id<C: ConnectionTrait>(
    conn: &C,
    plan: &Plan,
    id: uuid::Uuid,
) -> Result<Option<Record>, Error> {
    Ok(match plan.kind {
        Kind::Prospects => entities::prospects::Entity::find_by_id((plan.org, id))
            .filter(entities::prospects::Column::DeletedAt.is_null())
            .one(conn)
            .await
            .map_err(Error::internal)?
            .map(Record::Prospect),
        Kind::Relationships => entities::relationships::Entity::find_by_id((plan.org, id))
            .filter(entities::relationships::Column::DeletedAt.is_null())
            .one(conn)
            .await
            .map_err(Error::internal)?
            .map(Record::Relationship),
    })
}

/// Rows per `INSERT` statement: well under SQLite's and PostgreSQL's bind limits.
const ROWS_PER_STATEMENT: usize = 200;

/// Writes a batch's records and their tags (inside the batch's transaction).
pub async fn write<C: ConnectionTrait>(
    conn: &C,
    plan: &Plan,
    outcome: &Outcome,
) -> Result<(), Error> {
    let record_type = plan.kind.record_kind_name();
    for chunk in outcome.inserts.chunks(ROWS_PER_STATEMENT) {
        match plan.kind {
            Kind::Prospects => {
                let rows: Vec<entities::prospects::ActiveModel> = chunk
                    .iter()
                    .filter_map(|r| match r {
                        Record::Prospect(r) => Some(r.clone().into()),
                        Record::Relationship(_) => None,
                    })
                    .collect();
                if !rows.is_empty() {
                    entities::prospects::Entity::insert_many(rows)
                        .exec_without_returning(conn)
                        .await
                        .map_err(Error::internal)?;
                }
            }
            Kind::Relationships => {
                let rows: Vec<entities::relationships::ActiveModel> = chunk
                    .iter()
                    .filter_map(|r| match r {
                        Record::Relationship(r) => Some(r.clone().into()),
                        Record::Prospect(_) => None,
                    })
                    .collect();
                if !rows.is_empty() {
                    entities::relationships::Entity::insert_many(rows)
                        .exec_without_returning(conn)
                        .await
                        .map_err(Error::internal)?;
                }
            }
        }
    }
    for record in &outcome.updates {
        match record {
            Record::Prospect(r) => {
                r.clone()
                    .into_active_model()
                    .reset_all()
                    .update(conn)
                    .await
                    .map_err(Error::internal)?;
            }
            Record::Relationship(r) => {
                r.clone()
                    .into_active_model()
                    .reset_all()
                    .update(conn)
                    .await
                    .map_err(Error::internal)?;
            }
        }
    }
    let updated: Vec<uuid::Uuid> = outcome.updates.iter().map(Record::id).collect();
    for ids in updated.chunks(ROWS_PER_STATEMENT) {
        record_tags::Entity::delete_many()
            .filter(record_tags::Column::OrganizationId.eq(plan.org))
            .filter(record_tags::Column::RecordType.eq(record_type))
            .filter(record_tags::Column::RecordId.is_in(ids.to_vec()))
            .exec(conn)
            .await
            .map_err(Error::internal)?;
    }
    let tags: Vec<record_tags::ActiveModel> = outcome
        .inserts
        .iter()
        .chain(&outcome.updates)
        .flat_map(|record| {
            let id = record.id();
            record
                .tags()
                .into_iter()
                .map(|t| t.to_lowercase())
                .collect::<HashSet<_>>()
                .into_iter()
                .map(move |tag| record_tags::ActiveModel {
                    organization_id: sea_orm::ActiveValue::Set(plan.org),
                    record_type: sea_orm::ActiveValue::Set(record_type.to_owned()),
                    tag: sea_orm::ActiveValue::Set(tag),
                    record_id: sea_orm::ActiveValue::Set(id),
                })
        })
        .collect();
    let mut tags = tags.into_iter().peekable();
    while tags.peek().is_some() {
        let chunk: Vec<_> = tags.by_ref().take(ROWS_PER_STATEMENT * 2).collect();
        record_tags::Entity::insert_many(chunk)
            .exec_without_returning(conn)
            .await
            .map_err(Error::internal)?;
    }
    Ok(())
}

impl Kind {
    /// The custom fields' record kind.
    pub fn record_kind(self) -> RecordKind {
        match self {
            Kind::Prospects => RecordKind::Prospect,
            Kind::Relationships => RecordKind::Relationship,
        }
    }

    /// The record type in `record_tags`.
    pub fn record_kind_name(self) -> &'static str {
        match self {
            Kind::Prospects => "prospect",
            Kind::Relationships => "relationship",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_matched_by_name_alias_and_once() {
        assert_eq!(simplify("  Phone Number "), "phone_number");
        assert_eq!(simplify("E-mail"), "e_mail");
        assert_eq!(
            list("vip; nairobi,,  retail "),
            ["vip", "nairobi", "retail"]
        );
        assert_eq!(Duplicates::parse("update"), Some(Duplicates::Update));
        assert_eq!(Duplicates::parse("merge"), None);
    }
}
