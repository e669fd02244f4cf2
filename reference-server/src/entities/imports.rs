//! `imports`: one CSV import job per row (see `crate::imports`).

use sea_orm::entity::prelude::*;

/// An import.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "imports")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// The import.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `prospects` or `relationships`.
    pub kind: String,
    /// `uploaded`, `queued`, `running`, `completed` or `failed`.
    pub status: String,
    /// The file's header, in order.
    pub columns: Json,
    /// CSV column → field (or null), once set.
    pub mapping: Option<Json>,
    /// `skip`, `update` or `create`, once set.
    pub duplicates: Option<String>,
    /// Who the created records belong to (the importer).
    pub owner_id: Option<Uuid>,
    /// Who started it, as the audit log names actors: `user`, `api_key`, `operator`.
    pub actor_type: String,
    /// Their id.
    pub actor_id: Option<Uuid>,
    /// When the importer sees only their own records, that user: only those are updated.
    pub visible_to: Option<Uuid>,
    /// Data rows in the file (blank lines excluded).
    pub total_rows: i64,
    /// How many chunks the file was stored in.
    pub chunk_count: i32,
    /// The first chunk not yet committed.
    pub next_chunk: i32,
    /// Rows handled so far.
    pub rows_done: i64,
    /// Records created.
    pub rows_imported: i64,
    /// Existing records updated.
    pub rows_updated: i64,
    /// Duplicates skipped.
    pub rows_skipped_duplicate: i64,
    /// Rows refused.
    pub rows_failed: i64,
    /// How many times a worker took the job.
    pub attempts: i32,
    /// Until when a worker holds it.
    pub claimed_until: Option<DateTimeUtc>,
    /// Why it failed, for people.
    pub failure: Option<String>,
    /// Uploaded.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
    /// Queued by `start`.
    pub started_at: Option<DateTimeUtc>,
    /// Completed or failed.
    pub completed_at: Option<DateTimeUtc>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
