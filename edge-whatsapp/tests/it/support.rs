//! Shared fixtures and helpers.
#![cfg_attr(not(feature = "test-util"), allow(dead_code))]

use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

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
pub const ERROR_UNKNOWN_OBJECT: &str = include_str!("../data/error_unknown_object.json");
pub const PHONE_NUMBER: &str = include_str!("../data/phone_number.json");

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

/// A one-response-fits-all HTTP/1.1 server on port 0 that records raw requests.
pub struct Canned {
    pub url: String,
    pub requests: Arc<Mutex<Vec<String>>>,
}

pub async fn canned(status: u16, body: &'static str, respond: bool) -> Canned {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            seen.lock().unwrap().push(text);
                            break;
                        }
                    }
                }
                if !respond {
                    // Hold the connection open without answering.
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                let response = format!(
                    "HTTP/1.1 {status} Canned\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    Canned { url, requests }
}
