//! Exact wire shapes, asserted against the fixtures and the fake's recorded requests.

use std::time::Duration;

use base64::Engine as _;
use edge_core::IdempotencyKey;
use edge_mpesa::{
    AccountBalanceQuery, B2bCommand, B2bPayment, B2cCommand, B2cPayment, B2cVersion,
    C2bRegisterResponse, C2bVersion, Credentials, DarajaErrorKind, DynamicQr, Error,
    InitiatorAccepted, QrTransactionCode, RegisterUrls, Reversal, StkOutcome, StkPush,
    StkPushResponse, StkQuery, StkQueryOutcome, TokenResponse, TransactionStatusQuery,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::support::*;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn stk_push_paybill_matches_the_fixture_byte_for_byte_in_meaning() {
    let fake = fake().await;
    fake.drop_callbacks(true);
    let client = client_for(&fake, Some(fixture_clock()));
    let creds = sandbox_credentials();
    let response = StkPush::new(
        phone("0708374149"),
        kes(1500),
        "INV-000042",
        format!("{CB}/stk"),
    )
    .description("Plan renewal")
    .send(&client, &creds)
    .await
    .unwrap();
    assert!(response.checkout_request_id.starts_with("ws_CO_"));

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let token = &requests[0];
    assert_eq!(token.method, "GET");
    assert_eq!(token.path, "/oauth/v1/generate");
    assert_eq!(
        token.query.as_deref(),
        Some("grant_type=client_credentials")
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("sandbox-key:sandbox-secret");
    assert_eq!(
        token.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );

    let push = &requests[1];
    assert_eq!(push.method, "POST");
    assert_eq!(push.path, "/mpesa/stkpush/v1/processrequest");
    assert_eq!(push.header("content-type"), Some("application/json"));
    assert!(
        push.header("authorization")
            .unwrap()
            .starts_with("Bearer FAKE")
    );
    assert!(
        push.header("user-agent")
            .unwrap()
            .starts_with("edge-mpesa/")
    );
    assert_eq!(
        push.json().unwrap(),
        json(include_str!("../data/stk_push_request.json"))
    );
}

#[tokio::test]
async fn stk_push_till_uses_buy_goods_with_store_and_till() {
    let fake = fake().await;
    fake.drop_callbacks(true);
    fake.merchant("5000001", "0000fakepasskeyfortests0000");
    let clock = fixture_clock();
    clock.advance(chrono::Duration::seconds(80));
    let client = client_for(&fake, Some(clock));
    let creds = Credentials::new("till-key", SecretString::from("till-secret"))
        .shortcode("5000001")
        .till("5000002")
        .passkey(SecretString::from("0000fakepasskeyfortests0000"));
    StkPush::new(
        phone("+254 708 374 149"),
        kes(750),
        "INV-000043",
        format!("{CB}/stk"),
    )
    .description("Add-on seats")
    .send(&client, &creds)
    .await
    .unwrap();
    let push = fake.requests_to("/mpesa/stkpush/v1/processrequest");
    assert_eq!(
        push[0].json().unwrap(),
        json(include_str!("../data/stk_push_request_till.json"))
    );
}

#[test]
fn stk_query_body_matches_the_fixture() {
    let clock = fixture_clock();
    clock.advance(chrono::Duration::seconds(80));
    let body = StkQuery::new("ws_CO_15012025143001234708374149")
        .to_json(&sandbox_credentials(), edge_core::Clock::now(&clock))
        .unwrap();
    assert_eq!(
        json(&body),
        json(include_str!("../data/stk_query_request.json"))
    );
}

#[tokio::test]
async fn initiator_requests_match_their_fixtures_and_paths() {
    let fake = fake().await;
    fake.drop_callbacks(true);
    let client = client_for(&fake, Some(fixture_clock()));
    let b2c = initiator_credentials("600997");

    let accepted = B2cPayment::new(
        IdempotencyKey::new("tnt01HX3K9Q-payout-000017").unwrap(),
        B2cCommand::BusinessPayment,
        kes(2500),
        phone("254708374149"),
        "Refund INV-000041",
        format!("{CB}/b2c/result"),
        format!("{CB}/b2c/timeout"),
    )
    .occasion("Refund")
    .send(&client, &b2c)
    .await
    .unwrap();
    assert_eq!(
        accepted.originator_conversation_id,
        "tnt01HX3K9Q-payout-000017"
    );
    let sent = fake.requests_to("/mpesa/b2c/v3/paymentrequest");
    assert_eq!(
        sent[0].json().unwrap(),
        json(include_str!("../data/b2c_request.json"))
    );

    TransactionStatusQuery::new(
        "Reconcile payout",
        format!("{CB}/status/result"),
        format!("{CB}/status/timeout"),
    )
    .transaction_id("TESTRCPT02")
    .original_conversation_id("tnt01HX3K9Q-payout-000017")
    .occasion("Reconcile")
    .send(&client, &b2c)
    .await
    .unwrap();
    let sent = fake.requests_to("/mpesa/transactionstatus/v1/query");
    assert_eq!(
        sent[0].json().unwrap(),
        json(include_str!("../data/transaction_status_request.json"))
    );

    AccountBalanceQuery::new(
        "Daily balance",
        format!("{CB}/balance/result"),
        format!("{CB}/balance/timeout"),
    )
    .send(&client, &b2c)
    .await
    .unwrap();
    let sent = fake.requests_to("/mpesa/accountbalance/v1/query");
    assert_eq!(
        sent[0].json().unwrap(),
        json(include_str!("../data/account_balance_request.json"))
    );

    let paybill = initiator_credentials("600984");
    Reversal::new(
        "TESTRCPT01",
        kes(1500),
        "Duplicate payment",
        format!("{CB}/reversal/result"),
        format!("{CB}/reversal/timeout"),
    )
    .occasion("INV-000042")
    .send(&client, &paybill)
    .await
    .unwrap();
    let sent = fake.requests_to("/mpesa/reversal/v1/request");
    assert_eq!(
        sent[0].json().unwrap(),
        json(include_str!("../data/reversal_request.json"))
    );

    let response = RegisterUrls::new(format!("{CB}/c2b/confirm"), format!("{CB}/c2b/validate"))
        .send(&client, &paybill)
        .await
        .unwrap();
    assert_eq!(response.response_code, "0");
    let sent = fake.requests_to("/mpesa/c2b/v2/registerurl");
    assert_eq!(
        sent[0].json().unwrap(),
        json(include_str!("../data/c2b_register_request.json"))
    );

    // One token for the two credential sets sharing a consumer key.
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test]
async fn versions_b2b_and_qr_go_to_their_paths_with_their_spellings() {
    let fake = fake().await;
    fake.drop_callbacks(true);
    let client = client_for(&fake, None);
    let creds = initiator_credentials("600997");
    B2cPayment::new(
        IdempotencyKey::new("payout-v1").unwrap(),
        B2cCommand::SalaryPayment,
        kes(10),
        phone("0708374149"),
        "Salary",
        format!("{CB}/r"),
        format!("{CB}/t"),
    )
    .version(B2cVersion::V1)
    .occasion("Jan")
    .send(&client, &creds)
    .await
    .unwrap();
    let v1 = fake.requests_to("/mpesa/b2c/v1/paymentrequest")[0]
        .json()
        .unwrap();
    assert_eq!(v1["Occasion"], "Jan");
    assert!(v1.get("Occassion").is_none() && v1.get("OriginatorConversationID").is_none());
    assert_eq!(v1["CommandID"], "SalaryPayment");

    B2bPayment::new(
        B2bCommand::BusinessBuyGoods,
        kes(300),
        "5000002",
        "INV-7",
        "Supplies",
        format!("{CB}/r"),
        format!("{CB}/t"),
    )
    .requester(phone("0708374149"))
    .send(&client, &creds)
    .await
    .unwrap();
    let b2b = fake.requests_to("/mpesa/b2b/v1/paymentrequest")[0]
        .json()
        .unwrap();
    assert_eq!(b2b["RecieverIdentifierType"], "4");
    assert_eq!(b2b["SenderIdentifierType"], "4");
    assert_eq!(b2b["CommandID"], "BusinessBuyGoods");
    assert_eq!(b2b["Requester"], "254708374149");
    assert_eq!(b2b["Amount"], "300");

    RegisterUrls::new(format!("{CB}/c2b/confirm"), format!("{CB}/c2b/validate"))
        .version(C2bVersion::V1)
        .send(&client, &creds)
        .await
        .unwrap();
    assert_eq!(fake.requests_to("/mpesa/c2b/v1/registerurl").len(), 1);

    let qr = DynamicQr::new(
        "Test Biller",
        "INV-9",
        kes(50),
        QrTransactionCode::BuyGoods,
        "5000002",
        300,
    )
    .send(&client, &creds)
    .await
    .unwrap();
    assert!(!qr.qr_code.is_empty());
    let sent = fake.requests_to("/mpesa/qrcode/v1/generate")[0]
        .json()
        .unwrap();
    assert_eq!(sent["TrxCode"], "BG");
    assert_eq!(sent["Amount"], 50);
    assert_eq!(sent["CPI"], "5000002");
}

#[tokio::test]
async fn invalid_requests_are_refused_before_anything_is_sent() {
    let fake = fake().await;
    let client = client_for(&fake, None);
    let strict = edge_mpesa::DarajaClient::builder(fake.environment())
        .build()
        .unwrap();
    let creds = sandbox_credentials();
    let url = format!("{CB}/stk");
    let cases: Vec<(StkPush, &edge_mpesa::DarajaClient, &str)> = vec![
        (
            StkPush::new(phone("0708374149"), kes(0), "A", &url),
            &client,
            "Amount",
        ),
        (
            StkPush::new(
                phone("0708374149"),
                edge_core::Money::from_minor(150, edge_core::Currency::Kes),
                "A",
                &url,
            ),
            &client,
            "Amount",
        ),
        (
            StkPush::new(phone("0708374149"), kes(1), "INV-0000000042", &url),
            &client,
            "AccountReference",
        ),
        (
            StkPush::new(phone("0708374149"), kes(1), "A", &url).description("Fourteen chars"),
            &client,
            "TransactionDesc",
        ),
        (
            StkPush::new(
                phone("0708374149"),
                kes(1),
                "A",
                "https://x.example.com/a b",
            ),
            &client,
            "CallBackURL",
        ),
        (
            StkPush::new(phone("0708374149"), kes(1), "A", "http://x.example.com/cb"),
            &strict,
            "CallBackURL",
        ),
        (
            StkPush::new(phone("+256772123456"), kes(1), "A", &url),
            &client,
            "PhoneNumber",
        ),
    ];
    for (push, client, field) in cases {
        let err = push.send(client, &creds).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidRequest { field: f, .. } if *f == field),
            "{err:?}"
        );
        assert!(!err.may_have_been_sent() && !err.is_retryable());
    }
    let no_passkey = Credentials::new("k", SecretString::from("s")).shortcode("174379");
    let err = StkPush::new(phone("0708374149"), kes(1), "A", &url)
        .send(&client, &no_passkey)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidRequest {
            field: "Password",
            ..
        }
    ));
    let err = RegisterUrls::new(
        "https://pay.example.com/mpesa/confirm",
        "https://pay.example.com/v",
    )
    .send(&client, &creds)
    .await
    .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidRequest {
            field: "ConfirmationURL",
            ..
        }
    ));
    assert!(fake.requests().is_empty(), "nothing may reach Daraja");
}

