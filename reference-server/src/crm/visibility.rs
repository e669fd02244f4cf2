//! Who sees which CRM records.
//!
//! An organization chooses, in its settings (`record_visibility`):
//! - `everyone` (the default): every member sees every record;
//! - `own`: members with the `user` role see only the records they own or are assigned
//!   (a prospect's or deal's owner, a relationship's account manager, a ticket's
//!   assignee, an activity's owner; tickets and activities also to whoever created
//!   them), and targets for the whole organization or naming them; managers and admins
//!   still see everything.
//!
//! API keys act for the organization, not for a person: they see what their role sees
//! under `everyone`.
//!
//! A record the caller may not see answers 404, exactly like another tenant's record.

use edge_tenancy::{Principal, Role, TenantContext};
use serde::{Deserialize, Serialize};

/// The organization setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordVisibility {
    /// Every member sees every record.
    #[default]
    Everyone,
    /// Users see what they own or are assigned; managers and admins see everything.
    Own,
}

/// What one caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every record of the organization.
    All,
    /// Only records owned by (or assigned to) this user.
    OwnedBy(uuid::Uuid),
}

impl Scope {
    /// The scope of the caller under the organization's setting.
    pub fn of(ctx: &TenantContext, setting: RecordVisibility) -> Self {
        match (setting, ctx.principal()) {
            (RecordVisibility::Own, Principal::User { user, .. }) if ctx.role() == Role::User => {
                Scope::OwnedBy(user.as_uuid())
            }
            _ => Scope::All,
        }
    }

    /// Whether a record with these owners/assignees is visible (`None` owners never match
    /// a restricted scope).
    pub fn sees(self, owners: &[Option<uuid::Uuid>]) -> bool {
        match self {
            Scope::All => true,
            Scope::OwnedBy(user) => owners.contains(&Some(user)),
        }
    }

    /// The user a restricted scope is limited to.
    pub fn restricted_to(self) -> Option<uuid::Uuid> {
        match self {
            Scope::All => None,
            Scope::OwnedBy(user) => Some(user),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restricted_scope_sees_only_its_own_records() {
        let me = uuid::Uuid::now_v7();
        let other = uuid::Uuid::now_v7();
        let scope = Scope::OwnedBy(me);
        assert!(scope.sees(&[Some(me)]));
        assert!(scope.sees(&[Some(other), Some(me)]));
        assert!(!scope.sees(&[Some(other)]));
        assert!(!scope.sees(&[None]));
        assert!(Scope::All.sees(&[None]));
        assert_eq!(scope.restricted_to(), Some(me));
        assert_eq!(Scope::All.restricted_to(), None);
    }
}
