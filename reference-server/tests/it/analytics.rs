//! Analytics over a period: the numbers match the deals, payments and activities the
//! test creates, periods are validated, money needs billing_read, and another tenant's
//! data never counts.

use chrono::{Duration, Utc};
use reqwest::Method;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};

use crate::auth::{signup, token};
use crate::crm_support::{expect, field_errors, relationship};
use crate::helpers::{TestApp, on_both_backends};
use crate::tenancy::invite_and_accept;
use edge_server::entities::payments;

on_both_backends!(
    analytics_numbers_match_the_data,
    periods_are_validated_and_money_needs_billing_read,
);

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A period of yesterday to tomorrow (UTC days), which holds "now" in any local time.
fn period() -> String {
    let today = Utc::now().date_naive();
    format!(
        "from={}&to={}",
        today - Duration::days(1),
        today + Duration::days(1)
    )
}

fn stage<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["pipelines"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

async fn insert_payment(app: &TestApp, org: uuid::Uuid, minor: i64, status: &str) {
    let now = Utc::now();
    let amount = edge_core::Money::from_minor(minor, "KES".parse().unwrap());
    let mut row =
        payments::ActiveModel::pending(org, uuid::Uuid::now_v7(), "collection", "stk", amount, now);
    row.status = Set(status.to_owned());
    if status == "succeeded" {
        row.paid_amount_minor = Set(Some(minor));
        row.paid_at = Set(Some(now));
        row.completed_at = Set(Some(now));
    }
    payments::Entity::insert(row)
        .exec_without_returning(app.db())
        .await
        .unwrap();
}

async fn analytics_numbers_match_the_data(app: TestApp) {
    let admin = signup(&app, "Takwimu", "admin@takwimu.example").await;
    let t = token(&admin);
    let me = admin["user"]["id"].as_str().unwrap().to_owned();
    let org: uuid::Uuid = admin["organization"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let other = signup(&app, "Jirani", "admin@jirani.example").await;
    let o = token(&other);
    let other_org: uuid::Uuid = other["organization"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let pipelines = expect(&app, &t, Method::GET, "/pipelines", None, 200).await;
    let sales = pipelines["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["is_default"] == true)
        .unwrap()
        .clone();
    let stage_id = |name: &str| {
        sales["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(id)
            .unwrap()
    };
    let proposal = stage_id("Proposal");
    let negotiation = stage_id("Negotiation");

    let deal = |title: &str, amount: &str| json!({"title": title, "value": {"amount": amount, "currency": "KES"}});
    let a = id(&expect(
        &app,
        &t,
        Method::POST,
        "/deals",
        Some(deal("A", "1500.00")),
        201,
    )
    .await);
    let b = id(&expect(
        &app,
        &t,
        Method::POST,
        "/deals",
        Some(deal("B", "700.50")),
        201,
    )
    .await);
    let c = id(&expect(
        &app,
        &t,
        Method::POST,
        "/deals",
        Some(deal("C", "99.00")),
        201,
    )
    .await);
    for (deal, stage) in [(&a, &proposal), (&b, &proposal), (&b, &negotiation)] {
        expect(
            &app,
            &t,
            Method::POST,
            &format!("/deals/{deal}/move"),
            Some(json!({"stage_id": stage})),
            200,
        )
        .await;
    }
    expect(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{a}/won"),
        None,
        200,
    )
    .await;
    expect(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{b}/won"),
        None,
        200,
    )
    .await;
    expect(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{c}/lost"),
        Some(json!({"reason": "price"})),
        200,
    )
    .await;
    // Another tenant's won deal never counts.
    let x = id(&expect(
        &app,
        &o,
        Method::POST,
        "/deals",
        Some(deal("X", "5000.00")),
        201,
    )
    .await);
    expect(
        &app,
        &o,
        Method::POST,
        &format!("/deals/{x}/won"),
        None,
        200,
    )
    .await;

    let report = expect(
        &app,
        &t,
        Method::GET,
        &format!("/analytics/pipeline-conversion?{}", period()),
        None,
        200,
    )
    .await;
    let q = stage(&report, "Qualification");
    assert_eq!(
        (
            q["entered"].as_i64(),
            q["moved_on"].as_i64(),
            q["won"].as_i64(),
            q["lost"].as_i64()
        ),
        (Some(3), Some(2), Some(2), Some(1)),
        "{report}"
    );
    assert_eq!(q["moved_on_percent"], 66);
    let p = stage(&report, "Proposal");
    assert_eq!(
        (p["entered"].as_i64(), p["moved_on"].as_i64()),
        (Some(2), Some(1)),
        "{report}"
    );
    let n = stage(&report, "Negotiation");
    assert_eq!(
        (n["entered"].as_i64(), n["won"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(stage(&report, "Closing")["entered"], 0);

    let revenue = expect(
        &app,
        &t,
        Method::GET,
        &format!("/analytics/revenue-won?{}", period()),
        None,
        200,
    )
    .await;
    let months = revenue["months"].as_array().unwrap();
    assert_eq!(months.len(), 1, "{revenue}");
    assert_eq!(months[0]["deals"], 2);
    assert_eq!(months[0]["revenue"]["amount"], "2200.50");
    assert_eq!(months[0]["revenue"]["currency"], "KES");
    // Months are local (Nairobi, UTC+3).
    let local_month = (Utc::now() + Duration::hours(3))
        .format("%Y-%m")
        .to_string();
    assert_eq!(months[0]["month"], local_month.as_str());

    insert_payment(&app, org, 10_000, "succeeded").await;
    insert_payment(&app, org, 25_050, "succeeded").await;
    insert_payment(&app, org, 99_900, "pending").await;
    insert_payment(&app, other_org, 77_700, "succeeded").await;
    let collected = expect(
        &app,
        &t,
        Method::GET,
        &format!("/analytics/payments?{}", period()),
        None,
        200,
    )
    .await;
    let months = collected["months"].as_array().unwrap();
    assert_eq!(months.len(), 1, "{collected}");
    assert_eq!(months[0]["payments"], 2);
    assert_eq!(months[0]["purpose"], "collection");
    assert_eq!(months[0]["collected"]["amount"], "350.50");
    assert_eq!(months[0]["month"], local_month.as_str());

    let customer = relationship(&app, &t, json!({"name": "Otieno Motors"})).await;
    let activity = |kind: &str| json!({"kind": kind, "subject_type": "relationship", "subject_id": customer, "title": kind});
    let call = id(&expect(
        &app,
        &t,
        Method::POST,
        "/activities",
        Some(activity("call")),
        201,
    )
    .await);
    expect(
        &app,
        &t,
        Method::POST,
        "/activities",
        Some(activity("call")),
        201,
    )
    .await;
    expect(
        &app,
        &t,
        Method::POST,
        "/activities",
        Some(activity("note")),
        201,
    )
    .await;
    expect(
        &app,
        &t,
        Method::POST,
        &format!("/activities/{call}/complete"),
        None,
        200,
    )
    .await;
    let activities = expect(
        &app,
        &t,
        Method::GET,
        &format!("/analytics/activities?{}", period()),
        None,
        200,
    )
    .await;
    let users = activities["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{activities}");
    assert_eq!(users[0]["user_id"], me.as_str());
    assert_eq!(
        (users[0]["created"].as_i64(), users[0]["completed"].as_i64()),
        (Some(3), Some(1))
    );
    assert_eq!(
        users[0]["by_kind"]["call"],
        json!({"created": 2, "completed": 1})
    );
    assert_eq!(
        users[0]["by_kind"]["note"],
        json!({"created": 1, "completed": 0})
    );

    let today = (Utc::now() + Duration::hours(3)).date_naive();
    expect(
        &app,
        &t,
        Method::POST,
        "/targets",
        Some(json!({"name": "Wins", "metric": "deals_won", "user_ids": [],
                    "period_start": today - Duration::days(7), "period_end": today + Duration::days(7),
                    "goal": 4})),
        201,
    )
    .await;
    let targets = expect(
        &app,
        &t,
        Method::GET,
        &format!("/analytics/targets?{}", period()),
        None,
        200,
    )
    .await;
    let list = targets["targets"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{targets}");
    assert_eq!(list[0]["progress"]["achieved"], 2);
    assert_eq!(list[0]["progress"]["percent"], 50);

    let messages = expect(
        &app,
        &t,
        Method::GET,
        &format!("/analytics/messages?{}", period()),
        None,
        200,
    )
    .await;
    assert_eq!(messages["volume"], json!([]), "{messages}");
    assert_eq!(messages["spend"], json!([]));
}

async fn periods_are_validated_and_money_needs_billing_read(app: TestApp) {
    let admin = signup(&app, "Kipimo", "admin@kipimo.example").await;
    let t = token(&admin);
    for query in [
        "from=2026-11-02&to=2026-11-01",
        "from=2026-02-30",
        "from=2020-01-01&to=2026-01-01",
    ] {
        let body = expect(
            &app,
            &t,
            Method::GET,
            &format!("/analytics/revenue-won?{query}"),
            None,
            422,
        )
        .await;
        assert!(!field_errors(&body).is_empty(), "{query}: {body}");
    }
    let default = expect(&app, &t, Method::GET, "/analytics/activities", None, 200).await;
    assert_eq!(default["period"]["utc_offset_seconds"], 3 * 3600);
    expect(
        &app,
        &t,
        Method::GET,
        "/analytics/activities?colour=red",
        None,
        400,
    )
    .await;

    let user = invite_and_accept(&app, &t, "user@kipimo.example", "user").await;
    let u = token(&user);
    for path in ["revenue-won", "payments", "messages"] {
        expect(
            &app,
            &u,
            Method::GET,
            &format!("/analytics/{path}"),
            None,
            403,
        )
        .await;
    }
    for path in ["pipeline-conversion", "activities", "targets"] {
        expect(
            &app,
            &u,
            Method::GET,
            &format!("/analytics/{path}"),
            None,
            200,
        )
        .await;
    }
}
