//! C2B against the fake: registration, simulated payments, validation and confirmation.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use edge_mpesa::callbacks::{C2B_CONFIRMATION_ACK, C2bRejection};
use edge_mpesa::fake::{C2bRegistration, C2bStatus, CallbackKind, FakeC2bError, FakeDaraja};
use edge_mpesa::{
    C2bTransaction, C2bValidationReply, C2bVersion, Credentials, DarajaClient, RegisterUrls,
    ResponseType, parse_c2b,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(10);
const SHORTCODE: &str = "600984";

fn c2b_credentials() -> Credentials {
    Credentials::new("c2b-key", SecretString::from("c2b-secret")).shortcode(SHORTCODE)
}

/// Where a [`Receiver`] sends what it receives: the path and the body.
type Received = mpsc::UnboundedSender<(String, Vec<u8>)>;

/// A receiver for the C2B callbacks: it answers validation requests with a chosen body
/// and confirmations with the usual acknowledgement, and records both.
struct Receiver {
    addr: std::net::SocketAddr,
    rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    async fn start(validation_reply: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let router = Router::new()
            .fallback(
                |State((tx, reply)): State<(Received, String)>, uri: Uri, body: Bytes| async move {
                    let path = uri.path().to_owned();
                    tx.send((path.clone(), body.to_vec())).unwrap();
                    let answer = if path.ends_with("/validate") {
                        reply
                    } else {
                        C2B_CONFIRMATION_ACK.to_owned()
                    };
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        answer,
                    )
                        .into_response()
                },
            )
            .with_state((tx, validation_reply));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            rx,
            _stop: stop,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next callback: its path and the parsed body.
    async fn next(&mut self) -> (String, C2bTransaction) {
        let (path, body) = tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a callback in time")
            .unwrap();
        let parsed =
            parse_c2b(&body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
        (path, parsed)
    }

    /// True if nothing more was received (call once the payment is settled).
    fn is_drained(&mut self) -> bool {
        self.rx.try_recv().is_err()
    }
}

fn accept(third_party_trans_id: Option<&str>) -> String {
    C2bValidationReply::Accept {
        third_party_trans_id: third_party_trans_id.map(str::to_owned),
    }
    .to_json()
}

async fn register(
    client: &DarajaClient,
    receiver: &Receiver,
    response_type: ResponseType,
    version: C2bVersion,
) {
    let response = RegisterUrls::new(receiver.url("/c2b/confirm"), receiver.url("/c2b/validate"))
        .response_type(response_type)
        .version(version)
        .send(client, &c2b_credentials())
        .await
        .unwrap();
    assert_eq!(response.response_code, "0");
}

fn kinds(fake: &FakeDaraja) -> Vec<CallbackKind> {
    fake.sent_callbacks().iter().map(|c| c.kind).collect()
}

#[tokio::test]
async fn an_accepted_validation_is_followed_by_the_confirmation() {
    let fake = fake().await;
    let client = client_for(&fake, None);
    let mut receiver = Receiver::start(accept(Some("tnt01-inv42"))).await;
    register(&client, &receiver, ResponseType::Cancelled, C2bVersion::V2).await;

    let trans_id = fake
        .simulate_c2b(SHORTCODE, "0708374149", 1500, "INV-000042")
        .unwrap();
    assert_eq!(trans_id.len(), 10);
    assert!(
        trans_id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
        "{trans_id}"
    );

    let (path, validation) = receiver.next().await;
    assert_eq!(path, "/c2b/validate");
    assert_eq!(validation.trans_id, trans_id);
    assert_eq!(validation.transaction_type, "Pay Bill");
    assert_eq!(validation.amount, Some(kes(1500)));
    assert_eq!(validation.amount_raw, "1500.00");
    assert_eq!(validation.business_short_code, SHORTCODE);
    assert_eq!(validation.bill_ref_number, "INV-000042");
    assert_eq!(validation.msisdn, "2547 ***** 149");
    assert_eq!(validation.org_account_balance, "");
    assert_eq!(validation.third_party_trans_id, "");
    assert_eq!(validation.trans_time_raw.len(), 14);
    assert!(validation.trans_time.is_some());

    let (path, confirmation) = receiver.next().await;
    assert_eq!(path, "/c2b/confirm");
    assert_eq!(confirmation.trans_id, trans_id);
    assert_eq!(confirmation.trans_time_raw, validation.trans_time_raw);
    assert_eq!(confirmation.amount, Some(kes(1500)));
    assert_eq!(confirmation.third_party_trans_id, "tnt01-inv42");
    assert_eq!(confirmation.org_account_balance, "1500.00");

    assert_eq!(
        fake.wait_for_c2b(&trans_id, WAIT).await,
        Some(C2bStatus::Completed)
    );
    assert_eq!(
        kinds(&fake),
        [CallbackKind::C2bValidation, CallbackKind::C2bConfirmation]
    );
    assert!(fake.sent_callbacks().iter().all(|c| c.status == Some(200)));

    // A second payment: a new TransID, and the balance grows.
    let second = fake
        .simulate_c2b(SHORTCODE, "254708374149", 500, "INV-000043")
        .unwrap();
    assert_ne!(second, trans_id);
    receiver.next().await;
    let (_, confirmation) = receiver.next().await;
    assert_eq!(confirmation.trans_id, second);
    assert_eq!(confirmation.org_account_balance, "2000.00");
}

#[tokio::test]
async fn a_rejected_validation_stops_the_payment() {
    let fake = fake().await;
    let client = client_for(&fake, None);
    let reject = C2bValidationReply::Reject(C2bRejection::InvalidAccountNumber).to_json();
    let mut receiver = Receiver::start(reject).await;
    // Completed only applies when validation does not answer; a rejection is an answer.
    register(&client, &receiver, ResponseType::Completed, C2bVersion::V2).await;

    let trans_id = fake
        .simulate_c2b(SHORTCODE, "0708374149", 1500, "NO-SUCH-ACCOUNT")
        .unwrap();
    let (path, validation) = receiver.next().await;
    assert_eq!(path, "/c2b/validate");
    assert_eq!(validation.trans_id, trans_id);
    assert_eq!(validation.bill_ref_number, "NO-SUCH-ACCOUNT");

    assert_eq!(
        fake.wait_for_c2b(&trans_id, WAIT).await,
        Some(C2bStatus::Rejected {
            result_code: "C2B00012".into()
        })
    );
    assert_eq!(kinds(&fake), [CallbackKind::C2bValidation]);
    assert!(receiver.is_drained());
}

#[tokio::test]
async fn an_unanswered_validation_leaves_the_decision_to_the_response_type() {
    let fake = fake().await;
    fake.c2b_validation_timeout(Duration::from_millis(300));
    let client = client_for(&fake, None);
    let mut receiver = Receiver::start(accept(None)).await;

    // Completed, and the validation URL refuses connections: confirmed anyway.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("http://{}/c2b/validate", closed.local_addr().unwrap());
    drop(closed);
    RegisterUrls::new(receiver.url("/c2b/confirm"), refused)
        .response_type(ResponseType::Completed)
        .send(&client, &c2b_credentials())
        .await
        .unwrap();
    let first = fake
        .simulate_c2b(SHORTCODE, "0708374149", 100, "INV-1")
        .unwrap();
    let (path, confirmation) = receiver.next().await;
    assert_eq!(path, "/c2b/confirm");
    assert_eq!(confirmation.trans_id, first);
    assert_eq!(confirmation.third_party_trans_id, "");
    assert_eq!(
        fake.wait_for_c2b(&first, WAIT).await,
        Some(C2bStatus::Completed)
    );
    let sent = fake.sent_callbacks();
    assert_eq!(sent[0].kind, CallbackKind::C2bValidation);
    assert_eq!(sent[0].status, None);

    // Registering again replaces the URLs: now Cancelled, and a validation URL that
    // accepts the connection but never answers. No confirmation.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/c2b/validate", silent.local_addr().unwrap());
    RegisterUrls::new(receiver.url("/c2b/confirm"), &silent_url)
        .response_type(ResponseType::Cancelled)
        .send(&client, &c2b_credentials())
        .await
        .unwrap();
    assert_eq!(
        fake.c2b_registration(SHORTCODE),
        Some(C2bRegistration {
            confirmation_url: receiver.url("/c2b/confirm"),
            validation_url: Some(silent_url.clone()),
            response_type: ResponseType::Cancelled,
            version: C2bVersion::V2,
        })
    );
    let second = fake
        .simulate_c2b(SHORTCODE, "0708374149", 100, "INV-2")
        .unwrap();
    assert_eq!(
        fake.wait_for_c2b(&second, WAIT).await,
        Some(C2bStatus::Cancelled)
    );
    let sent = fake.sent_callbacks();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[2].kind, CallbackKind::C2bValidation);
    assert_eq!(sent[2].url, silent_url);
    assert_eq!(sent[2].status, None);
    assert!(receiver.is_drained());
}

#[tokio::test]
async fn confirmations_honour_duplicate_and_drop() {
    let fake = fake().await;
    let client = client_for(&fake, None);
    let mut receiver = Receiver::start(accept(None)).await;
    register(&client, &receiver, ResponseType::Completed, C2bVersion::V2).await;

    fake.duplicate_callbacks(true);
    let twice = fake
        .simulate_c2b(SHORTCODE, "0708374149", 10, "INV-1")
        .unwrap();
    assert_eq!(
        fake.wait_for_c2b(&twice, WAIT).await,
        Some(C2bStatus::Completed)
    );
    // Validation is a question M-Pesa asks once; only the confirmation is duplicated.
    let paths: Vec<String> = [
        receiver.next().await,
        receiver.next().await,
        receiver.next().await,
    ]
    .into_iter()
    .map(|(path, c2b)| {
        assert_eq!(c2b.trans_id, twice);
        path
    })
    .collect();
    assert_eq!(paths, ["/c2b/validate", "/c2b/confirm", "/c2b/confirm"]);

    fake.duplicate_callbacks(false).drop_callbacks(true);
    let dropped = fake
        .simulate_c2b(SHORTCODE, "0708374149", 10, "INV-2")
        .unwrap();
    assert_eq!(
        fake.wait_for_c2b(&dropped, WAIT).await,
        Some(C2bStatus::Completed)
    );
    let (path, validation) = receiver.next().await;
    assert_eq!(
        (path.as_str(), validation.trans_id),
        ("/c2b/validate", dropped)
    );
    assert!(receiver.is_drained());
}

#[tokio::test]
async fn without_a_validation_url_only_the_confirmation_is_posted() {
    let fake = fake().await;
    let mut receiver = Receiver::start(accept(None)).await;
    fake.register_c2b(
        SHORTCODE,
        C2bRegistration {
            confirmation_url: receiver.url("/c2b/confirm"),
            validation_url: None,
            response_type: ResponseType::Cancelled,
            version: C2bVersion::V2,
        },
    );
    let trans_id = fake
        .simulate_c2b(SHORTCODE, "+254 708 374 149", 75, "")
        .unwrap();
    let (path, confirmation) = receiver.next().await;
    assert_eq!(path, "/c2b/confirm");
    assert_eq!(confirmation.trans_id, trans_id);
    assert_eq!(confirmation.amount, Some(kes(75)));
    assert_eq!(
        fake.wait_for_c2b(&trans_id, WAIT).await,
        Some(C2bStatus::Completed)
    );
    assert_eq!(kinds(&fake), [CallbackKind::C2bConfirmation]);
}

#[tokio::test]
async fn simulate_c2b_refuses_what_the_sandbox_refuses() {
    let fake = fake().await;
    assert_eq!(
        fake.simulate_c2b(SHORTCODE, "0708374149", 10, "INV-1"),
        Err(FakeC2bError::NotRegistered(SHORTCODE.into()))
    );
    fake.register_c2b(
        SHORTCODE,
        C2bRegistration {
            confirmation_url: format!("{CB}/c2b/confirm"),
            validation_url: None,
            response_type: ResponseType::Completed,
            version: C2bVersion::V2,
        },
    );
    let cases = [
        ("0708374149", 0, "INV-1", "Amount"),
        ("not a phone", 10, "INV-1", "Msisdn"),
        ("+256712345678", 10, "INV-1", "Msisdn"),
        ("0708374149", 10, "A-BILL-REF-OF-21-CHAR", "BillRefNumber"),
    ];
    for (phone, amount, bill_ref, field) in cases {
        assert_eq!(
            fake.simulate_c2b(SHORTCODE, phone, amount, bill_ref),
            Err(FakeC2bError::Invalid(field)),
            "{phone} {amount} {bill_ref}"
        );
    }
    assert!(fake.sent_callbacks().is_empty());
    assert_eq!(fake.c2b_status("NOSUCHID00"), None);
}

/// Posts `body` to `path` on the fake with a valid token, as a Daraja client would.
async fn post(fake: &FakeDaraja, path: &str, body: Value) -> (u16, Value) {
    let token = DarajaClient::builder(fake.environment())
        .build()
        .unwrap()
        .access_token(&c2b_credentials())
        .await
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .post(format!("{}{path}", fake.base_url()))
        .bearer_auth(token.expose_secret())
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_simulate_endpoint_answers_like_the_sandbox() {
    let fake = fake().await;
    let client = client_for(&fake, None);
    let mut receiver = Receiver::start(accept(None)).await;
    let till = |shortcode: &str, amount: Value| {
        json!({
            "ShortCode": shortcode,
            "CommandID": "CustomerBuyGoodsOnline",
            "Amount": amount,
            "Msisdn": "254708374149",
            "BillRefNumber": null,
        })
    };

    // Nothing registered yet.
    let (status, body) = post(&fake, "/mpesa/c2b/v1/simulate", till(SHORTCODE, json!(750))).await;
    assert_eq!(status, 400);
    assert_eq!(body["errorCode"], "400.002.02");
    assert_eq!(body["errorMessage"], "Bad Request - Invalid ShortCode");

    register(&client, &receiver, ResponseType::Completed, C2bVersion::V1).await;
    for (bad, field) in [
        (till(SHORTCODE, json!("750.50")), "Amount"),
        (till(SHORTCODE, json!("750.00")), "Amount"),
        (
            json!({"ShortCode": SHORTCODE, "CommandID": "BusinessPayBill", "Amount": 1, "Msisdn": "254708374149"}),
            "CommandID",
        ),
        (
            json!({"ShortCode": SHORTCODE, "CommandID": "CustomerPayBillOnline", "Amount": 1, "Msisdn": "0708374149"}),
            "Msisdn",
        ),
    ] {
        let (status, body) = post(&fake, "/mpesa/c2b/v1/simulate", bad).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["errorMessage"],
            format!("Bad Request - Invalid {field}")
        );
    }
    assert!(fake.sent_callbacks().is_empty());

    let (status, body) = post(
        &fake,
        "/mpesa/c2b/v1/simulate",
        till(SHORTCODE, json!("750")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The key is misspelt in Daraja's answer, and so here.
    assert!(
        body["OriginatorCoversationID"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(body["ResponseCode"], "0");
    assert_eq!(
        body["ResponseDescription"],
        "Accept the service request successfully."
    );

    let (_, validation) = receiver.next().await;
    let (path, confirmation) = receiver.next().await;
    assert_eq!(path, "/c2b/confirm");
    assert_eq!(confirmation.trans_id, validation.trans_id);
    assert_eq!(confirmation.transaction_type, "Buy Goods");
    assert_eq!(confirmation.bill_ref_number, "");
    assert_eq!(confirmation.amount, Some(kes(750)));
    // Registered through v1: the MSISDN is the SHA-256 of the number, as in the fixture.
    assert_eq!(
        confirmation.msisdn,
        "bbff37cea44ac0b2d964ee0dfb8d2df8513dc7ba1b36129a929fc3fbd6dd4af4"
    );

    // The v2 path works too.
    let (status, _) = post(&fake, "/mpesa/c2b/v2/simulate", till(SHORTCODE, json!(20))).await;
    assert_eq!(status, 200);
    let (_, validation) = receiver.next().await;
    assert_eq!(validation.amount, Some(kes(20)));
}

#[tokio::test]
async fn registration_checks_its_fields() {
    let fake = fake().await;
    for (body, field) in [
        (
            json!({"ShortCode": SHORTCODE, "ResponseType": "Completed", "ConfirmationURL": "ftp://x", "ValidationURL": ""}),
            "ConfirmationURL",
        ),
        (
            json!({"ShortCode": SHORTCODE, "ResponseType": "completed", "ConfirmationURL": format!("{CB}/c"), "ValidationURL": ""}),
            "ResponseType",
        ),
        (
            json!({"ShortCode": "", "ResponseType": "Completed", "ConfirmationURL": format!("{CB}/c"), "ValidationURL": ""}),
            "ShortCode",
        ),
        (
            json!({"ShortCode": SHORTCODE, "ResponseType": "Completed", "ConfirmationURL": format!("{CB}/c"), "ValidationURL": "not a url"}),
            "ValidationURL",
        ),
    ] {
        let (status, answer) = post(&fake, "/mpesa/c2b/v2/registerurl", body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(
            answer["errorMessage"],
            format!("Bad Request - Invalid {field}")
        );
    }
    assert_eq!(fake.c2b_registration(SHORTCODE), None);
}
