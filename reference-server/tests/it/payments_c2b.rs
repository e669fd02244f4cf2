//! C2B on a tenant's own shortcode and on the platform's paybill, transaction status
//! queries and reversals, against the fake Daraja (which posts real result callbacks).

use std::future::Future;
use std::time::Duration;

use edge_mpesa::fake::{C2bStatus, FakeDaraja};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use edge_server::entities::{mpesa_callbacks, payments};

use crate::auth::{operator, signup, token};
use crate::helpers::{Backend, Options, TestApp, for_each_backend, spawn_app, spawn_with};
use crate::tenancy::{invite_and_accept, send};

for_each_backend!(
    c2b_urls_are_registered_and_the_registration_recorded,
    validation_answers_by_the_organizations_rule,
    a_confirmation_is_one_succeeded_collection_however_often_it_comes,
    wrong_tokens_are_not_found_and_store_nothing,
    the_platform_paybill_credits_the_named_wallet_once,
    a_status_query_round_trip_and_its_refusals,
    a_collection_is_reversed_and_a_failed_reversal_changes_nothing,
    reversing_a_top_up_takes_the_credit_back_or_flags_it,
    a_simulated_payment_goes_through_the_registered_urls,
);

const VALIDATION: &str = include_str!("../data/c2b_validation.json");
const CONFIRMATION: &str = include_str!("../data/c2b_confirmation.json");
const CONFIRMATION_V1: &str = include_str!("../data/c2b_confirmation_v1_hashed_msisdn.json");
const STATUS_RESULT: &str = include_str!("../data/transaction_status_result.json");
const REVERSAL_FAILURE: &str = include_str!("../data/reversal_result_failure.json");

/// The tenant's shortcode in the fixtures.
const SHORTCODE: &str = "600984";
/// The platform's shortcode (the development default: Daraja's sandbox shortcode).
const PLATFORM_SHORTCODE: &str = "174379";
const INITIATOR: &str = "tenant-initiator";

