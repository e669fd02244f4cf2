//! Sealed credentials: round trip, tenant and purpose binding, rotation, cache.

use std::sync::Arc;
use std::time::Duration;

use edge_core::{FixedClock, OrgId, SharedClock};
use edge_tenancy::{CredentialCache, KeyId, Keyring, MasterKey, SealError, Sealed};
use secrecy::{ExposeSecret, SecretString};

use crate::support::start;

const PURPOSE: &str = "mpesa.consumer_secret";

fn keyring() -> Keyring {
    Keyring::new(
        KeyId::new("2026-11").unwrap(),
        MasterKey::from_bytes([7; 32]),
    )
}

fn secret() -> SecretString {
    SecretString::from("daraja-consumer-secret-XYZ")
}

#[test]
fn a_sealed_credential_opens_for_its_org_and_purpose() {
    let keyring = keyring();
    let org = OrgId::new();
    let sealed = keyring.seal(org, PURPOSE, &secret()).unwrap();
    let opened = keyring.open(org, PURPOSE, &sealed).unwrap();
    assert_eq!(opened.expose_secret(), "daraja-consumer-secret-XYZ");

    // Through the one-column text form too.
    let text = sealed.to_string();
    assert!(text.starts_with("v1.2026-11."), "{text}");
    assert!(!text.contains("daraja"), "{text}");
    let parsed: Sealed = text.parse().unwrap();
    assert_eq!(parsed, sealed);
    let json = serde_json::to_string(&sealed).unwrap();
    let back: Sealed = serde_json::from_str(&json).unwrap();
    assert_eq!(
        keyring.open(org, PURPOSE, &back).unwrap().expose_secret(),
        "daraja-consumer-secret-XYZ"
    );
}

#[test]
fn sealing_twice_gives_different_ciphertexts() {
    let keyring = keyring();
    let org = OrgId::new();
    let a = keyring.seal(org, PURPOSE, &secret()).unwrap();
    let b = keyring.seal(org, PURPOSE, &secret()).unwrap();
    assert_ne!(a.to_string(), b.to_string());
}

#[test]
fn a_ciphertext_copied_into_another_tenants_row_fails_to_open() {
    let keyring = keyring();
    let acme = OrgId::new();
    let globex = OrgId::new();
    let sealed = keyring.seal(acme, PURPOSE, &secret()).unwrap();
    assert_eq!(
        keyring.open(globex, PURPOSE, &sealed).unwrap_err(),
        SealError::OpenFailed
    );
}

#[test]
fn a_ciphertext_moved_to_another_purpose_fails_to_open() {
    let keyring = keyring();
    let org = OrgId::new();
    let sealed = keyring.seal(org, PURPOSE, &secret()).unwrap();
    assert_eq!(
        keyring
            .open(org, "whatsapp.access_token", &sealed)
            .unwrap_err(),
        SealError::OpenFailed
    );
}

#[test]
fn tampering_and_garbage_are_refused() {
    let keyring = keyring();
    let org = OrgId::new();
    let text = keyring.seal(org, PURPOSE, &secret()).unwrap().to_string();
    // Flip one character of the ciphertext body.
    let mut bytes = text.into_bytes();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered: Sealed = String::from_utf8(bytes).unwrap().parse().unwrap();
    assert_eq!(
        keyring.open(org, PURPOSE, &tampered).unwrap_err(),
        SealError::OpenFailed
    );
    for garbage in [
        "",
        "v1",
        "v2.k.AAAA",
        "v1.bad id.AAAA",
        "v1.k.short",
        "v1.k.!!!",
    ] {
        assert_eq!(
            garbage.parse::<Sealed>().unwrap_err(),
            SealError::Malformed,
            "{garbage:?}"
        );
    }
}

#[test]
fn rotation_reseals_under_the_new_key_and_old_values_still_open() {
    let old = keyring();
    let org = OrgId::new();
    let sealed_old = old.seal(org, PURPOSE, &secret()).unwrap();

    let rotated = old
        .clone()
        .rotate_to(KeyId::new("2027-01").unwrap(), MasterKey::generate())
        .unwrap();
    assert_eq!(rotated.active_key_id().as_str(), "2027-01");
    assert!(rotated.needs_reseal(&sealed_old));
    assert_eq!(
        rotated
            .open(org, PURPOSE, &sealed_old)
            .unwrap()
            .expose_secret(),
        "daraja-consumer-secret-XYZ"
    );

    let resealed = rotated.reseal(org, PURPOSE, &sealed_old).unwrap();
    assert_eq!(resealed.key_id().as_str(), "2027-01");
    assert!(!rotated.needs_reseal(&resealed));
    assert_eq!(
        rotated
            .open(org, PURPOSE, &resealed)
            .unwrap()
            .expose_secret(),
        "daraja-consumer-secret-XYZ"
    );
    // The old keyring does not know the new key.
    assert_eq!(
        old.open(org, PURPOSE, &resealed).unwrap_err(),
        SealError::UnknownKey("2027-01".into())
    );
    // Resealing does not launder a value into another tenant.
    assert_eq!(
        rotated
            .reseal(OrgId::new(), PURPOSE, &sealed_old)
            .unwrap_err(),
        SealError::OpenFailed
    );
    // Once the old key is dropped, only resealed values open.
    let new_only = Keyring::new(
        KeyId::new("2027-01").unwrap(),
        MasterKey::from_bytes([0; 32]),
    );
    assert!(new_only.open(org, PURPOSE, &sealed_old).is_err());
}

