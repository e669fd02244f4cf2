//! Activities over the API: lifecycle with completion, validation messages, lists and
//! timelines (a converted prospect's history included), visibility per role, other
//! tenants.

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::{signup, token};
use crate::crm_support::{
    audit_actions, expect, field_errors, ids, only_own_records, prospect, relationship, user_id,
};
use crate::helpers::{TestApp, on_both_backends};
use crate::tenancy::invite_and_accept;

on_both_backends!(
    an_activity_lives_from_create_to_delete,
    bad_activity_values_are_refused_with_clear_messages,
    activity_lists_filter_and_page,
    a_relationship_timeline_includes_its_prospects_activities,
    users_see_only_their_activities_when_the_organization_says_so,
    other_tenants_activities_are_not_found,
);

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    expect(app, token, Method::POST, "/activities", Some(body), 201).await
}

async fn list(app: &TestApp, token: &str, query: &str) -> Value {
    expect(
        app,
        token,
        Method::GET,
        &format!("/activities?{query}"),
        None,
        200,
    )
    .await
}

fn id(activity: &Value) -> String {
    activity["id"].as_str().unwrap().to_owned()
}

async fn an_activity_lives_from_create_to_delete(app: TestApp) {
    let admin = signup(&app, "Kazi Bora", "admin@kazi.example").await;
    let t = token(&admin);
    let me = user_id(&admin);
    let customer = relationship(&app, &t, json!({"name": "Wanjiru Bakery"})).await;

    let created = create(
        &app,
        &t,
        json!({"kind": "call", "subject_type": "relationship", "subject_id": customer,
               "title": " Follow up on the oven quote "}),
    )
    .await;
    let activity = id(&created);
    assert_eq!(created["kind"], "call");
    assert_eq!(created["subject_type"], "relationship");
    assert_eq!(created["subject_id"], customer.as_str());
    assert_eq!(created["title"], "Follow up on the oven quote");
    assert_eq!(created["owner_id"], me.as_str(), "the caller by default");
    assert_eq!(created["created_by"], me.as_str());
    assert_eq!(created["completed"], false);
    assert_eq!(created["completed_at"], Value::Null);
    assert_eq!(created["body"], Value::Null);

    let path = format!("/activities/{activity}");
    let fetched = expect(&app, &t, Method::GET, &path, None, 200).await;
    assert_eq!(fetched, created);

    let changed = expect(
        &app,
        &t,
        Method::PATCH,
        &path,
        Some(json!({"kind": "meeting", "body": "Bring the catalogue", "due_at": "2020-03-02T10:00:00+03:00"})),
        200,
    )
    .await;
    assert_eq!(changed["kind"], "meeting");
    assert_eq!(changed["body"], "Bring the catalogue");
    assert_eq!(changed["due_at"], "2020-03-02T07:00:00Z");
    assert_eq!(changed["overdue"], true);
    assert_eq!(changed["title"], "Follow up on the oven quote");
    let cleared = expect(
        &app,
        &t,
        Method::PATCH,
        &path,
        Some(json!({"body": null})),
        200,
    )
    .await;
    assert_eq!(cleared["body"], Value::Null);

    // Complete, twice: the second call changes nothing.
    let done = expect(
        &app,
        &t,
        Method::POST,
        &format!("{path}/complete"),
        None,
        200,
    )
    .await;
    assert_eq!(done["completed"], true);
    assert_eq!(done["overdue"], false);
    let completed_at = done["completed_at"].clone();
    assert!(completed_at.is_string());
    let again = expect(
        &app,
        &t,
        Method::POST,
        &format!("{path}/complete"),
        None,
        200,
    )
    .await;
    assert_eq!(again["completed_at"], completed_at);
    let reopened = expect(&app, &t, Method::POST, &format!("{path}/reopen"), None, 200).await;
    assert_eq!(reopened["completed"], false);
    assert_eq!(reopened["completed_at"], Value::Null);

    expect(&app, &t, Method::DELETE, &path, None, 204).await;
    expect(&app, &t, Method::GET, &path, None, 404).await;
    expect(
        &app,
        &t,
        Method::POST,
        &format!("{path}/complete"),
        None,
        404,
    )
    .await;
    assert!(ids(&list(&app, &t, "").await).is_empty());
    let mut actions = audit_actions(&app, &t, &activity).await;
    actions.sort();
    assert_eq!(
        actions,
        [
            "activity.complete",
            "activity.create",
            "activity.delete",
            "activity.reopen",
            "activity.update",
            "activity.update",
        ]
    );
}

