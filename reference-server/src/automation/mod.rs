//! Automation rules: "when this happens (and these conditions hold), do that".
//!
//! - A rule has a **trigger**: `deal.stage_changed`; `record.created` (a prospect,
//!   relationship, deal or ticket was created); `payment.succeeded` (a payment's status
//!   became `succeeded`); `whatsapp.inbound` (a WhatsApp message was received);
//!   `ticket.overdue` (see [`overdue`]).
//! - **Conditions** (all must hold): `{"field", "op", "value"}` where `field` is a dotted
//!   path into the event's data (`to_stage_id`, `record.status`, `contact.type`) and `op`
//!   is `eq`, `ne`, `in` (value is an array), `gt`, `lt` (numbers, or strings such as
//!   amounts and times compared as numbers when both parse, else as text), `contains`
//!   (text contains text, or an array contains the value) or `exists` (no value).
//! - **Actions**, in order: `create_task` (a task activity on the event's record),
//!   `assign_owner` (the record's owner: a relationship's account manager, a ticket's
//!   assignee; recorded as `{kind}.updated` with `owner_id` among `changed`, the record
//!   in its data being only its id and owner field), `send_whatsapp_template`
//!   (to the record's contact), `notify_users` (members by id and/or role), `call_webhook`
//!   (records `automation.webhook` for one endpoint) and `move_deal` (to a stage).
//! - Every time a rule's trigger matches an event a **run** is logged: `succeeded`,
//!   `failed` (an action failed; each action's result or error is kept), `skipped` (the
//!   conditions were false) or `suppressed` (a loop, see below). A rule runs once per event.
//! - **Loops**: what an action records carries the run's causation in its data
//!   (`caused_by_rule`, `caused_by_run`, `depth`). A rule never runs on an event its own
//!   action caused, and a chain of rules stops at depth [`MAX_DEPTH`]: both are logged as
//!   `suppressed`.
//! - Managing rules needs `org_update`; reading rules and runs needs `crm_read`.
//!
//! [`worker`] runs the rules; the WhatsApp send is idempotent per (rule, event, action
//! index), so a run retried after a crash never charges twice.

pub mod overdue;
pub mod worker;

use chrono::{DateTime, Utc};
use edge_core::{Error, FieldError, OrgId, Page, PageRequest};
use edge_tenancy::{Permission, TenantContext};
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, ConnectionTrait, DatabaseConnection, EntityTrait as _,
    QueryFilter as _, QueryOrder as _, QuerySelect as _,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::audit::{self, Actor, ClientInfo};
use crate::db::{begin_write, db_err};
use crate::entities::{automation_rules, automation_runs, pipeline_stages};

/// The longest chain of rules: an event at this depth (caused by this many rule actions
/// in a row) runs no rule.
pub const MAX_DEPTH: i64 = 3;
/// The most conditions of a rule.
pub const MAX_CONDITIONS: usize = 20;
/// The most actions of a rule.
pub const MAX_ACTIONS: usize = 10;
/// The longest rule name, task title or notification title, in characters.
pub const MAX_NAME_LEN: usize = 200;

/// What starts a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `deal.stage_changed`.
    DealStageChanged,
    /// `prospect.created`, `relationship.created`, `deal.created`, `ticket.created`.
    RecordCreated,
    /// `payment.status_changed` to `succeeded`.
    PaymentSucceeded,
    /// `whatsapp.message.received`.
    WhatsAppInbound,
    /// `ticket.overdue`.
    TicketOverdue,
}

impl Trigger {
    /// Every trigger.
    pub const ALL: [Trigger; 5] = [
        Trigger::DealStageChanged,
        Trigger::RecordCreated,
        Trigger::PaymentSucceeded,
        Trigger::WhatsAppInbound,
        Trigger::TicketOverdue,
    ];