#[test]
fn keyring_configuration_is_validated() {
    assert_eq!(KeyId::new("").unwrap_err(), SealError::InvalidKeyId);
    assert_eq!(KeyId::new("a.b").unwrap_err(), SealError::InvalidKeyId);
    assert_eq!(
        keyring()
            .with_retired(KeyId::new("2026-11").unwrap(), MasterKey::generate())
            .unwrap_err(),
        SealError::DuplicateKeyId("2026-11".into())
    );
    let short = SecretString::from("c2hvcnQ=");
    assert_eq!(
        MasterKey::from_base64(&short).unwrap_err(),
        SealError::InvalidKey
    );
    let good = SecretString::from("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=");
    let from_config = Keyring::new(
        KeyId::new("2026-11").unwrap(),
        MasterKey::from_base64(&good).unwrap(),
    );
    let org = OrgId::new();
    let sealed = keyring().seal(org, PURPOSE, &secret()).unwrap();
    assert!(from_config.open(org, PURPOSE, &sealed).is_ok());
    assert_eq!(
        keyring().seal(org, "", &secret()).unwrap_err(),
        SealError::InvalidPurpose
    );
}

#[test]
fn debug_output_never_shows_key_material_or_plaintext() {
    let key = MasterKey::from_bytes([0xAB; 32]);
    let keyring = Keyring::new(KeyId::new("k1").unwrap(), key.clone());
    let org = OrgId::new();
    let sealed = keyring.seal(org, PURPOSE, &secret()).unwrap();
    let opened = keyring.open(org, PURPOSE, &sealed).unwrap();
    for text in [
        format!("{key:?}"),
        format!("{keyring:?}"),
        format!("{sealed:?}"),
        format!("{opened:?}"),
    ] {
        assert!(!text.contains("171"), "{text}");
        assert!(!text.to_lowercase().contains("abab"), "{text}");
        assert!(!text.contains("daraja"), "{text}");
    }
    let err = keyring.open(OrgId::new(), PURPOSE, &sealed).unwrap_err();
    let core: edge_core::Error = err.into();
    assert_eq!(core.to_string(), "internal error");
}

#[test]
fn the_cache_serves_fresh_entries_and_reopens_after_the_ttl() {
    let clock = FixedClock::new(start());
    let shared: SharedClock = Arc::new(clock.clone());
    let cache = CredentialCache::new(keyring(), shared, Duration::from_secs(60), 8);
    let org = OrgId::new();
    let sealed = cache.keyring().seal(org, PURPOSE, &secret()).unwrap();

    for _ in 0..3 {
        let opened = cache.open(org, PURPOSE, &sealed).unwrap();
        assert_eq!(opened.expose_secret(), "daraja-consumer-secret-XYZ");
    }
    assert_eq!((cache.stats().hits, cache.stats().misses), (2, 1));

    clock.advance(chrono::Duration::seconds(61));
    cache.open(org, PURPOSE, &sealed).unwrap();
    assert_eq!((cache.stats().hits, cache.stats().misses), (2, 2));

    // The cache never opens another tenant's value, even right after a hit.
    assert_eq!(
        cache.open(OrgId::new(), PURPOSE, &sealed).unwrap_err(),
        SealError::OpenFailed
    );

    cache.invalidate_org(org);
    assert!(cache.is_empty());
}

#[test]
fn the_cache_stays_within_its_capacity() {
    let clock = FixedClock::new(start());
    let shared: SharedClock = Arc::new(clock.clone());
    let cache = CredentialCache::new(keyring(), shared, Duration::from_secs(60), 3);
    for _ in 0..10 {
        let org = OrgId::new();
        let sealed = cache.keyring().seal(org, PURPOSE, &secret()).unwrap();
        cache.open(org, PURPOSE, &sealed).unwrap();
        clock.advance(chrono::Duration::seconds(1));
    }
    assert_eq!(cache.len(), 3);
}
