//! In-app notifications: a low wallet balance reaches the members who may read billing
//! over REST and Socket.IO; a record given to someone notifies them; mentions notify the
//! members who can see the room; an overdue ticket notifies its assignee once; nobody
//! reads or marks another member's notifications.

use std::time::Duration;

use reqwest::Method;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _};
use serde_json::{Value, json};

use crate::auth::{operator, token};
use crate::chat_socketio::team;
use crate::helpers::{TestApp, on_both_backends};
use crate::socket_client;
use crate::tenancy::{invite_and_accept, send};
use crate::whatsapp::{count, count_until, get_until};

on_both_backends!(
    a_low_balance_notifies_billing_members_over_rest_and_socket_io,
    giving_a_deal_to_someone_notifies_them,
    a_mention_notifies_members_who_can_see_the_room,
    an_overdue_ticket_notifies_its_assignee_once,
);

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// The data of the newest event of `kind`.
pub async fn event_data(app: &TestApp, kind: &str) -> Value {
    edge_server::entities::events::Entity::find()
        .filter(edge_server::entities::events::Column::Kind.eq(kind))
        .order_by_desc(edge_server::entities::events::Column::Id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no {kind} event"))
        .payload
}

/// Waits until the caller has `n` notifications; returns the list.
async fn notifications_until(app: &TestApp, token: &str, n: usize) -> Value {
    get_until(app, token, "/notifications", |list| {
        list["items"]
            .as_array()
            .is_some_and(|items| items.len() >= n)
    })
    .await
}

async fn a_low_balance_notifies_billing_members_over_rest_and_socket_io(app: TestApp) {
    let js = socket_client::start(module_path!(), &app.url("")).await;
    let acme = team(&app, "Acme", "acme.example").await;
    let user = invite_and_accept(&app, &acme.admin_token, "user@acme.example", "user").await;
    let user_token = token(&user);
    let mut js = match js {
        Some(mut js) => {
            js.connect_ok("admin", &acme.admin_token).await;
            js.connect_ok("user", &user_token).await;
            Some(js)
        }
        None => None,
    };
    let ops = token(&operator(&app).await);
    let path = format!("/admin/organizations/{}/wallet/adjustments", acme.org);
    let adjust = |amount: &str, direction: &str, key: &str| {
        json!({
            "amount": {"amount": amount, "currency": "KES"},
            "direction": direction,
            "reason": "notification test",
            "idempotency_key": key,
        })
    };
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

    // Over REST: the admin and the manager (who may read billing), unread.
    let list = notifications_until(&app, &acme.admin_token, 1).await;
    assert_eq!(list["unread_count"], 1);
    let notice = &list["items"][0];
    assert_eq!(notice["kind"], "low_balance");
    assert_eq!(notice["read"], false);
    assert_eq!(notice["user_id"], acme.admin.as_str());
    assert!(
        notice["body"].as_str().unwrap().contains("KES 250.00"),
        "{notice}"
    );
    let managers = notifications_until(&app, &acme.member_token, 1).await;
    assert_eq!(managers["items"][0]["kind"], "low_balance");
    // All of them were written in one transaction: the user (no billing) has none.
    let users = json_of(send(&app, &user_token, Method::GET, "/notifications", None).await).await;
    assert_eq!(users["items"], json!([]));
    assert_eq!(users["unread_count"], 0);

    // Over Socket.IO: the admin's socket hears it as `notification`; the user's does not.
    if let Some(js) = js.as_mut() {
        let pushed = js
            .event_where("admin", "notification", |n| n["kind"] == "low_balance")
            .await;
        assert_eq!(pushed["id"], notice["id"]);
        assert_eq!(pushed["user_id"], acme.admin.as_str());
        js.no_event("user", "notification", Duration::from_millis(800))
            .await;
    }

    // Another member's notification is not found, to read or to mark.
    let id = notice["id"].as_str().unwrap();
    let theirs = send(
        &app,
        &acme.member_token,
        Method::POST,
        &format!("/notifications/{id}/read"),
        None,
    )
    .await;
    assert_eq!(theirs.status(), 404);
    let read = send(
        &app,
        &acme.admin_token,
        Method::POST,
        &format!("/notifications/{id}/read"),
        None,
    )
    .await;
    assert_eq!(read.status(), 200);
    let read = json_of(read).await;
    assert_eq!(read["read"], true);
    assert!(read["read_at"].is_string());
    let unread = json_of(
        send(
            &app,
            &acme.admin_token,
            Method::GET,
            "/notifications?unread=true",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(unread["items"], json!([]));
    assert_eq!(unread["unread_count"], 0);
    // The manager's is still unread; read-all marks it.
    let all = json_of(
        send(
            &app,
            &acme.member_token,
            Method::POST,
            "/notifications/read-all",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(all["marked"], 1);
    let managers = json_of(
        send(
            &app,
            &acme.member_token,
            Method::GET,
            "/notifications",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(managers["unread_count"], 0);
    assert_eq!(managers["items"][0]["read"], true);
    // The admin's stayed as it was (read once, by the admin).
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM notifications WHERE read_at IS NOT NULL"
        )
        .await,
        2
    );
}

async fn giving_a_deal_to_someone_notifies_them(app: TestApp) {
    let t = team(&app, "Owners", "owners.example").await;
    // An automation rule gives the deal to the member when it reaches the second stage.
    let rule = send(
        &app,
        &t.admin_token,
        Method::POST,
        "/automation/rules",
        Some(json!({
            "name": "Qualified: to the member",
            "trigger": "deal.stage_changed",
            "actions": [{"type": "assign_owner", "user_id": t.member}],
        })),
    )
    .await;
    assert_eq!(rule.status(), 201);
    let moved = send(
        &app,
        &t.admin_token,
        Method::POST,
        &format!("/deals/{}/move", t.deal),
        Some(json!({"stage_id": t.stages[1]})),
    )
    .await;
    assert_eq!(moved.status(), 200);
    let list = get_until(&app, &t.member_token, "/notifications", |list| {
        list["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|n| n["kind"] == "assignment"))
    })
    .await;
    let notice = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "assignment")
        .unwrap();
    assert_eq!(notice["subject_type"], "deal");
    assert_eq!(notice["subject_id"], t.deal.as_str());
    assert_eq!(notice["data"]["event"], "deal.updated");
    // The deal.updated event names what changed.
    let updated = event_data(&app, "deal.updated").await;
    assert_eq!(updated["changed"], json!(["owner_id"]));
    assert_eq!(updated["record"]["owner_id"], t.member.as_str());
    // A deal created for the member by the admin tells the member; the admin taking a
    // deal themselves tells no one.
    let created = send(
        &app,
        &t.admin_token,
        Method::POST,
        "/deals",
        Some(json!({"title": "Second deal", "owner_id": t.member})),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created = json_of(created).await;
    let taken = send(
        &app,
        &t.admin_token,
        Method::PATCH,
        &format!("/deals/{}", created["id"].as_str().unwrap()),
        Some(json!({"owner_id": t.admin})),
    )
    .await;
    assert_eq!(taken.status(), 200);
    let list = get_until(&app, &t.member_token, "/notifications", |list| {
        list["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|n| n["subject_id"] == created["id"] && n["kind"] == "assignment")
        })
    })
    .await;
    assert_eq!(list["items"][0]["data"]["event"], "deal.created");
    assert!(
        list["items"][0]["title"]
            .as_str()
            .unwrap()
            .contains("Second deal"),
        "{list}"
    );
    count_until(
        &app,
        "SELECT COUNT(*) AS n FROM event_queue WHERE consumer = 'notifications'",
        0,
    )
    .await;
    // Nobody else was told.
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM notifications WHERE kind = 'assignment'"
        )
        .await,
        2
    );
    let admins =
        json_of(send(&app, &t.admin_token, Method::GET, "/notifications", None).await).await;
    assert_eq!(admins["items"], json!([]), "{admins}");
}

async fn a_mention_notifies_members_who_can_see_the_room(app: TestApp) {
    let t = team(&app, "Talk", "talk.example").await;
    let user = invite_and_accept(&app, &t.admin_token, "user@talk.example", "user").await;
    let outsider = team(&app, "Else", "else.example").await;
    let org = edge_core::OrgId::from_uuid(t.org.parse().unwrap());
    let admin: uuid::Uuid = t.admin.parse().unwrap();
    let member: uuid::Uuid = t.member.parse().unwrap();
    // As the Socket.IO handler does it: in the organization's scope, as the server's role.
    let store = |room: edge_server::chat::Room, body: &str| {
        edge_server::tenant_scope::in_organization(
            org,
            edge_server::chat::store_message(
                &app.state.db,
                org,
                admin,
                room,
                edge_server::chat::NewMessage {
                    body: body.to_owned(),
                    client_message_id: None,
                },
                chrono::Utc::now(),
            ),
        )
    };
    // In the deal's thread: the member (and the user) may see it; the other
    // organization's admin and the sender are not notified.
    let deal = edge_server::chat::Room::Deal(t.deal.parse().unwrap());
    let stored = store(
        deal,
        "@member@talk.example, can you call them? cc @admin@talk.example @admin@else.example",
    )
    .await
    .unwrap();
    let list =
        json_of(send(&app, &t.member_token, Method::GET, "/notifications", None).await).await;
    assert_eq!(list["unread_count"], 1, "{list}");
    let notice = &list["items"][0];
    assert_eq!(notice["kind"], "mention");
    assert_eq!(notice["subject_type"], "chat_message");
    assert_eq!(notice["subject_id"], stored.message.id.to_string());
    assert_eq!(notice["data"]["room_id"], t.deal.as_str());
    for token in [&t.admin_token, &outsider.admin_token] {
        let none = json_of(send(&app, token, Method::GET, "/notifications", None).await).await;
        assert_eq!(none["items"], json!([]), "{none}");
    }
    // In a direct conversation with the member, mentioning the user: the user cannot see
    // it, so only the member (who can) is told.
    store(
        edge_server::chat::Room::Dm(member),
        "@user@talk.example is on leave, @MEMBER@talk.example.",
    )
    .await
    .unwrap();
    let users = json_of(send(&app, &token(&user), Method::GET, "/notifications", None).await).await;
    assert_eq!(users["items"], json!([]), "{users}");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM notifications WHERE kind = 'mention'"
        )
        .await,
        2
    );
    let list =
        json_of(send(&app, &t.member_token, Method::GET, "/notifications", None).await).await;
    assert_eq!(list["unread_count"], 2);
    assert_eq!(list["items"][0]["data"]["room"], "dm");
    assert_eq!(list["items"][0]["data"]["room_id"], t.admin.as_str());
    // Keyset pages: one at a time, newest first.
    let first = json_of(
        send(
            &app,
            &t.member_token,
            Method::GET,
            "/notifications?limit=1",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(first["items"][0]["id"], list["items"][0]["id"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = json_of(
        send(
            &app,
            &t.member_token,
            Method::GET,
            &format!("/notifications?limit=1&cursor={cursor}"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(second["items"][0]["id"], list["items"][1]["id"]);
    assert!(second["next_cursor"].is_null());
}

async fn an_overdue_ticket_notifies_its_assignee_once(app: TestApp) {
    let t = team(&app, "Help", "help.example").await;
    let relationship = json_of(
        send(
            &app,
            &t.admin_token,
            Method::POST,
            "/relationships",
            Some(json!({"name": "Wanjiku Stores", "phone": "0722000111"})),
        )
        .await,
    )
    .await;
    let due = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let ticket = send(
        &app,
        &t.admin_token,
        Method::POST,
        "/tickets",
        Some(json!({
            "relationship_id": relationship["id"],
            "subject": "Fridge not cooling",
            "assignee_id": t.member,
            "due_at": due,
        })),
    )
    .await;
    assert_eq!(ticket.status(), 201);
    let ticket = json_of(ticket).await;
    let list = get_until(&app, &t.member_token, "/notifications", |list| {
        list["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|n| n["kind"] == "overdue"))
    })
    .await;
    let notice = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "overdue")
        .unwrap();
    assert_eq!(notice["subject_type"], "ticket");
    assert_eq!(notice["subject_id"], ticket["id"]);
    assert!(
        notice["title"]
            .as_str()
            .unwrap()
            .contains("Fridge not cooling")
    );
    let data = event_data(&app, "ticket.overdue").await;
    assert_eq!(data["assignee_id"], t.member.as_str());
    // Swept again and again: still one event, one notification.
    for _ in 0..3 {
        edge_server::automation::overdue::sweep(&app.state.db, chrono::Utc::now())
            .await
            .unwrap();
    }
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM events WHERE kind = 'ticket.overdue'"
        )
        .await,
        1
    );
    count_until(
        &app,
        "SELECT COUNT(*) AS n FROM event_queue WHERE consumer = 'notifications'",
        0,
    )
    .await;
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM notifications WHERE kind = 'overdue'"
        )
        .await,
        1
    );
}
