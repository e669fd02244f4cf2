//! The secrets the server needs, and where they come from.
//!
//! Each secret is read from its `EDGE_*` variable. In development a missing secret is
//! generated once, kept in `secrets.json` under the data directory (readable by the owner
//! only) and reused on the next start, with a warning that says so. In production a
//! missing secret stops the server, naming every variable that is missing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Config, Environment};

/// A secret the server needs.
pub(crate) struct SecretSpec {
    /// The environment variable that provides it.
    pub variable: &'static str,
    /// What it is for, for messages.
    pub purpose: &'static str,
}

/// Every secret the server reads. Each is 32 random bytes, base64url-encoded.
pub(crate) const SECRETS: &[SecretSpec] = &[
    SecretSpec {
        variable: "EDGE_JWT_SECRET",
        purpose: "signs access tokens",
    },
    SecretSpec {
        variable: "EDGE_CREDENTIALS_KEY",
        purpose: "seals tenants' M-Pesa and WhatsApp credentials at rest",
    },
];

/// The name of the file that keeps generated development secrets.
pub const SECRETS_FILE: &str = "secrets.json";

/// Why the secrets could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// Production requires these variables and they are not set.
    #[error("missing required secrets in production: {} (each must be 32 random bytes, base64url-encoded; e.g. `openssl rand -base64 32 | tr '+/' '-_' | tr -d '='`)", .0.join(", "))]
    Missing(Vec<&'static str>),
    /// A variable is set but is not 32 bytes of base64url.
    #[error("{0} must be 32 random bytes, base64url-encoded (43 characters without padding)")]
    Malformed(&'static str),
    /// The development secrets file could not be read or written.
    #[error("development secrets file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// The loaded secrets. `Debug` never shows them.
#[derive(Clone)]
pub struct Secrets {
    /// Signs access tokens (`EDGE_JWT_SECRET`).
    pub jwt_secret: SecretString,
    /// Seals per-tenant credentials (`EDGE_CREDENTIALS_KEY`).
    pub credentials_key: SecretString,
    /// Which secrets were generated on this start (development only).
    pub generated: Vec<&'static str>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("jwt_secret", &"[redacted]")
            .field("credentials_key", &"[redacted]")
            .field("generated", &self.generated)
            .finish()
    }
}

impl Secrets {
    /// Loads the secrets for `config`, generating missing ones in development.
    pub fn load(config: &Config) -> Result<Self, SecretsError> {
        let file = config.data_dir.join(SECRETS_FILE);
        let mut stored = match config.environment {
            Environment::Development => read_file(&file)?,
            Environment::Production => BTreeMap::new(),
        };

        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        let mut generated = Vec::new();
        for spec in SECRETS {
            let value = match config.secret_vars.get(spec.variable) {
                Some(value) => value.trim().to_owned(),
                None => match stored.get(spec.variable) {
                    Some(value) => value.clone(),
                    None if config.environment == Environment::Development => {
                        let value = generate();
                        stored.insert(spec.variable.to_owned(), value.clone());
                        generated.push(spec.variable);
                        value
                    }
                    None => {
                        missing.push(spec.variable);
                        continue;
                    }
                },
            };
            if !is_32_bytes(&value) {
                return Err(SecretsError::Malformed(spec.variable));
            }
            values.insert(spec.variable, SecretString::from(value));
        }
        if !missing.is_empty() {
            return Err(SecretsError::Missing(missing));
        }
        if !generated.is_empty() {
            write_file(&file, &stored)?;
            for name in &generated {
                let purpose = SECRETS
                    .iter()
                    .find(|s| s.variable == *name)
                    .map_or("", |s| s.purpose);
                tracing::warn!(
                    secret = name,
                    file = %file.display(),
                    "{name} was not set, so a development value was generated and kept in {}; \
                     it {purpose}. Set {name} explicitly in production.",
                    file.display()
                );
            }
        }

        let mut take = |name: &'static str| {
            values
                .remove(name)
                .ok_or_else(|| SecretsError::Missing(vec![name]))
        };
        Ok(Self {
            jwt_secret: take("EDGE_JWT_SECRET")?,
            credentials_key: take("EDGE_CREDENTIALS_KEY")?,
            generated,
        })
    }

    /// The credentials master key as raw bytes.
    pub fn credentials_key_bytes(&self) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(self.credentials_key.expose_secret())
            .unwrap_or_default()
    }
}

pub(crate) fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn is_32_bytes(value: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .is_ok_and(|bytes| bytes.len() == 32)
}

fn read_file(path: &Path) -> Result<BTreeMap<String, String>, SecretsError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SecretsError::File {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(source) => Err(SecretsError::File {
            path: path.to_owned(),
            source,
        }),
    }
}

fn write_file(path: &Path, values: &BTreeMap<String, String>) -> Result<(), SecretsError> {
    let fail = |source| SecretsError::File {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let json = serde_json::to_vec_pretty(values)
        .map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    // Write to a temporary file readable by the owner only, then rename over the old one,
    // so a crash never leaves a half-written file and the secrets are never world-readable.
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(fail)?;
    std::io::Write::write_all(&mut file, &json).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, vars: &[(&str, &str)]) -> Config {
        let mut all = vec![("EDGE_DATA_DIR".to_owned(), dir.display().to_string())];
        all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Config::from_vars(all).unwrap()
    }

    #[test]
    fn development_generates_missing_secrets_once_and_reuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let first = Secrets::load(&config(dir.path(), &[])).unwrap();
        assert_eq!(
            first.generated,
            vec!["EDGE_JWT_SECRET", "EDGE_CREDENTIALS_KEY"]
        );
        assert_eq!(first.credentials_key_bytes().len(), 32);

        let second = Secrets::load(&config(dir.path(), &[])).unwrap();
        assert!(second.generated.is_empty());
        assert_eq!(
            first.jwt_secret.expose_secret(),
            second.jwt_secret.expose_secret()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(SECRETS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn production_refuses_to_start_and_names_every_missing_secret() {
        let dir = tempfile::tempdir().unwrap();
        let err = Secrets::load(&config(dir.path(), &[("EDGE_ENV", "production")])).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("EDGE_JWT_SECRET"), "{message}");
        assert!(message.contains("EDGE_CREDENTIALS_KEY"), "{message}");
        assert!(!dir.path().join(SECRETS_FILE).exists());
    }

    #[test]
    fn explicit_secrets_are_used_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate();
        let secrets = Secrets::load(&config(
            dir.path(),
            &[
                ("EDGE_ENV", "production"),
                ("EDGE_JWT_SECRET", &key),
                ("EDGE_CREDENTIALS_KEY", &key),
            ],
        ))
        .unwrap();
        assert!(secrets.generated.is_empty());
        let debug = format!("{secrets:?}");
        assert!(!debug.contains(&key), "{debug}");

        let err = Secrets::load(&config(dir.path(), &[("EDGE_JWT_SECRET", "short")])).unwrap_err();
        assert!(
            err.to_string().starts_with("EDGE_JWT_SECRET must be"),
            "{err}"
        );
    }
}
