//! An in-process fake Daraja for tests and demos (feature `test-util`).
//!
//! [`FakeDaraja`] listens on `127.0.0.1:0` (or any address, with
//! [`FakeDaraja::start_on`]), issues tokens, checks the STK password against the
//! shortcode, passkey and timestamp, answers every API of this crate, and **posts the
//! callbacks** to the request's `CallBackURL` / `ResultURL` after a configurable delay.
//! Outcomes are scripted per phone number or amount; it can send a callback twice, drop
//! it (so only STK query tells the truth), answer 500s, be slow, or expire tokens early.
//! Every request is recorded. Unknown paths answer 404 and are recorded too, so an
//! unmatched call fails loudly.
//!
//! C2B works as in the sandbox: `registerurl` (v1 or v2) remembers a shortcode's URLs,
//! and a simulated payment (`/mpesa/c2b/v{1,2}/simulate`, or
//! [`FakeDaraja::simulate_c2b`]) posts the validation request, then — if validation
//! accepts, or does not answer and the `ResponseType` is `Completed` — the confirmation.
//! See [`C2bRegistration`] and [`C2bStatus`].
//!
//! [`CallbackSink`] is the other side: a tiny server that collects what is posted to it.
//!
//! Both spawn onto the caller's Tokio runtime and stop when dropped. They speak plain
//! HTTP on loopback, so build the client under test with
//! [`DarajaClientBuilder::allow_http_callbacks`](crate::DarajaClientBuilder::allow_http_callbacks)
//! when callbacks should reach a [`CallbackSink`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::json::text;
use crate::time::{EAT, Timestamp, stk_password};
use crate::{C2bVersion, Environment};

mod c2b;

pub use c2b::{C2bRegistration, C2bStatus, FakeC2bError};

/// A scripted result for an STK push (or a B2C payout).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FakeOutcome {
    /// Result 0, with a receipt.
    Success,
    /// 1032, cancelled by the payer.
    Cancelled,
    /// 1037, no answer from the handset.
    TimedOut,
    /// 1019, expired.
    Expired,
    /// 1, insufficient funds.
    InsufficientFunds,
    /// 2001, wrong PIN (initiator information invalid for B2C).
    WrongPin,
    /// Any code and description (numeric codes are sent as JSON numbers, others as text).
    Code {
        /// The result code.
        code: String,
        /// `ResultDesc`.
        description: String,
    },
}

impl FakeOutcome {
    fn code_and_description(&self) -> (String, String) {
        let (code, desc) = match self {
            FakeOutcome::Success => ("0", "The service request is processed successfully."),
            FakeOutcome::Cancelled => ("1032", "Request cancelled by user"),
            FakeOutcome::TimedOut => ("1037", "DS timeout user cannot be reached"),
            FakeOutcome::Expired => ("1019", "Transaction has expired"),
            FakeOutcome::InsufficientFunds => {
                ("1", "The balance is insufficient for the transaction.")
            }
            FakeOutcome::WrongPin => ("2001", "The initiator information is invalid."),
            FakeOutcome::Code { code, description } => (code.as_str(), description.as_str()),
        };
        (code.to_owned(), desc.to_owned())
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

impl RecordedRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// What a callback the fake posts is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallbackKind {
    /// An STK push result, posted to the push's `CallBackURL`.
    Stk,
    /// A result of an initiator API (B2C, B2B, transaction status, account balance,
    /// reversal), posted to the request's `ResultURL`.
    Result,
    /// A C2B validation request, posted to the shortcode's registered `ValidationURL`.
    C2bValidation,
    /// A C2B confirmation, posted to the shortcode's registered `ConfirmationURL`.
    C2bConfirmation,
}

impl CallbackKind {
    /// A short lower-case name: `stk`, `result`, `c2b-validation`, `c2b-confirmation`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackKind::Stk => "stk",
            CallbackKind::Result => "result",
            CallbackKind::C2bValidation => "c2b-validation",
            CallbackKind::C2bConfirmation => "c2b-confirmation",
        }
    }
}

