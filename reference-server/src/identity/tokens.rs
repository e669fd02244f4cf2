//! Opaque random tokens (refresh tokens, invitation tokens): shown once, stored as SHA-256.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// A new token: the text to hand out once, and the hash to store.
pub struct NewToken {
    /// Give this to the client; never store or log it.
    pub token: SecretString,
    /// Store this.
    pub hash: String,
}

/// A fresh 256-bit token with a readable prefix, e.g. `rt_…`.
pub fn generate(prefix: &str) -> NewToken {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let token = format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&token);
    NewToken {
        token: SecretString::from(token),
        hash,
    }
}

/// The stored form of a token: hex SHA-256. High-entropy tokens need no slow hash.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Hashes a token received from a client.
pub fn hash_secret(token: &SecretString) -> String {
    hash(token.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_hash_to_their_stored_form() {
        let a = generate("rt");
        let b = generate("rt");
        assert!(a.token.expose_secret().starts_with("rt_"));
        assert_ne!(a.token.expose_secret(), b.token.expose_secret());
        assert_eq!(hash_secret(&a.token), a.hash);
        assert_eq!(a.hash.len(), 64);
    }
}
