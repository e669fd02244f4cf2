//! CSV imports of prospects and relationships.
//!
//! 1. `POST /imports?kind=prospects` with the file as a raw `text/csv` body (UTF-8, a
//!    header row, up to [`MAX_FILE_BYTES`] and [`MAX_ROWS`] data rows). The file is
//!    parsed at once and stored in the database in chunks of [`BATCH`] rows, so any
//!    server can run the job and a restart resumes it; the answer names the columns and
//!    a suggested mapping.
//! 2. `PUT /imports/{id}/mapping`: which field each column fills, and what to do with
//!    duplicates (`skip`, `update`, `create`).
//! 3. `POST /imports/{id}/dry-run` (optional): every row checked, nothing written.
//! 4. `POST /imports/{id}/start`: the job is queued; a worker ([`worker`]) claims it with
//!    a lease and commits one chunk per transaction, recording how far it got in the same
//!    transaction, so a crash resumes after the last committed chunk without duplicates.
//!
//! Every row is checked with the API's own checks for the record (see
//! `crm::prospects::check`), so a row is accepted exactly when `POST /prospects` would
//! accept the same record. Created records belong to the importer. A row is a duplicate
//! when one of its phones is the main phone of an existing record of the kind, or its
//! email (ignoring case) is an existing record's, or either belongs to an earlier row
//! of the file. A job ends with one `import.completed` event and an audit entry.

pub mod csv;
pub mod rows;
pub mod worker;

use chrono::{DateTime, Utc};
use edge_core::{Error, OrgId, Page, PageRequest};
use edge_tenancy::{Permission, TenantContext};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _,
    QueryOrder as _, QuerySelect as _,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::audit::{self, Actor, ClientInfo};
use crate::crm::CrmContext;
use crate::crm::contact::assign;
use crate::db::{begin_write, db_err};
use crate::entities::{import_chunks, import_errors, imports};
use rows::{Duplicates, Plan, RowError, Seen};

/// The largest file accepted: room for well over 100,000 rows of contacts.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// The most data rows one file may have.
pub const MAX_ROWS: usize = 200_000;
/// Rows per stored chunk, and so per committed batch.
pub const BATCH: usize = 500;
/// How many row errors a dry run lists (its counts are always complete).
pub const MAX_INLINE_ERRORS: usize = 1000;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Prospects (leads).
    Prospects,
    /// Relationships (customers).
    Relationships,
}

impl Kind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Prospects => "prospects",
            Kind::Relationships => "relationships",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        [Kind::Prospects, Kind::Relationships]
            .into_iter()
            .find(|k| k.as_str() == value)
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Stored; waiting for a mapping and `start`.
    Uploaded,
    /// Waiting for a worker.
    Queued,
    /// A worker is on it (or was, and another resumes it once the lease ends).
    Running,
    /// Every row handled.
    Completed,
    /// Given up (the reason is in `failure`).
    Failed,
}

impl Status {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Uploaded => "uploaded",
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }
}

/// An import as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportView {
    /// Id.
    pub id: uuid::Uuid,
    /// `prospects` or `relationships`.
    pub kind: String,
    /// `uploaded`, `queued`, `running`, `completed` or `failed`.
    pub status: String,
    /// The file's columns.
    pub columns: Value,
    /// Column → field, once set.
    pub mapping: Option<Value>,
    /// `skip`, `update` or `create`, once set.
    pub duplicates: Option<String>,
    /// Data rows in the file.
    pub total: i64,
    /// Rows handled so far.
    pub rows_done: i64,
    /// Records created.
    pub rows_imported: i64,
    /// Records updated.
    pub rows_updated: i64,
    /// Duplicates skipped.
    pub rows_skipped_duplicate: i64,
    /// Rows refused (see `errors.csv`).
    pub rows_failed: i64,
    /// Why the job failed, if it did.
    pub failure: Option<String>,
    /// Uploaded.
    pub created_at: DateTime<Utc>,
    /// Started.
    pub started_at: Option<DateTime<Utc>>,
    /// Completed or failed.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<imports::Model> for ImportView {
    fn from(row: imports::Model) -> Self {
        Self {
            id: row.id,
            kind: row.kind,
            status: row.status,
            columns: row.columns,
            mapping: row.mapping,
            duplicates: row.duplicates,
            total: row.total_rows,
            rows_done: row.rows_done,
            rows_imported: row.rows_imported,
            rows_updated: row.rows_updated,
            rows_skipped_duplicate: row.rows_skipped_duplicate,
            rows_failed: row.rows_failed,
            failure: row.failure,
            created_at: row.created_at,
            started_at: row.started_at,
            completed_at: row.completed_at,
        }
    }
}

