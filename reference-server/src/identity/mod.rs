//! Identity: accounts, logins, sessions and the stores the tenant resolver reads.
//!
//! - [`auth`]: sign-up, login, refresh-token rotation, logout, password change, switching
//!   organization;
//! - [`stores`]: sea-orm implementations of `edge-tenancy`'s directory, session and API
//!   key stores, so every request is resolved against the database;
//! - [`passwords`] and [`tokens`]: argon2id hashing and opaque tokens.

pub mod api_keys;
pub mod auth;
pub mod members;
pub mod operator;
pub mod organization;
pub mod passwords;
pub mod stores;
pub mod tokens;

use edge_tenancy::PlanLimits;

/// The rate limits and quotas of a plan.
pub fn plan_limits(plan: &str) -> PlanLimits {
    match plan {
        "free" => PlanLimits {
            requests_per_minute: 60,
            request_burst: 20,
            max_members: 3,
            max_api_keys: 1,
            monthly_messages: Some(200),
        },
        "enterprise" => PlanLimits {
            requests_per_minute: 3000,
            request_burst: 500,
            max_members: 1000,
            max_api_keys: 50,
            monthly_messages: None,
        },
        "platform" => PlanLimits {
            requests_per_minute: 6000,
            request_burst: 1000,
            max_members: 100,
            max_api_keys: 10,
            monthly_messages: None,
        },
        // "standard" and anything unknown.
        _ => PlanLimits {
            requests_per_minute: 600,
            request_burst: 100,
            max_members: 25,
            max_api_keys: 10,
            monthly_messages: Some(10_000),
        },
    }
}

/// The plans an operator may assign.
pub const PLANS: [&str; 4] = ["free", "standard", "enterprise", "platform"];
