//! `edge-server fake-daraja`: the real binary, used over HTTP the way a team without Rust
//! code would use it.

use std::process::Command;

use edge_core::{Currency, Money};
use edge_mpesa::fake::CallbackSink;
use edge_mpesa::{
    Credentials, DarajaClient, DarajaErrorKind, Environment, StkOutcome, StkPush,
    parse_stk_callback,
};
use secrecy::SecretString;

use crate::cli_process::{CliProcess, WAIT, edge_server};

const SANDBOX_PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";

fn binary() -> Command {
    edge_server("fake-daraja")
}

fn spawn(args: &[&str]) -> CliProcess {
    let mut command = binary();
    command.args(args);
    CliProcess::spawn(command)
}

fn kes(whole: i64) -> Money {
    Money::from_major(whole, Currency::Kes).unwrap()
}

#[tokio::test]
async fn fake_daraja_serves_stk_pushes_and_posts_their_callbacks() {
    let mut fake = spawn(&["--bind", "127.0.0.1:0", "--outcome", "0700000032=cancelled"]);
    let listening = fake.line().await;
    let url = listening
        .strip_prefix("fake Daraja listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {listening:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"), "the real port is printed: {url}");
    assert_eq!(
        fake.line().await,
        format!("export EDGE_MPESA_BASE_URL={url}")
    );

    let client = DarajaClient::builder(Environment::Custom(url))
        .allow_http_callbacks(true)
        .build()
        .unwrap();
    let sink = CallbackSink::start().await.unwrap();
    let tenant = Credentials::new("any-key", SecretString::from("any-consumer-secret"))
        .shortcode("174379")
        .passkey(SecretString::from(SANDBOX_PASSKEY));

    let accepted = StkPush::new(
        "0708374149".parse().unwrap(),
        kes(1500),
        "INV-000042",
        sink.url("/cb/tenant/token/stk"),
    )
    .send(&client, &tenant)
    .await
    .unwrap();
    let received = sink.next(WAIT).await.expect("the STK callback");
    assert_eq!(received.path, "/cb/tenant/token/stk");
    let callback = parse_stk_callback(&received.body).unwrap();
    assert_eq!(callback.checkout_request_id, accepted.checkout_request_id);
    let StkOutcome::Paid(paid) = callback.outcome else {
        panic!("expected a payment, got {:?}", callback.outcome)
    };
    assert_eq!(paid.amount, Some(kes(1500)));
    assert!(paid.receipt.is_some());

    // The scripted phone cancels.
    StkPush::new(
        "0700000032".parse().unwrap(),
        kes(10),
        "INV-000043",
        sink.url("/cb/tenant/token/stk"),
    )
    .send(&client, &tenant)
    .await
    .unwrap();
    let callback = parse_stk_callback(&sink.next(WAIT).await.unwrap().body).unwrap();
    assert_eq!(callback.outcome, StkOutcome::Cancelled);

    // Another passkey is refused as Daraja refuses it.
    let wrong = tenant
        .clone()
        .passkey(SecretString::from("not-the-passkey"));
    let err = StkPush::new(
        "0708374149".parse().unwrap(),
        kes(10),
        "INV-000044",
        sink.url("/cb/tenant/token/stk"),
    )
    .send(&client, &wrong)
    .await
    .unwrap_err();
    assert_eq!(
        err.as_daraja().unwrap().kind(),
        DarajaErrorKind::WrongCredentials
    );

    // Requests and callbacks are logged; credentials and callback paths are not.
    fake.wait_for_log("Wrong credentials").await;
    let logged = fake.wait_for_log("callback sent").await;
    assert!(
        logged.contains("/mpesa/stkpush/v1/processrequest"),
        "{logged}"
    );
    assert!(logged.contains("/oauth/v1/generate"), "{logged}");
    for secret in [
        SANDBOX_PASSKEY,
        "not-the-passkey",
        "any-consumer-secret",
        "/cb/tenant/token",
    ] {
        assert!(!logged.contains(secret), "{secret} logged:\n{logged}");
    }

    // SIGTERM stops it cleanly.
    #[cfg(unix)]
    {
        fake.terminate().await;
        fake.wait_for_log("fake Daraja stopped").await;
    }
}

#[test]
fn bad_values_are_refused_with_exit_code_2() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["--merchant", "abc:top-secret-passkey"],
            "not 5 to 7 digits",
        ),
        (&["--merchant", "174379:"], "passkey of 174379 is empty"),
        (&["--app", "key-without-secret"], "KEY:SECRET"),
        (&["--outcome", "0708374149=maybe"], "insufficient-funds"),
        (&["--outcome", "12=success"], "not a phone number"),
        (&["--bind", "localhost"], "--bind"),
        (
            &["--duplicate-callbacks", "--drop-callbacks"],
            "cannot be used with",
        ),
    ];
    for (args, expected) in cases {
        let output = binary().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("top-secret-passkey"), "{stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn an_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = binary().args(["--bind", &addr]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}
