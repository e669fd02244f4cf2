//! Behaviour against the fake: callbacks, outcomes, failures, tokens, concurrency.

use std::time::Duration;

use edge_core::IdempotencyKey;
use edge_mpesa::fake::{CallbackSink, FakeDaraja, FakeOutcome};
use edge_mpesa::{
    B2cCommand, B2cPayment, Credentials, DarajaClient, DarajaErrorKind, Environment, Error,
    StkOutcome, StkPush, StkQuery, StkQueryOutcome, parse_result, parse_stk_callback,
};
use secrecy::SecretString;

use crate::support::*;

const WAIT: Duration = Duration::from_secs(10);

async fn push(client: &DarajaClient, sink: &CallbackSink, to: &str, amount: i64) -> String {
    StkPush::new(phone(to), kes(amount), "INV-1", sink.url("/stk"))
        .send(client, &sandbox_credentials())
        .await
        .unwrap()
        .checkout_request_id
}

#[tokio::test]
async fn the_fake_posts_scripted_callbacks_by_phone_and_amount() {
    let fake = fake().await;
    fake.outcome_for_phone("254700000032", FakeOutcome::Cancelled)
        .outcome_for_phone("254700000037", FakeOutcome::TimedOut)
        .outcome_for_phone("254700000001", FakeOutcome::InsufficientFunds)
        .outcome_for_phone("254700002001", FakeOutcome::WrongPin)
        .outcome_for_amount(
            17,
            FakeOutcome::Code {
                code: "17".into(),
                description: "Rule limited".into(),
            },
        );
    let sink = CallbackSink::start().await.unwrap();
    let client = client_for(&fake, None);

    let cases = [
        ("0700000032", 10, StkOutcome::Cancelled),
        ("0700000037", 10, StkOutcome::TimedOut),
        ("0700000001", 10, StkOutcome::InsufficientFunds),
        ("0700002001", 10, StkOutcome::WrongPin),
    ];
    for (to, amount, expected) in cases {
        let id = push(&client, &sink, to, amount).await;
        let received = sink.next(WAIT).await.expect("a callback");
        assert_eq!(received.path, "/stk");
        let cb = parse_stk_callback(&received.body).unwrap();
        assert_eq!(cb.checkout_request_id, id);
        assert_eq!(cb.outcome, expected);
    }

    let id = push(&client, &sink, "0708374149", 17).await;
    let cb = parse_stk_callback(&sink.next(WAIT).await.unwrap().body).unwrap();
    assert_eq!(cb.checkout_request_id, id);
    assert!(matches!(cb.outcome, StkOutcome::Other { ref code, .. } if code.as_str() == "17"));

    let id = push(&client, &sink, "0708374149", 1500).await;
    let cb = parse_stk_callback(&sink.next(WAIT).await.unwrap().body).unwrap();
    assert_eq!(cb.checkout_request_id, id);
    let StkOutcome::Paid(paid) = cb.outcome else {
        panic!("expected paid")
    };
    assert_eq!(paid.amount, Some(kes(1500)));
    assert_eq!(paid.phone, Some(phone("0708374149")));
    assert!(paid.receipt.is_some() && paid.transaction_date.is_some());
}

#[tokio::test]
async fn duplicated_callbacks_arrive_twice_with_the_same_ids() {
    let fake = fake().await;
    fake.duplicate_callbacks(true);
    let sink = CallbackSink::start().await.unwrap();
    let client = client_for(&fake, None);
    let id = push(&client, &sink, "0708374149", 5).await;
    let first = parse_stk_callback(&sink.next(WAIT).await.unwrap().body).unwrap();
    let second = parse_stk_callback(&sink.next(WAIT).await.unwrap().body).unwrap();
    assert_eq!(first, second);
    assert_eq!(first.checkout_request_id, id);
}

