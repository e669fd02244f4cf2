//! Realtime: the team chat and live events over Socket.IO (v5, default namespace `/`,
//! path `/socket.io`), on the same HTTP server as the API, so `socket.io-client` front
//! ends connect unchanged.
//!
//! - **Handshake**: `io(url, { auth: { token } })` with the same access token as the REST
//!   API (or an `Authorization: Bearer` header). A missing, invalid or expired token, a
//!   revoked session, an API key, or a user who is no longer a member of the token's
//!   organization is refused with `connect_error` and the message `unauthorized`
//!   (socketioxide sends a message only: `err.data` is not set). A connected socket's
//!   membership is checked again at most every minute as it sends events; a member
//!   deactivated meanwhile is disconnected.
//! - **Rooms**: clients name rooms `prospect:{id}`, `relationship:{id}`, `deal:{id}` and
//!   `dm:{user_id}` ([`crate::chat::Room`]); inside, every room is prefixed with the
//!   socket's organization (`o:{org}:deal:{id}`), so whatever a client sends, two
//!   organizations never share a room. Each socket is also in its organization's room
//!   (`o:{org}`), its user's room (`o:{org}:u:{user}`, where direct messages are
//!   delivered), the billing room if its role may read billing (`o:{org}:billing`), and
//!   one room per record it is viewing (`o:{org}:v:{user}:{record}`), which is what
//!   presence is read from: with Redis, room memberships span every node, so presence
//!   does too.
//! - **Events** from clients (`join`, `leave`, `sendMessage`, `editMessage`,
//!   `deleteMessage`, `typing`, `markRead`, `viewing`, `presence`) are acknowledged with
//!   `{ok: true, ...}` or `{ok: false, error: {code, message, details?}}`.
//! - **Server events**: each node tails the `events` outbox ([`crate::events`]) and emits
//!   `event` to its *local* sockets of the event's organization (billing events only to
//!   sockets whose role may read billing), so with several nodes nothing is delivered
//!   twice.
//! - **Several nodes**: with `EDGE_REDIS_URL`, socketioxide's Redis adapter carries
//!   broadcasts and room queries between nodes (channels prefixed with
//!   `EDGE_REALTIME_REDIS_PREFIX`); without it, the local adapter serves one node.

