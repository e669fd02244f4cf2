//! Outbound webhooks over HTTP: endpoints, signed deliveries to a local receiver that
//! verifies every signature with its own implementation of the Standard Webhooks scheme,
//! retries on schedule under a fixed clock, disabling, replays, the address guard,
//! isolation and restart survival.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, TimeZone as _, Utc};
use edge_core::FixedClock;
use hmac::{Hmac, Mac as _};
use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::{signup, token};
use crate::crm_support::{expect, field_errors};
use crate::helpers::{Backend, Options, TestApp, for_each_backend, spawn_with};

for_each_backend!(
    a_deal_stage_move_is_delivered_signed_and_can_be_replayed,
    a_failing_endpoint_is_retried_on_schedule_then_disabled,
    private_addresses_are_refused_unless_allowed,
    endpoints_are_isolated_and_their_secret_is_shown_once,
    a_pending_delivery_survives_a_restart,
);

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
}

/// A server on `backend` with a fixed clock; `allow_private` lets webhooks reach the
/// local receiver.
async fn app_with(
    backend: Backend,
    test: &str,
    clock: &FixedClock,
    allow_private: bool,
    keep: Option<(tempfile::TempDir, Option<crate::helpers::PgDatabase>)>,
) -> Option<TestApp> {
    let mut vars = Vec::new();
    if allow_private {
        vars.push((
            "EDGE_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES".to_owned(),
            "true".to_owned(),
        ));
    }
    let (data_dir, postgres) = match keep {
        Some((dir, pg)) => (Some(dir), pg),
        None => (None, None),
    };
    spawn_with(
        backend,
        test,
        Options {
            vars,
            clock: Some(Arc::new(clock.clone())),
            data_dir,
            postgres,
            ..Options::default()
        },
    )
    .await
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: i64,
    signatures: usize,
    body: String,
    verified: bool,
}

#[derive(Default)]
struct ReceiverState {
    keys: Vec<Vec<u8>>,
    fail_first: usize,
    always_fail: bool,
    seen: Vec<Received>,
}

/// A local webhook receiver that verifies every request's signature.
#[derive(Clone)]
struct Receiver {
    state: Arc<Mutex<ReceiverState>>,
    address: SocketAddr,
}

