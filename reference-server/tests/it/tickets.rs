//! Tickets over the API: lifecycle with comments and status moves, validation messages,
//! lists (filters, search, sort, keyset pages), visibility per role, other tenants.

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::{signup, token};
use crate::crm_support::{
    audit_actions, expect, field_errors, ids, only_own_records, relationship, user_id,
};
use crate::helpers::{TestApp, on_both_backends};
use crate::tenancy::invite_and_accept;

on_both_backends!(
    a_ticket_lives_from_create_to_delete,
    ticket_status_moves_follow_the_rules,
    bad_ticket_values_are_refused_with_clear_messages,
    ticket_lists_filter_search_sort_and_page,
    users_see_only_their_tickets_when_the_organization_says_so,
    other_tenants_tickets_are_not_found,
);

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    expect(app, token, Method::POST, "/tickets", Some(body), 201).await
}

async fn patch(app: &TestApp, token: &str, id: &str, body: Value, status: u16) -> Value {
    expect(
        app,
        token,
        Method::PATCH,
        &format!("/tickets/{id}"),
        Some(body),
        status,
    )
    .await
}

async fn list(app: &TestApp, token: &str, query: &str) -> Value {
    expect(
        app,
        token,
        Method::GET,
        &format!("/tickets?{query}"),
        None,
        200,
    )
    .await
}

async fn a_ticket_lives_from_create_to_delete(app: TestApp) {
    let admin = signup(&app, "Huduma Ltd", "admin@huduma.example").await;
    let t = token(&admin);
    let me = user_id(&admin);
    let customer = relationship(&app, &t, json!({"name": "Mwangi Stores"})).await;

    // The smallest ticket: a customer and a subject.
    let created = create(
        &app,
        &t,
        json!({"relationship_id": customer, "subject": "  Till receipts not printing  "}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["subject"], "Till receipts not printing");
    assert_eq!(created["status"], "open");
    assert_eq!(created["priority"], "normal");
    assert_eq!(created["description"], "");
    assert_eq!(created["relationship_id"], customer.as_str());
    assert_eq!(created["assignee_id"], Value::Null);
    assert_eq!(created["created_by"], me.as_str());
    assert_eq!(created["overdue"], false);
    assert_eq!(created["resolved_at"], Value::Null);

    let fetched = expect(&app, &t, Method::GET, &format!("/tickets/{id}"), None, 200).await;
    assert_eq!(fetched["subject"], created["subject"]);
    assert_eq!(fetched["comments"], json!([]));

    // Assign it to myself, raise the priority, give it a due time in the past.
    let changed = patch(
        &app,
        &t,
        &id,
        json!({
            "priority": "urgent",
            "assignee_id": me,
            "due_at": "2020-01-01T09:00:00+03:00",
            "description": "Printer shows error E4",
        }),
        200,
    )
    .await;
    assert_eq!(changed["priority"], "urgent");
    assert_eq!(changed["assignee_id"], me.as_str());
    assert_eq!(changed["due_at"], "2020-01-01T06:00:00Z");
    assert_eq!(changed["overdue"], true);
    assert_eq!(changed["description"], "Printer shows error E4");
    assert_eq!(
        changed["subject"], "Till receipts not printing",
        "absent fields stay"
    );

    // The conversation.
    let comment = expect(
        &app,
        &t,
        Method::POST,
        &format!("/tickets/{id}/comments"),
        Some(json!({"body": "Called the shop; sending a technician."})),
        201,
    )
    .await;
    let comment_id = comment["id"].as_str().unwrap().to_owned();
    assert_eq!(comment["author_id"], me.as_str());
    assert_eq!(comment["ticket_id"], id.as_str());
    let edited = expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/tickets/{id}/comments/{comment_id}"),
        Some(json!({"body": "Called the shop; technician on Monday."})),
        200,
    )
    .await;
    assert_eq!(edited["body"], "Called the shop; technician on Monday.");
    let second = expect(
        &app,
        &t,
        Method::POST,
        &format!("/tickets/{id}/comments"),
        Some(json!({"body": "Technician fixed the printer."})),
        201,
    )
    .await;
    let fetched = expect(&app, &t, Method::GET, &format!("/tickets/{id}"), None, 200).await;
    let bodies: Vec<&str> = fetched["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            "Called the shop; technician on Monday.",
            "Technician fixed the printer."
        ],
        "oldest first"
    );
    assert_eq!(
        fetched["updated_at"], second["created_at"],
        "a comment counts as a change of the ticket"
    );

    expect(
        &app,
        &t,
        Method::DELETE,
        &format!("/tickets/{id}/comments/{comment_id}"),
        None,
        204,
    )
    .await;
    let fetched = expect(&app, &t, Method::GET, &format!("/tickets/{id}"), None, 200).await;
    assert_eq!(fetched["comments"].as_array().unwrap().len(), 1);
    expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/tickets/{id}/comments/{comment_id}"),
        Some(json!({"body": "back from the dead"})),
        404,
    )
    .await;

    // Deleted: gone from every read, kept in the audit trail.
    expect(
        &app,
        &t,
        Method::DELETE,
        &format!("/tickets/{id}"),
        None,
        204,
    )
    .await;
    expect(&app, &t, Method::GET, &format!("/tickets/{id}"), None, 404).await;
    patch(&app, &t, &id, json!({"subject": "again"}), 404).await;
    expect(
        &app,
        &t,
        Method::DELETE,
        &format!("/tickets/{id}"),
        None,
        404,
    )
    .await;
    assert!(ids(&list(&app, &t, "").await).is_empty());
    let mut actions = audit_actions(&app, &t, &id).await;
    actions.sort();
    assert_eq!(
        actions,
        [
            "ticket.comment",
            "ticket.comment",
            "ticket.comment_delete",
            "ticket.comment_update",
            "ticket.create",
            "ticket.delete",
            "ticket.update",
        ]
    );
    let log = expect(
        &app,
        &t,
        Method::GET,
        &format!("/audit-log?target_id={id}&action=ticket.update"),
        None,
        200,
    )
    .await;
    let details = &log["items"][0]["details"];
    assert_eq!(
        details["priority"],
        json!({"from": "normal", "to": "urgent"})
    );
    assert_eq!(details["assignee_id"]["to"], me.as_str());
}

