//! Identity: accounts, logins, sessions and the stores the tenant resolver reads.
//!
//! - [`auth`]: sign-up, login, refresh-token rotation, logout, password change, switching
//!   organization;
//! - [`stores`]: sea-orm implementations of `edge-tenancy`'s directory, session and API
//!   key stores, so every request is resolved against the database (an organization's
//!   limits come from its subscription's plan, see `crate::billing`);
//! - [`passwords`] and [`tokens`]: argon2id hashing and opaque tokens.

pub mod api_keys;
pub mod auth;
pub mod members;
pub mod operator;
pub mod organization;
pub mod passwords;
pub mod stores;
pub mod tokens;
