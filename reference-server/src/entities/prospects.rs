//! `prospects`: leads, before they become customers.

use sea_orm::entity::prelude::*;

/// A prospect row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "prospects")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The prospect id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The person's name.
    pub name: String,
    /// Their company.
    pub company: Option<String>,
    /// The main phone, E.164.
    pub phone: Option<String>,
    /// Every phone, E.164, the main one first (JSON array).
    pub phones: Json,
    /// Email (lower-cased).
    pub email: Option<String>,
    /// Lead source, from the organization's vocabulary.
    pub lead_source: Option<String>,
    /// Industry, from the vocabulary.
    pub industry: Option<String>,
    /// Services of interest, from the vocabulary (JSON array).
    pub services: Json,
    /// The owning user.
    pub owner_id: Option<Uuid>,
    /// Milestone, from the vocabulary.
    pub milestone: String,
    /// Happiness rating, from the vocabulary.
    pub happiness: Option<String>,
    /// Estimated value in minor units.
    pub estimated_value_minor: Option<i64>,
    /// The value's currency (the organization's).
    pub currency: String,
    /// Tags as entered (JSON array).
    pub tags: Json,
    /// Custom field values (JSON object).
    pub custom: Json,
    /// What `q=` searches (see `crm::list::search_text`).
    pub search_text: String,
    /// The relationship it was converted to.
    pub relationship_id: Option<Uuid>,
    /// Who created it.
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
    /// Deleted (soft).
    pub deleted_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
