//! Pipelines and their stages: the structure deals move through.
//!
//! Every organization starts with the default pipeline "Sales" ([`create_default`]).
//! Changing the structure needs `org_update`; reading it, `crm_read`.
//!
//! Nothing here ever deletes a deal or a stage move:
//! - renaming or reordering stages changes only the stages;
//! - archiving a stage keeps its row (its name stays readable wherever a deal or a move
//!   refers to it). Open deals on it must go somewhere: with `move_deals_to` they move to
//!   the end of that stage's column, each move recorded in the deal's history; without
//!   it, a stage that still holds open deals is not archived (409). Won and lost deals
//!   stay on the archived stage, readable and listable as before;
//! - archiving a pipeline is refused while it has open deals or is the default.
//!
//! Every change writes an audit entry in the transaction of the change. Structural
//! changes lock the pipeline row first (`SELECT … FOR UPDATE` on PostgreSQL; on SQLite
//! the transaction takes the write lock at once), as do deal moves and placements, so
//! the order of cards and stages is never computed from a stale view.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use edge_core::{Error, FieldError, OrgId};
use edge_tenancy::{Permission, TenantContext};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::deals;
use super::fields::validation;
use super::records::db_err;
use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::{deals as deal_rows, pipeline_stages, pipelines};

/// The default pipeline's name.
pub const DEFAULT_PIPELINE: &str = "Sales";
/// The default pipeline's stages, with their win probabilities.
pub const DEFAULT_STAGES: [(&str, i32); 4] = [
    ("Qualification", 10),
    ("Proposal", 40),
    ("Negotiation", 70),
    ("Closing", 90),
];
/// The most active pipelines an organization may have.
pub const MAX_PIPELINES: u64 = 50;
/// The most active stages a pipeline may have.
pub const MAX_STAGES: usize = 30;
/// The longest pipeline or stage name, in characters.
pub const MAX_NAME_LEN: usize = 100;

/// A stage as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StageView {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// Its place among the pipeline's active stages, from 0.
    pub position: i32,
    /// The chance, in percent, that a deal here is won.
    pub probability: Option<i32>,
    /// When it was archived (archived stages take no deals).
    pub archived_at: Option<DateTime<Utc>>,
}

impl From<&pipeline_stages::Model> for StageView {
    fn from(row: &pipeline_stages::Model) -> Self {
        Self {
            id: row.id,
            name: row.name.clone(),
            position: row.position,
            probability: row.probability,
            archived_at: row.archived_at,
        }
    }
}

/// A pipeline with its stages.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PipelineView {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// Its place in the organization's list.
    pub position: i32,
    /// Deals created without a pipeline go here.
    pub is_default: bool,
    /// The active stages, in order: the board's columns.
    pub stages: Vec<StageView>,
    /// Archived stages, which deals and their histories may still refer to.
    pub archived_stages: Vec<StageView>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was archived.
    pub archived_at: Option<DateTime<Utc>>,
}

/// A stage of a new pipeline, or a stage added to one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStage {
    /// Name, unique in the pipeline (ignoring case).
    pub name: String,
    /// Win probability in percent, 0–100.
    #[serde(default)]
    pub probability: Option<i32>,
}

/// A new pipeline.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPipeline {
    /// Name, unique among the organization's active pipelines (ignoring case).
    pub name: String,
    /// Its stages in order (1 to [`MAX_STAGES`]).
    pub stages: Vec<NewStage>,
    /// Make it the default pipeline.
    #[serde(default)]
    pub is_default: bool,
}

/// Changes to a pipeline.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelinePatch {
    /// A new name.
    #[serde(default)]
    pub name: Option<String>,
    /// `true` makes it the default (the previous default stops being one).
    #[serde(default)]
    pub is_default: Option<bool>,
}

/// Changes to a stage; `probability: null` clears the probability.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StagePatch {
    /// A new name.
    #[serde(default)]
    pub name: Option<String>,
    /// A new probability, or `null`.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub probability: Option<Option<i32>>,
}

