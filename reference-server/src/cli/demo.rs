//! `edge-server demo`: the server with the fake Daraja and the fake WhatsApp Cloud API in
//! one process, walked through its main flows over HTTP, as a user would with curl.
//!
//! It signs up an organization, saves its M-Pesa settings and checks them against the
//! fake Daraja, connects a WhatsApp number of the fake Graph, tops the wallet up by STK
//! push, lets a customer write in (a signed webhook from the fake), sends them a message
//! that is charged, sends another that the fake makes fail (its fee is held, then
//! released), and moves a deal to the next stage. After each step it reads
//! `GET /api/v1/wallet` and checks the balance against what the step should have done;
//! a mismatch fails the step. Then it keeps serving, with the owner's token printed,
//! until Ctrl-C (or, with `--exit-when-done`, stops at once).
//!
//! The demo reads no `EDGE_*` setting except `EDGE_LOG` and `EDGE_LOG_FORMAT`, so a
//! shell configured for a real server cannot point it at a real database or Daraja.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use edge_core::{Currency, Money};
use edge_mpesa::fake::FakeDaraja;
use edge_whatsapp::fake::{FakeGraph, Outcome};
use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{Config, SANDBOX_PASSKEY, SANDBOX_SHORTCODE};
use crate::{Application, shutdown_signal};

/// How long any one wait (an HTTP answer, a callback, a status) may take before the step
/// fails.
const WAIT: Duration = Duration::from_secs(30);
/// How often a step looks again while waiting.
const POLL: Duration = Duration::from_millis(100);

/// What the wallet is topped up with, in whole shillings.
const TOP_UP_KES: i64 = 100;
/// The number that pays the top-up (the sandbox's test MSISDN).
const PAYER: &str = "0708374149";
/// The customer who writes in and gets the charged message.
const CUSTOMER: &str = "254712000001";
/// The customer's name on WhatsApp.
const CUSTOMER_NAME: &str = "Achieng Otieno";
/// A recipient the fake WhatsApp accepts messages for, then reports them failed.
const UNREACHABLE: &str = "254712000099";
/// The Graph error code of that failure: message undeliverable.
const UNDELIVERABLE: i64 = 131026;
/// The organization's own M-Pesa shortcode, registered with the fake Daraja.
const TENANT_SHORTCODE: &str = "600100";

/// The options of `edge-server demo` (its help text is on `Command::Demo`).
#[derive(Debug, clap::Args)]
pub(super) struct DemoArgs {
    /// Where the server listens. The default picks a free port on loopback, so the demo
    /// never clashes with a running server; the URL is printed.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// The database (`sqlite://…` or `postgres://…`). Default: SQLite in the data
    /// directory.
    #[arg(long, value_name = "URL", value_parser = parse_database_url)]
    database_url: Option<String>,
    /// Where the SQLite database and the server's generated secrets live. Default: a new
    /// temporary directory, removed when the demo stops.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Stop after the last step instead of serving until Ctrl-C; exit 0 only if every
    /// step succeeded.
    #[arg(long)]
    exit_when_done: bool,
}

/// `--database-url`: SQLite or PostgreSQL, as the server takes them.
fn parse_database_url(value: &str) -> Result<String, String> {
    let value = value.trim();
    if ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| value.starts_with(scheme))
    {
        Ok(value.to_owned())
    } else {
        Err("must start with sqlite:, postgres:// or postgresql://".into())
    }
}

/// The logging settings the demo honours; `EDGE_LOG` defaults to `warn` so the server's
/// request logs do not bury the steps.
pub(super) fn log_vars(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = vars
        .filter(|(name, _)| name == "EDGE_LOG" || name == "EDGE_LOG_FORMAT")
        .collect();
    if !kept
        .iter()
        .any(|(name, value)| name == "EDGE_LOG" && !value.trim().is_empty())
    {
        kept.push(("EDGE_LOG".into(), "warn".into()));
    }
    kept
}

