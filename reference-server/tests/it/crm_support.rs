//! Helpers shared by the ticket, activity and target tests.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::tenancy::send;

/// Sends a request and checks its status; returns the JSON body (`null` for none).
pub async fn expect(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let response = send(app, token, method.clone(), path, body).await;
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "{method} {path}: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

/// The `(field, message)` pairs of a 422 validation answer, after checking the envelope.
pub fn field_errors(body: &Value) -> Vec<(String, String)> {
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_owned(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The ids of a page's items, in order.
pub fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The actions of the audit entries about one record, newest first.
pub async fn audit_actions(app: &TestApp, token: &str, target: &str) -> Vec<String> {
    let page = expect(
        app,
        token,
        Method::GET,
        &format!("/audit-log?target_id={target}"),
        None,
        200,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

/// Switches the organization to `record_visibility: own`.
pub async fn only_own_records(app: &TestApp, admin: &str) {
    let mut settings = expect(app, admin, Method::GET, "/organization/settings", None, 200).await;
    settings["record_visibility"] = json!("own");
    expect(
        app,
        admin,
        Method::PUT,
        "/organization/settings",
        Some(settings),
        200,
    )
    .await;
}

/// Creates a relationship (a customer); returns its id.
pub async fn relationship(app: &TestApp, token: &str, body: Value) -> String {
    let created = expect(app, token, Method::POST, "/relationships", Some(body), 201).await;
    created["id"].as_str().unwrap().to_owned()
}

/// Creates a prospect (a lead); returns its id.
pub async fn prospect(app: &TestApp, token: &str, body: Value) -> String {
    let created = expect(app, token, Method::POST, "/prospects", Some(body), 201).await;
    created["id"].as_str().unwrap().to_owned()
}

/// The user id of a login or sign-up answer.
pub fn user_id(session: &Value) -> String {
    session["user"]["id"].as_str().unwrap().to_owned()
}