impl fmt::Display for CallbackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A callback the fake posted (or tried to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCallback {
    /// What it is.
    pub kind: CallbackKind,
    /// Where it went.
    pub url: String,
    /// The JSON body.
    pub body: String,
    /// The receiver's HTTP status, or `None` if delivery failed.
    pub status: Option<u16>,
}

#[derive(Debug, Clone)]
struct Config {
    merchants: HashMap<String, String>,
    apps: HashMap<String, String>,
    by_phone: HashMap<String, FakeOutcome>,
    by_amount: HashMap<i64, FakeOutcome>,
    default_outcome: FakeOutcome,
    callback_delay: Duration,
    duplicate_callbacks: bool,
    drop_callbacks: bool,
    fail_next: usize,
    reject_tokens: bool,
    response_delay: Duration,
    token_lifetime: u64,
    c2b_validation_timeout: Duration,
}

struct StkRecord {
    merchant_request_id: String,
    outcome: FakeOutcome,
    decided: bool,
}

#[derive(Default)]
struct Log {
    requests: Vec<RecordedRequest>,
    callbacks: Vec<SentCallback>,
    token_requests: usize,
}

/// Something the fake did, as told to a [`FakeDaraja::on_event`] observer.
///
/// Events carry no headers and no bodies, so no consumer secret, token, passkey or STK
/// password ever appears in one. Callback URLs appear whole: redact them before logging
/// if they carry a secret path token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FakeEvent {
    /// The fake answered a request.
    Answered {
        /// `GET`, `POST`, …
        method: String,
        /// The path, without the query.
        path: String,
        /// The HTTP status of the answer.
        status: u16,
        /// `errorCode` and `errorMessage` when the answer is Daraja's error envelope.
        error: Option<String>,
    },
    /// The fake posted a callback.
    CallbackSent {
        /// What it is.
        kind: CallbackKind,
        /// Where it went.
        url: String,
        /// The receiver's HTTP status, or `None` if delivery failed (refused, timed out).
        status: Option<u16>,
    },
    /// A simulated C2B payment is settled: confirmed, rejected or cancelled.
    C2bFinished {
        /// Its `TransID`.
        trans_id: String,
        /// How it ended.
        status: C2bStatus,
    },
}

type Observer = Arc<dyn Fn(&FakeEvent) + Send + Sync>;

struct Shared {
    config: Mutex<Config>,
    log: Mutex<Log>,
    tokens: Mutex<HashMap<String, u64>>,
    token_epoch: AtomicU64,
    stk: Mutex<HashMap<String, StkRecord>>,
    originator_ids: Mutex<HashSet<String>>,
    c2b: Mutex<c2b::C2bState>,
    counter: AtomicU64,
    last_trans_id: AtomicU64,
    observer: Mutex<Option<Observer>>,
    runtime: tokio::runtime::Handle,
    http: reqwest::Client,
}

impl Shared {
    fn emit(&self, event: FakeEvent) {
        let observer = lock(&self.observer).clone();
        if let Some(observer) = observer {
            observer(&event);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The fake Daraja server. Stops when dropped.
pub struct FakeDaraja {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _shutdown: oneshot::Sender<()>,
}

impl fmt::Debug for FakeDaraja {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeDaraja")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Why the fake (or a [`CallbackSink`]) could not start, for example because its
/// address is in use.
#[derive(Debug, thiserror::Error)]
#[error("could not start the fake: {0}")]
pub struct FakeStartError(String);

impl FakeDaraja {
    /// Starts a fake on `127.0.0.1:0` (a free port; see [`FakeDaraja::base_url`]).
    ///
    /// Every consumer key and secret is accepted until [`FakeDaraja::app`] registers one;
    /// STK shortcodes must be registered with [`FakeDaraja::merchant`]. Callbacks are
    /// posted after 50 ms by default.
    pub async fn start() -> Result<Self, FakeStartError> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a fake listening on `addr` (port 0 picks a free port), on the caller's Tokio
    /// runtime. Fails with an error naming the address if it cannot be bound.
    pub async fn start_on(addr: SocketAddr) -> Result<Self, FakeStartError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| FakeStartError(format!("cannot listen on {addr}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| FakeStartError(format!("cannot read the bound address: {e}")))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(
                crate::client::tls_config().map_err(|e| FakeStartError(e.to_string()))?,
            )
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| FakeStartError(e.to_string()))?;
        let shared = Arc::new(Shared {
            config: Mutex::new(Config {
                merchants: HashMap::new(),
                apps: HashMap::new(),
                by_phone: HashMap::new(),
                by_amount: HashMap::new(),
                default_outcome: FakeOutcome::Success,
                callback_delay: Duration::from_millis(50),
                duplicate_callbacks: false,
                drop_callbacks: false,
                fail_next: 0,
                reject_tokens: false,
                response_delay: Duration::ZERO,
                token_lifetime: 3599,
                c2b_validation_timeout: Duration::from_secs(8),
            }),
            log: Mutex::new(Log::default()),
            tokens: Mutex::new(HashMap::new()),
            token_epoch: AtomicU64::new(0),
            stk: Mutex::new(HashMap::new()),
            originator_ids: Mutex::new(HashSet::new()),
            c2b: Mutex::new(c2b::C2bState::default()),
            counter: AtomicU64::new(1),
            last_trans_id: AtomicU64::new(0),
            observer: Mutex::new(None),
            runtime: tokio::runtime::Handle::current(),
            http,
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            shared,
            addr,
            _shutdown: tx,
        })
    }

    /// The address the fake listens on (with the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: where clients reach the fake. When it listens on an
    /// unspecified address (`0.0.0.0`, `[::]`), the URL names the loopback address of the
    /// same family instead, which a client on this machine can always connect to.
    pub fn base_url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}")
    }

    /// An [`Environment::Custom`] pointing here.
    pub fn environment(&self) -> Environment {
        Environment::Custom(self.base_url())
    }

    fn config(&self) -> std::sync::MutexGuard<'_, Config> {
        lock(&self.shared.config)
    }

