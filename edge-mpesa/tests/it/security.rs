//! The SecurityCredential helper, with a key pair generated here.

use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use edge_mpesa::{Error, security_credential};
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};
use secrecy::{ExposeSecret, SecretString};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::{Encode, EncodePem};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

fn key_pair() -> (RsaPrivateKey, RsaPublicKey) {
    let mut rng = rsa::rand_core::OsRng;
    let private = RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let public = RsaPublicKey::from(&private);
    (private, public)
}

fn certificate(private: &RsaPrivateKey, public: &RsaPublicKey) -> x509_cert::Certificate {
    let signer = SigningKey::<rsa::sha2::Sha256>::new(private.clone());
    let spki = SubjectPublicKeyInfoOwned::from_key(public.clone()).unwrap();
    CertificateBuilder::new(
        Profile::Root,
        SerialNumber::from(1u32),
        Validity::from_now(Duration::from_secs(3600)).unwrap(),
        Name::from_str("CN=sandbox.safaricom.co.ke,O=Test").unwrap(),
        spki,
        &signer,
    )
    .unwrap()
    .build::<Signature>()
    .unwrap()
}

#[test]
fn the_credential_decrypts_to_the_password_from_pem_der_and_public_key() {
    let (private, public) = key_pair();
    let cert = certificate(&private, &public);
    let pem = cert.to_pem(LineEnding::LF).unwrap();
    let der = cert.to_der().unwrap();
    let key_pem = public.to_public_key_pem(LineEnding::LF).unwrap();
    let password = SecretString::from("Safaricom999!*!");
    for input in [pem.as_bytes(), der.as_slice(), key_pem.as_bytes()] {
        let credential = security_credential(&password, input).unwrap();
        let text = credential.expose_secret();
        assert_eq!(text.len(), 344, "2048-bit ciphertext in base64");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        let plain = private.decrypt(Pkcs1v15Encrypt, &raw).unwrap();
        assert_eq!(plain, b"Safaricom999!*!");
    }
    // Random padding: two encryptions differ.
    let a = security_credential(&password, pem.as_bytes()).unwrap();
    let b = security_credential(&password, pem.as_bytes()).unwrap();
    assert_ne!(a.expose_secret(), b.expose_secret());
}

#[test]
fn garbage_certificates_are_invalid_requests_without_the_password() {
    let password = SecretString::from("hunter2-secret");
    for input in [
        b"".as_slice(),
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        b"\x30\x03\x02\x01",
    ] {
        let err = security_credential(&password, input).unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidRequest {
                field: "SecurityCredential",
                ..
            }
        ));
        assert!(!format!("{err} {err:?}").contains("hunter2"));
    }
}
