//! Relationships: customers. Created directly or by converting a prospect
//! ([`super::prospects::convert`]), in which case they keep a link to the prospect and
//! its history.

use chrono::{DateTime, Utc};
use edge_core::{Error, Money};
use edge_tenancy::{Permission, TenantContext};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::contact::{ContactInput, ContactRow, assign, strings};
use super::custom_fields::RecordKind;
use super::fields::{Checks, caller};
use super::list::{ListQuery, ListSpec, SortKind, SortValue, Sortable};
use super::record_events::{self, Change};
use super::{CrmContext, tags};
use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::relationships;

/// The fields of a relationship, for a create (`name` required) or a partial update
/// (absent fields stay; `null` clears an optional one).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationshipInput {
    /// The customer's name.
    pub name: Option<String>,
    /// The company.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub company: Option<Option<String>>,
    /// One phone number (shorthand for `phones: [phone]`).
    pub phone: Option<String>,
    /// Every phone number, the main one first.
    pub phones: Option<Vec<String>>,
    /// Email.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub email: Option<Option<String>>,
    /// Industry (vocabulary `industries`).
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub industry: Option<Option<String>>,
    /// Services bought (vocabulary `services`).
    pub services: Option<Vec<String>>,
    /// The account manager; default the creator.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub account_manager_id: Option<Option<uuid::Uuid>>,
    /// Happiness rating (vocabulary `happiness_ratings`).
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub happiness: Option<Option<String>>,
    /// Contract value, in the organization's currency.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub contract_value: Option<Option<Money>>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Custom field values; `null` removes one.
    pub custom_fields: Option<Map<String, Value>>,
}

