//! sea-orm entities: one module per table.
//!
//! Tenant-owned tables have `(organization_id, id)` as their primary key. Queries on them
//! always filter by `organization_id` first (see `crate::identity` and the services).

pub mod activities;
pub mod api_keys;
pub mod audit_log;
pub mod chat_messages;
pub mod chat_participants;
pub mod deal_stage_moves;
pub mod deals;
pub mod event_queue;
pub mod events;
pub mod import_chunks;
pub mod import_errors;
pub mod imports;
pub mod invitations;
pub mod ledger_entries;
pub mod ledger_holds;
pub mod ledger_idempotency;
pub mod ledger_transfers;
pub mod ledger_wallets;
pub mod memberships;
pub mod mpesa_callback_tokens;
pub mod mpesa_callbacks;
pub mod mpesa_requests;
pub mod mpesa_settings;
pub mod organizations;
pub mod payments;
pub mod pipeline_stages;
pub mod pipelines;
pub mod plans;
pub mod prospects;
pub mod record_tags;
pub mod refresh_tokens;
pub mod relationships;
pub mod sessions;
pub mod subscription_periods;
pub mod subscriptions;
pub mod targets;
pub mod ticket_comments;
pub mod tickets;
pub mod usage_counters;
pub mod users;
pub mod whatsapp_conversations;
pub mod whatsapp_message_statuses;
pub mod whatsapp_messages;
pub mod whatsapp_numbers;
pub mod whatsapp_webhooks;
