//! sea-orm entities: one module per table.
//!
//! Tenant-owned tables have `(organization_id, id)` as their primary key. Queries on them
//! always filter by `organization_id` first (see `crate::identity` and the services).

pub mod activities;
pub mod api_keys;
pub mod audit_log;
pub mod deal_stage_moves;
pub mod deals;
pub mod invitations;
pub mod ledger_entries;
pub mod ledger_holds;
pub mod ledger_idempotency;
pub mod ledger_transfers;
pub mod ledger_wallets;
pub mod memberships;
pub mod organizations;
pub mod pipeline_stages;
pub mod pipelines;
pub mod prospects;
pub mod record_tags;
pub mod refresh_tokens;
pub mod relationships;
pub mod sessions;
pub mod targets;
pub mod ticket_comments;
pub mod tickets;
pub mod usage_counters;
pub mod users;
