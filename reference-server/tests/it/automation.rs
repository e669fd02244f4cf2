//! Automation rules through the HTTP API: a stage change that sends a WhatsApp template
//! through the fake Graph and charges the wallet once even when the event is handled
//! again, rules that would trigger each other forever stopping, field-by-field
//! validation, the run log, and the database actions (task, owner, notification, webhook).

use reqwest::Method;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::{Value, json};

use crate::chat_socketio::team;
use crate::helpers::{Backend, TestApp, for_each_backend, on_both_backends};
use crate::tenancy::{invite_and_accept, send};
use crate::whatsapp::{
    PNID_A, WABA_A, available, connect, count, count_until, credit, get_until, graph, server, shop,
};
use edge_server::entities::{automation_runs, event_queue};

for_each_backend!(a_stage_rule_sends_a_template_and_charges_once_even_when_handled_again);
on_both_backends!(
    rules_that_trigger_each_other_stop,
    rules_are_checked_field_by_field_and_managed_by_admins,
    database_actions_run_in_order_and_are_logged,
);

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// The fields a 422 names, in order.
fn fields_of(envelope: &Value) -> Vec<String> {
    envelope["error"]["details"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no fields in {envelope}"))
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect()
}

async fn create_rule(app: &TestApp, token: &str, body: Value) -> Value {
    let created = send(app, token, Method::POST, "/automation/rules", Some(body)).await;
    assert_eq!(created.status(), 201);
    json_of(created).await
}

async fn move_deal(app: &TestApp, token: &str, deal: &str, stage: &str) {
    let moved = send(
        app,
        token,
        Method::POST,
        &format!("/deals/{deal}/move"),
        Some(json!({"stage_id": stage})),
    )
    .await;
    assert_eq!(moved.status(), 200);
}

/// Waits until the rule has `n` runs; returns them, newest first.
async fn runs_until(app: &TestApp, token: &str, rule: &str, n: usize) -> Vec<Value> {
    let page = get_until(
        app,
        token,
        &format!("/automation/rules/{rule}/runs"),
        |page| page["items"].as_array().is_some_and(|runs| runs.len() >= n),
    )
    .await;
    let runs = page["items"].as_array().unwrap().clone();
    assert_eq!(runs.len(), n, "{runs:?}");
    runs
}

/// How many events are still queued for automation.
async fn automation_queue_empty(app: &TestApp) {
    count_until(
        app,
        "SELECT COUNT(*) AS n FROM event_queue WHERE consumer = 'automation'",
        0,
    )
    .await;
}

async fn a_stage_rule_sends_a_template_and_charges_once_even_when_handled_again(backend: Backend) {
    let fake = graph().start().await.unwrap();
    let app = server(backend, module_path!(), &fake).await;
    let (admin, org) = shop(&app, "Duka", "admin@duka.example").await;
    connect(&app, &admin, PNID_A, WABA_A).await;
    credit(&app, &org, "100.00").await;
    let prospect = json_of(
        send(
            &app,
            &admin,
            Method::POST,
            "/prospects",
            Some(json!({"name": "Achieng Otieno", "phone": "0712000021"})),
        )
        .await,
    )
    .await;
    let deal = json_of(
        send(
            &app,
            &admin,
            Method::POST,
            "/deals",
            Some(json!({"title": "Fridge order", "prospect_id": prospect["id"]})),
        )
        .await,
    )
    .await;
    let deal = deal["id"].as_str().unwrap().to_owned();
    let pipelines = json_of(send(&app, &admin, Method::GET, "/pipelines", None).await).await;
    let stages: Vec<String> = pipelines["items"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let rule = create_rule(
        &app,
        &admin,
        json!({
            "name": "Quote sent: tell the customer",
            "trigger": "deal.stage_changed",
            "conditions": [{"field": "to_stage_id", "op": "eq", "value": stages[1]}],
            "actions": [{
                "type": "send_whatsapp_template",
                "name": "order_update",
                "language": "en",
                "category": "utility",
                "parameters": ["A-17"],
            }],
        }),
    )
    .await;
    let rule = rule["id"].as_str().unwrap().to_owned();

    move_deal(&app, &admin, &deal, &stages[1]).await;
    let runs = runs_until(&app, &admin, &rule, 1).await;
    let run = &runs[0];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["depth"], 0);
    let result = &run["results"][0];
    assert_eq!(result["type"], "send_whatsapp_template");
    assert_eq!(result["status"], "succeeded", "{run}");
    assert_eq!(result["result"]["replayed"], false);
    assert_eq!(result["result"]["contact_id"], prospect["id"]);
    let message = result["result"]["message_id"].as_str().unwrap().to_owned();
    let sent = get_until(
        &app,
        &admin,
        &format!("/whatsapp/messages/{message}"),
        |m| m["charge"]["status"] == "captured",
    )
    .await;
    assert_eq!(sent["kind"], "template");
    assert_eq!(fake.message_requests().len(), 1);
    assert_eq!(available(&app, &admin).await, "99.60");

    // The event is handled again (a worker that crashed after sending, before its
    // transaction committed): the run is gone and the event queued once more.
    let run_id: uuid::Uuid = run["id"].as_str().unwrap().parse().unwrap();
    let event_id: uuid::Uuid = run["event_id"].as_str().unwrap().parse().unwrap();
    let org_id: uuid::Uuid = org.parse().unwrap();
    automation_runs::Entity::delete_many()
        .filter(automation_runs::Column::Id.eq(run_id))
        .exec(app.db())
        .await
        .unwrap();
    event_queue::Entity::insert(event_queue::ActiveModel {
        organization_id: sea_orm::ActiveValue::Set(org_id),
        consumer: sea_orm::ActiveValue::Set("automation".into()),
        event_id: sea_orm::ActiveValue::Set(event_id),
        claimed_until: sea_orm::ActiveValue::Set(None),
        created_at: sea_orm::ActiveValue::Set(chrono::Utc::now()),
    })
    .exec_without_returning(app.db())
    .await
    .unwrap();
    let again = runs_until(&app, &admin, &rule, 1).await;
    assert_ne!(again[0]["id"], run["id"]);
    assert_eq!(again[0]["status"], "succeeded", "{again:?}");
    let replay = &again[0]["results"][0]["result"];
    assert_eq!(replay["replayed"], true, "{replay}");
    assert_eq!(replay["message_id"], message.as_str());
    // One message to Graph, one charge.
    assert_eq!(fake.message_requests().len(), 1);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM whatsapp_messages").await,
        1
    );
    assert_eq!(available(&app, &admin).await, "99.60");

    // Another stage: the condition is false, the run is logged as skipped, nothing sent.
    move_deal(&app, &admin, &deal, &stages[2]).await;
    let runs = runs_until(&app, &admin, &rule, 2).await;
    assert_eq!(runs[0]["status"], "skipped", "{runs:?}");
    assert_eq!(runs[0]["results"][0]["status"], "not_run");
    assert_eq!(fake.message_requests().len(), 1);
    assert_eq!(available(&app, &admin).await, "99.60");
}