#[tokio::test]
async fn a_dropped_callback_leaves_stk_query_as_the_truth() {
    let fake = fake().await;
    // Long enough that the first query surely comes before the outcome is decided.
    fake.drop_callbacks(true)
        .callback_delay(Duration::from_millis(1500));
    fake.outcome_for_phone("254700000032", FakeOutcome::Cancelled);
    let sink = CallbackSink::start().await.unwrap();
    let client = client_for(&fake, None);
    let creds = sandbox_credentials();
    let id = push(&client, &sink, "0700000032", 5).await;

    // Before the outcome is decided the query is pending, not an error.
    let first = StkQuery::new(&id).send(&client, &creds).await.unwrap();
    assert_eq!(first, StkQueryOutcome::Pending);
    let mut outcome = None;
    for _ in 0..400 {
        match StkQuery::new(&id).send(&client, &creds).await.unwrap() {
            StkQueryOutcome::Pending => tokio::time::sleep(Duration::from_millis(50)).await,
            StkQueryOutcome::Finished(done) => {
                outcome = Some(done);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let outcome = outcome.expect("an outcome within 20 s");
    assert_eq!(outcome.outcome, StkOutcome::Cancelled);
    assert_eq!(outcome.result_code.as_str(), "1032");
    assert_eq!(outcome.checkout_request_id, id);
    assert!(sink.next(Duration::from_millis(100)).await.is_none());
    assert!(fake.sent_callbacks().is_empty());
}

#[tokio::test]
async fn server_errors_surface_as_daraja_errors_that_may_have_been_processed() {
    let fake = fake().await;
    fake.fail_next(1);
    let sink = CallbackSink::start().await.unwrap();
    let client = client_for(&fake, None);
    let err = StkPush::new(phone("0708374149"), kes(5), "INV-1", sink.url("/stk"))
        .send(&client, &sandbox_credentials())
        .await
        .unwrap_err();
    let daraja = err.as_daraja().unwrap();
    assert_eq!(daraja.kind(), DarajaErrorKind::ServerError);
    assert_eq!(daraja.status, 500);
    assert!(err.may_have_been_sent() && !err.is_retryable());
    // The next one goes through.
    push(&client, &sink, "0708374149", 5).await;
}

#[tokio::test]
async fn wrong_passkey_is_wrong_credentials() {
    let fake = fake().await;
    let client = client_for(&fake, None);
    let creds = Credentials::new("k", SecretString::from("s"))
        .shortcode("174379")
        .passkey(SecretString::from("not-the-passkey"));
    let err = StkPush::new(phone("0708374149"), kes(5), "INV-1", format!("{CB}/stk"))
        .send(&client, &creds)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_daraja().unwrap().kind(),
        DarajaErrorKind::WrongCredentials
    );
}

#[tokio::test]
async fn a_timeout_surfaces_as_may_have_been_sent() {
    let fake = fake().await;
    fake.response_delay(Duration::from_secs(5));
    let client = DarajaClient::builder(fake.environment())
        .allow_http_callbacks(true)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = StkPush::new(phone("0708374149"), kes(5), "INV-1", format!("{CB}/stk"))
        .send(&client, &sandbox_credentials())
        .await
        .unwrap_err();
    assert_eq!(err, Error::Timeout);
    assert!(err.may_have_been_sent());
    assert!(!err.is_retryable());
    // The fake did receive the push.
    assert_eq!(
        fake.requests_to("/mpesa/stkpush/v1/processrequest").len(),
        1
    );
}

#[tokio::test]
async fn a_refused_connection_surfaces_as_not_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = DarajaClient::builder(Environment::Custom(format!("http://{addr}")))
        .allow_http_callbacks(true)
        .build()
        .unwrap();
    let err = StkPush::new(phone("0708374149"), kes(5), "INV-1", format!("{CB}/stk"))
        .send(&client, &sandbox_credentials())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(!err.may_have_been_sent());
    assert!(err.is_retryable());
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_push_succeeds() {
    let fake = fake().await;
    fake.drop_callbacks(true);
    let client = client_for(&fake, None);
    let creds = sandbox_credentials();
    StkPush::new(phone("0708374149"), kes(5), "INV-1", format!("{CB}/stk"))
        .send(&client, &creds)
        .await
        .unwrap();
    assert_eq!(fake.token_requests(), 1);

    fake.expire_tokens();
    let response = StkPush::new(phone("0708374149"), kes(6), "INV-2", format!("{CB}/stk"))
        .send(&client, &creds)
        .await
        .unwrap();
    assert!(response.checkout_request_id.starts_with("ws_CO_"));
    assert_eq!(fake.token_requests(), 2);
    assert_eq!(
        fake.requests_to("/mpesa/stkpush/v1/processrequest").len(),
        3
    );
}

#[tokio::test]
async fn a_token_that_stays_invalid_is_retried_only_once() {
    let fake = fake().await;
    fake.reject_tokens(true);
    let client = client_for(&fake, None);
    let err = StkPush::new(phone("0708374149"), kes(5), "INV-1", format!("{CB}/stk"))
        .send(&client, &sandbox_credentials())
        .await
        .unwrap_err();
    assert_eq!(
        err.as_daraja().unwrap().kind(),
        DarajaErrorKind::InvalidToken
    );
    assert!(!err.may_have_been_sent());
    assert_eq!(
        fake.requests_to("/mpesa/stkpush/v1/processrequest").len(),
        2
    );
    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test]
async fn a_different_secret_never_gets_a_cached_token() {
    let fake = fake().await;
    fake.app("shared-key", "right-secret");
    let client = client_for(&fake, None);
    let right = Credentials::new("shared-key", SecretString::from("right-secret"));
    let wrong = Credentials::new("shared-key", SecretString::from("wrong-secret"));
    client.access_token(&right).await.unwrap();
    let err = client.access_token(&wrong).await.unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedResponse { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test]
async fn b2c_results_are_posted_to_the_result_url_and_duplicates_refused() {
    let fake = fake().await;
    fake.outcome_for_phone("254700002001", FakeOutcome::WrongPin);
    let sink = CallbackSink::start().await.unwrap();
    let client = client_for(&fake, None);
    let creds = initiator_credentials("600997");
    let payout = |key: &str, to: &str| {
        B2cPayment::new(
            IdempotencyKey::new(key).unwrap(),
            B2cCommand::BusinessPayment,
            kes(2500),
            phone(to),
            "Refund",
            sink.url("/b2c/result"),
            sink.url("/b2c/timeout"),
        )
    };
    let accepted = payout("payout-1", "0708374149")
        .send(&client, &creds)
        .await
        .unwrap();
    let result = parse_result(&sink.next(WAIT).await.unwrap().body).unwrap();
    assert_eq!(result.originator_conversation_id, "payout-1");
    assert_eq!(result.conversation_id, accepted.conversation_id);
    let paid = result.b2c_payment().unwrap();
    assert_eq!(paid.amount, Some(kes(2500)));

    let err = payout("payout-1", "0708374149")
        .send(&client, &creds)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_daraja().unwrap().kind(),
        DarajaErrorKind::DuplicateRequest
    );
    assert!(!err.may_have_been_sent());

    payout("payout-2", "0700002001")
        .send(&client, &creds)
        .await
        .unwrap();
    let result = parse_result(&sink.next(WAIT).await.unwrap().body).unwrap();
    assert_eq!(result.result_code.as_str(), "2001");
    assert!(result.b2c_payment().is_none());
}

#[tokio::test]
async fn unknown_paths_fail_loudly_and_are_recorded() {
    let fake = fake().await;
    let client = reqwest_client();
    let token = DarajaClient::builder(fake.environment())
        .build()
        .unwrap()
        .access_token(&sandbox_credentials())
        .await
        .unwrap();
    let response = client
        .post(format!("{}/mpesa/nothing/v1/here", fake.base_url()))
        .bearer_auth(secrecy::ExposeSecret::expose_secret(&token))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(fake.requests_to("/mpesa/nothing/v1/here").len(), 1);
}

fn reqwest_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_pushes_over_fifty_tenants_mint_fifty_tokens() {
    let fake = FakeDaraja::start().await.unwrap();
    fake.drop_callbacks(true);
    let tenants: Vec<Credentials> = (0..50)
        .map(|i| {
            let shortcode = format!("{}", 600_100 + i);
            let passkey = format!("passkey-{i}");
            fake.merchant(&shortcode, &passkey);
            Credentials::new(
                format!("key-{i}"),
                SecretString::from(format!("secret-{i}")),
            )
            .shortcode(shortcode)
            .passkey(SecretString::from(passkey))
        })
        .collect();
    let client = client_for(&fake, None);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..1000 {
        let client = client.clone();
        let creds = tenants[n % 50].clone();
        tasks.spawn(async move {
            StkPush::new(
                phone(&format!("07{:08}", n)),
                kes(10 + n as i64),
                format!("INV-{n}"),
                format!("{CB}/stk"),
            )
            .send(&client, &creds)
            .await
        });
    }
    let mut ok = 0;
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
        ok += 1;
    }
    assert_eq!(ok, 1000);
    assert_eq!(fake.token_requests(), 50);
    assert_eq!(
        fake.requests_to("/mpesa/stkpush/v1/processrequest").len(),
        1000
    );
}

#[tokio::test]
async fn tokens_are_refreshed_at_expires_in_minus_the_margin() {
    let fake = fake().await;
    fake.drop_callbacks(true).token_lifetime(300);
    let clock = fixture_clock();
    let client = DarajaClient::builder(fake.environment())
        .clock(std::sync::Arc::new(clock.clone()))
        .token_refresh_margin(Duration::from_secs(120))
        .build()
        .unwrap();
    let creds = sandbox_credentials();
    client.access_token(&creds).await.unwrap();
    clock.advance(chrono::Duration::seconds(179));
    client.access_token(&creds).await.unwrap();
    assert_eq!(fake.token_requests(), 1, "still inside 300 - 120 seconds");
    clock.advance(chrono::Duration::seconds(1));
    client.access_token(&creds).await.unwrap();
    assert_eq!(fake.token_requests(), 2, "refreshed at 180 seconds");
}

/// A clock that moves one second forward every time it is read.
#[derive(Debug)]
struct TickingClock(std::sync::Mutex<chrono::DateTime<chrono::Utc>>);

impl edge_core::Clock for TickingClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let mut now = self.0.lock().unwrap();
        *now += chrono::Duration::seconds(1);
        *now
    }
}