async fn ticket_status_moves_follow_the_rules(app: TestApp) {
    let admin = signup(&app, "Msaada", "admin@msaada.example").await;
    let t = token(&admin);
    let user = invite_and_accept(&app, &t, "agent@msaada.example", "user").await;
    let agent = token(&user);
    let customer = relationship(&app, &t, json!({"name": "Baraka Farm"})).await;
    let ticket = create(
        &app,
        &agent,
        json!({"relationship_id": customer, "subject": "Delivery late"}),
    )
    .await;
    let id = ticket["id"].as_str().unwrap().to_owned();

    // Straight from open to closed is not a move.
    let refused = patch(&app, &agent, &id, json!({"status": "closed"}), 409).await;
    assert_eq!(refused["error"]["code"], "conflict");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pending or resolved"),
        "{refused}"
    );

    let pending = patch(&app, &agent, &id, json!({"status": "pending"}), 200).await;
    assert_eq!(pending["status"], "pending");
    let resolved = patch(&app, &agent, &id, json!({"status": "resolved"}), 200).await;
    assert!(resolved["resolved_at"].is_string());
    assert_eq!(resolved["closed_at"], Value::Null);
    // Reopening a resolved ticket clears its resolution.
    let reopened = patch(&app, &agent, &id, json!({"status": "open"}), 200).await;
    assert_eq!(reopened["resolved_at"], Value::Null);
    patch(&app, &agent, &id, json!({"status": "resolved"}), 200).await;
    let closed = patch(&app, &agent, &id, json!({"status": "closed"}), 200).await;
    assert!(closed["closed_at"].is_string());
    assert!(closed["resolved_at"].is_string(), "resolution is kept");

    // Closed is final: no edits, no comments, and only a manager or admin reopens.
    let frozen = patch(&app, &agent, &id, json!({"subject": "Edited"}), 409).await;
    assert!(
        frozen["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reopen it first")
    );
    expect(
        &app,
        &agent,
        Method::POST,
        &format!("/tickets/{id}/comments"),
        Some(json!({"body": "One more thing"})),
        409,
    )
    .await;
    let forbidden = patch(&app, &agent, &id, json!({"status": "open"}), 403).await;
    assert_eq!(forbidden["error"]["code"], "forbidden");
    patch(&app, &agent, &id, json!({"status": "resolved"}), 409).await;
    let back = patch(
        &app,
        &t,
        &id,
        json!({"status": "open", "priority": "high"}),
        200,
    )
    .await;
    assert_eq!(back["status"], "open");
    assert_eq!(back["priority"], "high");
    assert_eq!(back["closed_at"], Value::Null);
    assert_eq!(back["resolved_at"], Value::Null);

    // The same status again changes nothing and writes nothing.
    let before = audit_actions(&app, &t, &id).await.len();
    patch(&app, &agent, &id, json!({"status": "open"}), 200).await;
    assert_eq!(audit_actions(&app, &t, &id).await.len(), before);
}

