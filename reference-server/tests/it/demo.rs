//! `edge-server demo`: the real binary, walked through to the end, with what it prints
//! checked the way a reader would check it: every step there, and the balances adding up.

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;

use crate::cli_process::{CliProcess, edge_server};
use crate::helpers::{Backend, PgDatabase, for_each_backend, postgres_admin_url};

for_each_backend!(the_demo_completes_every_step_and_its_balances_add_up);

/// The steps, in the order the demo prints them.
const STEPS: [&str; 8] = [
    "sign-up",
    "m-pesa",
    "whatsapp",
    "top-up",
    "customer-writes",
    "charged-send",
    "failed-send",
    "deal",
];

/// `edge-server demo` with its own data directory and a free port, logging warnings only.
fn demo(data_dir: &std::path::Path, extra: &[&str]) -> Command {
    let mut command = edge_server("demo");
    command
        .env("EDGE_LOG", "warn")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--bind", "127.0.0.1:0"])
        .args(extra);
    command
}

/// The `KES 99.80` right after the first `after` in `text`, in minor units.
fn kes_after(text: &str, after: &str) -> i64 {
    let rest = &text[text
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?} in {text:?}"))
        + after.len()..];
    let amount = rest
        .trim_start()
        .strip_prefix("KES ")
        .unwrap_or_else(|| panic!("no KES amount after {after:?} in {text:?}"));
    let number: String = amount
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let (whole, cents) = number.split_once('.').unwrap();
    assert_eq!(cents.len(), 2, "{text}");
    whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

/// What the demo printed, by step: the step's own lines, and the wallet after it.
struct Printed {
    steps: HashMap<String, String>,
    /// (available, held) in minor units.
    wallets: HashMap<String, (i64, i64)>,
    order: Vec<String>,
}

fn parse(lines: &[String]) -> Printed {
    let mut printed = Printed {
        steps: HashMap::new(),
        wallets: HashMap::new(),
        order: Vec::new(),
    };
    let mut current: Option<String> = None;
    for line in lines {
        if let Some(rest) = line.strip_prefix('[') {
            let (_, rest) = rest.split_once("] ").unwrap();
            let (step, said) = rest.split_once(": ").unwrap();
            assert!(!said.starts_with("FAILED"), "{line}");
            printed.order.push(step.to_owned());
            printed.steps.insert(step.to_owned(), said.to_owned());
            current = Some(step.to_owned());
        } else if let Some(rest) = line.trim_start().strip_prefix("wallet after ") {
            let (step, balances) = rest.split_once(": ").unwrap();
            assert_eq!(Some(step), current.as_deref(), "{line}");
            printed.wallets.insert(
                step.to_owned(),
                (
                    kes_after(balances, "available"),
                    kes_after(balances, "held"),
                ),
            );
        } else if line.starts_with("      ")
            && let Some(step) = &current
        {
            // A step's second line.
            let said = printed.steps.get_mut(step).unwrap();
            said.push('\n');
            said.push_str(line.trim());
        }
    }
    printed
}

/// Checks every step is there, in order, and that the balances add up: the top-up
/// credits its amount, the charged send takes its fee, the failed one takes nothing, and
/// nothing is left held.
fn assert_balances_add_up(lines: &[String]) -> Printed {
    let printed = parse(lines);
    assert_eq!(printed.order, STEPS, "{}", lines.join("\n"));
    for step in STEPS {
        let (_, held) = printed.wallets[step];
        assert_eq!(held, 0, "held after {step}");
    }
    let available = |step: &str| printed.wallets[step].0;
    assert_eq!(available("sign-up"), 0);
    assert_eq!(available("m-pesa"), 0);
    assert_eq!(available("whatsapp"), 0);

    let top_up = kes_after(&printed.steps["top-up"], "STK push of");
    assert_eq!(top_up, 10_000);
    assert!(printed.steps["top-up"].contains("succeeded"));
    assert_eq!(available("top-up"), top_up);
    assert_eq!(available("customer-writes"), top_up);

    let charged = &printed.steps["charged-send"];
    let fee = kes_after(charged, ", fee");
    assert!(fee > 0, "{charged}");
    assert!(charged.contains("captured"), "{charged}");
    assert_eq!(available("charged-send"), top_up - fee);

    let failed = &printed.steps["failed-send"];
    assert!(kes_after(failed, ", fee") > 0, "{failed}");
    assert!(failed.contains("released"), "{failed}");
    assert_eq!(available("failed-send"), available("charged-send"));

    assert!(printed.steps["deal"].contains("moved from"));
    assert_eq!(available("deal"), available("failed-send"));
    assert!(
        lines.iter().any(|l| l == "All 8 steps succeeded."),
        "{}",
        lines.join("\n")
    );
    printed
}