#[tokio::test]
async fn timestamp_and_password_come_from_one_clock_reading() {
    let fake = fake().await;
    fake.drop_callbacks(true);
    let start = edge_core::Clock::now(&fixture_clock());
    let client = DarajaClient::builder(fake.environment())
        .clock(std::sync::Arc::new(TickingClock(std::sync::Mutex::new(
            start,
        ))))
        .build()
        .unwrap();
    let creds = sandbox_credentials();
    // Every read moves the clock by a second: a second read for the password would give a
    // password for another timestamp, and the fake would answer "Wrong credentials".
    for n in 0..3 {
        StkPush::new(
            phone("0708374149"),
            kes(5 + n),
            "INV-1",
            format!("{CB}/stk"),
        )
        .send(&client, &creds)
        .await
        .unwrap();
    }
    let id = fake.requests_to("/mpesa/stkpush/v1/processrequest")[0]
        .json()
        .unwrap();
    assert_eq!(id["Timestamp"].as_str().unwrap().len(), 14);
    let query = StkQuery::new("ws_CO_unknown")
        .send(&client, &creds)
        .await
        .unwrap_err();
    assert_eq!(
        query.as_daraja().unwrap().kind(),
        DarajaErrorKind::BadRequest
    );
}

#[tokio::test]
async fn every_initiator_api_posts_its_result_shape() {
    use edge_mpesa::{
        AccountBalanceQuery, B2bCommand, B2bPayment, Reversal, TransactionStatusQuery,
    };
    let fake = fake().await;
    let sink = CallbackSink::start().await.unwrap();
    let client = client_for(&fake, None);
    let creds = initiator_credentials("600984");

    AccountBalanceQuery::new("Daily", sink.url("/balance"), sink.url("/timeout"))
        .send(&client, &creds)
        .await
        .unwrap();
    let got = sink.next(WAIT).await.unwrap();
    assert_eq!(got.path, "/balance");
    let balance = parse_result(&got.body).unwrap();
    assert_eq!(balance.account_balances()[1].available, Some(kes(2500)));

    Reversal::new(
        "TESTRCPT01",
        kes(1500),
        "Duplicate",
        sink.url("/reversal"),
        sink.url("/timeout"),
    )
    .send(&client, &creds)
    .await
    .unwrap();
    let reversal = parse_result(&sink.next(WAIT).await.unwrap().body).unwrap();
    assert_eq!(reversal.amount(), Some(kes(1500)));
    assert!(reversal.completed_at().is_some());

    TransactionStatusQuery::new("Check", sink.url("/status"), sink.url("/timeout"))
        .transaction_id("TESTRCPT02")
        .send(&client, &creds)
        .await
        .unwrap();
    let status = parse_result(&sink.next(WAIT).await.unwrap().body).unwrap();
    assert_eq!(
        status.parameter_text("ReceiptNo").as_deref(),
        Some("TESTRCPT02")
    );
    assert_eq!(status.parameter("TransactionReason").unwrap().value, None);

    B2bPayment::new(
        B2bCommand::BusinessPayBill,
        kes(300),
        "600000",
        "ACC-1",
        "Supplier",
        sink.url("/b2b"),
        sink.url("/timeout"),
    )
    .send(&client, &creds)
    .await
    .unwrap();
    let b2b = parse_result(&sink.next(WAIT).await.unwrap().body).unwrap();
    assert!(b2b.is_success());
    assert_eq!(b2b.amount(), Some(kes(300)));
}