/// The server with the fake Daraja, and a platform initiator.
async fn spawn(backend: Backend, test: &str) -> (TestApp, FakeDaraja) {
    let fake = FakeDaraja::start().await.unwrap();
    let vars = [
        ("EDGE_MPESA_BASE_URL", fake.base_url()),
        ("EDGE_MPESA_INITIATOR_NAME", "platform-initiator".to_owned()),
        (
            "EDGE_MPESA_SECURITY_CREDENTIAL",
            "UExBVEZPUk0tQ1JFREVOVElBTA==".to_owned(),
        ),
    ];
    let app = spawn_with(
        backend,
        test,
        Options {
            vars: vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    (app, fake)
}

/// Polls `check` until it gives a value (at most 20 s: results may wait for the
/// reconciliation pass, every 5 s).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A JSON fixture with some fields replaced.
fn fixture(text: &str, changes: Value) -> String {
    let mut body: Value = serde_json::from_str(text).unwrap();
    for (key, value) in changes.as_object().unwrap() {
        body[key] = value.clone();
    }
    body.to_string()
}

/// A result fixture (`{"Result": …}`) with some fields of `Result` replaced.
fn result_fixture(text: &str, changes: Value) -> String {
    let mut body: Value = serde_json::from_str(text).unwrap();
    for (key, value) in changes.as_object().unwrap() {
        body["Result"][key] = value.clone();
    }
    body.to_string()
}

/// Posts a raw body to a full URL.
async fn post_raw(app: &TestApp, url: &str, body: String) -> reqwest::Response {
    app.client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// An organization with its own Daraja settings.
struct Tenant {
    org: String,
    admin: String,
    urls: Value,
}

async fn tenant(app: &TestApp, name: &str, email: &str, extra: Value) -> Tenant {
    let body = signup(app, name, email).await;
    let admin = token(&body);
    let mut settings = json!({
        "environment": "sandbox",
        "shortcode": SHORTCODE,
        "consumer_key": "tenant-consumer-key",
        "consumer_secret": "tenant-consumer-secret",
        "passkey": "tenant-passkey",
        "initiator_name": INITIATOR,
        "initiator_security_credential": "VEVOQU5ULUNSRURFTlRJQUw=",
    });
    for (key, value) in extra.as_object().unwrap() {
        if value.is_null() {
            settings.as_object_mut().unwrap().remove(key);
        } else {
            settings[key] = value.clone();
        }
    }
    let saved = send(app, &admin, Method::PUT, "/mpesa/settings", Some(settings)).await;
    assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());
    let saved: Value = saved.json().await.unwrap();
    Tenant {
        org: body["organization"]["id"].as_str().unwrap().to_owned(),
        admin,
        urls: saved["callback_urls"].clone(),
    }
}

impl Tenant {
    fn url(&self, which: &str) -> String {
        self.urls[which].as_str().unwrap().to_owned()
    }
}

async fn callbacks_of_kind(app: &TestApp, kind: &str) -> Vec<mpesa_callbacks::Model> {
    mpesa_callbacks::Entity::find()
        .filter(mpesa_callbacks::Column::Kind.eq(kind))
        .all(app.db())
        .await
        .unwrap()
}

async fn payments_of(app: &TestApp, org: &str) -> Vec<payments::Model> {
    payments::Entity::find()
        .filter(payments::Column::OrganizationId.eq(org.parse::<uuid::Uuid>().unwrap()))
        .all(app.db())
        .await
        .unwrap()
}

/// Delivers a C2B confirmation and waits until it is processed; returns the payment.
async fn confirm(app: &TestApp, tenant: &Tenant, body: String, receipt: &str) -> Value {
    let ack = post_raw(app, &tenant.url("c2b_confirmation"), body).await;
    assert_eq!(ack.status(), 200);
    assert_eq!(
        ack.json::<Value>().await.unwrap(),
        json!({"ResultCode": 0, "ResultDesc": "Success"})
    );
    payment_with_receipt(app, &tenant.admin, receipt).await
}

async fn payment_with_receipt(app: &TestApp, admin: &str, receipt: &str) -> Value {
    eventually("the payment", || async {
        let list: Value = send(app, admin, Method::GET, "/payments", None)
            .await
            .json()
            .await
            .unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            // Settled, and a success applied (the wallet credit follows the status change).
            .find(|p| {
                p["mpesa"]["receipt"] == receipt
                    && p["status"] != "pending"
                    && (p["status"] != "succeeded" || p["applied_at"].is_string())
            })
            .cloned()
    })
    .await
}

async fn payment(app: &TestApp, admin: &str, id: &str) -> Value {
    let response = send(app, admin, Method::GET, &format!("/payments/{id}"), None).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Waits until the payment's request `request` is no longer pending; returns the payment.
async fn completed(app: &TestApp, admin: &str, payment_id: &str, request: &str) -> Value {
    eventually("the request's result", || async {
        let detail = payment(app, admin, payment_id).await;
        let done = detail["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == request && r["status"] != "pending");
        // No wait for the history event: the request's row and its event are committed
        // together and the detail reads them in one snapshot, so the callers' assertions
        // on the history hold as soon as the row is complete.
        done.then_some(detail)
    })
    .await
}

fn request_of<'a>(detail: &'a Value, id: &str) -> &'a Value {
    detail["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
}

fn kinds(detail: &Value) -> Vec<String> {
    detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// The wallet's own entries (each transfer also has an entry on the platform's side).
async fn wallet_entries(app: &TestApp, admin: &str) -> Vec<String> {
    let entries: Value = send(app, admin, Method::GET, "/wallet/entries", None)
        .await
        .json()
        .await
        .unwrap();
    entries["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["account"].as_str().unwrap().starts_with("wallet:"))
        .map(|e| e["amount"]["amount"].as_str().unwrap().to_owned())
        .collect()
}

async fn wallet_posted(app: &TestApp, admin: &str) -> String {
    let wallet: Value = send(app, admin, Method::GET, "/wallet", None)
        .await
        .json()
        .await
        .unwrap();
    wallet["posted"]["amount"].as_str().unwrap().to_owned()
}

async fn c2b_urls_are_registered_and_the_registration_recorded(backend: Backend) {
    let (app, fake) = spawn(backend, "c2b_register").await;
    let shop = tenant(&app, "Register Shop", "admin@register.example", json!({})).await;

    let registered = send(&app, &shop.admin, Method::POST, "/mpesa/c2b/register", None).await;
    assert_eq!(registered.status(), 200);
    let registered: Value = registered.json().await.unwrap();
    assert_eq!(registered["shortcode"], SHORTCODE);
    assert_eq!(registered["response_type"], "Completed");
    assert_eq!(registered["version"], "v2");
    let sent = fake.requests_to("/mpesa/c2b/v2/registerurl");
    assert_eq!(sent.len(), 1);
    let sent = sent[0].json().unwrap();
    assert_eq!(sent["ShortCode"], SHORTCODE);
    assert_eq!(sent["ResponseType"], "Completed");
    assert_eq!(sent["ValidationURL"], shop.url("c2b_validation").as_str());
    assert_eq!(
        sent["ConfirmationURL"],
        shop.url("c2b_confirmation").as_str()
    );
    assert!(!shop.url("c2b_validation").to_lowercase().contains("mpesa"));

    let settings: Value = send(&app, &shop.admin, Method::GET, "/mpesa/settings", None)
        .await
        .json()
        .await
        .unwrap();
    let recorded = &settings["settings"]["c2b_registration"];
    assert_eq!(recorded["shortcode"], SHORTCODE);
    assert_eq!(recorded["version"], "v2");
    assert_eq!(recorded["outdated"], false);
    assert_eq!(recorded["registered_at"], registered["registered_at"]);

    // New callback URLs make the registration outdated until it is done again.
    let rotated = send(
        &app,
        &shop.admin,
        Method::POST,
        "/mpesa/callback-token/rotate",
        None,
    )
    .await;
    assert_eq!(rotated.status(), 200);
    let settings: Value = send(&app, &shop.admin, Method::GET, "/mpesa/settings", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settings["settings"]["c2b_registration"]["outdated"], true);
    let again = send(
        &app,
        &shop.admin,
        Method::POST,
        "/mpesa/c2b/register",
        Some(json!({"response_type": "Cancelled", "version": "v1"})),
    )
    .await;
    assert_eq!(again.status(), 200);
    let v1 = fake.requests_to("/mpesa/c2b/v1/registerurl");
    assert_eq!(v1.len(), 1);
    assert_eq!(v1[0].json().unwrap()["ResponseType"], "Cancelled");
    let settings: Value = send(&app, &shop.admin, Method::GET, "/mpesa/settings", None)
        .await
        .json()
        .await
        .unwrap();
    let recorded = &settings["settings"]["c2b_registration"];
    assert_eq!(recorded["outdated"], false);
    assert_eq!(recorded["response_type"], "Cancelled");
    assert_eq!(recorded["version"], "v1");

    // Bad values, Daraja failing, no settings, the wrong role.
    let bad = send(
        &app,
        &shop.admin,
        Method::POST,
        "/mpesa/c2b/register",
        Some(json!({"version": "v3"})),
    )
    .await;
    assert_eq!(bad.status(), 422);
    fake.fail_next(1);
    let failing = send(&app, &shop.admin, Method::POST, "/mpesa/c2b/register", None).await;
    assert!(
        failing.status() == 502 || failing.status() == 504,
        "{}",
        failing.status()
    );
    let failing: Value = failing.json().await.unwrap();
    assert!(
        failing["error"]["code"]
            .as_str()
            .unwrap()
            .starts_with("upstream"),
        "{failing}"
    );
    let bare = signup(&app, "No Settings", "admin@bare.example").await;
    let refused = send(
        &app,
        &token(&bare),
        Method::POST,
        "/mpesa/c2b/register",
        None,
    )
    .await;
    assert_eq!(refused.status(), 409);
    let manager = invite_and_accept(&app, &shop.admin, "manager@register.example", "manager").await;
    assert_eq!(
        send(
            &app,
            &token(&manager),
            Method::POST,
            "/mpesa/c2b/register",
            None
        )
        .await
        .status(),
        403
    );

    // The audit log says who registered what.
    let log: Value = send(
        &app,
        &shop.admin,
        Method::GET,
        "/audit-log?action=mpesa.c2b.register",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(log["items"].as_array().unwrap().len(), 2);

    // Operators register the platform's paybill.
    let ops = token(&operator(&app).await);
    let platform = send(&app, &ops, Method::POST, "/admin/mpesa/c2b/register", None).await;
    assert_eq!(platform.status(), 200);
    let platform: Value = platform.json().await.unwrap();
    assert_eq!(platform["shortcode"], PLATFORM_SHORTCODE);
    let sent = fake.requests_to("/mpesa/c2b/v2/registerurl");
    let sent = sent.last().unwrap().json().unwrap();
    assert_eq!(sent["ShortCode"], PLATFORM_SHORTCODE);
    assert!(
        sent["ValidationURL"]
            .as_str()
            .unwrap()
            .contains("/callbacks/c2b/platform/")
    );
    assert_eq!(
        send(
            &app,
            &shop.admin,
            Method::POST,
            "/admin/mpesa/c2b/register",
            None
        )
        .await
        .status(),
        403
    );
}

async fn validation_answers_by_the_organizations_rule(backend: Backend) {
    let (app, _fake) = spawn(backend, "c2b_validation").await;
    let shop = tenant(
        &app,
        "Rule Shop",
        "admin@rule.example",
        json!({
            "c2b_account_rule": "prefixes",
            "c2b_account_prefixes": ["INV-", "acc"],
            "c2b_min_amount": {"amount": "10", "currency": "KES"},
            "c2b_max_amount": {"amount": "100000", "currency": "KES"},
        }),
    )
    .await;
    let settings: Value = send(&app, &shop.admin, Method::GET, "/mpesa/settings", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settings["settings"]["c2b_account_rule"], "prefixes");
    assert_eq!(
        settings["settings"]["c2b_account_prefixes"],
        json!(["INV-", "acc"])
    );
    assert_eq!(settings["settings"]["c2b_min_amount"]["amount"], "10.00");

    let url = shop.url("c2b_validation");
    let cases = [
        (
            json!({}),
            json!({"ResultCode": "0", "ResultDesc": "Accepted"}),
        ),
        (
            json!({"BillRefNumber": "  inv-77 "}),
            json!({"ResultCode": "0", "ResultDesc": "Accepted"}),
        ),
        (
            json!({"BillRefNumber": "ACC9"}),
            json!({"ResultCode": "0", "ResultDesc": "Accepted"}),
        ),
        (
            json!({"BillRefNumber": "XYZ-1"}),
            json!({"ResultCode": "C2B00012", "ResultDesc": "Rejected"}),
        ),
        (
            json!({"TransAmount": "5"}),
            json!({"ResultCode": "C2B00013", "ResultDesc": "Rejected"}),
        ),
        (
            json!({"TransAmount": "100001.00"}),
            json!({"ResultCode": "C2B00013", "ResultDesc": "Rejected"}),
        ),
    ];
    let mut bodies = Vec::new();
    for (changes, expected) in &cases {
        let body = fixture(VALIDATION, changes.clone());
        let started = std::time::Instant::now();
        let answer = post_raw(&app, &url, body.clone()).await;
        assert_eq!(answer.status(), 200);
        assert_eq!(
            answer
                .headers()
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap(),
            "application/json"
        );
        assert_eq!(
            &answer.json::<Value>().await.unwrap(),
            expected,
            "{changes}"
        );
        // Daraja waits about 8 s before applying its default; we answer far sooner.
        assert!(started.elapsed() < Duration::from_secs(2));
        bodies.push(body);
    }
    // Something that is not JSON is stored, and turned away.
    let garbage = post_raw(&app, &url, "not json at all".to_owned()).await;
    assert_eq!(
        garbage.json::<Value>().await.unwrap(),
        json!({"ResultCode": "C2B00016", "ResultDesc": "Rejected"})
    );
    bodies.push("not json at all".to_owned());

    // Every request is stored byte for byte with its decision; no payment comes of it.
    let mut stored = callbacks_of_kind(&app, "c2b_validation").await;
    stored.sort_by_key(|c| c.id);
    assert_eq!(stored.len(), bodies.len());
    let outcomes: Vec<_> = stored.iter().map(|c| c.outcome.clone().unwrap()).collect();
    assert_eq!(
        outcomes,
        [
            "accepted", "accepted", "accepted", "rejected", "rejected", "rejected", "rejected"
        ]
    );
    for (row, body) in stored.iter().zip(&bodies) {
        assert_eq!(row.body, body.as_bytes());
        assert!(row.processed_at.is_some());
        assert_eq!(row.organization_id.unwrap().to_string(), shop.org);
    }
    assert!(stored[3].detail.as_deref().unwrap().starts_with("C2B00012"));
    assert!(payments_of(&app, &shop.org).await.is_empty());

    // An organization without a rule accepts any account reference.
    let open = tenant(&app, "Open Shop", "admin@open.example", json!({})).await;
    let answer = post_raw(
        &app,
        &open.url("c2b_validation"),
        fixture(VALIDATION, json!({"BillRefNumber": "whatever"})),
    )
    .await;
    assert_eq!(answer.json::<Value>().await.unwrap()["ResultCode"], "0");

    // Rules that make no sense are refused, naming the field.
    for (extra, field) in [
        (
            json!({"c2b_account_rule": "prefixes"}),
            "c2b_account_prefixes",
        ),
        (json!({"c2b_account_rule": "regex"}), "c2b_account_rule"),
        (
            json!({"c2b_account_prefixes": ["INV"]}),
            "c2b_account_prefixes",
        ),
        (
            json!({
                "c2b_min_amount": {"amount": "500", "currency": "KES"},
                "c2b_max_amount": {"amount": "100", "currency": "KES"},
            }),
            "c2b_max_amount",
        ),
        (
            json!({"c2b_min_amount": {"amount": "5", "currency": "UGX"}}),
            "c2b_min_amount",
        ),
    ] {
        let mut body = json!({"environment": "sandbox", "shortcode": SHORTCODE});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        let refused = send(
            &app,
            &shop.admin,
            Method::PUT,
            "/mpesa/settings",
            Some(body),
        )
        .await;
        assert_eq!(refused.status(), 422);
        let refused: Value = refused.json().await.unwrap();
        assert!(
            refused["error"]["details"]["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["field"] == field),
            "{refused}"
        );
    }
}

async fn a_confirmation_is_one_succeeded_collection_however_often_it_comes(backend: Backend) {
    let (app, _fake) = spawn(backend, "c2b_confirmation").await;
    let shop = tenant(&app, "Confirm Shop", "admin@confirm.example", json!({})).await;

    // Four deliveries of one TransID, two of them at the same time.
    let url = shop.url("c2b_confirmation");
    let first = post_raw(&app, &url, CONFIRMATION.to_owned()).await;
    assert_eq!(first.status(), 200);
    let (a, b) = tokio::join!(
        post_raw(&app, &url, CONFIRMATION.to_owned()),
        post_raw(&app, &url, CONFIRMATION.to_owned()),
    );
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let paid = payment_with_receipt(&app, &shop.admin, "TESTC2B001").await;
    let last = post_raw(&app, &url, CONFIRMATION.to_owned()).await;
    assert_eq!(
        last.json::<Value>().await.unwrap(),
        json!({"ResultCode": 0, "ResultDesc": "Success"})
    );
    let stored = eventually("every delivery processed", || async {
        let stored = callbacks_of_kind(&app, "c2b_confirmation").await;
        (stored.len() == 4 && stored.iter().all(|c| c.processed_at.is_some())).then_some(stored)
    })
    .await;
    let mut outcomes: Vec<_> = stored.iter().map(|c| c.outcome.clone().unwrap()).collect();
    outcomes.sort();
    assert_eq!(outcomes, ["applied", "duplicate", "duplicate", "duplicate"]);
    for row in &stored {
        assert_eq!(row.body, CONFIRMATION.as_bytes());
        assert_eq!(
            row.payment_id.unwrap().to_string(),
            paid["id"].as_str().unwrap()
        );
    }

    assert_eq!(payments_of(&app, &shop.org).await.len(), 1);
    assert_eq!(paid["purpose"], "collection");
    assert_eq!(paid["channel"], "c2b");
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["amount"]["amount"], "1500.00");
    assert_eq!(paid["phone"], "2547 ***** 149");
    assert_eq!(paid["account_reference"], "INV-000042");
    assert_eq!(paid["mpesa"]["paid_amount"]["amount"], "1500.00");
    assert_eq!(paid["mpesa"]["paid_at"], "2025-01-15T13:05:12Z");
    assert!(paid["relationship_id"].is_null());
    let detail = payment(&app, &shop.admin, paid["id"].as_str().unwrap()).await;
    assert_eq!(
        kinds(&detail),
        ["payment.created", "payment.status_changed"]
    );
    assert_eq!(detail["history"][1]["data"]["to"], "succeeded");
    assert_eq!(detail["history"][1]["data"]["source"], "callback");
    assert_eq!(detail["requests"], json!([]));

    // A v1 confirmation (hashed number) whose account number is a customer's phone is
    // linked to that customer; one naming a customer's id too.
    let customer = send(
        &app,
        &shop.admin,
        Method::POST,
        "/relationships",
        Some(json!({"name": "Wanjiku Stores", "phone": "0722000111"})),
    )
    .await;
    assert_eq!(customer.status(), 201);
    let customer: Value = customer.json().await.unwrap();
    let hashed = confirm(
        &app,
        &shop,
        fixture(CONFIRMATION_V1, json!({"BillRefNumber": "0722 000 111"})),
        "TESTC2B002",
    )
    .await;
    assert_eq!(hashed["relationship_id"], customer["id"]);
    assert_eq!(
        hashed["phone"],
        "bbff37cea44ac0b2d964ee0dfb8d2df8513dc7ba1b36129a929fc3fbd6dd4af4"
    );
    assert_eq!(hashed["amount"]["amount"], "750.00");
    let by_id = confirm(
        &app,
        &shop,
        fixture(
            CONFIRMATION,
            json!({"TransID": "TESTC2B003", "BillRefNumber": customer["id"]}),
        ),
        "TESTC2B003",
    )
    .await;
    assert_eq!(by_id["relationship_id"], customer["id"]);
    let filtered: Value = send(
        &app,
        &shop.admin,
        Method::GET,
        &format!(
            "/payments?relationship_id={}",
            customer["id"].as_str().unwrap()
        ),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(filtered["items"].as_array().unwrap().len(), 2);

    // A payment to another shortcode than the organization's is held for review.
    let elsewhere = confirm(
        &app,
        &shop,
        fixture(
            CONFIRMATION,
            json!({"TransID": "TESTC2B004", "BusinessShortCode": "999999"}),
        ),
        "TESTC2B004",
    )
    .await;
    assert_eq!(elsewhere["status"], "needs_review");
    assert!(
        elsewhere["review_reason"]
            .as_str()
            .unwrap()
            .contains("999999")
    );

    // A body without a usable amount is kept, flagged invalid, and makes no payment.
    let ack = post_raw(
        &app,
        &url,
        fixture(
            CONFIRMATION,
            json!({"TransID": "TESTC2B005", "TransAmount": "0"}),
        ),
    )
    .await;
    assert_eq!(ack.status(), 200);
    eventually("the invalid body flagged", || async {
        callbacks_of_kind(&app, "c2b_confirmation")
            .await
            .iter()
            .any(|c| c.outcome.as_deref() == Some("invalid"))
            .then_some(())
    })
    .await;
    assert_eq!(payments_of(&app, &shop.org).await.len(), 4);

    // Another organization sees none of it.
    let other = signup(&app, "Other Shop", "admin@other-confirm.example").await;
    let theirs = send(
        &app,
        &token(&other),
        Method::GET,
        &format!("/payments/{}", paid["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(theirs.status(), 404);
}

async fn wrong_tokens_are_not_found_and_store_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend, "c2b_wrong_tokens").await else {
        return;
    };
    let shop = signup(&app, "Token Shop", "admin@token.example").await;
    let org = shop["organization"]["id"].as_str().unwrap();
    let settings: Value = send(&app, &token(&shop), Method::GET, "/mpesa/settings", None)
        .await
        .json()
        .await
        .unwrap();
    let real = settings["callback_urls"]["c2b_confirmation"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = signup(&app, "Other Token Shop", "admin@other-token.example").await;
    let other_org = other["organization"]["id"].as_str().unwrap();
    let wrong_token = "0".repeat(32);
    let paths = [
        format!("/callbacks/c2b/{org}/{wrong_token}/confirmation"),
        format!("/callbacks/c2b/{org}/{wrong_token}/validation"),
        // The right token with another organization's id.
        real.replace(org, other_org)
            .trim_start_matches(&app.url(""))
            .to_owned(),
        "/callbacks/c2b/not-an-org/abc/confirmation".to_owned(),
        format!("/callbacks/c2b/platform/{wrong_token}/confirmation"),
        format!("/callbacks/c2b/platform/{wrong_token}/validation"),
        format!("/callbacks/mpesa/{org}/{wrong_token}/result"),
        format!("/callbacks/mpesa/{org}/{wrong_token}/timeout"),
    ];
    for path in &paths {
        let answer = post_raw(&app, &app.url(path), CONFIRMATION.to_owned()).await;
        assert_eq!(answer.status(), 404, "{path}");
    }
    assert!(
        mpesa_callbacks::Entity::find()
            .all(app.db())
            .await
            .unwrap()
            .is_empty()
    );
    // The real URL works.
    assert_eq!(
        post_raw(&app, &real, CONFIRMATION.to_owned())
            .await
            .status(),
        200
    );
    assert_eq!(
        mpesa_callbacks::Entity::find()
            .all(app.db())
            .await
            .unwrap()
            .len(),
        1
    );

    // Without the platform's initiator, operators cannot query or reverse platform
    // payments; and the platform's token is not any organization's.
    let ops = token(&operator(&app).await);
    let payment = payment_with_receipt(&app, &token(&shop), "TESTC2B001").await;
    let refused = send(
        &app,
        &ops,
        Method::POST,
        &format!(
            "/admin/organizations/{org}/payments/{}/status-query",
            payment["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    // A collection uses the organization's initiator, which this one has not set.
    assert_eq!(refused.status(), 409);
    let message = refused.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("M-Pesa account") || message.contains("initiator"),
        "{message}"
    );
}

async fn the_platform_paybill_credits_the_named_wallet_once(backend: Backend) {
    let (app, _fake) = spawn(backend, "c2b_platform").await;
    let alpha = signup(&app, "Alpha Traders", "admin@alpha-c2b.example").await;
    let beta = signup(&app, "Beta Traders", "admin@beta-c2b.example").await;
    let alpha_admin = token(&alpha);
    let slug = alpha["organization"]["slug"].as_str().unwrap().to_owned();
    let platform_token = edge_server::payments::tokens::platform_c2b_token(
        &app.state.secrets.credentials_key_bytes(),
    )
    .unwrap();
    let base = app.url(&format!(
        "/callbacks/c2b/platform/{}",
        secrecy::ExposeSecret::expose_secret(&platform_token)
    ));

    // Validation: an organization's slug, in any case, with spaces around it.
    let reference = format!("  {}  ", slug.to_uppercase());
    let accepted = post_raw(
        &app,
        &format!("{base}/validation"),
        fixture(
            VALIDATION,
            json!({"BillRefNumber": reference, "BusinessShortCode": PLATFORM_SHORTCODE}),
        ),
    )
    .await;
    assert_eq!(
        accepted.json::<Value>().await.unwrap(),
        json!({"ResultCode": "0", "ResultDesc": "Accepted"})
    );
    let unknown = post_raw(
        &app,
        &format!("{base}/validation"),
        fixture(VALIDATION, json!({"BillRefNumber": "nobody-here"})),
    )
    .await;
    assert_eq!(
        unknown.json::<Value>().await.unwrap(),
        json!({"ResultCode": "C2B00012", "ResultDesc": "Rejected"})
    );
    let platform = post_raw(
        &app,
        &format!("{base}/validation"),
        fixture(VALIDATION, json!({"BillRefNumber": "platform"})),
    )
    .await;
    assert_eq!(
        platform.json::<Value>().await.unwrap()["ResultCode"],
        "C2B00012"
    );

    // Confirmation: three deliveries, two at once; the wallet is credited once.
    let body = fixture(
        CONFIRMATION,
        json!({
            "TransID": "PLATC2B001",
            "TransAmount": "500.00",
            "BillRefNumber": reference,
            "BusinessShortCode": PLATFORM_SHORTCODE,
        }),
    );
    let url = format!("{base}/confirmation");
    let first = post_raw(&app, &url, body.clone()).await;
    assert_eq!(
        first.json::<Value>().await.unwrap(),
        json!({"ResultCode": 0, "ResultDesc": "Success"})
    );
    let (a, b) = tokio::join!(
        post_raw(&app, &url, body.clone()),
        post_raw(&app, &url, body.clone())
    );
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let top_up = payment_with_receipt(&app, &alpha_admin, "PLATC2B001").await;
    eventually("every delivery processed", || async {
        let stored = callbacks_of_kind(&app, "platform_c2b_confirmation").await;
        (stored.len() == 3 && stored.iter().all(|c| c.processed_at.is_some())).then_some(())
    })
    .await;
    assert_eq!(top_up["purpose"], "wallet_top_up");
    assert_eq!(top_up["channel"], "c2b");
    assert_eq!(top_up["status"], "succeeded");
    assert!(top_up["ledger_transfer_id"].is_string());
    assert_eq!(wallet_posted(&app, &alpha_admin).await, "500.00");
    assert_eq!(wallet_posted(&app, &token(&beta)).await, "0.00");
    assert_eq!(wallet_entries(&app, &alpha_admin).await, ["500.00"]);
    // The matched callbacks now name the organization.
    for row in callbacks_of_kind(&app, "platform_c2b_confirmation").await {
        assert_eq!(
            row.organization_id.unwrap().to_string(),
            alpha["organization"]["id"].as_str().unwrap()
        );
    }

    // An account number that names nobody is kept for operators, in no organization.
    let lost = fixture(
        CONFIRMATION,
        json!({"TransID": "PLATC2B002", "BillRefNumber": "ALPHA TRADERZ"}),
    );
    assert_eq!(post_raw(&app, &url, lost).await.status(), 200);
    let ops = token(&operator(&app).await);
    let listed = eventually("the unmatched payment listed", || async {
        let listed: Value = send(
            &app,
            &ops,
            Method::GET,
            "/admin/mpesa/callbacks?outcome=unmatched",
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        (!listed["items"].as_array().unwrap().is_empty()).then_some(listed)
    })
    .await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["kind"], "platform_c2b_confirmation");
    assert!(items[0]["organization_id"].is_null());
    assert_eq!(items[0]["body"]["TransID"], "PLATC2B002");
    assert!(
        items[0]["detail"]
            .as_str()
            .unwrap()
            .contains("ALPHA TRADERZ")
    );
    assert_eq!(wallet_posted(&app, &alpha_admin).await, "500.00");
    let all: Value = send(
        &app,
        &ops,
        Method::GET,
        "/admin/mpesa/callbacks?kind=platform_c2b_validation&limit=2",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    assert!(all["next_cursor"].is_string());
    assert_eq!(
        send(
            &app,
            &ops,
            Method::GET,
            "/admin/mpesa/callbacks?outcome=lost",
            None
        )
        .await
        .status(),
        422
    );
    // Organization admins do not see the platform's inbox.
    assert_eq!(
        send(
            &app,
            &alpha_admin,
            Method::GET,
            "/admin/mpesa/callbacks?outcome=unmatched",
            None
        )
        .await
        .status(),
        403
    );
}

async fn a_status_query_round_trip_and_its_refusals(backend: Backend) {
    let (app, fake) = spawn(backend, "c2b_status_query").await;
    // Late enough that the 202 is written before the result arrives, even on a busy machine.
    fake.callback_delay(Duration::from_secs(1));
    let shop = tenant(&app, "Status Shop", "admin@status.example", json!({})).await;
    let paid = confirm(&app, &shop, CONFIRMATION.to_owned(), "TESTC2B001").await;
    let id = paid["id"].as_str().unwrap().to_owned();
    let path = format!("/payments/{id}/status-query");

    let asked = send(&app, &shop.admin, Method::POST, &path, None).await;
    assert_eq!(asked.status(), 202);
    let asked: Value = asked.json().await.unwrap();
    assert_eq!(asked["kind"], "transaction_status");
    assert_eq!(asked["status"], "pending");
    let sent = fake.requests_to("/mpesa/transactionstatus/v1/query");
    assert_eq!(sent.len(), 1);
    let sent = sent[0].json().unwrap();
    assert_eq!(sent["TransactionID"], "TESTC2B001");
    assert_eq!(sent["Initiator"], INITIATOR);
    assert_eq!(sent["PartyA"], SHORTCODE);
    assert_eq!(sent["ResultURL"], shop.url("result").as_str());
    assert_eq!(sent["QueueTimeOutURL"], shop.url("timeout").as_str());

    let request = asked["id"].as_str().unwrap().to_owned();
    let detail = completed(&app, &shop.admin, &id, &request).await;
    let done = request_of(&detail, &request);
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["result_code"], "0");
    assert!(done["conversation_id"].as_str().unwrap().starts_with("AG_"));
    assert!(
        done["result"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["key"] == "TransactionStatus" && p["value"] == "Completed")
    );
    assert_eq!(
        kinds(&detail)[2..],
        [
            "payment.status_query_requested",
            "payment.status_query_completed"
        ]
    );
    // The payment itself is as it was.
    assert_eq!(detail["status"], "succeeded");

    // While one is pending, a second is refused, naming it. Its result (posted here, as
    // the fake is told to keep quiet) completes it once, however often it comes.
    fake.drop_callbacks(true);
    let pending = send(
        &app,
        &shop.admin,
        Method::POST,
        &path,
        Some(json!({"reason": "Customer dispute"})),
    )
    .await;
    assert_eq!(pending.status(), 202);
    let pending: Value = pending.json().await.unwrap();
    assert_eq!(pending["reason"], "Customer dispute");
    let pending_id = pending["id"].as_str().unwrap().to_owned();
    let second = send(&app, &shop.admin, Method::POST, &path, None).await;
    assert_eq!(second.status(), 409);
    let second: Value = second.json().await.unwrap();
    assert!(
        second["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&pending_id),
        "{second}"
    );
    // A queue time-out (whose shape Daraja does not document: only its ids are read)
    // closes it as failed; the real result arriving later still counts.
    let timeout = json!({"Result": {
        "OriginatorConversationID": pending["originator_conversation_id"],
        "ConversationID": pending["conversation_id"],
    }})
    .to_string();
    assert_eq!(
        post_raw(&app, &shop.url("timeout"), timeout).await.status(),
        200
    );
    let detail = completed(&app, &shop.admin, &id, &pending_id).await;
    let timed_out = request_of(&detail, &pending_id);
    assert_eq!(timed_out["status"], "failed");
    assert!(timed_out["timed_out_at"].is_string());
    let result = result_fixture(
        STATUS_RESULT,
        json!({
            "OriginatorConversationID": pending["originator_conversation_id"],
            "ConversationID": pending["conversation_id"],
        }),
    );
    for _ in 0..2 {
        assert_eq!(
            post_raw(&app, &shop.url("result"), result.clone())
                .await
                .status(),
            200
        );
    }
    let detail = eventually("the late result", || async {
        let detail = payment(&app, &shop.admin, &id).await;
        (request_of(&detail, &pending_id)["status"] == "succeeded").then_some(detail)
    })
    .await;
    eventually("both deliveries processed", || async {
        let stored = callbacks_of_kind(&app, "result").await;
        stored
            .iter()
            .filter(|c| c.processed_at.is_some())
            .count()
            .eq(&3)
            .then_some(())
    })
    .await;
    let completions = kinds(&payment(&app, &shop.admin, &id).await)
        .iter()
        .filter(|k| *k == "payment.status_query_completed")
        .count();
    // The first query's, the time-out, and the late result: the duplicate added nothing.
    assert_eq!(completions, 3);
    assert_eq!(
        request_of(&detail, &pending_id)["result"]["transaction_id"],
        "TST0000000"
    );

    // Refusals: the wrong role, another organization's payment, a payment made to the
    // platform, a payment without a receipt, an organization without an initiator.
    let manager = invite_and_accept(&app, &shop.admin, "manager@status.example", "manager").await;
    assert_eq!(
        send(&app, &token(&manager), Method::POST, &path, None)
            .await
            .status(),
        403
    );
    let stranger = tenant(&app, "Stranger", "admin@stranger.example", json!({})).await;
    assert_eq!(
        send(&app, &stranger.admin, Method::POST, &path, None)
            .await
            .status(),
        404
    );
    let org: uuid::Uuid = shop.org.parse().unwrap();
    let unpaid = insert_payment(&app, org, "wallet_top_up", "succeeded", Some("TESTPLAT01")).await;
    let to_platform = send(
        &app,
        &shop.admin,
        Method::POST,
        &format!("/payments/{unpaid}/status-query"),
        None,
    )
    .await;
    assert_eq!(to_platform.status(), 403);
    let no_receipt = insert_payment(&app, org, "collection", "pending", None).await;
    let refused = send(
        &app,
        &shop.admin,
        Method::POST,
        &format!("/payments/{no_receipt}/status-query"),
        None,
    )
    .await;
    assert_eq!(refused.status(), 409);
    let plain = tenant(
        &app,
        "No Initiator",
        "admin@no-initiator.example",
        json!({"initiator_name": null, "initiator_security_credential": null}),
    )
    .await;
    let theirs = confirm(&app, &plain, CONFIRMATION.to_owned(), "TESTC2B001").await;
    let refused = send(
        &app,
        &plain.admin,
        Method::POST,
        &format!("/payments/{}/status-query", theirs["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(refused.status(), 409);
    let refused: Value = refused.json().await.unwrap();
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("initiator_security_credential"),
        "{refused}"
    );
}

/// Writes a payment row directly (for states the API does not reach quickly).
async fn insert_payment(
    app: &TestApp,
    org: uuid::Uuid,
    purpose: &str,
    status: &str,
    receipt: Option<&str>,
) -> uuid::Uuid {
    use sea_orm::ActiveValue::Set;
    let id = uuid::Uuid::now_v7();
    let now = chrono::Utc::now();
    let mut row = payments::ActiveModel::pending(
        org,
        id,
        purpose,
        "stk",
        edge_core::Money::from_minor(10_000, edge_core::Currency::Kes),
        now,
    );
    row.status = Set(status.into());
    row.phone = Set(Some("+254708374149".into()));
    row.account_reference = Set("TEST".into());
    row.description = Set("Inserted by a test".into());
    row.receipt = Set(receipt.map(str::to_owned));
    row.applied_at = Set(Some(now));
    payments::Entity::insert(row)
        .exec_without_returning(app.db())
        .await
        .unwrap();
    id
}

async fn a_collection_is_reversed_and_a_failed_reversal_changes_nothing(backend: Backend) {
    let (app, fake) = spawn(backend, "c2b_reversal").await;
    let shop = tenant(&app, "Reversal Shop", "admin@reversal.example", json!({})).await;
    let paid = confirm(&app, &shop, CONFIRMATION.to_owned(), "TESTC2B001").await;
    let id = paid["id"].as_str().unwrap().to_owned();
    let path = format!("/payments/{id}/reversal");

    // A reason is required, and must fit M-Pesa's remarks.
    assert_eq!(
        send(&app, &shop.admin, Method::POST, &path, Some(json!({})))
            .await
            .status(),
        422
    );
    assert_eq!(
        send(
            &app,
            &shop.admin,
            Method::POST,
            &path,
            Some(json!({"reason": "x"}))
        )
        .await
        .status(),
        422
    );

    // A failed reversal (R000002, posted by hand) leaves the payment as it was.
    fake.drop_callbacks(true);
    let failing = send(
        &app,
        &shop.admin,
        Method::POST,
        &path,
        Some(json!({"reason": "Paid twice by mistake"})),
    )
    .await;
    assert_eq!(failing.status(), 202);
    let failing: Value = failing.json().await.unwrap();
    let failure = result_fixture(
        REVERSAL_FAILURE,
        json!({"OriginatorConversationID": failing["originator_conversation_id"]}),
    );
    assert_eq!(
        post_raw(&app, &shop.url("result"), failure).await.status(),
        200
    );
    let failing_id = failing["id"].as_str().unwrap().to_owned();
    let detail = completed(&app, &shop.admin, &id, &failing_id).await;
    let failed = request_of(&detail, &failing_id);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["result_code"], "R000002");
    assert!(failed["applied_at"].is_null());
    assert_eq!(detail["status"], "succeeded");

    // The real thing: the fake answers success, and the payment is reversed.
    fake.drop_callbacks(false);
    let asked = send(
        &app,
        &shop.admin,
        Method::POST,
        &path,
        Some(json!({"reason": "Paid twice by mistake"})),
    )
    .await;
    assert_eq!(asked.status(), 202);
    let asked: Value = asked.json().await.unwrap();
    let sent = fake.requests_to("/mpesa/reversal/v1/request");
    let sent = sent.last().unwrap().json().unwrap();
    assert_eq!(sent["TransactionID"], "TESTC2B001");
    assert_eq!(sent["Amount"], "1500");
    assert_eq!(sent["ReceiverParty"], SHORTCODE);
    assert_eq!(sent["Remarks"], "Paid twice by mistake");
    let request = asked["id"].as_str().unwrap().to_owned();
    completed(&app, &shop.admin, &id, &request).await;
    let detail = eventually("the payment reversed", || async {
        let detail = payment(&app, &shop.admin, &id).await;
        (detail["status"] == "reversed").then_some(detail)
    })
    .await;
    let done = request_of(&detail, &request);
    assert_eq!(done["status"], "succeeded");
    assert!(done["applied_at"].is_string());
    let history = kinds(&detail);
    assert!(history.ends_with(&[
        "payment.reversal_requested".to_owned(),
        "payment.reversal_completed".to_owned(),
        "payment.status_changed".to_owned(),
    ]));
    let changed = detail["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(changed["data"]["from"], "succeeded");
    assert_eq!(changed["data"]["to"], "reversed");
    assert_eq!(changed["data"]["source"], "reversal");
    let reversed: Value = send(
        &app,
        &shop.admin,
        Method::GET,
        "/payments?status=reversed",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(reversed["items"].as_array().unwrap().len(), 1);

    // Only a succeeded payment is reversed.
    let again = send(
        &app,
        &shop.admin,
        Method::POST,
        &path,
        Some(json!({"reason": "Once more"})),
    )
    .await;
    assert_eq!(again.status(), 409);

    // The audit log has each request.
    let log: Value = send(
        &app,
        &shop.admin,
        Method::GET,
        "/audit-log?action=payment.reversal",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(log["items"].as_array().unwrap().len(), 2);
}

async fn reversing_a_top_up_takes_the_credit_back_or_flags_it(backend: Backend) {
    let (app, fake) = spawn(backend, "c2b_reverse_top_up").await;
    let shop = signup(&app, "Top Up Shop", "admin@topup.example").await;
    let admin = token(&shop);
    let org = shop["organization"]["id"].as_str().unwrap().to_owned();
    let slug = shop["organization"]["slug"].as_str().unwrap().to_owned();
    let platform_token = edge_server::payments::tokens::platform_c2b_token(
        &app.state.secrets.credentials_key_bytes(),
    )
    .unwrap();
    let url = app.url(&format!(
        "/callbacks/c2b/platform/{}/confirmation",
        secrecy::ExposeSecret::expose_secret(&platform_token)
    ));
    let top_up = |receipt: &str, amount: &str| {
        fixture(
            CONFIRMATION,
            json!({
                "TransID": receipt,
                "TransAmount": amount,
                "BillRefNumber": slug,
                "BusinessShortCode": PLATFORM_SHORTCODE,
            }),
        )
    };
    assert_eq!(
        post_raw(&app, &url, top_up("PLATREV001", "500"))
            .await
            .status(),
        200
    );
    let paid = payment_with_receipt(&app, &admin, "PLATREV001").await;
    assert_eq!(wallet_posted(&app, &admin).await, "500.00");
    let id = paid["id"].as_str().unwrap().to_owned();

    // Organization admins do not reverse payments made to the platform.
    let refused = send(
        &app,
        &admin,
        Method::POST,
        &format!("/payments/{id}/reversal"),
        Some(json!({"reason": "Wrong account"})),
    )
    .await;
    assert_eq!(refused.status(), 403);

    // An operator does, with the platform's initiator; the credit is taken back.
    let ops = token(&operator(&app).await);
    let path = format!("/admin/organizations/{org}/payments/{id}/reversal");
    let asked = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(json!({"reason": "Paid the wrong paybill"})),
    )
    .await;
    assert_eq!(asked.status(), 202);
    let asked: Value = asked.json().await.unwrap();
    let sent = fake.requests_to("/mpesa/reversal/v1/request");
    let sent = sent.last().unwrap().json().unwrap();
    assert_eq!(sent["Initiator"], "platform-initiator");
    assert_eq!(sent["ReceiverParty"], PLATFORM_SHORTCODE);
    assert_eq!(sent["TransactionID"], "PLATREV001");
    completed(&app, &admin, &id, asked["id"].as_str().unwrap()).await;
    let detail = eventually("the top-up reversed", || async {
        let detail = payment(&app, &admin, &id).await;
        (detail["status"] == "reversed").then_some(detail)
    })
    .await;
    assert!(detail["requests"][0]["applied_at"].is_string());
    assert_eq!(wallet_posted(&app, &admin).await, "0.00");
    assert_eq!(wallet_entries(&app, &admin).await, ["500.00", "-500.00"]);
    // An operator's status query of the same payment uses the platform's initiator too.
    let status = send(
        &app,
        &ops,
        Method::POST,
        &format!("/admin/organizations/{org}/payments/{id}/status-query"),
        None,
    )
    .await;
    assert_eq!(status.status(), 202);
    let sent = fake.requests_to("/mpesa/transactionstatus/v1/query");
    assert_eq!(
        sent.last().unwrap().json().unwrap()["Initiator"],
        "platform-initiator"
    );
    // Another organization's id in the path finds nothing.
    let other = signup(&app, "Elsewhere", "admin@elsewhere-topup.example").await;
    let other_org = other["organization"]["id"].as_str().unwrap();
    assert_eq!(
        send(
            &app,
            &ops,
            Method::POST,
            &format!("/admin/organizations/{other_org}/payments/{id}/reversal"),
            Some(json!({"reason": "Wrong organization"})),
        )
        .await
        .status(),
        404
    );

    // A top-up already spent cannot be taken back: the payment waits for review and the
    // wallet keeps what it has.
    assert_eq!(
        post_raw(&app, &url, top_up("PLATREV002", "300"))
            .await
            .status(),
        200
    );
    let spent = payment_with_receipt(&app, &admin, "PLATREV002").await;
    let debit = send(
        &app,
        &ops,
        Method::POST,
        &format!("/admin/organizations/{org}/wallet/adjustments"),
        Some(json!({
            "amount": {"amount": "200.00", "currency": "KES"},
            "direction": "debit",
            "reason": "spent on messages",
            "idempotency_key": "spend-1",
        })),
    )
    .await;
    assert_eq!(debit.status(), 201);
    assert_eq!(wallet_posted(&app, &admin).await, "100.00");
    let spent_id = spent["id"].as_str().unwrap().to_owned();
    let asked = send(
        &app,
        &ops,
        Method::POST,
        &format!("/admin/organizations/{org}/payments/{spent_id}/reversal"),
        Some(json!({"reason": "Customer asked for it back"})),
    )
    .await;
    assert_eq!(asked.status(), 202);
    let detail = eventually("the spent top-up flagged", || async {
        let detail = payment(&app, &admin, &spent_id).await;
        (detail["status"] == "needs_review").then_some(detail)
    })
    .await;
    let reason = detail["review_reason"].as_str().unwrap();
    assert!(reason.contains("could not cover"), "{reason}");
    assert_eq!(detail["requests"][0]["status"], "succeeded");
    assert!(detail["requests"][0]["applied_at"].is_string());
    assert_eq!(wallet_posted(&app, &admin).await, "100.00");

    // The operator takes the credit back once the wallet can cover it (402 until then);
    // the payment ends reversed either way.
    let review = format!("/admin/organizations/{org}/payments/{spent_id}/review");
    let decision = json!({"decision": "reject", "reason": "take the credit back"});
    let short = send(&app, &ops, Method::POST, &review, Some(decision.clone())).await;
    assert_eq!(short.status(), 402);
    let topped = send(
        &app,
        &ops,
        Method::POST,
        &format!("/admin/organizations/{org}/wallet/adjustments"),
        Some(json!({
            "amount": {"amount": "200.00", "currency": "KES"},
            "direction": "credit",
            "reason": "customer paid the difference",
            "idempotency_key": "refill-1",
        })),
    )
    .await;
    assert_eq!(topped.status(), 201);
    let resolved = send(&app, &ops, Method::POST, &review, Some(decision)).await;
    assert_eq!(resolved.status(), 200, "{}", resolved.text().await.unwrap());
    let detail = payment(&app, &admin, &spent_id).await;
    assert_eq!(detail["status"], "reversed");
    assert_eq!(wallet_posted(&app, &admin).await, "0.00");
}

async fn a_simulated_payment_goes_through_the_registered_urls(backend: Backend) {
    let (app, fake) = spawn(backend, "c2b_simulated").await;
    let shop = tenant(
        &app,
        "Simulated Shop",
        "admin@simulated.example",
        json!({"c2b_account_rule": "prefixes", "c2b_account_prefixes": ["INV-"]}),
    )
    .await;
    let registered = send(&app, &shop.admin, Method::POST, "/mpesa/c2b/register", None).await;
    assert_eq!(registered.status(), 200);

    // The fake asks our validation URL, which accepts, then confirms to our confirmation
    // URL: one succeeded collection.
    let accepted = fake
        .simulate_c2b(SHORTCODE, "0708374149", 1500, "inv-2041")
        .unwrap();
    assert_eq!(
        fake.wait_for_c2b(&accepted, Duration::from_secs(10)).await,
        Some(C2bStatus::Completed)
    );
    let paid = payment_with_receipt(&app, &shop.admin, &accepted).await;
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["account_reference"], "inv-2041");
    assert_eq!(paid["amount"]["amount"], "1500.00");

    // An account number outside the rule is turned away at validation: no confirmation
    // comes, and no payment.
    let refused = fake
        .simulate_c2b(SHORTCODE, "0708374149", 1500, "WRONG-1")
        .unwrap();
    assert_eq!(
        fake.wait_for_c2b(&refused, Duration::from_secs(10)).await,
        Some(C2bStatus::Rejected {
            result_code: "C2B00012".into()
        })
    );
    assert_eq!(payments_of(&app, &shop.org).await.len(), 1);
}
