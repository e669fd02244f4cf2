//! In-app notifications, automation rules with their run log, and the overdue marker of
//! tickets.
//!
//! - `notifications`: one row per notice to one member (`user_id`): its kind, a title and
//!   body, what it is about (`subject_type`, `subject_id`), data, and when it was read.
//!   A member's list is read newest first on `(organization_id, user_id, id)`.
//! - `automation_rules`: an organization's rules: a trigger, conditions and actions (JSON,
//!   checked by the service), and whether the rule is enabled.
//! - `automation_runs`: every time a rule's trigger matched an event: the status
//!   (`succeeded`, `failed`, `skipped`, `suppressed`), the causation depth and each
//!   action's result. One run per rule and event (unique), so an event handled again
//!   never runs a rule twice. Deleting a rule deletes its runs.
//! - `tickets.overdue_at`: when `ticket.overdue` was recorded for the ticket's due time.
//!   A ticket is overdue again only when its due time moved past that marker.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    boolean, integer, json, string_len as text, string_len_null as text_null, text as long_text,
    text_null as long_text_null, timestamp_with_time_zone as time,
    timestamp_with_time_zone_null as time_null, uuid, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    OrganizationId,
    Id,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    OverdueAt,
    DueAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    OrganizationId,
    Id,
    UserId,
    Kind,
    Title,
    Body,
    SubjectType,
    SubjectId,
    Data,
    ReadAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AutomationRules {
    Table,
    OrganizationId,
    Id,
    Name,
    Enabled,
    Trigger,
    Conditions,
    Actions,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AutomationRuns {
    Table,
    OrganizationId,
    Id,
    RuleId,
    EventId,
    Trigger,
    Status,
    Depth,
    Results,
    Error,
    CreatedAt,
}

/// The kinds of notification.
const NOTIFICATION_KINDS: &[&str] = &[
    "assignment",
    "mention",
    "overdue",
    "low_balance",
    "webhook_disabled",
    "automation",
];

/// The triggers of a rule.
const TRIGGERS: &[&str] = &[
    "deal.stage_changed",
    "record.created",
    "payment.succeeded",
    "whatsapp.inbound",
    "ticket.overdue",
];

/// How a run ended.
const RUN_STATUSES: &[&str] = &["succeeded", "failed", "skipped", "suppressed"];

fn org_fk(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Organizations::Table, Organizations::Id)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

fn user_fk(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

fn one_of(col: impl IntoIden, values: &[&str]) -> Expr {
    Expr::col(col).is_in(values.iter().copied())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Notifications::Table)
                .col(uuid(Notifications::OrganizationId))
                .col(uuid(Notifications::Id))
                .col(uuid(Notifications::UserId))
                .col(text(Notifications::Kind, 32))
                .col(text(Notifications::Title, 300))
                .col(long_text(Notifications::Body))
                .col(text_null(Notifications::SubjectType, 32))
                .col(uuid_null(Notifications::SubjectId))
                .col(json(Notifications::Data))
                .col(time_null(Notifications::ReadAt))
                .col(time(Notifications::CreatedAt))
                .check(one_of(Notifications::Kind, NOTIFICATION_KINDS))
                .primary_key(
                    Index::create()
                        .col(Notifications::OrganizationId)
                        .col(Notifications::Id),
                )
                .foreign_key(&mut org_fk(
                    Notifications::Table,
                    Notifications::OrganizationId,
                ))
                .foreign_key(&mut user_fk(Notifications::Table, Notifications::UserId))
                .to_owned(),
        )
        .await?;
        // A member's notifications, newest first.
        m.create_index(
            Index::create()
                .name("notifications_user_idx")
                .table(Notifications::Table)
                .col(Notifications::OrganizationId)
                .col(Notifications::UserId)
                .col(Notifications::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AutomationRules::Table)
                .col(uuid(AutomationRules::OrganizationId))
                .col(uuid(AutomationRules::Id))
                .col(text(AutomationRules::Name, 200))
                .col(boolean(AutomationRules::Enabled))
                .col(text(AutomationRules::Trigger, 32))
                .col(json(AutomationRules::Conditions))
                .col(json(AutomationRules::Actions))
                .col(uuid_null(AutomationRules::CreatedBy))
                .col(time(AutomationRules::CreatedAt))
                .col(time(AutomationRules::UpdatedAt))
                .check(one_of(AutomationRules::Trigger, TRIGGERS))
                .primary_key(
                    Index::create()
                        .col(AutomationRules::OrganizationId)
                        .col(AutomationRules::Id),
                )
                .foreign_key(&mut org_fk(
                    AutomationRules::Table,
                    AutomationRules::OrganizationId,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AutomationRuns::Table)
                .col(uuid(AutomationRuns::OrganizationId))
                .col(uuid(AutomationRuns::Id))
                .col(uuid(AutomationRuns::RuleId))
                .col(uuid(AutomationRuns::EventId))
                .col(text(AutomationRuns::Trigger, 32))
                .col(text(AutomationRuns::Status, 16))
                .col(integer(AutomationRuns::Depth))
                .col(json(AutomationRuns::Results))
                .col(long_text_null(AutomationRuns::Error))
                .col(time(AutomationRuns::CreatedAt))
                .check(one_of(AutomationRuns::Status, RUN_STATUSES))
                .primary_key(
                    Index::create()
                        .col(AutomationRuns::OrganizationId)
                        .col(AutomationRuns::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from_tbl(AutomationRuns::Table)
                        .from_col(AutomationRuns::OrganizationId)
                        .from_col(AutomationRuns::RuleId)
                        .to_tbl(AutomationRules::Table)
                        .to_col(AutomationRules::OrganizationId)
                        .to_col(AutomationRules::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from_tbl(AutomationRuns::Table)
                        .from_col(AutomationRuns::OrganizationId)
                        .from_col(AutomationRuns::EventId)
                        .to_tbl(Events::Table)
                        .to_col(Events::OrganizationId)
                        .to_col(Events::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        // One run per rule and event; also a rule's runs, newest first.
        m.create_index(
            Index::create()
                .name("automation_runs_rule_event_key")
                .table(AutomationRuns::Table)
                .col(AutomationRuns::OrganizationId)
                .col(AutomationRuns::RuleId)
                .col(AutomationRuns::EventId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("automation_runs_rule_idx")
                .table(AutomationRuns::Table)
                .col(AutomationRuns::OrganizationId)
                .col(AutomationRuns::RuleId)
                .col(AutomationRuns::Id)
                .to_owned(),
        )
        .await?;

        m.alter_table(
            Table::alter()
                .table(Tickets::Table)
                .add_column(time_null(Tickets::OverdueAt))
                .to_owned(),
        )
        .await?;
        // The overdue sweep reads due tickets across organizations.
        m.create_index(
            Index::create()
                .name("tickets_due_idx")
                .table(Tickets::Table)
                .col(Tickets::DueAt)
                .to_owned(),
        )
        .await?;

        super::m20261123_000004_row_level_security::protect(
            m,
            &["notifications", "automation_rules", "automation_runs"],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("tickets_due_idx")
                .table(Tickets::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Tickets::Table)
                .drop_column(Tickets::OverdueAt)
                .to_owned(),
        )
        .await?;
        for table in [
            AutomationRuns::Table.into_iden(),
            AutomationRules::Table.into_iden(),
            Notifications::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
