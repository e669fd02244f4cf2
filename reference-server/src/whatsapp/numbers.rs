//! The business numbers an organization sends from.
//!
//! An org admin connects a number with its Graph phone number id, WABA id and access
//! token. Graph is asked about the number with that token before anything is stored, so
//! a wrong id or a dead token is a 422 naming the field, never a number that cannot send.
//! The token is sealed for the organization (AES-256-GCM, the organization bound as
//! associated data) and only its last four characters are ever shown. A connected number
//! belongs to exactly one organization: connecting it again anywhere is a 409.

use chrono::{DateTime, Utc};
use edge_core::{Error, FieldError, OrgId};
use edge_tenancy::Sealed;
use edge_whatsapp::{Credentials, PhoneNumberId};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _,
    QueryOrder as _,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{WhatsApp, db_err, is_unique_violation};
use crate::audit::{self, Actor, ClientInfo};
use crate::db::begin_write;
use crate::entities::whatsapp_numbers;

/// What the sealed access token is sealed for.
const SEAL_PURPOSE: &str = "whatsapp.access_token";

/// A request to connect a number.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectNumber {
    /// Graph's phone number id (digits).
    #[serde(default)]
    pub phone_number_id: Option<String>,
    /// The WhatsApp Business Account id (digits).
    #[serde(default)]
    pub waba_id: Option<String>,
    /// The number as the organization knows it; when given it must be the number Graph
    /// reports for the id.
    #[serde(default)]
    pub display_number: Option<String>,
    /// A system-user access token with `whatsapp_business_messaging`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub access_token: Option<SecretString>,
    /// Send from this number when a send names none. The first number is the default.
    #[serde(default)]
    pub default: Option<bool>,
}

/// Changes to a connected number.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberPatch {
    /// A new access token (checked against Graph before it replaces the old one).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub access_token: Option<SecretString>,
    /// Make this the default number (`false` is refused: choose another default instead).
    #[serde(default)]
    pub default: Option<bool>,
}

/// A number as the API shows it. The token never leaves the server: only its hint.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct NumberView {
    /// Our id.
    pub id: Uuid,
    /// Graph's phone number id.
    pub phone_number_id: String,
    /// The WABA.
    pub waba_id: String,
    /// The number, as Graph reports it.
    pub display_number: String,
    /// The approved display name.
    pub verified_name: Option<String>,
    /// Graph's quality rating.
    pub quality_rating: Option<String>,
    /// The pace sends keep to.
    pub messages_per_second: i32,
    /// The token's last four characters.
    pub access_token_hint: String,
    /// Whether sends without a chosen number go from it.
    pub default: bool,
    /// `connected` or `disconnected`.
    pub status: String,
    /// When Graph last confirmed it.
    pub verified_at: DateTime<Utc>,
    /// Connected.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Disconnected.
    pub disconnected_at: Option<DateTime<Utc>>,
}

impl From<&whatsapp_numbers::Model> for NumberView {
    fn from(row: &whatsapp_numbers::Model) -> Self {
        Self {
            id: row.id,
            phone_number_id: row.phone_number_id.clone(),
            waba_id: row.waba_id.clone(),
            display_number: row.display_number.clone(),
            verified_name: row.verified_name.clone(),
            quality_rating: row.quality_rating.clone(),
            messages_per_second: row.messages_per_second,
            access_token_hint: format!("…{}", row.token_hint),
            default: row.is_default,
            status: row.status.clone(),
            verified_at: row.verified_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            disconnected_at: row.disconnected_at,
        }
    }
}

/// What Graph says about a number.
struct Verified {
    display_number: String,
    verified_name: Option<String>,
    quality_rating: Option<String>,
    messages_per_second: i32,
}

fn is_graph_id(value: &str) -> bool {
    (5..=32).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
}

fn digits(value: &str) -> String {
    value.chars().filter(char::is_ascii_digit).collect()
}

