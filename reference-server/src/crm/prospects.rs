//! Prospects: leads, from first contact until they become customers (see
//! [`convert`]).
//!
//! A prospect is created with as little as a name (`company` and `phone` usually
//! come along); everything else is optional and checked against the organization's
//! vocabulary, currency and custom fields. Its owner is whoever created it unless
//! someone with [`Permission::CrmAssign`] gives it to another member.

use chrono::{DateTime, Utc};
use edge_core::{Error, Money};
use edge_tenancy::{Permission, TenantContext};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::contact::{ContactInput, ContactRow, assign, strings};
use super::custom_fields::RecordKind;
use super::fields::{Checks, caller};
use super::list::{ListQuery, ListSpec, SortKind, SortValue, Sortable};
use super::record_events::{self, Change};
use super::{CrmContext, relationships, tags};
use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::prospects;

/// The fields of a prospect, for a create (`name` required) or a partial update (absent
/// fields stay as they are; `null` clears an optional one).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProspectInput {
    /// The person's name.
    pub name: Option<String>,
    /// Their company.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub company: Option<Option<String>>,
    /// One phone number (shorthand for `phones: [phone]`).
    pub phone: Option<String>,
    /// Every phone number, the main one first.
    pub phones: Option<Vec<String>>,
    /// Email.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub email: Option<Option<String>>,
    /// Lead source (vocabulary `lead_sources`).
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub lead_source: Option<Option<String>>,
    /// Industry (vocabulary `industries`).
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub industry: Option<Option<String>>,
    /// Services of interest (vocabulary `services`).
    pub services: Option<Vec<String>>,
    /// The owner; default the creator.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub owner_id: Option<Option<uuid::Uuid>>,
    /// Milestone (vocabulary `milestones`); default the first.
    pub milestone: Option<String>,
    /// Happiness rating (vocabulary `happiness_ratings`).
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub happiness: Option<Option<String>>,
    /// Estimated value, in the organization's currency.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub estimated_value: Option<Option<Money>>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Custom field values; `null` removes one.
    pub custom_fields: Option<Map<String, Value>>,
}