#[tokio::test]
async fn start_on_binds_the_address_or_says_which_one_it_could_not() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = FakeDaraja::start_on(addr).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&addr.to_string()), "{message}");
    drop(taken);

    let fake = FakeDaraja::start_on(addr).await.unwrap();
    assert_eq!(fake.local_addr(), addr);
    assert_eq!(fake.base_url(), format!("http://{addr}"));

    // An unspecified address is reached through loopback.
    let any = FakeDaraja::start_on("0.0.0.0:0".parse().unwrap())
        .await
        .unwrap();
    assert!(any.local_addr().ip().is_unspecified());
    assert_eq!(
        any.base_url(),
        format!("http://127.0.0.1:{}", any.local_addr().port())
    );
    any.merchant("174379", SANDBOX_PASSKEY);
    let client = client_for(&any, None);
    client.access_token(&sandbox_credentials()).await.unwrap();
}

#[tokio::test]
async fn the_observer_hears_of_requests_and_callbacks_but_no_secrets() {
    use edge_mpesa::fake::{CallbackKind, FakeEvent};
    let fake = fake().await;
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::<FakeEvent>::new()));
    let seen = events.clone();
    fake.on_event(move |event| seen.lock().unwrap().push(event.clone()));
    let sink = CallbackSink::start().await.unwrap();
    let client = client_for(&fake, None);
    push(&client, &sink, "0708374149", 5).await;
    sink.next(WAIT).await.unwrap();
    let wrong = Credentials::new("k", SecretString::from("s"))
        .shortcode("174379")
        .passkey(SecretString::from("not-the-passkey"));
    StkPush::new(phone("0708374149"), kes(5), "INV-1", format!("{CB}/stk"))
        .send(&client, &wrong)
        .await
        .unwrap_err();
    fake.wait_for_callbacks(1, WAIT).await;

    let events = events.lock().unwrap().clone();
    let stk = "/mpesa/stkpush/v1/processrequest";
    assert!(events.contains(&FakeEvent::Answered {
        method: "GET".into(),
        path: "/oauth/v1/generate".into(),
        status: 200,
        error: None,
    }));
    assert!(events.contains(&FakeEvent::Answered {
        method: "POST".into(),
        path: stk.into(),
        status: 200,
        error: None,
    }));
    assert!(events.contains(&FakeEvent::Answered {
        method: "POST".into(),
        path: stk.into(),
        status: 500,
        error: Some("500.001.1001 Wrong credentials".into()),
    }));
    assert!(events.contains(&FakeEvent::CallbackSent {
        kind: CallbackKind::Stk,
        url: sink.url("/stk"),
        status: Some(200),
    }));
    let text = format!("{events:?}");
    for secret in [
        SANDBOX_PASSKEY,
        "sandbox-secret",
        "not-the-passkey",
        "Bearer",
        "Basic",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}
