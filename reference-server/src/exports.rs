//! Exports: the CRM lists as CSV, and everything an organization owns as NDJSON.
//!
//! Both are streamed. The handler checks the request (permission, filters) and answers
//! at once; a task running in the organization's tenant scope then reads the data page
//! by page and sends each page's bytes through a small bounded channel to the response
//! body, so a slow client slows the reading down and the server never holds the whole
//! file. A failure halfway is logged and ends the body early (the client sees a
//! truncated transfer, never a file that looks complete).
//!
//! ## CSV (`GET /exports/{list}.csv`)
//!
//! `prospects`, `relationships`, `deals`, `tickets` and `activities` take exactly the
//! filters, search and sort of their list route (see [`crate::crm::list`]) and follow the
//! organization's record visibility for the caller, because they are read through the
//! list itself, in pages of [`CSV_PAGE`] rows. `limit` and `cursor` are refused: an
//! export has every row. The header is stable: the record's columns (see
//! [`RecordList::columns`]) then `cf.<key>` for each custom field of that kind, in the
//! order of the organization's settings. Lists (tags, phones) are joined with `; `.
//! A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with
//! `'` so a spreadsheet never reads it as a formula.
//!
//! ## Organization export (`GET /exports/organization`)
//!
//! One JSON object per line (NDJSON), in one read snapshot of the database:
//!
//! 1. `{"format": "edge.organization-export", "version": 1, "organization_id", "exported_at", "tables": [..]}`;
//! 2. `{"table": "organizations", "row": {..}}`, then the members' `users` rows;
//! 3. `{"table": <name>, "row": {column: value}}` for every row of every tenant table
//!    ([`TENANT_TABLES`]), table by table in that order (parents before children), rows
//!    in primary-key order;
//! 4. `{"end": true, "rows": <count>}`, so a reader knows the file is complete.
//!
//! Column values are as stored: ids and text as strings, numbers as numbers, JSON columns
//! as JSON, times as RFC 3339. Secrets never leave: password hashes, sealed credentials
//! and token hashes are left out of `row` and named in the line's `"redacted"` list. A
//! line is an insertable row of its table, which is what an import reads back.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use edge_core::{Error, OrgId, Page};
use edge_tenancy::{Permission, TenantContext, UsageMeter};
use futures::Stream;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, Iden, Iterable, ModelTrait, PaginatorTrait,
    PrimaryKeyToColumn, QueryFilter, QueryOrder,
};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::audit::{self, Actor, ClientInfo};
use crate::crm::custom_fields::RecordKind;
use crate::crm::{self, CrmContext};
use crate::db::{begin_read, begin_write};
use crate::entities;
use crate::tenant_scope;

/// Rows read per page by a CSV export.
pub const CSV_PAGE: u32 = 1_000;
/// Rows read per page by the organization export.
pub const ORGANIZATION_PAGE: u64 = 1_000;
/// The usage metric counting exports.
pub const EXPORTS: &str = "exports";
/// The usage metric counting rows exported.
pub const EXPORTED_ROWS: &str = "exported_rows";

/// Chunks in flight between the reading task and the response body.
const CHANNEL_CHUNKS: usize = 4;

/// A streamed export body: chunks of bytes, or the error that cut it short.
pub type ExportStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A CRM list that can be exported as CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordList {
    /// `GET /prospects`.
    Prospects,
    /// `GET /relationships`.
    Relationships,
    /// `GET /deals`.
    Deals,
    /// `GET /tickets`.
    Tickets,
    /// `GET /activities`.
    Activities,
}

impl RecordList {
    /// Every exportable list.
    pub const ALL: [RecordList; 5] = [
        RecordList::Prospects,
        RecordList::Relationships,
        RecordList::Deals,
        RecordList::Tickets,
        RecordList::Activities,
    ];

