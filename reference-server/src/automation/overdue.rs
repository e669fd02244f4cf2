//! The overdue sweep: records `ticket.overdue` once when an open (or pending) ticket's due
//! time passes.
//!
//! Every few seconds each server reads the due tickets across organizations and, for each,
//! sets `overdue_at` with a conditional update (only if it is still due and unmarked for
//! this due time) and records the event in the same transaction: whichever server wins
//! the update records the event, so it is recorded once however many servers sweep.
//! Moving a ticket's due time later makes it eligible again once the new time passes
//! (the marker is older than the new due time). Time comes from the injected clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use edge_core::{OrgId, SharedClock};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait as _, Condition, DatabaseConnection, DbErr, EntityTrait as _, QueryFilter as _,
    QueryOrder as _, QuerySelect as _,
};
use serde_json::json;

use crate::db::begin_write;
use crate::entities::tickets;
use crate::tenant_scope::{cross_tenant, in_organization};

/// Tickets per sweep.
const BATCH: u64 = 200;

/// Sweeps every `every`, forever.
pub async fn sweep_forever(db: DatabaseConnection, clock: SharedClock, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match sweep(&db, clock.now()).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "tickets became overdue"),
            Err(err) => tracing::warn!(error = %err, "sweeping overdue tickets failed"),
        }
    }
}

/// The condition of a ticket that is due at `now` and not yet marked for its due time.
fn due(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(tickets::Column::DueAt.lte(now))
        .add(tickets::Column::Status.is_in(["open", "pending"]))
        .add(tickets::Column::DeletedAt.is_null())
        .add(
            Condition::any()
                .add(tickets::Column::OverdueAt.is_null())
                .add(Expr::col(tickets::Column::OverdueAt).lt(Expr::col(tickets::Column::DueAt))),
        )
}

/// Records `ticket.overdue` for each ticket that became due by `now`; returns how many.
pub async fn sweep(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<usize, DbErr> {
    let candidates = cross_tenant(
        tickets::Entity::find()
            .filter(due(now))
            .order_by_asc(tickets::Column::DueAt)
            .limit(BATCH)
            .all(db),
    )
    .await?;
    let mut recorded = 0;
    for ticket in candidates {
        let org = OrgId::from_uuid(ticket.organization_id);
        let won = in_organization(org, async {
            let txn = begin_write(db).await?;
            let marked = tickets::Entity::update_many()
                .col_expr(tickets::Column::OverdueAt, Expr::value(now))
                .filter(tickets::Column::OrganizationId.eq(ticket.organization_id))
                .filter(tickets::Column::Id.eq(ticket.id))
                .filter(due(now))
                .exec(&txn)
                .await?
                .rows_affected
                == 1;
            if marked {
                crate::events::record(
                    &txn,
                    org,
                    "ticket.overdue",
                    ("ticket", ticket.id),
                    json!({
                        "ticket_id": ticket.id,
                        "subject": ticket.subject,
                        "status": ticket.status,
                        "priority": ticket.priority,
                        "assignee_id": ticket.assignee_id,
                        "relationship_id": ticket.relationship_id,
                        "due_at": ticket.due_at,
                    }),
                    now,
                )
                .await?;
            }
            txn.commit().await?;
            Ok::<bool, DbErr>(marked)
        })
        .await?;
        if won {
            recorded += 1;
        }
    }
    Ok(recorded)
}
