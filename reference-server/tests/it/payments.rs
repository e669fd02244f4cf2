//! M-Pesa payments through the HTTP API against the fake Daraja: wallet top-ups by STK
//! push, their callbacks (duplicated, dropped, mismatched, forged), reconciliation,
//! restarts, idempotency, and collections on a tenant's own shortcode.

use std::time::Duration;

use edge_mpesa::fake::{FakeDaraja, FakeOutcome};
use reqwest::Method;
use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::{Value, json};

use crate::auth::{signup, token};
use crate::helpers::{Backend, Options, TestApp, for_each_backend, spawn_with};
use crate::tenancy::send;

for_each_backend!(
    a_top_up_credits_the_wallet_once_even_when_the_callback_comes_twice,
    declined_payments_credit_nothing,
    a_dropped_callback_is_settled_by_reconciliation,
    a_callback_that_does_not_match_the_request_lands_in_review,
    a_callback_after_a_restart_is_still_applied,
    a_wrong_token_is_refused_and_changes_nothing,
    an_idempotency_key_prompts_the_payer_once,
    bad_top_ups_name_every_bad_field,
    tenants_collect_with_their_own_sealed_credentials,
    a_lapsed_subscription_is_restored_by_paying_for_it,
    callbacks_are_kept_as_received_and_unknown_ones_flagged,
    concurrent_reconcilers_ask_daraja_once,
);

/// The public sandbox passkey, which the server's development platform account uses.
const SANDBOX_PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";

/// A fake Daraja that knows the platform's sandbox shortcode.
async fn fake_daraja() -> FakeDaraja {
    let fake = FakeDaraja::start().await.unwrap();
    fake.merchant("174379", SANDBOX_PASSKEY);
    fake
}

/// The server, talking to `fake`, with `vars` on top.
async fn server(backend: Backend, test: &str, fake: &FakeDaraja, vars: &[(&str, &str)]) -> TestApp {
    let mut all = vec![("EDGE_MPESA_BASE_URL".to_owned(), fake.base_url())];
    all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    spawn_with(
        backend,
        test,
        Options {
            vars: all,
            ..Options::default()
        },
    )
    .await
    .expect("the backend is available")
}

