//! Concurrent writers: transactions that read and then write must not fail under load.
//!
//! On SQLite a deferred `BEGIN` that reads before it writes fails at once with
//! `SQLITE_BUSY` (no `busy_timeout` wait) when another connection committed in between;
//! the server opens such transactions with `BEGIN IMMEDIATE`, so writers queue instead.

use std::net::{IpAddr, Ipv4Addr};

use edge_server::entities::{organizations, users};
use futures::future::join_all;
use reqwest::Method;
use sea_orm::{EntityTrait as _, PaginatorTrait as _};
use serde_json::{Value, json};

use crate::auth::{PASSWORD, signup, token};
use crate::crm_support::{expect, ids, relationship};
use crate::helpers::{TestApp, on_both_backends};
use crate::tenancy::send;

on_both_backends!(
    concurrent_sign_ups_all_succeed,
    concurrent_writes_in_one_organization_all_succeed,
);

/// Sign-ups at once (a sign-up reads the free slugs and the plan, then writes).
const SIGN_UPS: u8 = 16;
/// Tickets created at once in one organization (under the free plan's burst of 20
/// requests, with the few other requests of the test).
const TICKETS: usize = 15;

async fn concurrent_sign_ups_all_succeed(app: TestApp) {
    let attempts = (0..SIGN_UPS).map(|i| {
        // Each from its own loopback address: sign-ups are limited per address.
        let client = reqwest::Client::builder()
            .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i)))
            .build()
            .unwrap();
        let url = app.url("/api/v1/auth/signup");
        async move {
            let response = client
                .post(url)
                .json(&json!({
                    // The same name for all: every sign-up looks for a free slug.
                    "organization_name": "Duka Moja",
                    "name": "Achieng Otieno",
                    "email": format!("admin{i}@duka.example"),
                    "password": PASSWORD,
                }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    });
    let answers = join_all(attempts).await;
    let failed: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 201)
        .collect();
    assert!(failed.is_empty(), "sign-ups that failed: {failed:?}");

    let mut slugs: Vec<String> = answers
        .iter()
        .map(|(_, body)| {
            let body: Value = serde_json::from_str(body).unwrap();
            body["organization"]["slug"].as_str().unwrap().to_owned()
        })
        .collect();
    slugs.sort();
    slugs.dedup();
    assert_eq!(slugs.len(), usize::from(SIGN_UPS), "every slug is its own");
    assert_eq!(
        organizations::Entity::find().count(app.db()).await.unwrap(),
        u64::from(SIGN_UPS)
    );
    assert_eq!(
        users::Entity::find().count(app.db()).await.unwrap(),
        u64::from(SIGN_UPS)
    );
}

async fn concurrent_writes_in_one_organization_all_succeed(app: TestApp) {
    let admin = signup(&app, "Huduma Nyingi", "admin@nyingi.example").await;
    let t = token(&admin);
    let customer = relationship(&app, &t, json!({"name": "Mwangi Stores"})).await;

    // A ticket's creation checks its customer, then writes the ticket and its audit entry.
    let attempts = (0..TICKETS).map(|i| {
        let (app, t, customer) = (&app, &t, &customer);
        async move {
            let response = send(
                app,
                t,
                Method::POST,
                "/tickets",
                Some(json!({"relationship_id": customer, "subject": format!("Issue {i}")})),
            )
            .await;
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    });
    let answers = join_all(attempts).await;
    let failed: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 201)
        .collect();
    assert!(
        failed.is_empty(),
        "ticket creations that failed: {failed:?}"
    );

    let mut created: Vec<String> = answers
        .iter()
        .map(|(_, body)| {
            let body: Value = serde_json::from_str(body).unwrap();
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let listed = expect(
        &app,
        &t,
        Method::GET,
        &format!("/tickets?limit={}", TICKETS + 5),
        None,
        200,
    )
    .await;
    let mut listed = ids(&listed);
    created.sort();
    listed.sort();
    assert_eq!(listed.len(), TICKETS);
    assert_eq!(listed, created);
}