    /// The name clients use.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::DealStageChanged => "deal.stage_changed",
            Trigger::RecordCreated => "record.created",
            Trigger::PaymentSucceeded => "payment.succeeded",
            Trigger::WhatsAppInbound => "whatsapp.inbound",
            Trigger::TicketOverdue => "ticket.overdue",
        }
    }

    /// The trigger named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether an event of `kind` with `data` starts rules with this trigger.
    pub fn matches(self, kind: &str, data: &Value) -> bool {
        match self {
            Trigger::DealStageChanged => kind == "deal.stage_changed",
            Trigger::RecordCreated => matches!(
                kind,
                "prospect.created" | "relationship.created" | "deal.created" | "ticket.created"
            ),
            Trigger::PaymentSucceeded => {
                kind == "payment.status_changed" && data["status"] == "succeeded"
            }
            Trigger::WhatsAppInbound => kind == "whatsapp.message.received",
            Trigger::TicketOverdue => kind == "ticket.overdue",
        }
    }
}

/// How a condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal (also when the field is absent).
    Ne,
    /// One of the values.
    In,
    /// Greater than.
    Gt,
    /// Less than.
    Lt,
    /// Text contains text, or an array contains the value.
    Contains,
    /// The field is present and not null.
    Exists,
}

impl Op {
    const NAMES: [&'static str; 7] = ["eq", "ne", "in", "gt", "lt", "contains", "exists"];
}

/// A condition on the event's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// A dotted path into the event's data.
    pub field: String,
    /// The comparison.
    pub op: Op,
    /// What to compare with (none for `exists`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl Condition {
    /// Whether the condition holds for `data`.
    pub fn holds(&self, data: &Value) -> bool {
        let found = lookup(data, &self.field).filter(|v| !v.is_null());
        let value = self.value.as_ref().unwrap_or(&Value::Null);
        match self.op {
            Op::Exists => found.is_some(),
            Op::Eq => found.is_some_and(|f| same(f, value)),
            Op::Ne => !found.is_some_and(|f| same(f, value)),
            Op::In => found.is_some_and(|f| {
                value
                    .as_array()
                    .is_some_and(|all| all.iter().any(|v| same(f, v)))
            }),
            Op::Gt => found.is_some_and(|f| compare(f, value) == Some(std::cmp::Ordering::Greater)),
            Op::Lt => found.is_some_and(|f| compare(f, value) == Some(std::cmp::Ordering::Less)),
            Op::Contains => found.is_some_and(|f| match (f, value) {
                (Value::String(text), Value::String(part)) => {
                    text.to_lowercase().contains(&part.to_lowercase())
                }
                (Value::Array(items), v) => items.iter().any(|item| same(item, v)),
                _ => false,
            }),
        }
    }
}

/// The value at a dotted path (`a.b.0.c`).
fn lookup<'a>(data: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(data, |at, key| match at {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Equal, with numbers written as text (amounts) equal to the same number.
fn same(a: &Value, b: &Value) -> bool {
    a == b || matches!((number(a), number(b)), (Some(x), Some(y)) if x == y)
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => Some(x.cmp(y)),
            _ => None,
        },
    }
}

/// Something a rule does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// A task activity on the event's record, due in `due_in_hours`, assigned to
    /// `assignee_id` or else to the record's owner.
    CreateTask {
        /// Its title.
        title: String,
        /// Due this many hours after the event was handled.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_in_hours: Option<u32>,
        /// Who it is for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee_id: Option<Uuid>,
    },
    /// Gives the event's record to a member: a prospect's or deal's owner, a
    /// relationship's account manager, a ticket's assignee.
    AssignOwner {
        /// The member.
        user_id: Uuid,
    },
    /// Sends an approved template to the record's contact, charged to the wallet.
    SendWhatsappTemplate {
        /// The template's name.
        name: String,
        /// Its language code.
        language: String,
        /// `marketing`, `utility` or `authentication`.
        category: String,
        /// The body's parameters.
        #[serde(default)]
        parameters: Vec<String>,
    },
    /// Notifies members: these ids and/or every active member with this role.
    NotifyUsers {
        /// Members.
        #[serde(default)]
        user_ids: Vec<Uuid>,
        /// A role (`org_admin`, `manager`, `user`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// The notification's title.
        title: String,
        /// Its body.
        #[serde(default)]
        body: String,
    },
    /// Records `automation.webhook` for this endpoint (the webhooks service delivers it
    /// to that endpoint only).
    CallWebhook {
        /// The endpoint.
        endpoint_id: Uuid,
    },
    /// Moves the event's deal to a stage (to the end of its column).
    MoveDeal {
        /// The stage.
        stage_id: Uuid,
    },
}

