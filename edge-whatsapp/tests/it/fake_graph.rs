//! End to end against FakeGraph: sends, signed status webhooks into an axum receiver that
//! uses the `VerifiedWebhook` extractor, scripted failures, media, phone-number lookups,
//! numbers added while running, the bind address, and duplicated or reversed statuses.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use edge_whatsapp::axum::{VerifiedWebhook, handshake_response};
use edge_whatsapp::fake::{FakeEvent, FakeGraph, FakeGraphBuilder, Outcome};
use edge_whatsapp::message::{Parameter, SendMessage, Template, Text};
use edge_whatsapp::webhook::{
    DeliveryStatus, PricingCategory, StatusUpdate, WebhookEvent, WebhookVerifier,
};
use edge_whatsapp::{
    Credentials, Error, ErrorClass, MediaId, MessageId, PhoneNumber, PhoneNumberId, RetryScope,
    WabaId,
};
use secrecy::SecretString;
use tokio::sync::mpsc;

use crate::support::*;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Receiver {
    verifier: WebhookVerifier,
    events: mpsc::UnboundedSender<WebhookEvent>,
}

impl FromRef<Receiver> for WebhookVerifier {
    fn from_ref(r: &Receiver) -> Self {
        r.verifier.clone()
    }
}

impl FromRef<Receiver> for mpsc::UnboundedSender<WebhookEvent> {
    fn from_ref(r: &Receiver) -> Self {
        r.events.clone()
    }
}

async fn receive(
    State(tx): State<mpsc::UnboundedSender<WebhookEvent>>,
    webhook: VerifiedWebhook,
) -> StatusCode {
    for event in webhook.events().unwrap_or_default() {
        let _ = tx.send(event);
    }
    StatusCode::OK
}

async fn verify(
    State(verifier): State<WebhookVerifier>,
    RawQuery(q): RawQuery,
) -> axum::response::Response {
    handshake_response(&verifier, q.as_deref())
}

struct Setup {
    fake: FakeGraph,
    creds: Credentials,
    client: edge_whatsapp::WhatsAppClient,
    events: mpsc::UnboundedReceiver<WebhookEvent>,
    receiver_url: String,
}

async fn setup() -> Setup {
    setup_with(|builder| builder).await
}

