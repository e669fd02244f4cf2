//! Activities: notes, calls, meetings and tasks about one prospect, relationship, deal or
//! ticket, assigned to a member (`owner_id`) and completed when done.
//!
//! - The subject must exist in the caller's organization, not be deleted, and be visible
//!   to the caller; otherwise a 422 on `subject_id` ("no such prospect"). The subject of
//!   an activity does not change.
//! - `owner_id` defaults to the caller (when the caller is a member; an API key's
//!   activities start unassigned). Assigning to someone else needs `crm_assign`; the
//!   owner must be an active member.
//! - Under the `own` visibility setting, a `user` sees the activities they own and the
//!   ones they created; any other answers 404.
//! - Completing sets `completed_at`, reopening clears it; both are idempotent (a second
//!   call changes nothing and writes no audit entry).
//! - A relationship's timeline includes its prospect's: `GET
//!   /activities?subject_type=relationship&subject_id=X` also lists the activities of
//!   the prospect the relationship was converted from (`relationships.prospect_id`), so
//!   the history of a lead follows it when it becomes a customer.

use chrono::{DateTime, Utc};
use edge_core::{Error, Page};
use edge_tenancy::{Permission, TenantContext};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::CrmContext;
use super::fields::{Checks, caller};
use super::list::{ListQuery, ListSpec, SortKind, SortValue, Sortable};
use super::records::{
    RecordChecks, SubjectType, check_assignment, choices, db_err, ensure_subject, is_active_member,
    source_prospect,
};
use super::visibility::Scope;
use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::activities;

/// Every kind of activity.
pub const KINDS: [&str; 4] = ["note", "call", "meeting", "task"];
/// Every kind of subject, as `subject_type` takes them.
pub const SUBJECT_TYPES: [&str; 4] = SubjectType::NAMES;
/// The longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// The longest body, in characters.
pub const MAX_BODY: usize = 20_000;

/// `GET /activities`: sort by `created_at` (default, newest first) or `updated_at`;
/// filter by `subject_type` with `subject_id` (a record's timeline), `kind` (one or
/// several, comma-separated), `owner_id` (an id or `me`), `completed=true|false`,
/// `due_before`, `due_after`, `overdue=true|false` (open and past due), `created_after`,
/// `created_before`.
pub const LIST: ListSpec = ListSpec {
    tag_kind: None,
    sorts: &[
        Sortable {
            name: "created_at",
            kind: SortKind::Time,
        },
        Sortable {
            name: "updated_at",
            kind: SortKind::Time,
        },
    ],
    default_sort: "-created_at",
    owner_column: Some("owner_id"),
    search_column: None,
    phone_column: None,
    custom_fields: None,
    filters: &[
        "subject_type",
        "subject_id",
        "kind",
        "completed",
        "due_before",
        "due_after",
        "overdue",
    ],
};

