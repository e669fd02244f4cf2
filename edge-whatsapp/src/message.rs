//! Outbound messages: owned, typed requests. Required fields go in constructors, optional
//! ones in chained setters, then `.send(&client, &credentials)`.
//!
//! ```no_run
//! # async fn demo(client: edge_whatsapp::WhatsAppClient, creds: edge_whatsapp::Credentials)
//! # -> Result<(), edge_whatsapp::Error> {
//! use edge_whatsapp::message::{SendMessage, Text};
//!
//! let response = SendMessage::new("+254712345678", Text::new("Karibu!").preview_url(false))
//!     .biz_opaque_callback_data("send:01JD8X4N6W2QH5T3KZ7RVB9C0M")
//!     .send(&client, &creds)
//!     .await?;
//! println!("{:?}", response.message_id());
//! # Ok(()) }
//! ```

use edge_core::Msisdn;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::client::WhatsAppClient;
use crate::credentials::Credentials;
use crate::error::Error;
use crate::ids::{MediaId, MessageId, UserId};

/// The longest `biz_opaque_callback_data` sent (Meta's cap is believed to be 512).
pub const MAX_CALLBACK_DATA_LEN: usize = 512;

/// Who a message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A phone number. Include `+` and the country code: without `+`, Meta prefixes the
    /// business number's country code.
    Phone(String),
    /// A business-scoped user id (BSUID), sent as `recipient`.
    User(UserId),
}

impl Recipient {
    /// A phone number, as typed (`+`, digits, spaces, dashes and parentheses).
    pub fn phone(number: impl Into<String>) -> Self {
        Self::Phone(number.into())
    }

    /// A BSUID.
    pub fn user(id: impl Into<UserId>) -> Self {
        Self::User(id.into())
    }

    fn write(&self, out: &mut Map<String, Value>) -> Result<(), Error> {
        match self {
            Self::Phone(p) => {
                let ok = p.chars().any(|c| c.is_ascii_digit())
                    && p.chars()
                        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')'));
                if !ok {
                    return Err(Error::invalid("the recipient is not a phone number"));
                }
                out.insert("to".into(), p.as_str().into());
            }
            Self::User(u) => {
                if u.as_str().is_empty() {
                    return Err(Error::invalid("the recipient user id is empty"));
                }
                out.insert("recipient".into(), u.as_str().into());
            }
        }
        Ok(())
    }
}

impl From<&Msisdn> for Recipient {
    fn from(m: &Msisdn) -> Self {
        Self::Phone(m.as_e164().to_owned())
    }
}

impl From<Msisdn> for Recipient {
    fn from(m: Msisdn) -> Self {
        Self::from(&m)
    }
}

impl From<&str> for Recipient {
    fn from(p: &str) -> Self {
        Self::Phone(p.to_owned())
    }
}

impl From<String> for Recipient {
    fn from(p: String) -> Self {
        Self::Phone(p)
    }
}

impl From<UserId> for Recipient {
    fn from(u: UserId) -> Self {
        Self::User(u)
    }
}

/// What a message carries.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Content {
    /// `text`.
    Text(Text),
    /// `template`.
    Template(Template),
    /// `image`, `video`, `audio`, `document` or `sticker`.
    Media(Media),
    /// `interactive`.
    Interactive(Interactive),
    /// `reaction`.
    Reaction(Reaction),
    /// `location`.
    Location(Location),
    /// `contacts`.
    Contacts(Vec<ContactCard>),
    /// Any other type, as JSON: `{"type": type_name, type_name: payload}`. The escape hatch
    /// for types Meta adds.
    Raw {
        /// The `type`.
        type_name: String,
        /// The object sent under that name.
        payload: Value,
    },
}

macro_rules! content_from {
    ($($t:ident),*) => {$(
        impl From<$t> for Content {
            fn from(v: $t) -> Self {
                Content::$t(v)
            }
        }
    )*};
}
content_from!(Text, Template, Media, Interactive, Reaction, Location);

impl From<Vec<ContactCard>> for Content {
    fn from(cards: Vec<ContactCard>) -> Self {
        Content::Contacts(cards)
    }
}

/// A message to send: recipient, content, and optional reply context and callback data.
#[derive(Debug, Clone, PartialEq)]
pub struct SendMessage {
    recipient: Recipient,
    content: Content,
    reply_to: Option<MessageId>,
    callback_data: Option<String>,
}

