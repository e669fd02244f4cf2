//! WhatsApp through the HTTP API against the fake Graph: connecting numbers, the platform
//! webhook (signatures, batches for several tenants, redeliveries), inbound messages into
//! the CRM, and paid sends that are charged exactly once and refunded on failure.

use std::time::Duration;

use edge_whatsapp::fake::{FakeGraph, FakeGraphBuilder, Outcome};
use reqwest::Method;
use sea_orm::{ConnectionTrait as _, Statement};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::auth::{operator, signup, token};
use crate::helpers::{Backend, Options, TestApp, for_each_backend, spawn_with};
use crate::tenancy::send;

for_each_backend!(
    a_number_is_connected_once_and_its_token_never_shown,
    a_sent_message_is_charged_once_even_when_statuses_repeat_or_arrive_out_of_order,
    a_synchronous_failure_and_an_async_failed_status_each_restore_the_balance,
    a_bad_signature_is_refused_and_nothing_is_stored,
    one_batch_with_two_tenants_numbers_lands_in_both_organizations,
    an_unknown_sender_becomes_a_prospect,
    free_text_outside_the_window_is_refused_without_a_charge,
    insufficient_balance_sends_nothing,
    an_idempotency_key_sends_once,
    a_throttled_send_is_retried_and_charged_once,
);

/// The app secret the test servers check webhook signatures with (see `helpers`).
const APP_SECRET: &str = "test-whatsapp-app-secret";

/// The first business number (the one in the shared fixtures' first entry).
pub(crate) const PNID_A: &str = "113057248966301";
pub(crate) const WABA_A: &str = "184630927512044";
const DISPLAY_A: &str = "15550101234";
/// The second business number (the fixtures' second entry).
const PNID_B: &str = "120488736105527";
const WABA_B: &str = "197245803316659";
const DISPLAY_B: &str = "447700900123";

/// How long background work (webhook processing, retries) may take to show.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// A fake Graph that signs webhooks like the test servers expect and knows both numbers.
pub(crate) fn graph() -> FakeGraphBuilder {
    FakeGraph::builder()
        .app_secret(SecretString::from(APP_SECRET))
        .number(PNID_A, WABA_A, DISPLAY_A)
        .number(PNID_B, WABA_B, DISPLAY_B)
}

/// The server, talking to `fake`, which posts its webhooks back to it.
pub(crate) async fn server(backend: Backend, test: &str, fake: &FakeGraph) -> TestApp {
    let app = spawn_with(
        backend,
        test,
        Options {
            vars: vec![(
                "EDGE_WHATSAPP_BASE_URL".to_owned(),
                fake.base_url().to_owned(),
            )],
            ..Options::default()
        },
    )
    .await
    .expect("the backend is available");
    fake.set_webhook_url(app.url("/webhooks/whatsapp"));
    app
}

/// Signs up an organization; returns (admin token, organization id).
pub(crate) async fn shop(app: &TestApp, name: &str, email: &str) -> (String, String) {
    let body = signup(app, name, email).await;
    (
        token(&body),
        body["organization"]["id"].as_str().unwrap().to_owned(),
    )
}

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

async fn connect_number(app: &TestApp, admin: &str, body: Value) -> reqwest::Response {
    send(app, admin, Method::POST, "/whatsapp/numbers", Some(body)).await
}

/// Connects a number of the fake Graph (any token is good unless the fake says otherwise).
pub(crate) async fn connect(app: &TestApp, admin: &str, pnid: &str, waba: &str) -> Value {
    let answer = connect_number(
        app,
        admin,
        json!({"phone_number_id": pnid, "waba_id": waba, "access_token": "EAAG-test-token-0001"}),
    )
    .await;
    assert_eq!(answer.status(), 201);
    json_of(answer).await
}

/// Credits the organization's wallet by an operator's adjustment.
pub(crate) async fn credit(app: &TestApp, org: &str, amount: &str) {
    let ops = token(&operator(app).await);
    let answer = send(
        app,
        &ops,
        Method::POST,
        &format!("/admin/organizations/{org}/wallet/adjustments"),
        Some(json!({
            "amount": {"amount": amount, "currency": "KES"},
            "direction": "credit",
            "reason": "WhatsApp test credit",
            "idempotency_key": format!("wa-test-{org}"),
        })),
    )
    .await;
    assert_eq!(answer.status(), 201);
}

