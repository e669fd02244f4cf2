//! The `SecurityCredential` of initiator APIs.

use base64::Engine as _;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};
use secrecy::{ExposeSecret, SecretString};
use x509_cert::Certificate;
use x509_cert::der::{Decode, DecodePem, Encode};

use crate::Error;

/// Builds a `SecurityCredential`: the initiator password encrypted with RSA PKCS#1 v1.5
/// under the public key of Safaricom's certificate, then base64-encoded.
///
/// `certificate` is the X.509 certificate Safaricom publishes for the environment (PEM or
/// DER), or a bare `PUBLIC KEY` PEM. Sandbox and production use different certificates;
/// none is bundled here, so pick the one for the environment you call. The padding is
/// random, so each call returns a different (equally valid) value; it may be cached per
/// (tenant, password, certificate).
pub fn security_credential(
    initiator_password: &SecretString,
    certificate: &[u8],
) -> Result<SecretString, Error> {
    let key = public_key(certificate)?;
    let password = initiator_password.expose_secret();
    if password.is_empty() {
        return Err(Error::invalid(
            "SecurityCredential",
            "the initiator password is empty",
        ));
    }
    let mut rng = rsa::rand_core::OsRng;
    let encrypted = key
        .encrypt(&mut rng, Pkcs1v15Encrypt, password.as_bytes())
        .map_err(|e| Error::invalid("SecurityCredential", format!("encryption failed: {e}")))?;
    Ok(SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(encrypted),
    ))
}

fn public_key(certificate: &[u8]) -> Result<RsaPublicKey, Error> {
    let bad = |reason: String| Error::invalid("SecurityCredential", reason);
    let text = std::str::from_utf8(certificate).ok().map(str::trim);
    if let Some(pem) = text.filter(|t| t.starts_with("-----BEGIN PUBLIC KEY-----")) {
        return RsaPublicKey::from_public_key_pem(pem)
            .map_err(|e| bad(format!("not an RSA public key: {e}")));
    }
    let cert = match text.filter(|t| t.starts_with("-----BEGIN")) {
        Some(pem) => Certificate::from_pem(pem.as_bytes()),
        None => Certificate::from_der(certificate),
    }
    .map_err(|e| bad(format!("not an X.509 certificate: {e}")))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| bad(format!("unreadable public key: {e}")))?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|e| bad(format!("not an RSA key: {e}")))
}
