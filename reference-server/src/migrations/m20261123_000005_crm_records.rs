//! CRM records: prospects (leads), relationships (customers) and record tags.
//!
//! - `prospects` and `relationships` carry the contact (name, company, phones as E.164,
//!   email), the organization's vocabulary values (lead source, industry, services,
//!   milestone, happiness rating), owner or account manager, a money value in minor
//!   units with its currency, tags, custom field values (JSON), and `search_text`: the
//!   lower-cased name, company, email and phone forms that `q=` searches. Deleting is soft
//!   (`deleted_at`): a deleted record keeps its history.
//! - A prospect converted to a relationship points at it (`relationship_id`), and the
//!   relationship at its source prospect (`prospect_id`).
//! - `record_tags`: one row per (record, tag), lower-cased, so `tag=` filters with an
//!   index on every backend; the record's own `tags` column keeps the spelling shown.
//!
//! Indexes (all led by `organization_id`, so each tenant's rows are one contiguous range,
//! and ending in `id`, so keyset pages on `(column, id)` are one index seek):
//! - `(created_at, id)`, `(updated_at, id)` and `(name, id)`: the sort orders;
//! - `(owner_id, created_at, id)` / `(account_manager_id, …)`: "my records" and the
//!   owner filter, also how the `own` visibility setting lists;
//! - `(milestone, created_at, id)` and `(lead_source, created_at, id)` on prospects:
//!   the pipeline filters users click most;
//! - `(phone)` and `(email)`: duplicate matching (imports, inbound WhatsApp);
//! - on PostgreSQL, a trigram GIN index on `search_text` (`pg_trgm`), so a substring
//!   search does not read the whole organization. The planner combines it with the
//!   primary key's organization prefix.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer_null as minor_null, json, string_len as text, string_len_null as text_null,
    text as long_text, timestamp_with_time_zone as time,
    timestamp_with_time_zone_null as time_null, uuid, uuid_null,
};
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