pub(crate) async fn available(app: &TestApp, admin: &str) -> String {
    let wallet = json_of(send(app, admin, Method::GET, "/wallet", None).await).await;
    wallet["available"]["amount"].as_str().unwrap().to_owned()
}

/// `POST /whatsapp/messages`, with an `Idempotency-Key` when given.
async fn send_message(
    app: &TestApp,
    admin: &str,
    body: Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v1/whatsapp/messages"))
        .bearer_auth(admin)
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

fn text_to(phone: &str, body: &str) -> Value {
    json!({"to": phone, "text": {"body": body}})
}

fn utility_template_to(phone: &str) -> Value {
    json!({
        "to": phone,
        "template": {
            "name": "order_update",
            "language": "en",
            "category": "utility",
            "parameters": ["A-17"],
        },
    })
}

/// GETs `/api/v1{path}` until `done` holds for the body (or fails the test after
/// [`DEADLINE`]); returns that body.
pub(crate) async fn get_until(
    app: &TestApp,
    admin: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let body = json_of(send(app, admin, Method::GET, path, None).await).await;
        if done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "GET {path} never got there: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls a message until `done` holds for it.
async fn message_until(
    app: &TestApp,
    admin: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    get_until(app, admin, &format!("/whatsapp/messages/{id}"), done).await
}

/// How many times each status appears in a message's timeline, sorted by status.
fn timeline_of(message: &Value) -> Vec<String> {
    let mut statuses: Vec<String> = message["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap().to_owned())
        .collect();
    statuses.sort();
    statuses
}

/// The sender writes to `pnid`; waits until the organization's inbox shows it. Returns
/// the conversation.
async fn contact_writes(
    app: &TestApp,
    admin: &str,
    fake: &FakeGraph,
    pnid: &str,
    from: &str,
    text: &str,
) -> Value {
    fake.send_inbound_text(pnid, from, "Achieng Otieno", text);
    conversation_with(app, admin, from, text).await
}

/// Waits until the conversation with `wa_id` shows `preview` as its latest message.
async fn conversation_with(app: &TestApp, admin: &str, wa_id: &str, preview: &str) -> Value {
    let inbox = get_until(app, admin, "/whatsapp/conversations", |inbox| {
        inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["wa_id"] == wa_id && c["last_message_preview"] == preview)
    })
    .await;
    inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["wa_id"] == wa_id)
        .unwrap()
        .clone()
}

pub(crate) async fn count(app: &TestApp, sql: &str) -> i64 {
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

/// Waits until `sql` counts `n`.
pub(crate) async fn count_until(app: &TestApp, sql: &str, n: i64) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let now = count(app, sql).await;
        if now == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sql} stayed at {now}, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every stored webhook body has been processed.
async fn webhooks_processed(app: &TestApp, n: i64) {
    count_until(
        app,
        "SELECT COUNT(*) AS n FROM whatsapp_webhooks WHERE processed_at IS NOT NULL",
        n,
    )
    .await;
    assert_eq!(
        count(app, "SELECT COUNT(*) AS n FROM whatsapp_webhooks").await,
        n
    );
}

/// Posts `body` to the platform webhook with `signature` (none when `None`).
async fn post_webhook(app: &TestApp, body: &[u8], signature: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/webhooks/whatsapp"))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("X-Hub-Signature-256", signature);
    }
    request.send().await.unwrap()
}

fn signed(body: &[u8]) -> String {
    edge_whatsapp::webhook::sign(&SecretString::from(APP_SECRET), body)
}

