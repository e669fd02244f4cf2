//! `FakeGraph` (feature `test-util`): an in-process fake of the Graph API.
//!
//! It listens on `127.0.0.1:0` (or [`FakeGraphBuilder::bind`]), accepts sends and returns
//! message ids, then posts **signed** status webhooks (`sent` → `delivered` → `read`, or
//! `failed` with a chosen code) to a configured URL, in order, from one delivery queue.
//! Failures can be scripted per recipient. Every request is recorded (without its token),
//! and a request the fake does not understand is answered 404 and recorded in
//! [`FakeGraph::unmatched`], so tests fail loudly instead of passing by accident.
//!
//! What it answers:
//!
//! - `POST /{version}/{phone_number_id}/messages`: sends and mark-as-read, for registered
//!   numbers only (code 100 otherwise, as on the real Graph).
//! - `POST /{version}/{phone_number_id}/media`, `GET`/`DELETE /{version}/{media_id}` and the
//!   download URL: media (see [`FakeGraph::add_media`]).
//! - `GET /{version}/{phone_number_id}?fields=…`: a registered number, as
//!   [`crate::PhoneNumber`] reads it. The display number is the registered one;
//!   `verified_name` is `Fake Business <last 4 digits>`, `quality_rating` `GREEN`,
//!   `code_verification_status` `VERIFIED`, `name_status` `APPROVED`, `platform_type`
//!   `CLOUD_API`, `is_on_biz_app` `false`, and `throughput` `{"level": "STANDARD"}` unless
//!   [`FakeGraphBuilder::number_throughput`] (or [`FakeGraph::set_number_throughput`]) says
//!   otherwise. With `fields`, only those fields and `id` are returned; a field it does not
//!   know is code 100. A registered phone number id wins over a media id; an id that is
//!   neither is code 100.
//!
//! Numbers are registered on the builder ([`FakeGraphBuilder::number`]) or while running
//! ([`FakeGraph::add_number`]).
//!
//! Status delivery can be made awkward the way Meta's is, on the builder or while running:
//!
//! - [`FakeGraphBuilder::duplicate_statuses`]: every status webhook is posted twice in a
//!   row (Meta's delivery is at-least-once), to test de-duplication.
//! - [`FakeGraphBuilder::reverse_statuses`]: each message's statuses are posted newest
//!   first (`read`, `delivered`, `sent`), to test that a status only moves forward.
//!
//! All statuses of one send are queued together as one item of the single delivery queue,
//! so what the receiver sees is deterministic even when sends run concurrently. Both
//! options apply to sends made after they are set, and only to status webhooks.
//!
//! [`FakeGraph::on_event`] reports each answered request and each posted webhook (never a
//! token), for logging: `edge-server fake-whatsapp` uses it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use edge_whatsapp::fake::{FakeGraph, Outcome};
//! use secrecy::SecretString;
//!
//! let fake = FakeGraph::builder()
//!     .app_secret(SecretString::from("app-secret"))
//!     .number("113057248966301", "184630927512044", "15550101234")
//!     .start()
//!     .await?;
//! fake.set_webhook_url("http://127.0.0.1:8080/webhooks/whatsapp");
//! fake.script("+12025550188", Outcome::WindowClosed);
//! let client = fake.client()?;
//! # let _ = client; Ok(()) }
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::client::{WhatsAppClient, http_client};
use crate::error::Error;
use crate::ids::MessageId;
use crate::webhook::{SIGNATURE_HEADER, sign};

/// What the fake does with a send to a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Accept, then send `sent` → `delivered` → `read` (the default).
    Read,
    /// Accept, then send `sent` → `delivered`.
    Delivered,
    /// Accept, then send `sent` only (like a reaction).
    Sent,
    /// Accept, then send a `failed` status with this Graph error code (for example 131026,
    /// 131047 or 132015).
    Failed {
        /// The error code in `statuses[].errors[]`.
        code: i64,
    },
    /// Reject synchronously: 131047, the customer-service window is closed (HTTP 400).
    WindowClosed,
    /// Reject synchronously: 131026, undeliverable (HTTP 400).
    Undeliverable,
    /// Reject synchronously: 130429, throughput limit (HTTP 400).
    RateLimited,
    /// Reject synchronously: 131056, pair rate limit (HTTP 400).
    PairRateLimited,
    /// Reject synchronously: 190, invalid access token (HTTP 401).
    InvalidToken,
    /// Reject synchronously with any Graph error.
    GraphError {
        /// HTTP status.
        http_status: u16,
        /// Graph code.
        code: i64,
        /// Graph message.
        message: String,
    },
}

