//! Examples for the Edge crates live under `examples/`; run one with
//! `cargo run -p edge-examples --example NAME`.
