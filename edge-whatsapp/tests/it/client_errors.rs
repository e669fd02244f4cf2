//! The client against canned HTTP responses: error taxonomy and classification.

use std::time::Duration;

use edge_whatsapp::message::{SendMessage, Text};
use edge_whatsapp::{Credentials, Error, ErrorClass, RetryScope, WhatsAppClient};
use secrecy::SecretString;
use tokio::net::TcpListener;

use crate::support::*;

const TOKEN: &str = "EAAG-tenant-a-secret-token";

fn creds() -> Credentials {
    Credentials::new(TENANT_A_PNID, SecretString::from(TOKEN)).waba_id(TENANT_A_WABA)
}

fn client(url: &str) -> WhatsAppClient {
    WhatsAppClient::builder()
        .base_url(url)
        .timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

async fn send_text(client: &WhatsAppClient) -> Result<edge_whatsapp::message::SendResponse, Error> {
    SendMessage::new("+12025550147", Text::new("hello"))
        .send(client, &creds())
        .await
}

#[tokio::test]
async fn a_send_response_is_decoded_and_the_request_is_authorized() {
    let server = canned(200, SEND_RESPONSE, true).await;
    let response = send_text(&client(&server.url)).await.unwrap();
    assert_eq!(
        response.message_id().unwrap().as_str(),
        "wamid.HBgLMTIwMjU1NTAxNDcVAgARGBIyNDVGMzlCQ0QyRjlCQTE2RDIA"
    );
    assert_eq!(
        response.messages[0].message_status.as_deref(),
        Some("accepted")
    );
    assert_eq!(response.contacts[0].input.as_deref(), Some("+12025550147"));
    assert_eq!(response.contacts[0].wa_id.as_deref(), Some("12025550147"));
    let requests = server.requests.lock().unwrap().clone();
    let request = &requests[0];
    assert!(request.starts_with(&format!("POST /v24.0/{TENANT_A_PNID}/messages HTTP/1.1")));
    assert!(
        request
            .to_ascii_lowercase()
            .contains(&format!("authorization: bearer {TOKEN}").to_ascii_lowercase())
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("user-agent: edge-whatsapp/")
    );
}

#[tokio::test]
async fn the_api_version_is_set_in_the_builder_and_per_call() {
    let server = canned(200, SEND_RESPONSE, true).await;
    let client = WhatsAppClient::builder()
        .base_url(format!("{}/", server.url))
        .api_version("v25.0")
        .build()
        .unwrap();
    send_text(&client).await.unwrap();
    SendMessage::new("+12025550147", Text::new("hello"))
        .send(&client, &creds().api_version("v23.0"))
        .await
        .unwrap();
    let requests = server.requests.lock().unwrap().clone();
    assert!(requests[0].starts_with("POST /v25.0/"));
    assert!(requests[1].starts_with("POST /v23.0/"));
}

#[tokio::test]
async fn graph_errors_are_keyed_on_code() {
    let server = canned(400, ERROR_RATE_LIMITED, true).await;
    let err = send_text(&client(&server.url)).await.unwrap_err();
    match &err {
        Error::Api {
            status,
            code,
            subcode,
            details,
            fbtrace_id,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(*code, 130429);
            assert_eq!(*subcode, Some(2_494_055));
            assert_eq!(
                details.as_deref(),
                Some("Cloud API message throughput has been reached.")
            );
            assert_eq!(fbtrace_id.as_deref(), Some("AQx7Rt2mZk9LwP4vB1nHcYd"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());
    assert!(err.is_rate_limited());
    assert_eq!(err.class(), ErrorClass::RetryLater(RetryScope::Number));
    assert!(!err.may_have_been_sent());
    assert_eq!(err.retry_delay(1), Some(Duration::from_secs(1)));

    let server = canned(400, ERROR_REENGAGEMENT, true).await;
    let err = send_text(&client(&server.url)).await.unwrap_err();
    assert!(err.is_outside_service_window());
    assert!(!err.is_retryable());

    let server = canned(401, ERROR_INVALID_TOKEN, true).await;
    let err = send_text(&client(&server.url)).await.unwrap_err();
    assert!(err.is_auth());
    assert!(matches!(err, Error::Api { details: None, .. }));
    // The same code with another HTTP status classifies the same.
    let server = canned(400, ERROR_INVALID_TOKEN, true).await;
    assert!(send_text(&client(&server.url)).await.unwrap_err().is_auth());
}

#[tokio::test]
async fn unparseable_responses_keep_status_and_body() {
    let server = canned(502, "<html>Bad Gateway</html>", true).await;
    let err = send_text(&client(&server.url)).await.unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse {
            status: 502,
            body: "<html>Bad Gateway</html>".into()
        }
    );
    assert!(err.is_retryable());
    assert!(err.may_have_been_sent());

    let server = canned(200, "{\"messaging_product\":\"whatsapp\"}", true).await;
    let err = send_text(&client(&server.url)).await.unwrap_err();
    assert!(matches!(err, Error::UnexpectedResponse { status: 200, .. }));
    assert!(err.may_have_been_sent());
}

#[tokio::test]
async fn a_refused_connection_was_not_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = send_text(&client(&url)).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(!err.may_have_been_sent());
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_timeout_may_have_been_sent_and_is_not_retried_blindly() {
    let server = canned(200, SEND_RESPONSE, false).await;
    let err = send_text(&client(&server.url)).await.unwrap_err();
    assert_eq!(err, Error::Timeout);
    assert!(err.may_have_been_sent());
    assert!(!err.is_retryable());
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);
}

#[tokio::test]
async fn invalid_requests_are_refused_before_any_network_call() {
    let server = canned(200, SEND_RESPONSE, true).await;
    let client = client(&server.url);
    for message in [
        SendMessage::new("+12025550147", Text::new("")),
        SendMessage::new("+12025550147", Text::new("x".repeat(4097))),
        SendMessage::new("not a number", Text::new("hi")),
        SendMessage::new("+12025550147", Text::new("hi")).biz_opaque_callback_data("x".repeat(513)),
    ] {
        let err = message.send(&client, &creds()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
        assert!(!err.may_have_been_sent());
    }
    assert!(server.requests.lock().unwrap().is_empty());
    assert!(
        WhatsAppClient::builder()
            .base_url("ftp://x")
            .build()
            .is_err()
    );
    assert!(
        WhatsAppClient::builder()
            .base_url("not a url")
            .build()
            .is_err()
    );
}

#[test]
fn secrets_never_show_in_debug_and_the_client_is_shareable() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<WhatsAppClient>();
    assert_shareable::<Credentials>();
    let creds = creds();
    let debug = format!("{creds:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains(TENANT_A_PNID));
    let client = WhatsAppClient::builder().build().unwrap();
    assert_eq!(client.base_url(), "https://graph.facebook.com");
    assert!(format!("{client:?}").contains("graph.facebook.com"));
}
