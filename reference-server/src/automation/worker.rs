//! The automation consumer of the event queue: runs the rules an event triggers.
//!
//! For each claimed event, in its organization's scope:
//!
//! 1. the enabled rules whose trigger matches are read; a rule that already has a run for
//!    the event is left alone (the event was handled before and claimed again);
//! 2. each is decided: `suppressed` when the event was caused by the rule itself or sits
//!    at depth [`MAX_DEPTH`], `skipped` when a condition is false, else run;
//! 3. WhatsApp sends (the only action with an effect outside the database) go first,
//!    each under the idempotency key `automation:{rule}:{event}:{index}`: a retried
//!    event replays the first send instead of sending and charging again;
//! 4. every other action, every run row and the queue completion are written in one
//!    transaction. A database error rolls it all back and the event is claimed again when
//!    its lease ends; an action that cannot be done (a deleted record, a member gone) is
//!    logged as failed in the run, and the other actions still run.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use edge_core::{Error, IdempotencyKey, OrgId, SharedClock};
use edge_tenancy::Role;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait as _, QueryFilter as _, QueryOrder as _,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{Action, Condition, MAX_DEPTH, Trigger};
use crate::db::{begin_write, db_err};
use crate::entities::{
    activities, automation_rules, automation_runs, deal_stage_moves, deals, pipeline_stages,
    prospects, relationships, tickets,
};
use crate::events::{Consumer, Event, claim, complete};
use crate::notifications::{self, Kind, NewNotification};
use crate::tenant_scope::in_organization;
use crate::whatsapp::WhatsApp;
use crate::whatsapp::send::{SendError, SendRequest, Sent, TemplateInput};

/// How long a server holds the events it claimed.
const LEASE: Duration = Duration::from_secs(120);
/// Events per pass.
const BATCH: u64 = 50;

/// Runs automation rules.
#[derive(Clone)]
pub struct Runner {
    db: DatabaseConnection,
    clock: SharedClock,
    whatsapp: WhatsApp,
}

/// A rule's decision for one event.
enum Decision {
    Suppressed(String),
    Skipped,
    Run,
}

/// One rule about to run for an event.
struct Planned {
    rule: automation_rules::Model,
    actions: Vec<Action>,
    run_id: Uuid,
    decision: Decision,
    /// Each action's outcome once done: `Ok(result)` or `Err(why)`.
    outcomes: Vec<Option<Result<Value, String>>>,
}

/// Why an action could not be done.
enum ActionError {
    /// It cannot be done (logged in the run).
    Failed(String),
    /// The database failed (the event is retried).
    Db(DbErr),
}

impl From<DbErr> for ActionError {
    fn from(err: DbErr) -> Self {
        ActionError::Db(err)
    }
}

fn failed(why: impl Into<String>) -> ActionError {
    ActionError::Failed(why.into())
}

/// The record an event is about: its kind and id.
type Subject = (String, Uuid);

const RECORD_KINDS: [&str; 4] = ["prospect", "relationship", "deal", "ticket"];

impl Runner {
    /// A runner over the server's database, clock and WhatsApp service.
    pub fn new(db: DatabaseConnection, clock: SharedClock, whatsapp: WhatsApp) -> Self {
        Self {
            db,
            clock,
            whatsapp,
        }
    }

