//! The chat over REST: a room's history in keyset pages, a member's rooms with unread
//! counts, read positions that never move backwards, and 404 for rooms one may not use
//! (another organization's, unknown, malformed, or a record hidden by visibility).

use std::collections::HashSet;

use edge_core::OrgId;
use edge_server::chat::{self, NewMessage, Room};
use reqwest::Method;
use serde_json::{Value, json};

use crate::chat_socketio::{Team, team};
use crate::helpers::{TestApp, on_both_backends};
use crate::tenancy::{invite_and_accept, send};

on_both_backends!(
    history_pages_newest_first_and_rooms_count_unread,
    rooms_one_may_not_use_answer_404,
);

async fn post(app: &TestApp, team: &Team, sender: &str, room: Room, body: &str) -> String {
    // As the owner: past row-level security, as a service would inside its scope.
    let stored = chat::store_message(
        app.db(),
        OrgId::from_uuid(team.org.parse().unwrap()),
        sender.parse().unwrap(),
        room,
        NewMessage {
            body: body.to_owned(),
            client_message_id: None,
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    stored.message.id.to_string()
}

async fn get_json(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let response = send(app, token, Method::GET, path, None).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn history_pages_newest_first_and_rooms_count_unread(app: TestApp) {
    let acme = team(&app, "Acme", "acme.example").await;
    let deal = Room::Deal(acme.deal.parse().unwrap());
    let mut sent = Vec::new();
    for n in 0..25 {
        sent.push(post(&app, &acme, &acme.admin, deal, &format!("message {n}")).await);
    }
    let dm = Room::Dm(acme.member.parse().unwrap());
    let whisper = post(&app, &acme, &acme.admin, dm, "whisper").await;

    // Newest first, 10 at a time, `before` the previous page's cursor.
    let path = format!("/chat/rooms/{deal}/messages");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("{path}?limit=10&before={c}"),
            None => format!("{path}?limit=10"),
        };
        let (status, page) = get_json(&app, &acme.member_token, &query).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["room"], deal.to_string());
            assert_eq!(item["sender_id"], acme.admin.as_str());
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut newest_first = sent.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 25);
    // `cursor` works as well as `before`; a cursor that is not one is refused.
    let (_, first) = get_json(&app, &acme.member_token, &format!("{path}?limit=2")).await;
    let next = first["next_cursor"].as_str().unwrap();
    let (_, second) = get_json(
        &app,
        &acme.member_token,
        &format!("{path}?limit=2&cursor={next}"),
    )
    .await;
    assert_eq!(second["items"][0]["id"], newest_first[2].as_str());
    let (status, bad) = get_json(
        &app,
        &acme.member_token,
        &format!("{path}?before=not-a-cursor"),
    )
    .await;
    assert!(status == 400 || status == 422, "{status} {bad}");
    assert!(bad["error"]["code"].is_string(), "{bad}");

    // The member's rooms: the direct conversation (newest) and the deal they read.
    let (status, rooms) = get_json(&app, &acme.member_token, "/chat/rooms").await;
    assert_eq!(status, 200);
    let items = rooms["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the DM so far: {rooms}");
    assert_eq!(items[0]["room"], format!("dm:{}", acme.admin));
    assert_eq!(items[0]["unread"], 1);
    assert_eq!(items[0]["last_message"]["id"], whisper.as_str());

    // Reading the deal's 10th newest message: it joins their rooms with 9 unread.
    let tenth = &newest_first[9];
    let response = send(
        &app,
        &acme.member_token,
        Method::PUT,
        &format!("/chat/rooms/{deal}/read"),
        Some(json!({"message_id": tenth})),
    )
    .await;
    assert_eq!(response.status(), 200);
    let read: Value = response.json().await.unwrap();
    assert_eq!(
        read,
        json!({"room": deal.to_string(), "last_read_message_id": tenth, "unread": 9})
    );
    // Never backwards.
    let older = send(
        &app,
        &acme.member_token,
        Method::PUT,
        &format!("/chat/rooms/{deal}/read"),
        Some(json!({"message_id": newest_first[20]})),
    )
    .await;
    let older: Value = older.json().await.unwrap();
    assert_eq!(older["last_read_message_id"], tenth.as_str());
    assert_eq!(older["unread"], 9);
    // A message of another room is not this room's.
    let elsewhere = send(
        &app,
        &acme.member_token,
        Method::PUT,
        &format!("/chat/rooms/{deal}/read"),
        Some(json!({"message_id": whisper})),
    )
    .await;
    assert_eq!(elsewhere.status(), 404);

    // A new message makes the deal the most recent room.
    let latest = post(&app, &acme, &acme.admin, deal, "latest").await;
    let (_, rooms) = get_json(&app, &acme.member_token, "/chat/rooms").await;
    let items = rooms["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{rooms}");
    assert_eq!(items[0]["room"], deal.to_string());
    assert_eq!(items[0]["unread"], 10);
    assert_eq!(items[0]["last_message"]["id"], latest.as_str());
    assert_eq!(items[1]["room"], format!("dm:{}", acme.admin));
    // The sender's own messages are never unread for them.
    let (_, theirs) = get_json(&app, &acme.admin_token, "/chat/rooms").await;
    for item in theirs["items"].as_array().unwrap() {
        assert_eq!(item["unread"], 0, "{theirs}");
    }
}