impl Outcome {
    fn rejection(&self) -> Option<(u16, i64, String)> {
        match self {
            Self::WindowClosed => Some((400, 131047, "(#131047) Re-engagement message".into())),
            Self::Undeliverable => Some((400, 131026, "(#131026) Message undeliverable".into())),
            Self::RateLimited => Some((400, 130429, "(#130429) Rate limit hit".into())),
            Self::PairRateLimited => Some((
                400,
                131056,
                "(#131056) (Business Account, Consumer Account) pair rate limit hit".into(),
            )),
            Self::InvalidToken => Some((
                401,
                190,
                "Invalid OAuth access token - Cannot parse access token".into(),
            )),
            Self::GraphError {
                http_status,
                code,
                message,
            } => Some((*http_status, *code, message.clone())),
            _ => None,
        }
    }

    fn statuses(&self) -> &'static [&'static str] {
        match self {
            Self::Read => &["sent", "delivered", "read"],
            Self::Delivered => &["sent", "delivered"],
            Self::Sent => &["sent"],
            Self::Failed { .. } => &["failed"],
            _ => &[],
        }
    }
}

/// A request the fake received. The access token is never recorded.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path, such as `/v24.0/113057248966301/messages`.
    pub path: String,
    /// The query string.
    pub query: Option<String>,
    /// Whether an `Authorization: Bearer …` header was present.
    pub had_bearer: bool,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// The raw body.
    pub body: Bytes,
    /// The body as JSON, when it is JSON.
    pub json: Option<Value>,
}

/// What the fake did, for [`FakeGraph::on_event`]. Carries no token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FakeEvent {
    /// A request was answered.
    Answered {
        /// `GET`, `POST`, …
        method: String,
        /// The path, without the query.
        path: String,
        /// The HTTP status of the answer.
        status: u16,
        /// The Graph error code, when the answer is a Graph error.
        code: Option<i64>,
    },
    /// A webhook was posted (or could not be).
    Posted(Delivery),
}

type Observer = Arc<dyn Fn(&FakeEvent) + Send + Sync>;

/// A webhook the fake posted (or tried to).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Where it went.
    pub url: String,
    /// The signed body, as sent.
    pub body: Bytes,
    /// The `X-Hub-Signature-256` value sent.
    pub signature: String,
    /// The receiver's HTTP status, or `None` if it could not be reached.
    pub response_status: Option<u16>,
}

impl Delivery {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Clone)]
struct Number {
    waba_id: String,
    display: String,
}

/// Builds a [`FakeGraph`].
pub struct FakeGraphBuilder {
    bind: SocketAddr,
    app_secret: SecretString,
    numbers: HashMap<String, Number>,
    throughput: HashMap<String, String>,
    valid_tokens: HashSet<String>,
    default_outcome: Outcome,
    webhook_url: Option<String>,
    status_delay: Duration,
    duplicate_statuses: bool,
    reverse_statuses: bool,
}

impl fmt::Debug for FakeGraphBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeGraphBuilder")
            .field("bind", &self.bind)
            .field("numbers", &self.numbers)
            .field("throughput", &self.throughput)
            .field("default_outcome", &self.default_outcome)
            .field("webhook_url", &self.webhook_url)
            .field("status_delay", &self.status_delay)
            .field("duplicate_statuses", &self.duplicate_statuses)
            .field("reverse_statuses", &self.reverse_statuses)
            .finish_non_exhaustive()
    }
}

impl Default for FakeGraphBuilder {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            app_secret: SecretString::from("fake-graph-app-secret"),
            numbers: HashMap::new(),
            throughput: HashMap::new(),
            valid_tokens: HashSet::new(),
            default_outcome: Outcome::Read,
            webhook_url: None,
            status_delay: Duration::from_millis(20),
            duplicate_statuses: false,
            reverse_statuses: false,
        }
    }
}

