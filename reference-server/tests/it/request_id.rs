use crate::helpers::{TestApp, on_both_backends};

on_both_backends!(request_ids_are_generated_or_echoed);

async fn request_ids_are_generated_or_echoed(app: TestApp) {
    let generated = app.get("/healthz").await;
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(id.parse::<uuid::Uuid>().is_ok(), "{id}");

    let echoed = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-chosen-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "client-chosen-42");

    let replaced = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "has spaces and \"quotes\"")
        .send()
        .await
        .unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(
        id.parse::<uuid::Uuid>().is_ok(),
        "an unsafe id is replaced, got {id}"
    );
    assert_eq!(replaced.status(), 404);
}

/// A log writer that keeps the lines of the request traced by this test (those carrying
/// its request id), for assertions.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

/// The request id this test sends; only lines carrying it are kept.
const TRACED_ID: &str = "trace-me-1";

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The JSON formatter writes one whole line per call.
        if std::str::from_utf8(buf).is_ok_and(|line| line.contains(TRACED_ID)) {
            self.0.lock().unwrap().extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
    type Writer = Captured;
    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

#[test]
fn every_log_line_of_a_request_carries_its_id() {
    use axum::routing::get;

    let captured = Captured::default();
    let subscriber =
        edge_server::telemetry::subscriber(edge_server::LogFormat::Json, "info", captured.clone());
    // The process-wide subscriber, not a thread-local one: callsites that other tests'
    // servers hit first on other threads would otherwise race this thread's subscriber
    // and could stay disabled for it. Other tests' lines are dropped by the writer.
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other test installs a global subscriber");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let routes = axum::Router::new().route(
            "/logs",
            get(|| async {
                tracing::info!("inside the handler");
                tracing::warn!("a warning from the handler");
                "ok"
            }),
        );
        let app = crate::helpers::spawn_with(
            crate::helpers::Backend::Sqlite,
            "logs",
            crate::helpers::Options {
                routes,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let response = app
            .client
            .get(app.url("/logs"))
            .header("x-request-id", TRACED_ID)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    });

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|line: &serde_json::Value| line["span"]["path"] == "/logs")
        .collect();
    let messages: Vec<&str> = lines
        .iter()
        .map(|line| line["message"].as_str().unwrap())
        .collect();
    // The handler's lines and the closing line, in order (a loaded machine may add others,
    // such as a slow-statement warning; every line is checked for the id all the same).
    let expected = [
        "inside the handler",
        "a warning from the handler",
        "request finished",
    ];
    let mut rest = messages.iter();
    for want in expected {
        assert!(
            rest.any(|m| *m == want),
            "{want:?} missing or out of order in {messages:?}: {text}"
        );
    }
    for line in &lines {
        assert_eq!(line["span"]["request_id"], "trace-me-1", "{line}");
    }
}