async fn a_number_is_connected_once_and_its_token_never_shown(backend: Backend) {
    const TOKEN: &str = "EAAGm0PX4ZCpsBAKZCgood7secretABCD";
    let fake = graph().valid_token(TOKEN).start().await.unwrap();
    let app = server(backend, module_path!(), &fake).await;
    let (duka, _) = shop(&app, "Duka", "admin@duka.example").await;
    let (soko, _) = shop(&app, "Soko", "admin@soko.example").await;

    let connected = connect_number(
        &app,
        &duka,
        json!({"phone_number_id": PNID_A, "waba_id": WABA_A, "access_token": TOKEN}),
    )
    .await;
    assert_eq!(connected.status(), 201);
    let text = connected.text().await.unwrap();
    assert!(!text.contains(TOKEN), "the token leaked: {text}");
    let number: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(number["access_token_hint"], "…ABCD");
    assert_eq!(number["phone_number_id"], PNID_A);
    assert_eq!(number["display_number"], DISPLAY_A);
    assert_eq!(number["status"], "connected");
    assert_eq!(number["default"], true);
    let listed = send(&app, &duka, Method::GET, "/whatsapp/numbers", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(TOKEN), "the token leaked: {listed}");

    // The same number for another organization: refused.
    let taken = connect_number(
        &app,
        &soko,
        json!({"phone_number_id": PNID_A, "waba_id": WABA_A, "access_token": TOKEN}),
    )
    .await;
    assert_eq!(taken.status(), 409);

    // A token Graph refuses: 422 on access_token, and nothing connected.
    let refused = connect_number(
        &app,
        &soko,
        json!({"phone_number_id": PNID_B, "waba_id": WABA_B, "access_token": "EAAG-wrong-token"}),
    )
    .await;
    assert_eq!(refused.status(), 422);
    assert_eq!(fields_of(&json_of(refused).await), ["access_token"]);

    // Nothing given: every field named at once.
    let empty = connect_number(&app, &soko, json!({})).await;
    assert_eq!(empty.status(), 422);
    assert_eq!(
        fields_of(&json_of(empty).await),
        ["phone_number_id", "waba_id", "access_token"]
    );
    let soko_numbers =
        json_of(send(&app, &soko, Method::GET, "/whatsapp/numbers", None).await).await;
    assert!(soko_numbers["items"].as_array().unwrap().is_empty());
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM whatsapp_numbers").await,
        1
    );
}

async fn a_sent_message_is_charged_once_even_when_statuses_repeat_or_arrive_out_of_order(
    backend: Backend,
) {
    let fake = graph()
        .duplicate_statuses(true)
        .reverse_statuses(true)
        .start()
        .await
        .unwrap();
    let app = server(backend, module_path!(), &fake).await;
    let (admin, org) = shop(&app, "Duka", "admin@duka.example").await;
    connect(&app, &admin, PNID_A, WABA_A).await;
    contact_writes(
        &app,
        &admin,
        &fake,
        PNID_A,
        "254712000002",
        "Is the order ready?",
    )
    .await;
    credit(&app, &org, "100.00").await;

    let sent = send_message(
        &app,
        &admin,
        text_to("+254712000002", "Yes, come by at 5"),
        None,
    )
    .await;
    assert_eq!(sent.status(), 201);
    let sent = json_of(sent).await;
    assert_eq!(sent["direction"], "outbound");
    assert_eq!(sent["charge"]["category"], "service");
    assert_eq!(sent["charge"]["fee"]["amount"], "0.20");
    let id = sent["id"].as_str().unwrap().to_owned();

    // read, read, delivered, delivered, sent, sent: six webhooks after the inbound one.
    let deliveries = fake.wait_for_deliveries(7, DEADLINE).await;
    assert_eq!(deliveries.len(), 7);
    assert!(deliveries.iter().all(|d| d.response_status == Some(200)));
    webhooks_processed(&app, 7).await;

    let message = message_until(&app, &admin, &id, |m| {
        m["status"] == "read" && m["charge"]["status"] == "captured"
    })
    .await;
    assert_eq!(
        timeline_of(&message),
        ["accepted", "delivered", "read", "sent"],
        "{message}"
    );
    assert_eq!(available(&app, &admin).await, "99.80");
    assert_eq!(fake.message_requests().len(), 1);
}

async fn a_synchronous_failure_and_an_async_failed_status_each_restore_the_balance(
    backend: Backend,
) {
    let fake = graph().start().await.unwrap();
    let app = server(backend, module_path!(), &fake).await;
    let (admin, org) = shop(&app, "Duka", "admin@duka.example").await;
    connect(&app, &admin, PNID_A, WABA_A).await;
    contact_writes(&app, &admin, &fake, PNID_A, "254712000003", "Hello").await;
    credit(&app, &org, "100.00").await;

    // Refused by Graph at once: 422, the failed message in the details, the fee back.
    fake.script("254712000003", Outcome::Undeliverable);
    let refused = send_message(&app, &admin, text_to("+254712000003", "Karibu"), None).await;
    assert_eq!(refused.status(), 422);
    let refused = json_of(refused).await;
    assert_eq!(refused["error"]["code"], "whatsapp_refused");
    let failed = &refused["error"]["details"]["message"];
    assert_eq!(failed["status"], "failed", "{refused}");
    assert_eq!(failed["charge"]["status"], "released");
    assert_eq!(failed["error"]["code"], "131026");
    assert_eq!(available(&app, &admin).await, "100.00");

    // Accepted, then a `failed` status: held until then, released by it.
    fake.script("254712000003", Outcome::Failed { code: 131026 });
    let accepted = send_message(&app, &admin, text_to("+254712000003", "Karibu tena"), None).await;
    assert_eq!(accepted.status(), 201);
    let id = json_of(accepted).await["id"].as_str().unwrap().to_owned();
    let message = message_until(&app, &admin, &id, |m| {
        m["status"] == "failed" && m["charge"]["status"] == "released"
    })
    .await;
    assert_eq!(message["error"]["code"], "131026");
    assert_eq!(timeline_of(&message), ["accepted", "failed"]);
    assert_eq!(available(&app, &admin).await, "100.00");
    let wallet = json_of(send(&app, &admin, Method::GET, "/wallet", None).await).await;
    assert_eq!(wallet["posted"]["amount"], "100.00");
}