#[test]
fn response_fixtures_parse_to_their_types() {
    let r: StkPushResponse =
        serde_json::from_str(include_str!("../data/stk_push_response.json")).unwrap();
    assert_eq!(r.checkout_request_id, "ws_CO_15012025143001234708374149");
    assert_eq!(r.merchant_request_id, "7a1c-4e2f-9b3d-5c6e7f8a9b0c1000001");
    assert_eq!(r.response_code, "0");

    let StkQueryOutcome::Finished(done) =
        StkQueryOutcome::from_http(200, include_bytes!("../data/stk_query_response.json")).unwrap()
    else {
        panic!("expected finished");
    };
    assert!(done.outcome.is_paid());
    assert_eq!(done.result_code.as_str(), "0");
    let StkQueryOutcome::Finished(cancelled) = StkQueryOutcome::from_http(
        200,
        include_bytes!("../data/stk_query_response_cancelled.json"),
    )
    .unwrap() else {
        panic!("expected finished");
    };
    assert_eq!(cancelled.outcome, StkOutcome::Cancelled);
    assert_eq!(
        StkQueryOutcome::from_http(500, include_bytes!("../data/stk_query_pending_error.json"))
            .unwrap(),
        StkQueryOutcome::Pending
    );

    let token =
        TokenResponse::from_http(200, include_bytes!("../data/token_response.json")).unwrap();
    assert_eq!(
        token.access_token.expose_secret(),
        "FAKEaccessTOKENforTESTS00001"
    );
    assert_eq!(token.expires_in, 3599);
    assert!(!format!("{token:?}").contains("FAKEaccess"));

    for (file, status) in [
        (
            include_str!("../data/b2c_response.json"),
            "tnt01HX3K9Q-payout-000017",
        ),
        (
            include_str!("../data/reversal_response.json"),
            "f1e2-4b95-a71d-b30d3cdbb7a7000041",
        ),
        (
            include_str!("../data/transaction_status_response.json"),
            "5118-4c1d-9a2e-7f3b6c8d9e0f000021",
        ),
    ] {
        let r: InitiatorAccepted = serde_json::from_str(file).unwrap();
        assert_eq!(r.originator_conversation_id, status);
        assert!(r.conversation_id.starts_with("AG_2025"));
        assert_eq!(r.response_code, "0");
    }
    let r: C2bRegisterResponse =
        serde_json::from_str(include_str!("../data/c2b_register_response.json")).unwrap();
    assert_eq!(
        r.originator_conversation_id,
        "6e86-45dd-91ac-fd5d4178ab52000001"
    );
}

