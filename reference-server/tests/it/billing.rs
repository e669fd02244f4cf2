//! Plans and subscriptions: the operator's plans, paid periods applied once per payment,
//! active → grace → suspended, the 402 wall around paid features, and limits read from
//! the plans table.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, SecondsFormat, SubsecRound as _, Utc};
use edge_core::{Clock as _, Currency, Error, FixedClock, Money, OrgId};
use edge_server::audit::{Actor, ClientInfo};
use edge_server::billing::SubscriptionStatus;
use edge_server::billing::subscriptions::{self, Transition};
use edge_server::entities::{
    audit_log, organizations, subscription_periods, subscriptions as rows,
};
use edge_server::http::{Access, catalog};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait as _, Database, DatabaseBackend, EntityTrait, PaginatorTrait,
    QueryFilter, SqlErr, Statement,
};
use serde_json::{Value, json};

use crate::auth::{PASSWORD, operator, signup, token};
use crate::crm_support::{expect, field_errors};
use crate::helpers::{Backend, TestApp, for_each_backend, on_both_backends};
use crate::tenancy::send;

on_both_backends!(
    operators_create_edit_and_archive_plans,
    new_organizations_start_with_a_subscription,
    a_payment_extends_a_subscription_once,
    concurrent_duplicate_payments_extend_once,
    subscriptions_lapse_into_grace_then_suspension,
    a_suspended_organization_can_read_and_pay_but_not_use_paid_features,
    free_plans_never_lapse,
    limits_come_from_the_plans_table,
);

for_each_backend!(the_migration_subscribes_existing_organizations);

/// Now, to the microsecond, as the database stores times.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn kes(amount: &str) -> Money {
    Money::parse(amount, Currency::Kes).unwrap()
}

fn org_of(body: &Value) -> OrgId {
    body["organization"]["id"]
        .as_str()
        .unwrap()
        .parse::<uuid::Uuid>()
        .map(OrgId::from_uuid)
        .unwrap()
}

/// A valid new plan with this code.
fn plan_body(code: &str) -> Value {
    json!({
        "code": code,
        "name": format!("Plan {code}"),
        "price": {"amount": "1000.00", "currency": "KES"},
        "period_days": 30,
        "grace_days": 5,
        "included_messages": 2000,
        "requests_per_minute": 6000,
        "request_burst": 1000,
        "seats": 2,
        "max_api_keys": 1,
    })
}