    /// The list's name, as in its route and file name.
    pub fn name(self) -> &'static str {
        match self {
            RecordList::Prospects => "prospects",
            RecordList::Relationships => "relationships",
            RecordList::Deals => "deals",
            RecordList::Tickets => "tickets",
            RecordList::Activities => "activities",
        }
    }

    /// The kind whose custom fields become columns, if the records have custom fields.
    fn custom_fields(self) -> Option<RecordKind> {
        match self {
            RecordList::Prospects => Some(RecordKind::Prospect),
            RecordList::Relationships => Some(RecordKind::Relationship),
            RecordList::Deals => Some(RecordKind::Deal),
            RecordList::Tickets | RecordList::Activities => None,
        }
    }

    /// The fixed columns: header name and the JSON pointer into the record as the API
    /// returns it.
    pub fn columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            RecordList::Prospects => &[
                ("id", "/id"),
                ("name", "/name"),
                ("company", "/company"),
                ("phone", "/phone"),
                ("phones", "/phones"),
                ("email", "/email"),
                ("lead_source", "/lead_source"),
                ("industry", "/industry"),
                ("services", "/services"),
                ("owner_id", "/owner_id"),
                ("milestone", "/milestone"),
                ("happiness", "/happiness"),
                ("estimated_value", "/estimated_value/amount"),
                ("estimated_value_currency", "/estimated_value/currency"),
                ("tags", "/tags"),
                ("relationship_id", "/relationship_id"),
                ("created_by", "/created_by"),
                ("created_at", "/created_at"),
                ("updated_at", "/updated_at"),
            ],
            RecordList::Relationships => &[
                ("id", "/id"),
                ("name", "/name"),
                ("company", "/company"),
                ("phone", "/phone"),
                ("phones", "/phones"),
                ("email", "/email"),
                ("industry", "/industry"),
                ("services", "/services"),
                ("account_manager_id", "/account_manager_id"),
                ("happiness", "/happiness"),
                ("contract_value", "/contract_value/amount"),
                ("contract_value_currency", "/contract_value/currency"),
                ("tags", "/tags"),
                ("prospect_id", "/prospect_id"),
                ("created_by", "/created_by"),
                ("created_at", "/created_at"),
                ("updated_at", "/updated_at"),
            ],
            RecordList::Deals => &[
                ("id", "/id"),
                ("title", "/title"),
                ("value", "/value/amount"),
                ("currency", "/value/currency"),
                ("pipeline_id", "/pipeline_id"),
                ("stage_id", "/stage_id"),
                ("stage", "/stage/name"),
                ("status", "/status"),
                ("close_reason", "/close_reason"),
                ("closed_at", "/closed_at"),
                ("expected_close_on", "/expected_close_on"),
                ("owner_id", "/owner_id"),
                ("prospect_id", "/prospect_id"),
                ("relationship_id", "/relationship_id"),
                ("tags", "/tags"),
                ("created_by", "/created_by"),
                ("created_at", "/created_at"),
                ("updated_at", "/updated_at"),
            ],
            RecordList::Tickets => &[
                ("id", "/id"),
                ("relationship_id", "/relationship_id"),
                ("subject", "/subject"),
                ("description", "/description"),
                ("status", "/status"),
                ("priority", "/priority"),
                ("assignee_id", "/assignee_id"),
                ("due_at", "/due_at"),
                ("overdue", "/overdue"),
                ("created_by", "/created_by"),
                ("created_at", "/created_at"),
                ("updated_at", "/updated_at"),
                ("resolved_at", "/resolved_at"),
                ("closed_at", "/closed_at"),
            ],
            RecordList::Activities => &[
                ("id", "/id"),
                ("kind", "/kind"),
                ("subject_type", "/subject_type"),
                ("subject_id", "/subject_id"),
                ("title", "/title"),
                ("body", "/body"),
                ("due_at", "/due_at"),
                ("completed_at", "/completed_at"),
                ("completed", "/completed"),
                ("overdue", "/overdue"),
                ("owner_id", "/owner_id"),
                ("created_by", "/created_by"),
                ("created_at", "/created_at"),
                ("updated_at", "/updated_at"),
            ],
        }
    }

    /// One page of the list, records as the API returns them.
    async fn page(
        self,
        db: &DatabaseConnection,
        ctx: &TenantContext,
        now: DateTime<Utc>,
        pairs: Vec<(String, String)>,
    ) -> Result<Page<Value>, Error> {
        let size = Some(CSV_PAGE);
        fn values<T: serde::Serialize>(page: Page<T>) -> Result<Page<Value>, Error> {
            let items = page
                .items
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()
                .map_err(Error::internal)?;
            Ok(Page {
                items,
                next_cursor: page.next_cursor,
            })
        }
        match self {
            RecordList::Prospects => {
                values(crm::prospects::list_sized(db, ctx, pairs, size).await?)
            }
            RecordList::Relationships => {
                values(crm::relationships::list_sized(db, ctx, pairs, size).await?)
            }
            RecordList::Deals => values(crm::deals::list_sized(db, ctx, pairs, size).await?),
            RecordList::Tickets => {
                values(crm::tickets::list_sized(db, ctx, now, pairs, size).await?)
            }
            RecordList::Activities => {
                values(crm::activities::list_sized(db, ctx, now, pairs, size).await?)
            }
        }
    }
}