impl FakeGraphBuilder {
    /// The address to listen on (default `127.0.0.1:0`: a free port on the loopback
    /// interface). [`FakeGraph::addr`] tells the port picked.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The app secret webhooks are signed with.
    pub fn app_secret(mut self, secret: SecretString) -> Self {
        self.app_secret = secret;
        self
    }

    /// Registers a business number: sends from unregistered numbers fail with code 100,
    /// as on the real Graph.
    pub fn number(
        mut self,
        phone_number_id: impl Into<String>,
        waba_id: impl Into<String>,
        display_phone_number: impl Into<String>,
    ) -> Self {
        self.numbers.insert(
            phone_number_id.into(),
            Number {
                waba_id: waba_id.into(),
                display: display_phone_number.into(),
            },
        );
        self
    }

    /// The `throughput.level` Graph reports for `phone_number_id`, such as `HIGH`
    /// (default `STANDARD`). It may be set before or after the number is registered.
    pub fn number_throughput(
        mut self,
        phone_number_id: impl Into<String>,
        level: impl Into<String>,
    ) -> Self {
        self.throughput.insert(phone_number_id.into(), level.into());
        self
    }

    /// Accepts only these access tokens (otherwise any non-empty token is accepted).
    pub fn valid_token(mut self, token: impl Into<String>) -> Self {
        self.valid_tokens.insert(token.into());
        self
    }

    /// What happens to sends without a script (default [`Outcome::Read`]).
    pub fn default_outcome(mut self, outcome: Outcome) -> Self {
        self.default_outcome = outcome;
        self
    }

    /// Where status webhooks go (can also be set later).
    pub fn webhook_url(mut self, url: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }

    /// The pause before each webhook (default 20 ms), so the send's response comes first.
    pub fn status_delay(mut self, delay: Duration) -> Self {
        self.status_delay = delay;
        self
    }

    /// Posts every status webhook twice in a row (default off). Also settable while
    /// running: [`FakeGraph::duplicate_statuses`].
    pub fn duplicate_statuses(mut self, on: bool) -> Self {
        self.duplicate_statuses = on;
        self
    }

    /// Posts each message's statuses in reverse order, such as `delivered` before `sent`
    /// (default off). Also settable while running: [`FakeGraph::reverse_statuses`].
    pub fn reverse_statuses(mut self, on: bool) -> Self {
        self.reverse_statuses = on;
        self
    }

    /// Binds the address (default `127.0.0.1:0`) and starts serving on the current tokio
    /// runtime. An address that cannot be bound is an [`Error::Connect`] naming it.
    pub async fn start(self) -> Result<FakeGraph, Error> {
        let bind = self.bind;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| Error::Connect {
                message: format!("FakeGraph cannot listen on {bind}: {e}"),
            })?;
        let addr = listener.local_addr().map_err(|e| Error::Connect {
            message: format!("FakeGraph has no address: {e}"),
        })?;
        let http = http_client(Duration::from_secs(5), Duration::from_secs(10), "FakeGraph")?;
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            app_secret: self.app_secret,
            base_url: format!("http://{}", reachable(addr)),
            status_delay: self.status_delay,
            queue: queue_tx,
            notify: Notify::new(),
            observer: Mutex::new(None),
            state: Mutex::new(FakeState {
                numbers: self.numbers,
                throughput: self.throughput,
                duplicate_statuses: self.duplicate_statuses,
                reverse_statuses: self.reverse_statuses,
                valid_tokens: self.valid_tokens,
                revoked_tokens: HashSet::new(),
                default_outcome: self.default_outcome,
                persistent: HashMap::new(),
                once: HashMap::new(),
                webhook_url: self.webhook_url,
                requests: Vec::new(),
                unmatched: Vec::new(),
                deliveries: Vec::new(),
                media: HashMap::new(),
                counter: 0,
            }),
        });
        let worker = tokio::spawn(deliver(shared.clone(), http, queue_rx));
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = shutdown_rx.await;
                })
                .await;
        });
        Ok(FakeGraph {
            shared,
            addr,
            shutdown: Some(shutdown_tx),
            tasks: vec![worker, server],
        })
    }
}

