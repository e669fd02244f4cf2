//! CSV imports over the API: upload, mapping, dry run, the background job, its counts
//! and error report, duplicates (skip, update), tenant isolation and a large file.

use reqwest::Method;
use sea_orm::{ColumnTrait as _, EntityTrait as _, PaginatorTrait as _, QueryFilter as _};
use serde_json::{Value, json};

use edge_server::entities::{events, import_chunks, imports, prospects};
use sea_orm::sea_query::Expr;

use crate::auth::{signup, token};
use crate::helpers::{TestApp, on_both_backends};
use crate::tenancy::send;

on_both_backends!(
    a_file_with_bad_rows_is_checked_imported_and_reported,
    update_patches_existing_records_with_the_rows_values,
    another_tenants_import_is_not_found,
    a_large_file_completes_in_one_job,
    a_job_that_stops_mid_file_resumes_after_its_last_committed_batch,
);

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(actual, status, "{body}");
    body
}

async fn upload_raw(app: &TestApp, token: &str, kind: &str, csv: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/imports?kind={kind}")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap()
}

async fn upload(app: &TestApp, token: &str, csv: &str) -> Value {
    json_of(upload_raw(app, token, "prospects", csv).await, 201).await
}

async fn map(app: &TestApp, token: &str, id: &str, mapping: Value, duplicates: &str) -> Value {
    json_of(
        send(
            app,
            token,
            Method::PUT,
            &format!("/imports/{id}/mapping"),
            Some(json!({"mapping": mapping, "duplicates": duplicates})),
        )
        .await,
        200,
    )
    .await
}