impl SendMessage {
    /// A message with `content` for `recipient`.
    pub fn new(recipient: impl Into<Recipient>, content: impl Into<Content>) -> Self {
        Self {
            recipient: recipient.into(),
            content: content.into(),
            reply_to: None,
            callback_data: None,
        }
    }

    /// Sends it as a quoted reply to `message_id` (`context.message_id`).
    pub fn reply_to(mut self, message_id: impl Into<MessageId>) -> Self {
        self.reply_to = Some(message_id.into());
        self
    }

    /// `biz_opaque_callback_data`: returned unchanged in this message's status webhooks.
    /// Put your own send id here to tie statuses (and refunds) back to it.
    pub fn biz_opaque_callback_data(mut self, data: impl Into<String>) -> Self {
        self.callback_data = Some(data.into());
        self
    }

    /// The recipient.
    pub fn recipient(&self) -> &Recipient {
        &self.recipient
    }

    /// The content.
    pub fn content(&self) -> &Content {
        &self.content
    }

    /// The JSON body of `POST /{phone_number_id}/messages`, after checking Meta's limits.
    pub fn to_json(&self) -> Result<Value, Error> {
        let mut out = Map::new();
        out.insert("messaging_product".into(), "whatsapp".into());
        out.insert("recipient_type".into(), "individual".into());
        self.recipient.write(&mut out)?;
        if let Some(id) = &self.reply_to {
            out.insert("context".into(), json!({ "message_id": id.as_str() }));
        }
        if let Some(data) = &self.callback_data {
            if data.chars().count() > MAX_CALLBACK_DATA_LEN {
                return Err(Error::invalid(format!(
                    "biz_opaque_callback_data is longer than {MAX_CALLBACK_DATA_LEN} characters"
                )));
            }
            out.insert("biz_opaque_callback_data".into(), data.as_str().into());
        }
        let (type_name, payload) = match &self.content {
            Content::Text(t) => ("text".to_owned(), t.to_json()?),
            Content::Template(t) => ("template".to_owned(), t.to_json()?),
            Content::Media(m) => (m.kind.as_str().to_owned(), m.to_json()?),
            Content::Interactive(i) => ("interactive".to_owned(), i.to_json()?),
            Content::Reaction(r) => ("reaction".to_owned(), r.to_json()?),
            Content::Location(l) => ("location".to_owned(), l.to_json()?),
            Content::Contacts(c) => ("contacts".to_owned(), contacts_json(c)?),
            Content::Raw { type_name, payload } => {
                if type_name.is_empty() {
                    return Err(Error::invalid("the raw message type is empty"));
                }
                (type_name.clone(), payload.clone())
            }
        };
        out.insert("type".into(), type_name.as_str().into());
        out.insert(type_name, payload);
        Ok(Value::Object(out))
    }

    /// Sends the message from the number in `creds`.
    ///
    /// A success means Meta *accepted* it; delivery arrives as status webhooks. Never retry
    /// blindly on an error whose [`Error::may_have_been_sent`] is true.
    pub async fn send(
        &self,
        client: &WhatsAppClient,
        creds: &Credentials,
    ) -> Result<SendResponse, Error> {
        client.send(creds, self).await
    }
}

/// Marks an inbound message (and every earlier one in the thread) as read, optionally
/// showing a typing indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkAsRead {
    message_id: MessageId,
    typing: bool,
}

impl MarkAsRead {
    /// Marks `message_id` as read.
    pub fn new(message_id: impl Into<MessageId>) -> Self {
        Self {
            message_id: message_id.into(),
            typing: false,
        }
    }

    /// Also shows "typing…" until we reply or for up to 25 s.
    pub fn typing_indicator(mut self) -> Self {
        self.typing = true;
        self
    }

    /// The JSON body.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": self.message_id.as_str(),
        });
        if self.typing {
            v["typing_indicator"] = json!({ "type": "text" });
        }
        v
    }

    /// Sends it. Returns Meta's `success` flag.
    pub async fn send(&self, client: &WhatsAppClient, creds: &Credentials) -> Result<bool, Error> {
        client.mark_as_read(creds, self).await
    }
}

/// The answer to a send: Meta *accepted* the message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SendResponse {
    /// `contacts[]`: the input and the resolved `wa_id` (they can differ).
    #[serde(default)]
    pub contacts: Vec<SentContact>,
    /// `messages[]`: the message id.
    #[serde(default)]
    pub messages: Vec<SentMessage>,
}

