//! The wall between tenants, checked over every route of the catalog, and the permission
//! matrix exercised per role over HTTP.

use reqwest::Method;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Statement,
};
use serde_json::{Value, json};

use edge_server::entities::{
    api_keys, deal_stage_moves, deals, invitations, memberships, organizations, pipeline_stages,
    pipelines, sessions, users,
};
use edge_server::http::{Access, catalog};
use edge_tenancy::{Permission, Role};

use crate::auth::{PASSWORD, login, operator, signup, token};
use crate::helpers::{TestApp, on_both_backends};

on_both_backends!(
    every_route_keeps_tenants_apart,
    the_permission_matrix_holds_over_http,
    api_keys_are_shown_once_work_and_stop_when_revoked,
    members_are_invited_promoted_and_deactivated,
    operators_create_and_suspend_organizations,
    usage_and_the_audit_log_are_per_organization,
);

/// An organization with data of every kind the API exposes.
struct World {
    org: String,
    admin_token: String,
    admin_user: String,
    member_user: String,
    member_token: String,
    api_key_id: String,
    api_key_prefix: String,
    invitation_id: String,
    pipeline_id: String,
    /// The default pipeline's stages, in order.
    stage_ids: Vec<String>,
    deal_id: String,
    prospect_id: String,
    relationship_id: String,
    ticket_id: String,
    comment_id: String,
    activity_id: String,
    target_id: String,
    /// A pending wallet top-up.
    payment_id: String,
    /// A connected WhatsApp number.
    whatsapp_number_id: String,
    /// An inbound WhatsApp message, in the conversation with the prospect.
    whatsapp_message_id: String,
    /// A chat message in the deal's thread.
    chat_message_id: String,
    /// A CSV import, uploaded and mapped, not started.
    import_id: String,
}