async fn bad_ticket_values_are_refused_with_clear_messages(app: TestApp) {
    let admin = signup(&app, "Makosa", "admin@makosa.example").await;
    let t = token(&admin);
    let customer = relationship(&app, &t, json!({"name": "Juma Hardware"})).await;

    let missing = expect(&app, &t, Method::POST, "/tickets", Some(json!({})), 422).await;
    assert_eq!(
        field_errors(&missing),
        [
            ("relationship_id".to_owned(), "is required".to_owned()),
            ("subject".to_owned(), "is required".to_owned()),
        ]
    );

    let bad = expect(
        &app,
        &t,
        Method::POST,
        "/tickets",
        Some(json!({
            "relationship_id": "customer-42",
            "subject": "   ",
            "priority": "critical",
            "due_at": "tomorrow",
            "assignee_id": "someone",
        })),
        422,
    )
    .await;
    let problems = field_errors(&bad);
    let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "relationship_id",
            "subject",
            "priority",
            "assignee_id",
            "due_at"
        ]
    );
    assert_eq!(problems[2].1, "must be one of: low, normal, high, urgent");
    assert!(problems[4].1.contains("2026-01-31T17:00:00+03:00"));

    // Ids that are well-formed but name nothing of this organization.
    let unknown = uuid::Uuid::now_v7();
    let nobody = expect(
        &app,
        &t,
        Method::POST,
        "/tickets",
        Some(json!({"relationship_id": unknown, "subject": "Hello"})),
        422,
    )
    .await;
    assert_eq!(
        field_errors(&nobody),
        [(
            "relationship_id".to_owned(),
            "no such relationship".to_owned()
        )]
    );
    let stranger = expect(
        &app,
        &t,
        Method::POST,
        "/tickets",
        Some(json!({"relationship_id": customer, "subject": "Hello", "assignee_id": unknown})),
        422,
    )
    .await;
    assert_eq!(
        field_errors(&stranger),
        [(
            "assignee_id".to_owned(),
            "is not an active member of this organization".to_owned()
        )]
    );
    let unknown_field = expect(
        &app,
        &t,
        Method::POST,
        "/tickets",
        Some(json!({"relationship_id": customer, "subject": "Hello", "colour": "red"})),
        422,
    )
    .await;
    assert_eq!(unknown_field["error"]["code"], "invalid_body");

    let ticket = create(
        &app,
        &t,
        json!({"relationship_id": customer, "subject": "Hello"}),
    )
    .await;
    let id = ticket["id"].as_str().unwrap();
    let bad_status = patch(&app, &t, id, json!({"status": "done", "subject": ""}), 422).await;
    assert_eq!(
        field_errors(&bad_status),
        [
            (
                "subject".to_owned(),
                "must be 1 to 200 characters".to_owned()
            ),
            (
                "status".to_owned(),
                "must be one of: open, pending, resolved, closed".to_owned()
            ),
        ]
    );
    let empty_comment = expect(
        &app,
        &t,
        Method::POST,
        &format!("/tickets/{id}/comments"),
        Some(json!({"body": " "})),
        422,
    )
    .await;
    assert_eq!(
        field_errors(&empty_comment),
        [(
            "body".to_owned(),
            "must be 1 to 10000 characters".to_owned()
        )]
    );
    // Nothing of it was kept.
    assert_eq!(ids(&list(&app, &t, "").await), [id]);

    // List parameters are checked too.
    for (query, field) in [
        ("status=done", "status"),
        ("priority=high,extreme", "priority"),
        ("assignee_id=nobody", "assignee_id"),
        ("overdue=maybe", "overdue"),
        ("colour=red", "colour"),
        ("sort=subject", "sort"),
        ("q=x", "q"),
    ] {
        let refused = expect(
            &app,
            &t,
            Method::GET,
            &format!("/tickets?{query}"),
            None,
            422,
        )
        .await;
        assert_eq!(field_errors(&refused)[0].0, field, "{query}");
    }
}