impl SendResponse {
    /// The id of the message sent; its status webhooks carry it.
    pub fn message_id(&self) -> Option<&MessageId> {
        self.messages.first().map(|m| &m.id)
    }
}

/// One entry of `contacts[]` in a send response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SentContact {
    /// What we sent as `to`.
    #[serde(default)]
    pub input: Option<String>,
    /// The user's WhatsApp id.
    #[serde(default)]
    pub wa_id: Option<String>,
    /// The user's BSUID.
    #[serde(default)]
    pub user_id: Option<UserId>,
}

/// One entry of `messages[]` in a send response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SentMessage {
    /// The message id (`wamid.…`).
    pub id: MessageId,
    /// `accepted` or `held_for_quality_assessment` (template sends).
    #[serde(default)]
    pub message_status: Option<String>,
}

fn check_len(what: &str, text: &str, max: usize) -> Result<(), Error> {
    let n = text.chars().count();
    if n > max {
        return Err(Error::invalid(format!(
            "{what} is {n} characters; the limit is {max}"
        )));
    }
    Ok(())
}

fn check_non_empty(what: &str, text: &str) -> Result<(), Error> {
    if text.trim().is_empty() {
        return Err(Error::invalid(format!("{what} is empty")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Text

/// A text message (`body` ≤ 4096 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    body: String,
    preview_url: bool,
}

impl Text {
    /// A text message.
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            preview_url: false,
        }
    }

    /// Render a preview of the first URL in the body.
    pub fn preview_url(mut self, preview: bool) -> Self {
        self.preview_url = preview;
        self
    }

    fn to_json(&self) -> Result<Value, Error> {
        check_non_empty("the text body", &self.body)?;
        check_len("the text body", &self.body, 4096)?;
        Ok(json!({ "preview_url": self.preview_url, "body": self.body }))
    }
}

// ---------------------------------------------------------------------------------------
// Media

/// Where media comes from: an uploaded media id, or a public HTTPS link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// A media id from [`WhatsAppClient::upload_media`].
    Id(MediaId),
    /// A public URL (Meta caches it for 10 minutes per exact URL).
    Link(String),
}

impl MediaSource {
    /// An uploaded media id.
    pub fn id(id: impl Into<MediaId>) -> Self {
        Self::Id(id.into())
    }

    /// A public link.
    pub fn link(url: impl Into<String>) -> Self {
        Self::Link(url.into())
    }

    fn write(&self, out: &mut Map<String, Value>) -> Result<(), Error> {
        match self {
            Self::Id(id) => {
                check_non_empty("the media id", id.as_str())?;
                out.insert("id".into(), id.as_str().into());
            }
            Self::Link(link) => {
                let url = url::Url::parse(link)
                    .map_err(|_| Error::invalid("the media link is not a URL"))?;
                if !matches!(url.scheme(), "https" | "http") {
                    return Err(Error::invalid("the media link must be an HTTPS URL"));
                }
                out.insert("link".into(), link.as_str().into());
            }
        }
        Ok(())
    }

    fn to_json(&self) -> Result<Value, Error> {
        let mut out = Map::new();
        self.write(&mut out)?;
        Ok(Value::Object(out))
    }
}

/// The kind of a media message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaKind {
    /// JPEG or PNG, ≤ 5 MB.
    Image,
    /// PDF, Office or text, ≤ 100 MB.
    Document,
    /// AAC, AMR, MP3, M4A or OGG/Opus, ≤ 16 MB.
    Audio,
    /// MP4 or 3GP, ≤ 16 MB.
    Video,
    /// WebP.
    Sticker,
}

impl MediaKind {
    /// The message `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Document => "document",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Sticker => "sticker",
        }
    }
}

/// A media message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    kind: MediaKind,
    source: MediaSource,
    caption: Option<String>,
    filename: Option<String>,
}

impl Media {
    /// Media of `kind` from `source`.
    pub fn new(kind: MediaKind, source: MediaSource) -> Self {
        Self {
            kind,
            source,
            caption: None,
            filename: None,
        }
    }

    /// An image.
    pub fn image(source: MediaSource) -> Self {
        Self::new(MediaKind::Image, source)
    }

    /// A document.
    pub fn document(source: MediaSource) -> Self {
        Self::new(MediaKind::Document, source)
    }

    /// An audio file.
    pub fn audio(source: MediaSource) -> Self {
        Self::new(MediaKind::Audio, source)
    }

    /// A video.
    pub fn video(source: MediaSource) -> Self {
        Self::new(MediaKind::Video, source)
    }

