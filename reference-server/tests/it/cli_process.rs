//! The real `edge-server` binary run as a child process, for the `fake-*` command tests.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub const WAIT: Duration = Duration::from_secs(30);

/// `edge-server <subcommand>` with JSON logs at info level.
pub fn edge_server(subcommand: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edge-server"));
    command
        .arg(subcommand)
        .env("EDGE_LOG", "info")
        .env("EDGE_LOG_FORMAT", "json");
    command
}

/// The running binary: killed when dropped, so a failing test leaves no process behind.
/// (`std::process` with this guard rather than `tokio::process` with `kill_on_drop`, which
/// would need tokio's `process` feature and so a second build of the whole async stack
/// for the tests.)
pub struct CliProcess {
    pub child: Child,
    stdout: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl CliProcess {
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("edge-server starts");
        let (tx, stdout) = mpsc::unbounded_channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let collected = stderr.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = err.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// The next line on stdout.
    pub async fn line(&mut self) -> String {
        match tokio::time::timeout(WAIT, self.stdout.recv()).await {
            Ok(Some(line)) => line,
            _ => panic!("no line on stdout; stderr:\n{}", self.stderr()),
        }
    }

    /// Every line left on stdout until the process closes it, then its exit status (each
    /// line, and the exit after the last one, must come within [`WAIT`]).
    pub async fn finish(&mut self) -> (Vec<String>, std::process::ExitStatus) {
        let mut lines = Vec::new();
        loop {
            match tokio::time::timeout(WAIT, self.stdout.recv()).await {
                Ok(Some(line)) => lines.push(line),
                Ok(None) => break,
                Err(_) => panic!(
                    "no line on stdout for {WAIT:?}; so far:\n{}\nstderr:\n{}",
                    lines.join("\n"),
                    self.stderr()
                ),
            }
        }
        let deadline = Instant::now() + WAIT;
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "still running after closing stdout"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        (lines, exit)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle`.
    pub async fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let logged = self.stderr();
            if logged.contains(needle) {
                return logged;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never logged:\n{logged}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM and asserts a clean exit.
    #[cfg(unix)]
    pub async fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(Instant::now() < deadline, "still running after SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(exit.success(), "{exit:?}:\n{}", self.stderr());
    }
}

impl Drop for CliProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
