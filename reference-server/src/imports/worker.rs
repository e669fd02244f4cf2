//! The import worker: takes queued (or abandoned) jobs across organizations, claiming
//! each with a lease like the WhatsApp retry queue, and works through its chunks in its
//! organization's scope.
//!
//! Each chunk is one transaction: its records, their tags, its row errors and the job's
//! progress (`next_chunk` and the counts) commit together, and only if the job is still
//! at that chunk and still this worker's. A crash loses at most the chunk in flight; the
//! next worker to claim the job after the lease starts at `next_chunk`. A job claimed
//! more than [`MAX_ATTEMPTS`] times fails. The last transaction marks the job completed
//! and writes its one `import.completed` event and its audit entry.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use edge_core::{Clock, Error, OrgId};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait as _, Condition, DatabaseConnection, EntityTrait as _, QueryFilter as _,
    QueryOrder as _, QuerySelect as _,
};
use serde_json::json;

use super::rows::{self, Seen};
use super::{Status, actor_of, chunk_rows, plan_of};
use crate::audit::{self, ClientInfo};
use crate::crm::CrmContext;
use crate::db::{begin_write, db_err};
use crate::entities::{import_errors, imports};
use crate::tenant_scope;

/// How long a worker holds a job between two commits.
pub const LEASE: TimeDelta = TimeDelta::minutes(5);
/// How many times a job may be claimed before it fails.
pub const MAX_ATTEMPTS: i32 = 5;

/// Runs jobs until the task is aborted, looking for new ones every `interval`.
pub async fn work_forever(db: DatabaseConnection, clock: Arc<dyn Clock>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        loop {
            match run_next(&db, clock.as_ref()).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "an import job stopped; it resumes when its lease ends");
                    break;
                }
            }
        }
    }
}

fn free(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(imports::Column::ClaimedUntil.is_null())
        .add(imports::Column::ClaimedUntil.lt(now))
}

fn workable() -> Condition {
    Condition::any()
        .add(imports::Column::Status.eq(Status::Queued.as_str()))
        .add(imports::Column::Status.eq(Status::Running.as_str()))
}

/// Claims one due job and runs it to its end. Returns whether there was one.
pub async fn run_next(db: &DatabaseConnection, clock: &dyn Clock) -> Result<bool, Error> {
    let now = clock.now();
    let claimed = tenant_scope::cross_tenant(async {
        let due = imports::Entity::find()
            .filter(workable())
            .filter(free(now))
            .order_by_asc(imports::Column::StartedAt)
            .limit(5)
            .all(db)
            .await
            .map_err(db_err)?;
        for job in due {
            let won = imports::Entity::update_many()
                .col_expr(
                    imports::Column::Status,
                    Expr::value(Status::Running.as_str()),
                )
                .col_expr(imports::Column::ClaimedUntil, Expr::value(now + LEASE))
                .col_expr(
                    imports::Column::Attempts,
                    Expr::col(imports::Column::Attempts).add(1),
                )
                .col_expr(imports::Column::UpdatedAt, Expr::value(now))
                .filter(imports::Column::OrganizationId.eq(job.organization_id))
                .filter(imports::Column::Id.eq(job.id))
                .filter(workable())
                .filter(free(now))
                .exec(db)
                .await
                .map_err(db_err)?
                .rows_affected
                == 1;
            if won {
                return Ok::<_, Error>(Some(job));
            }
        }
        Ok(None)
    })
    .await?;
    let Some(job) = claimed else {
        return Ok(false);
    };
    let org = OrgId::from_uuid(job.organization_id);
    tenant_scope::in_organization(org, run(db, clock, job)).await?;
    Ok(true)
}

