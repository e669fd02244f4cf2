//! Exports: CSV of the CRM lists (filters, escaping, visibility, big streams, isolation),
//! the organization export (every tenant table, no secrets) and the usage reports.

use std::collections::{BTreeSet, HashSet};

use chrono::Utc;
use reqwest::Method;
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use serde_json::{Value, json};

use crate::auth::{operator, signup, token};
use crate::crm_support::{expect, field_errors, only_own_records, prospect, user_id};
use crate::helpers::{Backend, TestApp, on_both_backends};
use crate::tenancy::{invite_and_accept, send};
use edge_server::entities::prospects;

on_both_backends!(
    csv_exports_honour_filters_escaping_and_visibility,
    a_big_export_streams_every_row_and_nothing_of_another_tenant,
    every_list_exports_with_a_stable_header,
    the_organization_export_has_every_tenant_table_and_no_secrets,
    usage_reports_count_for_the_organization_and_the_operator,
);

/// GETs `/api/v1{path}`; returns status, headers and body text.
async fn download(
    app: &TestApp,
    token: &str,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let response = send(app, token, Method::GET, path, None).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// Parses CSV text into its header and rows.
fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], rows: &[Vec<String>], name: &str) -> Vec<String> {
    let i = header.iter().position(|h| h == name).unwrap();
    rows.iter().map(|r| r[i].clone()).collect()
}

async fn csv_exports_honour_filters_escaping_and_visibility(app: TestApp) {
    let admin = signup(&app, "Duka Bora", "admin@duka.example").await;
    let t = token(&admin);
    let mut settings = expect(&app, &t, Method::GET, "/organization/settings", None, 200).await;
    settings["custom_fields"] = json!([
        {"key": "region", "label": "Region", "kind": "text", "applies_to": ["prospect"]}
    ]);
    expect(
        &app,
        &t,
        Method::PUT,
        "/organization/settings",
        Some(settings),
        200,
    )
    .await;

    prospect(
        &app,
        &t,
        json!({"name": "=HYPERLINK(\"http://evil\")", "company": "Acme, \"Best\" Ltd\nNairobi",
               "lead_source": "Referral", "tags": ["vip", "east"],
               "custom_fields": {"region": "@Coast"}}),
    )
    .await;
    prospect(
        &app,
        &t,
        json!({"name": "Achieng Otieno", "lead_source": "Referral", "phone": "0712345678"}),
    )
    .await;
    prospect(
        &app,
        &t,
        json!({"name": "Baraka Mwangi", "lead_source": "Website"}),
    )
    .await;

    let (status, headers, text) = download(
        &app,
        &t,
        "/exports/prospects.csv?lead_source=Referral&sort=name",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"prospects-"),
        "{disposition}"
    );
    let (header, rows) = parse_csv(&text);
    assert_eq!(header[0], "id");
    assert_eq!(header.last().unwrap(), "cf.region");
    assert!(header.contains(&"estimated_value_currency".to_owned()));
    assert_eq!(rows.len(), 2, "only the filtered rows: {text}");
    // Sorted by name: the formula first ('=' sorts before 'A').
    assert_eq!(
        column(&header, &rows, "name"),
        ["'=HYPERLINK(\"http://evil\")", "Achieng Otieno"]
    );
    assert_eq!(
        column(&header, &rows, "company"),
        ["Acme, \"Best\" Ltd\nNairobi", ""]
    );
    assert_eq!(column(&header, &rows, "tags"), ["vip; east", ""]);
    assert_eq!(column(&header, &rows, "cf.region"), ["'@Coast", ""]);
    assert_eq!(column(&header, &rows, "phone"), ["", "'+254712345678"]);

    // The list's own validation, and no paging parameters.
    let (status, _, text) = download(&app, &t, "/exports/prospects.csv?colour=red").await;
    assert_eq!(status, 422, "{text}");
    let (status, _, text) = download(&app, &t, "/exports/prospects.csv?limit=5").await;
    assert_eq!(status, 422);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(field_errors(&body)[0].0, "limit");

    // Under `own`, a user exports only their own records.
    let member = invite_and_accept(&app, &t, "user@duka.example", "user").await;
    let m = token(&member);
    prospect(
        &app,
        &m,
        json!({"name": "Mine Only", "lead_source": "Website"}),
    )
    .await;
    only_own_records(&app, &t).await;
    let (status, _, text) = download(&app, &m, "/exports/prospects.csv").await;
    assert_eq!(status, 200);
    let (header, rows) = parse_csv(&text);
    assert_eq!(column(&header, &rows, "name"), ["Mine Only"]);
    assert_eq!(column(&header, &rows, "owner_id"), [user_id(&member)]);

    // Exports are audited and counted.
    let log = expect(
        &app,
        &t,
        Method::GET,
        "/audit-log?action=export.csv",
        None,
        200,
    )
    .await;
    assert!(log["items"].as_array().unwrap().len() >= 2, "{log}");
    let usage = expect(&app, &t, Method::GET, "/usage/report", None, 200).await;
    assert!(
        usage["counters"]["exports"].as_i64().unwrap() >= 2,
        "{usage}"
    );
}