/// An activity as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActivityView {
    /// Id.
    pub id: uuid::Uuid,
    /// `note`, `call`, `meeting` or `task`.
    pub kind: String,
    /// `prospect`, `relationship`, `deal` or `ticket`.
    pub subject_type: String,
    /// The record it is about.
    pub subject_id: uuid::Uuid,
    /// One line.
    pub title: String,
    /// The details.
    pub body: Option<String>,
    /// When it is due.
    pub due_at: Option<DateTime<Utc>>,
    /// When it was done.
    pub completed_at: Option<DateTime<Utc>>,
    /// Whether it is done.
    pub completed: bool,
    /// Not done and past `due_at`.
    pub overdue: bool,
    /// Who it is assigned to.
    pub owner_id: Option<uuid::Uuid>,
    /// Who created it.
    pub created_by: Option<uuid::Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl ActivityView {
    fn new(row: activities::Model, now: DateTime<Utc>) -> Self {
        Self {
            completed: row.completed_at.is_some(),
            overdue: row.completed_at.is_none() && row.due_at.is_some_and(|due| due < now),
            id: row.id,
            kind: row.kind,
            subject_type: row.subject_type,
            subject_id: row.subject_id,
            title: row.title,
            body: row.body,
            due_at: row.due_at,
            completed_at: row.completed_at,
            owner_id: row.owner_id,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// `POST /activities`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewActivity {
    /// `note`, `call`, `meeting` or `task` (required).
    pub kind: Option<String>,
    /// `prospect`, `relationship`, `deal` or `ticket` (required).
    pub subject_type: Option<String>,
    /// The record (required).
    pub subject_id: Option<String>,
    /// One line (required).
    pub title: Option<String>,
    /// The details.
    pub body: Option<String>,
    /// When it is due (RFC 3339).
    pub due_at: Option<String>,
    /// Who it is assigned to; absent means the caller, `null` nobody.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub owner_id: Option<Option<String>>,
}

/// `PATCH /activities/{id}`: absent fields stay; `null` clears an optional one.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityPatch {
    /// The kind.
    pub kind: Option<String>,
    /// One line.
    pub title: Option<String>,
    /// The details; `null` clears them.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub body: Option<Option<String>>,
    /// When it is due; `null` clears it.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub due_at: Option<Option<String>>,
    /// Who it is assigned to; `null` unassigns.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub owner_id: Option<Option<String>>,
}

fn visible(scope: Scope, row: &activities::Model) -> bool {
    scope.sees(&[row.owner_id, row.created_by])
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantContext,
    scope: Scope,
    id: uuid::Uuid,
) -> Result<activities::Model, Error> {
    activities::Entity::find()
        .filter(activities::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(activities::Column::Id.eq(id))
        .filter(activities::Column::DeletedAt.is_null())
        .one(conn)
        .await
        .map_err(db_err)?
        .filter(|row| visible(scope, row))
        .ok_or(Error::not_found("activity"))
}

/// Records an activity.
pub async fn create(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: NewActivity,
) -> Result<ActivityView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let mut checks = Checks::new();
    let kind = checks
        .required("kind", input.kind.as_deref())
        .and_then(|text| checks.choice("kind", text, &KINDS));
    let subject_type = checks
        .required("subject_type", input.subject_type.as_deref())
        .and_then(|text| checks.choice("subject_type", text, &SUBJECT_TYPES))
        .and_then(SubjectType::parse);
    let subject_id = checks
        .required("subject_id", input.subject_id.as_deref())
        .and_then(|text| checks.id("subject_id", text));
    let title = checks
        .required("title", input.title.as_deref())
        .map(|text| checks.text("title", text, MAX_TITLE))
        .unwrap_or_default();
    let body = checks.optional_text("body", input.body.as_deref(), MAX_BODY);
    let due_at = input
        .due_at
        .as_deref()
        .and_then(|text| checks.time("due_at", text));
    let owner = match &input.owner_id {
        Some(Some(text)) => checks.id("owner_id", text).map(Some),
        Some(None) => Some(None),
        None => None,
    };
    checks.finish()?;
    let (Some(kind), Some(subject_type), Some(subject_id)) = (kind, subject_type, subject_id)
    else {
        return Err(Error::invalid("subject_id", "is required"));
    };

    let cx = CrmContext::load(db, ctx).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    ensure_subject(
        &txn,
        ctx.org(),
        cx.scope,
        "subject_id",
        subject_type,
        subject_id,
    )
    .await?;
    let owner = match owner {
        Some(owner) => owner,
        // Default: the caller, when the caller is one of the organization's members.
        None => match caller(ctx) {
            Some(me) if is_active_member(&txn, ctx.org(), me).await? => Some(me),
            _ => None,
        },
    };
    check_assignment(&txn, ctx, "owner_id", None, owner).await?;
    let row = activities::Model {
        organization_id: ctx.org().as_uuid(),
        id: uuid::Uuid::now_v7(),
        kind: kind.to_owned(),
        subject_type: subject_type.as_str().to_owned(),
        subject_id,
        title,
        body,
        due_at,
        completed_at: None,
        owner_id: owner,
        created_by: caller(ctx),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    activities::Entity::insert(activities::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "activity.create")
        .target("activity", row.id)
        .details(json!({
            "kind": row.kind,
            "subject_type": row.subject_type,
            "subject_id": row.subject_id,
            "title": row.title,
            "owner_id": row.owner_id,
            "due_at": row.due_at,
        }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    Ok(ActivityView::new(row, now))
}

/// Lists the activities the caller may see (see [`LIST`] for the query language).
pub async fn list(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    pairs: Vec<(String, String)>,
) -> Result<Page<ActivityView>, Error> {
    list_sized(db, ctx, now, pairs, None).await
}

/// [`list`], reading pages of `page_size` rows when given (an export walks the whole
/// list with the same filters and visibility in larger pages).
pub(crate) async fn list_sized(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    pairs: Vec<(String, String)>,
    page_size: Option<u32>,
) -> Result<Page<ActivityView>, Error> {
    ctx.require(Permission::CrmRead)?;
    let cx = CrmContext::load(db, ctx).await?;
    let me = caller(ctx);
    let query = ListQuery::parse(pairs, LIST, &cx.settings, me, cx.country)?;
    let query = match page_size {
        Some(size) => query.with_page_size(size),
        None => query,
    };
    let mut select = activities::Entity::find()
        .filter(activities::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(activities::Column::DeletedAt.is_null());
    if let Some(user) = cx.scope.restricted_to() {
        select = select.filter(
            Condition::any()
                .add(activities::Column::OwnerId.eq(user))
                .add(activities::Column::CreatedBy.eq(user)),
        );
    }
    select = select.filter(list_filters(db, ctx, &query, now).await?);
    let rows = query
        .finish(select, db.get_database_backend(), ctx.org().as_uuid())?
        .all(db)
        .await
        .map_err(db_err)?;
    let page = query.page(
        rows,
        |row, sort| match sort {
            "updated_at" => SortValue::Time(row.updated_at),
            _ => SortValue::Time(row.created_at),
        },
        |row| row.id,
    );
    Ok(page.map(|row| ActivityView::new(row, now)))
}

async fn list_filters(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    query: &ListQuery,
    now: DateTime<Utc>,
) -> Result<Condition, Error> {
    let mut all = Condition::all();
    let subject_type = choices(query, "subject_type", &SUBJECT_TYPES)?;
    let subject_id = query.uuid("subject_id")?;
    match (subject_type.as_deref(), subject_id) {
        (Some([kind]), Some(id)) => {
            let mut subject = Condition::any().add(
                Condition::all()
                    .add(activities::Column::SubjectType.eq(*kind))
                    .add(activities::Column::SubjectId.eq(id)),
            );
            // A relationship's timeline carries on from its prospect's.
            if *kind == SubjectType::Relationship.as_str()
                && let Some(prospect) = source_prospect(db, ctx.org(), id).await?
            {
                subject = subject.add(
                    Condition::all()
                        .add(activities::Column::SubjectType.eq(SubjectType::Prospect.as_str()))
                        .add(activities::Column::SubjectId.eq(prospect)),
                );
            }
            all = all.add(subject);
        }
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "subject_type",
                "must be one type when subject_id is given",
            ));
        }
        (None, Some(_)) => {
            return Err(Error::invalid(
                "subject_type",
                "is required with subject_id",
            ));
        }
        (Some(kinds), None) => all = all.add(activities::Column::SubjectType.is_in(kinds.to_vec())),
        (None, None) => {}
    }
    if let Some(kinds) = choices(query, "kind", &KINDS)? {
        all = all.add(activities::Column::Kind.is_in(kinds));
    }
    match query.flag("completed")? {
        Some(true) => all = all.add(activities::Column::CompletedAt.is_not_null()),
        Some(false) => all = all.add(activities::Column::CompletedAt.is_null()),
        None => {}
    }
    if let Some(before) = query.time("due_before")? {
        all = all.add(activities::Column::DueAt.lt(before));
    }
    if let Some(after) = query.time("due_after")? {
        all = all.add(activities::Column::DueAt.gte(after));
    }
    match query.flag("overdue")? {
        Some(true) => {
            all = all
                .add(activities::Column::CompletedAt.is_null())
                .add(activities::Column::DueAt.lt(now));
        }
        Some(false) => {
            all = all.add(
                Condition::any()
                    .add(activities::Column::CompletedAt.is_not_null())
                    .add(activities::Column::DueAt.is_null())
                    .add(activities::Column::DueAt.gte(now)),
            );
        }
        None => {}
    }
    Ok(all)
}

/// One activity.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    id: uuid::Uuid,
) -> Result<ActivityView, Error> {
    ctx.require(Permission::CrmRead)?;
    let cx = CrmContext::load(db, ctx).await?;
    Ok(ActivityView::new(find(db, ctx, cx.scope, id).await?, now))
}

/// Changes an activity's kind, title, body, due time or owner.
pub async fn update(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    patch: ActivityPatch,
) -> Result<ActivityView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let mut checks = Checks::new();
    let kind = patch
        .kind
        .as_deref()
        .and_then(|text| checks.choice("kind", text, &KINDS));
    let title = patch
        .title
        .as_deref()
        .map(|text| checks.text("title", text, MAX_TITLE));
    let body = patch
        .body
        .map(|text| checks.optional_text("body", text.as_deref(), MAX_BODY));
    let due_at = patch.due_at.map(|value| {
        value
            .as_deref()
            .and_then(|text| checks.time("due_at", text))
    });
    let owner = patch.owner_id.map(|value| {
        value
            .as_deref()
            .and_then(|text| checks.id("owner_id", text))
    });
    checks.finish()?;

    let cx = CrmContext::load(db, ctx).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = find(&txn, ctx, cx.scope, id).await?;
    let mut next = current.clone();
    let mut changed: Vec<&str> = Vec::new();
    let mut details = json!({});
    if let Some(kind) = kind.filter(|k| *k != current.kind) {
        next.kind = kind.to_owned();
        changed.push("kind");
    }
    if let Some(title) = title.filter(|t| *t != current.title) {
        next.title = title;
        changed.push("title");
    }
    if let Some(body) = body.filter(|b| *b != current.body) {
        next.body = body;
        changed.push("body");
    }
    if let Some(due_at) = due_at.filter(|d| *d != current.due_at) {
        next.due_at = due_at;
        changed.push("due_at");
    }
    if let Some(owner) = owner.filter(|o| *o != current.owner_id) {
        check_assignment(&txn, ctx, "owner_id", current.owner_id, owner).await?;
        next.owner_id = owner;
        changed.push("owner_id");
        details["owner_id"] = json!({ "from": current.owner_id, "to": owner });
    }
    if changed.is_empty() {
        return Ok(ActivityView::new(current, now));
    }
    next.updated_at = now;
    activities::Entity::update_many()
        .col_expr(activities::Column::Kind, Expr::value(next.kind.clone()))
        .col_expr(activities::Column::Title, Expr::value(next.title.clone()))
        .col_expr(activities::Column::Body, Expr::value(next.body.clone()))
        .col_expr(activities::Column::DueAt, Expr::value(next.due_at))
        .col_expr(activities::Column::OwnerId, Expr::value(next.owner_id))
        .col_expr(activities::Column::UpdatedAt, Expr::value(now))
        .filter(activities::Column::OrganizationId.eq(current.organization_id))
        .filter(activities::Column::Id.eq(current.id))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    details["changed"] = json!(changed);
    audit::Entry::new(ctx.org(), Actor::of(ctx), "activity.update")
        .target("activity", current.id)
        .details(details)
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    Ok(ActivityView::new(next, now))
}

