//! `X-Hub-Signature-256` verification over the raw request bytes.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The name of the signature header. Header names are case-insensitive; HTTP/2 front ends
/// pass it on as `x-hub-signature-256`.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Why a POST's signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// There is no `X-Hub-Signature-256` header.
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("the X-Hub-Signature-256 header is malformed")]
    Malformed,
    /// The digest does not match the body.
    #[error("the webhook signature does not match the body")]
    Mismatch,
}

/// Verifies `header` (the value of `X-Hub-Signature-256`, `None` when absent) against the
/// **raw** body bytes as received, keyed with the app secret. Compares in constant time.
///
/// Never pass a body that was parsed and serialised again: Meta signs its own bytes,
/// including its `\uXXXX` escapes.
pub fn verify_signature(
    app_secret: &SecretString,
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    if hex_digest.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let mut expected = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut expected).map_err(|_| SignatureError::Malformed)?;
    let actual = compute(app_secret, body);
    if bool::from(actual.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Verifies the signature found in `headers` (looked up case-insensitively).
pub fn verify_signature_headers(
    app_secret: &SecretString,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = match headers.get(SIGNATURE_HEADER) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| SignatureError::Malformed)?),
    };
    verify_signature(app_secret, header, body)
}

/// The header value Meta would send for `body`: `sha256=<64 lowercase hex>`. Used by
/// the fake Graph server (`fake::FakeGraph`, feature `test-util`) and handy in tests.
pub fn sign(app_secret: &SecretString, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(compute(app_secret, body)))
}

fn compute(app_secret: &SecretString, body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an all-zero digest
    // (which never verifies a real signature) rather than panic.
    match Hmac::<Sha256>::new_from_slice(app_secret.expose_secret().as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0u8; 32],
    }
}
