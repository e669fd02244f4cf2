//! Pays with an STK push and waits for the outcome.
//!
//! ```text
//! cargo run -p edge-examples --example stk_push -- --fake
//! cargo run -p edge-examples --example stk_push -- --fake --phone 0700000032   # scripted cancel
//! MPESA_CONSUMER_KEY=… MPESA_CONSUMER_SECRET=… MPESA_PASSKEY=… MPESA_PHONE=07… \
//!   MPESA_CALLBACK_URL=https://your.host/cb/… cargo run -p edge-examples --example stk_push
//! ```
//!
//! `--fake` runs against an in-process `FakeDaraja` with no credentials and receives the
//! callback on a local `CallbackSink`; it exits 0 when the callback matches the push and
//! STK query agrees with it, 1 otherwise (a cancelled payment is a correct outcome too). Without it the example talks to the Daraja sandbox
//! with credentials read from the environment (by this program: the SDK itself never reads
//! the environment) and, since the callback goes to your public URL, polls STK query.

use std::sync::Arc;
use std::time::Duration;

use edge_core::{Currency, Money, Msisdn, SystemClock};
use edge_mpesa::fake::{CallbackSink, FakeDaraja, FakeOutcome};
use edge_mpesa::{
    Credentials, DarajaClient, Environment, StkOutcome, StkPush, StkQuery, StkQueryOutcome,
    parse_stk_callback,
};
use secrecy::SecretString;

const SANDBOX_SHORTCODE: &str = "174379";
const SANDBOX_PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    fake: bool,
    phone: Option<String>,
    amount: i64,
}

fn args() -> Result<Args, BoxError> {
    let mut args = Args {
        fake: false,
        phone: None,
        amount: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--fake" => args.fake = true,
            "--phone" => args.phone = Some(it.next().ok_or("--phone needs a number")?),
            "--amount" => args.amount = it.next().ok_or("--amount needs KES")?.parse()?,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(args)
}

fn env(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| format!("set {name} (or pass --fake)").into())
}

fn describe(outcome: &StkOutcome) -> String {
    match outcome {
        StkOutcome::Paid(p) => format!(
            "PAID receipt={} amount={} phone={} at={}",
            p.receipt.as_deref().unwrap_or("(unknown)"),
            p.amount.map_or("(unknown)".to_owned(), |a| a.to_string()),
            p.phone
                .as_ref()
                .map_or("(unknown)".to_owned(), |m| m.to_string()),
            p.transaction_date
                .map_or("(unknown)".to_owned(), |t| t.to_rfc3339()),
        ),
        StkOutcome::Cancelled => "CANCELLED by the payer".to_owned(),
        StkOutcome::TimedOut => "TIMED OUT (no answer from the phone)".to_owned(),
        StkOutcome::InsufficientFunds => "INSUFFICIENT FUNDS".to_owned(),
        StkOutcome::WrongPin => "WRONG PIN".to_owned(),
        StkOutcome::Other { code, description } => format!("OTHER {code}: {description}"),
        other => format!("{other:?}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = args()?;
    let amount = Money::from_major(args.amount, Currency::Kes)?;
    if args.fake {
        run_fake(args, amount).await
    } else {
        run_sandbox(args, amount).await
    }
}

async fn run_fake(args: Args, amount: Money) -> Result<(), BoxError> {
    let fake = FakeDaraja::start().await?;
    fake.merchant(SANDBOX_SHORTCODE, SANDBOX_PASSKEY)
        .callback_delay(Duration::from_millis(300))
        .outcome_for_phone("254700000032", FakeOutcome::Cancelled)
        .outcome_for_phone("254700000037", FakeOutcome::TimedOut)
        .outcome_for_phone("254700000001", FakeOutcome::InsufficientFunds);
    let sink = CallbackSink::start().await?;
    println!("fake Daraja at {}", fake.base_url());

    let client = DarajaClient::builder(fake.environment())
        .allow_http_callbacks(true)
        .build()?;
    let tenant = Credentials::new("demo-key", SecretString::from("demo-secret"))
        .shortcode(SANDBOX_SHORTCODE)
        .passkey(SecretString::from(SANDBOX_PASSKEY));
    let phone: Msisdn = args.phone.as_deref().unwrap_or("0708374149").parse()?;

    let accepted = StkPush::new(phone, amount, "INV-DEMO-1", sink.url("/cb/demo/stk"))
        .description("Demo payment")
        .send(&client, &tenant)
        .await?;
    println!("checkout request id: {}", accepted.checkout_request_id);

    let callback = sink
        .next(Duration::from_secs(30))
        .await
        .ok_or("no callback within 30 s")?;
    let callback = parse_stk_callback(&callback.body)?;
    println!(
        "callback for {}: result code {} ({})",
        callback.checkout_request_id, callback.result_code, callback.result_desc
    );
    println!("final outcome: {}", describe(&callback.outcome));
    if callback.checkout_request_id != accepted.checkout_request_id {
        return Err("the callback is for another checkout request".into());
    }

    match StkQuery::new(&accepted.checkout_request_id)
        .send(&client, &tenant)
        .await?
    {
        StkQueryOutcome::Finished(query) if query.result_code == callback.result_code => {
            println!("STK query agrees: result code {}", query.result_code);
            Ok(())
        }
        StkQueryOutcome::Finished(query) => Err(format!(
            "STK query says {} but the callback said {}",
            query.result_code, callback.result_code
        )
        .into()),
        other => Err(format!("STK query has no final answer after the callback: {other:?}").into()),
    }
}

async fn run_sandbox(args: Args, amount: Money) -> Result<(), BoxError> {
    let client = DarajaClient::builder(Environment::Sandbox)
        .clock(Arc::new(SystemClock))
        .build()?;
    let tenant = Credentials::new(
        env("MPESA_CONSUMER_KEY")?,
        SecretString::from(env("MPESA_CONSUMER_SECRET")?),
    )
    .shortcode(std::env::var("MPESA_SHORTCODE").unwrap_or_else(|_| SANDBOX_SHORTCODE.into()))
    .passkey(SecretString::from(
        std::env::var("MPESA_PASSKEY").unwrap_or_else(|_| SANDBOX_PASSKEY.into()),
    ));
    let phone: Msisdn = match args.phone {
        Some(p) => p.parse()?,
        None => env("MPESA_PHONE")?.parse()?,
    };
    let callback_url = env("MPESA_CALLBACK_URL")?;

    let accepted = StkPush::new(phone, amount, "INV-DEMO-1", callback_url)
        .description("Demo payment")
        .send(&client, &tenant)
        .await?;
    println!("checkout request id: {}", accepted.checkout_request_id);

    // Poll politely: first after 20 s, then every 15 s, for up to about 3 minutes.
    tokio::time::sleep(Duration::from_secs(20)).await;
    for _ in 0..12 {
        match StkQuery::new(&accepted.checkout_request_id)
            .send(&client, &tenant)
            .await
        {
            Ok(StkQueryOutcome::Finished(done)) => {
                println!("final outcome: {}", describe(&done.outcome));
                return Ok(());
            }
            Ok(_) => println!("still pending…"),
            Err(e) if e.is_retryable() => println!("retryable error: {e}"),
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    println!("no outcome after ~3 minutes; reconcile later with STK query");
    Ok(())
}
