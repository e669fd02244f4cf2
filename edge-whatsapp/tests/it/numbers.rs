//! Phone-number lookup against canned Graph responses: the request, the fields read, the
//! rate that follows, and the error taxonomy.

use std::time::Duration;

use edge_whatsapp::{Credentials, Error, ErrorClass, PhoneNumber, PhoneNumberId, WhatsAppClient};
use secrecy::SecretString;

use crate::support::*;

const TOKEN: &str = "EAAG-number-lookup-secret-token";

fn creds() -> Credentials {
    Credentials::new(TENANT_A_PNID, SecretString::from(TOKEN)).waba_id(TENANT_A_WABA)
}

fn client(url: &str) -> WhatsAppClient {
    WhatsAppClient::builder()
        .base_url(url)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_number_is_read_with_its_fields_and_the_bearer_token() {
    let server = canned(200, PHONE_NUMBER, true).await;
    let number = PhoneNumber::fetch(&client(&server.url), &creds())
        .await
        .unwrap();
    assert_eq!(
        number,
        PhoneNumber {
            id: PhoneNumberId::new(TENANT_A_PNID),
            display_phone_number: "+254 711 082 300".into(),
            verified_name: Some("Jasiri Hardware".into()),
            quality_rating: Some("GREEN".into()),
            code_verification_status: Some("VERIFIED".into()),
            name_status: Some("APPROVED".into()),
            throughput_level: Some("HIGH".into()),
            platform_type: Some("CLOUD_API".into()),
            is_on_biz_app: Some(false),
        }
    );
    assert_eq!(number.messages_per_second(), 1000);

    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let request_line = requests[0].lines().next().unwrap();
    assert_eq!(
        request_line,
        format!(
            "GET /v24.0/{TENANT_A_PNID}?fields=id,display_phone_number,verified_name,\
             quality_rating,code_verification_status,name_status,throughput,platform_type,\
             is_on_biz_app HTTP/1.1"
        )
    );
    assert!(
        requests[0]
            .to_ascii_lowercase()
            .contains(&format!("authorization: bearer {TOKEN}").to_ascii_lowercase())
    );
}

#[tokio::test]
async fn missing_optional_fields_are_tolerated_and_the_rate_falls_back() {
    let server = canned(
        200,
        r#"{"id":"113057248966301","display_phone_number":"15550101234"}"#,
        true,
    )
    .await;
    let number = client(&server.url).phone_number(&creds()).await.unwrap();
    assert_eq!(number.display_phone_number, "15550101234");
    assert_eq!(number.verified_name, None);
    assert_eq!(number.quality_rating, None);
    assert_eq!(number.throughput_level, None);
    assert_eq!(number.is_on_biz_app, None);
    assert_eq!(number.messages_per_second(), 80);

    // A coexistence number is fixed at 20/s, whatever its level says.
    let server = canned(
        200,
        r#"{"id":"1","display_phone_number":"+1 555 0100","throughput":{"level":"STANDARD"},
            "platform_type":"CLOUD_API","is_on_biz_app":true,"unknown_new_field":[1]}"#,
        true,
    )
    .await;
    let number = client(&server.url).phone_number(&creds()).await.unwrap();
    assert_eq!(number.throughput_level.as_deref(), Some("STANDARD"));
    assert_eq!(number.messages_per_second(), 20);
}

#[tokio::test]
async fn lookup_errors_use_the_crate_taxonomy_and_never_show_the_token() {
    let server = canned(401, ERROR_INVALID_TOKEN, true).await;
    let err = PhoneNumber::fetch(&client(&server.url), &creds())
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(matches!(
        err,
        Error::Api {
            status: 401,
            code: 190,
            ..
        }
    ));
    assert!(!format!("{err:?} {err}").contains(TOKEN));

    let server = canned(400, ERROR_UNKNOWN_OBJECT, true).await;
    let err = PhoneNumber::fetch(&client(&server.url), &creds())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(100));
    assert_eq!(err.class(), ErrorClass::InvalidRequest);
    assert!(!err.is_retryable());
    assert!(matches!(
        &err,
        Error::Api { subcode: Some(33), fbtrace_id: Some(t), .. } if t == "A3kL9qPzX2vT8mN1bR5cWdE"
    ));

    // A success body that is not a phone number keeps its status and body.
    let server = canned(200, r#"{"id":"113057248966301"}"#, true).await;
    let err = PhoneNumber::fetch(&client(&server.url), &creds())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse {
            status: 200,
            body: r#"{"id":"113057248966301"}"#.into()
        }
    );

    // A 5xx is Meta-side trouble: retry later.
    let server = canned(503, "<html>Service Unavailable</html>", true).await;
    let err = PhoneNumber::fetch(&client(&server.url), &creds())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");

    // A token that cannot go in a header is refused before anything is sent.
    let server = canned(200, PHONE_NUMBER, true).await;
    let bad = Credentials::new(TENANT_A_PNID, SecretString::from("bad\ntoken"));
    let err = PhoneNumber::fetch(&client(&server.url), &bad)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains("bad\ntoken"));
    assert!(server.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_api_version_override_applies_to_lookups() {
    let server = canned(200, PHONE_NUMBER, true).await;
    PhoneNumber::fetch(&client(&server.url), &creds().api_version("v25.0"))
        .await
        .unwrap();
    let requests = server.requests.lock().unwrap().clone();
    assert!(
        requests[0].starts_with(&format!("GET /v25.0/{TENANT_A_PNID}?fields=")),
        "{}",
        requests[0]
    );
}