/// Starts an import and polls it until it ends; returns the last view.
async fn run(app: &TestApp, token: &str, id: &str) -> Value {
    let started = json_of(
        send(
            app,
            token,
            Method::POST,
            &format!("/imports/{id}/start"),
            None,
        )
        .await,
        202,
    )
    .await;
    assert_eq!(started["status"], "queued");
    assert!(started["started_at"].is_string());
    for _ in 0..1200 {
        let view = json_of(
            send(app, token, Method::GET, &format!("/imports/{id}"), None).await,
            200,
        )
        .await;
        if view["status"] == "completed" || view["status"] == "failed" {
            return view;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("import {id} did not end");
}

async fn prospect_count(app: &TestApp) -> u64 {
    prospects::Entity::find().count(app.db()).await.unwrap()
}

const FILE: &str = "Full Name,Mobile,E-mail,Source,Notes\r\n\
Amina Njeri,0712000001,amina@example.com,Referral,first\r\n\
Bad Phone,12345,,Website,phone is wrong\r\n\
,0712000003,nameless@example.com,,no name\r\n\
\r\n\
Amina Again,0712000099,AMINA@example.com,,same email as row 2\r\n\
Radio Person,0712000006,,Radio,unknown source\r\n\
Existing Phone,+254712000007,,,\"matches a prospect, made by hand\"\r\n\
Kevin Otieno,0712000008,kevin@example.com,Walk-in,good\r\n";

async fn a_file_with_bad_rows_is_checked_imported_and_reported(app: TestApp) {
    let t = token(&signup(&app, "Duka", "admin@duka.example").await);
    json_of(
        send(
            &app,
            &t,
            Method::POST,
            "/prospects",
            Some(json!({"name": "By Hand", "phone": "0712000007"})),
        )
        .await,
        201,
    )
    .await;

    // Refusals before anything is stored.
    let wrong_type = app
        .client
        .post(app.url("/api/v1/imports?kind=prospects"))
        .bearer_auth(&t)
        .json(&json!({"file": "name\nA"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(wrong_type, 415).await["error"]["code"],
        "unsupported_media_type"
    );
    let bad_kind = upload_raw(&app, &t, "deals", FILE).await;
    assert_eq!(
        json_of(bad_kind, 422).await["error"]["code"],
        "validation_failed"
    );
    json_of(upload_raw(&app, &t, "prospects", "").await, 422).await;

    let uploaded = upload(&app, &t, FILE).await;
    let id = uploaded["id"].as_str().unwrap().to_owned();
    assert_eq!(uploaded["status"], "uploaded");
    assert_eq!(uploaded["kind"], "prospects");
    assert_eq!(uploaded["total"], 7);
    assert_eq!(
        uploaded["columns"],
        json!(["Full Name", "Mobile", "E-mail", "Source", "Notes"])
    );
    assert_eq!(
        uploaded["suggested_mapping"],
        json!({"Full Name": "name", "Mobile": "phone", "E-mail": "email", "Source": "lead_source", "Notes": null})
    );

    // Not startable, nor dry-runnable, before a mapping; a bad mapping is refused.
    let early = send(
        &app,
        &t,
        Method::POST,
        &format!("/imports/{id}/start"),
        None,
    )
    .await;
    json_of(early, 409).await;
    let bad = send(
        &app,
        &t,
        Method::PUT,
        &format!("/imports/{id}/mapping"),
        Some(json!({"mapping": {"Mobile": "phone", "Nope": "email", "Notes": "colour"}, "duplicates": "skip"})),
    )
    .await;
    let details = json_of(bad, 422).await["error"]["details"].to_string();
    assert!(details.contains("mapping.Nope"), "{details}");
    assert!(details.contains("mapping.Notes"), "{details}");
    assert!(details.contains("\\\"name\\\""), "{details}");

    let mapped = map(&app, &t, &id, uploaded["suggested_mapping"].clone(), "skip").await;
    assert_eq!(mapped["duplicates"], "skip");

    let dry = json_of(
        send(
            &app,
            &t,
            Method::POST,
            &format!("/imports/{id}/dry-run"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(dry["total"], 7);
    assert_eq!(dry["invalid"], 3);
    assert_eq!(dry["valid"], 4);
    assert_eq!(dry["duplicates"], 2);
    let errors = dry["errors"].as_array().unwrap();
    let summary: Vec<(u64, Value, &str)> = errors
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["column"].clone(),
                e["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (3, json!("Mobile"), "invalid"),
            (4, json!("Full Name"), "required"),
            (7, json!("Source"), "invalid"),
        ]
    );
    assert!(errors[2]["message"].as_str().unwrap().contains("\"Radio\""));
    assert_eq!(prospect_count(&app).await, 1, "a dry run writes nothing");

    let done = run(&app, &t, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["total"], 7);
    assert_eq!(done["rows_done"], 7);
    assert_eq!(done["rows_imported"], 2);
    assert_eq!(done["rows_updated"], 0);
    assert_eq!(done["rows_skipped_duplicate"], 2);
    assert_eq!(done["rows_failed"], 3);
    assert!(done["completed_at"].is_string());
    assert_eq!(prospect_count(&app).await, 3);
    let kevin = json_of(
        send(&app, &t, Method::GET, "/prospects?q=kevin", None).await,
        200,
    )
    .await;
    let kevin = &kevin["items"][0];
    assert_eq!(kevin["phone"], "+254712000008");
    assert_eq!(kevin["lead_source"], "Walk-in");
    assert_eq!(kevin["milestone"], "New");
    assert!(
        kevin["owner_id"].is_string(),
        "the importer owns what it imports"
    );

    // The error report: one line per problem with the row's original values.
    let report = app
        .client
        .get(app.url(&format!("/api/v1/imports/{id}/errors.csv")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 200);
    assert!(
        report.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let report = report.text().await.unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines[0],
        "row,column,code,message,Full Name,Mobile,E-mail,Source,Notes"
    );
    assert_eq!(lines.len(), 4, "{report}");
    assert!(lines[1].starts_with("3,Mobile,invalid,"), "{report}");
    assert!(
        lines[1].ends_with(",Bad Phone,12345,,Website,phone is wrong"),
        "{report}"
    );
    assert!(lines[2].starts_with("4,Full Name,required,"), "{report}");
    assert!(lines[3].starts_with("7,Source,invalid,"), "{report}");

    // One event for the whole job, and the audit trail.
    let completed = events::Entity::find()
        .filter(events::Column::Kind.eq("import.completed"))
        .all(app.db())
        .await
        .unwrap();
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0].payload["rows_imported"], 2);
    assert_eq!(completed[0].payload["rows_failed"], 3);
    let audit = json_of(send(&app, &t, Method::GET, "/audit-log", None).await, 200).await;
    let actions = audit.to_string();
    assert!(actions.contains("import.start") && actions.contains("import.complete"));

    // A started import cannot be re-mapped or started again.
    let again = send(
        &app,
        &t,
        Method::POST,
        &format!("/imports/{id}/start"),
        None,
    )
    .await;
    json_of(again, 409).await;
    let remap = send(
        &app,
        &t,
        Method::PUT,
        &format!("/imports/{id}/mapping"),
        Some(json!({"mapping": {"Full Name": "name"}, "duplicates": "create"})),
    )
    .await;
    json_of(remap, 409).await;

    // The same file again, skipping duplicates, adds nothing.
    let second = upload(&app, &t, FILE).await;
    let second_id = second["id"].as_str().unwrap().to_owned();
    map(
        &app,
        &t,
        &second_id,
        second["suggested_mapping"].clone(),
        "skip",
    )
    .await;
    let done = run(&app, &t, &second_id).await;
    assert_eq!(done["rows_imported"], 0, "{done}");
    assert_eq!(done["rows_skipped_duplicate"], 4);
    assert_eq!(done["rows_failed"], 3);
    assert_eq!(prospect_count(&app).await, 3);

    let list = json_of(send(&app, &t, Method::GET, "/imports", None).await, 200).await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second_id.as_str(), id.as_str()]);
}

async fn update_patches_existing_records_with_the_rows_values(app: TestApp) {
    let t = token(&signup(&app, "Soko", "admin@soko.example").await);
    let existing = json_of(
        send(
            &app,
            &t,
            Method::POST,
            "/prospects",
            Some(json!({"name": "Amina", "phone": "0712000001", "company": "Old Co", "email": "amina@soko.example"})),
        )
        .await,
        201,
    )
    .await;
    let file = "name,phone,company,email,tags\n\
Amina Wanjiku,+254712000001,New Co,,vip;nairobi\n\
Someone Else,0712000002,,AMINA@SOKO.EXAMPLE,\n\
Brand New,0712000003,Fresh Ltd,,\n";
    let uploaded = upload(&app, &t, file).await;
    let id = uploaded["id"].as_str().unwrap().to_owned();
    map(
        &app,
        &t,
        &id,
        uploaded["suggested_mapping"].clone(),
        "update",
    )
    .await;
    let done = run(&app, &t, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["rows_imported"], 1);
    assert_eq!(done["rows_updated"], 2);
    assert_eq!(done["rows_failed"], 0);
    let amina = json_of(
        send(
            &app,
            &t,
            Method::GET,
            &format!("/prospects/{}", existing["id"].as_str().unwrap()),
            None,
        )
        .await,
        200,
    )
    .await;
    // Row 3 matched by email (ignoring case) and patched the name; its empty company
    // cell left row 2's value alone.
    assert_eq!(amina["name"], "Someone Else");
    assert_eq!(amina["company"], "New Co");
    assert_eq!(amina["email"], "amina@soko.example");
    assert_eq!(amina["tags"], json!(["vip", "nairobi"]));
    assert_eq!(
        amina["phones"],
        json!(["+254712000002"]),
        "a patch replaces the phones, as PATCH does"
    );
    let tagged = json_of(
        send(&app, &t, Method::GET, "/prospects?tag=vip", None).await,
        200,
    )
    .await;
    assert_eq!(tagged["items"].as_array().unwrap().len(), 1);
    assert_eq!(prospect_count(&app).await, 2);

    // A row in a later batch that matches an earlier row of the file by its second phone
    // updates the record that row created.
    let mut file = String::from("name,phones,company\nTwo Phones,0712100000;0712100001,First\n");
    for i in 0..500 {
        file.push_str(&format!("Filler {i},0712{:06},\n", 200_000 + i));
    }
    file.push_str("Second Phone,0712100001,Later\n");
    let uploaded = upload(&app, &t, &file).await;
    let id = uploaded["id"].as_str().unwrap().to_owned();
    map(
        &app,
        &t,
        &id,
        uploaded["suggested_mapping"].clone(),
        "update",
    )
    .await;
    let done = run(&app, &t, &id).await;
    assert_eq!(done["rows_imported"], 501, "{done}");
    assert_eq!(done["rows_updated"], 1, "{done}");
    let found = json_of(
        send(&app, &t, Method::GET, "/prospects?q=second%20phone", None).await,
        200,
    )
    .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(found["items"][0]["company"], "Later");
    assert_eq!(prospect_count(&app).await, 503);

    // Two records share a phone: the row patches the older one, and leaves the newer.
    let mut shared = Vec::new();
    for name in ["Older", "Newer"] {
        shared.push(
            json_of(
                send(
                    &app,
                    &t,
                    Method::POST,
                    "/prospects",
                    Some(json!({"name": name, "phone": "0712300000", "company": "Before"})),
                )
                .await,
                201,
            )
            .await,
        );
    }
    let uploaded = upload(
        &app,
        &t,
        "name,phone,company\nOlder Again,0712300000,Matched\n",
    )
    .await;
    let id = uploaded["id"].as_str().unwrap().to_owned();
    map(
        &app,
        &t,
        &id,
        uploaded["suggested_mapping"].clone(),
        "update",
    )
    .await;
    let done = run(&app, &t, &id).await;
    assert_eq!(done["rows_updated"], 1, "{done}");
    assert_eq!(done["rows_imported"], 0, "{done}");
    let mut companies = Vec::new();
    for record in &shared {
        let got = json_of(
            send(
                &app,
                &t,
                Method::GET,
                &format!("/prospects/{}", record["id"].as_str().unwrap()),
                None,
            )
            .await,
            200,
        )
        .await;
        companies.push(got["company"].clone());
    }
    assert_eq!(companies, [json!("Matched"), json!("Before")]);
}

async fn another_tenants_import_is_not_found(app: TestApp) {
    let a = token(&signup(&app, "Alpha", "admin@alpha.example").await);
    let b = token(&signup(&app, "Beta", "admin@beta.example").await);
    let uploaded = upload(&app, &a, "name,phone\nAmina,0712000001\n").await;
    let id = uploaded["id"].as_str().unwrap().to_owned();
    map(
        &app,
        &a,
        &id,
        json!({"name": "name", "phone": "phone"}),
        "skip",
    )
    .await;
    for (method, path, body) in [
        (Method::GET, format!("/imports/{id}"), None),
        (Method::GET, format!("/imports/{id}/errors.csv"), None),
        (
            Method::PUT,
            format!("/imports/{id}/mapping"),
            Some(json!({"mapping": {"name": "name"}, "duplicates": "create"})),
        ),
        (Method::POST, format!("/imports/{id}/dry-run"), None),
        (Method::POST, format!("/imports/{id}/start"), None),
    ] {
        let response = send(&app, &b, method.clone(), &path, body).await;
        assert_eq!(response.status(), 404, "{method} {path}");
    }
    let list = json_of(send(&app, &b, Method::GET, "/imports", None).await, 200).await;
    assert_eq!(list["items"], json!([]));
    let done = run(&app, &a, &id).await;
    assert_eq!(done["rows_imported"], 1);
}

async fn a_large_file_completes_in_one_job(app: TestApp) {
    let t = token(&signup(&app, "Kubwa", "admin@kubwa.example").await);
    let rows = 5_000;
    let mut file = String::from("name,phone,email,company\n");
    let (mut bad, mut duplicate) = (0, 0);
    for i in 0..rows {
        if i % 100 == 99 {
            bad += 1;
            file.push_str(&format!("Bad {i},0712{i:06},not-an-email,Co\n"));
        } else if i % 250 == 0 && i > 0 {
            duplicate += 1;
            file.push_str(&format!("Again {i},0712{:06},,Co\n", i - 2));
        } else {
            file.push_str(&format!("Person {i},0712{i:06},p{i}@example.com,Co {i}\n"));
        }
    }
    let uploaded = upload(&app, &t, &file).await;
    let id = uploaded["id"].as_str().unwrap().to_owned();
    assert_eq!(uploaded["total"], rows);
    map(&app, &t, &id, uploaded["suggested_mapping"].clone(), "skip").await;
    let done = run(&app, &t, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["rows_done"], rows);
    assert_eq!(done["rows_failed"], bad);
    assert_eq!(done["rows_skipped_duplicate"], duplicate);
    assert_eq!(done["rows_imported"], rows - bad - duplicate);
    assert_eq!(prospect_count(&app).await, (rows - bad - duplicate) as u64);
    let with_email = prospects::Entity::find()
        .filter(prospects::Column::Email.eq("p4998@example.com"))
        .count(app.db())
        .await
        .unwrap();
    assert_eq!(with_email, 1);
}

async fn import_row(app: &TestApp, id: &str) -> imports::Model {
    imports::Entity::find()
        .filter(imports::Column::Id.eq(id.parse::<uuid::Uuid>().unwrap()))
        .one(app.db())
        .await
        .unwrap()
        .unwrap()
}

async fn a_job_that_stops_mid_file_resumes_after_its_last_committed_batch(app: TestApp) {
    let t = token(&signup(&app, "Tena", "admin@tena.example").await);
    let rows = 1_200; // three chunks of 500, 500 and 200
    let mut file = String::from("name,phone\n");
    for i in 0..rows {
        file.push_str(&format!("Person {i},0712{i:06}\n"));
    }
    let uploaded = upload(&app, &t, &file).await;
    let id = uploaded["id"].as_str().unwrap().to_owned();
    let import_id: uuid::Uuid = id.parse().unwrap();
    map(&app, &t, &id, uploaded["suggested_mapping"].clone(), "skip").await;

    // The second chunk cannot be read: the worker commits the first and stops there, as
    // a server that died mid-file would.
    let second = import_chunks::Entity::find()
        .filter(import_chunks::Column::ImportId.eq(import_id))
        .filter(import_chunks::Column::Seq.eq(1))
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    import_chunks::Entity::update_many()
        .col_expr(import_chunks::Column::Rows, Expr::value("not json"))
        .filter(import_chunks::Column::ImportId.eq(import_id))
        .filter(import_chunks::Column::Seq.eq(1))
        .exec(app.db())
        .await
        .unwrap();
    json_of(
        send(
            &app,
            &t,
            Method::POST,
            &format!("/imports/{id}/start"),
            None,
        )
        .await,
        202,
    )
    .await;
    let mut stopped = None;
    for _ in 0..1200 {
        let row = import_row(&app, &id).await;
        if row.next_chunk == 1 {
            stopped = Some(row);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let stopped = stopped.expect("the first chunk was committed");
    assert_eq!(stopped.status, "running");
    assert_eq!(stopped.rows_done, 500);
    assert_eq!(stopped.rows_imported, 500);
    assert_eq!(stopped.attempts, 1);
    let view = json_of(
        send(&app, &t, Method::GET, &format!("/imports/{id}"), None).await,
        200,
    )
    .await;
    assert_eq!(view["status"], "running");
    assert_eq!(view["rows_done"], 500);
    assert_eq!(prospect_count(&app).await, 500);

    // The chunk is readable again and the stopped worker's lease runs out: another claim
    // resumes at the second chunk, and nothing of the first is imported twice.
    import_chunks::Entity::update_many()
        .col_expr(import_chunks::Column::Rows, Expr::value(second.rows))
        .filter(import_chunks::Column::ImportId.eq(import_id))
        .filter(import_chunks::Column::Seq.eq(1))
        .exec(app.db())
        .await
        .unwrap();
    imports::Entity::update_many()
        .col_expr(
            imports::Column::ClaimedUntil,
            Expr::value(chrono::Utc::now() - chrono::Duration::minutes(1)),
        )
        .filter(imports::Column::Id.eq(import_id))
        .exec(app.db())
        .await
        .unwrap();
    let mut done = None;
    for _ in 0..1200 {
        let row = import_row(&app, &id).await;
        if row.status == "completed" {
            done = Some(row);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let done = done.expect("the job resumed and completed");
    assert_eq!(done.attempts, 2);
    assert_eq!(done.rows_done, rows);
    assert_eq!(done.rows_imported, rows);
    assert_eq!(done.rows_skipped_duplicate, 0);
    assert_eq!(done.rows_failed, 0);
    assert_eq!(prospect_count(&app).await, rows as u64);
    let completed = events::Entity::find()
        .filter(events::Column::Kind.eq("import.completed"))
        .all(app.db())
        .await
        .unwrap();
    assert_eq!(completed.len(), 1);
}