    /// Registers an STK shortcode and its passkey.
    pub fn merchant(&self, shortcode: &str, passkey: &str) -> &Self {
        self.config()
            .merchants
            .insert(shortcode.to_owned(), passkey.to_owned());
        self
    }

    /// Registers an app; from then on only registered key/secret pairs get tokens.
    pub fn app(&self, consumer_key: &str, consumer_secret: &str) -> &Self {
        self.config()
            .apps
            .insert(consumer_key.to_owned(), consumer_secret.to_owned());
        self
    }

    /// The outcome for pushes to `phone` (12 digits, `2547…`).
    pub fn outcome_for_phone(&self, phone: &str, outcome: FakeOutcome) -> &Self {
        self.config().by_phone.insert(phone.to_owned(), outcome);
        self
    }

    /// The outcome for pushes of `amount` whole shillings (phone rules win).
    pub fn outcome_for_amount(&self, amount: i64, outcome: FakeOutcome) -> &Self {
        self.config().by_amount.insert(amount, outcome);
        self
    }

    /// The outcome when no rule matches (default: success).
    pub fn default_outcome(&self, outcome: FakeOutcome) -> &Self {
        self.config().default_outcome = outcome;
        self
    }

    /// How long after the request the outcome is decided and the callback posted.
    pub fn callback_delay(&self, delay: Duration) -> &Self {
        self.config().callback_delay = delay;
        self
    }

    /// Posts every callback twice.
    pub fn duplicate_callbacks(&self, on: bool) -> &Self {
        self.config().duplicate_callbacks = on;
        self
    }

    /// Decides outcomes but never posts callbacks (only STK query tells the truth).
    pub fn drop_callbacks(&self, on: bool) -> &Self {
        self.config().drop_callbacks = on;
        self
    }

    /// Answers the next `n` API requests (not token requests) with HTTP 500
    /// `500.003.1001 Internal Server Error`, without acting on them.
    pub fn fail_next(&self, n: usize) -> &Self {
        self.config().fail_next = n;
        self
    }

    /// Answers every API request with `404.001.03 Invalid Access Token`, whatever the
    /// token (tokens are still issued).
    pub fn reject_tokens(&self, on: bool) -> &Self {
        self.config().reject_tokens = on;
        self
    }

    /// Waits this long before answering API requests (not token requests).
    pub fn response_delay(&self, delay: Duration) -> &Self {
        self.config().response_delay = delay;
        self
    }

    /// The `expires_in` of tokens issued from now on (default 3599).
    pub fn token_lifetime(&self, seconds: u64) -> &Self {
        self.config().token_lifetime = seconds;
        self
    }

    /// How long a C2B validation URL has to answer before the registered `ResponseType`
    /// decides (default 8 s, about what M-Pesa allows).
    pub fn c2b_validation_timeout(&self, timeout: Duration) -> &Self {
        self.config().c2b_validation_timeout = timeout;
        self
    }

    /// Calls `observer` for every request answered, every callback posted and every
    /// simulated C2B payment settled (see [`FakeEvent`]), from the fake's own tasks.
    /// Replaces the previous observer. Keep it quick: it runs before the answer is sent.
    pub fn on_event<F>(&self, observer: F) -> &Self
    where
        F: Fn(&FakeEvent) + Send + Sync + 'static,
    {
        *lock(&self.shared.observer) = Some(Arc::new(observer));
        self
    }

    /// Registers C2B URLs for `shortcode`, as `POST /mpesa/c2b/v{1,2}/registerurl` does.
    /// Registering again replaces them (as the sandbox allows).
    pub fn register_c2b(&self, shortcode: &str, registration: C2bRegistration) -> &Self {
        c2b::register(&self.shared, shortcode, registration);
        self
    }

