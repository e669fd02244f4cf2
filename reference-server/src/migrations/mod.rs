//! Versioned schema migrations, applied in order by `edge-server migrate`.
//!
//! Each migration is a file named `mYYYYMMDD_NNNNNN_what.rs` with `up` and `down`.
//! Migrations are append-only: once released, a migration is never edited; a change is a
//! new migration. The same migrations run on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

mod m20261123_000001_organizations;
mod m20261123_000002_identity;
mod m20261123_000003_ledger;
mod m20261123_000004_row_level_security;
mod m20261123_000005_crm_records;
mod m20261123_000006_pipelines_deals;
mod m20261123_000007_tickets_activities_targets;
mod m20261124_000008_payments;
mod m20261124_000009_plans_subscriptions;
mod m20261125_000010_whatsapp;
mod m20261126_000011_chat;
mod m20261127_000012_event_queue;
mod m20261127_000014_imports;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_organizations::Migration),
            Box::new(m20261123_000002_identity::Migration),
            Box::new(m20261123_000003_ledger::Migration),
            Box::new(m20261123_000004_row_level_security::Migration),
            Box::new(m20261123_000005_crm_records::Migration),
            Box::new(m20261123_000006_pipelines_deals::Migration),
            Box::new(m20261123_000007_tickets_activities_targets::Migration),
            Box::new(m20261124_000008_payments::Migration),
            Box::new(m20261124_000009_plans_subscriptions::Migration),
            Box::new(m20261125_000010_whatsapp::Migration),
            Box::new(m20261126_000011_chat::Migration),
            Box::new(m20261127_000012_event_queue::Migration),
            Box::new(m20261127_000014_imports::Migration),
        ]
    }
}