/// Runs the demo. `logging` carries the log settings already installed.
pub(super) async fn run(args: DemoArgs, logging: &Config) -> ExitCode {
    let started = match start(&args, logging).await {
        Ok(started) => started,
        Err(message) => {
            eprintln!("edge-server demo: cannot start: {message}");
            return ExitCode::FAILURE;
        }
    };
    let Started {
        server,
        stop,
        base_url,
        database,
        mut demo,
        _data_dir,
    } = started;
    println!("Edge demo: server on {base_url} ({database})");
    println!(
        "  fake Daraja on {}, fake WhatsApp on {}",
        demo.daraja.base_url(),
        demo.graph.base_url()
    );

    let walked = tokio::select! {
        walked = walk(&mut demo) => Some(walked),
        () = shutdown_signal() => None,
    };
    let code = match &walked {
        None => {
            println!("interrupted");
            ExitCode::FAILURE
        }
        Some(Ok(())) => {
            println!("All {} steps succeeded.", Step::ALL.len());
            ExitCode::SUCCESS
        }
        Some(Err(failed)) => {
            eprintln!(
                "edge-server demo: step {} failed: {}",
                failed.step, failed.why
            );
            ExitCode::FAILURE
        }
    };
    if walked.is_some() && !args.exit_when_done {
        explain(&demo, &base_url);
        shutdown_signal().await;
    }
    stop.send(()).ok();
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            eprintln!("edge-server demo: server error: {err}");
            return ExitCode::FAILURE;
        }
        Err(err) => {
            eprintln!("edge-server demo: the server task failed: {err}");
            return ExitCode::FAILURE;
        }
    }
    code
}

/// What [`start`] leaves running.
struct Started {
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: tokio::sync::oneshot::Sender<()>,
    base_url: String,
    database: String,
    demo: Demo,
    /// Removed when the demo ends (when no `--data-dir` was given).
    _data_dir: Option<tempfile::TempDir>,
}

/// Starts both fakes, then the server pointed at them, and hands back a [`Demo`] that
/// talks to the server.
async fn start(args: &DemoArgs, logging: &Config) -> Result<Started, String> {
    let (data_dir, temporary) = match &args.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("edge-demo-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            (dir.path().to_owned(), Some(dir))
        }
    };

    let daraja = FakeDaraja::start().await.map_err(|e| e.to_string())?;
    daraja
        .merchant(SANDBOX_SHORTCODE, SANDBOX_PASSKEY)
        .callback_delay(Duration::from_millis(300));
    let run_id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let tenant_passkey = format!("demo-passkey-{run_id}");
    daraja.merchant(TENANT_SHORTCODE, &tenant_passkey);

    // A fresh business number each run, so a reused database never finds it taken.
    let number = BusinessNumber {
        phone_number_id: format!("1{:014}", rand::random::<u64>() % 100_000_000_000_000),
        waba_id: format!("2{:014}", rand::random::<u64>() % 100_000_000_000_000),
        display: "+254700000001".into(),
    };
    let app_secret = crate::secrets::generate();
    let graph = FakeGraph::builder()
        .app_secret(SecretString::from(app_secret.clone()))
        .number(&number.phone_number_id, &number.waba_id, &number.display)
        .start()
        .await
        .map_err(|e| format!("the fake WhatsApp: {e}"))?;
    graph.script(
        UNREACHABLE,
        Outcome::Failed {
            code: UNDELIVERABLE,
        },
    );

    let mut vars = vec![
        ("EDGE_ENV".to_owned(), "development".to_owned()),
        ("EDGE_BIND".to_owned(), args.bind.to_string()),
        ("EDGE_DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("EDGE_LOG".to_owned(), logging.log_filter.clone()),
        (
            "EDGE_LOG_FORMAT".to_owned(),
            match logging.log_format {
                crate::LogFormat::Json => "json",
                crate::LogFormat::Pretty => "pretty",
            }
            .to_owned(),
        ),
        ("EDGE_SHUTDOWN_GRACE_SECS".to_owned(), "2".to_owned()),
        ("EDGE_MPESA_BASE_URL".to_owned(), daraja.base_url()),
        (
            "EDGE_WHATSAPP_BASE_URL".to_owned(),
            graph.base_url().to_owned(),
        ),
        ("EDGE_WHATSAPP_APP_SECRET".to_owned(), app_secret),
        (
            "EDGE_WHATSAPP_VERIFY_TOKEN".to_owned(),
            crate::secrets::generate(),
        ),
    ];
    if let Some(url) = &args.database_url {
        vars.push(("EDGE_DATABASE_URL".to_owned(), url.clone()));
    }
    if temporary.is_some() {
        // Nothing to keep them for: fresh secrets, without the warning that development
        // values were generated.
        vars.push(("EDGE_JWT_SECRET".to_owned(), crate::secrets::generate()));
        vars.push((
            "EDGE_CREDENTIALS_KEY".to_owned(),
            crate::secrets::generate(),
        ));
    }
    if args.bind.ip().is_unspecified() && args.bind.port() != 0 {
        // Callbacks must name an address the fakes can connect to.
        vars.push((
            "EDGE_PUBLIC_URL".to_owned(),
            format!("http://{}", loopback(args.bind)),
        ));
    }
    let config = Config::from_vars(vars).map_err(|e| e.to_string())?;
    let database = crate::config::redact_url(&config.database_url);
    let app = Application::build(config)
        .await
        .map_err(|e| e.to_string())?;
    let base_url = format!("http://{}", loopback(app.address()));
    graph.set_webhook_url(format!("{base_url}/webhooks/whatsapp"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        stopped.await.ok();
    }));

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    Ok(Started {
        server,
        stop,
        base_url: base_url.clone(),
        database,
        demo: Demo {
            api: Api {
                http,
                base_url,
                token: None,
            },
            daraja,
            graph,
            number,
            run_id,
            tenant_passkey,
            owner: None,
            currency: Currency::Kes,
            expected_available: 0,
            customer: None,
        },
        _data_dir: temporary,
    })
}

