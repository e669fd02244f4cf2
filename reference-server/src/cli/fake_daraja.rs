//! `edge-server fake-daraja`: edge-mpesa's fake Daraja as a standalone server, so anyone
//! can test against it without writing Rust.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use edge_mpesa::fake::{FakeDaraja, FakeEvent, FakeOutcome};
use secrecy::{ExposeSecret as _, SecretString};

use crate::shutdown_signal;

/// The public sandbox STK shortcode, registered when no `--merchant` is given.
const SANDBOX_SHORTCODE: &str = "174379";
/// Its passkey, published by Safaricom for the sandbox.
const SANDBOX_PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";

/// The options of `edge-server fake-daraja` (its help text is on `Command::FakeDaraja`).
#[derive(Debug, clap::Args)]
pub(super) struct FakeDarajaArgs {
    /// Address to listen on; with port 0 a free port is picked (and printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    bind: SocketAddr,
    /// An STK shortcode and its passkey (repeatable). Without any, the public sandbox
    /// shortcode 174379 with its published passkey is registered.
    #[arg(long = "merchant", value_name = "SHORTCODE:PASSKEY", value_parser = Quiet(parse_merchant))]
    merchants: Vec<Merchant>,
    /// A consumer key and secret (repeatable). Without any, every key and secret gets a
    /// token.
    #[arg(long = "app", value_name = "KEY:SECRET", value_parser = Quiet(parse_app))]
    apps: Vec<App>,
    /// Milliseconds between a request and its callback (the time the payer takes).
    #[arg(long, value_name = "MS", default_value_t = 50)]
    callback_delay_ms: u64,
    /// The outcome of STK pushes and B2C payouts to a phone (repeatable): success,
    /// cancelled, timed-out, expired, insufficient-funds or wrong-pin. Other phones
    /// succeed.
    #[arg(long = "outcome", value_name = "PHONE=OUTCOME", value_parser = Quiet(parse_outcome))]
    outcomes: Vec<PhoneOutcome>,
    /// Post every callback twice (for C2B, the confirmation).
    #[arg(long, conflicts_with = "drop_callbacks")]
    duplicate_callbacks: bool,
    /// Decide outcomes but post no callbacks (for C2B, no confirmation): only STK query
    /// tells the truth.
    #[arg(long)]
    drop_callbacks: bool,
}

/// `--merchant SHORTCODE:PASSKEY`.
#[derive(Debug, Clone)]
struct Merchant {
    shortcode: String,
    passkey: SecretString,
}

/// `--app KEY:SECRET`.
#[derive(Debug, Clone)]
struct App {
    key: String,
    secret: SecretString,
}

/// `--outcome PHONE=OUTCOME`.
#[derive(Debug, Clone)]
struct PhoneOutcome {
    /// 12 digits, as Daraja writes numbers.
    phone: String,
    outcome: FakeOutcome,
}

/// A value parser whose errors say what is wrong without repeating the value, which may
/// hold a passkey or a consumer secret (clap's own errors quote it). Shared with
/// `fake-whatsapp`, whose tokens and app secret need the same care.
#[derive(Clone)]
pub(super) struct Quiet<T>(pub(super) fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Quiet<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let name = arg.map(ToString::to_string).unwrap_or_default();
        value
            .to_str()
            .ok_or_else(|| "it is not valid UTF-8".to_owned())
            .and_then(self.0)
            .map_err(|reason| {
                clap::Error::raw(
                    ErrorKind::ValueValidation,
                    format!("invalid value for '{name}': {reason}\n"),
                )
                .with_cmd(cmd)
            })
    }
}

fn parse_merchant(value: &str) -> Result<Merchant, String> {
    let (shortcode, passkey) = value.split_once(':').ok_or("expected SHORTCODE:PASSKEY")?;
    if !(5..=7).contains(&shortcode.len()) || !shortcode.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the shortcode {shortcode:?} is not 5 to 7 digits"));
    }
    if passkey.trim().is_empty() {
        return Err(format!("the passkey of {shortcode} is empty"));
    }
    Ok(Merchant {
        shortcode: shortcode.to_owned(),
        passkey: SecretString::from(passkey),
    })
}

fn parse_app(value: &str) -> Result<App, String> {
    let (key, secret) = value.split_once(':').ok_or("expected KEY:SECRET")?;
    if key.trim().is_empty() {
        return Err("the consumer key is empty".into());
    }
    if secret.is_empty() {
        return Err(format!("the consumer secret of {key:?} is empty"));
    }
    Ok(App {
        key: key.to_owned(),
        secret: SecretString::from(secret),
    })
}

fn parse_outcome(value: &str) -> Result<PhoneOutcome, String> {
    let (phone, name) = value.split_once('=').ok_or("expected PHONE=OUTCOME")?;
    let phone = phone
        .parse::<edge_core::Msisdn>()
        .map_err(|e| format!("{phone:?} is not a phone number: {}", e.reason()))?;
    let outcome = match name {
        "success" => FakeOutcome::Success,
        "cancelled" => FakeOutcome::Cancelled,
        "timed-out" => FakeOutcome::TimedOut,
        "expired" => FakeOutcome::Expired,
        "insufficient-funds" => FakeOutcome::InsufficientFunds,
        "wrong-pin" => FakeOutcome::WrongPin,
        other => {
            return Err(format!(
                "{other:?} is not one of success, cancelled, timed-out, expired, \
                 insufficient-funds, wrong-pin"
            ));
        }
    };
    Ok(PhoneOutcome {
        phone: phone.daraja().to_owned(),
        outcome,
    })
}

