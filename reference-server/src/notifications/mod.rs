//! In-app notifications: notices to one member, read over `GET /notifications` and pushed
//! over Socket.IO.
//!
//! - [`create`] writes a notification and records the event `notification.created`
//!   (`data.user_id` and `data.notification`) in the caller's transaction; realtime sends
//!   it to that member's room only, as the Socket.IO event `notification`.
//! - A member sees only their own notifications; any other id (another member's, another
//!   organization's) answers 404.
//! - [`worker`] turns events into notifications (`events::Consumer::Notifications`):
//!   a low wallet balance to the members who may read billing, a disabled webhook
//!   endpoint to the organization's admins, an overdue ticket to its assignee (or the
//!   admins when it has none), a record given to someone (`*.updated` with `owner_id`
//!   among `changed`, or `*.created` with an owner) to its owner unless they gave it to
//!   themselves.
//! - Mentions: a chat message that names a member as `@` and their email
//!   (`@amina@duka.example`) notifies them, if they may see the room ([`mentions`]).
//! - Automation's `notify_users` action creates notifications directly.

pub mod mentions;
pub mod worker;

use chrono::{DateTime, Utc};
use edge_core::{Error, OrgId, Page, PageRequest};
use edge_tenancy::{Permission, Role, TenantContext};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait as _,
    PaginatorTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::db::{begin_write, db_err};
use crate::entities::{memberships, notifications};

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A record was given to the member.
    Assignment,
    /// The member was mentioned in a chat message.
    Mention,
    /// A ticket of theirs is overdue.
    Overdue,
    /// The wallet balance fell below its threshold.
    LowBalance,
    /// A webhook endpoint was disabled after failing.
    WebhookDisabled,
    /// An automation rule's `notify_users` action.
    Automation,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Assignment => "assignment",
            Kind::Mention => "mention",
            Kind::Overdue => "overdue",
            Kind::LowBalance => "low_balance",
            Kind::WebhookDisabled => "webhook_disabled",
            Kind::Automation => "automation",
        }
    }
}

/// A notification to create.
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// The member it is for.
    pub user_id: Uuid,
    /// Its kind.
    pub kind: Kind,
    /// One line.
    pub title: String,
    /// The details.
    pub body: String,
    /// What it is about, if anything.
    pub subject: Option<(String, Uuid)>,
    /// Extra data for clients.
    pub data: Value,
}

/// A notification as the API returns it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct NotificationView {
    /// Id.
    pub id: Uuid,
    /// The member it is for.
    pub user_id: Uuid,
    /// Its kind.
    pub kind: String,
    /// One line.
    pub title: String,
    /// The details.
    pub body: String,
    /// What it is about.
    pub subject_type: Option<String>,
    /// Its id.
    pub subject_id: Option<Uuid>,
    /// Extra data.
    pub data: Value,
    /// Whether it was read.
    pub read: bool,
    /// When it was read.
    pub read_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<notifications::Model> for NotificationView {
    fn from(row: notifications::Model) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            kind: row.kind,
            title: row.title,
            body: row.body,
            subject_type: row.subject_type,
            subject_id: row.subject_id,
            data: row.data,
            read: row.read_at.is_some(),
            read_at: row.read_at,
            created_at: row.created_at,
        }
    }
}

/// The longest title kept, in characters (longer ones are cut).
const MAX_TITLE_CHARS: usize = 300;

/// Creates a notification and records `notification.created` on `conn` (the caller's
/// transaction), so the two commit together.
pub async fn create<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    new: NewNotification,
    now: DateTime<Utc>,
) -> Result<NotificationView, DbErr> {
    let (subject_type, subject_id) = match new.subject {
        Some((kind, id)) => (Some(kind), Some(id)),
        None => (None, None),
    };
    let row = notifications::Model {
        organization_id: org.as_uuid(),
        id: Uuid::now_v7(),
        user_id: new.user_id,
        kind: new.kind.as_str().to_owned(),
        title: new.title.chars().take(MAX_TITLE_CHARS).collect(),
        body: new.body,
        subject_type,
        subject_id,
        data: new.data,
        read_at: None,
        created_at: now,
    };
    notifications::Entity::insert(notifications::ActiveModel::from(row.clone()))
        .exec_without_returning(conn)
        .await?;
    let view = NotificationView::from(row);
    crate::events::record(
        conn,
        org,
        "notification.created",
        ("notification", view.id),
        json!({ "user_id": view.user_id, "notification": view }),
        now,
    )
    .await?;
    Ok(view)
}

/// A page of the caller's notifications with their unread count.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NotificationList {
    /// Newest first.
    pub items: Vec<NotificationView>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<edge_core::Cursor>,
    /// How many of the caller's notifications are unread (all pages).
    pub unread_count: u64,
}

