//! `edge-server fake-whatsapp`: edge-whatsapp's fake Graph API as a standalone server, so
//! anyone can test WhatsApp sends and signed status webhooks without Meta or Rust code.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use edge_whatsapp::fake::{Delivery, FakeEvent, FakeGraph, Outcome};
use edge_whatsapp::webhook::{EventKind, parse_events};
use secrecy::{ExposeSecret as _, SecretString};

use super::fake_daraja::{Quiet, origin};
use crate::shutdown_signal;

/// The number registered when no `--number` is given.
const DEFAULT_NUMBER: (&str, &str, &str) = ("100000000000001", "200000000000001", "+254700000001");

/// The options of `edge-server fake-whatsapp` (its help text is on `Command::FakeWhatsApp`).
#[derive(Debug, clap::Args)]
pub(super) struct FakeWhatsAppArgs {
    /// Address to listen on; with port 0 a free port is picked (and printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8091")]
    bind: SocketAddr,
    /// Where signed webhooks are posted, such as
    /// http://127.0.0.1:8080/webhooks/whatsapp. Without it, statuses are decided and
    /// logged but posted nowhere.
    #[arg(long, value_name = "URL", value_parser = Quiet(parse_webhook_url))]
    webhook_url: Option<String>,
    /// The Meta app secret webhooks are signed with (`X-Hub-Signature-256`). Required.
    #[arg(
        long,
        value_name = "SECRET",
        env = "EDGE_WHATSAPP_APP_SECRET",
        hide_env_values = true,
        value_parser = Quiet(parse_app_secret)
    )]
    app_secret: SecretString,
    /// A business number: its phone number id, WABA id and display number (repeatable).
    /// Without any, 100000000000001:200000000000001:+254700000001 is registered.
    #[arg(long = "number", value_name = "PNID:WABA:DISPLAY", value_parser = Quiet(parse_number))]
    numbers: Vec<Number>,
    /// An access token to accept (repeatable); others get error 190. Without any, every
    /// non-empty token is accepted.
    #[arg(long = "token", value_name = "TOKEN", value_parser = Quiet(parse_token))]
    tokens: Vec<SecretString>,
    /// Milliseconds before each webhook, so the send's answer comes first.
    #[arg(long, value_name = "MS", default_value_t = 20)]
    status_delay_ms: u64,
    /// What sends to a recipient (a phone number or a BSUID) do (repeatable): read,
    /// delivered, sent, failed:CODE (a failed status with that error code), or a rejection
    /// of the send itself: window-closed, undeliverable, rate-limited, pair-rate-limited,
    /// invalid-token. Other recipients get sent, delivered and read.
    #[arg(long = "outcome", value_name = "RECIPIENT=OUTCOME", value_parser = Quiet(parse_outcome))]
    outcomes: Vec<RecipientOutcome>,
    /// Post every status webhook twice, to test de-duplication.
    #[arg(long)]
    duplicate_statuses: bool,
    /// Post each message's statuses newest first (read before delivered before sent), to
    /// test that a status only moves forward.
    #[arg(long)]
    reverse_statuses: bool,
}

/// `--number PNID:WABA:DISPLAY`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Number {
    phone_number_id: String,
    waba_id: String,
    display: String,
}

/// `--outcome RECIPIENT=OUTCOME`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RecipientOutcome {
    /// As given: the fake matches phone numbers by their digits.
    recipient: String,
    outcome: Outcome,
}

fn parse_webhook_url(value: &str) -> Result<String, String> {
    let parsed = url::Url::parse(value).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("the webhook URL must be http or https, with a host".into());
    }
    Ok(value.to_owned())
}

fn parse_app_secret(value: &str) -> Result<SecretString, String> {
    if value.trim().is_empty() {
        return Err("the app secret is empty".into());
    }
    Ok(SecretString::from(value))
}

fn parse_token(value: &str) -> Result<SecretString, String> {
    if value.is_empty() {
        return Err("the token is empty".into());
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the token contains whitespace or control characters".into());
    }
    Ok(SecretString::from(value))
}

fn is_id(value: &str) -> bool {
    !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit())
}

/// The digits of a phone number written with `+`, spaces, dashes or brackets, if it is one
/// (7 to 15 digits, as E.164 allows).
fn phone_digits(value: &str) -> Option<String> {
    if !value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')'))
    {
        return None;
    }
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    (7..=15).contains(&digits.len()).then_some(digits)
}

fn parse_number(value: &str) -> Result<Number, String> {
    let mut parts = value.splitn(3, ':');
    let (Some(pnid), Some(waba), Some(display)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("expected PNID:WABA:DISPLAY".into());
    };
    if !is_id(pnid) {
        return Err(format!("the phone number id {pnid:?} is not digits"));
    }
    if !is_id(waba) {
        return Err(format!("the WABA id {waba:?} is not digits"));
    }
    if phone_digits(display).is_none() {
        return Err(format!(
            "the display number {display:?} is not a phone number"
        ));
    }
    Ok(Number {
        phone_number_id: pnid.to_owned(),
        waba_id: waba.to_owned(),
        display: display.to_owned(),
    })
}

