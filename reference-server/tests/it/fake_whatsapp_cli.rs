//! `edge-server fake-whatsapp`: the real binary, used through edge-whatsapp's client the
//! way a service would use Meta, with its signed webhooks caught by a local listener.

use std::process::Command;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use edge_whatsapp::message::{SendMessage, Text};
use edge_whatsapp::webhook::{
    DeliveryStatus, StatusUpdate, parse_events, verify_signature_headers,
};
use edge_whatsapp::{
    Credentials, ErrorClass, MessageId, PhoneNumber, PhoneNumberId, WabaId, WhatsAppClient,
};
use secrecy::SecretString;
use tokio::sync::mpsc;

use crate::cli_process::{CliProcess, WAIT, edge_server};

const APP_SECRET: &str = "cli-test-app-secret-5b0e";
const HOOK_PATH: &str = "/hooks/whatsapp/tenant-secret-path";

/// `edge-server fake-whatsapp` without an app secret from the test's environment.
fn binary() -> Command {
    let mut command = edge_server("fake-whatsapp");
    command.env_remove("EDGE_WHATSAPP_APP_SECRET");
    command
}

/// A webhook as the listener received it.
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

/// A local listener standing in for the service's webhook endpoint.
struct Listener {
    url: String,
    received: mpsc::UnboundedReceiver<Received>,
}

impl Listener {
    async fn start() -> Self {
        async fn receive(
            State(tx): State<mpsc::UnboundedSender<Received>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let _ = tx.send(Received { headers, body });
            StatusCode::OK
        }
        let (tx, received) = mpsc::unbounded_channel();
        let app = Router::new().route(HOOK_PATH, post(receive)).with_state(tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{HOOK_PATH}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, received }
    }

    /// The next webhook, checked against the app secret, and its one status.
    async fn next_status(&mut self) -> (Received, StatusUpdate, Option<PhoneNumberId>) {
        let received = tokio::time::timeout(WAIT, self.received.recv())
            .await
            .expect("a webhook")
            .unwrap();
        verify_signature_headers(
            &SecretString::from(APP_SECRET),
            &received.headers,
            &received.body,
        )
        .expect("signed with the app secret");
        assert!(
            verify_signature_headers(
                &SecretString::from("another-secret"),
                &received.headers,
                &received.body
            )
            .is_err()
        );
        let mut events = parse_events(&received.body).unwrap();
        assert_eq!(events.len(), 1);
        let event = events.remove(0);
        let status = event.as_status().expect("a status").clone();
        let number = event.routing.phone_number_id.clone();
        if let Some(waba) = &event.routing.waba_id {
            assert!(waba.as_str().starts_with("2000000000000"), "{waba:?}");
        }
        (received, status, number)
    }
}

/// Reads the first lines: the base URL, the export line, then the numbers.
async fn base_url(fake: &mut CliProcess) -> String {
    let listening = fake.line().await;
    let url = listening
        .strip_prefix("fake WhatsApp listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {listening:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"), "the real port is printed: {url}");
    assert_eq!(
        fake.line().await,
        format!("export EDGE_WHATSAPP_BASE_URL={url}")
    );
    url
}

fn client(url: &str) -> WhatsAppClient {
    WhatsAppClient::builder().base_url(url).build().unwrap()
}

async fn send(client: &WhatsAppClient, creds: &Credentials, to: &str) -> MessageId {
    SendMessage::new(to, Text::new("Habari"))
        .biz_opaque_callback_data(format!("send:{to}"))
        .send(client, creds)
        .await
        .unwrap()
        .message_id()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn fake_whatsapp_accepts_sends_and_posts_signed_status_webhooks() {
    let mut listener = Listener::start().await;
    let mut command = binary();
    command
        .env("EDGE_WHATSAPP_APP_SECRET", APP_SECRET)
        .args(["--bind", "127.0.0.1:0", "--webhook-url", &listener.url])
        .args(["--number", "200000000000009:200000000000019:+254711000009"])
        .args(["--token", "tenant-token-7f3c"])
        .args(["--outcome", "254711000002=failed:131026"])
        .args(["--outcome", "+254 711 000 003=window-closed"])
        .args(["--reverse-statuses", "--status-delay-ms", "5"]);
    let mut fake = CliProcess::spawn(command);
    let url = base_url(&mut fake).await;
    assert_eq!(
        fake.line().await,
        "number 200000000000009 (WABA 200000000000019): +254711000009"
    );

    let client = client(&url);
    let creds = Credentials::new("200000000000009", SecretString::from("tenant-token-7f3c"));
    let number = PhoneNumber::fetch(&client, &creds).await.unwrap();
    assert_eq!(number.display_phone_number, "+254711000009");
    assert_eq!(number.verified_name.as_deref(), Some("Fake Business 0009"));
    assert_eq!(number.messages_per_second(), 80);

    // A send: three signed statuses, newest first (--reverse-statuses).
    let wamid = send(&client, &creds, "+254711000001").await;
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let (_, status, number) = listener.next_status().await;
        assert_eq!(status.id, wamid);
        assert_eq!(
            status.biz_opaque_callback_data.as_deref(),
            Some("send:+254711000001")
        );
        assert_eq!(number, Some(PhoneNumberId::new("200000000000009")));
        kinds.push(status.status);
    }
    assert_eq!(
        kinds,
        [
            DeliveryStatus::Read,
            DeliveryStatus::Delivered,
            DeliveryStatus::Sent
        ]
    );

    // Scripted recipients: a failed status with the code, and a synchronous rejection.
    let failed = send(&client, &creds, "254711000002").await;
    let (_, status, _) = listener.next_status().await;
    assert_eq!(status.id, failed);
    assert_eq!(status.status, DeliveryStatus::Failed);
    assert_eq!(status.errors[0].code, Some(131026));
    assert_eq!(status.error_class(), Some(ErrorClass::Undeliverable));
    let err = SendMessage::new("+254711000003", Text::new("hi"))
        .send(&client, &creds)
        .await
        .unwrap_err();
    assert!(err.is_outside_service_window(), "{err:?}");

    // Only --token is accepted; a number it does not know is code 100.
    let wrong = Credentials::new("200000000000009", SecretString::from("wrong-token-91aa"));
    let err = PhoneNumber::fetch(&client, &wrong).await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    let unknown = Credentials::new("999", SecretString::from("tenant-token-7f3c"));
    let err = SendMessage::new("+254711000001", Text::new("hi"))
        .send(&client, &unknown)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(100));

    // Requests and webhooks are logged; tokens, the secret and webhook paths are not.
    let logged = fake
        .wait_for_log(&format!("failed {}", failed.as_str()))
        .await;
    assert!(
        logged.contains("/v24.0/200000000000009/messages"),
        "{logged}"
    );
    assert!(
        logged.contains(&format!("read {}", wamid.as_str())),
        "{logged}"
    );
    assert!(logged.contains("webhook sent"), "{logged}");
    assert!(logged.contains("\"code\":190"), "{logged}");
    for secret in [
        APP_SECRET,
        "tenant-token-7f3c",
        "wrong-token-91aa",
        "tenant-secret-path",
        "Habari",
    ] {
        assert!(!logged.contains(secret), "{secret} logged:\n{logged}");
    }

    // SIGTERM stops it cleanly.
    #[cfg(unix)]
    {
        fake.terminate().await;
        fake.wait_for_log("fake WhatsApp stopped").await;
    }
}

