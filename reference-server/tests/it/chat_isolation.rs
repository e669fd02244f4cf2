//! Realtime isolation: a socket of organization B never receives anything of
//! organization A (messages, typing, edits, deletes, presence, server events), while B's
//! own traffic reaches it.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::chat_socketio::team;
use crate::helpers::{TestApp, on_both_backends};
use crate::socket_client;
use crate::tenancy::send;

on_both_backends!(a_socket_of_another_organization_hears_nothing);

async fn a_socket_of_another_organization_hears_nothing(app: TestApp) {
    let Some(mut js) = socket_client::start(module_path!(), &app.url("")).await else {
        return;
    };
    let acme = team(&app, "Acme", "acme.example").await;
    let beta = team(&app, "Beta", "beta.example").await;
    let acme_room = format!("deal:{}", acme.deal);
    let beta_room = format!("deal:{}", beta.deal);

    // Beta listens from the start: its admin in its own deal room.
    js.connect_ok("b_admin", &beta.admin_token).await;
    js.emit_ok("b_admin", "join", json!({"room": beta_room}))
        .await;
    // Every way into Acme's room is refused, whatever the name.
    for name in [
        acme_room.clone(),
        acme_room.to_uppercase(),
        format!("o:{}:{acme_room}", acme.org),
        format!("{acme_room}:x"),
        format!("relationship:{}", acme.deal),
        format!("dm:{}", acme.member),
    ] {
        let refused = js.emit("b_admin", "join", json!({"room": name})).await;
        assert_eq!(refused["ok"], false, "{name}");
        assert_eq!(refused["error"]["code"], "not_found", "{name}");
        let viewing = js.emit("b_admin", "viewing", json!({"record": name})).await;
        assert_eq!(viewing["ok"], false, "{name}");
    }

    // Acme does everything it can.
    js.connect_ok("a_admin", &acme.admin_token).await;
    js.connect_ok("a_member", &acme.member_token).await;
    for socket in ["a_admin", "a_member"] {
        js.emit_ok(socket, "join", json!({"room": acme_room})).await;
    }
    js.emit_ok("a_member", "viewing", json!({"record": acme_room}))
        .await;
    js.emit_ok(
        "a_member",
        "typing",
        json!({"room": acme_room, "typing": true}),
    )
    .await;
    let sent = js
        .emit_ok(
            "a_admin",
            "sendMessage",
            json!({"room": acme_room, "body": "Acme only"}),
        )
        .await;
    let id = sent["message"]["id"].as_str().unwrap().to_owned();
    js.event("a_member", "message").await;
    js.emit_ok(
        "a_admin",
        "sendMessage",
        json!({"room": format!("dm:{}", acme.member), "body": "Acme whisper"}),
    )
    .await;
    js.emit_ok(
        "a_admin",
        "editMessage",
        json!({"message_id": id, "body": "Acme only, edited"}),
    )
    .await;
    js.emit_ok("a_admin", "deleteMessage", json!({"message_id": id}))
        .await;
    let moved = send(
        &app,
        &acme.admin_token,
        Method::POST,
        &format!("/deals/{}/move", acme.deal),
        Some(json!({"stage_id": acme.stages[1]})),
    )
    .await;
    assert_eq!(moved.status(), 200);
    js.event_where("a_member", "event", |e| e["kind"] == "deal.stage_changed")
        .await;
    js.close("a_member").await;

    // Beta's own traffic does reach its socket (so silence below means something).
    js.connect_ok("b_member", &beta.member_token).await;
    js.emit_ok("b_member", "join", json!({"room": beta_room}))
        .await;
    js.emit_ok(
        "b_member",
        "sendMessage",
        json!({"room": beta_room, "body": "Beta hello"}),
    )
    .await;
    let beta_move = send(
        &app,
        &beta.admin_token,
        Method::POST,
        &format!("/deals/{}/move", beta.deal),
        Some(json!({"stage_id": beta.stages[1]})),
    )
    .await;
    assert_eq!(beta_move.status(), 200);
    let own = js.event("b_admin", "message").await;
    assert_eq!(own["message"]["body"], "Beta hello");
    let own_event = js
        .event_where("b_admin", "event", |e| e["kind"] == "deal.stage_changed")
        .await;
    assert_eq!(own_event["subject_id"], beta.deal.as_str());
    let presence = js.emit_ok("b_admin", "presence", json!({})).await;
    let online: Vec<&Value> = presence["online"].as_array().unwrap().iter().collect();
    assert!(
        online
            .iter()
            .all(|u| u["user_id"] == beta.admin.as_str() || u["user_id"] == beta.member.as_str()),
        "{presence}"
    );

    let rest = js.drain(Duration::from_millis(500)).await;
    for line in rest
        .iter()
        .filter(|l| l["op"] == "event" && l["name"].as_str().is_some_and(|n| n.starts_with("b_")))
    {
        let text = line.to_string();
        for secret in [&acme.org, &acme.deal, &acme.admin, &acme.member, &id] {
            assert!(!text.contains(secret.as_str()), "Beta received {line}");
        }
        assert!(!text.contains("Acme"), "Beta received {line}");
    }
}