async fn bad_activity_values_are_refused_with_clear_messages(app: TestApp) {
    let admin = signup(&app, "Hitilafu", "admin@hitilafu.example").await;
    let t = token(&admin);
    let member = invite_and_accept(&app, &t, "agent@hitilafu.example", "user").await;
    let agent = token(&member);
    let customer = relationship(&app, &t, json!({"name": "Otieno Motors"})).await;

    let missing = expect(&app, &t, Method::POST, "/activities", Some(json!({})), 422).await;
    let fields: Vec<String> = field_errors(&missing).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["kind", "subject_type", "subject_id", "title"]);

    let bad = expect(
        &app,
        &t,
        Method::POST,
        "/activities",
        Some(
            json!({"kind": "email", "subject_type": "lead", "subject_id": "42",
                    "title": "", "due_at": "next week", "owner_id": "me"}),
        ),
        422,
    )
    .await;
    assert_eq!(
        field_errors(&bad),
        [
            (
                "kind".to_owned(),
                "must be one of: note, call, meeting, task".to_owned()
            ),
            (
                "subject_type".to_owned(),
                "must be one of: prospect, relationship, deal, ticket".to_owned()
            ),
            ("subject_id".to_owned(), "must be an id (a UUID)".to_owned()),
            ("title".to_owned(), "must be 1 to 200 characters".to_owned()),
            (
                "due_at".to_owned(),
                "must be a date and time with a zone, like 2026-01-31T17:00:00+03:00".to_owned()
            ),
            ("owner_id".to_owned(), "must be an id (a UUID)".to_owned()),
        ]
    );

    // A subject that does not exist, of each kind that does.
    let nothing = uuid::Uuid::now_v7();
    for kind in ["prospect", "relationship", "ticket"] {
        let refused = expect(
            &app,
            &t,
            Method::POST,
            "/activities",
            Some(
                json!({"kind": "note", "subject_type": kind, "subject_id": nothing, "title": "x"}),
            ),
            422,
        )
        .await;
        assert_eq!(
            field_errors(&refused),
            [("subject_id".to_owned(), format!("no such {kind}"))]
        );
    }
    // A subject of the wrong kind is not found either.
    let refused = expect(
        &app,
        &t,
        Method::POST,
        "/activities",
        Some(json!({"kind": "note", "subject_type": "prospect", "subject_id": customer, "title": "x"})),
        422,
    )
    .await;
    assert_eq!(field_errors(&refused)[0].1, "no such prospect");
    // A deleted subject is gone.
    let lead = prospect(&app, &t, json!({"name": "Gone soon"})).await;
    expect(
        &app,
        &t,
        Method::DELETE,
        &format!("/prospects/{lead}"),
        None,
        204,
    )
    .await;
    let refused = expect(
        &app,
        &t,
        Method::POST,
        "/activities",
        Some(json!({"kind": "note", "subject_type": "prospect", "subject_id": lead, "title": "x"})),
        422,
    )
    .await;
    assert_eq!(field_errors(&refused)[0].1, "no such prospect");

    // Owners: members only; a user assigns to nobody but themselves.
    let stranger = expect(
        &app,
        &t,
        Method::POST,
        "/activities",
        Some(
            json!({"kind": "task", "subject_type": "relationship", "subject_id": customer,
                    "title": "x", "owner_id": nothing}),
        ),
        422,
    )
    .await;
    assert_eq!(
        field_errors(&stranger),
        [(
            "owner_id".to_owned(),
            "is not an active member of this organization".to_owned()
        )]
    );
    let admin_id = user_id(&admin);
    let forbidden = expect(
        &app,
        &agent,
        Method::POST,
        "/activities",
        Some(
            json!({"kind": "task", "subject_type": "relationship", "subject_id": customer,
                    "title": "For the boss", "owner_id": admin_id}),
        ),
        403,
    )
    .await;
    assert!(
        forbidden["error"]["message"]
            .as_str()
            .unwrap()
            .contains("crm_assign"),
        "{forbidden}"
    );
    let unowned = create(
        &app,
        &t,
        json!({"kind": "task", "subject_type": "relationship", "subject_id": customer,
               "title": "Anyone", "owner_id": null}),
    )
    .await;
    assert_eq!(unowned["owner_id"], Value::Null);
    // The subject cannot change.
    let fixed = expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/activities/{}", id(&unowned)),
        Some(json!({"subject_id": nothing})),
        422,
    )
    .await;
    assert_eq!(fixed["error"]["code"], "invalid_body");
    // Nothing else was kept.
    assert_eq!(ids(&list(&app, &t, "").await), [id(&unowned)]);

    for (query, field) in [
        (format!("subject_id={customer}"), "subject_type"),
        (
            format!("subject_type=relationship,prospect&subject_id={customer}"),
            "subject_type",
        ),
        ("kind=email".to_owned(), "kind"),
        ("completed=yes".to_owned(), "completed"),
        ("due_before=soon".to_owned(), "due_before"),
        ("owner_id=boss".to_owned(), "owner_id"),
        ("q=oven".to_owned(), "q"),
    ] {
        let refused = expect(
            &app,
            &t,
            Method::GET,
            &format!("/activities?{query}"),
            None,
            422,
        )
        .await;
        assert_eq!(field_errors(&refused)[0].0, field, "{query}");
    }
}