/// The address a client on this machine reaches `addr` at: the loopback address of the
/// same family when `addr` is unspecified (`0.0.0.0`, `[::]`).
fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

struct Shared {
    app_secret: SecretString,
    base_url: String,
    status_delay: Duration,
    queue: mpsc::UnboundedSender<Queued>,
    notify: Notify,
    observer: Mutex<Option<Observer>>,
    state: Mutex<FakeState>,
}

struct FakeState {
    numbers: HashMap<String, Number>,
    throughput: HashMap<String, String>,
    duplicate_statuses: bool,
    reverse_statuses: bool,
    valid_tokens: HashSet<String>,
    revoked_tokens: HashSet<String>,
    default_outcome: Outcome,
    persistent: HashMap<String, Outcome>,
    once: HashMap<String, VecDeque<Outcome>>,
    webhook_url: Option<String>,
    requests: Vec<RecordedRequest>,
    unmatched: Vec<RecordedRequest>,
    deliveries: Vec<Delivery>,
    media: HashMap<String, (Bytes, String)>,
    counter: u64,
}

/// One item of the delivery queue: webhooks posted one after the other, such as every
/// status of one send.
struct Queued {
    bodies: Vec<Value>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls the observer, if any, without holding the state lock.
    fn emit(&self, event: FakeEvent) {
        let observer = self
            .observer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(observer) = observer {
            observer(&event);
        }
    }
}

/// A running fake Graph API. Stops when dropped.
pub struct FakeGraph {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for FakeGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeGraph")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Normalises a recipient for scripting: digits only for phone numbers, as-is for BSUIDs.
fn recipient_key(recipient: &str) -> String {
    if recipient.contains('.') {
        recipient.to_owned()
    } else {
        recipient.chars().filter(char::is_ascii_digit).collect()
    }
}

fn now_secs() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        .to_string()
}

impl FakeGraph {
    /// A builder.
    pub fn builder() -> FakeGraphBuilder {
        FakeGraphBuilder::default()
    }

    /// `http://127.0.0.1:{port}`: the base URL for [`WhatsAppClient::builder`]. When it
    /// listens on an unspecified address (`0.0.0.0`, `[::]`), the URL names the loopback
    /// address of the same family.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A client pointed at this fake.
    pub fn client(&self) -> Result<WhatsAppClient, Error> {
        WhatsAppClient::builder()
            .base_url(self.base_url())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
    }

    /// Where status and inbound webhooks go from now on.
    pub fn set_webhook_url(&self, url: impl Into<String>) {
        self.shared.lock().webhook_url = Some(url.into());
    }

    /// Sets what every later send to `recipient` (a phone number in any format, or a BSUID)
    /// does, until changed.
    pub fn script(&self, recipient: &str, outcome: Outcome) {
        self.shared
            .lock()
            .persistent
            .insert(recipient_key(recipient), outcome);
    }

    /// Sets what the *next* send to `recipient` does; later sends go back to the
    /// persistent script or the default. Queued scripts apply in order.
    pub fn script_once(&self, recipient: &str, outcome: Outcome) {
        self.shared
            .lock()
            .once
            .entry(recipient_key(recipient))
            .or_default()
            .push_back(outcome);
    }

    /// Registers a business number while running, as [`FakeGraphBuilder::number`] does
    /// before: sends from it and lookups of it work from now on. Registering an id again
    /// replaces its WABA and display number.
    pub fn add_number(
        &self,
        phone_number_id: impl Into<String>,
        waba_id: impl Into<String>,
        display_phone_number: impl Into<String>,
    ) {
        self.shared.lock().numbers.insert(
            phone_number_id.into(),
            Number {
                waba_id: waba_id.into(),
                display: display_phone_number.into(),
            },
        );
    }

    /// Sets the `throughput.level` reported for `phone_number_id` from now on (as
    /// [`FakeGraphBuilder::number_throughput`]), such as `HIGH` after an upgrade.
    pub fn set_number_throughput(&self, phone_number_id: &str, level: &str) {
        self.shared
            .lock()
            .throughput
            .insert(phone_number_id.to_owned(), level.to_owned());
    }

