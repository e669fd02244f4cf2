//! Pushes the event outbox to this node's sockets.
//!
//! Every node tails `events` across organizations in id order and emits each event to its
//! own (local) sockets of the event's organization only, so with several nodes each
//! socket hears of an event once. Event ids are UUIDv7 taken when the change is made,
//! and a transaction may commit after a later one, so each poll looks back a few seconds
//! behind the newest id seen and skips what it already delivered.

use std::collections::HashMap;
use std::time::Duration;

use edge_core::OrgId;
use sea_orm::{ColumnTrait as _, DatabaseConnection, DbErr, EntityTrait as _, QueryFilter as _};
use sea_orm::{QueryOrder as _, QuerySelect as _};
use serde_json::json;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use uuid::Uuid;

use crate::crm::visibility::RecordVisibility;
use crate::entities::{deals, events, organizations};
use crate::organization_settings::OrganizationSettings;
use crate::tenant_scope::in_organization;

/// How often the outbox is read.
const POLL_EVERY: Duration = Duration::from_millis(200);
/// How far behind the newest event seen each poll looks again.
const LOOK_BACK_MS: u64 = 5_000;
/// Rows per query.
const BATCH: u64 = 500;

/// Tails the outbox forever, from now on.
pub(super) async fn tail<A: Adapter>(db: DatabaseConnection, io: SocketIo<A>) {
    let started = now_ms();
    let mut newest = started;
    // Delivered ids still inside the look-back window, with their times.
    let mut delivered: HashMap<Uuid, u64> = HashMap::new();
    let mut interval = tokio::time::interval(POLL_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let from = newest.saturating_sub(LOOK_BACK_MS).max(started);
        let mut after = floor(from);
        loop {
            let rows = crate::tenant_scope::cross_tenant(
                events::Entity::find()
                    .filter(events::Column::Id.gt(after))
                    .order_by_asc(events::Column::Id)
                    .limit(BATCH)
                    .all(&db),
            )
            .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(err) => {
                    tracing::warn!(error = %err, "reading the event outbox failed");
                    break;
                }
            };
            let full = rows.len() as u64 == BATCH;
            for row in rows {
                after = row.id;
                let at = millis_of(row.id);
                if delivered.contains_key(&row.id) {
                    continue;
                }
                newest = newest.max(at);
                delivered.insert(row.id, at);
                push(&io, &db, row).await;
            }
            if !full {
                break;
            }
        }
        let keep_from = newest.saturating_sub(2 * LOOK_BACK_MS);
        delivered.retain(|_, at| *at >= keep_from);
    }
}

/// Emits one event to this node's sockets that may hear of it ([`audience`]).
async fn push<A: Adapter>(io: &SocketIo<A>, db: &DatabaseConnection, row: events::Model) {
    let rooms = match audience(db, &row).await {
        Ok(rooms) => rooms,
        Err(err) => {
            // Not knowing who may see it, tell no one rather than everyone.
            tracing::warn!(event = %row.id, error = %err, "who may hear of an event could not be read; not pushed");
            return;
        }
    };
    let event = json!({
        "id": row.id,
        "kind": row.kind,
        "subject_type": row.subject_type,
        "subject_id": row.subject_id,
        "data": row.payload,
        "created_at": row.created_at,
    });
    if let Some(root) = super::default_ns(io) {
        super::emit_logged(root.local().to(rooms).emit("event", &event)).await;
    }
}

/// The subjects that are CRM records: under `own` record visibility, their events go only
/// to those who see every record and to the record's owner.
const RECORDS: &[&str] = &["prospect", "relationship", "deal", "ticket"];

/// The rooms an event goes to: payment and wallet events to the sockets whose role may
/// read billing; an event about a CRM record, when the organization's
/// `record_visibility` is `own`, to those who see every record and to the record's owner;
/// everything else to the whole organization.
async fn audience(db: &DatabaseConnection, row: &events::Model) -> Result<Vec<String>, DbErr> {
    let org = OrgId::from_uuid(row.organization_id);
    if row.kind.starts_with("payment.") || row.kind.starts_with("wallet.") {
        return Ok(vec![super::billing_room(org)]);
    }
    if !RECORDS.contains(&row.subject_type.as_str()) {
        return Ok(vec![super::org_room(org)]);
    }
    in_organization(org, async {
        let settings = organizations::Entity::find_by_id(org.as_uuid())
            .one(db)
            .await?
            .map(|o| OrganizationSettings::from_stored(&o.settings))
            .unwrap_or_default();
        if settings.record_visibility == RecordVisibility::Everyone {
            return Ok(vec![super::org_room(org)]);
        }
        // Record events carry their owner; a deal's stage move is looked up.
        let owner = match row.payload.get("owner_id") {
            Some(owner) => owner.as_str().and_then(|id| id.parse::<Uuid>().ok()),
            None if row.subject_type == "deal" => {
                deals::Entity::find_by_id((org.as_uuid(), row.subject_id))
                    .one(db)
                    .await?
                    .and_then(|deal| deal.owner_id)
            }
            None => None,
        };
        let mut rooms = vec![super::all_records_room(org)];
        rooms.extend(owner.map(|owner| super::user_room(org, owner)));
        Ok(rooms)
    })
    .await
}

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// The smallest UUIDv7 of millisecond `ms`.
fn floor(ms: u64) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

/// The millisecond a UUIDv7 was made in.
fn millis_of(id: Uuid) -> u64 {
    let bytes = id.as_bytes();
    let mut ms = [0u8; 8];
    ms[2..].copy_from_slice(&bytes[..6]);
    u64::from_be_bytes(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_of_a_millisecond_sorts_before_its_ids_and_after_earlier_ones() {
        let id = Uuid::now_v7();
        let ms = millis_of(id);
        assert!(floor(ms) <= id);
        assert!(floor(ms + 1) > id);
        assert!(floor(ms - 1) < floor(ms));
        assert_eq!(millis_of(floor(ms)), ms);
        assert_eq!(floor(ms).get_version_num(), 7);
    }
}
