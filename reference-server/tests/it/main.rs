//! Integration tests for the reference server. Every server test runs against a fresh
//! SQLite database and, when `EDGE_TEST_DATABASE_URL` is set, against a fresh PostgreSQL
//! database created for that test (see `helpers`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod activities;
mod analytics;
mod auth;
mod automation;
mod billing;
mod chat_cluster;
mod chat_isolation;
mod chat_rest;
mod chat_socketio;
mod cli_process;
mod concurrency;
mod crm_support;
mod deals;
mod demo;
mod errors;
mod exports;
mod fake_daraja_cli;
mod fake_whatsapp_cli;
mod health;
mod imports;
mod ledger;
mod lifecycle;
mod notifications;
mod openapi;
mod payments;
mod payments_c2b;
mod payments_inbox;
mod prospects;
mod rate_limits;
mod record_events;
mod request_id;
mod socket_client;
mod targets;
mod tenancy;
mod tickets;
mod wallet;
mod webhooks;
mod whatsapp;
