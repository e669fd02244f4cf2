//! Targets over the API: progress computed from the data (completed activities, won
//! deals), lifecycle, validation messages, lists, visibility per role, other tenants.

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::{signup, token};
use crate::crm_support::{
    audit_actions, expect, field_errors, ids, only_own_records, relationship, user_id,
};
use crate::helpers::{TestApp, on_both_backends};
use crate::tenancy::invite_and_accept;

on_both_backends!(
    target_progress_is_computed_from_completed_activities,
    bad_target_values_are_refused_with_clear_messages,
    users_see_the_organizations_and_their_own_targets,
    other_tenants_targets_are_not_found,
    won_deals_count_towards_revenue_and_deal_targets,
);

/// Yesterday and tomorrow in East Africa Time, so the period always contains now.
fn this_period() -> (String, String) {
    let today = (chrono::Utc::now() + chrono::Duration::hours(3)).date_naive();
    (
        (today - chrono::Duration::days(1)).to_string(),
        (today + chrono::Duration::days(1)).to_string(),
    )
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    expect(app, token, Method::POST, "/targets", Some(body), 201).await
}

async fn get(app: &TestApp, token: &str, target: &Value) -> Value {
    let id = target["id"].as_str().unwrap();
    expect(
        app,
        token,
        Method::GET,
        &format!("/targets/{id}"),
        None,
        200,
    )
    .await
}

async fn list(app: &TestApp, token: &str, query: &str) -> Value {
    expect(
        app,
        token,
        Method::GET,
        &format!("/targets?{query}"),
        None,
        200,
    )
    .await
}

/// Creates an activity on `subject` owned by `owner` and completes it when `done`.
async fn activity(app: &TestApp, token: &str, subject: &str, owner: &str, done: bool) -> String {
    let created = expect(
        app,
        token,
        Method::POST,
        "/activities",
        Some(
            json!({"kind": "call", "subject_type": "relationship", "subject_id": subject,
                    "title": "Sales call", "owner_id": owner}),
        ),
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    if done {
        expect(
            app,
            token,
            Method::POST,
            &format!("/activities/{id}/complete"),
            None,
            200,
        )
        .await;
    }
    id
}

fn progress(target: &Value) -> (i64, i64, i64) {
    let p = &target["progress"];
    (
        p["achieved"].as_i64().unwrap(),
        p["goal"].as_i64().unwrap(),
        p["percent"].as_i64().unwrap(),
    )
}

async fn target_progress_is_computed_from_completed_activities(app: TestApp) {
    let admin = signup(&app, "Lengo", "admin@lengo.example").await;
    let t = token(&admin);
    let me = user_id(&admin);
    let colleague = invite_and_accept(&app, &t, "colleague@lengo.example", "manager").await;
    let colleague_id = user_id(&colleague);
    let customer = relationship(&app, &t, json!({"name": "Customer"})).await;
    let (start, end) = this_period();

    let mut mine = Vec::new();
    for done in [true, true, true, false] {
        mine.push(activity(&app, &t, &customer, &me, done).await);
    }
    activity(&app, &t, &customer, &colleague_id, true).await;

    let personal = create(
        &app,
        &t,
        json!({"name": "Calls this week", "metric": "activities_completed", "user_ids": [me],
               "period_start": start, "period_end": end, "goal": 5}),
    )
    .await;
    assert_eq!(personal["scope"], "personal");
    assert_eq!(personal["user_ids"], json!([me]));
    assert_eq!(personal["goal"], 5);
    assert_eq!(personal["period_start"], start.as_str());
    assert_eq!(progress(&personal), (3, 5, 60));

    let team = create(
        &app,
        &t,
        json!({"name": "Team calls", "metric": "activities_completed",
               "user_ids": [me, colleague_id, me], "period_start": start, "period_end": end, "goal": 4}),
    )
    .await;
    assert_eq!(team["scope"], "team");
    assert_eq!(
        team["user_ids"].as_array().unwrap().len(),
        2,
        "duplicates dropped"
    );
    assert_eq!(progress(&team), (4, 4, 100));
    let everyone = create(
        &app,
        &t,
        json!({"name": "Company calls", "metric": "activities_completed",
               "period_start": start, "period_end": end, "goal": 3}),
    )
    .await;
    assert_eq!(everyone["scope"], "organization");
    assert_eq!(progress(&everyone), (4, 3, 133), "beyond the goal");
    let last_year = create(
        &app,
        &t,
        json!({"name": "Old", "metric": "activities_completed", "user_ids": [me],
               "period_start": "2020-01-01", "period_end": "2020-12-31", "goal": 10}),
    )
    .await;
    assert_eq!(progress(&last_year), (0, 10, 0), "outside the period");

    // Progress follows the data: reopened and deleted activities stop counting.
    expect(
        &app,
        &t,
        Method::POST,
        &format!("/activities/{}/reopen", mine[0]),
        None,
        200,
    )
    .await;
    expect(
        &app,
        &t,
        Method::DELETE,
        &format!("/activities/{}", mine[1]),
        None,
        204,
    )
    .await;
    activity(&app, &t, &customer, &me, true).await;
    assert_eq!(progress(&get(&app, &t, &personal).await), (2, 5, 40));
    assert_eq!(progress(&get(&app, &t, &everyone).await), (3, 3, 100));

    // Changes: goal, name, members.
    let id = personal["id"].as_str().unwrap().to_owned();
    let changed = expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/targets/{id}"),
        Some(json!({"name": "My calls", "goal": 8, "metric": "activities_completed"})),
        200,
    )
    .await;
    assert_eq!(changed["name"], "My calls");
    assert_eq!(progress(&changed), (2, 8, 25));
    let moved = expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/targets/{id}"),
        Some(json!({"user_ids": [colleague_id]})),
        200,
    )
    .await;
    assert_eq!(progress(&moved), (1, 8, 12));

    // Lists carry progress and filter.
    let page = list(&app, &t, "").await;
    assert_eq!(
        ids(&page),
        [
            last_year["id"].as_str().unwrap(),
            everyone["id"].as_str().unwrap(),
            team["id"].as_str().unwrap(),
            id.as_str()
        ]
    );
    assert_eq!(progress(&page["items"][1]), (3, 3, 100));
    assert_eq!(
        ids(&list(&app, &t, &format!("user_id={colleague_id}")).await),
        [team["id"].as_str().unwrap(), id.as_str()]
    );
    assert_eq!(
        ids(&list(&app, &t, "user_id=me").await),
        [
            last_year["id"].as_str().unwrap(),
            team["id"].as_str().unwrap()
        ]
    );
    assert_eq!(ids(&list(&app, &t, "active_on=2020-06-15").await).len(), 1);
    assert!(ids(&list(&app, &t, "metric=revenue_won,deals_won").await).is_empty());
    let first = list(&app, &t, "limit=3").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = list(&app, &t, &format!("limit=3&cursor={cursor}")).await;
    assert_eq!(ids(&rest), [personal["id"].as_str().unwrap()]);

    expect(
        &app,
        &t,
        Method::DELETE,
        &format!("/targets/{id}"),
        None,
        204,
    )
    .await;
    expect(&app, &t, Method::GET, &format!("/targets/{id}"), None, 404).await;
    assert_eq!(
        list(&app, &t, "").await["items"].as_array().unwrap().len(),
        3
    );
    let mut actions = audit_actions(&app, &t, &id).await;
    actions.sort();
    assert_eq!(
        actions,
        [
            "target.create",
            "target.delete",
            "target.update",
            "target.update"
        ]
    );
}

