//! Realtime chat: 1,000 connected Socket.IO clients in 100 rooms, against Edge and, in the
//! same run, against a minimal Node Socket.IO server as the baseline (issue 10).
//!
//! ```text
//! cargo bench -p reference-server --bench realtime
//!
//! EDGE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p reference-server --bench realtime
//! ```
//!
//! Needs Node 20+ and npm: the load generator (`benches/realtime/load.mjs`,
//! `socket.io-client`) and the baseline (`benches/realtime/baseline-server.mjs`,
//! `socket.io`) live in `benches/realtime/`, a small Node project; the bench runs `npm ci`
//! there first when `node_modules` is missing or older than `package-lock.json`.
//!
//! Set-up (not timed):
//! - Baseline: `node baseline-server.mjs --port 0` (its URL is read from its stdout).
//! - Edge: the real server in process (`Application`, port 0, 2 runtime worker threads),
//!   on SQLite (a file in a temporary directory), or with `EDGE_BENCH_DATABASE_URL` (or
//!   `EDGE_TEST_DATABASE_URL`) on a PostgreSQL database of its own (`edge_bench_realtime`,
//!   dropped and created again on every run, migrated by its owner, served as a runtime
//!   role that row-level security applies to). Through the REST API, as a client would:
//!   one organization (sign-up, standard plan), 9 members invited and accepted with role
//!   `user` (10 users in all), and 100 deals, one room (`deal:{id}`) each. A `429` in the
//!   set-up is waited out (its `Retry-After`) and retried.
//! - Clients: client `i` joins room `i mod 100` as user `(i div 100) mod 10`, so every
//!   room has 10 clients of 10 different users, and every user has 100 sockets, each
//!   with the user's access token (sign-up or invitation-accept token, valid 15 minutes,
//!   longer than the run) in the handshake (`auth: {token}`). The baseline gets the same
//!   list with the same kind of room names and no token. The list is a JSON file
//!   (`[{token, room}]`) handed to `load.mjs --clients`.
//!
//! Timed: the baseline first, then Edge, each with the same two scenarios (`load.mjs`,
//! one JSON line each; its header says exactly how it measures). Every client connects
//! over websocket and joins its room, then messages are sent for a 5 s warm-up (not
//! counted) and a 20 s measured window; each receiver records delivery latency (receive
//! time − the send time carried in the body; one machine, one monotonic clock).
//! 1. Saturation (closed loop): every client is a sender with one message in flight; it
//!    sends the next when the ack comes back. 1,000 messages are always in flight.
//! 2. Fixed rate (open loop): 1,000 messages per second in all (9,000 deliveries per
//!    second), spread over the 1,000 clients: latency at a load both servers can carry.
//!
//! Printed: for each server and scenario, messages sent and acknowledged, deliveries
//! received and expected (for every acknowledged message, the other 9 clients of its
//! room), delivered/s, delivery latency p50/p95/p99/max, acknowledgement latency, errors
//! by kind, and the CPU seconds the server and the generator used in the measured window
//! (from `/proc`); then the ratios edge/baseline of delivered/s and of p99 for both
//! scenarios, and `load.mjs`'s raw JSON lines. Exit status 1 if a run could not connect
//! its clients, or any run had errors or missing deliveries.
//!
//! The machine's cores are shared by the generator, the server and (for Edge) the
//! database, as they would be on a small host. The generator is one Node process by
//! default; on the 2-core development machine two processes delivered less against the
//! baseline than one (they take CPU from the server).
//!
//! Knobs (environment): `EDGE_BENCH_CLIENTS` (1000), `EDGE_BENCH_ROOMS` (100),
//! `EDGE_BENCH_USERS` (10, at most the standard plan's 25 seats), `EDGE_BENCH_SECONDS`
//! (20), `EDGE_BENCH_WARMUP_SECONDS` (5), `EDGE_BENCH_RATE` (1000 messages/s for the
//! fixed-rate scenario), `EDGE_BENCH_LOAD_PROCS` (1), `EDGE_BENCH_ONLY` (`baseline` or
//! `edge`: run one side only, no ratio), `EDGE_LOG` (the server's log filter, `warn`).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edge_server::{Application, Config};
use reqwest::StatusCode;
use serde_json::{Value, json};

