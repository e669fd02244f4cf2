//! Sign-up, login, refresh rotation, logout, sessions and refusals.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use edge_server::entities::{memberships, organizations, users};

use crate::helpers::{TestApp, on_both_backends};

on_both_backends!(
    signup_creates_an_organization_and_its_admin,
    signup_refuses_bad_input_and_taken_emails,
    login_checks_the_password_and_refuses_unknown_accounts_alike,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    logout_ends_the_session_at_once,
    single_active_session_ends_other_sessions,
    password_change_ends_other_sessions,
    deactivated_users_and_suspended_organizations_are_refused,
    members_of_several_organizations_choose_and_switch,
    login_attempts_are_rate_limited_per_account,
);

pub const PASSWORD: &str = "correct horse battery staple";

/// Signs up a new organization; returns the response body.
pub async fn signup(app: &TestApp, organization: &str, email: &str) -> Value {
    let response = app
        .client
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({
            "organization_name": organization,
            "name": "Wanjiru Kamau",
            "email": email,
            "password": PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "signup {organization}");
    response.json().await.unwrap()
}

/// Creates the platform operator `ops@edge.example` and logs in; returns the login body.
pub async fn operator(app: &TestApp) -> Value {
    edge_server::identity::operator::create_operator(
        app.db(),
        chrono::Utc::now(),
        "ops@edge.example",
        "Ops",
        secrecy::SecretString::from(PASSWORD),
    )
    .await
    .unwrap();
    login(
        app,
        json!({"email": "ops@edge.example", "password": PASSWORD}),
    )
    .await
    .json()
    .await
    .unwrap()
}

pub async fn login(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn get_as(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

pub fn token(body: &Value) -> String {
    body["access_token"].as_str().unwrap().to_owned()
}

async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .unwrap()
}

async fn code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn signup_creates_an_organization_and_its_admin(app: TestApp) {
    let body = signup(&app, "Acme Traders Ltd.", "Wanjiru@Example.com").await;
    assert_eq!(body["organization"]["name"], "Acme Traders Ltd.");
    assert_eq!(body["organization"]["slug"], "acme-traders-ltd");
    assert_eq!(body["user"]["email"], "wanjiru@example.com");
    assert_eq!(body["role"], "org_admin");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["refresh_token"].as_str().unwrap().starts_with("rt_"));
    assert!(body["user"].get("password_hash").is_none());

    let me = get_as(&app, &token(&body), "/api/v1/me").await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["user"]["email"], "wanjiru@example.com");
    assert_eq!(me["organization"]["id"], body["organization"]["id"]);
    assert_eq!(me["role"], "org_admin");
    assert_eq!(me["memberships"].as_array().unwrap().len(), 1);

    // A second organization with the same name gets another slug.
    let other = signup(&app, "Acme Traders Ltd.", "other@example.com").await;
    assert_ne!(other["organization"]["slug"], body["organization"]["slug"]);

    // Without a token, /me is 401 with the envelope.
    let anonymous = app.get("/api/v1/me").await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(code(anonymous).await, "unauthenticated");
}

