//! Typed webhook events, parsed from every entry, change, message and status of a POST.

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::ErrorClass;
use crate::ids::{MediaId, MessageId, PhoneNumberId, UserId, WabaId};

/// Why a POST body is not a webhook notification at all. Parts of a notification that are
/// merely unexpected never produce this: they become [`EventKind::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The body is not JSON.
    #[error("the webhook body is not JSON: {0}")]
    Json(String),
    /// The body is JSON but has no `entry` array.
    #[error("the webhook body has no `entry` array")]
    NotANotification,
}

/// Where an event came from: the keys to route it to a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Routing {
    /// `entry[].id`: the WABA.
    pub waba_id: Option<WabaId>,
    /// `value.metadata.phone_number_id`. Absent for template, account and quality fields.
    pub phone_number_id: Option<PhoneNumberId>,
    /// `value.metadata.display_phone_number` (digits, no `+`).
    pub display_phone_number: Option<String>,
    /// `changes[].field`, such as `messages` or `message_template_status_update`.
    pub field: Option<String>,
}

/// The key to look a tenant up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TenantKey {
    /// The business phone number (preferred: each belongs to exactly one WABA).
    PhoneNumber(PhoneNumberId),
    /// The WABA, for fields without `metadata.phone_number_id`.
    Waba(WabaId),
}

impl Routing {
    /// The phone number id when present, otherwise the WABA id. `None` only for a malformed
    /// entry without an id; acknowledge such a payload and quarantine it.
    pub fn tenant_key(&self) -> Option<TenantKey> {
        match (&self.phone_number_id, &self.waba_id) {
            (Some(p), _) => Some(TenantKey::PhoneNumber(p.clone())),
            (None, Some(w)) => Some(TenantKey::Waba(w.clone())),
            (None, None) => None,
        }
    }
}

/// One event from a webhook POST, with its routing keys.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// Which tenant it belongs to.
    pub routing: Routing,
    /// What happened.
    pub kind: EventKind,
}

/// What a webhook event says.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// An inbound message from a user.
    Message(Box<InboundMessage>),
    /// A status update for a message we sent.
    Status(Box<StatusUpdate>),
    /// A system- or app-level error (`value.errors[]`).
    Error(WebhookError),
    /// Anything else: another `field` (template status, account update, …) or a part this
    /// crate could not read. The JSON is kept as it arrived.
    Unknown(UnknownEvent),
}

/// A change or item this crate does not model, kept as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownEvent {
    /// Why it is unknown, in words (such as `field "account_update"`).
    pub reason: String,
    /// The JSON: the change `value`, or the message/status object.
    pub raw: Value,
}

impl WebhookEvent {
    /// A key for de-duplicating Meta's at-least-once deliveries:
    /// `(phone_number_id, message id)` for messages, `(wamid, status)` for statuses, and a
    /// hash of the JSON otherwise. Never hash the whole POST: retries can be batched
    /// differently.
    pub fn dedup_key(&self) -> String {
        let pnid = self
            .routing
            .phone_number_id
            .as_ref()
            .map(PhoneNumberId::as_str)
            .unwrap_or("");
        match &self.kind {
            EventKind::Message(m) => format!("message:{pnid}:{}", m.id),
            EventKind::Status(s) => format!("status:{}:{}", s.id, s.status.as_str()),
            EventKind::Error(e) => format!("error:{pnid}:{}", hash_json(&e.raw)),
            EventKind::Unknown(u) => format!(
                "unknown:{}:{}",
                self.routing.field.as_deref().unwrap_or(""),
                hash_json(&u.raw)
            ),
        }
    }

    /// The inbound message, if this is one.
    pub fn as_message(&self) -> Option<&InboundMessage> {
        match &self.kind {
            EventKind::Message(m) => Some(m),
            _ => None,
        }
    }

    /// The status update, if this is one.
    pub fn as_status(&self) -> Option<&StatusUpdate> {
        match &self.kind {
            EventKind::Status(s) => Some(s),
            _ => None,
        }
    }
}

fn hash_json(value: &Value) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// A user's profile, from `value.contacts[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// `profile.name`.
    pub name: Option<String>,
    /// `profile.username` (2026 usernames).
    pub username: Option<String>,
    /// `wa_id`: the phone number as digits. May be missing since BSUIDs.
    pub wa_id: Option<String>,
    /// `user_id`: the BSUID.
    pub user_id: Option<UserId>,
}

