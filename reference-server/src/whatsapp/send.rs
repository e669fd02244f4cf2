//! `POST /whatsapp/messages`: a paid send that refunds itself on failure.
//!
//! 1. Every field is checked (all bad ones named in one 422), and an `Idempotency-Key`
//!    seen before answers with the first message (409 if the request differs).
//! 2. Free-form content (text, media) needs the contact's 24-hour customer-service
//!    window to be open on the sending number; otherwise 422 `template_required`, and
//!    nothing is charged or stored.
//! 3. The fee (the plan's price for the message's category) is reserved in the wallet:
//!    402 `insufficient_funds` if it cannot be, and nothing is sent.
//! 4. The message is stored, then sent with our id as `biz_opaque_callback_data`, so its
//!    status webhooks find it even before Graph's answer is stored.
//! 5. Graph's answer: accepted (the fee stays held until a status captures or releases
//!    it); a throughput error (130429, 131056), queued for a later attempt with the hold
//!    kept; no answer at all, queued until its status arrives; any other refusal, the
//!    hold released (the refund) and the message failed.

use chrono::{DateTime, TimeDelta, Utc};
use edge_core::ledger::ReserveRequest;
use edge_core::{Error, FieldError, IdempotencyKey, Money, Msisdn, OrgId};
use edge_whatsapp::message::Recipient;
use edge_whatsapp::message::{
    Content, Media, MediaKind, MediaSource, Parameter, SendMessage, Template, Text,
};
use edge_whatsapp::{ErrorClass, PhoneNumberId};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::contacts::{self, Sender};
use super::conversations::MessageView;
use super::{ChargeStatus, MessageStatus, WhatsApp, db_err, is_unique_violation, preview};
use crate::billing::plans::MessageCategory;
use crate::db::begin_write;
use crate::entities::{organizations, whatsapp_conversations, whatsapp_messages, whatsapp_numbers};

/// A send request.
#[derive(Debug, Default, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The CRM contact (prospect or relationship) to write to.
    #[serde(default)]
    pub contact_id: Option<Uuid>,
    /// Or a phone number (an unknown one becomes a prospect when the message is sent).
    #[serde(default)]
    pub to: Option<String>,
    /// The number to send from; default the organization's default number.
    #[serde(default)]
    pub number_id: Option<Uuid>,
    /// A text message: `{"body": "…", "preview_url": false}`.
    #[serde(default)]
    pub text: Option<TextInput>,
    /// A template: `{"name", "language", "category", "parameters": ["…"]}`.
    #[serde(default)]
    pub template: Option<TemplateInput>,
    /// Media: `{"kind": "image", "link": "https://…" | "media_id": "…", "caption",
    /// "filename"}`.
    #[serde(default)]
    pub media: Option<MediaInput>,
}

/// A text message.
#[derive(Debug, Default, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextInput {
    /// 1 to 4096 characters.
    #[serde(default)]
    pub body: Option<String>,
    /// Show a preview of the first link.
    #[serde(default)]
    pub preview_url: bool,
}

/// A template message.
#[derive(Debug, Default, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// The approved template's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its language code, such as `en` or `en_US`.
    #[serde(default)]
    pub language: Option<String>,
    /// Its category as approved by Meta: `marketing`, `utility` or `authentication`;
    /// the fee is this category's price.
    #[serde(default)]
    pub category: Option<String>,
    /// The body's parameters, in order.
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// A media message.
#[derive(Debug, Default, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaInput {
    /// `image`, `document`, `audio`, `video` or `sticker`.
    #[serde(default)]
    pub kind: Option<String>,
    /// A public HTTPS link to the file.
    #[serde(default)]
    pub link: Option<String>,
    /// Or a media id uploaded to Graph from the sending number.
    #[serde(default)]
    pub media_id: Option<String>,
    /// A caption (image, video, document).
    #[serde(default)]
    pub caption: Option<String>,
    /// The file name shown (document).
    #[serde(default)]
    pub filename: Option<String>,
}

