//! Which CRM contact a WhatsApp user is, and the conversation the organization has with
//! them.
//!
//! A conversation belongs to one contact: a relationship (a customer) or a prospect. A
//! WhatsApp user is found by, in order: the conversation already keyed by their WhatsApp
//! id or business-scoped user id; a relationship, then an unconverted prospect, with that
//! phone as its main number; otherwise a new prospect with lead source "WhatsApp" is
//! created with the conversation, in one transaction (two messages from a new sender at
//! once make one prospect: the conversation's unique WhatsApp id decides, and the loser
//! reads the winner's).

use chrono::{DateTime, Utc};
use edge_core::{Country, Error, Msisdn, OrgId};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DatabaseConnection, EntityTrait as _, QueryFilter as _,
    QueryOrder as _,
};
use serde_json::json;
use uuid::Uuid;

use super::{db_err, is_unique_violation};
use crate::db::begin_write;
use crate::entities::{organizations, prospects, relationships, whatsapp_conversations};

/// The lead source of prospects created from WhatsApp.
pub const LEAD_SOURCE: &str = "WhatsApp";

/// What a conversation's contact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    /// A prospect (a lead).
    Prospect,
    /// A relationship (a customer).
    Relationship,
}

impl ContactKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::Prospect => "prospect",
            ContactKind::Relationship => "relationship",
        }
    }
}

/// A CRM contact, as a conversation shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Contact {
    /// Prospect or relationship.
    #[serde(rename = "type")]
    pub kind: ContactKind,
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its main phone, E.164.
    pub phone: Option<String>,
}

/// Who wrote, as WhatsApp identifies them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sender {
    /// Their WhatsApp id: the phone number's digits (may be missing since usernames).
    pub wa_id: Option<String>,
    /// Their business-scoped user id.
    pub user_id: Option<String>,
    /// Their profile name.
    pub name: Option<String>,
}

/// A live (not deleted) prospect or relationship of `org` with this id.
pub async fn find_contact<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    id: Uuid,
) -> Result<Option<Contact>, Error> {
    if let Some(row) = relationships::Entity::find_by_id((org.as_uuid(), id))
        .filter(relationships::Column::DeletedAt.is_null())
        .one(conn)
        .await
        .map_err(db_err)?
    {
        return Ok(Some(Contact {
            kind: ContactKind::Relationship,
            id: row.id,
            name: row.name,
            phone: row.phone,
        }));
    }
    Ok(prospects::Entity::find_by_id((org.as_uuid(), id))
        .filter(prospects::Column::DeletedAt.is_null())
        .one(conn)
        .await
        .map_err(db_err)?
        .map(|row| Contact {
            kind: ContactKind::Prospect,
            id: row.id,
            name: row.name,
            phone: row.phone,
        }))
}

/// The live contact whose main phone is `phone`: a relationship first, then a prospect
/// not yet converted; the oldest if several.
async fn contact_by_phone<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    phone: &str,
) -> Result<Option<Contact>, Error> {
    if let Some(row) = relationships::Entity::find()
        .filter(relationships::Column::OrganizationId.eq(org.as_uuid()))
        .filter(relationships::Column::Phone.eq(phone))
        .filter(relationships::Column::DeletedAt.is_null())
        .order_by_asc(relationships::Column::Id)
        .one(conn)
        .await
        .map_err(db_err)?
    {
        return Ok(Some(Contact {
            kind: ContactKind::Relationship,
            id: row.id,
            name: row.name,
            phone: row.phone,
        }));
    }
    Ok(prospects::Entity::find()
        .filter(prospects::Column::OrganizationId.eq(org.as_uuid()))
        .filter(prospects::Column::Phone.eq(phone))
        .filter(prospects::Column::DeletedAt.is_null())
        .filter(prospects::Column::RelationshipId.is_null())
        .order_by_asc(prospects::Column::Id)
        .one(conn)
        .await
        .map_err(db_err)?
        .map(|row| Contact {
            kind: ContactKind::Prospect,
            id: row.id,
            name: row.name,
            phone: row.phone,
        }))
}

/// The conversation with contact `contact_id`, if there is one.
pub async fn conversation_of<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    contact_id: Uuid,
) -> Result<Option<whatsapp_conversations::Model>, Error> {
    whatsapp_conversations::Entity::find()
        .filter(whatsapp_conversations::Column::OrganizationId.eq(org.as_uuid()))
        .filter(whatsapp_conversations::Column::ContactId.eq(contact_id))
        .one(conn)
        .await
        .map_err(db_err)
}