/// Calls `/api/v1{path}` with a bearer token and an optional JSON body.
pub async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, app.url(&format!("/api/v1{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

pub async fn invite_and_accept(app: &TestApp, admin: &str, email: &str, role: &str) -> Value {
    let invited = send(
        app,
        admin,
        Method::POST,
        "/users/invitations",
        Some(json!({"email": email, "role": role})),
    )
    .await;
    assert_eq!(invited.status(), 201);
    let invited: Value = invited.json().await.unwrap();
    let accepted = app
        .client
        .post(app.url("/api/v1/invitations/accept"))
        .json(&json!({"token": invited["token"], "name": "Member", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 201);
    accepted.json().await.unwrap()
}

async fn world(app: &TestApp, name: &str, domain: &str) -> World {
    let admin = signup(app, name, &format!("admin@{domain}")).await;
    let admin_token = token(&admin);
    let member = invite_and_accept(app, &admin_token, &format!("member@{domain}"), "manager").await;
    let key = send(
        app,
        &admin_token,
        Method::POST,
        "/api-keys",
        Some(json!({"name": "integration"})),
    )
    .await;
    assert_eq!(key.status(), 201);
    let key: Value = key.json().await.unwrap();
    let pending = send(
        app,
        &admin_token,
        Method::POST,
        "/users/invitations",
        Some(json!({"email": format!("pending@{domain}")})),
    )
    .await;
    let pending: Value = pending.json().await.unwrap();
    let pipelines: Value = send(app, &admin_token, Method::GET, "/pipelines", None)
        .await
        .json()
        .await
        .unwrap();
    let pipeline = &pipelines["items"][0];
    let stage_ids: Vec<String> = pipeline["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let deal = send(
        app,
        &admin_token,
        Method::POST,
        "/deals",
        Some(json!({
            "title": format!("{name} secret deal"),
            "value": {"amount": "2500.00", "currency": "KES"},
            "tags": ["harness"],
        })),
    )
    .await;
    assert_eq!(deal.status(), 201);
    let deal: Value = deal.json().await.unwrap();
    let prospect = send(
        app,
        &admin_token,
        Method::POST,
        "/prospects",
        Some(json!({"name": format!("Lead of {name}"), "company": name, "phone": "0712345678", "tags": ["vip"]})),
    )
    .await;
    assert_eq!(prospect.status(), 201);
    let prospect: Value = prospect.json().await.unwrap();
    let relationship = send(
        app,
        &admin_token,
        Method::POST,
        "/relationships",
        Some(json!({"name": format!("Customer of {name}"), "phone": "0722000000"})),
    )
    .await;
    assert_eq!(relationship.status(), 201);
    let relationship: Value = relationship.json().await.unwrap();
    let created = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    };
    let ticket_id = created(
        send(
            app,
            &admin_token,
            Method::POST,
            "/tickets",
            Some(json!({"relationship_id": relationship["id"], "subject": format!("Ticket of {name}")})),
        )
        .await,
    )
    .await;
    let comment_id = created(
        send(
            app,
            &admin_token,
            Method::POST,
            &format!("/tickets/{ticket_id}/comments"),
            Some(json!({"body": format!("Comment of {name}")})),
        )
        .await,
    )
    .await;
    let activity_id = created(
        send(
            app,
            &admin_token,
            Method::POST,
            "/activities",
            Some(json!({"kind": "task", "subject_type": "ticket", "subject_id": ticket_id, "title": format!("Task of {name}")})),
        )
        .await,
    )
    .await;
    let target_id = created(
        send(
            app,
            &admin_token,
            Method::POST,
            "/targets",
            Some(json!({
                "name": format!("Target of {name}"), "metric": "activities_completed",
                "period_start": "2026-01-01", "period_end": "2026-12-31", "goal": 10,
            })),
        )
        .await,
    )
    .await;
    let payment_id = pending_payment(app, admin["organization"]["id"].as_str().unwrap()).await;
    let (whatsapp_number_id, whatsapp_message_id) = whatsapp_conversation(
        app,
        admin["organization"]["id"].as_str().unwrap(),
        prospect["id"].as_str().unwrap(),
    )
    .await;
    let chat_message_id = edge_server::chat::store_message(
        app.db(),
        edge_core::OrgId::from_uuid(
            admin["organization"]["id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        ),
        admin["user"]["id"].as_str().unwrap().parse().unwrap(),
        edge_server::chat::Room::Deal(deal["id"].as_str().unwrap().parse().unwrap()),
        edge_server::chat::NewMessage {
            body: format!("{name} secret chat"),
            client_message_id: Some("harness".into()),
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap()
    .message
    .id
    .to_string();
    let import_id = victim_import(app, &admin_token, name).await;
    World {
        import_id,
        chat_message_id,
        payment_id,
        whatsapp_number_id,
        whatsapp_message_id,
        ticket_id,
        comment_id,
        activity_id,
        target_id,
        prospect_id: prospect["id"].as_str().unwrap().to_owned(),
        relationship_id: relationship["id"].as_str().unwrap().to_owned(),
        org: admin["organization"]["id"].as_str().unwrap().to_owned(),
        admin_token,
        admin_user: admin["user"]["id"].as_str().unwrap().to_owned(),
        member_user: member["user"]["id"].as_str().unwrap().to_owned(),
        member_token: token(&member),
        api_key_id: key["id"].as_str().unwrap().to_owned(),
        api_key_prefix: key["prefix"].as_str().unwrap().to_owned(),
        invitation_id: pending["invitation"]["id"].as_str().unwrap().to_owned(),
        pipeline_id: pipeline["id"].as_str().unwrap().to_owned(),
        stage_ids,
        deal_id: deal["id"].as_str().unwrap().to_owned(),
    }
}

/// A pending wallet top-up of the organization, written directly (the harness's server
/// has no Daraja to talk to).
async fn pending_payment(app: &TestApp, org: &str) -> String {
    use sea_orm::ActiveValue::Set;
    let id = uuid::Uuid::now_v7();
    let now = chrono::Utc::now();
    let mut row = edge_server::entities::payments::ActiveModel::pending(
        org.parse().unwrap(),
        id,
        "wallet_top_up",
        "stk",
        edge_core::Money::from_minor(10_000, edge_core::Currency::Kes),
        now,
    );
    row.phone = Set(Some("+254708374149".into()));
    row.account_reference = Set("HARNESS".into());
    row.description = Set("Wallet top-up".into());
    row.merchant_request_id = Set(Some(format!("m-{id}")));
    row.checkout_request_id = Set(Some(format!("ws_CO_{id}")));
    row.next_check_at = Set(Some(now + chrono::TimeDelta::hours(1)));
    edge_server::entities::payments::Entity::insert(row)
        .exec_without_returning(app.db())
        .await
        .unwrap();
    id.to_string()
}

/// A connected WhatsApp number and a conversation with the prospect holding one inbound
/// message, written directly (the harness's server has no Graph to check a number with).
/// Returns the number's and the message's ids.
async fn whatsapp_conversation(app: &TestApp, org: &str, prospect: &str) -> (String, String) {
    use edge_server::entities::{whatsapp_conversations, whatsapp_messages, whatsapp_numbers};
    let org: uuid::Uuid = org.parse().unwrap();
    let now = chrono::Utc::now();
    let (number, conversation, message) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    let pnid = format!(
        "{}",
        100_000_000_000_u64 + u64::from(org.as_bytes()[15]) * 1000 + u64::from(org.as_bytes()[14])
    );
    whatsapp_numbers::Entity::insert(whatsapp_numbers::ActiveModel::from(
        whatsapp_numbers::Model {
            organization_id: org,
            id: number,
            phone_number_id: pnid.clone(),
            waba_id: "200000000000001".into(),
            display_number: "+254700000001".into(),
            verified_name: None,
            quality_rating: None,
            messages_per_second: 80,
            sealed: "not-a-sealed-token".into(),
            token_hint: "0000".into(),
            routing_key: Some(format!("{pnid}-{org}")),
            is_default: true,
            status: "connected".into(),
            verified_at: now,
            created_by: None,
            created_at: now,
            updated_at: now,
            disconnected_at: None,
        },
    ))
    .exec_without_returning(app.db())
    .await
    .unwrap();
    whatsapp_conversations::Entity::insert(whatsapp_conversations::ActiveModel::from(
        whatsapp_conversations::Model {
            organization_id: org,
            id: conversation,
            contact_type: "prospect".into(),
            contact_id: prospect.parse().unwrap(),
            wa_id: Some(format!("2547{}", &pnid[pnid.len() - 8..])),
            user_id: None,
            phone: None,
            profile_name: Some("Harness".into()),
            number_id: Some(number),
            last_inbound_at: Some(now),
            window_expires_at: Some(now + chrono::TimeDelta::hours(24)),
            last_message_at: now,
            last_message_id: Some(message),
            last_message_preview: Some("hello".into()),
            unread_count: 1,
            created_at: now,
            updated_at: now,
        },
    ))
    .exec_without_returning(app.db())
    .await
    .unwrap();
    whatsapp_messages::Entity::insert(whatsapp_messages::ActiveModel::from(
        whatsapp_messages::Model {
            organization_id: org,
            id: message,
            conversation_id: conversation,
            number_id: number,
            direction: "inbound".into(),
            wamid: Some(format!("wamid.harness-{message}")),
            kind: "text".into(),
            content: json!({"type": "text", "text": {"body": "hello"}}),
            preview: Some("hello".into()),
            status: "received".into(),
            category: None,
            fee_minor: 0,
            currency: "KES".into(),
            hold_id: None,
            charge_status: "none".into(),
            idempotency_key: None,
            request_fingerprint: None,
            error_code: None,
            error_title: None,
            error_detail: None,
            attempts: 0,
            next_attempt_at: None,
            claimed_until: None,
            sent_by: None,
            occurred_at: now,
            created_at: now,
            updated_at: now,
        },
    ))
    .exec_without_returning(app.db())
    .await
    .unwrap();
    (number.to_string(), message.to_string())
}

/// Uploads and maps a CSV import of one prospect as `token`'s organization; returns its id.
async fn victim_import(app: &TestApp, token: &str, name: &str) -> String {
    let uploaded: Value = app
        .client
        .post(app.url("/api/v1/imports?kind=prospects"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(format!(
            "name,phone\nImported secret of {name},0712999001\n"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = uploaded["id"].as_str().unwrap().to_owned();
    let mapped = send(
        app,
        token,
        Method::PUT,
        &format!("/imports/{id}/mapping"),
        Some(json!({"mapping": {"name": "name", "phone": "phone"}, "duplicates": "skip"})),
    )
    .await;
    assert_eq!(mapped.status(), 200);
    id
}

/// Puts an organization on the enterprise plan, so that a test walking every route of the
/// catalog in one burst is not rate-limited by the standard plan.
async fn unthrottle(app: &TestApp, org: &str) {
    edge_server::billing::subscriptions::assign_plan(
        app.db(),
        edge_core::OrgId::from_uuid(org.parse().unwrap()),
        "enterprise",
        edge_server::audit::Actor::System,
        &edge_server::audit::ClientInfo::default(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
}

/// Fills a catalog path's `{id}` with the victim's record of the right kind. A route with
/// a parameter this does not know fails the test: extend it when adding such a route.
fn victim_path(path: &str, victim: &World) -> String {
    let id = if path.starts_with("/api-keys/") {
        &victim.api_key_id
    } else if path.starts_with("/users/") {
        &victim.member_user
    } else if path.starts_with("/admin/organizations/") {
        &victim.org
    } else if path.starts_with("/admin/plans/") {
        // Plans belong to the platform, not to a tenant: only the operator may touch one.
        return path.replace("{code}", "standard");
    } else if path.starts_with("/pipelines/") {
        return path
            .replace("{id}", &victim.pipeline_id)
            .replace("{stage_id}", &victim.stage_ids[0]);
    } else if path.starts_with("/deals/") {
        &victim.deal_id
    } else if path.starts_with("/prospects/") {
        &victim.prospect_id
    } else if path.starts_with("/relationships/") {
        &victim.relationship_id
    } else if path.starts_with("/tickets/") {
        &victim.ticket_id
    } else if path.starts_with("/activities/") {
        &victim.activity_id
    } else if path.starts_with("/targets/") {
        &victim.target_id
    } else if path.starts_with("/payments/") {
        &victim.payment_id
    } else if path.starts_with("/whatsapp/numbers/") {
        &victim.whatsapp_number_id
    } else if path.starts_with("/whatsapp/messages/") {
        &victim.whatsapp_message_id
    } else if path.starts_with("/imports/") {
        &victim.import_id
    } else if path.starts_with("/chat/rooms/") {
        // A chat room is named by its record: the victim's deal thread.
        return path.replace("{room}", &format!("deal:{}", victim.deal_id));
    } else if path.starts_with("/whatsapp/conversations/") {
        // A conversation is addressed by its contact.
        return path.replace("{contact}", &victim.prospect_id);
    } else {
        assert!(
            !path.contains('{'),
            "the isolation harness does not know what {{id}} is in {path}: extend victim_path"
        );
        return path.to_owned();
    };
    let path = path
        .replace("{id}", id)
        .replace("{comment_id}", &victim.comment_id)
        .replace("{payment_id}", &victim.payment_id);
    assert!(
        !path.contains('{'),
        "the isolation harness does not know a parameter of {path}: extend victim_path"
    );
    path
}

/// A valid body for each route that takes one, so that a refusal is about the tenant,
/// not the body's shape. Pointing at another tenant's records where a body can.
fn sample_body(method: &Method, path: &str, victim: &World) -> Option<Value> {
    match (method.as_str(), path) {
        ("POST", "/auth/switch") => Some(json!({"organization_id": victim.org})),
        ("POST", "/me/password") => Some(
            json!({"current_password": "not it at all", "new_password": "another long password"}),
        ),
        ("PATCH", "/organization") => Some(json!({"name": "Renamed by the harness"})),
        ("PUT", "/organization/settings") => Some(
            serde_json::to_value(
                edge_server::organization_settings::OrganizationSettings::default(),
            )
            .unwrap(),
        ),
        ("POST", "/api-keys") => Some(json!({"name": "harness"})),
        ("POST", "/users/invitations") => {
            Some(json!({"email": "newcomer@elsewhere.example", "role": "user"}))
        }
        ("PATCH", "/users/{id}") => Some(json!({"role": "user"})),
        ("PUT", "/imports/{id}/mapping") => {
            Some(json!({"mapping": {"name": "name"}, "duplicates": "create"}))
        }
        ("POST", "/admin/organizations") => Some(json!({"name": "Harness Org"})),
        ("POST", "/admin/plans") => Some(json!({
            "code": "harness",
            "name": "Harness plan",
            "price": {"amount": "1.00", "currency": "KES"},
            "period_days": 30,
            "grace_days": 7,
            "requests_per_minute": 60,
            "request_burst": 10,
            "seats": 1,
            "max_api_keys": 1,
        })),
        ("PATCH", "/admin/plans/{code}") => Some(json!({"name": "Renamed by the harness"})),
        ("PATCH", "/wallet") => {
            Some(json!({"low_balance_threshold": {"amount": "50.00", "currency": "KES"}}))
        }
        ("POST", "/pipelines") => Some(json!({
            "name": "Harness pipeline",
            "stages": [{"name": "One"}, {"name": "Two"}],
            "is_default": true,
        })),
        ("PATCH", "/pipelines/{id}") => {
            Some(json!({"name": "Renamed by the harness", "is_default": true}))
        }
        ("POST", "/pipelines/{id}/stages") => Some(json!({"name": "Harness stage"})),
        ("PATCH", "/pipelines/{id}/stages/{stage_id}") => {
            Some(json!({"name": "Renamed by the harness", "probability": 1}))
        }
        ("PUT", "/pipelines/{id}/stages/order") => {
            let mut ids = victim.stage_ids.clone();
            ids.reverse();
            Some(json!({ "stage_ids": ids }))
        }
        ("POST", "/pipelines/{id}/stages/{stage_id}/archive") => {
            Some(json!({"move_deals_to": victim.stage_ids.last()}))
        }
        ("POST", "/deals") => Some(json!({
            "title": "Harness deal",
            "pipeline_id": victim.pipeline_id,
            "stage_id": victim.stage_ids.first(),
            "owner_id": victim.admin_user,
            "prospect_id": victim.prospect_id,
            "relationship_id": victim.relationship_id,
        })),
        ("PATCH", "/deals/{id}") => Some(json!({
            "title": "Renamed by the harness",
            "value": {"amount": "1.00", "currency": "KES"},
            "prospect_id": victim.prospect_id,
        })),
        ("POST", "/deals/{id}/move") => Some(json!({
            "stage_id": victim.stage_ids.last(),
            "after_id": victim.deal_id,
        })),
        ("POST", "/deals/{id}/won") => Some(json!({"reason": "harness"})),
        ("POST", "/deals/{id}/lost") => Some(json!({"reason": "harness"})),
        ("PATCH", "/admin/organizations/{id}/wallet") => {
            Some(json!({"credit_limit": {"amount": "10.00", "currency": "KES"}}))
        }
        ("POST", "/payments/{id}/reversal")
        | ("POST", "/admin/organizations/{id}/payments/{payment_id}/reversal") => {
            Some(json!({"reason": "Reversed by the harness"}))
        }
        ("POST", "/payments/{id}/status-query")
        | ("POST", "/admin/organizations/{id}/payments/{payment_id}/status-query") => {
            Some(json!({"reason": "Asked by the harness"}))
        }
        ("POST", "/mpesa/c2b/register") | ("POST", "/admin/mpesa/c2b/register") => {
            Some(json!({"response_type": "Completed", "version": "v2"}))
        }
        ("POST", "/admin/organizations/{id}/wallet/adjustments") => Some(json!({
            "amount": {"amount": "100.00", "currency": "KES"},
            "direction": "credit",
            "reason": "harness",
            "idempotency_key": "harness-1",
        })),
        ("POST", "/prospects") | ("POST", "/relationships") => {
            Some(json!({"name": "Harness", "owner_id": victim.admin_user}))
        }
        ("PATCH", "/prospects/{id}") | ("PATCH", "/relationships/{id}") => {
            Some(json!({"name": "Renamed by the harness"}))
        }
        ("POST", "/tickets") => Some(json!({
            "relationship_id": victim.relationship_id,
            "subject": "Harness ticket",
            "assignee_id": victim.admin_user,
        })),
        ("PATCH", "/tickets/{id}") => Some(json!({"subject": "Renamed by the harness"})),
        ("POST", "/tickets/{id}/comments") | ("PATCH", "/tickets/{id}/comments/{comment_id}") => {
            Some(json!({"body": "Written by the harness"}))
        }
        ("POST", "/activities") => Some(json!({
            "kind": "note",
            "subject_type": "ticket",
            "subject_id": victim.ticket_id,
            "title": "Harness note",
        })),
        ("PATCH", "/activities/{id}") => Some(json!({"title": "Renamed by the harness"})),
        ("POST", "/targets") => Some(json!({
            "name": "Harness target",
            "metric": "activities_completed",
            "user_ids": [victim.member_user],
            "period_start": "2026-01-01",
            "period_end": "2026-12-31",
            "goal": 3,
        })),
        ("PATCH", "/targets/{id}") => Some(json!({"name": "Renamed by the harness"})),
        // Refused before any push: nothing of the victim's is involved in a top-up.
        ("POST", "/admin/organizations/{id}/payments/{payment_id}/review") => {
            Some(json!({"decision": "reject", "reason": "harness"}))
        }
        ("POST", "/wallet/top-ups") => Some(json!({"amount": "0", "phone": "0708374149"})),
        ("POST", "/whatsapp/messages") => Some(json!({
            "contact_id": victim.prospect_id,
            "text": {"body": "Written by the harness"},
        })),
        ("POST", "/whatsapp/numbers") => Some(json!({
            "phone_number_id": "100000000000999",
            "waba_id": "200000000000999",
            "access_token": "harness-token",
        })),
        ("PATCH", "/whatsapp/numbers/{id}") => Some(json!({"default": true})),
        ("POST", "/mpesa/collections") => Some(json!({
            "amount": "100",
            "relationship_id": victim.relationship_id,
        })),
        ("PUT", "/mpesa/settings") => Some(json!({
            "environment": "sandbox",
            "shortcode": "600100",
            "consumer_key": "harness-key",
            "consumer_secret": "harness-secret",
            "passkey": "harness-passkey",
        })),
        ("PUT", "/chat/rooms/{room}/read") => Some(json!({"message_id": victim.chat_message_id})),
        (_, _) if matches!(method.as_str(), "POST" | "PATCH" | "PUT") => Some(json!({})),
        _ => None,
    }
}

/// Everything of one organization, to check that nothing of it changes.
async fn snapshot(db: &DatabaseConnection, org: uuid::Uuid) -> Vec<String> {
    let mut out = Vec::new();
    out.push(format!(
        "{:?}",
        organizations::Entity::find_by_id(org)
            .one(db)
            .await
            .unwrap()
    ));
    let members = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap();
    for m in &members {
        out.push(format!("{m:?}"));
        out.push(format!(
            "{:?}",
            users::Entity::find_by_id(m.user_id).one(db).await.unwrap()
        ));
    }
    for s in sessions::Entity::find()
        .filter(sessions::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap()
    {
        out.push(format!("{s:?}"));
    }
    for k in api_keys::Entity::find()
        .filter(api_keys::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap()
    {
        out.push(format!("{k:?}"));
    }
    for i in invitations::Entity::find()
        .filter(invitations::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap()
    {
        out.push(format!("{i:?}"));
    }
    for p in pipelines::Entity::find()
        .filter(pipelines::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap()
    {
        out.push(format!("{p:?}"));
    }
    for i in edge_server::entities::imports::Entity::find()
        .filter(edge_server::entities::imports::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap()
    {
        out.push(format!("{i:?}"));
    }
    for n in edge_server::entities::whatsapp_numbers::Entity::find()
        .filter(edge_server::entities::whatsapp_numbers::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap()
    {
        out.push(format!("{n:?}"));
    }
    for c in edge_server::entities::whatsapp_conversations::Entity::find()
        .filter(edge_server::entities::whatsapp_conversations::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap()
    {
        out.push(format!("{c:?}"));
    }
    for m in edge_server::entities::whatsapp_messages::Entity::find()
        .filter(edge_server::entities::whatsapp_messages::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap()
    {
        out.push(format!("{m:?}"));
    }
    for s in pipeline_stages::Entity::find()
        .filter(pipeline_stages::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap()
    {
        out.push(format!("{s:?}"));
    }
    for d in deals::Entity::find()
        .filter(deals::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap()
    {
        out.push(format!("{d:?}"));
    }
    for m in deal_stage_moves::Entity::find()
        .filter(deal_stage_moves::Column::OrganizationId.eq(org))
        .all(db)
        .await
        .unwrap()
    {
        out.push(format!("{m:?}"));
    }
    // And a row count of every tenant-owned table, including ones added later.
    for table in tenant_tables(db).await {
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table} WHERE organization_id = $1"),
                [org.into()],
            ))
            .await
            .unwrap()
            .unwrap();
        let n: i64 = row.try_get("", "n").unwrap();
        // API calls are counted for the caller's organization, never the victim's.
        out.push(format!("{table}: {n}"));
    }
    out
}

async fn tenant_tables(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Sqlite => {
            "SELECT m.name AS t FROM sqlite_master m JOIN pragma_table_info(m.name) c WHERE m.type = 'table' AND c.name = 'organization_id' ORDER BY m.name"
        }
        _ => {
            "SELECT table_name::text AS t FROM information_schema.columns WHERE column_name = 'organization_id' AND table_schema = current_schema() ORDER BY table_name"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    let tables: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "t").unwrap())
        .collect();
    assert!(tables.len() >= 7, "{tables:?}");
    tables
}

async fn every_route_keeps_tenants_apart(app: TestApp) {
    let victim = world(&app, "Alpha Traders", "alpha.example").await;
    let intruder = world(&app, "Beta Supplies", "beta.example").await;
    unthrottle(&app, &intruder.org).await;
    let leaks = [
        victim.org.clone(),
        victim.admin_user.clone(),
        victim.member_user.clone(),
        victim.api_key_id.clone(),
        victim.api_key_prefix.clone(),
        victim.invitation_id.clone(),
        victim.pipeline_id.clone(),
        victim.stage_ids[0].clone(),
        victim.deal_id.clone(),
        "Alpha Traders secret deal".to_owned(),
        victim.prospect_id.clone(),
        victim.relationship_id.clone(),
        victim.ticket_id.clone(),
        victim.comment_id.clone(),
        victim.activity_id.clone(),
        victim.target_id.clone(),
        victim.payment_id.clone(),
        victim.chat_message_id.clone(),
        "Alpha Traders secret chat".to_owned(),
        "alpha.example".to_owned(),
        "Alpha Traders".to_owned(),
    ];
    let victim_org: uuid::Uuid = victim.org.parse().unwrap();
    let before = snapshot(app.db(), victim_org).await;

    let mut routes = catalog();
    // Log out last: it ends the intruder's session.
    routes.sort_by_key(|r| r.path == "/auth/logout");
    let mut checked = 0;
    for route in routes {
        if route.access == Access::Public {
            continue;
        }
        let path = victim_path(route.path, &victim);
        let body = sample_body(&route.method, route.path, &victim);
        let response = send(
            &app,
            &intruder.admin_token,
            route.method.clone(),
            &path,
            body,
        )
        .await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        if route.path.contains("{id}") || route.path.contains("{room}") {
            assert!(
                status == 404 || status == 403,
                "{} {path} with another tenant's id answered {status}: {text}",
                route.method
            );
        }
        for leak in &leaks {
            assert!(
                !text.contains(leak.as_str()),
                "{} {path} leaked {leak:?}: {text}",
                route.method
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} routes checked");
    assert_eq!(
        snapshot(app.db(), victim_org).await,
        before,
        "the victim's data changed"
    );

    // The victim is unaffected.
    let me = send(&app, &victim.admin_token, Method::GET, "/me", None).await;
    assert_eq!(me.status(), 200);
    let _ = victim.member_token;
}

async fn the_permission_matrix_holds_over_http(app: TestApp) {
    let admin = signup(&app, "Matrix", "admin@matrix.example").await;
    unthrottle(&app, admin["organization"]["id"].as_str().unwrap()).await;
    let admin_token = token(&admin);
    let manager = invite_and_accept(&app, &admin_token, "manager@matrix.example", "manager").await;
    let user = invite_and_accept(&app, &admin_token, "user@matrix.example", "user").await;
    let roles = [
        (Role::OrgAdmin, admin_token.clone()),
        (Role::Manager, token(&manager)),
        (Role::User, token(&user)),
    ];

    let nobody = World {
        org: uuid::Uuid::now_v7().to_string(),
        admin_token: String::new(),
        admin_user: String::new(),
        member_user: uuid::Uuid::now_v7().to_string(),
        member_token: String::new(),
        api_key_id: uuid::Uuid::now_v7().to_string(),
        api_key_prefix: String::new(),
        invitation_id: String::new(),
        pipeline_id: uuid::Uuid::now_v7().to_string(),
        stage_ids: vec![
            uuid::Uuid::now_v7().to_string(),
            uuid::Uuid::now_v7().to_string(),
        ],
        deal_id: uuid::Uuid::now_v7().to_string(),
        prospect_id: uuid::Uuid::now_v7().to_string(),
        relationship_id: uuid::Uuid::now_v7().to_string(),
        ticket_id: uuid::Uuid::now_v7().to_string(),
        comment_id: uuid::Uuid::now_v7().to_string(),
        activity_id: uuid::Uuid::now_v7().to_string(),
        target_id: uuid::Uuid::now_v7().to_string(),
        payment_id: uuid::Uuid::now_v7().to_string(),
        whatsapp_number_id: uuid::Uuid::now_v7().to_string(),
        whatsapp_message_id: uuid::Uuid::now_v7().to_string(),
        chat_message_id: uuid::Uuid::now_v7().to_string(),
        import_id: uuid::Uuid::now_v7().to_string(),
    };
    let mut rows = 0;
    for (role, role_token) in &roles {
        for route in catalog() {
            let Access::Permission(permission) = route.access else {
                continue;
            };
            // Ids that exist nowhere: allowed calls answer 404, refused ones 403.
            let path = victim_path(route.path, &nobody);
            let body = sample_body(&route.method, route.path, &nobody).map(|b| {
                if route.path == "/users/invitations" {
                    json!({"email": format!("x{rows}@matrix.example")})
                } else {
                    b
                }
            });
            let response = send(&app, role_token, route.method.clone(), &path, body).await;
            let status = response.status().as_u16();
            let allowed = role.allows(permission);
            if allowed {
                assert_ne!(
                    status, 403,
                    "{role} should be allowed {} {path} ({permission})",
                    route.method
                );
                assert_ne!(status, 401);
            } else {
                assert_eq!(
                    status, 403,
                    "{role} should be refused {} {path} ({permission})",
                    route.method
                );
            }
            rows += 1;
        }
    }
    assert!(rows >= 3 * 18, "{rows}");
    assert!(!Role::Manager.allows(Permission::MembersManage));
}

async fn api_keys_are_shown_once_work_and_stop_when_revoked(app: TestApp) {
    let admin = signup(&app, "Keys", "admin@keys.example").await;
    let admin_token = token(&admin);
    let created = send(
        &app,
        &admin_token,
        Method::POST,
        "/api-keys",
        Some(json!({"name": "ERP sync", "role": "manager"})),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("edge_live_"), "{key}");
    assert!(key.contains(created["prefix"].as_str().unwrap()));

    let listed: Value = send(&app, &admin_token, Method::GET, "/api-keys", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(
        !listed.to_string().contains(&key),
        "the key is shown only once"
    );
    let stored = api_keys::Entity::find()
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    assert!(!format!("{stored:?}").contains(&key["edge_live_".len()..]));

    // The key works, with its role.
    let me = send(&app, &key, Method::GET, "/me", None).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["role"], "manager");
    assert_eq!(
        send(&app, &key, Method::GET, "/api-keys", None)
            .await
            .status(),
        403
    );

    // Nobody hands out more than they have; nonsense is refused.
    let too_high = send(
        &app,
        &admin_token,
        Method::POST,
        "/api-keys",
        Some(json!({"name": "x", "role": "super_admin"})),
    )
    .await;
    assert_eq!(too_high.status(), 422);

    let id = created["id"].as_str().unwrap();
    assert_eq!(
        send(
            &app,
            &admin_token,
            Method::DELETE,
            &format!("/api-keys/{id}"),
            None
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        send(&app, &key, Method::GET, "/me", None).await.status(),
        401
    );
    assert_eq!(
        send(
            &app,
            &admin_token,
            Method::DELETE,
            &format!("/api-keys/{id}"),
            None
        )
        .await
        .status(),
        204
    );
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(
        send(
            &app,
            &admin_token,
            Method::DELETE,
            &format!("/api-keys/{unknown}"),
            None
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        send(
            &app,
            &admin_token,
            Method::DELETE,
            "/api-keys/not-an-id",
            None
        )
        .await
        .status(),
        404
    );
}

async fn members_are_invited_promoted_and_deactivated(app: TestApp) {
    let admin = signup(&app, "People", "admin@people.example").await;
    let admin_token = token(&admin);
    let joined = invite_and_accept(&app, &admin_token, "Njeri@People.example", "user").await;
    assert_eq!(joined["role"], "user");
    assert_eq!(joined["organization"]["id"], admin["organization"]["id"]);
    let member_token = token(&joined);
    let member_id = joined["user"]["id"].as_str().unwrap().to_owned();

    let members: Value = send(&app, &admin_token, Method::GET, "/users", None)
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["admin@people.example", "njeri@people.example"]);

    // A used invitation cannot be used again.
    let again = send(
        &app,
        &admin_token,
        Method::POST,
        "/users/invitations",
        Some(json!({"email": "njeri@people.example"})),
    )
    .await;
    assert_eq!(again.status(), 409);

    // Promotion ends the member's sessions so the new role applies at once.
    let promoted = send(
        &app,
        &admin_token,
        Method::PATCH,
        &format!("/users/{member_id}"),
        Some(json!({"role": "manager"})),
    )
    .await;
    assert_eq!(promoted.status(), 200);
    assert_eq!(promoted.json::<Value>().await.unwrap()["role"], "manager");
    assert_eq!(
        send(&app, &member_token, Method::GET, "/me", None)
            .await
            .status(),
        401
    );
    let relogged: Value = login(
        &app,
        json!({"email": "njeri@people.example", "password": PASSWORD}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(relogged["role"], "manager");

    // The last admin cannot be demoted or deactivated, and nobody changes themselves.
    let admin_id = admin["user"]["id"].as_str().unwrap();
    let own = send(
        &app,
        &admin_token,
        Method::POST,
        &format!("/users/{admin_id}/deactivate"),
        None,
    )
    .await;
    assert_eq!(own.status(), 409);

    let deactivated = send(
        &app,
        &admin_token,
        Method::POST,
        &format!("/users/{member_id}/deactivate"),
        None,
    )
    .await;
    assert_eq!(deactivated.status(), 200);
    assert_eq!(
        send(&app, &token(&relogged), Method::GET, "/me", None)
            .await
            .status(),
        401
    );
    let refused = login(
        &app,
        json!({"email": "njeri@people.example", "password": PASSWORD}),
    )
    .await;
    assert_eq!(refused.status(), 403);
    let back = send(
        &app,
        &admin_token,
        Method::POST,
        &format!("/users/{member_id}/reactivate"),
        None,
    )
    .await;
    assert_eq!(back.status(), 200);
    assert_eq!(
        login(
            &app,
            json!({"email": "njeri@people.example", "password": PASSWORD})
        )
        .await
        .status(),
        200
    );

    // A bad invitation token is refused.
    let bad = app
        .client
        .post(app.url("/api/v1/invitations/accept"))
        .json(&json!({"token": "inv_nope", "name": "X", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}

async fn operators_create_and_suspend_organizations(app: TestApp) {
    let ops = operator(&app).await;
    assert_eq!(ops["role"], "super_admin");
    let ops_token = token(&ops);

    let created = send(
        &app,
        &ops_token,
        Method::POST,
        "/admin/organizations",
        Some(json!({"name": "Chama Group", "plan": "free", "admin_email": "boss@chama.example"})),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["organization"]["plan"], "free");
    let org_id = created["organization"]["id"].as_str().unwrap().to_owned();
    let accepted = app
        .client
        .post(app.url("/api/v1/invitations/accept"))
        .json(
            &json!({"token": created["invitation"]["token"], "name": "Boss", "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 201);
    let boss: Value = accepted.json().await.unwrap();
    assert_eq!(boss["role"], "org_admin");

    let listed: Value = send(
        &app,
        &ops_token,
        Method::GET,
        "/admin/organizations?limit=1",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let next = listed["next_cursor"].as_str().unwrap();
    let rest: Value = send(
        &app,
        &ops_token,
        Method::GET,
        &format!("/admin/organizations?cursor={next}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        rest["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == org_id.as_str())
    );

    let suspended = send(
        &app,
        &ops_token,
        Method::POST,
        &format!("/admin/organizations/{org_id}/suspend"),
        None,
    )
    .await;
    assert_eq!(suspended.status(), 200);
    assert_eq!(
        send(&app, &token(&boss), Method::GET, "/me", None)
            .await
            .status(),
        403
    );
    send(
        &app,
        &ops_token,
        Method::POST,
        &format!("/admin/organizations/{org_id}/reactivate"),
        None,
    )
    .await;
    assert_eq!(
        send(&app, &token(&boss), Method::GET, "/me", None)
            .await
            .status(),
        200
    );

    // An org admin is not an operator.
    assert_eq!(
        send(
            &app,
            &token(&boss),
            Method::GET,
            "/admin/organizations",
            None
        )
        .await
        .status(),
        403
    );
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(
        send(
            &app,
            &ops_token,
            Method::POST,
            &format!("/admin/organizations/{unknown}/suspend"),
            None
        )
        .await
        .status(),
        404
    );
}

async fn usage_and_the_audit_log_are_per_organization(app: TestApp) {
    let admin = signup(&app, "Counted", "admin@counted.example").await;
    let admin_token = token(&admin);
    for _ in 0..3 {
        send(&app, &admin_token, Method::GET, "/me", None).await;
    }
    send(
        &app,
        &admin_token,
        Method::POST,
        "/api-keys",
        Some(json!({"name": "audited"})),
    )
    .await;
    let usage: Value = send(&app, &admin_token, Method::GET, "/usage", None)
        .await
        .json()
        .await
        .unwrap();
    let periods = usage["periods"].as_object().unwrap();
    assert_eq!(periods.len(), 2);
    for (_, metrics) in periods {
        // 3 × /me, 1 × /api-keys, and this /usage call itself.
        assert_eq!(metrics["api_calls"], 5, "{usage}");
    }
    let bad = send(
        &app,
        &admin_token,
        Method::GET,
        "/usage?period=yesterday",
        None,
    )
    .await;
    assert_eq!(bad.status(), 422);

    let log: Value = send(&app, &admin_token, Method::GET, "/audit-log", None)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["api_key.create", "organization.signup"]);
    let entry = &log["items"][0];
    assert_eq!(entry["actor_type"], "user");
    assert_eq!(entry["actor_id"], admin["user"]["id"]);
    assert!(entry["ip_address"].as_str().unwrap().starts_with("127."));
    assert!(entry["request_id"].is_string());

    let filtered: Value = send(
        &app,
        &admin_token,
        Method::GET,
        "/audit-log?action=organization.signup&limit=1",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    assert!(filtered["next_cursor"].is_null());
    let paged: Value = send(&app, &admin_token, Method::GET, "/audit-log?limit=1", None)
        .await
        .json()
        .await
        .unwrap();
    let cursor = paged["next_cursor"].as_str().unwrap();
    let second: Value = send(
        &app,
        &admin_token,
        Method::GET,
        &format!("/audit-log?limit=1&cursor={cursor}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(second["items"][0]["action"], "organization.signup");
    let tampered = send(
        &app,
        &admin_token,
        Method::GET,
        "/audit-log?cursor=garbage!",
        None,
    )
    .await;
    assert_eq!(tampered.status(), 422);

    // Another organization sees none of it.
    let other = signup(&app, "Other", "admin@other.example").await;
    let theirs: Value = send(&app, &token(&other), Method::GET, "/audit-log", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_hides_every_row_without_the_tenant_setting() {
    use sea_orm::{Database, TransactionTrait};

    let Some(app) =
        crate::helpers::spawn_app(crate::helpers::Backend::Postgres, "row_level_security").await
    else {
        return;
    };
    let alpha = signup(&app, "Alpha", "admin@alpha.example").await;
    let beta = signup(&app, "Beta", "admin@beta.example").await;
    let alpha_org = alpha["organization"]["id"].as_str().unwrap().to_owned();
    let beta_org = beta["organization"]["id"].as_str().unwrap().to_owned();

    // The runtime role: neither superuser nor owner, as a production server connects.
    let role = format!("edge_runtime_{}", uuid::Uuid::now_v7().simple());
    let owner = app.db();
    owner
        .execute_unprepared(&format!(
            "CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA public TO {role}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};"
        ))
        .await
        .unwrap();
    let mut url = url::Url::parse(app.postgres_url().unwrap()).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(None).unwrap();
    let runtime = Database::connect(url.as_str()).await.unwrap();
    let count = |sql: &'static str| {
        let runtime = runtime.clone();
        async move {
            let row = runtime
                .query_one_raw(Statement::from_string(
                    sea_orm::DatabaseBackend::Postgres,
                    sql,
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i64>("", "n").unwrap()
        }
    };

    // No setting: nothing at all, in every tenant table.
    assert_eq!(count("SELECT COUNT(*) AS n FROM memberships").await, 0);
    assert_eq!(count("SELECT COUNT(*) AS n FROM sessions").await, 0);
    assert_eq!(count("SELECT COUNT(*) AS n FROM audit_log").await, 0);
    // The owner (a superuser here) sees both organizations' rows.
    let all = owner
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT COUNT(*) AS n FROM memberships",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(all, 2);

    // With Alpha's setting: only Alpha's rows; writing a row of Beta's is refused.
    let txn = runtime.begin().await.unwrap();
    txn.execute_unprepared(&format!("SET LOCAL edge.organization_id = '{alpha_org}'"))
        .await
        .unwrap();
    let rows = txn
        .query_all_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT organization_id::text AS org FROM memberships",
        ))
        .await
        .unwrap();
    let orgs: Vec<String> = rows.iter().map(|r| r.try_get("", "org").unwrap()).collect();
    assert_eq!(orgs, vec![alpha_org]);
    let smuggled = txn
        .execute_unprepared(&format!(
            "INSERT INTO audit_log (organization_id, id, actor_type, action, details, created_at) \
             VALUES ('{beta_org}', '{}', 'system', 'smuggled', '{{}}', now())",
            uuid::Uuid::now_v7()
        ))
        .await;
    assert!(
        smuggled.is_err(),
        "a row for another organization was accepted"
    );
    txn.rollback().await.unwrap();

    // The setting is per transaction: gone afterwards.
    assert_eq!(count("SELECT COUNT(*) AS n FROM memberships").await, 0);

    runtime.close().await.unwrap();
    owner
        .execute_unprepared(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
        .await
        .unwrap();
}
