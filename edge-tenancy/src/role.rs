//! Roles and the permission matrix.
//!
//! The whole matrix lives in [`Role::allows`]: one `match`, read top to bottom. Nothing
//! else in Edge decides what a role may do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a member (or an API key) may do in an organization.
///
/// Roles are ordered from the most to the least powerful, but code never compares them:
/// ask [`Role::allows`] instead.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The platform operator: every permission, in every tenant.
    SuperAdmin,
    /// Runs one organization: members, billing, credentials, API keys.
    OrgAdmin,
    /// Runs a team: sees billing and usage, manages CRM data and templates.
    Manager,
    /// Works the CRM, chats and sends messages.
    User,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::SuperAdmin, Role::OrgAdmin, Role::Manager, Role::User];

    /// The role's wire name, e.g. `"org_admin"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super_admin",
            Role::OrgAdmin => "org_admin",
            Role::Manager => "manager",
            Role::User => "user",
        }
    }

    /// Whether this role is the platform operator, who may act in any tenant.
    pub const fn is_operator(self) -> bool {
        matches!(self, Role::SuperAdmin)
    }

    /// The permission matrix: whether this role grants `permission`.
    pub const fn allows(self, permission: Permission) -> bool {
        use Permission as P;
        match self {
            Role::SuperAdmin => true,
            Role::OrgAdmin => !matches!(permission, P::TenantsManage),
            Role::Manager => matches!(
                permission,
                P::OrgRead
                    | P::MembersRead
                    | P::BillingRead
                    | P::UsageRead
                    | P::CrmRead
                    | P::CrmWrite
                    | P::CrmDelete
                    | P::CrmAssign
                    | P::MessagesSend
                    | P::TemplatesManage
                    | P::ChatUse
            ),
            Role::User => matches!(
                permission,
                P::OrgRead
                    | P::MembersRead
                    | P::CrmRead
                    | P::CrmWrite
                    | P::MessagesSend
                    | P::ChatUse
            ),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when a string names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected super_admin, org_admin, manager or user")]
pub struct ParseRoleError(String);

impl FromStr for Role {
    type Err = ParseRoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| ParseRoleError(s.chars().take(32).collect()))
    }
}

/// Something a caller may be allowed to do. See [`Role::allows`] for who may.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Permission {
    /// See the organization's profile and settings.
    OrgRead,
    /// Change the organization's profile, branding and custom domains.
    OrgUpdate,
    /// List the organization's members.
    MembersRead,
    /// Invite and remove members and change their roles.
    MembersManage,
    /// Issue and revoke API keys.
    ApiKeysManage,
    /// Set the organization's M-Pesa and WhatsApp credentials.
    CredentialsManage,
    /// See the subscription, wallet balance and invoices.
    BillingRead,
    /// Change the subscription and top up the wallet.
    BillingManage,
    /// See usage meters and rate-limit state.
    UsageRead,
    /// Read CRM records.
    CrmRead,
    /// Create and edit CRM records.
    CrmWrite,
    /// Delete CRM records.
    CrmDelete,
    /// Assign CRM records to other members.
    CrmAssign,
    /// Send WhatsApp messages (spends wallet balance).
    MessagesSend,
    /// Create and edit message templates.
    TemplatesManage,
    /// Use team chat.
    ChatUse,
    /// Configure outbound webhooks.
    WebhooksManage,
    /// Read the audit log.
    AuditRead,
    /// Operator only: create, suspend and inspect any tenant.
    TenantsManage,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 19] = [
        Permission::OrgRead,
        Permission::OrgUpdate,
        Permission::MembersRead,
        Permission::MembersManage,
        Permission::ApiKeysManage,
        Permission::CredentialsManage,
        Permission::BillingRead,
        Permission::BillingManage,
        Permission::UsageRead,
        Permission::CrmRead,
        Permission::CrmWrite,
        Permission::CrmDelete,
        Permission::CrmAssign,
        Permission::MessagesSend,
        Permission::TemplatesManage,
        Permission::ChatUse,
        Permission::WebhooksManage,
        Permission::AuditRead,
        Permission::TenantsManage,
    ];

    /// The permission's wire name, e.g. `"crm_write"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::OrgRead => "org_read",
            Permission::OrgUpdate => "org_update",
            Permission::MembersRead => "members_read",
            Permission::MembersManage => "members_manage",
            Permission::ApiKeysManage => "api_keys_manage",
            Permission::CredentialsManage => "credentials_manage",
            Permission::BillingRead => "billing_read",
            Permission::BillingManage => "billing_manage",
            Permission::UsageRead => "usage_read",
            Permission::CrmRead => "crm_read",
            Permission::CrmWrite => "crm_write",
            Permission::CrmDelete => "crm_delete",
            Permission::CrmAssign => "crm_assign",
            Permission::MessagesSend => "messages_send",
            Permission::TemplatesManage => "templates_manage",
            Permission::ChatUse => "chat_use",
            Permission::WebhooksManage => "webhooks_manage",
            Permission::AuditRead => "audit_read",
            Permission::TenantsManage => "tenants_manage",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_wire_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            let json = serde_json::to_string(&role).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn permission_wire_names_match_serde() {
        for permission in Permission::ALL {
            let json = serde_json::to_string(&permission).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", permission.as_str()));
        }
    }
}