/// The answer to an upload: the import, and the mapping suggested from the header.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    /// The import.
    #[serde(flatten)]
    pub import: ImportView,
    /// Column → the field it most likely fills, or null.
    pub suggested_mapping: Map<String, Value>,
}

/// `PUT /imports/{id}/mapping`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingInput {
    /// Column → field (or null: not imported). Columns left out are not imported.
    pub mapping: Map<String, Value>,
    /// What to do with duplicates.
    pub duplicates: Duplicates,
}

/// The result of a dry run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DryRun {
    /// Data rows.
    pub total: u64,
    /// Rows that would be imported or would update a record.
    pub valid: u64,
    /// Rows that would be refused.
    pub invalid: u64,
    /// Valid rows that match an existing record or an earlier row.
    pub duplicates: u64,
    /// The first [`MAX_INLINE_ERRORS`] problems, by row.
    pub errors: Vec<RowError>,
}

/// Stores an uploaded file of `kind` and reads its header.
pub async fn upload(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    kind: &str,
    body: &[u8],
) -> Result<Uploaded, Error> {
    ctx.require(Permission::CrmWrite)?;
    let kind = Kind::parse(kind)
        .ok_or_else(|| Error::invalid("kind", "must be prospects or relationships"))?;
    let cx = CrmContext::load(db, ctx).await?;
    let text =
        std::str::from_utf8(body).map_err(|_| Error::invalid("file", "must be UTF-8 text"))?;
    let mut records = csv::parse(text)
        .map_err(|e| Error::invalid("file", e.to_string()))?
        .into_iter();
    let Some((_, header)) = records.next() else {
        return Err(Error::invalid(
            "file",
            "is empty; the first row must name the columns",
        ));
    };
    let columns: Vec<String> = header.iter().map(|c| c.trim().to_owned()).collect();
    let mut problems = Vec::new();
    for (i, column) in columns.iter().enumerate() {
        if column.is_empty() || column.chars().count() > 200 {
            problems.push(edge_core::FieldError::new(
                format!("columns[{i}]"),
                "a column name must be 1 to 200 characters",
            ));
        } else if columns[..i].contains(column) {
            problems.push(edge_core::FieldError::new(
                format!("columns[{i}]"),
                format!("{column:?} appears twice in the header"),
            ));
        }
    }
    crate::crm::fields::validation(problems)?;
    let data: Vec<(u64, Vec<String>)> = records.filter(|(_, r)| !csv::is_blank(r)).collect();
    if data.len() > MAX_ROWS {
        return Err(Error::invalid(
            "file",
            format!(
                "has {} data rows; at most {MAX_ROWS} per import",
                data.len()
            ),
        ));
    }
    let org = ctx.org().as_uuid();
    let id = uuid::Uuid::now_v7();
    let mut chunks = Vec::new();
    for (seq, rows) in data.chunks(BATCH).enumerate() {
        chunks.push(import_chunks::ActiveModel {
            organization_id: Set(org),
            import_id: Set(id),
            seq: Set(i32::try_from(seq).map_err(Error::internal)?),
            row_count: Set(i32::try_from(rows.len()).map_err(Error::internal)?),
            rows: Set(serde_json::to_string(rows).map_err(Error::internal)?),
        });
    }
    let (actor_type, actor_id) = actor_parts(Actor::of(ctx));
    let row = imports::Model {
        organization_id: org,
        id,
        kind: kind.as_str().to_owned(),
        status: Status::Uploaded.as_str().to_owned(),
        columns: json!(columns),
        mapping: None,
        duplicates: None,
        owner_id: None,
        actor_type: actor_type.to_owned(),
        actor_id,
        visible_to: None,
        total_rows: i64::try_from(data.len()).map_err(Error::internal)?,
        chunk_count: i32::try_from(chunks.len()).map_err(Error::internal)?,
        next_chunk: 0,
        rows_done: 0,
        rows_imported: 0,
        rows_updated: 0,
        rows_skipped_duplicate: 0,
        rows_failed: 0,
        attempts: 0,
        claimed_until: None,
        failure: None,
        created_at: now,
        updated_at: now,
        started_at: None,
        completed_at: None,
    };
    let txn = begin_write(db).await.map_err(db_err)?;
    imports::Entity::insert(imports::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
    let mut chunks = chunks.into_iter().peekable();
    while chunks.peek().is_some() {
        let some: Vec<_> = chunks.by_ref().take(20).collect();
        import_chunks::Entity::insert_many(some)
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
    }
    txn.commit().await.map_err(db_err)?;
    Ok(Uploaded {
        suggested_mapping: rows::suggest(&columns, kind, &cx),
        import: row.into(),
    })
}

/// The audit log's name for an actor and its id.
fn actor_parts(actor: Actor) -> (&'static str, Option<uuid::Uuid>) {
    match actor {
        Actor::User(id) => ("user", Some(id)),
        Actor::ApiKey(id) => ("api_key", Some(id)),
        Actor::Operator(id) => ("operator", Some(id)),
        Actor::System => ("system", None),
    }
}

/// The actor stored with a job.
fn actor_of(row: &imports::Model) -> Actor {
    match (row.actor_type.as_str(), row.actor_id) {
        ("user", Some(id)) => Actor::User(id),
        ("api_key", Some(id)) => Actor::ApiKey(id),
        ("operator", Some(id)) => Actor::Operator(id),
        _ => Actor::System,
    }
}

async fn find(
    db: &impl sea_orm::ConnectionTrait,
    org: OrgId,
    id: uuid::Uuid,
) -> Result<imports::Model, Error> {
    imports::Entity::find_by_id((org.as_uuid(), id))
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("import"))
}