    /// Posts every status webhook of later sends twice in a row, or stops doing so.
    pub fn duplicate_statuses(&self, on: bool) {
        self.shared.lock().duplicate_statuses = on;
    }

    /// Posts the statuses of each later send in reverse order, or stops doing so.
    pub fn reverse_statuses(&self, on: bool) {
        self.shared.lock().reverse_statuses = on;
    }

    /// Calls `observer` with each request answered and each webhook posted, from the
    /// fake's own tasks (keep it quick). Replaces any earlier observer.
    pub fn on_event<F>(&self, observer: F)
    where
        F: Fn(&FakeEvent) + Send + Sync + 'static,
    {
        *self
            .shared
            .observer
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(observer));
    }

    /// Makes `token` invalid from now on (190 on every call).
    pub fn revoke_token(&self, token: &str) {
        self.shared.lock().revoked_tokens.insert(token.to_owned());
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The JSON bodies of every `POST …/messages` (sends and mark-as-read), in order.
    pub fn message_requests(&self) -> Vec<Value> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
            .filter_map(|r| r.json.clone())
            .collect()
    }

    /// Requests the fake did not understand (answered 404).
    pub fn unmatched(&self) -> Vec<RecordedRequest> {
        self.shared.lock().unmatched.clone()
    }

    /// Every webhook posted, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().deliveries.clone()
    }

    /// Waits until at least `n` requests were recorded, or `timeout` passes.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        self.wait(timeout, |s| s.requests.len() >= n).await;
        self.requests()
    }

    /// Waits until at least `n` webhooks were posted, or `timeout` passes.
    pub async fn wait_for_deliveries(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        self.wait(timeout, |s| s.deliveries.len() >= n).await;
        self.deliveries()
    }

    async fn wait(&self, timeout: Duration, done: impl Fn(&FakeState) -> bool) {
        let _ = tokio::time::timeout(timeout, async {
            loop {
                let notified = self.shared.notify.notified();
                if done(&self.shared.lock()) {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }

    /// Stores media that `GET /{media_id}` and its download URL will serve.
    pub fn add_media(&self, media_id: &str, bytes: impl Into<Bytes>, mime_type: &str) {
        self.shared
            .lock()
            .media
            .insert(media_id.to_owned(), (bytes.into(), mime_type.to_owned()));
    }

    /// Posts a signed inbound text message from `from` (digits) to the business number
    /// `phone_number_id`, as Meta would. Returns its message id.
    pub fn send_inbound_text(
        &self,
        phone_number_id: &str,
        from: &str,
        profile_name: &str,
        body: &str,
    ) -> MessageId {
        let (id, payload) = {
            let mut state = self.shared.lock();
            state.counter += 1;
            let id = format!("wamid.fake.inbound.{:016x}", state.counter);
            let number = state.numbers.get(phone_number_id).cloned();
            let (waba, display) = number
                .map(|n| (n.waba_id, n.display))
                .unwrap_or_else(|| ("0".into(), String::new()));
            let payload = json!({
                "object": "whatsapp_business_account",
                "entry": [{
                    "id": waba,
                    "changes": [{
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": { "display_phone_number": display, "phone_number_id": phone_number_id },
                            "contacts": [{ "profile": { "name": profile_name }, "wa_id": from }],
                            "messages": [{
                                "from": from,
                                "id": id,
                                "timestamp": now_secs(),
                                "type": "text",
                                "text": { "body": body },
                            }],
                        },
                        "field": "messages",
                    }],
                }],
            });
            (id, payload)
        };
        self.send_webhook(payload);
        MessageId::new(id)
    }

    /// Queues any payload to be signed and posted to the webhook URL.
    pub fn send_webhook(&self, payload: Value) {
        let _ = self.shared.queue.send(Queued {
            bodies: vec![payload],
        });
    }
}

/// The delivery worker: one queue, so webhooks go out in the order they were produced.
async fn deliver(
    shared: Arc<Shared>,
    http: reqwest::Client,
    mut queue: mpsc::UnboundedReceiver<Queued>,
) {
    while let Some(item) = queue.recv().await {
        for value in item.bodies {
            tokio::time::sleep(shared.status_delay).await;
            // Compact JSON, non-ASCII escaped as \uXXXX the way Meta writes it.
            let body = Bytes::from(meta_json(&value));
            let signature = sign(&shared.app_secret, &body);
            let url = shared.lock().webhook_url.clone();
            let response_status = match &url {
                Some(url) => http
                    .post(url)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header(SIGNATURE_HEADER, signature.as_str())
                    .body(body.clone())
                    .send()
                    .await
                    .ok()
                    .map(|r| r.status().as_u16()),
                None => None,
            };
            let delivery = Delivery {
                url: url.unwrap_or_default(),
                body,
                signature,
                response_status,
            };
            shared.lock().deliveries.push(delivery.clone());
            shared.notify.notify_waiters();
            shared.emit(FakeEvent::Posted(delivery));
        }
    }
}

/// Serialises like Meta: compact, with every non-ASCII character as a lowercase `\uXXXX`.
fn meta_json(value: &Value) -> Vec<u8> {
    let compact = serde_json::to_string(value).unwrap_or_default();
    let mut out = String::with_capacity(compact.len());
    for c in compact.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out.into_bytes()
}

/// The Graph error code of an answer, kept on the response for [`FakeEvent::Answered`].
#[derive(Clone, Copy)]
struct GraphCode(i64);

fn graph_error(status: u16, code: i64, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": { "messaging_product": "whatsapp", "details": message },
            "fbtrace_id": "FakeGraphTrace",
        }
    });
    let mut response = (status, axum::Json(body)).into_response();
    response.extensions_mut().insert(GraphCode(code));
    response
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let record = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        had_bearer: bearer.is_some(),
        content_type: headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        json: serde_json::from_slice(&body).ok(),
        body: body.clone(),
    };
    let response = route(&shared, &method, &record, bearer.as_deref());
    let event = FakeEvent::Answered {
        method: record.method.clone(),
        path: record.path.clone(),
        status: response.status().as_u16(),
        code: response.extensions().get::<GraphCode>().map(|c| c.0),
    };
    {
        let mut state = shared.lock();
        if response.status() == StatusCode::NOT_FOUND && !record.path.starts_with("/fake-media/") {
            state.unmatched.push(record.clone());
        }
        state.requests.push(record);
    }
    shared.notify.notify_waiters();
    shared.emit(event);
    response
}