/// A relationship as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RelationshipView {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// Company.
    pub company: Option<String>,
    /// The main phone, E.164.
    pub phone: Option<String>,
    /// Every phone, E.164.
    pub phones: Vec<String>,
    /// Email.
    pub email: Option<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Services bought.
    pub services: Vec<String>,
    /// Account manager.
    pub account_manager_id: Option<uuid::Uuid>,
    /// Happiness rating.
    pub happiness: Option<String>,
    /// Contract value.
    pub contract_value: Option<Money>,
    /// Tags.
    pub tags: Vec<String>,
    /// Custom field values.
    pub custom_fields: Value,
    /// The prospect it was converted from.
    pub prospect_id: Option<uuid::Uuid>,
    /// Who created it.
    pub created_by: Option<uuid::Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl RelationshipView {
    /// The view of a stored row.
    pub(crate) fn new(row: relationships::Model, cx: &CrmContext) -> Self {
        Self {
            id: row.id,
            contract_value: row
                .contract_value_minor
                .map(|minor| Money::from_minor(minor, cx.currency)),
            name: row.name,
            company: row.company,
            phone: row.phone,
            phones: strings(&row.phones),
            email: row.email,
            industry: row.industry,
            services: strings(&row.services),
            account_manager_id: row.account_manager_id,
            happiness: row.happiness,
            tags: strings(&row.tags),
            custom_fields: row.custom,
            prospect_id: row.prospect_id,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The list: `GET /relationships`.
pub const LIST: ListSpec = ListSpec {
    tag_kind: Some("relationship"),
    sorts: &[
        Sortable {
            name: "created_at",
            kind: SortKind::Time,
        },
        Sortable {
            name: "updated_at",
            kind: SortKind::Time,
        },
        Sortable {
            name: "name",
            kind: SortKind::Text,
        },
    ],
    default_sort: "-created_at",
    owner_column: Some("account_manager_id"),
    search_column: Some("search_text"),
    phone_column: Some("phone"),
    custom_fields: Some(RecordKind::Relationship),
    filters: &["industry", "happiness"],
};

async fn apply(
    db: &impl ConnectionTrait,
    ctx: &TenantContext,
    cx: &CrmContext,
    row: &mut relationships::Model,
    input: RelationshipInput,
    creating: bool,
) -> Result<(), Error> {
    let manager = check(cx, row, input, creating)?;
    assign(
        db,
        ctx,
        "account_manager_id",
        &mut row.account_manager_id,
        manager,
        creating,
    )
    .await
}

/// The checks of [`apply`] that need no database: every field but the account manager,
/// checked and written onto `row`. Returns the account manager asked for (`None`: not
/// given), which the caller checks with [`assign`]. Imports validate each row with it,
/// exactly as the API validates the same relationship.
pub(crate) fn check(
    cx: &CrmContext,
    row: &mut relationships::Model,
    input: RelationshipInput,
    creating: bool,
) -> Result<Option<Option<uuid::Uuid>>, Error> {
    let mut checks = Checks::new();
    ContactRow {
        name: &mut row.name,
        company: &mut row.company,
        phone: &mut row.phone,
        phones: &mut row.phones,
        email: &mut row.email,
        industry: &mut row.industry,
        services: &mut row.services,
        happiness: &mut row.happiness,
        tags: &mut row.tags,
        custom: &mut row.custom,
        search_text: &mut row.search_text,
    }
    .apply(
        &mut checks,
        cx,
        RecordKind::Relationship,
        ContactInput {
            name: input.name,
            company: input.company,
            phone: input.phone,
            phones: input.phones,
            email: input.email,
            industry: input.industry,
            services: input.services,
            happiness: input.happiness,
            tags: input.tags,
            custom_fields: input.custom_fields,
        },
        creating,
    );
    if let Some(value) = input.contract_value {
        row.contract_value_minor = value.map(|v| checks.money("contract_value", v, cx.currency));
    }
    checks.finish()?;
    Ok(input.account_manager_id)
}

/// A blank relationship of `org` (name empty, lists empty), to be filled by [`check`].
pub(crate) fn blank(
    org: uuid::Uuid,
    cx: &CrmContext,
    now: DateTime<Utc>,
    prospect: Option<uuid::Uuid>,
) -> relationships::Model {
    relationships::Model {
        organization_id: org,
        id: uuid::Uuid::now_v7(),
        name: String::new(),
        company: None,
        phone: None,
        phones: json!([]),
        email: None,
        industry: None,
        services: json!([]),
        account_manager_id: None,
        happiness: None,
        contract_value_minor: None,
        currency: cx.currency.code().to_owned(),
        tags: json!([]),
        custom: json!({}),
        search_text: String::new(),
        prospect_id: prospect,
        created_by: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}

/// Checks and inserts a new relationship inside `txn`, with its audit entry. `prospect`
/// is the prospect it is converted from, if any.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert(
    db: &DatabaseConnection,
    txn: &DatabaseTransaction,
    ctx: &TenantContext,
    cx: &CrmContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: RelationshipInput,
    prospect: Option<uuid::Uuid>,
) -> Result<RelationshipView, Error> {
    let mut row = blank(ctx.org().as_uuid(), cx, now, prospect);
    row.created_by = caller(ctx);
    apply(db, ctx, cx, &mut row, input, true).await?;
    relationships::Entity::insert(relationships::ActiveModel::from(row.clone()))
        .exec_without_returning(txn)
        .await
        .map_err(Error::internal)?;
    tags::replace(
        txn,
        row.organization_id,
        "relationship",
        row.id,
        &strings(&row.tags),
    )
    .await?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "relationship.create")
        .target("relationship", row.id)
        .details(json!({
            "name": row.name,
            "account_manager_id": row.account_manager_id,
            "prospect_id": row.prospect_id,
        }))
        .record(txn, client, now)
        .await?;
    let (id, owner) = (row.id, row.account_manager_id);
    let view = RelationshipView::new(row, cx);
    record_events::record(
        txn,
        ctx,
        "relationship",
        id,
        &view,
        owner,
        Change::Created,
        now,
    )
    .await?;
    Ok(view)
}

/// Creates a relationship directly.
pub async fn create(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: RelationshipInput,
) -> Result<RelationshipView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let cx = CrmContext::load(db, ctx).await?;
    let txn = begin_write(db).await.map_err(Error::internal)?;
    let view = insert(db, &txn, ctx, &cx, client, now, input, None).await?;
    txn.commit().await.map_err(Error::internal)?;
    Ok(view)
}

/// A relationship the caller may see, or 404.
pub(crate) async fn find(
    db: &impl ConnectionTrait,
    ctx: &TenantContext,
    cx: &CrmContext,
    id: uuid::Uuid,
) -> Result<relationships::Model, Error> {
    relationships::Entity::find_by_id((ctx.org().as_uuid(), id))
        .filter(relationships::Column::DeletedAt.is_null())
        .one(db)
        .await
        .map_err(Error::internal)?
        .filter(|row| cx.scope.sees(&[row.account_manager_id]))
        .ok_or(Error::not_found("relationship"))
}

/// Reads one relationship.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    id: uuid::Uuid,
) -> Result<RelationshipView, Error> {
    ctx.require(Permission::CrmRead)?;
    let cx = CrmContext::load(db, ctx).await?;
    Ok(RelationshipView::new(find(db, ctx, &cx, id).await?, &cx))
}