/// A prospect as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProspectView {
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
    /// Lead source.
    pub lead_source: Option<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Services of interest.
    pub services: Vec<String>,
    /// Owner.
    pub owner_id: Option<uuid::Uuid>,
    /// Milestone.
    pub milestone: String,
    /// Happiness rating.
    pub happiness: Option<String>,
    /// Estimated value.
    pub estimated_value: Option<Money>,
    /// Tags.
    pub tags: Vec<String>,
    /// Custom field values.
    pub custom_fields: Value,
    /// The relationship it became, once converted.
    pub relationship_id: Option<uuid::Uuid>,
    /// Who created it.
    pub created_by: Option<uuid::Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl ProspectView {
    /// The view of a stored row.
    pub(crate) fn new(row: prospects::Model, cx: &CrmContext) -> Self {
        Self {
            id: row.id,
            estimated_value: row
                .estimated_value_minor
                .map(|minor| Money::from_minor(minor, cx.currency)),
            name: row.name,
            company: row.company,
            phone: row.phone,
            phones: strings(&row.phones),
            email: row.email,
            lead_source: row.lead_source,
            industry: row.industry,
            services: strings(&row.services),
            owner_id: row.owner_id,
            milestone: row.milestone,
            happiness: row.happiness,
            tags: strings(&row.tags),
            custom_fields: row.custom,
            relationship_id: row.relationship_id,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The list: `GET /prospects`.
pub const LIST: ListSpec = ListSpec {
    tag_kind: Some("prospect"),
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
    owner_column: Some("owner_id"),
    search_column: Some("search_text"),
    phone_column: Some("phone"),
    custom_fields: Some(RecordKind::Prospect),
    filters: &["milestone", "lead_source", "industry", "converted"],
};

/// Checks `input` and writes it onto `row`. On a create, `row` is blank and `name` is
/// required.
async fn apply(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    cx: &CrmContext,
    row: &mut prospects::Model,
    input: ProspectInput,
    creating: bool,
) -> Result<(), Error> {
    let owner = check(cx, row, input, creating)?;
    assign(db, ctx, "owner_id", &mut row.owner_id, owner, creating).await
}

/// The checks of [`apply`] that need no database: every field but the owner, checked
/// and written onto `row`. Returns the owner asked for (`None`: not given), which the
/// caller checks with [`assign`]. Imports validate each row with it, exactly as the API
/// validates the same prospect.
pub(crate) fn check(
    cx: &CrmContext,
    row: &mut prospects::Model,
    input: ProspectInput,
    creating: bool,
) -> Result<Option<Option<uuid::Uuid>>, Error> {
    let settings = &cx.settings;
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
        RecordKind::Prospect,
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
    if let Some(source) = input.lead_source {
        row.lead_source = source
            .map(|s| checks.vocabulary("lead_source", &s, &settings.lead_sources, "lead_sources"));
    }
    match input.milestone {
        Some(milestone) => {
            row.milestone =
                checks.vocabulary("milestone", &milestone, &settings.milestones, "milestones");
        }
        None if creating => {
            row.milestone = settings.milestones.first().cloned().unwrap_or_default();
        }
        None => {}
    }
    if let Some(value) = input.estimated_value {
        row.estimated_value_minor = value.map(|v| checks.money("estimated_value", v, cx.currency));
    }
    checks.finish()?;
    Ok(input.owner_id)
}

/// A blank prospect of `org` (name empty, lists empty), to be filled by [`check`].
pub(crate) fn blank(org: uuid::Uuid, cx: &CrmContext, now: DateTime<Utc>) -> prospects::Model {
    prospects::Model {
        organization_id: org,
        id: uuid::Uuid::now_v7(),
        name: String::new(),
        company: None,
        phone: None,
        phones: json!([]),
        email: None,
        lead_source: None,
        industry: None,
        services: json!([]),
        owner_id: None,
        milestone: String::new(),
        happiness: None,
        estimated_value_minor: None,
        currency: cx.currency.code().to_owned(),
        tags: json!([]),
        custom: json!({}),
        search_text: String::new(),
        relationship_id: None,
        created_by: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}

/// Creates a prospect.
pub async fn create(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: ProspectInput,
) -> Result<ProspectView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let cx = CrmContext::load(db, ctx).await?;
    let mut row = blank(ctx.org().as_uuid(), &cx, now);
    row.created_by = caller(ctx);
    apply(db, ctx, &cx, &mut row, input, true).await?;
    let txn = begin_write(db).await.map_err(Error::internal)?;
    prospects::Entity::insert(prospects::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(Error::internal)?;
    tags::replace(
        &txn,
        row.organization_id,
        "prospect",
        row.id,
        &strings(&row.tags),
    )
    .await?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "prospect.create")
        .target("prospect", row.id)
        .details(json!({ "name": row.name, "owner_id": row.owner_id }))
        .record(&txn, client, now)
        .await?;
    let (id, owner) = (row.id, row.owner_id);
    let view = ProspectView::new(row, &cx);
    record_events::record(
        &txn,
        ctx,
        "prospect",
        id,
        &view,
        owner,
        Change::Created,
        now,
    )
    .await?;
    txn.commit().await.map_err(Error::internal)?;
    Ok(view)
}

/// A prospect the caller may see, or 404.
pub(crate) async fn find(
    db: &impl sea_orm::ConnectionTrait,
    ctx: &TenantContext,
    cx: &CrmContext,
    id: uuid::Uuid,
) -> Result<prospects::Model, Error> {
    let row = prospects::Entity::find_by_id((ctx.org().as_uuid(), id))
        .filter(prospects::Column::DeletedAt.is_null())
        .one(db)
        .await
        .map_err(Error::internal)?
        .filter(|row| cx.scope.sees(&[row.owner_id]))
        .ok_or(Error::not_found("prospect"))?;
    Ok(row)
}

/// Reads one prospect.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    id: uuid::Uuid,
) -> Result<ProspectView, Error> {
    ctx.require(Permission::CrmRead)?;
    let cx = CrmContext::load(db, ctx).await?;
    Ok(ProspectView::new(find(db, ctx, &cx, id).await?, &cx))
}

/// Changes a prospect.
pub async fn update(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    input: ProspectInput,
) -> Result<ProspectView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let cx = CrmContext::load(db, ctx).await?;
    let before = find(db, ctx, &cx, id).await?;
    let mut row = before.clone();
    apply(db, ctx, &cx, &mut row, input, false).await?;
    row.updated_at = now;
    let changes = changed_fields(&before, &row);
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
            "prospect",
            row.id,
            &strings(&row.tags),
        )
        .await?;
    }
    audit::Entry::new(ctx.org(), Actor::of(ctx), "prospect.update")
        .target("prospect", row.id)
        .details(json!({ "changed": changes }))
        .record(&txn, client, now)
        .await?;
    let (id, owner, previous_owner) = (row.id, row.owner_id, before.owner_id);
    let view = ProspectView::new(row, &cx);
    let before = serde_json::to_value(ProspectView::new(before, &cx)).map_err(Error::internal)?;
    let change = Change::Updated {
        changed: &changes,
        before,
        previous_owner,
    };
    record_events::record(&txn, ctx, "prospect", id, &view, owner, change, now).await?;
    txn.commit().await.map_err(Error::internal)?;
    Ok(view)
}