    /// Handles queued events every `every`, forever.
    pub async fn work_forever(self, every: Duration) {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(err) = self.process_due().await {
                tracing::warn!(error = %err, "running automation rules failed");
            }
        }
    }

    /// Claims and handles one batch of events; returns how many were handled.
    pub async fn process_due(&self) -> Result<usize, DbErr> {
        let queued = claim(
            &self.db,
            Consumer::Automation,
            self.clock.now(),
            LEASE,
            BATCH,
        )
        .await?;
        let mut handled = 0;
        for item in queued {
            match in_organization(item.org, self.handle(item.org, &item.event)).await {
                Ok(()) => handled += 1,
                Err(err) => {
                    tracing::warn!(event = %item.event.id, kind = %item.event.kind, error = %err,
                        "automation failed on an event; it is retried when its lease ends");
                }
            }
        }
        Ok(handled)
    }

    async fn handle(&self, org: OrgId, event: &Event) -> Result<(), Error> {
        let now = self.clock.now();
        let mut planned = self.plan(org, event).await.map_err(db_err)?;
        let subject = subject_of(event);
        // External effects first, each idempotent.
        for plan in planned.iter_mut() {
            if !matches!(plan.decision, Decision::Run) {
                continue;
            }
            for (index, action) in plan.actions.iter().enumerate() {
                if let Action::SendWhatsappTemplate { .. } = action {
                    let outcome = self
                        .send_template(org, &plan.rule, event, index, action, subject.as_ref())
                        .await;
                    plan.outcomes[index] = Some(match outcome {
                        Ok(result) => Ok(result),
                        Err(ActionError::Failed(why)) => Err(why),
                        Err(ActionError::Db(err)) => return Err(db_err(err)),
                    });
                }
            }
        }
        let txn = begin_write(&self.db).await.map_err(db_err)?;
        for plan in planned {
            self.finish(&txn, org, event, subject.as_ref(), plan, now)
                .await?;
        }
        complete(&txn, org, Consumer::Automation, event.id)
            .await
            .map_err(db_err)?;
        txn.commit().await.map_err(db_err)
    }

    /// The rules the event triggers that have not run for it yet, with their decisions.
    async fn plan(&self, org: OrgId, event: &Event) -> Result<Vec<Planned>, DbErr> {
        let rules = automation_rules::Entity::find()
            .filter(automation_rules::Column::OrganizationId.eq(org.as_uuid()))
            .filter(automation_rules::Column::Enabled.eq(true))
            .order_by_asc(automation_rules::Column::Id)
            .all(&self.db)
            .await?;
        let rules: Vec<_> = rules
            .into_iter()
            .filter(|rule| {
                Trigger::parse(&rule.trigger).is_some_and(|t| t.matches(&event.kind, &event.data))
            })
            .collect();
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        let done: Vec<Uuid> = automation_runs::Entity::find()
            .filter(automation_runs::Column::OrganizationId.eq(org.as_uuid()))
            .filter(automation_runs::Column::EventId.eq(event.id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|run| run.rule_id)
            .collect();
        let depth = depth_of(&event.data);
        let caused_by = event.data["caused_by_rule"]
            .as_str()
            .and_then(|id| id.parse::<Uuid>().ok());
        let mut out = Vec::new();
        for rule in rules {
            if done.contains(&rule.id) {
                continue;
            }
            let conditions: Vec<Condition> =
                serde_json::from_value(rule.conditions.clone()).unwrap_or_default();
            let actions: Vec<Action> =
                serde_json::from_value(rule.actions.clone()).unwrap_or_default();
            let decision = if caused_by == Some(rule.id) {
                Decision::Suppressed("the event was caused by this rule's own action".into())
            } else if depth >= MAX_DEPTH {
                Decision::Suppressed(format!(
                    "the event is at depth {depth} of a chain of rules; chains stop at {MAX_DEPTH}"
                ))
            } else if conditions.iter().all(|c| c.holds(&event.data)) {
                Decision::Run
            } else {
                Decision::Skipped
            };
            out.push(Planned {
                outcomes: vec![None; actions.len()],
                rule,
                actions,
                run_id: Uuid::now_v7(),
                decision,
            });
        }
        Ok(out)
    }

    /// Does a planned rule's database actions and logs its run, in `txn`.
    async fn finish(
        &self,
        txn: &DatabaseTransaction,
        org: OrgId,
        event: &Event,
        subject: Option<&Subject>,
        mut plan: Planned,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let depth = depth_of(&event.data);
        let cause = Cause {
            rule: plan.rule.id,
            run: plan.run_id,
            depth: depth + 1,
        };
        let (status, error) = match &plan.decision {
            Decision::Suppressed(why) => ("suppressed", Some(why.clone())),
            Decision::Skipped => ("skipped", None),
            Decision::Run => {
                for (index, action) in plan.actions.iter().enumerate() {
                    if plan.outcomes[index].is_some() {
                        continue;
                    }
                    let outcome = match self
                        .apply(txn, org, event, subject, action, &cause, now)
                        .await
                    {
                        Ok(result) => Ok(result),
                        Err(ActionError::Failed(why)) => Err(why),
                        Err(ActionError::Db(err)) => return Err(db_err(err)),
                    };
                    plan.outcomes[index] = Some(outcome);
                }
                let failures = plan
                    .outcomes
                    .iter()
                    .filter(|o| matches!(o, Some(Err(_))))
                    .count();
                if failures == 0 {
                    ("succeeded", None)
                } else {
                    (
                        "failed",
                        Some(format!(
                            "{failures} of {} actions failed",
                            plan.actions.len()
                        )),
                    )
                }
            }
        };
        let results: Vec<Value> = plan
            .actions
            .iter()
            .zip(plan.outcomes)
            .enumerate()
            .map(|(index, (action, outcome))| match outcome {
                Some(Ok(result)) => json!({"index": index, "type": action.type_name(),
                    "status": "succeeded", "result": result}),
                Some(Err(why)) => json!({"index": index, "type": action.type_name(),
                    "status": "failed", "error": why}),
                None => json!({"index": index, "type": action.type_name(), "status": "not_run"}),
            })
            .collect();
        automation_runs::Entity::insert(automation_runs::ActiveModel {
            organization_id: Set(org.as_uuid()),
            id: Set(plan.run_id),
            rule_id: Set(plan.rule.id),
            event_id: Set(event.id),
            trigger: Set(plan.rule.trigger.clone()),
            status: Set(status.to_owned()),
            depth: Set(i32::try_from(depth).unwrap_or(i32::MAX)),
            results: Set(Value::Array(results)),
            error: Set(error),
            created_at: Set(now),
        })
        .exec_without_returning(txn)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Sends a rule's template to the contact of the event's record.
    async fn send_template(
        &self,
        org: OrgId,
        rule: &automation_rules::Model,
        event: &Event,
        index: usize,
        action: &Action,
        subject: Option<&Subject>,
    ) -> Result<Value, ActionError> {
        let Action::SendWhatsappTemplate {
            name,
            language,
            category,
            parameters,
        } = action
        else {
            return Err(failed("not a WhatsApp template"));
        };
        let contact = self.contact_of(org, event, subject).await?;
        let key = IdempotencyKey::new(format!("automation:{}:{}:{index}", rule.id, event.id))
            .map_err(|e| failed(e.to_string()))?;
        let request = SendRequest {
            contact_id: Some(contact),
            template: Some(TemplateInput {
                name: Some(name.clone()),
                language: Some(language.clone()),
                category: Some(category.clone()),
                parameters: parameters.clone(),
            }),
            ..SendRequest::default()
        };
        let (view, replayed) = match self.whatsapp.send(org, None, Some(key), request).await {
            Ok(Sent::Accepted(view) | Sent::Queued(view)) => (view, false),
            Ok(Sent::Replayed(view)) => (view, true),
            Err(SendError::Refused(err)) => return Err(failed(describe(&err))),
            Err(SendError::TemplateRequired(why)) => return Err(failed(why)),
            Err(SendError::Rejected { message, error }) => {
                return Err(failed(format!(
                    "WhatsApp refused message {}: {error}",
                    message.id
                )));
            }
        };
        let view = serde_json::to_value(&view).unwrap_or(Value::Null);
        Ok(json!({
            "message_id": view["id"],
            "status": view["status"],
            "contact_id": contact,
            "replayed": replayed,
        }))
    }

    /// The CRM contact (prospect or relationship) of the event's record.
    async fn contact_of(
        &self,
        org: OrgId,
        event: &Event,
        subject: Option<&Subject>,
    ) -> Result<Uuid, ActionError> {
        let Some((kind, id)) = subject else {
            return Err(failed(format!(
                "a {} event is about no record with a contact",
                event.kind
            )));
        };
        let contact = match kind.as_str() {
            "prospect" | "relationship" => Some(*id),
            "deal" => deals::Entity::find_by_id((org.as_uuid(), *id))
                .one(&self.db)
                .await?
                .and_then(|deal| deal.relationship_id.or(deal.prospect_id)),
            "ticket" => tickets::Entity::find_by_id((org.as_uuid(), *id))
                .one(&self.db)
                .await?
                .map(|ticket| ticket.relationship_id),
            _ => None,
        };
        contact.ok_or_else(|| failed(format!("the {kind} has no contact to write to")))
    }

    /// Does one database action in `txn`.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        org: OrgId,
        event: &Event,
        subject: Option<&Subject>,
        action: &Action,
        cause: &Cause,
        now: DateTime<Utc>,
    ) -> Result<Value, ActionError> {
        match action {
            Action::CreateTask {
                title,
                due_in_hours,
                assignee_id,
            } => {
                let (kind, id) = subject
                    .ok_or_else(|| failed("the event is about no record to put a task on"))?;
                let owner = record_owner(txn, org, kind, *id)
                    .await?
                    .ok_or_else(|| failed(format!("the {kind} no longer exists")))?;
                let assignee = match assignee_id {
                    Some(user) => Some(active_member(txn, org, *user).await?),
                    None => owner,
                };
                let task = Uuid::now_v7();
                activities::Entity::insert(activities::ActiveModel {
                    organization_id: Set(org.as_uuid()),
                    id: Set(task),
                    kind: Set("task".into()),
                    subject_type: Set(kind.clone()),
                    subject_id: Set(*id),
                    title: Set(title.clone()),
                    body: Set(Some(format!(
                        "Created by automation rule {} (run {}).",
                        cause.rule, cause.run
                    ))),
                    due_at: Set(due_in_hours.map(|h| now + TimeDelta::hours(i64::from(h)))),
                    completed_at: Set(None),
                    owner_id: Set(assignee),
                    created_by: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                    deleted_at: Set(None),
                })
                .exec_without_returning(txn)
                .await?;
                Ok(json!({"activity_id": task, "owner_id": assignee}))
            }
            Action::AssignOwner { user_id } => {
                let (kind, id) =
                    subject.ok_or_else(|| failed("the event is about no record to assign"))?;
                let user = active_member(txn, org, *user_id).await?;
                let previous = record_owner(txn, org, kind, *id)
                    .await?
                    .ok_or_else(|| failed(format!("the {kind} no longer exists")))?;
                let field = match kind.as_str() {
                    "prospect" | "deal" => "owner_id",
                    "relationship" => "account_manager_id",
                    "ticket" => "assignee_id",
                    other => return Err(failed(format!("a {other} has no owner"))),
                };
                if previous == Some(user) {
                    return Ok(json!({"unchanged": true, field: user}));
                }
                let rows = match kind.as_str() {
                    "prospect" => {
                        prospects::Entity::update_many()
                            .col_expr(prospects::Column::OwnerId, Expr::value(user))
                            .col_expr(prospects::Column::UpdatedAt, Expr::value(now))
                            .filter(prospects::Column::OrganizationId.eq(org.as_uuid()))
                            .filter(prospects::Column::Id.eq(*id))
                            .exec(txn)
                            .await?
                    }
                    "deal" => {
                        deals::Entity::update_many()
                            .col_expr(deals::Column::OwnerId, Expr::value(user))
                            .col_expr(deals::Column::UpdatedAt, Expr::value(now))
                            .filter(deals::Column::OrganizationId.eq(org.as_uuid()))
                            .filter(deals::Column::Id.eq(*id))
                            .exec(txn)
                            .await?
                    }
                    "relationship" => {
                        relationships::Entity::update_many()
                            .col_expr(relationships::Column::AccountManagerId, Expr::value(user))
                            .col_expr(relationships::Column::UpdatedAt, Expr::value(now))
                            .filter(relationships::Column::OrganizationId.eq(org.as_uuid()))
                            .filter(relationships::Column::Id.eq(*id))
                            .exec(txn)
                            .await?
                    }
                    _ => {
                        tickets::Entity::update_many()
                            .col_expr(tickets::Column::AssigneeId, Expr::value(user))
                            .col_expr(tickets::Column::UpdatedAt, Expr::value(now))
                            .filter(tickets::Column::OrganizationId.eq(org.as_uuid()))
                            .filter(tickets::Column::Id.eq(*id))
                            .exec(txn)
                            .await?
                    }
                };
                if rows.rows_affected != 1 {
                    return Err(failed(format!("the {kind} no longer exists")));
                }
                let changed = if field == "owner_id" {
                    json!(["owner_id"])
                } else {
                    json!([field, "owner_id"])
                };
                let mut data = json!({
                    "record": {"id": id, field: user},
                    "changed": changed,
                    "previous": {field: previous},
                    "owner_id": user,
                    "previous_owner_id": previous,
                    "actor_id": null,
                });
                cause.mark(&mut data);
                crate::events::record(txn, org, &format!("{kind}.updated"), (kind, *id), data, now)
                    .await?;
                Ok(json!({field: user, "previous": previous}))
            }
            Action::SendWhatsappTemplate { .. } => {
                Err(failed("a WhatsApp send is made before the transaction"))
            }
            Action::NotifyUsers {
                user_ids,
                role,
                title,
                body,
            } => {
                let mut users = Vec::new();
                for user in user_ids {
                    if notifications::active_role(txn, org, *user).await?.is_some()
                        && !users.contains(user)
                    {
                        users.push(*user);
                    }
                }
                if let Some(role) = role.as_deref().and_then(|r| r.parse::<Role>().ok()) {
                    for user in notifications::members_where(txn, org, |r| r == role).await? {
                        if !users.contains(&user) {
                            users.push(user);
                        }
                    }
                }
                if users.is_empty() {
                    return Err(failed("no active member to notify"));
                }
                let mut ids = Vec::new();
                for user in &users {
                    let view = notifications::create(
                        txn,
                        org,
                        NewNotification {
                            user_id: *user,
                            kind: Kind::Automation,
                            title: title.clone(),
                            body: body.clone(),
                            subject: subject.cloned(),
                            data: json!({
                                "rule_id": cause.rule,
                                "run_id": cause.run,
                                "event_id": event.id,
                                "event": event.kind,
                            }),
                        },
                        now,
                    )
                    .await?;
                    ids.push(view.id);
                }
                Ok(json!({"notified": users, "notification_ids": ids}))
            }
            Action::CallWebhook { endpoint_id } => {
                let mut data = json!({
                    "endpoint_id": endpoint_id,
                    "rule_id": cause.rule,
                    "run_id": cause.run,
                    "trigger": event,
                });
                cause.mark(&mut data);
                let id = crate::events::record(
                    txn,
                    org,
                    "automation.webhook",
                    ("automation_run", cause.run),
                    data,
                    now,
                )
                .await?;
                Ok(json!({"event_id": id, "endpoint_id": endpoint_id}))
            }
            Action::MoveDeal { stage_id } => {
                let Some(("deal", deal_id)) = subject.map(|(k, id)| (k.as_str(), *id)) else {
                    return Err(failed("the event is about no deal to move"));
                };
                move_deal(txn, org, deal_id, *stage_id, cause, now).await
            }
        }
    }
}