use super::m20261123_000004_row_level_security::protect;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Prospects {
    Table,
    OrganizationId,
    Id,
    Name,
    Company,
    Phone,
    Phones,
    Email,
    LeadSource,
    Industry,
    Services,
    OwnerId,
    Milestone,
    Happiness,
    EstimatedValueMinor,
    Currency,
    Tags,
    Custom,
    SearchText,
    RelationshipId,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Relationships {
    Table,
    OrganizationId,
    Id,
    Name,
    Company,
    Phone,
    Phones,
    Email,
    Industry,
    Services,
    AccountManagerId,
    Happiness,
    ContractValueMinor,
    Currency,
    Tags,
    Custom,
    SearchText,
    ProspectId,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum RecordTags {
    Table,
    OrganizationId,
    RecordType,
    RecordId,
    Tag,
}

fn org_fk(table: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, Alias::new("organization_id"))
        .to(Organizations::Table, Organizations::Id)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

async fn index(
    m: &SchemaManager<'_>,
    table: impl IntoIden,
    name: &str,
    cols: &[&str],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table);
    for col in cols {
        index.col(Alias::new(*col));
    }
    m.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Prospects::Table)
                .col(uuid(Prospects::OrganizationId))
                .col(uuid(Prospects::Id))
                .col(text(Prospects::Name, 200))
                .col(text_null(Prospects::Company, 200))
                .col(text_null(Prospects::Phone, 16))
                .col(json(Prospects::Phones))
                .col(text_null(Prospects::Email, 254))
                .col(text_null(Prospects::LeadSource, 64))
                .col(text_null(Prospects::Industry, 64))
                .col(json(Prospects::Services))
                .col(uuid_null(Prospects::OwnerId))
                .col(text(Prospects::Milestone, 64))
                .col(text_null(Prospects::Happiness, 64))
                .col(minor_null(Prospects::EstimatedValueMinor))
                .col(text(Prospects::Currency, 3))
                .col(json(Prospects::Tags))
                .col(json(Prospects::Custom))
                .col(long_text(Prospects::SearchText))
                .col(uuid_null(Prospects::RelationshipId))
                .col(uuid_null(Prospects::CreatedBy))
                .col(time(Prospects::CreatedAt))
                .col(time(Prospects::UpdatedAt))
                .col(time_null(Prospects::DeletedAt))
                .primary_key(
                    Index::create()
                        .col(Prospects::OrganizationId)
                        .col(Prospects::Id),
                )
                .foreign_key(&mut org_fk(Prospects::Table))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Relationships::Table)
                .col(uuid(Relationships::OrganizationId))
                .col(uuid(Relationships::Id))
                .col(text(Relationships::Name, 200))
                .col(text_null(Relationships::Company, 200))
                .col(text_null(Relationships::Phone, 16))
                .col(json(Relationships::Phones))
                .col(text_null(Relationships::Email, 254))
                .col(text_null(Relationships::Industry, 64))
                .col(json(Relationships::Services))
                .col(uuid_null(Relationships::AccountManagerId))
                .col(text_null(Relationships::Happiness, 64))
                .col(minor_null(Relationships::ContractValueMinor))
                .col(text(Relationships::Currency, 3))
                .col(json(Relationships::Tags))
                .col(json(Relationships::Custom))
                .col(long_text(Relationships::SearchText))
                .col(uuid_null(Relationships::ProspectId))
                .col(uuid_null(Relationships::CreatedBy))
                .col(time(Relationships::CreatedAt))
                .col(time(Relationships::UpdatedAt))
                .col(time_null(Relationships::DeletedAt))
                .primary_key(
                    Index::create()
                        .col(Relationships::OrganizationId)
                        .col(Relationships::Id),
                )
                .foreign_key(&mut org_fk(Relationships::Table))
                .foreign_key(
                    &mut ForeignKey::create()
                        .from_tbl(Relationships::Table)
                        .from_col(Relationships::OrganizationId)
                        .from_col(Relationships::ProspectId)
                        .to_tbl(Prospects::Table)
                        .to_col(Prospects::OrganizationId)
                        .to_col(Prospects::Id)
                        .on_delete(ForeignKeyAction::Restrict)
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RecordTags::Table)
                .col(uuid(RecordTags::OrganizationId))
                .col(text(RecordTags::RecordType, 16))
                .col(uuid(RecordTags::RecordId))
                .col(text(RecordTags::Tag, 64))
                .primary_key(
                    Index::create()
                        .col(RecordTags::OrganizationId)
                        .col(RecordTags::RecordType)
                        .col(RecordTags::Tag)
                        .col(RecordTags::RecordId),
                )
                .foreign_key(&mut org_fk(RecordTags::Table))
                .to_owned(),
        )
        .await?;

        for (table, sorts) in [
            ("prospects", &["owner_id", "milestone", "lead_source"][..]),
            ("relationships", &["account_manager_id"][..]),
        ] {
            for col in ["created_at", "updated_at", "name"] {
                index(
                    m,
                    Alias::new(table),
                    &format!("{table}_org_{col}_idx"),
                    &["organization_id", col, "id"],
                )
                .await?;
            }
            for col in sorts {
                index(
                    m,
                    Alias::new(table),
                    &format!("{table}_org_{col}_idx"),
                    &["organization_id", col, "created_at", "id"],
                )
                .await?;
            }
            for col in ["phone", "email"] {
                index(
                    m,
                    Alias::new(table),
                    &format!("{table}_org_{col}_idx"),
                    &["organization_id", col],
                )
                .await?;
            }
        }
        index(
            m,
            RecordTags::Table,
            "record_tags_record_idx",
            &["organization_id", "record_type", "record_id"],
        )
        .await?;

        if m.get_database_backend() == DatabaseBackend::Postgres {
            let db = m.get_connection();
            db.execute_unprepared(
                "CREATE EXTENSION IF NOT EXISTS pg_trgm;
                 CREATE INDEX prospects_search_trgm_idx ON prospects
                   USING gin (search_text gin_trgm_ops);
                 CREATE INDEX relationships_search_trgm_idx ON relationships
                   USING gin (search_text gin_trgm_ops);",
            )
            .await?;
        }
        protect(m, &["prospects", "relationships", "record_tags"]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["record_tags", "relationships", "prospects"] {
            m.drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