fn route(
    shared: &Shared,
    method: &Method,
    req: &RecordedRequest,
    bearer: Option<&str>,
) -> Response {
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    // Every call needs a valid bearer token, media downloads included.
    let token_ok = {
        let state = shared.lock();
        match bearer {
            Some(t) if !t.is_empty() => {
                !state.revoked_tokens.contains(t)
                    && (state.valid_tokens.is_empty() || state.valid_tokens.contains(t))
            }
            _ => false,
        }
    };
    if !token_ok {
        return graph_error(
            401,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        );
    }
    match (method.as_str(), segments.as_slice()) {
        ("POST", [_version, pnid, "messages"]) => messages(shared, pnid, req),
        ("POST", [_version, pnid, "media"]) => upload(shared, pnid, req),
        ("GET", ["fake-media", id]) => match shared.lock().media.get(*id) {
            Some((bytes, mime)) => {
                ([(http::header::CONTENT_TYPE, mime.clone())], bytes.clone()).into_response()
            }
            None => (StatusCode::NOT_FOUND, "stale media URL").into_response(),
        },
        ("GET", [_version, id]) => {
            let state = shared.lock();
            if let Some(number) = state.numbers.get(*id) {
                let level = state.throughput.get(*id).map(String::as_str);
                return phone_number(id, number, level, req.query.as_deref());
            }
            match state.media.get(*id) {
                Some((bytes, mime)) => axum::Json(json!({
                    "messaging_product": "whatsapp",
                    "url": format!("{}/fake-media/{id}", shared.base_url),
                    "mime_type": mime,
                    "sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)),
                    "file_size": bytes.len(),
                    "id": id,
                }))
                .into_response(),
                None => graph_error(
                    400,
                    100,
                    &format!(
                        "(#100) Unsupported get request. Object with ID '{id}' does not exist, \
                         cannot be loaded due to missing permissions, or does not support this \
                         operation"
                    ),
                ),
            }
        }
        ("DELETE", [_version, id]) => {
            let removed = shared.lock().media.remove(*id).is_some();
            if removed {
                axum::Json(json!({ "success": true })).into_response()
            } else {
                graph_error(
                    400,
                    100,
                    "(#100) Unsupported delete request: unknown media id",
                )
            }
        }
        _ => graph_error(404, 100, "FakeGraph: unmatched request"),
    }
}