/// What an action's writes carry: the rule and run that made them and their depth.
struct Cause {
    rule: Uuid,
    run: Uuid,
    depth: i64,
}

impl Cause {
    /// Adds `caused_by_rule`, `caused_by_run` and `depth` to an event's data.
    fn mark(&self, data: &mut Value) {
        if let Value::Object(map) = data {
            map.insert("caused_by_rule".into(), json!(self.rule));
            map.insert("caused_by_run".into(), json!(self.run));
            map.insert("depth".into(), json!(self.depth));
        } else {
            let mut map = Map::new();
            map.insert("caused_by_rule".into(), json!(self.rule));
            *data = Value::Object(map);
        }
    }
}

/// How many rule actions led to an event (0 when a person or the system caused it).
fn depth_of(data: &Value) -> i64 {
    data["depth"].as_i64().unwrap_or(0).max(0)
}

/// The record an event is about: its subject when that is a CRM record, or for an inbound
/// WhatsApp message its contact.
fn subject_of(event: &Event) -> Option<Subject> {
    if RECORD_KINDS.contains(&event.subject_type.as_str()) {
        return Some((event.subject_type.clone(), event.subject_id));
    }
    let contact = &event.data["contact"];
    let kind = contact["type"].as_str()?;
    let id = contact["id"].as_str()?.parse().ok()?;
    RECORD_KINDS.contains(&kind).then(|| (kind.to_owned(), id))
}

