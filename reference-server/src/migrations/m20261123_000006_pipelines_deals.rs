//! Pipelines, their stages, deals and the history of deals' stage moves.
//!
//! - `pipelines`: an organization's sales processes. At most one active pipeline per
//!   organization is the default (a partial unique index); deals created without a
//!   pipeline go there. Archived pipelines keep their rows (`archived_at`).
//! - `pipeline_stages`: the ordered columns of a pipeline (`position`, 0-based among the
//!   active stages), each with an optional win probability (0–100). Archived stages keep
//!   their rows, so a deal or a move that refers to one still reads its name.
//! - `deals`: an opportunity in a pipeline stage, with its value (`value_minor` in
//!   `currency`), status (`open`, `won`, `lost`; `closed_at` is set exactly when the
//!   status is not `open`), owner, tags, custom field values and `board_rank`, the order
//!   of cards within a stage column (ranks have gaps so a card moves with one update).
//!   `search_text` is the lower-cased title that `q=` searches. A deal is deleted softly
//!   (`deleted_at`); its tags are also in `record_tags` (type `deal`) for the `tag=`
//!   filter. A composite foreign key `(organization_id, pipeline_id, stage_id)` makes a
//!   deal's stage always belong to its pipeline; `(organization_id, owner_id)` references
//!   a membership, so the owner is always a member of the organization;
//!   `(organization_id, prospect_id)` and `(organization_id, relationship_id)` reference
//!   the prospect or relationship the deal is with.
//! - `deal_stage_moves`: one row per stage change of a deal (the first placement has no
//!   `from_stage_id`). Rows are only inserted.
//!
//! Primary keys and foreign keys all start with `organization_id`; the foreign keys to
//! `organizations` restrict deletion. Every organization that exists when this migration
//! runs gets the default "Sales" pipeline new organizations are created with.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer as minor, boolean, date_null, integer, integer_null, json, string_len as text,
    string_len_null as text_null, timestamp_with_time_zone as time,
    timestamp_with_time_zone_null as time_null, uuid, uuid_null,
};
use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::sea_orm::prelude::Uuid;

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
}

#[derive(DeriveIden)]
enum Relationships {
    Table,
    OrganizationId,
    Id,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    OrganizationId,
    UserId,
}

#[derive(DeriveIden)]
enum Pipelines {
    Table,
    OrganizationId,
    Id,
    Name,
    Position,
    IsDefault,
    CreatedAt,
    UpdatedAt,
    ArchivedAt,
}

#[derive(DeriveIden)]
enum PipelineStages {
    Table,
    OrganizationId,
    Id,
    PipelineId,
    Name,
    Position,
    Probability,
    CreatedAt,
    UpdatedAt,
    ArchivedAt,
}