    /// The C2B URLs registered for `shortcode`.
    pub fn c2b_registration(&self, shortcode: &str) -> Option<C2bRegistration> {
        c2b::registration(&self.shared, shortcode)
    }

    /// Simulates a customer paying `amount` whole shillings from `phone` (any form
    /// [`edge_core::Msisdn`] accepts) to the paybill `shortcode`, account `bill_ref`, as
    /// `POST /mpesa/c2b/v1/simulate` with `CustomerPayBillOnline` does.
    ///
    /// Returns the payment's `TransID` at once; after the callback delay the fake posts
    /// the validation request (if a validation URL is registered) and then, unless
    /// validation refuses it, the confirmation with the same `TransID`. Follow it with
    /// [`FakeDaraja::c2b_status`] or [`FakeDaraja::wait_for_c2b`]. Fails, sending nothing,
    /// if the shortcode has no registered URLs or a value is invalid.
    pub fn simulate_c2b(
        &self,
        shortcode: &str,
        phone: &str,
        amount: i64,
        bill_ref: &str,
    ) -> Result<String, FakeC2bError> {
        let msisdn = phone
            .parse::<edge_core::Msisdn>()
            .map_err(|_| FakeC2bError::Invalid("Msisdn"))?;
        c2b::simulate(
            &self.shared,
            c2b::Payment {
                shortcode: shortcode.to_owned(),
                command: c2b::Command::PayBill,
                amount,
                msisdn: msisdn.daraja().to_owned(),
                bill_ref: bill_ref.to_owned(),
            },
        )
    }

    /// Where the simulated C2B payment `trans_id` stands, or `None` if the fake never
    /// issued that `TransID`.
    pub fn c2b_status(&self, trans_id: &str) -> Option<C2bStatus> {
        c2b::status(&self.shared, trans_id)
    }

    /// Waits until the simulated C2B payment `trans_id` is settled (every callback for
    /// it posted), or `timeout` passes; then returns [`FakeDaraja::c2b_status`].
    pub async fn wait_for_c2b(&self, trans_id: &str, timeout: Duration) -> Option<C2bStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.c2b_status(trans_id);
            if status != Some(C2bStatus::Pending) || tokio::time::Instant::now() >= deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Invalidates every token issued so far, as if they had expired early.
    pub fn expire_tokens(&self) -> &Self {
        self.shared.token_epoch.fetch_add(1, Ordering::SeqCst);
        self
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).requests.clone()
    }

    /// The requests received on `path`.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        lock(&self.shared.log)
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// How many token requests were made.
    pub fn token_requests(&self) -> usize {
        lock(&self.shared.log).token_requests
    }

    /// Every callback posted so far.
    pub fn sent_callbacks(&self) -> Vec<SentCallback> {
        lock(&self.shared.log).callbacks.clone()
    }

    /// Waits until at least `n` callbacks were posted, or `timeout` passes.
    pub async fn wait_for_callbacks(&self, n: usize, timeout: Duration) -> Vec<SentCallback> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let sent = self.sent_callbacks();
            if sent.len() >= n || tokio::time::Instant::now() >= deadline {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn envelope(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    json_response(
        status,
        json!({"requestId": request_id, "errorCode": code, "errorMessage": message}),
    )
}

fn bad_field(field: &str, request_id: &str) -> Response {
    envelope(
        StatusCode::BAD_REQUEST,
        "400.002.02",
        &format!("Bad Request - Invalid {field}"),
        request_id,
    )
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let method_name = method.to_string();
    let path = uri.path().to_owned();
    let response = answer(shared.clone(), method, uri, headers, body).await;
    if lock(&shared.observer).is_none() {
        return response;
    }
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    // The fake's answers are small JSON bodies it built itself.
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let error = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
        let code = v.get("errorCode").and_then(text)?;
        let message = v.get("errorMessage").and_then(text).unwrap_or_default();
        Some(format!("{code} {message}"))
    });
    shared.emit(FakeEvent::Answered {
        method: method_name,
        path,
        status,
        error,
    });
    Response::from_parts(parts, Body::from(bytes))
}

