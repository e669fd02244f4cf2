//! Prospects and relationships over the API: lifecycle, validation, custom fields, lists
//! (filters, search, sort, keyset pages), visibility per role, and conversion.

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::{signup, token};
use crate::helpers::{TestApp, on_both_backends};
use crate::tenancy::{invite_and_accept, send};

on_both_backends!(
    a_prospect_lives_from_create_to_delete,
    bad_values_are_refused_with_clear_messages,
    custom_fields_are_typed_validated_and_filterable,
    lists_filter_search_sort_and_page,
    users_see_only_their_own_records_when_the_organization_says_so,
    a_prospect_converts_once_into_a_relationship_with_its_data,
    a_relationship_lives_from_create_to_delete,
);

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(actual, status, "{body}");
    body
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    json_of(
        send(app, token, Method::POST, "/prospects", Some(body)).await,
        201,
    )
    .await
}

async fn list(app: &TestApp, token: &str, query: &str) -> Value {
    json_of(
        send(
            app,
            token,
            Method::GET,
            &format!("/prospects?{query}"),
            None,
        )
        .await,
        200,
    )
    .await
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn audit_actions(app: &TestApp, token: &str, target: &str) -> Vec<String> {
    let page = json_of(
        send(
            app,
            token,
            Method::GET,
            &format!("/audit-log?target_id={target}"),
            None,
        )
        .await,
        200,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_prospect_lives_from_create_to_delete(app: TestApp) {
    let admin = signup(&app, "Duka Bora", "admin@duka.example").await;
    let t = token(&admin);
    let me = admin["user"]["id"].as_str().unwrap();

    let created = create(
        &app,
        &t,
        json!({"name": "Achieng Otieno", "company": "Otieno Hardware", "phone": "0712 345 678"}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["phone"], "+254712345678");
    assert_eq!(created["phones"], json!(["+254712345678"]));
    assert_eq!(
        created["milestone"], "New",
        "the first milestone by default"
    );
    assert_eq!(created["owner_id"], me, "the creator owns it");
    assert_eq!(created["estimated_value"], Value::Null);

    let fetched = json_of(
        send(&app, &t, Method::GET, &format!("/prospects/{id}"), None).await,
        200,
    )
    .await;
    assert_eq!(fetched, created);

    let changed = json_of(
        send(
            &app,
            &t,
            Method::PATCH,
            &format!("/prospects/{id}"),
            Some(json!({
                "lead_source": "referral",
                "industry": "Retail",
                "milestone": "Qualified",
                "happiness": "Happy",
                "email": "Achieng@Otieno.Example",
                "phones": ["0712345678", "+256772123456"],
                "estimated_value": {"amount": "25000.50", "currency": "KES"},
                "tags": ["VIP", "Nairobi", "vip"],
                "company": null,
            })),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        changed["lead_source"], "Referral",
        "spelt as the vocabulary spells it"
    );
    assert_eq!(changed["email"], "achieng@otieno.example");
    assert_eq!(changed["phones"], json!(["+254712345678", "+256772123456"]));
    assert_eq!(changed["estimated_value"]["amount_minor"], 2_500_050);
    assert_eq!(changed["tags"], json!(["VIP", "Nairobi"]));
    assert_eq!(changed["company"], Value::Null);
    assert_eq!(changed["name"], "Achieng Otieno", "absent fields stay");

    let page = list(&app, &t, "").await;
    assert_eq!(names(&page), ["Achieng Otieno"]);

    let deleted = send(&app, &t, Method::DELETE, &format!("/prospects/{id}"), None).await;
    assert_eq!(deleted.status(), 204);
    let gone = send(&app, &t, Method::GET, &format!("/prospects/{id}"), None).await;
    assert_eq!(gone.status(), 404);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(names(&list(&app, &t, "").await).is_empty());
    assert!(names(&list(&app, &t, "tag=vip").await).is_empty());

    assert_eq!(
        audit_actions(&app, &t, &id).await,
        ["prospect.delete", "prospect.update", "prospect.create"]
    );
}

async fn bad_values_are_refused_with_clear_messages(app: TestApp) {
    let admin = signup(&app, "Makini", "admin@makini.example").await;
    let t = token(&admin);
    let refused = send(
        &app,
        &t,
        Method::POST,
        "/prospects",
        Some(json!({
            "name": "Baraka",
            "phone": "12345",
            "lead_source": "Radio",
            "email": "not an email",
            "estimated_value": {"amount": "100", "currency": "UGX"},
        })),
    )
    .await;
    let body = json_of(refused, 422).await;
    assert_eq!(body["error"]["code"], "validation_failed");
    let details = body["error"]["details"].to_string();
    assert!(
        details.contains("\\\"Radio\\\" is not in this organization's lead sources"),
        "{details}"
    );
    assert!(
        details.contains("WhatsApp, Referral"),
        "the message lists the choices: {details}"
    );
    assert!(
        details.contains("\\\"12345\\\" is not a mobile number"),
        "{details}"
    );
    assert!(
        details.contains("must be in KES, the organization's currency"),
        "{details}"
    );
    assert!(details.contains("is not an email address"), "{details}");

    let nameless = send(
        &app,
        &t,
        Method::POST,
        "/prospects",
        Some(json!({"company": "X"})),
    )
    .await;
    let body = json_of(nameless, 422).await;
    assert!(
        body["error"]["details"].to_string().contains("name"),
        "{body}"
    );

    let unknown_field = send(
        &app,
        &t,
        Method::POST,
        "/prospects",
        Some(json!({"name": "Y", "favourite_colour": "blue"})),
    )
    .await;
    let body = json_of(unknown_field, 422).await;
    assert_eq!(body["error"]["code"], "invalid_body");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("favourite_colour")
    );

    let bad_filter = send(&app, &t, Method::GET, "/prospects?stage=won", None).await;
    let body = json_of(bad_filter, 422).await;
    assert!(
        body["error"]["details"]
            .to_string()
            .contains("is not a filter of this list")
    );

    let stranger = uuid::Uuid::now_v7();
    let bad_owner = send(
        &app,
        &t,
        Method::POST,
        "/prospects",
        Some(json!({"name": "Z", "owner_id": stranger})),
    )
    .await;
    let body = json_of(bad_owner, 422).await;
    assert!(
        body["error"]["details"]
            .to_string()
            .contains("not an active member")
    );

    // Nothing of the refused requests was stored.
    assert!(names(&list(&app, &t, "").await).is_empty());
}

async fn custom_fields_are_typed_validated_and_filterable(app: TestApp) {
    let admin = signup(&app, "Shamba", "admin@shamba.example").await;
    let t = token(&admin);
    let mut settings = json_of(
        send(&app, &t, Method::GET, "/organization/settings", None).await,
        200,
    )
    .await;
    settings["custom_fields"] = json!([
        {"key": "county", "label": "County", "kind": "choice",
         "choices": ["Nairobi", "Kiambu", "Nakuru"], "applies_to": ["prospect", "relationship"], "required": true},
        {"key": "acres", "label": "Acres", "kind": "number", "applies_to": ["prospect"]},
        {"key": "visit_on", "label": "Visit on", "kind": "date", "applies_to": ["prospect"]},
    ]);
    json_of(
        send(
            &app,
            &t,
            Method::PUT,
            "/organization/settings",
            Some(settings.clone()),
        )
        .await,
        200,
    )
    .await;

    let missing = send(
        &app,
        &t,
        Method::POST,
        "/prospects",
        Some(json!({"name": "A"})),
    )
    .await;
    let body = json_of(missing, 422).await;
    assert!(
        body["error"]["details"]
            .to_string()
            .contains("custom_fields.county")
    );

    let wrong = send(
        &app,
        &t,
        Method::POST,
        "/prospects",
        Some(json!({"name": "A", "custom_fields": {"county": "Mombasa", "acres": "ten", "visit_on": "next week", "colour": "red"}})),
    )
    .await;
    let body = json_of(wrong, 422).await;
    let details = body["error"]["details"].to_string();
    for field in ["county", "acres", "visit_on", "colour"] {
        assert!(
            details.contains(&format!("custom_fields.{field}")),
            "{details}"
        );
    }

    for (name, county, acres) in [
        ("Kamau", "Kiambu", 12),
        ("Njeri", "Nakuru", 40),
        ("Mutua", "Kiambu", 3),
    ] {
        create(
            &app,
            &t,
            json!({"name": name, "custom_fields": {"county": county, "acres": acres, "visit_on": "2026-12-01"}}),
        )
        .await;
    }
    let mut kiambu = names(&list(&app, &t, "cf.county=Kiambu&sort=name").await);
    kiambu.sort();
    assert_eq!(kiambu, ["Kamau", "Mutua"]);
    assert_eq!(names(&list(&app, &t, "cf.acres=40").await), ["Njeri"]);
    let bad = send(&app, &t, Method::GET, "/prospects?cf.acres=many", None).await;
    json_of(bad, 422).await;
    let unknown = send(&app, &t, Method::GET, "/prospects?cf.colour=red", None).await;
    json_of(unknown, 422).await;

    // A bad definition is refused as a whole.
    settings["custom_fields"][0]["choices"] = json!([]);
    let refused = send(
        &app,
        &t,
        Method::PUT,
        "/organization/settings",
        Some(settings),
    )
    .await;
    json_of(refused, 422).await;
}

async fn lists_filter_search_sort_and_page(app: TestApp) {
    let admin = signup(&app, "Soko", "admin@soko.example").await;
    let t = token(&admin);
    let manager = invite_and_accept(&app, &t, "manager@soko.example", "manager").await;
    let manager_id = manager["user"]["id"].as_str().unwrap().to_owned();
    let people = [
        (
            "Wanjiku Mwangi",
            "Mwangi Traders",
            "0711000001",
            "Referral",
            "New",
        ),
        (
            "Otieno Ouma",
            "Lake Fish Ltd",
            "0711000002",
            "WhatsApp",
            "Qualified",
        ),
        (
            "Amina Hassan",
            "Pwani Spices",
            "0711000003",
            "Referral",
            "Qualified",
        ),
        ("Kiprop Langat", "Rift Dairy", "0711000004", "Event", "New"),
        (
            "Mercy Wairimu",
            "Wairimu Salon",
            "0711000005",
            "WhatsApp",
            "Proposal",
        ),
        (
            "Juma Mwinyi",
            "Mwinyi Boats",
            "0711000006",
            "Walk-in",
            "New",
        ),
        (
            "Faith Chebet",
            "Chebet Farms",
            "0711000007",
            "Referral",
            "Proposal",
        ),
    ];
    for (i, (name, company, phone, source, milestone)) in people.iter().enumerate() {
        let mut body = json!({
            "name": name, "company": company, "phone": phone, "lead_source": source,
            "milestone": milestone, "email": format!("person{i}@example.com"),
        });
        if i % 3 == 0 {
            body["owner_id"] = json!(manager_id);
            body["tags"] = json!(["hot"]);
        }
        create(&app, &t, body).await;
    }

    // Newest first by default, then pages of 3 that neither skip nor repeat.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=3&cursor={c}"),
            None => "limit=3".to_owned(),
        };
        let page = list(&app, &t, &query).await;
        seen.extend(names(&page));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut newest_first: Vec<String> = people.iter().map(|p| p.0.to_owned()).collect();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 3);

    // Sorted by name, paged.
    let first = list(&app, &t, "sort=name&limit=4").await;
    assert_eq!(
        names(&first),
        [
            "Amina Hassan",
            "Faith Chebet",
            "Juma Mwinyi",
            "Kiprop Langat"
        ]
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = list(&app, &t, &format!("sort=name&limit=4&cursor={cursor}")).await;
    assert_eq!(
        names(&rest),
        ["Mercy Wairimu", "Otieno Ouma", "Wanjiku Mwangi"]
    );
    assert_eq!(rest["next_cursor"], Value::Null);
    let descending = list(&app, &t, "sort=-name&limit=2").await;
    assert_eq!(names(&descending), ["Wanjiku Mwangi", "Otieno Ouma"]);
    // A cursor of one sort is refused by another.
    let mixed = send(
        &app,
        &t,
        Method::GET,
        &format!("/prospects?sort=created_at&cursor={cursor}"),
        None,
    )
    .await;
    json_of(mixed, 422).await;

    // Filters.
    let referral = list(&app, &t, "lead_source=Referral&sort=name").await;
    assert_eq!(
        names(&referral),
        ["Amina Hassan", "Faith Chebet", "Wanjiku Mwangi"]
    );
    let qualified = list(&app, &t, "milestone=Qualified&sort=name").await;
    assert_eq!(names(&qualified), ["Amina Hassan", "Otieno Ouma"]);
    let managers = list(&app, &t, &format!("owner_id={manager_id}&sort=name")).await;
    assert_eq!(
        names(&managers),
        ["Faith Chebet", "Kiprop Langat", "Wanjiku Mwangi"]
    );
    let mine = list(&app, &t, "owner_id=me&sort=name").await;
    assert_eq!(names(&mine).len(), 4);
    let hot = list(&app, &t, "tag=HOT&sort=name").await;
    assert_eq!(names(&hot), names(&managers));
    let combined = list(
        &app,
        &t,
        &format!("owner_id={manager_id}&lead_source=Event"),
    )
    .await;
    assert_eq!(names(&combined), ["Kiprop Langat"]);
    let future = list(&app, &t, "created_after=2999-01-01").await;
    assert!(names(&future).is_empty());
    let past = list(&app, &t, "created_before=2000-01-01").await;
    assert!(names(&past).is_empty());
    let all_time = list(&app, &t, "created_after=2000-01-01&limit=200").await;
    assert_eq!(names(&all_time).len(), 7);

    // Search over name, company, email and phone (any usual form).
    assert_eq!(
        names(&list(&app, &t, "q=wanjiku").await),
        ["Wanjiku Mwangi"]
    );
    assert_eq!(names(&list(&app, &t, "q=SPICES").await), ["Amina Hassan"]);
    assert_eq!(
        names(&list(&app, &t, "q=person4@").await),
        ["Mercy Wairimu"]
    );
    assert_eq!(
        names(&list(&app, &t, "q=0711000006").await),
        ["Juma Mwinyi"]
    );
    assert_eq!(
        names(&list(&app, &t, "q=%2B254711000006").await),
        ["Juma Mwinyi"]
    );
    assert_eq!(
        names(&list(&app, &t, "q=254711000002").await),
        ["Otieno Ouma"]
    );
    let mut mwangi_or_mwinyi = names(&list(&app, &t, "q=mw&sort=name").await);
    mwangi_or_mwinyi.sort();
    assert_eq!(mwangi_or_mwinyi, ["Juma Mwinyi", "Wanjiku Mwangi"]);
    assert!(
        names(&list(&app, &t, "q=100%25").await).is_empty(),
        "% is literal"
    );
    let short = send(&app, &t, Method::GET, "/prospects?q=a", None).await;
    json_of(short, 422).await;
}

async fn users_see_only_their_own_records_when_the_organization_says_so(app: TestApp) {
    let admin = signup(&app, "Faraja", "admin@faraja.example").await;
    let t = token(&admin);
    let user = invite_and_accept(&app, &t, "user@faraja.example", "user").await;
    let user_token = token(&user);
    let user_id = user["user"]["id"].as_str().unwrap().to_owned();
    let manager = invite_and_accept(&app, &t, "manager@faraja.example", "manager").await;
    let manager_token = token(&manager);

    let admins = create(&app, &t, json!({"name": "Admin's lead"})).await;
    let theirs = create(
        &app,
        &t,
        json!({"name": "User's lead", "owner_id": user_id}),
    )
    .await;
    let own = create(&app, &user_token, json!({"name": "Self-made lead"})).await;
    assert_eq!(own["owner_id"], user_id.as_str());

    // Everyone sees everything by default.
    assert_eq!(names(&list(&app, &user_token, "").await).len(), 3);

    let mut settings = json_of(
        send(&app, &t, Method::GET, "/organization/settings", None).await,
        200,
    )
    .await;
    settings["record_visibility"] = json!("own");
    json_of(
        send(
            &app,
            &t,
            Method::PUT,
            "/organization/settings",
            Some(settings),
        )
        .await,
        200,
    )
    .await;

    let mut visible = names(&list(&app, &user_token, "").await);
    visible.sort();
    assert_eq!(visible, ["Self-made lead", "User's lead"]);
    let hidden = admins["id"].as_str().unwrap();
    for method in [Method::GET, Method::PATCH] {
        let body = (method == Method::PATCH).then(|| json!({"name": "mine now"}));
        let response = send(
            &app,
            &user_token,
            method.clone(),
            &format!("/prospects/{hidden}"),
            body,
        )
        .await;
        assert_eq!(response.status(), 404, "{method}");
    }
    let searched = list(&app, &user_token, "q=admin").await;
    assert!(names(&searched).is_empty());
    assert_eq!(names(&list(&app, &manager_token, "").await).len(), 3);
    assert_eq!(names(&list(&app, &t, "").await).len(), 3);

    // A user cannot give a record away; a manager can.
    let theirs_id = theirs["id"].as_str().unwrap();
    let manager_id = manager["user"]["id"].as_str().unwrap();
    let give = send(
        &app,
        &user_token,
        Method::PATCH,
        &format!("/prospects/{theirs_id}"),
        Some(json!({"owner_id": manager_id})),
    )
    .await;
    assert_eq!(give.status(), 403);
    let reassigned = send(
        &app,
        &manager_token,
        Method::PATCH,
        &format!("/prospects/{theirs_id}"),
        Some(json!({"owner_id": manager_id})),
    )
    .await;
    json_of(reassigned, 200).await;
    assert_eq!(
        names(&list(&app, &user_token, "").await),
        ["Self-made lead"]
    );

    // Users cannot delete at all.
    let own_id = own["id"].as_str().unwrap();
    let delete = send(
        &app,
        &user_token,
        Method::DELETE,
        &format!("/prospects/{own_id}"),
        None,
    )
    .await;
    assert_eq!(delete.status(), 403);
}

async fn a_prospect_converts_once_into_a_relationship_with_its_data(app: TestApp) {
    let admin = signup(&app, "Tumaini", "admin@tumaini.example").await;
    let t = token(&admin);
    let mut settings = json_of(
        send(&app, &t, Method::GET, "/organization/settings", None).await,
        200,
    )
    .await;
    settings["services"] = json!(["Delivery", "Storage"]);
    settings["custom_fields"] = json!([
        {"key": "county", "label": "County", "kind": "text", "applies_to": ["prospect", "relationship"]},
        {"key": "lead_score", "label": "Score", "kind": "number", "applies_to": ["prospect"]},
    ]);
    json_of(
        send(
            &app,
            &t,
            Method::PUT,
            "/organization/settings",
            Some(settings),
        )
        .await,
        200,
    )
    .await;
    let prospect = create(
        &app,
        &t,
        json!({
            "name": "Halima Abdi", "company": "Abdi Logistics", "phone": "0722111222",
            "email": "halima@abdi.example", "industry": "Logistics", "services": ["Delivery"],
            "estimated_value": {"amount": "90000", "currency": "KES"}, "tags": ["priority"],
            "custom_fields": {"county": "Garissa", "lead_score": 80},
        }),
    )
    .await;
    let id = prospect["id"].as_str().unwrap();

    let relationship = json_of(
        send(
            &app,
            &t,
            Method::POST,
            &format!("/prospects/{id}/convert"),
            Some(json!({})),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(relationship["name"], "Halima Abdi");
    assert_eq!(relationship["company"], "Abdi Logistics");
    assert_eq!(relationship["phones"], json!(["+254722111222"]));
    assert_eq!(relationship["email"], "halima@abdi.example");
    assert_eq!(relationship["services"], json!(["Delivery"]));
    assert_eq!(relationship["contract_value"]["amount"], "90000.00");
    assert_eq!(relationship["tags"], json!(["priority"]));
    assert_eq!(relationship["custom_fields"], json!({"county": "Garissa"}));
    assert_eq!(relationship["prospect_id"], id);
    assert_eq!(relationship["account_manager_id"], admin["user"]["id"]);

    let after = json_of(
        send(&app, &t, Method::GET, &format!("/prospects/{id}"), None).await,
        200,
    )
    .await;
    assert_eq!(after["relationship_id"], relationship["id"]);
    assert_eq!(
        names(&list(&app, &t, "converted=true").await),
        ["Halima Abdi"]
    );
    assert!(names(&list(&app, &t, "converted=false").await).is_empty());

    let again = send(
        &app,
        &t,
        Method::POST,
        &format!("/prospects/{id}/convert"),
        Some(json!({})),
    )
    .await;
    let body = json_of(again, 409).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already converted")
    );

    let customers = json_of(
        send(&app, &t, Method::GET, "/relationships?q=abdi", None).await,
        200,
    )
    .await;
    assert_eq!(names(&customers), ["Halima Abdi"]);
    let actions = audit_actions(&app, &t, id).await;
    assert_eq!(actions, ["prospect.convert", "prospect.create"]);
}

async fn a_relationship_lives_from_create_to_delete(app: TestApp) {
    let admin = signup(&app, "Umoja", "admin@umoja.example").await;
    let t = token(&admin);
    let created = json_of(
        send(
            &app,
            &t,
            Method::POST,
            "/relationships",
            Some(json!({"name": "Moses Kiptoo", "company": "Kiptoo Transport", "phone": "+254733000111"})),
        )
        .await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["account_manager_id"], admin["user"]["id"]);
    assert_eq!(created["prospect_id"], Value::Null);
    let changed = json_of(
        send(
            &app,
            &t,
            Method::PATCH,
            &format!("/relationships/{id}"),
            Some(json!({"happiness": "delighted", "contract_value": {"amount": "120000", "currency": "KES"}})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(changed["happiness"], "Delighted");
    assert_eq!(changed["contract_value"]["amount_minor"], 12_000_000);
    let wrong = send(
        &app,
        &t,
        Method::PATCH,
        &format!("/relationships/{id}"),
        Some(
            json!({"contract_value": {"amount": "1", "currency": "TZS"}, "happiness": "Ecstatic"}),
        ),
    )
    .await;
    let body = json_of(wrong, 422).await;
    let details = body["error"]["details"].to_string();
    assert!(
        details.contains("must be in KES") && details.contains("Ecstatic"),
        "{details}"
    );

    let page = json_of(
        send(
            &app,
            &t,
            Method::GET,
            "/relationships?happiness=Delighted",
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(names(&page), ["Moses Kiptoo"]);
    let deleted = send(
        &app,
        &t,
        Method::DELETE,
        &format!("/relationships/{id}"),
        None,
    )
    .await;
    assert_eq!(deleted.status(), 204);
    let gone = send(&app, &t, Method::GET, &format!("/relationships/{id}"), None).await;
    assert_eq!(gone.status(), 404);
    assert_eq!(
        audit_actions(&app, &t, id).await,
        [
            "relationship.delete",
            "relationship.update",
            "relationship.create"
        ]
    );
}