/// `GET /{phone_number_id}`: the registered number, with only the asked `fields` (and `id`).
fn phone_number(pnid: &str, number: &Number, level: Option<&str>, query: Option<&str>) -> Response {
    let digits: String = number
        .display
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let last4 = &digits[digits.len().saturating_sub(4)..];
    let all = json!({
        "id": pnid,
        "display_phone_number": number.display,
        "verified_name": format!("Fake Business {last4}"),
        "quality_rating": "GREEN",
        "code_verification_status": "VERIFIED",
        "name_status": "APPROVED",
        "throughput": { "level": level.unwrap_or("STANDARD") },
        "platform_type": "CLOUD_API",
        "is_on_biz_app": false,
    });
    let fields = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "fields")
            .map(|(_, v)| v.into_owned())
    });
    let Some(fields) = fields else {
        return axum::Json(all).into_response();
    };
    let mut out = serde_json::Map::new();
    out.insert("id".into(), pnid.into());
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        match all.get(field) {
            Some(value) => {
                out.insert(field.to_owned(), value.clone());
            }
            None => {
                return graph_error(
                    400,
                    100,
                    &format!(
                        "(#100) Tried accessing nonexisting field ({field}) on node type \
                         (WhatsAppBusinessPhoneNumber)"
                    ),
                );
            }
        }
    }
    axum::Json(Value::Object(out)).into_response()
}

fn upload(shared: &Shared, pnid: &str, req: &RecordedRequest) -> Response {
    let Some((file, mime)) = req
        .content_type
        .as_deref()
        .and_then(|ct| multipart_file(ct, &req.body))
    else {
        return graph_error(400, 100, "(#100) The parameter file is required.");
    };
    let mut state = shared.lock();
    if !state.numbers.contains_key(pnid) {
        return graph_error(
            400,
            100,
            "(#100) Unsupported post request: unknown phone number id",
        );
    }
    state.counter += 1;
    let id = format!("{}", 1_000_000_000_000_000u64 + state.counter);
    state.media.insert(id.clone(), (file, mime));
    axum::Json(json!({ "id": id })).into_response()
}

/// Extracts the `file` part (bytes, content type) of a multipart body.
fn multipart_file(content_type: &str, body: &[u8]) -> Option<(Bytes, String)> {
    let boundary = content_type.split("boundary=").nth(1)?.trim_matches('"');
    let delimiter = format!("--{boundary}");
    let text_positions = find_all(body, delimiter.as_bytes());
    for pair in text_positions.windows(2) {
        let part = &body[pair[0] + delimiter.len()..pair[1]];
        let header_end = find_all(part, b"\r\n\r\n").first().copied()?;
        let head = String::from_utf8_lossy(&part[..header_end]);
        if !head.contains("name=\"file\"") {
            continue;
        }
        let mime = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("Content-Type: ")
                    .or(l.strip_prefix("content-type: "))
            })
            .unwrap_or("application/octet-stream")
            .trim()
            .to_owned();
        let mut content = &part[header_end + 4..];
        if content.ends_with(b"\r\n") {
            content = &content[..content.len() - 2];
        }
        return Some((Bytes::copy_from_slice(content), mime));
    }
    None
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return Vec::new();
    }
    (0..=haystack.len() - needle.len())
        .filter(|&i| &haystack[i..i + needle.len()] == needle)
        .collect()
}