mod outbox;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edge_core::{Error, OrgId};
use edge_tenancy::{Permission, Role, TenantContext};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::{Adapter, Emitter, LocalAdapter};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler as _;
use socketioxide::layer::SocketIoLayer;
use socketioxide::operators::BroadcastOperators;
use socketioxide_redis::{RedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use uuid::Uuid;

use crate::AppState;
use crate::audit::ClientInfo;
use crate::chat::{self, MessageView, NewMessage, Room};
use crate::tenant_scope::{cross_tenant, in_organization};

/// How long a room a socket was allowed into stays allowed without asking again.
const AUTHORIZED_FOR: Duration = Duration::from_secs(30);
/// How often a connected socket's membership is checked again.
const MEMBERSHIP_CHECK_EVERY: Duration = Duration::from_secs(60);

/// The Socket.IO server of one node.
pub struct Realtime {
    inner: Inner,
}

enum Inner {
    Local(SocketIoLayer<LocalAdapter>, SocketIo<LocalAdapter>),
    Redis(
        SocketIoLayer<RedisAdapter<Emitter>>,
        SocketIo<RedisAdapter<Emitter>>,
    ),
}

impl Realtime {
    /// Builds the Socket.IO server with its handlers: on Redis when `EDGE_REDIS_URL` is
    /// set, otherwise in process.
    pub async fn build(state: &AppState) -> Result<Self, Error> {
        let hub = Arc::new(Hub {
            state: state.clone(),
        });
        let inner = match &state.config.redis_url {
            None => {
                let (layer, io) = builder().build_layer();
                io.ns(
                    "/",
                    connected::<LocalAdapter>().with(authenticate::<LocalAdapter>(hub)),
                );
                Inner::Local(layer, io)
            }
            Some(url) => {
                let client = redis::Client::open(resp3(url)).map_err(Error::internal)?;
                let config = RedisAdapterConfig::new()
                    .with_prefix(state.config.realtime_redis_prefix.clone())
                    .with_request_timeout(Duration::from_secs(2));
                let adapter = RedisAdapterCtr::new_with_redis_config(&client, config)
                    .await
                    .map_err(Error::internal)?;
                let (layer, io) = builder()
                    .with_adapter::<RedisAdapter<_>>(adapter)
                    .build_layer();
                io.ns(
                    "/",
                    connected::<RedisAdapter<Emitter>>()
                        .with(authenticate::<RedisAdapter<Emitter>>(hub)),
                )
                .await
                .map_err(|e| Error::internal(e.to_string()))?;
                Inner::Redis(layer, io)
            }
        };
        Ok(Self { inner })
    }

    /// Serves Socket.IO at `/socket.io` in front of `router`.
    pub fn attach(&self, router: axum::Router) -> axum::Router {
        match &self.inner {
            Inner::Local(layer, _) => router.layer(layer.clone()),
            Inner::Redis(layer, _) => router.layer(layer.clone()),
        }
    }

    /// Starts tailing the event outbox into this node's sockets.
    pub fn spawn_outbox(&self, db: sea_orm::DatabaseConnection) -> tokio::task::JoinHandle<()> {
        match &self.inner {
            Inner::Local(_, io) => tokio::spawn(outbox::tail(db, io.clone())),
            Inner::Redis(_, io) => tokio::spawn(outbox::tail(db, io.clone())),
        }
    }

    /// Disconnects every socket of this node.
    pub async fn close(&self) {
        match &self.inner {
            Inner::Local(_, io) => io.close().await,
            Inner::Redis(_, io) => io.close().await,
        }
    }
}

fn builder() -> socketioxide::SocketIoBuilder {
    SocketIo::builder()
        .req_path("/socket.io")
        .max_payload(64 * 1024)
        .ack_timeout(Duration::from_secs(10))
}

/// socketioxide's Redis driver needs RESP3 (Redis 7+).
fn resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

struct Hub {
    state: AppState,
}

/// What a socket is, set at the handshake.
#[derive(Clone)]
struct Session {
    ctx: TenantContext,
    org: OrgId,
    user: Uuid,
    /// Rooms this socket was allowed into, and when.
    allowed: Arc<Mutex<HashMap<Room, Instant>>>,
    /// Token bucket: (tokens, last refill), refilled at `per_second` up to twice that.
    bucket: Arc<Mutex<(f64, Instant)>>,
    per_second: f64,
    /// When membership was last checked.
    checked: Arc<Mutex<Instant>>,
}

impl Session {
    fn take_token(&self) -> Result<(), Error> {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(bucket.1).as_secs_f64() * self.per_second;
        bucket.0 = (bucket.0 + refill).min(2.0 * self.per_second);
        bucket.1 = now;
        if bucket.0 >= 1.0 {
            bucket.0 -= 1.0;
            Ok(())
        } else {
            Err(Error::RateLimited {
                retry_after: Duration::from_secs_f64((1.0 - bucket.0) / self.per_second),
            })
        }
    }

    fn recently_allowed(&self, room: Room) -> bool {
        let allowed = self.allowed.lock().unwrap_or_else(|e| e.into_inner());
        allowed
            .get(&room)
            .is_some_and(|at| at.elapsed() < AUTHORIZED_FOR)
    }

    fn remember(&self, room: Room) {
        let mut allowed = self.allowed.lock().unwrap_or_else(|e| e.into_inner());
        if allowed.len() > 1_000 {
            allowed.retain(|_, at| at.elapsed() < AUTHORIZED_FOR);
        }
        allowed.insert(room, Instant::now());
    }

    fn membership_due(&self) -> bool {
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked.elapsed() >= MEMBERSHIP_CHECK_EVERY {
            *checked = Instant::now();
            true
        } else {
            false
        }
    }
}

// ---------------------------------------------------------------------------------------
// Room names inside the adapter: always under the organization.

fn org_room(org: OrgId) -> String {
    format!("o:{org}")
}

fn billing_room(org: OrgId) -> String {
    format!("o:{org}:billing")
}

/// The sockets that see every CRM record whatever the organization's
/// `record_visibility` (every role but `user`; see `crm::visibility`).
fn all_records_room(org: OrgId) -> String {
    format!("o:{org}:records")
}

fn user_room(org: OrgId, user: Uuid) -> String {
    format!("o:{org}:u:{user}")
}

fn record_room(org: OrgId, room: Room) -> String {
    format!("o:{org}:{room}")
}

fn view_prefix(org: OrgId, user: Uuid) -> String {
    format!("o:{org}:v:{user}:")
}

// ---------------------------------------------------------------------------------------
// Handshake

/// A boxed handler future (socketioxide handlers are async functions of extractors).
type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

/// Why a connection was refused: the client's `connect_error` message.
#[derive(Debug)]
struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unauthorized")
    }
}

