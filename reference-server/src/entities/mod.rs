//! sea-orm entities: one module per table.
//!
//! Tenant-owned tables have `(organization_id, id)` as their primary key. Queries on them
//! always filter by `organization_id` first (see `crate::identity` and the services).

pub mod api_keys;
pub mod audit_log;
pub mod invitations;
pub mod memberships;
pub mod organizations;
pub mod refresh_tokens;
pub mod sessions;
pub mod usage_counters;
pub mod users;