/// Signs up an organization; returns (admin token, organization id).
async fn shop(app: &TestApp, name: &str, email: &str) -> (String, String) {
    let body = signup(app, name, email).await;
    (
        token(&body),
        body["organization"]["id"].as_str().unwrap().to_owned(),
    )
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

async fn top_up(app: &TestApp, admin: &str, amount: &str, phone: &str) -> reqwest::Response {
    send(
        app,
        admin,
        Method::POST,
        "/wallet/top-ups",
        Some(json!({"amount": amount, "phone": phone})),
    )
    .await
}

/// Polls the payment until it leaves `pending` and, if it succeeded, its effect is
/// applied (or fails the test after 15 s).
async fn settled(app: &TestApp, admin: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let payment =
            json_of(send(app, admin, Method::GET, &format!("/payments/{id}"), None).await).await;
        let applied = payment["status"] != "succeeded" || payment["applied_at"].is_string();
        if payment["status"] != "pending" && applied {
            return payment;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "payment {id} still pending: {payment}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn available(app: &TestApp, admin: &str) -> String {
    let wallet = json_of(send(app, admin, Method::GET, "/wallet", None).await).await;
    wallet["available"]["amount"].as_str().unwrap().to_owned()
}

/// How many ledger transfers credit wallets from M-Pesa clearing for `payment`.
async fn credits_for(app: &TestApp, payment: &str) -> i64 {
    let row = app
        .db()
        .query_one_raw(Statement::from_string(
            app.db().get_database_backend(),
            format!(
                "SELECT COUNT(*) AS n FROM ledger_transfers WHERE idempotency_key = 'mpesa-payment:{payment}'"
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let row = app
        .db()
        .query_one_raw(Statement::from_string(
            app.db().get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// The STK callback for `checkout` in Daraja's shape (the documented fixture), with the
/// given result, amount and phone.
fn stk_callback(checkout: &str, amount: f64, phone: u64, receipt: &str) -> Value {
    let mut body: Value =
        serde_json::from_str(include_str!("../data/stk_callback_success.json")).unwrap();
    let callback = &mut body["Body"]["stkCallback"];
    callback["CheckoutRequestID"] = json!(checkout);
    for item in callback["CallbackMetadata"]["Item"].as_array_mut().unwrap() {
        match item["Name"].as_str().unwrap() {
            "Amount" => item["Value"] = json!(amount),
            "PhoneNumber" => item["Value"] = json!(phone),
            "MpesaReceiptNumber" => item["Value"] = json!(receipt),
            _ => {}
        }
    }
    body
}

async fn stk_callback_url(app: &TestApp, admin: &str) -> String {
    let settings = json_of(send(app, admin, Method::GET, "/mpesa/settings", None).await).await;
    settings["callback_urls"]["stk"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_top_up_credits_the_wallet_once_even_when_the_callback_comes_twice(backend: Backend) {
    let fake = fake_daraja().await;
    fake.duplicate_callbacks(true);
    // Late enough that the 201 is written before the callbacks arrive, even on a busy machine.
    fake.callback_delay(Duration::from_secs(1));
    let app = server(backend, module_path!(), &fake, &[]).await;
    let (admin, _) = shop(&app, "Duka", "admin@duka.example").await;

    let started = top_up(&app, &admin, "100", "0708374149").await;
    assert_eq!(started.status(), 201);
    let started = json_of(started).await;
    assert_eq!(started["status"], "pending");
    assert_eq!(started["purpose"], "wallet_top_up");
    assert_eq!(started["amount"]["amount"], "100.00");
    assert_eq!(started["phone"], "+254708374149");
    let id = started["id"].as_str().unwrap().to_owned();

    let payment = settled(&app, &admin, &id).await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    assert!(payment["mpesa"]["receipt"].is_string());
    assert!(payment["applied_at"].is_string());
    // Both deliveries reached the server; the second changed nothing.
    let sent = fake.wait_for_callbacks(2, Duration::from_secs(5)).await;
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|c| c.status == Some(200)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(available(&app, &admin).await, "100.00");
    assert_eq!(credits_for(&app, &id).await, 1);

    // A third copy posted by hand is a duplicate too.
    let url = stk_callback_url(&app, &admin).await;
    let replay = app
        .client
        .post(&url)
        .body(sent[0].body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    assert_eq!(json_of(replay).await["ResultCode"], 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(available(&app, &admin).await, "100.00");
    assert_eq!(credits_for(&app, &id).await, 1);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM mpesa_callbacks WHERE outcome = 'duplicate'"
        )
        .await,
        2
    );

    // The history shows the creation and one state change, from the callback.
    let payment =
        json_of(send(&app, &admin, Method::GET, &format!("/payments/{id}"), None).await).await;
    let history = payment["history"].as_array().unwrap();
    let kinds: Vec<&str> = history
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["payment.created", "payment.status_changed"]);
    assert_eq!(history[1]["data"]["to"], "succeeded");
    assert_eq!(history[1]["data"]["source"], "callback");

    // The list finds it by status and by phone.
    let listed = json_of(
        send(
            &app,
            &admin,
            Method::GET,
            "/payments?status=succeeded&phone=0708374149",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["id"], id.as_str());
    let none =
        json_of(send(&app, &admin, Method::GET, "/payments?status=failed", None).await).await;
    assert!(none["items"].as_array().unwrap().is_empty());
}

async fn declined_payments_credit_nothing(backend: Backend) {
    let fake = fake_daraja().await;
    fake.outcome_for_phone("254711000001", FakeOutcome::Cancelled)
        .outcome_for_phone("254711000002", FakeOutcome::TimedOut)
        .outcome_for_phone("254711000003", FakeOutcome::InsufficientFunds);
    let app = server(backend, module_path!(), &fake, &[]).await;
    let (admin, _) = shop(&app, "Duka", "admin@duka.example").await;

    for (phone, status, code) in [
        ("0711000001", "cancelled", "1032"),
        ("0711000002", "timed_out", "1037"),
        ("0711000003", "failed", "1"),
    ] {
        let started = json_of(top_up(&app, &admin, "250", phone).await).await;
        let payment = settled(&app, &admin, started["id"].as_str().unwrap()).await;
        assert_eq!(payment["status"], status, "{payment}");
        assert_eq!(payment["mpesa"]["result_code"], code);
        assert!(payment["applied_at"].is_null());
        assert!(payment["ledger_transfer_id"].is_null());
    }
    assert_eq!(available(&app, &admin).await, "0.00");
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM ledger_transfers").await,
        0
    );
}

async fn a_dropped_callback_is_settled_by_reconciliation(backend: Backend) {
    let fake = fake_daraja().await;
    fake.drop_callbacks(true);
    let app = server(
        backend,
        module_path!(),
        &fake,
        &[("EDGE_MPESA_RECONCILE_AFTER_SECS", "1")],
    )
    .await;
    let (admin, _) = shop(&app, "Duka", "admin@duka.example").await;

    let started = json_of(top_up(&app, &admin, "300", "0708374149").await).await;
    let id = started["id"].as_str().unwrap().to_owned();
    let payment = settled(&app, &admin, &id).await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    assert!(
        fake.sent_callbacks().is_empty(),
        "the fake dropped the callback"
    );
    assert_eq!(fake.requests_to("/mpesa/stkpushquery/v1/query").len(), 1);
    let history = payment["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["data"]["source"], "stk_query");
    assert_eq!(available(&app, &admin).await, "300.00");
    assert_eq!(credits_for(&app, &id).await, 1);
}

async fn a_callback_that_does_not_match_the_request_lands_in_review(backend: Backend) {
    let fake = fake_daraja().await;
    fake.drop_callbacks(true);
    let app = server(backend, module_path!(), &fake, &[]).await;
    let (admin, org) = shop(&app, "Duka", "admin@duka.example").await;
    let url = stk_callback_url(&app, &admin).await;

    // 1,000 asked, 10 reported paid.
    let short = json_of(top_up(&app, &admin, "1000", "0708374149").await).await;
    let checkout = short["mpesa"]["checkout_request_id"].as_str().unwrap();
    let answer = app
        .client
        .post(&url)
        .json(&stk_callback(
            checkout,
            10.0,
            254_708_374_149,
            "RCPTAMOUNT1",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let payment = settled(&app, &admin, short["id"].as_str().unwrap()).await;
    assert_eq!(payment["status"], "needs_review", "{payment}");
    let reason = payment["review_reason"].as_str().unwrap();
    assert!(
        reason.contains("10.00 KES paid but 1000.00 was asked"),
        "{reason}"
    );
    assert_eq!(payment["mpesa"]["paid_amount"]["amount"], "10.00");

    // The right amount from another phone.
    let other = json_of(top_up(&app, &admin, "200", "0708374149").await).await;
    let checkout = other["mpesa"]["checkout_request_id"].as_str().unwrap();
    app.client
        .post(&url)
        .json(&stk_callback(
            checkout,
            200.0,
            254_722_000_000,
            "RCPTPHONE01",
        ))
        .send()
        .await
        .unwrap();
    let payment = settled(&app, &admin, other["id"].as_str().unwrap()).await;
    assert_eq!(payment["status"], "needs_review");
    assert!(
        payment["review_reason"]
            .as_str()
            .unwrap()
            .contains("paid from +254722000000 but +254708374149 was asked")
    );

    // A receipt already credited is not credited again on another payment.
    let first = json_of(top_up(&app, &admin, "50", "0708374149").await).await;
    let second = json_of(top_up(&app, &admin, "50", "0708374149").await).await;
    for p in [&first, &second] {
        let checkout = p["mpesa"]["checkout_request_id"].as_str().unwrap();
        app.client
            .post(&url)
            .json(&stk_callback(
                checkout,
                50.0,
                254_708_374_149,
                "RCPTSHARED1",
            ))
            .send()
            .await
            .unwrap();
        settled(&app, &admin, p["id"].as_str().unwrap()).await;
    }
    let statuses = [
        settled(&app, &admin, first["id"].as_str().unwrap()).await["status"].clone(),
        settled(&app, &admin, second["id"].as_str().unwrap()).await["status"].clone(),
    ];
    assert_eq!(statuses, [json!("succeeded"), json!("needs_review")]);

    // Only the one good payment was credited.
    assert_eq!(available(&app, &admin).await, "50.00");
    let review = json_of(
        send(
            &app,
            &admin,
            Method::GET,
            "/payments?status=needs_review",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(review["items"].as_array().unwrap().len(), 3);

    // An operator decides: the short payment is rejected, the other-phone one accepted
    // (and only then credited). Members cannot decide, and a decision is made once.
    let ops = token(&crate::auth::operator(&app).await);
    let decide = |payment: &Value, who: &str, decision: &str| {
        let path = format!(
            "/admin/organizations/{org}/payments/{}/review",
            payment["id"].as_str().unwrap()
        );
        let body = json!({"decision": decision, "reason": "checked the M-Pesa statement"});
        let who = who.to_owned();
        let app = &app;
        async move { send(app, &who, Method::POST, &path, Some(body)).await }
    };
    assert_eq!(decide(&other, &admin, "accept").await.status(), 403);
    let rejected = decide(&short, &ops, "reject").await;
    assert_eq!(rejected.status(), 200);
    assert_eq!(json_of(rejected).await["status"], "failed");
    let accepted = decide(&other, &ops, "accept").await;
    assert_eq!(accepted.status(), 200);
    let accepted = json_of(accepted).await;
    assert_eq!(accepted["status"], "succeeded");
    assert!(accepted["applied_at"].is_string());
    assert_eq!(available(&app, &admin).await, "250.00");
    assert_eq!(decide(&other, &ops, "accept").await.status(), 409);
    assert_eq!(available(&app, &admin).await, "250.00");
}

async fn a_callback_after_a_restart_is_still_applied(backend: Backend) {
    let fake = fake_daraja().await;
    // Long enough for the server to stop and start again before the callback comes.
    fake.callback_delay(Duration::from_secs(3));
    let first = server(backend, module_path!(), &fake, &[]).await;
    let address = first.address.to_string();
    let public_url = format!("http://{address}");
    let (admin, _) = shop(&first, "Duka", "admin@duka.example").await;
    let started = json_of(top_up(&first, &admin, "700", "0708374149").await).await;
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(started["status"], "pending");

    let (data_dir, postgres) = first.stop_keeping_data().await;
    let second = spawn_with(
        backend,
        module_path!(),
        Options {
            vars: vec![
                ("EDGE_MPESA_BASE_URL".into(), fake.base_url()),
                ("EDGE_BIND".into(), address.clone()),
                ("EDGE_PUBLIC_URL".into(), public_url),
            ],
            data_dir: Some(data_dir),
            postgres,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(second.address.to_string(), address);
    let sent = fake.wait_for_callbacks(1, Duration::from_secs(10)).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status, Some(200), "the restarted server took it");
    let payment = settled(&second, &admin, &id).await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    assert_eq!(available(&second, &admin).await, "700.00");
}

async fn a_wrong_token_is_refused_and_changes_nothing(backend: Backend) {
    let fake = fake_daraja().await;
    fake.drop_callbacks(true);
    let app = server(backend, module_path!(), &fake, &[]).await;
    let (admin, org) = shop(&app, "Duka", "admin@duka.example").await;
    let (other_admin, other_org) = shop(&app, "Soko", "admin@soko.example").await;
    let started = json_of(top_up(&app, &admin, "100", "0708374149").await).await;
    let checkout = started["mpesa"]["checkout_request_id"].as_str().unwrap();
    let body = stk_callback(checkout, 100.0, 254_708_374_149, "RCPTFORGED1");

    let real = stk_callback_url(&app, &admin).await;
    let token = real.rsplit('/').next().unwrap().to_owned();
    let other_token = stk_callback_url(&app, &other_admin)
        .await
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    for path in [
        format!("/callbacks/mpesa/{org}/{}", "0".repeat(32)),
        format!("/callbacks/mpesa/{org}/{other_token}"),
        format!("/callbacks/mpesa/{other_org}/{token}"),
        format!("/callbacks/mpesa/not-an-org/{token}"),
    ] {
        let answer = app
            .client
            .post(app.url(&path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{path}");
        let envelope = json_of(answer).await;
        assert_eq!(envelope["error"]["code"], "not_found");
    }
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM mpesa_callbacks").await,
        0
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let payment = json_of(
        send(
            &app,
            &admin,
            Method::GET,
            &format!("/payments/{}", started["id"].as_str().unwrap()),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(payment["status"], "pending");
    assert_eq!(available(&app, &admin).await, "0.00");

    // A rotated token: the new one works, the old one still does for a grace period.
    let rotated = json_of(
        send(
            &app,
            &admin,
            Method::POST,
            "/mpesa/callback-token/rotate",
            None,
        )
        .await,
    )
    .await;
    let new_url = rotated["stk"].as_str().unwrap();
    assert_ne!(new_url, real);
    let answer = app.client.post(&real).json(&body).send().await.unwrap();
    assert_eq!(
        answer.status(),
        200,
        "the previous token is honoured for a while"
    );
    let payment = settled(&app, &admin, started["id"].as_str().unwrap()).await;
    assert_eq!(payment["status"], "succeeded");
}

async fn an_idempotency_key_prompts_the_payer_once(backend: Backend) {
    let fake = fake_daraja().await;
    let app = server(backend, module_path!(), &fake, &[]).await;
    let (admin, _) = shop(&app, "Duka", "admin@duka.example").await;
    let request = |amount: &'static str| {
        app.client
            .post(app.url("/api/v1/wallet/top-ups"))
            .bearer_auth(&admin)
            .header("Idempotency-Key", "topup-2026-11-24-001")
            .json(&json!({"amount": amount, "phone": "0708374149"}))
    };
    let first = request("100").send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first = json_of(first).await;
    let again = request("100").send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(json_of(again).await["id"], first["id"]);
    let different = request("150").send().await.unwrap();
    assert_eq!(different.status(), 409);
    assert_eq!(
        json_of(different).await["error"]["code"],
        "idempotency_key_reused"
    );
    assert_eq!(
        fake.requests_to("/mpesa/stkpush/v1/processrequest").len(),
        1
    );
    settled(&app, &admin, first["id"].as_str().unwrap()).await;
    assert_eq!(available(&app, &admin).await, "100.00");
}

async fn bad_top_ups_name_every_bad_field(backend: Backend) {
    let fake = fake_daraja().await;
    let app = server(backend, module_path!(), &fake, &[]).await;
    let (admin, _) = shop(&app, "Duka", "admin@duka.example").await;
    for (body, fields) in [
        (
            json!({"amount": "10.50", "phone": "12345"}),
            vec!["amount", "phone"],
        ),
        (
            json!({"amount": "0", "phone": "0708374149"}),
            vec!["amount"],
        ),
        (
            json!({"amount": "300000", "phone": "0708374149"}),
            vec!["amount"],
        ),
        (
            json!({"amount": true, "phone": "0708374149"}),
            vec!["amount"],
        ),
    ] {
        let answer = send(
            &app,
            &admin,
            Method::POST,
            "/wallet/top-ups",
            Some(body.clone()),
        )
        .await;
        assert_eq!(answer.status(), 422, "{body}");
        let envelope = json_of(answer).await;
        let named: Vec<&str> = envelope["error"]["details"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{envelope}");
    }
    let unknown = send(
        &app,
        &admin,
        Method::POST,
        "/wallet/top-ups",
        Some(json!({"amount": "100", "phone": "0708374149", "tip": 5})),
    )
    .await;
    assert_eq!(unknown.status(), 422);
    // Nothing was asked of M-Pesa, nothing was stored.
    assert!(
        fake.requests_to("/mpesa/stkpush/v1/processrequest")
            .is_empty()
    );
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM payments").await, 0);
}

async fn tenants_collect_with_their_own_sealed_credentials(backend: Backend) {
    let fake = fake_daraja().await;
    fake.merchant("600100", "tenant-passkey-600100");
    let app = server(backend, module_path!(), &fake, &[]).await;
    let (admin, _) = shop(&app, "Duka", "admin@duka.example").await;

    // Without an account there is nothing to collect into.
    let early = send(
        &app,
        &admin,
        Method::POST,
        "/mpesa/collections",
        Some(json!({"amount": "500", "phone": "0708374149"})),
    )
    .await;
    assert_eq!(early.status(), 409);
    assert!(
        json_of(early).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PUT /api/v1/mpesa/settings")
    );

    let incomplete = send(
        &app,
        &admin,
        Method::PUT,
        "/mpesa/settings",
        Some(json!({"environment": "staging", "shortcode": "12", "account_type": "till"})),
    )
    .await;
    assert_eq!(incomplete.status(), 422);
    let fields: Vec<String> = json_of(incomplete).await["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect();
    for field in [
        "environment",
        "shortcode",
        "till_number",
        "consumer_key",
        "consumer_secret",
        "passkey",
    ] {
        assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
    }

    let saved = send(
        &app,
        &admin,
        Method::PUT,
        "/mpesa/settings",
        Some(json!({
            "environment": "sandbox",
            "shortcode": "600100",
            "consumer_key": "duka-consumer-key-9f2c",
            "consumer_secret": "duka-consumer-secret-value",
            "passkey": "tenant-passkey-600100",
        })),
    )
    .await;
    assert_eq!(saved.status(), 200);
    let text = saved.text().await.unwrap();
    for secret in [
        "duka-consumer-key-9f2c",
        "duka-consumer-secret-value",
        "tenant-passkey-600100",
    ] {
        assert!(!text.contains(secret), "a secret came back: {text}");
    }
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["settings"]["consumer_key"], "••••9f2c");
    assert_eq!(saved["settings"]["verified_at"], Value::Null);
    // Sealed at rest: the row does not hold them in the clear either.
    let stored = count(
        &app,
        "SELECT COUNT(*) AS n FROM mpesa_settings WHERE sealed LIKE '%duka-consumer-secret-value%' OR sealed LIKE '%tenant-passkey%'",
    )
    .await;
    assert_eq!(stored, 0);

    let tested = send(&app, &admin, Method::POST, "/mpesa/settings/test", None).await;
    assert_eq!(tested.status(), 200);
    assert!(json_of(tested).await["verified_at"].is_string());

    // Against a relationship: its phone is used when none is given.
    let relationship = json_of(
        send(
            &app,
            &admin,
            Method::POST,
            "/relationships",
            Some(json!({"name": "Otieno Hardware", "phone": "0708374149"})),
        )
        .await,
    )
    .await;
    let collected = send(
        &app,
        &admin,
        Method::POST,
        "/mpesa/collections",
        Some(json!({"amount": "500", "relationship_id": relationship["id"], "account_reference": "INV-0042"})),
    )
    .await;
    assert_eq!(collected.status(), 201);
    let collected = json_of(collected).await;
    assert_eq!(collected["purpose"], "collection");
    assert_eq!(collected["phone"], "+254708374149");
    let payment = settled(&app, &admin, collected["id"].as_str().unwrap()).await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    // The push went to the tenant's shortcode with the tenant's app, not the platform's.
    let push = fake.requests_to("/mpesa/stkpush/v1/processrequest");
    assert_eq!(push.len(), 1);
    assert_eq!(push[0].json().unwrap()["BusinessShortCode"], "600100");
    // The money is in the tenant's own account: the wallet does not move.
    assert_eq!(available(&app, &admin).await, "0.00");
    let by_relationship = json_of(
        send(
            &app,
            &admin,
            Method::GET,
            &format!(
                "/payments?relationship_id={}",
                relationship["id"].as_str().unwrap()
            ),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(by_relationship["items"].as_array().unwrap().len(), 1);
}

async fn a_lapsed_subscription_is_restored_by_paying_for_it(backend: Backend) {
    let fake = fake_daraja().await;
    let app = server(backend, module_path!(), &fake, &[]).await;
    let (admin, org) = shop(&app, "Duka", "admin@duka.example").await;
    crate::billing::suspend(
        &app,
        org.parse::<uuid::Uuid>()
            .map(edge_core::OrgId::from_uuid)
            .unwrap(),
    )
    .await;

    let lead = json!({"name": "Achieng Otieno", "phone": "0712345678"});
    let refused = send(&app, &admin, Method::POST, "/prospects", Some(lead.clone())).await;
    assert_eq!(refused.status(), 402);
    assert_eq!(
        json_of(refused).await["error"]["code"],
        "subscription_suspended"
    );
    let before =
        json_of(send(&app, &admin, Method::GET, "/billing/subscription", None).await).await;
    assert_eq!(before["status"], "suspended");

    // A free plan has nothing to pay; an unknown one does not exist.
    for plan in ["free", "gold"] {
        let answer = send(
            &app,
            &admin,
            Method::POST,
            "/billing/subscription",
            Some(json!({"plan": plan, "phone": "0708374149"})),
        )
        .await;
        assert_eq!(answer.status(), 422, "{plan}");
    }

    // Paying while suspended is allowed: the current plan, by STK push, at its price.
    let started = send(
        &app,
        &admin,
        Method::POST,
        "/billing/subscription",
        Some(json!({"phone": "0708374149"})),
    )
    .await;
    assert_eq!(started.status(), 201);
    let started = json_of(started).await;
    assert_eq!(started["purpose"], "subscription");
    assert_eq!(started["plan"], before["plan"]["code"]);
    assert_eq!(started["amount"], before["plan"]["price"]);
    let payment = settled(&app, &admin, started["id"].as_str().unwrap()).await;
    assert_eq!(payment["status"], "succeeded", "{payment}");

    let after = json_of(send(&app, &admin, Method::GET, "/billing/subscription", None).await).await;
    assert_eq!(after["status"], "active", "{after}");
    let periods = after["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 1);
    assert_eq!(periods[0]["payment_id"], started["id"]);
    let created = send(&app, &admin, Method::POST, "/prospects", Some(lead)).await;
    assert_eq!(created.status(), 201);
    // The subscription payment is not wallet money.
    assert_eq!(available(&app, &admin).await, "0.00");
}

async fn callbacks_are_kept_as_received_and_unknown_ones_flagged(backend: Backend) {
    let fake = fake_daraja().await;
    let dir = tempfile::tempdir().unwrap();
    let app = server(
        backend,
        module_path!(),
        &fake,
        &[("EDGE_MPESA_CALLBACK_DIR", dir.path().to_str().unwrap())],
    )
    .await;
    let (admin, _) = shop(&app, "Duka", "admin@duka.example").await;
    let url = stk_callback_url(&app, &admin).await;

    // A callback for a push nobody made, and one that is not even JSON.
    let unknown = serde_json::to_vec(&stk_callback(
        "ws_CO_NOBODY_ASKED",
        75.0,
        254_708_374_149,
        "RCPTUNKNOWN",
    ))
    .unwrap();
    let garbage = b"<html>not a callback</html>".to_vec();
    for body in [&unknown, &garbage] {
        let answer = app
            .client
            .post(&url)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "Daraja always gets its answer");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = app
            .db()
            .query_all_raw(Statement::from_string(
                app.db().get_database_backend(),
                "SELECT body, outcome FROM mpesa_callbacks ORDER BY received_at".to_owned(),
            ))
            .await
            .unwrap();
        let outcomes: Vec<Option<String>> = rows
            .iter()
            .map(|r| r.try_get::<Option<String>>("", "outcome").unwrap())
            .collect();
        if outcomes.iter().all(Option::is_some) && outcomes.len() == 2 {
            break rows;
        }
        assert!(tokio::time::Instant::now() < deadline, "{outcomes:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stored: Vec<(Vec<u8>, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<Vec<u8>>("", "body").unwrap(),
                r.try_get::<Option<String>>("", "outcome").unwrap().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stored,
        vec![
            (unknown.clone(), "unmatched".to_owned()),
            (garbage.clone(), "invalid".to_owned()),
        ]
    );
    // Also written, byte for byte, for disputes.
    let mut files = Vec::new();
    for day in std::fs::read_dir(dir.path()).unwrap() {
        for file in std::fs::read_dir(day.unwrap().path()).unwrap() {
            files.push(std::fs::read(file.unwrap().path()).unwrap());
        }
    }
    files.sort();
    let mut expected = vec![unknown, garbage];
    expected.sort();
    assert_eq!(files, expected);
    assert_eq!(available(&app, &admin).await, "0.00");
}

async fn concurrent_reconcilers_ask_daraja_once(backend: Backend) {
    let fake = fake_daraja().await;
    fake.drop_callbacks(true);
    let app = server(
        backend,
        module_path!(),
        &fake,
        &[("EDGE_MPESA_RECONCILE_AFTER_SECS", "1")],
    )
    .await;
    let (admin, _) = shop(&app, "Duka", "admin@duka.example").await;
    let started = json_of(top_up(&app, &admin, "400", "0708374149").await).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Eight passes at once, as eight nodes would run them (besides the server's own loop).
    let passes: Vec<_> = (0..8)
        .map(|_| {
            let payments = app.state.payments.clone();
            tokio::spawn(edge_server::tenant_scope::cross_tenant(async move {
                payments.reconcile_once().await
            }))
        })
        .collect();
    for pass in passes {
        pass.await.unwrap().unwrap();
    }
    let payment = settled(&app, &admin, started["id"].as_str().unwrap()).await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    assert_eq!(fake.requests_to("/mpesa/stkpushquery/v1/query").len(), 1);
    assert_eq!(available(&app, &admin).await, "400.00");
    assert_eq!(credits_for(&app, started["id"].as_str().unwrap()).await, 1);
}