fn token_hint(token: &SecretString) -> String {
    let chars: Vec<char> = token.expose_secret().chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

fn check_token(token: &SecretString, problems: &mut Vec<FieldError>) {
    let value = token.expose_secret();
    if value.trim().is_empty() || value.len() > 2048 || value.chars().any(char::is_whitespace) {
        problems.push(FieldError::new(
            "access_token",
            "must be a Graph access token: 1 to 2048 characters without spaces",
        ));
    }
}

impl WhatsApp {
    /// Asks Graph about `phone_number_id` with `token`; a refusal is a 422 on the field it
    /// is about.
    async fn verify_with_graph(
        &self,
        phone_number_id: &str,
        waba_id: &str,
        token: &SecretString,
    ) -> Result<Verified, Error> {
        let credentials =
            Credentials::new(PhoneNumberId::new(phone_number_id), token.clone()).waba_id(waba_id);
        match edge_whatsapp::numbers::PhoneNumber::fetch(&self.client, &credentials).await {
            Ok(number) => Ok(Verified {
                display_number: number.display_phone_number.clone(),
                verified_name: number.verified_name.clone(),
                quality_rating: number.quality_rating.clone(),
                messages_per_second: i32::try_from(number.messages_per_second())
                    .unwrap_or(i32::MAX),
            }),
            Err(err) if err.is_auth() => Err(Error::invalid(
                "access_token",
                format!("Graph refused the token: {err}"),
            )),
            Err(err @ edge_whatsapp::Error::Api { .. }) => Err(Error::invalid(
                "phone_number_id",
                format!("Graph does not know this number with this token: {err}"),
            )),
            Err(err) => Err(super::upstream(&err)),
        }
    }

    /// Connects a number to `org` after checking it with Graph.
    pub async fn connect_number(
        &self,
        org: OrgId,
        actor: Actor,
        client: &ClientInfo,
        input: ConnectNumber,
    ) -> Result<NumberView, Error> {
        let mut problems = Vec::new();
        let mut id_field =
            |field: &str, value: Option<String>| match value.map(|v| v.trim().to_owned()) {
                Some(v) if is_graph_id(&v) => Some(v),
                Some(_) => {
                    problems.push(FieldError::new(field, "must be Graph's id: 5 to 32 digits"));
                    None
                }
                None => {
                    problems.push(FieldError::new(field, "is required"));
                    None
                }
            };
        let phone_number_id = id_field("phone_number_id", input.phone_number_id);
        let waba_id = id_field("waba_id", input.waba_id);
        match &input.access_token {
            Some(token) => check_token(token, &mut problems),
            None => problems.push(FieldError::new("access_token", "is required")),
        }
        if input
            .display_number
            .as_deref()
            .is_some_and(|n| !(7..=15).contains(&digits(n).len()))
        {
            problems.push(FieldError::new(
                "display_number",
                "must be a phone number of 7 to 15 digits",
            ));
        }
        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }
        let (Some(phone_number_id), Some(waba_id), Some(token)) =
            (phone_number_id, waba_id, input.access_token)
        else {
            return Err(Error::internal(
                "a number field was missing without a problem",
            ));
        };

        let verified = self
            .verify_with_graph(&phone_number_id, &waba_id, &token)
            .await?;
        if let Some(given) = &input.display_number
            && digits(given) != digits(&verified.display_number)
        {
            return Err(Error::invalid(
                "display_number",
                format!(
                    "Graph reports {} for this phone number id, not {given}",
                    verified.display_number
                ),
            ));
        }
        let sealed = self
            .keyring
            .seal(org, SEAL_PURPOSE, &token)
            .map_err(Error::internal)?
            .to_string();
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let has_default = whatsapp_numbers::Entity::find()
            .filter(whatsapp_numbers::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_numbers::Column::Status.eq("connected"))
            .filter(whatsapp_numbers::Column::IsDefault.eq(true))
            .one(&txn)
            .await
            .map_err(db_err)?
            .is_some();
        let make_default = input.default.unwrap_or(false) || !has_default;
        if make_default {
            clear_default(&txn, org, now).await?;
        }
        let row = whatsapp_numbers::Model {
            organization_id: org.as_uuid(),
            id: Uuid::now_v7(),
            phone_number_id: phone_number_id.clone(),
            waba_id,
            display_number: verified.display_number,
            verified_name: verified.verified_name,
            quality_rating: verified.quality_rating,
            messages_per_second: verified.messages_per_second.max(1),
            sealed,
            token_hint: token_hint(&token),
            routing_key: Some(phone_number_id.clone()),
            is_default: make_default,
            status: "connected".to_owned(),
            verified_at: now,
            created_by: actor.id(),
            created_at: now,
            updated_at: now,
            disconnected_at: None,
        };
        whatsapp_numbers::Entity::insert(whatsapp_numbers::ActiveModel::from(row.clone()))
            .exec_without_returning(&txn)
            .await
            .map_err(|err| {
                if is_unique_violation(&err) {
                    Error::Conflict(format!(
                        "the number {phone_number_id} is already connected to an organization; \
                         disconnect it there first"
                    ))
                } else {
                    db_err(err)
                }
            })?;
        audit::Entry::new(org, actor, "whatsapp.number.connect")
            .target("whatsapp_number", row.id)
            .details(json!({
                "phone_number_id": row.phone_number_id,
                "waba_id": row.waba_id,
                "display_number": row.display_number,
            }))
            .record(&txn, client, now)
            .await?;
        txn.commit().await.map_err(db_err)?;
        self.pacer.set_rate(
            &PhoneNumberId::new(row.phone_number_id.as_str()),
            u32::try_from(row.messages_per_second).unwrap_or(1),
        );
        Ok(NumberView::from(&row))
    }

    /// The organization's numbers, connected ones first, oldest first.
    pub async fn numbers(&self, org: OrgId) -> Result<Vec<NumberView>, Error> {
        let rows = whatsapp_numbers::Entity::find()
            .filter(whatsapp_numbers::Column::OrganizationId.eq(org.as_uuid()))
            .order_by_asc(whatsapp_numbers::Column::Status)
            .order_by_asc(whatsapp_numbers::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(NumberView::from).collect())
    }

    /// One of the organization's numbers, or `NotFound`.
    pub(crate) async fn number_row<C: ConnectionTrait>(
        &self,
        conn: &C,
        org: OrgId,
        id: Uuid,
    ) -> Result<whatsapp_numbers::Model, Error> {
        whatsapp_numbers::Entity::find_by_id((org.as_uuid(), id))
            .one(conn)
            .await
            .map_err(db_err)?
            .ok_or(Error::not_found("whatsapp number"))
    }

    /// One number.
    pub async fn number(&self, org: OrgId, id: Uuid) -> Result<NumberView, Error> {
        Ok(NumberView::from(&self.number_row(&self.db, org, id).await?))
    }

    /// The organization's default connected number, if it has one.
    pub(crate) async fn default_number<C: ConnectionTrait>(
        &self,
        conn: &C,
        org: OrgId,
    ) -> Result<Option<whatsapp_numbers::Model>, Error> {
        whatsapp_numbers::Entity::find()
            .filter(whatsapp_numbers::Column::OrganizationId.eq(org.as_uuid()))
            .filter(whatsapp_numbers::Column::Status.eq("connected"))
            .order_by_desc(whatsapp_numbers::Column::IsDefault)
            .order_by_asc(whatsapp_numbers::Column::Id)
            .one(conn)
            .await
            .map_err(db_err)
    }

    /// The credentials to send from `number` with.
    pub(crate) fn credentials(
        &self,
        number: &whatsapp_numbers::Model,
    ) -> Result<Credentials, Error> {
        let org = super::org_of(number.organization_id);
        let sealed: Sealed = number.sealed.parse().map_err(Error::internal)?;
        let token = self
            .keyring
            .open(org, SEAL_PURPOSE, &sealed)
            .map_err(Error::internal)?;
        Ok(
            Credentials::new(PhoneNumberId::new(number.phone_number_id.as_str()), token)
                .waba_id(number.waba_id.as_str()),
        )
    }

    /// Changes a number's token (checked with Graph first) or makes it the default.
    pub async fn update_number(
        &self,
        org: OrgId,
        actor: Actor,
        client: &ClientInfo,
        id: Uuid,
        patch: NumberPatch,
    ) -> Result<NumberView, Error> {
        let current = self.number_row(&self.db, org, id).await?;
        if current.status != "connected" {
            return Err(Error::Conflict(
                "the number is disconnected: connect it again instead".into(),
            ));
        }
        let mut problems = Vec::new();
        if let Some(token) = &patch.access_token {
            check_token(token, &mut problems);
        }
        if patch.default == Some(false) {
            problems.push(FieldError::new(
                "default",
                "choose another number as the default instead",
            ));
        }
        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }
        let verified = match &patch.access_token {
            Some(token) => Some(
                self.verify_with_graph(&current.phone_number_id, &current.waba_id, token)
                    .await?,
            ),
            None => None,
        };
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let mut row: whatsapp_numbers::ActiveModel = current.clone().into();
        let mut changed = Vec::new();
        if let (Some(token), Some(verified)) = (&patch.access_token, verified) {
            row.sealed = Set(self
                .keyring
                .seal(org, SEAL_PURPOSE, token)
                .map_err(Error::internal)?
                .to_string());
            row.token_hint = Set(token_hint(token));
            row.display_number = Set(verified.display_number);
            row.verified_name = Set(verified.verified_name);
            row.quality_rating = Set(verified.quality_rating);
            row.messages_per_second = Set(verified.messages_per_second.max(1));
            row.verified_at = Set(now);
            changed.push("access_token");
        }
        if patch.default == Some(true) && !current.is_default {
            clear_default(&txn, org, now).await?;
            row.is_default = Set(true);
            changed.push("default");
        }
        row.updated_at = Set(now);
        let updated = row.update(&txn).await.map_err(db_err)?;
        audit::Entry::new(org, actor, "whatsapp.number.update")
            .target("whatsapp_number", id)
            .details(json!({ "changed": changed }))
            .record(&txn, client, now)
            .await?;
        txn.commit().await.map_err(db_err)?;
        if updated.messages_per_second != current.messages_per_second {
            // Graph reported another throughput tier with the new token.
            self.pacer.set_rate(
                &PhoneNumberId::new(updated.phone_number_id.as_str()),
                u32::try_from(updated.messages_per_second).unwrap_or(1),
            );
        }
        Ok(NumberView::from(&updated))
    }

    /// Disconnects a number: nothing is sent from it or routed to it any more, and it may
    /// be connected again (here or elsewhere). Its messages stay.
    pub async fn disconnect_number(
        &self,
        org: OrgId,
        actor: Actor,
        client: &ClientInfo,
        id: Uuid,
    ) -> Result<NumberView, Error> {
        let current = self.number_row(&self.db, org, id).await?;
        if current.status != "connected" {
            return Ok(NumberView::from(&current));
        }
        let now = self.now();
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        let mut row: whatsapp_numbers::ActiveModel = current.clone().into();
        row.status = Set("disconnected".into());
        row.routing_key = Set(None);
        row.is_default = Set(false);
        row.disconnected_at = Set(Some(now));
        row.updated_at = Set(now);
        let updated = row.update(&txn).await.map_err(db_err)?;
        if current.is_default {
            // The oldest other connected number becomes the default.
            if let Some(next) = whatsapp_numbers::Entity::find()
                .filter(whatsapp_numbers::Column::OrganizationId.eq(org.as_uuid()))
                .filter(whatsapp_numbers::Column::Status.eq("connected"))
                .order_by_asc(whatsapp_numbers::Column::Id)
                .one(&txn)
                .await
                .map_err(db_err)?
            {
                whatsapp_numbers::Entity::update_many()
                    .col_expr(whatsapp_numbers::Column::IsDefault, Expr::value(true))
                    .filter(whatsapp_numbers::Column::OrganizationId.eq(org.as_uuid()))
                    .filter(whatsapp_numbers::Column::Id.eq(next.id))
                    .exec(&txn)
                    .await
                    .map_err(db_err)?;
            }
        }
        audit::Entry::new(org, actor, "whatsapp.number.disconnect")
            .target("whatsapp_number", id)
            .details(json!({ "phone_number_id": current.phone_number_id }))
            .record(&txn, client, now)
            .await?;
        txn.commit().await.map_err(db_err)?;
        Ok(NumberView::from(&updated))
    }
}

