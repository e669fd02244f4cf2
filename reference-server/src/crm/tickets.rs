//! Tickets: a customer's support requests, raised against a relationship, with a
//! conversation of comments.
//!
//! ## Status
//!
//! A ticket starts `open`. It may move:
//!
//! | from       | to                         |
//! |------------|----------------------------|
//! | `open`     | `pending`, `resolved`      |
//! | `pending`  | `open`, `resolved`         |
//! | `resolved` | `open` (reopen), `closed`  |
//! | `closed`   | `open`, by managers and admins only (`crm_assign`) |
//!
//! Any other move is a 409 naming the allowed ones; reopening a closed ticket without the
//! permission is a 403. Entering `resolved` sets `resolved_at`; entering `closed` sets
//! `closed_at`; reopening clears both. A closed ticket is final: it takes no other
//! change and no comment until it is reopened (the reopening PATCH may carry other
//! changes too). Two people moving the same ticket at once cannot both win: the second
//! gets a 409 and reloads.
//!
//! ## Who sees and changes what
//!
//! Reads need `crm_read`, creating, changing and commenting `crm_write`, deleting a
//! ticket or a comment `crm_delete`. Assigning a ticket to someone other than yourself
//! needs `crm_assign`, and the assignee must be an active member. Under the `own`
//! visibility setting, a `user` sees the tickets assigned to them and the ones they
//! raised; any other ticket answers 404, like another tenant's. A comment can be edited
//! by its author only. Every change writes an audit entry in its transaction.

use chrono::{DateTime, Utc};
use edge_core::{Error, Page};
use edge_tenancy::{Permission, TenantContext};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::CrmContext;
use super::fields::{Checks, caller};
use super::list::{ListQuery, ListSpec, SortKind, SortValue, Sortable};
use super::record_events::{self, Change};
use super::records::{
    RecordChecks, SubjectType, check_assignment, choices, db_err, ensure_subject,
};
use super::visibility::Scope;
use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::{ticket_comments, tickets};

/// Every status, in the order a ticket usually moves through them.
pub const STATUSES: [&str; 4] = ["open", "pending", "resolved", "closed"];
/// Every priority, lowest first.
pub const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];
/// The longest subject, in characters.
pub const MAX_SUBJECT: usize = 200;
/// The longest description, in characters.
pub const MAX_DESCRIPTION: usize = 20_000;
/// The longest comment, in characters.
pub const MAX_COMMENT: usize = 10_000;

/// `GET /tickets`: sort by `created_at` (default, newest first) or `updated_at`; search
/// `q` in the subject; filter by `status` and `priority` (one value or several,
/// comma-separated), `assignee_id` (an id, `me` or `none`), `relationship_id`,
/// `overdue=true|false`, `created_after`, `created_before`.
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
    owner_column: None,
    search_column: Some("search_text"),
    phone_column: None,
    custom_fields: None,
    filters: &[
        "status",
        "priority",
        "assignee_id",
        "relationship_id",
        "overdue",
    ],
};

/// A ticket as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketView {
    /// Id.
    pub id: uuid::Uuid,
    /// The customer.
    pub relationship_id: uuid::Uuid,
    /// One line.
    pub subject: String,
    /// The details.
    pub description: String,
    /// `open`, `pending`, `resolved` or `closed`.
    pub status: String,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: String,
    /// Who works on it.
    pub assignee_id: Option<uuid::Uuid>,
    /// When it should be resolved by.
    pub due_at: Option<DateTime<Utc>>,
    /// Past `due_at` and still open or pending.
    pub overdue: bool,
    /// Who raised it.
    pub created_by: Option<uuid::Uuid>,
    /// Raised.
    pub created_at: DateTime<Utc>,
    /// Last changed or commented on.
    pub updated_at: DateTime<Utc>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
}

impl TicketView {
    fn new(row: tickets::Model, now: DateTime<Utc>) -> Self {
        Self {
            overdue: is_overdue(&row.status, row.due_at, now),
            id: row.id,
            relationship_id: row.relationship_id,
            subject: row.subject,
            description: row.description,
            status: row.status,
            priority: row.priority,
            assignee_id: row.assignee_id,
            due_at: row.due_at,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            resolved_at: row.resolved_at,
            closed_at: row.closed_at,
        }
    }
}

/// A ticket with its conversation (`GET /tickets/{id}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketDetail {
    /// The ticket.
    #[serde(flatten)]
    pub ticket: TicketView,
    /// Its comments, oldest first.
    pub comments: Vec<CommentView>,
}