/// The same address, with an unspecified IP (`0.0.0.0`, `[::]`) replaced by loopback.
fn loopback(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// A business number registered with the fake Graph.
struct BusinessNumber {
    phone_number_id: String,
    waba_id: String,
    display: String,
}

/// The organization's owner, as signed up.
struct Owner {
    organization: String,
    email: String,
    password: String,
    expires_in: i64,
}

/// Everything the steps share.
struct Demo {
    api: Api,
    daraja: FakeDaraja,
    graph: FakeGraph,
    number: BusinessNumber,
    /// A few random hex digits that keep this run's names apart from earlier runs'.
    run_id: String,
    tenant_passkey: String,
    owner: Option<Owner>,
    currency: Currency,
    /// What `available` must be after the current step, in minor units.
    expected_available: i64,
    /// The CRM contact the customer became (`{"type", "id", "name", …}`).
    customer: Option<Value>,
}

/// The steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    SignUp,
    Mpesa,
    WhatsApp,
    TopUp,
    CustomerWrites,
    ChargedSend,
    FailedSend,
    Deal,
}

impl Step {
    const ALL: [Step; 8] = [
        Step::SignUp,
        Step::Mpesa,
        Step::WhatsApp,
        Step::TopUp,
        Step::CustomerWrites,
        Step::ChargedSend,
        Step::FailedSend,
        Step::Deal,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::SignUp => "sign-up",
            Step::Mpesa => "m-pesa",
            Step::WhatsApp => "whatsapp",
            Step::TopUp => "top-up",
            Step::CustomerWrites => "customer-writes",
            Step::ChargedSend => "charged-send",
            Step::FailedSend => "failed-send",
            Step::Deal => "deal",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A step that did not do what it should.
#[derive(Debug)]
struct Failed {
    step: Step,
    why: String,
}

/// What a step did: lines to print, and how it moved the available balance.
struct Done {
    lines: Vec<String>,
    /// The change to `available`, in minor units.
    available_change: i64,
}

impl Done {
    fn said(line: String) -> Self {
        Self {
            lines: vec![line],
            available_change: 0,
        }
    }
}

/// Runs every step, printing each with the wallet after it; stops at the first failure.
async fn walk(demo: &mut Demo) -> Result<(), Failed> {
    let total = Step::ALL.len();
    for (index, step) in Step::ALL.into_iter().enumerate() {
        let prefix = format!("[{}/{total}] {step}:", index + 1);
        let result = match run_step(demo, step).await {
            Ok(done) => {
                for (n, line) in done.lines.iter().enumerate() {
                    if n == 0 {
                        println!("{prefix} {line}");
                    } else {
                        println!("      {line}");
                    }
                }
                match demo.expected_available.checked_add(done.available_change) {
                    Some(expected) => {
                        demo.expected_available = expected;
                        check_wallet(demo, step).await
                    }
                    None => Err("the expected balance overflows".to_owned()),
                }
            }
            Err(why) => Err(why),
        };
        if let Err(why) = result {
            println!("{prefix} FAILED: {why}");
            return Err(Failed { step, why });
        }
    }
    Ok(())
}

/// Reads the wallet, prints it, and checks it against the expected balance: `available`
/// as the steps so far moved it, nothing held.
async fn check_wallet(demo: &Demo, step: Step) -> Result<(), String> {
    let wallet: Wallet =
        serde_json::from_value(demo.api.expect(Method::GET, "/wallet", None, 200).await?)
            .map_err(|e| format!("GET /api/v1/wallet: unexpected body: {e}"))?;
    println!(
        "      wallet after {step}: available {}, held {}",
        wallet.available, wallet.held
    );
    let expected = Money::from_minor(demo.expected_available, demo.currency);
    if wallet.available != expected {
        return Err(format!(
            "the wallet's available balance is {}, expected {expected}",
            wallet.available
        ));
    }
    if !wallet.held.is_zero() {
        return Err(format!("{} is still held, expected nothing", wallet.held));
    }
    if wallet.posted != wallet.available {
        return Err(format!(
            "posted {} and available {} differ with nothing held",
            wallet.posted, wallet.available
        ));
    }
    Ok(())
}

/// The part of `GET /wallet` the demo checks.
#[derive(Debug, Deserialize)]
struct Wallet {
    posted: Money,
    held: Money,
    available: Money,
}

async fn run_step(demo: &mut Demo, step: Step) -> Result<Done, String> {
    match step {
        Step::SignUp => sign_up(demo).await,
        Step::Mpesa => mpesa_settings(demo).await,
        Step::WhatsApp => connect_number(demo).await,
        Step::TopUp => top_up(demo).await,
        Step::CustomerWrites => customer_writes(demo).await,
        Step::ChargedSend => charged_send(demo).await,
        Step::FailedSend => failed_send(demo).await,
        Step::Deal => move_deal(demo).await,
    }
}

async fn sign_up(demo: &mut Demo) -> Result<Done, String> {
    let organization = format!("Duka la Demo {}", demo.run_id);
    let email = format!("owner-{}@duka.example", demo.run_id);
    let password = format!("demo-{}", crate::secrets::generate());
    let body = demo
        .api
        .expect(
            Method::POST,
            "/auth/signup",
            Some(json!({
                "organization_name": organization,
                "name": "Wanjiru Kamau",
                "email": email,
                "password": password,
            })),
            201,
        )
        .await?;
    let token = text(&body, &["access_token"])?;
    let org_id = text(&body, &["organization", "id"])?;
    demo.currency = text(&body, &["organization", "currency"])?
        .parse()
        .map_err(|e| format!("the organization's currency: {e}"))?;
    demo.api.token = Some(token);
    demo.owner = Some(Owner {
        organization: organization.clone(),
        email: email.clone(),
        password,
        expires_in: body["expires_in"].as_i64().unwrap_or_default(),
    });
    Ok(Done::said(format!(
        "organization \"{organization}\" ({org_id}) with its owner {email} (org_admin)"
    )))
}

async fn mpesa_settings(demo: &mut Demo) -> Result<Done, String> {
    let saved = demo
        .api
        .expect(
            Method::PUT,
            "/mpesa/settings",
            Some(json!({
                "environment": "sandbox",
                "shortcode": TENANT_SHORTCODE,
                "account_type": "paybill",
                "consumer_key": format!("demo-consumer-key-{}", demo.run_id),
                "consumer_secret": format!("demo-consumer-secret-{}", demo.run_id),
                "passkey": demo.tenant_passkey,
            })),
            200,
        )
        .await?;
    let key_hint = text(&saved, &["settings", "consumer_key"])?;
    let tested = demo
        .api
        .expect(Method::POST, "/mpesa/settings/test", None, 200)
        .await?;
    let verified = text(&tested, &["verified_at"])?;
    Ok(Done::said(format!(
        "paybill {TENANT_SHORTCODE} saved (consumer key {key_hint}, secrets sealed) and \
         verified with the fake Daraja at {verified}"
    )))
}

async fn connect_number(demo: &mut Demo) -> Result<Done, String> {
    let connected = demo
        .api
        .expect(
            Method::POST,
            "/whatsapp/numbers",
            Some(json!({
                "phone_number_id": demo.number.phone_number_id,
                "waba_id": demo.number.waba_id,
                "access_token": format!("EAAG-demo-token-{}", demo.run_id),
            })),
            201,
        )
        .await?;
    let display = text(&connected, &["display_number"])?;
    let hint = text(&connected, &["access_token_hint"])?;
    Ok(Done::said(format!(
        "number {display} (phone number id {}, WABA {}) connected, token {hint}",
        demo.number.phone_number_id, demo.number.waba_id
    )))
}

async fn top_up(demo: &mut Demo) -> Result<Done, String> {
    let started = demo
        .api
        .expect(
            Method::POST,
            "/wallet/top-ups",
            Some(json!({"amount": TOP_UP_KES.to_string(), "phone": PAYER})),
            201,
        )
        .await?;
    let id = text(&started, &["id"])?;
    let amount: Money = serde_json::from_value(started["amount"].clone())
        .map_err(|e| format!("the payment's amount: {e}"))?;
    let phone = text(&started, &["phone"])?;
    let payment = demo
        .api
        .poll(&format!("/payments/{id}"), "the payment to settle", |p| {
            p["status"] != "pending" && (p["status"] != "succeeded" || p["applied_at"].is_string())
        })
        .await?;
    if payment["status"] != "succeeded" {
        return Err(format!(
            "payment {id} ended {}: {}",
            payment["status"], payment["result"]
        ));
    }
    let receipt = text(&payment, &["mpesa", "receipt"])?;
    Ok(Done {
        lines: vec![
            format!("STK push of {amount} to {phone}: payment {id} pending"),
            format!(
                "the fake Daraja called back: succeeded, receipt {receipt}; the wallet is credited {amount}"
            ),
        ],
        available_change: amount.minor(),
    })
}

async fn customer_writes(demo: &mut Demo) -> Result<Done, String> {
    let wamid = demo.graph.send_inbound_text(
        &demo.number.phone_number_id,
        CUSTOMER,
        CUSTOMER_NAME,
        "Habari! Is my order ready?",
    );
    let inbox = demo
        .api
        .poll(
            "/whatsapp/conversations",
            "the customer's message to arrive",
            |inbox| conversation(inbox, CUSTOMER).is_some_and(|c| c["window_open"] == true),
        )
        .await?;
    let Some(found) = conversation(&inbox, CUSTOMER) else {
        return Err(format!("no conversation with {CUSTOMER}"));
    };
    let contact = found["contact"].clone();
    let expires = text(found, &["window_expires_at"])?;
    let line = format!(
        "{CUSTOMER_NAME} (+{CUSTOMER}) wrote in ({wamid}), a signed webhook from the fake \
         WhatsApp; now {} {} in the CRM, window open until {expires}",
        contact["type"].as_str().unwrap_or("contact"),
        contact["id"].as_str().unwrap_or("?"),
    );
    demo.customer = Some(contact);
    Ok(Done::said(line))
}

/// The conversation with `wa_id` in a `GET /whatsapp/conversations` page.
fn conversation<'a>(inbox: &'a Value, wa_id: &str) -> Option<&'a Value> {
    inbox["items"]
        .as_array()?
        .iter()
        .find(|c| c["wa_id"] == wa_id)
}

