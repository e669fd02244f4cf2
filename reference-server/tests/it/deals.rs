//! Pipelines, stages, deals, stage-move history and the kanban board over HTTP.

use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use edge_server::entities::{deal_stage_moves, deals};

use crate::auth::{signup, token};
use crate::helpers::{Backend, TestApp, for_each_backend, on_both_backends};
use crate::tenancy::{invite_and_accept, send};

for_each_backend!(organizations_that_exist_before_the_migration_get_the_default_pipeline);

on_both_backends!(
    deals_live_through_their_whole_lifecycle,
    deal_input_is_refused_with_clear_messages,
    pipelines_are_created_renamed_made_default_and_archived,
    stage_renames_reorders_and_archives_keep_every_deal_and_its_history,
    the_board_counts_and_sums_open_deals_per_stage,
    a_crowded_column_is_renumbered_and_keeps_its_order,
    concurrent_placements_get_distinct_ranks,
    record_visibility_own_limits_users_to_their_deals,
    another_organizations_deals_and_pipelines_answer_404,
    the_schema_refuses_inconsistent_rows,
    deals_are_listed_with_filters_search_sort_and_pages,
    deals_are_linked_to_prospects_and_relationships,
);

/// Calls the API and reads the JSON body (`null` for an empty one).
async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let response = send(app, token, method, path, body).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, body)
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

/// The organization's default pipeline.
async fn sales(app: &TestApp, token: &str) -> Value {
    let (status, body) = call(app, token, Method::GET, "/pipelines", None).await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["is_default"] == true)
        .unwrap()
        .clone()
}

fn stage_id(pipeline: &Value, name: &str) -> String {
    pipeline["stages"]
        .as_array()
        .unwrap()
        .iter()
        .chain(pipeline["archived_stages"].as_array().unwrap())
        .find(|s| s["name"] == name)
        .map(id)
        .unwrap_or_else(|| panic!("no stage {name} in {pipeline}"))
}

async fn create_deal(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, deal) = call(app, token, Method::POST, "/deals", Some(body)).await;
    assert_eq!(status, 201, "{deal}");
    deal
}

