//! Tenant resolution over in-memory stores.

use std::sync::Arc;

use chrono::Duration as Span;
use edge_core::{OrgId, SharedClock};
use edge_tenancy::{
    InMemoryDirectory, KeyEnvironment, NewApiKey, OrgStatus, PlanLimits, Principal, Role,
    TenantResolver,
};
use secrecy::ExposeSecret;

use crate::support::World;

#[tokio::test]
async fn a_jwt_resolves_to_its_org_user_role_and_plan() {
    let world = World::new();
    let (token, user, session) = world.sign_in(world.acme.id, Role::Manager);
    let context = world
        .resolver
        .from_authorization(&format!("Bearer {token}"))
        .await
        .unwrap();
    assert_eq!(context.org(), world.acme.id);
    assert_eq!(context.home_org(), world.acme.id);
    assert_eq!(context.user(), Some(user));
    assert_eq!(context.principal(), Principal::User { user, session });
    assert_eq!(context.role(), Role::Manager);
    assert_eq!(context.limits(), &PlanLimits::default());
}

#[tokio::test]
async fn a_revoked_session_stops_at_once() {
    let world = World::new();
    let (token, _, session) = world.sign_in(world.acme.id, Role::User);
    assert!(world.resolver.from_jwt(&token).await.is_ok());
    assert!(world.sessions.revoke(session));
    let err = world.resolver.from_jwt(&token).await.unwrap_err();
    assert_eq!(err.code(), "unauthenticated");
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated() {
    let world = World::new();
    let (token, _, _) = world.sign_in(world.acme.id, Role::User);
    world.clock.advance(Span::hours(1));
    let err = world.resolver.from_jwt(&token).await.unwrap_err();
    assert_eq!(err.code(), "unauthenticated");
}

#[tokio::test]
async fn a_suspended_org_is_forbidden_and_an_unknown_org_unauthenticated() {
    let world = World::new();
    let (token, _, _) = world.sign_in(world.acme.id, Role::OrgAdmin);
    world
        .directory
        .update(world.acme.id, |org| org.status = OrgStatus::Suspended);
    let err = world.resolver.from_jwt(&token).await.unwrap_err();
    assert_eq!(err.code(), "forbidden");

    let (ghost, _, _) = world.sign_in(OrgId::new(), Role::OrgAdmin);
    let err = world.resolver.from_jwt(&ghost).await.unwrap_err();
    assert_eq!(err.code(), "unauthenticated");
}

#[tokio::test]
async fn an_api_key_resolves_to_its_org_and_role() {
    let world = World::new();
    let issued = NewApiKey {
        org: world.globex.id,
        name: "erp sync".into(),
        role: Role::Manager,
        environment: KeyEnvironment::Live,
        expires_at: Some(world.clock_now() + Span::days(30)),
    }
    .issue(world.clock_now())
    .unwrap();
    let id = issued.record.id;
    world.keys.insert(issued.record);
    let key = issued.key.expose_secret();

    let context = world
        .resolver
        .from_authorization(&format!("bearer {key}"))
        .await
        .unwrap();
    assert_eq!(context.org(), world.globex.id);
    assert_eq!(context.principal(), Principal::ApiKey { key: id });
    assert_eq!(context.role(), Role::Manager);
    assert_eq!(context.user(), None);

    // Expiry follows the injected clock.
    world.clock.advance(Span::days(31));
    assert_eq!(
        world.resolver.from_api_key(key).await.unwrap_err().code(),
        "unauthenticated"
    );
}

#[tokio::test]
async fn a_revoked_or_unknown_api_key_is_unauthenticated() {
    let world = World::new();
    let issued = NewApiKey {
        org: world.acme.id,
        name: "ci".into(),
        role: Role::User,
        environment: KeyEnvironment::Test,
        expires_at: None,
    }
    .issue(world.clock_now())
    .unwrap();
    let id = issued.record.id;
    world.keys.insert(issued.record);
    let key = issued.key.expose_secret();
    assert!(world.resolver.from_bearer(key).await.is_ok());
    world.keys.revoke(id, world.clock_now());
    assert_eq!(
        world.resolver.from_bearer(key).await.unwrap_err().code(),
        "unauthenticated"
    );

    let stranger = NewApiKey {
        org: world.acme.id,
        name: "never stored".into(),
        role: Role::User,
        environment: KeyEnvironment::Live,
        expires_at: None,
    }
    .issue(world.clock_now())
    .unwrap();
    assert_eq!(
        world
            .resolver
            .from_bearer(stranger.key.expose_secret())
            .await
            .unwrap_err()
            .code(),
        "unauthenticated"
    );
}

#[tokio::test]
async fn bad_authorization_headers_are_unauthenticated() {
    let world = World::new();
    let (token, _, _) = world.sign_in(world.acme.id, Role::User);
    for header in [
        String::new(),
        token.clone(),
        format!("Basic {token}"),
        "Bearer ".into(),
        "Bearer not-a-token".into(),
    ] {
        let err = world
            .resolver
            .from_authorization(&header)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "unauthenticated", "{header:?}");
    }
}

