//! End to end against FakeGraph: sends, signed status webhooks into an axum receiver that
//! uses the `VerifiedWebhook` extractor, scripted failures, media.

use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use edge_whatsapp::axum::{VerifiedWebhook, handshake_response};
use edge_whatsapp::fake::{FakeGraph, Outcome};
use edge_whatsapp::message::{Parameter, SendMessage, Template, Text};
use edge_whatsapp::webhook::{
    DeliveryStatus, PricingCategory, StatusUpdate, WebhookEvent, WebhookVerifier,
};
use edge_whatsapp::{Credentials, Error, ErrorClass, MediaId, PhoneNumberId, RetryScope, WabaId};
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
    let fake = FakeGraph::builder()
        .app_secret(app_secret())
        .number(TENANT_A_PNID, TENANT_A_WABA, "15550101234")
        .number(TENANT_B_PNID, TENANT_B_WABA, "447700900123")
        .valid_token("token-a")
        .valid_token("token-b")
        .webhook_url(&receiver_url)
        .status_delay(Duration::from_millis(5))
        .start()
        .await
        .unwrap();
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
