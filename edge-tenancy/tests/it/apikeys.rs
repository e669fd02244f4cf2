//! API keys: format, hashing, one-time display.

use edge_core::OrgId;
use edge_tenancy::apikey::{PREFIX_LEN, SECRET_LEN};
use edge_tenancy::{KeyEnvironment, KeyHash, NewApiKey, PresentedKey, Role};
use secrecy::ExposeSecret;

use crate::support::start;

fn new_key(role: Role) -> NewApiKey {
    NewApiKey {
        org: OrgId::new(),
        name: "zapier".into(),
        role,
        environment: KeyEnvironment::Live,
        expires_at: None,
    }
}

#[test]
fn an_issued_key_has_a_visible_prefix_and_only_its_hash_is_stored() {
    let issued = new_key(Role::User).issue(start()).unwrap();
    let key = issued.key.expose_secret();
    let parts: Vec<&str> = key.split('_').collect();
    assert_eq!(parts.len(), 4, "{key}");
    assert_eq!(parts[0], "edge");
    assert_eq!(parts[1], "live");
    assert_eq!(parts[2], issued.record.prefix);
    assert_eq!(parts[2].len(), PREFIX_LEN);
    assert_eq!(parts[3].len(), SECRET_LEN);
    assert_eq!(issued.record.hash, KeyHash::of(key));

    // Nothing stored or printed contains the secret part.
    let debug = format!("{issued:?}");
    assert!(!debug.contains(parts[3]), "{debug}");
    assert!(debug.contains(&issued.record.prefix), "{debug}");

    let presented = PresentedKey::parse(key).unwrap();
    assert_eq!(presented.prefix(), issued.record.prefix);
    assert!(issued.record.accepts(&presented, start()));
    assert_eq!(
        KeyHash::from_hex(&issued.record.hash.to_hex()),
        Some(issued.record.hash)
    );
}

#[test]
fn keys_differ_each_time() {
    let a = new_key(Role::User).issue(start()).unwrap();
    let b = new_key(Role::User).issue(start()).unwrap();
    assert_ne!(a.record.prefix, b.record.prefix);
    assert_ne!(a.key.expose_secret(), b.key.expose_secret());
}

#[test]
fn a_key_with_a_changed_secret_is_refused() {
    let issued = new_key(Role::User).issue(start()).unwrap();
    let key = issued.key.expose_secret();
    let last = key.chars().last().unwrap();
    let changed = format!(
        "{}{}",
        &key[..key.len() - 1],
        if last == 'a' { 'b' } else { 'a' }
    );
    let presented = PresentedKey::parse(&changed).unwrap();
    assert_eq!(presented.prefix(), issued.record.prefix);
    assert!(!issued.record.accepts(&presented, start()));
}

#[test]
fn malformed_keys_are_unauthenticated() {
    let issued = new_key(Role::User).issue(start()).unwrap();
    let key = issued.key.expose_secret().to_owned();
    for bad in [
        String::new(),
        "edge_live".into(),
        key.replace("_live_", "_prod_"),
        format!("{key}_extra"),
        format!("{key}x"),
        key.replacen("edge_", "edgy_", 1),
        key.to_uppercase(),
    ] {
        let err = PresentedKey::parse(&bad).unwrap_err();
        assert_eq!(err.code(), "unauthenticated", "{bad}");
    }
}

#[test]
fn operator_keys_and_nameless_keys_cannot_be_issued() {
    let err = new_key(Role::SuperAdmin).issue(start()).unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let mut nameless = new_key(Role::User);
    nameless.name = "  ".into();
    assert_eq!(
        nameless.issue(start()).unwrap_err().code(),
        "validation_failed"
    );
}