    /// A sticker.
    pub fn sticker(source: MediaSource) -> Self {
        Self::new(MediaKind::Sticker, source)
    }

    /// A caption (image, video and document only).
    pub fn caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }

    /// A file name (document only).
    pub fn filename(mut self, filename: impl Into<String>) -> Self {
        self.filename = Some(filename.into());
        self
    }

    fn to_json(&self) -> Result<Value, Error> {
        let mut out = Map::new();
        self.source.write(&mut out)?;
        if let Some(caption) = &self.caption {
            if !matches!(
                self.kind,
                MediaKind::Image | MediaKind::Video | MediaKind::Document
            ) {
                return Err(Error::invalid(format!(
                    "a caption is not allowed on {}",
                    self.kind.as_str()
                )));
            }
            check_len("the caption", caption, 1024)?;
            out.insert("caption".into(), caption.as_str().into());
        }
        if let Some(filename) = &self.filename {
            if self.kind != MediaKind::Document {
                return Err(Error::invalid("a file name is allowed on documents only"));
            }
            out.insert("filename".into(), filename.as_str().into());
        }
        Ok(Value::Object(out))
    }
}

// ---------------------------------------------------------------------------------------
// Templates

/// A template message: an approved template by name and exact language code.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    name: String,
    language: String,
    components: Vec<Component>,
}

impl Template {
    /// Template `name` in `language` (such as `en_US`; it must match an approved
    /// translation exactly).
    pub fn new(name: impl Into<String>, language: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            language: language.into(),
            components: Vec::new(),
        }
    }

    /// Adds a component.
    pub fn component(mut self, component: Component) -> Self {
        self.components.push(component);
        self
    }

    /// Adds the header component.
    pub fn header(self, parameters: Vec<Parameter>) -> Self {
        self.component(Component::Header(parameters))
    }

    /// Adds the body component.
    pub fn body(self, parameters: Vec<Parameter>) -> Self {
        self.component(Component::Body(parameters))
    }

    /// Adds a button component for the button at `index` (0-based).
    pub fn button(self, sub_type: ButtonSubType, index: u8, parameters: Vec<Parameter>) -> Self {
        self.component(Component::Button {
            sub_type,
            index,
            parameters,
        })
    }

    fn to_json(&self) -> Result<Value, Error> {
        check_non_empty("the template name", &self.name)?;
        check_len("the template name", &self.name, 512)?;
        check_non_empty("the template language", &self.language)?;
        // Named ({{first_name}}) and positional ({{1}}) parameters cannot be mixed.
        let text_params = self.components.iter().flat_map(|c| match c {
            Component::Header(p) | Component::Body(p) => p.as_slice(),
            Component::Button { .. } => &[],
        });
        let (mut named, mut positional) = (0, 0);
        for p in text_params {
            if p.name.is_some() {
                named += 1;
            } else if matches!(p.value, ParameterValue::Text(_)) {
                positional += 1;
            }
        }
        if named > 0 && positional > 0 {
            return Err(Error::invalid(
                "template text parameters must be all named or all positional",
            ));
        }
        let components = self
            .components
            .iter()
            .map(Component::to_json)
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = json!({
            "name": self.name,
            "language": { "code": self.language },
        });
        if !components.is_empty() {
            out["components"] = Value::Array(components);
        }
        Ok(out)
    }
}

/// A template component.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Component {
    /// The header: a text parameter or a media parameter.
    Header(Vec<Parameter>),
    /// The body.
    Body(Vec<Parameter>),
    /// A button.
    Button {
        /// `sub_type`.
        sub_type: ButtonSubType,
        /// The button's position, sent as a string.
        index: u8,
        /// Parameters (a URL suffix, a quick-reply payload, a coupon code, …).
        parameters: Vec<Parameter>,
    },
}

impl Component {
    fn to_json(&self) -> Result<Value, Error> {
        let params = |ps: &[Parameter]| {
            ps.iter()
                .map(Parameter::to_json)
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match self {
            Self::Header(p) => json!({ "type": "header", "parameters": params(p)? }),
            Self::Body(p) => json!({ "type": "body", "parameters": params(p)? }),
            Self::Button {
                sub_type,
                index,
                parameters,
            } => json!({
                "type": "button",
                "sub_type": sub_type.as_str(),
                "index": index.to_string(),
                "parameters": params(parameters)?,
            }),
        })
    }
}