async fn charged_send(demo: &mut Demo) -> Result<Done, String> {
    let contact = demo
        .customer
        .as_ref()
        .and_then(|c| c["id"].as_str())
        .ok_or("no customer to write to")?
        .to_owned();
    let (id, fee) = send_message(
        demo,
        json!({"contact_id": contact, "text": {"body": "Yes, it is ready: come by at 5 pm."}}),
    )
    .await?;
    let message = settled(demo, &id).await?;
    if message["charge"]["status"] != "captured" {
        return Err(format!(
            "message {id} was not charged: {} ({})",
            message["status"], message["error"]
        ));
    }
    Ok(Done {
        lines: vec![
            format!("text to {CUSTOMER_NAME}: message {id} accepted, fee {fee} held"),
            format!(
                "the fake WhatsApp reported it {}: fee {fee} captured",
                message["status"].as_str().unwrap_or("sent")
            ),
        ],
        available_change: fee.minor().checked_neg().ok_or("the fee does not negate")?,
    })
}

async fn failed_send(demo: &mut Demo) -> Result<Done, String> {
    let (id, fee) = send_message(
        demo,
        json!({
            "to": format!("+{UNREACHABLE}"),
            "template": {
                "name": "order_update",
                "language": "en",
                "category": "utility",
                "parameters": ["A-17"],
            },
        }),
    )
    .await?;
    let message = settled(demo, &id).await?;
    if message["status"] != "failed" || message["charge"]["status"] != "released" {
        return Err(format!(
            "message {id} should have failed and its fee been released; it is {}, fee {}",
            message["status"], message["charge"]["status"]
        ));
    }
    let code = message["error"]["code"].as_str().unwrap_or("?");
    Ok(Done {
        lines: vec![
            format!("template to +{UNREACHABLE}: message {id} accepted, fee {fee} held"),
            format!("the fake WhatsApp reported it failed (error {code}): fee {fee} released"),
        ],
        available_change: 0,
    })
}

