//! Receives Daraja callbacks in a plain axum app with `edge-mpesa` alone: STK push results
//! and C2B (paybill) validation and confirmation requests. Each handler does the same
//! three things, in this order:
//!
//! 1. **stores the raw body first** (here an in-memory table; yours is a database row), so
//!    nothing Safaricom sent is lost even if it cannot be parsed or applied;
//! 2. parses it with the crate's tolerant parsers (`parse_stk_callback`, `parse_c2b`) and
//!    **dedupes** on Daraja's own key (`CheckoutRequestID`, `TransID`): Daraja may post the
//!    same callback more than once, and only the first copy is applied;
//! 3. **answers Daraja the way it expects**: `{"ResultCode":0,…}` with HTTP 200 for STK
//!    results and confirmations (also for a body it could not parse: it is kept for a
//!    look later, and a non-200 would only make Daraja retry), and for a C2B validation an
//!    accept (with our reference) or a reject code such as `C2B00012` (unknown account).
//!
//! ```text
//! cargo run -p edge-examples --example callback_inbox -- --fake
//! cargo run -p edge-examples --example callback_inbox -- --listen 0.0.0.0:8080
//! ```
//!
//! `--fake` starts an in-process fake Daraja that posts every callback **twice**, starts
//! the inbox on `127.0.0.1:0`, makes two STK pushes (one paid, one cancelled by the
//! payer), registers the inbox's C2B URLs and simulates two paybill payments (a known
//! account, accepted, and an unknown one, rejected at validation), posts one malformed
//! body, then checks the inbox: every copy stored raw, each payment applied once, the
//! rejected payment never confirmed. It exits 0 when all checks pass, 1 otherwise.
//!
//! Without `--fake` it serves `POST /payments/stk`, `/payments/c2b/validation` and
//! `/payments/c2b/confirmation` on the given address (default `127.0.0.1:8080`): put it
//! behind HTTPS, use those URLs as `CallBackURL` and in `RegisterUrls`. Daraja does not
//! sign callbacks, so in production also put an unguessable token in each URL, and note
//! that C2B URLs may not contain words such as `mpesa` or `safaricom`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use edge_core::Msisdn;
use edge_mpesa::callbacks::{C2B_CONFIRMATION_ACK, C2bRejection, CALLBACK_ACK};
use edge_mpesa::fake::{C2bStatus, CallbackKind, FakeDaraja, FakeOutcome};
use edge_mpesa::{
    C2bTransaction, C2bValidationReply, Credentials, DarajaClient, RegisterUrls, StkCallback,
    StkPush, parse_c2b, parse_stk_callback,
};
use secrecy::SecretString;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One body exactly as Daraja posted it.
#[derive(Debug, Clone)]
struct RawCallback {
    kind: &'static str,
    received_at: DateTime<Utc>,
    body: Bytes,
}

#[derive(Debug, Default)]
struct Tables {
    /// Every body received, before anything else is done with it.
    raw: Vec<RawCallback>,
    /// Applied STK results, by `CheckoutRequestID`.
    stk: HashMap<String, StkCallback>,
    /// Applied C2B payments, by `TransID`.
    c2b: HashMap<String, C2bTransaction>,
    /// Account numbers (`BillRefNumber`) payers may pay into.
    accounts: HashSet<String>,
}

#[derive(Debug, Default, Clone)]
struct Inbox {
    tables: Arc<Mutex<Tables>>,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Step 1 of every handler. Returns the row number, for the logs.
    fn store_raw(&self, kind: &'static str, body: &Bytes) -> usize {
        let mut tables = self.lock();
        tables.raw.push(RawCallback {
            kind,
            received_at: Utc::now(),
            body: body.clone(),
        });
        tables.raw.len()
    }
}