/// A user who must be an active member.
async fn active_member(
    txn: &DatabaseTransaction,
    org: OrgId,
    user: Uuid,
) -> Result<Uuid, ActionError> {
    match notifications::active_role(txn, org, user).await? {
        Some(_) => Ok(user),
        None => Err(failed(format!(
            "{user} is no longer an active member of the organization"
        ))),
    }
}

/// A live record's owner (a relationship's account manager, a ticket's assignee): `None`
/// when the record does not exist or was deleted.
async fn record_owner(
    txn: &DatabaseTransaction,
    org: OrgId,
    kind: &str,
    id: Uuid,
) -> Result<Option<Option<Uuid>>, DbErr> {
    let key = (org.as_uuid(), id);
    Ok(match kind {
        "prospect" => prospects::Entity::find_by_id(key)
            .one(txn)
            .await?
            .filter(|r| r.deleted_at.is_none())
            .map(|r| r.owner_id),
        "deal" => deals::Entity::find_by_id(key)
            .one(txn)
            .await?
            .filter(|r| r.deleted_at.is_none())
            .map(|r| r.owner_id),
        "ticket" => tickets::Entity::find_by_id(key)
            .one(txn)
            .await?
            .filter(|r| r.deleted_at.is_none())
            .map(|r| r.assignee_id),
        "relationship" => relationships::Entity::find_by_id(key)
            .one(txn)
            .await?
            .filter(|r| r.deleted_at.is_none())
            .map(|r| r.account_manager_id),
        _ => None,
    })
}