const DB_NAME: &str = "edge_bench_realtime";
const ROLE: &str = "edge_bench_realtime_runtime";
const PASSWORD: &str = "correct horse battery staple";
/// Seats on the standard plan a signed-up organization starts on.
const MAX_USERS: usize = 25;

/// What the environment asked for.
struct Settings {
    clients: usize,
    rooms: usize,
    users: usize,
    seconds: u64,
    warmup: u64,
    rate: u64,
    procs: usize,
    baseline: bool,
    edge: bool,
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {value:?}")),
        _ => default,
    }
}

impl Settings {
    fn from_env() -> Self {
        let only = std::env::var("EDGE_BENCH_ONLY").unwrap_or_default();
        assert!(
            ["", "baseline", "edge"].contains(&only.as_str()),
            "EDGE_BENCH_ONLY is `baseline` or `edge`, not {only:?}"
        );
        let settings = Self {
            clients: env_number("EDGE_BENCH_CLIENTS", 1000) as usize,
            rooms: env_number("EDGE_BENCH_ROOMS", 100) as usize,
            users: env_number("EDGE_BENCH_USERS", 10) as usize,
            seconds: env_number("EDGE_BENCH_SECONDS", 20),
            warmup: env_number("EDGE_BENCH_WARMUP_SECONDS", 5),
            rate: env_number("EDGE_BENCH_RATE", 1000),
            procs: env_number("EDGE_BENCH_LOAD_PROCS", 1) as usize,
            baseline: only != "edge",
            edge: only != "baseline",
        };
        assert!(
            settings.rooms >= 1 && settings.clients >= 2 * settings.rooms,
            "need at least one room and two clients per room"
        );
        assert!(
            (1..=MAX_USERS).contains(&settings.users),
            "EDGE_BENCH_USERS must be 1 to {MAX_USERS}"
        );
        assert!(settings.seconds > 0 && settings.rate > 0 && settings.procs > 0);
        settings
    }

    /// The two scenarios: `(name, load.mjs arguments)`.
    fn scenarios(&self) -> Vec<(String, Vec<String>)> {
        let common = vec![
            "--warmup".to_owned(),
            self.warmup.to_string(),
            "--seconds".to_owned(),
            self.seconds.to_string(),
            "--procs".to_owned(),
            self.procs.to_string(),
        ];
        let mut closed = common.clone();
        closed.extend(["--window".to_owned(), "1".to_owned()]);
        let mut open = common;
        open.extend(["--rate".to_owned(), self.rate.to_string()]);
        vec![
            (
                "saturation (closed loop, 1 message in flight per client)".to_owned(),
                closed,
            ),
            (
                format!("fixed rate ({} messages/s, open loop)", self.rate),
                open,
            ),
        ]
    }
}

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/realtime")
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `npm ci` when `node_modules` is missing or older than the lock file.
fn npm_ci_if_needed(dir: &Path) {
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    let locked = modified(&dir.join("package-lock.json"));
    if installed.is_some() && installed >= locked {
        return;
    }
    println!("npm ci in {}", dir.display());
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm (Node 20+) must be installed");
    assert!(status.success(), "npm ci failed: {status}");
}