/// The receiver and a fake with two numbers, adjusted by `configure`.
async fn setup_with(configure: impl FnOnce(FakeGraphBuilder) -> FakeGraphBuilder) -> Setup {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Receiver {
        verifier: WebhookVerifier::new(app_secret(), SecretString::from("verify-token")),
        events: tx,
    };
    let app = Router::new()
        .route("/webhooks/whatsapp", get(verify).post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_url = format!(
        "http://{}/webhooks/whatsapp",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let builder = FakeGraph::builder()
        .app_secret(app_secret())
        .number(TENANT_A_PNID, TENANT_A_WABA, "15550101234")
        .number(TENANT_B_PNID, TENANT_B_WABA, "447700900123")
        .valid_token("token-a")
        .valid_token("token-b")
        .webhook_url(&receiver_url)
        .status_delay(Duration::from_millis(5));
    let fake = configure(builder).start().await.unwrap();
    let client = fake.client().unwrap();
    let creds =
        Credentials::new(TENANT_A_PNID, SecretString::from("token-a")).waba_id(TENANT_A_WABA);
    Setup {
        fake,
        creds,
        client,
        events: rx,
        receiver_url,
    }
}

async fn next_statuses(
    rx: &mut mpsc::UnboundedReceiver<WebhookEvent>,
    n: usize,
) -> Vec<(WebhookEvent, StatusUpdate)> {
    let mut out = Vec::new();
    while out.len() < n {
        let event = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        if let Some(s) = event.as_status().cloned() {
            out.push((event, s));
        }
    }
    out
}

#[tokio::test]
async fn a_send_is_followed_by_signed_sent_delivered_read_webhooks() {
    let mut s = setup().await;
    let template = Template::new("order_shipped_v2", "en_US")
        .body(vec![Parameter::named("customer_name", "Dana")]);
    let response = SendMessage::new("+12025550147", template)
        .biz_opaque_callback_data("send:42")
        .send(&s.client, &s.creds)
        .await
        .unwrap();
    let wamid = response.message_id().unwrap().clone();
    assert_eq!(
        response.messages[0].message_status.as_deref(),
        Some("accepted")
    );

    let statuses = next_statuses(&mut s.events, 3).await;
    let kinds: Vec<_> = statuses.iter().map(|(_, st)| st.status.clone()).collect();
    assert_eq!(
        kinds,
        [
            DeliveryStatus::Sent,
            DeliveryStatus::Delivered,
            DeliveryStatus::Read
        ]
    );
    for (event, status) in &statuses {
        assert_eq!(status.id, wamid);
        assert_eq!(status.biz_opaque_callback_data.as_deref(), Some("send:42"));
        assert_eq!(
            event.routing.phone_number_id,
            Some(PhoneNumberId::new(TENANT_A_PNID))
        );
        assert_eq!(event.routing.waba_id, Some(WabaId::new(TENANT_A_WABA)));
        assert_eq!(status.recipient_id.as_deref(), Some("12025550147"));
    }
    assert_eq!(
        statuses[0].1.pricing.as_ref().unwrap().category,
        Some(PricingCategory::Utility)
    );
    assert!(statuses[2].1.pricing.is_none());
    // Every webhook was accepted by the verifying extractor.
    let deliveries = s.fake.wait_for_deliveries(3, WAIT).await;
    assert!(deliveries.iter().all(|d| d.response_status == Some(200)));
    assert!(deliveries.iter().all(|d| d.url == s.receiver_url));
}

#[tokio::test]
async fn a_failed_status_carries_the_chosen_code() {
    let mut s = setup().await;
    s.fake
        .script("+12025550188", Outcome::Failed { code: 131026 });
    let response = SendMessage::new("+1 (202) 555-0188", Text::new("hi"))
        .biz_opaque_callback_data("send:43")
        .send(&s.client, &s.creds)
        .await
        .unwrap();
    let (_, status) = next_statuses(&mut s.events, 1).await.remove(0);
    assert_eq!(&status.id, response.message_id().unwrap());
    assert_eq!(status.status, DeliveryStatus::Failed);
    assert_eq!(status.errors[0].code, Some(131026));
    assert_eq!(status.error_class(), Some(ErrorClass::Undeliverable));
    assert_eq!(status.biz_opaque_callback_data.as_deref(), Some("send:43"));
}

#[tokio::test]
async fn scripted_failures_map_to_the_right_classification() {
    let s = setup().await;
    let send = |to: &'static str| {
        let client = s.client.clone();
        let creds = s.creds.clone();
        async move {
            SendMessage::new(to, Text::new("hi"))
                .send(&client, &creds)
                .await
        }
    };
    s.fake.script("+254700000001", Outcome::WindowClosed);
    s.fake.script("+254700000002", Outcome::Undeliverable);
    s.fake.script("+254700000003", Outcome::RateLimited);
    s.fake.script("+254700000004", Outcome::PairRateLimited);
    s.fake.script("+254700000005", Outcome::InvalidToken);
    s.fake.script(
        "+254700000006",
        Outcome::GraphError {
            http_status: 400,
            code: 132012,
            message: "(#132012) Parameter format does not match".into(),
        },
    );

    let e = send("+254700000001").await.unwrap_err();
    assert!(
        e.is_outside_service_window() && !e.is_retryable() && !e.may_have_been_sent(),
        "{e:?}"
    );
    let e = send("+254700000002").await.unwrap_err();
    assert!(e.is_undeliverable() && !e.is_retryable(), "{e:?}");
    let e = send("+254700000003").await.unwrap_err();
    assert!(e.is_retryable() && e.is_rate_limited(), "{e:?}");
    assert_eq!(e.class(), ErrorClass::RetryLater(RetryScope::Number));
    let e = send("+254700000004").await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::RetryLater(RetryScope::Pair));
    assert_eq!(e.retry_delay(1), Some(Duration::from_secs(4)));
    let e = send("+254700000005").await.unwrap_err();
    assert!(e.is_auth(), "{e:?}");
    assert!(matches!(
        e,
        Error::Api {
            status: 401,
            code: 190,
            ..
        }
    ));
    let e = send("+254700000006").await.unwrap_err();
    assert!(e.is_bad_template_parameters(), "{e:?}");

    // A one-off script applies once, then the default outcome comes back.
    s.fake.script_once("+254700000007", Outcome::RateLimited);
    assert!(send("+254700000007").await.unwrap_err().is_retryable());
    assert!(send("+254700000007").await.is_ok());

    // A revoked or unknown token, and a number the fake does not know.
    s.fake.revoke_token("token-a");
    assert!(send("+254700000008").await.unwrap_err().is_auth());
    let other = Credentials::new("999", SecretString::from("token-b"));
    let e = SendMessage::new("+254700000009", Text::new("hi"))
        .send(&s.client, &other)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(100));
    // Failed sends produce no webhooks.
    let requests = s.fake.requests();
    assert!(requests.iter().all(|r| r.had_bearer));
    assert!(s.fake.unmatched().is_empty());
}