async fn bad_target_values_are_refused_with_clear_messages(app: TestApp) {
    let admin = signup(&app, "Kipimo", "admin@kipimo.example").await;
    let t = token(&admin);
    let member = invite_and_accept(&app, &t, "agent@kipimo.example", "user").await;
    let agent = token(&member);
    let (start, end) = this_period();

    let missing = expect(&app, &t, Method::POST, "/targets", Some(json!({})), 422).await;
    let fields: Vec<String> = field_errors(&missing).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        ["name", "metric", "period_start", "period_end", "goal"]
    );

    let bad = expect(
        &app,
        &t,
        Method::POST,
        "/targets",
        Some(
            json!({"name": "x", "metric": "calls", "period_start": "01/11/2026",
                    "period_end": end, "goal": 5, "user_ids": ["boss", uuid::Uuid::now_v7()]}),
        ),
        422,
    )
    .await;
    assert_eq!(
        field_errors(&bad),
        [
            (
                "metric".to_owned(),
                "must be one of: revenue_won, deals_won, activities_completed".to_owned()
            ),
            (
                "period_start".to_owned(),
                "must be a date, YYYY-MM-DD".to_owned()
            ),
            (
                "user_ids[0]".to_owned(),
                "must be a user id (a UUID)".to_owned()
            ),
            (
                "user_ids[1]".to_owned(),
                "is not an active member of this organization".to_owned()
            ),
        ]
    );

    let backwards = expect(
        &app,
        &t,
        Method::POST,
        "/targets",
        Some(
            json!({"name": "x", "metric": "deals_won", "period_start": end,
                    "period_end": start, "goal": 0}),
        ),
        422,
    )
    .await;
    assert_eq!(
        field_errors(&backwards),
        [
            (
                "period_end".to_owned(),
                "must be on or after period_start".to_owned()
            ),
            (
                "goal".to_owned(),
                "must be a whole number above zero for deals_won".to_owned()
            ),
        ]
    );

    // Revenue goals are money in the organization's currency.
    let counted = expect(
        &app,
        &t,
        Method::POST,
        "/targets",
        Some(
            json!({"name": "Revenue", "metric": "revenue_won", "period_start": start,
                    "period_end": end, "goal": 150000}),
        ),
        422,
    )
    .await;
    let problem = &field_errors(&counted)[0];
    assert_eq!(problem.0, "goal");
    assert!(problem.1.contains("\"currency\": \"KES\""), "{problem:?}");
    let dollars = expect(
        &app,
        &t,
        Method::POST,
        "/targets",
        Some(
            json!({"name": "Revenue", "metric": "revenue_won", "period_start": start,
                    "period_end": end, "goal": {"amount": "1500.00", "currency": "USD"}}),
        ),
        422,
    )
    .await;
    assert_eq!(
        field_errors(&dollars),
        [(
            "goal.currency".to_owned(),
            "must be KES, the organization's currency".to_owned()
        )]
    );
    let cents = expect(
        &app,
        &t,
        Method::POST,
        "/targets",
        Some(
            json!({"name": "Revenue", "metric": "revenue_won", "period_start": start,
                    "period_end": end, "goal": {"amount": "10.505", "currency": "KES"}}),
        ),
        422,
    )
    .await;
    assert_eq!(field_errors(&cents)[0].0, "goal.amount");

    // Users do not set targets.
    let refused = expect(
        &app,
        &agent,
        Method::POST,
        "/targets",
        Some(
            json!({"name": "Mine", "metric": "activities_completed", "period_start": start,
                    "period_end": end, "goal": 3}),
        ),
        403,
    )
    .await;
    assert_eq!(refused["error"]["code"], "forbidden");
    assert!(
        ids(&list(&app, &t, "").await).is_empty(),
        "nothing was kept"
    );

    let target = create(
        &app,
        &t,
        json!({"name": "Calls", "metric": "activities_completed", "period_start": start,
               "period_end": end, "goal": 3}),
    )
    .await;
    let path = format!("/targets/{}", target["id"].as_str().unwrap());
    let other_metric = expect(
        &app,
        &t,
        Method::PATCH,
        &path,
        Some(json!({"metric": "deals_won"})),
        422,
    )
    .await;
    assert_eq!(field_errors(&other_metric)[0].0, "metric");
    let shorter = expect(
        &app,
        &t,
        Method::PATCH,
        &path,
        Some(json!({"period_end": "2000-01-01"})),
        422,
    )
    .await;
    assert_eq!(field_errors(&shorter)[0].0, "period_end");
    let unchanged = get(&app, &t, &target).await;
    assert_eq!(unchanged["period_end"], end.as_str());
    expect(
        &app,
        &agent,
        Method::PATCH,
        &path,
        Some(json!({"goal": 1})),
        403,
    )
    .await;

    for (query, field) in [
        ("metric=calls", "metric"),
        ("active_on=today", "active_on"),
        ("user_id=someone", "user_id"),
    ] {
        let refused = expect(
            &app,
            &t,
            Method::GET,
            &format!("/targets?{query}"),
            None,
            422,
        )
        .await;
        assert_eq!(field_errors(&refused)[0].0, field, "{query}");
    }
}