/// Runs the fake until Ctrl-C or SIGTERM.
pub(super) async fn run(args: FakeDarajaArgs) -> ExitCode {
    let fake = match FakeDaraja::start_on(args.bind).await {
        Ok(fake) => fake,
        Err(err) => {
            eprintln!("edge-server: {err}");
            return ExitCode::FAILURE;
        }
    };
    fake.on_event(log_event);
    configure(&fake, &args);

    let url = fake.base_url();
    let addr = fake.local_addr();
    if addr.ip().is_unspecified() {
        println!("fake Daraja listening on {addr}; on this machine: {url}");
    } else {
        println!("fake Daraja listening on {url}");
    }
    println!("export EDGE_MPESA_BASE_URL={url}");
    let shortcodes: Vec<&str> = if args.merchants.is_empty() {
        vec![SANDBOX_SHORTCODE]
    } else {
        args.merchants
            .iter()
            .map(|m| m.shortcode.as_str())
            .collect()
    };
    tracing::info!(
        address = %addr,
        shortcodes = ?shortcodes,
        apps = args.apps.len(),
        scripted_phones = args.outcomes.len(),
        callback_delay_ms = args.callback_delay_ms,
        duplicate_callbacks = args.duplicate_callbacks,
        drop_callbacks = args.drop_callbacks,
        "fake Daraja ready{}",
        if args.apps.is_empty() {
            "; every consumer key and secret gets a token"
        } else {
            ""
        }
    );

    shutdown_signal().await;
    tracing::info!("fake Daraja stopped");
    ExitCode::SUCCESS
}

fn configure(fake: &FakeDaraja, args: &FakeDarajaArgs) {
    if args.merchants.is_empty() {
        fake.merchant(SANDBOX_SHORTCODE, SANDBOX_PASSKEY);
    }
    for merchant in &args.merchants {
        fake.merchant(&merchant.shortcode, merchant.passkey.expose_secret());
    }
    for app in &args.apps {
        fake.app(&app.key, app.secret.expose_secret());
    }
    for scripted in &args.outcomes {
        fake.outcome_for_phone(&scripted.phone, scripted.outcome.clone());
    }
    fake.callback_delay(Duration::from_millis(args.callback_delay_ms))
        .duplicate_callbacks(args.duplicate_callbacks)
        .drop_callbacks(args.drop_callbacks);
}

/// Logs what the fake did. Events carry no headers or bodies; callback URLs are cut to
/// their origin, since their paths may hold a tenant's secret token.
fn log_event(event: &FakeEvent) {
    match event {
        FakeEvent::Answered {
            method,
            path,
            status,
            error,
        } => match error {
            Some(error) => tracing::info!(%method, %path, status, %error, "request"),
            None => tracing::info!(%method, %path, status, "request"),
        },
        FakeEvent::CallbackSent { kind, url, status } => match status {
            Some(status) => {
                tracing::info!(kind = kind.as_str(), to = %origin(url), status, "callback sent");
            }
            None => tracing::warn!(
                kind = kind.as_str(),
                to = %origin(url),
                "callback not delivered (refused, unreachable or timed out)"
            ),
        },
        FakeEvent::C2bFinished { trans_id, status } => {
            tracing::info!(%trans_id, ?status, "C2B payment settled");
        }
        other => tracing::info!(event = ?other, "fake Daraja event"),
    }
}

/// `scheme://host:port` of a URL, without user information, path or query.
pub(super) fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if scheme.is_empty() {
        host.to_owned()
    } else {
        format!("{scheme}://{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_or_say_what_is_wrong() {
        let merchant = parse_merchant("600984:key:with:colons").unwrap();
        assert_eq!(merchant.shortcode, "600984");
        assert_eq!(merchant.passkey.expose_secret(), "key:with:colons");
        assert!(!format!("{merchant:?}").contains("colons"));
        for bad in [
            "600984",
            "6009:abc",
            "60098411:abc",
            "60a984:abc",
            "600984:  ",
        ] {
            let err = parse_merchant(bad).err().unwrap();
            assert!(!err.contains("abc"), "{err}");
        }

        let app = parse_app("key:s3cret").unwrap();
        assert_eq!(
            (app.key.as_str(), app.secret.expose_secret()),
            ("key", "s3cret")
        );
        assert!(!format!("{app:?}").contains("s3cret"));
        for bad in ["key", ":s3cret", "key:"] {
            assert!(parse_app(bad).is_err(), "{bad}");
        }

        let scripted = parse_outcome("0700 000 032=cancelled").unwrap();
        assert_eq!(scripted.phone, "254700000032");
        assert_eq!(scripted.outcome, FakeOutcome::Cancelled);
        for (text, outcome) in [
            ("success", FakeOutcome::Success),
            ("timed-out", FakeOutcome::TimedOut),
            ("expired", FakeOutcome::Expired),
            ("insufficient-funds", FakeOutcome::InsufficientFunds),
            ("wrong-pin", FakeOutcome::WrongPin),
        ] {
            let parsed = parse_outcome(&format!("+254708374149={text}")).unwrap();
            assert_eq!(parsed.outcome, outcome);
        }
        assert!(
            parse_outcome("0708374149=maybe")
                .unwrap_err()
                .contains("wrong-pin")
        );
        assert!(parse_outcome("12=success").is_err());
        assert!(parse_outcome("0708374149").is_err());
    }

    #[test]
    fn callback_urls_are_logged_by_origin_only() {
        for (url, expected) in [
            (
                "https://pay.example.com/cb/tnt/7f3c2a9e/stk",
                "https://pay.example.com",
            ),
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
            ("http://user:pw@host:1/x?token=1", "http://host:1"),
            ("http://host?token=1", "http://host"),
        ] {
            assert_eq!(origin(url), expected);
        }
    }
}