fn columns_of(row: &imports::Model) -> Vec<String> {
    crate::crm::contact::strings(&row.columns)
}

/// Sets the mapping and the duplicate rule of an import not yet started.
pub async fn set_mapping(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    input: MappingInput,
) -> Result<ImportView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let cx = CrmContext::load(db, ctx).await?;
    let row = find(db, ctx.org(), id).await?;
    let kind = Kind::parse(&row.kind).ok_or_else(|| Error::internal("an import of no kind"))?;
    rows::check_mapping(&input.mapping, &columns_of(&row), kind, &cx)?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let changed = imports::Entity::update_many()
        .col_expr(
            imports::Column::Mapping,
            sea_orm::sea_query::Expr::value(Value::Object(input.mapping)),
        )
        .col_expr(
            imports::Column::Duplicates,
            sea_orm::sea_query::Expr::value(input.duplicates.as_str()),
        )
        .col_expr(
            imports::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(imports::Column::OrganizationId.eq(row.organization_id))
        .filter(imports::Column::Id.eq(id))
        .filter(imports::Column::Status.eq(Status::Uploaded.as_str()))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    if changed.rows_affected != 1 {
        return Err(Error::Conflict(
            "this import was started; its mapping can no longer change".into(),
        ));
    }
    let row = find(&txn, ctx.org(), id).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(row.into())
}