#[derive(Deserialize)]
struct Auth {
    token: String,
}

/// The connect middleware: resolves the access token exactly as the REST API does, checks
/// the membership, and sets up the socket's handlers before it is connected (so an event
/// sent right after `connect` is never missed).
fn authenticate<A: Adapter>(
    hub: Arc<Hub>,
) -> impl Fn(SocketRef<A>, TryData<Value>) -> BoxFuture<Result<(), Unauthorized>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |s: SocketRef<A>, TryData(auth): TryData<Value>| {
        let hub = hub.clone();
        Box::pin(async move {
            let token = auth
                .ok()
                .and_then(|v| serde_json::from_value::<Auth>(v).ok())
                .map(|a| a.token)
                .or_else(|| bearer(&s))
                .ok_or(Unauthorized)?;
            let ctx = cross_tenant(hub.state.resolver.from_jwt(token.trim()))
                .await
                .map_err(|_| Unauthorized)?;
            let user = ctx.user().ok_or(Unauthorized)?.as_uuid();
            let org = ctx.org();
            let member = in_organization(
                org,
                crate::crm::records::is_active_member(&hub.state.db, org, user),
            )
            .await
            .map_err(|_| Unauthorized)?;
            if !member || !ctx.can(Permission::ChatUse) {
                return Err(Unauthorized);
            }
            let per_second = f64::from(hub.state.config.realtime_events_per_second);
            let session = Session {
                ctx,
                org,
                user,
                allowed: Arc::default(),
                bucket: Arc::new(Mutex::new((2.0 * per_second, Instant::now()))),
                per_second,
                checked: Arc::new(Mutex::new(Instant::now())),
            };
            let mut rooms = vec![org_room(org), user_room(org, user)];
            if session.ctx.can(Permission::BillingRead) {
                rooms.push(billing_room(org));
            }
            if session.ctx.role() != Role::User {
                rooms.push(all_records_room(org));
            }
            s.extensions.insert(session);
            s.join(rooms);
            register(&hub, &s);
            Ok(())
        })
    }
}

/// An `Authorization: Bearer` header on the handshake request, for clients that send
/// `extraHeaders` instead of `auth`.
fn bearer<A: Adapter>(s: &SocketRef<A>) -> Option<String> {
    let header = s.req_parts().headers.get(http::header::AUTHORIZATION)?;
    let (scheme, token) = header.to_str().ok()?.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The connect handler: announces the user online if this is their first socket.
fn connected<A: Adapter>()
-> impl Fn(SocketRef<A>, SocketIo<A>) -> BoxFuture<()> + Clone + Send + Sync + 'static {
    move |s: SocketRef<A>, io: SocketIo<A>| {
        Box::pin(async move {
            let Some(session) = s.extensions.get::<Session>() else {
                return;
            };
            let Some(root) = default_ns(&io) else {
                return;
            };
            let others = match root
                .within(user_room(session.org, session.user))
                .fetch_sockets()
                .await
            {
                Ok(sockets) => sockets.iter().filter(|r| r.data().id != s.id).count(),
                Err(err) => {
                    tracing::warn!(error = %err, "presence: cannot count the user's sockets");
                    0
                }
            };
            if others == 0 {
                let presence = json!({"user_id": session.user, "online": true, "viewing": []});
                if let Some(root) = default_ns(&io) {
                    emit_logged(root.to(org_room(session.org)).emit("presence", &presence)).await;
                }
            }
        })
    }
}

