//! A WhatsApp echo bot: an axum webhook receiver that answers the verification handshake,
//! verifies `X-Hub-Signature-256` over the raw body, parses every event of each batch,
//! routes it to a tenant by `phone_number_id`, and replies to inbound text with an echo.
//!
//! ```sh
//! # Against an in-process fake Graph API (no Meta account needed):
//! cargo run -p edge-examples --example whatsapp_bot -- --fake
//!
//! # Against Meta (one tenant number; expose the port with a tunnel and save
//! # https://<host>/webhooks/whatsapp with the verify token in the App Dashboard):
//! WHATSAPP_APP_SECRET=… WHATSAPP_VERIFY_TOKEN=… WHATSAPP_ACCESS_TOKEN=… \
//! WHATSAPP_PHONE_NUMBER_ID=… cargo run -p edge-examples --example whatsapp_bot -- --listen 0.0.0.0:8080
//! ```
//!
//! `--fake` checks that the echo was sent and that every signed webhook (the inbound text
//! and the echo's three statuses) was accepted, and exits 0 if so, 1 otherwise.
//!
//! The SDK reads no environment variables; this program does, as an application would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use edge_whatsapp::axum::{VerifiedWebhook, handshake_response};
use edge_whatsapp::fake::FakeGraph;
use edge_whatsapp::message::{MarkAsRead, SendMessage, Text};
use edge_whatsapp::webhook::{EventKind, WebhookEvent, WebhookVerifier};
use edge_whatsapp::{Credentials, PhoneNumberId, WhatsAppClient};
use secrecy::SecretString;
use tokio::sync::mpsc;

/// One tenant's sending credentials, keyed by its phone number id.
type Tenants = Arc<HashMap<PhoneNumberId, Credentials>>;

#[derive(Clone)]
struct AppState {
    verifier: WebhookVerifier,
    queue: mpsc::UnboundedSender<WebhookEvent>,
}

impl FromRef<AppState> for WebhookVerifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// GET: Meta's verification handshake (no signature on this one).
async fn verify(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    handshake_response(&state.verifier, query.as_deref())
}

/// POST: the extractor has already verified the signature over the raw bytes. Answer 200
/// quickly and process from a queue; a signed body we cannot parse is still acknowledged
/// (Meta would retry it for days), and logged for a look later.
async fn receive(State(state): State<AppState>, webhook: VerifiedWebhook) -> StatusCode {
    match webhook.events() {
        Ok(events) => {
            for event in events {
                let _ = state.queue.send(event);
            }
        }
        Err(e) => eprintln!(
            "[bot] signed but unreadable webhook ({} bytes): {e}",
            webhook.body.len()
        ),
    }
    StatusCode::OK
}

/// The worker: handles each event for its tenant.
async fn process(
    client: WhatsAppClient,
    tenants: Tenants,
    mut queue: mpsc::UnboundedReceiver<WebhookEvent>,
) {
    while let Some(event) = queue.recv().await {
        let Some(creds) = event
            .routing
            .phone_number_id
            .as_ref()
            .and_then(|p| tenants.get(p))
        else {
            println!(
                "[bot] no tenant for {:?}; acknowledged and skipped",
                event.routing.tenant_key()
            );
            continue;
        };
        match &event.kind {
            EventKind::Message(message) => {
                let from = message.from.as_deref().unwrap_or("(BSUID only)");
                let Some(text) = message.text() else {
                    println!(
                        "[bot] {from} sent a {:?} message; only text is echoed",
                        message.type_name()
                    );
                    continue;
                };
                println!(
                    "[bot] inbound from {from} to {}: {text:?}",
                    creds.phone_number_id()
                );
                if let Err(e) = MarkAsRead::new(message.id.clone())
                    .send(&client, creds)
                    .await
                {
                    eprintln!("[bot] mark-as-read failed: {e}");
                }
                // Reply to the sender's phone number when we have it, otherwise their BSUID.
                let to: edge_whatsapp::message::Recipient =
                    match (&message.from, &message.from_user_id) {
                        (Some(phone), _) => format!("+{phone}").into(),
                        (None, Some(user)) => user.clone().into(),
                        (None, None) => continue,
                    };
                let reply = SendMessage::new(to, Text::new(format!("Echo: {text}")))
                    .reply_to(message.id.clone())
                    .biz_opaque_callback_data(format!("echo-of:{}", message.id));
                match reply.send(&client, creds).await {
                    Ok(r) => println!("[bot] replied: {:?}", r.message_id().map(|m| m.as_str())),
                    Err(e) if e.is_outside_service_window() => {
                        eprintln!("[bot] window closed; a template would be needed: {e}")
                    }
                    Err(e) => eprintln!(
                        "[bot] reply failed (retryable: {}, may have been sent: {}): {e}",
                        e.is_retryable(),
                        e.may_have_been_sent()
                    ),
                }
            }
            EventKind::Status(status) => println!(
                "[bot] status {} for {} (callback data {:?})",
                status.status.as_str(),
                status.id,
                status.biz_opaque_callback_data
            ),
            EventKind::Error(error) => {
                eprintln!("[bot] webhook error {:?}: {:?}", error.code, error.message)
            }
            other => println!("[bot] other event: {other:?}"),
        }
    }
}