/// The plan of a mapped import, for a dry run or the worker.
fn plan_of(row: &imports::Model, cx: &CrmContext) -> Result<Plan, Error> {
    let kind = Kind::parse(&row.kind).ok_or_else(|| Error::internal("an import of no kind"))?;
    let (Some(mapping), Some(duplicates)) = (row.mapping.as_ref(), row.duplicates.as_deref())
    else {
        return Err(Error::Conflict(
            "set the mapping first (PUT /imports/{id}/mapping)".into(),
        ));
    };
    let columns = columns_of(row);
    let empty = Map::new();
    let mapping = rows::check_mapping(mapping.as_object().unwrap_or(&empty), &columns, kind, cx)?;
    Ok(Plan {
        org: row.organization_id,
        kind,
        columns,
        mapping,
        duplicates: Duplicates::parse(duplicates)
            .ok_or_else(|| Error::internal("an import with an unknown duplicate rule"))?,
        owner: row.owner_id,
        created_by: match actor_of(row) {
            Actor::User(id) | Actor::Operator(id) => Some(id),
            _ => None,
        },
        visible_to: row.visible_to,
    })
}

/// The rows of one stored chunk.
async fn chunk_rows(
    db: &impl sea_orm::ConnectionTrait,
    row: &imports::Model,
    seq: i32,
) -> Result<Vec<(u64, Vec<String>)>, Error> {
    let chunk = import_chunks::Entity::find_by_id((row.organization_id, row.id, seq))
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::internal(format!("import {} lost its chunk {seq}", row.id)))?;
    serde_json::from_str(&chunk.rows).map_err(Error::internal)
}

/// Checks every row as the job would, without writing anything.
pub async fn dry_run(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    id: uuid::Uuid,
) -> Result<DryRun, Error> {
    ctx.require(Permission::CrmWrite)?;
    let mut cx = CrmContext::load(db, ctx).await?;
    let mut row = find(db, ctx.org(), id).await?;
    if row.owner_id.is_none() && row.status == Status::Uploaded.as_str() {
        row.owner_id = owner(db, ctx).await?;
        row.visible_to = cx.scope.restricted_to();
    }
    cx.scope = crate::crm::visibility::Scope::All;
    let plan = plan_of(&row, &cx)?;
    let mut seen = Seen::default();
    let mut result = DryRun {
        total: 0,
        valid: 0,
        invalid: 0,
        duplicates: 0,
        errors: Vec::new(),
    };
    for seq in 0..row.chunk_count {
        let rows = chunk_rows(db, &row, seq).await?;
        result.total += rows.len() as u64;
        let outcome = rows::process(db, &plan, &cx, rows, &mut seen, now).await?;
        result.valid += outcome.imported + outcome.updated + outcome.skipped;
        result.invalid += outcome.failed.len() as u64;
        result.duplicates += outcome.duplicates;
        for (_, _, errors) in outcome.failed {
            let room = MAX_INLINE_ERRORS.saturating_sub(result.errors.len());
            result.errors.extend(errors.into_iter().take(room));
        }
    }
    Ok(result)
}

/// Who the records of the caller's import belong to: the caller (a person), checked as
/// a create through the API checks it; none for an API key.
async fn owner(db: &DatabaseConnection, ctx: &TenantContext) -> Result<Option<uuid::Uuid>, Error> {
    let mut owner = None;
    assign(db, ctx, "owner_id", &mut owner, None, true).await?;
    Ok(owner)
}