async fn rules_that_trigger_each_other_stop(app: TestApp) {
    let t = team(&app, "Loop", "loop.example").await;
    let (s1, s2) = (&t.stages[1], &t.stages[2]);
    // A: arriving at s1 moves the deal to s2. B: arriving at s2 moves it back to s1.
    let a = create_rule(
        &app,
        &t.admin_token,
        json!({
            "name": "A",
            "trigger": "deal.stage_changed",
            "conditions": [{"field": "to_stage_id", "op": "eq", "value": s1}],
            "actions": [{"type": "move_deal", "stage_id": s2}],
        }),
    )
    .await;
    let b = create_rule(
        &app,
        &t.admin_token,
        json!({
            "name": "B",
            "trigger": "deal.stage_changed",
            "conditions": [{"field": "to_stage_id", "op": "eq", "value": s2}],
            "actions": [{"type": "move_deal", "stage_id": s1}],
        }),
    )
    .await;
    // C: any stage change moves the deal to s2 — its own move would trigger it again.
    let c = create_rule(
        &app,
        &t.admin_token,
        json!({
            "name": "C",
            "trigger": "deal.stage_changed",
            "actions": [{"type": "move_deal", "stage_id": s2}],
        }),
    )
    .await;

    move_deal(&app, &t.admin_token, &t.deal, s1).await;
    // Every event the chain records is handled (what a handled event causes is queued in
    // the same transaction, so an empty queue means the chain has ended).
    automation_queue_empty(&app).await;
    let runs_of = |rule: Value| {
        let app = &app;
        let token = t.admin_token.clone();
        async move {
            let page = json_of(
                send(
                    app,
                    &token,
                    Method::GET,
                    &format!("/automation/rules/{}/runs", rule["id"].as_str().unwrap()),
                    None,
                )
                .await,
            )
            .await;
            let mut out: Vec<(i64, String)> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["depth"].as_i64().unwrap(),
                        r["status"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            out.sort();
            (out, page)
        }
    };
    let pairs = |list: &[(i64, &str)]| -> Vec<(i64, String)> {
        list.iter().map(|(d, s)| (*d, (*s).to_owned())).collect()
    };
    // E0 (the person's move to s1): A moves the deal to s2 (E1); C finds it there.
    // E1 (by A): A is suppressed (its own); B moves it to s1 (E2); C to s2 (E3).
    // E2 (by B): A and C find it at s2; B is suppressed. E3 (by C): A's condition is
    // false; B moves it to s1 (E4); C is suppressed. E4 is at depth 3: all suppressed.
    let (a_runs, a_page) = runs_of(a).await;
    assert_eq!(
        a_runs,
        pairs(&[
            (0, "succeeded"),
            (1, "suppressed"),
            (2, "skipped"),
            (2, "succeeded"),
            (3, "suppressed")
        ]),
        "{a_page}"
    );
    let (b_runs, b_page) = runs_of(b).await;
    assert_eq!(
        b_runs,
        pairs(&[
            (0, "skipped"),
            (1, "succeeded"),
            (2, "succeeded"),
            (2, "suppressed"),
            (3, "suppressed")
        ]),
        "{b_page}"
    );
    let (c_runs, c_page) = runs_of(c).await;
    assert_eq!(
        c_runs,
        pairs(&[
            (0, "succeeded"),
            (1, "succeeded"),
            (2, "succeeded"),
            (2, "suppressed"),
            (3, "suppressed")
        ]),
        "{c_page}"
    );
    let own = c_page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["depth"] == 2 && r["status"] == "suppressed")
        .map(|r| r["error"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert!(own[0].contains("caused by this rule"), "{own:?}");
    let deepest = c_page["items"][0]["error"].as_str().unwrap().to_owned();
    assert!(deepest.contains("depth 3"), "{deepest}");
    // Five stage changes in all, the deal back at s1.
    let deal = json_of(
        send(
            &app,
            &t.admin_token,
            Method::GET,
            &format!("/deals/{}", t.deal),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(deal["stage"]["id"], s1.as_str(), "{deal}");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM events WHERE kind = 'deal.stage_changed'"
        )
        .await,
        5
    );
}

async fn rules_are_checked_field_by_field_and_managed_by_admins(app: TestApp) {
    let t = team(&app, "Checks", "checks.example").await;
    let user = invite_and_accept(&app, &t.admin_token, "user@checks.example", "user").await;
    let user_token = crate::auth::token(&user);
    let bad = send(
        &app,
        &t.admin_token,
        Method::POST,
        "/automation/rules",
        Some(json!({
            "name": "",
            "trigger": "deal.exploded",
            "conditions": [
                {"field": "to_stage_id", "op": "like", "value": "x"},
                {"field": "amount", "op": "in", "value": 3},
            ],
            "actions": [
                {"type": "launch_rocket"},
                {"type": "create_task"},
                {"type": "send_whatsapp_template", "name": "x", "language": "en", "category": "spam"},
                {"type": "assign_owner", "user_id": uuid::Uuid::now_v7()},
                {"type": "notify_users", "title": "Hi"},
                {"type": "move_deal", "stage_id": uuid::Uuid::now_v7()},
            ],
        })),
    )
    .await;
    assert_eq!(bad.status(), 422);
    let body = json_of(bad).await;
    assert_eq!(
        fields_of(&body),
        [
            "name",
            "trigger",
            "conditions[0].op",
            "conditions[1].value",
            "actions[0].type",
            "actions[1].title",
            "actions[2].category",
            "actions[3].user_id",
            "actions[4].user_ids",
            "actions[5].stage_id",
        ],
        "{body}"
    );
    let missing = send(
        &app,
        &t.admin_token,
        Method::POST,
        "/automation/rules",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        fields_of(&json_of(missing).await),
        ["name", "trigger", "actions"]
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM automation_rules").await,
        0
    );

    // Only those who may change the organization manage rules; CRM users read them.
    let body = json!({
        "name": "Tell the admins",
        "trigger": "deal.stage_changed",
        "actions": [{"type": "notify_users", "role": "org_admin", "title": "A deal moved"}],
    });
    let refused = send(
        &app,
        &user_token,
        Method::POST,
        "/automation/rules",
        Some(body.clone()),
    )
    .await;
    assert_eq!(refused.status(), 403);
    let rule = create_rule(&app, &t.admin_token, body).await;
    assert_eq!(rule["enabled"], true);
    assert_eq!(rule["conditions"], json!([]));
    let id = rule["id"].as_str().unwrap().to_owned();
    let listed =
        json_of(send(&app, &user_token, Method::GET, "/automation/rules", None).await).await;
    assert_eq!(listed["items"][0]["id"], id.as_str());
    let path = format!("/automation/rules/{id}");
    let changed = send(
        &app,
        &t.admin_token,
        Method::PATCH,
        &path,
        Some(json!({"enabled": false, "name": "Quiet"})),
    )
    .await;
    assert_eq!(changed.status(), 200);
    let changed = json_of(changed).await;
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["name"], "Quiet");
    assert_eq!(changed["trigger"], "deal.stage_changed");
    let bad_patch = send(
        &app,
        &t.admin_token,
        Method::PATCH,
        &path,
        Some(json!({"actions": []})),
    )
    .await;
    assert_eq!(fields_of(&json_of(bad_patch).await), ["actions"]);
    let refused = send(&app, &user_token, Method::DELETE, &path, None).await;
    assert_eq!(refused.status(), 403);
    let deleted = send(&app, &t.admin_token, Method::DELETE, &path, None).await;
    assert_eq!(deleted.status(), 204);
    let gone = send(&app, &t.admin_token, Method::GET, &path, None).await;
    assert_eq!(gone.status(), 404);
    let runs = send(
        &app,
        &t.admin_token,
        Method::GET,
        &format!("{path}/runs"),
        None,
    )
    .await;
    assert_eq!(runs.status(), 404);
}

async fn database_actions_run_in_order_and_are_logged(app: TestApp) {
    let t = team(&app, "Acts", "acts.example").await;
    let endpoint = uuid::Uuid::now_v7();
    let rule = create_rule(
        &app,
        &t.admin_token,
        json!({
            "name": "Qualified: hand over",
            "trigger": "deal.stage_changed",
            "conditions": [
                {"field": "to_stage_id", "op": "in", "value": [t.stages[1]]},
                {"field": "moved_by", "op": "exists"},
            ],
            "actions": [
                {"type": "create_task", "title": "Call the customer", "due_in_hours": 24,
                 "assignee_id": t.member},
                {"type": "assign_owner", "user_id": t.member},
                {"type": "notify_users", "role": "org_admin", "title": "Handed over",
                 "body": "The deal went to the team"},
                {"type": "call_webhook", "endpoint_id": endpoint},
                {"type": "send_whatsapp_template", "name": "hello", "language": "en",
                 "category": "utility"},
            ],
        }),
    )
    .await;
    let rule_id = rule["id"].as_str().unwrap().to_owned();
    move_deal(&app, &t.admin_token, &t.deal, &t.stages[1]).await;
    let runs = runs_until(&app, &t.admin_token, &rule_id, 1).await;
    let run = &runs[0];
    // The deal has no contact: that action fails, the others are done.
    assert_eq!(run["status"], "failed", "{run}");
    let statuses: Vec<&str> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["succeeded", "succeeded", "succeeded", "succeeded", "failed"]
    );
    assert!(
        run["results"][4]["error"]
            .as_str()
            .unwrap()
            .contains("no contact"),
        "{run}"
    );
    // The run log answers by id too.
    let one = json_of(
        send(
            &app,
            &t.admin_token,
            Method::GET,
            &format!("/automation/runs/{}", run["id"].as_str().unwrap()),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(one["rule_id"], rule_id.as_str());
    assert_eq!(one["results"], run["results"]);

    // The task, on the deal, for the member.
    let task = run["results"][0]["result"]["activity_id"].as_str().unwrap();
    let task = json_of(
        send(
            &app,
            &t.admin_token,
            Method::GET,
            &format!("/activities/{task}"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(task["kind"], "task");
    assert_eq!(task["title"], "Call the customer");
    assert_eq!(task["owner_id"], t.member.as_str());
    // The deal's new owner.
    let deal = json_of(
        send(
            &app,
            &t.admin_token,
            Method::GET,
            &format!("/deals/{}", t.deal),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(deal["owner_id"], t.member.as_str());
    // The admins' notification.
    let mine = json_of(send(&app, &t.admin_token, Method::GET, "/notifications", None).await).await;
    let automation: Vec<&Value> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "automation")
        .collect();
    assert_eq!(automation.len(), 1, "{mine}");
    assert_eq!(automation[0]["title"], "Handed over");
    assert_eq!(automation[0]["data"]["rule_id"], rule_id.as_str());
    // The webhook call, for that endpoint, with the trigger and the run's causation.
    let webhook = crate::notifications::event_data(&app, "automation.webhook").await;
    assert_eq!(webhook["endpoint_id"], endpoint.to_string());
    assert_eq!(webhook["rule_id"], rule_id.as_str());
    assert_eq!(webhook["run_id"], run["id"]);
    assert_eq!(webhook["trigger"]["kind"], "deal.stage_changed");
    assert_eq!(webhook["caused_by_rule"], rule_id.as_str());
    assert_eq!(webhook["depth"], 1);
    // A member of another organization cannot read the run.
    let other = team(&app, "Else", "else.example").await;
    let hidden = send(
        &app,
        &other.admin_token,
        Method::GET,
        &format!("/automation/runs/{}", run["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(hidden.status(), 404);
}
