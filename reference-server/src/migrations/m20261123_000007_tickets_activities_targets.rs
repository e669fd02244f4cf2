//! Tickets (with their comments), activities and targets.
//!
//! - `tickets`: a customer's support request, raised against a relationship. Status moves
//!   `open` → `pending` → `resolved` → `closed` (see `crate::crm::tickets` for the rules);
//!   `resolved_at` and `closed_at` record when it got there. `search_text` is the
//!   lower-cased subject that `q=` searches. Soft-deleted (`deleted_at`).
//! - `ticket_comments`: the conversation on a ticket, oldest first. Soft-deleted.
//! - `activities`: notes, calls, meetings and tasks about one prospect, relationship, deal
//!   or ticket (`subject_type`, `subject_id`: polymorphic, so checked by the service, not
//!   by a foreign key). `owner_id` is who it is assigned to; `completed_at` marks it done.
//! - `targets`: a goal for a period (`period_start`..=`period_end`, calendar dates) on one
//!   metric, for one person, a team (`user_ids`) or the whole organization (`[]`).
//!   `goal` is minor units of `currency` for `revenue_won`, a count otherwise. Progress is
//!   computed when read, never stored.
//!
//! Every primary key and foreign key starts with `organization_id`. People columns that
//! the service checks against the organization's members (`tickets.assignee_id`,
//! `activities.owner_id`) reference `memberships(organization_id, user_id)`, so the
//! database itself refuses someone from another organization; `created_by` and
//! `author_id` do not, because an operator acting in the organization has no membership.
//! Enumerated columns carry CHECK constraints with the values the service accepts.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, date, json, string_len as text, string_len_null as text_null, text as long_text,
    text_null as long_text_null, timestamp_with_time_zone as time,
    timestamp_with_time_zone_null as time_null, uuid, uuid_null,
};
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    OrganizationId,
    UserId,
}