async fn serve_bot(
    listener: tokio::net::TcpListener,
    verifier: WebhookVerifier,
    client: WhatsAppClient,
    tenants: Tenants,
) -> std::io::Result<()> {
    let (queue, rx) = mpsc::unbounded_channel();
    tokio::spawn(process(client, tenants, rx));
    let app = Router::new()
        .route("/webhooks/whatsapp", get(verify).post(receive))
        .with_state(AppState { verifier, queue });
    axum::serve(listener, app).await
}

/// `--fake`: FakeGraph plays Meta. It posts a signed inbound text to the bot, records the
/// bot's echo, then posts signed statuses for the echo back to the bot.
async fn run_fake() -> Result<(), Box<dyn std::error::Error>> {
    const PNID: &str = "113057248966301";
    const WABA: &str = "184630927512044";
    let app_secret = SecretString::from("fake-app-secret");
    let fake = FakeGraph::builder()
        .app_secret(app_secret.clone())
        .number(PNID, WABA, "15550101234")
        .valid_token("fake-tenant-token")
        .start()
        .await?;
    let client = fake.client()?;
    let tenants: Tenants = Arc::new(HashMap::from([(
        PhoneNumberId::new(PNID),
        Credentials::new(PNID, SecretString::from("fake-tenant-token")).waba_id(WABA),
    )]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks/whatsapp", listener.local_addr()?);
    let verifier = WebhookVerifier::new(app_secret, SecretString::from("fake-verify-token"));
    tokio::spawn(serve_bot(listener, verifier, client, tenants));
    println!(
        "[fake] Graph API at {}, bot webhook at {url}",
        fake.base_url()
    );
    fake.set_webhook_url(&url);

    let inbound = fake.send_inbound_text(
        PNID,
        "254712345678",
        "Amina",
        "Habari! Is the bakery open today?",
    );
    println!("[fake] user 254712345678 sent {inbound}");

    // Wait for the echo (plus the mark-as-read) and the echo's three statuses.
    let deadline = Duration::from_secs(15);
    let requests = fake.wait_for_requests(2, deadline).await;
    let deliveries = fake.wait_for_deliveries(4, deadline).await;
    let echo = fake
        .message_requests()
        .into_iter()
        .find(|m| m["type"] == "text")
        .ok_or("the bot did not answer the inbound message")?;
    println!(
        "[fake] bot answered {} with {:?} (quoting {})",
        echo["to"].as_str().unwrap_or_default(),
        echo["text"]["body"].as_str().unwrap_or_default(),
        echo["context"]["message_id"].as_str().unwrap_or_default()
    );
    println!(
        "[fake] {} Graph requests, {} signed webhooks delivered (statuses {})",
        requests.len(),
        deliveries.len(),
        deliveries
            .iter()
            .filter_map(
                |d| d.json()["entry"][0]["changes"][0]["value"]["statuses"][0]["status"]
                    .as_str()
                    .map(str::to_owned)
            )
            .collect::<Vec<_>>()
            .join(" → ")
    );
    if echo["text"]["body"] != "Echo: Habari! Is the bakery open today?" {
        return Err("the bot's answer is not the echo of the inbound text".into());
    }
    if deliveries.len() < 4 {
        return Err(format!(
            "expected the inbound message and 3 statuses, {} webhooks were delivered",
            deliveries.len()
        )
        .into());
    }
    if deliveries.iter().any(|d| d.response_status != Some(200)) {
        return Err("the bot refused a signed webhook".into());
    }
    if !fake.unmatched().is_empty() {
        return Err("the bot made a request the fake did not understand".into());
    }
    // Give the worker a moment to log the last status.
    tokio::time::sleep(Duration::from_millis(100)).await;
    println!("OK: inbound message answered");
    Ok(())
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name}"))
}

async fn run_real(listen: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let pnid = env("WHATSAPP_PHONE_NUMBER_ID")?;
    let creds = Credentials::new(
        pnid.as_str(),
        SecretString::from(env("WHATSAPP_ACCESS_TOKEN")?),
    );
    let verifier = WebhookVerifier::new(
        SecretString::from(env("WHATSAPP_APP_SECRET")?),
        SecretString::from(env("WHATSAPP_VERIFY_TOKEN")?),
    );
    let client = WhatsAppClient::builder().build()?;
    let tenants: Tenants = Arc::new(HashMap::from([(PhoneNumberId::new(pnid), creds)]));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "[bot] listening on http://{}/webhooks/whatsapp",
        listener.local_addr()?
    );
    serve_bot(listener, verifier, client, tenants).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.iter().any(|a| a == "--fake") {
        run_fake().await
    } else {
        let listen = args
            .iter()
            .position(|a| a == "--listen")
            .and_then(|i| args.get(i + 1))
            .map_or("127.0.0.1:8080", String::as_str);
        match listen.parse() {
            Ok(addr) => run_real(addr).await,
            Err(e) => Err(format!("--listen {listen}: {e}").into()),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
