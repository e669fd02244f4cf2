//! An in-process fake Daraja for tests and demos (feature `test-util`).
//!
//! [`FakeDaraja`] listens on `127.0.0.1:0`, issues tokens, checks the STK password against
//! the shortcode, passkey and timestamp, answers every API of this crate, and **posts the
//! callbacks** to the request's `CallBackURL` / `ResultURL` after a configurable delay.
//! Outcomes are scripted per phone number or amount; it can send a callback twice, drop
//! it (so only STK query tells the truth), answer 500s, be slow, or expire tokens early.
//! Every request is recorded. Unknown paths answer 404 and are recorded too, so an
//! unmatched call fails loudly.
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
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::Environment;
use crate::json::text;
use crate::time::{EAT, Timestamp, stk_password};

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

/// A callback the fake posted (or tried to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCallback {
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

struct Shared {
    config: Mutex<Config>,
    log: Mutex<Log>,
    tokens: Mutex<HashMap<String, u64>>,
    token_epoch: AtomicU64,
    stk: Mutex<HashMap<String, StkRecord>>,
    originator_ids: Mutex<HashSet<String>>,
    counter: AtomicU64,
    http: reqwest::Client,
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

/// Why the fake could not start.
#[derive(Debug, thiserror::Error)]
#[error("could not start the fake: {0}")]
pub struct FakeStartError(String);

impl FakeDaraja {
    /// Starts a fake on `127.0.0.1:0`. Every consumer key and secret is accepted until
    /// [`FakeDaraja::app`] registers one; STK shortcodes must be registered with
    /// [`FakeDaraja::merchant`]. Callbacks are posted after 50 ms by default.
    pub async fn start() -> Result<Self, FakeStartError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| FakeStartError(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| FakeStartError(e.to_string()))?;
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
            }),
            log: Mutex::new(Log::default()),
            tokens: Mutex::new(HashMap::new()),
            token_epoch: AtomicU64::new(0),
            stk: Mutex::new(HashMap::new()),
            originator_ids: Mutex::new(HashSet::new()),
            counter: AtomicU64::new(1),
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

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
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
        "/mpesa/c2b/v1/registerurl" | "/mpesa/c2b/v2/registerurl" => {
            c2b_register(&body, &request_id)
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
    url: String,
    body: Value,
    delay: Duration,
    decides_stk: Option<String>,
) {
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if let Some(checkout) = decides_stk
            && let Some(record) = lock(&shared.stk).get_mut(&checkout)
        {
            record.decided = true;
        }
        let (drop, twice) = {
            let config = lock(&shared.config);
            (config.drop_callbacks, config.duplicate_callbacks)
        };
        if drop {
            return;
        }
        let body = body.to_string();
        for _ in 0..if twice { 2 } else { 1 } {
            let status = shared
                .http
                .post(&url)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await
                .ok()
                .map(|r| r.status().as_u16());
            lock(&shared.log).callbacks.push(SentCallback {
                url: url.clone(),
                body: body.clone(),
                status,
            });
        }
    });
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

fn c2b_register(body: &Value, request_id: &str) -> Response {
    for url in ["ConfirmationURL", "ValidationURL"] {
        if !valid_url(&field(body, url)) {
            return bad_field(url, request_id);
        }
    }
    if !matches!(
        field(body, "ResponseType").as_str(),
        "Completed" | "Cancelled"
    ) {
        return bad_field("ResponseType", request_id);
    }
    json_response(
        StatusCode::OK,
        json!({
            "OriginatorCoversationID": request_id,
            "ResponseCode": "0",
            "ResponseDescription": "Success",
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
    schedule(shared, result_url, json!({"Result": result}), delay, None);
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
