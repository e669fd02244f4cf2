//! `automation_runs`: the log of every time a rule's trigger matched an event.

use sea_orm::entity::prelude::*;

/// A run row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "automation_runs")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The run id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The rule.
    pub rule_id: Uuid,
    /// The event that triggered it.
    pub event_id: Uuid,
    /// The rule's trigger at the time.
    pub trigger: String,
    /// `succeeded`, `failed`, `skipped` (conditions false) or `suppressed` (a loop).
    pub status: String,
    /// How many rule actions led to the triggering event (0: a person or the system).
    pub depth: i32,
    /// Each action's result, in order.
    pub results: Json,
    /// Why the run failed or was suppressed.
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// When it ran.
    pub created_at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