/// A template button's `sub_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ButtonSubType {
    /// `quick_reply`.
    QuickReply,
    /// `url`.
    Url,
    /// `copy_code`.
    CopyCode,
    /// `flow`.
    Flow,
    /// Another sub-type.
    Other(String),
}

impl ButtonSubType {
    fn as_str(&self) -> &str {
        match self {
            Self::QuickReply => "quick_reply",
            Self::Url => "url",
            Self::CopyCode => "copy_code",
            Self::Flow => "flow",
            Self::Other(s) => s,
        }
    }
}

/// A template parameter, positional or named.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    name: Option<String>,
    value: ParameterValue,
}

/// The value of a template parameter.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ParameterValue {
    /// `text`.
    Text(String),
    /// `currency`: amount in thousandths (KES 12.50 is 12500).
    Currency {
        /// Shown where the currency cannot be formatted.
        fallback_value: String,
        /// ISO 4217 code.
        code: String,
        /// The amount × 1000.
        amount_1000: i64,
    },
    /// `date_time`, with its fallback text.
    DateTime(String),
    /// `image` (header).
    Image(MediaSource),
    /// `video` (header).
    Video(MediaSource),
    /// `document` (header), with an optional file name.
    Document(MediaSource, Option<String>),
    /// `payload` (quick-reply buttons).
    Payload(String),
    /// `coupon_code` (copy-code buttons).
    CouponCode(String),
    /// `action` (flow and catalog buttons), as JSON.
    Action(Value),
}

impl Parameter {
    /// A positional text parameter.
    pub fn text(text: impl Into<String>) -> Self {
        Self::from(ParameterValue::Text(text.into()))
    }

    /// A named text parameter (`{{name}}` templates).
    pub fn named(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self::text(text).with_name(name)
    }

    /// A currency parameter.
    pub fn currency(
        fallback: impl Into<String>,
        code: impl Into<String>,
        amount_1000: i64,
    ) -> Self {
        Self::from(ParameterValue::Currency {
            fallback_value: fallback.into(),
            code: code.into(),
            amount_1000,
        })
    }

    /// A date-time parameter with its fallback text.
    pub fn date_time(fallback: impl Into<String>) -> Self {
        Self::from(ParameterValue::DateTime(fallback.into()))
    }

    /// A header image.
    pub fn image(source: MediaSource) -> Self {
        Self::from(ParameterValue::Image(source))
    }

    /// A header video.
    pub fn video(source: MediaSource) -> Self {
        Self::from(ParameterValue::Video(source))
    }

    /// A header document.
    pub fn document(source: MediaSource, filename: Option<String>) -> Self {
        Self::from(ParameterValue::Document(source, filename))
    }

    /// A quick-reply payload.
    pub fn payload(payload: impl Into<String>) -> Self {
        Self::from(ParameterValue::Payload(payload.into()))
    }

    /// A coupon code.
    pub fn coupon_code(code: impl Into<String>) -> Self {
        Self::from(ParameterValue::CouponCode(code.into()))
    }

    /// An action object.
    pub fn action(action: Value) -> Self {
        Self::from(ParameterValue::Action(action))
    }

    /// Sets `parameter_name`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    fn to_json(&self) -> Result<Value, Error> {
        let mut out = match &self.value {
            ParameterValue::Text(t) => json!({ "type": "text", "text": t }),
            ParameterValue::Currency {
                fallback_value,
                code,
                amount_1000,
            } => json!({
                "type": "currency",
                "currency": { "fallback_value": fallback_value, "code": code, "amount_1000": amount_1000 },
            }),
            ParameterValue::DateTime(f) => {
                json!({ "type": "date_time", "date_time": { "fallback_value": f } })
            }
            ParameterValue::Image(s) => json!({ "type": "image", "image": s.to_json()? }),
            ParameterValue::Video(s) => json!({ "type": "video", "video": s.to_json()? }),
            ParameterValue::Document(s, filename) => {
                let mut doc = s.to_json()?;
                if let Some(f) = filename {
                    doc["filename"] = f.as_str().into();
                }
                json!({ "type": "document", "document": doc })
            }
            ParameterValue::Payload(p) => json!({ "type": "payload", "payload": p }),
            ParameterValue::CouponCode(c) => json!({ "type": "coupon_code", "coupon_code": c }),
            ParameterValue::Action(a) => json!({ "type": "action", "action": a }),
        };
        if let Some(name) = &self.name {
            check_non_empty("a parameter name", name)?;
            out["parameter_name"] = name.as_str().into();
        }
        Ok(out)
    }
}