/// `GET /whatsapp/messages/{id}` once the message's fee is captured or released.
async fn settled(demo: &Demo, id: &str) -> Result<Value, String> {
    demo.api
        .poll(
            &format!("/whatsapp/messages/{id}"),
            "the message's fee to be captured or released",
            |m| {
                matches!(
                    m["charge"]["status"].as_str(),
                    Some("captured" | "released")
                )
            },
        )
        .await
}

/// `POST /whatsapp/messages`: answers the message id and its fee, which must be held.
async fn send_message(demo: &Demo, body: Value) -> Result<(String, Money), String> {
    let sent = demo
        .api
        .expect(Method::POST, "/whatsapp/messages", Some(body), 201)
        .await?;
    let id = text(&sent, &["id"])?;
    let fee: Money = serde_json::from_value(sent["charge"]["fee"].clone())
        .map_err(|e| format!("message {id}: its fee: {e}"))?;
    if sent["charge"]["status"] != "held" || !fee.is_positive() {
        return Err(format!(
            "message {id}: expected a fee held, got {} {}",
            sent["charge"]["status"], fee
        ));
    }
    Ok((id, fee))
}

async fn move_deal(demo: &mut Demo) -> Result<Done, String> {
    let pipelines = demo
        .api
        .expect(Method::GET, "/pipelines", None, 200)
        .await?;
    let sales = pipelines["items"]
        .as_array()
        .and_then(|items| items.iter().find(|p| p["is_default"] == true))
        .ok_or("the organization has no default pipeline")?;
    let stages = sales["stages"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let [first, second, ..] = stages else {
        return Err("the default pipeline has fewer than two stages".into());
    };
    let mut deal = json!({
        "title": "Order A-17: 40 bags of maize seed",
        "value": {"amount": "12000", "currency": demo.currency},
        "pipeline_id": sales["id"],
        "stage_id": first["id"],
    });
    if let Some(customer) = &demo.customer
        && customer["type"] == "prospect"
    {
        deal["prospect_id"] = customer["id"].clone();
    }
    let created = demo
        .api
        .expect(Method::POST, "/deals", Some(deal), 201)
        .await?;
    let id = text(&created, &["id"])?;
    let moved = demo
        .api
        .expect(
            Method::POST,
            &format!("/deals/{id}/move"),
            Some(json!({"stage_id": second["id"]})),
            200,
        )
        .await?;
    if moved["stage"]["id"] != second["id"] {
        return Err(format!(
            "deal {id} is in {}, not {}",
            moved["stage"], second
        ));
    }
    let value: Money = serde_json::from_value(created["value"].clone())
        .map_err(|e| format!("deal {id}: its value: {e}"))?;
    let history = moved["history"].as_array().map_or(0, Vec::len);
    Ok(Done::said(format!(
        "deal {id} \"{}\" ({value}) moved from {} to {}; its history has {history} entries",
        text(&created, &["title"])?,
        text(first, &["name"])?,
        text(second, &["name"])?,
    )))
}

/// Prints how to go on exploring the running server.
fn explain(demo: &Demo, base_url: &str) {
    let Some(token) = &demo.api.token else {
        println!("The server keeps running at {base_url}; Ctrl-C stops it.");
        return;
    };
    println!();
    println!("The server keeps running at {base_url}; Ctrl-C stops it.");
    if let Some(owner) = &demo.owner {
        println!(
            "Signed in as the owner of \"{}\"; the access token (valid {} minutes):",
            owner.organization,
            owner.expires_in / 60
        );
    }
    println!("  export EDGE_TOKEN={token}");
    println!("  curl -s -H \"Authorization: Bearer $EDGE_TOKEN\" {base_url}/api/v1/wallet");
    if let Some(owner) = &demo.owner {
        println!(
            "Log in again with POST {base_url}/api/v1/auth/login \
             {{\"email\": \"{}\", \"password\": \"{}\"}}",
            owner.email, owner.password
        );
    }
    println!(
        "Try GET /api/v1/whatsapp/conversations, /api/v1/payments, /api/v1/deals or \
         /api/v1/wallet/entries; every route is in {base_url}/docs/ (Authorize with the \
         token) and {base_url}/openapi.json."
    );
}

/// The server's API, with the owner's token once signed up.
struct Api {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
}

impl Api {
    /// Calls `/api/v1{path}`; answers the status and the JSON body (`null` if empty).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}/api/v1{path}", self.base_url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} /api/v1{path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{method} /api/v1{path}: reading the answer: {e}"))?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .map_err(|e| format!("{method} /api/v1{path}: not JSON ({e})"))?
        };
        Ok((status, body))
    }

    /// Like [`Api::call`], failing unless the answer has status `want`.
    async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        want: u16,
    ) -> Result<Value, String> {
        let (status, body) = self.call(method.clone(), path, body).await?;
        if status == want {
            Ok(body)
        } else {
            Err(format!(
                "{method} /api/v1{path} answered {status}, expected {want}: {}",
                describe(&body)
            ))
        }
    }

    /// GETs `path` until `done` holds for its body, for at most [`WAIT`].
    async fn poll(
        &self,
        path: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let body = self.expect(Method::GET, path, None, 200).await?;
            if done(&body) {
                return Ok(body);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "waited {} s for {what}; GET /api/v1{path} still answers {body}",
                    WAIT.as_secs()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// An error envelope as `code: message`, or the body as it came.
fn describe(body: &Value) -> String {
    match (
        body["error"]["code"].as_str(),
        body["error"]["message"].as_str(),
    ) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => body.to_string(),
    }
}

/// The string at `path` in `value`, or an error naming what is missing.
fn text(value: &Value, path: &[&str]) -> Result<String, String> {
    let mut at = value;
    for key in path {
        at = &at[*key];
    }
    at.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {} in {value}", path.join(".")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_level_defaults_to_warn_and_other_settings_are_ignored() {
        let vars = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            log_vars(
                vars(&[
                    ("EDGE_DATABASE_URL", "postgres://prod/db"),
                    ("EDGE_LOG_FORMAT", "json")
                ])
                .into_iter()
            ),
            vars(&[("EDGE_LOG_FORMAT", "json"), ("EDGE_LOG", "warn")])
        );
        assert_eq!(
            log_vars(vars(&[("EDGE_LOG", "debug"), ("EDGE_BIND", "0.0.0.0:80")]).into_iter()),
            vars(&[("EDGE_LOG", "debug")])
        );
    }

    #[test]
    fn database_urls_must_be_sqlite_or_postgres() {
        for good in [
            "sqlite:///tmp/demo/edge.db?mode=rwc",
            "postgres://postgres@127.0.0.1:5432/edge_demo",
            " postgresql://edge@db/edge ",
        ] {
            assert_eq!(parse_database_url(good).unwrap(), good.trim());
        }
        for bad in ["mysql://root@db/edge", "edge.db", ""] {
            assert!(
                parse_database_url(bad).unwrap_err().contains("sqlite:"),
                "{bad}"
            );
        }
    }

    #[test]
    fn errors_are_described_by_their_envelope() {
        let envelope = json!({"error": {"code": "conflict", "message": "taken", "details": null}});
        assert_eq!(describe(&envelope), "conflict: taken");
        assert_eq!(describe(&json!({"ok": 1})), r#"{"ok":1}"#);
        assert_eq!(text(&envelope, &["error", "code"]).unwrap(), "conflict");
        assert!(text(&envelope, &["error", "details"]).is_err());
    }

    #[test]
    fn unspecified_addresses_are_reached_on_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(loopback(any), "127.0.0.1:8080".parse().unwrap());
        let v6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(loopback(v6), "[::1]:8080".parse().unwrap());
        let set: SocketAddr = "10.0.0.5:8080".parse().unwrap();
        assert_eq!(loopback(set), set);
    }
}