/// The operator creates an organization on `plan` with a first admin, who accepts the
/// invitation; returns the admin's login body.
async fn organization_on(app: &TestApp, ops_token: &str, name: &str, plan: &str) -> Value {
    let email = format!("admin@{}.example", name.to_lowercase().replace(' ', "-"));
    let created = expect(
        app,
        ops_token,
        Method::POST,
        "/admin/organizations",
        Some(json!({"name": name, "plan": plan, "admin_email": email})),
        201,
    )
    .await;
    assert_eq!(created["organization"]["plan"], plan);
    let accepted = app
        .client
        .post(app.url("/api/v1/invitations/accept"))
        .json(&json!({"token": created["invitation"]["token"], "name": "Admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 201);
    accepted.json().await.unwrap()
}

async fn audit_count(app: &TestApp, org: OrgId, action: &str) -> u64 {
    audit_log::Entity::find()
        .filter(audit_log::Column::OrganizationId.eq(org.as_uuid()))
        .filter(audit_log::Column::Action.eq(action))
        .count(app.db())
        .await
        .unwrap()
}

async fn period_count(app: &TestApp, org: OrgId) -> u64 {
    subscription_periods::Entity::find()
        .filter(subscription_periods::Column::OrganizationId.eq(org.as_uuid()))
        .count(app.db())
        .await
        .unwrap()
}

fn of(transitions: &[Transition], org: OrgId) -> Vec<(SubscriptionStatus, SubscriptionStatus)> {
    transitions
        .iter()
        .filter(|t| t.organization == org)
        .map(|t| (t.from, t.to))
        .collect()
}

async fn operators_create_edit_and_archive_plans(app: TestApp) {
    let ops = operator(&app).await;
    let ops_token = token(&ops);
    let platform = org_of(&ops);

    // The four plans the server used to hard-code, with their limits.
    let listed = expect(&app, &ops_token, Method::GET, "/admin/plans", None, 200).await;
    let codes: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    for code in ["free", "standard", "enterprise", "platform"] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
    let standard = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "standard")
        .unwrap();
    assert_eq!(standard["price"]["amount"], "2500.00");
    assert_eq!(standard["price"]["currency"], "KES");
    assert_eq!(standard["requests_per_minute"], 600);
    assert_eq!(standard["seats"], 25);
    assert_eq!(standard["included_messages"], 10_000);
    assert_eq!(standard["free"], false);

    // Every missing or bad field is named.
    let bad = expect(
        &app,
        &ops_token,
        Method::POST,
        "/admin/plans",
        Some(json!({
            "code": "Bad Code",
            "price": {"amount": "-5.00", "currency": "KES"},
            "period_days": 0,
            "grace_days": 7,
            "requests_per_minute": 10,
            "request_burst": 5,
            "seats": 2,
            "included_messages": -1,
        })),
        422,
    )
    .await;
    let fields: BTreeSet<String> = field_errors(&bad).into_iter().map(|(f, _)| f).collect();
    let expected: BTreeSet<String> = [
        "code",
        "name",
        "price.amount",
        "period_days",
        "max_api_keys",
        "included_messages",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(fields, expected);
    let bad_currency = expect(
        &app,
        &ops_token,
        Method::POST,
        "/admin/plans",
        Some(json!({"price": {"amount": "10", "currency": "XYZ"}})),
        422,
    )
    .await;
    assert!(
        field_errors(&bad_currency)
            .iter()
            .any(|(f, _)| f == "price.currency")
    );

    let created = expect(
        &app,
        &ops_token,
        Method::POST,
        "/admin/plans",
        Some(plan_body("growth")),
        201,
    )
    .await;
    assert_eq!(created["code"], "growth");
    assert_eq!(created["price"]["amount"], "1000.00");
    assert_eq!(created["price"]["amount_minor"], 100_000);
    assert_eq!(created["active"], true);
    assert_eq!(created["seats"], 2);
    expect(
        &app,
        &ops_token,
        Method::POST,
        "/admin/plans",
        Some(plan_body("growth")),
        409,
    )
    .await;

    let edited = expect(
        &app,
        &ops_token,
        Method::PATCH,
        "/admin/plans/growth",
        Some(json!({"name": "Growth 2026", "requests_per_minute": 900, "included_messages": null, "price": {"amount": "1200", "currency": "KES"}})),
        200,
    )
    .await;
    assert_eq!(edited["name"], "Growth 2026");
    assert_eq!(edited["requests_per_minute"], 900);
    assert_eq!(edited["included_messages"], Value::Null);
    assert_eq!(edited["price"]["amount"], "1200.00");
    assert_eq!(edited["request_burst"], 1000, "untouched fields stay");

    let bad = expect(
        &app,
        &ops_token,
        Method::PATCH,
        "/admin/plans/growth",
        Some(json!({"seats": 0, "grace_days": 500, "price": {"amount": "0", "currency": "KES"}})),
        422,
    )
    .await;
    let fields: BTreeSet<String> = field_errors(&bad).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        ["grace_days", "price", "seats"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
    expect(
        &app,
        &ops_token,
        Method::PATCH,
        "/admin/plans/nope",
        Some(json!({"name": "x"})),
        404,
    )
    .await;
    let refused = expect(
        &app,
        &ops_token,
        Method::PATCH,
        "/admin/plans/standard",
        Some(json!({"active": false})),
        422,
    )
    .await;
    assert_eq!(field_errors(&refused)[0].0, "active");

    // An organization on the plan, created by the operator.
    let admin = organization_on(&app, &ops_token, "Growing Co", "growth").await;
    let growing = org_of(&admin);
    let admin_token = token(&admin);
    let subscription = subscriptions::get(app.db(), growing).await.unwrap();
    assert_eq!(subscription.plan.code, "growth");
    assert_eq!(subscription.status, SubscriptionStatus::Active);
    assert!(subscription.current_period_end.unwrap() > now() + Duration::days(29));

    // Archived: it can no longer be chosen, and its organizations keep working.
    let archived = expect(
        &app,
        &ops_token,
        Method::PATCH,
        "/admin/plans/growth",
        Some(json!({"active": false})),
        200,
    )
    .await;
    assert_eq!(archived["active"], false);
    let listed = expect(&app, &ops_token, Method::GET, "/admin/plans", None, 200).await;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["code"] == "growth" && p["active"] == false)
    );
    let refused = expect(
        &app,
        &ops_token,
        Method::POST,
        "/admin/organizations",
        Some(json!({"name": "Too Late", "plan": "growth"})),
        422,
    )
    .await;
    let (field, message) = &field_errors(&refused)[0];
    assert_eq!(field, "plan");
    assert!(
        message.contains("standard") && !message.contains("growth"),
        "{message}"
    );
    let refused = expect(
        &app,
        &ops_token,
        Method::POST,
        "/admin/organizations",
        Some(json!({"name": "Unknown Plan", "plan": "gold"})),
        422,
    )
    .await;
    assert_eq!(field_errors(&refused)[0].0, "plan");
    expect(&app, &admin_token, Method::GET, "/me", None, 200).await;
    expect(
        &app,
        &admin_token,
        Method::POST,
        "/prospects",
        Some(json!({"name": "Still working", "phone": "0712345678"})),
        201,
    )
    .await;
    let mine = expect(
        &app,
        &admin_token,
        Method::GET,
        "/billing/subscription",
        None,
        200,
    )
    .await;
    assert_eq!(mine["plan"]["code"], "growth");
    assert_eq!(mine["plan"]["active"], false);

    // Nobody else manages plans.
    for (method, path, body) in [
        (Method::GET, "/admin/plans", None),
        (Method::POST, "/admin/plans", Some(plan_body("mine"))),
        (
            Method::PATCH,
            "/admin/plans/standard",
            Some(json!({"price": {"amount": "1.00", "currency": "KES"}})),
        ),
    ] {
        let refused = expect(&app, &admin_token, method, path, body, 403).await;
        assert_eq!(refused["error"]["code"], "forbidden");
    }
    let standard = edge_server::billing::plans::find(app.db(), "standard")
        .await
        .unwrap();
    assert_eq!(standard.price, kes("2500"));

    assert_eq!(audit_count(&app, platform, "plan.create").await, 1);
    assert_eq!(audit_count(&app, platform, "plan.update").await, 2);
}

async fn new_organizations_start_with_a_subscription(app: TestApp) {
    // Sign-up: the default plan, with a first period as a trial.
    let admin = signup(&app, "Trial Traders", "admin@trial.example").await;
    let org = org_of(&admin);
    let row = organizations::Entity::find_by_id(org.as_uuid())
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    let subscription = subscriptions::get(app.db(), org).await.unwrap();
    assert_eq!(subscription.plan.code, "standard");
    assert_eq!(row.plan, "standard");
    assert_eq!(subscription.status, SubscriptionStatus::Active);
    assert_eq!(
        subscription.current_period_end,
        Some(row.created_at + Duration::days(30))
    );
    assert_eq!(subscription.grace_ends_at, None);
    let view = expect(
        &app,
        &token(&admin),
        Method::GET,
        "/billing/subscription",
        None,
        200,
    )
    .await;
    assert_eq!(view["status"], "active");
    assert_eq!(view["plan"]["code"], "standard");
    assert_eq!(view["plan"]["price"]["amount"], "2500.00");
    assert_eq!(view["periods"], json!([]), "a trial is not a paid period");

    // The operators' organization: the free platform plan, no end.
    let ops = operator(&app).await;
    let platform = subscriptions::get(app.db(), org_of(&ops)).await.unwrap();
    assert_eq!(platform.plan.code, "platform");
    assert!(platform.plan.is_free());
    assert_eq!(platform.current_period_end, None);

    // Seeded organizations.
    let seeded = edge_server::seed::run(
        &app.state.db,
        &edge_server::seed::SeedPlan {
            orgs: 1,
            prospects: 1,
            members: 1,
            relationship_every: 0,
            ..Default::default()
        },
        now(),
        |_| {},
    )
    .await
    .unwrap();
    let seeded = subscriptions::get(app.db(), seeded[0].id).await.unwrap();
    assert_eq!(seeded.plan.code, "enterprise");
    assert!(seeded.current_period_end.is_some());

    // On PostgreSQL row-level security guards both tenant tables: the server's runtime
    // role sees no subscription outside a tenant scope, and its own inside it.
    if app.backend == Backend::Postgres {
        let count = |db: sea_orm::DatabaseConnection, sql: &'static str| async move {
            db.query_one_raw(Statement::from_string(DatabaseBackend::Postgres, sql))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap()
        };
        assert_eq!(
            count(
                app.db().clone(),
                "SELECT COUNT(*) AS n FROM pg_class WHERE relrowsecurity \
                 AND relname IN ('subscriptions', 'subscription_periods')"
            )
            .await,
            2
        );
        assert_eq!(
            count(
                app.state.db.clone(),
                "SELECT COUNT(*) AS n FROM subscriptions"
            )
            .await,
            0
        );
        let own = edge_server::tenant_scope::in_organization(
            org,
            count(
                app.state.db.clone(),
                "SELECT COUNT(*) AS n FROM subscriptions",
            ),
        )
        .await;
        assert_eq!(own, 1);
    }

    // A user's role without billing_read does not see the subscription.
    let user =
        crate::tenancy::invite_and_accept(&app, &token(&admin), "u@trial.example", "user").await;
    expect(
        &app,
        &token(&user),
        Method::GET,
        "/billing/subscription",
        None,
        403,
    )
    .await;
}

async fn a_payment_extends_a_subscription_once(app: TestApp) {
    let admin = signup(&app, "Paying Co", "admin@paying.example").await;
    let org = org_of(&admin);
    let db = &app.state.db;
    let trial_end = subscriptions::get(db, org)
        .await
        .unwrap()
        .current_period_end
        .unwrap();
    let paid_at = now();
    let payment = uuid::Uuid::now_v7();

    // Paid before the trial ends: the new period starts where the trial ends.
    let first =
        subscriptions::apply_paid_period(db, org, "standard", payment, kes("2500"), paid_at)
            .await
            .unwrap();
    assert_eq!(first.status, SubscriptionStatus::Active);
    assert_eq!(
        first.current_period_end,
        Some(trial_end + Duration::days(30))
    );
    // The same payment again changes nothing.
    let again =
        subscriptions::apply_paid_period(db, org, "standard", payment, kes("2500"), paid_at)
            .await
            .unwrap();
    assert_eq!(again, first);
    assert_eq!(period_count(&app, org).await, 1);

    // Another payment, for another plan: it extends again and switches the plan.
    let upgrade = uuid::Uuid::now_v7();
    let upgraded =
        subscriptions::apply_paid_period(db, org, "enterprise", upgrade, kes("15000"), paid_at)
            .await
            .unwrap();
    assert_eq!(upgraded.plan.code, "enterprise");
    assert_eq!(
        upgraded.current_period_end,
        Some(trial_end + Duration::days(60))
    );
    let row = organizations::Entity::find_by_id(org.as_uuid())
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.plan, "enterprise", "organizations.plan follows");
    let shown = expect(
        &app,
        &token(&admin),
        Method::GET,
        "/organization",
        None,
        200,
    )
    .await;
    assert_eq!(shown["plan"], "enterprise");
    let view = expect(
        &app,
        &token(&admin),
        Method::GET,
        "/billing/subscription",
        None,
        200,
    )
    .await;
    let periods = view["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 2);
    assert_eq!(periods[0]["payment_id"], upgrade.to_string());
    assert_eq!(periods[0]["plan_code"], "enterprise");
    assert_eq!(periods[0]["amount"]["amount"], "15000.00");
    assert_eq!(periods[1]["payment_id"], payment.to_string());
    assert_eq!(
        periods[0]["starts_at"], periods[1]["ends_at"],
        "periods follow each other"
    );
    assert_eq!(audit_count(&app, org, "subscription.period_paid").await, 2);

    // A lapsed subscription restarts from the payment, not from its old end.
    let late = now() + Duration::days(400);
    let restarted = subscriptions::apply_paid_period(
        db,
        org,
        "standard",
        uuid::Uuid::now_v7(),
        kes("2500"),
        late,
    )
    .await
    .unwrap();
    assert_eq!(
        restarted.current_period_end,
        Some(late + Duration::days(30))
    );
    assert_eq!(restarted.plan.code, "standard");

    // Which plans the organization may start paying for: active paid plans, and its own
    // plan even once archived.
    let ops = operator(&app).await;
    expect(
        &app,
        &token(&ops),
        Method::POST,
        "/admin/plans",
        Some(plan_body("legacy")),
        201,
    )
    .await;
    subscriptions::assign_plan(
        app.db(),
        org,
        "legacy",
        Actor::System,
        &ClientInfo::default(),
        now(),
    )
    .await
    .unwrap();
    expect(
        &app,
        &token(&ops),
        Method::PATCH,
        "/admin/plans/legacy",
        Some(json!({"active": false})),
        200,
    )
    .await;
    let renew = subscriptions::payable_plan(db, org, "legacy", "plan")
        .await
        .unwrap();
    assert_eq!(renew.code, "legacy");
    let other = org_of(&signup(&app, "Newcomer", "admin@newcomer.example").await);
    for (org, code) in [(other, "legacy"), (org, "free"), (org, "gold")] {
        let refused = subscriptions::payable_plan(db, org, code, "plan").await;
        assert!(
            matches!(&refused, Err(Error::Validation(f)) if f[0].field == "plan"),
            "{code}: {refused:?}"
        );
    }
    assert_eq!(
        subscriptions::payable_plan(db, org, "enterprise", "plan")
            .await
            .unwrap()
            .code,
        "enterprise"
    );
    subscriptions::apply_paid_period(db, org, "legacy", uuid::Uuid::now_v7(), kes("1000"), late)
        .await
        .unwrap();

    // What cannot be applied.
    let free =
        subscriptions::apply_paid_period(db, org, "free", uuid::Uuid::now_v7(), kes("0"), paid_at)
            .await;
    assert!(
        matches!(&free, Err(Error::Validation(f)) if f[0].field == "plan_code"),
        "{free:?}"
    );
    let negative = subscriptions::apply_paid_period(
        db,
        org,
        "standard",
        uuid::Uuid::now_v7(),
        kes("-1"),
        paid_at,
    )
    .await;
    assert!(
        matches!(&negative, Err(Error::Validation(f)) if f[0].field == "amount"),
        "{negative:?}"
    );
    let unknown =
        subscriptions::apply_paid_period(db, org, "gold", uuid::Uuid::now_v7(), kes("1"), paid_at)
            .await;
    assert!(matches!(unknown, Err(Error::NotFound { entity: "plan" })));
    let nobody = subscriptions::apply_paid_period(
        db,
        OrgId::new(),
        "standard",
        uuid::Uuid::now_v7(),
        kes("2500"),
        paid_at,
    )
    .await;
    assert!(matches!(nobody, Err(Error::NotFound { .. })));
    assert_eq!(period_count(&app, org).await, 4);
}

async fn concurrent_duplicate_payments_extend_once(app: TestApp) {
    let admin = signup(&app, "Racing Co", "admin@racing.example").await;
    let org = org_of(&admin);
    let db = app.state.db.clone();
    let trial_end = subscriptions::get(&db, org)
        .await
        .unwrap()
        .current_period_end
        .unwrap();
    let paid_at = now();

    // The same confirmation, delivered eight times at once.
    let payment = uuid::Uuid::now_v7();
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                subscriptions::apply_paid_period(
                    &db,
                    org,
                    "standard",
                    payment,
                    kes("2500"),
                    paid_at,
                )
                .await
            })
        })
        .collect();
    for call in calls {
        let subscription = call.await.unwrap().unwrap();
        assert_eq!(
            subscription.current_period_end,
            Some(trial_end + Duration::days(30))
        );
    }
    assert_eq!(period_count(&app, org).await, 1);
    assert_eq!(audit_count(&app, org, "subscription.period_paid").await, 1);
    // Behind the lock, the database itself refuses a second period for one payment.
    let period = subscription_periods::Entity::find()
        .filter(subscription_periods::Column::OrganizationId.eq(org.as_uuid()))
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    let twice = subscription_periods::Entity::insert(subscription_periods::ActiveModel::from(
        subscription_periods::Model {
            id: uuid::Uuid::now_v7(),
            ..period
        },
    ))
    .exec_without_returning(app.db())
    .await
    .unwrap_err();
    assert!(
        matches!(twice.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
        "{twice:?}"
    );

    // Six different payments at once: each extends once, none is lost.
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                subscriptions::apply_paid_period(
                    &db,
                    org,
                    "standard",
                    uuid::Uuid::now_v7(),
                    kes("2500"),
                    paid_at,
                )
                .await
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let subscription = subscriptions::get(&db, org).await.unwrap();
    assert_eq!(
        subscription.current_period_end,
        Some(trial_end + Duration::days(30 * 7))
    );
    assert_eq!(period_count(&app, org).await, 7);
}

