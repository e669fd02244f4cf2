//! The real `socket.io-client` from npm, driven from the tests: `tests/js/driver.mjs`
//! runs as a child process, reads JSON commands on stdin and writes what its sockets see
//! as JSON lines on stdout.
//!
//! The first test that needs it runs `npm ci` in `tests/js` when `node_modules` is
//! missing (once per test process). Without `node` and `npm` the tests say `SKIPPED` and
//! pass.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{OnceCell, mpsc};

/// How long to wait for something the server should do.
pub const WAIT: Duration = Duration::from_secs(15);

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

static INSTALLED: OnceCell<Result<(), String>> = OnceCell::const_new();

/// `npm ci` in `tests/js`, once per process, when `node_modules` is missing.
async fn install() -> Result<(), String> {
    INSTALLED
        .get_or_init(|| async {
            let dir = js_dir();
            if dir
                .join("node_modules/socket.io-client/package.json")
                .exists()
            {
                return Ok(());
            }
            tokio::task::spawn_blocking(move || {
                let output = Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(&dir)
                    .output()
                    .map_err(|e| format!("npm ci: {e}"))?;
                if output.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "npm ci failed: {}",
                        String::from_utf8_lossy(&output.stderr)
                    ))
                }
            })
            .await
            .map_err(|e| e.to_string())?
        })
        .await
        .clone()
}

/// The driver process and everything it has written that no one has consumed yet.
pub struct JsClients {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    backlog: Vec<Value>,
    seq: u64,
    stderr: Arc<Mutex<String>>,
}

impl Drop for JsClients {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Starts the driver against `base_url`, or says `SKIPPED` and returns `None` when Node
/// is not installed.
pub async fn start(test: &str, base_url: &str) -> Option<JsClients> {
    if !runs("node") || !runs("npm") {
        crate::helpers::skip(test, "node and npm are not installed");
        return None;
    }
    if let Err(err) = install().await {
        panic!("{err}");
    }
    let mut child = Command::new("node")
        .arg("driver.mjs")
        .current_dir(js_dir())
        .env("EDGE_URL", base_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let stdin = child.stdin.take().unwrap();
    let (tx, lines) = mpsc::unbounded_channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let value = serde_json::from_str(&line)
                .unwrap_or_else(|_| json!({"op": "unparsed", "line": line}));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err = child.stderr.take().unwrap();
    let collected = stderr.clone();
    std::thread::spawn(move || {
        let mut text = String::new();
        err.read_to_string(&mut text).ok();
        collected.lock().unwrap().push_str(&text);
    });
    let mut clients = JsClients {
        child,
        stdin,
        lines,
        backlog: Vec::new(),
        seq: 0,
        stderr,
    };
    let ready = clients.wait_for(|l| l["op"] == "ready").await;
    assert_eq!(ready["client"], "socket.io-client");
    Some(clients)
}

impl JsClients {
    fn send(&mut self, mut command: Value) -> u64 {
        self.seq += 1;
        command["seq"] = json!(self.seq);
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.seq
    }

    /// Waits for the first line (already seen or to come) that `matches`, and consumes it.
    pub async fn wait_for(&mut self, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(at) = self.backlog.iter().position(&matches) {
                return self.backlog.remove(at);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.lines.recv()).await {
                Ok(Some(line)) => self.backlog.push(line),
                Ok(None) | Err(_) => panic!(
                    "socket.io-client: nothing matching arrived; seen {:#?}; stderr {}",
                    self.backlog,
                    self.stderr.lock().unwrap()
                ),
            }
        }
    }

    /// Collects what arrives during `settle`, on top of what is already there, and
    /// consumes it all.
    pub async fn drain(&mut self, settle: Duration) -> Vec<Value> {
        let deadline = Instant::now() + settle;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.lines.recv()).await {
                Ok(Some(line)) => self.backlog.push(line),
                Ok(None) | Err(_) => break,
            }
        }
        std::mem::take(&mut self.backlog)
    }

    /// Connects socket `name` (`token: None` sends no auth at all). Returns the
    /// `connected` or `connect_error` line.
    pub async fn connect(
        &mut self,
        name: &str,
        token: Option<&str>,
        transports: Option<&[&str]>,
    ) -> Value {
        let seq = self.send(json!({
            "op": "connect", "name": name, "token": token, "transports": transports,
        }));
        self.wait_for(|l| l["seq"] == seq && (l["op"] == "connected" || l["op"] == "connect_error"))
            .await
    }

    /// Connects socket `name` over WebSocket only, and expects it to succeed.
    pub async fn connect_ok(&mut self, name: &str, token: &str) -> Value {
        let line = self.connect(name, Some(token), Some(&["websocket"])).await;
        assert_eq!(line["op"], "connected", "{line}");
        line
    }

    /// Emits `event` with `data` and returns the server's acknowledgement.
    pub async fn emit(&mut self, name: &str, event: &str, data: Value) -> Value {
        let seq = self.send(json!({"op": "emit", "name": name, "event": event, "data": data}));
        let line = self.wait_for(|l| l["op"] == "ack" && l["seq"] == seq).await;
        assert_eq!(
            line["error"],
            Value::Null,
            "{event} was not acknowledged: {line}"
        );
        line["ack"].clone()
    }

    /// Emits and expects `{ok: true}`.
    pub async fn emit_ok(&mut self, name: &str, event: &str, data: Value) -> Value {
        let ack = self.emit(name, event, data.clone()).await;
        assert_eq!(ack["ok"], true, "{event} {data} answered {ack}");
        ack
    }

    /// The next `event` socket `name` receives (its payload).
    pub async fn event(&mut self, name: &str, event: &str) -> Value {
        self.wait_for(|l| l["op"] == "event" && l["name"] == name && l["event"] == event)
            .await["data"]
            .clone()
    }

    /// The next `event` socket `name` receives whose payload `matches`.
    pub async fn event_where(
        &mut self,
        name: &str,
        event: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_for(|l| {
            l["op"] == "event" && l["name"] == name && l["event"] == event && matches(&l["data"])
        })
        .await["data"]
            .clone()
    }

    /// Asserts that socket `name` receives no `event` within `within` (and drops any
    /// other line of that socket seen meanwhile only if it is that event).
    pub async fn no_event(&mut self, name: &str, event: &str, within: Duration) {
        self.no_event_where(name, event, within, |_| true).await;
    }

    /// Asserts that socket `name` receives no `event` whose payload `matches` within
    /// `within`.
    pub async fn no_event_where(
        &mut self,
        name: &str,
        event: &str,
        within: Duration,
        matches: impl Fn(&Value) -> bool,
    ) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.backlog.iter().find(|l| {
                l["op"] == "event"
                    && l["name"] == name
                    && l["event"] == event
                    && matches(&l["data"])
            }) {
                panic!("{name} received an unexpected {event}: {line}");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.lines.recv()).await {
                Ok(Some(line)) => self.backlog.push(line),
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// The transport socket `name` uses now (`polling` or `websocket`).
    pub async fn transport(&mut self, name: &str) -> String {
        let seq = self.send(json!({"op": "transport", "name": name}));
        self.wait_for(|l| l["op"] == "transport" && l["seq"] == seq)
            .await["transport"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Closes socket `name`.
    pub async fn close(&mut self, name: &str) {
        let seq = self.send(json!({"op": "close", "name": name}));
        self.wait_for(|l| l["op"] == "closed" && l["seq"] == seq)
            .await;
    }
}