async fn rooms_one_may_not_use_answer_404(app: TestApp) {
    let acme = team(&app, "Acme", "acme.example").await;
    let beta = team(&app, "Beta", "beta.example").await;
    let deal = Room::Deal(acme.deal.parse().unwrap());
    let id = post(&app, &acme, &acme.admin, deal, "Acme's secret").await;

    for room in [
        deal.to_string(),
        format!("dm:{}", acme.admin),
        format!("deal:{}", uuid::Uuid::now_v7()),
        format!("prospect:{}", acme.deal),
        "deal:not-a-uuid".to_owned(),
        "nonsense".to_owned(),
    ] {
        let (status, body) = get_json(
            &app,
            &beta.admin_token,
            &format!("/chat/rooms/{room}/messages"),
        )
        .await;
        assert_eq!(status, 404, "{room}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{room}: {body}");
        assert!(!body.to_string().contains("Acme"), "{body}");
        let read = send(
            &app,
            &beta.admin_token,
            Method::PUT,
            &format!("/chat/rooms/{room}/read"),
            Some(json!({"message_id": id})),
        )
        .await;
        assert_eq!(read.status(), 404, "{room}");
    }
    let (_, rooms) = get_json(&app, &beta.admin_token, "/chat/rooms").await;
    assert_eq!(rooms["items"], json!([]));

    // A direct conversation with oneself is not a room.
    let (status, body) = get_json(
        &app,
        &acme.admin_token,
        &format!("/chat/rooms/dm:{}/messages", acme.admin),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    // Under "own" visibility a user sees only the threads of records they own.
    let mut settings =
        serde_json::to_value(edge_server::organization_settings::OrganizationSettings::default())
            .unwrap();
    settings["record_visibility"] = json!("own");
    let changed = send(
        &app,
        &acme.admin_token,
        Method::PUT,
        "/organization/settings",
        Some(settings),
    )
    .await;
    assert_eq!(changed.status(), 200);
    let user = invite_and_accept(&app, &acme.admin_token, "user@acme.example", "user").await;
    let user_token = crate::auth::token(&user);
    let (status, _) = get_json(&app, &user_token, &format!("/chat/rooms/{deal}/messages")).await;
    assert_eq!(status, 404);
    // The manager still sees everything.
    let (status, page) = get_json(
        &app,
        &acme.member_token,
        &format!("/chat/rooms/{deal}/messages"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"][0]["id"], id.as_str());
}