/// Guards a cell against spreadsheet formula injection: a value starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return gets a leading `'`.
pub fn guard_formula(cell: String) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell,
    }
}

/// A JSON value as one CSV cell (before the formula guard).
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Some(other) => other.to_string(),
    }
}

/// The header and the way to read each column from a record.
struct CsvLayout {
    header: Vec<String>,
    fixed: &'static [(&'static str, &'static str)],
    custom: Vec<String>,
}

impl CsvLayout {
    fn new(list: RecordList, cx: &CrmContext) -> Self {
        let fixed = list.columns();
        let custom: Vec<String> = match list.custom_fields() {
            Some(kind) => cx
                .settings
                .custom_fields
                .iter()
                .filter(|field| field.applies_to.contains(&kind))
                .map(|field| field.key.clone())
                .collect(),
            None => Vec::new(),
        };
        let mut header: Vec<String> = fixed.iter().map(|(name, _)| (*name).to_owned()).collect();
        header.extend(custom.iter().map(|key| format!("cf.{key}")));
        Self {
            header,
            fixed,
            custom,
        }
    }

    /// Writes `records` (and the header first when `header`) as CSV bytes.
    fn write(&self, records: &[Value], header: bool) -> Result<Bytes, Error> {
        let mut out = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::with_capacity(256 * (records.len() + 1)));
        if header {
            out.write_record(&self.header).map_err(Error::internal)?;
        }
        let mut row = Vec::with_capacity(self.header.len());
        for record in records {
            row.clear();
            for (_, pointer) in self.fixed {
                row.push(guard_formula(cell(record.pointer(pointer))));
            }
            for key in &self.custom {
                row.push(guard_formula(cell(
                    record.get("custom_fields").and_then(|c| c.get(key)),
                )));
            }
            out.write_record(&row).map_err(Error::internal)?;
        }
        let bytes = out
            .into_inner()
            .map_err(|e| Error::internal(e.into_error()))?;
        Ok(Bytes::from(bytes))
    }
}

/// What a streamed export needs besides its query.
#[derive(Clone)]
pub struct ExportDeps {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// Counts exports and rows exported.
    pub usage: Arc<dyn UsageMeter>,
}

/// A channel-backed body and the sending half for the reading task.
fn channel() -> (mpsc::Sender<Result<Bytes, std::io::Error>>, ExportStream) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHANNEL_CHUNKS);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (tx, Box::pin(stream))
}

/// Records who exported what, in the audit log, before the first byte is sent.
async fn audit_export(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    action: &'static str,
    details: Value,
) -> Result<(), Error> {
    let txn = begin_write(db).await.map_err(Error::internal)?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), action)
        .details(details)
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(Error::internal)
}

/// Counts a finished (or cut short) export's rows; a counting failure is only logged.
async fn count_usage(usage: &dyn UsageMeter, org: OrgId, rows: u64) {
    for (metric, amount) in [(EXPORTS, 1), (EXPORTED_ROWS, rows)] {
        if let Err(err) = usage.record(org, metric, amount).await {
            tracing::warn!(error = %err, metric, "could not count an export");
        }
    }
}