/// Marks an activity done (`done = true`) or not done again.
pub async fn set_completed(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    done: bool,
) -> Result<ActivityView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let cx = CrmContext::load(db, ctx).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = find(&txn, ctx, cx.scope, id).await?;
    if current.completed_at.is_some() == done {
        return Ok(ActivityView::new(current, now));
    }
    let completed_at = done.then_some(now);
    let mut update = activities::Entity::update_many()
        .col_expr(activities::Column::CompletedAt, Expr::value(completed_at))
        .col_expr(activities::Column::UpdatedAt, Expr::value(now))
        .filter(activities::Column::OrganizationId.eq(current.organization_id))
        .filter(activities::Column::Id.eq(current.id));
    // Only the call that changes it records the change.
    update = if done {
        update.filter(activities::Column::CompletedAt.is_null())
    } else {
        update.filter(activities::Column::CompletedAt.is_not_null())
    };
    let changed = update.exec(&txn).await.map_err(db_err)?.rows_affected;
    if changed == 1 {
        audit::Entry::new(
            ctx.org(),
            Actor::of(ctx),
            if done {
                "activity.complete"
            } else {
                "activity.reopen"
            },
        )
        .target("activity", current.id)
        .details(json!({
            "kind": current.kind,
            "owner_id": current.owner_id,
            "completed_at": completed_at,
        }))
        .record(&txn, client, now)
        .await?;
    }
    let saved = find(&txn, ctx, Scope::All, current.id).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(ActivityView::new(saved, now))
}

/// Deletes an activity (soft).
pub async fn delete(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
) -> Result<(), Error> {
    ctx.require(Permission::CrmDelete)?;
    let cx = CrmContext::load(db, ctx).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = find(&txn, ctx, cx.scope, id).await?;
    let deleted = activities::Entity::update_many()
        .col_expr(activities::Column::DeletedAt, Expr::value(now))
        .col_expr(activities::Column::UpdatedAt, Expr::value(now))
        .filter(activities::Column::OrganizationId.eq(current.organization_id))
        .filter(activities::Column::Id.eq(current.id))
        .filter(activities::Column::DeletedAt.is_null())
        .exec(&txn)
        .await
        .map_err(db_err)?
        .rows_affected;
    if deleted != 1 {
        return Err(Error::not_found("activity"));
    }
    audit::Entry::new(ctx.org(), Actor::of(ctx), "activity.delete")
        .target("activity", current.id)
        .details(json!({
            "kind": current.kind,
            "subject_type": current.subject_type,
            "subject_id": current.subject_id,
            "title": current.title,
        }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    Ok(())
}