/// The conversation with a known contact, created if there is none yet; `NotFound` if
/// `contact_id` is not a live prospect or relationship of `org`.
pub async fn conversation_for_contact(
    conn: &DatabaseConnection,
    org: OrgId,
    contact_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(whatsapp_conversations::Model, Contact), Error> {
    let contact = find_contact(conn, org, contact_id)
        .await?
        .ok_or(Error::not_found("contact"))?;
    if let Some(conversation) = conversation_of(conn, org, contact_id).await? {
        return Ok((conversation, contact));
    }
    let wa_id = contact
        .phone
        .as_deref()
        .map(|p| p.trim_start_matches('+').to_owned());
    let row = new_conversation(org, &contact, wa_id, None, None, now);
    match insert(conn, &row).await {
        Ok(()) => Ok((row, contact)),
        Err(err) if is_unique_violation(&err) => {
            // Made at the same moment by another request, or the phone's WhatsApp id is
            // already another contact's conversation: read what is there.
            if let Some(conversation) = conversation_of(conn, org, contact_id).await? {
                return Ok((conversation, contact));
            }
            let mut row = row;
            row.wa_id = None;
            insert(conn, &row).await.map_err(db_err)?;
            Ok((row, contact))
        }
        Err(err) => Err(db_err(err)),
    }
}

/// The conversation with the WhatsApp user `sender`, creating the conversation, and a
/// prospect when nobody matches, if needed. Returns the conversation, its contact, and
/// whether a prospect was created.
pub async fn conversation_for_sender(
    conn: &DatabaseConnection,
    org: OrgId,
    sender: &Sender,
    now: DateTime<Utc>,
) -> Result<(whatsapp_conversations::Model, Contact, bool), Error> {
    for attempt in 0..2 {
        if let Some(conversation) = by_whatsapp_ids(conn, org, sender).await? {
            let contact = find_contact(conn, org, conversation.contact_id).await?;
            if let Some(contact) = contact {
                return Ok((conversation, contact, false));
            }
            // The contact was deleted: the conversation goes to whoever matches now.
            detach(conn, org, &conversation, now).await?;
        }
        let phone = sender
            .wa_id
            .as_deref()
            .and_then(|digits| Msisdn::parse_international(digits).ok());
        let existing = match &phone {
            Some(phone) => contact_by_phone(conn, org, phone.as_e164()).await?,
            None => None,
        };
        let created = existing.is_none();
        let contact = match existing {
            Some(contact) => contact,
            None => Contact {
                kind: ContactKind::Prospect,
                id: Uuid::now_v7(),
                name: sender
                    .name
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .or_else(|| sender.wa_id.as_ref().map(|d| format!("+{d}")))
                    .unwrap_or_else(|| "WhatsApp contact".to_owned()),
                phone: phone.as_ref().map(|p| p.as_e164().to_owned()),
            },
        };
        let conversation = match conversation_of(conn, org, contact.id).await? {
            // The contact talks to us already, under other WhatsApp ids: keep the
            // conversation, learn these.
            Some(conversation) => {
                let mut active: whatsapp_conversations::ActiveModel = conversation.into();
                if sender.wa_id.is_some() {
                    active.wa_id = Set(sender.wa_id.clone());
                }
                if sender.user_id.is_some() {
                    active.user_id = Set(sender.user_id.clone());
                }
                active.updated_at = Set(now);
                match sea_orm::ActiveModelTrait::update(active, conn).await {
                    Ok(model) => model,
                    Err(err) if is_unique_violation(&err) && attempt == 0 => continue,
                    Err(err) => return Err(db_err(err)),
                }
            }
            None => {
                let row = new_conversation(
                    org,
                    &contact,
                    sender.wa_id.clone(),
                    sender.user_id.clone(),
                    sender.name.clone(),
                    now,
                );
                let txn = begin_write(conn).await.map_err(db_err)?;
                match insert(&txn, &row).await {
                    Ok(()) => {}
                    // Another delivery of the same sender won: read its conversation.
                    Err(err) if is_unique_violation(&err) && attempt == 0 => {
                        txn.rollback().await.map_err(db_err)?;
                        continue;
                    }
                    Err(err) => return Err(db_err(err)),
                }
                if created {
                    insert_prospect(&txn, org, &contact, now).await?;
                }
                txn.commit().await.map_err(db_err)?;
                row
            }
        };
        return Ok((conversation, contact, created));
    }
    Err(Error::internal(
        "a WhatsApp sender's conversation could not be found or made",
    ))
}

async fn by_whatsapp_ids<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    sender: &Sender,
) -> Result<Option<whatsapp_conversations::Model>, Error> {
    let base = || {
        whatsapp_conversations::Entity::find()
            .filter(whatsapp_conversations::Column::OrganizationId.eq(org.as_uuid()))
    };
    if let Some(wa_id) = &sender.wa_id
        && let Some(found) = base()
            .filter(whatsapp_conversations::Column::WaId.eq(wa_id.as_str()))
            .one(conn)
            .await
            .map_err(db_err)?
    {
        return Ok(Some(found));
    }
    if let Some(user_id) = &sender.user_id {
        return base()
            .filter(whatsapp_conversations::Column::UserId.eq(user_id.as_str()))
            .order_by_asc(whatsapp_conversations::Column::Id)
            .one(conn)
            .await
            .map_err(db_err);
    }
    Ok(None)
}