async fn a_bad_signature_is_refused_and_nothing_is_stored(backend: Backend) {
    let fake = graph().start().await.unwrap();
    let app = server(backend, module_path!(), &fake).await;
    let (admin, _) = shop(&app, "Duka", "admin@duka.example").await;
    connect(&app, &admin, PNID_A, WABA_A).await;
    let body: &[u8] = include_bytes!("../data/webhook_inbound_text.json");

    let wrong = edge_whatsapp::webhook::sign(&SecretString::from("another-secret"), body);
    for signature in [Some(wrong.as_str()), None, Some("e13aa9c676b6eda1")] {
        let refused = post_webhook(&app, body, signature).await;
        assert_eq!(refused.status(), 401, "{signature:?}");
        assert_eq!(json_of(refused).await["error"]["code"], "invalid_signature");
    }
    // A body changed after signing (re-serialised, as a careless proxy would).
    let reserialised = serde_json::to_vec(&serde_json::from_slice::<Value>(body).unwrap()).unwrap();
    let tampered = post_webhook(&app, &reserialised, Some(&signed(body))).await;
    assert_eq!(tampered.status(), 401);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM whatsapp_webhooks").await,
        0
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM whatsapp_messages").await,
        0
    );

    // The exact bytes, signed: stored, answered 200, and the message lands.
    let accepted = post_webhook(&app, body, Some(&signed(body))).await;
    assert_eq!(accepted.status(), 200);
    webhooks_processed(&app, 1).await;
    let conversation = conversation_with(
        &app,
        &admin,
        "12025550147",
        "Thanks 🙏 could you deliver after 5pm? I'm at the café until then.",
    )
    .await;
    assert_eq!(conversation["contact"]["name"], "Dana Whitfield");
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM whatsapp_messages").await,
        1
    );
}

/// The shared two-number batch with an inbound text in each entry: Dana's two messages to
/// number A as in the fixture, and one from Tom to number B in place of the status.
fn two_tenant_batch() -> Vec<u8> {
    let mut batch: Value =
        serde_json::from_str(include_str!("../data/webhook_two_numbers_one_batch.json")).unwrap();
    let mut second = batch["entry"][0].clone();
    second["id"] = json!(WABA_B);
    let value = &mut second["changes"][0]["value"];
    value["metadata"] = json!({"display_phone_number": DISPLAY_B, "phone_number_id": PNID_B});
    value["contacts"] = json!([{"profile": {"name": "Tom Okafor"}, "wa_id": "447700900789"}]);
    value["messages"] = json!([{
        "from": "447700900789",
        "id": "wamid.HBgMNDQ3NzAwOTAwNzg5FQIAEhgUM0VCMEU1QjQ2RDQ1NTg5QjcwNDkA",
        "timestamp": "1795184425",
        "type": "text",
        "text": {"body": "Do you deliver to Westlands?"},
    }]);
    batch["entry"][1] = second;
    serde_json::to_vec(&batch).unwrap()
}

