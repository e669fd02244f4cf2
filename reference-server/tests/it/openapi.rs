//! The OpenAPI document at `/openapi.json` and the Swagger UI at `/docs`: every route is
//! documented, every operation is complete, and real answers match their schemas.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::{signup, token};
use crate::helpers::{Backend, TestApp, spawn_app};
use crate::tenancy::send;

/// The routes outside `/api/v1` that the document must list.
const ROOT_ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/callbacks/mpesa/{org}/{token}"),
    ("post", "/callbacks/mpesa/{org}/{token}/result"),
    ("post", "/callbacks/mpesa/{org}/{token}/timeout"),
    ("post", "/callbacks/c2b/platform/{token}/validation"),
    ("post", "/callbacks/c2b/platform/{token}/confirmation"),
    ("post", "/callbacks/c2b/{org}/{token}/validation"),
    ("post", "/callbacks/c2b/{org}/{token}/confirmation"),
    ("get", "/webhooks/whatsapp"),
    ("post", "/webhooks/whatsapp"),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

async fn app() -> TestApp {
    spawn_app(Backend::Sqlite, module_path!()).await.unwrap()
}

async fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// `(method, path)` of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(*method).is_some() {
                found.insert(((*method).to_owned(), path.clone()));
            }
        }
    }
    found
}

/// What must be documented: the catalog under `/api/v1`, and the root routes.
fn expected() -> BTreeSet<(String, String)> {
    let mut expected: BTreeSet<(String, String)> = edge_server::http::catalog()
        .iter()
        .map(|route| {
            (
                route.method.as_str().to_ascii_lowercase(),
                format!("/api/v1{}", route.path),
            )
        })
        .collect();
    for (method, path) in ROOT_ROUTES {
        expected.insert(((*method).to_owned(), (*path).to_owned()));
    }
    expected
}

