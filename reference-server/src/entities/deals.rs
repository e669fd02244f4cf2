//! `deals`: opportunities moving through a pipeline's stages. Deleted softly.

use sea_orm::entity::prelude::*;

/// A deal row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deals")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The deal id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The pipeline it is in.
    pub pipeline_id: Uuid,
    /// The stage it is at (always a stage of `pipeline_id`).
    pub stage_id: Uuid,
    /// What is being sold, to whom.
    pub title: String,
    /// The deal's value in minor units of `currency` (never negative).
    pub value_minor: i64,
    /// ISO 4217 code: the organization's currency when the deal was created.
    pub currency: String,
    /// The prospect (lead) it is with, if any.
    pub prospect_id: Option<Uuid>,
    /// The relationship (customer) it is with, if any.
    pub relationship_id: Option<Uuid>,
    /// The member who owns it, if any.
    pub owner_id: Option<Uuid>,
    /// `open`, `won` or `lost`.
    pub status: String,
    /// Why it was won or lost.
    pub close_reason: Option<String>,
    /// When it was won or lost (set exactly when the status is not `open`).
    pub closed_at: Option<DateTimeUtc>,
    /// When it is expected to close.
    pub expected_close_on: Option<Date>,
    /// Its order within its stage's column on the board (ascending).
    pub board_rank: i64,
    /// Its tags, a JSON array of strings.
    pub tags: Json,
    /// Its custom field values, a JSON object.
    pub custom: Json,
    /// The lower-cased title, which `q=` searches.
    pub search_text: String,
    /// The user who created it, if a user did.
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
    /// When it was deleted; deleted deals are invisible through the API.
    pub deleted_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
