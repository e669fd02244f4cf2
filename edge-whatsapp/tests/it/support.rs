//! Shared fixtures and helpers.
#![cfg_attr(not(feature = "test-util"), allow(dead_code))]

use std::sync::Once;

use secrecy::SecretString;

pub const INBOUND_TEXT: &str = include_str!("../data/webhook_inbound_text.json");
pub const STATUS_SENT: &str = include_str!("../data/webhook_status_sent.json");
pub const STATUS_DELIVERED: &str = include_str!("../data/webhook_status_delivered.json");
pub const STATUS_FAILED: &str = include_str!("../data/webhook_status_failed.json");
pub const TWO_NUMBERS: &str = include_str!("../data/webhook_two_numbers_one_batch.json");
pub const SEND_TEXT_REQUEST: &str = include_str!("../data/send_text_request.json");
pub const SEND_TEMPLATE_REQUEST: &str = include_str!("../data/send_template_request.json");
pub const SEND_RESPONSE: &str = include_str!("../data/send_response.json");
pub const ERROR_RATE_LIMITED: &str = include_str!("../data/error_rate_limited.json");
pub const ERROR_REENGAGEMENT: &str = include_str!("../data/error_reengagement.json");
pub const ERROR_INVALID_TOKEN: &str = include_str!("../data/error_invalid_token.json");

/// Every webhook fixture.
pub const WEBHOOK_FIXTURES: [(&str, &str); 5] = [
    ("webhook_inbound_text.json", INBOUND_TEXT),
    ("webhook_status_sent.json", STATUS_SENT),
    ("webhook_status_delivered.json", STATUS_DELIVERED),
    ("webhook_status_failed.json", STATUS_FAILED),
    ("webhook_two_numbers_one_batch.json", TWO_NUMBERS),
];

/// From `webhook_signature_example.md`.
pub const APP_SECRET: &str = "9b1e4c7a2f6d3e8b5a0c1d2e3f4a5b6c";
pub const EXPECTED_SIGNATURE: &str =
    "sha256=e13aa9c676b6eda1c7e5a1516aa0c0631e2b0df95fcca511a2064277acb528dd";

pub const TENANT_A_PNID: &str = "113057248966301";
pub const TENANT_A_WABA: &str = "184630927512044";
pub const TENANT_B_PNID: &str = "120488736105527";
pub const TENANT_B_WABA: &str = "197245803316659";

pub fn app_secret() -> SecretString {
    SecretString::from(APP_SECRET)
}

/// reqwest is built with `rustls-no-provider`; tests that build their own reqwest client
/// install the ring provider once. (The SDK itself configures ring on its client and needs
/// nothing installed.)
pub fn install_ring() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub fn raw_http_client() -> reqwest::Client {
    install_ring();
    reqwest::Client::builder().build().unwrap()
}
