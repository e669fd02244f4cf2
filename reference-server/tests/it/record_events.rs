//! CRM records write `*.created`, `*.updated` and `*.deleted` events with their changes,
//! in the same transaction, and queue them for each consumer.

use edge_core::OrgId;
use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::{signup, token};
use crate::crm_support::expect;
use crate::helpers::{TestApp, on_both_backends};
use crate::tenancy::invite_and_accept;

on_both_backends!(
    records_tell_what_changed_and_who_owns_them,
    every_event_is_queued_once_for_each_consumer,
);

async fn events_about(app: &TestApp, org: &Value, id: &str) -> Vec<edge_server::events::Event> {
    let org = OrgId::from_uuid(org["organization"]["id"].as_str().unwrap().parse().unwrap());
    edge_server::events::about(app.db(), org, id.parse().unwrap())
        .await
        .unwrap()
}

fn kinds(events: &[edge_server::events::Event]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

async fn records_tell_what_changed_and_who_owns_them(app: TestApp) {
    let admin = signup(&app, "Tukio Traders", "admin@tukio.example").await;
    let t = token(&admin);
    let me = admin["user"]["id"].as_str().unwrap().to_owned();
    let user = invite_and_accept(&app, &t, "user@tukio.example", "user").await;
    let user_id = user["user"]["id"].as_str().unwrap().to_owned();

    let prospect = expect(
        &app,
        &t,
        Method::POST,
        "/prospects",
        Some(json!({"name": "Wanjiru"})),
        201,
    )
    .await;
    let id = prospect["id"].as_str().unwrap().to_owned();
    // A no-op change records nothing; a real one records what changed and from what.
    expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/prospects/{id}"),
        Some(json!({"name": "Wanjiru"})),
        200,
    )
    .await;
    expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/prospects/{id}"),
        Some(json!({"name": "Wanjiru Kamau", "owner_id": user_id})),
        200,
    )
    .await;
    expect(
        &app,
        &t,
        Method::DELETE,
        &format!("/prospects/{id}"),
        None,
        204,
    )
    .await;

    let events = events_about(&app, &admin, &id).await;
    assert_eq!(
        kinds(&events),
        ["prospect.created", "prospect.updated", "prospect.deleted"]
    );
    let created = &events[0].data;
    assert_eq!(created["record"]["name"], "Wanjiru");
    assert_eq!(created["owner_id"], me.as_str());
    assert_eq!(created["actor_id"], me.as_str());
    assert_eq!(created["changed"], json!([]));
    let updated = &events[1].data;
    let changed: Vec<&str> = updated["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        changed.contains(&"name") && changed.contains(&"owner_id"),
        "{updated}"
    );
    assert_eq!(updated["previous"]["name"], "Wanjiru");
    assert_eq!(updated["record"]["name"], "Wanjiru Kamau");
    assert_eq!(updated["owner_id"], user_id.as_str());
    assert_eq!(updated["previous_owner_id"], me.as_str());
    assert_eq!(events[2].data["record"]["id"], id.as_str());

    // A ticket's assignee and a relationship's account manager are its owner too.
    let relationship = expect(
        &app,
        &t,
        Method::POST,
        "/relationships",
        Some(json!({"name": "Kamau Ltd"})),
        201,
    )
    .await;
    let rel_id = relationship["id"].as_str().unwrap().to_owned();
    expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/relationships/{rel_id}"),
        Some(json!({"account_manager_id": user_id})),
        200,
    )
    .await;
    let events = events_about(&app, &admin, &rel_id).await;
    assert_eq!(
        kinds(&events),
        ["relationship.created", "relationship.updated"]
    );
    assert_eq!(events[1].data["owner_id"], user_id.as_str());
    assert!(
        events[1].data["changed"]
            .as_array()
            .unwrap()
            .contains(&json!("owner_id"))
    );

    let ticket = expect(
        &app,
        &t,
        Method::POST,
        "/tickets",
        Some(json!({"relationship_id": rel_id, "subject": "Printer jams"})),
        201,
    )
    .await;
    let ticket_id = ticket["id"].as_str().unwrap().to_owned();
    expect(
        &app,
        &t,
        Method::PATCH,
        &format!("/tickets/{ticket_id}"),
        Some(json!({"assignee_id": user_id})),
        200,
    )
    .await;
    let events = events_about(&app, &admin, &ticket_id).await;
    assert_eq!(kinds(&events), ["ticket.created", "ticket.updated"]);
    assert_eq!(events[1].data["owner_id"], user_id.as_str());

    // A deal: created, then won.
    let deal = expect(
        &app,
        &t,
        Method::POST,
        "/deals",
        Some(json!({"title": "Printers", "relationship_id": rel_id})),
        201,
    )
    .await;
    let deal_id = deal["id"].as_str().unwrap().to_owned();
    expect(
        &app,
        &t,
        Method::POST,
        &format!("/deals/{deal_id}/won"),
        Some(json!({})),
        200,
    )
    .await;
    let events = events_about(&app, &admin, &deal_id).await;
    assert_eq!(kinds(&events), ["deal.created", "deal.updated"]);
    assert_eq!(events[1].data["record"]["status"], "won");
    assert_eq!(events[1].data["previous"]["status"], "open");
}

async fn every_event_is_queued_once_for_each_consumer(app: TestApp) {
    use edge_server::events::{Consumer, claim, complete};
    let admin = signup(&app, "Foleni", "admin@foleni.example").await;
    let t = token(&admin);
    let prospect = expect(
        &app,
        &t,
        Method::POST,
        "/prospects",
        Some(json!({"name": "Otieno"})),
        201,
    )
    .await;
    let event_id = events_about(&app, &admin, prospect["id"].as_str().unwrap()).await[0].id;
    let now = chrono::Utc::now();
    let lease = std::time::Duration::from_secs(60);

    for consumer in Consumer::ALL {
        let first = claim(app.db(), consumer, now, lease, 100).await.unwrap();
        let mine: Vec<_> = first.iter().filter(|q| q.event.id == event_id).collect();
        assert_eq!(mine.len(), 1, "{consumer:?} gets the event once");
        // Claimed: nobody else gets it while the lease runs.
        let again = claim(app.db(), consumer, now, lease, 100).await.unwrap();
        assert!(again.iter().all(|q| q.event.id != event_id), "{consumer:?}");
        // After the lease, an event not completed comes back; a completed one does not.
        let later = now + chrono::Duration::seconds(61);
        let back = claim(app.db(), consumer, later, lease, 100).await.unwrap();
        assert!(back.iter().any(|q| q.event.id == event_id), "{consumer:?}");
        let org = mine[0].org;
        edge_server::tenant_scope::in_organization(
            org,
            complete(app.db(), org, consumer, event_id),
        )
        .await
        .unwrap();
        let much_later = now + chrono::Duration::seconds(200);
        let gone = claim(app.db(), consumer, much_later, lease, 100)
            .await
            .unwrap();
        assert!(gone.iter().all(|q| q.event.id != event_id), "{consumer:?}");
    }
}