impl From<ParameterValue> for Parameter {
    fn from(value: ParameterValue) -> Self {
        Self { name: None, value }
    }
}

// ---------------------------------------------------------------------------------------
// Interactive

/// An interactive message: reply buttons, a list, or another kind as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Interactive {
    kind: InteractiveKind,
    header: Option<InteractiveHeader>,
    body: String,
    footer: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum InteractiveKind {
    Buttons(Vec<ReplyButton>),
    List {
        button: String,
        sections: Vec<ListSection>,
    },
    Raw {
        type_name: String,
        action: Value,
    },
}

/// The header of an interactive message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InteractiveHeader {
    /// Text (≤ 60 characters).
    Text(String),
    /// An image (buttons only).
    Image(MediaSource),
    /// A video (buttons only).
    Video(MediaSource),
    /// A document (buttons only).
    Document(MediaSource),
}

/// A reply button (`id` ≤ 256, `title` ≤ 20 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyButton {
    id: String,
    title: String,
}

impl ReplyButton {
    /// A button whose tap comes back as `button_reply` with `id`.
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
        }
    }
}

/// A list section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSection {
    title: Option<String>,
    rows: Vec<ListRow>,
}

impl ListSection {
    /// A section with `rows`.
    pub fn new(rows: Vec<ListRow>) -> Self {
        Self { title: None, rows }
    }

    /// Its title (required when there is more than one section).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
}

/// A list row (`id` ≤ 200, `title` ≤ 24, `description` ≤ 72 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    id: String,
    title: String,
    description: Option<String>,
}

impl ListRow {
    /// A row whose choice comes back as `list_reply` with `id`.
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            description: None,
        }
    }

    /// Its description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

impl Interactive {
    /// Up to three reply buttons under `body` (≤ 1024 characters).
    pub fn buttons(body: impl Into<String>, buttons: Vec<ReplyButton>) -> Self {
        Self::with_kind(body, InteractiveKind::Buttons(buttons))
    }

    /// A list opened by a button labelled `button` (≤ 20 characters), with up to ten
    /// sections and ten rows in total.
    pub fn list(
        body: impl Into<String>,
        button: impl Into<String>,
        sections: Vec<ListSection>,
    ) -> Self {
        Self::with_kind(
            body,
            InteractiveKind::List {
                button: button.into(),
                sections,
            },
        )
    }

    /// Another interactive type (`cta_url`, `flow`, `location_request_message`, …) with its
    /// `action` object as JSON.
    pub fn raw(type_name: impl Into<String>, body: impl Into<String>, action: Value) -> Self {
        Self::with_kind(
            body,
            InteractiveKind::Raw {
                type_name: type_name.into(),
                action,
            },
        )
    }

    fn with_kind(body: impl Into<String>, kind: InteractiveKind) -> Self {
        Self {
            kind,
            header: None,
            body: body.into(),
            footer: None,
        }
    }

    /// A header.
    pub fn header(mut self, header: InteractiveHeader) -> Self {
        self.header = Some(header);
        self
    }

    /// A footer (≤ 60 characters).
    pub fn footer(mut self, footer: impl Into<String>) -> Self {
        self.footer = Some(footer.into());
        self
    }