/// Inserts `n` prospects straight into the database.
pub async fn seed_prospects(
    db: &sea_orm::DatabaseConnection,
    org: uuid::Uuid,
    prefix: &str,
    n: usize,
) {
    let now = Utc::now();
    let mut batch = Vec::new();
    for i in 0..n {
        batch.push(prospects::ActiveModel::from(prospects::Model {
            organization_id: org,
            id: uuid::Uuid::now_v7(),
            name: format!("{prefix} {i:05}"),
            company: Some(format!("Company {i}")),
            phone: None,
            phones: json!([]),
            email: None,
            lead_source: None,
            industry: None,
            services: json!([]),
            owner_id: None,
            milestone: "New".into(),
            happiness: None,
            estimated_value_minor: Some(i as i64 * 100),
            currency: "KES".into(),
            tags: json!([]),
            custom: json!({}),
            search_text: format!("{prefix} {i:05}").to_lowercase(),
            relationship_id: None,
            created_by: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        }));
        if batch.len() == 500 {
            prospects::Entity::insert_many(std::mem::take(&mut batch))
                .exec_without_returning(db)
                .await
                .unwrap();
        }
    }
    if !batch.is_empty() {
        prospects::Entity::insert_many(batch)
            .exec_without_returning(db)
            .await
            .unwrap();
    }
}