/// The default namespace's operators, or `None` once the server is closing: disconnect
/// handlers still run then, and socketioxide's own `io.to()` would panic.
pub(super) fn default_ns<A: Adapter>(io: &SocketIo<A>) -> Option<BroadcastOperators<A>> {
    io.of("/")
}

async fn emit_logged<E: std::fmt::Display>(emit: impl Future<Output = Result<(), E>>) {
    if let Err(err) = emit.await {
        tracing::debug!(error = %err, "realtime emit failed");
    }
}

// ---------------------------------------------------------------------------------------
// Client events

type Reply = Result<Value, Error>;

/// Registers every client event of the protocol on a socket.
fn register<A: Adapter>(hub: &Arc<Hub>, s: &SocketRef<A>) {
    on(s, hub, "join", join::<A>);
    on(s, hub, "leave", leave::<A>);
    on(s, hub, "sendMessage", send_message::<A>);
    on(s, hub, "editMessage", edit_message::<A>);
    on(s, hub, "deleteMessage", delete_message::<A>);
    on(s, hub, "typing", typing::<A>);
    on(s, hub, "markRead", mark_read::<A>);
    on(s, hub, "viewing", viewing::<A>);
    on(s, hub, "presence", presence::<A>);
    let hub = hub.clone();
    s.on_disconnect(move |s: SocketRef<A>, io: SocketIo<A>| {
        let _hub = hub.clone();
        async move { disconnected(s, io).await }
    });
}

/// Registers one event: parses nothing itself, runs `handler` in the socket's
/// organization scope, and acknowledges with its reply.
fn on<A, F, Fut>(s: &SocketRef<A>, hub: &Arc<Hub>, event: &'static str, handler: F)
where
    A: Adapter,
    F: Fn(Arc<Hub>, SocketRef<A>, SocketIo<A>, Session, Value) -> Fut
        + Clone
        + Send
        + Sync
        + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let hub = hub.clone();
    s.on(
        event,
        move |s: SocketRef<A>,
              io: SocketIo<A>,
              TryData(data): TryData<Value>,
              ack: AckSender<A>| {
            let hub = hub.clone();
            let handler = handler.clone();
            async move {
                let Some(session) = s.extensions.get::<Session>() else {
                    return;
                };
                if session.membership_due() {
                    let still = in_organization(
                        session.org,
                        crate::crm::records::is_active_member(
                            &hub.state.db,
                            session.org,
                            session.user,
                        ),
                    )
                    .await;
                    if matches!(still, Ok(false)) {
                        ack.send(&failure(&Error::Unauthenticated)).ok();
                        s.disconnect().ok();
                        return;
                    }
                }
                let data = data.unwrap_or(Value::Null);
                let org = session.org;
                let reply = in_organization(org, handler(hub, s, io, session, data)).await;
                let body = match reply {
                    Ok(Value::Object(mut fields)) => {
                        fields.insert("ok".into(), Value::Bool(true));
                        Value::Object(fields)
                    }
                    Ok(_) => json!({"ok": true}),
                    Err(err) => failure(&err),
                };
                ack.send(&body).ok();
            }
        },
    );
}

/// The failed acknowledgement: `{ok: false, error: {code, message, details?}}`.
fn failure(err: &Error) -> Value {
    let (code, message, details) = match err {
        Error::Validation(fields) => (
            "invalid",
            "the payload is not valid".to_owned(),
            Some(json!(fields)),
        ),
        Error::NotFound { .. } => ("not_found", err.to_string(), None),
        Error::Forbidden(message) => ("forbidden", message.clone(), None),
        Error::Conflict(message) => ("conflict", message.clone(), None),
        Error::RateLimited { retry_after } => (
            "rate_limited",
            err.to_string(),
            Some(json!({"retry_after_ms": retry_after.as_millis()})),
        ),
        Error::Unauthenticated => ("unauthorized", "authentication required".to_owned(), None),
        other => {
            tracing::error!(error = %other, "realtime event failed");
            ("internal", "internal error".to_owned(), None)
        }
    };
    let mut error = json!({"code": code, "message": message});
    if let Some(details) = details {
        error["details"] = details;
    }
    json!({"ok": false, "error": error})
}