    fn to_json(&self) -> Result<Value, Error> {
        let mut out = Map::new();
        let (type_name, action, body_max) = match &self.kind {
            InteractiveKind::Buttons(buttons) => {
                if buttons.is_empty() || buttons.len() > 3 {
                    return Err(Error::invalid(
                        "an interactive message takes 1 to 3 buttons",
                    ));
                }
                let mut list = Vec::new();
                for b in buttons {
                    check_non_empty("a button id", &b.id)?;
                    check_len("a button id", &b.id, 256)?;
                    check_non_empty("a button title", &b.title)?;
                    check_len("a button title", &b.title, 20)?;
                    list.push(
                        json!({ "type": "reply", "reply": { "id": b.id, "title": b.title } }),
                    );
                }
                ("button", json!({ "buttons": list }), 1024)
            }
            InteractiveKind::List { button, sections } => {
                check_non_empty("the list button", button)?;
                check_len("the list button", button, 20)?;
                let rows: usize = sections.iter().map(|s| s.rows.len()).sum();
                if sections.is_empty() || sections.len() > 10 || rows == 0 || rows > 10 {
                    return Err(Error::invalid(
                        "a list takes 1 to 10 sections and 1 to 10 rows in total",
                    ));
                }
                if sections.len() > 1 && sections.iter().any(|s| s.title.is_none()) {
                    return Err(Error::invalid(
                        "every section of a multi-section list needs a title",
                    ));
                }
                let mut out_sections = Vec::new();
                for s in sections {
                    let mut rows = Vec::new();
                    for r in &s.rows {
                        check_non_empty("a row id", &r.id)?;
                        check_len("a row id", &r.id, 200)?;
                        check_non_empty("a row title", &r.title)?;
                        check_len("a row title", &r.title, 24)?;
                        let mut row = json!({ "id": r.id, "title": r.title });
                        if let Some(d) = &r.description {
                            check_len("a row description", d, 72)?;
                            row["description"] = d.as_str().into();
                        }
                        rows.push(row);
                    }
                    let mut section = json!({ "rows": rows });
                    if let Some(t) = &s.title {
                        check_len("a section title", t, 24)?;
                        section["title"] = t.as_str().into();
                    }
                    out_sections.push(section);
                }
                (
                    "list",
                    json!({ "button": button, "sections": out_sections }),
                    4096,
                )
            }
            InteractiveKind::Raw { type_name, action } => {
                (type_name.as_str(), action.clone(), 4096)
            }
        };
        check_non_empty("the interactive body", &self.body)?;
        check_len("the interactive body", &self.body, body_max)?;
        out.insert("type".into(), type_name.into());
        if let Some(header) = &self.header {
            let h = match header {
                InteractiveHeader::Text(t) => {
                    check_len("the header", t, 60)?;
                    json!({ "type": "text", "text": t })
                }
                _ if matches!(self.kind, InteractiveKind::List { .. }) => {
                    return Err(Error::invalid("a list header must be text"));
                }
                InteractiveHeader::Image(s) => json!({ "type": "image", "image": s.to_json()? }),
                InteractiveHeader::Video(s) => json!({ "type": "video", "video": s.to_json()? }),
                InteractiveHeader::Document(s) => {
                    json!({ "type": "document", "document": s.to_json()? })
                }
            };
            out.insert("header".into(), h);
        }
        out.insert("body".into(), json!({ "text": self.body }));
        if let Some(footer) = &self.footer {
            check_len("the footer", footer, 60)?;
            out.insert("footer".into(), json!({ "text": footer }));
        }
        out.insert("action".into(), action);
        Ok(Value::Object(out))
    }
}

// ---------------------------------------------------------------------------------------
// Reaction, location, contacts

/// A reaction to a message. An empty emoji removes our reaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    message_id: MessageId,
    emoji: String,
}

impl Reaction {
    /// Reacts to `message_id` with `emoji`.
    pub fn new(message_id: impl Into<MessageId>, emoji: impl Into<String>) -> Self {
        Self {
            message_id: message_id.into(),
            emoji: emoji.into(),
        }
    }

    /// Removes our reaction from `message_id`.
    pub fn remove(message_id: impl Into<MessageId>) -> Self {
        Self::new(message_id, "")
    }

    fn to_json(&self) -> Result<Value, Error> {
        check_non_empty("the reacted message id", self.message_id.as_str())?;
        Ok(json!({ "message_id": self.message_id.as_str(), "emoji": self.emoji }))
    }
}

/// A location pin.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    latitude: f64,
    longitude: f64,
    name: Option<String>,
    address: Option<String>,
}

impl Location {
    /// A pin at `latitude`, `longitude`.
    pub fn new(latitude: f64, longitude: f64) -> Self {
        Self {
            latitude,
            longitude,
            name: None,
            address: None,
        }
    }

    /// The place name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The address.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    fn to_json(&self) -> Result<Value, Error> {
        if !(-90.0..=90.0).contains(&self.latitude) || !(-180.0..=180.0).contains(&self.longitude) {
            return Err(Error::invalid("the location is out of range"));
        }
        let mut out = json!({ "latitude": self.latitude, "longitude": self.longitude });
        if let Some(n) = &self.name {
            out["name"] = n.as_str().into();
        }
        if let Some(a) = &self.address {
            out["address"] = a.as_str().into();
        }
        Ok(out)
    }
}

/// A contact card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactCard {
    formatted_name: String,
    first_name: Option<String>,
    last_name: Option<String>,
    phones: Vec<(String, Option<String>, Option<String>)>,
    emails: Vec<(String, Option<String>)>,
    urls: Vec<(String, Option<String>)>,
    company: Option<String>,
}

