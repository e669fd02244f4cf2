//! The GET verification handshake.

use edge_whatsapp::webhook::{Handshake, HandshakeError, WebhookVerifier};
use secrecy::SecretString;

fn verifier() -> WebhookVerifier {
    WebhookVerifier::new(SecretString::from("secret"), SecretString::from("my token"))
}

#[test]
fn a_matching_subscribe_returns_the_bare_challenge() {
    let challenge = verifier()
        .handshake("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my+token")
        .unwrap();
    assert_eq!(challenge, "1158201444");
    // A leading `?` and percent-encoding are fine.
    let challenge = verifier()
        .handshake("?hub.verify_token=my%20token&hub.mode=subscribe&hub.challenge=abc")
        .unwrap();
    assert_eq!(challenge, "abc");
}

#[test]
fn wrong_mode_token_or_missing_challenge_is_refused() {
    let v = verifier();
    assert_eq!(
        v.handshake("hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=my+token"),
        Err(HandshakeError::WrongMode)
    );
    assert_eq!(
        v.handshake("hub.mode=subscribe&hub.challenge=1&hub.verify_token=nope"),
        Err(HandshakeError::WrongToken)
    );
    assert_eq!(
        v.handshake("hub.mode=subscribe&hub.challenge=1"),
        Err(HandshakeError::WrongToken)
    );
    assert_eq!(
        v.handshake("hub.mode=subscribe&hub.verify_token=my+token"),
        Err(HandshakeError::MissingChallenge)
    );
    assert_eq!(v.handshake(""), Err(HandshakeError::WrongMode));
}

#[test]
fn parameters_can_be_given_directly() {
    let h = Handshake {
        mode: Some("subscribe".into()),
        verify_token: Some("t".into()),
        challenge: Some("c".into()),
    };
    assert_eq!(h.verify(&SecretString::from("t")), Ok("c".to_owned()));
    assert_eq!(
        h.verify(&SecretString::from("t2")),
        Err(HandshakeError::WrongToken)
    );
}