/// A comment as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommentView {
    /// Id.
    pub id: uuid::Uuid,
    /// The ticket.
    pub ticket_id: uuid::Uuid,
    /// Who wrote it.
    pub author_id: Option<uuid::Uuid>,
    /// The text.
    pub body: String,
    /// Written.
    pub created_at: DateTime<Utc>,
    /// Last edited.
    pub updated_at: DateTime<Utc>,
}

impl From<ticket_comments::Model> for CommentView {
    fn from(row: ticket_comments::Model) -> Self {
        Self {
            id: row.id,
            ticket_id: row.ticket_id,
            author_id: row.author_id,
            body: row.body,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// `POST /tickets`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// The customer (required).
    pub relationship_id: Option<String>,
    /// One line (required).
    pub subject: Option<String>,
    /// The details.
    pub description: Option<String>,
    /// Default `normal`.
    pub priority: Option<String>,
    /// Who works on it (yourself, or anyone with `crm_assign`).
    pub assignee_id: Option<String>,
    /// When it should be resolved by (RFC 3339).
    pub due_at: Option<String>,
}

/// `PATCH /tickets/{id}`: absent fields stay; `null` clears an optional one.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketPatch {
    /// Move it to another customer.
    pub relationship_id: Option<String>,
    /// One line.
    pub subject: Option<String>,
    /// The details; `null` empties them.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub description: Option<Option<String>>,
    /// The new status (see the module docs for the allowed moves).
    pub status: Option<String>,
    /// The new priority.
    pub priority: Option<String>,
    /// The new assignee; `null` unassigns.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub assignee_id: Option<Option<String>>,
    /// The new due time; `null` clears it.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub due_at: Option<Option<String>>,
}

/// `POST /tickets/{id}/comments` and `PATCH /tickets/{id}/comments/{comment_id}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentInput {
    /// The text (required).
    pub body: Option<String>,
}

fn is_overdue(status: &str, due_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    matches!(status, "open" | "pending") && due_at.is_some_and(|due| due < now)
}

/// Whether a ticket may move from `from` to `to`, for this caller.
fn check_transition(ctx: &TenantContext, from: &str, to: &str) -> Result<(), Error> {
    let allowed: &[&str] = match from {
        "open" => &["pending", "resolved"],
        "pending" => &["open", "resolved"],
        "resolved" => &["open", "closed"],
        _ => &["open"],
    };
    if from == "closed" && to == "open" {
        return if ctx.can(Permission::CrmAssign) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "only managers and admins can reopen a closed ticket".into(),
            ))
        };
    }
    if allowed.contains(&to) {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "a {from} ticket cannot become {to}; it can become {}",
            allowed.join(" or ")
        )))
    }
}

fn visible(scope: Scope, row: &tickets::Model) -> bool {
    scope.sees(&[row.assignee_id, row.created_by])
}