/// An inbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The message id (`wamid.…`).
    pub id: MessageId,
    /// The sender's phone number as digits. **May be missing** (BSUID-only users).
    pub from: Option<String>,
    /// The sender's BSUID.
    pub from_user_id: Option<UserId>,
    /// Unix seconds, as the string Meta sent.
    pub timestamp: Option<String>,
    /// The matching entry of `value.contacts[]`.
    pub contact: Option<Contact>,
    /// Quoted-reply or forwarding context.
    pub context: Option<MessageContext>,
    /// The click-to-WhatsApp ad referral, when present.
    pub referral: Option<Value>,
    /// The typed content.
    pub content: MessageContent,
    /// `errors[]` (for example 131051 on `unsupported` messages).
    pub errors: Vec<WebhookError>,
    /// The message object as it arrived.
    pub raw: Value,
}

impl InboundMessage {
    /// The timestamp as Unix seconds.
    pub fn timestamp_secs(&self) -> Option<i64> {
        self.timestamp.as_deref().and_then(|t| t.parse().ok())
    }

    /// The body of a text message.
    pub fn text(&self) -> Option<&str> {
        match &self.content {
            MessageContent::Text { body } => Some(body),
            _ => None,
        }
    }

    /// The Meta `type` string of this message.
    pub fn type_name(&self) -> Option<&str> {
        self.raw.get("type").and_then(Value::as_str)
    }
}

/// The `context` of an inbound message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MessageContext {
    /// The sender of the quoted message (our business number).
    #[serde(default)]
    pub from: Option<String>,
    /// The quoted message id.
    #[serde(default)]
    pub id: Option<MessageId>,
    /// The message was forwarded.
    #[serde(default)]
    pub forwarded: bool,
    /// The message was forwarded many times.
    #[serde(default)]
    pub frequently_forwarded: bool,
}

/// The content of an inbound message, by `type`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MessageContent {
    /// `text`.
    Text {
        /// The text.
        body: String,
    },
    /// `image`.
    Image(InboundMedia),
    /// `video`.
    Video(InboundMedia),
    /// `audio` (`voice` set for voice notes).
    Audio(InboundMedia),
    /// `document`.
    Document(InboundMedia),
    /// `sticker`.
    Sticker(InboundMedia),
    /// `location`.
    Location(InboundLocation),
    /// `contacts`: the vCard-like objects as JSON.
    Contacts(Vec<Value>),
    /// `interactive`: a reply to buttons, a list or a flow.
    Interactive(InteractiveReply),
    /// `button`: a template quick-reply tap.
    Button {
        /// The payload set in the template send.
        payload: Option<String>,
        /// The button text.
        text: Option<String>,
    },
    /// `reaction`. `emoji` is `None` or empty when the reaction was removed.
    Reaction {
        /// The message reacted to.
        message_id: Option<MessageId>,
        /// The emoji.
        emoji: Option<String>,
    },
    /// `order`, as JSON.
    Order(Value),
    /// `system` (for example the user changed number), as JSON.
    System(Value),
    /// `request_welcome`: the user opened the chat for the first time.
    RequestWelcome,
    /// `unsupported` (or the older `unknown`); the reason is in `errors`.
    Unsupported {
        /// `unsupported.type`, when given.
        type_name: Option<String>,
    },
    /// A type this crate does not know, or a known type whose object could not be read.
    Unknown {
        /// The `type` string.
        type_name: Option<String>,
        /// The message object as it arrived.
        raw: Value,
    },
}

/// An inbound media object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct InboundMedia {
    /// The media id (downloadable for 7 days).
    #[serde(default)]
    pub id: Option<MediaId>,
    /// MIME type.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// SHA-256 of the file.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Caption.
    #[serde(default)]
    pub caption: Option<String>,
    /// File name (documents).
    #[serde(default)]
    pub filename: Option<String>,
    /// A download URL, when Meta includes one.
    #[serde(default)]
    pub url: Option<String>,
    /// A voice note.
    #[serde(default)]
    pub voice: bool,
    /// An animated sticker.
    #[serde(default)]
    pub animated: bool,
}