/// Reads an event's payload; a payload of the wrong shape is `invalid` with the reason.
fn payload<T: DeserializeOwned>(data: Value) -> Result<T, Error> {
    serde_json::from_value(data).map_err(|e| Error::invalid("payload", e.to_string()))
}

/// A room name from a client: malformed is `not_found`, like any room one may not use.
fn room_name(name: &str) -> Result<Room, Error> {
    Room::parse(name).ok_or(Error::not_found("room"))
}

/// Checks (or recalls, for [`AUTHORIZED_FOR`]) that the socket may use `room`.
async fn allow(hub: &Hub, session: &Session, room: Room) -> Result<(), Error> {
    if session.recently_allowed(room) {
        return Ok(());
    }
    chat::authorize(&hub.state.db, &session.ctx, room).await?;
    session.remember(room);
    Ok(())
}

#[derive(Deserialize)]
struct RoomPayload {
    room: String,
}

async fn join<A: Adapter>(
    hub: Arc<Hub>,
    s: SocketRef<A>,
    _io: SocketIo<A>,
    session: Session,
    data: Value,
) -> Reply {
    session.take_token()?;
    let input: RoomPayload = payload(data)?;
    let room = room_name(&input.room)?;
    allow(&hub, &session, room).await?;
    // A user's sockets always receive their direct messages: nothing to join.
    if room.is_record() {
        s.join(record_room(session.org, room));
        chat::joined(
            &hub.state.db,
            session.org,
            session.user,
            room,
            hub.state.clock.now(),
        )
        .await?;
    }
    Ok(json!({"room": room.to_string()}))
}

async fn leave<A: Adapter>(
    _hub: Arc<Hub>,
    s: SocketRef<A>,
    _io: SocketIo<A>,
    session: Session,
    data: Value,
) -> Reply {
    let input: RoomPayload = payload(data)?;
    let room = room_name(&input.room)?;
    if room.is_record() {
        s.leave(record_room(session.org, room));
    }
    Ok(json!({"room": room.to_string()}))
}

#[derive(Deserialize)]
struct SendPayload {
    room: String,
    body: String,
    #[serde(default)]
    client_message_id: Option<String>,
}

async fn send_message<A: Adapter>(
    hub: Arc<Hub>,
    s: SocketRef<A>,
    _io: SocketIo<A>,
    session: Session,
    data: Value,
) -> Reply {
    session.take_token()?;
    let input: SendPayload = payload(data)?;
    let room = room_name(&input.room)?;
    let message = NewMessage {
        body: input.body,
        client_message_id: input.client_message_id,
    };
    message.check()?;
    allow(&hub, &session, room).await?;
    let stored = chat::store_message(
        &hub.state.db,
        session.org,
        session.user,
        room,
        message,
        hub.state.clock.now(),
    )
    .await?;
    let mine = MessageView::of(&stored.message, Some(session.user));
    if stored.created {
        deliver(
            &s,
            &session,
            room,
            &stored.message,
            "message",
            |view| json!({"message": view}),
        )
        .await;
    }
    Ok(json!({"message": mine}))
}

/// Sends `event` about `row` to everyone concerned but this socket: the room's sockets,
/// or for a direct message the other member's sockets and the sender's other sockets,
/// each with the room as they name it.
async fn deliver<A: Adapter>(
    s: &SocketRef<A>,
    session: &Session,
    room: Room,
    row: &crate::entities::chat_messages::Model,
    event: &'static str,
    body: impl Fn(MessageView) -> Value,
) {
    match room {
        Room::Dm(peer) => {
            let theirs = body(MessageView::of(row, Some(peer)));
            emit_logged(s.to(user_room(session.org, peer)).emit(event, &theirs)).await;
            let mine = body(MessageView::of(row, Some(session.user)));
            emit_logged(
                s.to(user_room(session.org, session.user))
                    .emit(event, &mine),
            )
            .await;
        }
        record => {
            let view = body(MessageView::of(row, None));
            emit_logged(s.to(record_room(session.org, record)).emit(event, &view)).await;
        }
    }
}

