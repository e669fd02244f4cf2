//! Password hashing with argon2id. Hashing runs on the blocking thread pool: it is
//! deliberately slow and must not stall the async workers.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use secrecy::{ExposeSecret, SecretString};

use edge_core::Error;

/// The shortest password accepted.
pub const MIN_LEN: usize = 10;
/// The longest password accepted, in bytes (bounds the hashing work per request).
pub const MAX_LEN: usize = 1024;

/// Checks a new password against the rules, naming `field` in the error.
pub fn check_new(field: &str, password: &SecretString) -> Result<(), Error> {
    let text = password.expose_secret();
    if text.chars().count() < MIN_LEN {
        return Err(Error::invalid(
            field,
            format!("must be at least {MIN_LEN} characters"),
        ));
    }
    if text.len() > MAX_LEN {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_LEN} bytes"),
        ));
    }
    if text.trim().is_empty() {
        return Err(Error::invalid(field, "must not be only spaces"));
    }
    Ok(())
}

/// Hashes a password into a PHC string (argon2id, random salt, default parameters).
pub async fn hash(password: SecretString) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal(e.to_string()))?;
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| Error::internal(e.to_string()))
    })
    .await
    .map_err(Error::internal)?
}

/// Checks `password` against a stored PHC string. A malformed hash never matches.
pub async fn verify(password: SecretString, hash: String) -> Result<bool, Error> {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(Error::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ_per_salt() {
        let a = hash(SecretString::from("correct horse battery"))
            .await
            .unwrap();
        let b = hash(SecretString::from("correct horse battery"))
            .await
            .unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(
            verify(SecretString::from("correct horse battery"), a.clone())
                .await
                .unwrap()
        );
        assert!(
            !verify(SecretString::from("wrong horse battery"), a)
                .await
                .unwrap()
        );
        assert!(
            !verify(SecretString::from("x"), "not a hash".into())
                .await
                .unwrap()
        );
    }

    #[test]
    fn new_passwords_follow_the_rules() {
        assert!(check_new("password", &SecretString::from("short")).is_err());
        assert!(check_new("password", &SecretString::from("          ")).is_err());
        assert!(check_new("password", &SecretString::from("x".repeat(1025))).is_err());
        assert!(check_new("password", &SecretString::from("long enough pass")).is_ok());
    }
}