#[tokio::test]
async fn each_strategy_works_alone_and_unconfigured_ones_refuse() {
    let world = World::new();
    let clock: SharedClock = Arc::new(world.clock.clone());
    let hosts_only = TenantResolver::new(world.directory.clone(), clock);
    let (token, _, _) = world.sign_in(world.acme.id, Role::User);
    assert_eq!(
        hosts_only.from_jwt(&token).await.unwrap_err().code(),
        "unauthenticated"
    );
    assert_eq!(
        hosts_only
            .from_api_key("edge_live_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
            .await
            .unwrap_err()
            .code(),
        "unauthenticated"
    );
    assert_eq!(
        hosts_only.org_from_slug("acme").await.unwrap().id,
        world.acme.id
    );
    assert_eq!(
        hosts_only.org_from_host("crm.acme.co.ke").await.unwrap().id,
        world.acme.id
    );
    assert_eq!(hosts_only.clock().now(), world.clock_now());
}

#[tokio::test]
async fn hosts_resolve_by_subdomain_or_custom_domain() {
    let world = World::new();
    let r = &world.resolver;
    assert_eq!(
        r.org_from_host("acme.edge.example").await.unwrap().id,
        world.acme.id
    );
    assert_eq!(
        r.org_from_host("GLOBEX.edge.example:443").await.unwrap().id,
        world.globex.id
    );
    assert_eq!(
        r.org_from_host("crm.acme.co.ke.").await.unwrap().id,
        world.acme.id
    );
    for unknown in [
        "edge.example",
        "nobody.edge.example",
        "deep.acme.edge.example",
        "evil.example",
        "127.0.0.1",
        "",
    ] {
        assert_eq!(
            r.org_from_host(unknown).await.unwrap_err().code(),
            "not_found",
            "{unknown}"
        );
    }
}

#[tokio::test]
async fn path_slugs_resolve_and_bad_slugs_are_not_found() {
    let world = World::new();
    assert_eq!(
        world.resolver.org_from_slug("Acme").await.unwrap().id,
        world.acme.id
    );
    for bad in ["", "nobody", "../acme", "acme/x"] {
        assert_eq!(
            world.resolver.org_from_slug(bad).await.unwrap_err().code(),
            "not_found",
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_token_for_one_tenant_does_not_open_another_tenants_host() {
    let world = World::new();
    let (token, _, _) = world.sign_in(world.acme.id, Role::OrgAdmin);
    let context = world.resolver.from_jwt(&token).await.unwrap();
    let addressed = world
        .resolver
        .org_from_host("globex.edge.example")
        .await
        .unwrap();
    assert_eq!(
        context.ensure_org(addressed.id).unwrap_err().code(),
        "not_found"
    );
    let own = world
        .resolver
        .org_from_host("acme.edge.example")
        .await
        .unwrap();
    assert!(context.ensure_org(own.id).is_ok());
}

#[tokio::test]
async fn only_the_operator_may_act_in_another_tenant() {
    let world = World::new();
    let (admin, _, _) = world.sign_in(world.acme.id, Role::OrgAdmin);
    let admin = world.resolver.from_jwt(&admin).await.unwrap();
    assert_eq!(
        admin
            .act_in(world.globex.id, world.globex.limits.clone())
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert!(
        admin
            .require(edge_tenancy::Permission::TenantsManage)
            .is_err()
    );

    let (operator, _, _) = world.sign_in(world.acme.id, Role::SuperAdmin);
    let operator = world.resolver.from_jwt(&operator).await.unwrap();
    let acting = operator
        .act_in(world.globex.id, world.globex.limits.clone())
        .unwrap();
    assert_eq!(acting.org(), world.globex.id);
    assert_eq!(acting.home_org(), world.acme.id);
    assert!(
        acting
            .require(edge_tenancy::Permission::TenantsManage)
            .is_ok()
    );
}

#[tokio::test]
async fn directory_lookups_are_scoped_to_the_given_domain() {
    let directory = InMemoryDirectory::new();
    let org = crate::support::org_record("initech");
    directory.insert(org.clone());
    directory.add_domain("CRM.Initech.co.ke.", org.id);
    let clock: SharedClock = Arc::new(edge_core::FixedClock::new(crate::support::start()));
    let resolver = TenantResolver::new(Arc::new(directory), clock);
    assert_eq!(
        resolver
            .org_from_host("crm.initech.co.ke")
            .await
            .unwrap()
            .id,
        org.id
    );
}