impl Action {
    /// The action's type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Action::CreateTask { .. } => "create_task",
            Action::AssignOwner { .. } => "assign_owner",
            Action::SendWhatsappTemplate { .. } => "send_whatsapp_template",
            Action::NotifyUsers { .. } => "notify_users",
            Action::CallWebhook { .. } => "call_webhook",
            Action::MoveDeal { .. } => "move_deal",
        }
    }
}

const ACTION_TYPES: [&str; 6] = [
    "create_task",
    "assign_owner",
    "send_whatsapp_template",
    "notify_users",
    "call_webhook",
    "move_deal",
];
const CATEGORIES: [&str; 3] = ["marketing", "utility", "authentication"];
const ROLES: [&str; 3] = ["org_admin", "manager", "user"];

/// A rule as clients send it (`POST` needs `name`, `trigger` and `actions`; `PATCH` takes
/// any of them).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether it runs (default `true`).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Its trigger.
    #[serde(default)]
    pub trigger: Option<String>,
    /// Its conditions.
    #[serde(default)]
    pub conditions: Option<Value>,
    /// Its actions.
    #[serde(default)]
    pub actions: Option<Value>,
}

/// A rule as the API returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Whether it runs.
    pub enabled: bool,
    /// Trigger.
    pub trigger: String,
    /// Conditions.
    pub conditions: Value,
    /// Actions.
    pub actions: Value,
    /// Who created it.
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<automation_rules::Model> for RuleView {
    fn from(row: automation_rules::Model) -> Self {
        Self {
            id: row.id,
            name: row.name,
            enabled: row.enabled,
            trigger: row.trigger,
            conditions: row.conditions,
            actions: row.actions,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A run as the API returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunView {
    /// Id.
    pub id: Uuid,
    /// The rule.
    pub rule_id: Uuid,
    /// The triggering event.
    pub event_id: Uuid,
    /// The rule's trigger.
    pub trigger: String,
    /// `succeeded`, `failed`, `skipped` or `suppressed`.
    pub status: String,
    /// The causation depth of the triggering event.
    pub depth: i32,
    /// Each action's result: `{"index", "type", "status": "succeeded"|"failed", "result"
    /// or "error"}`.
    pub results: Value,
    /// Why it failed or was suppressed.
    pub error: Option<String>,
    /// When it ran.
    pub created_at: DateTime<Utc>,
}

impl From<automation_runs::Model> for RunView {
    fn from(row: automation_runs::Model) -> Self {
        Self {
            id: row.id,
            rule_id: row.rule_id,
            event_id: row.event_id,
            trigger: row.trigger,
            status: row.status,
            depth: row.depth,
            results: row.results,
            error: row.error,
            created_at: row.created_at,
        }
    }
}

/// A rule, checked.
struct Checked {
    name: Option<String>,
    trigger: Option<Trigger>,
    conditions: Option<Vec<Condition>>,
    actions: Option<Vec<Action>>,
}

/// Checks every field given, naming each bad one; `creating` requires name, trigger and
/// actions.
async fn check<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    input: &RuleInput,
    creating: bool,
) -> Result<Checked, Error> {
    let mut problems = Vec::new();
    let name = match &input.name {
        Some(name) if name.trim().is_empty() => {
            problems.push(FieldError::new("name", "must not be empty"));
            None
        }
        Some(name) if name.chars().count() > MAX_NAME_LEN => {
            problems.push(FieldError::new(
                "name",
                format!("must be at most {MAX_NAME_LEN} characters"),
            ));
            None
        }
        Some(name) => Some(name.trim().to_owned()),
        None => {
            if creating {
                problems.push(FieldError::new("name", "is required"));
            }
            None
        }
    };
    let trigger = match &input.trigger {
        Some(text) => {
            let trigger = Trigger::parse(text);
            if trigger.is_none() {
                let names: Vec<&str> = Trigger::ALL.iter().map(|t| t.as_str()).collect();
                problems.push(FieldError::new(
                    "trigger",
                    format!("must be one of {}", names.join(", ")),
                ));
            }
            trigger
        }
        None => {
            if creating {
                problems.push(FieldError::new("trigger", "is required"));
            }
            None
        }
    };
    let conditions = match &input.conditions {
        Some(value) => Some(check_conditions(value, &mut problems)),
        None => creating.then(Vec::new),
    };
    let actions = match &input.actions {
        Some(value) => Some(check_actions(conn, org, value, &mut problems).await?),
        None => {
            if creating {
                problems.push(FieldError::new("actions", "is required"));
            }
            None
        }
    };
    if problems.is_empty() {
        Ok(Checked {
            name,
            trigger,
            conditions,
            actions,
        })
    } else {
        Err(Error::Validation(problems))
    }
}

fn check_conditions(value: &Value, problems: &mut Vec<FieldError>) -> Vec<Condition> {
    let Some(items) = value.as_array() else {
        problems.push(FieldError::new("conditions", "must be an array"));
        return Vec::new();
    };
    if items.len() > MAX_CONDITIONS {
        problems.push(FieldError::new(
            "conditions",
            format!("must have at most {MAX_CONDITIONS} conditions"),
        ));
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |f: &str| format!("conditions[{i}].{f}");
        let Some(object) = item.as_object() else {
            problems.push(FieldError::new(
                format!("conditions[{i}]"),
                "must be an object",
            ));
            continue;
        };
        let field = match object.get("field").and_then(Value::as_str) {
            Some(f)
                if !f.is_empty() && f.len() <= 200 && f.split('.').all(|part| !part.is_empty()) =>
            {
                Some(f.to_owned())
            }
            _ => {
                problems.push(FieldError::new(
                    at("field"),
                    "must be a dotted path into the event's data, such as to_stage_id",
                ));
                None
            }
        };
        let op = match object.get("op").and_then(Value::as_str) {
            Some(op) if Op::NAMES.contains(&op) => {
                serde_json::from_value::<Op>(Value::String(op.to_owned())).ok()
            }
            _ => {
                problems.push(FieldError::new(
                    at("op"),
                    format!("must be one of {}", Op::NAMES.join(", ")),
                ));
                None
            }
        };
        let value = object.get("value").cloned().filter(|v| !v.is_null());
        let value_ok = match (op, &value) {
            (Some(Op::Exists), None) => true,
            (Some(Op::Exists), Some(_)) => {
                problems.push(FieldError::new(at("value"), "must be absent for exists"));
                false
            }
            (Some(Op::In), Some(Value::Array(_))) => true,
            (Some(Op::In), _) => {
                problems.push(FieldError::new(at("value"), "must be an array for in"));
                false
            }
            (Some(Op::Gt | Op::Lt), Some(v)) if number(v).is_some() || v.is_string() => true,
            (Some(Op::Gt | Op::Lt), _) => {
                problems.push(FieldError::new(
                    at("value"),
                    "must be a number (or text) for gt and lt",
                ));
                false
            }
            (Some(_), Some(_)) => true,
            (Some(_), None) => {
                problems.push(FieldError::new(at("value"), "is required"));
                false
            }
            (None, _) => false,
        };
        for key in object.keys() {
            if !["field", "op", "value"].contains(&key.as_str()) {
                problems.push(FieldError::new(at(key), "is not a condition field"));
            }
        }
        if let (Some(field), Some(op), true) = (field, op, value_ok) {
            out.push(Condition { field, op, value });
        }
    }
    out
}

/// Reads a required text field of an action.
fn text_field(
    object: &Map<String, Value>,
    key: &str,
    at: &dyn Fn(&str) -> String,
    max: usize,
    problems: &mut Vec<FieldError>,
) -> Option<String> {
    match object.get(key).and_then(Value::as_str).map(str::trim) {
        Some(text) if !text.is_empty() && text.chars().count() <= max => Some(text.to_owned()),
        Some(text) if !text.is_empty() => {
            problems.push(FieldError::new(
                at(key),
                format!("must be at most {max} characters"),
            ));
            None
        }
        _ => {
            problems.push(FieldError::new(at(key), "is required"));
            None
        }
    }
}

/// Reads an id field of an action (`required` or optional).
fn id_field(
    object: &Map<String, Value>,
    key: &str,
    at: &dyn Fn(&str) -> String,
    required: bool,
    problems: &mut Vec<FieldError>,
) -> Option<Uuid> {
    match object.get(key).filter(|v| !v.is_null()) {
        Some(Value::String(text)) => match text.parse() {
            Ok(id) => Some(id),
            Err(_) => {
                problems.push(FieldError::new(at(key), "must be an id"));
                None
            }
        },
        Some(_) => {
            problems.push(FieldError::new(at(key), "must be an id"));
            None
        }
        None => {
            if required {
                problems.push(FieldError::new(at(key), "is required"));
            }
            None
        }
    }
}

async fn check_actions<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    value: &Value,
    problems: &mut Vec<FieldError>,
) -> Result<Vec<Action>, Error> {
    let Some(items) = value.as_array() else {
        problems.push(FieldError::new("actions", "must be an array"));
        return Ok(Vec::new());
    };
    if items.is_empty() || items.len() > MAX_ACTIONS {
        problems.push(FieldError::new(
            "actions",
            format!("must have 1 to {MAX_ACTIONS} actions"),
        ));
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = move |f: &str| format!("actions[{i}].{f}");
        let Some(object) = item.as_object() else {
            problems.push(FieldError::new(
                format!("actions[{i}]"),
                "must be an object",
            ));
            continue;
        };
        let kind = object.get("type").and_then(Value::as_str).unwrap_or("");
        if !ACTION_TYPES.contains(&kind) {
            problems.push(FieldError::new(
                at("type"),
                format!("must be one of {}", ACTION_TYPES.join(", ")),
            ));
            continue;
        }
        let before = problems.len();
        let allowed: &[&str] = match kind {
            "create_task" => &["type", "title", "due_in_hours", "assignee_id"],
            "assign_owner" => &["type", "user_id"],
            "send_whatsapp_template" => &["type", "name", "language", "category", "parameters"],
            "notify_users" => &["type", "user_ids", "role", "title", "body"],
            "call_webhook" => &["type", "endpoint_id"],
            _ => &["type", "stage_id"],
        };
        for key in object.keys() {
            if !allowed.contains(&key.as_str()) {
                problems.push(FieldError::new(at(key), "is not a field of this action"));
            }
        }
        let action = match kind {
            "create_task" => {
                let title = text_field(object, "title", &at, MAX_NAME_LEN, problems);
                let due_in_hours = match object.get("due_in_hours").filter(|v| !v.is_null()) {
                    Some(v) => match v.as_u64().filter(|h| *h <= 24 * 366) {
                        Some(h) => u32::try_from(h).ok(),
                        None => {
                            problems.push(FieldError::new(
                                at("due_in_hours"),
                                "must be a whole number of hours from 0 to 8784",
                            ));
                            None
                        }
                    },
                    None => None,
                };
                let assignee_id = id_field(object, "assignee_id", &at, false, problems);
                if let Some(user) = assignee_id {
                    member_check(conn, org, user, &at("assignee_id"), problems).await?;
                }
                title.map(|title| Action::CreateTask {
                    title,
                    due_in_hours,
                    assignee_id,
                })
            }
            "assign_owner" => {
                let user = id_field(object, "user_id", &at, true, problems);
                if let Some(user) = user {
                    member_check(conn, org, user, &at("user_id"), problems).await?;
                }
                user.map(|user_id| Action::AssignOwner { user_id })
            }
            "send_whatsapp_template" => {
                let name = text_field(object, "name", &at, 512, problems);
                let language = text_field(object, "language", &at, 20, problems);
                let category = text_field(object, "category", &at, 20, problems);
                if let Some(c) = &category
                    && !CATEGORIES.contains(&c.as_str())
                {
                    problems.push(FieldError::new(
                        at("category"),
                        format!("must be one of {}", CATEGORIES.join(", ")),
                    ));
                }
                let parameters = match object.get("parameters").filter(|v| !v.is_null()) {
                    None => Some(Vec::new()),
                    Some(Value::Array(items)) if items.iter().all(Value::is_string) => Some(
                        items
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect(),
                    ),
                    Some(_) => {
                        problems.push(FieldError::new(
                            at("parameters"),
                            "must be an array of texts",
                        ));
                        None
                    }
                };
                match (name, language, category, parameters) {
                    (Some(name), Some(language), Some(category), Some(parameters)) => {
                        Some(Action::SendWhatsappTemplate {
                            name,
                            language,
                            category,
                            parameters,
                        })
                    }
                    _ => None,
                }
            }
            "notify_users" => {
                let title = text_field(object, "title", &at, MAX_NAME_LEN, problems);
                let body = object
                    .get("body")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .chars()
                    .take(2000)
                    .collect::<String>();
                let mut user_ids = Vec::new();
                match object.get("user_ids").filter(|v| !v.is_null()) {
                    None => {}
                    Some(Value::Array(items)) => {
                        for (j, item) in items.iter().enumerate() {
                            let field = format!("actions[{i}].user_ids[{j}]");
                            match item.as_str().and_then(|s| s.parse::<Uuid>().ok()) {
                                Some(user) => {
                                    member_check(conn, org, user, &field, problems).await?;
                                    user_ids.push(user);
                                }
                                None => problems.push(FieldError::new(field, "must be an id")),
                            }
                        }
                    }
                    Some(_) => problems.push(FieldError::new(
                        at("user_ids"),
                        "must be an array of member ids",
                    )),
                }
                let role = match object.get("role").filter(|v| !v.is_null()) {
                    None => None,
                    Some(Value::String(role)) if ROLES.contains(&role.as_str()) => {
                        Some(role.clone())
                    }
                    Some(_) => {
                        problems.push(FieldError::new(
                            at("role"),
                            format!("must be one of {}", ROLES.join(", ")),
                        ));
                        None
                    }
                };
                if user_ids.is_empty() && role.is_none() && problems.len() == before {
                    problems.push(FieldError::new(
                        at("user_ids"),
                        "name members (user_ids) or a role to notify",
                    ));
                }
                title.map(|title| Action::NotifyUsers {
                    user_ids,
                    role,
                    title,
                    body,
                })
            }
            "call_webhook" => id_field(object, "endpoint_id", &at, true, problems)
                .map(|endpoint_id| Action::CallWebhook { endpoint_id }),
            _ => {
                let stage = id_field(object, "stage_id", &at, true, problems);
                if let Some(stage) = stage {
                    let found = pipeline_stages::Entity::find()
                        .filter(pipeline_stages::Column::OrganizationId.eq(org.as_uuid()))
                        .filter(pipeline_stages::Column::Id.eq(stage))
                        .filter(pipeline_stages::Column::ArchivedAt.is_null())
                        .one(conn)
                        .await
                        .map_err(db_err)?;
                    if found.is_none() {
                        problems.push(FieldError::new(
                            at("stage_id"),
                            "is not an active stage of this organization",
                        ));
                    }
                }
                stage.map(|stage_id| Action::MoveDeal { stage_id })
            }
        };
        if problems.len() == before
            && let Some(action) = action
        {
            out.push(action);
        }
    }
    Ok(out)
}

async fn member_check<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    user: Uuid,
    field: &str,
    problems: &mut Vec<FieldError>,
) -> Result<(), Error> {
    if crate::notifications::active_role(conn, org, user)
        .await
        .map_err(db_err)?
        .is_none()
    {
        problems.push(FieldError::new(
            field,
            "is not an active member of this organization",
        ));
    }
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(Error::internal)
}

