//! The one integration-test binary of edge-tenancy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apikeys;
#[cfg(feature = "axum")]
mod axum_integration;
mod jwt;
mod permissions;
mod props;
mod ratelimit;
#[cfg(feature = "redis")]
mod redis_ratelimit;
mod resolver;
mod seal;
mod support;
mod usage;