/// The new order of a pipeline's stages.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageOrder {
    /// Every active stage id of the pipeline, each once, in the new order.
    pub stage_ids: Vec<uuid::Uuid>,
}

/// Archiving a stage.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveStage {
    /// An active stage of the same pipeline to move the stage's open deals to. Required
    /// when the stage holds open deals.
    #[serde(default)]
    pub move_deals_to: Option<uuid::Uuid>,
}

/// Locks a pipeline row for the rest of the transaction; `None` if the organization has
/// no such pipeline.
pub(crate) async fn lock_pipeline<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    id: uuid::Uuid,
) -> Result<Option<pipelines::Model>, Error> {
    pipelines::Entity::find()
        .filter(pipelines::Column::OrganizationId.eq(org.as_uuid()))
        .filter(pipelines::Column::Id.eq(id))
        .lock_exclusive()
        .one(conn)
        .await
        .map_err(db_err)
}

/// A pipeline of the organization.
pub(crate) async fn find_pipeline<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    id: uuid::Uuid,
) -> Result<Option<pipelines::Model>, Error> {
    pipelines::Entity::find()
        .filter(pipelines::Column::OrganizationId.eq(org.as_uuid()))
        .filter(pipelines::Column::Id.eq(id))
        .one(conn)
        .await
        .map_err(db_err)
}

/// The organization's default pipeline, if it has one.
pub(crate) async fn default_pipeline<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
) -> Result<Option<pipelines::Model>, Error> {
    pipelines::Entity::find()
        .filter(pipelines::Column::OrganizationId.eq(org.as_uuid()))
        .filter(pipelines::Column::IsDefault.eq(true))
        .filter(pipelines::Column::ArchivedAt.is_null())
        .one(conn)
        .await
        .map_err(db_err)
}

/// A stage of the organization (of any pipeline, active or archived).
pub(crate) async fn find_stage<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    id: uuid::Uuid,
) -> Result<Option<pipeline_stages::Model>, Error> {
    pipeline_stages::Entity::find()
        .filter(pipeline_stages::Column::OrganizationId.eq(org.as_uuid()))
        .filter(pipeline_stages::Column::Id.eq(id))
        .one(conn)
        .await
        .map_err(db_err)
}

/// Stages of the organization by id (any pipeline, active or archived).
pub(crate) async fn stages_by_id<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    ids: Vec<uuid::Uuid>,
) -> Result<HashMap<uuid::Uuid, pipeline_stages::Model>, Error> {
    let ids: HashSet<uuid::Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(pipeline_stages::Entity::find()
        .filter(pipeline_stages::Column::OrganizationId.eq(org.as_uuid()))
        .filter(pipeline_stages::Column::Id.is_in(ids))
        .all(conn)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(|s| (s.id, s))
        .collect())
}

/// A pipeline's active stages, in order.
pub(crate) async fn active_stages<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    pipeline: uuid::Uuid,
) -> Result<Vec<pipeline_stages::Model>, Error> {
    pipeline_stages::Entity::find()
        .filter(pipeline_stages::Column::OrganizationId.eq(org.as_uuid()))
        .filter(pipeline_stages::Column::PipelineId.eq(pipeline))
        .filter(pipeline_stages::Column::ArchivedAt.is_null())
        .order_by_asc(pipeline_stages::Column::Position)
        .order_by_asc(pipeline_stages::Column::Id)
        .all(conn)
        .await
        .map_err(db_err)
}