/// Frees a conversation's WhatsApp ids (its contact was deleted), so the sender's next
/// message starts a conversation with whoever matches them now. Its messages stay.
async fn detach<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    conversation: &whatsapp_conversations::Model,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    whatsapp_conversations::Entity::update_many()
        .col_expr(
            whatsapp_conversations::Column::WaId,
            sea_orm::sea_query::Expr::value(Option::<String>::None),
        )
        .col_expr(
            whatsapp_conversations::Column::UserId,
            sea_orm::sea_query::Expr::value(Option::<String>::None),
        )
        .col_expr(
            whatsapp_conversations::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(whatsapp_conversations::Column::OrganizationId.eq(org.as_uuid()))
        .filter(whatsapp_conversations::Column::Id.eq(conversation.id))
        .exec(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

fn new_conversation(
    org: OrgId,
    contact: &Contact,
    wa_id: Option<String>,
    user_id: Option<String>,
    profile_name: Option<String>,
    now: DateTime<Utc>,
) -> whatsapp_conversations::Model {
    whatsapp_conversations::Model {
        organization_id: org.as_uuid(),
        id: Uuid::now_v7(),
        contact_type: contact.kind.as_str().to_owned(),
        contact_id: contact.id,
        wa_id,
        user_id,
        phone: contact.phone.clone(),
        profile_name,
        number_id: None,
        last_inbound_at: None,
        window_expires_at: None,
        last_message_at: now,
        last_message_id: None,
        last_message_preview: None,
        unread_count: 0,
        created_at: now,
        updated_at: now,
    }
}

async fn insert<C: ConnectionTrait>(
    conn: &C,
    row: &whatsapp_conversations::Model,
) -> Result<(), sea_orm::DbErr> {
    whatsapp_conversations::Entity::insert(whatsapp_conversations::ActiveModel::from(row.clone()))
        .exec_without_returning(conn)
        .await
        .map(|_| ())
}

/// Creates the prospect for a new WhatsApp sender: lead source "WhatsApp", the
/// organization's first milestone, no owner.
async fn insert_prospect<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    contact: &Contact,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let organization = organizations::Entity::find_by_id(org.as_uuid())
        .one(conn)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("organization"))?;
    let settings =
        crate::organization_settings::OrganizationSettings::from_stored(&organization.settings);
    let country: Country =
        serde_json::from_value(serde_json::Value::String(organization.country.clone()))
            .map_err(Error::internal)?;
    let phones: Vec<Msisdn> = contact
        .phone
        .as_deref()
        .and_then(|p| Msisdn::parse(p, country).ok())
        .into_iter()
        .collect();
    let search_text = crate::crm::list::search_text([contact.name.as_str()], &phones);
    let row = prospects::Model {
        organization_id: org.as_uuid(),
        id: contact.id,
        name: contact.name.clone(),
        company: None,
        phone: contact.phone.clone(),
        phones: json!(phones.iter().map(Msisdn::as_e164).collect::<Vec<_>>()),
        email: None,
        lead_source: Some(LEAD_SOURCE.to_owned()),
        industry: None,
        services: json!([]),
        owner_id: None,
        milestone: settings.milestones.first().cloned().unwrap_or_default(),
        happiness: None,
        estimated_value_minor: None,
        currency: organization.currency.clone(),
        tags: json!([]),
        custom: json!({}),
        search_text,
        relationship_id: None,
        created_by: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    prospects::Entity::insert(prospects::ActiveModel::from(row))
        .exec_without_returning(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}
