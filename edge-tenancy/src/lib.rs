//! Who is asking and for which tenant.
//!
//! Tenant resolution, roles and permissions, sealed per-tenant credentials, rate limits
//! and usage metering arrive with the tenancy issue; this crate is a placeholder in the
//! workspace until then.