async fn clear_default<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    whatsapp_numbers::Entity::update_many()
        .col_expr(whatsapp_numbers::Column::IsDefault, Expr::value(false))
        .col_expr(whatsapp_numbers::Column::UpdatedAt, Expr::value(now))
        .filter(whatsapp_numbers::Column::OrganizationId.eq(org.as_uuid()))
        .filter(whatsapp_numbers::Column::IsDefault.eq(true))
        .exec(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// The connected number whose Graph phone number id is `phone_number_id`, in any
/// organization (webhook routing: run it cross-tenant).
pub(crate) async fn by_phone_number_id<C: ConnectionTrait>(
    conn: &C,
    phone_number_id: &str,
) -> Result<Option<whatsapp_numbers::Model>, Error> {
    whatsapp_numbers::Entity::find()
        .filter(whatsapp_numbers::Column::RoutingKey.eq(phone_number_id))
        .one(conn)
        .await
        .map_err(db_err)
}

/// The one organization with connected numbers in WABA `waba_id` (account-level webhook
/// routing: run it cross-tenant). `None` if no organization, or more than one, has it.
pub(crate) async fn org_of_waba<C: ConnectionTrait>(
    conn: &C,
    waba_id: &str,
) -> Result<Option<OrgId>, Error> {
    let rows = whatsapp_numbers::Entity::find()
        .filter(whatsapp_numbers::Column::WabaId.eq(waba_id))
        .filter(whatsapp_numbers::Column::Status.eq("connected"))
        .all(conn)
        .await
        .map_err(db_err)?;
    let mut orgs: Vec<Uuid> = rows.iter().map(|r| r.organization_id).collect();
    orgs.sort();
    orgs.dedup();
    Ok(match orgs.as_slice() {
        [only] => Some(super::org_of(*only)),
        _ => None,
    })
}