fn check_name(field: &str, name: &str, problems: &mut Vec<FieldError>) -> String {
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        problems.push(FieldError::new(
            field,
            format!("must be 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    name
}

fn check_probability(field: &str, probability: Option<i32>, problems: &mut Vec<FieldError>) {
    if probability.is_some_and(|p| !(0..=100).contains(&p)) {
        problems.push(FieldError::new(field, "must be a percentage from 0 to 100"));
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

fn stage_row(
    org: OrgId,
    pipeline: uuid::Uuid,
    name: String,
    position: i32,
    probability: Option<i32>,
    now: DateTime<Utc>,
) -> pipeline_stages::Model {
    pipeline_stages::Model {
        organization_id: org.as_uuid(),
        id: uuid::Uuid::now_v7(),
        pipeline_id: pipeline,
        name,
        position,
        probability,
        created_at: now,
        updated_at: now,
        archived_at: None,
    }
}

async fn insert_stages<C: ConnectionTrait>(
    conn: &C,
    stages: &[pipeline_stages::Model],
) -> Result<(), Error> {
    if stages.is_empty() {
        return Ok(());
    }
    pipeline_stages::Entity::insert_many(
        stages
            .iter()
            .cloned()
            .map(pipeline_stages::ActiveModel::from),
    )
    .exec_without_returning(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Creates the default pipeline ("Sales" with its stages) of a new organization. Call it
/// in the transaction that creates the organization.
pub async fn create_default<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    now: DateTime<Utc>,
) -> Result<pipelines::Model, Error> {
    let pipeline = pipelines::Model {
        organization_id: org.as_uuid(),
        id: uuid::Uuid::now_v7(),
        name: DEFAULT_PIPELINE.to_owned(),
        position: 0,
        is_default: true,
        created_at: now,
        updated_at: now,
        archived_at: None,
    };
    pipelines::Entity::insert(pipelines::ActiveModel::from(pipeline.clone()))
        .exec_without_returning(conn)
        .await
        .map_err(db_err)?;
    let stages: Vec<_> = (0_i32..)
        .zip(DEFAULT_STAGES)
        .map(|(position, (name, probability))| {
            stage_row(
                org,
                pipeline.id,
                name.to_owned(),
                position,
                Some(probability),
                now,
            )
        })
        .collect();
    insert_stages(conn, &stages).await?;
    Ok(pipeline)
}

/// Builds the views of `pipelines` with their stages (one query for all stages).
async fn views<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    rows: Vec<pipelines::Model>,
) -> Result<Vec<PipelineView>, Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let stages = pipeline_stages::Entity::find()
        .filter(pipeline_stages::Column::OrganizationId.eq(org.as_uuid()))
        .filter(pipeline_stages::Column::PipelineId.is_in(rows.iter().map(|p| p.id)))
        .order_by_asc(pipeline_stages::Column::Position)
        .order_by_asc(pipeline_stages::Column::Id)
        .all(conn)
        .await
        .map_err(db_err)?;
    let mut by_pipeline: HashMap<uuid::Uuid, Vec<pipeline_stages::Model>> = HashMap::new();
    for stage in stages {
        by_pipeline
            .entry(stage.pipeline_id)
            .or_default()
            .push(stage);
    }
    Ok(rows
        .into_iter()
        .map(|p| {
            let stages = by_pipeline.remove(&p.id).unwrap_or_default();
            let (active, archived): (Vec<_>, Vec<_>) =
                stages.iter().partition(|s| s.archived_at.is_none());
            PipelineView {
                id: p.id,
                name: p.name,
                position: p.position,
                is_default: p.is_default,
                stages: active.into_iter().map(StageView::from).collect(),
                archived_stages: archived.into_iter().map(StageView::from).collect(),
                created_at: p.created_at,
                updated_at: p.updated_at,
                archived_at: p.archived_at,
            }
        })
        .collect())
}

async fn view<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    row: pipelines::Model,
) -> Result<PipelineView, Error> {
    views(conn, org, vec![row])
        .await?
        .pop()
        .ok_or(Error::not_found("pipeline"))
}

/// The organization's pipelines in order, with their stages; archived ones too when
/// `include_archived`.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    include_archived: bool,
) -> Result<Vec<PipelineView>, Error> {
    ctx.require(Permission::CrmRead)?;
    let mut select =
        pipelines::Entity::find().filter(pipelines::Column::OrganizationId.eq(ctx.org().as_uuid()));
    if !include_archived {
        select = select.filter(pipelines::Column::ArchivedAt.is_null());
    }
    let rows = select
        .order_by_asc(pipelines::Column::Position)
        .order_by_asc(pipelines::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?;
    views(db, ctx.org(), rows).await
}

/// One pipeline with its stages.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    id: uuid::Uuid,
) -> Result<PipelineView, Error> {
    ctx.require(Permission::CrmRead)?;
    let row = find_pipeline(db, ctx.org(), id)
        .await?
        .ok_or(Error::not_found("pipeline"))?;
    view(db, ctx.org(), row).await
}

async fn name_taken<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    name: &str,
    except: Option<uuid::Uuid>,
) -> Result<bool, Error> {
    let rows = pipelines::Entity::find()
        .filter(pipelines::Column::OrganizationId.eq(org.as_uuid()))
        .filter(pipelines::Column::ArchivedAt.is_null())
        .all(conn)
        .await
        .map_err(db_err)?;
    Ok(rows
        .iter()
        .any(|p| Some(p.id) != except && same_name(&p.name, name)))
}

async fn clear_default<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    pipelines::Entity::update_many()
        .col_expr(pipelines::Column::IsDefault, Expr::value(false))
        .col_expr(pipelines::Column::UpdatedAt, Expr::value(now))
        .filter(pipelines::Column::OrganizationId.eq(org.as_uuid()))
        .filter(pipelines::Column::IsDefault.eq(true))
        .exec(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Creates a pipeline with its stages.
pub async fn create(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: NewPipeline,
) -> Result<PipelineView, Error> {
    ctx.require(Permission::OrgUpdate)?;
    let org = ctx.org();
    let mut problems = Vec::new();
    let name = check_name("name", &input.name, &mut problems);
    if input.stages.is_empty() || input.stages.len() > MAX_STAGES {
        problems.push(FieldError::new(
            "stages",
            format!("must list 1 to {MAX_STAGES} stages"),
        ));
    }
    let mut stage_names: Vec<String> = Vec::new();
    for (i, stage) in input.stages.iter().enumerate() {
        let stage_name = check_name(&format!("stages[{i}].name"), &stage.name, &mut problems);
        check_probability(
            &format!("stages[{i}].probability"),
            stage.probability,
            &mut problems,
        );
        if stage_names.iter().any(|n| same_name(n, &stage_name)) {
            problems.push(FieldError::new(
                format!("stages[{i}].name"),
                format!("{stage_name:?} appears twice"),
            ));
        }
        stage_names.push(stage_name);
    }
    validation(problems)?;

    let txn = begin_write(db).await.map_err(db_err)?;
    let active = pipelines::Entity::find()
        .filter(pipelines::Column::OrganizationId.eq(org.as_uuid()))
        .filter(pipelines::Column::ArchivedAt.is_null())
        .count(&txn)
        .await
        .map_err(db_err)?;
    if active >= MAX_PIPELINES {
        return Err(Error::Conflict(format!(
            "an organization may have at most {MAX_PIPELINES} active pipelines; archive one first"
        )));
    }
    if name_taken(&txn, org, &name, None).await? {
        return Err(Error::invalid(
            "name",
            format!("a pipeline named {name:?} already exists"),
        ));
    }
    let position = pipelines::Entity::find()
        .filter(pipelines::Column::OrganizationId.eq(org.as_uuid()))
        .order_by_desc(pipelines::Column::Position)
        .one(&txn)
        .await
        .map_err(db_err)?
        .map_or(0, |p| p.position.saturating_add(1));
    // The first pipeline of an organization without one is the default.
    let is_default = input.is_default || default_pipeline(&txn, org).await?.is_none();
    if is_default {
        clear_default(&txn, org, now).await?;
    }
    let pipeline = pipelines::Model {
        organization_id: org.as_uuid(),
        id: uuid::Uuid::now_v7(),
        name,
        position,
        is_default,
        created_at: now,
        updated_at: now,
        archived_at: None,
    };
    pipelines::Entity::insert(pipelines::ActiveModel::from(pipeline.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
    let stages: Vec<_> = (0_i32..)
        .zip(input.stages.iter().zip(stage_names))
        .map(|(position, (stage, name))| {
            stage_row(org, pipeline.id, name, position, stage.probability, now)
        })
        .collect();
    insert_stages(&txn, &stages).await?;
    audit::Entry::new(org, Actor::of(ctx), "pipeline.create")
        .target("pipeline", pipeline.id)
        .details(json!({
            "name": pipeline.name,
            "is_default": pipeline.is_default,
            "stages": stages.iter().map(|s| json!({"id": s.id, "name": s.name})).collect::<Vec<_>>(),
        }))
        .record(&txn, client, now)
        .await?;
    let view = view(&txn, org, pipeline).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// Locks an active pipeline of the caller's organization for a structural change.
async fn lock_active(
    txn: &DatabaseTransaction,
    org: OrgId,
    id: uuid::Uuid,
) -> Result<pipelines::Model, Error> {
    let pipeline = lock_pipeline(txn, org, id)
        .await?
        .ok_or(Error::not_found("pipeline"))?;
    if pipeline.archived_at.is_some() {
        return Err(Error::Conflict("the pipeline is archived".into()));
    }
    Ok(pipeline)
}

async fn touch(
    txn: &DatabaseTransaction,
    pipeline: &pipelines::Model,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    pipelines::Entity::update_many()
        .col_expr(pipelines::Column::UpdatedAt, Expr::value(now))
        .filter(pipelines::Column::OrganizationId.eq(pipeline.organization_id))
        .filter(pipelines::Column::Id.eq(pipeline.id))
        .exec(txn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Renames a pipeline or makes it the default.
pub async fn update(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    patch: PipelinePatch,
) -> Result<PipelineView, Error> {
    ctx.require(Permission::OrgUpdate)?;
    let org = ctx.org();
    let mut problems = Vec::new();
    let name = patch
        .name
        .as_deref()
        .map(|n| check_name("name", n, &mut problems));
    if patch.is_default == Some(false) {
        problems.push(FieldError::new(
            "is_default",
            "make another pipeline the default instead",
        ));
    }
    validation(problems)?;

    let txn = begin_write(db).await.map_err(db_err)?;
    let current = lock_active(&txn, org, id).await?;
    let mut changed = Vec::new();
    let mut row = pipelines::ActiveModel::from(current.clone());
    if let Some(name) = name
        && name != current.name
    {
        if name_taken(&txn, org, &name, Some(id)).await? {
            return Err(Error::invalid(
                "name",
                format!("a pipeline named {name:?} already exists"),
            ));
        }
        row.name = Set(name);
        changed.push("name");
    }
    if patch.is_default == Some(true) && !current.is_default {
        clear_default(&txn, org, now).await?;
        row.is_default = Set(true);
        changed.push("is_default");
    }
    if !changed.is_empty() {
        row.updated_at = Set(now);
        pipelines::Entity::update(row)
            .exec(&txn)
            .await
            .map_err(db_err)?;
        audit::Entry::new(org, Actor::of(ctx), "pipeline.update")
            .target("pipeline", id)
            .details(json!({ "changed": changed }))
            .record(&txn, client, now)
            .await?;
    }
    let row = find_pipeline(&txn, org, id)
        .await?
        .ok_or(Error::not_found("pipeline"))?;
    let view = view(&txn, org, row).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// Archives a pipeline: refused while it is the default or has open deals.
pub async fn archive(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
) -> Result<PipelineView, Error> {
    ctx.require(Permission::OrgUpdate)?;
    let org = ctx.org();
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = lock_active(&txn, org, id).await?;
    if current.is_default {
        return Err(Error::Conflict(
            "the default pipeline cannot be archived; make another pipeline the default first"
                .into(),
        ));
    }
    let open = deal_rows::Entity::find()
        .filter(deal_rows::Column::OrganizationId.eq(org.as_uuid()))
        .filter(deal_rows::Column::PipelineId.eq(id))
        .filter(deal_rows::Column::Status.eq("open"))
        .filter(deal_rows::Column::DeletedAt.is_null())
        .count(&txn)
        .await
        .map_err(db_err)?;
    if open > 0 {
        return Err(Error::Conflict(format!(
            "the pipeline has {open} open deal(s): move, win or lose them first"
        )));
    }
    pipelines::Entity::update_many()
        .col_expr(pipelines::Column::ArchivedAt, Expr::value(now))
        .col_expr(pipelines::Column::UpdatedAt, Expr::value(now))
        .filter(pipelines::Column::OrganizationId.eq(org.as_uuid()))
        .filter(pipelines::Column::Id.eq(id))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(org, Actor::of(ctx), "pipeline.archive")
        .target("pipeline", id)
        .details(json!({ "name": current.name }))
        .record(&txn, client, now)
        .await?;
    let row = find_pipeline(&txn, org, id)
        .await?
        .ok_or(Error::not_found("pipeline"))?;
    let view = view(&txn, org, row).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// Adds a stage at the end of a pipeline.
pub async fn add_stage(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    pipeline: uuid::Uuid,
    input: NewStage,
) -> Result<PipelineView, Error> {
    ctx.require(Permission::OrgUpdate)?;
    let org = ctx.org();
    let mut problems = Vec::new();
    let name = check_name("name", &input.name, &mut problems);
    check_probability("probability", input.probability, &mut problems);
    validation(problems)?;

    let txn = begin_write(db).await.map_err(db_err)?;
    let current = lock_active(&txn, org, pipeline).await?;
    let stages = active_stages(&txn, org, pipeline).await?;
    if stages.len() >= MAX_STAGES {
        return Err(Error::Conflict(format!(
            "a pipeline may have at most {MAX_STAGES} active stages"
        )));
    }
    if stages.iter().any(|s| same_name(&s.name, &name)) {
        return Err(Error::invalid(
            "name",
            format!("the pipeline already has a stage named {name:?}"),
        ));
    }
    let position = i32::try_from(stages.len()).map_err(Error::internal)?;
    let stage = stage_row(org, pipeline, name, position, input.probability, now);
    insert_stages(&txn, std::slice::from_ref(&stage)).await?;
    touch(&txn, &current, now).await?;
    audit::Entry::new(org, Actor::of(ctx), "pipeline.stage_create")
        .target("pipeline", pipeline)
        .details(json!({
            "stage_id": stage.id,
            "name": stage.name,
            "probability": stage.probability,
        }))
        .record(&txn, client, now)
        .await?;
    let row = find_pipeline(&txn, org, pipeline)
        .await?
        .ok_or(Error::not_found("pipeline"))?;
    let view = view(&txn, org, row).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// Locks the pipeline and finds one of its active stages.
async fn lock_stage(
    txn: &DatabaseTransaction,
    org: OrgId,
    pipeline: uuid::Uuid,
    stage: uuid::Uuid,
) -> Result<(pipelines::Model, pipeline_stages::Model), Error> {
    let current = lock_active(txn, org, pipeline).await?;
    let stage = find_stage(txn, org, stage)
        .await?
        .filter(|s| s.pipeline_id == pipeline)
        .ok_or(Error::not_found("stage"))?;
    if stage.archived_at.is_some() {
        return Err(Error::Conflict("the stage is archived".into()));
    }
    Ok((current, stage))
}

/// Renames a stage or changes its probability. Deals and their history are untouched.
pub async fn update_stage(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    pipeline: uuid::Uuid,
    stage: uuid::Uuid,
    patch: StagePatch,
) -> Result<PipelineView, Error> {
    ctx.require(Permission::OrgUpdate)?;
    let org = ctx.org();
    let mut problems = Vec::new();
    let name = patch
        .name
        .as_deref()
        .map(|n| check_name("name", n, &mut problems));
    if let Some(probability) = patch.probability {
        check_probability("probability", probability, &mut problems);
    }
    validation(problems)?;

    let txn = begin_write(db).await.map_err(db_err)?;
    let (current, stage) = lock_stage(&txn, org, pipeline, stage).await?;
    let mut row = pipeline_stages::ActiveModel::from(stage.clone());
    let mut changes = serde_json::Map::new();
    if let Some(name) = name
        && name != stage.name
    {
        let siblings = active_stages(&txn, org, pipeline).await?;
        if siblings
            .iter()
            .any(|s| s.id != stage.id && same_name(&s.name, &name))
        {
            return Err(Error::invalid(
                "name",
                format!("the pipeline already has a stage named {name:?}"),
            ));
        }
        changes.insert("name".into(), json!({"from": stage.name, "to": name}));
        row.name = Set(name);
    }
    if let Some(probability) = patch.probability
        && probability != stage.probability
    {
        changes.insert(
            "probability".into(),
            json!({"from": stage.probability, "to": probability}),
        );
        row.probability = Set(probability);
    }
    if !changes.is_empty() {
        row.updated_at = Set(now);
        pipeline_stages::Entity::update(row)
            .exec(&txn)
            .await
            .map_err(db_err)?;
        touch(&txn, &current, now).await?;
        audit::Entry::new(org, Actor::of(ctx), "pipeline.stage_update")
            .target("pipeline", pipeline)
            .details(json!({ "stage_id": stage.id, "changes": changes }))
            .record(&txn, client, now)
            .await?;
    }
    let row = find_pipeline(&txn, org, pipeline)
        .await?
        .ok_or(Error::not_found("pipeline"))?;
    let view = view(&txn, org, row).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

async fn set_positions(
    txn: &DatabaseTransaction,
    org: OrgId,
    ids: &[uuid::Uuid],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    for (position, id) in (0_i32..).zip(ids) {
        pipeline_stages::Entity::update_many()
            .col_expr(pipeline_stages::Column::Position, Expr::value(position))
            .col_expr(pipeline_stages::Column::UpdatedAt, Expr::value(now))
            .filter(pipeline_stages::Column::OrganizationId.eq(org.as_uuid()))
            .filter(pipeline_stages::Column::Id.eq(*id))
            .exec(txn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// Puts a pipeline's active stages in a new order. Deals keep their stages.
pub async fn reorder_stages(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    pipeline: uuid::Uuid,
    order: StageOrder,
) -> Result<PipelineView, Error> {
    ctx.require(Permission::OrgUpdate)?;
    let org = ctx.org();
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = lock_active(&txn, org, pipeline).await?;
    let stages = active_stages(&txn, org, pipeline).await?;
    let active: HashSet<uuid::Uuid> = stages.iter().map(|s| s.id).collect();
    let mut seen = HashSet::new();
    let mut problems = Vec::new();
    for (i, id) in order.stage_ids.iter().enumerate() {
        if !active.contains(id) {
            problems.push(FieldError::new(
                format!("stage_ids[{i}]"),
                "is not an active stage of this pipeline",
            ));
        } else if !seen.insert(*id) {
            problems.push(FieldError::new(format!("stage_ids[{i}]"), "appears twice"));
        }
    }
    let missing = active.difference(&seen).count();
    if problems.is_empty() && missing > 0 {
        problems.push(FieldError::new(
            "stage_ids",
            format!(
                "must list every active stage of the pipeline ({} stages); {missing} missing",
                active.len()
            ),
        ));
    }
    validation(problems)?;
    let before: Vec<uuid::Uuid> = stages.iter().map(|s| s.id).collect();
    if before != order.stage_ids {
        set_positions(&txn, org, &order.stage_ids, now).await?;
        touch(&txn, &current, now).await?;
        audit::Entry::new(org, Actor::of(ctx), "pipeline.stage_reorder")
            .target("pipeline", pipeline)
            .details(json!({ "from": before, "to": order.stage_ids }))
            .record(&txn, client, now)
            .await?;
    }
    let row = find_pipeline(&txn, org, pipeline)
        .await?
        .ok_or(Error::not_found("pipeline"))?;
    let view = view(&txn, org, row).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// Archives a stage. Its open deals move to `move_deals_to` (each move recorded in the
/// deal's history); without it, a stage with open deals is not archived (409). Won and
/// lost deals stay where they are. No deal and no history row is ever removed.
pub async fn archive_stage(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    pipeline: uuid::Uuid,
    stage: uuid::Uuid,
    input: ArchiveStage,
) -> Result<PipelineView, Error> {
    ctx.require(Permission::OrgUpdate)?;
    let org = ctx.org();
    let txn = begin_write(db).await.map_err(db_err)?;
    let (current, stage) = lock_stage(&txn, org, pipeline, stage).await?;
    let stages = active_stages(&txn, org, pipeline).await?;
    if stages.len() <= 1 {
        return Err(Error::Conflict(
            "a pipeline keeps at least one active stage".into(),
        ));
    }
    let target = match input.move_deals_to {
        Some(target) => {
            let Some(found) = stages.iter().find(|s| s.id == target && s.id != stage.id) else {
                return Err(Error::invalid(
                    "move_deals_to",
                    "must be another active stage of the same pipeline",
                ));
            };
            Some(found.clone())
        }
        None => None,
    };
    let open = deal_rows::Entity::find()
        .filter(deal_rows::Column::OrganizationId.eq(org.as_uuid()))
        .filter(deal_rows::Column::StageId.eq(stage.id))
        .filter(deal_rows::Column::Status.eq("open"))
        .filter(deal_rows::Column::DeletedAt.is_null())
        .order_by_asc(deal_rows::Column::BoardRank)
        .order_by_asc(deal_rows::Column::Id)
        .all(&txn)
        .await
        .map_err(db_err)?;
    let moved = match (&target, open.is_empty()) {
        (_, true) => Vec::new(),
        (None, false) => {
            return Err(Error::Conflict(format!(
                "the stage has {} open deal(s): name a stage to move them to with move_deals_to",
                open.len()
            )));
        }
        (Some(target), false) => {
            let actor = ctx.user().map(|u| u.as_uuid());
            deals::move_to_column_end(&txn, org, &open, target, actor, now).await?
        }
    };
    pipeline_stages::Entity::update_many()
        .col_expr(pipeline_stages::Column::ArchivedAt, Expr::value(now))
        .col_expr(pipeline_stages::Column::UpdatedAt, Expr::value(now))
        .filter(pipeline_stages::Column::OrganizationId.eq(org.as_uuid()))
        .filter(pipeline_stages::Column::Id.eq(stage.id))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    let remaining: Vec<uuid::Uuid> = stages
        .iter()
        .filter(|s| s.id != stage.id)
        .map(|s| s.id)
        .collect();
    set_positions(&txn, org, &remaining, now).await?;
    touch(&txn, &current, now).await?;
    audit::Entry::new(org, Actor::of(ctx), "pipeline.stage_archive")
        .target("pipeline", pipeline)
        .details(json!({
            "stage_id": stage.id,
            "name": stage.name,
            "moved_deals_to": target.as_ref().map(|t| json!({"id": t.id, "name": t.name})),
            "moved_deal_ids": moved,
        }))
        .record(&txn, client, now)
        .await?;
    let row = find_pipeline(&txn, org, pipeline)
        .await?
        .ok_or(Error::not_found("pipeline"))?;
    let view = view(&txn, org, row).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}
