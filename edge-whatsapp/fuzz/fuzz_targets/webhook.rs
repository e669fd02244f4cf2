//! Arbitrary bytes into the webhook parser (and the signature check over the same bytes).
#![no_main]

use edge_whatsapp::webhook::{parse_events, verify_signature};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = parse_events(data) {
        for event in &events {
            let _ = event.dedup_key();
            let _ = event.routing.tenant_key();
        }
    }
    let secret = SecretString::from("fuzz-secret");
    let header = std::str::from_utf8(data).ok();
    let _ = verify_signature(&secret, header, data);
});