impl ContactCard {
    /// A card with `name.formatted_name` (required).
    pub fn new(formatted_name: impl Into<String>) -> Self {
        Self {
            formatted_name: formatted_name.into(),
            first_name: None,
            last_name: None,
            phones: Vec::new(),
            emails: Vec::new(),
            urls: Vec::new(),
            company: None,
        }
    }

    /// First and last name.
    pub fn names(mut self, first: impl Into<String>, last: impl Into<String>) -> Self {
        self.first_name = Some(first.into());
        self.last_name = Some(last.into());
        self
    }

    /// Adds a phone number with an optional type (`CELL`, `WORK`, …) and WhatsApp id.
    pub fn phone(
        mut self,
        phone: impl Into<String>,
        kind: Option<&str>,
        wa_id: Option<&str>,
    ) -> Self {
        self.phones.push((
            phone.into(),
            kind.map(str::to_owned),
            wa_id.map(str::to_owned),
        ));
        self
    }

    /// Adds an email with an optional type.
    pub fn email(mut self, email: impl Into<String>, kind: Option<&str>) -> Self {
        self.emails.push((email.into(), kind.map(str::to_owned)));
        self
    }

    /// Adds a URL with an optional type.
    pub fn url(mut self, url: impl Into<String>, kind: Option<&str>) -> Self {
        self.urls.push((url.into(), kind.map(str::to_owned)));
        self
    }

    /// The company (`org.company`).
    pub fn company(mut self, company: impl Into<String>) -> Self {
        self.company = Some(company.into());
        self
    }

    fn to_json(&self) -> Result<Value, Error> {
        check_non_empty("a contact's formatted name", &self.formatted_name)?;
        let mut name = json!({ "formatted_name": self.formatted_name });
        if let Some(f) = &self.first_name {
            name["first_name"] = f.as_str().into();
        }
        if let Some(l) = &self.last_name {
            name["last_name"] = l.as_str().into();
        }
        let mut out = json!({ "name": name });
        let typed = |key: &str, value: &str, kind: &Option<String>| {
            let mut v = json!({ key: value });
            if let Some(k) = kind {
                v["type"] = k.as_str().into();
            }
            v
        };
        if !self.phones.is_empty() {
            out["phones"] = self
                .phones
                .iter()
                .map(|(p, k, w)| {
                    let mut v = typed("phone", p, k);
                    if let Some(w) = w {
                        v["wa_id"] = w.as_str().into();
                    }
                    v
                })
                .collect();
        }
        if !self.emails.is_empty() {
            out["emails"] = self
                .emails
                .iter()
                .map(|(e, k)| typed("email", e, k))
                .collect();
        }
        if !self.urls.is_empty() {
            out["urls"] = self.urls.iter().map(|(u, k)| typed("url", u, k)).collect();
        }
        if let Some(c) = &self.company {
            out["org"] = json!({ "company": c });
        }
        Ok(out)
    }
}

fn contacts_json(cards: &[ContactCard]) -> Result<Value, Error> {
    if cards.is_empty() {
        return Err(Error::invalid("a contacts message needs at least one card"));
    }
    Ok(Value::Array(
        cards
            .iter()
            .map(ContactCard::to_json)
            .collect::<Result<_, _>>()?,
    ))
}

// ---------------------------------------------------------------------------------------
// Client methods

impl WhatsAppClient {
    /// Sends `message` from the number in `creds` (`POST /{phone_number_id}/messages`).
    pub async fn send(
        &self,
        creds: &Credentials,
        message: &SendMessage,
    ) -> Result<SendResponse, Error> {
        let body = message.to_json()?;
        let path = format!("{}/messages", creds.phone_number_id());
        let builder = self.http().post(self.url(creds, &path)).json(&body);
        let (status, bytes) = Self::execute(Self::authorize(builder, creds)?).await?;
        let response: SendResponse = crate::client::decode(status, &bytes)?;
        if response.messages.is_empty() {
            // Accepted without an id: we cannot track it, but it may go out.
            return Err(Error::unexpected(status, &bytes));
        }
        Ok(response)
    }

    /// Marks an inbound message as read. Returns Meta's `success` flag.
    pub async fn mark_as_read(
        &self,
        creds: &Credentials,
        request: &MarkAsRead,
    ) -> Result<bool, Error> {
        #[derive(Deserialize)]
        struct Success {
            #[serde(default)]
            success: bool,
        }
        let path = format!("{}/messages", creds.phone_number_id());
        let s: Success = self.post_json(creds, &path, &request.to_json()).await?;
        Ok(s.success)
    }
}