#[tokio::test]
async fn two_tenants_share_one_client_and_route_apart() {
    let mut s = setup().await;
    let creds_b = Credentials::new(TENANT_B_PNID, SecretString::from("token-b"));
    s.fake.script("+447700900789", Outcome::Sent);
    s.fake.script("+12025550147", Outcome::Sent);
    SendMessage::new("+12025550147", Text::new("a"))
        .send(&s.client, &s.creds)
        .await
        .unwrap();
    SendMessage::new("+447700900789", Text::new("b"))
        .send(&s.client, &creds_b)
        .await
        .unwrap();
    let statuses = next_statuses(&mut s.events, 2).await;
    let routes: Vec<_> = statuses
        .iter()
        .map(|(e, _)| {
            (
                e.routing.phone_number_id.clone().unwrap(),
                e.routing.waba_id.clone().unwrap(),
            )
        })
        .collect();
    assert!(routes.contains(&(
        PhoneNumberId::new(TENANT_A_PNID),
        WabaId::new(TENANT_A_WABA)
    )));
    assert!(routes.contains(&(
        PhoneNumberId::new(TENANT_B_PNID),
        WabaId::new(TENANT_B_WABA)
    )));
}

#[tokio::test]
async fn an_inbound_message_arrives_signed_and_typed() {
    let mut s = setup().await;
    let id = s.fake.send_inbound_text(
        TENANT_A_PNID,
        "254712345678",
        "Amina",
        "Habari? café \u{1f64f}",
    );
    let event = tokio::time::timeout(WAIT, s.events.recv())
        .await
        .unwrap()
        .unwrap();
    let message = event.as_message().unwrap();
    assert_eq!(message.id, id);
    assert_eq!(message.text(), Some("Habari? café \u{1f64f}"));
    assert_eq!(
        message.contact.as_ref().unwrap().name.as_deref(),
        Some("Amina")
    );
    // Signed over Meta-style escaped bytes.
    let delivery = s.fake.wait_for_deliveries(1, WAIT).await.remove(0);
    assert!(delivery.body.is_ascii());
    assert!(String::from_utf8_lossy(&delivery.body).contains("caf\\u00e9 \\ud83d\\ude4f"));
}