/// What a successful call did.
#[derive(Debug)]
pub enum Sent {
    /// Graph accepted it (HTTP 201).
    Accepted(MessageView),
    /// It waits for a later attempt or for its status (HTTP 202).
    Queued(MessageView),
    /// The same `Idempotency-Key` was used before: the first message as it stands now
    /// (HTTP 200).
    Replayed(MessageView),
}

/// Why a send did not go out.
#[derive(Debug)]
pub enum SendError {
    /// Refused before anything was charged or stored.
    Refused(Error),
    /// Free-form content outside the customer-service window: send a template.
    TemplateRequired(String),
    /// Graph refused it; the message is stored as failed and its fee was released.
    Rejected {
        /// The failed message.
        message: Box<MessageView>,
        /// What Graph said.
        error: edge_whatsapp::Error,
    },
}

impl From<Error> for SendError {
    fn from(err: Error) -> Self {
        SendError::Refused(err)
    }
}

/// A checked request.
struct Checked {
    recipient: Target,
    number_id: Option<Uuid>,
    content: Content,
    kind: &'static str,
    category: MessageCategory,
    stored: Value,
    preview: String,
}

enum Target {
    Contact(Uuid),
    Phone(Msisdn),
}

const MEDIA_KINDS: [(&str, MediaKind); 5] = [
    ("image", MediaKind::Image),
    ("document", MediaKind::Document),
    ("audio", MediaKind::Audio),
    ("video", MediaKind::Video),
    ("sticker", MediaKind::Sticker),
];

