//! `automation_rules`: an organization's "when this happens, do that" rules.

use sea_orm::entity::prelude::*;

/// A rule row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "automation_rules")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The rule id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Whether it runs.
    pub enabled: bool,
    /// What starts it (see `automation::Trigger`).
    pub trigger: String,
    /// Its conditions (a JSON array, see `automation::Condition`).
    pub conditions: Json,
    /// Its actions (a JSON array, see `automation::Action`).
    pub actions: Json,
    /// Who created it (none for API keys).
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