async fn subscriptions_lapse_into_grace_then_suspension(app: TestApp) {
    let clock = FixedClock::new(now());
    let admin = signup(&app, "Lapsing Co", "admin@lapsing.example").await;
    let org = org_of(&admin);
    let db = &app.state.db;
    let period_end = subscriptions::get(db, org)
        .await
        .unwrap()
        .current_period_end
        .unwrap();

    let moved = subscriptions::advance(db, clock.now()).await.unwrap();
    assert!(of(&moved, org).is_empty());
    clock.set(period_end - Duration::seconds(1));
    assert!(of(&subscriptions::advance(db, clock.now()).await.unwrap(), org).is_empty());

    // The period ends: grace, for the plan's seven days.
    clock.set(period_end);
    let moved = subscriptions::advance(db, clock.now()).await.unwrap();
    assert_eq!(
        of(&moved, org),
        [(SubscriptionStatus::Active, SubscriptionStatus::Grace)]
    );
    let grace_ends = period_end + Duration::days(7);
    assert_eq!(moved[0].grace_ends_at, Some(grace_ends));
    let subscription = subscriptions::get(db, org).await.unwrap();
    assert_eq!(subscription.status, SubscriptionStatus::Grace);
    assert_eq!(subscription.grace_ends_at, Some(grace_ends));
    // Running it again changes nothing.
    assert!(of(&subscriptions::advance(db, clock.now()).await.unwrap(), org).is_empty());

    // Grace ends: suspended, once, however many nodes run it at once.
    clock.set(grace_ends);
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let db = db.clone();
            let now = clock.now();
            tokio::spawn(async move { subscriptions::advance(&db, now).await })
        })
        .collect();
    let mut moved = Vec::new();
    for run in runs {
        moved.extend(run.await.unwrap().unwrap());
    }
    assert_eq!(
        of(&moved, org),
        [(SubscriptionStatus::Grace, SubscriptionStatus::Suspended)]
    );
    assert_eq!(
        subscriptions::get(db, org).await.unwrap().status,
        SubscriptionStatus::Suspended
    );
    assert_eq!(audit_count(&app, org, "subscription.grace").await, 1);
    assert_eq!(audit_count(&app, org, "subscription.suspend").await, 1);
    let view = expect(
        &app,
        &token(&admin),
        Method::GET,
        "/billing/subscription",
        None,
        200,
    )
    .await;
    assert_eq!(view["status"], "suspended");
    assert_eq!(
        view["grace_ends_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        grace_ends
    );

    // A subscription that lapsed long ago goes through both steps in one run.
    let other = org_of(&signup(&app, "Long Gone", "admin@gone.example").await);
    let end = subscriptions::get(db, other)
        .await
        .unwrap()
        .current_period_end
        .unwrap();
    let moved = subscriptions::advance(db, end + Duration::days(60))
        .await
        .unwrap();
    assert_eq!(
        of(&moved, other),
        [
            (SubscriptionStatus::Active, SubscriptionStatus::Grace),
            (SubscriptionStatus::Grace, SubscriptionStatus::Suspended),
        ]
    );
}