/// The names of the fields that differ, for the audit log.
pub(crate) fn changed_fields(
    before: &prospects::Model,
    after: &prospects::Model,
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
        lead_source,
        industry,
        services,
        owner_id,
        milestone,
        happiness,
        estimated_value_minor,
        tags,
        custom
    );
    changed
}

/// Deletes a prospect (softly: it disappears from lists and lookups, and its history
/// stays).
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
    let mut active: prospects::ActiveModel = row.clone().into();
    active.deleted_at = Set(Some(now));
    active.updated_at = Set(now);
    active.update(&txn).await.map_err(Error::internal)?;
    tags::replace(&txn, row.organization_id, "prospect", row.id, &[]).await?;
    audit::Entry::new(ctx.org(), Actor::of(ctx), "prospect.delete")
        .target("prospect", row.id)
        .details(json!({ "name": row.name }))
        .record(&txn, client, now)
        .await?;
    let (id, owner) = (row.id, row.owner_id);
    let view = ProspectView::new(row, &cx);
    record_events::record(
        &txn,
        ctx,
        "prospect",
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

/// Lists prospects with the filters of [`LIST`] plus `milestone`, `lead_source`,
/// `industry` and `converted=true|false`.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    pairs: Vec<(String, String)>,
) -> Result<edge_core::Page<ProspectView>, Error> {
    list_sized(db, ctx, pairs, None).await
}

/// [`list`], reading pages of `page_size` rows when given (an export walks the whole
/// list with the same filters and visibility in larger pages).
pub(crate) async fn list_sized(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    pairs: Vec<(String, String)>,
    page_size: Option<u32>,
) -> Result<edge_core::Page<ProspectView>, Error> {
    ctx.require(Permission::CrmRead)?;
    let cx = CrmContext::load(db, ctx).await?;
    let query = ListQuery::parse(pairs, LIST, &cx.settings, caller(ctx), cx.country)?;
    let query = match page_size {
        Some(size) => query.with_page_size(size),
        None => query,
    };
    let org = ctx.org().as_uuid();
    let mut select = prospects::Entity::find()
        .filter(prospects::Column::OrganizationId.eq(org))
        .filter(prospects::Column::DeletedAt.is_null());
    if let Some(user) = cx.scope.restricted_to() {
        select = select.filter(prospects::Column::OwnerId.eq(user));
    }
    if let Some(milestone) = query.text("milestone") {
        select = select.filter(prospects::Column::Milestone.eq(milestone));
    }
    if let Some(source) = query.text("lead_source") {
        select = select.filter(prospects::Column::LeadSource.eq(source));
    }
    if let Some(industry) = query.text("industry") {
        select = select.filter(prospects::Column::Industry.eq(industry));
    }
    if let Some(converted) = query.flag("converted")? {
        select = select.filter(if converted {
            prospects::Column::RelationshipId.is_not_null()
        } else {
            prospects::Column::RelationshipId.is_null()
        });
    }
    let rows = query
        .finish(select, db.get_database_backend(), org)?
        .all(db)
        .await
        .map_err(Error::internal)?;
    Ok(query
        .page(rows, sort_value, |row| row.id)
        .map(|row| ProspectView::new(row, &cx)))
}