/// User and system CPU seconds a process has used so far (Linux `/proc`, in clock ticks
/// of 1/100 s), or `None` elsewhere.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// One run of `load.mjs`: its JSON line, and the CPU seconds `server_pid` used meanwhile
/// (warm-up and connection included).
fn run_load(
    url: &str,
    clients_file: &Path,
    label: &str,
    args: &[String],
    server_pid: u32,
) -> (Value, Option<f64>) {
    let cpu_before = cpu_seconds(server_pid);
    let output = Command::new("node")
        .arg("load.mjs")
        .args(["--url", url, "--label", label])
        .arg("--clients")
        .arg(clients_file)
        .args(args)
        .current_dir(node_dir())
        .stderr(Stdio::inherit())
        .output()
        .expect("node (20+) must be installed");
    let cpu = cpu_before.zip(cpu_seconds(server_pid)).map(|(a, b)| b - a);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("load.mjs printed no result ({}): {stdout}", output.status));
    let mut result: Value = serde_json::from_str(line).unwrap();
    if !output.status.success() && result.get("error").is_none() {
        result["error"] = json!(format!("load.mjs exited with {}", output.status));
    }
    (result, cpu)
}

/// The client list: client `i` in room `i mod rooms` with user `(i div rooms) mod users`'s
/// token.
fn client_list(rooms: &[String], tokens: &[Option<String>], clients: usize) -> Value {
    let list: Vec<Value> = (0..clients)
        .map(|i| {
            let room = &rooms[i % rooms.len()];
            let token = &tokens[(i / rooms.len()) % tokens.len()];
            json!({"token": token, "room": room})
        })
        .collect();
    Value::Array(list)
}

fn write_clients(dir: &Path, name: &str, list: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec(list).unwrap()).unwrap();
    path
}

/// One server's results: `(scenario, load.mjs JSON, server CPU seconds)`.
struct Side {
    name: &'static str,
    runs: Vec<(String, Value, Option<f64>)>,
}

fn number(value: &Value) -> Option<f64> {
    value.as_f64()
}

fn describe(side: &Side) {
    println!("\n{}:", side.name);
    for (scenario, r, cpu) in &side.runs {
        println!("  {scenario}:");
        if let Some(error) = r.get("error") {
            println!(
                "    FAILED: {}",
                error.as_str().unwrap_or(&error.to_string())
            );
            continue;
        }
        let ms = |v: &Value| v.as_f64().map_or("-".to_owned(), |v| format!("{v:.2} ms"));
        println!(
            "    messages sent {} acked {}; deliveries {} of {} expected; {} delivered/s ({} acked/s)",
            r["messages_sent"],
            r["messages_acked"],
            r["deliveries_received"],
            r["deliveries_expected"],
            r["delivered_per_s"],
            r["acked_per_s"]
        );
        let l = &r["latency_ms"];
        let a = &r["ack_latency_ms"];
        println!(
            "    delivery latency p50 {}  p95 {}  p99 {}  max {}",
            ms(&l["p50"]),
            ms(&l["p95"]),
            ms(&l["p99"]),
            ms(&l["max"])
        );
        println!(
            "    ack latency      p50 {}  p95 {}  p99 {}  max {}",
            ms(&a["p50"]),
            ms(&a["p95"]),
            ms(&a["p99"]),
            ms(&a["max"])
        );
        println!(
            "    errors {} {}; CPU s: server {} (whole run), generator {} (measured window); connect+join {} s",
            r["error_total"],
            r["errors"],
            cpu.map_or("-".to_owned(), |c| format!("{c:.1}")),
            r["generator_cpu_s"],
            r["connect_s"]
        );
    }
}

/// Whether a run finished with every expected delivery and no error.
fn clean(result: &Value) -> bool {
    result.get("error").is_none()
        && result["error_total"].as_u64() == Some(0)
        && result["deliveries_received"].as_u64().is_some()
        && result["deliveries_received"] == result["deliveries_expected"]
}

// ---- Baseline ----

