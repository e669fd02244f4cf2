//! Server configuration, loaded once at start-up from `EDGE_*` environment variables.
//!
//! Every setting has a default that works on a fresh machine in development: SQLite under
//! `./data/`, `127.0.0.1:8080`, pretty logs. Secrets are handled by [`crate::secrets`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Where the server runs, which decides how strict it is about missing configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Missing secrets are generated and kept under the data directory.
    Development,
    /// Missing secrets stop the server at start-up.
    Production,
}

impl Environment {
    /// The name used in `EDGE_ENV`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Production => "production",
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

/// The server's configuration.
#[derive(Clone)]
pub struct Config {
    /// `EDGE_ENV`: `development` (default) or `production`.
    pub environment: Environment,
    /// `EDGE_BIND`: the address to listen on. Default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// `EDGE_DATA_DIR`: where the embedded database and generated secrets live. Default `./data`.
    pub data_dir: PathBuf,
    /// `EDGE_DATABASE_URL`: `sqlite://…` or `postgres://…`. Default: SQLite in the data directory.
    pub database_url: String,
    /// `EDGE_DATABASE_MAX_CONNECTIONS`: the connection pool size. Default 10.
    pub database_max_connections: u32,
    /// `EDGE_MIGRATE_ON_START`: apply pending migrations when serving. Default: true in
    /// development, false in production (run `edge-server migrate` as the schema owner).
    pub migrate_on_start: bool,
    /// `EDGE_EVENT_CONSUMERS`: run the consumers of the event queue on this node:
    /// outbound webhooks (fan-out and deliveries), automation and notifications. Default true; turn it off on nodes that should only serve
    /// requests (any number of nodes may run them: each event is claimed by one).
    pub event_consumers: bool,
    /// `EDGE_LOG_FORMAT`: `json` or `pretty`. Default: pretty in development, json in production.
    pub log_format: LogFormat,
    /// `EDGE_LOG`: a tracing filter such as `info,edge_server=debug`. Default `info`.
    pub log_filter: String,
    /// `EDGE_REQUEST_TIMEOUT_SECS`: how long a request may take. Default 30.
    pub request_timeout: Duration,
    /// `EDGE_MAX_BODY_BYTES`: the largest request body accepted. Default 1 MiB.
    pub max_body_bytes: usize,
    /// `EDGE_SHUTDOWN_GRACE_SECS`: how long in-flight requests may run after a shutdown
    /// signal. Default 30.
    pub shutdown_grace: Duration,
    /// `EDGE_REDIS_URL`: when set, rate limits are shared by every server node through
    /// Redis; otherwise each node limits in memory.
    pub redis_url: Option<String>,
    /// `EDGE_REALTIME_REDIS_PREFIX`: with `EDGE_REDIS_URL`, the prefix of the Redis
    /// channels the Socket.IO nodes talk over; nodes share rooms only with nodes of the
    /// same prefix. Default `edge-socket.io`.
    pub realtime_redis_prefix: String,
    /// `EDGE_REALTIME_EVENTS_PER_SECOND`: how many events (messages, typing, reads, …) one
    /// Socket.IO connection may send per second, with bursts of twice that; more are
    /// acknowledged `rate_limited`. Default 50.
    pub realtime_events_per_second: u32,
    /// `EDGE_PUBLIC_URL`: the address Daraja reaches this server at, the base of every
    /// callback URL handed to it (e.g. `https://pay.example.com`). Default: the server's
    /// own listening address, which is right in development and with the fake Daraja.
    pub public_url: Option<String>,
    /// M-Pesa: the platform's own account, the Daraja address, reconciliation.
    pub mpesa: MpesaConfig,
    /// WhatsApp: the Graph address and the platform app's webhook secrets.
    pub whatsapp: WhatsAppConfig,
    /// `EDGE_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES`: let outbound webhooks reach private,
    /// loopback, link-local and other non-public addresses. Default false: endpoints must
    /// resolve to public internet addresses (checked at registration and every delivery).
    /// Only for development and tests.
    pub webhooks_allow_private_addresses: bool,
    /// The environment variables this configuration was read from that name secrets; the
    /// secrets themselves are loaded by [`crate::secrets::Secrets::load`].
    pub(crate) secret_vars: BTreeMap<String, String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("environment", &self.environment)
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("event_consumers", &self.event_consumers)
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("request_timeout", &self.request_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("realtime_redis_prefix", &self.realtime_redis_prefix)
            .field(
                "realtime_events_per_second",
                &self.realtime_events_per_second,
            )
            .field("public_url", &self.public_url)
            .field("mpesa", &self.mpesa)
            .field("whatsapp", &self.whatsapp)
            .field(
                "webhooks_allow_private_addresses",
                &self.webhooks_allow_private_addresses,
            )
            .field("secret_vars", &self.secret_vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Hides the password in a database URL (`postgres://user:****@host/db`).
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:****{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the configuration from the given variables (the process environment, or a
    /// map in tests). Variables not starting with `EDGE_` are ignored.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(k, v)| k.starts_with("EDGE_") && !v.trim().is_empty())
            .collect();
        let get = |name: &str| vars.get(name).map(|v| v.trim().to_owned());

        let environment = match get("EDGE_ENV").as_deref() {
            None | Some("development") | Some("dev") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => {
                return Err(ConfigError::new(
                    "EDGE_ENV",
                    format!("{other:?} is not one of development, production"),
                ));
            }
        };
        let bind = parse_or("EDGE_BIND", get("EDGE_BIND"), "127.0.0.1:8080".parse().ok())?;
        let data_dir = PathBuf::from(get("EDGE_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url =
            get("EDGE_DATABASE_URL").unwrap_or_else(|| default_sqlite_url(&data_dir));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "EDGE_DATABASE_URL",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        let database_max_connections = parse_or(
            "EDGE_DATABASE_MAX_CONNECTIONS",
            get("EDGE_DATABASE_MAX_CONNECTIONS"),
            Some(10u32),
        )?;
        if database_max_connections == 0 {
            return Err(ConfigError::new(
                "EDGE_DATABASE_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        let migrate_on_start = match get("EDGE_MIGRATE_ON_START").as_deref() {
            None => environment == Environment::Development,
            Some("true") | Some("1") | Some("yes") => true,
            Some("false") | Some("0") | Some("no") => false,
            Some(other) => {
                return Err(ConfigError::new(
                    "EDGE_MIGRATE_ON_START",
                    format!("{other:?} is not true or false"),
                ));
            }
        };
        let event_consumers = match get("EDGE_EVENT_CONSUMERS").as_deref() {
            None | Some("true") | Some("1") | Some("yes") => true,
            Some("false") | Some("0") | Some("no") => false,
            Some(other) => {
                return Err(ConfigError::new(
                    "EDGE_EVENT_CONSUMERS",
                    format!("{other:?} is not true or false"),
                ));
            }
        };
        let log_format = match get("EDGE_LOG_FORMAT").as_deref() {
            None if environment == Environment::Production => LogFormat::Json,
            None => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError::new(
                    "EDGE_LOG_FORMAT",
                    format!("{other:?} is not one of json, pretty"),
                ));
            }
        };
        let log_filter = get("EDGE_LOG").unwrap_or_else(|| "info".into());
        let request_timeout = Duration::from_secs(positive(
            "EDGE_REQUEST_TIMEOUT_SECS",
            parse_or(
                "EDGE_REQUEST_TIMEOUT_SECS",
                get("EDGE_REQUEST_TIMEOUT_SECS"),
                Some(30u64),
            )?,
        )?);
        let max_body_bytes = positive(
            "EDGE_MAX_BODY_BYTES",
            parse_or(
                "EDGE_MAX_BODY_BYTES",
                get("EDGE_MAX_BODY_BYTES"),
                Some(1024 * 1024usize),
            )?,
        )?;
        let shutdown_grace = Duration::from_secs(parse_or(
            "EDGE_SHUTDOWN_GRACE_SECS",
            get("EDGE_SHUTDOWN_GRACE_SECS"),
            Some(30u64),
        )?);
        let redis_url = get("EDGE_REDIS_URL");
        if let Some(url) = &redis_url
            && !url.starts_with("redis://")
        {
            return Err(ConfigError::new(
                "EDGE_REDIS_URL",
                "must start with redis:// (TLS connections to Redis are not supported)",
            ));
        }
        let realtime_redis_prefix = get("EDGE_REALTIME_REDIS_PREFIX")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "edge-socket.io".to_owned());
        let realtime_events_per_second = positive(
            "EDGE_REALTIME_EVENTS_PER_SECOND",
            parse_or(
                "EDGE_REALTIME_EVENTS_PER_SECOND",
                get("EDGE_REALTIME_EVENTS_PER_SECOND"),
                Some(50u32),
            )?,
        )?;
        let secret_vars = crate::secrets::SECRETS
            .iter()
            .filter_map(|spec| {
                vars.get(spec.variable)
                    .map(|v| (spec.variable.to_owned(), v.clone()))
            })
            .collect();

        let public_url = match get("EDGE_PUBLIC_URL") {
            Some(url) => Some(base_url("EDGE_PUBLIC_URL", &url)?),
            None => None,
        };
        let mpesa = MpesaConfig::from_vars(environment, &get)?;
        let whatsapp = WhatsAppConfig::from_vars(&get)?;
        let webhooks_allow_private_addresses =
            match get("EDGE_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES").as_deref() {
                None | Some("false") | Some("0") | Some("no") => false,
                Some("true") | Some("1") | Some("yes") => true,
                Some(other) => {
                    return Err(ConfigError::new(
                        "EDGE_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES",
                        format!("{other:?} is not true or false"),
                    ));
                }
            };

        Ok(Self {
            environment,
            bind,
            data_dir,
            database_url,
            database_max_connections,
            migrate_on_start,
            event_consumers,
            log_format,
            log_filter,
            request_timeout,
            max_body_bytes,
            shutdown_grace,
            redis_url,
            realtime_redis_prefix,
            realtime_events_per_second,
            public_url,
            mpesa,
            whatsapp,
            webhooks_allow_private_addresses,
            secret_vars,
        })
    }

    /// True for SQLite databases.
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

/// The platform's Meta app: where Graph is, and the secrets its webhooks are checked with.
/// `Debug` hides the secrets.
#[derive(Clone)]
pub struct WhatsAppConfig {
    /// `EDGE_WHATSAPP_BASE_URL`: where the Graph API is (the fake's address in tests).
    /// Default `https://graph.facebook.com`.
    pub base_url: Option<String>,
    /// `EDGE_WHATSAPP_APP_SECRET`: the Meta app's secret, which signs every webhook
    /// (`X-Hub-Signature-256`). Without it `/webhooks/whatsapp` answers 503.
    pub app_secret: Option<secrecy::SecretString>,
    /// `EDGE_WHATSAPP_VERIFY_TOKEN`: the token Meta echoes in the webhook handshake.
    /// Without it the handshake answers 503.
    pub verify_token: Option<secrecy::SecretString>,
    /// `EDGE_WHATSAPP_HOLD_HOURS`: how long a message's fee stays reserved waiting for
    /// its outcome before the wallet gets it back. Default 72.
    pub hold_for: Duration,
}

impl fmt::Debug for WhatsAppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |secret: &Option<secrecy::SecretString>| secret.as_ref().map(|_| "[redacted]");
        f.debug_struct("WhatsAppConfig")
            .field("base_url", &self.base_url)
            .field("app_secret", &set(&self.app_secret))
            .field("verify_token", &set(&self.verify_token))
            .field("hold_for", &self.hold_for)
            .finish()
    }
}

impl WhatsAppConfig {
    fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let base_url = match get("EDGE_WHATSAPP_BASE_URL") {
            Some(url) => Some(base_url("EDGE_WHATSAPP_BASE_URL", &url)?),
            None => None,
        };
        let secret = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(secrecy::SecretString::from)
        };
        let hours = positive(
            "EDGE_WHATSAPP_HOLD_HOURS",
            parse_or(
                "EDGE_WHATSAPP_HOLD_HOURS",
                get("EDGE_WHATSAPP_HOLD_HOURS"),
                Some(72u64),
            )?,
        )?;
        Ok(Self {
            base_url,
            app_secret: secret("EDGE_WHATSAPP_APP_SECRET"),
            verify_token: secret("EDGE_WHATSAPP_VERIFY_TOKEN"),
            hold_for: Duration::from_secs(hours * 3600),
        })
    }
}

/// The platform's M-Pesa account and how payments are followed up.
#[derive(Clone)]
pub struct MpesaConfig {
    /// `EDGE_MPESA_BASE_URL`: where Daraja is (the fake's address in tests). Default: the
    /// public sandbox, or production when `EDGE_MPESA_ENV=production`.
    pub base_url: Option<String>,
    /// `EDGE_MPESA_ENV`: `sandbox` (default in development) or `production` (default in
    /// production): which Daraja the platform account and `base_url` default to.
    pub production: bool,
    /// The platform's own paybill or till, which tenants pay for top-ups and
    /// subscriptions. `None` when not configured in production: platform billing then
    /// answers 409 until it is.
    pub platform: Option<PlatformAccount>,
    /// `EDGE_MPESA_RECONCILE_AFTER_SECS`: how long a payment may stay pending before it
    /// is checked with an STK query. Default 120.
    pub reconcile_after: Duration,
    /// `EDGE_MPESA_GIVE_UP_AFTER_SECS`: how long reconciliation keeps asking about a
    /// payment Daraja still calls "being processed" before closing it as timed out.
    /// Default 3600.
    pub give_up_after: Duration,
    /// `EDGE_MPESA_CALLBACK_DIR`: when set, every callback body is also written to a file
    /// there (one per callback), for disputes.
    pub callback_dir: Option<PathBuf>,
}

impl fmt::Debug for MpesaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpesaConfig")
            .field("base_url", &self.base_url)
            .field("production", &self.production)
            .field("platform", &self.platform)
            .field("reconcile_after", &self.reconcile_after)
            .field("give_up_after", &self.give_up_after)
            .field("callback_dir", &self.callback_dir)
            .finish()
    }
}

