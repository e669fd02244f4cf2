//! Deals: opportunities moving through a pipeline's stages, the history of their moves,
//! and the kanban board.
//!
//! - A deal is always at a stage of its pipeline. Its value is money in the
//!   organization's currency. It is `open` until won or lost (`closed_at` set), and can
//!   be reopened. Deleting is soft: a deleted deal answers 404 and its rows stay.
//! - Every stage change (including the first placement, when the deal is created) writes
//!   a `deal_stage_moves` row: from, to, who, when. Moves are never changed or removed,
//!   and keep referring to their stages when those are renamed, reordered or archived.
//! - `board_rank` orders the cards of a stage column. Ranks are spaced [`RANK_GAP`]
//!   apart, so placing a card between two others is one update of that card; when two
//!   neighbours have no room left between them, the column is renumbered once.
//!   Placements lock the pipeline row, so two people moving cards in one pipeline never
//!   compute ranks from the same stale view.
//! - Who sees which deal follows the organization's record visibility: under `own`, a
//!   member with the `user` role sees only the deals they own; any other deal answers
//!   404, as another organization's would.
//! - A deal may be with a prospect and/or a relationship of the organization (composite
//!   foreign keys); the caller must be able to see the record they link.
//! - Lists ([`list`], `GET /deals`) use the shared query language of [`super::list`]:
//!   filters (owner, pipeline, stage, status, prospect, relationship, tag, creation time,
//!   custom fields), `q` over titles, sort by creation, change or value, keyset pages.
//!   Tags are kept on the deal as entered and lower-cased in `record_tags` (`deal`).
//! - Reading needs `crm_read`; creating, changing, moving, winning, losing and reopening
//!   `crm_write`; deleting `crm_delete`; giving a deal to someone else `crm_assign`.
//!   Every change writes an audit entry in the transaction of the change.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use edge_core::{Currency, Error, FieldError, Money, OrgId};
use edge_tenancy::{Permission, TenantContext};
use sea_orm::sea_query::{Condition, Expr, ExprTrait as _};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Select,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::custom_fields::{self, RecordKind};
use super::fields::validation;
use super::list::{ListQuery, ListSpec, SortKind, SortValue, Sortable};
use super::pipelines::{
    StageView, active_stages, default_pipeline, find_pipeline, find_stage, lock_pipeline,
    stages_by_id,
};
use super::record_events::{self, Change};
use super::records::{db_err, is_active_member};
use super::visibility::Scope;
use super::{CrmContext, fields, prospects, relationships, tags};
use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::{deal_stage_moves, deals, pipeline_stages, pipelines as pipeline_rows};

/// The space between the ranks of neighbouring cards when a column is (re)numbered or a
/// card is put at either end.
pub const RANK_GAP: i64 = 1 << 20;
/// Cards per board column when `cards` is not given.
pub const DEFAULT_CARDS: u32 = 50;
/// The most cards per board column.
pub const MAX_CARDS: u32 = 200;
/// The longest title, in characters.
pub const MAX_TITLE_LEN: usize = 200;
/// The longest reason for winning or losing, in characters.
pub const MAX_REASON_LEN: usize = 500;
/// The kind of record deals are in `record_tags`.
const TAG_KIND: &str = "deal";

/// An amount of money as clients send it: `{"amount": "1500.00", "currency": "KES"}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct MoneyInput {
    /// A decimal string with at most the currency's decimal places.
    pub amount: String,
    /// ISO 4217 code; must be the organization's currency.
    pub currency: String,
}

/// A new deal.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeal {
    /// What is being sold, to whom (1 to 200 characters).
    pub title: String,
    /// The value, in the organization's currency; zero when absent.
    #[serde(default)]
    pub value: Option<MoneyInput>,
    /// The pipeline; the organization's default one when absent.
    #[serde(default)]
    pub pipeline_id: Option<uuid::Uuid>,
    /// The stage, of that pipeline; its first active stage when absent.
    #[serde(default)]
    pub stage_id: Option<uuid::Uuid>,
    /// The owner, an active member; the caller when absent. Anyone else needs
    /// `crm_assign`.
    #[serde(default)]
    pub owner_id: Option<uuid::Uuid>,
    /// The prospect (lead) it is with.
    #[serde(default)]
    pub prospect_id: Option<uuid::Uuid>,
    /// The relationship (customer) it is with.
    #[serde(default)]
    pub relationship_id: Option<uuid::Uuid>,
    /// When it is expected to close, `YYYY-MM-DD`.
    #[serde(default)]
    pub expected_close_on: Option<String>,
    /// Tags (trimmed, 1 to 64 characters, at most 20, duplicates dropped).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Values of the organization's custom fields for deals.
    #[serde(default)]
    pub custom_fields: Option<Map<String, Value>>,
}

/// Changes to a deal; absent fields stay, `null` clears an optional one. The stage
/// changes with a move, the status with won, lost and reopen.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealPatch {
    /// A new title.
    #[serde(default)]
    pub title: Option<String>,
    /// A new value, in the organization's currency.
    #[serde(default)]
    pub value: Option<MoneyInput>,
    /// A new owner (needs `crm_assign`), or `null` for none.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub owner_id: Option<Option<uuid::Uuid>>,
    /// Another prospect, or `null` for none.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub prospect_id: Option<Option<uuid::Uuid>>,
    /// Another relationship, or `null` for none.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub relationship_id: Option<Option<uuid::Uuid>>,
    /// A new expected close date, or `null`.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub expected_close_on: Option<Option<String>>,
    /// The new set of tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Custom field values to set; `null` removes one.
    #[serde(default)]
    pub custom_fields: Option<Map<String, Value>>,
}

/// Where to move a deal: a stage and, optionally, its place in that stage's column.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveDeal {
    /// The stage (of any active pipeline; the deal follows it to its pipeline).
    pub stage_id: uuid::Uuid,
    /// Put the deal right before (above) this deal of the column.
    #[serde(default)]
    pub before_id: Option<uuid::Uuid>,
    /// Put the deal right after (below) this deal of the column.
    #[serde(default)]
    pub after_id: Option<uuid::Uuid>,
}

/// Winning or losing a deal.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseDeal {
    /// Why; required to lose a deal.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A stage as a deal refers to it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StageRef {
    /// Id.
    pub id: uuid::Uuid,
    /// Name (also of an archived stage).
    pub name: String,
    /// Whether the stage is archived.
    pub archived: bool,
}

impl From<&pipeline_stages::Model> for StageRef {
    fn from(stage: &pipeline_stages::Model) -> Self {
        Self {
            id: stage.id,
            name: stage.name.clone(),
            archived: stage.archived_at.is_some(),
        }
    }
}