/// The routes in `expected` that `found` lacks.
fn missing(
    expected: &BTreeSet<(String, String)>,
    found: &BTreeSet<(String, String)>,
) -> Vec<String> {
    expected
        .difference(found)
        .map(|(method, path)| format!("{} {path}", method.to_ascii_uppercase()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_in_the_document() {
    let app = app().await;
    let doc = document(&app).await;
    let expected = expected();
    assert_eq!(
        edge_server::http::catalog().len() + ROOT_ROUTES.len(),
        expected.len()
    );
    let found = operations(&doc);
    let missing = missing(&expected, &found);
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:#?}"
    );
    // Nothing documented that is not served.
    let extra: Vec<_> = found.difference(&expected).collect();
    assert!(extra.is_empty(), "documented but not routed: {extra:#?}");
}

#[test]
fn a_route_left_out_of_the_document_is_named() {
    // The comparison above, on a document that lacks one catalog route.
    let mut doc = serde_json::to_value(edge_server::http::openapi::document()).unwrap();
    let paths = doc["paths"].as_object_mut().unwrap();
    paths["/api/v1/prospects/{id}/convert"]
        .as_object_mut()
        .unwrap()
        .remove("post")
        .unwrap();
    assert_eq!(
        missing(&expected(), &operations(&doc)),
        vec!["POST /api/v1/prospects/{id}/convert".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_complete() {
    let app = app().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Edge API");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["servers"][0]["url"], "/");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("ErrorEnvelope"));
    let security_schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(security_schemes["bearer"]["scheme"], "bearer");

    let mut problems = Vec::new();
    let catalog = edge_server::http::catalog();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let name = format!("{} {path}", method.to_ascii_uppercase());
            if op["summary"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name}: no summary"));
            }
            if op["tags"].as_array().is_none_or(Vec::is_empty) {
                problems.push(format!("{name}: no tag"));
            }
            let responses = op["responses"].as_object().unwrap();
            let successes: Vec<_> = responses
                .iter()
                .filter(|(status, _)| status.starts_with('2'))
                .collect();
            if successes.is_empty() {
                problems.push(format!("{name}: no success response"));
            }
            for (status, response) in &successes {
                if *status == "204" {
                    if response.get("content").is_some() {
                        problems.push(format!("{name}: 204 with a body"));
                    }
                    continue;
                }
                let content = response["content"].as_object();
                let has_schema = content.is_some_and(|content| {
                    !content.is_empty()
                        && content.values().all(|media| media.get("schema").is_some())
                });
                if !has_schema {
                    problems.push(format!("{name}: {status} without a schema"));
                }
            }
            // Error responses reference the one envelope.
            for status in ["400", "404", "422", "429"] {
                if responses[status]["content"]["application/json"]["schema"]["$ref"]
                    != "#/components/schemas/ErrorEnvelope"
                {
                    problems.push(format!("{name}: {status} is not the error envelope"));
                }
            }
            if responses["429"]["headers"].get("Retry-After").is_none() {
                problems.push(format!("{name}: 429 without Retry-After"));
            }
            // Path parameters match the `{name}` segments.
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|params| {
                    params
                        .iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            let segments: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            if declared != segments {
                problems.push(format!("{name}: path parameters {declared:?}"));
            }
            // Authenticated routes declare the bearer scheme and 401; routes behind a
            // permission declare 403.
            if let Some(route) = catalog.iter().find(|route| {
                format!("/api/v1{}", route.path) == *path
                    && route.method.as_str().eq_ignore_ascii_case(method)
            }) {
                let public = route.access == edge_server::http::Access::Public;
                if public == op.get("security").is_some() {
                    problems.push(format!("{name}: security does not match its access"));
                }
                if !public && !responses.contains_key("401") {
                    problems.push(format!("{name}: no 401"));
                }
                if matches!(route.access, edge_server::http::Access::Permission(_))
                    && !responses.contains_key("403")
                {
                    problems.push(format!("{name}: no 403"));
                }
                if !public && !route.available_when_suspended && !responses.contains_key("402") {
                    problems.push(format!("{name}: no 402 for a suspended organization"));
                }
            }
        }
    }
    // Every POST/PUT/PATCH that reads a JSON body declares it: the handlers whose input
    // is an `extract::Json` are exactly those the catalog gives a body; spot-check a few
    // that must, and the bodiless ones that must not.
    for (method, path) in [
        ("post", "/api/v1/prospects"),
        ("patch", "/api/v1/deals/{id}"),
        ("put", "/api/v1/organization/settings"),
        ("post", "/api/v1/whatsapp/messages"),
        ("post", "/api/v1/auth/login"),
        ("put", "/api/v1/chat/rooms/{room}/read"),
    ] {
        let body = &doc["paths"][path][method]["requestBody"];
        if body["content"]["application/json"]["schema"].is_null() || body["required"] != true {
            problems.push(format!("{method} {path}: no required JSON body"));
        }
    }
    for (method, path) in [
        ("post", "/api/v1/deals/{id}/won"),
        ("post", "/api/v1/mpesa/c2b/register"),
    ] {
        let body = &doc["paths"][path][method]["requestBody"];
        if body["content"]["application/json"]["schema"].is_null() || body["required"] != false {
            problems.push(format!("{method} {path}: no optional JSON body"));
        }
    }
    for (method, path) in [
        ("post", "/api/v1/auth/logout"),
        ("post", "/api/v1/deals/{id}/reopen"),
    ] {
        if doc["paths"][path][method].get("requestBody").is_some() {
            problems.push(format!("{method} {path}: a body it does not read"));
        }
    }
    assert_eq!(
        doc["paths"]["/api/v1/imports"]["post"]["requestBody"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["text/csv"]
    );
    // Every `$ref` resolves.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 200, "{}", refs.len());
    for reference in refs {
        if resolve(&doc, &reference).is_none() {
            problems.push(format!("unresolved {reference}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "$ref" {
                    refs.push(value.as_str().unwrap().to_owned());
                } else {
                    collect_refs(value, refs);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

/// Checks `value` against `schema` (types, required properties, nested properties and
/// items, `$ref`, `allOf`/`oneOf`/`anyOf`), returning each mismatch with its location.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let target = resolve(doc, reference).unwrap();
        return conforms(doc, target, value, at, problems);
    }
    if let Some(all) = schema["allOf"].as_array() {
        for part in all {
            conforms(doc, part, value, at, problems);
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(any) = schema[key].as_array() {
            let fits = any.iter().any(|part| {
                let mut inner = Vec::new();
                conforms(doc, part, value, at, &mut inner);
                inner.is_empty()
            });
            if !fits {
                problems.push(format!("{at}: fits none of {key}"));
            }
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() {
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let fits = types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
        if !fits {
            problems.push(format!("{at}: {actual}, expected {types:?}"));
            return;
        }
    }
    if let Some(en) = schema["enum"].as_array()
        && !en.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {en:?}"));
    }
    if let Value::Object(object) = value {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !object.contains_key(name) {
                problems.push(format!("{at}: missing required `{name}`"));
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, property) in properties {
                if let Some(inner) = object.get(name) {
                    conforms(doc, property, inner, &format!("{at}.{name}"), problems);
                }
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            conforms(doc, item_schema, item, &format!("{at}[{i}]"), problems);
        }
    }
}

/// The schema `doc` gives for `method path`'s `status` answer.
fn response_schema<'a>(doc: &'a Value, method: &str, path: &str, status: &str) -> &'a Value {
    let schema =
        &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    assert!(!schema.is_null(), "{method} {path} {status}");
    schema
}

fn assert_conforms(doc: &Value, method: &str, path: &str, status: &str, body: &Value) {
    let schema = response_schema(doc, method, path, status);
    let mut problems = Vec::new();
    conforms(doc, schema, body, "$", &mut problems);
    assert!(
        problems.is_empty(),
        "{method} {path} {status}: {problems:#?}\n{body:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_match_their_schemas() {
    let app = app().await;
    let doc = document(&app).await;

    let session = signup(&app, "Schema Traders", "schema@example.com").await;
    assert_conforms(&doc, "post", "/api/v1/auth/signup", "201", &session);
    let admin = token(&session);

    let created = send(
        &app,
        &admin,
        Method::POST,
        "/prospects",
        Some(json!({ "name": "Achieng Otieno", "phone": "0712345678", "company": "Jua Kali" })),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_conforms(&doc, "post", "/api/v1/prospects", "201", &created);

    let listed = send(&app, &admin, Method::GET, "/prospects", None).await;
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_conforms(&doc, "get", "/api/v1/prospects", "200", &listed);

    let me = send(&app, &admin, Method::GET, "/me", None).await;
    let me: Value = me.json().await.unwrap();
    assert_conforms(&doc, "get", "/api/v1/me", "200", &me);

    let wallet = send(&app, &admin, Method::GET, "/wallet", None).await;
    assert_eq!(wallet.status(), 200);
    let wallet: Value = wallet.json().await.unwrap();
    assert_conforms(&doc, "get", "/api/v1/wallet", "200", &wallet);

    let pipelines = send(&app, &admin, Method::GET, "/pipelines", None).await;
    assert_eq!(pipelines.status(), 200);
    let pipelines: Value = pipelines.json().await.unwrap();
    assert_conforms(&doc, "get", "/api/v1/pipelines", "200", &pipelines);

    let usage = send(&app, &admin, Method::GET, "/usage/report", None).await;
    assert_eq!(usage.status(), 200);
    let usage: Value = usage.json().await.unwrap();
    assert_conforms(&doc, "get", "/api/v1/usage/report", "200", &usage);

    let invalid = send(
        &app,
        &admin,
        Method::POST,
        "/prospects",
        Some(json!({ "name": "", "phone": "not a phone" })),
    )
    .await;
    assert_eq!(invalid.status(), 422);
    let invalid: Value = invalid.json().await.unwrap();
    assert_conforms(&doc, "post", "/api/v1/prospects", "422", &invalid);

    let health: Value = app.get("/healthz").await.json().await.unwrap();
    assert_conforms(&doc, "get", "/healthz", "200", &health);
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_conforms(&doc, "get", "/readyz", "200", &ready);

    // The checker itself notices a body that does not fit.
    let mut problems = Vec::new();
    let mut broken = created.clone();
    broken.as_object_mut().unwrap().remove("id");
    conforms(
        &doc,
        response_schema(&doc, "post", "/api/v1/prospects", "201"),
        &broken,
        "$",
        &mut problems,
    );
    assert_eq!(problems, vec!["$: missing required `id`".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_ui_is_served_from_the_binary() {
    let app = app().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = no_redirects.get(app.url("/docs")).send().await.unwrap();
    assert!(redirect.status().is_redirection(), "{}", redirect.status());
    assert_eq!(redirect.headers()["location"], "/docs/");

    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");

    // Every script and stylesheet the page loads, and the initializer that points the UI
    // at /openapi.json.
    let mut assets: Vec<String> = html
        .split(['"', '\''])
        .filter(|s| s.ends_with(".js") || s.ends_with(".css"))
        .map(|s| s.trim_start_matches("./").to_owned())
        .collect();
    assets.sort();
    assets.dedup();
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{assets:?}");
    assert!(assets.iter().any(|a| a.ends_with(".css")), "{assets:?}");
    for asset in &assets {
        let response = app.get(&format!("/docs/{asset}")).await;
        assert_eq!(response.status(), 200, "/docs/{asset}");
        assert!(!response.bytes().await.unwrap().is_empty(), "/docs/{asset}");
    }
    let initializer = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(initializer.status(), 200);
    let script = initializer.text().await.unwrap();
    assert!(script.contains("/openapi.json"), "{script}");

    // An unknown file under /docs is a 404.
    let absent = app.get("/docs/no-such-file.js").await;
    assert_eq!(absent.status(), 404);
}
