//! What tickets, activities and targets share: the caller's visibility scope, the rules
//! for assigning a record to a member, the records an activity can be about, and text
//! checks.

use chrono::{DateTime, Utc};
use edge_core::{Country, Currency, Error, FieldError, OrgId};
use edge_tenancy::{Permission, TenantContext};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use super::visibility::Scope;
use crate::entities::memberships;
use crate::organization_settings::OrganizationSettings;

pub(crate) fn db_err(e: sea_orm::DbErr) -> Error {
    Error::internal(e)
}

/// What a CRM service needs to know about the caller's organization.
#[derive(Debug, Clone)]
pub struct OrgFacts {
    /// Its vocabulary and settings.
    pub settings: OrganizationSettings,
    /// What the caller may see under its `record_visibility` setting.
    pub scope: Scope,
    /// Its country (phone numbers in searches, the local day of target periods).
    pub country: Country,
    /// Its currency (money values, revenue targets).
    pub currency: Currency,
}

/// Reads the caller's organization once for a request.
pub async fn org_facts(db: &DatabaseConnection, ctx: &TenantContext) -> Result<OrgFacts, Error> {
    let org = crate::identity::organization::get(db, ctx).await?;
    let settings = OrganizationSettings::from_stored(&org.settings);
    let country = Country::ALL
        .into_iter()
        .find(|c| c.iso_code() == org.country)
        .unwrap_or(Country::Kenya);
    let currency: Currency = org.currency.parse().map_err(Error::internal)?;
    Ok(OrgFacts {
        scope: Scope::of(ctx, settings.record_visibility),
        settings,
        country,
        currency,
    })
}

/// Checks a change of the member a record is assigned to (`field` names it for errors).
///
/// Assigning to yourself, or clearing an assignment of your own, needs no more than the
/// write permission the route already asked for; any other change (assigning to
/// someone else, or taking a record away from someone) needs `CrmAssign`. The new
/// person must be an active member of the organization.
pub async fn check_assignment<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantContext,
    field: &str,
    current: Option<uuid::Uuid>,
    new: Option<uuid::Uuid>,
) -> Result<(), Error> {
    if current == new {
        return Ok(());
    }
    let me = ctx.user().map(|u| u.as_uuid());
    let own = match new {
        Some(person) => Some(person) == me,
        None => current.is_some() && current == me,
    };
    if !own && !ctx.can(Permission::CrmAssign) {
        return Err(Error::Forbidden(format!(
            "assigning records to other members needs the {} permission ({field})",
            Permission::CrmAssign
        )));
    }
    if let Some(person) = new {
        ensure_active_member(conn, ctx.org(), field, person).await?;
    }
    Ok(())
}

/// Refuses (422 on `field`) a user who is not an active member of `org`.
pub async fn ensure_active_member<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    field: &str,
    user: uuid::Uuid,
) -> Result<(), Error> {
    let member = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(org.as_uuid()))
        .filter(memberships::Column::UserId.eq(user))
        .filter(memberships::Column::Status.eq("active"))
        .one(conn)
        .await
        .map_err(db_err)?;
    match member {
        Some(_) => Ok(()),
        None => Err(Error::invalid(
            field,
            "is not an active member of this organization",
        )),
    }
}

/// Whether `user` is an active member of `org`.
pub async fn is_active_member<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    user: uuid::Uuid,
) -> Result<bool, Error> {
    match ensure_active_member(conn, org, "user", user).await {
        Ok(()) => Ok(true),
        Err(Error::Validation(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The kinds of record an activity can be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    /// A prospect (lead).
    Prospect,
    /// A relationship (customer).
    Relationship,
    /// A deal.
    Deal,
    /// A ticket.
    Ticket,
}

impl SubjectType {
    /// Every kind, in the order error messages list them.
    pub const ALL: [SubjectType; 4] = [
        SubjectType::Prospect,
        SubjectType::Relationship,
        SubjectType::Deal,
        SubjectType::Ticket,
    ];

    /// The wire name, also the value stored in `activities.subject_type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SubjectType::Prospect => "prospect",
            SubjectType::Relationship => "relationship",
            SubjectType::Deal => "deal",
            SubjectType::Ticket => "ticket",
        }
    }

    /// Parses a stored or query-string value.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }

    /// The table holding these records.
    const fn table(self) -> &'static str {
        match self {
            SubjectType::Prospect => "prospects",
            SubjectType::Relationship => "relationships",
            SubjectType::Deal => "deals",
            SubjectType::Ticket => "tickets",
        }
    }

    /// The columns naming who owns the record, for the `own` visibility scope: a
    /// prospect's and a deal's owner, a relationship's account manager, a ticket's
    /// assignee and whoever raised it.
    const fn owner_columns(self) -> &'static [&'static str] {
        match self {
            SubjectType::Prospect | SubjectType::Deal => &["owner_id"],
            SubjectType::Relationship => &["account_manager_id"],
            SubjectType::Ticket => &["assignee_id", "created_by"],
        }
    }
}