fn is_template_name(name: &str) -> bool {
    (1..=512).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn is_language(code: &str) -> bool {
    (2..=15).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
}

/// Checks a request, naming every bad field.
fn check(request: &SendRequest, country: edge_core::Country) -> Result<Checked, Error> {
    let mut problems = Vec::new();
    let recipient = match (&request.contact_id, &request.to) {
        (Some(id), None) => Some(Target::Contact(*id)),
        (None, Some(to)) => match Msisdn::parse(to, country) {
            Ok(phone) => Some(Target::Phone(phone)),
            Err(err) => {
                problems.push(FieldError::new(
                    "to",
                    format!("{to:?} is not a mobile number: {err}"),
                ));
                None
            }
        },
        (Some(_), Some(_)) => {
            problems.push(FieldError::new("to", "give contact_id or to, not both"));
            None
        }
        (None, None) => {
            problems.push(FieldError::new("contact_id", "give contact_id or to"));
            None
        }
    };
    let given = [
        request.text.is_some(),
        request.template.is_some(),
        request.media.is_some(),
    ]
    .into_iter()
    .filter(|g| *g)
    .count();
    if given != 1 {
        problems.push(FieldError::new(
            "text",
            "give exactly one of text, template or media",
        ));
    }
    let mut content = None;
    if let Some(text) = &request.text {
        let body = text.body.as_deref().unwrap_or("");
        let length = body.chars().count();
        if body.trim().is_empty() || length > 4096 {
            problems.push(FieldError::new("text.body", "must be 1 to 4096 characters"));
        } else {
            content = Some((
                Content::Text(Text::new(body).preview_url(text.preview_url)),
                "text",
                MessageCategory::Service,
                json!({ "body": body, "preview_url": text.preview_url }),
                preview(body),
            ));
        }
    }
    if let Some(template) = &request.template {
        let name = template.name.as_deref().map(str::trim).unwrap_or("");
        let language = template.language.as_deref().map(str::trim).unwrap_or("");
        if !is_template_name(name) {
            problems.push(FieldError::new(
                "template.name",
                "must be the approved template's name: lowercase letters, digits and _",
            ));
        }
        if !is_language(language) {
            problems.push(FieldError::new(
                "template.language",
                "must be a language code such as en or en_US",
            ));
        }
        let category = match template.category.as_deref() {
            Some(c) => match MessageCategory::parse(c) {
                Some(MessageCategory::Service) | None => {
                    problems.push(FieldError::new(
                        "template.category",
                        format!("{c:?} is not one of marketing, utility, authentication"),
                    ));
                    None
                }
                Some(category) => Some(category),
            },
            None => {
                problems.push(FieldError::new(
                    "template.category",
                    "is required: marketing, utility or authentication, as Meta approved it",
                ));
                None
            }
        };
        if template.parameters.len() > 20 {
            problems.push(FieldError::new(
                "template.parameters",
                "at most 20 parameters",
            ));
        }
        for (i, parameter) in template.parameters.iter().enumerate() {
            if parameter.trim().is_empty() || parameter.chars().count() > 1024 {
                problems.push(FieldError::new(
                    format!("template.parameters[{i}]"),
                    "must be 1 to 1024 characters",
                ));
            }
        }
        if let Some(category) = category
            && is_template_name(name)
            && is_language(language)
        {
            let mut built = Template::new(name, language);
            if !template.parameters.is_empty() {
                built = built.body(
                    template
                        .parameters
                        .iter()
                        .map(|p| Parameter::text(p.as_str()))
                        .collect(),
                );
            }
            content = Some((
                Content::Template(built),
                "template",
                category,
                json!({
                    "name": name,
                    "language": language,
                    "category": category.as_str(),
                    "parameters": template.parameters,
                }),
                preview(&format!(
                    "[template {name}] {}",
                    template.parameters.join(" · ")
                )),
            ));
        }
    }
    if let Some(media) = &request.media {
        let kind = media
            .kind
            .as_deref()
            .and_then(|k| MEDIA_KINDS.iter().find(|(name, _)| *name == k));
        if kind.is_none() {
            problems.push(FieldError::new(
                "media.kind",
                "must be one of image, document, audio, video, sticker",
            ));
        }
        let source = match (&media.link, &media.media_id) {
            (Some(link), None) if link.starts_with("https://") && link.len() <= 2048 => {
                Some(MediaSource::link(link.as_str()))
            }
            (Some(_), None) => {
                problems.push(FieldError::new("media.link", "must be an https:// link"));
                None
            }
            (None, Some(id))
                if (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(MediaSource::id(id.as_str()))
            }
            (None, Some(_)) => {
                problems.push(FieldError::new(
                    "media.media_id",
                    "must be Graph's media id (digits)",
                ));
                None
            }
            _ => {
                problems.push(FieldError::new(
                    "media.link",
                    "give link or media_id, not both",
                ));
                None
            }
        };
        if media
            .caption
            .as_ref()
            .is_some_and(|c| c.chars().count() > 1024)
        {
            problems.push(FieldError::new("media.caption", "at most 1024 characters"));
        }
        if let (Some((name, kind)), Some(source)) = (kind, source) {
            let captioned = matches!(
                kind,
                MediaKind::Image | MediaKind::Video | MediaKind::Document
            );
            if media.caption.is_some() && !captioned {
                problems.push(FieldError::new(
                    "media.caption",
                    format!("a {name} has no caption"),
                ));
            }
            if media.filename.is_some() && *kind != MediaKind::Document {
                problems.push(FieldError::new(
                    "media.filename",
                    "only documents have a file name",
                ));
            }
            let mut built = Media::new(*kind, source);
            if let Some(caption) = &media.caption {
                built = built.caption(caption.as_str());
            }
            if let Some(filename) = &media.filename {
                built = built.filename(filename.as_str());
            }
            content = Some((
                Content::Media(built),
                name,
                MessageCategory::Service,
                json!({
                    "kind": name,
                    "link": media.link,
                    "media_id": media.media_id,
                    "caption": media.caption,
                    "filename": media.filename,
                }),
                preview(&format!(
                    "[{name}] {}",
                    media.caption.as_deref().unwrap_or("")
                )),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let (Some(recipient), Some((content, kind, category, stored, preview))) = (recipient, content)
    else {
        return Err(Error::internal(
            "a send field was missing without a problem",
        ));
    };
    Ok(Checked {
        recipient,
        number_id: request.number_id,
        content,
        kind,
        category,
        stored,
        preview,
    })
}

/// A hash of the request, to tell a replay from a different request under the same key.
fn fingerprint(request: &SendRequest) -> String {
    let canonical = serde_json::to_vec(request).unwrap_or_default();
    hex::encode(Sha256::digest(&canonical))
}

/// The delay before attempt `attempt + 1` after a throughput error, or `None` to give up.
pub(crate) fn retry_after(error: &edge_whatsapp::Error, attempt: u32) -> Option<TimeDelta> {
    if !error.is_rate_limited() {
        return None;
    }
    error
        .retry_delay(attempt)
        .and_then(|delay| TimeDelta::from_std(delay).ok())
}

impl WhatsApp {
    /// Sends a message for `org`; see the module documentation.
    pub async fn send(
        &self,
        org: OrgId,
        sent_by: Option<Uuid>,
        idempotency_key: Option<IdempotencyKey>,
        request: SendRequest,
    ) -> Result<Sent, SendError> {
        let organization = organizations::Entity::find_by_id(org.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or(Error::not_found("organization"))?;
        let country = serde_json::from_value(Value::String(organization.country.clone()))
            .map_err(Error::internal)?;
        let checked = check(&request, country)?;
        let print = fingerprint(&request);
        if let Some(key) = &idempotency_key
            && let Some(first) = self.by_idempotency_key(org, key.as_str()).await?
        {
            if first.request_fingerprint.as_deref() != Some(print.as_str()) {
                return Err(Error::IdempotencyMismatch.into());
            }
            return Ok(Sent::Replayed(self.message(org, first.id).await?));
        }

        // Where it goes from and to, without creating anything yet.
        let number = match checked.number_id {
            Some(id) => {
                let number = self.number_row(&self.db, org, id).await.map_err(|_| {
                    Error::invalid("number_id", "is not a number of this organization")
                })?;
                if number.status != "connected" {
                    return Err(Error::invalid("number_id", "is disconnected").into());
                }
                number
            }
            None => self.default_number(&self.db, org).await?.ok_or_else(|| {
                Error::Conflict(
                    "the organization has no connected WhatsApp number: connect one at \
                     /whatsapp/numbers first"
                        .into(),
                )
            })?,
        };
        let now = self.now();
        let (conversation, phone) = match &checked.recipient {
            Target::Contact(id) => {
                let contact = contacts::find_contact(&self.db, org, *id)
                    .await?
                    .ok_or_else(|| {
                        Error::invalid("contact_id", "is not a contact of this organization")
                    })?;
                let conversation = contacts::conversation_of(&self.db, org, *id).await?;
                let phone = conversation
                    .as_ref()
                    .and_then(|c| c.wa_id.clone())
                    .or_else(|| {
                        contact
                            .phone
                            .as_deref()
                            .map(|p| p.trim_start_matches('+').to_owned())
                    });
                let Some(phone) = phone else {
                    return Err(Error::invalid(
                        "contact_id",
                        "the contact has no phone number to write to",
                    )
                    .into());
                };
                (conversation, phone)
            }
            Target::Phone(phone) => {
                let sender = Sender {
                    wa_id: Some(phone.whatsapp().to_owned()),
                    ..Sender::default()
                };
                let conversation = whatsapp_conversations::Entity::find()
                    .filter(whatsapp_conversations::Column::OrganizationId.eq(org.as_uuid()))
                    .filter(whatsapp_conversations::Column::WaId.eq(sender.wa_id.clone()))
                    .one(&self.db)
                    .await
                    .map_err(db_err)?;
                (conversation, phone.whatsapp().to_owned())
            }
        };
        if checked.category == MessageCategory::Service {
            window_is_open(conversation.as_ref(), &number, now)?;
        }

        // The fee.
        let subscription = crate::billing::subscriptions::get(&self.db, org).await?;
        let fee: Money = subscription.plan.message_prices.of(checked.category);
        let id = Uuid::now_v7();
        let hold = if fee.is_positive() {
            let reserve = ReserveRequest::new(
                fee,
                self.hold_for(),
                IdempotencyKey::new(format!("whatsapp:{id}:reserve")).map_err(Error::internal)?,
            )
            .metadata(json!({ "whatsapp_message_id": id, "category": checked.category.as_str() }));
            Some(self.ledger.reserve(org, reserve).await?.value)
        } else {
            None
        };

        // Stored before it is sent, so its statuses always find it.
        let stored = self
            .store_outbound(
                org,
                id,
                &number,
                conversation,
                &checked,
                &phone,
                fee,
                hold.as_ref().map(|h| h.id.as_uuid()),
                idempotency_key.as_ref().map(|k| k.as_str().to_owned()),
                print,
                sent_by,
                now,
            )
            .await;
        let row = match stored {
            Ok(row) => row,
            Err(err) => {
                // Nothing will be sent: give the fee back before answering.
                if let Some(hold) = &hold {
                    self.release(org, id, hold.id.as_uuid()).await?;
                }
                return match err {
                    StoreError::KeyTaken => match &idempotency_key {
                        Some(key) => match self.by_idempotency_key(org, key.as_str()).await? {
                            Some(first)
                                if first.request_fingerprint.as_deref()
                                    == Some(&fingerprint(&request)) =>
                            {
                                Ok(Sent::Replayed(self.message(org, first.id).await?))
                            }
                            _ => Err(Error::IdempotencyMismatch.into()),
                        },
                        None => {
                            Err(Error::internal("a send without a key collided on its key").into())
                        }
                    },
                    StoreError::Other(err) => Err(err.into()),
                };
            }
        };
        self.attempt(row, &number, checked.content).await
    }

    /// Sends a stored outbound message once and records what Graph answered.
    pub(crate) async fn attempt(
        &self,
        row: whatsapp_messages::Model,
        number: &whatsapp_numbers::Model,
        content: Content,
    ) -> Result<Sent, SendError> {
        let org = super::org_of(row.organization_id);
        let credentials = self.credentials(number)?;
        let to = recipient_of(&row)?;
        let message = SendMessage::new(to, content).biz_opaque_callback_data(row.id.to_string());
        let pnid = PhoneNumberId::new(number.phone_number_id.as_str());
        // The tier stored when the number was connected or its token replaced; after a
        // restart the pacer learns it here.
        self.pacer.set_rate_if_unset(
            &pnid,
            u32::try_from(number.messages_per_second).unwrap_or(1),
        );
        self.pacer.acquire(&pnid).await;
        let attempts = row.attempts + 1;
        let result = message.send(&self.client, &credentials).await;
        let now = self.now();
        match result {
            Ok(response) => {
                let wamid = response.message_id().map(|m| m.as_str().to_owned());
                self.accepted(org, row.id, wamid, attempts, now).await?;
                Ok(Sent::Accepted(self.message(org, row.id).await?))
            }
            Err(err) if err.may_have_been_sent() => {
                tracing::warn!(message = %row.id, error = %err, "no answer from Graph to a send; waiting for its status");
                self.note_unknown(org, row.id, attempts, &err, now).await?;
                Ok(Sent::Queued(self.message(org, row.id).await?))
            }
            Err(err) => match retry_after(&err, u32::try_from(attempts).unwrap_or(u32::MAX)) {
                Some(delay) => {
                    if err.class() == ErrorClass::RetryLater(edge_whatsapp::RetryScope::Number) {
                        self.pacer.slow_down(&pnid);
                    }
                    self.schedule_retry(org, row.id, attempts, &err, now + delay, now)
                        .await?;
                    Ok(Sent::Queued(self.message(org, row.id).await?))
                }
                None => {
                    self.fail(org, row.id, attempts, &err, now).await?;
                    Err(SendError::Rejected {
                        message: Box::new(self.message(org, row.id).await?),
                        error: err,
                    })
                }
            },
        }
    }

    async fn by_idempotency_key(
        &self,
        org: OrgId,
        key: &str,
    ) -> Result<Option<whatsapp_messages::Model>, Error> {
        whatsapp_messages::Entity::find()
            .filter(whatsapp_messages::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_messages::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await
            .map_err(db_err)
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_outbound(
        &self,
        org: OrgId,
        id: Uuid,
        number: &whatsapp_numbers::Model,
        conversation: Option<whatsapp_conversations::Model>,
        checked: &Checked,
        phone: &str,
        fee: Money,
        hold_id: Option<Uuid>,
        idempotency_key: Option<String>,
        fingerprint: String,
        sent_by: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<whatsapp_messages::Model, StoreError> {
        let conversation = match conversation {
            Some(conversation) => conversation,
            None => match &checked.recipient {
                Target::Contact(contact) => {
                    contacts::conversation_for_contact(&self.db, org, *contact, now)
                        .await
                        .map_err(StoreError::Other)?
                        .0
                }
                Target::Phone(_) => {
                    let sender = Sender {
                        wa_id: Some(phone.to_owned()),
                        ..Sender::default()
                    };
                    contacts::conversation_for_sender(&self.db, org, &sender, now)
                        .await
                        .map_err(StoreError::Other)?
                        .0
                }
            },
        };
        let row = whatsapp_messages::Model {
            organization_id: org.as_uuid(),
            id,
            conversation_id: conversation.id,
            number_id: number.id,
            direction: "outbound".into(),
            wamid: None,
            kind: checked.kind.to_owned(),
            content: json!({ "to": phone, checked.kind: checked.stored }),
            preview: Some(checked.preview.clone()),
            status: MessageStatus::Queued.as_str().into(),
            category: Some(checked.category.as_str().into()),
            fee_minor: fee.minor(),
            currency: fee.currency().code().to_owned(),
            hold_id,
            charge_status: if hold_id.is_some() {
                ChargeStatus::Held
            } else {
                ChargeStatus::None
            }
            .as_str()
            .into(),
            idempotency_key,
            request_fingerprint: Some(fingerprint),
            error_code: None,
            error_title: None,
            error_detail: None,
            attempts: 0,
            next_attempt_at: None,
            claimed_until: None,
            sent_by,
            occurred_at: now,
            created_at: now,
            updated_at: now,
        };
        let txn = begin_write(&self.db)
            .await
            .map_err(|e| StoreError::Other(db_err(e)))?;
        whatsapp_messages::Entity::insert(whatsapp_messages::ActiveModel::from(row.clone()))
            .exec_without_returning(&txn)
            .await
            .map_err(|err| {
                if is_unique_violation(&err) {
                    StoreError::KeyTaken
                } else {
                    StoreError::Other(db_err(err))
                }
            })?;
        super::conversations::touch(&txn, org, conversation.id, &row, false, now)
            .await
            .map_err(StoreError::Other)?;
        crate::events::record(
            &txn,
            org,
            "whatsapp.message.created",
            ("whatsapp_message", id),
            json!({
                "conversation_id": conversation.id,
                "contact_id": conversation.contact_id,
                "direction": "outbound",
                "kind": checked.kind,
                "fee": fee,
            }),
            now,
        )
        .await
        .map_err(|e| StoreError::Other(db_err(e)))?;
        txn.commit()
            .await
            .map_err(|e| StoreError::Other(db_err(e)))?;
        Ok(row)
    }

    /// Graph accepted the message: record its id, and `accepted` unless a status already
    /// moved it further.
    async fn accepted(
        &self,
        org: OrgId,
        id: Uuid,
        wamid: Option<String>,
        attempts: i32,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let mut update = whatsapp_messages::Entity::update_many()
            .col_expr(whatsapp_messages::Column::Attempts, Expr::value(attempts))
            .col_expr(
                whatsapp_messages::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                whatsapp_messages::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(whatsapp_messages::Column::UpdatedAt, Expr::value(now));
        if let Some(wamid) = &wamid {
            update = update.col_expr(whatsapp_messages::Column::Wamid, Expr::value(wamid.clone()));
        }
        update
            .filter(whatsapp_messages::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_messages::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        let moved = whatsapp_messages::Entity::update_many()
            .col_expr(
                whatsapp_messages::Column::Status,
                Expr::value(MessageStatus::Accepted.as_str()),
            )
            .col_expr(
                whatsapp_messages::Column::ErrorCode,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                whatsapp_messages::Column::ErrorTitle,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                whatsapp_messages::Column::ErrorDetail,
                Expr::value(Option::<String>::None),
            )
            .filter(whatsapp_messages::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_messages::Column::Id.eq(id))
            .filter(whatsapp_messages::Column::Status.eq(MessageStatus::Queued.as_str()))
            .exec(&txn)
            .await
            .map_err(db_err)?
            .rows_affected
            > 0;
        super::statuses::record_timeline(
            &txn,
            org,
            id,
            "accepted",
            Some("accepted"),
            now,
            None,
            now,
        )
        .await?;
        if moved {
            crate::events::record(
                &txn,
                org,
                "whatsapp.message.status_changed",
                ("whatsapp_message", id),
                json!({ "status": "accepted", "wamid": wamid }),
                now,
            )
            .await
            .map_err(db_err)?;
        }
        txn.commit().await.map_err(db_err)
    }

    /// No answer came: the message may have been sent. It stays queued with its hold until
    /// a status says what happened (or the hold expires).
    async fn note_unknown(
        &self,
        org: OrgId,
        id: Uuid,
        attempts: i32,
        err: &edge_whatsapp::Error,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        whatsapp_messages::Entity::update_many()
            .col_expr(whatsapp_messages::Column::Attempts, Expr::value(attempts))
            .col_expr(
                whatsapp_messages::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                whatsapp_messages::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                whatsapp_messages::Column::ErrorTitle,
                Expr::value(format!(
                    "no answer from WhatsApp; waiting for its status: {err}"
                )),
            )
            .col_expr(whatsapp_messages::Column::UpdatedAt, Expr::value(now))
            .filter(whatsapp_messages::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_messages::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// A throughput error: try again at `at`, keeping the hold.
    pub(crate) async fn schedule_retry(
        &self,
        org: OrgId,
        id: Uuid,
        attempts: i32,
        err: &edge_whatsapp::Error,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let (code, title, detail) = error_parts(err);
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        whatsapp_messages::Entity::update_many()
            .col_expr(whatsapp_messages::Column::Attempts, Expr::value(attempts))
            .col_expr(
                whatsapp_messages::Column::NextAttemptAt,
                Expr::value(Some(at)),
            )
            .col_expr(
                whatsapp_messages::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                whatsapp_messages::Column::ErrorCode,
                Expr::value(code.clone()),
            )
            .col_expr(
                whatsapp_messages::Column::ErrorTitle,
                Expr::value(title.clone()),
            )
            .col_expr(
                whatsapp_messages::Column::ErrorDetail,
                Expr::value(detail.clone()),
            )
            .col_expr(whatsapp_messages::Column::UpdatedAt, Expr::value(now))
            .filter(whatsapp_messages::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_messages::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        super::statuses::record_timeline(
            &txn,
            org,
            id,
            "retry_scheduled",
            None,
            now,
            Some((code, title, detail)),
            now,
        )
        .await?;
        txn.commit().await.map_err(db_err)
    }

    /// Graph refused the message for good: release the fee and mark it failed.
    pub(crate) async fn fail(
        &self,
        org: OrgId,
        id: Uuid,
        attempts: i32,
        err: &edge_whatsapp::Error,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        whatsapp_messages::Entity::update_many()
            .col_expr(whatsapp_messages::Column::Attempts, Expr::value(attempts))
            .col_expr(
                whatsapp_messages::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                whatsapp_messages::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(whatsapp_messages::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_messages::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        let (code, title, detail) = error_parts(err);
        self.apply_status(
            org,
            id,
            MessageStatus::Failed,
            now,
            Some((code, title, detail)),
        )
        .await
    }

    /// Releases a message's hold (idempotent: the ledger replays the first release).
    pub(crate) async fn release(&self, org: OrgId, id: Uuid, hold: Uuid) -> Result<(), Error> {
        let key = IdempotencyKey::new(format!("whatsapp:{id}:release")).map_err(Error::internal)?;
        match self
            .ledger
            .release(org, edge_core::HoldId::from_uuid(hold), key)
            .await
        {
            Ok(_) => Ok(()),
            // Already ended another way (captured, or expired and swept): nothing to give back.
            Err(Error::Conflict(reason)) => {
                tracing::info!(message = %id, %reason, "the hold had already ended");
                Ok(())
            }
            Err(err) => Err(err),
        }
    }
}

/// Why storing a new message failed.
enum StoreError {
    /// Another request with the same `Idempotency-Key` stored its message first.
    KeyTaken,
    Other(Error),
}

/// Whether free-form content may go to this conversation from `number` now.
fn window_is_open(
    conversation: Option<&whatsapp_conversations::Model>,
    number: &whatsapp_numbers::Model,
    now: DateTime<Utc>,
) -> Result<(), SendError> {
    let Some(conversation) = conversation else {
        return Err(SendError::TemplateRequired(
            "the contact has never written to this organization on WhatsApp: only a template \
             can start the conversation"
                .into(),
        ));
    };
    match conversation.window_expires_at {
        Some(expires) if expires > now => {
            if conversation.number_id.is_some_and(|n| n != number.id) {
                Err(SendError::TemplateRequired(format!(
                    "the contact last wrote to another of the organization's numbers; the \
                     customer-service window is open only there (until {expires})"
                )))
            } else {
                Ok(())
            }
        }
        Some(expires) => Err(SendError::TemplateRequired(format!(
            "the 24-hour customer-service window closed at {expires}: send a template"
        ))),
        None => Err(SendError::TemplateRequired(
            "the contact has not written yet: send a template".into(),
        )),
    }
}

/// Who a stored outbound message goes to.
fn recipient_of(row: &whatsapp_messages::Model) -> Result<Recipient, Error> {
    row.content
        .get("to")
        .and_then(Value::as_str)
        .map(Recipient::phone)
        .ok_or_else(|| Error::internal("a stored outbound message has no recipient"))
}

/// The content of a stored outbound message, rebuilt for another attempt.
pub(crate) fn content_of(row: &whatsapp_messages::Model) -> Result<Content, Error> {
    let stored = row
        .content
        .get(row.kind.as_str())
        .cloned()
        .ok_or_else(|| Error::internal("a stored outbound message has no content"))?;
    let request = match row.kind.as_str() {
        "text" => SendRequest {
            text: Some(serde_json::from_value(stored).map_err(Error::internal)?),
            ..SendRequest::default()
        },
        "template" => SendRequest {
            template: Some(serde_json::from_value(stored).map_err(Error::internal)?),
            ..SendRequest::default()
        },
        _ => SendRequest {
            media: Some(serde_json::from_value(stored).map_err(Error::internal)?),
            ..SendRequest::default()
        },
    };
    let request = SendRequest {
        contact_id: Some(row.conversation_id),
        ..request
    };
    check(&request, edge_core::Country::Kenya)
        .map(|checked| checked.content)
        .map_err(Error::internal)
}

/// Graph's code, title and details of an error.
pub(crate) fn error_parts(
    err: &edge_whatsapp::Error,
) -> (Option<String>, Option<String>, Option<String>) {
    match err {
        edge_whatsapp::Error::Api {
            code,
            message,
            details,
            ..
        } => (
            Some(code.to_string()),
            Some(message.chars().take(255).collect()),
            details.clone(),
        ),
        other => (
            None,
            Some(other.to_string().chars().take(255).collect()),
            None,
        ),
    }
}