#[tokio::test]
async fn fake_whatsapp_defaults_to_one_number_and_can_duplicate_statuses() {
    let mut listener = Listener::start().await;
    let mut command = binary();
    command
        .args(["--bind", "127.0.0.1:0", "--webhook-url", &listener.url])
        .args(["--app-secret", APP_SECRET])
        .args(["--outcome", "254711000004=sent", "--duplicate-statuses"]);
    let mut fake = CliProcess::spawn(command);
    let url = base_url(&mut fake).await;
    assert_eq!(
        fake.line().await,
        "number 100000000000001 (WABA 200000000000001): +254700000001"
    );
    // Any token is accepted without --token.
    let creds = Credentials::new("100000000000001", SecretString::from("any-token"));
    let client = client(&url);
    let wamid = send(&client, &creds, "+254711000004").await;
    let (first, status, number) = listener.next_status().await;
    let (second, again, _) = listener.next_status().await;
    assert_eq!(number, Some(PhoneNumberId::new("100000000000001")));
    assert_eq!(
        (status.id.clone(), status.status.clone()),
        (wamid, DeliveryStatus::Sent)
    );
    assert_eq!(status, again);
    assert_eq!(first.body, second.body);
    let waba = parse_events(&first.body).unwrap()[0]
        .routing
        .waba_id
        .clone();
    assert_eq!(waba, Some(WabaId::new("200000000000001")));
    assert!(!fake.stderr().contains(APP_SECRET));
}

#[test]
fn bad_values_are_refused_with_exit_code_2() {
    let secret: &[&str] = &["--app-secret", APP_SECRET];
    let cases: [(&[&str], &[&str], &str); 11] = [
        (&[], &[], "--app-secret"),
        (&["--app-secret", " "], &[], "the app secret is empty"),
        (
            secret,
            &["--number", "200000000000009"],
            "PNID:WABA:DISPLAY",
        ),
        (
            secret,
            &["--number", "abc:200:+254700000001"],
            "phone number id",
        ),
        (secret, &["--token", "top secret-token-value"], "whitespace"),
        (
            secret,
            &["--outcome", "254711000001=maybe"],
            "pair-rate-limited",
        ),
        (
            secret,
            &["--outcome", "254711000001=failed:x"],
            "not an error code",
        ),
        (
            secret,
            &["--outcome", "12=read"],
            "not a phone number or a BSUID",
        ),
        (
            secret,
            &["--webhook-url", "ftp://example.com/x"],
            "http or https",
        ),
        (secret, &["--bind", "localhost"], "--bind"),
        (
            secret,
            &[
                "--bind",
                "127.0.0.1:0",
                "--number",
                "1:2:+254700000001",
                "--number",
                "1:3:+254700000002",
            ],
            "--number 1 is given twice",
        ),
    ];
    for (first, rest, expected) in cases {
        let output = binary().args(first).args(rest).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{rest:?}: {stderr}");
        assert!(stderr.contains(expected), "{rest:?}: {stderr}");
        assert!(!stderr.contains(APP_SECRET), "{stderr}");
        assert!(!stderr.contains("secret-token-value"), "{stderr}");
        assert!(output.stdout.is_empty(), "{rest:?}");
    }
}

#[test]
fn an_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = binary()
        .args(["--bind", &addr, "--app-secret", APP_SECRET])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}
