//! PostgreSQL row-level security: a second wall behind the application's own scoping.
//!
//! Every table with an `organization_id` column gets a policy that shows and accepts only
//! rows of the organization named in the transaction's `edge.organization_id` setting
//! (`SET LOCAL edge.organization_id = '…'`), or every row when `edge.cross_tenant` is
//! `on` (for the few lookups that are cross-tenant by design: login by email, refresh
//! token and API key lookups, operator routes). A query run without either setting sees
//! no rows at all.
//!
//! Table owners and superusers bypass row-level security (the owner is not forced, so
//! migrations and owner connections keep working), so the wall applies to a runtime role
//! that is neither: create one, grant it the tables, and connect the server as it. SQLite
//! has no row-level security: this migration does nothing there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

/// Enables row-level security on every tenant table (PostgreSQL only).
#[derive(DeriveMigrationName)]
pub struct Migration;

/// The policy's name on every table.
const POLICY: &str = "edge_tenant_isolation";

async fn tenant_tables(manager: &SchemaManager<'_>) -> Result<Vec<String>, DbErr> {
    let db = manager.get_connection();
    let rows = db
        .query_all_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT table_name::text AS t FROM information_schema.columns \
             WHERE column_name = 'organization_id' AND table_schema = current_schema() \
             ORDER BY table_name",
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get::<String>("", "t"))
        .collect()
}

/// Enables row-level security with the tenant policy on `tables` (PostgreSQL only; does
/// nothing on SQLite). Later migrations call this for the tenant tables they create.
pub(super) async fn protect<T: AsRef<str>>(
    manager: &SchemaManager<'_>,
    tables: &[T],
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let db = manager.get_connection();
    for table in tables {
        let table = table.as_ref();
        db.execute_unprepared(&format!(
            "ALTER TABLE \"{table}\" ENABLE ROW LEVEL SECURITY;
             CREATE POLICY {POLICY} ON \"{table}\"
               USING (
                 organization_id::text = current_setting('edge.organization_id', true)
                 OR current_setting('edge.cross_tenant', true) = 'on'
               )
               WITH CHECK (
                 organization_id::text = current_setting('edge.organization_id', true)
                 OR current_setting('edge.cross_tenant', true) = 'on'
               );"
        ))
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let tables = tenant_tables(manager).await?;
        protect(manager, &tables).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for table in tenant_tables(manager).await? {
            db.execute_unprepared(&format!(
                "DROP POLICY IF EXISTS {POLICY} ON \"{table}\";
                 ALTER TABLE \"{table}\" DISABLE ROW LEVEL SECURITY;"
            ))
            .await?;
        }
        Ok(())
    }
}