fn sort_value(row: &prospects::Model, column: &str) -> SortValue {
    match column {
        "updated_at" => SortValue::Time(row.updated_at),
        "name" => SortValue::Text(row.name.clone()),
        _ => SortValue::Time(row.created_at),
    }
}

/// What converting a prospect may set on the new relationship.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Conversion {
    /// The account manager; default the prospect's owner.
    pub account_manager_id: Option<uuid::Uuid>,
    /// The contract value; default the prospect's estimated value.
    pub contract_value: Option<Money>,
    /// Services bought; default the prospect's services of interest.
    pub services: Option<Vec<String>>,
}

/// Converts a prospect into a relationship: the contact, vocabulary values, tags and the
/// custom fields that apply to relationships come along, the relationship remembers
/// its prospect (so the prospect's activities and deals show in its history), and the
/// prospect points at the relationship. A prospect converts once (409 after).
pub async fn convert(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    input: Conversion,
) -> Result<relationships::RelationshipView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let cx = CrmContext::load(db, ctx).await?;
    let prospect = find(db, ctx, &cx, id).await?;
    if let Some(existing) = prospect.relationship_id {
        return Err(Error::Conflict(format!(
            "this prospect was already converted to relationship {existing}"
        )));
    }
    let custom: Map<String, Value> = prospect
        .custom
        .as_object()
        .map(|values| {
            values
                .iter()
                .filter(|(key, _)| {
                    cx.settings
                        .custom_fields
                        .iter()
                        .any(|f| &f.key == *key && f.applies_to.contains(&RecordKind::Relationship))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let fields = relationships::RelationshipInput {
        name: Some(prospect.name.clone()),
        company: Some(prospect.company.clone()),
        phone: None,
        phones: Some(strings(&prospect.phones)),
        email: Some(prospect.email.clone()),
        industry: Some(prospect.industry.clone()),
        services: Some(
            input
                .services
                .unwrap_or_else(|| strings(&prospect.services)),
        ),
        account_manager_id: Some(input.account_manager_id.or(prospect.owner_id)),
        happiness: Some(prospect.happiness.clone()),
        contract_value: Some(input.contract_value.or_else(|| {
            prospect
                .estimated_value_minor
                .map(|minor| Money::from_minor(minor, cx.currency))
        })),
        tags: Some(strings(&prospect.tags)),
        custom_fields: Some(custom),
    };
    let txn = begin_write(db).await.map_err(Error::internal)?;
    let relationship =
        relationships::insert(db, &txn, ctx, &cx, client, now, fields, Some(prospect.id)).await?;
    // Claim the prospect only if no concurrent conversion got there first.
    let claimed = prospects::Entity::update_many()
        .col_expr(
            prospects::Column::RelationshipId,
            sea_orm::sea_query::Expr::value(relationship.id),
        )
        .col_expr(
            prospects::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(prospects::Column::OrganizationId.eq(prospect.organization_id))
        .filter(prospects::Column::Id.eq(prospect.id))
        .filter(prospects::Column::RelationshipId.is_null())
        .exec(&txn)
        .await
        .map_err(Error::internal)?;
    if claimed.rows_affected != 1 {
        return Err(Error::Conflict(
            "this prospect was converted by someone else just now".into(),
        ));
    }
    audit::Entry::new(ctx.org(), Actor::of(ctx), "prospect.convert")
        .target("prospect", prospect.id)
        .details(json!({ "relationship_id": relationship.id }))
        .record(&txn, client, now)
        .await?;
    let (prospect_id, owner) = (prospect.id, prospect.owner_id);
    let mut converted = prospect.clone();
    converted.relationship_id = Some(relationship.id);
    converted.updated_at = now;
    let before = serde_json::to_value(ProspectView::new(prospect, &cx)).map_err(Error::internal)?;
    let change = Change::Updated {
        changed: &["relationship_id"],
        before,
        previous_owner: owner,
    };
    let view = ProspectView::new(converted, &cx);
    record_events::record(
        &txn,
        ctx,
        "prospect",
        prospect_id,
        &view,
        owner,
        change,
        now,
    )
    .await?;
    txn.commit().await.map_err(Error::internal)?;
    Ok(relationship)
}
