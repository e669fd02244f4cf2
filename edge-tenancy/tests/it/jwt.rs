//! HS256 access tokens.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration as Span;
use edge_core::{OrgId, SessionId, UserId};
use edge_tenancy::jwt::Audience;
use edge_tenancy::{JwtCodec, JwtError, Role, TokenSubject};
use secrecy::SecretString;

use crate::support::{SECRET, codec, start};

fn subject() -> TokenSubject {
    TokenSubject {
        user: UserId::new(),
        org: OrgId::new(),
        role: Role::Manager,
        session: SessionId::new(),
    }
}

#[test]
fn an_issued_token_verifies_and_carries_its_claims() {
    let codec = codec();
    let subject = subject();
    let (token, issued) = codec.issue(subject, start()).unwrap();
    let claims = codec.verify(&token, start() + Span::minutes(5)).unwrap();
    assert_eq!(claims, issued);
    assert_eq!(claims.sub, subject.user);
    assert_eq!(claims.org, subject.org);
    assert_eq!(claims.role, Role::Manager);
    assert_eq!(claims.sid, subject.session);
    assert_eq!(claims.exp - claims.iat, 15 * 60);
    assert_eq!(claims.jti.len(), 32);
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["kid"], "k1");
}

#[test]
fn expiry_and_not_before_follow_the_clock_with_leeway() {
    let codec = codec().with_leeway(Duration::from_secs(30));
    let (token, _) = codec.issue(subject(), start()).unwrap();
    assert!(
        codec
            .verify(&token, start() + Span::seconds(15 * 60 + 29))
            .is_ok()
    );
    assert_eq!(
        codec.verify(&token, start() + Span::seconds(15 * 60 + 30)),
        Err(JwtError::Expired)
    );
    assert!(codec.verify(&token, start() - Span::seconds(30)).is_ok());
    assert_eq!(
        codec.verify(&token, start() - Span::seconds(31)),
        Err(JwtError::NotYetValid)
    );
}

#[test]
fn tampered_tokens_and_foreign_signatures_are_refused() {
    let codec = codec();
    let (token, mut claims) = codec.issue(subject(), start()).unwrap();

    // Change the role in the payload, keep the signature.
    claims.role = Role::SuperAdmin;
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(codec.verify(&forged, start()), Err(JwtError::BadSignature));

    // Signed with another secret under the same kid.
    let other = JwtCodec::new(
        "edge-test",
        "edge-api",
        "k1",
        SecretString::from("another-secret-that-is-long-enough-for-hs256"),
    )
    .unwrap();
    let foreign = other.sign(&claims).unwrap();
    assert_eq!(codec.verify(&foreign, start()), Err(JwtError::BadSignature));

    for garbage in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
        assert_eq!(codec.verify(garbage, start()), Err(JwtError::Malformed));
    }
    assert_eq!(
        codec.verify(&"a".repeat(9000), start()),
        Err(JwtError::Malformed)
    );
}

#[test]
fn alg_none_and_other_algorithms_are_refused() {
    let codec = codec();
    let (token, _) = codec.issue(subject(), start()).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    for alg in ["none", "HS512", "RS256"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"k1"}}"#));
        let token = format!("{header}.{payload}.");
        assert_eq!(
            codec.verify(&token, start()),
            Err(JwtError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#);
    let no_kid = format!("{header}.{payload}.{}", token.split('.').nth(2).unwrap());
    assert_eq!(codec.verify(&no_kid, start()), Err(JwtError::UnknownKey));
}

#[test]
fn issuer_and_audience_are_checked() {
    let codec = codec();
    let (_, mut claims) = codec.issue(subject(), start()).unwrap();
    claims.iss = "someone-else".into();
    let token = codec.sign(&claims).unwrap();
    assert_eq!(codec.verify(&token, start()), Err(JwtError::WrongIssuer));

    claims.iss = "edge-test".into();
    claims.aud = Audience(vec!["other-api".into()]);
    let token = codec.sign(&claims).unwrap();
    assert_eq!(codec.verify(&token, start()), Err(JwtError::WrongAudience));

    claims.aud = Audience(vec!["other-api".into(), "edge-api".into()]);
    let token = codec.sign(&claims).unwrap();
    assert!(codec.verify(&token, start()).is_ok());
}

#[test]
fn the_signing_secret_rotates_by_key_id() {
    let old = codec();
    let (old_token, _) = old.issue(subject(), start()).unwrap();

    let new = JwtCodec::new(
        "edge-test",
        "edge-api",
        "k2",
        SecretString::from("the-new-secret-for-2027-which-is-long-enough"),
    )
    .unwrap()
    .with_retired_key("k1", SecretString::from(SECRET))
    .unwrap();
    let (new_token, _) = new.issue(subject(), start()).unwrap();
    assert!(new.verify(&old_token, start()).is_ok());
    assert!(new.verify(&new_token, start()).is_ok());
    assert_eq!(old.verify(&new_token, start()), Err(JwtError::UnknownKey));

    // Once k1 is retired for good, its tokens stop working.
    let newest = JwtCodec::new(
        "edge-test",
        "edge-api",
        "k2",
        SecretString::from("the-new-secret-for-2027-which-is-long-enough"),
    )
    .unwrap();
    assert_eq!(
        newest.verify(&old_token, start()),
        Err(JwtError::UnknownKey)
    );
}

#[test]
fn weak_secrets_are_refused_and_debug_hides_secrets() {
    assert_eq!(
        JwtCodec::new("i", "a", "k", SecretString::from("short")).unwrap_err(),
        JwtError::WeakSecret
    );
    let debug = format!("{:?}", codec());
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains("k1"), "{debug}");
    let err: edge_core::Error = JwtError::BadSignature.into();
    assert_eq!(err.code(), "unauthenticated");
}