/// Moves an open deal to the end of a stage's column, recording the move and a
/// `deal.stage_changed` event that carries the cause.
async fn move_deal(
    txn: &DatabaseTransaction,
    org: OrgId,
    deal_id: Uuid,
    stage_id: Uuid,
    cause: &Cause,
    now: DateTime<Utc>,
) -> Result<Value, ActionError> {
    let deal = deals::Entity::find_by_id((org.as_uuid(), deal_id))
        .one(txn)
        .await?
        .filter(|d| d.deleted_at.is_none())
        .ok_or_else(|| failed("the deal no longer exists"))?;
    if deal.status != "open" {
        return Err(failed(format!("the deal is {}", deal.status)));
    }
    let stage = pipeline_stages::Entity::find_by_id((org.as_uuid(), stage_id))
        .one(txn)
        .await?
        .filter(|s| s.archived_at.is_none())
        .ok_or_else(|| failed("the stage no longer exists or is archived"))?;
    if deal.stage_id == stage.id {
        return Ok(json!({"unchanged": true, "stage_id": stage.id}));
    }
    let last = deals::Entity::find()
        .filter(deals::Column::OrganizationId.eq(org.as_uuid()))
        .filter(deals::Column::StageId.eq(stage.id))
        .filter(deals::Column::DeletedAt.is_null())
        .order_by_desc(deals::Column::BoardRank)
        .one(txn)
        .await?
        .map(|d| d.board_rank)
        .unwrap_or(0);
    let rank = last.saturating_add(crate::crm::deals::RANK_GAP);
    deals::Entity::update_many()
        .col_expr(deals::Column::StageId, Expr::value(stage.id))
        .col_expr(deals::Column::PipelineId, Expr::value(stage.pipeline_id))
        .col_expr(deals::Column::BoardRank, Expr::value(rank))
        .col_expr(deals::Column::UpdatedAt, Expr::value(now))
        .filter(deals::Column::OrganizationId.eq(org.as_uuid()))
        .filter(deals::Column::Id.eq(deal.id))
        .exec(txn)
        .await?;
    deal_stage_moves::Entity::insert(deal_stage_moves::ActiveModel {
        organization_id: Set(org.as_uuid()),
        id: Set(Uuid::now_v7()),
        deal_id: Set(deal.id),
        from_stage_id: Set(Some(deal.stage_id)),
        to_stage_id: Set(stage.id),
        moved_by: Set(None),
        moved_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    let mut data = json!({
        "deal_id": deal.id,
        "from_stage_id": deal.stage_id,
        "to_stage_id": stage.id,
        "moved_by": null,
    });
    cause.mark(&mut data);
    crate::events::record(txn, org, "deal.stage_changed", ("deal", deal.id), data, now).await?;
    Ok(json!({"from_stage_id": deal.stage_id, "to_stage_id": stage.id}))
}

/// An error as a run shows it: the message of a client-facing error, never an internal
/// cause.
fn describe(err: &Error) -> String {
    match err {
        Error::Internal(cause) => {
            tracing::error!(error = %cause, "an automation action failed internally");
            "an internal error occurred; it has been logged".into()
        }
        Error::Validation(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}
