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
