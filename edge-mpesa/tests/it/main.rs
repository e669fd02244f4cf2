//! The one integration-test binary of edge-mpesa.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod callbacks;
mod fake;
mod fake_c2b;
mod props;
mod security;
mod support;
mod wire;