/// The ticket `id` if it exists, is not deleted and the caller may see it.
async fn find<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantContext,
    scope: Scope,
    id: uuid::Uuid,
) -> Result<tickets::Model, Error> {
    tickets::Entity::find()
        .filter(tickets::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(tickets::Column::Id.eq(id))
        .filter(tickets::Column::DeletedAt.is_null())
        .one(conn)
        .await
        .map_err(db_err)?
        .filter(|row| visible(scope, row))
        .ok_or(Error::not_found("ticket"))
}

/// Raises a ticket.
pub async fn create(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: NewTicket,
) -> Result<TicketView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let mut checks = Checks::new();
    let relationship = checks
        .required("relationship_id", input.relationship_id.as_deref())
        .and_then(|text| checks.id("relationship_id", text));
    let subject = checks
        .required("subject", input.subject.as_deref())
        .map(|text| checks.text("subject", text, MAX_SUBJECT))
        .unwrap_or_default();
    let description = checks
        .optional_text("description", input.description.as_deref(), MAX_DESCRIPTION)
        .unwrap_or_default();
    let priority = match input.priority.as_deref() {
        Some(text) => checks.choice("priority", text, &PRIORITIES),
        None => Some("normal"),
    };
    let assignee = input
        .assignee_id
        .as_deref()
        .and_then(|text| checks.id("assignee_id", text));
    let due_at = input
        .due_at
        .as_deref()
        .and_then(|text| checks.time("due_at", text));
    checks.finish()?;
    let (Some(relationship), Some(priority)) = (relationship, priority) else {
        return Err(Error::invalid("relationship_id", "is required"));
    };

    let cx = CrmContext::load(db, ctx).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    ensure_subject(
        &txn,
        ctx.org(),
        cx.scope,
        "relationship_id",
        SubjectType::Relationship,
        relationship,
    )
    .await?;
    check_assignment(&txn, ctx, "assignee_id", None, assignee).await?;
    let row = tickets::Model {
        organization_id: ctx.org().as_uuid(),
        id: uuid::Uuid::now_v7(),
        relationship_id: relationship,
        search_text: subject.to_lowercase(),
        subject,
        description,
        status: "open".into(),
        priority: priority.into(),
        assignee_id: assignee,
        due_at,
        created_by: caller(ctx),
        created_at: now,
        updated_at: now,
        resolved_at: None,
        closed_at: None,
        deleted_at: None,
        overdue_at: None,
    };
    tickets::Entity::insert(tickets::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "ticket.create")
        .target("ticket", row.id)
        .details(json!({
            "relationship_id": row.relationship_id,
            "subject": row.subject,
            "priority": row.priority,
            "assignee_id": row.assignee_id,
            "due_at": row.due_at,
        }))
        .record(&txn, client, now)
        .await?;
    let (id, owner) = (row.id, row.assignee_id);
    let view = TicketView::new(row, now);
    record_events::record(&txn, ctx, "ticket", id, &view, owner, Change::Created, now).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// Lists the tickets the caller may see (see [`LIST`] for the query language).
pub async fn list(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    pairs: Vec<(String, String)>,
) -> Result<Page<TicketView>, Error> {
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
) -> Result<Page<TicketView>, Error> {
    ctx.require(Permission::CrmRead)?;
    let cx = CrmContext::load(db, ctx).await?;
    let me = caller(ctx);
    let query = ListQuery::parse(pairs, LIST, &cx.settings, me, cx.country)?;
    let query = match page_size {
        Some(size) => query.with_page_size(size),
        None => query,
    };
    let mut select = tickets::Entity::find()
        .filter(tickets::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(tickets::Column::DeletedAt.is_null());
    if let Some(user) = cx.scope.restricted_to() {
        select = select.filter(
            Condition::any()
                .add(tickets::Column::AssigneeId.eq(user))
                .add(tickets::Column::CreatedBy.eq(user)),
        );
    }
    select = select.filter(list_filters(&query, me, now)?);
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
    Ok(page.map(|row| TicketView::new(row, now)))
}

fn list_filters(
    query: &ListQuery,
    me: Option<uuid::Uuid>,
    now: DateTime<Utc>,
) -> Result<Condition, Error> {
    let mut all = Condition::all();
    if let Some(statuses) = choices(query, "status", &STATUSES)? {
        all = all.add(tickets::Column::Status.is_in(statuses));
    }
    if let Some(priorities) = choices(query, "priority", &PRIORITIES)? {
        all = all.add(tickets::Column::Priority.is_in(priorities));
    }
    match query.text("assignee_id") {
        None => {}
        Some("none") => all = all.add(tickets::Column::AssigneeId.is_null()),
        Some("me") => match me {
            Some(me) => all = all.add(tickets::Column::AssigneeId.eq(me)),
            None => {
                return Err(Error::invalid("assignee_id", "`me` needs a signed-in user"));
            }
        },
        Some(text) => match text.parse::<uuid::Uuid>() {
            Ok(id) => all = all.add(tickets::Column::AssigneeId.eq(id)),
            Err(_) => {
                return Err(Error::invalid(
                    "assignee_id",
                    "must be a user id, `me` or `none`",
                ));
            }
        },
    }
    if let Some(relationship) = query.uuid("relationship_id")? {
        all = all.add(tickets::Column::RelationshipId.eq(relationship));
    }
    match query.flag("overdue")? {
        Some(true) => {
            all = all
                .add(tickets::Column::Status.is_in(["open", "pending"]))
                .add(tickets::Column::DueAt.lt(now));
        }
        Some(false) => {
            all = all.add(
                Condition::any()
                    .add(tickets::Column::Status.is_not_in(["open", "pending"]))
                    .add(tickets::Column::DueAt.is_null())
                    .add(tickets::Column::DueAt.gte(now)),
            );
        }
        None => {}
    }
    Ok(all)
}

/// One ticket with its comments, oldest first.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
    id: uuid::Uuid,
) -> Result<TicketDetail, Error> {
    ctx.require(Permission::CrmRead)?;
    let cx = CrmContext::load(db, ctx).await?;
    let ticket = find(db, ctx, cx.scope, id).await?;
    let comments = ticket_comments::Entity::find()
        .filter(ticket_comments::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(ticket_comments::Column::TicketId.eq(ticket.id))
        .filter(ticket_comments::Column::DeletedAt.is_null())
        .order_by_asc(ticket_comments::Column::CreatedAt)
        .order_by_asc(ticket_comments::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?;
    Ok(TicketDetail {
        ticket: TicketView::new(ticket, now),
        comments: comments.into_iter().map(CommentView::from).collect(),
    })
}

/// Changes a ticket: its fields, its status (see the module docs), its assignee.
pub async fn update(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    patch: TicketPatch,
) -> Result<TicketView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let mut checks = Checks::new();
    let relationship = patch
        .relationship_id
        .as_deref()
        .and_then(|text| checks.id("relationship_id", text));
    let subject = patch
        .subject
        .as_deref()
        .map(|text| checks.text("subject", text, MAX_SUBJECT));
    let description = patch.description.map(|text| {
        checks
            .optional_text("description", text.as_deref(), MAX_DESCRIPTION)
            .unwrap_or_default()
    });
    let status = patch
        .status
        .as_deref()
        .and_then(|text| checks.choice("status", text, &STATUSES));
    let priority = patch
        .priority
        .as_deref()
        .and_then(|text| checks.choice("priority", text, &PRIORITIES));
    let assignee = patch.assignee_id.map(|value| {
        value
            .as_deref()
            .and_then(|text| checks.id("assignee_id", text))
    });
    let due_at = patch.due_at.map(|value| {
        value
            .as_deref()
            .and_then(|text| checks.time("due_at", text))
    });
    checks.finish()?;

    let cx = CrmContext::load(db, ctx).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = find(&txn, ctx, cx.scope, id).await?;
    let mut row = tickets::ActiveModel::default();
    let mut changed: Vec<&str> = Vec::new();
    let mut details = json!({});

    let new_status = status.filter(|s| *s != current.status);
    if let Some(to) = new_status {
        check_transition(ctx, &current.status, to)?;
        row.status = Set(to.to_owned());
        match to {
            "resolved" => {
                row.resolved_at = Set(Some(now));
                row.closed_at = Set(None);
            }
            "closed" => row.closed_at = Set(Some(now)),
            "open" => {
                row.resolved_at = Set(None);
                row.closed_at = Set(None);
            }
            _ => {}
        }
        changed.push("status");
        details["status"] = json!({ "from": current.status, "to": to });
    }
    if let Some(relationship) = relationship.filter(|r| *r != current.relationship_id) {
        ensure_subject(
            &txn,
            ctx.org(),
            cx.scope,
            "relationship_id",
            SubjectType::Relationship,
            relationship,
        )
        .await?;
        row.relationship_id = Set(relationship);
        changed.push("relationship_id");
        details["relationship_id"] = json!({ "from": current.relationship_id, "to": relationship });
    }
    if let Some(subject) = subject.filter(|s| *s != current.subject) {
        row.search_text = Set(subject.to_lowercase());
        row.subject = Set(subject);
        changed.push("subject");
    }
    if let Some(description) = description.filter(|d| *d != current.description) {
        row.description = Set(description);
        changed.push("description");
    }
    if let Some(priority) = priority.filter(|p| *p != current.priority) {
        row.priority = Set(priority.to_owned());
        changed.push("priority");
        details["priority"] = json!({ "from": current.priority, "to": priority });
    }
    if let Some(assignee) = assignee.filter(|a| *a != current.assignee_id) {
        check_assignment(&txn, ctx, "assignee_id", current.assignee_id, assignee).await?;
        row.assignee_id = Set(assignee);
        changed.push("assignee_id");
        details["assignee_id"] = json!({ "from": current.assignee_id, "to": assignee });
    }
    if let Some(due_at) = due_at.filter(|d| *d != current.due_at) {
        row.due_at = Set(due_at);
        changed.push("due_at");
    }
    if changed.is_empty() {
        return Ok(TicketView::new(current, now));
    }
    if current.status == "closed" && new_status != Some("open") {
        return Err(Error::Conflict(
            "a closed ticket cannot be changed; reopen it first".into(),
        ));
    }
    row.updated_at = Set(now);
    // Only if nobody moved it meanwhile: two concurrent moves cannot both apply.
    let updated = tickets::Entity::update_many()
        .set(row)
        .filter(tickets::Column::OrganizationId.eq(current.organization_id))
        .filter(tickets::Column::Id.eq(current.id))
        .filter(tickets::Column::Status.eq(current.status.clone()))
        .filter(tickets::Column::DeletedAt.is_null())
        .exec(&txn)
        .await
        .map_err(db_err)?
        .rows_affected;
    if updated != 1 {
        return Err(Error::Conflict(
            "the ticket changed while you were editing it; reload it and try again".into(),
        ));
    }
    details["changed"] = json!(changed);
    audit::Entry::new(ctx.org(), Actor::of(ctx), "ticket.update")
        .target("ticket", current.id)
        .details(details)
        .record(&txn, client, now)
        .await?;
    let saved = tickets::Entity::find()
        .filter(tickets::Column::OrganizationId.eq(current.organization_id))
        .filter(tickets::Column::Id.eq(current.id))
        .one(&txn)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("ticket"))?;
    let (owner, previous_owner) = (saved.assignee_id, current.assignee_id);
    let view = TicketView::new(saved, now);
    let before = serde_json::to_value(TicketView::new(current, now)).map_err(Error::internal)?;
    let change = Change::Updated {
        changed: &changed,
        before,
        previous_owner,
    };
    record_events::record(&txn, ctx, "ticket", id, &view, owner, change, now).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// Deletes a ticket (soft: it disappears from every read; its history stays).
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
    let deleted = tickets::Entity::update_many()
        .col_expr(tickets::Column::DeletedAt, Expr::value(now))
        .col_expr(tickets::Column::UpdatedAt, Expr::value(now))
        .filter(tickets::Column::OrganizationId.eq(current.organization_id))
        .filter(tickets::Column::Id.eq(current.id))
        .filter(tickets::Column::DeletedAt.is_null())
        .exec(&txn)
        .await
        .map_err(db_err)?
        .rows_affected;
    if deleted != 1 {
        return Err(Error::not_found("ticket"));
    }
    audit::Entry::new(ctx.org(), Actor::of(ctx), "ticket.delete")
        .target("ticket", current.id)
        .details(json!({
            "subject": current.subject,
            "relationship_id": current.relationship_id,
            "status": current.status,
        }))
        .record(&txn, client, now)
        .await?;
    let (id, owner) = (current.id, current.assignee_id);
    let view = TicketView::new(current, now);
    record_events::record(&txn, ctx, "ticket", id, &view, owner, Change::Deleted, now).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(())
}

fn comment_body(input: CommentInput) -> Result<String, Error> {
    let mut checks = Checks::new();
    let body = checks
        .required("body", input.body.as_deref())
        .map(|text| checks.text("body", text, MAX_COMMENT))
        .unwrap_or_default();
    checks.finish()?;
    Ok(body)
}

fn refuse_if_closed(ticket: &tickets::Model) -> Result<(), Error> {
    if ticket.status == "closed" {
        Err(Error::Conflict(
            "a closed ticket takes no comments; reopen it first".into(),
        ))
    } else {
        Ok(())
    }
}

async fn touch<C: ConnectionTrait>(
    conn: &C,
    ticket: &tickets::Model,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    tickets::Entity::update_many()
        .col_expr(tickets::Column::UpdatedAt, Expr::value(now))
        .filter(tickets::Column::OrganizationId.eq(ticket.organization_id))
        .filter(tickets::Column::Id.eq(ticket.id))
        .exec(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Adds a comment to a ticket (which counts as a change of the ticket).
pub async fn comment(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    ticket_id: uuid::Uuid,
    input: CommentInput,
) -> Result<CommentView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let body = comment_body(input)?;
    let cx = CrmContext::load(db, ctx).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let ticket = find(&txn, ctx, cx.scope, ticket_id).await?;
    refuse_if_closed(&ticket)?;
    let row = ticket_comments::Model {
        organization_id: ticket.organization_id,
        id: uuid::Uuid::now_v7(),
        ticket_id: ticket.id,
        author_id: caller(ctx),
        body,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    ticket_comments::Entity::insert(ticket_comments::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
    touch(&txn, &ticket, now).await?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "ticket.comment")
        .target("ticket", ticket.id)
        .details(json!({ "comment_id": row.id, "length": row.body.chars().count() }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    Ok(CommentView::from(row))
}

async fn find_comment<C: ConnectionTrait>(
    conn: &C,
    ticket: &tickets::Model,
    id: uuid::Uuid,
) -> Result<ticket_comments::Model, Error> {
    ticket_comments::Entity::find()
        .filter(ticket_comments::Column::OrganizationId.eq(ticket.organization_id))
        .filter(ticket_comments::Column::TicketId.eq(ticket.id))
        .filter(ticket_comments::Column::Id.eq(id))
        .filter(ticket_comments::Column::DeletedAt.is_null())
        .one(conn)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("comment"))
}

/// Edits a comment; only its author may.
pub async fn update_comment(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    ticket_id: uuid::Uuid,
    comment_id: uuid::Uuid,
    input: CommentInput,
) -> Result<CommentView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let body = comment_body(input)?;
    let cx = CrmContext::load(db, ctx).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let ticket = find(&txn, ctx, cx.scope, ticket_id).await?;
    let current = find_comment(&txn, &ticket, comment_id).await?;
    let me = caller(ctx);
    if me.is_none() || current.author_id != me {
        return Err(Error::Forbidden(
            "only the author of a comment can edit it".into(),
        ));
    }
    refuse_if_closed(&ticket)?;
    if current.body == body {
        return Ok(CommentView::from(current));
    }
    ticket_comments::Entity::update_many()
        .col_expr(ticket_comments::Column::Body, Expr::value(body.clone()))
        .col_expr(ticket_comments::Column::UpdatedAt, Expr::value(now))
        .filter(ticket_comments::Column::OrganizationId.eq(current.organization_id))
        .filter(ticket_comments::Column::Id.eq(current.id))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "ticket.comment_update")
        .target("ticket", ticket.id)
        .details(json!({ "comment_id": current.id, "length": body.chars().count() }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    Ok(CommentView::from(ticket_comments::Model {
        body,
        updated_at: now,
        ..current
    }))
}

/// Deletes a comment (soft).
pub async fn delete_comment(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    ticket_id: uuid::Uuid,
    comment_id: uuid::Uuid,
) -> Result<(), Error> {
    ctx.require(Permission::CrmDelete)?;
    let cx = CrmContext::load(db, ctx).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let ticket = find(&txn, ctx, cx.scope, ticket_id).await?;
    let current = find_comment(&txn, &ticket, comment_id).await?;
    ticket_comments::Entity::update_many()
        .col_expr(ticket_comments::Column::DeletedAt, Expr::value(now))
        .filter(ticket_comments::Column::OrganizationId.eq(current.organization_id))
        .filter(ticket_comments::Column::Id.eq(current.id))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "ticket.comment_delete")
        .target("ticket", ticket.id)
        .details(json!({ "comment_id": current.id, "author_id": current.author_id }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_core::{OrgId, SessionId, UserId};
    use edge_tenancy::{PlanLimits, Role};

    fn ctx(role: Role) -> TenantContext {
        TenantContext::for_user(
            OrgId::new(),
            UserId::new(),
            SessionId::new(),
            role,
            PlanLimits::default(),
        )
    }

    #[test]
    fn status_moves_follow_the_rules() {
        let user = ctx(Role::User);
        let manager = ctx(Role::Manager);
        for (from, to) in [
            ("open", "pending"),
            ("open", "resolved"),
            ("pending", "open"),
            ("pending", "resolved"),
            ("resolved", "open"),
            ("resolved", "closed"),
        ] {
            assert!(check_transition(&user, from, to).is_ok(), "{from} -> {to}");
        }
        for (from, to) in [
            ("open", "closed"),
            ("pending", "closed"),
            ("resolved", "pending"),
            ("closed", "pending"),
            ("closed", "resolved"),
        ] {
            assert!(
                matches!(
                    check_transition(&manager, from, to),
                    Err(Error::Conflict(_))
                ),
                "{from} -> {to}"
            );
        }
        assert!(matches!(
            check_transition(&user, "closed", "open"),
            Err(Error::Forbidden(_))
        ));
        assert!(check_transition(&manager, "closed", "open").is_ok());
    }

    #[test]
    fn only_open_and_pending_tickets_are_overdue() {
        let now = Utc::now();
        let past = Some(now - chrono::Duration::hours(1));
        assert!(is_overdue("open", past, now));
        assert!(is_overdue("pending", past, now));
        assert!(!is_overdue("resolved", past, now));
        assert!(!is_overdue("open", None, now));
        assert!(!is_overdue(
            "open",
            Some(now + chrono::Duration::hours(1)),
            now
        ));
    }
}
