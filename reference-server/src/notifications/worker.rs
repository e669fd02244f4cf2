//! The notifications consumer of the event queue: which events notify whom.
//!
//! Each claimed event is read in its organization's scope; the notifications it gives
//! are written, and the event completed, in one transaction, so an event notifies once
//! however often it is claimed (a crash before the commit leaves it to be claimed again).

use std::time::Duration;

use chrono::{DateTime, Utc};
use edge_core::{Error, OrgId, SharedClock};
use edge_tenancy::Permission;
use sea_orm::{DatabaseConnection, DbErr};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Kind, NewNotification, active_role, admins, create, members_who_can};
use crate::db::{begin_write, db_err};
use crate::events::{Consumer, Event, claim, complete};
use crate::tenant_scope::in_organization;

/// How long a server holds the events it claimed.
const LEASE: Duration = Duration::from_secs(60);
/// Events per pass.
const BATCH: u64 = 100;

/// Handles queued events every `every`, forever.
pub async fn work_forever(db: DatabaseConnection, clock: SharedClock, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(err) = process_due(&db, clock.now()).await {
            tracing::warn!(error = %err, "handling events for notifications failed");
        }
    }
}

/// Claims and handles one batch of events; returns how many were handled.
pub async fn process_due(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<usize, DbErr> {
    let queued = claim(db, Consumer::Notifications, now, LEASE, BATCH).await?;
    let mut handled = 0;
    for item in queued {
        match in_organization(item.org, handle(db, item.org, &item.event, now)).await {
            Ok(()) => handled += 1,
            Err(err) => {
                tracing::warn!(event = %item.event.id, kind = %item.event.kind, error = %err,
                    "an event's notifications failed; it is retried when its lease ends");
            }
        }
    }
    Ok(handled)
}

async fn handle(
    db: &DatabaseConnection,
    org: OrgId,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let notices = notices_for(db, org, event).await.map_err(db_err)?;
    let txn = begin_write(db).await.map_err(db_err)?;
    for notice in notices {
        create(&txn, org, notice, now).await.map_err(db_err)?;
    }
    complete(&txn, org, Consumer::Notifications, event.id)
        .await
        .map_err(db_err)?;
    txn.commit().await.map_err(db_err)
}

/// The record kinds whose `created`/`updated` events may give a record to someone.
const RECORD_KINDS: [&str; 4] = ["prospect", "relationship", "deal", "ticket"];

/// The notifications an event gives.
async fn notices_for(
    db: &DatabaseConnection,
    org: OrgId,
    event: &Event,
) -> Result<Vec<NewNotification>, DbErr> {
    let data = &event.data;
    let subject = Some((event.subject_type.clone(), event.subject_id));
    let to_each = |users: Vec<Uuid>, kind: Kind, title: String, body: String| {
        users
            .into_iter()
            .map(|user_id| NewNotification {
                user_id,
                kind,
                title: title.clone(),
                body: body.clone(),
                subject: subject.clone(),
                data: json!({ "event_id": event.id, "event": event.kind, "data": data }),
            })
            .collect::<Vec<_>>()
    };
    match event.kind.as_str() {
        "wallet.low_balance" => {
            let users = members_who_can(db, org, Permission::BillingRead).await?;
            let available = money_text(&data["available"]);
            Ok(to_each(
                users,
                Kind::LowBalance,
                "The wallet balance is low".into(),
                format!("Available: {available}. Top up to keep sending messages."),
            ))
        }
        "webhook_endpoint.disabled" => {
            let users = admins(db, org).await?;
            let url = data["url"].as_str().unwrap_or_default();
            Ok(to_each(
                users,
                Kind::WebhookDisabled,
                "A webhook endpoint was disabled".into(),
                format!("{url} kept failing and no longer receives events."),
            ))
        }
        "ticket.overdue" => {
            let assignee = uuid_at(data, "assignee_id");
            let users = match assignee {
                Some(user) if active_role(db, org, user).await?.is_some() => vec![user],
                _ => admins(db, org).await?,
            };
            let title = data["subject"].as_str().unwrap_or("a ticket");
            Ok(to_each(
                users,
                Kind::Overdue,
                format!("Ticket overdue: {title}"),
                format!(
                    "It was due at {}.",
                    data["due_at"].as_str().unwrap_or("its due time")
                ),
            ))
        }
        kind => {
            let Some((record_kind, verb)) = kind.split_once('.') else {
                return Ok(Vec::new());
            };
            if !RECORD_KINDS.contains(&record_kind) {
                return Ok(Vec::new());
            }
            let record = &data["record"];
            let given = match verb {
                "created" => true,
                "updated" => data["changed"]
                    .as_array()
                    .is_some_and(|changed| changed.iter().any(|f| f == "owner_id")),
                _ => false,
            };
            let Some(owner) = owner_of(data).filter(|_| given) else {
                return Ok(Vec::new());
            };
            if actor_of(data, verb) == Some(owner) || active_role(db, org, owner).await?.is_none() {
                return Ok(Vec::new());
            }
            let name = record_name(record);
            Ok(to_each(
                vec![owner],
                Kind::Assignment,
                format!("A {record_kind} was assigned to you: {name}"),
                String::new(),
            ))
        }
    }
}

/// The record's owner: the event's `owner_id` (whatever the kind calls it), else the
/// record's own owner field.
fn owner_of(data: &Value) -> Option<Uuid> {
    uuid_at(data, "owner_id").or_else(|| {
        ["owner_id", "account_manager_id", "assignee_id"]
            .iter()
            .find_map(|key| uuid_at(&data["record"], key))
    })
}

/// An id at `key` of a JSON object.
fn uuid_at(value: &Value, key: &str) -> Option<Uuid> {
    value.get(key)?.as_str()?.parse().ok()
}

/// Who made the change, when the event says: `actor_id`, `actor.user_id`/`actor.id`,
/// `moved_by`, or for a new record its `created_by`. A change made by an automation rule
/// has no actor, so its owner is always told.
fn actor_of(data: &Value, verb: &str) -> Option<Uuid> {
    if data.get("caused_by_rule").is_some() {
        return None;
    }
    uuid_at(data, "actor_id")
        .or_else(|| uuid_at(&data["actor"], "user_id"))
        .or_else(|| uuid_at(&data["actor"], "id"))
        .or_else(|| data["actor"].as_str().and_then(|s| s.parse().ok()))
        .or_else(|| uuid_at(data, "moved_by"))
        .or_else(|| {
            (verb == "created")
                .then(|| uuid_at(&data["record"], "created_by"))
                .flatten()
        })
}

/// A record's name as people know it.
fn record_name(record: &Value) -> String {
    ["title", "name", "display_name", "subject", "full_name"]
        .iter()
        .find_map(|key| record[key].as_str())
        .or_else(|| record["id"].as_str())
        .unwrap_or("a record")
        .to_owned()
}

/// `{"amount": "12.50", "currency": "KES"}` as `KES 12.50`.
fn money_text(money: &Value) -> String {
    match (money["currency"].as_str(), money["amount"].as_str()) {
        (Some(currency), Some(amount)) => format!("{currency} {amount}"),
        _ => money.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_is_read_from_the_usual_places_and_rules_have_none() {
        let u = Uuid::now_v7();
        assert_eq!(actor_of(&json!({"actor_id": u}), "updated"), Some(u));
        assert_eq!(
            actor_of(&json!({"actor": {"user_id": u}}), "updated"),
            Some(u)
        );
        assert_eq!(
            actor_of(&json!({"record": {"created_by": u}}), "created"),
            Some(u)
        );
        assert_eq!(
            actor_of(&json!({"record": {"created_by": u}}), "updated"),
            None
        );
        assert_eq!(
            actor_of(&json!({"actor_id": u, "caused_by_rule": u}), "updated"),
            None
        );
    }

    #[test]
    fn money_reads_as_currency_and_amount() {
        assert_eq!(
            money_text(&json!({"amount": "12.50", "currency": "KES"})),
            "KES 12.50"
        );
    }
}
