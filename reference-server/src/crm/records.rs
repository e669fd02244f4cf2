//! What tickets, activities and targets share: reading ids, times, dates and choices
//! into [`Checks`], the rules for (re)assigning a record, and the records an activity
//! can be about.

pub(crate) use crate::db::db_err;
use chrono::{DateTime, NaiveDate, Utc};
use edge_core::{Error, OrgId};
use edge_tenancy::{Permission, TenantContext};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use super::fields::{Checks, caller, check_assignee};
use super::list::ListQuery;
use super::visibility::Scope;
use crate::entities::memberships;

/// Reading the values of tickets, activities and targets into [`Checks`]: each returns
/// `None` (after recording the problem) when the value is unusable.
pub trait RecordChecks {
    /// `value`, or "is required" on `field` when it is absent.
    fn required<T>(&mut self, field: &str, value: Option<T>) -> Option<T>;
    /// An id (a UUID).
    fn id(&mut self, field: &str, value: &str) -> Option<uuid::Uuid>;
    /// An RFC 3339 date and time with a zone.
    fn time(&mut self, field: &str, value: &str) -> Option<DateTime<Utc>>;
    /// A calendar date, `YYYY-MM-DD`.
    fn date(&mut self, field: &str, value: &str) -> Option<NaiveDate>;
    /// One of `choices`, named in the message when it is not.
    fn choice(
        &mut self,
        field: &str,
        value: &str,
        choices: &[&'static str],
    ) -> Option<&'static str>;
}

impl RecordChecks for Checks {
    fn required<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.fail(field, "is required");
        }
        value
    }

    fn id(&mut self, field: &str, value: &str) -> Option<uuid::Uuid> {
        let id = uuid::Uuid::parse_str(value.trim()).ok();
        if id.is_none() {
            self.fail(field, "must be an id (a UUID)");
        }
        id
    }

    fn time(&mut self, field: &str, value: &str) -> Option<DateTime<Utc>> {
        let time = DateTime::parse_from_rfc3339(value.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc));
        if time.is_none() {
            self.fail(
                field,
                "must be a date and time with a zone, like 2026-01-31T17:00:00+03:00",
            );
        }
        time
    }

    fn date(&mut self, field: &str, value: &str) -> Option<NaiveDate> {
        let date = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").ok();
        if date.is_none() {
            self.fail(field, "must be a date, YYYY-MM-DD");
        }
        date
    }

    fn choice(
        &mut self,
        field: &str,
        value: &str,
        choices: &[&'static str],
    ) -> Option<&'static str> {
        let found = choices.iter().copied().find(|c| *c == value.trim());
        if found.is_none() {
            self.fail(field, format!("must be one of: {}", choices.join(", ")));
        }
        found
    }
}

/// A list filter taking one value of `choices` or several, comma-separated
/// (`status=open,pending`).
pub fn choices(
    query: &ListQuery,
    name: &str,
    choices: &[&'static str],
) -> Result<Option<Vec<&'static str>>, Error> {
    let Some(text) = query.text(name) else {
        return Ok(None);
    };
    let mut checks = Checks::new();
    let values: Vec<&'static str> = text
        .split(',')
        .filter_map(|value| checks.choice(name, value, choices))
        .collect();
    checks.finish()?;
    Ok(Some(values))
}

/// Checks a change of the member a record is assigned to (`field` names it for errors).
///
/// Assigning to yourself, or clearing your own assignment, needs no more than the write
/// permission the route already asked for; assigning to someone else, or taking a record
/// away from someone else, needs `crm_assign`. The new person must be an active member.
pub async fn check_assignment<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantContext,
    field: &str,
    current: Option<uuid::Uuid>,
    new: Option<uuid::Uuid>,
) -> Result<(), Error> {
    match new {
        _ if new == current => Ok(()),
        Some(person) => check_assignee(conn, ctx, field, person).await,
        None if current.is_some() && current == caller(ctx) => Ok(()),
        None => ctx.require(Permission::CrmAssign),
    }
}

/// Whether `user` is an active member of `org`.
pub async fn is_active_member<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    user: uuid::Uuid,
) -> Result<bool, Error> {
    let member = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(org.as_uuid()))
        .filter(memberships::Column::UserId.eq(user))
        .filter(memberships::Column::Status.eq("active"))
        .one(conn)
        .await
        .map_err(db_err)?;
    Ok(member.is_some())
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

    /// The wire names, in the same order.
    pub const NAMES: [&'static str; 4] = ["prospect", "relationship", "deal", "ticket"];

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
///
/// The lookup is one backend-neutral statement on the subject's table (each has
/// `organization_id`, `id`, `deleted_at` and its owner columns), so a kind of record
/// needs no code here beyond its table and owner columns.
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
    let visible = match conn.query_one(&select).await.map_err(db_err)? {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_types_round_trip() {
        for (kind, name) in SubjectType::ALL.into_iter().zip(SubjectType::NAMES) {
            assert_eq!(kind.as_str(), name);
            assert_eq!(SubjectType::parse(name), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(name));
        }
        assert_eq!(SubjectType::parse("lead"), None);
    }

    #[test]
    fn values_are_read_or_named() {
        let mut checks = Checks::new();
        assert!(checks.required("subject", Some("x")).is_some());
        assert!(
            checks
                .id("relationship_id", "0190d6e0-0000-7000-8000-000000000000")
                .is_some()
        );
        assert!(checks.time("due_at", "2026-01-31T17:00:00+03:00").is_some());
        assert!(checks.date("period_start", "2026-01-31").is_some());
        assert_eq!(
            checks.choice("kind", " call ", &["note", "call"]),
            Some("call")
        );
        assert!(checks.finish().is_ok());

        let mut checks = Checks::new();
        assert!(checks.required::<&str>("subject", None).is_none());
        assert!(checks.id("relationship_id", "42").is_none());
        assert!(checks.time("due_at", "tomorrow").is_none());
        assert!(checks.date("period_start", "31/01/2026").is_none());
        assert!(checks.choice("kind", "email", &["note", "call"]).is_none());
        let Err(Error::Validation(problems)) = checks.finish() else {
            panic!("expected a validation error");
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "subject",
                "relationship_id",
                "due_at",
                "period_start",
                "kind"
            ]
        );
        assert_eq!(problems[4].message, "must be one of: note, call");
    }
}