async fn answer(
    shared: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let record = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let request_id = format!("fake-{:08}", shared.counter.fetch_add(1, Ordering::Relaxed));
    let path = record.path.clone();
    {
        let mut log = lock(&shared.log);
        if path == "/oauth/v1/generate" {
            log.token_requests += 1;
        }
        log.requests.push(record.clone());
    }
    if path == "/oauth/v1/generate" {
        return token(&shared, &method, &record, &request_id);
    }
    if method != Method::POST {
        return envelope(
            StatusCode::METHOD_NOT_ALLOWED,
            "405.001",
            "Method not allowed",
            &request_id,
        );
    }
    let delay = lock(&shared.config).response_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    {
        let mut config = lock(&shared.config);
        if config.fail_next > 0 {
            config.fail_next -= 1;
            return envelope(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500.003.1001",
                "Internal Server Error",
                &request_id,
            );
        }
    }
    let token_ok = record
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .and_then(|t| lock(&shared.tokens).get(t).copied())
        .is_some_and(|epoch| epoch == shared.token_epoch.load(Ordering::SeqCst))
        && !lock(&shared.config).reject_tokens;
    if !token_ok {
        return envelope(
            StatusCode::NOT_FOUND,
            "404.001.03",
            "Invalid Access Token",
            &request_id,
        );
    }
    if !record
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return bad_field("BusinessShortCode", &request_id);
    }
    let Some(body) = record.json().filter(Value::is_object) else {
        return envelope(
            StatusCode::BAD_REQUEST,
            "400.002.05",
            "Invalid request payload",
            &request_id,
        );
    };
    match path.as_str() {
        "/mpesa/stkpush/v1/processrequest" => stk_push(&shared, &body, &request_id),
        "/mpesa/stkpushquery/v1/query" => stk_query(&shared, &body, &request_id),
        "/mpesa/c2b/v1/registerurl" => {
            c2b::register_http(&shared, &body, &request_id, C2bVersion::V1)
        }
        "/mpesa/c2b/v2/registerurl" => {
            c2b::register_http(&shared, &body, &request_id, C2bVersion::V2)
        }
        "/mpesa/c2b/v1/simulate" | "/mpesa/c2b/v2/simulate" => {
            c2b::simulate_http(&shared, &body, &request_id)
        }
        "/mpesa/b2c/v1/paymentrequest" | "/mpesa/b2c/v3/paymentrequest" => {
            initiator(&shared, &body, &request_id, Api::B2c)
        }
        "/mpesa/b2b/v1/paymentrequest" => initiator(&shared, &body, &request_id, Api::B2b),
        "/mpesa/transactionstatus/v1/query" => initiator(&shared, &body, &request_id, Api::Status),
        "/mpesa/accountbalance/v1/query" => initiator(&shared, &body, &request_id, Api::Balance),
        "/mpesa/reversal/v1/request" => initiator(&shared, &body, &request_id, Api::Reversal),
        "/mpesa/qrcode/v1/generate" => qr(&body, &request_id),
        _ => envelope(
            StatusCode::NOT_FOUND,
            "404.001.01",
            "Resource not found",
            &request_id,
        ),
    }
}

fn token(shared: &Shared, method: &Method, record: &RecordedRequest, request_id: &str) -> Response {
    if method != Method::GET {
        return envelope(
            StatusCode::METHOD_NOT_ALLOWED,
            "405.001",
            "Method not allowed",
            request_id,
        );
    }
    if record.query.as_deref() != Some("grant_type=client_credentials") {
        return envelope(
            StatusCode::BAD_REQUEST,
            "400.008.02",
            "Invalid grant type passed",
            request_id,
        );
    }
    let Some(pair) = record
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return envelope(
            StatusCode::BAD_REQUEST,
            "400.008.01",
            "Invalid Authentication passed",
            request_id,
        );
    };
    let (key, secret) = pair.split_once(':').unwrap_or((pair.as_str(), ""));
    let (apps_ok, lifetime) = {
        let config = lock(&shared.config);
        let ok = config.apps.is_empty() || config.apps.get(key).is_some_and(|s| s == secret);
        (ok, config.token_lifetime)
    };
    if !apps_ok || key.is_empty() {
        // The real gateway answers wrong credentials with a bare 400 and no JSON.
        return (StatusCode::BAD_REQUEST, "").into_response();
    }
    let token = format!("FAKE{:024}", shared.counter.fetch_add(1, Ordering::Relaxed));
    lock(&shared.tokens).insert(token.clone(), shared.token_epoch.load(Ordering::SeqCst));
    json_response(
        StatusCode::OK,
        json!({"access_token": token, "expires_in": lifetime.to_string()}),
    )
}

fn field(body: &Value, name: &str) -> String {
    body.get(name).and_then(text).unwrap_or_default()
}

fn valid_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(char::is_whitespace)
}

