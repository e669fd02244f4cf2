//! The wallet over HTTP: balances, entries and operators' adjustments.

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::{operator, signup, token};
use crate::helpers::{TestApp, on_both_backends};
use crate::tenancy::send;

on_both_backends!(
    operators_adjust_wallets_idempotently_and_members_see_them,
    concurrent_adjustments_on_one_wallet_all_apply_once,
);

fn adjustment(amount: &str, direction: &str, key: &str) -> Value {
    json!({
        "amount": {"amount": amount, "currency": "KES"},
        "direction": direction,
        "reason": "goodwill credit after an outage",
        "idempotency_key": key,
    })
}

async fn operators_adjust_wallets_idempotently_and_members_see_them(app: TestApp) {
    let ops = token(&operator(&app).await);
    let shop = signup(&app, "Duka", "admin@duka.example").await;
    let admin = token(&shop);
    let org = shop["organization"]["id"].as_str().unwrap().to_owned();

    let empty: Value = send(&app, &admin, Method::GET, "/wallet", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty["available"]["amount"], "0.00");
    assert_eq!(empty["currency"], "KES");

    let path = format!("/admin/organizations/{org}/wallet/adjustments");
    let credited = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(adjustment("500.00", "credit", "adj-1")),
    )
    .await;
    assert_eq!(credited.status(), 201);
    let credited: Value = credited.json().await.unwrap();
    assert_eq!(credited["balance"]["posted"]["amount"], "500.00");
    assert_eq!(credited["replayed"], false);

    // The same request again: the first result, nothing moves twice.
    let replay = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(adjustment("500.00", "credit", "adj-1")),
    )
    .await;
    assert_eq!(replay.status(), 200);
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay["replayed"], true);
    assert_eq!(replay["transfer"]["id"], credited["transfer"]["id"]);
    // The same key for something else: refused.
    let reused = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(adjustment("50.00", "credit", "adj-1")),
    )
    .await;
    assert_eq!(reused.status(), 409);
    // More than is there: 402, and nothing changes.
    let too_much = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(adjustment("600.00", "debit", "adj-2")),
    )
    .await;
    assert_eq!(too_much.status(), 402);
    let debited = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(adjustment("120.50", "debit", "adj-3")),
    )
    .await;
    assert_eq!(debited.status(), 201);
    // Bad input is refused with the field named.
    let bad = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(adjustment("-5.00", "credit", "adj-4")),
    )
    .await;
    assert_eq!(bad.status(), 422);

    let balance: Value = send(&app, &admin, Method::GET, "/wallet", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(balance["posted"]["amount"], "379.50");
    assert_eq!(balance["available"]["amount"], "379.50");

    // Entries: both sides of both transfers, oldest first, in pages.
    let first: Value = send(&app, &admin, Method::GET, "/wallet/entries?limit=3", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest: Value = send(
        &app,
        &admin,
        Method::GET,
        &format!("/wallet/entries?limit=3&cursor={cursor}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    let wallet_sum: i64 = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .filter(|e| e["account"].as_str().unwrap().starts_with("wallet:"))
        .map(|e| e["amount"]["amount_minor"].as_i64().unwrap())
        .sum();
    assert_eq!(wallet_sum, 37_950);

    // Audited once per adjustment, replays included.
    let log: Value = send(
        &app,
        &admin,
        Method::GET,
        "/audit-log?action=wallet.adjust",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(log["items"].as_array().unwrap().len(), 2);

    // Members read the wallet only with billing permission; nobody but operators adjusts.
    assert_eq!(
        send(
            &app,
            &admin,
            Method::POST,
            &path,
            Some(adjustment("1.00", "credit", "adj-5"))
        )
        .await
        .status(),
        403
    );
    // A low-balance threshold: crossing it is reported, once.
    let set = send(
        &app,
        &admin,
        Method::PATCH,
        "/wallet",
        Some(json!({"low_balance_threshold": {"amount": "300.00", "currency": "KES"}})),
    )
    .await;
    assert_eq!(set.status(), 200);
    let crossed: Value = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(adjustment("100.00", "debit", "adj-7")),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(crossed["events"][0]["type"], "low_balance", "{crossed}");
    assert_eq!(crossed["events"][0]["threshold"]["amount"], "300.00");
    let again: Value = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(adjustment("10.00", "debit", "adj-8")),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["events"].as_array().unwrap().len(), 0, "{again}");

    // An operator's credit limit lets the balance go below zero, that far and no further.
    let limit = send(
        &app,
        &ops,
        Method::PATCH,
        &format!("/admin/organizations/{org}/wallet"),
        Some(json!({"credit_limit": {"amount": "100.00", "currency": "KES"}})),
    )
    .await;
    assert_eq!(limit.status(), 200);
    let into_credit = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(adjustment("369.50", "debit", "adj-9")),
    )
    .await;
    assert_eq!(into_credit.status(), 201);
    let body: Value = into_credit.json().await.unwrap();
    assert_eq!(body["balance"]["available"]["amount"], "-100.00");
    let beyond = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(adjustment("0.01", "debit", "adj-10")),
    )
    .await;
    assert_eq!(beyond.status(), 402);
    assert_eq!(
        send(
            &app,
            &admin,
            Method::PATCH,
            &format!("/admin/organizations/{org}/wallet"),
            Some(json!({"credit_limit": {"amount": "1.00", "currency": "KES"}}))
        )
        .await
        .status(),
        403
    );

    let unknown = uuid::Uuid::now_v7();
    let missing = send(
        &app,
        &ops,
        Method::POST,
        &format!("/admin/organizations/{unknown}/wallet/adjustments"),
        Some(adjustment("1.00", "credit", "adj-6")),
    )
    .await;
    assert_eq!(missing.status(), 404);
}

/// Many adjustments at once on one wallet: the ledger batches them; every one applies
/// exactly once, including on PostgreSQL where the server runs behind row-level security.
async fn concurrent_adjustments_on_one_wallet_all_apply_once(app: TestApp) {
    let ops = token(&operator(&app).await);
    let shop = signup(&app, "Duka", "admin@duka.example").await;
    let org = shop["organization"]["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/organizations/{org}/wallet/adjustments");

    let mut calls = Vec::new();
    for i in 0..40 {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1{path}"));
        let ops = ops.clone();
        calls.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(ops)
                .json(&adjustment("1.25", "credit", &format!("burst-{i}")))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), 201);
    }
    let balance: Value = send(&app, &token(&shop), Method::GET, "/wallet", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(balance["posted"]["amount"], "50.00");
}