/// One stage change of a deal.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MoveView {
    /// Id.
    pub id: uuid::Uuid,
    /// The stage left; `null` for the first placement.
    pub from_stage: Option<StageRef>,
    /// The stage arrived at.
    pub to_stage: StageRef,
    /// The user who moved it.
    pub moved_by: Option<uuid::Uuid>,
    /// When.
    pub moved_at: DateTime<Utc>,
}

/// A deal as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DealView {
    /// Id.
    pub id: uuid::Uuid,
    /// Title.
    pub title: String,
    /// Value.
    pub value: Money,
    /// Pipeline.
    pub pipeline_id: uuid::Uuid,
    /// Stage id.
    pub stage_id: uuid::Uuid,
    /// Stage.
    pub stage: StageRef,
    /// `open`, `won` or `lost`.
    pub status: String,
    /// Why it was won or lost.
    pub close_reason: Option<String>,
    /// When it was won or lost.
    pub closed_at: Option<DateTime<Utc>>,
    /// When it is expected to close.
    pub expected_close_on: Option<NaiveDate>,
    /// Owner.
    pub owner_id: Option<uuid::Uuid>,
    /// The prospect it is with.
    pub prospect_id: Option<uuid::Uuid>,
    /// The relationship it is with.
    pub relationship_id: Option<uuid::Uuid>,
    /// Tags.
    pub tags: Vec<String>,
    /// Custom field values.
    pub custom_fields: Value,
    /// Creator.
    pub created_by: Option<uuid::Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Stage moves, oldest first (on a single deal only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<MoveView>>,
}

/// `GET /pipelines/{id}/board` options.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BoardQuery {
    /// Only deals of this owner (a user id, or `me`).
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Cards per column (1–200, default 50); counts and sums always cover every deal.
    #[serde(default)]
    pub cards: Option<u32>,
}

/// The pipeline a board shows.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BoardPipeline {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// Whether it is the default.
    pub is_default: bool,
    /// When it was archived.
    pub archived_at: Option<DateTime<Utc>>,
}

/// One column of the board: a stage with its open deals.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BoardColumn {
    /// The stage.
    pub stage: StageView,
    /// How many open deals it has (all of them, not only the cards shown).
    pub count: u64,
    /// Their total value in the organization's currency.
    pub value: Money,
    /// Totals of deals in other currencies (created before the organization changed its
    /// currency), one per currency; absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_currencies: Vec<Money>,
    /// The first cards in board order.
    pub deals: Vec<DealView>,
}

/// The kanban board of a pipeline: its open deals by stage.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BoardView {
    /// The pipeline.
    pub pipeline: BoardPipeline,
    /// One column per active stage, in order.
    pub columns: Vec<BoardColumn>,
}

/// What a service needs to know about the caller and their organization.
struct Caller {
    org: OrgId,
    user: Option<uuid::Uuid>,
    cx: CrmContext,
}

async fn caller(db: &DatabaseConnection, ctx: &TenantContext) -> Result<Caller, Error> {
    Ok(Caller {
        org: ctx.org(),
        user: fields::caller(ctx),
        cx: CrmContext::load(db, ctx).await?,
    })
}

/// The deals of `org` the scope may see (not deleted).
fn visible(org: OrgId, scope: Scope) -> Select<deals::Entity> {
    let mut select = deals::Entity::find()
        .filter(deals::Column::OrganizationId.eq(org.as_uuid()))
        .filter(deals::Column::DeletedAt.is_null());
    if let Some(owner) = scope.restricted_to() {
        select = select.filter(deals::Column::OwnerId.eq(owner));
    }
    select
}

async fn find_visible<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    id: uuid::Uuid,
    lock: bool,
) -> Result<deals::Model, Error> {
    let mut select = visible(caller.org, caller.cx.scope).filter(deals::Column::Id.eq(id));
    if lock {
        select = select.lock_exclusive();
    }
    select
        .one(conn)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("deal"))
}

fn check_title(title: &str, problems: &mut Vec<FieldError>) -> String {
    let title = title.trim().to_owned();
    if title.is_empty() || title.chars().count() > MAX_TITLE_LEN {
        problems.push(FieldError::new(
            "title",
            format!("must be 1 to {MAX_TITLE_LEN} characters"),
        ));
    }
    title
}

fn check_value(
    input: &MoneyInput,
    currency: Currency,
    problems: &mut Vec<FieldError>,
) -> Option<Money> {
    if !input.currency.trim().eq_ignore_ascii_case(currency.code()) {
        problems.push(FieldError::new(
            "value.currency",
            format!(
                "must be {}, the organization's currency (got {:?})",
                currency.code(),
                input.currency.chars().take(16).collect::<String>()
            ),
        ));
        return None;
    }
    match Money::parse(&input.amount, currency) {
        Ok(money) if money.is_negative() => {
            problems.push(FieldError::new("value.amount", "must not be negative"));
            None
        }
        Ok(money) => Some(money),
        Err(e) => {
            problems.push(FieldError::new("value.amount", e.to_string()));
            None
        }
    }
}

fn check_date(text: &str, problems: &mut Vec<FieldError>) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        Ok(date) => Some(date),
        Err(_) => {
            problems.push(FieldError::new(
                "expected_close_on",
                "must be a date, YYYY-MM-DD",
            ));
            None
        }
    }
}

fn check_reason(
    reason: Option<&str>,
    required: bool,
    problems: &mut Vec<FieldError>,
) -> Option<String> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    match reason {
        None if required => {
            problems.push(FieldError::new(
                "reason",
                "is required: say why the deal was lost",
            ));
            None
        }
        Some(r) if r.chars().count() > MAX_REASON_LEN => {
            problems.push(FieldError::new(
                "reason",
                format!("must be at most {MAX_REASON_LEN} characters"),
            ));
            None
        }
        other => other.map(str::to_owned),
    }
}

/// Tags as [`tags::normalize`] checks them, problems collected.
fn check_tags(input: Vec<String>, problems: &mut Vec<FieldError>) -> Vec<String> {
    match tags::normalize(input) {
        Ok(tags) => tags,
        Err(Error::Validation(mut fields)) => {
            problems.append(&mut fields);
            Vec::new()
        }
        Err(other) => {
            problems.push(FieldError::new("tags", other.to_string()));
            Vec::new()
        }
    }
}