async fn find_rule<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    id: Uuid,
) -> Result<automation_rules::Model, Error> {
    automation_rules::Entity::find_by_id((org.as_uuid(), id))
        .one(conn)
        .await
        .map_err(db_err)?
        .ok_or(Error::not_found("automation rule"))
}

/// Creates a rule.
pub async fn create_rule(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    input: RuleInput,
) -> Result<RuleView, Error> {
    ctx.require(Permission::OrgUpdate)?;
    let org = ctx.org();
    let checked = check(db, org, &input, true).await?;
    let (Some(name), Some(trigger), Some(conditions), Some(actions)) = (
        checked.name,
        checked.trigger,
        checked.conditions,
        checked.actions,
    ) else {
        return Err(Error::invalid("actions", "is required"));
    };
    let row = automation_rules::Model {
        organization_id: org.as_uuid(),
        id: Uuid::now_v7(),
        name,
        enabled: input.enabled.unwrap_or(true),
        trigger: trigger.as_str().to_owned(),
        conditions: to_json(&conditions)?,
        actions: to_json(&actions)?,
        created_by: ctx.user().map(|u| u.as_uuid()),
        created_at: now,
        updated_at: now,
    };
    let txn = begin_write(db).await.map_err(db_err)?;
    automation_rules::Entity::insert(automation_rules::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(org, Actor::of(ctx), "automation_rule.create")
        .target("automation_rule", row.id)
        .details(json!({ "name": row.name, "trigger": row.trigger, "enabled": row.enabled }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)?;
    Ok(row.into())
}

/// The organization's rules, oldest first.
pub async fn list_rules(
    db: &DatabaseConnection,
    ctx: &TenantContext,
) -> Result<Vec<RuleView>, Error> {
    ctx.require(Permission::CrmRead)?;
    let rows = automation_rules::Entity::find()
        .filter(automation_rules::Column::OrganizationId.eq(ctx.org().as_uuid()))
        .order_by_asc(automation_rules::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?;
    Ok(rows.into_iter().map(RuleView::from).collect())
}

/// One rule.
pub async fn get_rule(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    id: Uuid,
) -> Result<RuleView, Error> {
    ctx.require(Permission::CrmRead)?;
    Ok(find_rule(db, ctx.org(), id).await?.into())
}

/// Changes a rule's fields given.
pub async fn update_rule(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: Uuid,
    input: RuleInput,
) -> Result<RuleView, Error> {
    ctx.require(Permission::OrgUpdate)?;
    let org = ctx.org();
    find_rule(db, org, id).await?;
    let checked = check(db, org, &input, false).await?;
    let txn = begin_write(db).await.map_err(db_err)?;
    let current = find_rule(&txn, org, id).await?;
    let mut active = automation_rules::ActiveModel::from(current);
    let mut changed = Vec::new();
    if let Some(name) = checked.name {
        active.name = Set(name);
        changed.push("name");
    }
    if let Some(enabled) = input.enabled {
        active.enabled = Set(enabled);
        changed.push("enabled");
    }
    if let Some(trigger) = checked.trigger {
        active.trigger = Set(trigger.as_str().to_owned());
        changed.push("trigger");
    }
    if let Some(conditions) = checked.conditions {
        active.conditions = Set(to_json(&conditions)?);
        changed.push("conditions");
    }
    if let Some(actions) = checked.actions {
        active.actions = Set(to_json(&actions)?);
        changed.push("actions");
    }
    active.updated_at = Set(now);
    automation_rules::Entity::update(active)
        .exec(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(org, Actor::of(ctx), "automation_rule.update")
        .target("automation_rule", id)
        .details(json!({ "changed": changed }))
        .record(&txn, client, now)
        .await?;
    let row = find_rule(&txn, org, id).await?;
    txn.commit().await.map_err(db_err)?;
    Ok(row.into())
}

/// Deletes a rule and its run log.
pub async fn delete_rule(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    client: &ClientInfo,
    now: DateTime<Utc>,
    id: Uuid,
) -> Result<(), Error> {
    ctx.require(Permission::OrgUpdate)?;
    let org = ctx.org();
    let txn = begin_write(db).await.map_err(db_err)?;
    let rule = find_rule(&txn, org, id).await?;
    automation_runs::Entity::delete_many()
        .filter(automation_runs::Column::OrganizationId.eq(org.as_uuid()))
        .filter(automation_runs::Column::RuleId.eq(id))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    automation_rules::Entity::delete_many()
        .filter(automation_rules::Column::OrganizationId.eq(org.as_uuid()))
        .filter(automation_rules::Column::Id.eq(id))
        .exec(&txn)
        .await
        .map_err(db_err)?;
    audit::Entry::new(org, Actor::of(ctx), "automation_rule.delete")
        .target("automation_rule", id)
        .details(json!({ "name": rule.name }))
        .record(&txn, client, now)
        .await?;
    txn.commit().await.map_err(db_err)
}

/// A rule's runs, newest first, keyset paged.
pub async fn list_runs(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    rule: Uuid,
    page: &PageRequest,
) -> Result<Page<RunView>, Error> {
    ctx.require(Permission::CrmRead)?;
    let org = ctx.org();
    find_rule(db, org, rule).await?;
    let before: Option<Uuid> = page.after().map_err(Error::from)?;
    let mut select = automation_runs::Entity::find()
        .filter(automation_runs::Column::OrganizationId.eq(org.as_uuid()))
        .filter(automation_runs::Column::RuleId.eq(rule));
    if let Some(before) = before {
        select = select.filter(automation_runs::Column::Id.lt(before));
    }
    let limit = page.limit();
    let rows = select
        .order_by_desc(automation_runs::Column::Id)
        .limit(u64::from(limit) + 1)
        .all(db)
        .await
        .map_err(db_err)?;
    Ok(Page::from_overfetch(
        rows.into_iter().map(RunView::from).collect(),
        limit,
        |r: &RunView| r.id,
    ))
}

/// One run.
pub async fn get_run(
    db: &DatabaseConnection,
    ctx: &TenantContext,
    id: Uuid,
) -> Result<RunView, Error> {
    ctx.require(Permission::CrmRead)?;
    automation_runs::Entity::find_by_id((ctx.org().as_uuid(), id))
        .one(db)
        .await
        .map_err(db_err)?
        .map(RunView::from)
        .ok_or(Error::not_found("automation run"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(field: &str, op: Op, value: Option<Value>) -> Condition {
        Condition {
            field: field.into(),
            op,
            value,
        }
    }

    #[test]
    fn conditions_compare_paths_of_the_event_data() {
        let data = json!({"to_stage_id": "s1", "amount": {"amount": "1500.00"}, "tags": ["vip"],
            "contact": {"name": "Amina Wanjiru"}});
        assert!(cond("to_stage_id", Op::Eq, Some(json!("s1"))).holds(&data));
        assert!(cond("to_stage_id", Op::Ne, Some(json!("s2"))).holds(&data));
        assert!(cond("missing", Op::Ne, Some(json!("s2"))).holds(&data));
        assert!(cond("to_stage_id", Op::In, Some(json!(["s0", "s1"]))).holds(&data));
        assert!(cond("amount.amount", Op::Gt, Some(json!(1000))).holds(&data));
        assert!(!cond("amount.amount", Op::Lt, Some(json!(1000))).holds(&data));
        assert!(cond("amount.amount", Op::Eq, Some(json!(1500))).holds(&data));
        assert!(cond("tags", Op::Contains, Some(json!("vip"))).holds(&data));
        assert!(cond("contact.name", Op::Contains, Some(json!("amina"))).holds(&data));
        assert!(cond("contact", Op::Exists, None).holds(&data));
        assert!(!cond("nothing.here", Op::Exists, None).holds(&data));
    }

    #[test]
    fn triggers_match_their_events() {
        let ok = json!({"status": "succeeded"});
        assert!(Trigger::PaymentSucceeded.matches("payment.status_changed", &ok));
        assert!(
            !Trigger::PaymentSucceeded
                .matches("payment.status_changed", &json!({"status": "failed"}))
        );
        assert!(Trigger::RecordCreated.matches("ticket.created", &Value::Null));
        assert!(!Trigger::RecordCreated.matches("notification.created", &Value::Null));
        assert_eq!(
            Trigger::parse("whatsapp.inbound"),
            Some(Trigger::WhatsAppInbound)
        );
    }
}