/// Changes a relationship.
pub async fn update(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    input: RelationshipInput,
) -> Result<RelationshipView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let cx = CrmContext::load(db, ctx).await?;
    let before = find(db, ctx, &cx, id).await?;
    let mut row = before.clone();
    apply(db, ctx, &cx, &mut row, input, false).await?;
    row.updated_at = now;
    let changed = changed_fields(&before, &row);
    let txn = begin_write(db).await.map_err(Error::internal)?;
    row.clone()
        .into_active_model()
        .reset_all()
        .update(&txn)
        .await
        .map_err(Error::internal)?;
    if before.tags != row.tags {
        tags::replace(
            &txn,
            row.organization_id,
            "relationship",
            row.id,
            &strings(&row.tags),
        )
        .await?;
    }
    audit::Entry::new(ctx.org(), Actor::of(ctx), "relationship.update")
        .target("relationship", row.id)
        .details(json!({ "changed": changed }))
        .record(&txn, client, now)
        .await?;
    let (id, owner, previous_owner) = (row.id, row.account_manager_id, before.account_manager_id);
    let view = RelationshipView::new(row, &cx);
    let before =
        serde_json::to_value(RelationshipView::new(before, &cx)).map_err(Error::internal)?;
    let change = Change::Updated {
        changed: &changed,
        before,
        previous_owner,
    };
    record_events::record(&txn, ctx, "relationship", id, &view, owner, change, now).await?;
    txn.commit().await.map_err(Error::internal)?;
    Ok(view)
}

pub(crate) fn changed_fields(
    before: &relationships::Model,
    after: &relationships::Model,
) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! compare {
        ($($field:ident),*) => {
            $(if before.$field != after.$field {
                changed.push(stringify!($field));
            })*
        };
    }
    compare!(
        name,
        company,
        phones,
        email,
        industry,
        services,
        account_manager_id,
        happiness,
        contract_value_minor,
        tags,
        custom
    );
    changed
}

/// Deletes a relationship (softly).
pub async fn delete(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
) -> Result<(), Error> {
    ctx.require(Permission::CrmDelete)?;
    let cx = CrmContext::load(db, ctx).await?;
    let row = find(db, ctx, &cx, id).await?;
    let txn = begin_write(db).await.map_err(Error::internal)?;
    let mut active: relationships::ActiveModel = row.clone().into();
    active.deleted_at = Set(Some(now));
    active.updated_at = Set(now);
    active.update(&txn).await.map_err(Error::internal)?;
    tags::replace(&txn, row.organization_id, "relationship", row.id, &[]).await?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "relationship.delete")
        .target("relationship", row.id)
        .details(json!({ "name": row.name }))
        .record(&txn, client, now)
        .await?;
    let (id, owner) = (row.id, row.account_manager_id);
    let view = RelationshipView::new(row, &cx);
    record_events::record(
        &txn,
        ctx,
        "relationship",
        id,
        &view,
        owner,
        Change::Deleted,
        now,
    )
    .await?;
    txn.commit().await.map_err(Error::internal)?;
    Ok(())
}

/// Lists relationships with the filters of [`LIST`] plus `industry` and `happiness`.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    pairs: Vec<(String, String)>,
) -> Result<edge_core::Page<RelationshipView>, Error> {
    list_sized(db, ctx, pairs, None).await
}

/// [`list`], reading pages of `page_size` rows when given (an export walks the whole
/// list with the same filters and visibility in larger pages).
pub(crate) async fn list_sized(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    pairs: Vec<(String, String)>,
    page_size: Option<u32>,
) -> Result<edge_core::Page<RelationshipView>, Error> {
    ctx.require(Permission::CrmRead)?;
    let cx = CrmContext::load(db, ctx).await?;
    let query = ListQuery::parse(pairs, LIST, &cx.settings, caller(ctx), cx.country)?;
    let query = match page_size {
        Some(size) => query.with_page_size(size),
        None => query,
    };
    let org = ctx.org().as_uuid();
    let mut select = relationships::Entity::find()
        .filter(relationships::Column::OrganizationId.eq(org))
        .filter(relationships::Column::DeletedAt.is_null());
    if let Some(user) = cx.scope.restricted_to() {
        select = select.filter(relationships::Column::AccountManagerId.eq(user));
    }
    if let Some(industry) = query.text("industry") {
        select = select.filter(relationships::Column::Industry.eq(industry));
    }
    if let Some(happiness) = query.text("happiness") {
        select = select.filter(relationships::Column::Happiness.eq(happiness));
    }
    let rows = query
        .finish(select, db.get_database_backend(), org)?
        .all(db)
        .await
        .map_err(Error::internal)?;
    Ok(query
        .page(rows, sort_value, |row| row.id)
        .map(|row| RelationshipView::new(row, &cx)))
}

fn sort_value(row: &relationships::Model, column: &str) -> SortValue {
    match column {
        "updated_at" => SortValue::Time(row.updated_at),
        "name" => SortValue::Text(row.name.clone()),
        _ => SortValue::Time(row.created_at),
    }
}