/// The platform's Daraja app and shortcode. `Debug` hides the secret, the passkey and the
/// initiator's security credential.
#[derive(Clone)]
pub struct PlatformAccount {
    /// `EDGE_MPESA_CONSUMER_KEY`.
    pub consumer_key: String,
    /// `EDGE_MPESA_CONSUMER_SECRET`.
    pub consumer_secret: secrecy::SecretString,
    /// `EDGE_MPESA_SHORTCODE`: the paybill, or a till's store number.
    pub shortcode: String,
    /// `EDGE_MPESA_PASSKEY`: the Lipa na M-Pesa Online passkey.
    pub passkey: secrecy::SecretString,
    /// `EDGE_MPESA_TILL`: set when the platform is paid through a till.
    pub till_number: Option<String>,
    /// `EDGE_MPESA_INITIATOR_NAME` and `EDGE_MPESA_SECURITY_CREDENTIAL`: the API operator
    /// that queries and reverses payments made to the platform. `None` when not set:
    /// operators' status queries and reversals of platform payments then answer 409.
    pub initiator: Option<PlatformInitiator>,
}

/// The platform's initiator (an API operator on the M-Pesa org portal).
#[derive(Clone)]
pub struct PlatformInitiator {
    /// `EDGE_MPESA_INITIATOR_NAME`.
    pub name: String,
    /// `EDGE_MPESA_SECURITY_CREDENTIAL`: the initiator password encrypted with
    /// Safaricom's certificate, as the Daraja portal generates it.
    pub security_credential: secrecy::SecretString,
}