fn json(body: String) -> Response {
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

/// `POST /payments/stk`: the result of an STK push.
async fn stk_result(State(inbox): State<Inbox>, body: Bytes) -> Response {
    let row = inbox.store_raw("stk", &body);
    match parse_stk_callback(&body) {
        Ok(result) => {
            let mut tables = inbox.lock();
            if tables.stk.contains_key(&result.checkout_request_id) {
                println!(
                    "[inbox] raw #{row}: STK {} again; already applied, ignored",
                    result.checkout_request_id
                );
            } else {
                // Here your app matches the pending payment and credits it, once.
                println!(
                    "[inbox] raw #{row}: STK {} applied: result {} ({})",
                    result.checkout_request_id, result.result_code, result.result_desc
                );
                tables
                    .stk
                    .insert(result.checkout_request_id.clone(), result);
            }
        }
        Err(e) => println!("[inbox] raw #{row}: {e}; kept for review"),
    }
    json(CALLBACK_ACK.to_owned())
}

/// `POST /payments/c2b/validation`: Daraja asks whether to accept a paybill payment.
/// It waits about 8 seconds for the answer, so decide from local data only.
async fn c2b_validation(State(inbox): State<Inbox>, body: Bytes) -> Response {
    let row = inbox.store_raw("c2b-validation", &body);
    let reply = match parse_c2b(&body) {
        Ok(payment) if inbox.lock().accounts.contains(&payment.bill_ref_number) => {
            println!(
                "[inbox] raw #{row}: accept {} for account {}",
                payment.trans_id, payment.bill_ref_number
            );
            C2bValidationReply::Accept {
                third_party_trans_id: Some(format!("INBOX-{row}")),
            }
        }
        Ok(payment) => {
            println!(
                "[inbox] raw #{row}: reject {}: no account {:?}",
                payment.trans_id, payment.bill_ref_number
            );
            C2bValidationReply::Reject(C2bRejection::InvalidAccountNumber)
        }
        Err(e) => {
            println!("[inbox] raw #{row}: {e}; rejected");
            C2bValidationReply::Reject(C2bRejection::Other)
        }
    };
    json(reply.to_json())
}

/// `POST /payments/c2b/confirmation`: a paybill payment went through.
async fn c2b_confirmation(State(inbox): State<Inbox>, body: Bytes) -> Response {
    let row = inbox.store_raw("c2b-confirmation", &body);
    match parse_c2b(&body) {
        Ok(payment) => {
            let mut tables = inbox.lock();
            if tables.c2b.contains_key(&payment.trans_id) {
                println!(
                    "[inbox] raw #{row}: C2B {} again; already applied, ignored",
                    payment.trans_id
                );
            } else {
                println!(
                    "[inbox] raw #{row}: C2B {} applied: {} to account {} from {}",
                    payment.trans_id,
                    payment
                        .amount
                        .map_or_else(|| payment.amount_raw.clone(), |a| a.to_string()),
                    payment.bill_ref_number,
                    payment.msisdn
                );
                tables.c2b.insert(payment.trans_id.clone(), payment);
            }
        }
        Err(e) => println!("[inbox] raw #{row}: {e}; kept for review"),
    }
    json(C2B_CONFIRMATION_ACK.to_owned())
}

fn app(inbox: Inbox) -> Router {
    Router::new()
        .route("/payments/stk", post(stk_result))
        .route("/payments/c2b/validation", post(c2b_validation))
        .route("/payments/c2b/confirmation", post(c2b_confirmation))
        .with_state(inbox)
}

const SHORTCODE: &str = "174379";
const PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";

fn check(ok: bool, what: &str) -> Result<(), BoxError> {
    if ok {
        println!("ok  {what}");
        Ok(())
    } else {
        Err(what.to_owned().into())
    }
}

async fn run_fake() -> Result<(), BoxError> {
    let fake = FakeDaraja::start().await?;
    fake.merchant(SHORTCODE, PASSKEY)
        .callback_delay(Duration::from_millis(100))
        .duplicate_callbacks(true)
        .outcome_for_phone("254700000032", FakeOutcome::Cancelled);

    let inbox = Inbox::default();
    inbox.lock().accounts.insert("ACC-1001".to_owned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = app(inbox.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    println!("[fake] Daraja at {}, inbox at {base}", fake.base_url());

    // The sending side: an STK push names the inbox as its CallBackURL.
    let client = DarajaClient::builder(fake.environment())
        .allow_http_callbacks(true)
        .build()?;
    let creds = Credentials::new("demo-key", SecretString::from("demo-secret"))
        .shortcode(SHORTCODE)
        .passkey(SecretString::from(PASSKEY));
    let amount = edge_core::Money::from_major(10, edge_core::Currency::Kes)?;
    let mut pushes = Vec::new();
    for phone in ["0708374149", "0700000032"] {
        let phone: Msisdn = phone.parse()?;
        let accepted = StkPush::new(phone, amount, "INV-7", format!("{base}/payments/stk"))
            .send(&client, &creds)
            .await?;
        pushes.push(accepted.checkout_request_id);
    }

    // C2B: register the inbox's URLs once, then two customers pay the paybill.
    RegisterUrls::new(
        format!("{base}/payments/c2b/confirmation"),
        format!("{base}/payments/c2b/validation"),
    )
    .send(&client, &creds)
    .await?;
    let good = fake.simulate_c2b(SHORTCODE, "0712345678", 250, "ACC-1001")?;
    let bad = fake.simulate_c2b(SHORTCODE, "0722000111", 99, "NO-SUCH-ACCOUNT")?;

    // Something that is not a Daraja body at all still gets stored and acknowledged.
    let http = reqwest::Client::new();
    let stray = http
        .post(format!("{base}/payments/stk"))
        .body("<html>not json</html>")
        .send()
        .await?;
    check(stray.status() == 200, "a malformed body is acknowledged")?;

    let good_status = fake.wait_for_c2b(&good, Duration::from_secs(20)).await;
    let bad_status = fake.wait_for_c2b(&bad, Duration::from_secs(20)).await;
    // 2 pushes × 2 copies, 2 validations, 1 confirmation × 2 copies.
    let sent = fake.wait_for_callbacks(8, Duration::from_secs(20)).await;

    check(sent.len() == 8, "Daraja posted 8 callbacks")?;
    check(
        sent.iter().all(|c| c.status == Some(200)),
        "the inbox answered every callback with 200",
    )?;
    check(
        good_status == Some(C2bStatus::Completed),
        "the payment to ACC-1001 was accepted and confirmed",
    )?;
    check(
        matches!(&bad_status, Some(C2bStatus::Rejected { result_code }) if result_code == "C2B00012"),
        "the payment to an unknown account was rejected with C2B00012",
    )?;
    check(
        sent.iter()
            .filter(|c| c.kind == CallbackKind::C2bConfirmation)
            .all(|c| c.body.contains(&good)),
        "only the accepted payment was confirmed",
    )?;

    let tables = inbox.lock();
    check(
        tables.raw.len() == 9,
        "all 9 bodies were stored raw (8 from Daraja, 1 stray)",
    )?;
    check(
        tables.raw.iter().filter(|r| r.kind == "stk").count() == 5,
        "5 raw STK bodies: 2 results × 2 copies, and the stray",
    )?;
    let paid = tables.stk.get(&pushes[0]).map(|r| r.outcome.is_paid());
    let cancelled = tables.stk.get(&pushes[1]).map(|r| r.outcome.clone());
    check(
        tables.stk.len() == 2 && paid == Some(true),
        "each STK result applied once; the first push is paid",
    )?;
    check(
        cancelled == Some(edge_mpesa::StkOutcome::Cancelled),
        "the second push was cancelled by the payer",
    )?;
    let confirmed = tables.c2b.get(&good).and_then(|p| p.amount);
    check(
        tables.c2b.len() == 1
            && confirmed == Some(edge_core::Money::from_major(250, edge_core::Currency::Kes)?),
        "the C2B payment was applied once, for KES 250",
    )?;
    if let Some(first) = tables.raw.first() {
        println!(
            "    first raw row: {} at {}, {} bytes",
            first.kind,
            first.received_at.to_rfc3339(),
            first.body.len()
        );
    }
    println!("OK: every check passed");
    Ok(())
}

async fn run_server(listen: SocketAddr) -> Result<(), BoxError> {
    let inbox = Inbox::default();
    inbox.lock().accounts.insert("ACC-1001".to_owned());
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "[inbox] listening on http://{} (POST /payments/stk, /payments/c2b/validation, \
         /payments/c2b/confirmation; account ACC-1001 accepts payments)",
        listener.local_addr()?
    );
    axum::serve(listener, app(inbox)).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    // reqwest (used by the fake and by this program) needs a crypto provider: ring.
    drop(rustls::crypto::ring::default_provider().install_default());
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
            Ok(addr) => run_server(addr).await,
            Err(e) => Err(format!("--listen {listen}: {e}").into()),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