/// An inbound location.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct InboundLocation {
    /// Latitude.
    #[serde(default)]
    pub latitude: Option<f64>,
    /// Longitude.
    #[serde(default)]
    pub longitude: Option<f64>,
    /// Place name.
    #[serde(default)]
    pub name: Option<String>,
    /// Address.
    #[serde(default)]
    pub address: Option<String>,
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// A reply to an interactive message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InteractiveReply {
    /// A reply button was tapped.
    Button {
        /// The button id we set.
        id: String,
        /// Its title.
        title: String,
    },
    /// A list row was chosen.
    List {
        /// The row id we set.
        id: String,
        /// Its title.
        title: String,
        /// Its description.
        description: Option<String>,
    },
    /// A flow was completed (`nfm_reply`).
    Flow {
        /// The flow name.
        name: Option<String>,
        /// The body text.
        body: Option<String>,
        /// The flow's response, a JSON string.
        response_json: Option<String>,
    },
    /// Another interactive reply type, as JSON.
    Unknown(Value),
}

/// The delivery status of a message we sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryStatus {
    /// Accepted and sent by Meta.
    Sent,
    /// Delivered to the device.
    Delivered,
    /// Read.
    Read,
    /// A voice message was played.
    Played,
    /// Failed; see `errors`.
    Failed,
    /// A status this crate does not know.
    Other(String),
}

impl DeliveryStatus {
    fn parse(s: &str) -> Self {
        match s {
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "played" => Self::Played,
            "failed" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The status string as Meta writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
            Self::Other(s) => s,
        }
    }

    /// `failed`, `read` and `played` are final.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Failed | Self::Read | Self::Played)
    }

    fn rank(&self) -> u8 {
        match self {
            Self::Other(_) => 0,
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read | Self::Played => 3,
            Self::Failed => 4,
        }
    }

    /// Whether moving from `current` to `self` is progress. Statuses arrive out of order and
    /// can be skipped; apply an update only when this returns `true`, so status only moves
    /// forward and terminal states stay terminal.
    pub fn supersedes(&self, current: &DeliveryStatus) -> bool {
        !current.is_terminal() && self.rank() > current.rank()
    }
}

/// A status update (`value.statuses[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The message id (`wamid.…`) returned by the send.
    pub id: MessageId,
    /// The new status.
    pub status: DeliveryStatus,
    /// Unix seconds, as the string Meta sent.
    pub timestamp: Option<String>,
    /// The recipient's phone number as digits. May be missing.
    pub recipient_id: Option<String>,
    /// The recipient's BSUID, when the message was sent to one.
    pub recipient_user_id: Option<UserId>,
    /// What we put in `biz_opaque_callback_data` when sending, unchanged.
    pub biz_opaque_callback_data: Option<String>,
    /// Pricing: on `sent` and on one of `delivered`/`read`.
    pub pricing: Option<Pricing>,
    /// The legacy conversation object (before v24), as JSON.
    pub conversation: Option<Value>,
    /// Why it failed (only on `failed`).
    pub errors: Vec<WebhookError>,
    /// The matching entry of `value.contacts[]`.
    pub contact: Option<Contact>,
    /// The status object as it arrived.
    pub raw: Value,
}

impl StatusUpdate {
    /// The timestamp as Unix seconds.
    pub fn timestamp_secs(&self) -> Option<i64> {
        self.timestamp.as_deref().and_then(|t| t.parse().ok())
    }

    /// The classification of the first error code, for `failed` statuses.
    pub fn error_class(&self) -> Option<ErrorClass> {
        self.errors
            .iter()
            .find_map(|e| e.code.map(ErrorClass::from_code))
    }
}

/// `statuses[].pricing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pricing {
    /// `billable` (being removed by Meta; use `pricing_type` and `category`).
    pub billable: Option<bool>,
    /// `pricing_model`: `PMP` (or `CBP` before July 2025).
    pub pricing_model: Option<String>,
    /// `type`.
    pub pricing_type: Option<PricingType>,
    /// `category`.
    pub category: Option<PricingCategory>,
}

/// `pricing.type`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PricingType {
    /// Charged.
    Regular,
    /// Free: inside the customer-service window.
    FreeCustomerService,
    /// Free: inside a free entry point window.
    FreeEntryPoint,
    /// Another value.
    Other(String),
}

/// `pricing.category`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PricingCategory {
    /// `marketing`.
    Marketing,
    /// `marketing_lite`.
    MarketingLite,
    /// `utility`.
    Utility,
    /// `authentication`.
    Authentication,
    /// `authentication-international` (hyphen).
    AuthenticationInternational,
    /// `service`.
    Service,
    /// `referral_conversion`.
    ReferralConversion,
    /// Another value.
    Other(String),
}