/// Works through one claimed job.
async fn run(db: &DatabaseConnection, clock: &dyn Clock, job: imports::Model) -> Result<(), Error> {
    let org = OrgId::from_uuid(job.organization_id);
    let attempts = job.attempts + 1;
    if attempts > MAX_ATTEMPTS {
        return finish(
            db,
            clock.now(),
            &job,
            Status::Failed,
            Some(format!(
                "the job stopped {MAX_ATTEMPTS} times; it was given up"
            )),
        )
        .await;
    }
    let cx = CrmContext::for_organization(db, org).await?;
    let plan = match plan_of(&job, &cx) {
        Ok(plan) => plan,
        Err(err @ (Error::Validation(_) | Error::Conflict(_))) => {
            return finish(db, clock.now(), &job, Status::Failed, Some(err.to_string())).await;
        }
        Err(err) => return Err(err),
    };
    let mut seen = Seen::default();
    for seq in job.next_chunk..job.chunk_count {
        let now = clock.now();
        let rows = chunk_rows(db, &job, seq).await?;
        let count = rows.len() as i64;
        let txn = begin_write(db).await.map_err(db_err)?;
        let outcome = rows::process(&txn, &plan, &cx, rows, &mut seen, now).await?;
        rows::write(&txn, &plan, &outcome).await?;
        let mut errors = Vec::new();
        for (row, values, problems) in &outcome.failed {
            for (i, problem) in problems.iter().enumerate() {
                errors.push(import_errors::ActiveModel {
                    organization_id: sea_orm::ActiveValue::Set(job.organization_id),
                    import_id: sea_orm::ActiveValue::Set(job.id),
                    row: sea_orm::ActiveValue::Set(i64::try_from(*row).map_err(Error::internal)?),
                    seq: sea_orm::ActiveValue::Set(i32::try_from(i).map_err(Error::internal)?),
                    column: sea_orm::ActiveValue::Set(problem.column.clone()),
                    code: sea_orm::ActiveValue::Set(problem.code.to_owned()),
                    message: sea_orm::ActiveValue::Set(problem.message.clone()),
                    values: sea_orm::ActiveValue::Set(json!(values)),
                });
            }
        }
        let mut errors = errors.into_iter().peekable();
        while errors.peek().is_some() {
            let some: Vec<_> = errors.by_ref().take(200).collect();
            import_errors::Entity::insert_many(some)
                .exec_without_returning(&txn)
                .await
                .map_err(db_err)?;
        }
        let add = |column: imports::Column, n: u64| {
            Expr::col(column).add(i64::try_from(n).unwrap_or(i64::MAX))
        };
        let progressed = imports::Entity::update_many()
            .col_expr(imports::Column::NextChunk, Expr::value(seq + 1))
            .col_expr(
                imports::Column::RowsDone,
                add(imports::Column::RowsDone, count.unsigned_abs()),
            )
            .col_expr(
                imports::Column::RowsImported,
                add(imports::Column::RowsImported, outcome.imported),
            )
            .col_expr(
                imports::Column::RowsUpdated,
                add(imports::Column::RowsUpdated, outcome.updated),
            )
            .col_expr(
                imports::Column::RowsSkippedDuplicate,
                add(imports::Column::RowsSkippedDuplicate, outcome.skipped),
            )
            .col_expr(
                imports::Column::RowsFailed,
                add(imports::Column::RowsFailed, outcome.failed.len() as u64),
            )
            .col_expr(imports::Column::ClaimedUntil, Expr::value(now + LEASE))
            .col_expr(imports::Column::UpdatedAt, Expr::value(now))
            .filter(imports::Column::OrganizationId.eq(job.organization_id))
            .filter(imports::Column::Id.eq(job.id))
            .filter(imports::Column::NextChunk.eq(seq))
            .filter(imports::Column::Attempts.eq(attempts))
            .filter(imports::Column::Status.eq(Status::Running.as_str()))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        if progressed.rows_affected != 1 {
            txn.rollback().await.map_err(db_err)?;
            tracing::info!(import = %job.id, "another worker took this import over");
            return Ok(());
        }
        txn.commit().await.map_err(db_err)?;
    }
    finish(db, clock.now(), &job, Status::Completed, None).await
}

/// Ends a job: its status, its one `import.completed` event and an audit entry, together.
async fn finish(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    job: &imports::Model,
    status: Status,
    failure: Option<String>,
) -> Result<(), Error> {
    let org = OrgId::from_uuid(job.organization_id);
    let txn = begin_write(db).await.map_err(db_err)?;
    let ended = imports::Entity::update_many()
        .col_expr(imports::Column::Status, Expr::value(status.as_str()))
        .col_expr(imports::Column::Failure, Expr::value(failure.clone()))
        .col_expr(
            imports::Column::ClaimedUntil,
            Expr::value(None::<DateTime<Utc>>),
        )
        .col_expr(imports::Column::CompletedAt, Expr::value(now))
        .col_expr(imports::Column::UpdatedAt, Expr::value(now))
        .filter(imports::Column::OrganizationId.eq(job.organization_id))
        .filter(imports::Column::Id.eq(job.id))
        .filter(imports::Column::Status.eq(Status::Running.as_str()))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    if ended.rows_affected != 1 {
        txn.rollback().await.map_err(db_err)?;
        return Ok(());
    }
    let done = super::find(&txn, org, job.id).await?;
    let data = json!({
        "import_id": done.id,
        "kind": done.kind,
        "status": done.status,
        "total": done.total_rows,
        "rows_done": done.rows_done,
        "rows_imported": done.rows_imported,
        "rows_updated": done.rows_updated,
        "rows_skipped_duplicate": done.rows_skipped_duplicate,
        "rows_failed": done.rows_failed,
        "failure": done.failure,
    });
    crate::events::record(
        &txn,
        org,
        "import.completed",
        ("import", done.id),
        data.clone(),
        now,
    )
    .await
    .map_err(db_err)?;
    audit::Entry::new(org, actor_of(&done), "import.complete")
        .target("import", done.id)
        .details(data)
        .record(&txn, &ClientInfo::default(), now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    tracing::info!(import = %done.id, status = %done.status, imported = done.rows_imported, failed = done.rows_failed, "an import ended");
    Ok(())
}
