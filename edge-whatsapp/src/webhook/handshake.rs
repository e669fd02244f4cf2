//! The GET verification handshake Meta performs when a callback URL is saved.

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// Why a verification GET was refused. Answer it with 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// `hub.mode` is missing or not `subscribe`.
    #[error("hub.mode is not \"subscribe\"")]
    WrongMode,
    /// `hub.verify_token` is missing or does not match.
    #[error("hub.verify_token does not match")]
    WrongToken,
    /// `hub.challenge` is missing.
    #[error("hub.challenge is missing")]
    MissingChallenge,
}

/// The three query parameters of a verification GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handshake {
    /// `hub.mode`.
    pub mode: Option<String>,
    /// `hub.verify_token`. Not secret once compared, but not logged by us either.
    pub verify_token: Option<String>,
    /// `hub.challenge`.
    pub challenge: Option<String>,
}

impl Handshake {
    /// Reads the parameters from a raw query string (`hub.mode=subscribe&…`), percent-decoded.
    pub fn from_query(query: &str) -> Self {
        let mut out = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes()) {
            match key.as_ref() {
                "hub.mode" => out.mode = Some(value.into_owned()),
                "hub.verify_token" => out.verify_token = Some(value.into_owned()),
                "hub.challenge" => out.challenge = Some(value.into_owned()),
                _ => {}
            }
        }
        out
    }

    /// Checks the request against the verify token you configured. On success, answer
    /// **200 with the returned challenge as the bare body**; on error answer 403.
    ///
    /// This GET carries no signature: do not apply the POST signature check to it.
    pub fn verify(&self, expected_token: &SecretString) -> Result<String, HandshakeError> {
        if self.mode.as_deref() != Some("subscribe") {
            return Err(HandshakeError::WrongMode);
        }
        let token = self
            .verify_token
            .as_deref()
            .ok_or(HandshakeError::WrongToken)?;
        let expected = expected_token.expose_secret().as_bytes();
        if !bool::from(token.as_bytes().ct_eq(expected)) {
            return Err(HandshakeError::WrongToken);
        }
        self.challenge
            .clone()
            .ok_or(HandshakeError::MissingChallenge)
    }
}