fn parse_outcome(value: &str) -> Result<RecipientOutcome, String> {
    let (recipient, name) = value.split_once('=').ok_or("expected RECIPIENT=OUTCOME")?;
    // A BSUID is a country code, a dot and digits, such as US.13491208655302741918.
    let bsuid = recipient.split_once('.').is_some_and(|(cc, id)| {
        !cc.is_empty()
            && cc.bytes().all(|b| b.is_ascii_uppercase())
            && !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
    });
    if !bsuid && phone_digits(recipient).is_none() {
        return Err(format!("{recipient:?} is not a phone number or a BSUID"));
    }
    let outcome = match name {
        "read" => Outcome::Read,
        "delivered" => Outcome::Delivered,
        "sent" => Outcome::Sent,
        "window-closed" => Outcome::WindowClosed,
        "undeliverable" => Outcome::Undeliverable,
        "rate-limited" => Outcome::RateLimited,
        "pair-rate-limited" => Outcome::PairRateLimited,
        "invalid-token" => Outcome::InvalidToken,
        other => match other.strip_prefix("failed:") {
            Some(code) => Outcome::Failed {
                code: code
                    .parse::<i64>()
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| format!("in failed:CODE, {code:?} is not an error code"))?,
            },
            None => {
                return Err(format!(
                    "{other:?} is not one of read, delivered, sent, failed:CODE, \
                     window-closed, undeliverable, rate-limited, pair-rate-limited, \
                     invalid-token"
                ));
            }
        },
    };
    Ok(RecipientOutcome {
        recipient: recipient.to_owned(),
        outcome,
    })
}

/// The first phone number id given twice, if any.
fn repeated_number(numbers: &[Number]) -> Option<&str> {
    let mut seen = HashSet::new();
    numbers
        .iter()
        .map(|n| n.phone_number_id.as_str())
        .find(|id| !seen.insert(*id))
}

/// Runs the fake until Ctrl-C or SIGTERM.
pub(super) async fn run(args: FakeWhatsAppArgs) -> ExitCode {
    if let Some(pnid) = repeated_number(&args.numbers) {
        eprintln!("edge-server: --number {pnid} is given twice");
        return ExitCode::from(2);
    }
    let numbers = if args.numbers.is_empty() {
        let (pnid, waba, display) = DEFAULT_NUMBER;
        vec![Number {
            phone_number_id: pnid.into(),
            waba_id: waba.into(),
            display: display.into(),
        }]
    } else {
        args.numbers.clone()
    };
    let mut builder = FakeGraph::builder()
        .bind(args.bind)
        .app_secret(args.app_secret.clone())
        .status_delay(Duration::from_millis(args.status_delay_ms))
        .duplicate_statuses(args.duplicate_statuses)
        .reverse_statuses(args.reverse_statuses);
    for number in &numbers {
        builder = builder.number(&number.phone_number_id, &number.waba_id, &number.display);
    }
    for token in &args.tokens {
        builder = builder.valid_token(token.expose_secret());
    }
    if let Some(url) = &args.webhook_url {
        builder = builder.webhook_url(url);
    }
    let fake = match builder.start().await {
        Ok(fake) => fake,
        Err(edge_whatsapp::Error::Connect { message }) => {
            eprintln!("edge-server: {message}");
            return ExitCode::FAILURE;
        }
        Err(err) => {
            eprintln!("edge-server: {err}");
            return ExitCode::FAILURE;
        }
    };
    fake.on_event(log_event);
    for scripted in &args.outcomes {
        fake.script(&scripted.recipient, scripted.outcome.clone());
    }

    let url = fake.base_url();
    let addr = fake.addr();
    if addr.ip().is_unspecified() {
        println!("fake WhatsApp listening on {addr}; on this machine: {url}");
    } else {
        println!("fake WhatsApp listening on {url}");
    }
    println!("export EDGE_WHATSAPP_BASE_URL={url}");
    for number in &numbers {
        println!(
            "number {} (WABA {}): {}",
            number.phone_number_id, number.waba_id, number.display
        );
    }
    tracing::info!(
        address = %addr,
        numbers = numbers.len(),
        tokens = args.tokens.len(),
        scripted_recipients = args.outcomes.len(),
        webhooks_to = %args.webhook_url.as_deref().map(origin).unwrap_or_else(|| "nowhere".into()),
        status_delay_ms = args.status_delay_ms,
        duplicate_statuses = args.duplicate_statuses,
        reverse_statuses = args.reverse_statuses,
        "fake WhatsApp ready{}",
        if args.tokens.is_empty() {
            "; every access token is accepted"
        } else {
            ""
        }
    );

    shutdown_signal().await;
    drop(fake);
    tracing::info!("fake WhatsApp stopped");
    ExitCode::SUCCESS
}

/// Logs what the fake did. Events carry no token; webhook URLs are cut to their origin,
/// since their paths may hold a secret, and message text is left out.
fn log_event(event: &FakeEvent) {
    match event {
        FakeEvent::Answered {
            method,
            path,
            status,
            code,
        } => match code {
            Some(code) => tracing::info!(%method, %path, status, code, "request"),
            None => tracing::info!(%method, %path, status, "request"),
        },
        FakeEvent::Posted(delivery) => log_delivery(delivery),
        other => tracing::info!(event = ?other, "fake WhatsApp event"),
    }
}

