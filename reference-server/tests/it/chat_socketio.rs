//! The team chat with the real `socket.io-client` from npm: the handshake, record rooms,
//! sends with acknowledgements and safe resends, direct messages, typing, presence,
//! edits and deletes, read positions, and server events pushed from the outbox.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::{signup, token};
use crate::helpers::{Backend, Options, TestApp, for_each_backend, on_both_backends, spawn_with};
use crate::socket_client;
use crate::tenancy::{invite_and_accept, send};

on_both_backends!(
    socket_io_client_chats_in_rooms_and_directly,
    the_default_transport_upgrades_from_polling_to_websocket,
    billing_events_reach_only_those_who_may_read_billing,
    deal_events_follow_record_visibility,
);
for_each_backend!(a_flood_from_one_connection_is_rate_limited);

/// An organization with an admin, a manager and a deal.
pub struct Team {
    pub org: String,
    pub admin: String,
    pub admin_token: String,
    pub member: String,
    pub member_token: String,
    pub deal: String,
    pub stages: Vec<String>,
}

pub async fn team(app: &TestApp, name: &str, domain: &str) -> Team {
    let admin = signup(app, name, &format!("admin@{domain}")).await;
    let admin_token = token(&admin);
    let member = invite_and_accept(app, &admin_token, &format!("member@{domain}"), "manager").await;
    let deal = send(
        app,
        &admin_token,
        Method::POST,
        "/deals",
        Some(json!({"title": format!("{name} big deal")})),
    )
    .await;
    assert_eq!(deal.status(), 201);
    let deal: Value = deal.json().await.unwrap();
    let pipelines: Value = send(app, &admin_token, Method::GET, "/pipelines", None)
        .await
        .json()
        .await
        .unwrap();
    let stages = pipelines["items"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    Team {
        org: admin["organization"]["id"].as_str().unwrap().to_owned(),
        admin: admin["user"]["id"].as_str().unwrap().to_owned(),
        admin_token,
        member: member["user"]["id"].as_str().unwrap().to_owned(),
        member_token: token(&member),
        deal: deal["id"].as_str().unwrap().to_owned(),
        stages,
    }
}

async fn socket_io_client_chats_in_rooms_and_directly(app: TestApp) {
    let Some(mut js) = socket_client::start(module_path!(), &app.url("")).await else {
        return;
    };
    let acme = team(&app, "Acme", "acme.example").await;
    let beta = team(&app, "Beta", "beta.example").await;
    let room = format!("deal:{}", acme.deal);

    // The handshake takes the REST access token; anything else is refused.
    for (name, bad) in [
        ("forged", Some("not-a-token")),
        ("api-key-shaped", Some("edge_live_abcdefgh_0123456789")),
        ("anonymous", None),
    ] {
        let refused = js.connect(name, bad, Some(&["websocket"])).await;
        assert_eq!(refused["op"], "connect_error", "{name}: {refused}");
        assert_eq!(refused["message"], "unauthorized", "{name}: {refused}");
    }
    let connected = js.connect_ok("a1", &acme.admin_token).await;
    assert_eq!(connected["transport"], "websocket");
    js.connect_ok("b1", &beta.admin_token).await;
    js.connect_ok("m1", &acme.member_token).await;
    // The admin hears that the member came online.
    let online = js
        .event_where("a1", "presence", |p| p["user_id"] == acme.member.as_str())
        .await;
    assert_eq!(online["online"], true);

    // Join, send, receive, acknowledge with the stored message.
    let joined = js.emit_ok("a1", "join", json!({"room": room})).await;
    assert_eq!(joined["room"], room.as_str());
    js.emit_ok("m1", "join", json!({"room": room})).await;
    let sent = js
        .emit_ok(
            "a1",
            "sendMessage",
            json!({"room": room, "body": "hello team", "client_message_id": "c-1"}),
        )
        .await;
    let message = &sent["message"];
    let id = message["id"].as_str().unwrap().to_owned();
    assert_eq!(message["room"], room.as_str());
    assert_eq!(message["body"], "hello team");
    assert_eq!(message["sender_id"], acme.admin.as_str());
    assert_eq!(message["client_message_id"], "c-1");
    assert_eq!(message["deleted_at"], Value::Null);
    let received = js.event("m1", "message").await;
    assert_eq!(received["message"]["id"], id.as_str());
    assert_eq!(received["message"]["body"], "hello team");
    assert_eq!(received["message"]["room"], room.as_str());
    // Stored: history over REST has it.
    let history: Value = send(
        &app,
        &acme.member_token,
        Method::GET,
        &format!("/chat/rooms/{room}/messages"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(history["items"][0]["id"], id.as_str());

    // A resend with the same client id stores nothing and broadcasts nothing.
    let resent = js
        .emit_ok(
            "a1",
            "sendMessage",
            json!({"room": room, "body": "hello team", "client_message_id": "c-1"}),
        )
        .await;
    assert_eq!(resent["message"]["id"], id.as_str());
    js.no_event("m1", "message", Duration::from_millis(800))
        .await;
    js.no_event("a1", "message", Duration::ZERO).await;
    let history: Value = send(
        &app,
        &acme.admin_token,
        Method::GET,
        &format!("/chat/rooms/{room}/messages"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(history["items"].as_array().unwrap().len(), 1);

    // The same client id with another body is a conflict, and stores nothing.
    let clash = js
        .emit(
            "a1",
            "sendMessage",
            json!({"room": room, "body": "something else", "client_message_id": "c-1"}),
        )
        .await;
    assert_eq!(clash["ok"], false, "{clash}");
    assert_eq!(clash["error"]["code"], "conflict", "{clash}");
    js.no_event("m1", "message", Duration::from_millis(300))
        .await;

    // Bad payloads are `invalid` with details.
    let empty = js
        .emit("a1", "sendMessage", json!({"room": room, "body": "  "}))
        .await;
    assert_eq!(empty["ok"], false);
    assert_eq!(empty["error"]["code"], "invalid");
    assert_eq!(empty["error"]["details"][0]["field"], "body");
    let long = js
        .emit(
            "a1",
            "sendMessage",
            json!({"room": room, "body": "x".repeat(4001)}),
        )
        .await;
    assert_eq!(long["error"]["code"], "invalid");
    let shapeless = js.emit("a1", "sendMessage", json!("hello")).await;
    assert_eq!(shapeless["error"]["code"], "invalid");

    // Another organization's room, an unknown one and a malformed one: all not_found.
    for name in [
        room.clone(),
        format!("deal:{}", uuid::Uuid::now_v7()),
        "deal:nope".to_owned(),
        format!("o:{}:deal:{}", acme.org, acme.deal),
        format!("dm:{}", acme.admin),
    ] {
        for event in ["join", "sendMessage", "typing"] {
            let refused = js
                .emit(
                    "b1",
                    event,
                    json!({"room": name, "body": "let me in", "typing": true}),
                )
                .await;
            assert_eq!(refused["ok"], false, "{event} {name}");
            assert_eq!(refused["error"]["code"], "not_found", "{event} {name}");
        }
    }

    // Typing goes to the room but the typist.
    js.emit_ok("m1", "typing", json!({"room": room, "typing": true}))
        .await;
    let typing = js.event("a1", "typing").await;
    assert_eq!(
        typing,
        json!({"room": room, "user_id": acme.member, "typing": true})
    );
    js.no_event("m1", "typing", Duration::from_millis(300))
        .await;

    // Direct messages: to the other member's sockets and the sender's other sockets.
    js.connect_ok("a2", &acme.admin_token).await;
    let dm = js
        .emit_ok(
            "a1",
            "sendMessage",
            json!({"room": format!("dm:{}", acme.member), "body": "psst"}),
        )
        .await;
    assert_eq!(dm["message"]["room"], format!("dm:{}", acme.member));
    let to_member = js.event("m1", "message").await;
    assert_eq!(to_member["message"]["room"], format!("dm:{}", acme.admin));
    assert_eq!(to_member["message"]["body"], "psst");
    let to_other_tab = js.event("a2", "message").await;
    assert_eq!(
        to_other_tab["message"]["room"],
        format!("dm:{}", acme.member)
    );
    js.no_event("a1", "message", Duration::from_millis(300))
        .await;
    let with_myself = js
        .emit(
            "a1",
            "sendMessage",
            json!({"room": format!("dm:{}", acme.admin), "body": "me"}),
        )
        .await;
    assert_eq!(with_myself["error"]["code"], "invalid");

    // Presence: who views what, for the whole organization.
    js.emit_ok("m1", "viewing", json!({"record": room})).await;
    let viewing = js
        .event_where("a1", "presence", |p| {
            p["user_id"] == acme.member.as_str() && p["viewing"] == json!([room])
        })
        .await;
    assert_eq!(viewing["online"], true);
    let everyone = js.emit_ok("a1", "presence", json!({})).await;
    let online = everyone["online"].as_array().unwrap();
    assert_eq!(online.len(), 2, "{everyone}");
    assert!(online.contains(&json!({"user_id": acme.member, "viewing": [room]})));
    assert!(online.contains(&json!({"user_id": acme.admin, "viewing": []})));

    // A deal stage change over REST arrives as a server event.
    let moved = send(
        &app,
        &acme.admin_token,
        Method::POST,
        &format!("/deals/{}/move", acme.deal),
        Some(json!({"stage_id": acme.stages[1]})),
    )
    .await;
    assert_eq!(moved.status(), 200);
    let event = js
        .event_where("m1", "event", |e| e["kind"] == "deal.stage_changed")
        .await;
    assert_eq!(event["subject_type"], "deal");
    assert_eq!(event["subject_id"], acme.deal.as_str());
    assert_eq!(event["data"]["to_stage_id"], acme.stages[1].as_str());
    assert!(event["id"].is_string() && event["created_at"].is_string());

    // Edits are the author's; deletes the author's or an admin's.
    let not_mine = js
        .emit(
            "m1",
            "editMessage",
            json!({"message_id": id, "body": "hijacked"}),
        )
        .await;
    assert_eq!(not_mine["error"]["code"], "forbidden");
    let not_admin = js
        .emit("m1", "deleteMessage", json!({"message_id": id}))
        .await;
    assert_eq!(not_admin["error"]["code"], "forbidden");
    let edited = js
        .emit_ok(
            "a1",
            "editMessage",
            json!({"message_id": id, "body": "hello, team"}),
        )
        .await;
    assert_eq!(edited["message"]["body"], "hello, team");
    assert!(edited["message"]["edited_at"].is_string());
    let seen = js.event("m1", "messageEdited").await;
    assert_eq!(seen["message"]["body"], "hello, team");
    let foreign = js
        .emit("b1", "deleteMessage", json!({"message_id": id}))
        .await;
    assert_eq!(foreign["error"]["code"], "not_found");

    // Read positions.
    let read = js
        .emit_ok("m1", "markRead", json!({"room": room, "message_id": id}))
        .await;
    assert_eq!(read["room"], room.as_str());
    assert_eq!(read["last_read_message_id"], id.as_str());
    assert_eq!(read["unread"], 0);

    let deleted = js
        .emit_ok("a1", "deleteMessage", json!({"message_id": id}))
        .await;
    assert_eq!(deleted["message_id"], id.as_str());
    let gone = js.event("m1", "messageDeleted").await;
    assert_eq!(gone, json!({"room": room, "message_id": id}));
    let history: Value = send(
        &app,
        &acme.member_token,
        Method::GET,
        &format!("/chat/rooms/{room}/messages"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(history["items"][0]["body"], Value::Null);
    assert!(history["items"][0]["deleted_at"].is_string());
    // The deletion is audited.
    let audit: Value = send(
        &app,
        &acme.admin_token,
        Method::GET,
        &format!("/audit-log?target_id={id}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        audit["items"][0]["action"], "chat_message.delete",
        "{audit}"
    );
    assert_eq!(
        audit["items"][0]["actor_id"],
        acme.admin.as_str(),
        "{audit}"
    );

    // The member's last socket leaves: the organization hears they are offline.
    js.close("m1").await;
    let offline = js
        .event_where("a1", "presence", |p| {
            p["user_id"] == acme.member.as_str() && p["online"] == false
        })
        .await;
    assert_eq!(offline["viewing"], json!([]));

    // Nothing of Acme's ever reached Beta's socket.
    for line in js.drain(Duration::from_millis(300)).await {
        if line["name"] == "b1" && line["op"] == "event" {
            let text = line.to_string();
            for secret in [&acme.deal, &acme.admin, &acme.member, &acme.org] {
                assert!(!text.contains(secret.as_str()), "Beta received {line}");
            }
        }
    }
}

async fn the_default_transport_upgrades_from_polling_to_websocket(app: TestApp) {
    let Some(mut js) = socket_client::start(module_path!(), &app.url("")).await else {
        return;
    };
    let acme = team(&app, "Acme", "acme.example").await;
    let room = format!("deal:{}", acme.deal);
    // Socket.IO's default: HTTP long-polling first, then an upgrade to WebSocket.
    let first = js.connect("a", Some(&acme.admin_token), None).await;
    assert_eq!(first["op"], "connected", "{first}");
    let opened = js.wait_for(|l| l["op"] == "open" && l["name"] == "a").await;
    assert_eq!(opened["transport"], "polling");
    let upgraded = js
        .wait_for(|l| l["op"] == "upgraded" && l["name"] == "a")
        .await;
    assert_eq!(upgraded["transport"], "websocket");
    assert_eq!(js.transport("a").await, "websocket");
    let polling_only = js
        .connect("m", Some(&acme.member_token), Some(&["polling"]))
        .await;
    assert_eq!(polling_only["op"], "connected", "{polling_only}");
    js.emit_ok("a", "join", json!({"room": room})).await;
    js.emit_ok("m", "join", json!({"room": room})).await;
    let sent = js
        .emit_ok(
            "m",
            "sendMessage",
            json!({"room": room, "body": "over polling"}),
        )
        .await;
    let received = js.event("a", "message").await;
    assert_eq!(received["message"]["id"], sent["message"]["id"]);
    assert_eq!(received["message"]["client_message_id"], Value::Null);
}

async fn billing_events_reach_only_those_who_may_read_billing(app: TestApp) {
    let Some(mut js) = socket_client::start(module_path!(), &app.url("")).await else {
        return;
    };
    let ops = token(&crate::auth::operator(&app).await);
    let acme = team(&app, "Acme", "acme.example").await;
    let user = invite_and_accept(&app, &acme.admin_token, "user@acme.example", "user").await;
    js.connect_ok("admin", &acme.admin_token).await;
    js.connect_ok("user", &token(&user)).await;

    let adjust = |amount: &str, direction: &str, key: &str| {
        json!({
            "amount": {"amount": amount, "currency": "KES"},
            "direction": direction,
            "reason": "chat test",
            "idempotency_key": key,
        })
    };
    let path = format!("/admin/organizations/{}/wallet/adjustments", acme.org);
    let credited = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(adjust("500.00", "credit", "c-1")),
    )
    .await;
    assert_eq!(credited.status(), 201);
    let threshold = send(
        &app,
        &acme.admin_token,
        Method::PATCH,
        "/wallet",
        Some(json!({"low_balance_threshold": {"amount": "300.00", "currency": "KES"}})),
    )
    .await;
    assert_eq!(threshold.status(), 200);
    let debited = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(adjust("250.00", "debit", "d-1")),
    )
    .await;
    assert_eq!(debited.status(), 201);

    // The outbox has it, and the admin's socket hears of it.
    let event = js
        .event_where("admin", "event", |e| e["kind"] == "wallet.low_balance")
        .await;
    assert_eq!(event["subject_type"], "wallet");
    assert_eq!(event["subject_id"], acme.org.as_str());
    assert_eq!(event["data"]["available"]["amount"], "250.00");
    assert_eq!(event["data"]["threshold"]["amount"], "300.00");
    // A user may not read billing: their socket does not.
    // (They may hear of other things, such as the set-up's records being created.)
    let billing = |e: &Value| {
        let kind = e["kind"].as_str().unwrap_or_default();
        kind.starts_with("wallet.") || kind.starts_with("payment.")
    };
    js.no_event_where("user", "event", Duration::from_millis(800), billing)
        .await;
    // Crossing again without coming back above: no second event.
    let again = send(
        &app,
        &ops,
        Method::POST,
        &path,
        Some(adjust("10.00", "debit", "d-2")),
    )
    .await;
    assert_eq!(again.status(), 201);
    js.no_event_where("admin", "event", Duration::from_millis(800), |e| {
        e["kind"] == "wallet.low_balance"
    })
    .await;

    // A member who is deactivated cannot connect with the token they still hold.
    let user_token = token(&user);
    let user_id = user["user"]["id"].as_str().unwrap();
    let deactivated = send(
        &app,
        &acme.admin_token,
        Method::POST,
        &format!("/users/{user_id}/deactivate"),
        None,
    )
    .await;
    assert_eq!(deactivated.status(), 200);
    let refused = js
        .connect("user-again", Some(&user_token), Some(&["websocket"]))
        .await;
    assert_eq!(refused["op"], "connect_error", "{refused}");
    assert_eq!(refused["message"], "unauthorized");
}

async fn a_flood_from_one_connection_is_rate_limited(backend: Backend) {
    let options = Options {
        vars: vec![("EDGE_REALTIME_EVENTS_PER_SECOND".into(), "2".into())],
        ..Options::default()
    };
    let Some(app) = spawn_with(backend, module_path!(), options).await else {
        return;
    };
    let Some(mut js) = socket_client::start(module_path!(), &app.url("")).await else {
        return;
    };
    let acme = team(&app, "Acme", "acme.example").await;
    let room = format!("deal:{}", acme.deal);
    js.connect_ok("a", &acme.admin_token).await;
    // A burst of twice the rate passes; the next is refused until tokens come back.
    let mut codes = Vec::new();
    for _ in 0..6 {
        let ack = js
            .emit("a", "typing", json!({"room": room, "typing": true}))
            .await;
        codes.push(ack["error"]["code"].as_str().unwrap_or("ok").to_owned());
    }
    assert_eq!(&codes[..4], ["ok", "ok", "ok", "ok"], "{codes:?}");
    assert!(codes[4..].iter().any(|c| c == "rate_limited"), "{codes:?}");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    js.emit_ok("a", "typing", json!({"room": room, "typing": false}))
        .await;
}

/// Under `record_visibility: own`, a `user` hears of stage changes of their own deals
/// only; managers and admins hear of every deal.
async fn deal_events_follow_record_visibility(app: TestApp) {
    let Some(mut js) = socket_client::start(module_path!(), &app.url("")).await else {
        return;
    };
    let acme = team(&app, "Acme", "acme.example").await;
    let user = invite_and_accept(&app, &acme.admin_token, "user@acme.example", "user").await;
    let user_id = user["user"]["id"].as_str().unwrap().to_owned();
    crate::crm_support::only_own_records(&app, &acme.admin_token).await;
    let theirs = send(
        &app,
        &acme.admin_token,
        Method::POST,
        "/deals",
        Some(json!({"title": "The user's deal", "owner_id": user_id})),
    )
    .await;
    assert_eq!(theirs.status(), 201);
    let theirs: Value = theirs.json().await.unwrap();
    let theirs = theirs["id"].as_str().unwrap().to_owned();
    js.connect_ok("manager", &acme.member_token).await;
    js.connect_ok("user", &token(&user)).await;

    // A deal the user does not own: the manager hears of it, the user does not.
    let moved = send(
        &app,
        &acme.admin_token,
        Method::POST,
        &format!("/deals/{}/move", acme.deal),
        Some(json!({"stage_id": acme.stages[1]})),
    )
    .await;
    assert_eq!(moved.status(), 200);
    js.event_where("manager", "event", |e| {
        e["kind"] == "deal.stage_changed" && e["subject_id"] == acme.deal.as_str()
    })
    .await;
    // (They may hear of their own deal's creation, which is theirs to see.)
    js.no_event_where("user", "event", Duration::from_millis(800), |e| {
        e["subject_id"] == acme.deal.as_str()
    })
    .await;

    // Their own deal: both hear of it.
    let moved = send(
        &app,
        &acme.admin_token,
        Method::POST,
        &format!("/deals/{theirs}/move"),
        Some(json!({"stage_id": acme.stages[1]})),
    )
    .await;
    assert_eq!(moved.status(), 200);
    for name in ["user", "manager"] {
        let event = js
            .event_where(name, "event", |e| e["kind"] == "deal.stage_changed")
            .await;
        assert_eq!(event["subject_id"], theirs.as_str(), "{name}: {event}");
    }

    // Every record's events follow the same rule: another member's new prospect is
    // heard of by the manager, not by the user.
    let prospect = send(
        &app,
        &acme.admin_token,
        Method::POST,
        "/prospects",
        Some(json!({"name": "The admin's lead"})),
    )
    .await;
    assert_eq!(prospect.status(), 201);
    let prospect: Value = prospect.json().await.unwrap();
    let prospect = prospect["id"].as_str().unwrap().to_owned();
    js.event_where("manager", "event", |e| {
        e["kind"] == "prospect.created" && e["subject_id"] == prospect.as_str()
    })
    .await;
    js.no_event_where("user", "event", Duration::from_millis(800), |e| {
        e["subject_id"] == prospect.as_str()
    })
    .await;
}