#[derive(DeriveIden)]
enum Deals {
    Table,
    OrganizationId,
    Id,
    PipelineId,
    StageId,
    Title,
    ValueMinor,
    Currency,
    ProspectId,
    RelationshipId,
    OwnerId,
    Status,
    CloseReason,
    ClosedAt,
    ExpectedCloseOn,
    BoardRank,
    Tags,
    Custom,
    SearchText,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum DealStageMoves {
    Table,
    OrganizationId,
    Id,
    DealId,
    FromStageId,
    ToStageId,
    MovedBy,
    MovedAt,
}

/// The default pipeline's stages and their win probabilities (as in `crm::pipelines`).
const DEFAULT_STAGES: [(&str, i32); 4] = [
    ("Qualification", 10),
    ("Proposal", 40),
    ("Negotiation", 70),
    ("Closing", 90),
];

/// `organization_id` referencing organizations; an organization with CRM data is not
/// deleted from under it.
fn org_fk(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Organizations::Table, Organizations::Id)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

/// A composite foreign key `(from…) -> to(to…)` that restricts deletion.
fn fk(
    from: impl IntoIden,
    from_cols: &[DynIden],
    to: impl IntoIden,
    to_cols: &[DynIden],
) -> ForeignKeyCreateStatement {
    let mut key = ForeignKey::create();
    key.from_tbl(from).to_tbl(to);
    for col in from_cols {
        key.from_col(col.clone());
    }
    for col in to_cols {
        key.to_col(col.clone());
    }
    key.on_delete(ForeignKeyAction::Restrict).to_owned()
}

fn index(name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for col in cols {
        index.col(col);
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Pipelines::Table)
                .col(uuid(Pipelines::OrganizationId))
                .col(uuid(Pipelines::Id))
                .col(text(Pipelines::Name, 100))
                .col(integer(Pipelines::Position))
                .col(boolean(Pipelines::IsDefault).default(false))
                .col(time(Pipelines::CreatedAt))
                .col(time(Pipelines::UpdatedAt))
                .col(time_null(Pipelines::ArchivedAt))
                .primary_key(
                    Index::create()
                        .col(Pipelines::OrganizationId)
                        .col(Pipelines::Id),
                )
                .foreign_key(&mut org_fk(Pipelines::Table, Pipelines::OrganizationId))
                .to_owned(),
        )
        .await?;
        // At most one active default pipeline per organization.
        m.create_index(
            index(
                "pipelines_default_key",
                Pipelines::Table,
                vec![Pipelines::OrganizationId.into_iden()],
            )
            .unique()
            .and_where(Expr::col(Pipelines::IsDefault).eq(true))
            .and_where(Expr::col(Pipelines::ArchivedAt).is_null())
            .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(PipelineStages::Table)
                .col(uuid(PipelineStages::OrganizationId))
                .col(uuid(PipelineStages::Id))
                .col(uuid(PipelineStages::PipelineId))
                .col(text(PipelineStages::Name, 100))
                .col(integer(PipelineStages::Position))
                .col(integer_null(PipelineStages::Probability))
                .col(time(PipelineStages::CreatedAt))
                .col(time(PipelineStages::UpdatedAt))
                .col(time_null(PipelineStages::ArchivedAt))
                .check(Expr::cust(
                    "probability IS NULL OR (probability >= 0 AND probability <= 100)",
                ))
                .primary_key(
                    Index::create()
                        .col(PipelineStages::OrganizationId)
                        .col(PipelineStages::Id),
                )
                .foreign_key(&mut org_fk(
                    PipelineStages::Table,
                    PipelineStages::OrganizationId,
                ))
                .foreign_key(&mut fk(
                    PipelineStages::Table,
                    &[
                        PipelineStages::OrganizationId.into_iden(),
                        PipelineStages::PipelineId.into_iden(),
                    ],
                    Pipelines::Table,
                    &[
                        Pipelines::OrganizationId.into_iden(),
                        Pipelines::Id.into_iden(),
                    ],
                ))
                .to_owned(),
        )
        .await?;
        // A pipeline's stages in order; also the target of the deals' composite foreign
        // key `(organization_id, pipeline_id, stage_id)`, which needs a unique key.
        m.create_index(
            index(
                "pipeline_stages_pipeline_key",
                PipelineStages::Table,
                vec![
                    PipelineStages::OrganizationId.into_iden(),
                    PipelineStages::PipelineId.into_iden(),
                    PipelineStages::Id.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        m.create_index(index(
            "pipeline_stages_position_idx",
            PipelineStages::Table,
            vec![
                PipelineStages::OrganizationId.into_iden(),
                PipelineStages::PipelineId.into_iden(),
                PipelineStages::Position.into_iden(),
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Deals::Table)
                .col(uuid(Deals::OrganizationId))
                .col(uuid(Deals::Id))
                .col(uuid(Deals::PipelineId))
                .col(uuid(Deals::StageId))
                .col(text(Deals::Title, 200))
                .col(minor(Deals::ValueMinor).default(0))
                .col(text(Deals::Currency, 3))
                .col(uuid_null(Deals::ProspectId))
                .col(uuid_null(Deals::RelationshipId))
                .col(uuid_null(Deals::OwnerId))
                .col(text(Deals::Status, 8).default("open"))
                .col(text_null(Deals::CloseReason, 500))
                .col(time_null(Deals::ClosedAt))
                .col(date_null(Deals::ExpectedCloseOn))
                .col(minor(Deals::BoardRank))
                .col(json(Deals::Tags))
                .col(json(Deals::Custom))
                .col(text(Deals::SearchText, 200))
                .col(uuid_null(Deals::CreatedBy))
                .col(time(Deals::CreatedAt))
                .col(time(Deals::UpdatedAt))
                .col(time_null(Deals::DeletedAt))
                .check(Expr::col(Deals::ValueMinor).gte(0))
                .check(Expr::col(Deals::Status).is_in(["open", "won", "lost"]))
                .check(Expr::cust(
                    "(status = 'open' AND closed_at IS NULL) \
                     OR (status <> 'open' AND closed_at IS NOT NULL)",
                ))
                .primary_key(Index::create().col(Deals::OrganizationId).col(Deals::Id))
                .foreign_key(&mut org_fk(Deals::Table, Deals::OrganizationId))
                .foreign_key(&mut fk(
                    Deals::Table,
                    &[
                        Deals::OrganizationId.into_iden(),
                        Deals::PipelineId.into_iden(),
                    ],
                    Pipelines::Table,
                    &[
                        Pipelines::OrganizationId.into_iden(),
                        Pipelines::Id.into_iden(),
                    ],
                ))
                .foreign_key(&mut fk(
                    Deals::Table,
                    &[
                        Deals::OrganizationId.into_iden(),
                        Deals::PipelineId.into_iden(),
                        Deals::StageId.into_iden(),
                    ],
                    PipelineStages::Table,
                    &[
                        PipelineStages::OrganizationId.into_iden(),
                        PipelineStages::PipelineId.into_iden(),
                        PipelineStages::Id.into_iden(),
                    ],
                ))
                .foreign_key(&mut fk(
                    Deals::Table,
                    &[
                        Deals::OrganizationId.into_iden(),
                        Deals::ProspectId.into_iden(),
                    ],
                    Prospects::Table,
                    &[
                        Prospects::OrganizationId.into_iden(),
                        Prospects::Id.into_iden(),
                    ],
                ))
                .foreign_key(&mut fk(
                    Deals::Table,
                    &[
                        Deals::OrganizationId.into_iden(),
                        Deals::RelationshipId.into_iden(),
                    ],
                    Relationships::Table,
                    &[
                        Relationships::OrganizationId.into_iden(),
                        Relationships::Id.into_iden(),
                    ],
                ))
                .foreign_key(&mut fk(
                    Deals::Table,
                    &[
                        Deals::OrganizationId.into_iden(),
                        Deals::OwnerId.into_iden(),
                    ],
                    Memberships::Table,
                    &[
                        Memberships::OrganizationId.into_iden(),
                        Memberships::UserId.into_iden(),
                    ],
                ))
                .to_owned(),
        )
        .await?;
        // The board: one stage column's cards in rank order, and the neighbours of a rank
        // when a card is placed between two others.
        m.create_index(index(
            "deals_board_idx",
            Deals::Table,
            vec![
                Deals::OrganizationId.into_iden(),
                Deals::StageId.into_iden(),
                Deals::BoardRank.into_iden(),
                Deals::Id.into_iden(),
            ],
        ))
        .await?;
        // Lists in creation order with keyset pagination on `(created_at, id)`.
        m.create_index(index(
            "deals_created_idx",
            Deals::Table,
            vec![
                Deals::OrganizationId.into_iden(),
                Deals::CreatedAt.into_iden(),
                Deals::Id.into_iden(),
            ],
        ))
        .await?;
        // The other list orders: recently changed, and biggest (or smallest) first.
        m.create_index(index(
            "deals_updated_idx",
            Deals::Table,
            vec![
                Deals::OrganizationId.into_iden(),
                Deals::UpdatedAt.into_iden(),
                Deals::Id.into_iden(),
            ],
        ))
        .await?;
        m.create_index(index(
            "deals_value_idx",
            Deals::Table,
            vec![
                Deals::OrganizationId.into_iden(),
                Deals::ValueMinor.into_iden(),
                Deals::Id.into_iden(),
            ],
        ))
        .await?;
        // A prospect's or relationship's deals (their pages, the list filters); also what
        // the foreign keys to them look up.
        m.create_index(index(
            "deals_prospect_idx",
            Deals::Table,
            vec![
                Deals::OrganizationId.into_iden(),
                Deals::ProspectId.into_iden(),
            ],
        ))
        .await?;
        m.create_index(index(
            "deals_relationship_idx",
            Deals::Table,
            vec![
                Deals::OrganizationId.into_iden(),
                Deals::RelationshipId.into_iden(),
            ],
        ))
        .await?;
        // "My deals" and the `own` record visibility: one owner's deals in creation order.
        m.create_index(index(
            "deals_owner_created_idx",
            Deals::Table,
            vec![
                Deals::OrganizationId.into_iden(),
                Deals::OwnerId.into_iden(),
                Deals::CreatedAt.into_iden(),
                Deals::Id.into_iden(),
            ],
        ))
        .await?;
        // A pipeline's open deals (archiving a pipeline checks there are none; the
        // `pipeline_id` list filter).
        m.create_index(index(
            "deals_pipeline_status_idx",
            Deals::Table,
            vec![
                Deals::OrganizationId.into_iden(),
                Deals::PipelineId.into_iden(),
                Deals::Status.into_iden(),
            ],
        ))
        .await?;
        // Won deals by the time they closed: targets and revenue reports.
        m.create_index(index(
            "deals_status_closed_idx",
            Deals::Table,
            vec![
                Deals::OrganizationId.into_iden(),
                Deals::Status.into_iden(),
                Deals::ClosedAt.into_iden(),
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(DealStageMoves::Table)
                .col(uuid(DealStageMoves::OrganizationId))
                .col(uuid(DealStageMoves::Id))
                .col(uuid(DealStageMoves::DealId))
                .col(uuid_null(DealStageMoves::FromStageId))
                .col(uuid(DealStageMoves::ToStageId))
                .col(uuid_null(DealStageMoves::MovedBy))
                .col(time(DealStageMoves::MovedAt))
                .primary_key(
                    Index::create()
                        .col(DealStageMoves::OrganizationId)
                        .col(DealStageMoves::Id),
                )
                .foreign_key(&mut org_fk(
                    DealStageMoves::Table,
                    DealStageMoves::OrganizationId,
                ))
                .foreign_key(&mut fk(
                    DealStageMoves::Table,
                    &[
                        DealStageMoves::OrganizationId.into_iden(),
                        DealStageMoves::DealId.into_iden(),
                    ],
                    Deals::Table,
                    &[Deals::OrganizationId.into_iden(), Deals::Id.into_iden()],
                ))
                .foreign_key(&mut fk(
                    DealStageMoves::Table,
                    &[
                        DealStageMoves::OrganizationId.into_iden(),
                        DealStageMoves::FromStageId.into_iden(),
                    ],
                    PipelineStages::Table,
                    &[
                        PipelineStages::OrganizationId.into_iden(),
                        PipelineStages::Id.into_iden(),
                    ],
                ))
                .foreign_key(&mut fk(
                    DealStageMoves::Table,
                    &[
                        DealStageMoves::OrganizationId.into_iden(),
                        DealStageMoves::ToStageId.into_iden(),
                    ],
                    PipelineStages::Table,
                    &[
                        PipelineStages::OrganizationId.into_iden(),
                        PipelineStages::Id.into_iden(),
                    ],
                ))
                .to_owned(),
        )
        .await?;
        // A deal's history in time order.
        m.create_index(index(
            "deal_stage_moves_deal_idx",
            DealStageMoves::Table,
            vec![
                DealStageMoves::OrganizationId.into_iden(),
                DealStageMoves::DealId.into_iden(),
                DealStageMoves::MovedAt.into_iden(),
            ],
        ))
        .await?;

        // `q=` is a substring search: on PostgreSQL a trigram index answers it without
        // reading every deal of the organization (`pg_trgm` comes with migration 000005).
        if m.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
            m.get_connection()
                .execute_unprepared(
                    "CREATE EXTENSION IF NOT EXISTS pg_trgm;
                     CREATE INDEX deals_search_trgm_idx ON deals
                       USING gin (search_text gin_trgm_ops);",
                )
                .await?;
        }

        default_pipelines_for_existing_organizations(m).await?;

        super::m20261123_000004_row_level_security::protect(
            m,
            &["pipelines", "pipeline_stages", "deals", "deal_stage_moves"],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DealStageMoves::Table.into_iden(),
            Deals::Table.into_iden(),
            PipelineStages::Table.into_iden(),
            Pipelines::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// Gives every organization that exists already the default pipeline that new
/// organizations get when they are created.
async fn default_pipelines_for_existing_organizations(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = m.get_connection();
    let select = Query::select()
        .column(Organizations::Id)
        .from(Organizations::Table)
        .to_owned();
    let rows = db.query_all(&select).await?;
    let now = edge_core::Clock::now(&edge_core::SystemClock);
    for row in rows {
        let org: Uuid = row.try_get("", "id")?;
        let pipeline = Uuid::now_v7();
        let insert = Query::insert()
            .into_table(Pipelines::Table)
            .columns([
                Pipelines::OrganizationId,
                Pipelines::Id,
                Pipelines::Name,
                Pipelines::Position,
                Pipelines::IsDefault,
                Pipelines::CreatedAt,
                Pipelines::UpdatedAt,
            ])
            .values([
                org.into(),
                pipeline.into(),
                "Sales".into(),
                0.into(),
                true.into(),
                now.into(),
                now.into(),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .to_owned();
        db.execute(&insert).await?;
        for (position, (name, probability)) in (0_i32..).zip(DEFAULT_STAGES) {
            let insert = Query::insert()
                .into_table(PipelineStages::Table)
                .columns([
                    PipelineStages::OrganizationId,
                    PipelineStages::Id,
                    PipelineStages::PipelineId,
                    PipelineStages::Name,
                    PipelineStages::Position,
                    PipelineStages::Probability,
                    PipelineStages::CreatedAt,
                    PipelineStages::UpdatedAt,
                ])
                .values([
                    org.into(),
                    Uuid::now_v7().into(),
                    pipeline.into(),
                    name.into(),
                    position.into(),
                    probability.into(),
                    now.into(),
                    now.into(),
                ])
                .map_err(|e| DbErr::Custom(e.to_string()))?
                .to_owned();
            db.execute(&insert).await?;
        }
    }
    Ok(())
}