async fn users_see_the_organizations_and_their_own_targets(app: TestApp) {
    let admin = signup(&app, "Binafsi", "admin@binafsi.example").await;
    let t = token(&admin);
    let member = invite_and_accept(&app, &t, "agent@binafsi.example", "user").await;
    let agent = token(&member);
    let agent_id = user_id(&member);
    let manager = invite_and_accept(&app, &t, "lead@binafsi.example", "manager").await;
    let lead = token(&manager);
    let lead_id = user_id(&manager);
    let (start, end) = this_period();
    let target = |name: &str, users: Value| {
        json!({"name": name, "metric": "activities_completed", "user_ids": users,
               "period_start": start, "period_end": end, "goal": 10})
    };
    let company = create(&app, &t, target("Company", json!([]))).await;
    let agents = create(&app, &lead, target("Agent", json!([agent_id]))).await;
    let leads = create(&app, &lead, target("Lead", json!([lead_id]))).await;
    let team = create(&app, &t, target("Team", json!([agent_id, lead_id]))).await;
    let id = |t: &Value| t["id"].as_str().unwrap().to_owned();
    assert_eq!(ids(&list(&app, &agent, "").await).len(), 4);

    only_own_records(&app, &t).await;
    assert_eq!(
        ids(&list(&app, &agent, "").await),
        [id(&team), id(&agents), id(&company)]
    );
    assert_eq!(
        ids(&list(&app, &agent, "user_id=me").await),
        [id(&team), id(&agents)]
    );
    expect(
        &app,
        &agent,
        Method::GET,
        &format!("/targets/{}", id(&leads)),
        None,
        404,
    )
    .await;
    get(&app, &agent, &company).await;
    assert_eq!(ids(&list(&app, &lead, "").await).len(), 4);
    assert_eq!(ids(&list(&app, &t, "").await).len(), 4);
}