async fn activity_lists_filter_and_page(app: TestApp) {
    let admin = signup(&app, "Ratiba", "admin@ratiba.example").await;
    let t = token(&admin);
    let colleague = invite_and_accept(&app, &t, "colleague@ratiba.example", "manager").await;
    let colleague_id = user_id(&colleague);
    let customer = relationship(&app, &t, json!({"name": "Customer"})).await;
    let lead = prospect(&app, &t, json!({"name": "Lead"})).await;
    let ticket = expect(
        &app,
        &t,
        Method::POST,
        "/tickets",
        Some(json!({"relationship_id": customer, "subject": "Broken fridge"})),
        201,
    )
    .await;
    let ticket = id(&ticket);

    let overdue_call = create(
        &app,
        &t,
        json!({"kind": "call", "subject_type": "prospect", "subject_id": lead, "title": "Call back",
               "due_at": "2020-01-10T09:00:00Z"}),
    )
    .await;
    let future_task = create(
        &app,
        &t,
        json!({"kind": "task", "subject_type": "relationship", "subject_id": customer,
               "title": "Send contract", "due_at": "2099-01-10T09:00:00Z", "owner_id": colleague_id}),
    )
    .await;
    let note = create(
        &app,
        &t,
        json!({"kind": "note", "subject_type": "ticket", "subject_id": ticket, "title": "Fridge model X2"}),
    )
    .await;
    let done_meeting = create(
        &app,
        &t,
        json!({"kind": "meeting", "subject_type": "relationship", "subject_id": customer,
               "title": "Quarterly review", "due_at": "2020-02-01T09:00:00Z"}),
    )
    .await;
    expect(
        &app,
        &t,
        Method::POST,
        &format!("/activities/{}/complete", id(&done_meeting)),
        None,
        200,
    )
    .await;

    assert_eq!(
        ids(&list(&app, &t, "").await),
        [
            id(&done_meeting),
            id(&note),
            id(&future_task),
            id(&overdue_call)
        ]
    );
    assert_eq!(
        ids(&list(
            &app,
            &t,
            &format!("subject_type=relationship&subject_id={customer}")
        )
        .await),
        [id(&done_meeting), id(&future_task)]
    );
    assert_eq!(
        ids(&list(
            &app,
            &t,
            &format!("subject_type=ticket&subject_id={ticket}")
        )
        .await),
        [id(&note)]
    );
    assert_eq!(
        ids(&list(&app, &t, "subject_type=prospect,ticket").await),
        [id(&note), id(&overdue_call)]
    );
    assert_eq!(
        ids(&list(&app, &t, "kind=call,meeting").await),
        [id(&done_meeting), id(&overdue_call)]
    );
    assert_eq!(
        ids(&list(&app, &t, &format!("owner_id={colleague_id}")).await),
        [id(&future_task)]
    );
    assert_eq!(ids(&list(&app, &t, "owner_id=me").await).len(), 3);
    assert_eq!(
        ids(&list(&app, &t, "completed=true").await),
        [id(&done_meeting)]
    );
    assert_eq!(ids(&list(&app, &t, "completed=false").await).len(), 3);
    assert_eq!(
        ids(&list(&app, &t, "overdue=true").await),
        [id(&overdue_call)]
    );
    assert_eq!(
        ids(&list(&app, &t, "overdue=false").await),
        [id(&done_meeting), id(&note), id(&future_task)]
    );
    assert_eq!(
        ids(&list(&app, &t, "due_before=2021-01-01").await),
        [id(&done_meeting), id(&overdue_call)]
    );
    assert_eq!(
        ids(&list(&app, &t, "due_after=2021-01-01T00:00:00Z").await),
        [id(&future_task)]
    );
    assert_eq!(
        ids(&list(&app, &t, "sort=created_at&limit=1").await),
        [id(&overdue_call)]
    );

    // Keyset pages, most recently updated first.
    expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/activities/{}", id(&overdue_call)),
        Some(json!({"title": "Call back today"})),
        200,
    )
    .await;
    let mut seen = Vec::new();
    let mut query = "sort=-updated_at&limit=3".to_owned();
    loop {
        let page = list(&app, &t, &query).await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("sort=-updated_at&limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            id(&overdue_call),
            id(&done_meeting),
            id(&note),
            id(&future_task)
        ]
    );
}