fn log_delivery(delivery: &Delivery) {
    let what = describe(delivery);
    match delivery.response_status {
        Some(status) => {
            tracing::info!(to = %origin(&delivery.url), status, %what, "webhook sent");
        }
        None if delivery.url.is_empty() => {
            tracing::info!(%what, "webhook not posted: no --webhook-url");
        }
        None => tracing::warn!(
            to = %origin(&delivery.url),
            %what,
            "webhook not delivered (refused, unreachable or timed out)"
        ),
    }
}

/// `sent wamid.…`, `inbound wamid.…`: what a webhook carries, one item per event.
fn describe(delivery: &Delivery) -> String {
    let Ok(events) = parse_events(&delivery.body) else {
        return "unparseable payload".into();
    };
    let items: Vec<String> = events
        .iter()
        .map(|event| match &event.kind {
            EventKind::Status(status) => format!("{} {}", status.status.as_str(), status.id),
            EventKind::Message(message) => format!("inbound {}", message.id),
            _ => "other".to_owned(),
        })
        .collect();
    items.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_or_say_what_is_wrong() {
        assert_eq!(
            parse_number("100000000000001:200000000000001:+254 700 000001").unwrap(),
            Number {
                phone_number_id: "100000000000001".into(),
                waba_id: "200000000000001".into(),
                display: "+254 700 000001".into(),
            }
        );
        for (bad, expected) in [
            ("100000000000001", "PNID:WABA:DISPLAY"),
            ("100:200", "PNID:WABA:DISPLAY"),
            ("abc:200:+254700000001", "phone number id"),
            (":200:+254700000001", "phone number id"),
            ("100:2x0:+254700000001", "WABA id"),
            ("100:200:call me", "display number"),
            ("100:200:+12", "display number"),
        ] {
            let err = parse_number(bad).unwrap_err();
            assert!(err.contains(expected), "{bad}: {err}");
        }
        let twice = [
            parse_number("1:2:+254700000001").unwrap(),
            parse_number("3:2:+254700000002").unwrap(),
            parse_number("1:4:+254700000003").unwrap(),
        ];
        assert_eq!(repeated_number(&twice), Some("1"));
        assert_eq!(repeated_number(&twice[..2]), None);
    }

    #[test]
    fn outcomes_parse_or_say_what_is_wrong() {
        for (text, outcome) in [
            ("read", Outcome::Read),
            ("delivered", Outcome::Delivered),
            ("sent", Outcome::Sent),
            ("failed:131026", Outcome::Failed { code: 131026 }),
            ("window-closed", Outcome::WindowClosed),
            ("undeliverable", Outcome::Undeliverable),
            ("rate-limited", Outcome::RateLimited),
            ("pair-rate-limited", Outcome::PairRateLimited),
            ("invalid-token", Outcome::InvalidToken),
        ] {
            let parsed = parse_outcome(&format!("+254 711 000 001={text}")).unwrap();
            assert_eq!(parsed.outcome, outcome, "{text}");
            assert_eq!(parsed.recipient, "+254 711 000 001");
        }
        let bsuid = parse_outcome("US.13491208655302741918=sent").unwrap();
        assert_eq!(bsuid.recipient, "US.13491208655302741918");
        for (bad, expected) in [
            ("254711000001", "RECIPIENT=OUTCOME"),
            ("254711000001=maybe", "pair-rate-limited"),
            ("254711000001=failed:", "not an error code"),
            ("254711000001=failed:x", "not an error code"),
            ("254711000001=failed:-5", "not an error code"),
            ("12=read", "not a phone number or a BSUID"),
            ("someone=read", "not a phone number or a BSUID"),
            ("US.=read", "not a phone number or a BSUID"),
        ] {
            let err = parse_outcome(bad).unwrap_err();
            assert!(err.contains(expected), "{bad}: {err}");
        }
    }

    #[test]
    fn secrets_and_urls_are_checked_without_being_repeated() {
        let token = parse_token("EAAG-secret-token").unwrap();
        assert_eq!(token.expose_secret(), "EAAG-secret-token");
        assert!(!format!("{token:?}").contains("secret-token"));
        for bad in ["", "two words", "line\nbreak"] {
            let err = parse_token(bad).unwrap_err();
            assert!(!err.contains("words") && !err.contains("break"), "{err}");
        }
        assert!(parse_app_secret("  ").is_err());
        assert_eq!(
            parse_app_secret("app-secret").unwrap().expose_secret(),
            "app-secret"
        );
        assert!(parse_webhook_url("http://127.0.0.1:8080/webhooks/whatsapp").is_ok());
        assert!(parse_webhook_url("https://hooks.example.com/wa").is_ok());
        for bad in ["ftp://example.com/x", "not a url", "/webhooks/whatsapp"] {
            assert!(parse_webhook_url(bad).is_err(), "{bad}");
        }
    }
}