async fn other_tenants_targets_are_not_found(app: TestApp) {
    let alpha = signup(&app, "Alpha", "admin@alpha.example").await;
    let beta = signup(&app, "Beta", "admin@beta.example").await;
    let (a, b) = (token(&alpha), token(&beta));
    let (start, end) = this_period();
    let target = create(
        &app,
        &a,
        json!({"name": "Alpha's target", "metric": "activities_completed",
               "user_ids": [user_id(&alpha)], "period_start": start, "period_end": end, "goal": 7}),
    )
    .await;
    let path = format!("/targets/{}", target["id"].as_str().unwrap());
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"goal": 1}))),
        (Method::DELETE, None),
    ] {
        expect(&app, &b, method, &path, body, 404).await;
    }
    // Beta cannot point a target at Alpha's people either.
    let refused = expect(
        &app,
        &b,
        Method::POST,
        "/targets",
        Some(
            json!({"name": "x", "metric": "activities_completed", "user_ids": [user_id(&alpha)],
                    "period_start": start, "period_end": end, "goal": 1}),
        ),
        422,
    )
    .await;
    assert_eq!(field_errors(&refused)[0].0, "user_ids[0]");
    assert!(ids(&list(&app, &b, "").await).is_empty());
    assert_eq!(get(&app, &a, &target).await["goal"], 7);
}

async fn won_deals_count_towards_revenue_and_deal_targets(app: TestApp) {
    let admin = signup(&app, "Mauzo", "admin@mauzo.example").await;
    let t = token(&admin);
    let me = user_id(&admin);
    let seller = invite_and_accept(&app, &t, "seller@mauzo.example", "manager").await;
    let seller_id = user_id(&seller);
    let (start, end) = this_period();
    let deal = |title: &str, amount: &str, owner: &str| json!({"title": title, "value": {"amount": amount, "currency": "KES"}, "owner_id": owner});
    let mut won = Vec::new();
    for (title, amount, owner) in [
        ("Fridges", "120000.00", me.as_str()),
        ("Freezers", "45000.50", me.as_str()),
        ("Ovens", "80000.00", seller_id.as_str()),
        ("Lost one", "999999.00", me.as_str()),
        ("Open one", "500000.00", me.as_str()),
    ] {
        let created = expect(
            &app,
            &t,
            Method::POST,
            "/deals",
            Some(deal(title, amount, owner)),
            201,
        )
        .await;
        won.push(created["id"].as_str().unwrap().to_owned());
    }
    for id in &won[..3] {
        expect(
            &app,
            &t,
            Method::POST,
            &format!("/deals/{id}/won"),
            Some(json!({})),
            200,
        )
        .await;
    }
    expect(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{}/lost", won[3]),
        Some(json!({"reason": "price"})),
        200,
    )
    .await;

    let revenue = create(
        &app,
        &t,
        json!({"name": "My revenue", "metric": "revenue_won", "user_ids": [me],
               "period_start": start, "period_end": end,
               "goal": {"amount": "150000.00", "currency": "KES"}}),
    )
    .await;
    assert_eq!(revenue["goal"]["amount"], "150000.00");
    assert_eq!(revenue["progress"]["achieved"]["amount"], "165000.50");
    assert_eq!(revenue["progress"]["achieved"]["currency"], "KES");
    assert_eq!(revenue["progress"]["percent"], 110);
    let company = create(
        &app,
        &t,
        json!({"name": "Company deals", "metric": "deals_won",
               "period_start": start, "period_end": end, "goal": 4}),
    )
    .await;
    assert_eq!(progress(&company), (3, 4, 75));

    // A deal about a subject: activities may be about deals too.
    let note = expect(
        &app,
        &t,
        Method::POST,
        "/activities",
        Some(json!({"kind": "note", "subject_type": "deal", "subject_id": won[0], "title": "Delivered"})),
        201,
    )
    .await;
    assert_eq!(note["subject_type"], "deal");
    let missing = expect(
        &app,
        &t,
        Method::POST,
        "/activities",
        Some(json!({"kind": "note", "subject_type": "deal", "subject_id": uuid::Uuid::now_v7(), "title": "x"})),
        422,
    )
    .await;
    assert_eq!(field_errors(&missing)[0].1, "no such deal");
}