async fn move_deal(app: &TestApp, token: &str, deal: &str, body: Value) -> Value {
    let (status, moved) = call(
        app,
        token,
        Method::POST,
        &format!("/deals/{deal}/move"),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    moved
}

async fn board(app: &TestApp, token: &str, pipeline: &str, query: &str) -> Value {
    let (status, body) = call(
        app,
        token,
        Method::GET,
        &format!("/pipelines/{pipeline}/board{query}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn column<'a>(board: &'a Value, stage: &str) -> &'a Value {
    board["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["stage"]["name"] == stage)
        .unwrap_or_else(|| panic!("no column {stage} in {board}"))
}

fn card_titles(column: &Value) -> Vec<String> {
    column["deals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap().to_owned())
        .collect()
}

/// `(field, message)` of a 422's details.
fn fields(body: &Value) -> Vec<(String, String)> {
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_owned(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn kes(amount: &str) -> Value {
    json!({"amount": amount, "currency": "KES"})
}

/// Rows of an organization's deals and stage moves, straight from the database.
async fn counts(app: &TestApp, org: &str) -> (u64, u64) {
    let org: uuid::Uuid = org.parse().unwrap();
    let deals = deals::Entity::find()
        .filter(deals::Column::OrganizationId.eq(org))
        .count(app.db())
        .await
        .unwrap();
    let moves = deal_stage_moves::Entity::find()
        .filter(deal_stage_moves::Column::OrganizationId.eq(org))
        .count(app.db())
        .await
        .unwrap();
    (deals, moves)
}

async fn audit_actions(app: &TestApp, token: &str) -> Vec<String> {
    let (status, log) = call(app, token, Method::GET, "/audit-log?limit=200", None).await;
    assert_eq!(status, 200);
    log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn deals_live_through_their_whole_lifecycle(app: TestApp) {
    let admin = signup(&app, "Mavuno Seeds", "admin@mavuno.example").await;
    let t = token(&admin);
    let me = admin["user"]["id"].as_str().unwrap().to_owned();
    let sales = sales(&app, &t).await;
    assert_eq!(sales["name"], "Sales");
    let names: Vec<&str> = sales["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Qualification", "Proposal", "Negotiation", "Closing"]
    );
    let pipeline = id(&sales);
    let qualification = stage_id(&sales, "Qualification");
    let proposal = stage_id(&sales, "Proposal");

    // The smallest body: the default pipeline's first stage, zero value, owned by me.
    let a = create_deal(&app, &t, json!({"title": "40 bags of maize seed"})).await;
    let a_id = id(&a);
    assert_eq!(a["pipeline_id"], pipeline.as_str());
    assert_eq!(a["stage"]["id"], qualification.as_str());
    assert_eq!(a["stage"]["name"], "Qualification");
    assert_eq!(a["status"], "open");
    assert_eq!(a["value"]["amount"], "0.00");
    assert_eq!(a["value"]["currency"], "KES");
    assert_eq!(a["owner_id"], me.as_str());
    assert_eq!(a["created_by"], me.as_str());
    let history = a["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0]["from_stage"].is_null());
    assert_eq!(history[0]["to_stage"]["name"], "Qualification");
    assert_eq!(history[0]["moved_by"], me.as_str());

    let (status, got) = call(&app, &t, Method::GET, &format!("/deals/{a_id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(got["title"], "40 bags of maize seed");
    assert_eq!(got["history"].as_array().unwrap().len(), 1);

    let (status, patched) = call(
        &app,
        &t,
        Method::PATCH,
        &format!("/deals/{a_id}"),
        Some(json!({
            "title": "  60 bags of maize seed ",
            "value": kes("1500.50"),
            "tags": [" seed ", "Q4", "seed"],
            "expected_close_on": "2026-12-15",
        })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["title"], "60 bags of maize seed");
    assert_eq!(patched["value"]["amount"], "1500.50");
    assert_eq!(patched["value"]["amount_minor"], 150_050);
    assert_eq!(patched["tags"], json!(["seed", "Q4"]));
    assert_eq!(patched["expected_close_on"], "2026-12-15");
    assert_eq!(patched["stage"]["name"], "Qualification");
    // Clearing an optional field.
    let (status, patched) = call(
        &app,
        &t,
        Method::PATCH,
        &format!("/deals/{a_id}"),
        Some(json!({"expected_close_on": null})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(patched["expected_close_on"].is_null());

    let b = create_deal(
        &app,
        &t,
        json!({"title": "Fertiliser", "value": kes("200.00")}),
    )
    .await;
    let c = create_deal(
        &app,
        &t,
        json!({"title": "Irrigation kit", "value": kes("300"), "stage_id": qualification}),
    )
    .await;
    let (b_id, c_id) = (id(&b), id(&c));
    let view = board(&app, &t, &pipeline, "").await;
    assert_eq!(
        card_titles(column(&view, "Qualification")),
        ["60 bags of maize seed", "Fertiliser", "Irrigation kit"]
    );

    // Across stages: a history row with from, to, who and when.
    let moved = move_deal(&app, &t, &a_id, json!({"stage_id": proposal})).await;
    assert_eq!(moved["stage"]["name"], "Proposal");
    let history = moved["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["from_stage"]["id"], qualification.as_str());
    assert_eq!(history[1]["from_stage"]["name"], "Qualification");
    assert_eq!(history[1]["to_stage"]["id"], proposal.as_str());
    assert_eq!(history[1]["to_stage"]["name"], "Proposal");
    assert_eq!(history[1]["moved_by"], me.as_str());
    assert!(history[1]["moved_at"].as_str().unwrap() >= history[0]["moved_at"].as_str().unwrap());

    // Within a column: the order changes, the history does not.
    let reordered = move_deal(
        &app,
        &t,
        &c_id,
        json!({"stage_id": qualification, "before_id": b_id}),
    )
    .await;
    assert_eq!(reordered["history"].as_array().unwrap().len(), 1);
    let view = board(&app, &t, &pipeline, "").await;
    assert_eq!(
        card_titles(column(&view, "Qualification")),
        ["Irrigation kit", "Fertiliser"]
    );
    move_deal(
        &app,
        &t,
        &c_id,
        json!({"stage_id": qualification, "after_id": b_id}),
    )
    .await;
    let view = board(&app, &t, &pipeline, "").await;
    assert_eq!(
        card_titles(column(&view, "Qualification")),
        ["Fertiliser", "Irrigation kit"]
    );
    // Into another column at a chosen place.
    move_deal(
        &app,
        &t,
        &c_id,
        json!({"stage_id": proposal, "before_id": a_id}),
    )
    .await;
    let view = board(&app, &t, &pipeline, "").await;
    assert_eq!(
        card_titles(column(&view, "Proposal")),
        ["Irrigation kit", "60 bags of maize seed"]
    );
    // Moving to where it already is changes nothing.
    let same = move_deal(&app, &t, &c_id, json!({"stage_id": proposal})).await;
    assert_eq!(same["history"].as_array().unwrap().len(), 2);

    // Won, with a reason; again is a conflict; a won deal does not move.
    let (status, won) = call(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{a_id}/won"),
        Some(json!({"reason": "Best price in the county"})),
    )
    .await;
    assert_eq!(status, 200, "{won}");
    assert_eq!(won["status"], "won");
    assert_eq!(won["close_reason"], "Best price in the county");
    assert!(won["closed_at"].is_string());
    let (status, again) = call(&app, &t, Method::POST, &format!("/deals/{a_id}/won"), None).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "conflict");
    let (status, _) = call(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{a_id}/move"),
        Some(json!({"stage_id": qualification})),
    )
    .await;
    assert_eq!(status, 409);
    let view = board(&app, &t, &pipeline, "").await;
    assert_eq!(card_titles(column(&view, "Proposal")), ["Irrigation kit"]);

    // Lost needs a reason.
    let (status, refused) =
        call(&app, &t, Method::POST, &format!("/deals/{b_id}/lost"), None).await;
    assert_eq!(status, 422);
    assert_eq!(fields(&refused)[0].0, "reason");
    let (status, lost) = call(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{b_id}/lost"),
        Some(json!({"reason": "Went with a competitor"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(lost["status"], "lost");
    assert_eq!(lost["close_reason"], "Went with a competitor");

    // Reopened: open again, back on the board, in the same stage.
    let (status, reopened) = call(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{b_id}/reopen"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{reopened}");
    assert_eq!(reopened["status"], "open");
    assert!(reopened["closed_at"].is_null());
    assert!(reopened["close_reason"].is_null());
    assert_eq!(reopened["stage"]["name"], "Qualification");
    let (status, _) = call(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{b_id}/reopen"),
        None,
    )
    .await;
    assert_eq!(status, 409);

    // Deleted: 404 everywhere, off the board; its rows stay.
    let (status, _) = call(&app, &t, Method::DELETE, &format!("/deals/{c_id}"), None).await;
    assert_eq!(status, 204);
    for (method, path, body) in [
        (Method::GET, format!("/deals/{c_id}"), None),
        (
            Method::PATCH,
            format!("/deals/{c_id}"),
            Some(json!({"title": "x"})),
        ),
        (Method::DELETE, format!("/deals/{c_id}"), None),
        (
            Method::POST,
            format!("/deals/{c_id}/move"),
            Some(json!({"stage_id": qualification})),
        ),
    ] {
        let (status, body) = call(&app, &t, method, &path, body).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let view = board(&app, &t, &pipeline, "").await;
    assert_eq!(column(&view, "Proposal")["count"], 0);
    let org = admin["organization"]["id"].as_str().unwrap();
    assert_eq!(counts(&app, org).await, (3, 5));

    let actions = audit_actions(&app, &t).await;
    for action in [
        "deal.create",
        "deal.update",
        "deal.move",
        "deal.won",
        "deal.lost",
        "deal.reopen",
        "deal.delete",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
    // Creations, two real edits, four moves (the no-op is not one), won, lost, reopen, delete.
    assert_eq!(actions.iter().filter(|a| *a == "deal.move").count(), 4);
    assert_eq!(actions.iter().filter(|a| *a == "deal.update").count(), 2);
}

async fn deal_input_is_refused_with_clear_messages(app: TestApp) {
    let admin = signup(&app, "Refusals", "admin@refusals.example").await;
    let t = token(&admin);
    let sales = sales(&app, &t).await;
    let (status, partners) = call(
        &app,
        &t,
        Method::POST,
        "/pipelines",
        Some(json!({"name": "Partners", "stages": [{"name": "Intro"}, {"name": "Signed"}]})),
    )
    .await;
    assert_eq!(status, 201, "{partners}");
    let intro = stage_id(&partners, "Intro");

    let (status, body) = call(
        &app,
        &t,
        Method::POST,
        "/deals",
        Some(json!({"title": "Solar panels", "value": {"amount": "1500.00", "currency": "UGX"}})),
    )
    .await;
    assert_eq!(status, 422);
    let problems = fields(&body);
    assert_eq!(problems[0].0, "value.currency");
    assert!(problems[0].1.contains("KES"), "{body}");

    let unknown = uuid::Uuid::now_v7();
    let (status, body) = call(
        &app,
        &t,
        Method::POST,
        "/deals",
        Some(json!({"title": "Solar panels", "stage_id": unknown})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(fields(&body)[0].0, "stage_id");

    // A stage of another pipeline, with the default pipeline and with a named one.
    for body in [
        json!({"title": "Solar panels", "stage_id": intro}),
        json!({"title": "Solar panels", "pipeline_id": id(&sales), "stage_id": intro}),
    ] {
        let (status, body) = call(&app, &t, Method::POST, "/deals", Some(body)).await;
        assert_eq!(status, 422);
        let problems = fields(&body);
        assert_eq!(problems[0].0, "stage_id");
        assert!(problems[0].1.contains("another pipeline"), "{body}");
    }
    // The right pipeline for that stage works.
    let partner_deal = create_deal(
        &app,
        &t,
        json!({"title": "Reseller", "pipeline_id": id(&partners), "stage_id": intro}),
    )
    .await;
    assert_eq!(partner_deal["pipeline_id"], id(&partners).as_str());

    let (status, body) = call(
        &app,
        &t,
        Method::POST,
        "/deals",
        Some(json!({
            "title": " ",
            "value": kes("12.345"),
            "tags": ["x".repeat(65)],
            "expected_close_on": "next week",
        })),
    )
    .await;
    assert_eq!(status, 422);
    let names: Vec<String> = fields(&body).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        names,
        ["title", "value.amount", "expected_close_on", "tags[0]"]
    );

    let (status, body) = call(
        &app,
        &t,
        Method::POST,
        "/deals",
        Some(json!({"title": "Pumps", "owner_id": uuid::Uuid::now_v7()})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(fields(&body)[0].0, "owner_id");
    let (status, body) = call(
        &app,
        &t,
        Method::POST,
        "/deals",
        Some(json!({"title": "Pumps", "pipeline_id": uuid::Uuid::now_v7()})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(fields(&body)[0].0, "pipeline_id");
    let (status, body) = call(
        &app,
        &t,
        Method::POST,
        "/deals",
        Some(json!({"title": "Pumps", "colour": "red"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_body");

    // Custom fields are checked against the organization's definitions.
    let (_, mut settings) = call(&app, &t, Method::GET, "/organization/settings", None).await;
    settings["custom_fields"] = json!([
        {"key": "region", "label": "Region", "kind": "choice",
         "choices": ["Nairobi", "Mombasa"], "applies_to": ["deal"]}
    ]);
    let (status, _) = call(
        &app,
        &t,
        Method::PUT,
        "/organization/settings",
        Some(settings),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &app,
        &t,
        Method::POST,
        "/deals",
        Some(json!({"title": "Pumps", "custom_fields": {"region": "Kisumu", "size": 3}})),
    )
    .await;
    assert_eq!(status, 422);
    let names: Vec<String> = fields(&body).into_iter().map(|(f, _)| f).collect();
    assert_eq!(names, ["custom_fields.region", "custom_fields.size"]);
    let deal = create_deal(
        &app,
        &t,
        json!({"title": "Pumps", "custom_fields": {"region": "Mombasa"}}),
    )
    .await;
    assert_eq!(deal["custom_fields"], json!({"region": "Mombasa"}));
    let deal_id = id(&deal);

    // Moves: unknown stages, neighbours that are not in the column, the deal itself.
    let proposal = stage_id(&sales, "Proposal");
    for (body, field) in [
        (json!({"stage_id": unknown}), "stage_id"),
        (
            json!({"stage_id": proposal, "before_id": id(&partner_deal)}),
            "before_id",
        ),
        (
            json!({"stage_id": proposal, "after_id": deal_id}),
            "after_id",
        ),
    ] {
        let (status, refused) = call(
            &app,
            &t,
            Method::POST,
            &format!("/deals/{deal_id}/move"),
            Some(body),
        )
        .await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(fields(&refused)[0].0, field);
    }
    let (status, body) = call(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{deal_id}/lost"),
        Some(json!({"reason": "   "})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(fields(&body)[0].0, "reason");
    let (status, body) = call(
        &app,
        &t,
        Method::PATCH,
        &format!("/deals/{deal_id}"),
        Some(json!({"value": {"amount": "10", "currency": "USD"}})),
    )
    .await;
    assert_eq!(status, 422);
    assert!(fields(&body)[0].1.contains("KES"));
    // Nothing refused was stored.
    let org = admin["organization"]["id"].as_str().unwrap();
    assert_eq!(counts(&app, org).await, (2, 2));
    let (_, kept) = call(&app, &t, Method::GET, &format!("/deals/{deal_id}"), None).await;
    assert_eq!(kept["value"]["amount"], "0.00");
}

async fn pipelines_are_created_renamed_made_default_and_archived(app: TestApp) {
    let admin = signup(&app, "Pipes", "admin@pipes.example").await;
    let t = token(&admin);
    let sales = sales(&app, &t).await;

    for (body, field) in [
        (json!({"name": "Sales", "stages": [{"name": "A"}]}), "name"),
        (json!({"name": "Empty", "stages": []}), "stages"),
        (
            json!({"name": "Odds", "stages": [{"name": "A", "probability": 150}]}),
            "stages[0].probability",
        ),
        (
            json!({"name": "Twice", "stages": [{"name": "A"}, {"name": " a "}]}),
            "stages[1].name",
        ),
    ] {
        let (status, refused) = call(&app, &t, Method::POST, "/pipelines", Some(body)).await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(fields(&refused)[0].0, field);
    }
    let (status, partners) = call(
        &app,
        &t,
        Method::POST,
        "/pipelines",
        Some(json!({
            "name": "Partnerships",
            "stages": [{"name": "Intro", "probability": 5}, {"name": "Pilot"}, {"name": "Signed", "probability": 100}],
        })),
    )
    .await;
    assert_eq!(status, 201, "{partners}");
    assert_eq!(partners["is_default"], false);
    let partners_id = id(&partners);
    assert_eq!(partners["stages"][0]["probability"], 5);
    assert!(partners["stages"][1]["probability"].is_null());
    let (status, got) = call(
        &app,
        &t,
        Method::GET,
        &format!("/pipelines/{partners_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["stages"].as_array().unwrap().len(), 3);

    // Rename and make default: new deals go there.
    let (status, patched) = call(
        &app,
        &t,
        Method::PATCH,
        &format!("/pipelines/{partners_id}"),
        Some(json!({"name": "Partners", "is_default": true})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["name"], "Partners");
    assert_eq!(patched["is_default"], true);
    let (_, listed) = call(&app, &t, Method::GET, "/pipelines", None).await;
    let defaults: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["is_default"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, ["Partners"]);
    let deal = create_deal(&app, &t, json!({"title": "Agent network"})).await;
    assert_eq!(deal["pipeline_id"], partners_id.as_str());
    assert_eq!(deal["stage"]["name"], "Intro");

    // A deal follows a stage of another pipeline there, and back; each move recorded.
    let travelling = create_deal(
        &app,
        &t,
        json!({"title": "Travelling", "pipeline_id": id(&sales)}),
    )
    .await;
    let moved = move_deal(
        &app,
        &t,
        &id(&travelling),
        json!({"stage_id": stage_id(&partners, "Pilot")}),
    )
    .await;
    assert_eq!(moved["pipeline_id"], partners_id.as_str());
    assert_eq!(moved["stage"]["name"], "Pilot");
    let back = move_deal(
        &app,
        &t,
        &id(&travelling),
        json!({"stage_id": stage_id(&sales, "Proposal")}),
    )
    .await;
    assert_eq!(back["pipeline_id"], id(&sales).as_str());
    let steps: Vec<&str> = back["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["to_stage"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["Qualification", "Pilot", "Proposal"]);
    let view = board(&app, &t, &partners_id, "").await;
    assert_eq!(card_titles(column(&view, "Intro")), ["Agent network"]);
    assert_eq!(column(&view, "Pilot")["count"], 0);
    let (status, _) = call(
        &app,
        &t,
        Method::PATCH,
        &format!("/pipelines/{partners_id}"),
        Some(json!({"is_default": false})),
    )
    .await;
    assert_eq!(status, 422);

    // Stages: added last, renamed, probability cleared.
    let (status, added) = call(
        &app,
        &t,
        Method::POST,
        &format!("/pipelines/{partners_id}/stages"),
        Some(json!({"name": "Live", "probability": 100})),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["stages"][3]["name"], "Live");
    assert_eq!(added["stages"][3]["position"], 3);
    let (status, refused) = call(
        &app,
        &t,
        Method::POST,
        &format!("/pipelines/{partners_id}/stages"),
        Some(json!({"name": "live"})),
    )
    .await;
    assert_eq!(status, 422);
    assert!(fields(&refused)[0].1.contains("already has a stage"));
    let live = stage_id(&added, "Live");
    let (status, changed) = call(
        &app,
        &t,
        Method::PATCH,
        &format!("/pipelines/{partners_id}/stages/{live}"),
        Some(json!({"name": "Launched", "probability": null})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["stages"][3]["name"], "Launched");
    assert!(changed["stages"][3]["probability"].is_null());

    // The default cannot be archived; a pipeline with open deals neither.
    let (status, refused) = call(
        &app,
        &t,
        Method::POST,
        &format!("/pipelines/{partners_id}/archive"),
        None,
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("default")
    );
    let (status, _) = call(
        &app,
        &t,
        Method::PATCH,
        &format!("/pipelines/{}", id(&sales)),
        Some(json!({"is_default": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, refused) = call(
        &app,
        &t,
        Method::POST,
        &format!("/pipelines/{partners_id}/archive"),
        None,
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 open deal")
    );
    let (status, _) = call(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{}/won", id(&deal)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, archived) = call(
        &app,
        &t,
        Method::POST,
        &format!("/pipelines/{partners_id}/archive"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{archived}");
    assert!(archived["archived_at"].is_string());

    // Archived: off the list unless asked, no new deals, no structural changes; its won
    // deal is still there.
    let (_, listed) = call(&app, &t, Method::GET, "/pipelines", None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let (_, all) = call(
        &app,
        &t,
        Method::GET,
        "/pipelines?include_archived=true",
        None,
    )
    .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let (status, refused) = call(
        &app,
        &t,
        Method::POST,
        "/deals",
        Some(json!({"title": "Late", "pipeline_id": partners_id})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(fields(&refused)[0].0, "pipeline_id");
    let (status, _) = call(
        &app,
        &t,
        Method::POST,
        &format!("/pipelines/{partners_id}/stages"),
        Some(json!({"name": "More"})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, kept) = call(
        &app,
        &t,
        Method::GET,
        &format!("/deals/{}", id(&deal)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(kept["status"], "won");
    let (status, _) = call(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{}/reopen", id(&deal)),
        None,
    )
    .await;
    assert_eq!(status, 409);

    let actions = audit_actions(&app, &t).await;
    for action in [
        "pipeline.create",
        "pipeline.update",
        "pipeline.stage_create",
        "pipeline.stage_update",
        "pipeline.archive",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

async fn stage_renames_reorders_and_archives_keep_every_deal_and_its_history(app: TestApp) {
    let admin = signup(&app, "Stages", "admin@stages.example").await;
    let t = token(&admin);
    let org = admin["organization"]["id"].as_str().unwrap().to_owned();
    let sales = sales(&app, &t).await;
    let pipeline = id(&sales);
    let qualification = stage_id(&sales, "Qualification");
    let proposal = stage_id(&sales, "Proposal");
    let negotiation = stage_id(&sales, "Negotiation");
    let closing = stage_id(&sales, "Closing");

    let d1 = id(&create_deal(&app, &t, json!({"title": "D1", "value": kes("100")})).await);
    let d2 = id(&create_deal(&app, &t, json!({"title": "D2", "value": kes("200")})).await);
    let d3 = id(&create_deal(&app, &t, json!({"title": "D3", "value": kes("300")})).await);
    let d4 = id(&create_deal(&app, &t, json!({"title": "D4", "value": kes("400")})).await);
    move_deal(&app, &t, &d2, json!({"stage_id": proposal})).await;
    move_deal(&app, &t, &d3, json!({"stage_id": negotiation})).await;
    move_deal(&app, &t, &d4, json!({"stage_id": proposal})).await;
    move_deal(&app, &t, &d4, json!({"stage_id": negotiation})).await;
    let (status, _) = call(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{d2}/won"),
        Some(json!({"reason": "Signed"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(counts(&app, &org).await, (4, 8));

    // Rename: the deal and its history show the new name; nothing else changes.
    let (status, renamed) = call(
        &app,
        &t,
        Method::PATCH,
        &format!("/pipelines/{pipeline}/stages/{proposal}"),
        Some(json!({"name": "Quote sent", "probability": 35})),
    )
    .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(counts(&app, &org).await, (4, 8));
    let (_, d4_view) = call(&app, &t, Method::GET, &format!("/deals/{d4}"), None).await;
    let history = d4_view["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[1]["to_stage"]["name"], "Quote sent");
    assert_eq!(history[2]["from_stage"]["name"], "Quote sent");
    assert_eq!(history[2]["to_stage"]["name"], "Negotiation");

    // Reorder: every active stage once; the board follows; deals stay where they are.
    let (status, refused) = call(
        &app,
        &t,
        Method::PUT,
        &format!("/pipelines/{pipeline}/stages/order"),
        Some(json!({"stage_ids": [closing, negotiation, proposal]})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(fields(&refused)[0].0, "stage_ids");
    let (status, refused) = call(
        &app,
        &t,
        Method::PUT,
        &format!("/pipelines/{pipeline}/stages/order"),
        Some(json!({"stage_ids": [closing, negotiation, proposal, proposal]})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(fields(&refused)[0].0, "stage_ids[3]");
    let (status, reordered) = call(
        &app,
        &t,
        Method::PUT,
        &format!("/pipelines/{pipeline}/stages/order"),
        Some(json!({"stage_ids": [closing, negotiation, proposal, qualification]})),
    )
    .await;
    assert_eq!(status, 200, "{reordered}");
    let order: Vec<&str> = reordered["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        ["Closing", "Negotiation", "Quote sent", "Qualification"]
    );
    let view = board(&app, &t, &pipeline, "").await;
    let columns: Vec<&str> = view["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["stage"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, order);
    assert_eq!(card_titles(column(&view, "Negotiation")), ["D3", "D4"]);
    assert_eq!(card_titles(column(&view, "Qualification")), ["D1"]);
    assert_eq!(counts(&app, &org).await, (4, 8));

    // Archive a stage with open deals: refused without somewhere to move them.
    let archive = format!("/pipelines/{pipeline}/stages/{negotiation}/archive");
    let (status, refused) = call(&app, &t, Method::POST, &archive, None).await;
    assert_eq!(status, 409);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("move_deals_to"),
        "{refused}"
    );
    let (status, refused) = call(
        &app,
        &t,
        Method::POST,
        &archive,
        Some(json!({"move_deals_to": negotiation})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(fields(&refused)[0].0, "move_deals_to");
    assert_eq!(counts(&app, &org).await, (4, 8));

    // With move_deals_to: both open deals move, in their order, each move recorded.
    let (status, archived) = call(
        &app,
        &t,
        Method::POST,
        &archive,
        Some(json!({"move_deals_to": closing})),
    )
    .await;
    assert_eq!(status, 200, "{archived}");
    assert_eq!(archived["stages"].as_array().unwrap().len(), 3);
    assert_eq!(archived["archived_stages"][0]["name"], "Negotiation");
    assert_eq!(counts(&app, &org).await, (4, 10));
    let view = board(&app, &t, &pipeline, "").await;
    assert_eq!(view["columns"].as_array().unwrap().len(), 3);
    assert_eq!(card_titles(column(&view, "Closing")), ["D3", "D4"]);
    assert_eq!(column(&view, "Closing")["value"]["amount"], "700.00");
    let (_, d3_view) = call(&app, &t, Method::GET, &format!("/deals/{d3}"), None).await;
    let history = d3_view["history"].as_array().unwrap();
    let steps: Vec<(Value, Value)> = history
        .iter()
        .map(|m| {
            (
                m["from_stage"]["name"].clone(),
                m["to_stage"]["name"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (Value::Null, json!("Qualification")),
            (json!("Qualification"), json!("Negotiation")),
            (json!("Negotiation"), json!("Closing")),
        ]
    );
    assert_eq!(history[2]["from_stage"]["archived"], true);

    // A stage holding only a won deal archives without a target; the deal stays there,
    // readable, with the archived stage's name and its full history.
    let (status, _) = call(
        &app,
        &t,
        Method::POST,
        &format!("/pipelines/{pipeline}/stages/{proposal}/archive"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(counts(&app, &org).await, (4, 10));
    let (status, d2_view) = call(&app, &t, Method::GET, &format!("/deals/{d2}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(d2_view["status"], "won");
    assert_eq!(d2_view["stage"]["name"], "Quote sent");
    assert_eq!(d2_view["stage"]["archived"], true);
    assert_eq!(d2_view["history"].as_array().unwrap().len(), 2);
    // Moving to an archived stage is refused.
    let (status, refused) = call(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{d1}/move"),
        Some(json!({"stage_id": proposal})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(fields(&refused)[0].0, "stage_id");
    // Reopened, it goes to the first active stage, and that move is recorded too.
    let (status, reopened) =
        call(&app, &t, Method::POST, &format!("/deals/{d2}/reopen"), None).await;
    assert_eq!(status, 200, "{reopened}");
    assert_eq!(reopened["stage"]["name"], "Closing");
    assert_eq!(reopened["history"].as_array().unwrap().len(), 3);
    assert_eq!(counts(&app, &org).await, (4, 11));
    let view = board(&app, &t, &pipeline, "").await;
    assert_eq!(card_titles(column(&view, "Closing")), ["D3", "D4", "D2"]);

    // The last active stages cannot all go.
    let (status, _) = call(
        &app,
        &t,
        Method::POST,
        &format!("/pipelines/{pipeline}/stages/{qualification}/archive"),
        Some(json!({"move_deals_to": closing})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, refused) = call(
        &app,
        &t,
        Method::POST,
        &format!("/pipelines/{pipeline}/stages/{closing}/archive"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(counts(&app, &org).await, (4, 12));
    let actions = audit_actions(&app, &t).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "pipeline.stage_archive")
            .count(),
        3
    );
    assert!(actions.iter().any(|a| a == "pipeline.stage_reorder"));
}

async fn the_board_counts_and_sums_open_deals_per_stage(app: TestApp) {
    let admin = signup(&app, "Board", "admin@board.example").await;
    let t = token(&admin);
    let member = invite_and_accept(&app, &t, "seller@board.example", "user").await;
    let member_id = member["user"]["id"].as_str().unwrap().to_owned();
    let sales = sales(&app, &t).await;
    let pipeline = id(&sales);
    let proposal = stage_id(&sales, "Proposal");

    for (title, amount) in [("A", "100.00"), ("B", "250.50"), ("C", "49.50")] {
        create_deal(&app, &t, json!({"title": title, "value": kes(amount)})).await;
    }
    let theirs = create_deal(
        &app,
        &t,
        json!({"title": "Theirs", "value": kes("1000"), "owner_id": member_id}),
    )
    .await;
    assert_eq!(theirs["owner_id"], member_id.as_str());
    let p1 = create_deal(
        &app,
        &t,
        json!({"title": "P1", "value": kes("5000"), "stage_id": proposal}),
    )
    .await;
    let p2 = create_deal(
        &app,
        &t,
        json!({"title": "P2", "value": kes("7000"), "stage_id": proposal}),
    )
    .await;
    let (status, _) = call(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{}/won", id(&p2)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        &t,
        Method::DELETE,
        &format!("/deals/{}", id(&p1)),
        None,
    )
    .await;
    assert_eq!(status, 204);

    let view = board(&app, &t, &pipeline, "").await;
    assert_eq!(view["pipeline"]["id"], pipeline.as_str());
    let qualification = column(&view, "Qualification");
    assert_eq!(qualification["count"], 4);
    assert_eq!(qualification["value"]["amount"], "1400.00");
    assert_eq!(qualification["value"]["currency"], "KES");
    assert_eq!(card_titles(qualification), ["A", "B", "C", "Theirs"]);
    // Won and deleted deals are not on the board.
    let proposal_column = column(&view, "Proposal");
    assert_eq!(proposal_column["count"], 0);
    assert_eq!(proposal_column["value"]["amount"], "0.00");
    assert!(proposal_column.get("other_currencies").is_none());

    // Fewer cards, the same count and sum.
    let capped = board(&app, &t, &pipeline, "?cards=2").await;
    let qualification = column(&capped, "Qualification");
    assert_eq!(card_titles(qualification), ["A", "B"]);
    assert_eq!(qualification["count"], 4);
    assert_eq!(qualification["value"]["amount"], "1400.00");

    // By owner.
    let mine = board(&app, &t, &pipeline, "?owner_id=me").await;
    assert_eq!(column(&mine, "Qualification")["count"], 3);
    assert_eq!(column(&mine, "Qualification")["value"]["amount"], "400.00");
    let theirs_board = board(&app, &t, &pipeline, &format!("?owner_id={member_id}")).await;
    assert_eq!(
        card_titles(column(&theirs_board, "Qualification")),
        ["Theirs"]
    );
    let (status, refused) = call(
        &app,
        &t,
        Method::GET,
        &format!("/pipelines/{pipeline}/board?owner_id=someone"),
        None,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(fields(&refused)[0].0, "owner_id");
    let (status, _) = call(
        &app,
        &t,
        Method::GET,
        &format!("/pipelines/{pipeline}/board?colour=red"),
        None,
    )
    .await;
    assert_eq!(status, 400);

    // Deals created before the organization changed its currency are summed apart.
    let (status, _) = call(
        &app,
        &t,
        Method::PATCH,
        "/organization",
        Some(json!({"currency": "USD"})),
    )
    .await;
    assert_eq!(status, 200);
    create_deal(
        &app,
        &t,
        json!({"title": "Dollars", "value": {"amount": "10.00", "currency": "USD"}}),
    )
    .await;
    let view = board(&app, &t, &pipeline, "").await;
    let qualification = column(&view, "Qualification");
    assert_eq!(qualification["count"], 5);
    assert_eq!(qualification["value"]["amount"], "10.00");
    assert_eq!(qualification["value"]["currency"], "USD");
    assert_eq!(
        qualification["other_currencies"],
        json!([{"amount": "1400.00", "currency": "KES", "amount_minor": 140_000}])
    );
}

async fn a_crowded_column_is_renumbered_and_keeps_its_order(app: TestApp) {
    use sea_orm::sea_query::Expr;

    let admin = signup(&app, "Crowded", "admin@crowded.example").await;
    let t = token(&admin);
    let sales = sales(&app, &t).await;
    let pipeline = id(&sales);
    let qualification = stage_id(&sales, "Qualification");
    let mut ids = Vec::new();
    for title in ["A", "B", "C", "D"] {
        ids.push(id(&create_deal(&app, &t, json!({"title": title})).await));
    }
    // Squeeze the ranks together so nothing fits between neighbours.
    for (rank, deal) in (1_i64..).zip(&ids) {
        deals::Entity::update_many()
            .col_expr(deals::Column::BoardRank, Expr::value(rank))
            .filter(deals::Column::Id.eq(deal.parse::<uuid::Uuid>().unwrap()))
            .exec(app.db())
            .await
            .unwrap();
    }
    // D between A and B, then A before B... every placement lands where asked.
    move_deal(
        &app,
        &t,
        &ids[3],
        json!({"stage_id": qualification, "after_id": ids[0], "before_id": ids[1]}),
    )
    .await;
    let view = board(&app, &t, &pipeline, "").await;
    assert_eq!(
        card_titles(column(&view, "Qualification")),
        ["A", "D", "B", "C"]
    );
    move_deal(
        &app,
        &t,
        &ids[2],
        json!({"stage_id": qualification, "before_id": ids[0]}),
    )
    .await;
    let view = board(&app, &t, &pipeline, "").await;
    assert_eq!(
        card_titles(column(&view, "Qualification")),
        ["C", "A", "D", "B"]
    );
    // Neighbours that are not next to each other: the board changed under the client.
    let (status, refused) = call(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{}/move", ids[1]),
        Some(json!({"stage_id": qualification, "after_id": ids[2], "before_id": ids[3]})),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    let ranks: Vec<i64> = deals::Entity::find()
        .filter(deals::Column::StageId.eq(qualification.parse::<uuid::Uuid>().unwrap()))
        .all(app.db())
        .await
        .unwrap()
        .iter()
        .map(|d| d.board_rank)
        .collect();
    let mut distinct = ranks.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ranks.len(), "{ranks:?}");
}

async fn concurrent_placements_get_distinct_ranks(app: TestApp) {
    let admin = signup(&app, "Busy", "admin@busy.example").await;
    let t = token(&admin);
    let sales = sales(&app, &t).await;
    let pipeline = id(&sales);
    let proposal = stage_id(&sales, "Proposal");
    let created = futures::future::join_all((0..8).map(|i| {
        let (app, t) = (&app, &t);
        async move { create_deal(app, t, json!({"title": format!("Deal {i}")})).await }
    }))
    .await;
    let moved = futures::future::join_all(created.iter().map(|deal| {
        let (app, t, proposal) = (&app, &t, &proposal);
        async move {
            call(
                app,
                t,
                Method::POST,
                &format!("/deals/{}/move", id(deal)),
                Some(json!({"stage_id": proposal})),
            )
            .await
        }
    }))
    .await;
    for (status, body) in &moved {
        assert_eq!(*status, 200, "{body}");
    }
    let view = board(&app, &t, &pipeline, "").await;
    let column = column(&view, "Proposal");
    assert_eq!(column["count"], 8);
    assert_eq!(column["deals"].as_array().unwrap().len(), 8);
    let ranks: Vec<i64> = deals::Entity::find()
        .filter(deals::Column::StageId.eq(proposal.parse::<uuid::Uuid>().unwrap()))
        .all(app.db())
        .await
        .unwrap()
        .iter()
        .map(|d| d.board_rank)
        .collect();
    let mut distinct = ranks.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 8, "{ranks:?}");
    let org = admin["organization"]["id"].as_str().unwrap();
    assert_eq!(counts(&app, org).await, (8, 16));
}

async fn record_visibility_own_limits_users_to_their_deals(app: TestApp) {
    let admin = signup(&app, "Private", "admin@private.example").await;
    let t = token(&admin);
    let user = invite_and_accept(&app, &t, "user@private.example", "user").await;
    let manager = invite_and_accept(&app, &t, "manager@private.example", "manager").await;
    let (user_t, manager_t) = (token(&user), token(&manager));
    let user_id = user["user"]["id"].as_str().unwrap().to_owned();
    let sales = sales(&app, &t).await;
    let pipeline = id(&sales);
    let proposal = stage_id(&sales, "Proposal");

    let admins = create_deal(&app, &t, json!({"title": "Admin's deal"})).await;
    let users = create_deal(&app, &user_t, json!({"title": "User's deal"})).await;
    assert_eq!(users["owner_id"], user_id.as_str());
    let (admins_id, users_id) = (id(&admins), id(&users));

    // Everyone sees everything by default.
    let (status, _) = call(
        &app,
        &user_t,
        Method::GET,
        &format!("/deals/{admins_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // A user may take a deal and let go of their own, not give one away or unassign it.
    let spare = id(&create_deal(&app, &t, json!({"title": "Spare"})).await);
    let (status, _) = call(
        &app,
        &user_t,
        Method::PATCH,
        &format!("/deals/{admins_id}"),
        Some(json!({"owner_id": null})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, taken) = call(
        &app,
        &user_t,
        Method::PATCH,
        &format!("/deals/{spare}"),
        Some(json!({"owner_id": user_id})),
    )
    .await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(taken["owner_id"], user_id.as_str());
    let (status, released) = call(
        &app,
        &user_t,
        Method::PATCH,
        &format!("/deals/{spare}"),
        Some(json!({"owner_id": null})),
    )
    .await;
    assert_eq!(status, 200, "{released}");
    assert!(released["owner_id"].is_null());

    let (_, mut settings) = call(&app, &t, Method::GET, "/organization/settings", None).await;
    settings["record_visibility"] = json!("own");
    let (status, _) = call(
        &app,
        &t,
        Method::PUT,
        "/organization/settings",
        Some(settings),
    )
    .await;
    assert_eq!(status, 200);

    // A user: their own deals only; everything else is 404.
    for (method, path, body) in [
        (Method::GET, format!("/deals/{admins_id}"), None),
        (
            Method::PATCH,
            format!("/deals/{admins_id}"),
            Some(json!({"title": "mine now"})),
        ),
        (
            Method::POST,
            format!("/deals/{admins_id}/move"),
            Some(json!({"stage_id": proposal})),
        ),
        (
            Method::POST,
            format!("/deals/{admins_id}/won"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/deals/{admins_id}/lost"),
            Some(json!({"reason": "x"})),
        ),
        (Method::POST, format!("/deals/{admins_id}/reopen"), None),
    ] {
        let (status, body) = call(&app, &user_t, method, &path, body).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.to_string().contains("Admin's deal"));
    }
    let (status, _) = call(
        &app,
        &user_t,
        Method::GET,
        &format!("/deals/{users_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let view = board(&app, &user_t, &pipeline, "").await;
    let qualification = column(&view, "Qualification");
    assert_eq!(qualification["count"], 1);
    assert_eq!(card_titles(qualification), ["User's deal"]);
    // Their own deal cannot be placed relative to one they cannot see.
    let (status, refused) = call(
        &app,
        &user_t,
        Method::POST,
        &format!("/deals/{users_id}/move"),
        Some(json!({"stage_id": stage_id(&sales, "Qualification"), "before_id": admins_id})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    // Giving a deal to someone else needs crm_assign.
    let (status, _) = call(
        &app,
        &user_t,
        Method::POST,
        "/deals",
        Some(json!({"title": "For the boss", "owner_id": admin["user"]["id"]})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        &user_t,
        Method::PATCH,
        &format!("/deals/{users_id}"),
        Some(json!({"owner_id": admin["user"]["id"]})),
    )
    .await;
    assert_eq!(status, 403);

    // A manager sees all of them.
    for deal in [&admins_id, &users_id] {
        let (status, _) = call(
            &app,
            &manager_t,
            Method::GET,
            &format!("/deals/{deal}"),
            None,
        )
        .await;
        assert_eq!(status, 200);
    }
    // (The admin's, the user's and the unowned spare.)
    let view = board(&app, &manager_t, &pipeline, "").await;
    assert_eq!(column(&view, "Qualification")["count"], 3);

    // Assigned to the user, the admin's deal becomes theirs to see.
    let (status, assigned) = call(
        &app,
        &manager_t,
        Method::PATCH,
        &format!("/deals/{admins_id}"),
        Some(json!({"owner_id": user_id})),
    )
    .await;
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(assigned["owner_id"], user_id.as_str());
    let (status, _) = call(
        &app,
        &user_t,
        Method::GET,
        &format!("/deals/{admins_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

async fn another_organizations_deals_and_pipelines_answer_404(app: TestApp) {
    let alpha = signup(&app, "Alpha Deals", "admin@alpha-deals.example").await;
    let beta = signup(&app, "Beta Deals", "admin@beta-deals.example").await;
    let (a, b) = (token(&alpha), token(&beta));
    let alpha_sales = sales(&app, &a).await;
    let beta_sales = sales(&app, &b).await;
    let alpha_pipeline = id(&alpha_sales);
    let alpha_stage = stage_id(&alpha_sales, "Proposal");
    let alpha_deal = id(&create_deal(&app, &a, json!({"title": "Alpha secret"})).await);
    let beta_deal = id(&create_deal(&app, &b, json!({"title": "Beta's own"})).await);
    let org = alpha["organization"]["id"].as_str().unwrap().to_owned();
    let before = counts(&app, &org).await;

    for (method, path, body) in [
        (Method::GET, format!("/deals/{alpha_deal}"), None),
        (
            Method::PATCH,
            format!("/deals/{alpha_deal}"),
            Some(json!({"title": "stolen"})),
        ),
        (Method::DELETE, format!("/deals/{alpha_deal}"), None),
        (
            Method::POST,
            format!("/deals/{alpha_deal}/move"),
            Some(json!({"stage_id": stage_id(&beta_sales, "Proposal")})),
        ),
        (Method::POST, format!("/deals/{alpha_deal}/won"), None),
        (
            Method::POST,
            format!("/deals/{alpha_deal}/lost"),
            Some(json!({"reason": "x"})),
        ),
        (Method::POST, format!("/deals/{alpha_deal}/reopen"), None),
        (Method::GET, format!("/pipelines/{alpha_pipeline}"), None),
        (
            Method::GET,
            format!("/pipelines/{alpha_pipeline}/board"),
            None,
        ),
        (
            Method::PATCH,
            format!("/pipelines/{alpha_pipeline}"),
            Some(json!({"name": "stolen"})),
        ),
        (
            Method::POST,
            format!("/pipelines/{alpha_pipeline}/archive"),
            None,
        ),
        (
            Method::PATCH,
            format!("/pipelines/{alpha_pipeline}/stages/{alpha_stage}"),
            Some(json!({"name": "stolen"})),
        ),
        (
            Method::POST,
            format!("/pipelines/{alpha_pipeline}/stages/{alpha_stage}/archive"),
            None,
        ),
    ] {
        let (status, body) = call(&app, &b, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert!(!body.to_string().contains("Alpha"), "{body}");
    }
    // Alpha's ids inside a body are unknown too.
    for body in [
        json!({"title": "x", "stage_id": alpha_stage}),
        json!({"title": "x", "pipeline_id": alpha_pipeline}),
    ] {
        let (status, refused) = call(&app, &b, Method::POST, "/deals", Some(body)).await;
        assert_eq!(status, 422, "{refused}");
    }
    let (status, _) = call(
        &app,
        &b,
        Method::POST,
        &format!("/deals/{beta_deal}/move"),
        Some(json!({"stage_id": alpha_stage})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = call(
        &app,
        &b,
        Method::POST,
        &format!("/deals/{beta_deal}/move"),
        Some(json!({"stage_id": stage_id(&beta_sales, "Qualification"), "after_id": alpha_deal})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(counts(&app, &org).await, before);
    let (_, kept) = call(&app, &a, Method::GET, &format!("/deals/{alpha_deal}"), None).await;
    assert_eq!(kept["title"], "Alpha secret");
    assert_eq!(kept["history"].as_array().unwrap().len(), 1);
}

async fn the_schema_refuses_inconsistent_rows(app: TestApp) {
    use edge_server::entities::pipelines;
    use sea_orm::sea_query::Expr;

    let admin = signup(&app, "Schema", "admin@schema.example").await;
    let t = token(&admin);
    let org: uuid::Uuid = admin["organization"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let sales = sales(&app, &t).await;
    let (status, other) = call(
        &app,
        &t,
        Method::POST,
        "/pipelines",
        Some(json!({"name": "Other", "stages": [{"name": "Only"}]})),
    )
    .await;
    assert_eq!(status, 201);
    let deal: uuid::Uuid = id(&create_deal(&app, &t, json!({"title": "Checked"})).await)
        .parse()
        .unwrap();
    let db = app.db();
    let set = |column: deals::Column, value: sea_orm::Value| {
        deals::Entity::update_many()
            .col_expr(column, Expr::value(value))
            .filter(deals::Column::OrganizationId.eq(org))
            .filter(deals::Column::Id.eq(deal))
            .exec(db)
    };

    // A second active default pipeline.
    let second_default = pipelines::Entity::update_many()
        .col_expr(pipelines::Column::IsDefault, Expr::value(true))
        .filter(pipelines::Column::Id.eq(id(&other).parse::<uuid::Uuid>().unwrap()))
        .exec(db)
        .await;
    assert!(
        second_default.is_err(),
        "two default pipelines were accepted"
    );
    // A deal at a stage of another pipeline.
    let foreign_stage: uuid::Uuid = stage_id(&other, "Only").parse().unwrap();
    assert!(
        set(deals::Column::StageId, foreign_stage.into())
            .await
            .is_err(),
        "a deal at another pipeline's stage was accepted"
    );
    // A won deal without a close time, a negative value, an unknown status.
    assert!(set(deals::Column::Status, "won".into()).await.is_err());
    assert!(
        set(deals::Column::ValueMinor, (-1_i64).into())
            .await
            .is_err()
    );
    assert!(set(deals::Column::Status, "paused".into()).await.is_err());
    // An owner who is not a member of the organization.
    assert!(
        set(deals::Column::OwnerId, uuid::Uuid::now_v7().into())
            .await
            .is_err()
    );
    // The deal is as it was.
    let (_, kept) = call(&app, &t, Method::GET, &format!("/deals/{deal}"), None).await;
    assert_eq!(kept["status"], "open");
    assert_eq!(
        kept["stage"]["id"],
        stage_id(&sales, "Qualification").as_str()
    );
}

/// Every page of a list, following `next_cursor`.
async fn all_pages(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/deals?{query}&cursor={c}"),
            None => format!("/deals?{query}"),
        };
        let (status, page) = call(app, token, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}: {page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

fn titles(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|d| d["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn list_titles(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let (status, page) = call(app, token, Method::GET, &format!("/deals?{query}"), None).await;
    assert_eq!(status, 200, "{query}: {page}");
    titles(page["items"].as_array().unwrap())
}

async fn deals_are_listed_with_filters_search_sort_and_pages(app: TestApp) {
    let admin = signup(&app, "Lists", "admin@lists.example").await;
    let t = token(&admin);
    let member = invite_and_accept(&app, &t, "seller@lists.example", "user").await;
    let member_id = member["user"]["id"].as_str().unwrap().to_owned();
    let (_, mut settings) = call(&app, &t, Method::GET, "/organization/settings", None).await;
    settings["custom_fields"] = json!([
        {"key": "region", "label": "Region", "kind": "choice",
         "choices": ["Nairobi", "Mombasa"], "applies_to": ["deal"]}
    ]);
    let (status, _) = call(
        &app,
        &t,
        Method::PUT,
        "/organization/settings",
        Some(settings),
    )
    .await;
    assert_eq!(status, 200);
    let sales = sales(&app, &t).await;
    let proposal = stage_id(&sales, "Proposal");

    let specs = [
        ("Maize seed", "300", json!(["VIP", "seed"]), "Nairobi"),
        ("Fertiliser", "100", json!(["seed"]), "Mombasa"),
        ("Irrigation kit", "500", json!([]), "Mombasa"),
        ("Maize silo", "200", json!(["vip"]), "Nairobi"),
        ("Tractor lease", "400", json!([]), "Nairobi"),
    ];
    let mut ids = Vec::new();
    for (title, amount, tags, region) in specs {
        let deal = create_deal(
            &app,
            &t,
            json!({"title": title, "value": kes(amount), "tags": tags,
                   "custom_fields": {"region": region}}),
        )
        .await;
        ids.push(id(&deal));
    }
    create_deal(
        &app,
        &t,
        json!({"title": "Their greenhouse", "value": kes("50"), "owner_id": member_id}),
    )
    .await;
    move_deal(&app, &t, &ids[2], json!({"stage_id": proposal})).await;
    let (status, _) = call(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{}/won", ids[4]),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        &t,
        Method::DELETE,
        &format!("/deals/{}", ids[1]),
        None,
    )
    .await;
    assert_eq!(status, 204);

    // Newest first by default; deleted deals are not listed; pages neither skip nor repeat.
    let newest = [
        "Their greenhouse",
        "Tractor lease",
        "Maize silo",
        "Irrigation kit",
        "Maize seed",
    ];
    assert_eq!(list_titles(&app, &t, "").await, newest);
    let (_, first) = call(&app, &t, Method::GET, "/deals?limit=2", None).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert!(first["next_cursor"].is_string());
    assert!(first["items"][0].get("history").is_none());
    assert_eq!(titles(&all_pages(&app, &t, "limit=2").await), newest);
    assert_eq!(
        titles(&all_pages(&app, &t, "limit=2&sort=value_minor").await),
        [
            "Their greenhouse",
            "Maize silo",
            "Maize seed",
            "Tractor lease",
            "Irrigation kit"
        ]
    );
    assert_eq!(
        titles(&all_pages(&app, &t, "limit=3&sort=-value_minor").await),
        [
            "Irrigation kit",
            "Tractor lease",
            "Maize seed",
            "Maize silo",
            "Their greenhouse"
        ]
    );

    // Filters.
    assert_eq!(
        list_titles(&app, &t, "q=MAIZE&sort=created_at").await,
        ["Maize seed", "Maize silo"]
    );
    assert_eq!(
        list_titles(&app, &t, "tag=vip&sort=created_at").await,
        ["Maize seed", "Maize silo"]
    );
    assert_eq!(list_titles(&app, &t, "status=won").await, ["Tractor lease"]);
    assert_eq!(
        list_titles(&app, &t, &format!("stage_id={proposal}")).await,
        ["Irrigation kit"]
    );
    assert_eq!(
        list_titles(&app, &t, &format!("pipeline_id={}", id(&sales))).await,
        newest
    );
    assert_eq!(
        list_titles(&app, &t, &format!("owner_id={member_id}")).await,
        ["Their greenhouse"]
    );
    assert_eq!(list_titles(&app, &t, "owner_id=me").await.len(), 4);
    assert_eq!(
        list_titles(&app, &t, "cf.region=Mombasa").await,
        ["Irrigation kit"]
    );
    assert_eq!(
        list_titles(&app, &t, "cf.region=Nairobi&status=open&sort=created_at").await,
        ["Maize seed", "Maize silo"]
    );
    assert!(
        list_titles(&app, &t, "created_before=2000-01-01")
            .await
            .is_empty()
    );
    assert_eq!(
        list_titles(&app, &t, "created_after=2000-01-01")
            .await
            .len(),
        5
    );

    // Bad parameters are named.
    for (query, field) in [
        ("status=paused", "status"),
        ("colour=red", "colour"),
        ("sort=title", "sort"),
        ("cf.size=3", "cf.size"),
        ("stage_id=nope", "stage_id"),
        ("cursor=garbage!", "cursor"),
    ] {
        let (status, refused) = call(&app, &t, Method::GET, &format!("/deals?{query}"), None).await;
        assert_eq!(status, 422, "{query}: {refused}");
        assert_eq!(fields(&refused)[0].0, field, "{query}");
    }

    // Under `own` visibility a user lists only their deals.
    let (_, mut settings) = call(&app, &t, Method::GET, "/organization/settings", None).await;
    settings["record_visibility"] = json!("own");
    let (status, _) = call(
        &app,
        &t,
        Method::PUT,
        "/organization/settings",
        Some(settings),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        list_titles(&app, &token(&member), "").await,
        ["Their greenhouse"]
    );
    assert!(
        list_titles(&app, &token(&member), "q=maize")
            .await
            .is_empty()
    );
}

async fn deals_are_linked_to_prospects_and_relationships(app: TestApp) {
    let admin = signup(&app, "Links", "admin@links.example").await;
    let t = token(&admin);
    let other = signup(&app, "Elsewhere", "admin@elsewhere-links.example").await;
    let (status, prospect) = call(
        &app,
        &t,
        Method::POST,
        "/prospects",
        Some(json!({"name": "Wanjiku Njoroge", "phone": "0712345678"})),
    )
    .await;
    assert_eq!(status, 201, "{prospect}");
    let (status, relationship) = call(
        &app,
        &t,
        Method::POST,
        "/relationships",
        Some(json!({"name": "Kamau Hardware", "phone": "0722000000"})),
    )
    .await;
    assert_eq!(status, 201, "{relationship}");
    let (status, foreign) = call(
        &app,
        &token(&other),
        Method::POST,
        "/prospects",
        Some(json!({"name": "Not yours", "phone": "0733000000"})),
    )
    .await;
    assert_eq!(status, 201);

    let deal = create_deal(
        &app,
        &t,
        json!({"title": "Shop fit-out", "prospect_id": id(&prospect)}),
    )
    .await;
    assert_eq!(deal["prospect_id"], id(&prospect).as_str());
    assert!(deal["relationship_id"].is_null());
    let deal_id = id(&deal);
    assert_eq!(
        list_titles(&app, &t, &format!("prospect_id={}", id(&prospect))).await,
        ["Shop fit-out"]
    );

    // Unknown, deleted and other organizations' records are refused, by field.
    for (body, field) in [
        (
            json!({"title": "x", "prospect_id": uuid::Uuid::now_v7()}),
            "prospect_id",
        ),
        (
            json!({"title": "x", "prospect_id": id(&foreign)}),
            "prospect_id",
        ),
        (
            json!({"title": "x", "relationship_id": id(&prospect)}),
            "relationship_id",
        ),
    ] {
        let (status, refused) = call(&app, &t, Method::POST, "/deals", Some(body)).await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(fields(&refused)[0].0, field);
    }

    // Linked to the relationship instead; the prospect link cleared.
    let (status, patched) = call(
        &app,
        &t,
        Method::PATCH,
        &format!("/deals/{deal_id}"),
        Some(json!({"relationship_id": id(&relationship), "prospect_id": null})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["relationship_id"], id(&relationship).as_str());
    assert!(patched["prospect_id"].is_null());
    assert_eq!(
        list_titles(&app, &t, &format!("relationship_id={}", id(&relationship))).await,
        ["Shop fit-out"]
    );
    let (status, _) = call(
        &app,
        &t,
        Method::DELETE,
        &format!("/prospects/{}", id(&prospect)),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, refused) = call(
        &app,
        &t,
        Method::PATCH,
        &format!("/deals/{deal_id}"),
        Some(json!({"prospect_id": id(&prospect)})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(fields(&refused)[0].0, "prospect_id");
}

/// Migrating a database that already has organizations gives each the default pipeline;
/// the migration also goes down and up again cleanly.
async fn organizations_that_exist_before_the_migration_get_the_default_pipeline(backend: Backend) {
    use edge_server::entities::{organizations, pipeline_stages, pipelines};
    use edge_server::migrations::Migrator;
    use sea_orm::{Database, QueryOrder};
    use sea_orm_migration::MigratorTrait;

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
        .position(|n| n == "m20261123_000006_pipelines_deals")
        .unwrap();
    Migrator::up(&db, Some(u32::try_from(ours).unwrap()))
        .await
        .unwrap();
    let org = organizations::Model::new_active(
        "early-bird".into(),
        "Early Bird".into(),
        "KES".into(),
        "KE".into(),
        "standard".into(),
        chrono::Utc::now(),
    );
    organizations::Entity::insert(organizations::ActiveModel::from(org.clone()))
        .exec_without_returning(&db)
        .await
        .unwrap();

    let check = |db: sea_orm::DatabaseConnection| async move {
        let rows = pipelines::Entity::find()
            .filter(pipelines::Column::OrganizationId.eq(org.id))
            .all(&db)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, "Sales");
        assert!(rows[0].is_default);
        let stages: Vec<String> = pipeline_stages::Entity::find()
            .filter(pipeline_stages::Column::PipelineId.eq(rows[0].id))
            .order_by_asc(pipeline_stages::Column::Position)
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            stages,
            ["Qualification", "Proposal", "Negotiation", "Closing"]
        );
    };
    Migrator::up(&db, None).await.unwrap();
    check(db.clone()).await;

    // Down to before this migration, and up again.
    let after = u32::try_from(names.len() - ours).unwrap();
    Migrator::down(&db, Some(after)).await.unwrap();
    assert!(
        pipelines::Entity::find().all(&db).await.is_err(),
        "the tables are gone"
    );
    Migrator::up(&db, None).await.unwrap();
    check(db.clone()).await;
    db.close().await.unwrap();
}