/// Moves the organization's subscription on, through grace, into suspension.
pub(crate) async fn suspend(app: &TestApp, org: OrgId) {
    let end = subscriptions::get(app.db(), org)
        .await
        .unwrap()
        .current_period_end
        .unwrap();
    let moved = subscriptions::advance(&app.state.db, end + Duration::days(8))
        .await
        .unwrap();
    assert_eq!(
        of(&moved, org).last(),
        Some(&(SubscriptionStatus::Grace, SubscriptionStatus::Suspended))
    );
}

/// A catalog path with every parameter filled with an id that exists nowhere.
fn nowhere(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&uuid::Uuid::now_v7().to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

async fn a_suspended_organization_can_read_and_pay_but_not_use_paid_features(app: TestApp) {
    let admin = signup(&app, "Overdue Co", "admin@overdue.example").await;
    let org = org_of(&admin);
    let admin_token = token(&admin);
    // Walking the whole catalog takes more than the standard plan's burst.
    subscriptions::assign_plan(
        app.db(),
        org,
        "enterprise",
        Actor::System,
        &ClientInfo::default(),
        now(),
    )
    .await
    .unwrap();
    let key = expect(
        &app,
        &admin_token,
        Method::POST,
        "/api-keys",
        Some(json!({"name": "erp"})),
        201,
    )
    .await;
    let key = key["key"].as_str().unwrap().to_owned();
    let prospect = json!({"name": "Achieng", "phone": "0712345678"});
    let created = send(
        &app,
        &admin_token,
        Method::POST,
        "/prospects",
        Some(prospect.clone()),
    )
    .await;
    assert_eq!(created.status(), 201);
    assert!(created.headers().get("edge-subscription").is_none());

    // In grace everything works, with a warning.
    let end = subscriptions::get(app.db(), org)
        .await
        .unwrap()
        .current_period_end
        .unwrap();
    subscriptions::advance(&app.state.db, end).await.unwrap();
    let grace = send(
        &app,
        &admin_token,
        Method::POST,
        "/prospects",
        Some(prospect.clone()),
    )
    .await;
    assert_eq!(grace.status(), 201);
    assert_eq!(
        grace.headers()["edge-subscription"],
        format!(
            "grace; ends={}",
            (end + Duration::days(7)).to_rfc3339_opts(SecondsFormat::Secs, true)
        )
        .as_str()
    );

    suspend(&app, org).await;
    let refused = send(
        &app,
        &admin_token,
        Method::POST,
        "/prospects",
        Some(prospect.clone()),
    )
    .await;
    assert_eq!(refused.status(), 402);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "subscription_suspended");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("POST /api/v1/billing/subscription"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["status"], "suspended");
    // API keys too.
    let by_key = send(
        &app,
        &key,
        Method::POST,
        "/prospects",
        Some(prospect.clone()),
    )
    .await;
    assert_eq!(by_key.status(), 402);
    // Reading, exporting and billing still work.
    let listed = send(&app, &admin_token, Method::GET, "/prospects", None).await;
    assert_eq!(listed.status(), 200);
    assert_eq!(listed.headers()["edge-subscription"], "suspended");
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    let view = expect(
        &app,
        &admin_token,
        Method::GET,
        "/billing/subscription",
        None,
        200,
    )
    .await;
    assert_eq!(view["status"], "suspended");
    expect(&app, &key, Method::GET, "/me", None, 200).await;

    // Every route of the catalog: the paid features answer 402, the rest do not.
    let mut routes = catalog();
    routes.sort_by_key(|r| r.path == "/auth/logout");
    let mut blocked = 0;
    for route in routes {
        if route.access == Access::Public {
            continue;
        }
        let body = matches!(route.method.as_str(), "POST" | "PATCH" | "PUT").then(|| json!({}));
        let response = send(
            &app,
            &admin_token,
            route.method.clone(),
            &nowhere(route.path),
            body,
        )
        .await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        if route.path.starts_with("/admin/") {
            assert_eq!(status, 403, "{} {}: {text}", route.method, route.path);
        } else if route.available_when_suspended {
            assert_ne!(status, 402, "{} {}: {text}", route.method, route.path);
        } else {
            assert_eq!(status, 402, "{} {}: {text}", route.method, route.path);
            assert!(text.contains("subscription_suspended"), "{text}");
            blocked += 1;
        }
    }
    assert!(blocked >= 30, "only {blocked} paid routes");

    // The operator is never blocked, not even with their own organization suspended.
    let ops = operator(&app).await;
    rows::Entity::update_many()
        .col_expr(rows::Column::Status, Expr::value("suspended"))
        .filter(rows::Column::OrganizationId.eq(org_of(&ops).as_uuid()))
        .exec(app.db())
        .await
        .unwrap();
    expect(
        &app,
        &token(&ops),
        Method::POST,
        "/admin/plans",
        Some(plan_body("after-hours")),
        201,
    )
    .await;

    // Paying brings the paid features back at once.
    let admin = crate::auth::login(
        &app,
        json!({"email": "admin@overdue.example", "password": PASSWORD}),
    )
    .await;
    assert_eq!(admin.status(), 200, "a suspended organization can sign in");
    let admin: Value = admin.json().await.unwrap();
    let admin_token = token(&admin);
    subscriptions::apply_paid_period(
        &app.state.db,
        org,
        "standard",
        uuid::Uuid::now_v7(),
        kes("2500"),
        now(),
    )
    .await
    .unwrap();
    let created = send(
        &app,
        &admin_token,
        Method::POST,
        "/prospects",
        Some(prospect),
    )
    .await;
    assert_eq!(created.status(), 201);
    assert!(created.headers().get("edge-subscription").is_none());
}

