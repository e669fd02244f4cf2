//! `relationships`: customers, created directly or by converting a prospect.

use sea_orm::entity::prelude::*;

/// A relationship row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "relationships")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The relationship id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The customer's name (a person or the main contact).
    pub name: String,
    /// The company.
    pub company: Option<String>,
    /// The main phone, E.164.
    pub phone: Option<String>,
    /// Every phone, E.164, the main one first (JSON array).
    pub phones: Json,
    /// Email (lower-cased).
    pub email: Option<String>,
    /// Industry, from the vocabulary.
    pub industry: Option<String>,
    /// Services they buy, from the vocabulary (JSON array).
    pub services: Json,
    /// The account manager (a user).
    pub account_manager_id: Option<Uuid>,
    /// Happiness rating, from the vocabulary.
    pub happiness: Option<String>,
    /// Contract value in minor units.
    pub contract_value_minor: Option<i64>,
    /// The value's currency (the organization's).
    pub currency: String,
    /// Tags as entered (JSON array).
    pub tags: Json,
    /// Custom field values (JSON object).
    pub custom: Json,
    /// What `q=` searches.
    pub search_text: String,
    /// The prospect it was converted from.
    pub prospect_id: Option<Uuid>,
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
