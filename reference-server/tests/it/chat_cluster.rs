//! Two server nodes (this test's server and an `edge-server` process) on one database
//! sharing Redis: a `socket.io-client` on each, and
//! messages, presence and server events cross between them (server events exactly once).
//! Skipped (with a `SKIPPED` line) when `EDGE_TEST_REDIS_URL` is not set.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::chat_socketio::team;
use crate::cli_process::{CliProcess, edge_server};
use crate::helpers::{Backend, Options, for_each_backend, skip, spawn_with};
use crate::socket_client;
use crate::tenancy::send;

for_each_backend!(messages_and_presence_cross_nodes_through_redis);

async fn messages_and_presence_cross_nodes_through_redis(backend: Backend) {
    let test = format!("{} [{backend:?}]", module_path!());
    let Some(redis) = std::env::var("EDGE_TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        skip(&test, "EDGE_TEST_REDIS_URL is not set");
        return;
    };
    // Channels of this test only: parallel tests never hear each other.
    let vars = vec![
        ("EDGE_REDIS_URL".to_owned(), redis),
        (
            "EDGE_REALTIME_REDIS_PREFIX".to_owned(),
            format!("edge-test-{}", uuid::Uuid::now_v7().simple()),
        ),
    ];
    let Some(one) = spawn_with(
        backend,
        &test,
        Options {
            vars: vars.clone(),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    // The second node is another `edge-server` process: same database, same secrets (the
    // data directory), same Redis; nothing else in common with the first.
    let mut two = CliProcess::spawn({
        let mut command = edge_server("serve");
        command
            .env("EDGE_BIND", "127.0.0.1:0")
            .env("EDGE_DATA_DIR", one.data_dir.path())
            .env("EDGE_DATABASE_URL", one.server_database_url())
            .env("EDGE_DATABASE_MAX_CONNECTIONS", "4")
            .env("EDGE_MIGRATE_ON_START", "false")
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    });
    let two_url = listening_url(&two).await;
    let Some(mut js1) = socket_client::start(&test, &one.url("")).await else {
        return;
    };
    let Some(mut js2) = socket_client::start(&test, &two_url).await else {
        return;
    };
    let acme = team(&one, "Acme", "acme.example").await;
    let room = format!("deal:{}", acme.deal);

    js1.connect_ok("admin", &acme.admin_token).await;
    // The member connects to the other node: the admin hears of it.
    js2.connect_ok("member", &acme.member_token).await;
    let online = js1
        .event_where("admin", "presence", |p| {
            p["user_id"] == acme.member.as_str()
        })
        .await;
    assert_eq!(online["online"], true);

    js1.emit_ok("admin", "join", json!({"room": room})).await;
    js2.emit_ok("member", "join", json!({"room": room})).await;
    let sent = js1
        .emit_ok(
            "admin",
            "sendMessage",
            json!({"room": room, "body": "across nodes"}),
        )
        .await;
    let received = js2.event("member", "message").await;
    assert_eq!(received["message"]["id"], sent["message"]["id"]);
    assert_eq!(received["message"]["body"], "across nodes");

    // A direct message the other way.
    js2.emit_ok(
        "member",
        "sendMessage",
        json!({"room": format!("dm:{}", acme.admin), "body": "back at you"}),
    )
    .await;
    let dm = js1.event("admin", "message").await;
    assert_eq!(dm["message"]["room"], format!("dm:{}", acme.member));

    // What the member views on node two shows in presence asked on node one.
    js2.emit_ok("member", "viewing", json!({"record": room}))
        .await;
    js1.event_where("admin", "presence", |p| p["viewing"] == json!([room]))
        .await;
    let everyone = js1.emit_ok("admin", "presence", json!({})).await;
    let online = everyone["online"].as_array().unwrap();
    assert!(
        online.contains(&json!({"user_id": acme.member, "viewing": [room]})),
        "{everyone}"
    );
    assert!(
        online.contains(&json!({"user_id": acme.admin, "viewing": []})),
        "{everyone}"
    );

    // Both nodes tail the outbox; each emits to its own sockets only: once each.
    let moved = send(
        &one,
        &acme.admin_token,
        Method::POST,
        &format!("/deals/{}/move", acme.deal),
        Some(json!({"stage_id": acme.stages[1]})),
    )
    .await;
    assert_eq!(moved.status(), 200);
    js1.event_where("admin", "event", |e| e["kind"] == "deal.stage_changed")
        .await;
    js2.event_where("member", "event", |e| e["kind"] == "deal.stage_changed")
        .await;
    // (Other events, such as the set-up's records being created, may still arrive.)
    let the_move = |e: &Value| e["kind"] == "deal.stage_changed";
    js1.no_event_where("admin", "event", Duration::from_millis(1_000), the_move)
        .await;
    js2.no_event_where("member", "event", Duration::ZERO, the_move)
        .await;

    // The member's only socket (on node two) goes: node one hears they are offline.
    js2.close("member").await;
    let offline = js1
        .event_where("admin", "presence", |p| {
            p["user_id"] == acme.member.as_str() && p["online"] == false
        })
        .await;
    assert_eq!(offline["viewing"], json!([]));

    two.terminate().await;
}

/// The address a `serve` process logged it listens on.
async fn listening_url(process: &CliProcess) -> String {
    let logged = process.wait_for_log("edge-server listening on").await;
    let line = logged
        .lines()
        .find(|line| line.contains("edge-server listening on"))
        .unwrap();
    let entry: serde_json::Value = serde_json::from_str(line).unwrap();
    let address = entry["fields"]["address"]
        .as_str()
        .or_else(|| entry["address"].as_str())
        .unwrap_or_else(|| panic!("no address in {line}"));
    format!("http://{address}")
}