impl Receiver {
    async fn start(fail_first: usize, always_fail: bool) -> Self {
        let state = Arc::new(Mutex::new(ReceiverState {
            fail_first,
            always_fail,
            ..ReceiverState::default()
        }));
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { state, address }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// Trusts `secret` (`whsec_…`) from now on.
    fn trust(&self, secret: &str) {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
            .unwrap();
        self.state.lock().unwrap().keys.push(key);
    }

    /// Trusts only `secret` from now on.
    fn trust_only(&self, secret: &str) {
        self.state.lock().unwrap().keys.clear();
        self.trust(secret);
    }

    fn seen(&self) -> Vec<Received> {
        self.state.lock().unwrap().seen.clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..1000 {
            let seen = self.seen();
            if seen.len() >= count {
                return seen;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!(
            "the receiver got {} requests, not {count}",
            self.seen().len()
        );
    }
}

/// Standard Webhooks, from the specification: the signed content is
/// `{webhook-id}.{webhook-timestamp}.{body}`, the key the base64-decoded secret after
/// `whsec_`, the signature `v1,` + base64(HMAC-SHA256); the header may hold several,
/// space-separated.
fn verify(keys: &[Vec<u8>], id: &str, timestamp: &str, header: &str, body: &[u8]) -> bool {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    header.split(' ').any(|candidate| {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            return false;
        };
        let Ok(signature) = STANDARD.decode(encoded) else {
            return false;
        };
        keys.iter().any(|key| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
            mac.update(&content);
            mac.verify_slice(&signature).is_ok()
        })
    })
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let mut state = state.lock().unwrap();
    let verified = verify(&state.keys, &id, &timestamp, &signature, &body);
    state.seen.push(Received {
        id,
        timestamp: timestamp.parse().unwrap_or_default(),
        signatures: signature.split(' ').count(),
        body: String::from_utf8(body.to_vec()).unwrap(),
        verified,
    });
    if !verified {
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }
    if state.always_fail || state.seen.len() <= state.fail_first {
        return (StatusCode::INTERNAL_SERVER_ERROR, "receiver is down");
    }
    (StatusCode::OK, "ok")
}

/// Creates an endpoint; returns it (with its secret).
async fn create_endpoint(app: &TestApp, token: &str, url: &str, types: Value) -> Value {
    expect(
        app,
        token,
        Method::POST,
        "/webhook-endpoints",
        Some(json!({"url": url, "description": "Orders system", "event_types": types})),
        201,
    )
    .await
}

/// An org-admin API key: it stays valid however far the fixed clock is moved, unlike an
/// access token.
async fn admin_key(app: &TestApp, token: &str) -> String {
    let key = expect(
        app,
        token,
        Method::POST,
        "/api-keys",
        Some(json!({"name": "webhook tests", "role": "org_admin"})),
        201,
    )
    .await;
    key["key"].as_str().unwrap().to_owned()
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

/// Moves a new deal from its first stage to the second: a `deal.stage_changed` event.
async fn move_a_deal(app: &TestApp, token: &str, title: &str) -> String {
    let pipelines = expect(app, token, Method::GET, "/pipelines", None, 200).await;
    let sales = pipelines["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["is_default"] == true)
        .unwrap()
        .clone();
    let second = id(&sales["stages"][1]);
    let deal = expect(
        app,
        token,
        Method::POST,
        "/deals",
        Some(json!({"title": title})),
        201,
    )
    .await;
    let deal_id = id(&deal);
    expect(
        app,
        token,
        Method::POST,
        &format!("/deals/{deal_id}/move"),
        Some(json!({"stage_id": second})),
        200,
    )
    .await;
    deal_id
}

async fn delivery(app: &TestApp, token: &str, delivery: &str) -> Value {
    expect(
        app,
        token,
        Method::GET,
        &format!("/webhook-deliveries/{delivery}"),
        None,
        200,
    )
    .await
}

async fn deliveries(app: &TestApp, token: &str, endpoint: &str, query: &str) -> Vec<Value> {
    let page = expect(
        app,
        token,
        Method::GET,
        &format!("/webhook-endpoints/{endpoint}/deliveries{query}"),
        None,
        200,
    )
    .await;
    page["items"].as_array().unwrap().clone()
}

/// Waits until the delivery has had `attempts` tries recorded.
async fn wait_attempts(app: &TestApp, token: &str, id: &str, attempts: i64) -> Value {
    for _ in 0..1000 {
        let found = delivery(app, token, id).await;
        if found["tries"].as_array().unwrap().len() as i64 >= attempts {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("delivery {id} never got {attempts} tries");
}

async fn a_deal_stage_move_is_delivered_signed_and_can_be_replayed(backend: Backend) {
    let clock = FixedClock::new(start());
    let Some(app) = app_with(backend, "webhooks_signed", &clock, true, None).await else {
        return;
    };
    let receiver = Receiver::start(0, false).await;
    let other = Receiver::start(0, false).await;
    let admin = signup(&app, "Mavuno Seeds", "admin@mavuno.example").await;
    let t = admin_key(&app, &token(&admin)).await;

    let endpoint = create_endpoint(&app, &t, &receiver.url(), json!(["deal.stage_changed"])).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        STANDARD.decode(&secret["whsec_".len()..]).unwrap().len(),
        32
    );
    receiver.trust(&secret);
    let endpoint_id = id(&endpoint);
    let payments = create_endpoint(&app, &t, &other.url(), json!(["payment.*"])).await;
    other.trust(payments["secret"].as_str().unwrap());

    let deal = move_a_deal(&app, &t, "40 bags of maize seed").await;
    let seen = receiver.wait_for(1).await;
    let got = &seen[0];
    assert!(got.verified, "{got:?}");
    assert_eq!(got.timestamp, start().timestamp());
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["type"], "deal.stage_changed");
    assert_eq!(body["data"]["deal_id"], deal.as_str());
    assert!(
        body["timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-27T09:00:00")
    );

    let log = deliveries(&app, &t, &endpoint_id, "").await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0]["id"].as_str().unwrap(),
        got.id,
        "webhook-id is the delivery id"
    );
    assert_eq!(log[0]["event_type"], "deal.stage_changed");
    let delivery_id = id(&log[0]);
    let detail = wait_attempts(&app, &t, &delivery_id, 1).await;
    assert_eq!(detail["status"], "succeeded");
    assert_eq!(detail["attempts"], 1);
    assert_eq!(detail["last_status_code"], 200);
    assert_eq!(detail["payload"], body);
    assert_eq!(detail["tries"][0]["status_code"], 200);
    assert_eq!(detail["tries"][0]["response_excerpt"], "ok");
    assert_eq!(
        deliveries(&app, &t, &endpoint_id, "?status=succeeded")
            .await
            .len(),
        1
    );
    assert!(
        deliveries(&app, &t, &endpoint_id, "?status=failed")
            .await
            .is_empty()
    );
    let bad = expect(
        &app,
        &t,
        Method::GET,
        &format!("/webhook-endpoints/{endpoint_id}/deliveries?status=lost"),
        None,
        422,
    )
    .await;
    assert_eq!(field_errors(&bad)[0].0, "status");

    // A replay sends the same message again: same id, same bytes, newly signed.
    clock.advance(Duration::minutes(1));
    let replayed = expect(
        &app,
        &t,
        Method::POST,
        &format!("/webhook-deliveries/{delivery_id}/replay"),
        None,
        202,
    )
    .await;
    assert_eq!(replayed["status"], "pending");
    let seen = receiver.wait_for(2).await;
    assert_eq!(seen[1].id, got.id);
    assert_eq!(seen[1].body, got.body);
    assert_eq!(
        seen[1].timestamp,
        (start() + Duration::minutes(1)).timestamp()
    );
    assert!(seen[1].verified);

    // A test message.
    let test = expect(
        &app,
        &t,
        Method::POST,
        &format!("/webhook-endpoints/{endpoint_id}/test"),
        None,
        202,
    )
    .await;
    assert_eq!(test["event_type"], "webhook.test");
    let seen = receiver.wait_for(3).await;
    let body: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(seen[2].id, id(&test));
    assert!(seen[2].verified);

    // After a rotation both secrets sign for a day; then only the new one.
    let rotated = expect(
        &app,
        &t,
        Method::POST,
        &format!("/webhook-endpoints/{endpoint_id}/rotate-secret"),
        None,
        200,
    )
    .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    receiver.trust_only(&new_secret);
    move_a_deal(&app, &t, "Irrigation kit").await;
    let seen = receiver.wait_for(4).await;
    assert!(seen[3].verified, "signed with the new secret");
    assert_eq!(seen[3].signatures, 2);
    clock.advance(Duration::hours(25));
    move_a_deal(&app, &t, "Greenhouse").await;
    let seen = receiver.wait_for(5).await;
    assert!(seen[4].verified);
    assert_eq!(seen[4].signatures, 1);

    // Nothing matched the payments endpoint.
    assert!(other.seen().is_empty());
    let audit = crate::crm_support::audit_actions(&app, &t, &endpoint_id).await;
    assert!(
        audit.contains(&"webhook_endpoint.create".to_owned()),
        "{audit:?}"
    );
    assert!(
        audit.contains(&"webhook_endpoint.rotate_secret".to_owned()),
        "{audit:?}"
    );
}

async fn a_failing_endpoint_is_retried_on_schedule_then_disabled(backend: Backend) {
    let clock = FixedClock::new(start());
    let Some(app) = app_with(backend, "webhooks_retries", &clock, true, None).await else {
        return;
    };
    let receiver = Receiver::start(0, true).await;
    let admin = signup(&app, "Mavuno Seeds", "admin@mavuno.example").await;
    let t = admin_key(&app, &token(&admin)).await;
    let endpoint = create_endpoint(&app, &t, &receiver.url(), json!(["deal.stage_changed"])).await;
    receiver.trust(endpoint["secret"].as_str().unwrap());
    let endpoint_id = id(&endpoint);

    move_a_deal(&app, &t, "40 bags of maize seed").await;
    receiver.wait_for(1).await;
    let delivery_id = id(&deliveries(&app, &t, &endpoint_id, "").await[0]);
    let first = wait_attempts(&app, &t, &delivery_id, 1).await;
    assert_eq!(first["status"], "pending");
    assert_eq!(first["last_status_code"], 500);
    assert_eq!(first["tries"][0]["response_excerpt"], "receiver is down");

    // A pending delivery is not replayed: it is sent at its next try.
    let conflict = expect(
        &app,
        &t,
        Method::POST,
        &format!("/webhook-deliveries/{delivery_id}/replay"),
        None,
        409,
    )
    .await;
    assert_eq!(conflict["error"]["code"], "conflict");

    let schedule = [
        Duration::seconds(5),
        Duration::minutes(5),
        Duration::minutes(30),
        Duration::hours(2),
        Duration::hours(5),
        Duration::hours(10),
        Duration::hours(10),
        Duration::hours(10),
        Duration::hours(10),
        Duration::hours(10),
        Duration::hours(10),
    ];
    let mut due = start();
    for (i, wait) in schedule.iter().enumerate() {
        let tries = i + 1;
        due += *wait;
        let pending = delivery(&app, &t, &delivery_id).await;
        assert_eq!(pending["status"], "pending");
        assert_eq!(
            pending["next_attempt_at"]
                .as_str()
                .unwrap()
                .parse::<DateTime<Utc>>()
                .unwrap(),
            due
        );
        // A microsecond early: nothing is due.
        clock.set(due - Duration::microseconds(1));
        assert_eq!(app.state.webhooks.deliver_due().await.unwrap(), 0);
        assert_eq!(receiver.seen().len(), tries);
        // On time: the next try.
        clock.set(due);
        app.state.webhooks.deliver_due().await.unwrap();
        receiver.wait_for(tries + 1).await;
        let after = wait_attempts(&app, &t, &delivery_id, tries as i64 + 1).await;
        let started = after["tries"][tries]["started_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap();
        assert_eq!(started, due, "try {} ran exactly on schedule", tries + 1);
    }
    let given_up = delivery(&app, &t, &delivery_id).await;
    assert_eq!(given_up["status"], "failed");
    assert_eq!(given_up["attempts"], 12);
    assert!(given_up["next_attempt_at"].is_null());
    assert!(
        receiver
            .seen()
            .iter()
            .all(|r| r.verified && r.id == delivery_id)
    );
    let still = expect(
        &app,
        &t,
        Method::GET,
        &format!("/webhook-endpoints/{endpoint_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(still["enabled"], true, "under five days of failures");
    assert_eq!(
        still["failing_since"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        start()
    );

    // Five days after the first failure, the next failure disables it.
    clock.set(start() + Duration::days(5) + Duration::seconds(1));
    move_a_deal(&app, &t, "Irrigation kit").await;
    let mut disabled = Value::Null;
    for _ in 0..1000 {
        disabled = expect(
            &app,
            &t,
            Method::GET,
            &format!("/webhook-endpoints/{endpoint_id}"),
            None,
            200,
        )
        .await;
        if disabled["enabled"] == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(disabled["enabled"], false, "{disabled}");
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("5 days")
    );
    let events = edge_server::events::about(
        app.db(),
        edge_core::OrgId::from_uuid(
            admin["organization"]["id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        ),
        endpoint_id.parse().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "webhook_endpoint.disabled");
    assert_eq!(events[0].data["endpoint_id"], endpoint_id.as_str());
    assert_eq!(events[0].data["url"], receiver.url().as_str());
    let audit = crate::crm_support::audit_actions(&app, &t, &endpoint_id).await;
    assert!(
        audit.contains(&"webhook_endpoint.disable".to_owned()),
        "{audit:?}"
    );

    // A disabled endpoint gets no tests and no replays, until it is enabled again.
    expect(
        &app,
        &t,
        Method::POST,
        &format!("/webhook-endpoints/{endpoint_id}/test"),
        None,
        409,
    )
    .await;
    expect(
        &app,
        &t,
        Method::POST,
        &format!("/webhook-deliveries/{delivery_id}/replay"),
        None,
        409,
    )
    .await;
    let enabled = expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/webhook-endpoints/{endpoint_id}"),
        Some(json!({"enabled": true})),
        200,
    )
    .await;
    assert_eq!(enabled["enabled"], true);
    assert!(enabled["failing_since"].is_null());
    assert!(enabled["disabled_reason"].is_null());
    expect(
        &app,
        &t,
        Method::POST,
        &format!("/webhook-deliveries/{delivery_id}/replay"),
        None,
        202,
    )
    .await;
}

async fn private_addresses_are_refused_unless_allowed(backend: Backend) {
    let clock = FixedClock::new(start());
    let Some(app) = app_with(backend, "webhooks_guard", &clock, false, None).await else {
        return;
    };
    let receiver = Receiver::start(0, false).await;
    let admin = signup(&app, "Mavuno Seeds", "admin@mavuno.example").await;
    let t = token(&admin);
    for url in [
        receiver.url(),
        "http://localhost:9/hook".to_owned(),
        "http://10.0.0.8/hook".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::ffff:192.168.1.1]/hook".to_owned(),
        "http://100.64.1.1/hook".to_owned(),
    ] {
        let refused = expect(
            &app,
            &t,
            Method::POST,
            "/webhook-endpoints",
            Some(json!({"url": url, "event_types": ["*"]})),
            422,
        )
        .await;
        assert_eq!(
            refused["error"]["code"], "address_not_allowed",
            "{url}: {refused}"
        );
        assert_eq!(refused["error"]["details"]["fields"][0]["field"], "url");
    }
    let invalid = expect(
        &app,
        &t,
        Method::POST,
        "/webhook-endpoints",
        Some(
            json!({"url": "ftp://files.example.com/x", "event_types": ["deal.nope", "payment.*"]}),
        ),
        422,
    )
    .await;
    let fields: Vec<String> = field_errors(&invalid).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["url", "event_types[0]"]);
    let missing = expect(
        &app,
        &t,
        Method::POST,
        "/webhook-endpoints",
        Some(json!({})),
        422,
    )
    .await;
    let fields: Vec<String> = field_errors(&missing).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["url", "event_types"]);
    let empty = expect(
        &app,
        &t,
        Method::POST,
        "/webhook-endpoints",
        Some(json!({"url": "https://93.184.215.14/hook", "event_types": []})),
        422,
    )
    .await;
    assert_eq!(field_errors(&empty)[0].0, "event_types");

    // A public address is accepted; changing it to a private one is refused.
    let endpoint = create_endpoint(
        &app,
        &t,
        "https://93.184.215.14/hook",
        json!(["ticket.overdue"]),
    )
    .await;
    let endpoint_id = id(&endpoint);
    let refused = expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/webhook-endpoints/{endpoint_id}"),
        Some(json!({"url": "http://192.168.0.10/hook"})),
        422,
    )
    .await;
    assert_eq!(refused["error"]["code"], "address_not_allowed");

    // The check runs again at send time: an address that became private (as a name's DNS
    // answer can) is refused and nothing reaches it.
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
    edge_server::entities::webhook_endpoints::Entity::update_many()
        .col_expr(
            edge_server::entities::webhook_endpoints::Column::Url,
            Expr::value(receiver.url()),
        )
        .filter(
            edge_server::entities::webhook_endpoints::Column::Id
                .eq(endpoint_id.parse::<uuid::Uuid>().unwrap()),
        )
        .exec(app.db())
        .await
        .unwrap();
    let test = expect(
        &app,
        &t,
        Method::POST,
        &format!("/webhook-endpoints/{endpoint_id}/test"),
        None,
        202,
    )
    .await;
    let tried = wait_attempts(&app, &t, &id(&test), 1).await;
    let error = tried["tries"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("address_not_allowed"), "{error}");
    assert!(tried["tries"][0]["status_code"].is_null());
    assert_eq!(tried["status"], "pending");
    assert!(receiver.seen().is_empty());
}

async fn endpoints_are_isolated_and_their_secret_is_shown_once(backend: Backend) {
    let clock = FixedClock::new(start());
    let Some(app) = app_with(backend, "webhooks_isolation", &clock, true, None).await else {
        return;
    };
    let receiver = Receiver::start(0, false).await;
    let admin = signup(&app, "Mavuno Seeds", "admin@mavuno.example").await;
    let t = token(&admin);
    let endpoint = create_endpoint(&app, &t, &receiver.url(), json!(["*"])).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    receiver.trust(&secret);
    let endpoint_id = id(&endpoint);

    for path in [
        "/webhook-endpoints".to_owned(),
        format!("/webhook-endpoints/{endpoint_id}"),
    ] {
        let response = crate::tenancy::send(&app, &t, Method::GET, &path, None).await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(!text.contains(&secret), "{path} shows the secret");
        assert!(!text.contains("secret\""), "{path}: {text}");
    }
    let patched = expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/webhook-endpoints/{endpoint_id}"),
        Some(json!({"description": null, "event_types": ["payment.*", "deal.stage_changed", "payment.*"]})),
        200,
    )
    .await;
    assert!(patched["description"].is_null());
    assert_eq!(
        patched["event_types"],
        json!(["payment.*", "deal.stage_changed"])
    );
    assert!(patched.get("secret").is_none());

    // The secret is sealed at rest, not stored as given.
    use sea_orm::EntityTrait as _;
    let rows = edge_server::entities::webhook_endpoints::Entity::find()
        .all(app.db())
        .await
        .unwrap();
    assert!(
        rows.iter()
            .all(|r| !r.sealed.contains(&secret["whsec_".len()..]))
    );

    let test = expect(
        &app,
        &t,
        Method::POST,
        &format!("/webhook-endpoints/{endpoint_id}/test"),
        None,
        202,
    )
    .await;
    receiver.wait_for(1).await;
    let delivery_id = id(&test);
    wait_attempts(&app, &t, &delivery_id, 1).await;

    // Another organization sees none of it.
    let other = signup(&app, "Shamba Fresh", "admin@shamba.example").await;
    let o = token(&other);
    let listed = expect(&app, &o, Method::GET, "/webhook-endpoints", None, 200).await;
    assert!(listed["items"].as_array().unwrap().is_empty());
    for (method, path, body) in [
        (
            Method::GET,
            format!("/webhook-endpoints/{endpoint_id}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/webhook-endpoints/{endpoint_id}"),
            Some(json!({"enabled": false})),
        ),
        (
            Method::POST,
            format!("/webhook-endpoints/{endpoint_id}/rotate-secret"),
            None,
        ),
        (
            Method::POST,
            format!("/webhook-endpoints/{endpoint_id}/test"),
            None,
        ),
        (
            Method::GET,
            format!("/webhook-endpoints/{endpoint_id}/deliveries"),
            None,
        ),
        (
            Method::GET,
            format!("/webhook-deliveries/{delivery_id}"),
            None,
        ),
        (
            Method::POST,
            format!("/webhook-deliveries/{delivery_id}/replay"),
            None,
        ),
        (
            Method::DELETE,
            format!("/webhook-endpoints/{endpoint_id}"),
            None,
        ),
    ] {
        let refused = expect(&app, &o, method.clone(), &path, body, 404).await;
        assert_eq!(refused["error"]["code"], "not_found", "{method} {path}");
    }
    // An automation's "call a webhook" goes to the one endpoint it names, whatever that
    // endpoint subscribes to, and only in its own organization.
    let automation = Receiver::start(0, false).await;
    let named = create_endpoint(&app, &t, &automation.url(), json!(["ticket.overdue"])).await;
    automation.trust(named["secret"].as_str().unwrap());
    let foreign = create_endpoint(&app, &o, &automation.url(), json!(["*"])).await;
    let org_of = |session: &Value| {
        edge_core::OrgId::from_uuid(
            session["organization"]["id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        )
    };
    for (org, endpoint) in [(org_of(&other), id(&named)), (org_of(&admin), id(&named))] {
        edge_server::events::record(
            app.db(),
            org,
            "automation.webhook",
            ("automation_rule", uuid::Uuid::now_v7()),
            json!({"endpoint_id": endpoint, "rule_id": uuid::Uuid::now_v7(), "run_id": uuid::Uuid::now_v7(), "trigger": {"type": "ticket.created"}}),
            edge_core::Clock::now(&clock),
        )
        .await
        .unwrap();
    }
    let got = automation.wait_for(1).await;
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "automation.webhook");
    assert_eq!(body["data"]["endpoint_id"], id(&named).as_str());
    assert!(got[0].verified);
    let foreign_log = deliveries(&app, &o, &id(&foreign), "").await;
    assert!(
        foreign_log.is_empty(),
        "the other organization's event named no endpoint of its own"
    );
    assert_eq!(
        deliveries(&app, &t, &endpoint_id, "").await.len(),
        1,
        "not to the others"
    );

    // Nothing changed for the owner.
    let mine = expect(
        &app,
        &t,
        Method::GET,
        &format!("/webhook-endpoints/{endpoint_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(mine["enabled"], true);
    assert_eq!(receiver.seen().len(), 1);

    // Disabling cancels nothing already sent; deleting takes the log with it.
    let disabled = expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/webhook-endpoints/{endpoint_id}"),
        Some(json!({"enabled": false})),
        200,
    )
    .await;
    assert_eq!(disabled["disabled_reason"], "disabled by a member");
    expect(
        &app,
        &t,
        Method::DELETE,
        &format!("/webhook-endpoints/{endpoint_id}"),
        None,
        204,
    )
    .await;
    expect(
        &app,
        &t,
        Method::GET,
        &format!("/webhook-endpoints/{endpoint_id}"),
        None,
        404,
    )
    .await;
    expect(
        &app,
        &t,
        Method::GET,
        &format!("/webhook-deliveries/{delivery_id}"),
        None,
        404,
    )
    .await;
}

async fn a_pending_delivery_survives_a_restart(backend: Backend) {
    let clock = FixedClock::new(start());
    let Some(app) = app_with(backend, "webhooks_restart", &clock, true, None).await else {
        return;
    };
    let receiver = Receiver::start(1, false).await;
    let admin = signup(&app, "Mavuno Seeds", "admin@mavuno.example").await;
    let t = admin_key(&app, &token(&admin)).await;
    let endpoint = create_endpoint(&app, &t, &receiver.url(), json!(["deal.stage_changed"])).await;
    receiver.trust(endpoint["secret"].as_str().unwrap());
    let endpoint_id = id(&endpoint);
    move_a_deal(&app, &t, "40 bags of maize seed").await;
    receiver.wait_for(1).await;
    let delivery_id = id(&deliveries(&app, &t, &endpoint_id, "").await[0]);
    wait_attempts(&app, &t, &delivery_id, 1).await;

    let kept = app.stop_keeping_data().await;
    let later = FixedClock::new(start() + Duration::seconds(10));
    let app = app_with(backend, "webhooks_restart", &later, true, Some(kept))
        .await
        .unwrap();
    let seen = receiver.wait_for(2).await;
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].id, delivery_id);
    assert_eq!(seen[1].body, seen[0].body);
    assert!(seen[1].verified);
    let detail = wait_attempts(&app, &t, &delivery_id, 2).await;
    assert_eq!(detail["status"], "succeeded");
    assert_eq!(detail["attempts"], 2);
}