impl fmt::Debug for PlatformAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformAccount")
            .field("consumer_key", &"[redacted]")
            .field("shortcode", &self.shortcode)
            .field("till_number", &self.till_number)
            .field("initiator", &self.initiator)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PlatformInitiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformInitiator")
            .field("name", &self.name)
            .field("security_credential", &"[redacted]")
            .finish()
    }
}

/// Daraja's public sandbox shortcode for STK push.
pub const SANDBOX_SHORTCODE: &str = "174379";
/// The passkey Safaricom publishes for [`SANDBOX_SHORTCODE`].
pub const SANDBOX_PASSKEY: &str =
    "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";

impl MpesaConfig {
    fn from_vars(
        environment: Environment,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let production = match get("EDGE_MPESA_ENV").as_deref() {
            None => environment == Environment::Production,
            Some("sandbox") => false,
            Some("production") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    "EDGE_MPESA_ENV",
                    format!("{other:?} is not one of sandbox, production"),
                ));
            }
        };
        let base_url = match get("EDGE_MPESA_BASE_URL") {
            Some(url) => Some(base_url("EDGE_MPESA_BASE_URL", &url)?),
            None => None,
        };
        let keys = (
            get("EDGE_MPESA_CONSUMER_KEY"),
            get("EDGE_MPESA_CONSUMER_SECRET"),
            get("EDGE_MPESA_SHORTCODE"),
            get("EDGE_MPESA_PASSKEY"),
        );
        let initiator = match (
            get("EDGE_MPESA_INITIATOR_NAME").filter(|v| !v.trim().is_empty()),
            get("EDGE_MPESA_SECURITY_CREDENTIAL").filter(|v| !v.trim().is_empty()),
        ) {
            (Some(name), Some(credential)) => Some(PlatformInitiator {
                name: name.trim().to_owned(),
                security_credential: credential.trim().to_owned().into(),
            }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::new(
                    "EDGE_MPESA_INITIATOR_NAME",
                    "the platform's initiator needs both EDGE_MPESA_INITIATOR_NAME and \
                     EDGE_MPESA_SECURITY_CREDENTIAL",
                ));
            }
        };
        let platform = match keys {
            (Some(key), Some(secret), Some(shortcode), Some(passkey)) => Some(PlatformAccount {
                consumer_key: key,
                consumer_secret: secret.into(),
                shortcode,
                passkey: passkey.into(),
                till_number: get("EDGE_MPESA_TILL"),
                initiator,
            }),
            (None, None, None, None) if !production => Some(PlatformAccount {
                // The public sandbox shortcode; the fake Daraja accepts any app key.
                consumer_key: "edge-development".into(),
                consumer_secret: "edge-development".to_owned().into(),
                shortcode: SANDBOX_SHORTCODE.into(),
                passkey: SANDBOX_PASSKEY.to_owned().into(),
                till_number: None,
                initiator,
            }),
            (None, None, None, None) => None,
            _ => {
                return Err(ConfigError::new(
                    "EDGE_MPESA_CONSUMER_KEY",
                    "the platform account needs all of EDGE_MPESA_CONSUMER_KEY, \
                     EDGE_MPESA_CONSUMER_SECRET, EDGE_MPESA_SHORTCODE and EDGE_MPESA_PASSKEY",
                ));
            }
        };
        let reconcile_after = Duration::from_secs(positive(
            "EDGE_MPESA_RECONCILE_AFTER_SECS",
            parse_or(
                "EDGE_MPESA_RECONCILE_AFTER_SECS",
                get("EDGE_MPESA_RECONCILE_AFTER_SECS"),
                Some(120u64),
            )?,
        )?);
        let give_up_after = Duration::from_secs(positive(
            "EDGE_MPESA_GIVE_UP_AFTER_SECS",
            parse_or(
                "EDGE_MPESA_GIVE_UP_AFTER_SECS",
                get("EDGE_MPESA_GIVE_UP_AFTER_SECS"),
                Some(3600u64),
            )?,
        )?);
        Ok(Self {
            base_url,
            production,
            platform,
            reconcile_after,
            give_up_after,
            callback_dir: get("EDGE_MPESA_CALLBACK_DIR").map(PathBuf::from),
        })
    }
}

