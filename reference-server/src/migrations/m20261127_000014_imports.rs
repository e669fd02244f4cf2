//! CSV imports of prospects and relationships.
//!
//! - `imports`: one row per uploaded file: its kind, header, mapping, duplicate rule,
//!   status (`uploaded` → `queued` → `running` → `completed` | `failed`), progress
//!   (`next_chunk`: the first chunk not yet committed, so a resumed job starts there) and
//!   counts, and the worker's claim (`claimed_until`, `attempts`).
//! - `import_chunks`: the file itself, parsed, in chunks of one batch of data rows (JSON:
//!   `[[row number, [cells…]], …]`), so any server can run the job and a restart resumes it.
//! - `import_errors`: one row per problem of a data row (row number, column, code,
//!   message, the row's original values), for `errors.csv`.
//!
//! Workers look for due jobs across organizations by `(status, claimed_until)`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer as count, integer, json, json_null, string_len as text,
    string_len_null as text_null, text as long_text, text_null as long_text_null,
    timestamp_with_time_zone as time, timestamp_with_time_zone_null as time_null, uuid, uuid_null,
};

use super::m20261123_000004_row_level_security::protect;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Imports {
    Table,
    OrganizationId,
    Id,
    Kind,
    Status,
    Columns,
    Mapping,
    Duplicates,
    OwnerId,
    ActorType,
    ActorId,
    VisibleTo,
    TotalRows,
    ChunkCount,
    NextChunk,
    RowsDone,
    RowsImported,
    RowsUpdated,
    RowsSkippedDuplicate,
    RowsFailed,
    Attempts,
    ClaimedUntil,
    Failure,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum ImportChunks {
    Table,
    OrganizationId,
    ImportId,
    Seq,
    RowCount,
    Rows,
}

#[derive(DeriveIden)]
enum ImportErrors {
    Table,
    OrganizationId,
    ImportId,
    Row,
    Seq,
    Column,
    Code,
    Message,
    Values,
}

fn import_fk(table: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_tbl(table)
        .from_col(Alias::new("organization_id"))
        .from_col(Alias::new("import_id"))
        .to_tbl(Imports::Table)
        .to_col(Imports::OrganizationId)
        .to_col(Imports::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Imports::Table)
                .col(uuid(Imports::OrganizationId))
                .col(uuid(Imports::Id))
                .col(text(Imports::Kind, 16))
                .col(text(Imports::Status, 16))
                .col(json(Imports::Columns))
                .col(json_null(Imports::Mapping))
                .col(text_null(Imports::Duplicates, 8))
                .col(uuid_null(Imports::OwnerId))
                .col(text(Imports::ActorType, 16))
                .col(uuid_null(Imports::ActorId))
                .col(uuid_null(Imports::VisibleTo))
                .col(count(Imports::TotalRows))
                .col(integer(Imports::ChunkCount))
                .col(integer(Imports::NextChunk))
                .col(count(Imports::RowsDone))
                .col(count(Imports::RowsImported))
                .col(count(Imports::RowsUpdated))
                .col(count(Imports::RowsSkippedDuplicate))
                .col(count(Imports::RowsFailed))
                .col(integer(Imports::Attempts))
                .col(time_null(Imports::ClaimedUntil))
                .col(long_text_null(Imports::Failure))
                .col(time(Imports::CreatedAt))
                .col(time(Imports::UpdatedAt))
                .col(time_null(Imports::StartedAt))
                .col(time_null(Imports::CompletedAt))
                .primary_key(
                    Index::create()
                        .col(Imports::OrganizationId)
                        .col(Imports::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Imports::Table, Imports::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("imports_due_idx")
                .table(Imports::Table)
                .col(Imports::Status)
                .col(Imports::ClaimedUntil)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ImportChunks::Table)
                .col(uuid(ImportChunks::OrganizationId))
                .col(uuid(ImportChunks::ImportId))
                .col(integer(ImportChunks::Seq))
                .col(integer(ImportChunks::RowCount))
                .col(long_text(ImportChunks::Rows))
                .primary_key(
                    Index::create()
                        .col(ImportChunks::OrganizationId)
                        .col(ImportChunks::ImportId)
                        .col(ImportChunks::Seq),
                )
                .foreign_key(&mut import_fk(ImportChunks::Table))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ImportErrors::Table)
                .col(uuid(ImportErrors::OrganizationId))
                .col(uuid(ImportErrors::ImportId))
                .col(count(ImportErrors::Row))
                .col(integer(ImportErrors::Seq))
                .col(text_null(ImportErrors::Column, 200))
                .col(text(ImportErrors::Code, 32))
                .col(long_text(ImportErrors::Message))
                .col(json(ImportErrors::Values))
                .primary_key(
                    Index::create()
                        .col(ImportErrors::OrganizationId)
                        .col(ImportErrors::ImportId)
                        .col(ImportErrors::Row)
                        .col(ImportErrors::Seq),
                )
                .foreign_key(&mut import_fk(ImportErrors::Table))
                .to_owned(),
        )
        .await?;
        protect(m, &["imports", "import_chunks", "import_errors"]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["import_errors", "import_chunks", "imports"] {
            m.drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