#[derive(Deserialize)]
struct EditPayload {
    message_id: Uuid,
    body: String,
}

async fn edit_message<A: Adapter>(
    hub: Arc<Hub>,
    s: SocketRef<A>,
    _io: SocketIo<A>,
    session: Session,
    data: Value,
) -> Reply {
    session.take_token()?;
    let input: EditPayload = payload(data)?;
    let (row, room) = chat::edit_message(
        &hub.state.db,
        &session.ctx,
        input.message_id,
        &input.body,
        hub.state.clock.now(),
    )
    .await?;
    deliver(
        &s,
        &session,
        room,
        &row,
        "messageEdited",
        |view| json!({"message": view}),
    )
    .await;
    Ok(json!({"message": MessageView::of(&row, Some(session.user))}))
}

#[derive(Deserialize)]
struct MessageIdPayload {
    message_id: Uuid,
}

async fn delete_message<A: Adapter>(
    hub: Arc<Hub>,
    s: SocketRef<A>,
    _io: SocketIo<A>,
    session: Session,
    data: Value,
) -> Reply {
    session.take_token()?;
    let input: MessageIdPayload = payload(data)?;
    let client = ClientInfo {
        ip: None,
        user_agent: s
            .req_parts()
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(255).collect()),
        request_id: Some(format!("socket:{}", s.id)),
    };
    let (row, room) = chat::delete_message(
        &hub.state.db,
        &session.ctx,
        &client,
        input.message_id,
        hub.state.clock.now(),
    )
    .await?;
    deliver(
        &s,
        &session,
        room,
        &row,
        "messageDeleted",
        |view| json!({"room": view.room, "message_id": view.id}),
    )
    .await;
    Ok(json!({"message_id": row.id}))
}

#[derive(Deserialize)]
struct TypingPayload {
    room: String,
    typing: bool,
}

async fn typing<A: Adapter>(
    hub: Arc<Hub>,
    s: SocketRef<A>,
    _io: SocketIo<A>,
    session: Session,
    data: Value,
) -> Reply {
    session.take_token()?;
    let input: TypingPayload = payload(data)?;
    let room = room_name(&input.room)?;
    allow(&hub, &session, room).await?;
    match room {
        Room::Dm(peer) => {
            let event = json!({
                "room": Room::Dm(session.user).to_string(),
                "user_id": session.user,
                "typing": input.typing,
            });
            emit_logged(s.to(user_room(session.org, peer)).emit("typing", &event)).await;
        }
        record => {
            let event = json!({
                "room": record.to_string(),
                "user_id": session.user,
                "typing": input.typing,
            });
            emit_logged(
                s.to(record_room(session.org, record))
                    .emit("typing", &event),
            )
            .await;
        }
    }
    Ok(json!({"room": room.to_string()}))
}

#[derive(Deserialize)]
struct MarkReadPayload {
    room: String,
    message_id: Uuid,
}

async fn mark_read<A: Adapter>(
    hub: Arc<Hub>,
    _s: SocketRef<A>,
    _io: SocketIo<A>,
    session: Session,
    data: Value,
) -> Reply {
    session.take_token()?;
    let input: MarkReadPayload = payload(data)?;
    let room = room_name(&input.room)?;
    allow(&hub, &session, room).await?;
    let position = chat::mark_read(
        &hub.state.db,
        &session.ctx,
        room,
        input.message_id,
        hub.state.clock.now(),
    )
    .await?;
    serde_json::to_value(position).map_err(Error::internal)
}

#[derive(Deserialize)]
struct ViewingPayload {
    record: Option<String>,
}