#[derive(DeriveIden)]
enum Relationships {
    Table,
    OrganizationId,
    Id,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    OrganizationId,
    Id,
    RelationshipId,
    Subject,
    Description,
    SearchText,
    Status,
    Priority,
    AssigneeId,
    DueAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    ResolvedAt,
    ClosedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum TicketComments {
    Table,
    OrganizationId,
    Id,
    TicketId,
    AuthorId,
    Body,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Activities {
    Table,
    OrganizationId,
    Id,
    Kind,
    SubjectType,
    SubjectId,
    Title,
    Body,
    DueAt,
    CompletedAt,
    OwnerId,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Targets {
    Table,
    OrganizationId,
    Id,
    Name,
    Metric,
    UserIds,
    PeriodStart,
    PeriodEnd,
    Goal,
    Currency,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

/// `organization_id` referencing organizations; an organization with CRM data cannot be
/// deleted out from under it.
fn org_fk(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Organizations::Table, Organizations::Id)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

/// `(organization_id, person)` referencing the organization's memberships.
fn member_fk(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_tbl(table)
        .from_col(Alias::new("organization_id"))
        .from_col(col)
        .to_tbl(Memberships::Table)
        .to_col(Memberships::OrganizationId)
        .to_col(Memberships::UserId)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

fn index(name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for col in cols {
        index.col(col);
    }
    index.to_owned()
}

fn one_of(col: impl IntoIden, values: &[&str]) -> Expr {
    Expr::col(col).is_in(values.iter().copied())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Tickets::Table)
                .col(uuid(Tickets::OrganizationId))
                .col(uuid(Tickets::Id))
                .col(uuid(Tickets::RelationshipId))
                .col(text(Tickets::Subject, 200))
                .col(long_text(Tickets::Description))
                .col(text(Tickets::SearchText, 200))
                .col(text(Tickets::Status, 16))
                .col(text(Tickets::Priority, 16))
                .col(uuid_null(Tickets::AssigneeId))
                .col(time_null(Tickets::DueAt))
                .col(uuid_null(Tickets::CreatedBy))
                .col(time(Tickets::CreatedAt))
                .col(time(Tickets::UpdatedAt))
                .col(time_null(Tickets::ResolvedAt))
                .col(time_null(Tickets::ClosedAt))
                .col(time_null(Tickets::DeletedAt))
                .check(one_of(
                    Tickets::Status,
                    &["open", "pending", "resolved", "closed"],
                ))
                .check(one_of(
                    Tickets::Priority,
                    &["low", "normal", "high", "urgent"],
                ))
                .primary_key(
                    Index::create()
                        .col(Tickets::OrganizationId)
                        .col(Tickets::Id),
                )
                .foreign_key(&mut org_fk(Tickets::Table, Tickets::OrganizationId))
                .foreign_key(
                    &mut ForeignKey::create()
                        .from_tbl(Tickets::Table)
                        .from_col(Tickets::OrganizationId)
                        .from_col(Tickets::RelationshipId)
                        .to_tbl(Relationships::Table)
                        .to_col(Relationships::OrganizationId)
                        .to_col(Relationships::Id)
                        .on_delete(ForeignKeyAction::Restrict)
                        .to_owned(),
                )
                .foreign_key(&mut member_fk(Tickets::Table, Tickets::AssigneeId))
                .to_owned(),
        )
        .await?;
        // The default list: newest first, keyset on (created_at, id).
        m.create_index(index(
            "tickets_org_created_idx",
            Tickets::Table,
            vec![
                Tickets::OrganizationId.into_iden(),
                Tickets::CreatedAt.into_iden(),
                Tickets::Id.into_iden(),
            ],
        ))
        .await?;
        // "My open tickets": a member's queue by status (also the restricted scope).
        m.create_index(index(
            "tickets_org_assignee_status_idx",
            Tickets::Table,
            vec![
                Tickets::OrganizationId.into_iden(),
                Tickets::AssigneeId.into_iden(),
                Tickets::Status.into_iden(),
            ],
        ))
        .await?;
        // A customer's tickets, newest first (the relationship page).
        m.create_index(index(
            "tickets_org_relationship_created_idx",
            Tickets::Table,
            vec![
                Tickets::OrganizationId.into_iden(),
                Tickets::RelationshipId.into_iden(),
                Tickets::CreatedAt.into_iden(),
            ],
        ))
        .await?;
        // `q=` is a substring search of the subject: on PostgreSQL a trigram index keeps it
        // from reading the whole organization (pg_trgm is enabled by the CRM records
        // migration). SQLite scans the organization's range of the primary key.
        if m.get_database_backend() == DatabaseBackend::Postgres {
            m.get_connection()
                .execute_unprepared(
                    "CREATE INDEX tickets_search_trgm_idx ON tickets \
                     USING gin (search_text gin_trgm_ops)",
                )
                .await?;
        }

        m.create_table(
            Table::create()
                .table(TicketComments::Table)
                .col(uuid(TicketComments::OrganizationId))
                .col(uuid(TicketComments::Id))
                .col(uuid(TicketComments::TicketId))
                .col(uuid_null(TicketComments::AuthorId))
                .col(long_text(TicketComments::Body))
                .col(time(TicketComments::CreatedAt))
                .col(time(TicketComments::UpdatedAt))
                .col(time_null(TicketComments::DeletedAt))
                .primary_key(
                    Index::create()
                        .col(TicketComments::OrganizationId)
                        .col(TicketComments::Id),
                )
                .foreign_key(&mut org_fk(
                    TicketComments::Table,
                    TicketComments::OrganizationId,
                ))
                .foreign_key(
                    &mut ForeignKey::create()
                        .from_tbl(TicketComments::Table)
                        .from_col(TicketComments::OrganizationId)
                        .from_col(TicketComments::TicketId)
                        .to_tbl(Tickets::Table)
                        .to_col(Tickets::OrganizationId)
                        .to_col(Tickets::Id)
                        .on_delete(ForeignKeyAction::Restrict)
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        // A ticket's conversation in order (GET /tickets/{id}).
        m.create_index(index(
            "ticket_comments_org_ticket_created_idx",
            TicketComments::Table,
            vec![
                TicketComments::OrganizationId.into_iden(),
                TicketComments::TicketId.into_iden(),
                TicketComments::CreatedAt.into_iden(),
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Activities::Table)
                .col(uuid(Activities::OrganizationId))
                .col(uuid(Activities::Id))
                .col(text(Activities::Kind, 16))
                .col(text(Activities::SubjectType, 16))
                .col(uuid(Activities::SubjectId))
                .col(text(Activities::Title, 200))
                .col(long_text_null(Activities::Body))
                .col(time_null(Activities::DueAt))
                .col(time_null(Activities::CompletedAt))
                .col(uuid_null(Activities::OwnerId))
                .col(uuid_null(Activities::CreatedBy))
                .col(time(Activities::CreatedAt))
                .col(time(Activities::UpdatedAt))
                .col(time_null(Activities::DeletedAt))
                .check(one_of(
                    Activities::Kind,
                    &["note", "call", "meeting", "task"],
                ))
                .check(one_of(
                    Activities::SubjectType,
                    &["prospect", "relationship", "deal", "ticket"],
                ))
                .primary_key(
                    Index::create()
                        .col(Activities::OrganizationId)
                        .col(Activities::Id),
                )
                .foreign_key(&mut org_fk(Activities::Table, Activities::OrganizationId))
                .foreign_key(&mut member_fk(Activities::Table, Activities::OwnerId))
                .to_owned(),
        )
        .await?;
        // A record's timeline (prospect, relationship, deal or ticket page), newest first.
        m.create_index(index(
            "activities_org_subject_created_idx",
            Activities::Table,
            vec![
                Activities::OrganizationId.into_iden(),
                Activities::SubjectType.into_iden(),
                Activities::SubjectId.into_iden(),
                Activities::CreatedAt.into_iden(),
            ],
        ))
        .await?;
        // A member's to-do list: open (completed_at null) by due date, overdue first; also
        // "completed in a period" for activities_completed targets.
        m.create_index(index(
            "activities_org_owner_completed_due_idx",
            Activities::Table,
            vec![
                Activities::OrganizationId.into_iden(),
                Activities::OwnerId.into_iden(),
                Activities::CompletedAt.into_iden(),
                Activities::DueAt.into_iden(),
            ],
        ))
        .await?;
        // The default list: newest first, keyset on (created_at, id).
        m.create_index(index(
            "activities_org_created_idx",
            Activities::Table,
            vec![
                Activities::OrganizationId.into_iden(),
                Activities::CreatedAt.into_iden(),
                Activities::Id.into_iden(),
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Targets::Table)
                .col(uuid(Targets::OrganizationId))
                .col(uuid(Targets::Id))
                .col(text(Targets::Name, 100))
                .col(text(Targets::Metric, 32))
                .col(json(Targets::UserIds))
                .col(date(Targets::PeriodStart))
                .col(date(Targets::PeriodEnd))
                .col(big_integer(Targets::Goal))
                .col(text_null(Targets::Currency, 3))
                .col(uuid_null(Targets::CreatedBy))
                .col(time(Targets::CreatedAt))
                .col(time(Targets::UpdatedAt))
                .col(time_null(Targets::DeletedAt))
                .check(one_of(
                    Targets::Metric,
                    &["revenue_won", "deals_won", "activities_completed"],
                ))
                .check(Expr::col(Targets::Goal).gt(0))
                .check(Expr::col(Targets::PeriodEnd).gte(Expr::col(Targets::PeriodStart)))
                .primary_key(
                    Index::create()
                        .col(Targets::OrganizationId)
                        .col(Targets::Id),
                )
                .foreign_key(&mut org_fk(Targets::Table, Targets::OrganizationId))
                .to_owned(),
        )
        .await?;
        // The list: newest first, keyset on (created_at, id). Organizations have few
        // targets; no other index is worth its writes.
        m.create_index(index(
            "targets_org_created_idx",
            Targets::Table,
            vec![
                Targets::OrganizationId.into_iden(),
                Targets::CreatedAt.into_iden(),
                Targets::Id.into_iden(),
            ],
        ))
        .await?;

        super::m20261123_000004_row_level_security::protect(
            m,
            &["tickets", "ticket_comments", "activities", "targets"],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Targets::Table.into_iden(),
            Activities::Table.into_iden(),
            TicketComments::Table.into_iden(),
            Tickets::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