/// Starts a CSV export of `list` with the list's query `pairs`.
///
/// The first page is read before this returns, so bad filters answer 422 and a caller
/// without `crm_read` 403; the rest is read by a task as the body is consumed.
pub async fn csv(
    deps: ExportDeps,
    ctx: TenantContext,
    client: ClientInfo,
    now: DateTime<Utc>,
    list: RecordList,
    pairs: Vec<(String, String)>,
) -> Result<ExportStream, Error> {
    ctx.require(Permission::CrmRead)?;
    let mut problems = Vec::new();
    for (key, _) in &pairs {
        if key == "limit" || key == "cursor" {
            problems.push(edge_core::FieldError::new(
                key.clone(),
                "an export has every row of the list; leave out limit and cursor",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let db = deps.db.clone();
    let cx = CrmContext::load(&db, &ctx).await?;
    let layout = CsvLayout::new(list, &cx);
    let first = list.page(&db, &ctx, now, pairs.clone()).await?;
    let filters: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    audit_export(
        &db,
        &ctx,
        &client,
        now,
        "export.csv",
        json!({ "list": list.name(), "filters": filters }),
    )
    .await?;

    let (tx, stream) = channel();
    let org = ctx.org();
    tokio::spawn(tenant_scope::in_organization(org, async move {
        let mut rows = 0_u64;
        let mut page = first;
        let mut header = true;
        loop {
            let chunk = layout.write(&page.items, header);
            header = false;
            rows += page.items.len() as u64;
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(err) => {
                    fail(&tx, list.name(), err).await;
                    break;
                }
            };
            if tx.send(Ok(chunk)).await.is_err() {
                // The client went away.
                break;
            }
            let Some(cursor) = page.next_cursor.take() else {
                break;
            };
            let mut next = pairs.clone();
            next.push(("cursor".to_owned(), cursor.as_str().to_owned()));
            page = match list.page(&db, &ctx, now, next).await {
                Ok(page) => page,
                Err(err) => {
                    fail(&tx, list.name(), err).await;
                    break;
                }
            };
        }
        count_usage(deps.usage.as_ref(), org, rows).await;
    }));
    Ok(stream)
}

async fn fail(tx: &mpsc::Sender<Result<Bytes, std::io::Error>>, what: &str, err: Error) {
    tracing::error!(error = %err, export = what, "an export stopped halfway");
    drop(
        tx.send(Err(std::io::Error::other("the export stopped halfway")))
            .await,
    );
}

/// Columns never exported, per table: password hashes, sealed credentials and token
/// hashes (or the tokens themselves).
pub const REDACTED: &[(&str, &[&str])] = &[
    ("users", &["password_hash"]),
    ("api_keys", &["key_hash"]),
    ("invitations", &["token_hash"]),
    ("refresh_tokens", &["token_hash"]),
    ("mpesa_callback_tokens", &["token", "previous_token"]),
    ("mpesa_settings", &["sealed"]),
    ("whatsapp_numbers", &["sealed"]),
    ("webhook_endpoints", &["sealed", "previous_sealed"]),
];

fn redacted(table: &str) -> &'static [&'static str] {
    REDACTED
        .iter()
        .find(|(name, _)| *name == table)
        .map(|(_, columns)| *columns)
        .unwrap_or(&[])
}

/// A stored value as JSON: times as RFC 3339, everything else as sea-query renders it.
fn json_value(value: &sea_orm::Value) -> Value {
    use sea_orm::Value as V;
    match value {
        V::ChronoDateTimeUtc(Some(t)) => {
            Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }
        V::ChronoDateTimeWithTimeZone(Some(t)) => Value::String(
            t.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        ),
        V::ChronoDate(Some(d)) => Value::String(d.format("%Y-%m-%d").to_string()),
        V::Uuid(Some(id)) => Value::String(id.to_string()),
        V::Bytes(Some(bytes)) => Value::String(hex::encode(bytes)),
        other => sea_orm::sea_query::value::sea_value_to_json_value(other),
    }
}

/// One model as an NDJSON line of `table`.
fn line<M: ModelTrait>(table: &str, model: &M) -> Result<Vec<u8>, Error> {
    let hidden = redacted(table);
    let mut row = Map::new();
    for column in <M::Entity as EntityTrait>::Column::iter() {
        let name = column.to_string();
        if hidden.contains(&name.as_str()) {
            continue;
        }
        row.insert(name, json_value(&model.get(column)));
    }
    let line = if hidden.is_empty() {
        json!({ "table": table, "row": row })
    } else {
        json!({ "table": table, "row": row, "redacted": hidden })
    };
    let mut bytes = serde_json::to_vec(&line).map_err(Error::internal)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Sends every row of `E` that `filter` selects, in primary-key order, page by page.
async fn dump<E, C>(
    conn: &C,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    filter: sea_orm::sea_query::SimpleExpr,
) -> Result<Option<u64>, Error>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let table = E::default().table_name().to_owned();
    let mut select = E::find().filter(filter);
    for key in E::PrimaryKey::iter() {
        select = select.order_by_asc(key.into_column());
    }
    let mut pages = select.paginate(conn, ORGANIZATION_PAGE);
    let mut rows = 0_u64;
    while let Some(models) = pages.fetch_and_next().await.map_err(Error::internal)? {
        let mut chunk = Vec::with_capacity(models.len() * 256);
        for model in &models {
            chunk.extend(line(&table, model)?);
        }
        rows += models.len() as u64;
        if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
            return Ok(None);
        }
    }
    Ok(Some(rows))
}

fn of_org(org: OrgId) -> sea_orm::sea_query::SimpleExpr {
    Expr::col(Alias::new("organization_id")).eq(org.as_uuid())
}

macro_rules! tenant_tables {
    ($($table:ident),* $(,)?) => {
        /// Every table an organization owns (every table with `organization_id`), in the
        /// order the organization export writes them: parents before children.
        pub const TENANT_TABLES: &[&str] = &[$(stringify!($table)),*];

        /// Sends every tenant table's rows of `org`; `None` when the client went away.
        async fn dump_tenant_tables<C: ConnectionTrait>(
            conn: &C,
            tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
            org: OrgId,
        ) -> Result<Option<u64>, Error> {
            let mut total = 0;
            $(
                match dump::<entities::$table::Entity, C>(conn, tx, of_org(org)).await? {
                    Some(rows) => total += rows,
                    None => return Ok(None),
                }
            )*
            Ok(Some(total))
        }

        /// Per tenant table, its column names (for storage estimates).
        pub fn tenant_table_columns() -> Vec<(&'static str, Vec<String>)> {
            vec![$((
                stringify!($table),
                <entities::$table::Entity as EntityTrait>::Column::iter()
                    .map(|c| c.to_string())
                    .collect(),
            )),*]
        }
    };
}

tenant_tables!(
    memberships,
    invitations,
    api_keys,
    sessions,
    refresh_tokens,
    audit_log,
    usage_counters,
    subscriptions,
    subscription_periods,
    ledger_wallets,
    ledger_transfers,
    ledger_entries,
    ledger_holds,
    ledger_idempotency,
    mpesa_settings,
    mpesa_callback_tokens,
    mpesa_requests,
    mpesa_callbacks,
    payments,
    prospects,
    relationships,
    record_tags,
    pipelines,
    pipeline_stages,
    deals,
    deal_stage_moves,
    tickets,
    ticket_comments,
    activities,
    targets,
    whatsapp_numbers,
    whatsapp_conversations,
    whatsapp_messages,
    whatsapp_message_statuses,
    chat_messages,
    chat_participants,
    events,
    event_queue,
    imports,
    import_chunks,
    import_errors,
    webhook_endpoints,
    webhook_deliveries,
    webhook_delivery_attempts,
    notifications,
    automation_rules,
    automation_runs,
);

/// Starts the organization export (see the module docs for the format). Needs
/// [`Permission::OrgUpdate`], which only the organization's admins (and operators acting
/// in it) have.
pub async fn organization(
    deps: ExportDeps,
    ctx: TenantContext,
    client: ClientInfo,
    now: DateTime<Utc>,
) -> Result<ExportStream, Error> {
    ctx.require(Permission::OrgUpdate)?;
    let org = ctx.org();
    audit_export(
        &deps.db,
        &ctx,
        &client,
        now,
        "export.organization",
        json!({ "format": "ndjson", "tables": TENANT_TABLES }),
    )
    .await?;
    let (tx, stream) = channel();
    tokio::spawn(tenant_scope::in_organization(org, async move {
        let rows = match write_organization(&deps.db, &tx, org, now).await {
            Ok(rows) => rows.unwrap_or_default(),
            Err(err) => {
                fail(&tx, "organization", err).await;
                0
            }
        };
        count_usage(deps.usage.as_ref(), org, rows).await;
    }));
    Ok(stream)
}

async fn write_organization(
    db: &DatabaseConnection,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    org: OrgId,
    now: DateTime<Utc>,
) -> Result<Option<u64>, Error> {
    let mut tables = vec!["organizations", "users"];
    tables.extend(TENANT_TABLES);
    let head = json!({
        "format": "edge.organization-export",
        "version": 1,
        "organization_id": org,
        "exported_at": now.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "tables": tables,
    });
    let mut bytes = serde_json::to_vec(&head).map_err(Error::internal)?;
    bytes.push(b'\n');
    if tx.send(Ok(Bytes::from(bytes))).await.is_err() {
        return Ok(None);
    }
    // One snapshot: rows written while the export runs are in it entirely or not at all.
    let txn = begin_read(db).await.map_err(Error::internal)?;
    let mut total = 0;
    let Some(rows) = dump::<entities::organizations::Entity, _>(
        &txn,
        tx,
        Expr::col(Alias::new("id")).eq(org.as_uuid()),
    )
    .await?
    else {
        return Ok(None);
    };
    total += rows;
    let members = Query::select()
        .column(Alias::new("user_id"))
        .from(Alias::new("memberships"))
        .and_where(of_org(org))
        .to_owned();
    let Some(rows) = dump::<entities::users::Entity, _>(
        &txn,
        tx,
        Expr::col(Alias::new("id")).in_subquery(members),
    )
    .await?
    else {
        return Ok(None);
    };
    total += rows;
    let Some(rows) = dump_tenant_tables(&txn, tx, org).await? else {
        return Ok(None);
    };
    total += rows;
    txn.commit().await.map_err(Error::internal)?;
    let mut end =
        serde_json::to_vec(&json!({ "end": true, "rows": total })).map_err(Error::internal)?;
    end.push(b'\n');
    if tx.send(Ok(Bytes::from(end))).await.is_err() {
        return Ok(None);
    }
    Ok(Some(total))
}

/// Per table, how many rows and how many characters of data each organization in `orgs`
/// has (every value as text: a storage estimate that means the same on SQLite and
/// PostgreSQL). Counted cross-tenant by the caller's scope.
pub async fn storage(
    db: &impl ConnectionTrait,
    orgs: &[uuid::Uuid],
) -> Result<BTreeMap<uuid::Uuid, BTreeMap<&'static str, (i64, i64)>>, Error> {
    let mut out: BTreeMap<uuid::Uuid, BTreeMap<&'static str, (i64, i64)>> = BTreeMap::new();
    if orgs.is_empty() {
        return Ok(out);
    }
    for (table, columns) in tenant_table_columns() {
        let size = columns
            .iter()
            .map(|c| format!("COALESCE(LENGTH(CAST(\"{c}\" AS TEXT)), 0)"))
            .collect::<Vec<_>>()
            .join(" + ");
        let mut select = Query::select();
        select
            .column(Alias::new("organization_id"))
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
            .expr_as(
                Expr::cust(format!("CAST(COALESCE(SUM({size}), 0) AS BIGINT)")),
                Alias::new("bytes"),
            )
            .from(Alias::new(table))
            .and_where(Expr::col(Alias::new("organization_id")).is_in(orgs.iter().copied()))
            .group_by_col(Alias::new("organization_id"));
        for row in db.query_all(&select).await.map_err(Error::internal)? {
            let org: uuid::Uuid = row
                .try_get("", "organization_id")
                .map_err(Error::internal)?;
            let n: i64 = row.try_get("", "n").map_err(Error::internal)?;
            let bytes: i64 = row.try_get("", "bytes").map_err(Error::internal)?;
            out.entry(org).or_default().insert(table, (n, bytes));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_plain_text_is_kept() {
        assert_eq!(guard_formula("=SUM(A1)".into()), "'=SUM(A1)");
        assert_eq!(guard_formula("+254712".into()), "'+254712");
        assert_eq!(guard_formula("-1".into()), "'-1");
        assert_eq!(guard_formula("@cmd".into()), "'@cmd");
        assert_eq!(guard_formula("Achieng".into()), "Achieng");
        assert_eq!(guard_formula(String::new()), "");
    }

    #[test]
    fn cells_render_lists_and_nulls() {
        assert_eq!(cell(None), "");
        assert_eq!(cell(Some(&Value::Null)), "");
        assert_eq!(cell(Some(&json!(["a", "b"]))), "a; b");
        assert_eq!(cell(Some(&json!(3))), "3");
        assert_eq!(cell(Some(&json!(true))), "true");
    }

    #[test]
    fn every_secret_column_is_a_column_of_its_table() {
        let mut all = tenant_table_columns();
        all.push((
            "users",
            <entities::users::Entity as EntityTrait>::Column::iter()
                .map(|c| c.to_string())
                .collect(),
        ));
        for (table, columns) in REDACTED {
            let known = all
                .iter()
                .find(|(name, _)| name == table)
                .map(|(_, c)| c.clone())
                .unwrap_or_default();
            for column in *columns {
                assert!(known.iter().any(|c| c == column), "{table}.{column}");
            }
        }
    }
}