async fn free_plans_never_lapse(app: TestApp) {
    let ops = operator(&app).await;
    let ops_token = token(&ops);
    let admin = organization_on(&app, &ops_token, "Chama Group", "free").await;
    let org = org_of(&admin);
    let subscription = subscriptions::get(app.db(), org).await.unwrap();
    assert_eq!(subscription.plan.code, "free");
    assert_eq!(subscription.current_period_end, None);

    let moved = subscriptions::advance(&app.state.db, now() + Duration::days(3650))
        .await
        .unwrap();
    assert!(of(&moved, org).is_empty());
    assert!(
        of(&moved, org_of(&ops)).is_empty(),
        "the platform plan is free too"
    );
    assert_eq!(
        subscriptions::get(app.db(), org).await.unwrap().status,
        SubscriptionStatus::Active
    );
    expect(
        &app,
        &token(&admin),
        Method::POST,
        "/prospects",
        Some(json!({"name": "Member", "phone": "0712345678"})),
        201,
    )
    .await;

    // Moving a free organization to a paid plan starts a period; back to free ends it.
    let now = now();
    let paid = subscriptions::assign_plan(
        app.db(),
        org,
        "standard",
        Actor::System,
        &ClientInfo::default(),
        now,
    )
    .await
    .unwrap();
    assert_eq!(paid.current_period_end, Some(now + Duration::days(30)));
    let free = subscriptions::assign_plan(
        app.db(),
        org,
        "free",
        Actor::System,
        &ClientInfo::default(),
        now,
    )
    .await
    .unwrap();
    assert_eq!(free.current_period_end, None);
    assert_eq!(free.status, SubscriptionStatus::Active);
}

