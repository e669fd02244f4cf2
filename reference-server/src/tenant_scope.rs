//! Which organization's rows the database shows to the code running now.
//!
//! On PostgreSQL every tenant table has a row-level security policy (see the
//! `row_level_security` migration). Each pooled connection, whenever it is handed out,
//! gets `edge.organization_id` and `edge.cross_tenant` set from the scope of the task that
//! takes it:
//!
//! - inside [`in_organization`], only that organization's rows are visible or writable;
//! - inside [`cross_tenant`], every row is (for lookups that are cross-tenant by design:
//!   login by email, refresh tokens, API keys, a user's memberships, operator routes);
//! - outside any scope, none are.
//!
//! The HTTP API runs each authenticated request in its organization's scope, so a query
//! that forgot its `organization_id` filter still cannot see another tenant's rows when
//! the server connects as a runtime role that does not own the tables. On SQLite the scope
//! has no effect.

use std::future::Future;

use edge_core::OrgId;
use sea_orm::sqlx;

tokio::task_local! {
    static SCOPE: Scope;
}

/// A task's view of the tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One organization's rows.
    Organization(OrgId),
    /// Every organization's rows.
    CrossTenant,
}

/// Runs `work` seeing only `org`'s rows.
pub async fn in_organization<F: Future>(org: OrgId, work: F) -> F::Output {
    SCOPE.scope(Scope::Organization(org), work).await
}

/// Runs `work` seeing every organization's rows.
pub async fn cross_tenant<F: Future>(work: F) -> F::Output {
    SCOPE.scope(Scope::CrossTenant, work).await
}

/// The scope of the running task, if any.
pub fn current() -> Option<Scope> {
    SCOPE.try_with(|scope| *scope).ok()
}

/// Applies the running task's scope to a PostgreSQL connection being handed out.
pub(crate) async fn apply(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let (org, cross) = match current() {
        Some(Scope::Organization(org)) => (org.to_string(), "off"),
        Some(Scope::CrossTenant) => (String::new(), "on"),
        None => (String::new(), "off"),
    };
    sqlx::query("SELECT set_config('edge.organization_id', $1, false), set_config('edge.cross_tenant', $2, false)")
        .bind(org)
        .bind(cross)
        .execute(conn)
        .await
        .map(|_| ())
}
