//! The permission matrix, as a table.

use edge_tenancy::{Permission as P, Role as R};

/// Every (role, permission) pair, with whether it is allowed. Adding a permission without
/// adding its four rows here fails `the_table_covers_every_pair`.
const MATRIX: &[(R, P, bool)] = &[
    (R::SuperAdmin, P::OrgRead, true),
    (R::SuperAdmin, P::OrgUpdate, true),
    (R::SuperAdmin, P::MembersRead, true),
    (R::SuperAdmin, P::MembersManage, true),
    (R::SuperAdmin, P::ApiKeysManage, true),
    (R::SuperAdmin, P::CredentialsManage, true),
    (R::SuperAdmin, P::BillingRead, true),
    (R::SuperAdmin, P::BillingManage, true),
    (R::SuperAdmin, P::UsageRead, true),
    (R::SuperAdmin, P::CrmRead, true),
    (R::SuperAdmin, P::CrmWrite, true),
    (R::SuperAdmin, P::CrmDelete, true),
    (R::SuperAdmin, P::CrmAssign, true),
    (R::SuperAdmin, P::MessagesSend, true),
    (R::SuperAdmin, P::TemplatesManage, true),
    (R::SuperAdmin, P::ChatUse, true),
    (R::SuperAdmin, P::WebhooksManage, true),
    (R::SuperAdmin, P::AuditRead, true),
    (R::SuperAdmin, P::TenantsManage, true),
    (R::OrgAdmin, P::OrgRead, true),
    (R::OrgAdmin, P::OrgUpdate, true),
    (R::OrgAdmin, P::MembersRead, true),
    (R::OrgAdmin, P::MembersManage, true),
    (R::OrgAdmin, P::ApiKeysManage, true),
    (R::OrgAdmin, P::CredentialsManage, true),
    (R::OrgAdmin, P::BillingRead, true),
    (R::OrgAdmin, P::BillingManage, true),
    (R::OrgAdmin, P::UsageRead, true),
    (R::OrgAdmin, P::CrmRead, true),
    (R::OrgAdmin, P::CrmWrite, true),
    (R::OrgAdmin, P::CrmDelete, true),
    (R::OrgAdmin, P::CrmAssign, true),
    (R::OrgAdmin, P::MessagesSend, true),
    (R::OrgAdmin, P::TemplatesManage, true),
    (R::OrgAdmin, P::ChatUse, true),
    (R::OrgAdmin, P::WebhooksManage, true),
    (R::OrgAdmin, P::AuditRead, true),
    (R::OrgAdmin, P::TenantsManage, false),
    (R::Manager, P::OrgRead, true),
    (R::Manager, P::OrgUpdate, false),
    (R::Manager, P::MembersRead, true),
    (R::Manager, P::MembersManage, false),
    (R::Manager, P::ApiKeysManage, false),
    (R::Manager, P::CredentialsManage, false),
    (R::Manager, P::BillingRead, true),
    (R::Manager, P::BillingManage, false),
    (R::Manager, P::UsageRead, true),
    (R::Manager, P::CrmRead, true),
    (R::Manager, P::CrmWrite, true),
    (R::Manager, P::CrmDelete, true),
    (R::Manager, P::CrmAssign, true),
    (R::Manager, P::MessagesSend, true),
    (R::Manager, P::TemplatesManage, true),
    (R::Manager, P::ChatUse, true),
    (R::Manager, P::WebhooksManage, false),
    (R::Manager, P::AuditRead, false),
    (R::Manager, P::TenantsManage, false),
    (R::User, P::OrgRead, true),
    (R::User, P::OrgUpdate, false),
    (R::User, P::MembersRead, true),
    (R::User, P::MembersManage, false),
    (R::User, P::ApiKeysManage, false),
    (R::User, P::CredentialsManage, false),
    (R::User, P::BillingRead, false),
    (R::User, P::BillingManage, false),
    (R::User, P::UsageRead, false),
    (R::User, P::CrmRead, true),
    (R::User, P::CrmWrite, true),
    (R::User, P::CrmDelete, false),
    (R::User, P::CrmAssign, false),
    (R::User, P::MessagesSend, true),
    (R::User, P::TemplatesManage, false),
    (R::User, P::ChatUse, true),
    (R::User, P::WebhooksManage, false),
    (R::User, P::AuditRead, false),
    (R::User, P::TenantsManage, false),
];

#[test]
fn every_role_gets_exactly_the_permissions_in_the_table() {
    let mut wrong = Vec::new();
    for &(role, permission, allowed) in MATRIX {
        if role.allows(permission) != allowed {
            wrong.push(format!("{role} {permission}: expected {allowed}"));
        }
    }
    assert!(wrong.is_empty(), "matrix mismatches:\n{}", wrong.join("\n"));
}

#[test]
fn the_table_covers_every_pair() {
    assert_eq!(MATRIX.len(), R::ALL.len() * P::ALL.len());
    for role in R::ALL {
        for permission in P::ALL {
            let rows = MATRIX
                .iter()
                .filter(|(r, p, _)| *r == role && *p == permission)
                .count();
            assert_eq!(rows, 1, "{role} {permission} appears {rows} times");
        }
    }
}

#[test]
fn only_the_operator_manages_tenants() {
    let operators: Vec<R> = R::ALL
        .into_iter()
        .filter(|r| r.allows(P::TenantsManage))
        .collect();
    assert_eq!(operators, vec![R::SuperAdmin]);
}
