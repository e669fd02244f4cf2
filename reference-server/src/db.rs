//! The database connection: SQLite (embedded default) or PostgreSQL.

use std::time::Duration;

use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    IsolationLevel, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait as _;

use crate::config::Config;
use crate::migrations::Migrator;

/// Opens the connection pool described by `config`.
///
/// On PostgreSQL every connection is set to the tenant scope of the task that takes it
/// (see [`crate::tenant_scope`]). For SQLite the database file's directory is created if needed, and every connection
/// uses WAL journaling, foreign keys and a busy timeout, so concurrent writers wait for
/// each other instead of failing.
pub async fn connect(config: &Config) -> Result<DatabaseConnection, DbErr> {
    if config.is_sqlite()
        && let Some(dir) = sqlite_parent_dir(&config.database_url)
    {
        std::fs::create_dir_all(&dir).map_err(|e| {
            DbErr::Custom(format!("cannot create the database directory {dir}: {e}"))
        })?;
    }
    let mut options = ConnectOptions::new(config.database_url.clone());
    options
        .max_connections(config.database_max_connections)
        .min_connections(if config.is_sqlite() { 1 } else { 0 })
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_postgres_pool_opts(|pool| {
            // Every connection handed out carries the tenant scope of the task taking it.
            pool.after_connect(|conn, _| Box::pin(crate::tenant_scope::apply(conn)))
                .before_acquire(|conn, _| {
                    Box::pin(async move { crate::tenant_scope::apply(conn).await.map(|()| true) })
                })
        })
        .map_sqlx_sqlite_opts(|opts| {
            opts.create_if_missing(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
        });
    Database::connect(options).await
}

/// The directory of a `sqlite://path/to/file.db?…` URL, if it has one.
fn sqlite_parent_dir(url: &str) -> Option<String> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    let parent = std::path::Path::new(path).parent()?;
    let parent = parent.to_str()?;
    (!parent.is_empty()).then(|| parent.to_owned())
}

/// Where the schema stands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationState {
    /// Names of applied migrations, oldest first.
    pub applied: Vec<String>,
    /// Names of migrations not yet applied, oldest first.
    pub pending: Vec<String>,
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Reads which migrations are applied and pending, without changing the schema.
pub async fn migration_state(db: &DatabaseConnection) -> Result<MigrationState, DbErr> {
    let all = Migrator::get_migration_with_status_read_only(db).await?;
    let mut state = MigrationState {
        applied: Vec::new(),
        pending: Vec::new(),
    };
    for migration in all {
        match migration.status() {
            sea_orm_migration::MigrationStatus::Applied => {
                state.applied.push(migration.name().to_owned())
            }
            _ => state.pending.push(migration.name().to_owned()),
        }
    }
    Ok(state)
}

/// Checks that the database answers.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// A database failure as the server's error: logged, answered as a generic 500.
pub(crate) fn db_err(err: DbErr) -> edge_core::Error {
    edge_core::Error::internal(err)
}

/// Opens a transaction that will write.
///
/// On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken at once, waiting under the
/// connection's `busy_timeout` for other writers. A deferred `BEGIN` that reads and then
/// writes fails at once with `SQLITE_BUSY` when another connection wrote in between,
/// because SQLite cannot upgrade its stale read snapshot to a write (the busy handler is
/// not called in that case). PostgreSQL keeps a plain `BEGIN`.
///
/// The error is the driver's, so each caller maps it the way it maps its other database
/// errors.
pub(crate) async fn begin_write<C>(db: &C) -> Result<C::Transaction, DbErr>
where
    C: TransactionTrait + ConnectionTrait,
{
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            db.begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
        }
        _ => db.begin().await,
    }
}

/// Opens a read-only transaction whose reads all see one snapshot, so rows written
/// together by one transaction are seen together or not at all.
///
/// On PostgreSQL it is `REPEATABLE READ, READ ONLY` (under the default `READ COMMITTED`
/// each statement sees the data committed when it starts). On SQLite a deferred `BEGIN`
/// already reads from one snapshot, taken at its first read, until it ends.
pub(crate) async fn begin_read<C>(db: &C) -> Result<C::Transaction, DbErr>
where
    C: TransactionTrait + ConnectionTrait,
{
    match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await
        }
        _ => db.begin().await,
    }
}

/// Whether a database error is a unique-constraint violation (a concurrent insert of the
/// same key won).
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_directory_of_a_sqlite_url() {
        assert_eq!(
            sqlite_parent_dir("sqlite://./data/edge.db?mode=rwc").as_deref(),
            Some("./data")
        );
        assert_eq!(
            sqlite_parent_dir("sqlite:/tmp/x/e.db").as_deref(),
            Some("/tmp/x")
        );
        assert_eq!(sqlite_parent_dir("sqlite::memory:"), None);
        assert_eq!(sqlite_parent_dir("sqlite://edge.db"), None);
    }
}
