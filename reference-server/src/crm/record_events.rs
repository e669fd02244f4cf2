//! Events about CRM records, written in the transaction that makes the change:
//! `{prospect,relationship,deal,ticket}.{created,updated,deleted}`. Outbound webhooks,
//! automation and notifications read them from the outbox (see [`crate::events`]).
//!
//! The data is
//! `{"record": <the record as the API returns it>, "changed": [...], "previous": {...},
//! "owner_id": ..., "previous_owner_id": ..., "actor_id": ...}`:
//!
//! - `changed` names the fields that changed (empty on create and delete);
//! - `previous` holds the old value of each changed field the record shows;
//! - `owner_id` is whoever the record is assigned to, whatever the kind calls it
//!   (a prospect's or deal's owner, a relationship's account manager, a ticket's
//!   assignee); when it changed, `changed` also lists `owner_id` and
//!   `previous_owner_id` holds the old one;
//! - `actor_id` is the member who made the change (`null` for an API key or the system).
//!
//! An update that changes nothing records no event.

use chrono::{DateTime, Utc};
use edge_core::Error;
use edge_tenancy::TenantContext;
use sea_orm::ConnectionTrait;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::fields::caller;
use crate::db::db_err;

/// What happened to the record.
pub(crate) enum Change<'a> {
    /// It was created.
    Created,
    /// These fields changed; `before` is the record as it was (as the API showed it).
    Updated {
        /// The changed fields, by their stored names.
        changed: &'a [&'static str],
        /// The record before the change.
        before: Value,
        /// Its owner before the change.
        previous_owner: Option<uuid::Uuid>,
    },
    /// It was deleted.
    Deleted,
}

/// The fields that hold a record's owner, by kind.
const OWNER_FIELDS: &[&str] = &["owner_id", "account_manager_id", "assignee_id"];

/// Records `{subject}.{created|updated|deleted}` for the record `id` on `conn`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantContext,
    subject: &'static str,
    id: uuid::Uuid,
    record: &impl Serialize,
    owner: Option<uuid::Uuid>,
    change: Change<'_>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let record = serde_json::to_value(record).map_err(Error::internal)?;
    let mut data = Map::new();
    let verb = match change {
        Change::Created => {
            data.insert("changed".into(), json!([]));
            data.insert("previous".into(), json!({}));
            "created"
        }
        Change::Updated {
            changed,
            before,
            previous_owner,
        } => {
            if changed.is_empty() {
                return Ok(());
            }
            let mut names: Vec<&str> = changed.to_vec();
            let mut previous = Map::new();
            for name in changed {
                if let Some(old) = before.get(*name) {
                    previous.insert((*name).to_owned(), old.clone());
                }
            }
            if changed.iter().any(|name| OWNER_FIELDS.contains(name)) {
                if !names.contains(&"owner_id") {
                    names.push("owner_id");
                }
                data.insert("previous_owner_id".into(), json!(previous_owner));
            }
            data.insert("changed".into(), json!(names));
            data.insert("previous".into(), Value::Object(previous));
            "updated"
        }
        Change::Deleted => {
            data.insert("changed".into(), json!([]));
            data.insert("previous".into(), json!({}));
            "deleted"
        }
    };
    data.insert("record".into(), record);
    data.insert("owner_id".into(), json!(owner));
    data.insert("actor_id".into(), json!(caller(ctx)));
    crate::events::record(
        conn,
        ctx.org(),
        &format!("{subject}.{verb}"),
        (subject, id),
        Value::Object(data),
        now,
    )
    .await
    .map_err(db_err)?;
    Ok(())
}