fn run_baseline(settings: &Settings, dir: &Path) -> Side {
    let rooms: Vec<String> = (0..settings.rooms)
        .map(|_| format!("deal:{}", uuid::Uuid::now_v7()))
        .collect();
    let tokens = vec![None; settings.users];
    let file = write_clients(
        dir,
        "baseline-clients.json",
        &client_list(&rooms, &tokens, settings.clients),
    );
    let mut server: Child = Command::new("node")
        .args(["baseline-server.mjs", "--port", "0"])
        .current_dir(node_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node (20+) must be installed");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_owned();
    assert!(url.starts_with("http://"), "baseline server said {line:?}");
    let version = std::fs::read_to_string(node_dir().join("node_modules/socket.io/package.json"))
        .ok()
        .and_then(|p| serde_json::from_str::<Value>(&p).ok())
        .and_then(|p| p["version"].as_str().map(str::to_owned))
        .unwrap_or_default();
    println!(
        "baseline: Node socket.io {version} at {url} (pid {})",
        server.id()
    );
    let mut runs = Vec::new();
    for (scenario, args) in settings.scenarios() {
        let (result, cpu) = run_load(&url, &file, "baseline", &args, server.id());
        runs.push((scenario, result, cpu));
    }
    server.kill().ok();
    server.wait().ok();
    Side {
        name: "baseline (Node socket.io)",
        runs,
    }
}

// ---- Edge ----

/// The REST API as a client uses it; a `429` is waited out and retried.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        token: Option<&str>,
        path: &str,
        body: &Value,
        expect: StatusCode,
    ) -> Value {
        loop {
            let mut request = self
                .http
                .post(format!("{}/api/v1{path}", self.base))
                .json(body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait.max(1))).await;
                continue;
            }
            let text = response.text().await.unwrap();
            assert_eq!(status, expect, "POST {path}: {text}");
            return serde_json::from_str(&text).unwrap();
        }
    }
}

fn access_token(session: &Value) -> String {
    session["access_token"].as_str().unwrap().to_owned()
}

/// Organization, members and deals through the REST API: `(room names, one token per
/// user, the token lifetime in seconds)`.
async fn seed_edge(api: &Api, settings: &Settings) -> (Vec<String>, Vec<Option<String>>, Value) {
    let admin = api
        .call(
            None,
            "/auth/signup",
            &json!({
                "organization_name": "Realtime Bench",
                "name": "Bench Admin",
                "email": "admin@realtime-bench.example",
                "password": PASSWORD,
            }),
            StatusCode::CREATED,
        )
        .await;
    let admin_token = access_token(&admin);
    let mut tokens = vec![Some(admin_token.clone())];
    for i in 1..settings.users {
        let invited = api
            .call(
                Some(&admin_token),
                "/users/invitations",
                &json!({"email": format!("member{i}@realtime-bench.example"), "role": "user"}),
                StatusCode::CREATED,
            )
            .await;
        let accepted = api
            .call(
                None,
                "/invitations/accept",
                &json!({"token": invited["token"], "name": format!("Member {i}"), "password": PASSWORD}),
                StatusCode::CREATED,
            )
            .await;
        tokens.push(Some(access_token(&accepted)));
    }
    let mut rooms = Vec::with_capacity(settings.rooms);
    for i in 0..settings.rooms {
        let deal = api
            .call(
                Some(&admin_token),
                "/deals",
                &json!({"title": format!("Bench deal {i}")}),
                StatusCode::CREATED,
            )
            .await;
        rooms.push(format!("deal:{}", deal["id"].as_str().unwrap()));
    }
    (rooms, tokens, admin["expires_in"].clone())
}