/// The member the caller is; API keys have no notifications.
fn member(ctx: &TenantContext) -> Result<Uuid, Error> {
    ctx.user().map(|u| u.as_uuid()).ok_or_else(|| {
        Error::Forbidden("notifications belong to members; an API key has none".into())
    })
}

/// The caller's notifications, newest first, keyset paged; only unread ones when
/// `unread_only`.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    unread_only: bool,
    page: &PageRequest,
) -> Result<NotificationList, Error> {
    let me = member(ctx)?;
    let org = ctx.org().as_uuid();
    let before: Option<Uuid> = page.after().map_err(Error::from)?;
    let mine = || {
        notifications::Entity::find()
            .filter(notifications::Column::OrganizationId.eq(org))
            .filter(notifications::Column::UserId.eq(me))
    };
    let mut select = mine();
    if unread_only {
        select = select.filter(notifications::Column::ReadAt.is_null());
    }
    if let Some(before) = before {
        select = select.filter(notifications::Column::Id.lt(before));
    }
    let limit = page.limit();
    let rows = select
        .order_by_desc(notifications::Column::Id)
        .limit(u64::from(limit) + 1)
        .all(db)
        .await
        .map_err(db_err)?;
    let unread_count = mine()
        .filter(notifications::Column::ReadAt.is_null())
        .count(db)
        .await
        .map_err(db_err)?;
    let page = Page::from_overfetch(
        rows.into_iter().map(NotificationView::from).collect(),
        limit,
        |n: &NotificationView| n.id,
    );
    Ok(NotificationList {
        items: page.items,
        next_cursor: page.next_cursor,
        unread_count,
    })
}

/// Marks one of the caller's notifications read (reading it again keeps the first time).
pub async fn mark_read(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<NotificationView, Error> {
    let me = member(ctx)?;
    let org = ctx.org().as_uuid();
    let txn = begin_write(db).await.map_err(db_err)?;
    notifications::Entity::update_many()
        .col_expr(notifications::Column::ReadAt, Expr::value(now))
        .filter(notifications::Column::OrganizationId.eq(org))
        .filter(notifications::Column::UserId.eq(me))
        .filter(notifications::Column::Id.eq(id))
        .filter(notifications::Column::ReadAt.is_null())
        .exec(&txn)
        .await
        .map_err(db_err)?;
    let row = notifications::Entity::find_by_id((org, id))
        .one(&txn)
        .await
        .map_err(db_err)?
        .filter(|row| row.user_id == me)
        .ok_or(Error::not_found("notification"))?;
    txn.commit().await.map_err(db_err)?;
    Ok(row.into())
}

/// Marks every unread notification of the caller read; returns how many were.
pub async fn mark_all_read(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    let me = member(ctx)?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let marked = notifications::Entity::update_many()
        .col_expr(notifications::Column::ReadAt, Expr::value(now))
        .filter(notifications::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .filter(notifications::Column::UserId.eq(me))
        .filter(notifications::Column::ReadAt.is_null())
        .exec(&txn)
        .await
        .map_err(db_err)?
        .rows_affected;
    txn.commit().await.map_err(db_err)?;
    Ok(marked)
}

/// The active members of `org` whose role passes `keep`, oldest membership first.
pub(crate) async fn members_where<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    keep: impl Fn(Role) -> bool,
) -> Result<Vec<Uuid>, DbErr> {
    let rows = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(org.as_uuid()))
        .filter(memberships::Column::Status.eq("active"))
        .order_by_asc(memberships::Column::CreatedAt)
        .order_by_asc(memberships::Column::Id)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|m| m.role.parse::<Role>().is_ok_and(&keep))
        .map(|m| m.user_id)
        .collect())
}

/// The active members whose role grants `permission`.
pub(crate) async fn members_who_can<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    permission: Permission,
) -> Result<Vec<Uuid>, DbErr> {
    members_where(conn, org, |role| role.allows(permission)).await
}

/// The organization's active admins.
pub(crate) async fn admins<C: ConnectionTrait>(conn: &C, org: OrgId) -> Result<Vec<Uuid>, DbErr> {
    members_where(conn, org, |role| role == Role::OrgAdmin).await
}

/// The active member `user` and their role, if they are one.
pub(crate) async fn active_role<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    user: Uuid,
) -> Result<Option<Role>, DbErr> {
    Ok(memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(org.as_uuid()))
        .filter(memberships::Column::UserId.eq(user))
        .filter(memberships::Column::Status.eq("active"))
        .one(conn)
        .await?
        .and_then(|m| m.role.parse::<Role>().ok()))
}