/// Checks that the prospect and relationship a deal is with exist in the organization
/// and that the caller may see them (a record they may not see is unknown to them).
async fn check_links<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantContext,
    caller: &Caller,
    prospect: Option<uuid::Uuid>,
    relationship: Option<uuid::Uuid>,
) -> Result<(), Error> {
    let mut problems = Vec::new();
    if let Some(id) = prospect {
        match prospects::find(conn, ctx, &caller.cx, id).await {
            Ok(_) => {}
            Err(Error::NotFound { .. }) => problems.push(FieldError::new(
                "prospect_id",
                "is not a prospect of this organization",
            )),
            Err(other) => return Err(other),
        }
    }
    if let Some(id) = relationship {
        match relationships::find(conn, ctx, &caller.cx, id).await {
            Ok(_) => {}
            Err(Error::NotFound { .. }) => problems.push(FieldError::new(
                "relationship_id",
                "is not a relationship of this organization",
            )),
            Err(other) => return Err(other),
        }
    }
    validation(problems)
}

fn custom_values(
    caller: &Caller,
    current: &Map<String, Value>,
    input: Option<&Map<String, Value>>,
    creating: bool,
    problems: &mut Vec<FieldError>,
) -> Result<Option<Map<String, Value>>, Error> {
    if input.is_none() && !creating {
        return Ok(None);
    }
    let empty = Map::new();
    match custom_fields::apply(
        &caller.cx.settings.custom_fields,
        RecordKind::Deal,
        current,
        input.unwrap_or(&empty),
        creating,
    ) {
        Ok(values) => Ok(Some(values)),
        Err(Error::Validation(mut fields)) => {
            problems.append(&mut fields);
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

fn money(row: &deals::Model) -> Result<Money, Error> {
    let currency: Currency = row.currency.parse().map_err(Error::internal)?;
    Ok(Money::from_minor(row.value_minor, currency))
}

fn tags_of(row: &deals::Model) -> Vec<String> {
    super::contact::strings(&row.tags)
}

fn object(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn stage_ref(stages: &HashMap<uuid::Uuid, pipeline_stages::Model>, id: uuid::Uuid) -> StageRef {
    stages.get(&id).map(StageRef::from).unwrap_or(StageRef {
        id,
        name: String::new(),
        archived: false,
    })
}

fn to_view(
    row: deals::Model,
    stages: &HashMap<uuid::Uuid, pipeline_stages::Model>,
    history: Option<Vec<MoveView>>,
) -> Result<DealView, Error> {
    Ok(DealView {
        value: money(&row)?,
        tags: tags_of(&row),
        stage: stage_ref(stages, row.stage_id),
        id: row.id,
        title: row.title,
        pipeline_id: row.pipeline_id,
        stage_id: row.stage_id,
        status: row.status,
        close_reason: row.close_reason,
        closed_at: row.closed_at,
        expected_close_on: row.expected_close_on,
        owner_id: row.owner_id,
        prospect_id: row.prospect_id,
        relationship_id: row.relationship_id,
        custom_fields: row.custom,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
        history,
    })
}

/// A deal with its stage-move history.
async fn full_view<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    row: deals::Model,
) -> Result<DealView, Error> {
    let moves = deal_stage_moves::Entity::find()
        .filter(deal_stage_moves::Column::OrganizationId.eq(org.as_uuid()))
        .filter(deal_stage_moves::Column::DealId.eq(row.id))
        .order_by_asc(deal_stage_moves::Column::MovedAt)
        .order_by_asc(deal_stage_moves::Column::Id)
        .all(conn)
        .await
        .map_err(db_err)?;
    let mut ids = vec![row.stage_id];
    for m in &moves {
        ids.extend(m.from_stage_id);
        ids.push(m.to_stage_id);
    }
    let stages = stages_by_id(conn, org, ids).await?;
    let history = moves
        .into_iter()
        .map(|m| MoveView {
            id: m.id,
            from_stage: m.from_stage_id.map(|id| stage_ref(&stages, id)),
            to_stage: stage_ref(&stages, m.to_stage_id),
            moved_by: m.moved_by,
            moved_at: m.moved_at,
        })
        .collect();
    to_view(row, &stages, Some(history))
}

async fn record_move<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    deal: uuid::Uuid,
    from: Option<uuid::Uuid>,
    to: uuid::Uuid,
    by: Option<uuid::Uuid>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    deal_stage_moves::Entity::insert(deal_stage_moves::ActiveModel {
        organization_id: Set(org.as_uuid()),
        id: Set(uuid::Uuid::now_v7()),
        deal_id: Set(deal),
        from_stage_id: Set(from),
        to_stage_id: Set(to),
        moved_by: Set(by),
        moved_at: Set(now),
    })
    .exec_without_returning(conn)
    .await
    .map_err(db_err)?;
    if let Some(from) = from {
        // Realtime clients of the organization see board moves as they happen.
        crate::events::record(
            conn,
            org,
            "deal.stage_changed",
            ("deal", deal),
            json!({ "deal_id": deal, "from_stage_id": from, "to_stage_id": to, "moved_by": by }),
            now,
        )
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Ranks

/// The column's cards (not deleted), except `moving`.
fn column(org: OrgId, stage: uuid::Uuid, moving: Option<uuid::Uuid>) -> Select<deals::Entity> {
    let mut select = deals::Entity::find()
        .filter(deals::Column::OrganizationId.eq(org.as_uuid()))
        .filter(deals::Column::StageId.eq(stage))
        .filter(deals::Column::DeletedAt.is_null());
    if let Some(moving) = moving {
        select = select.filter(deals::Column::Id.ne(moving));
    }
    select
}

/// The last card of a column (highest rank).
async fn last_card<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    stage: uuid::Uuid,
    moving: Option<uuid::Uuid>,
) -> Result<Option<deals::Model>, Error> {
    column(org, stage, moving)
        .order_by_desc(deals::Column::BoardRank)
        .order_by_desc(deals::Column::Id)
        .one(conn)
        .await
        .map_err(db_err)
}

/// The card right after (`next`) or right before `anchor` in its column.
async fn neighbour<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    moving: uuid::Uuid,
    anchor: &deals::Model,
    next: bool,
) -> Result<Option<deals::Model>, Error> {
    let select = column(org, anchor.stage_id, Some(moving));
    let (rank, id) = (anchor.board_rank, anchor.id);
    if next {
        select
            .filter(
                Condition::any().add(deals::Column::BoardRank.gt(rank)).add(
                    Condition::all()
                        .add(deals::Column::BoardRank.eq(rank))
                        .add(deals::Column::Id.gt(id)),
                ),
            )
            .order_by_asc(deals::Column::BoardRank)
            .order_by_asc(deals::Column::Id)
            .one(conn)
            .await
            .map_err(db_err)
    } else {
        select
            .filter(
                Condition::any().add(deals::Column::BoardRank.lt(rank)).add(
                    Condition::all()
                        .add(deals::Column::BoardRank.eq(rank))
                        .add(deals::Column::Id.lt(id)),
                ),
            )
            .order_by_desc(deals::Column::BoardRank)
            .order_by_desc(deals::Column::Id)
            .one(conn)
            .await
            .map_err(db_err)
    }
}

/// A rank strictly between `lo` and `hi` (either end open), if there is room.
fn rank_between(lo: Option<i64>, hi: Option<i64>) -> Option<i64> {
    match (lo, hi) {
        (None, None) => Some(RANK_GAP),
        (Some(lo), None) => lo.checked_add(RANK_GAP),
        (None, Some(hi)) => hi.checked_sub(RANK_GAP),
        (Some(lo), Some(hi)) => {
            let (lo, hi) = (i128::from(lo), i128::from(hi));
            (hi - lo >= 2)
                .then(|| lo + (hi - lo) / 2)
                .and_then(|mid| i64::try_from(mid).ok())
        }
    }
}

/// Gives the column's cards (except `moving`) ranks `RANK_GAP`, `2 × RANK_GAP`, … in
/// their current order.
async fn renumber(
    txn: &DatabaseTransaction,
    org: OrgId,
    stage: uuid::Uuid,
    moving: Option<uuid::Uuid>,
) -> Result<(), Error> {
    let cards = column(org, stage, moving)
        .order_by_asc(deals::Column::BoardRank)
        .order_by_asc(deals::Column::Id)
        .all(txn)
        .await
        .map_err(db_err)?;
    for (i, card) in (1_i64..).zip(cards) {
        let rank = i
            .checked_mul(RANK_GAP)
            .ok_or_else(|| Error::Conflict("this stage has too many deals to reorder".into()))?;
        deals::Entity::update_many()
            .col_expr(deals::Column::BoardRank, Expr::value(rank))
            .filter(deals::Column::OrganizationId.eq(org.as_uuid()))
            .filter(deals::Column::Id.eq(card.id))
            .exec(txn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// A card of the column `stage` named as a neighbour in a move.
async fn anchor(
    txn: &DatabaseTransaction,
    caller: &Caller,
    stage: uuid::Uuid,
    moving: uuid::Uuid,
    id: uuid::Uuid,
    field: &str,
) -> Result<deals::Model, Error> {
    visible(caller.org, caller.cx.scope)
        .filter(deals::Column::Id.eq(id))
        .filter(deals::Column::StageId.eq(stage))
        .filter(deals::Column::Id.ne(moving))
        .one(txn)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::invalid(field, "is not another deal in that stage"))
}

/// The rank for `moving` in column `stage`: right after `after`, right before `before`
/// (both: between them, which must be neighbours), or at the end. Renumbers the column
/// once if its neighbours have no room between them. Call with the pipeline locked.
async fn placement(
    txn: &DatabaseTransaction,
    caller: &Caller,
    stage: uuid::Uuid,
    moving: uuid::Uuid,
    after: Option<uuid::Uuid>,
    before: Option<uuid::Uuid>,
) -> Result<i64, Error> {
    let org = caller.org;
    for _ in 0..2 {
        let after_card = match after {
            Some(id) => Some(anchor(txn, caller, stage, moving, id, "after_id").await?),
            None => None,
        };
        let before_card = match before {
            Some(id) => Some(anchor(txn, caller, stage, moving, id, "before_id").await?),
            None => None,
        };
        let (lo, hi) = match (&after_card, &before_card) {
            (Some(a), Some(b)) => {
                let next = neighbour(txn, org, moving, a, true).await?;
                if next.as_ref().map(|n| n.id) != Some(b.id) {
                    return Err(Error::Conflict(
                        "after_id and before_id are not next to each other in that stage; \
                         reload the board and try again"
                            .into(),
                    ));
                }
                (Some(a.board_rank), Some(b.board_rank))
            }
            (Some(a), None) => (
                Some(a.board_rank),
                neighbour(txn, org, moving, a, true)
                    .await?
                    .map(|n| n.board_rank),
            ),
            (None, Some(b)) => (
                neighbour(txn, org, moving, b, false)
                    .await?
                    .map(|p| p.board_rank),
                Some(b.board_rank),
            ),
            (None, None) => (
                last_card(txn, org, stage, Some(moving))
                    .await?
                    .map(|c| c.board_rank),
                None,
            ),
        };
        if let Some(rank) = rank_between(lo, hi) {
            return Ok(rank);
        }
        renumber(txn, org, stage, Some(moving)).await?;
    }
    Err(Error::internal(
        "no board rank is free even after renumbering the column",
    ))
}

/// The rank after the last card of a column, renumbering it first if the ranks ran out.
async fn end_rank(txn: &DatabaseTransaction, org: OrgId, stage: uuid::Uuid) -> Result<i64, Error> {
    let last = last_card(txn, org, stage, None)
        .await?
        .map(|c| c.board_rank);
    if let Some(rank) = rank_between(last, None) {
        return Ok(rank);
    }
    renumber(txn, org, stage, None).await?;
    let last = last_card(txn, org, stage, None)
        .await?
        .map(|c| c.board_rank);
    rank_between(last, None)
        .ok_or_else(|| Error::Conflict("this stage has too many deals to add one".into()))
}

/// Moves `deals` (in this order) to the end of `target`'s column, recording each move.
/// Returns their ids. Call with the pipeline locked (archiving a stage does).
pub(crate) async fn move_to_column_end(
    txn: &DatabaseTransaction,
    org: OrgId,
    moving: &[deals::Model],
    target: &pipeline_stages::Model,
    by: Option<uuid::Uuid>,
    now: DateTime<Utc>,
) -> Result<Vec<uuid::Uuid>, Error> {
    let mut ids = Vec::with_capacity(moving.len());
    for deal in moving {
        let rank = end_rank(txn, org, target.id).await?;
        deals::Entity::update_many()
            .col_expr(deals::Column::StageId, Expr::value(target.id))
            .col_expr(deals::Column::PipelineId, Expr::value(target.pipeline_id))
            .col_expr(deals::Column::BoardRank, Expr::value(rank))
            .col_expr(deals::Column::UpdatedAt, Expr::value(now))
            .filter(deals::Column::OrganizationId.eq(org.as_uuid()))
            .filter(deals::Column::Id.eq(deal.id))
            .exec(txn)
            .await
            .map_err(db_err)?;
        record_move(txn, org, deal.id, Some(deal.stage_id), target.id, by, now).await?;
        ids.push(deal.id);
    }
    Ok(ids)
}

// ---------------------------------------------------------------------------------------
// Services

/// Creates a deal at the end of its stage's column, with its first history row.
pub async fn create(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: NewDeal,
) -> Result<DealView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let caller = caller(db, ctx).await?;
    let org = caller.org;
    let mut problems = Vec::new();
    let title = check_title(&input.title, &mut problems);
    let value = match &input.value {
        Some(value) => check_value(value, caller.cx.currency, &mut problems),
        None => Some(Money::zero(caller.cx.currency)),
    };
    let expected_close_on = input
        .expected_close_on
        .as_deref()
        .and_then(|d| check_date(d, &mut problems));
    let tags = check_tags(input.tags.unwrap_or_default(), &mut problems);
    let custom = custom_values(
        &caller,
        &Map::new(),
        input.custom_fields.as_ref(),
        true,
        &mut problems,
    )?;
    validation(problems)?;
    let owner = match input.owner_id {
        Some(owner) => {
            fields::check_assignee(db, ctx, "owner_id", owner).await?;
            Some(owner)
        }
        // The caller, when they are a member (an operator or an API key owns nothing).
        None => match caller.user {
            Some(user) if is_active_member(db, org, user).await? => Some(user),
            _ => None,
        },
    };

    let txn = begin_write(db).await.map_err(db_err)?;
    check_links(&txn, ctx, &caller, input.prospect_id, input.relationship_id).await?;
    let pipeline = match input.pipeline_id {
        Some(id) => lock_pipeline(&txn, org, id).await?.ok_or_else(|| {
            Error::invalid("pipeline_id", "is not a pipeline of this organization")
        })?,
        None => {
            let default = default_pipeline(&txn, org).await?.ok_or_else(|| {
                Error::Conflict(
                    "the organization has no default pipeline; create one or name pipeline_id"
                        .into(),
                )
            })?;
            lock_pipeline(&txn, org, default.id)
                .await?
                .ok_or(Error::not_found("pipeline"))?
        }
    };
    if pipeline.archived_at.is_some() {
        return Err(Error::invalid("pipeline_id", "is archived"));
    }
    let stage = match input.stage_id {
        Some(id) => {
            let stage = find_stage(&txn, org, id)
                .await?
                .ok_or_else(|| Error::invalid("stage_id", "is not a stage of this organization"))?;
            if stage.pipeline_id != pipeline.id {
                return Err(Error::invalid(
                    "stage_id",
                    format!("is a stage of another pipeline, not of {:?}", pipeline.name),
                ));
            }
            if stage.archived_at.is_some() {
                return Err(Error::invalid("stage_id", "is archived"));
            }
            stage
        }
        None => active_stages(&txn, org, pipeline.id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Conflict("the pipeline has no active stage".into()))?,
    };
    let value = value.unwrap_or(Money::zero(caller.cx.currency));
    let row = deals::Model {
        organization_id: org.as_uuid(),
        id: uuid::Uuid::now_v7(),
        pipeline_id: pipeline.id,
        stage_id: stage.id,
        search_text: title.to_lowercase(),
        title,
        value_minor: value.minor(),
        currency: value.currency().code().to_owned(),
        prospect_id: input.prospect_id,
        relationship_id: input.relationship_id,
        owner_id: owner,
        status: "open".into(),
        close_reason: None,
        closed_at: None,
        expected_close_on,
        board_rank: end_rank(&txn, org, stage.id).await?,
        tags: json!(tags),
        custom: Value::Object(custom.unwrap_or_default()),
        created_by: caller.user,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    deals::Entity::insert(deals::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
    tags::replace(&txn, org.as_uuid(), TAG_KIND, row.id, &tags).await?;
    record_move(&txn, org, row.id, None, stage.id, caller.user, now).await?;
    audit::Entry::new(org, Actor::of(ctx), "deal.create")
        .target("deal", row.id)
        .details(json!({
            "title": row.title,
            "value": value,
            "pipeline_id": pipeline.id,
            "stage": {"id": stage.id, "name": stage.name},
            "owner_id": owner,
            "prospect_id": row.prospect_id,
            "relationship_id": row.relationship_id,
        }))
        .record(&txn, client, now)
        .await?;
    let view = full_view(&txn, org, row).await?;
    record_events::record(
        &txn,
        ctx,
        "deal",
        view.id,
        &view,
        owner,
        Change::Created,
        now,
    )
    .await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// One deal with its stage-move history.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    id: uuid::Uuid,
) -> Result<DealView, Error> {
    ctx.require(Permission::CrmRead)?;
    let caller = caller(db, ctx).await?;
    let row = find_visible(db, &caller, id, false).await?;
    full_view(db, caller.org, row).await
}

/// Changes a deal's title, value, owner, expected close date, tags or custom fields.
pub async fn update(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    patch: DealPatch,
) -> Result<DealView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let caller = caller(db, ctx).await?;
    let org = caller.org;
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = find_visible(&txn, &caller, id, true).await?;
    let mut problems = Vec::new();
    let title = patch
        .title
        .as_deref()
        .map(|t| check_title(t, &mut problems));
    let value = patch
        .value
        .as_ref()
        .and_then(|v| check_value(v, caller.cx.currency, &mut problems));
    let expected = patch
        .expected_close_on
        .as_ref()
        .map(|d| d.as_deref().and_then(|d| check_date(d, &mut problems)));
    let tags = patch.tags.map(|t| check_tags(t, &mut problems));
    let custom = custom_values(
        &caller,
        &object(&current.custom),
        patch.custom_fields.as_ref(),
        false,
        &mut problems,
    )?;
    validation(problems)?;

    let mut row = deals::ActiveModel::from(current.clone());
    let mut changed: Vec<&str> = Vec::new();
    if let Some(title) = title
        && title != current.title
    {
        row.search_text = Set(title.to_lowercase());
        row.title = Set(title);
        changed.push("title");
    }
    let mut value_change = None;
    if let Some(value) = value
        && (value.minor() != current.value_minor || value.currency().code() != current.currency)
    {
        value_change = Some(json!({"from": money(&current)?, "to": value}));
        row.value_minor = Set(value.minor());
        row.currency = Set(value.currency().code().to_owned());
        changed.push("value");
    }
    if let Some(owner) = patch.owner_id
        && owner != current.owner_id
    {
        match owner {
            // Giving the deal to someone else needs `crm_assign`; taking it, not.
            Some(user) => fields::check_assignee(&txn, ctx, "owner_id", user).await?,
            // Leaving it unowned: the owner may let go of their own deal.
            None if current.owner_id.is_some() && current.owner_id == caller.user => {}
            None => ctx.require(Permission::CrmAssign)?,
        }
        row.owner_id = Set(owner);
        changed.push("owner_id");
    }
    let prospect = patch.prospect_id.filter(|p| *p != current.prospect_id);
    let relationship = patch
        .relationship_id
        .filter(|r| *r != current.relationship_id);
    check_links(
        &txn,
        ctx,
        &caller,
        prospect.flatten(),
        relationship.flatten(),
    )
    .await?;
    if let Some(prospect) = prospect {
        row.prospect_id = Set(prospect);
        changed.push("prospect_id");
    }
    if let Some(relationship) = relationship {
        row.relationship_id = Set(relationship);
        changed.push("relationship_id");
    }
    if let Some(expected) = expected
        && expected != current.expected_close_on
    {
        row.expected_close_on = Set(expected);
        changed.push("expected_close_on");
    }
    if let Some(tags) = tags
        && tags != tags_of(&current)
    {
        tags::replace(&txn, org.as_uuid(), TAG_KIND, id, &tags).await?;
        row.tags = Set(json!(tags));
        changed.push("tags");
    }
    if let Some(custom) = custom
        && Value::Object(custom.clone()) != current.custom
    {
        row.custom = Set(Value::Object(custom));
        changed.push("custom_fields");
    }
    if !changed.is_empty() {
        row.updated_at = Set(now);
        deals::Entity::update(row)
            .exec(&txn)
            .await
            .map_err(db_err)?;
        let mut details = json!({ "changed": changed });
        if let Some(value_change) = value_change {
            details["value"] = value_change;
        }
        if changed.contains(&"owner_id") {
            details["owner"] = json!({"from": current.owner_id, "to": patch.owner_id.flatten()});
        }
        audit::Entry::new(org, Actor::of(ctx), "deal.update")
            .target("deal", id)
            .details(details)
            .record(&txn, client, now)
            .await?;
    }
    // Read back without the visibility filter: the caller saw the deal a moment ago.
    let row = deals::Entity::find()
        .filter(deals::Column::OrganizationId.eq(org.as_uuid()))
        .filter(deals::Column::Id.eq(id))
        .one(&txn)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("deal"))?;
    let owner = row.owner_id;
    let view = full_view(&txn, org, row).await?;
    if !changed.is_empty() {
        let previous_owner = current.owner_id;
        let before =
            serde_json::to_value(full_view(&txn, org, current).await?).map_err(Error::internal)?;
        let change = Change::Updated {
            changed: &changed,
            before,
            previous_owner,
        };
        record_events::record(&txn, ctx, "deal", id, &view, owner, change, now).await?;
    }
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// Deletes a deal (softly: it answers 404 from now on; its rows and history stay).
pub async fn delete(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
) -> Result<(), Error> {
    ctx.require(Permission::CrmDelete)?;
    let caller = caller(db, ctx).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = find_visible(&txn, &caller, id, true).await?;
    deals::Entity::update_many()
        .col_expr(deals::Column::DeletedAt, Expr::value(now))
        .col_expr(deals::Column::UpdatedAt, Expr::value(now))
        .filter(deals::Column::OrganizationId.eq(caller.org.as_uuid()))
        .filter(deals::Column::Id.eq(id))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(caller.org, Actor::of(ctx), "deal.delete")
        .target("deal", id)
        .details(json!({ "title": current.title, "status": current.status }))
        .record(&txn, client, now)
        .await?;
    let owner = current.owner_id;
    let view = full_view(&txn, caller.org, current).await?;
    record_events::record(&txn, ctx, "deal", id, &view, owner, Change::Deleted, now).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(())
}

/// Locks the pipelines (in id order, so two transactions never wait on each other in a
/// cycle), then the deal. Fails with a conflict if the deal changed pipeline meanwhile.
async fn lock_for_placement(
    txn: &DatabaseTransaction,
    caller: &Caller,
    deal: &deals::Model,
    also: Option<uuid::Uuid>,
) -> Result<(Vec<pipeline_rows::Model>, deals::Model), Error> {
    let mut ids = vec![deal.pipeline_id];
    ids.extend(also);
    ids.sort();
    ids.dedup();
    let mut locked = Vec::with_capacity(ids.len());
    for id in ids {
        locked.push(
            lock_pipeline(txn, caller.org, id)
                .await?
                .ok_or(Error::not_found("pipeline"))?,
        );
    }
    let fresh = find_visible(txn, caller, deal.id, true).await?;
    if fresh.pipeline_id != deal.pipeline_id {
        return Err(Error::Conflict(
            "the deal was moved to another pipeline meanwhile; reload it and try again".into(),
        ));
    }
    Ok((locked, fresh))
}

fn closed_conflict(status: &str, what: &str) -> Error {
    Error::Conflict(format!("the deal is {status}; reopen it to {what}"))
}

/// Moves a deal to a stage and/or a place in that stage's column. A stage change is
/// recorded in the deal's history; a reorder within the column changes only its rank.
pub async fn move_deal(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    input: MoveDeal,
) -> Result<DealView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let caller = caller(db, ctx).await?;
    let org = caller.org;
    let txn = begin_write(db).await.map_err(db_err)?;
    let seen = find_visible(&txn, &caller, id, false).await?;
    let mut problems = Vec::new();
    for (field, other) in [("before_id", input.before_id), ("after_id", input.after_id)] {
        if other == Some(id) {
            problems.push(FieldError::new(
                field,
                "must be another deal than the one moved",
            ));
        }
    }
    validation(problems)?;
    let target = find_stage(&txn, org, input.stage_id)
        .await?
        .ok_or_else(|| Error::invalid("stage_id", "is not a stage of this organization"))?;
    let (locked, current) =
        lock_for_placement(&txn, &caller, &seen, Some(target.pipeline_id)).await?;
    if target.archived_at.is_some() {
        return Err(Error::invalid("stage_id", "is archived"));
    }
    if locked
        .iter()
        .any(|p| p.id == target.pipeline_id && p.archived_at.is_some())
    {
        return Err(Error::invalid(
            "stage_id",
            "belongs to an archived pipeline",
        ));
    }
    if current.status != "open" {
        return Err(closed_conflict(&current.status, "move it"));
    }
    let stage_changed = current.stage_id != target.id;
    if !stage_changed && input.before_id.is_none() && input.after_id.is_none() {
        let view = full_view(&txn, org, current).await?;
        txn.commit().await.map_err(db_err)?;
        return Ok(view);
    }
    let rank = placement(
        &txn,
        &caller,
        target.id,
        id,
        input.after_id,
        input.before_id,
    )
    .await?;
    deals::Entity::update_many()
        .col_expr(deals::Column::StageId, Expr::value(target.id))
        .col_expr(deals::Column::PipelineId, Expr::value(target.pipeline_id))
        .col_expr(deals::Column::BoardRank, Expr::value(rank))
        .col_expr(deals::Column::UpdatedAt, Expr::value(now))
        .filter(deals::Column::OrganizationId.eq(org.as_uuid()))
        .filter(deals::Column::Id.eq(id))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    let from = find_stage(&txn, org, current.stage_id).await?;
    if stage_changed {
        record_move(
            &txn,
            org,
            id,
            Some(current.stage_id),
            target.id,
            caller.user,
            now,
        )
        .await?;
    }
    audit::Entry::new(org, Actor::of(ctx), "deal.move")
        .target("deal", id)
        .details(json!({
            "from": {
                "stage_id": current.stage_id,
                "stage": from.map(|s| s.name),
                "pipeline_id": current.pipeline_id,
            },
            "to": {
                "stage_id": target.id,
                "stage": target.name,
                "pipeline_id": target.pipeline_id,
            },
            "stage_changed": stage_changed,
            "after_id": input.after_id,
            "before_id": input.before_id,
        }))
        .record(&txn, client, now)
        .await?;
    let row = find_visible(&txn, &caller, id, false).await?;
    let view = full_view(&txn, org, row).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// Marks an open deal won (`won = true`, reason optional) or lost (reason required).
pub async fn close(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
    won: bool,
    input: CloseDeal,
) -> Result<DealView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let caller = caller(db, ctx).await?;
    let org = caller.org;
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = find_visible(&txn, &caller, id, true).await?;
    let mut problems = Vec::new();
    let reason = check_reason(input.reason.as_deref(), !won, &mut problems);
    validation(problems)?;
    if current.status != "open" {
        return Err(Error::Conflict(format!(
            "the deal is already {}; reopen it first",
            current.status
        )));
    }
    let status = if won { "won" } else { "lost" };
    deals::Entity::update_many()
        .col_expr(deals::Column::Status, Expr::value(status))
        .col_expr(deals::Column::CloseReason, Expr::value(reason.clone()))
        .col_expr(deals::Column::ClosedAt, Expr::value(Some(now)))
        .col_expr(deals::Column::UpdatedAt, Expr::value(now))
        .filter(deals::Column::OrganizationId.eq(org.as_uuid()))
        .filter(deals::Column::Id.eq(id))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(
        org,
        Actor::of(ctx),
        if won { "deal.won" } else { "deal.lost" },
    )
    .target("deal", id)
    .details(json!({
        "value": money(&current)?,
        "stage_id": current.stage_id,
        "reason": reason,
    }))
    .record(&txn, client, now)
    .await?;
    let row = find_visible(&txn, &caller, id, false).await?;
    let owner = row.owner_id;
    let view = full_view(&txn, org, row).await?;
    let previous_owner = current.owner_id;
    let before =
        serde_json::to_value(full_view(&txn, org, current).await?).map_err(Error::internal)?;
    let change = Change::Updated {
        changed: &["status", "close_reason", "closed_at"],
        before,
        previous_owner,
    };
    record_events::record(&txn, ctx, "deal", id, &view, owner, change, now).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// Reopens a won or lost deal. If its stage was archived meanwhile, it goes to the end of
/// its pipeline's first active stage (a recorded move).
pub async fn reopen(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: uuid::Uuid,
) -> Result<DealView, Error> {
    ctx.require(Permission::CrmWrite)?;
    let caller = caller(db, ctx).await?;
    let org = caller.org;
    let txn = begin_write(db).await.map_err(db_err)?;
    let seen = find_visible(&txn, &caller, id, false).await?;
    let (locked, current) = lock_for_placement(&txn, &caller, &seen, None).await?;
    if current.status == "open" {
        return Err(Error::Conflict("the deal is already open".into()));
    }
    if locked.iter().any(|p| p.archived_at.is_some()) {
        return Err(Error::Conflict(
            "the deal's pipeline is archived; its deals cannot be reopened".into(),
        ));
    }
    let stage = find_stage(&txn, org, current.stage_id)
        .await?
        .ok_or(Error::not_found("stage"))?;
    let mut moved_to = None;
    if stage.archived_at.is_some() {
        let first = active_stages(&txn, org, current.pipeline_id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Conflict("the pipeline has no active stage".into()))?;
        move_to_column_end(
            &txn,
            org,
            std::slice::from_ref(&current),
            &first,
            caller.user,
            now,
        )
        .await?;
        moved_to = Some(json!({"stage_id": first.id, "stage": first.name}));
    }
    deals::Entity::update_many()
        .col_expr(deals::Column::Status, Expr::value("open"))
        .col_expr(
            deals::Column::CloseReason,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            deals::Column::ClosedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(deals::Column::UpdatedAt, Expr::value(now))
        .filter(deals::Column::OrganizationId.eq(org.as_uuid()))
        .filter(deals::Column::Id.eq(id))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(org, Actor::of(ctx), "deal.reopen")
        .target("deal", id)
        .details(json!({
            "from_status": current.status,
            "close_reason": current.close_reason,
            "moved_to": moved_to,
        }))
        .record(&txn, client, now)
        .await?;
    let row = find_visible(&txn, &caller, id, false).await?;
    let owner = row.owner_id;
    let view = full_view(&txn, org, row).await?;
    let previous_owner = current.owner_id;
    let before =
        serde_json::to_value(full_view(&txn, org, current).await?).map_err(Error::internal)?;
    let change = Change::Updated {
        changed: &["status", "close_reason", "closed_at"],
        before,
        previous_owner,
    };
    record_events::record(&txn, ctx, "deal", id, &view, owner, change, now).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(view)
}

/// The list: `GET /deals`. Besides the shared parameters (see [`super::list`]):
/// `pipeline_id`, `stage_id`, `status` (`open`, `won`, `lost`), `prospect_id` and
/// `relationship_id`; `q` searches titles.
pub const LIST: ListSpec = ListSpec {
    tag_kind: Some(TAG_KIND),
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
            name: "value_minor",
            kind: SortKind::Integer,
        },
    ],
    default_sort: "-created_at",
    owner_column: Some("owner_id"),
    search_column: Some("search_text"),
    phone_column: None,
    custom_fields: Some(RecordKind::Deal),
    filters: &[
        "pipeline_id",
        "stage_id",
        "status",
        "prospect_id",
        "relationship_id",
    ],
};

fn sort_value(row: &deals::Model, column: &str) -> SortValue {
    match column {
        "updated_at" => SortValue::Time(row.updated_at),
        "value_minor" => SortValue::Integer(row.value_minor),
        _ => SortValue::Time(row.created_at),
    }
}

/// Lists the deals the caller may see: filters, search, sort and keyset pages.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    pairs: Vec<(String, String)>,
) -> Result<edge_core::Page<DealView>, Error> {
    list_sized(db, ctx, pairs, None).await
}

/// [`list`], reading pages of `page_size` rows when given (an export walks the whole
/// list with the same filters and visibility in larger pages).
pub(crate) async fn list_sized(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    pairs: Vec<(String, String)>,
    page_size: Option<u32>,
) -> Result<edge_core::Page<DealView>, Error> {
    ctx.require(Permission::CrmRead)?;
    let caller = caller(db, ctx).await?;
    let org = caller.org;
    let query = ListQuery::parse(
        pairs,
        LIST,
        &caller.cx.settings,
        caller.user,
        caller.cx.country,
    )?;
    let query = match page_size {
        Some(size) => query.with_page_size(size),
        None => query,
    };
    let mut select = visible(org, caller.cx.scope);
    for (name, column) in [
        ("pipeline_id", deals::Column::PipelineId),
        ("stage_id", deals::Column::StageId),
        ("prospect_id", deals::Column::ProspectId),
        ("relationship_id", deals::Column::RelationshipId),
    ] {
        if let Some(id) = query.uuid(name)? {
            select = select.filter(column.eq(id));
        }
    }
    if let Some(status) = query.text("status") {
        if !["open", "won", "lost"].contains(&status) {
            return Err(Error::invalid("status", "must be open, won or lost"));
        }
        select = select.filter(deals::Column::Status.eq(status));
    }
    let rows = query
        .finish(select, db.get_database_backend(), org.as_uuid())?
        .all(db)
        .await
        .map_err(db_err)?;
    let page = query.page(rows, sort_value, |row| row.id);
    let stages = stages_by_id(db, org, page.items.iter().map(|row| row.stage_id).collect()).await?;
    let items = page
        .items
        .into_iter()
        .map(|row| to_view(row, &stages, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(edge_core::Page {
        items,
        next_cursor: page.next_cursor,
    })
}

#[derive(Debug, FromQueryResult)]
struct ColumnTotal {
    stage_id: uuid::Uuid,
    currency: String,
    n: i64,
    total: i64,
}

/// The kanban board of a pipeline: one column per active stage, in order, with the count
/// and total value of its open deals and its first `cards` deals in board order.
pub async fn board(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    pipeline: uuid::Uuid,
    query: BoardQuery,
) -> Result<BoardView, Error> {
    ctx.require(Permission::CrmRead)?;
    let caller = caller(db, ctx).await?;
    let org = caller.org;
    let owner = match query.owner_id.as_deref().map(str::trim) {
        None => None,
        Some("me") => Some(caller.user.ok_or_else(|| {
            Error::invalid("owner_id", "`me` needs a signed-in user, not an API key")
        })?),
        Some(text) => Some(
            text.parse::<uuid::Uuid>()
                .map_err(|_| Error::invalid("owner_id", "must be a user id or `me`"))?,
        ),
    };
    let cards = u64::from(query.cards.unwrap_or(DEFAULT_CARDS).clamp(1, MAX_CARDS));
    let row = find_pipeline(db, org, pipeline)
        .await?
        .ok_or(Error::not_found("pipeline"))?;
    let stages = active_stages(db, org, pipeline).await?;
    let open = || {
        let mut select = visible(org, caller.cx.scope).filter(deals::Column::Status.eq("open"));
        if let Some(owner) = owner {
            select = select.filter(deals::Column::OwnerId.eq(owner));
        }
        select
    };
    let totals = open()
        .filter(deals::Column::StageId.is_in(stages.iter().map(|s| s.id)))
        .select_only()
        .column(deals::Column::StageId)
        .column(deals::Column::Currency)
        .column_as(Expr::col(deals::Column::Id).count(), "n")
        .column_as(Expr::cust("CAST(SUM(value_minor) AS BIGINT)"), "total")
        .group_by(deals::Column::StageId)
        .group_by(deals::Column::Currency)
        .into_model::<ColumnTotal>()
        .all(db)
        .await
        .map_err(db_err)?;
    let stage_map: HashMap<uuid::Uuid, pipeline_stages::Model> =
        stages.iter().map(|s| (s.id, s.clone())).collect();
    let mut columns = Vec::with_capacity(stages.len());
    for stage in &stages {
        let mut count: u64 = 0;
        let mut value = Money::zero(caller.cx.currency);
        let mut others: Vec<Money> = Vec::new();
        for total in totals.iter().filter(|t| t.stage_id == stage.id) {
            count = count.saturating_add(u64::try_from(total.n).unwrap_or(0));
            let currency: Currency = total.currency.parse().map_err(Error::internal)?;
            let sum = Money::from_minor(total.total, currency);
            if currency == caller.cx.currency {
                value = value.checked_add(sum).map_err(Error::from)?;
            } else {
                others.push(sum);
            }
        }
        others.sort_by(|a, b| a.currency().code().cmp(b.currency().code()));
        let rows = open()
            .filter(deals::Column::StageId.eq(stage.id))
            .order_by_asc(deals::Column::BoardRank)
            .order_by_asc(deals::Column::Id)
            .limit(cards)
            .all(db)
            .await
            .map_err(db_err)?;
        let deals = rows
            .into_iter()
            .map(|row| to_view(row, &stage_map, None))
            .collect::<Result<Vec<_>, _>>()?;
        columns.push(BoardColumn {
            stage: StageView::from(stage),
            count,
            value,
            other_currencies: others,
            deals,
        });
    }
    Ok(BoardView {
        pipeline: BoardPipeline {
            id: row.id,
            name: row.name,
            is_default: row.is_default,
            archived_at: row.archived_at,
        },
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_fall_between_their_neighbours_or_ask_for_renumbering() {
        assert_eq!(rank_between(None, None), Some(RANK_GAP));
        assert_eq!(rank_between(Some(10), None), Some(10 + RANK_GAP));
        assert_eq!(rank_between(None, Some(10)), Some(10 - RANK_GAP));
        assert_eq!(rank_between(Some(10), Some(20)), Some(15));
        assert_eq!(rank_between(Some(10), Some(12)), Some(11));
        assert_eq!(rank_between(Some(10), Some(11)), None);
        assert_eq!(rank_between(Some(10), Some(10)), None);
        assert_eq!(rank_between(Some(i64::MAX - 1), None), None);
        assert_eq!(rank_between(None, Some(i64::MIN + 1)), None);
        assert_eq!(rank_between(Some(i64::MIN), Some(i64::MAX)), Some(-1));
    }

    #[test]
    fn values_must_be_in_the_organization_currency() {
        let mut problems = Vec::new();
        let input = MoneyInput {
            amount: "1500.00".into(),
            currency: "UGX".into(),
        };
        assert!(check_value(&input, Currency::Kes, &mut problems).is_none());
        assert_eq!(problems[0].field, "value.currency");
        assert!(
            problems[0].message.contains("KES"),
            "{}",
            problems[0].message
        );
        let mut problems = Vec::new();
        let input = MoneyInput {
            amount: "1500.5".into(),
            currency: "kes".into(),
        };
        assert_eq!(
            check_value(&input, Currency::Kes, &mut problems).map(|m| m.minor()),
            Some(150_050)
        );
        let input = MoneyInput {
            amount: "-1".into(),
            currency: "KES".into(),
        };
        assert!(check_value(&input, Currency::Kes, &mut problems).is_none());
        assert_eq!(problems[0].field, "value.amount");
    }
}