async fn run_edge(settings: &Settings, dir: &Path) -> Side {
    let target = support::target(dir, DB_NAME, ROLE).await;
    let backend = target.backend;
    let pool = std::env::var("EDGE_DATABASE_MAX_CONNECTIONS").unwrap_or_default();
    let config = Config::from_vars([
        ("EDGE_DATABASE_URL", target.server_url.as_str()),
        ("EDGE_DATABASE_MAX_CONNECTIONS", pool.as_str()),
        (
            "EDGE_MIGRATE_ON_START",
            if target.migrate_on_start {
                "true"
            } else {
                "false"
            },
        ),
        ("EDGE_BIND", "127.0.0.1:0"),
        ("EDGE_DATA_DIR", dir.to_str().unwrap()),
    ])
    .unwrap();
    let pool = config.database_max_connections;
    let app = Application::build(config).await.unwrap();
    let base = format!("http://{}", app.address());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        stopped.await.ok();
    }));

    let started = Instant::now();
    let api = Api {
        http: reqwest::Client::new(),
        base: base.clone(),
    };
    let (rooms, tokens, expires_in) = seed_edge(&api, settings).await;
    let file = write_clients(
        dir,
        "edge-clients.json",
        &client_list(&rooms, &tokens, settings.clients),
    );
    println!(
        "\nedge: in process at {base} on {backend} (pool {pool}); set-up through REST in {:.1} s \
         (not timed): 1 organization, {} users, {} deals; access tokens valid {expires_in} s",
        started.elapsed().as_secs_f64(),
        tokens.len(),
        rooms.len()
    );
    let mut runs = Vec::new();
    for (scenario, args) in settings.scenarios() {
        let (result, cpu) = run_load(&base, &file, "edge", &args, std::process::id());
        let failed = result.get("error").is_some();
        runs.push((scenario, result, cpu));
        if failed {
            println!("edge: the clients could not connect or join (see the error above)");
            // The next scenario would fail the same way.
            break;
        }
    }
    stop.send(()).ok();
    server.await.unwrap().unwrap();
    Side { name: "edge", runs }
}

fn ratio(edge: &Value, baseline: &Value) -> String {
    match (number(edge), number(baseline)) {
        (Some(e), Some(b)) if b > 0.0 => format!("{:.2}", e / b),
        _ => "-".to_owned(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    edge_server::install_crypto_provider();
    let log = std::env::var("EDGE_LOG").unwrap_or_else(|_| "warn".into());
    edge_server::telemetry::init(edge_server::LogFormat::Pretty, &log);
    let settings = Settings::from_env();
    npm_ci_if_needed(&node_dir());
    let dir = tempfile::tempdir().unwrap();
    println!(
        "realtime: {} clients in {} rooms ({} per room), {} users; every client a sender; \
         warm-up {} s, measured {} s; load generator: {} Node process(es)",
        settings.clients,
        settings.rooms,
        settings.clients / settings.rooms,
        settings.users,
        settings.warmup,
        settings.seconds,
        settings.procs
    );

    let baseline = settings
        .baseline
        .then(|| run_baseline(&settings, dir.path()));
    let edge = if settings.edge {
        Some(run_edge(&settings, dir.path()).await)
    } else {
        None
    };

    let sides: Vec<&Side> = baseline.iter().chain(edge.iter()).collect();
    for side in &sides {
        describe(side);
    }
    if let (Some(baseline), Some(edge)) = (&baseline, &edge) {
        println!("\nratio edge/baseline:");
        for ((scenario, b, _), (_, e, _)) in baseline.runs.iter().zip(&edge.runs) {
            println!(
                "  {scenario}: delivered/s {}   p99 {}",
                ratio(&e["delivered_per_s"], &b["delivered_per_s"]),
                ratio(&e["latency_ms"]["p99"], &b["latency_ms"]["p99"]),
            );
        }
    }
    println!("\nload.mjs results (JSON):");
    for side in &sides {
        for (_, result, _) in &side.runs {
            println!("{result}");
        }
    }
    let failed = sides
        .iter()
        .flat_map(|side| side.runs.iter().map(move |run| (side.name, run)))
        .filter(|(_, (_, result, _))| !clean(result))
        .count();
    if failed > 0 {
        println!("\n{failed} run(s) FAILED or incomplete (errors or missing deliveries)");
        std::process::exit(1);
    }
}
