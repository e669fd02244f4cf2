//! `X-Hub-Signature-256` over the raw bytes, with the published test vector.

use edge_whatsapp::webhook::{
    SignatureError, WebhookVerifier, sign, verify_signature, verify_signature_headers,
};
use http::{HeaderMap, HeaderValue};
use secrecy::SecretString;

use crate::support::*;

#[test]
fn the_test_vector_verifies() {
    let body = INBOUND_TEXT.as_bytes();
    assert_eq!(
        body.len(),
        626,
        "the fixture must be byte-identical to Meta's body"
    );
    assert_eq!(sign(&app_secret(), body), EXPECTED_SIGNATURE);
    assert_eq!(
        verify_signature(&app_secret(), Some(EXPECTED_SIGNATURE), body),
        Ok(())
    );
}

#[test]
fn a_reserialised_body_is_rejected() {
    // The fixture's negative vector: the same JSON written compactly with raw UTF-8
    // (what `json.dumps(..., ensure_ascii=False)` produces; 614 bytes).
    let raw_utf8 = INBOUND_TEXT
        .replace("\\ud83d\\ude4f", "\u{1f64f}")
        .replace("\\u00e9", "\u{e9}");
    assert_eq!(raw_utf8.len(), 614);
    assert_eq!(
        sign(&app_secret(), raw_utf8.as_bytes()),
        "sha256=b8f130f0c7d9a1477ca92b51d5e7262e836bb906da105dc9af82d0579d27e993"
    );
    assert_eq!(
        verify_signature(&app_secret(), Some(EXPECTED_SIGNATURE), raw_utf8.as_bytes()),
        Err(SignatureError::Mismatch)
    );
    // And serde_json's own re-serialisation (keys sorted) is rejected as well.
    let value: serde_json::Value = serde_json::from_str(INBOUND_TEXT).unwrap();
    let reserialised = serde_json::to_vec(&value).unwrap();
    assert_ne!(reserialised, INBOUND_TEXT.as_bytes());
    assert_eq!(
        verify_signature(&app_secret(), Some(EXPECTED_SIGNATURE), &reserialised),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_body_with_a_trailing_newline_is_rejected() {
    let mut body = INBOUND_TEXT.as_bytes().to_vec();
    body.push(b'\n');
    assert_eq!(
        sign(&app_secret(), &body),
        "sha256=7442eae5a7cee40ff2a54f80f0c083dde6dab747cda8f52d82178e5617959bf6"
    );
    assert_eq!(
        verify_signature(&app_secret(), Some(EXPECTED_SIGNATURE), &body),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn missing_malformed_and_wrong_headers_are_rejected() {
    let body = INBOUND_TEXT.as_bytes();
    let secret = app_secret();
    assert_eq!(
        verify_signature(&secret, None, body),
        Err(SignatureError::Missing)
    );
    let bare_hex = EXPECTED_SIGNATURE.trim_start_matches("sha256=");
    assert_eq!(
        verify_signature(&secret, Some(bare_hex), body),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        verify_signature(&secret, Some("sha1=abc"), body),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        verify_signature(&secret, Some("sha256=zz"), body),
        Err(SignatureError::Malformed)
    );
    let wrong_secret = SecretString::from("another-app-secret");
    assert_eq!(
        verify_signature(&wrong_secret, Some(EXPECTED_SIGNATURE), body),
        Err(SignatureError::Mismatch)
    );
    // One flipped hex digit.
    let mut flipped = EXPECTED_SIGNATURE.to_owned();
    flipped.replace_range(70..71, "0");
    assert_ne!(flipped, EXPECTED_SIGNATURE);
    assert_eq!(
        verify_signature(&secret, Some(&flipped), body),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn header_names_are_case_insensitive() {
    let body = INBOUND_TEXT.as_bytes();
    for name in ["X-Hub-Signature-256", "x-hub-signature-256"] {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static(EXPECTED_SIGNATURE),
        );
        assert_eq!(
            verify_signature_headers(&app_secret(), &headers, body),
            Ok(())
        );
    }
    // The SHA-1 header alone does not count.
    let mut headers = HeaderMap::new();
    headers.insert("x-hub-signature", HeaderValue::from_static("sha1=deadbeef"));
    assert_eq!(
        verify_signature_headers(&app_secret(), &headers, body),
        Err(SignatureError::Missing)
    );
}

#[test]
fn verify_and_parse_checks_before_parsing_and_debug_redacts() {
    let verifier = WebhookVerifier::new(app_secret(), SecretString::from("verify-me"));
    let events = verifier
        .verify_and_parse(Some(EXPECTED_SIGNATURE), INBOUND_TEXT.as_bytes())
        .unwrap();
    assert_eq!(events.len(), 1);
    assert!(
        verifier
            .verify_and_parse(Some(EXPECTED_SIGNATURE), b"not json")
            .is_err()
    );
    let debug = format!("{verifier:?}");
    assert!(!debug.contains(APP_SECRET));
    assert!(!debug.contains("verify-me"));
}