async fn one_batch_with_two_tenants_numbers_lands_in_both_organizations(backend: Backend) {
    let fake = graph().start().await.unwrap();
    let app = server(backend, module_path!(), &fake).await;
    let (duka, _) = shop(&app, "Duka", "admin@duka.example").await;
    let (soko, _) = shop(&app, "Soko", "admin@soko.example").await;
    connect(&app, &duka, PNID_A, WABA_A).await;
    connect(&app, &soko, PNID_B, WABA_B).await;

    let body = two_tenant_batch();
    let answer = post_webhook(&app, &body, Some(&signed(&body))).await;
    assert_eq!(answer.status(), 200);
    webhooks_processed(&app, 1).await;

    let dana = conversation_with(&app, &duka, "12025550147", "Same order please").await;
    let duka_inbox =
        json_of(send(&app, &duka, Method::GET, "/whatsapp/conversations", None).await).await;
    assert_eq!(
        duka_inbox["items"].as_array().unwrap().len(),
        1,
        "{duka_inbox}"
    );
    let tom = conversation_with(&app, &soko, "447700900789", "Do you deliver to Westlands?").await;
    let soko_inbox =
        json_of(send(&app, &soko, Method::GET, "/whatsapp/conversations", None).await).await;
    assert_eq!(
        soko_inbox["items"].as_array().unwrap().len(),
        1,
        "{soko_inbox}"
    );
    assert_eq!(tom["unread_count"], 1);
    assert_eq!(dana["unread_count"], 2);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM whatsapp_webhooks WHERE outcome = 'processed'"
        )
        .await,
        1
    );

    // The same body again (Meta redelivers): stored and answered, nothing new.
    let again = post_webhook(&app, &body, Some(&signed(&body))).await;
    assert_eq!(again.status(), 200);
    webhooks_processed(&app, 2).await;
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM whatsapp_messages").await,
        3
    );
    let messages = json_of(
        send(
            &app,
            &duka,
            Method::GET,
            &format!(
                "/whatsapp/conversations/{}/messages",
                dana["contact"]["id"].as_str().unwrap()
            ),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(messages["items"].as_array().unwrap().len(), 2, "{messages}");
    let tom_again =
        conversation_with(&app, &soko, "447700900789", "Do you deliver to Westlands?").await;
    assert_eq!(tom_again["unread_count"], 1);

    // A number nobody connected: answered 200 and kept as unrouted.
    let mut stray: Value = serde_json::from_slice(&body).unwrap();
    stray["entry"] = json!([stray["entry"][1].clone()]);
    stray["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] =
        json!("109999999999999");
    stray["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = json!("wamid.stray.0001");
    let stray = serde_json::to_vec(&stray).unwrap();
    let answer = post_webhook(&app, &stray, Some(&signed(&stray))).await;
    assert_eq!(answer.status(), 200);
    webhooks_processed(&app, 3).await;
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM whatsapp_webhooks WHERE outcome = 'unrouted'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM whatsapp_messages").await,
        3
    );
}

async fn an_unknown_sender_becomes_a_prospect(backend: Backend) {
    let fake = graph().start().await.unwrap();
    let app = server(backend, module_path!(), &fake).await;
    let (admin, _) = shop(&app, "Duka", "admin@duka.example").await;
    connect(&app, &admin, PNID_A, WABA_A).await;

    let first = contact_writes(&app, &admin, &fake, PNID_A, "254712000006", "Bei ya unga?").await;
    assert_eq!(first["contact"]["type"], "prospect");
    let prospects = get_until(&app, &admin, "/prospects", |p| {
        !p["items"].as_array().unwrap().is_empty()
    })
    .await;
    let items = prospects["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{prospects}");
    assert_eq!(items[0]["lead_source"], "WhatsApp");
    assert_eq!(items[0]["phone"], "+254712000006");
    assert_eq!(items[0]["name"], "Achieng Otieno");
    assert_eq!(items[0]["id"], first["contact"]["id"]);

    // The same sender again: the same prospect and conversation.
    let second = contact_writes(&app, &admin, &fake, PNID_A, "254712000006", "Na sukari?").await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["contact"]["id"], first["contact"]["id"]);
    assert_eq!(second["unread_count"], 2);
    let prospects = json_of(send(&app, &admin, Method::GET, "/prospects", None).await).await;
    assert_eq!(
        prospects["items"].as_array().unwrap().len(),
        1,
        "{prospects}"
    );
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM prospects").await, 1);
}

async fn free_text_outside_the_window_is_refused_without_a_charge(backend: Backend) {
    let fake = graph().start().await.unwrap();
    let app = server(backend, module_path!(), &fake).await;
    let (admin, org) = shop(&app, "Duka", "admin@duka.example").await;
    connect(&app, &admin, PNID_A, WABA_A).await;
    credit(&app, &org, "100.00").await;

    let refused = send_message(&app, &admin, text_to("0712000007", "Offer inside!"), None).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(json_of(refused).await["error"]["code"], "template_required");
    assert_eq!(available(&app, &admin).await, "100.00");
    assert!(fake.message_requests().is_empty());
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM whatsapp_messages").await,
        0
    );

    // A template may start the conversation: charged at the utility price.
    let sent = send_message(&app, &admin, utility_template_to("0712000007"), None).await;
    assert_eq!(sent.status(), 201);
    let sent = json_of(sent).await;
    assert_eq!(sent["charge"]["category"], "utility");
    assert_eq!(sent["charge"]["fee"]["amount"], "0.40");
    let id = sent["id"].as_str().unwrap().to_owned();
    message_until(&app, &admin, &id, |m| m["charge"]["status"] == "captured").await;
    assert_eq!(available(&app, &admin).await, "99.60");
    let requests = fake.message_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["to"], "254712000007");
    assert_eq!(requests[0]["type"], "template");
}