async fn a_big_export_streams_every_row_and_nothing_of_another_tenant(app: TestApp) {
    let admin = signup(&app, "Soko Kubwa", "admin@soko.example").await;
    let t = token(&admin);
    let org: uuid::Uuid = admin["organization"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let other = signup(&app, "Jirani", "admin@jirani.example").await;
    let other_org: uuid::Uuid = other["organization"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    seed_prospects(app.db(), org, "Mteja", 3_000).await;
    seed_prospects(app.db(), other_org, "Jirani", 50).await;

    let (status, _, text) = download(&app, &t, "/exports/prospects.csv").await;
    assert_eq!(status, 200);
    let (header, rows) = parse_csv(&text);
    assert_eq!(rows.len(), 3_000);
    let ids: HashSet<String> = column(&header, &rows, "id").into_iter().collect();
    assert_eq!(ids.len(), 3_000, "no row twice");
    assert!(
        !text.contains("Jirani"),
        "another tenant's rows never appear"
    );
    // Newest first by default, like the list.
    let names = column(&header, &rows, "name");
    assert_eq!(names.first().unwrap(), "Mteja 02999");
    assert_eq!(names.last().unwrap(), "Mteja 00000");

    let (_, _, text) = download(&app, &t, "/exports/prospects.csv?q=mteja%2000").await;
    let (_, rows) = parse_csv(&text);
    assert_eq!(
        rows.len(),
        1_000,
        "the search filter applies: Mteja 00000..00999"
    );
}

async fn every_list_exports_with_a_stable_header(app: TestApp) {
    let admin = signup(&app, "Kila Kitu", "admin@kila.example").await;
    let t = token(&admin);
    let customer =
        crate::crm_support::relationship(&app, &t, json!({"name": "Otieno Motors"})).await;
    expect(
        &app,
        &t,
        Method::POST,
        "/deals",
        Some(json!({"title": "Tyres"})),
        201,
    )
    .await;
    expect(
        &app,
        &t,
        Method::POST,
        "/tickets",
        Some(json!({"relationship_id": customer, "subject": "Broken", "description": "-1 tyre"})),
        201,
    )
    .await;
    expect(
        &app,
        &t,
        Method::POST,
        "/activities",
        Some(json!({"kind": "call", "subject_type": "relationship", "subject_id": customer, "title": "Call back"})),
        201,
    )
    .await;
    for (list, first, count) in [
        ("relationships", "Otieno Motors", 1),
        ("deals", "Tyres", 1),
        ("tickets", "Broken", 1),
        ("activities", "Call back", 1),
    ] {
        let (status, _, text) = download(&app, &t, &format!("/exports/{list}.csv")).await;
        assert_eq!(status, 200, "{list}: {text}");
        let (header, rows) = parse_csv(&text);
        assert_eq!(header[0], "id", "{list}");
        assert_eq!(rows.len(), count, "{list}");
        assert!(rows[0].contains(&first.to_owned()), "{list}: {rows:?}");
    }
    let (_, _, text) = download(&app, &t, "/exports/tickets.csv").await;
    let (header, rows) = parse_csv(&text);
    assert_eq!(column(&header, &rows, "description"), ["'-1 tyre"]);
    let (_, _, text) = download(&app, &t, "/exports/deals.csv").await;
    let (header, rows) = parse_csv(&text);
    assert_eq!(column(&header, &rows, "stage"), ["Qualification"]);
    assert_eq!(column(&header, &rows, "currency"), ["KES"]);
}

/// The tables of the database that have an `organization_id` column.
async fn tables_with_organization_id(app: &TestApp) -> BTreeSet<String> {
    let db = app.db();
    let backend = db.get_database_backend();
    let sql = match app.backend {
        Backend::Postgres => {
            "SELECT table_name AS name FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_name = 'organization_id'"
        }
        Backend::Sqlite => {
            "SELECT m.name AS name FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name = 'organization_id'"
        }
    };
    db.query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "name").unwrap())
        .collect()
}