async fn ticket_lists_filter_search_sort_and_page(app: TestApp) {
    let admin = signup(&app, "Orodha", "admin@orodha.example").await;
    let t = token(&admin);
    let me = user_id(&admin);
    let colleague = invite_and_accept(&app, &t, "colleague@orodha.example", "manager").await;
    let colleague_id = user_id(&colleague);
    let shop = relationship(&app, &t, json!({"name": "Shop"})).await;
    let farm = relationship(&app, &t, json!({"name": "Farm"})).await;

    let printer = create(
        &app,
        &t,
        json!({"relationship_id": shop, "subject": "Printer jammed", "priority": "urgent",
               "assignee_id": me, "due_at": "2020-05-01T10:00:00Z"}),
    )
    .await;
    let invoice = create(
        &app,
        &t,
        json!({"relationship_id": shop, "subject": "Wrong invoice total", "assignee_id": colleague_id}),
    )
    .await;
    let delivery = create(
        &app,
        &t,
        json!({"relationship_id": farm, "subject": "Late delivery", "priority": "low"}),
    )
    .await;
    let id = |ticket: &Value| ticket["id"].as_str().unwrap().to_owned();
    patch(&app, &t, &id(&invoice), json!({"status": "pending"}), 200).await;
    patch(&app, &t, &id(&delivery), json!({"status": "resolved"}), 200).await;

    // Newest first by default.
    assert_eq!(
        ids(&list(&app, &t, "").await),
        [id(&delivery), id(&invoice), id(&printer)]
    );
    assert_eq!(
        ids(&list(&app, &t, "sort=created_at").await),
        [id(&printer), id(&invoice), id(&delivery)]
    );
    assert_eq!(
        ids(&list(&app, &t, "status=open,pending").await),
        [id(&invoice), id(&printer)]
    );
    assert_eq!(
        ids(&list(&app, &t, "priority=urgent").await),
        [id(&printer)]
    );
    assert_eq!(ids(&list(&app, &t, "assignee_id=me").await), [id(&printer)]);
    assert_eq!(
        ids(&list(&app, &t, &format!("assignee_id={colleague_id}")).await),
        [id(&invoice)]
    );
    assert_eq!(
        ids(&list(&app, &t, "assignee_id=none").await),
        [id(&delivery)]
    );
    assert_eq!(
        ids(&list(&app, &t, &format!("relationship_id={farm}")).await),
        [id(&delivery)]
    );
    assert_eq!(ids(&list(&app, &t, "overdue=true").await), [id(&printer)]);
    assert_eq!(
        ids(&list(&app, &t, "overdue=false").await),
        [id(&delivery), id(&invoice)]
    );
    assert_eq!(ids(&list(&app, &t, "q=PRINTER").await), [id(&printer)]);
    assert_eq!(ids(&list(&app, &t, "q=invoice").await), [id(&invoice)]);
    assert!(ids(&list(&app, &t, "created_after=2099-01-01").await).is_empty());
    assert_eq!(
        ids(&list(&app, &t, "created_before=2099-01-01").await).len(),
        3
    );

    // A change moves a ticket to the top of the most recently updated.
    patch(&app, &t, &id(&printer), json!({"priority": "high"}), 200).await;
    assert_eq!(
        ids(&list(&app, &t, "sort=-updated_at").await)[0],
        id(&printer)
    );
    // The subject is searchable after a change too.
    patch(
        &app,
        &t,
        &id(&printer),
        json!({"subject": "Receipt printer jammed"}),
        200,
    )
    .await;
    assert_eq!(ids(&list(&app, &t, "q=receipt").await), [id(&printer)]);

    // Keyset pages: every ticket once, in order.
    let first = list(&app, &t, "limit=2").await;
    assert_eq!(ids(&first), [id(&delivery), id(&invoice)]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = list(&app, &t, &format!("limit=2&cursor={cursor}")).await;
    assert_eq!(ids(&second), [id(&printer)]);
    assert!(second["next_cursor"].is_null());
}

async fn users_see_only_their_tickets_when_the_organization_says_so(app: TestApp) {
    let admin = signup(&app, "Siri", "admin@siri.example").await;
    let t = token(&admin);
    let user = invite_and_accept(&app, &t, "agent@siri.example", "user").await;
    let agent = token(&user);
    let agent_id = user_id(&user);
    let manager = invite_and_accept(&app, &t, "lead@siri.example", "manager").await;
    let lead = token(&manager);
    let lead_id = user_id(&manager);

    let agents_customer = relationship(
        &app,
        &t,
        json!({"name": "Agent's customer", "account_manager_id": agent_id}),
    )
    .await;
    let admins_customer = relationship(&app, &t, json!({"name": "Admin's customer"})).await;
    let assigned = create(
        &app,
        &t,
        json!({"relationship_id": admins_customer, "subject": "Assigned to the agent", "assignee_id": agent_id}),
    )
    .await;
    let hidden = create(
        &app,
        &t,
        json!({"relationship_id": admins_customer, "subject": "Nobody's"}),
    )
    .await;
    let id = |ticket: &Value| ticket["id"].as_str().unwrap().to_owned();

    // Everyone sees everything by default.
    assert_eq!(ids(&list(&app, &agent, "").await).len(), 2);
    only_own_records(&app, &t).await;

    // The agent raises a ticket for their own customer, not for one they cannot see.
    let raised = create(
        &app,
        &agent,
        json!({"relationship_id": agents_customer, "subject": "Raised by the agent"}),
    )
    .await;
    let refused = expect(
        &app,
        &agent,
        Method::POST,
        "/tickets",
        Some(json!({"relationship_id": admins_customer, "subject": "Not mine"})),
        422,
    )
    .await;
    assert_eq!(
        field_errors(&refused),
        [(
            "relationship_id".to_owned(),
            "no such relationship".to_owned()
        )]
    );

    // Assigned to them or raised by them: visible; anything else: 404 everywhere.
    let mut visible = ids(&list(&app, &agent, "").await);
    visible.sort();
    let mut expected = vec![id(&assigned), id(&raised)];
    expected.sort();
    assert_eq!(visible, expected);
    for (method, path, body) in [
        (Method::GET, format!("/tickets/{}", id(&hidden)), None),
        (
            Method::PATCH,
            format!("/tickets/{}", id(&hidden)),
            Some(json!({"subject": "mine now"})),
        ),
        (
            Method::POST,
            format!("/tickets/{}/comments", id(&hidden)),
            Some(json!({"body": "peek"})),
        ),
    ] {
        expect(&app, &agent, method, &path, body, 404).await;
    }
    assert_eq!(ids(&list(&app, &lead, "").await).len(), 3);
    assert_eq!(ids(&list(&app, &t, "").await).len(), 3);

    // A user takes nothing away from anyone and gives nothing to anyone; a manager can.
    patch(
        &app,
        &agent,
        &id(&assigned),
        json!({"assignee_id": lead_id}),
        403,
    )
    .await;
    patch(
        &app,
        &agent,
        &id(&raised),
        json!({"assignee_id": agent_id}),
        200,
    )
    .await;
    patch(
        &app,
        &agent,
        &id(&raised),
        json!({"assignee_id": null}),
        200,
    )
    .await;
    patch(
        &app,
        &lead,
        &id(&assigned),
        json!({"assignee_id": lead_id}),
        200,
    )
    .await;
    expect(
        &app,
        &agent,
        Method::GET,
        &format!("/tickets/{}", id(&assigned)),
        None,
        404,
    )
    .await;

    // Only the author edits a comment; users cannot delete.
    let comment = expect(
        &app,
        &agent,
        Method::POST,
        &format!("/tickets/{}/comments", id(&raised)),
        Some(json!({"body": "Customer called again"})),
        201,
    )
    .await;
    let comment_path = format!(
        "/tickets/{}/comments/{}",
        id(&raised),
        comment["id"].as_str().unwrap()
    );
    let not_author = expect(
        &app,
        &lead,
        Method::PATCH,
        &comment_path,
        Some(json!({"body": "Rewritten"})),
        403,
    )
    .await;
    assert!(
        not_author["error"]["message"]
            .as_str()
            .unwrap()
            .contains("author")
    );
    expect(&app, &agent, Method::DELETE, &comment_path, None, 403).await;
    expect(&app, &lead, Method::DELETE, &comment_path, None, 204).await;
    expect(
        &app,
        &agent,
        Method::DELETE,
        &format!("/tickets/{}", id(&raised)),
        None,
        403,
    )
    .await;
}

async fn other_tenants_tickets_are_not_found(app: TestApp) {
    let alpha = signup(&app, "Alpha", "admin@alpha.example").await;
    let beta = signup(&app, "Beta", "admin@beta.example").await;
    let (a, b) = (token(&alpha), token(&beta));
    let customer = relationship(&app, &a, json!({"name": "Alpha's customer"})).await;
    let ticket = create(
        &app,
        &a,
        json!({"relationship_id": customer, "subject": "Alpha's ticket"}),
    )
    .await;
    let id = ticket["id"].as_str().unwrap();
    let comment = expect(
        &app,
        &a,
        Method::POST,
        &format!("/tickets/{id}/comments"),
        Some(json!({"body": "Alpha's comment"})),
        201,
    )
    .await;
    let comment_id = comment["id"].as_str().unwrap();

    for (method, path, body) in [
        (Method::GET, format!("/tickets/{id}"), None),
        (
            Method::PATCH,
            format!("/tickets/{id}"),
            Some(json!({"status": "pending"})),
        ),
        (Method::DELETE, format!("/tickets/{id}"), None),
        (
            Method::POST,
            format!("/tickets/{id}/comments"),
            Some(json!({"body": "hi"})),
        ),
        (
            Method::PATCH,
            format!("/tickets/{id}/comments/{comment_id}"),
            Some(json!({"body": "hi"})),
        ),
        (
            Method::DELETE,
            format!("/tickets/{id}/comments/{comment_id}"),
            None,
        ),
    ] {
        let answer = expect(&app, &b, method, &path, body, 404).await;
        assert_eq!(answer["error"]["code"], "not_found");
    }
    // Beta cannot raise a ticket on Alpha's customer either, nor see Alpha's in a list.
    let refused = expect(
        &app,
        &b,
        Method::POST,
        "/tickets",
        Some(json!({"relationship_id": customer, "subject": "Sneaky"})),
        422,
    )
    .await;
    assert_eq!(field_errors(&refused)[0].1, "no such relationship");
    assert!(ids(&list(&app, &b, "").await).is_empty());
    assert!(ids(&list(&app, &b, &format!("relationship_id={customer}")).await).is_empty());
    // Alpha's ticket is untouched.
    let fetched = expect(&app, &a, Method::GET, &format!("/tickets/{id}"), None, 200).await;
    assert_eq!(fetched["status"], "open");
    assert_eq!(fetched["comments"].as_array().unwrap().len(), 1);
}