#[test]
fn error_fixtures_classify() {
    let cases = [
        (
            include_bytes!("../data/error_invalid_token.json").as_slice(),
            404,
            DarajaErrorKind::InvalidToken,
        ),
        (
            include_bytes!("../data/error_invalid_timestamp.json"),
            400,
            DarajaErrorKind::BadRequest,
        ),
        (
            include_bytes!("../data/error_wrong_credentials.json"),
            500,
            DarajaErrorKind::WrongCredentials,
        ),
        (
            include_bytes!("../data/error_spike_arrest.json"),
            500,
            DarajaErrorKind::Throttled,
        ),
        (
            include_bytes!("../data/error_no_api_product.json"),
            401,
            DarajaErrorKind::NoApiProduct,
        ),
        (
            include_bytes!("../data/error_duplicate_originator_conversation_id.json"),
            500,
            DarajaErrorKind::DuplicateRequest,
        ),
        (
            include_bytes!("../data/stk_query_pending_error.json"),
            500,
            DarajaErrorKind::Pending,
        ),
    ];
    for (body, status, kind) in cases {
        let err = Error::from_response(status, body);
        let daraja = err.as_daraja().unwrap();
        assert_eq!(daraja.kind(), kind, "{daraja:?}");
        assert_eq!(daraja.status, status);
        assert!(!daraja.request_id.is_empty());
    }
    let spike = Error::from_response(500, include_bytes!("../data/error_spike_arrest.json"));
    assert!(spike.is_retryable() && !spike.may_have_been_sent());
    let html = Error::from_response(200, b"<html>proxy</html>");
    assert!(
        matches!(html, Error::UnexpectedResponse { status: 200, ref body } if body.contains("proxy"))
    );
}

#[test]
fn request_bodies_never_leak_into_debug() {
    let creds = sandbox_credentials();
    assert!(!format!("{creds:?}").contains(SANDBOX_PASSKEY));
    let _ = Duration::ZERO;
}