async fn limits_come_from_the_plans_table(app: TestApp) {
    let ops = operator(&app).await;
    let ops_token = token(&ops);
    expect(
        &app,
        &ops_token,
        Method::POST,
        "/admin/plans",
        Some(plan_body("metered")),
        201,
    )
    .await;
    let admin = organization_on(&app, &ops_token, "Metered Co", "metered").await;
    let admin_token = token(&admin);

    let usage = expect(&app, &admin_token, Method::GET, "/usage", None, 200).await;
    assert_eq!(usage["limits"]["requests_per_minute"], 6000);
    assert_eq!(usage["limits"]["max_members"], 2);
    assert_eq!(usage["limits"]["monthly_messages"], 2000);
    // One API key on this plan.
    expect(
        &app,
        &admin_token,
        Method::POST,
        "/api-keys",
        Some(json!({"name": "one"})),
        201,
    )
    .await;
    expect(
        &app,
        &admin_token,
        Method::POST,
        "/api-keys",
        Some(json!({"name": "two"})),
        409,
    )
    .await;
    for _ in 0..5 {
        expect(&app, &admin_token, Method::GET, "/me", None, 200).await;
    }

    // The operator throttles the plan: the next requests feel it.
    expect(
        &app,
        &ops_token,
        Method::PATCH,
        "/admin/plans/metered",
        Some(json!({"requests_per_minute": 1, "request_burst": 1})),
        200,
    )
    .await;
    let mut limited = false;
    for _ in 0..3 {
        let response = send(&app, &admin_token, Method::GET, "/me", None).await;
        if response.status() == 429 {
            assert!(response.headers().get("retry-after").is_some());
            limited = true;
            break;
        }
        assert_eq!(response.status(), 200);
    }
    assert!(limited, "the plan's new rate limit did not apply");
    // Other plans are untouched.
    let other = signup(&app, "Unmetered Co", "admin@unmetered.example").await;
    for _ in 0..3 {
        expect(&app, &token(&other), Method::GET, "/me", None, 200).await;
    }
}