async fn the_demo_completes_every_step_and_its_balances_add_up(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(PgDatabase::create(&postgres_admin_url().unwrap()).await),
    };
    let mut extra = vec!["--exit-when-done"];
    if let Some(db) = &database {
        extra.extend(["--database-url", db.url.as_str()]);
    }
    let mut process = CliProcess::spawn(demo(data_dir.path(), &extra));
    let (lines, exit) = process.finish().await;
    assert!(
        exit.success(),
        "{exit:?}\n{}\nstderr:\n{}",
        lines.join("\n"),
        process.stderr()
    );
    let database_line = &lines[0];
    match backend {
        Backend::Sqlite => assert!(database_line.contains("sqlite://"), "{database_line}"),
        Backend::Postgres => assert!(database_line.contains("postgres://"), "{database_line}"),
    }
    assert_balances_add_up(&lines);
    // With --exit-when-done there is nothing to explore, so no token is printed.
    assert!(!lines.iter().any(|l| l.contains("EDGE_TOKEN")));
    // Its database is the one asked for: on SQLite, in the data directory.
    assert_eq!(
        data_dir.path().join("edge.db").exists(),
        backend == Backend::Sqlite
    );
}

/// Without `--exit-when-done` the server keeps running, and the printed token and curl
/// line work against it, showing the balance the last step printed; SIGTERM stops it
/// cleanly.
#[cfg(unix)]
#[tokio::test]
async fn the_demo_keeps_serving_with_the_printed_token_until_stopped() {
    edge_server::install_crypto_provider();
    let data_dir = tempfile::tempdir().unwrap();
    let mut process = CliProcess::spawn(demo(data_dir.path(), &[]));
    let mut lines = Vec::new();
    let (token, curl) = loop {
        let line = process.line().await;
        lines.push(line.clone());
        if let Some(token) = line.trim().strip_prefix("export EDGE_TOKEN=") {
            let curl = process.line().await;
            lines.push(curl.clone());
            break (token.to_owned(), curl);
        }
    };
    let printed = assert_balances_add_up(&lines);

    // `curl -s -H "Authorization: Bearer $EDGE_TOKEN" http://127.0.0.1:PORT/api/v1/wallet`
    assert!(
        curl.trim()
            .starts_with("curl -s -H \"Authorization: Bearer $EDGE_TOKEN\" http://127.0.0.1:"),
        "{curl}"
    );
    let url = curl.split_whitespace().last().unwrap();
    assert!(url.ends_with("/api/v1/wallet"), "{url}");
    let client = reqwest::Client::new();
    let answer = client.get(url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let wallet: Value = answer.json().await.unwrap();
    assert_eq!(
        wallet["available"]["amount_minor"].as_i64(),
        Some(printed.wallets["deal"].0),
        "{wallet}"
    );
    assert_eq!(wallet["held"]["amount_minor"], 0);
    // Without the token: the API's error envelope.
    let anonymous = client.get(url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let envelope: Value = anonymous.json().await.unwrap();
    assert!(envelope["error"]["code"].is_string(), "{envelope}");

    process.terminate().await;
}

/// A demo that cannot start (its port is taken, or its database is not one the server
/// takes) says why on stderr and exits non-zero.
#[tokio::test]
async fn a_demo_that_cannot_start_says_why_and_fails() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let data_dir = tempfile::tempdir().unwrap();
    let mut command = edge_server("demo");
    command
        .env("EDGE_LOG", "warn")
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["--bind", &address, "--exit-when-done"]);
    let mut process = CliProcess::spawn(command);
    let (lines, exit) = process.finish().await;
    assert!(!exit.success(), "{exit:?}");
    let stderr = process.stderr();
    assert!(
        stderr.contains("cannot start") && stderr.contains(&address),
        "{stderr}"
    );
    assert!(!lines.iter().any(|l| l.starts_with('[')), "{lines:?}");

    // A database it cannot use is refused before anything starts, as a usage error.
    let mut command = edge_server("demo");
    command.args([
        "--database-url",
        "mysql://root@127.0.0.1/edge",
        "--exit-when-done",
    ]);
    let mut process = CliProcess::spawn(command);
    let (lines, exit) = process.finish().await;
    assert_eq!(exit.code(), Some(2), "{lines:?}");
    let stderr = process.stderr();
    assert!(stderr.contains("--database-url"), "{stderr}");
}