/// An `http(s)://host[:port][/path]` base URL, without a trailing slash.
fn base_url(variable: &'static str, url: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.contains(char::is_whitespace) => {
            Ok(trimmed.to_owned())
        }
        _ => Err(ConfigError::new(
            variable,
            format!("{url:?} is not an http:// or https:// address"),
        )),
    }
}

fn default_sqlite_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("edge.db").display())
}

fn parse_or<T: FromStr>(
    variable: &'static str,
    value: Option<String>,
    default: Option<T>,
) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    match value {
        Some(text) => text
            .parse()
            .map_err(|e| ConfigError::new(variable, format!("{text:?} is not valid: {e}"))),
        None => default.ok_or_else(|| ConfigError::new(variable, "is required")),
    }
}

fn positive<T: PartialEq + Default>(variable: &'static str, value: T) -> Result<T, ConfigError> {
    if value == T::default() {
        Err(ConfigError::new(variable, "must be greater than zero"))
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_configuration_means_development_on_sqlite_at_8080() {
        let config = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(config.environment, Environment::Development);
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url, "sqlite://./data/edge.db?mode=rwc");
        assert!(config.migrate_on_start);
        assert_eq!(config.log_format, LogFormat::Pretty);
    }

    #[test]
    fn production_defaults_to_json_logs_and_no_automatic_migrations() {
        let config = Config::from_vars([("EDGE_ENV", "production")]).unwrap();
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(!config.migrate_on_start);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("EDGE_ENV", "staging"),
            ("EDGE_BIND", "localhost"),
            ("EDGE_LOG_FORMAT", "xml"),
            ("EDGE_REQUEST_TIMEOUT_SECS", "0"),
            ("EDGE_DATABASE_URL", "mysql://x"),
            ("EDGE_MAX_BODY_BYTES", "lots"),
            ("EDGE_PUBLIC_URL", "pay.example.com"),
            ("EDGE_MPESA_BASE_URL", "ftp://x"),
            ("EDGE_MPESA_ENV", "live"),
            ("EDGE_MPESA_CONSUMER_KEY", "only-the-key"),
            ("EDGE_MPESA_RECONCILE_AFTER_SECS", "0"),
            ("EDGE_REALTIME_EVENTS_PER_SECOND", "0"),
        ] {
            let err = Config::from_vars([(var, value)]).unwrap_err();
            assert_eq!(err.variable, var);
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn development_pays_the_public_sandbox_shortcode_and_production_needs_an_account() {
        let dev = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
        let platform = dev.mpesa.platform.expect("a development default");
        assert_eq!(platform.shortcode, SANDBOX_SHORTCODE);
        assert!(!dev.mpesa.production);
        let prod = Config::from_vars([("EDGE_ENV", "production")]).unwrap();
        assert!(prod.mpesa.platform.is_none());
        assert!(prod.mpesa.production);
    }

    #[test]
    fn mpesa_secrets_are_redacted_in_debug_output() {
        let config = Config::from_vars([
            ("EDGE_MPESA_CONSUMER_KEY", "key-abc"),
            ("EDGE_MPESA_CONSUMER_SECRET", "secret-xyz"),
            ("EDGE_MPESA_SHORTCODE", "600100"),
            ("EDGE_MPESA_PASSKEY", "passkey-123"),
            ("EDGE_MPESA_INITIATOR_NAME", "ops-initiator"),
            ("EDGE_MPESA_SECURITY_CREDENTIAL", "credential-789"),
        ])
        .unwrap();
        let debug = format!("{config:?}");
        for secret in ["key-abc", "secret-xyz", "passkey-123", "credential-789"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("600100"), "{debug}");
        assert!(debug.contains("ops-initiator"), "{debug}");
    }

    #[test]
    fn the_platform_initiator_needs_both_its_variables() {
        let err = Config::from_vars([("EDGE_MPESA_INITIATOR_NAME", "ops")]).unwrap_err();
        assert_eq!(err.variable, "EDGE_MPESA_INITIATOR_NAME");
        let config = Config::from_vars([
            ("EDGE_MPESA_INITIATOR_NAME", "ops"),
            ("EDGE_MPESA_SECURITY_CREDENTIAL", "c3VwZXJzZWNyZXQ="),
        ])
        .unwrap();
        let initiator = config
            .mpesa
            .platform
            .and_then(|p| p.initiator)
            .expect("an initiator");
        assert_eq!(initiator.name, "ops");
    }

    #[test]
    fn database_passwords_are_redacted_in_debug_output() {
        let config =
            Config::from_vars([("EDGE_DATABASE_URL", "postgres://edge:hunter2@db:5432/edge")])
                .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("postgres://edge:****@db:5432/edge"),
            "{debug}"
        );
    }
}