fn messages(shared: &Shared, pnid: &str, req: &RecordedRequest) -> Response {
    let Some(body) = req.json.as_ref().filter(|b| b.is_object()) else {
        return graph_error(400, 100, "(#100) The request body is not JSON");
    };
    let mut state = shared.lock();
    let Some(number) = state.numbers.get(pnid).cloned() else {
        return graph_error(
            400,
            100,
            "(#100) Unsupported post request. Object with ID does not exist",
        );
    };
    if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return graph_error(
            400,
            100,
            "(#100) The parameter messaging_product is required.",
        );
    }
    if body.get("status").and_then(Value::as_str) == Some("read") {
        return axum::Json(json!({ "success": true })).into_response();
    }
    let to = body.get("to").and_then(Value::as_str);
    let user = body.get("recipient").and_then(Value::as_str);
    let Some(recipient) = to.or(user) else {
        return graph_error(400, 100, "(#100) The parameter to is required.");
    };
    let Some(type_name) = body.get("type").and_then(Value::as_str) else {
        return graph_error(400, 100, "(#100) The parameter type is required.");
    };
    if body.get(type_name).is_none() {
        return graph_error(400, 131008, "(#131008) Required parameter is missing");
    }
    let key = recipient_key(recipient);
    let outcome = match state.once.get_mut(&key).and_then(VecDeque::pop_front) {
        Some(o) => o,
        None => state
            .persistent
            .get(&key)
            .cloned()
            .unwrap_or_else(|| state.default_outcome.clone()),
    };
    if let Some((status, code, message)) = outcome.rejection() {
        return graph_error(status, code, &message);
    }
    state.counter += 1;
    let wamid = format!("wamid.fake.{:016x}", state.counter);
    let (duplicate, reverse) = (state.duplicate_statuses, state.reverse_statuses);
    drop(state);

    let is_template = type_name == "template";
    let wa_id = if to.is_some() {
        key.clone()
    } else {
        String::new()
    };
    let mut contact = json!({ "input": recipient });
    if to.is_some() {
        contact["wa_id"] = wa_id.as_str().into();
    } else {
        contact["user_id"] = recipient.into();
    }
    let mut message = json!({ "id": wamid });
    if is_template {
        message["message_status"] = "accepted".into();
    }
    let response = json!({
        "messaging_product": "whatsapp",
        "contacts": [contact],
        "messages": [message],
    });

    let callback = body.get("biz_opaque_callback_data").cloned();
    let mut payloads = Vec::new();
    for (i, status) in outcome.statuses().iter().enumerate() {
        let mut s = json!({
            "id": wamid,
            "status": status,
            "timestamp": now_secs(),
        });
        if to.is_some() {
            s["recipient_id"] = wa_id.as_str().into();
        } else {
            s["recipient_user_id"] = recipient.into();
        }
        if let Some(cb) = &callback {
            s["biz_opaque_callback_data"] = cb.clone();
        }
        // Pricing on `sent` and on the first of delivered/read.
        if i < 2 && *status != "failed" {
            s["pricing"] = if is_template {
                json!({ "billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility" })
            } else {
                json!({ "billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "service" })
            };
        }
        if let Outcome::Failed { code } = &outcome {
            s["errors"] = json!([{
                "code": code,
                "title": "Message failed",
                "message": "Message failed",
                "error_data": { "details": format!("FakeGraph scripted failure {code}") },
                "href": "/documentation/business-messaging/whatsapp/support/error-codes",
            }]);
        }
        let mut value = json!({
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": number.display, "phone_number_id": pnid },
            "statuses": [s],
        });
        if *status != "failed" && to.is_some() {
            value["contacts"] = json!([{ "profile": { "name": "Fake User" }, "wa_id": wa_id }]);
        }
        let payload = json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": number.waba_id, "changes": [{ "value": value, "field": "messages" }] }],
        });
        payloads.push(payload);
    }
    if reverse {
        payloads.reverse();
    }
    if duplicate {
        payloads = payloads.into_iter().flat_map(|p| [p.clone(), p]).collect();
    }
    if !payloads.is_empty() {
        // One item for all of this send's statuses: nothing can come between them.
        let _ = shared.queue.send(Queued { bodies: payloads });
    }
    axum::Json(response).into_response()
}