#[tokio::test]
async fn the_extractor_rejects_bad_signatures_and_the_handshake_answers() {
    let s = setup().await;
    let http = raw_http_client();
    let body = INBOUND_TEXT.as_bytes().to_vec();
    let post = |signature: Option<&'static str>, body: Vec<u8>| {
        let mut req = http.post(&s.receiver_url).body(body);
        if let Some(sig) = signature {
            req = req.header("X-Hub-Signature-256", sig);
        }
        req.send()
    };
    assert_eq!(
        post(Some(EXPECTED_SIGNATURE), body.clone())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(post(None, body.clone()).await.unwrap().status(), 401);
    let mut with_newline = body.clone();
    with_newline.push(b'\n');
    assert_eq!(
        post(Some(EXPECTED_SIGNATURE), with_newline)
            .await
            .unwrap()
            .status(),
        401
    );

    // Meta's payloads go up to 3 MB, over axum's default 2 MB body limit.
    let big = format!(
        "{{\"object\":\"whatsapp_business_account\",\"entry\":[],\"pad\":\"{}\"}}",
        "x".repeat(3_000_000)
    )
    .into_bytes();
    let signature = edge_whatsapp::webhook::sign(&app_secret(), &big);
    let response = http
        .post(&s.receiver_url)
        .header("x-hub-signature-256", signature)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let ok = http
        .get(format!(
            "{}?hub.mode=subscribe&hub.verify_token=verify-token&hub.challenge=123",
            s.receiver_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "123");
    let refused = http
        .get(format!(
            "{}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=123",
            s.receiver_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    drop(s.fake);
}

#[tokio::test]
async fn media_upload_info_download_and_delete() {
    let s = setup().await;
    let png = b"\x89PNG\r\n\x1a\nfake image bytes".to_vec();
    let id = s
        .client
        .upload_media(&s.creds, png.clone(), "image/png", "cake.png")
        .await
        .unwrap();
    let info = s.client.media_info(&s.creds, &id).await.unwrap();
    assert_eq!(info.mime_type.as_deref(), Some("image/png"));
    assert_eq!(info.file_size, Some(png.len() as u64));
    let downloaded = s.client.download_media(&s.creds, &id).await.unwrap();
    assert_eq!(downloaded.bytes.as_ref(), png.as_slice());
    assert_eq!(downloaded.content_type.as_deref(), Some("image/png"));
    // The download carried the bearer token.
    let requests = s.fake.requests();
    let download = requests
        .iter()
        .find(|r| r.path.starts_with("/fake-media/"))
        .unwrap();
    assert!(download.had_bearer);
    let upload = requests
        .iter()
        .find(|r| r.path.ends_with("/media"))
        .unwrap();
    assert!(
        upload
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("multipart/form-data")
    );
    assert!(s.client.delete_media(&s.creds, &id).await.unwrap());
    let e = s
        .client
        .media_info(&s.creds, &MediaId::new("404404"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(100));
    assert!(matches!(
        s.client
            .upload_media(&s.creds, Vec::new(), "image/png", "empty.png")
            .await,
        Err(Error::InvalidRequest { .. })
    ));
}

#[tokio::test]
async fn the_pacer_lets_callers_pace_each_number() {
    let s = setup().await;
    let pacer = edge_whatsapp::Pacer::new(1000);
    let number = s.creds.phone_number_id().clone();
    for i in 0..5 {
        pacer.acquire(&number).await;
        SendMessage::new("+12025550147", Text::new(format!("{i}")))
            .send(&s.client, &s.creds)
            .await
            .unwrap();
    }
    assert_eq!(s.fake.message_requests().len(), 5);
    assert_eq!(pacer.rate(&number), 1000);
    assert_eq!(pacer.rate(&PhoneNumberId::new(TENANT_B_PNID)), 1000);
}

/// `(message id, status)` of every status in the deliveries, in the order posted.
fn posted_statuses(deliveries: &[edge_whatsapp::fake::Delivery]) -> Vec<(MessageId, String)> {
    deliveries
        .iter()
        .flat_map(|d| edge_whatsapp::webhook::parse_events(&d.body).unwrap())
        .filter_map(|e| {
            e.as_status()
                .map(|s| (s.id.clone(), s.status.as_str().to_owned()))
        })
        .collect()
}

async fn send_to(s: &Setup, to: &str) -> MessageId {
    SendMessage::new(to, Text::new("hi"))
        .send(&s.client, &s.creds)
        .await
        .unwrap()
        .message_id()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_registered_number_is_looked_up_and_media_ids_still_resolve() {
    let s = setup_with(|b| b.number_throughput(TENANT_B_PNID, "HIGH")).await;
    let number = PhoneNumber::fetch(&s.client, &s.creds).await.unwrap();
    assert_eq!(
        number,
        PhoneNumber {
            id: PhoneNumberId::new(TENANT_A_PNID),
            display_phone_number: "15550101234".into(),
            verified_name: Some("Fake Business 1234".into()),
            quality_rating: Some("GREEN".into()),
            code_verification_status: Some("VERIFIED".into()),
            name_status: Some("APPROVED".into()),
            throughput_level: Some("STANDARD".into()),
            platform_type: Some("CLOUD_API".into()),
            is_on_biz_app: Some(false),
        }
    );
    assert_eq!(number.messages_per_second(), 80);

    // The number set to HIGH on the builder reads as 1000/s.
    let creds_b = Credentials::new(TENANT_B_PNID, SecretString::from("token-b"));
    let high = s.client.phone_number(&creds_b).await.unwrap();
    assert_eq!(high.throughput_level.as_deref(), Some("HIGH"));
    assert_eq!(high.verified_name.as_deref(), Some("Fake Business 0123"));
    assert_eq!(high.messages_per_second(), 1000);

    // Only the fields asked for (and the id); a field it does not know is code 100.
    let http = raw_http_client();
    let get = |query: &'static str| {
        http.get(format!(
            "{}/v24.0/{TENANT_A_PNID}{query}",
            s.fake.base_url()
        ))
        .bearer_auth("token-a")
        .send()
    };
    let only: serde_json::Value = get("?fields=name_status,throughput")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        only,
        serde_json::json!({
            "id": TENANT_A_PNID,
            "name_status": "APPROVED",
            "throughput": { "level": "STANDARD" },
        })
    );
    let refused = get("?fields=id,favourite_colour").await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);

    // Media lookups go on working next to number lookups.
    let id = s
        .client
        .upload_media(
            &s.creds,
            b"%PDF-1.7 invoice".to_vec(),
            "application/pdf",
            "inv.pdf",
        )
        .await
        .unwrap();
    let info = s.client.media_info(&s.creds, &id).await.unwrap();
    assert_eq!(info.id, id);
    assert_eq!(info.mime_type.as_deref(), Some("application/pdf"));

    // An id that is neither is code 100; a revoked token is 190.
    let unknown = Credentials::new("987654321", SecretString::from("token-a"));
    let e = PhoneNumber::fetch(&s.client, &unknown).await.unwrap_err();
    assert_eq!(e.code(), Some(100));
    assert_eq!(e.class(), ErrorClass::InvalidRequest);
    s.fake.revoke_token("token-a");
    let e = PhoneNumber::fetch(&s.client, &s.creds).await.unwrap_err();
    assert!(e.is_auth(), "{e:?}");
    assert!(s.fake.unmatched().is_empty());
}

#[tokio::test]
async fn numbers_added_after_start_send_and_are_looked_up() {
    let mut s = setup().await;
    let creds = Credentials::new("130000000000042", SecretString::from("token-a"));
    let e = PhoneNumber::fetch(&s.client, &creds).await.unwrap_err();
    assert_eq!(e.code(), Some(100));
    let e = SendMessage::new("+254711000111", Text::new("hi"))
        .send(&s.client, &creds)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(100));

    s.fake
        .add_number("130000000000042", "230000000000042", "+254 711 000 042");
    let number = PhoneNumber::fetch(&s.client, &creds).await.unwrap();
    assert_eq!(number.display_phone_number, "+254 711 000 042");
    assert_eq!(number.verified_name.as_deref(), Some("Fake Business 0042"));
    assert_eq!(number.messages_per_second(), 80);
    s.fake.set_number_throughput("130000000000042", "HIGH");
    let number = PhoneNumber::fetch(&s.client, &creds).await.unwrap();
    assert_eq!(number.messages_per_second(), 1000);

    s.fake.script("+254711000111", Outcome::Sent);
    let sent = SendMessage::new("+254711000111", Text::new("hi"))
        .send(&s.client, &creds)
        .await
        .unwrap();
    let (event, status) = next_statuses(&mut s.events, 1).await.remove(0);
    assert_eq!(&status.id, sent.message_id().unwrap());
    assert_eq!(
        event.routing.phone_number_id,
        Some(PhoneNumberId::new("130000000000042"))
    );
    assert_eq!(event.routing.waba_id, Some(WabaId::new("230000000000042")));
}

#[tokio::test]
async fn the_bind_address_is_used_and_a_taken_one_is_an_error() {
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let fake = FakeGraph::builder()
        .bind(addr)
        .number(TENANT_A_PNID, TENANT_A_WABA, "15550101234")
        .start()
        .await
        .unwrap();
    assert_eq!(fake.addr(), addr);
    assert_eq!(fake.base_url(), format!("http://127.0.0.1:{port}"));
    let creds = Credentials::new(TENANT_A_PNID, SecretString::from("any"));
    let number = PhoneNumber::fetch(&fake.client().unwrap(), &creds)
        .await
        .unwrap();
    assert_eq!(number.display_phone_number, "15550101234");

    // The address is now taken.
    let e = FakeGraph::builder().bind(addr).start().await.unwrap_err();
    assert!(
        matches!(&e, Error::Connect { message } if message.contains(&format!("cannot listen on {addr}"))),
        "{e:?}"
    );

    // On every interface, clients are pointed at the loopback address.
    let any = FakeGraph::builder()
        .bind(SocketAddr::from(([0, 0, 0, 0], 0)))
        .start()
        .await
        .unwrap();
    assert!(any.addr().ip().is_unspecified());
    assert_eq!(
        any.base_url(),
        format!("http://127.0.0.1:{}", any.addr().port())
    );
}

#[tokio::test]
async fn duplicate_statuses_post_every_status_twice_until_turned_off() {
    let s = setup_with(|b| b.duplicate_statuses(true)).await;
    let first = send_to(&s, "+12025550147").await;
    let deliveries = s.fake.wait_for_deliveries(6, WAIT).await;
    let expected: Vec<(MessageId, String)> =
        ["sent", "sent", "delivered", "delivered", "read", "read"]
            .iter()
            .map(|st| (first.clone(), (*st).to_owned()))
            .collect();
    assert_eq!(posted_statuses(&deliveries), expected);
    for pair in deliveries.chunks(2) {
        assert_eq!(pair[0].body, pair[1].body);
        assert_eq!(pair[0].signature, pair[1].signature);
        assert_eq!(pair[0].response_status, Some(200));
    }

    // Turned off while running: the next send's statuses come once each. A last send with
    // one status marks the end, since the queue keeps order.
    s.fake.duplicate_statuses(false);
    let second = send_to(&s, "+12025550147").await;
    s.fake.script("+12025550148", Outcome::Sent);
    let last = send_to(&s, "+12025550148").await;
    let deliveries = s.fake.wait_for_deliveries(10, WAIT).await;
    assert_eq!(
        posted_statuses(&deliveries[6..]),
        [
            (second.clone(), "sent".to_owned()),
            (second.clone(), "delivered".to_owned()),
            (second, "read".to_owned()),
            (last, "sent".to_owned()),
        ]
    );
}

#[tokio::test]
async fn reverse_statuses_post_each_messages_statuses_newest_first_and_together() {
    let mut s = setup().await;
    s.fake.reverse_statuses(true);
    // Concurrent sends: each message's statuses still arrive together.
    let (a, b, c) = tokio::join!(
        send_to(&s, "+12025550147"),
        send_to(&s, "+12025550149"),
        send_to(&s, "+12025550150"),
    );
    let deliveries = s.fake.wait_for_deliveries(9, WAIT).await;
    let posted = posted_statuses(&deliveries);
    let mut seen = Vec::new();
    for chunk in posted.chunks(3) {
        let id = chunk[0].0.clone();
        assert_eq!(
            chunk,
            [
                (id.clone(), "read".to_owned()),
                (id.clone(), "delivered".to_owned()),
                (id.clone(), "sent".to_owned()),
            ]
        );
        seen.push(id);
    }
    seen.sort();
    let mut sent = vec![a, b, c];
    sent.sort();
    assert_eq!(seen, sent);
    // The receiver accepted them; `sent` still carries the pricing.
    let statuses = next_statuses(&mut s.events, 3).await;
    assert_eq!(statuses[0].1.status, DeliveryStatus::Read);
    assert_eq!(statuses[2].1.status, DeliveryStatus::Sent);
    assert!(statuses[2].1.pricing.is_some());
    assert!(deliveries.iter().all(|d| d.response_status == Some(200)));

    // Both at once, set on the builder: each status twice, newest first.
    let s = setup_with(|b| b.reverse_statuses(true).duplicate_statuses(true)).await;
    s.fake.script("+12025550147", Outcome::Delivered);
    let id = send_to(&s, "+12025550147").await;
    let deliveries = s.fake.wait_for_deliveries(4, WAIT).await;
    assert_eq!(
        posted_statuses(&deliveries),
        [
            (id.clone(), "delivered".to_owned()),
            (id.clone(), "delivered".to_owned()),
            (id.clone(), "sent".to_owned()),
            (id, "sent".to_owned()),
        ]
    );
}

#[tokio::test]
async fn events_report_requests_and_webhooks_without_tokens() {
    let s = setup().await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    s.fake
        .on_event(move |e| seen.lock().unwrap().push(e.clone()));
    s.fake.script("+12025550147", Outcome::Sent);
    let id = send_to(&s, "+12025550147").await;
    let unknown = Credentials::new("987654321", SecretString::from("token-a"));
    PhoneNumber::fetch(&s.client, &unknown).await.unwrap_err();
    s.fake.wait_for_deliveries(1, WAIT).await;

    let events = events.lock().unwrap().clone();
    let answered: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            FakeEvent::Answered {
                method,
                path,
                status,
                code,
            } => Some((method.as_str(), path.as_str(), *status, *code)),
            _ => None,
        })
        .collect();
    assert_eq!(
        answered,
        [
            (
                "POST",
                format!("/v24.0/{TENANT_A_PNID}/messages").as_str(),
                200,
                None
            ),
            ("GET", "/v24.0/987654321", 400, Some(100)),
        ]
    );
    let posted: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            FakeEvent::Posted(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].response_status, Some(200));
    assert_eq!(posted_statuses(&posted), [(id, "sent".to_owned())]);
    assert!(!format!("{events:?}").contains("token-a"));
}