async fn a_relationship_timeline_includes_its_prospects_activities(app: TestApp) {
    let admin = signup(&app, "Historia", "admin@historia.example").await;
    let t = token(&admin);
    let lead = prospect(
        &app,
        &t,
        json!({"name": "Amina Yusuf", "phone": "0711000111"}),
    )
    .await;
    let first_call = create(
        &app,
        &t,
        json!({"kind": "call", "subject_type": "prospect", "subject_id": lead, "title": "Intro call"}),
    )
    .await;
    let converted = expect(
        &app,
        &t,
        Method::POST,
        &format!("/prospects/{lead}/convert"),
        Some(json!({})),
        201,
    )
    .await;
    let customer = converted["id"].as_str().unwrap().to_owned();
    let onboarding = create(
        &app,
        &t,
        json!({"kind": "meeting", "subject_type": "relationship", "subject_id": customer, "title": "Onboarding"}),
    )
    .await;
    let other = relationship(&app, &t, json!({"name": "Someone else"})).await;
    create(
        &app,
        &t,
        json!({"kind": "note", "subject_type": "relationship", "subject_id": other, "title": "Unrelated"}),
    )
    .await;

    // The customer's timeline carries on from the lead's.
    assert_eq!(
        ids(&list(
            &app,
            &t,
            &format!("subject_type=relationship&subject_id={customer}")
        )
        .await),
        [id(&onboarding), id(&first_call)]
    );
    // The prospect's own timeline is just its own.
    assert_eq!(
        ids(&list(
            &app,
            &t,
            &format!("subject_type=prospect&subject_id={lead}")
        )
        .await),
        [id(&first_call)]
    );
    // Filters still apply to the whole timeline.
    assert_eq!(
        ids(&list(
            &app,
            &t,
            &format!("subject_type=relationship&subject_id={customer}&kind=call")
        )
        .await),
        [id(&first_call)]
    );
}