async fn viewing<A: Adapter>(
    hub: Arc<Hub>,
    s: SocketRef<A>,
    io: SocketIo<A>,
    session: Session,
    data: Value,
) -> Reply {
    session.take_token()?;
    let input: ViewingPayload = payload(data)?;
    let record = match input.record.as_deref() {
        None => None,
        Some(name) => {
            let room = Room::parse_record(name).ok_or(Error::not_found("room"))?;
            allow(&hub, &session, room).await?;
            Some(room)
        }
    };
    let prefix = view_prefix(session.org, session.user);
    let previous: Vec<String> = s
        .rooms()
        .into_iter()
        .filter(|r| r.starts_with(&prefix))
        .map(|r| r.into_owned())
        .collect();
    let next: Vec<String> = record
        .map(|room| format!("{prefix}{room}"))
        .into_iter()
        .collect();
    if previous != next {
        s.leave(previous);
        s.join(next);
        announce(&io, session.org, session.user, true).await;
    }
    Ok(json!({"viewing": record.map(|r| r.to_string())}))
}

/// Emits the user's presence (what all their sockets view, across nodes) to the
/// organization.
async fn announce<A: Adapter>(io: &SocketIo<A>, org: OrgId, user: Uuid, online: bool) {
    let viewing = if online {
        viewing_of(io, org, user).await
    } else {
        Vec::new()
    };
    let presence = json!({"user_id": user, "online": online, "viewing": viewing});
    if let Some(root) = default_ns(io) {
        emit_logged(root.to(org_room(org)).emit("presence", &presence)).await;
    }
}

/// The records a user's sockets view, on every node.
async fn viewing_of<A: Adapter>(io: &SocketIo<A>, org: OrgId, user: Uuid) -> Vec<String> {
    let prefix = view_prefix(org, user);
    let Some(root) = default_ns(io) else {
        return Vec::new();
    };
    match root.within(user_room(org, user)).rooms().await {
        Ok(rooms) => rooms
            .iter()
            .filter_map(|r| r.strip_prefix(prefix.as_str()).map(str::to_owned))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        Err(err) => {
            tracing::warn!(error = %err, "presence: cannot read the user's rooms");
            Vec::new()
        }
    }
}

async fn presence<A: Adapter>(
    _hub: Arc<Hub>,
    _s: SocketRef<A>,
    io: SocketIo<A>,
    session: Session,
    _data: Value,
) -> Reply {
    session.take_token()?;
    let org = session.org;
    let rooms = default_ns(&io)
        .ok_or_else(|| Error::internal("the realtime server is closing"))?
        .within(org_room(org))
        .rooms()
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    let users_prefix = format!("o:{org}:u:");
    let views_prefix = format!("o:{org}:v:");
    let mut online: BTreeMap<Uuid, BTreeSet<String>> = BTreeMap::new();
    for room in &rooms {
        if let Some(user) = room.strip_prefix(users_prefix.as_str()) {
            if let Ok(user) = Uuid::parse_str(user) {
                online.entry(user).or_default();
            }
        } else if let Some(rest) = room.strip_prefix(views_prefix.as_str())
            && let Some((user, record)) = rest.split_once(':')
            && let Ok(user) = Uuid::parse_str(user)
        {
            online.entry(user).or_default().insert(record.to_owned());
        }
    }
    let online: Vec<Value> = online
        .into_iter()
        .map(|(user, viewing)| json!({"user_id": user, "viewing": viewing}))
        .collect();
    Ok(json!({"online": online}))
}

/// A socket went away: leaves its rooms, then tells the organization the user is offline
/// if it was their last socket anywhere, or what they still view if it was viewing.
async fn disconnected<A: Adapter>(s: SocketRef<A>, io: SocketIo<A>) {
    let Some(session) = s.extensions.get::<Session>() else {
        return;
    };
    let prefix = view_prefix(session.org, session.user);
    let was_viewing = s.rooms().iter().any(|r| r.starts_with(&prefix));
    s.leave_all();
    let Some(root) = default_ns(&io) else {
        return;
    };
    let remaining = match root
        .within(user_room(session.org, session.user))
        .fetch_sockets()
        .await
    {
        Ok(sockets) => sockets.iter().filter(|r| r.data().id != s.id).count(),
        Err(err) => {
            tracing::warn!(error = %err, "presence: cannot count the user's sockets");
            return;
        }
    };
    if remaining == 0 {
        announce(&io, session.org, session.user, false).await;
    } else if was_viewing {
        announce(&io, session.org, session.user, true).await;
    }
}