async fn signup_refuses_bad_input_and_taken_emails(app: TestApp) {
    let response = app
        .client
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({"organization_name": " ", "name": "A", "email": "nope", "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<&str> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["organization_name", "email", "password"]);

    signup(&app, "First", "taken@example.com").await;
    let again = app
        .client
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({"organization_name": "Second", "name": "B", "email": "TAKEN@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    // Nothing of the refused sign-up was kept.
    let orgs = organizations::Entity::find()
        .filter(organizations::Column::Name.eq("Second"))
        .all(app.db())
        .await
        .unwrap();
    assert!(orgs.is_empty());
}

async fn login_checks_the_password_and_refuses_unknown_accounts_alike(app: TestApp) {
    signup(&app, "Acme", "a@example.com").await;
    let wrong = login(
        &app,
        json!({"email": "a@example.com", "password": "not the password"}),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    let wrong_body: Value = wrong.json().await.unwrap();
    let unknown = login(
        &app,
        json!({"email": "nobody@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(unknown.status(), 401);
    let unknown_body: Value = unknown.json().await.unwrap();
    assert_eq!(
        wrong_body, unknown_body,
        "unknown accounts look like wrong passwords"
    );
    assert_eq!(wrong_body["error"]["code"], "invalid_credentials");

    let ok = login(
        &app,
        json!({"email": " A@EXAMPLE.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(
        get_as(&app, &token(&body), "/api/v1/me").await.status(),
        200
    );
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(app: TestApp) {
    let body = signup(&app, "Acme", "a@example.com").await;
    let first_refresh = body["refresh_token"].as_str().unwrap().to_owned();

    let rotated = refresh(&app, &first_refresh).await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    let second_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    assert_eq!(rotated["session_id"], body["session_id"]);
    assert_eq!(
        get_as(&app, &token(&rotated), "/api/v1/me").await.status(),
        200
    );

    // The first token again: someone replayed it. The whole family ends.
    let reuse = refresh(&app, &first_refresh).await;
    assert_eq!(reuse.status(), 401);
    assert_eq!(code(reuse).await, "invalid_refresh_token");
    assert_eq!(refresh(&app, &second_refresh).await.status(), 401);
    assert_eq!(
        get_as(&app, &token(&rotated), "/api/v1/me").await.status(),
        401
    );
    assert_eq!(
        get_as(&app, &token(&body), "/api/v1/me").await.status(),
        401
    );

    assert_eq!(refresh(&app, "rt_not-a-real-token").await.status(), 401);
}

async fn logout_ends_the_session_at_once(app: TestApp) {
    let body = signup(&app, "Acme", "a@example.com").await;
    let access = token(&body);
    let response = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(get_as(&app, &access, "/api/v1/me").await.status(), 401);
    assert_eq!(
        refresh(&app, body["refresh_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
}

async fn single_active_session_ends_other_sessions(app: TestApp) {
    let body = signup(&app, "Acme", "a@example.com").await;
    let first = token(&body);
    let credentials = json!({"email": "a@example.com", "password": PASSWORD});

    // Off by default: two logins coexist.
    let second: Value = login(&app, credentials.clone()).await.json().await.unwrap();
    assert_eq!(get_as(&app, &first, "/api/v1/me").await.status(), 200);

    organizations::Entity::update_many()
        .col_expr(
            organizations::Column::SingleActiveSession,
            Expr::value(true),
        )
        .exec(app.db())
        .await
        .unwrap();
    let third: Value = login(&app, credentials).await.json().await.unwrap();
    assert_eq!(get_as(&app, &first, "/api/v1/me").await.status(), 401);
    assert_eq!(
        get_as(&app, &token(&second), "/api/v1/me").await.status(),
        401
    );
    assert_eq!(
        get_as(&app, &token(&third), "/api/v1/me").await.status(),
        200
    );
}

async fn password_change_ends_other_sessions(app: TestApp) {
    let body = signup(&app, "Acme", "a@example.com").await;
    let current = token(&body);
    let other: Value = login(
        &app,
        json!({"email": "a@example.com", "password": PASSWORD}),
    )
    .await
    .json()
    .await
    .unwrap();

    let change = |current_password: &'static str, new_password: &'static str| {
        app.client
            .post(app.url("/api/v1/me/password"))
            .bearer_auth(&current)
            .json(&json!({"current_password": current_password, "new_password": new_password}))
            .send()
    };
    let wrong = change("not my password", "a brand new password")
        .await
        .unwrap();
    assert_eq!(wrong.status(), 422);
    let too_short = change(PASSWORD, "short").await.unwrap();
    assert_eq!(too_short.status(), 422);
    assert_eq!(
        change(PASSWORD, "a brand new password")
            .await
            .unwrap()
            .status(),
        204
    );

    assert_eq!(get_as(&app, &current, "/api/v1/me").await.status(), 200);
    assert_eq!(
        get_as(&app, &token(&other), "/api/v1/me").await.status(),
        401
    );
    let old = login(
        &app,
        json!({"email": "a@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(old.status(), 401);
    let new = login(
        &app,
        json!({"email": "a@example.com", "password": "a brand new password"}),
    )
    .await;
    assert_eq!(new.status(), 200);
}

async fn deactivated_users_and_suspended_organizations_are_refused(app: TestApp) {
    let body = signup(&app, "Acme", "a@example.com").await;
    let access = token(&body);
    let credentials = json!({"email": "a@example.com", "password": PASSWORD});

    organizations::Entity::update_many()
        .col_expr(organizations::Column::Status, Expr::value("suspended"))
        .exec(app.db())
        .await
        .unwrap();
    let me = get_as(&app, &access, "/api/v1/me").await;
    assert_eq!(me.status(), 403);
    let refused = login(&app, credentials.clone()).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(code(refused).await, "organization_suspended");
    organizations::Entity::update_many()
        .col_expr(organizations::Column::Status, Expr::value("active"))
        .exec(app.db())
        .await
        .unwrap();
    assert_eq!(get_as(&app, &access, "/api/v1/me").await.status(), 200);

    memberships::Entity::update_many()
        .col_expr(memberships::Column::Status, Expr::value("deactivated"))
        .exec(app.db())
        .await
        .unwrap();
    assert_eq!(get_as(&app, &access, "/api/v1/me").await.status(), 401);
    let refused = login(&app, credentials.clone()).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(code(refused).await, "account_deactivated");

    memberships::Entity::update_many()
        .col_expr(memberships::Column::Status, Expr::value("active"))
        .exec(app.db())
        .await
        .unwrap();
    users::Entity::update_many()
        .col_expr(users::Column::Status, Expr::value("deactivated"))
        .exec(app.db())
        .await
        .unwrap();
    assert_eq!(get_as(&app, &access, "/api/v1/me").await.status(), 401);
    let refused = login(&app, credentials).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(code(refused).await, "account_deactivated");
    assert_eq!(
        refresh(&app, body["refresh_token"].as_str().unwrap())
            .await
            .status(),
        403
    );
}

async fn members_of_several_organizations_choose_and_switch(app: TestApp) {
    let first = signup(&app, "Acme", "a@example.com").await;
    let second = signup(&app, "Bidii", "b@example.com").await;
    // Bidii's admin adds Acme's admin as a manager (directly: invitations are their own test).
    let user_a = users::Entity::find()
        .filter(users::Column::Email.eq("a@example.com"))
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    let bidii: uuid::Uuid = second["organization"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = chrono::Utc::now();
    memberships::Entity::insert(memberships::ActiveModel {
        organization_id: sea_orm::Set(bidii),
        id: sea_orm::Set(uuid::Uuid::now_v7()),
        user_id: sea_orm::Set(user_a.id),
        role: sea_orm::Set("manager".into()),
        status: sea_orm::Set("active".into()),
        created_at: sea_orm::Set(now),
        updated_at: sea_orm::Set(now),
    })
    .exec_without_returning(app.db())
    .await
    .unwrap();

    let ambiguous = login(
        &app,
        json!({"email": "a@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(ambiguous.status(), 409);
    let body: Value = ambiguous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "organization_required");
    assert_eq!(
        body["error"]["details"]["organizations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let chosen: Value = login(
        &app,
        json!({"email": "a@example.com", "password": PASSWORD, "organization_id": bidii}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(chosen["organization"]["id"], second["organization"]["id"]);
    assert_eq!(chosen["role"], "manager");

    let switched = app
        .client
        .post(app.url("/api/v1/auth/switch"))
        .bearer_auth(token(&chosen))
        .json(&json!({"organization_id": first["organization"]["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 200);
    let switched: Value = switched.json().await.unwrap();
    assert_eq!(switched["organization"]["id"], first["organization"]["id"]);
    assert_eq!(switched["role"], "org_admin");
    assert_eq!(
        get_as(&app, &token(&chosen), "/api/v1/me").await.status(),
        401
    );

    // Not a member: refused without revealing anything about the organization.
    let stranger = signup(&app, "Chama", "c@example.com").await;
    let refused = app
        .client
        .post(app.url("/api/v1/auth/switch"))
        .bearer_auth(token(&switched))
        .json(&json!({"organization_id": stranger["organization"]["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}

async fn login_attempts_are_rate_limited_per_account(app: TestApp) {
    signup(&app, "Acme", "a@example.com").await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = login(
            &app,
            json!({"email": "a@example.com", "password": "guess guess guess"}),
        )
        .await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().get("retry-after").is_some());
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(
        statuses[..statuses.len() - 1].iter().all(|s| *s == 401),
        "{statuses:?}"
    );
}