async fn users_see_only_their_activities_when_the_organization_says_so(app: TestApp) {
    let admin = signup(&app, "Faragha", "admin@faragha.example").await;
    let t = token(&admin);
    let member = invite_and_accept(&app, &t, "agent@faragha.example", "user").await;
    let agent = token(&member);
    let agent_id = user_id(&member);
    let manager = invite_and_accept(&app, &t, "lead@faragha.example", "manager").await;
    let lead = token(&manager);

    let agents_lead = prospect(
        &app,
        &t,
        json!({"name": "Agent's lead", "owner_id": agent_id}),
    )
    .await;
    let admins_lead = prospect(&app, &t, json!({"name": "Admin's lead"})).await;
    let for_agent = create(
        &app,
        &t,
        json!({"kind": "task", "subject_type": "prospect", "subject_id": admins_lead,
               "title": "For the agent", "owner_id": agent_id}),
    )
    .await;
    let admins = create(
        &app,
        &t,
        json!({"kind": "task", "subject_type": "prospect", "subject_id": admins_lead, "title": "Admin's"}),
    )
    .await;
    assert_eq!(ids(&list(&app, &agent, "").await).len(), 2);

    only_own_records(&app, &t).await;
    // Activities about records the agent cannot see are refused like missing ones.
    let refused = expect(
        &app,
        &agent,
        Method::POST,
        "/activities",
        Some(json!({"kind": "note", "subject_type": "prospect", "subject_id": admins_lead, "title": "Peek"})),
        422,
    )
    .await;
    assert_eq!(field_errors(&refused)[0].1, "no such prospect");
    let own = create(
        &app,
        &agent,
        json!({"kind": "note", "subject_type": "prospect", "subject_id": agents_lead, "title": "Mine"}),
    )
    .await;
    assert_eq!(own["owner_id"], agent_id.as_str());

    let mut visible = ids(&list(&app, &agent, "").await);
    visible.sort();
    let mut expected = vec![id(&for_agent), id(&own)];
    expected.sort();
    assert_eq!(visible, expected);
    let hidden = format!("/activities/{}", id(&admins));
    expect(&app, &agent, Method::GET, &hidden, None, 404).await;
    expect(
        &app,
        &agent,
        Method::PATCH,
        &hidden,
        Some(json!({"title": "Mine now"})),
        404,
    )
    .await;
    expect(
        &app,
        &agent,
        Method::POST,
        &format!("{hidden}/complete"),
        None,
        404,
    )
    .await;
    // The agent completes what is theirs; the manager and admin see everything.
    expect(
        &app,
        &agent,
        Method::POST,
        &format!("/activities/{}/complete", id(&for_agent)),
        None,
        200,
    )
    .await;
    assert_eq!(ids(&list(&app, &lead, "").await).len(), 3);
    assert_eq!(
        ids(&list(&app, &t, "completed=true").await),
        [id(&for_agent)]
    );
    expect(
        &app,
        &agent,
        Method::DELETE,
        &format!("/activities/{}", id(&own)),
        None,
        403,
    )
    .await;
}

async fn other_tenants_activities_are_not_found(app: TestApp) {
    let alpha = signup(&app, "Alpha", "admin@alpha.example").await;
    let beta = signup(&app, "Beta", "admin@beta.example").await;
    let (a, b) = (token(&alpha), token(&beta));
    let lead = prospect(&app, &a, json!({"name": "Alpha's lead"})).await;
    let activity = create(
        &app,
        &a,
        json!({"kind": "call", "subject_type": "prospect", "subject_id": lead, "title": "Alpha's call"}),
    )
    .await;
    let path = format!("/activities/{}", id(&activity));
    for (method, path, body) in [
        (Method::GET, path.clone(), None),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"title": "Beta's now"})),
        ),
        (Method::POST, format!("{path}/complete"), None),
        (Method::POST, format!("{path}/reopen"), None),
        (Method::DELETE, path.clone(), None),
    ] {
        expect(&app, &b, method, &path, body, 404).await;
    }
    let refused = expect(
        &app,
        &b,
        Method::POST,
        "/activities",
        Some(json!({"kind": "note", "subject_type": "prospect", "subject_id": lead, "title": "x"})),
        422,
    )
    .await;
    assert_eq!(field_errors(&refused)[0].1, "no such prospect");
    assert!(
        ids(&list(
            &app,
            &b,
            &format!("subject_type=prospect&subject_id={lead}")
        )
        .await)
        .is_empty()
    );
    let untouched = expect(&app, &a, Method::GET, &path, None, 200).await;
    assert_eq!(untouched["title"], "Alpha's call");
    assert_eq!(untouched["completed"], false);
}