/// Checks that a record exists in the caller's organization, is not deleted and is
/// visible in `scope`; otherwise a 422 on `field` ("no such prospect"), the same whether
/// it is missing, deleted, another tenant's or hidden from the caller.
pub async fn ensure_subject<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    scope: Scope,
    field: &str,
    kind: SubjectType,
    id: uuid::Uuid,
) -> Result<(), Error> {
    let mut select = Query::select();
    select.expr(Expr::col(Alias::new("id")));
    for column in kind.owner_columns() {
        select.column(Alias::new(*column));
    }
    select
        .from(Alias::new(kind.table()))
        .and_where(Expr::col(Alias::new("organization_id")).eq(org.as_uuid()))
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .and_where(Expr::col(Alias::new("deleted_at")).is_null());
    let row = conn.query_one(&select).await.map_err(db_err)?;
    let visible = match row {
        None => false,
        Some(row) => {
            let mut owners = Vec::new();
            for column in kind.owner_columns() {
                owners.push(
                    row.try_get::<Option<uuid::Uuid>>("", column)
                        .map_err(db_err)?,
                );
            }
            scope.sees(&owners)
        }
    };
    if visible {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("no such {}", kind.as_str())))
    }
}

/// The prospect a relationship was converted from, if any (`relationships.prospect_id`).
pub async fn source_prospect<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    relationship: uuid::Uuid,
) -> Result<Option<uuid::Uuid>, Error> {
    let mut select = Query::select();
    select
        .column(Alias::new("prospect_id"))
        .from(Alias::new(SubjectType::Relationship.table()))
        .and_where(Expr::col(Alias::new("organization_id")).eq(org.as_uuid()))
        .and_where(Expr::col(Alias::new("id")).eq(relationship));
    match conn.query_one(&select).await.map_err(db_err)? {
        Some(row) => row
            .try_get::<Option<uuid::Uuid>>("", "prospect_id")
            .map_err(db_err),
        None => Ok(None),
    }
}

/// `value`, or a problem "is required" on `field` when it is absent.
pub fn require<T>(problems: &mut Vec<FieldError>, field: &str, value: Option<T>) -> Option<T> {
    if value.is_none() {
        problems.push(FieldError::new(field, "is required"));
    }
    value
}

/// Trims `value` and checks it has 1 to `max` characters.
pub fn required_text(
    problems: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    max: usize,
) -> String {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        problems.push(FieldError::new(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    value.to_owned()
}

/// Trims `value` and checks it has at most `max` characters; empty becomes `None`.
pub fn optional_text(
    problems: &mut Vec<FieldError>,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Option<String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    if value.chars().count() > max {
        problems.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Some(value.to_owned())
}

/// Parses a UUID; a problem on `field` otherwise.
pub fn parse_uuid(problems: &mut Vec<FieldError>, field: &str, value: &str) -> Option<uuid::Uuid> {
    match uuid::Uuid::parse_str(value.trim()) {
        Ok(id) => Some(id),
        Err(_) => {
            problems.push(FieldError::new(field, "must be an id (a UUID)"));
            None
        }
    }
}

/// Parses an RFC 3339 date-time (`2026-01-31T17:00:00Z`, `2026-01-31T20:00:00+03:00`).
pub fn parse_time(
    problems: &mut Vec<FieldError>,
    field: &str,
    value: &str,
) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(value.trim()) {
        Ok(time) => Some(time.with_timezone(&Utc)),
        Err(_) => {
            problems.push(FieldError::new(
                field,
                "must be a date and time with a zone, like 2026-01-31T17:00:00+03:00",
            ));
            None
        }
    }
}

/// Parses one of `choices`; a problem on `field` listing them otherwise.
pub fn parse_choice(
    problems: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    choices: &[&'static str],
) -> Option<&'static str> {
    let found = choices.iter().copied().find(|c| *c == value.trim());
    if found.is_none() {
        problems.push(FieldError::new(
            field,
            format!("must be one of: {}", choices.join(", ")),
        ));
    }
    found
}

/// `Err(Validation)` with the problems, if any.
pub fn finish(problems: Vec<FieldError>) -> Result<(), Error> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_types_round_trip() {
        for kind in SubjectType::ALL {
            assert_eq!(SubjectType::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(SubjectType::parse("lead"), None);
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        let mut problems = Vec::new();
        assert_eq!(required_text(&mut problems, "subject", "  Hi ", 10), "Hi");
        assert!(problems.is_empty());
        required_text(&mut problems, "subject", "   ", 10);
        required_text(&mut problems, "title", "elevenchars", 10);
        assert_eq!(optional_text(&mut problems, "body", Some("  "), 5), None);
        assert_eq!(optional_text(&mut problems, "body", None, 5), None);
        optional_text(&mut problems, "body", Some("toolong"), 5);
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["subject", "title", "body"]);
        assert!(finish(problems).is_err());
        assert!(finish(Vec::new()).is_ok());
    }
}