/// Checks `BusinessShortCode`, `Timestamp` and `Password`.
fn check_password(
    shared: &Shared,
    body: &Value,
    request_id: &str,
) -> Result<String, Box<Response>> {
    let shortcode = field(body, "BusinessShortCode");
    let timestamp = field(body, "Timestamp");
    let password = field(body, "Password");
    if timestamp.len() != 14 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Box::new(bad_field("Timestamp", request_id)));
    }
    let Some(passkey) = lock(&shared.config).merchants.get(&shortcode).cloned() else {
        return Err(Box::new(envelope(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500.001.1001",
            "Merchant does not exist",
            request_id,
        )));
    };
    let expected =
        Timestamp::from_digits(&timestamp).map(|ts| stk_password(&shortcode, &passkey, &ts));
    if expected.as_deref() != Some(password.as_str()) {
        return Err(Box::new(envelope(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500.001.1001",
            "Wrong credentials",
            request_id,
        )));
    }
    Ok(shortcode)
}

fn stk_push(shared: &Arc<Shared>, body: &Value, request_id: &str) -> Response {
    if let Err(response) = check_password(shared, body, request_id) {
        return *response;
    }
    let kind = field(body, "TransactionType");
    if kind != "CustomerPayBillOnline" && kind != "CustomerBuyGoodsOnline" {
        return bad_field("TransactionType", request_id);
    }
    let Some(amount) = field(body, "Amount")
        .parse::<i64>()
        .ok()
        .filter(|a| *a >= 1)
    else {
        return bad_field("Amount", request_id);
    };
    let phone = field(body, "PhoneNumber");
    if phone.len() != 12 || !phone.starts_with("254") || !phone.bytes().all(|b| b.is_ascii_digit())
    {
        return bad_field("PhoneNumber", request_id);
    }
    if field(body, "PartyA").len() != 12 {
        return bad_field("PartyA", request_id);
    }
    let callback_url = field(body, "CallBackURL");
    if !valid_url(&callback_url) {
        return bad_field("CallBackURL", request_id);
    }
    let reference = field(body, "AccountReference");
    if reference.is_empty() || reference.chars().count() > 12 {
        return bad_field("AccountReference", request_id);
    }
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    let merchant_request_id = format!("fake-mr-{n:010}");
    let checkout_request_id = format!("ws_CO_FAKE{n:016}");
    let (outcome, delay) = {
        let config = lock(&shared.config);
        let outcome = config
            .by_phone
            .get(&phone)
            .or_else(|| config.by_amount.get(&amount))
            .unwrap_or(&config.default_outcome)
            .clone();
        (outcome, config.callback_delay)
    };
    lock(&shared.stk).insert(
        checkout_request_id.clone(),
        StkRecord {
            merchant_request_id: merchant_request_id.clone(),
            outcome: outcome.clone(),
            decided: false,
        },
    );
    let (code, description) = outcome.code_and_description();
    let mut callback = json!({
        "MerchantRequestID": merchant_request_id,
        "CheckoutRequestID": checkout_request_id,
        "ResultCode": code_value(&code),
        "ResultDesc": description,
    });
    if outcome == FakeOutcome::Success {
        let date: u64 = Utc::now()
            .with_timezone(&EAT)
            .format("%Y%m%d%H%M%S")
            .to_string()
            .parse()
            .unwrap_or_default();
        let phone_number: u64 = phone.parse().unwrap_or_default();
        callback["CallbackMetadata"] = json!({"Item": [
            {"Name": "Amount", "Value": amount},
            {"Name": "MpesaReceiptNumber", "Value": format!("FAKE{:06}", n % 1_000_000)},
            {"Name": "Balance"},
            {"Name": "TransactionDate", "Value": date},
            {"Name": "PhoneNumber", "Value": phone_number},
        ]});
    }
    let callback = json!({"Body": {"stkCallback": callback}});
    schedule(
        shared,
        CallbackKind::Stk,
        callback_url,
        callback,
        delay,
        Some(checkout_request_id.clone()),
    );
    json_response(
        StatusCode::OK,
        json!({
            "MerchantRequestID": merchant_request_id,
            "CheckoutRequestID": checkout_request_id,
            "ResponseCode": "0",
            "ResponseDescription": "Success. Request accepted for processing",
            "CustomerMessage": "Success. Request accepted for processing",
        }),
    )
}

/// Numeric codes travel as JSON numbers, the rest as strings (as Daraja does).
fn code_value(code: &str) -> Value {
    code.parse::<i64>()
        .map_or_else(|_| json!(code), |n| json!(n))
}

fn schedule(
    shared: &Arc<Shared>,
    kind: CallbackKind,
    url: String,
    body: Value,
    delay: Duration,
    decides_stk: Option<String>,
) {
    let shared = shared.clone();
    shared.runtime.clone().spawn(async move {
        tokio::time::sleep(delay).await;
        if let Some(checkout) = decides_stk
            && let Some(record) = lock(&shared.stk).get_mut(&checkout)
        {
            record.decided = true;
        }
        let body = body.to_string();
        for _ in 0..copies(&shared) {
            deliver(&shared, kind, &url, &body, None).await;
        }
    });
}