impl PricingType {
    fn parse(s: &str) -> Self {
        match s {
            "regular" => Self::Regular,
            "free_customer_service" => Self::FreeCustomerService,
            "free_entry_point" => Self::FreeEntryPoint,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl PricingCategory {
    fn parse(s: &str) -> Self {
        match s {
            "marketing" => Self::Marketing,
            "marketing_lite" => Self::MarketingLite,
            "utility" => Self::Utility,
            "authentication" => Self::Authentication,
            "authentication-international" => Self::AuthenticationInternational,
            "service" => Self::Service,
            "referral_conversion" => Self::ReferralConversion,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// An asynchronous error object: `{code, title, message, error_data:{details}, href}`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookError {
    /// The Graph error code: branch on this.
    pub code: Option<i64>,
    /// Title (being deprecated by Meta).
    pub title: Option<String>,
    /// Message.
    pub message: Option<String>,
    /// `error_data.details`.
    pub details: Option<String>,
    /// Documentation link.
    pub href: Option<String>,
    /// The object as it arrived.
    pub raw: Value,
}

impl WebhookError {
    /// What the code means; [`ErrorClass::Unknown`] without a code.
    pub fn class(&self) -> ErrorClass {
        self.code.map_or(ErrorClass::Unknown, ErrorClass::from_code)
    }

    fn from_value(raw: &Value) -> Self {
        Self {
            code: raw.get("code").and_then(Value::as_i64),
            title: str_field(raw, "title"),
            message: str_field(raw, "message"),
            details: raw
                .get("error_data")
                .and_then(|d| d.get("details"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            href: str_field(raw, "href"),
            raw: raw.clone(),
        }
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Parses every entry, change, message, status and error of a webhook POST body.
///
/// Verify the signature over the same bytes first. The result covers the whole batch in
/// order; parts that cannot be read become [`EventKind::Unknown`] with their JSON, so one
/// odd message never loses the rest of the batch.
pub fn parse_events(body: &[u8]) -> Result<Vec<WebhookEvent>, ParseError> {
    let root: Value = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    events_from_value(&root)
}

/// Like [`parse_events`], for a body that is already parsed.
pub fn events_from_value(root: &Value) -> Result<Vec<WebhookEvent>, ParseError> {
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or(ParseError::NotANotification)?;
    let mut events = Vec::new();
    for entry in entries {
        let waba_id = entry.get("id").and_then(id_string).map(WabaId::new);
        let changes = entry.get("changes").and_then(Value::as_array);
        let Some(changes) = changes else {
            events.push(WebhookEvent {
                routing: Routing {
                    waba_id,
                    phone_number_id: None,
                    display_phone_number: None,
                    field: None,
                },
                kind: unknown("entry without a `changes` array", entry),
            });
            continue;
        };
        for change in changes {
            parse_change(waba_id.clone(), change, &mut events);
        }
    }
    Ok(events)
}

/// Ids are strings; tolerate a number rather than drop the routing key.
fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn unknown(reason: impl Into<String>, raw: &Value) -> EventKind {
    EventKind::Unknown(UnknownEvent {
        reason: reason.into(),
        raw: raw.clone(),
    })
}

fn parse_change(waba_id: Option<WabaId>, change: &Value, events: &mut Vec<WebhookEvent>) {
    let field = str_field(change, "field");
    let value = change.get("value");
    let metadata = value.and_then(|v| v.get("metadata"));
    let routing = Routing {
        waba_id,
        phone_number_id: metadata
            .and_then(|m| m.get("phone_number_id"))
            .and_then(id_string)
            .map(PhoneNumberId::new),
        display_phone_number: metadata
            .and_then(|m| m.get("display_phone_number"))
            .and_then(id_string),
        field: field.clone(),
    };
    let Some(value) = value.filter(|v| v.is_object()) else {
        events.push(WebhookEvent {
            routing,
            kind: unknown("change without a `value` object", change),
        });
        return;
    };
    if field.as_deref() != Some("messages") {
        let reason = match &field {
            Some(f) => format!("field {f:?}"),
            None => "change without a `field`".to_owned(),
        };
        events.push(WebhookEvent {
            routing,
            kind: unknown(reason, value),
        });
        return;
    }

    let contacts: Vec<Contact> = array(value, "contacts").iter().map(parse_contact).collect();
    let before = events.len();
    for message in array(value, "messages") {
        let kind = parse_message(message, &contacts);
        events.push(WebhookEvent {
            routing: routing.clone(),
            kind,
        });
    }
    for status in array(value, "statuses") {
        let kind = parse_status(status, &contacts);
        events.push(WebhookEvent {
            routing: routing.clone(),
            kind,
        });
    }
    for error in array(value, "errors") {
        events.push(WebhookEvent {
            routing: routing.clone(),
            kind: EventKind::Error(WebhookError::from_value(error)),
        });
    }
    if events.len() == before {
        // A `messages` change with nothing we read (for example only `contacts`): keep it.
        events.push(WebhookEvent {
            routing,
            kind: unknown(
                "`messages` change with no messages, statuses or errors",
                value,
            ),
        });
    }
}

fn parse_contact(v: &Value) -> Contact {
    let profile = v.get("profile");
    Contact {
        name: profile.and_then(|p| str_field(p, "name")),
        username: profile.and_then(|p| str_field(p, "username")),
        wa_id: v.get("wa_id").and_then(id_string),
        user_id: v.get("user_id").and_then(id_string).map(UserId::new),
    }
}

fn find_contact(
    contacts: &[Contact],
    phone: Option<&str>,
    user: Option<&UserId>,
) -> Option<Contact> {
    let matched = contacts.iter().find(|c| {
        (phone.is_some() && c.wa_id.as_deref() == phone)
            || (user.is_some() && c.user_id.as_ref() == user)
    });
    match (matched, contacts) {
        (Some(c), _) => Some(c.clone()),
        (None, [only]) if phone.is_none() && user.is_none() => Some(only.clone()),
        _ => None,
    }
}

fn lenient<T: for<'de> Deserialize<'de>>(v: Option<&Value>) -> Option<T> {
    v.and_then(|v| T::deserialize(v).ok())
}

fn parse_message(m: &Value, contacts: &[Contact]) -> EventKind {
    let Some(id) = m.get("id").and_then(Value::as_str) else {
        return unknown("message without an `id`", m);
    };
    let from = m.get("from").and_then(id_string);
    let from_user_id = m.get("from_user_id").and_then(id_string).map(UserId::new);
    let type_name = str_field(m, "type");
    let content = parse_content(type_name.as_deref(), m);
    EventKind::Message(Box::new(InboundMessage {
        id: MessageId::new(id),
        contact: find_contact(contacts, from.as_deref(), from_user_id.as_ref()),
        from,
        from_user_id,
        timestamp: m.get("timestamp").and_then(id_string),
        context: lenient(m.get("context")),
        referral: m.get("referral").cloned(),
        content,
        errors: array(m, "errors")
            .iter()
            .map(WebhookError::from_value)
            .collect(),
        raw: m.clone(),
    }))
}

fn parse_content(type_name: Option<&str>, m: &Value) -> MessageContent {
    let unknown = || MessageContent::Unknown {
        type_name: type_name.map(str::to_owned),
        raw: m.clone(),
    };
    let Some(t) = type_name else {
        return unknown();
    };
    let obj = m.get(t);
    let media = |wrap: fn(InboundMedia) -> MessageContent| match lenient::<InboundMedia>(obj) {
        Some(media) => wrap(media),
        None => unknown(),
    };
    match t {
        "text" => match obj.and_then(|o| o.get("body")).and_then(Value::as_str) {
            Some(body) => MessageContent::Text {
                body: body.to_owned(),
            },
            None => unknown(),
        },
        "image" => media(MessageContent::Image),
        "video" => media(MessageContent::Video),
        "audio" => media(MessageContent::Audio),
        "document" => media(MessageContent::Document),
        "sticker" => media(MessageContent::Sticker),
        "location" => match lenient::<InboundLocation>(obj) {
            Some(l) => MessageContent::Location(l),
            None => unknown(),
        },
        "contacts" => match obj.and_then(Value::as_array) {
            Some(cards) => MessageContent::Contacts(cards.clone()),
            None => unknown(),
        },
        "interactive" => match obj {
            Some(o) if o.is_object() => MessageContent::Interactive(parse_interactive(o)),
            _ => unknown(),
        },
        "button" => match obj {
            Some(o) if o.is_object() => MessageContent::Button {
                payload: str_field(o, "payload"),
                text: str_field(o, "text"),
            },
            _ => unknown(),
        },
        "reaction" => match obj {
            Some(o) if o.is_object() => MessageContent::Reaction {
                message_id: str_field(o, "message_id").map(MessageId::new),
                emoji: str_field(o, "emoji"),
            },
            _ => unknown(),
        },
        "order" => MessageContent::Order(obj.cloned().unwrap_or(Value::Null)),
        "system" => MessageContent::System(obj.cloned().unwrap_or(Value::Null)),
        "request_welcome" => MessageContent::RequestWelcome,
        "unsupported" | "unknown" => MessageContent::Unsupported {
            type_name: obj.and_then(|o| str_field(o, "type")),
        },
        _ => unknown(),
    }
}

fn parse_interactive(o: &Value) -> InteractiveReply {
    let pair = |key: &str| {
        let r = o.get(key)?;
        Some((str_field(r, "id")?, str_field(r, "title")?, r))
    };
    match o.get("type").and_then(Value::as_str) {
        Some("button_reply") => match pair("button_reply") {
            Some((id, title, _)) => InteractiveReply::Button { id, title },
            None => InteractiveReply::Unknown(o.clone()),
        },
        Some("list_reply") => match pair("list_reply") {
            Some((id, title, r)) => InteractiveReply::List {
                id,
                title,
                description: str_field(r, "description"),
            },
            None => InteractiveReply::Unknown(o.clone()),
        },
        Some("nfm_reply") => {
            let r = o.get("nfm_reply").unwrap_or(&Value::Null);
            InteractiveReply::Flow {
                name: str_field(r, "name"),
                body: str_field(r, "body"),
                response_json: str_field(r, "response_json"),
            }
        }
        _ => InteractiveReply::Unknown(o.clone()),
    }
}

fn parse_status(s: &Value, contacts: &[Contact]) -> EventKind {
    let (Some(id), Some(status)) = (
        s.get("id").and_then(Value::as_str),
        s.get("status").and_then(Value::as_str),
    ) else {
        return unknown("status without an `id` or `status`", s);
    };
    let recipient_id = s.get("recipient_id").and_then(id_string);
    let recipient_user_id = s
        .get("recipient_user_id")
        .and_then(id_string)
        .map(UserId::new);
    let pricing = s.get("pricing").filter(|p| p.is_object()).map(|p| Pricing {
        billable: p.get("billable").and_then(Value::as_bool),
        pricing_model: str_field(p, "pricing_model"),
        pricing_type: p
            .get("type")
            .and_then(Value::as_str)
            .map(PricingType::parse),
        category: p
            .get("category")
            .and_then(Value::as_str)
            .map(PricingCategory::parse),
    });
    EventKind::Status(Box::new(StatusUpdate {
        id: MessageId::new(id),
        status: DeliveryStatus::parse(status),
        timestamp: s.get("timestamp").and_then(id_string),
        contact: find_contact(
            contacts,
            recipient_id.as_deref(),
            recipient_user_id.as_ref(),
        ),
        recipient_id,
        recipient_user_id,
        biz_opaque_callback_data: str_field(s, "biz_opaque_callback_data"),
        pricing,
        conversation: s.get("conversation").cloned(),
        errors: array(s, "errors")
            .iter()
            .map(WebhookError::from_value)
            .collect(),
        raw: s.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_only_moves_forward() {
        use DeliveryStatus::*;
        assert!(Delivered.supersedes(&Sent));
        assert!(Read.supersedes(&Sent));
        assert!(!Delivered.supersedes(&Read));
        assert!(!Sent.supersedes(&Delivered));
        assert!(!Failed.supersedes(&Read));
        assert!(Failed.supersedes(&Delivered));
        assert!(!Delivered.supersedes(&Failed));
    }

    #[test]
    fn non_object_parts_become_unknown() {
        let events =
            parse_events(br#"{"entry":[1,{"id":"9","changes":[null,{"field":"messages","value":{"messages":[7]}}]}]}"#)
                .unwrap_or_default();
        assert_eq!(events.len(), 3);
        assert!(
            events
                .iter()
                .all(|e| matches!(e.kind, EventKind::Unknown(_)))
        );
        assert_eq!(parse_events(b"[]"), Err(ParseError::NotANotification));
        assert!(matches!(parse_events(b"{"), Err(ParseError::Json(_))));
    }
}
