//! The one integration-test binary of edge-whatsapp.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_errors;
#[cfg(feature = "test-util")]
mod fake_graph;
mod handshake;
mod numbers;
mod parsing;
mod properties;
mod signature;
mod support;
#[cfg(feature = "test-util")]
mod wire;
