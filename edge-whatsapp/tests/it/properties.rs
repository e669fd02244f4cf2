//! Arbitrary input never panics the webhook parser.

use edge_whatsapp::webhook::{parse_events, sign, verify_signature};
use proptest::prelude::*;
use secrecy::SecretString;
use serde_json::{Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("messages".to_owned()),
            Just("text".to_owned()),
            Just("failed".to_owned()),
            Just("interactive".to_owned()),
            ".{0,8}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        let key = prop_oneof![
            Just("entry".to_owned()),
            Just("changes".to_owned()),
            Just("value".to_owned()),
            Just("field".to_owned()),
            Just("messages".to_owned()),
            Just("statuses".to_owned()),
            Just("metadata".to_owned()),
            Just("type".to_owned()),
            Just("id".to_owned()),
            Just("text".to_owned()),
            Just("pricing".to_owned()),
            Just("errors".to_owned()),
            Just("contacts".to_owned()),
            "[a-z_]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_json_never_panics(value in arb_json()) {
        let body = serde_json::to_vec(&value).unwrap();
        let _ = parse_events(&body);
    }

    #[test]
    fn arbitrary_webhook_shapes_never_panic(
        entry_id in arb_json(),
        field in arb_json(),
        value in arb_json(),
        item in arb_json(),
    ) {
        let body = serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": entry_id, "changes": [
                { "field": field, "value": value },
                { "field": "messages", "value": { "messages": [item.clone()], "statuses": [item] } },
            ] }]
        })).unwrap();
        let events = parse_events(&body).unwrap();
        prop_assert!(events.len() >= 2);
        for e in &events {
            let _ = e.dedup_key();
            let _ = e.routing.tenant_key();
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_events(&bytes);
        let secret = SecretString::from("s");
        prop_assert!(verify_signature(&secret, Some(&sign(&secret, &bytes)), &bytes).is_ok());
    }
}