async fn the_organization_export_has_every_tenant_table_and_no_secrets(app: TestApp) {
    let admin = signup(&app, "Pamoja", "admin@pamoja.example").await;
    let t = token(&admin);
    let org = admin["organization"]["id"].as_str().unwrap().to_owned();
    let other = signup(&app, "Jirani", "admin@jirani.example").await;
    let other_org = other["organization"]["id"].as_str().unwrap().to_owned();
    prospect(&app, &token(&other), json!({"name": "Siri ya Jirani"})).await;
    prospect(&app, &t, json!({"name": "Amani Traders"})).await;
    let key = expect(
        &app,
        &t,
        Method::POST,
        "/api-keys",
        Some(json!({"name": "ci"})),
        201,
    )
    .await;
    let secret = key["key"].as_str().unwrap_or_default().to_owned();
    assert!(!secret.is_empty(), "{key}");

    // Every table with organization_id is exported: a new tenant table must be added.
    let expected = tables_with_organization_id(&app).await;
    let exported: BTreeSet<String> = edge_server::exports::TENANT_TABLES
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    let schema_only: Vec<_> = expected
        .iter()
        .filter(|t| !exported.contains(*t) && !t.starts_with("seaql"))
        .collect();
    let not_tenant_tables: Vec<_> = exported.difference(&expected).collect();
    assert!(
        not_tenant_tables.is_empty(),
        "exported tables without organization_id: {not_tenant_tables:?}"
    );
    assert!(
        schema_only.is_empty(),
        "tenant tables missing from the export: {schema_only:?}"
    );

    let manager = invite_and_accept(&app, &t, "manager@pamoja.example", "manager").await;
    let (status, _, _) = download(&app, &token(&manager), "/exports/organization").await;
    assert_eq!(status, 403, "only org admins export the organization");

    let (status, headers, text) = download(&app, &t, "/exports/organization").await;
    assert_eq!(status, 200, "{text}");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let head = &lines[0];
    assert_eq!(head["format"], "edge.organization-export");
    assert_eq!(head["organization_id"], org.as_str());
    let end = lines.last().unwrap();
    assert_eq!(end["end"], true);
    assert_eq!(end["rows"].as_u64().unwrap() as usize, lines.len() - 2);
    let head_tables: BTreeSet<String> = head["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    for table in &expected {
        assert!(
            head_tables.contains(table),
            "{table} is not in the export header"
        );
    }
    let tables_seen: BTreeSet<&str> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l["table"].as_str().unwrap())
        .collect();
    for table in [
        "organizations",
        "users",
        "memberships",
        "prospects",
        "api_keys",
        "audit_log",
        "pipelines",
        "subscriptions",
    ] {
        assert!(tables_seen.contains(table), "no {table} rows");
    }
    for line in &lines[1..lines.len() - 1] {
        let row = &line["row"];
        if line["table"] != "users" && line["table"] != "organizations" {
            assert_eq!(row["organization_id"], org.as_str(), "{line}");
        }
        if line["table"] == "users" {
            assert!(row.get("password_hash").is_none());
            assert_eq!(line["redacted"], json!(["password_hash"]));
        }
        if line["table"] == "api_keys" {
            assert!(row.get("key_hash").is_none());
        }
    }
    assert!(
        !text.contains(&other_org),
        "another tenant's rows never appear"
    );
    assert!(!text.contains("Siri ya Jirani"));
    assert!(!text.contains("$argon2"), "no password hash");
    assert!(!text.contains(&secret), "no API key");
    assert!(text.contains("Amani Traders"));
}

async fn usage_reports_count_for_the_organization_and_the_operator(app: TestApp) {
    let admin = signup(&app, "Hesabu", "admin@hesabu.example").await;
    let t = token(&admin);
    let org = admin["organization"]["id"].as_str().unwrap().to_owned();
    let other = signup(&app, "Jirani", "admin@jirani.example").await;
    prospect(&app, &t, json!({"name": "One"})).await;
    prospect(&app, &t, json!({"name": "Two"})).await;

    let month = Utc::now().format("%Y-%m").to_string();
    let report = expect(
        &app,
        &t,
        Method::GET,
        &format!("/usage/report?month={month}"),
        None,
        200,
    )
    .await;
    assert_eq!(report["organization_id"], org.as_str());
    assert_eq!(report["month"], month.as_str());
    assert!(
        report["counters"]["api_calls"].as_i64().unwrap() >= 3,
        "{report}"
    );
    assert_eq!(report["storage"]["tables"]["prospects"]["rows"], 2);
    assert!(
        report["storage"]["tables"]["prospects"]["bytes"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert_eq!(report["messages"], json!({"inbound": 0, "outbound": 0}));
    let bad = expect(
        &app,
        &t,
        Method::GET,
        "/usage/report?month=2026-13",
        None,
        422,
    )
    .await;
    assert_eq!(field_errors(&bad)[0].0, "month");

    // Only the operator sees every tenant.
    let refused = expect(&app, &t, Method::GET, "/admin/usage", None, 403).await;
    assert_eq!(refused["error"]["code"], "forbidden");
    let ops = operator(&app).await;
    let all = expect(
        &app,
        &token(&ops),
        Method::GET,
        "/admin/usage?limit=200",
        None,
        200,
    )
    .await;
    let items = all["items"].as_array().unwrap();
    let mine = items
        .iter()
        .find(|i| i["organization_id"] == org.as_str())
        .unwrap();
    assert_eq!(mine["storage"]["tables"]["prospects"]["rows"], 2);
    assert!(mine["slug"].is_string());
    assert!(
        items
            .iter()
            .any(|i| i["organization_id"] == other["organization"]["id"]),
        "every tenant is listed"
    );
}