/// Queues a mapped import for a worker.
pub async fn start(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
) -> Result<ImportView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let cx = CrmContext::load(db, ctx).await?;
    let row = find(db, ctx.org(), id).await?;
    if row.status != Status::Uploaded.as_str() {
        return Err(Error::Conflict(format!(
            "this import is {} already",
            row.status
        )));
    }
    plan_of(&row, &cx)?;
    let owner = owner(db, ctx).await?;
    let (actor_type, actor_id) = actor_parts(Actor::of(ctx));
    let txn = begin_write(db).await.map_err(db_err)?;
    let queued = imports::Entity::update_many()
        .col_expr(
            imports::Column::Status,
            Expr::value(Status::Queued.as_str()),
        )
        .col_expr(imports::Column::OwnerId, Expr::value(owner))
        .col_expr(imports::Column::ActorType, Expr::value(actor_type))
        .col_expr(imports::Column::ActorId, Expr::value(actor_id))
        .col_expr(
            imports::Column::VisibleTo,
            Expr::value(cx.scope.restricted_to()),
        )
        .col_expr(imports::Column::StartedAt, Expr::value(now))
        .col_expr(imports::Column::UpdatedAt, Expr::value(now))
        .filter(imports::Column::OrganizationId.eq(row.organization_id))
        .filter(imports::Column::Id.eq(id))
        .filter(imports::Column::Status.eq(Status::Uploaded.as_str()))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    if queued.rows_affected != 1 {
        return Err(Error::Conflict("this import was started already".into()));
    }
    audit::Entry::new(ctx.org(), Actor::of(ctx), "import.start")
        .target("import", id)
        .details(json!({
            "kind": row.kind,
            "total": row.total_rows,
            "duplicates": row.duplicates,
        }))
        .record(&txn, client, now)
        .await?;
    let row = find(&txn, ctx.org(), id).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(row.into())
}

/// Reads one import.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    id: uuid::Uuid,
) -> Result<ImportView, Error> {
    ctx.require(Permission::CrmRead)?;
    Ok(find(db, ctx.org(), id).await?.into())
}

/// The organization's imports, newest first.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    page: PageRequest,
) -> Result<Page<ImportView>, Error> {
    ctx.require(Permission::CrmRead)?;
    let limit = page.limit();
    let after: Option<uuid::Uuid> = page.after().map_err(Error::from)?;
    let mut select = imports::Entity::find()
        .filter(imports::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .order_by_desc(imports::Column::Id)
        .limit(u64::from(limit) + 1);
    if let Some(after) = after {
        select = select.filter(imports::Column::Id.lt(after));
    }
    let rows = select.all(db).await.map_err(db_err)?;
    Ok(Page::from_overfetch(rows, limit, |row| row.id).map(ImportView::from))
}

/// How many error rows `errors.csv` reads at a time.
const ERROR_PAGE: u64 = 1000;

/// The header of `errors.csv` for an import, after checking the caller may read it.
pub async fn error_report(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    id: uuid::Uuid,
) -> Result<Vec<String>, Error> {
    ctx.require(Permission::CrmRead)?;
    let row = find(db, ctx.org(), id).await?;
    Ok(columns_of(&row))
}

/// One page of an import's errors after `after` (row, seq), as CSV lines.
pub async fn error_page(
    db: &DatabaseConnection,
    org: OrgId,
    id: uuid::Uuid,
    after: Option<(i64, i32)>,
) -> Result<(String, Option<(i64, i32)>), Error> {
    use sea_orm::Condition;
    let mut select = import_errors::Entity::find()
        .filter(import_errors::Column::OrganizationId.eq(org.as_uuid()))
        .filter(import_errors::Column::ImportId.eq(id))
        .order_by_asc(import_errors::Column::Row)
        .order_by_asc(import_errors::Column::Seq)
        .limit(ERROR_PAGE);
    if let Some((row, seq)) = after {
        select = select.filter(
            Condition::any()
                .add(import_errors::Column::Row.gt(row))
                .add(
                    Condition::all()
                        .add(import_errors::Column::Row.eq(row))
                        .add(import_errors::Column::Seq.gt(seq)),
                ),
        );
    }
    let rows = select.all(db).await.map_err(db_err)?;
    let mut out = String::new();
    let next = rows.last().map(|r| (r.row, r.seq));
    for error in &rows {
        let values = crate::crm::contact::strings(&error.values);
        let row = error.row.to_string();
        csv::write_record(
            &mut out,
            [
                row.as_str(),
                error.column.as_deref().unwrap_or_default(),
                error.code.as_str(),
                error.message.as_str(),
            ]
            .into_iter()
            .chain(values.iter().map(String::as_str)),
        );
    }
    let more = rows.len() as u64 == ERROR_PAGE;
    Ok((out, if more { next } else { None }))
}