/// How many times to post a callback: 0 with `drop_callbacks`, 2 with
/// `duplicate_callbacks`, else 1.
fn copies(shared: &Shared) -> usize {
    let config = lock(&shared.config);
    if config.drop_callbacks {
        0
    } else if config.duplicate_callbacks {
        2
    } else {
        1
    }
}

/// What came back from a posted callback.
struct Delivery {
    /// The receiver's HTTP status, `None` if delivery failed.
    status: Option<u16>,
    /// The receiver's body, `None` if it could not be read.
    reply: Option<Bytes>,
}

/// Posts one callback, records it and tells the observer.
async fn deliver(
    shared: &Shared,
    kind: CallbackKind,
    url: &str,
    body: &str,
    timeout: Option<Duration>,
) -> Delivery {
    let mut request = shared
        .http
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_owned());
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    let delivery = match request.send().await {
        Ok(response) => Delivery {
            status: Some(response.status().as_u16()),
            reply: response.bytes().await.ok(),
        },
        Err(_) => Delivery {
            status: None,
            reply: None,
        },
    };
    lock(&shared.log).callbacks.push(SentCallback {
        kind,
        url: url.to_owned(),
        body: body.to_owned(),
        status: delivery.status,
    });
    shared.emit(FakeEvent::CallbackSent {
        kind,
        url: url.to_owned(),
        status: delivery.status,
    });
    delivery
}

fn stk_query(shared: &Shared, body: &Value, request_id: &str) -> Response {
    if let Err(response) = check_password(shared, body, request_id) {
        return *response;
    }
    let checkout = field(body, "CheckoutRequestID");
    let stk = lock(&shared.stk);
    let Some(record) = stk.get(&checkout) else {
        return bad_field("CheckoutRequestID", request_id);
    };
    if !record.decided {
        return envelope(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500.001.1001",
            "The transaction is being processed",
            &checkout,
        );
    }
    let (code, description) = record.outcome.code_and_description();
    json_response(
        StatusCode::OK,
        json!({
            "ResponseCode": "0",
            "ResponseDescription": "The service request has been accepted successfully",
            "MerchantRequestID": record.merchant_request_id,
            "CheckoutRequestID": checkout,
            "ResultCode": code,
            "ResultDesc": description,
        }),
    )
}

