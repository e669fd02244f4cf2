//! The usage meter.

use edge_core::OrgId;
use edge_tenancy::{InMemoryUsageMeter, UsageMeter};

#[tokio::test]
async fn usage_is_totalled_per_org_and_metric() {
    let meter = InMemoryUsageMeter::new();
    let acme = OrgId::new();
    let globex = OrgId::new();
    let dyn_meter: &dyn UsageMeter = &meter;
    dyn_meter
        .record(acme, "whatsapp.messages", 3)
        .await
        .unwrap();
    dyn_meter
        .record(acme, "whatsapp.messages", 2)
        .await
        .unwrap();
    dyn_meter.record(acme, "api.requests", 1).await.unwrap();
    dyn_meter
        .record(globex, "whatsapp.messages", 7)
        .await
        .unwrap();
    dyn_meter.record(acme, "big", u64::MAX).await.unwrap();
    dyn_meter.record(acme, "big", 1).await.unwrap();

    assert_eq!(meter.total(acme, "whatsapp.messages"), 5);
    assert_eq!(meter.total(globex, "whatsapp.messages"), 7);
    assert_eq!(meter.total(globex, "api.requests"), 0);
    assert_eq!(meter.total(acme, "big"), u64::MAX);
    assert_eq!(
        meter.totals_for(acme),
        vec![
            ("api.requests".to_owned(), 1),
            ("big".to_owned(), u64::MAX),
            ("whatsapp.messages".to_owned(), 5)
        ]
    );
    assert_eq!(
        dyn_meter.record(acme, "", 1).await.unwrap_err().code(),
        "validation_failed"
    );
}
