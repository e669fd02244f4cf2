//! The audit log: who did what, in which organization, to which record, from where, when.
//!
//! Services write an entry in the same transaction as the change it records, so a change
//! is never committed without its entry.

use edge_core::{Error, OrgId};
use edge_tenancy::{Principal, TenantContext};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde_json::Value;

use crate::entities::audit_log;

/// Where a request came from, for the audit log and for login rate limits.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's IP address.
    pub ip: Option<String>,
    /// The client's `User-Agent`, truncated to 512 characters.
    pub user_agent: Option<String>,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
}

/// Who acted.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    /// A user (or an operator acting as one).
    User(uuid::Uuid),
    /// An API key.
    ApiKey(uuid::Uuid),
    /// A platform operator.
    Operator(uuid::Uuid),
    /// The server itself (jobs, callbacks).
    System,
}

impl Actor {
    /// The actor behind a request's tenant context.
    pub fn of(ctx: &TenantContext) -> Self {
        match ctx.principal() {
            Principal::User { user, .. } if ctx.role().is_operator() => {
                Actor::Operator(user.as_uuid())
            }
            Principal::User { user, .. } => Actor::User(user.as_uuid()),
            Principal::ApiKey { key } => Actor::ApiKey(key.as_uuid()),
        }
    }

    /// The user's, key's or operator's id; `None` for the server itself.
    pub fn id(self) -> Option<uuid::Uuid> {
        self.parts().1
    }

    fn parts(self) -> (&'static str, Option<uuid::Uuid>) {
        match self {
            Actor::User(id) => ("user", Some(id)),
            Actor::ApiKey(id) => ("api_key", Some(id)),
            Actor::Operator(id) => ("operator", Some(id)),
            Actor::System => ("system", None),
        }
    }
}

/// One audit entry, built with [`Entry::new`] and chained setters.
#[derive(Debug, Clone)]
pub struct Entry {
    org: OrgId,
    actor: Actor,
    action: &'static str,
    target: Option<(&'static str, String)>,
    details: Value,
}

impl Entry {
    /// `actor` did `action` (e.g. `"api_key.create"`) in `org`.
    pub fn new(org: OrgId, actor: Actor, action: &'static str) -> Self {
        Self {
            org,
            actor,
            action,
            target: None,
            details: Value::Object(Default::default()),
        }
    }

    /// The record acted on.
    pub fn target(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.target = Some((kind, id.to_string()));
        self
    }

    /// What changed. Never put secrets here.
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Inserts the entry using `conn` (pass the transaction of the change).
    pub async fn record<C: ConnectionTrait>(
        self,
        conn: &C,
        client: &ClientInfo,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Error> {
        let (actor_type, actor_id) = self.actor.parts();
        let (target_type, target_id) = match self.target {
            Some((kind, id)) => (Some(kind.to_owned()), Some(id)),
            None => (None, None),
        };
        audit_log::Entity::insert(audit_log::ActiveModel {
            organization_id: Set(self.org.as_uuid()),
            id: Set(uuid::Uuid::now_v7()),
            actor_type: Set(actor_type.to_owned()),
            actor_id: Set(actor_id),
            action: Set(self.action.to_owned()),
            target_type: Set(target_type),
            target_id: Set(target_id),
            ip_address: Set(client.ip.clone()),
            user_agent: Set(client.user_agent.clone()),
            request_id: Set(client.request_id.clone()),
            details: Set(self.details),
            created_at: Set(at),
        })
        .exec_without_returning(conn)
        .await
        .map_err(Error::internal)?;
        Ok(())
    }
}