/// Organizations that exist when the migration runs get a subscription to their plan.
async fn the_migration_subscribes_existing_organizations(backend: Backend) {
    use edge_server::migrations::Migrator;
    use sea_orm_migration::MigratorTrait as _;

    let dir = tempfile::tempdir().unwrap();
    let (url, _database) = match backend {
        Backend::Sqlite => (crate::helpers::sqlite_url(dir.path()), None),
        Backend::Postgres => {
            let admin = crate::helpers::postgres_admin_url().unwrap();
            let database = crate::helpers::PgDatabase::create(&admin).await;
            (database.url.clone(), Some(database))
        }
    };
    let db = Database::connect(url.as_str()).await.unwrap();
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let ours = names
        .iter()
        .position(|n| n == "m20261124_000009_plans_subscriptions")
        .unwrap();
    Migrator::up(&db, Some(u32::try_from(ours).unwrap()))
        .await
        .unwrap();
    let mut orgs = Vec::new();
    for plan in ["standard", "free", "gold"] {
        let org = organizations::Model::new_active(
            format!("before-{plan}"),
            format!("Before {plan}"),
            "KES".into(),
            "KE".into(),
            plan.into(),
            now(),
        );
        organizations::Entity::insert(organizations::ActiveModel::from(org.clone()))
            .exec_without_returning(&db)
            .await
            .unwrap();
        orgs.push(OrgId::from_uuid(org.id));
    }

    let check = |db: sea_orm::DatabaseConnection| {
        let orgs = orgs.clone();
        async move {
            let started = now();
            assert_eq!(
                edge_server::billing::plans::list(&db, true)
                    .await
                    .unwrap()
                    .len(),
                4
            );
            let standard = subscriptions::get(&db, orgs[0]).await.unwrap();
            assert_eq!(standard.plan.code, "standard");
            assert_eq!(standard.status, SubscriptionStatus::Active);
            let end = standard.current_period_end.unwrap();
            assert!(end > started + Duration::days(29) && end <= started + Duration::days(30));
            let free = subscriptions::get(&db, orgs[1]).await.unwrap();
            assert_eq!(free.plan.code, "free");
            assert_eq!(free.current_period_end, None);
            // An unknown plan was the standard plan's limits; now it is the standard plan.
            let unknown = subscriptions::get(&db, orgs[2]).await.unwrap();
            assert_eq!(unknown.plan.code, "standard");
            let row = organizations::Entity::find_by_id(orgs[2].as_uuid())
                .one(&db)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.plan, "standard");
        }
    };
    Migrator::up(&db, None).await.unwrap();
    check(db.clone()).await;

    // Down to before this migration, and up again.
    let after = u32::try_from(names.len() - ours).unwrap();
    Migrator::down(&db, Some(after)).await.unwrap();
    assert!(
        rows::Entity::find().all(&db).await.is_err(),
        "the tables are gone"
    );
    Migrator::up(&db, None).await.unwrap();
    check(db.clone()).await;
    db.close().await.unwrap();
}