async fn insufficient_balance_sends_nothing(backend: Backend) {
    let fake = graph().start().await.unwrap();
    let app = server(backend, module_path!(), &fake).await;
    let (admin, _) = shop(&app, "Duka", "admin@duka.example").await;
    connect(&app, &admin, PNID_A, WABA_A).await;
    assert_eq!(available(&app, &admin).await, "0.00");

    let refused = send_message(&app, &admin, utility_template_to("0712000008"), None).await;
    assert_eq!(refused.status(), 402);
    assert_eq!(
        json_of(refused).await["error"]["code"],
        "insufficient_funds"
    );
    assert!(fake.message_requests().is_empty());
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM whatsapp_messages").await,
        0
    );
    assert_eq!(available(&app, &admin).await, "0.00");
}

async fn an_idempotency_key_sends_once(backend: Backend) {
    let fake = graph().start().await.unwrap();
    let app = server(backend, module_path!(), &fake).await;
    let (admin, org) = shop(&app, "Duka", "admin@duka.example").await;
    connect(&app, &admin, PNID_A, WABA_A).await;
    credit(&app, &org, "100.00").await;

    let body = utility_template_to("0712000009");
    let first = send_message(&app, &admin, body.clone(), Some("order-17-update")).await;
    assert_eq!(first.status(), 201);
    let first = json_of(first).await;
    let replay = send_message(&app, &admin, body, Some("order-17-update")).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(json_of(replay).await["id"], first["id"]);

    // The same key for another message: refused, nothing sent.
    let other = send_message(
        &app,
        &admin,
        utility_template_to("0712000010"),
        Some("order-17-update"),
    )
    .await;
    assert_eq!(other.status(), 409);

    let id = first["id"].as_str().unwrap().to_owned();
    message_until(&app, &admin, &id, |m| m["charge"]["status"] == "captured").await;
    assert_eq!(fake.message_requests().len(), 1);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM whatsapp_messages").await,
        1
    );
    assert_eq!(available(&app, &admin).await, "99.60");
}

async fn a_throttled_send_is_retried_and_charged_once(backend: Backend) {
    let fake = graph().start().await.unwrap();
    let app = server(backend, module_path!(), &fake).await;
    let (admin, org) = shop(&app, "Duka", "admin@duka.example").await;
    connect(&app, &admin, PNID_A, WABA_A).await;
    credit(&app, &org, "100.00").await;

    fake.script_once("254712000011", Outcome::RateLimited);
    let queued = send_message(&app, &admin, utility_template_to("0712000011"), None).await;
    assert_eq!(queued.status(), 202);
    let queued = json_of(queued).await;
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["charge"]["status"], "held");
    assert_eq!(queued["error"]["code"], "130429");
    assert!(queued["next_attempt_at"].is_string());
    // Held, not refunded: the fee is out of the available balance until the outcome.
    assert_eq!(available(&app, &admin).await, "99.60");

    let id = queued["id"].as_str().unwrap().to_owned();
    let message = message_until(&app, &admin, &id, |m| {
        m["status"] == "read" && m["charge"]["status"] == "captured"
    })
    .await;
    assert_eq!(message["attempts"], 2);
    assert_eq!(
        timeline_of(&message),
        ["accepted", "delivered", "read", "retry_scheduled", "sent"]
    );
    assert_eq!(fake.message_requests().len(), 2);
    assert_eq!(available(&app, &admin).await, "99.60");
    let wallet = json_of(send(&app, &admin, Method::GET, "/wallet", None).await).await;
    assert_eq!(wallet["posted"]["amount"], "99.60");
}
