//! Every error is the JSON envelope with the right status.

use std::time::Duration;

use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use edge_server::http::extract::Json;

use crate::helpers::{Backend, Options, TestApp, for_each_backend, on_both_backends, spawn_with};

on_both_backends!(
    unknown_routes_are_404_envelopes,
    wrong_methods_are_405_envelopes,
    oversized_bodies_are_413_envelopes_on_any_route,
);
for_each_backend!(
    json_bodies_are_checked_with_envelopes,
    a_chunked_body_over_the_limit_is_413_too,
    slow_requests_time_out_with_an_envelope,
    panics_are_generic_500_envelopes,
);

async fn envelope(response: reqwest::Response) -> Value {
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "error responses are JSON"
    );
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert!(error["code"].is_string(), "{body}");
    assert!(error["message"].is_string(), "{body}");
    assert!(error.get("details").is_some(), "{body}");
    body
}

async fn unknown_routes_are_404_envelopes(app: TestApp) {
    let response = app.get("/no/such/route").await;
    assert_eq!(response.status(), 404);
    let body = envelope(response).await;
    assert_eq!(body["error"]["code"], "route_not_found");
    assert_eq!(body["error"]["message"], "no route for GET /no/such/route");
}

async fn wrong_methods_are_405_envelopes(app: TestApp) {
    let response = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let body = envelope(response).await;
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

async fn oversized_bodies_are_413_envelopes_on_any_route(app: TestApp) {
    let big = vec![b'x'; 2 * 1024 * 1024];
    let response = app
        .client
        .post(app.url("/healthz"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body = envelope(response).await;
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[derive(Debug, Serialize, Deserialize)]
struct Probe {
    name: String,
    count: u32,
}

/// A server with JSON-accepting, slow and panicking routes added through
/// `Application::with_routes`, the way a team adds its own endpoints.
async fn probe_app(backend: Backend) -> TestApp {
    let routes = axum::Router::new()
        .route(
            "/probe",
            post(|Json(probe): Json<Probe>| async move { Json(probe) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("secret-detail-in-panic");
                }
                "unreachable"
            }),
        );
    let options = Options {
        vars: vec![
            ("EDGE_MAX_BODY_BYTES".into(), "1024".into()),
            ("EDGE_REQUEST_TIMEOUT_SECS".into(), "1".into()),
        ],
        routes,
        ..Options::default()
    };
    spawn_with(backend, "probe", options).await.unwrap()
}

async fn json_bodies_are_checked_with_envelopes(backend: Backend) {
    let app = probe_app(backend).await;
    let post = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = app.client.post(app.url("/probe")).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send()
    };

    let ok = post(r#"{"name":"a","count":1}"#, Some("application/json"))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.json::<Value>().await.unwrap(),
        json!({"name": "a", "count": 1})
    );

    let malformed = post(r#"{"name": "a", "#, Some("application/json"))
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(envelope(malformed).await["error"]["code"], "malformed_json");

    let wrong_shape = post(r#"{"name":"a","count":"many"}"#, Some("application/json"))
        .await
        .unwrap();
    assert_eq!(wrong_shape.status(), 422);
    let body = envelope(wrong_shape).await;
    assert_eq!(body["error"]["code"], "invalid_body");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("count"),
        "{body}"
    );

    let no_type = post(r#"{"name":"a","count":1}"#, None).await.unwrap();
    assert_eq!(no_type.status(), 415);
    assert_eq!(
        envelope(no_type).await["error"]["code"],
        "unsupported_media_type"
    );

    let too_big = app
        .client
        .post(app.url("/probe"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"name":"{}","count":1}}"#, "a".repeat(2000)))
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    assert_eq!(
        envelope(too_big).await["error"]["code"],
        "payload_too_large"
    );
}

async fn a_chunked_body_over_the_limit_is_413_too(backend: Backend) {
    let app = probe_app(backend).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..8).map(|_| Ok(vec![b' '; 512])).collect();
    let response = app
        .client
        .post(app.url("/probe"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        envelope(response).await["error"]["code"],
        "payload_too_large"
    );
}

async fn slow_requests_time_out_with_an_envelope(backend: Backend) {
    let app = probe_app(backend).await;
    let response = app.get("/slow").await;
    assert_eq!(response.status(), 408);
    assert_eq!(envelope(response).await["error"]["code"], "request_timeout");
}

async fn panics_are_generic_500_envelopes(backend: Backend) {
    let app = probe_app(backend).await;
    let response = app.get("/panic").await;
    assert_eq!(response.status(), 500);
    let body = envelope(response).await;
    assert_eq!(body["error"]["code"], "internal_error");
    assert!(!body.to_string().contains("secret-detail"), "{body}");
    // The server keeps serving.
    assert_eq!(app.get("/healthz").await.status(), 200);
}
