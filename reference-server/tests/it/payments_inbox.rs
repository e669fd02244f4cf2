//! The M-Pesa callback inbox below HTTP: what is recorded when one stored callback is
//! processed twice at once (its own processing, and the reconciliation loop taking it as
//! left over while that processing still runs).

use chrono::{TimeDelta, Utc};
use edge_core::OrgId;
use edge_server::entities::{mpesa_callbacks, organizations, payments};
use edge_server::payments::inbox::{CallbackKind, Processed};
use edge_server::tenant_scope::in_organization;
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::json;

use crate::helpers::{TestApp, on_both_backends};

on_both_backends!(a_callback_processed_twice_at_once_is_recorded_as_the_one_that_applied);

const PAYMENTS: usize = 10;

/// A pending top-up of 1,500 KES from +254708374149 with this `CheckoutRequestID`.
fn pending(org: OrgId, checkout: &str) -> payments::ActiveModel {
    let now = Utc::now();
    let mut row = payments::ActiveModel::pending(
        org.as_uuid(),
        uuid::Uuid::now_v7(),
        "wallet_top_up",
        "stk",
        edge_core::Money::from_minor(150_000, edge_core::Currency::Kes),
        now,
    );
    row.phone = Set(Some("+254708374149".into()));
    row.account_reference = Set("Edge wallet".into());
    row.description = Set("Top-up".into());
    row.checkout_request_id = Set(Some(checkout.to_owned()));
    row.next_check_at = Set(Some(now + TimeDelta::hours(1)));
    row
}

/// Daraja's STK success callback for it.
fn success(checkout: &str, receipt: &str) -> Vec<u8> {
    json!({"Body": {"stkCallback": {
        "MerchantRequestID": "7a1c-4e2f-9b3d-5c6e7f8a9b0c1000001",
        "CheckoutRequestID": checkout,
        "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": 1500.00},
            {"Name": "MpesaReceiptNumber", "Value": receipt},
            {"Name": "Balance"},
            {"Name": "TransactionDate", "Value": 20250115143047u64},
            {"Name": "PhoneNumber", "Value": 254708374149u64},
        ]},
    }}})
    .to_string()
    .into_bytes()
}

async fn a_callback_processed_twice_at_once_is_recorded_as_the_one_that_applied(app: TestApp) {
    let row = organizations::Model::new_active(
        "duka".into(),
        "Duka".into(),
        "KES".into(),
        "KE".into(),
        "standard".into(),
        Utc::now(),
    );
    let org = OrgId::from_uuid(row.id);
    organizations::Entity::insert(organizations::ActiveModel::from(row))
        .exec_without_returning(app.db())
        .await
        .unwrap();
    let payments = app.state.payments.clone();
    let urls = in_organization(org, payments.callback_urls(org))
        .await
        .unwrap();
    let token = urls.stk.rsplit('/').next().unwrap().to_owned();

    let mut callbacks = Vec::new();
    for i in 0..PAYMENTS {
        let checkout = format!("ws_CO_15012025143001{i:010}");
        payments::Entity::insert(pending(org, &checkout))
            .exec_without_returning(app.db())
            .await
            .unwrap();
        let body = success(&checkout, &format!("TESTRCPT{i:02}"));
        let id = in_organization(
            org,
            payments.receive(org, &token, CallbackKind::Stk, &body, None),
        )
        .await
        .unwrap();
        callbacks.push(id);
    }

    let mut both = Vec::new();
    for id in callbacks {
        let (first, second) = (payments.clone(), payments.clone());
        both.push(tokio::spawn(in_organization(org, async move {
            tokio::join!(first.process_callback(id), second.process_callback(id))
        })));
    }
    for pair in both {
        let (first, second) = pair.await.unwrap();
        let mut seen = [first.unwrap(), second.unwrap()];
        seen.sort_by_key(|p| format!("{p:?}"));
        // One of them moved the payment; the other found the callback held by it, or
        // already processed.
        assert!(
            seen == [Processed::Applied, Processed::InProgress]
                || seen == [Processed::Applied, Processed::Duplicate],
            "{seen:?}"
        );
    }

    // Each callback is recorded as the one that applied its payment, whichever of the
    // two processings finished first.
    let stored = mpesa_callbacks::Entity::find()
        .filter(mpesa_callbacks::Column::OrganizationId.eq(org.as_uuid()))
        .all(app.db())
        .await
        .unwrap();
    assert_eq!(stored.len(), PAYMENTS);
    for callback in &stored {
        assert_eq!(
            callback.outcome.as_deref(),
            Some("applied"),
            "callback {}",
            callback.id
        );
        assert!(callback.processed_at.is_some());
        assert!(callback.payment_id.is_some());
    }
    let rows = payments::Entity::find()
        .filter(payments::Column::OrganizationId.eq(org.as_uuid()))
        .all(app.db())
        .await
        .unwrap();
    assert!(
        rows.iter()
            .all(|p| p.status == "succeeded" && p.applied_at.is_some())
    );
    let balance = app.state.ledger.balance(org).await.unwrap();
    assert_eq!(balance.posted.minor(), 150_000 * PAYMENTS as i64);
}