fn qr(body: &Value, request_id: &str) -> Response {
    for name in ["MerchantName", "RefNo", "TrxCode", "CPI", "Size"] {
        if field(body, name).is_empty() {
            return bad_field(name, request_id);
        }
    }
    let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nfake-qr");
    json_response(
        StatusCode::OK,
        json!({
            "ResponseCode": format!("AG_{request_id}"),
            "RequestID": request_id,
            "ResponseDescription": "QR Code Successfully Generated.",
            "QRCode": png,
        }),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    B2c,
    B2b,
    Status,
    Balance,
    Reversal,
}

fn initiator(shared: &Arc<Shared>, body: &Value, request_id: &str, api: Api) -> Response {
    let initiator = if api == Api::B2c {
        field(body, "InitiatorName")
    } else {
        field(body, "Initiator")
    };
    if initiator.is_empty() {
        return bad_field("Initiator", request_id);
    }
    if field(body, "SecurityCredential").is_empty() {
        return bad_field("SecurityCredential", request_id);
    }
    let result_url = field(body, "ResultURL");
    if !valid_url(&result_url) {
        return bad_field("ResultURL", request_id);
    }
    if !valid_url(&field(body, "QueueTimeOutURL")) {
        return bad_field("QueueTimeOutURL", request_id);
    }
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    let conversation_id = format!("AG_FAKE_{n:016}");
    let supplied = field(body, "OriginatorConversationID");
    let originator = if supplied.is_empty() {
        format!("fake-oc-{n:010}")
    } else {
        if !lock(&shared.originator_ids).insert(supplied.clone()) {
            return envelope(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500.002.1001",
                "Duplicate OriginatorConversationID.",
                request_id,
            );
        }
        supplied
    };
    let amount = field(body, "Amount");
    let (outcome, delay) = {
        let config = lock(&shared.config);
        let outcome = if api == Api::B2c {
            config
                .by_phone
                .get(&field(body, "PartyB"))
                .or_else(|| {
                    amount
                        .parse()
                        .ok()
                        .and_then(|a: i64| config.by_amount.get(&a))
                })
                .unwrap_or(&config.default_outcome)
                .clone()
        } else {
            FakeOutcome::Success
        };
        (outcome, config.callback_delay)
    };
    let (code, description) = outcome.code_and_description();
    let receipt = format!("FAKE{:06}", n % 1_000_000);
    let mut result = json!({
        "ResultType": 0,
        "ResultCode": code_value(&code),
        "ResultDesc": description,
        "OriginatorConversationID": originator,
        "ConversationID": conversation_id,
        "TransactionID": if outcome == FakeOutcome::Success { receipt.clone() } else { "FAK0000000".to_owned() },
        "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://fake.invalid/timeout"}},
    });
    if outcome == FakeOutcome::Success {
        let now = Utc::now().with_timezone(&EAT);
        let digits = now.format("%Y%m%d%H%M%S").to_string();
        let params = match api {
            Api::B2c => json!([
                {"Key": "TransactionAmount", "Value": amount.parse::<i64>().unwrap_or_default()},
                {"Key": "TransactionReceipt", "Value": receipt},
                {"Key": "ReceiverPartyPublicName", "Value": format!("{} - FAKE PAYEE", field(body, "PartyB"))},
                {"Key": "TransactionCompletedDateTime", "Value": now.format("%d.%m.%Y %H:%M:%S").to_string()},
                {"Key": "B2CUtilityAccountAvailableFunds", "Value": 100000.00},
                {"Key": "B2CWorkingAccountAvailableFunds", "Value": 50000.00},
                {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
                {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": -100.00},
            ]),
            Api::B2b => json!([
                {"Key": "Amount", "Value": amount},
                {"Key": "TransCompletedTime", "Value": digits},
                {"Key": "ReceiverPartyPublicName", "Value": format!("{} - FAKE BUSINESS", field(body, "PartyB"))},
            ]),
            Api::Status => json!([
                {"Key": "ReceiptNo", "Value": field(body, "TransactionID")},
                {"Key": "TransactionStatus", "Value": "Completed"},
                {"Key": "FinalisedTime", "Value": digits},
                {"Key": "TransactionReason"},
            ]),
            Api::Balance => json!({
                "Key": "AccountBalance",
                "Value": "Working Account|KES|1000.00|1000.00|0.00|0.00&Utility Account|KES|2500.00|2500.00|0.00|0.00",
            }),
            Api::Reversal => json!([
                {"Key": "Amount", "Value": amount.parse::<f64>().unwrap_or_default()},
                {"Key": "OriginalTransactionID", "Value": field(body, "TransactionID")},
                {"Key": "TransCompletedTime", "Value": digits.parse::<u64>().unwrap_or_default()},
            ]),
        };
        result["ResultParameters"] = json!({"ResultParameter": params});
    }
    schedule(
        shared,
        CallbackKind::Result,
        result_url,
        json!({"Result": result}),
        delay,
        None,
    );
    json_response(
        StatusCode::OK,
        json!({
            "OriginatorConversationID": originator,
            "ConversationID": conversation_id,
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        }),
    )
}

// ---------------------------------------------------------------------------------------
// CallbackSink
// ---------------------------------------------------------------------------------------

/// A callback received by a [`CallbackSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedCallback {
    /// The path it was posted to.
    pub path: String,
    /// The raw body.
    pub body: Vec<u8>,
}

/// A tiny HTTP server that collects the callbacks posted to it and answers with
/// [`CALLBACK_ACK`](crate::callbacks::CALLBACK_ACK). Stops when dropped.
pub struct CallbackSink {
    addr: SocketAddr,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<ReceivedCallback>>,
    _shutdown: oneshot::Sender<()>,
}

impl fmt::Debug for CallbackSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackSink")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl CallbackSink {
    /// Starts a sink on `127.0.0.1:0`.
    pub async fn start() -> Result<Self, FakeStartError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| FakeStartError(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| FakeStartError(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let router = Router::new()
            .fallback(
                |State(tx): State<mpsc::UnboundedSender<ReceivedCallback>>,
                 uri: Uri,
                 body: Bytes| async move {
                    let _ = tx.send(ReceivedCallback {
                        path: uri.path().to_owned(),
                        body: body.to_vec(),
                    });
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        crate::callbacks::CALLBACK_ACK,
                    )
                },
            )
            .with_state(tx);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            rx: tokio::sync::Mutex::new(rx),
            _shutdown: stop,
        })
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The next callback, or `None` after `timeout`.
    pub async fn next(&self, timeout: Duration) -> Option<ReceivedCallback> {
        let mut rx = self.rx.lock().await;
        tokio::time::timeout(timeout, rx.recv())
            .await
            .ok()
            .flatten()
    }
}
