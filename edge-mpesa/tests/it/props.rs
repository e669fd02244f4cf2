//! Arbitrary input never panics the parsers.

use edge_mpesa::{
    Error, StkQueryOutcome, TokenResponse, parse_c2b, parse_result, parse_stk_callback,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("Body".to_owned()),
        Just("stkCallback".to_owned()),
        Just("Result".to_owned()),
        Just("ResultCode".to_owned()),
        Just("CheckoutRequestID".to_owned()),
        Just("ConversationID".to_owned()),
        Just("CallbackMetadata".to_owned()),
        Just("Item".to_owned()),
        Just("ResultParameters".to_owned()),
        Just("ResultParameter".to_owned()),
        Just("Key".to_owned()),
        Just("Name".to_owned()),
        Just("Value".to_owned()),
        Just("TransID".to_owned()),
        Just("TransAmount".to_owned()),
        Just("Amount".to_owned()),
        Just("TransactionDate".to_owned()),
        Just("PhoneNumber".to_owned()),
        Just("AccountBalance".to_owned()),
        "[a-zA-Z]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
        "[0-9|&.A-Za-z -]{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn exercise(bytes: &[u8]) {
    if let Ok(cb) = parse_stk_callback(bytes) {
        let _ = cb.outcome.is_paid();
    }
    if let Ok(r) = parse_result(bytes) {
        let _ = (
            r.b2c_payment(),
            r.account_balances(),
            r.amount(),
            r.completed_at(),
        );
    }
    let _ = parse_c2b(bytes);
    let _ = StkQueryOutcome::from_http(200, bytes);
    let _ = StkQueryOutcome::from_http(500, bytes);
    let _ = TokenResponse::from_http(200, bytes);
    let _ = Error::from_response(400, bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics(value in arb_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        exercise(&bytes);
        // Wrapped the way real callbacks are, to reach deeper code.
        exercise(&serde_json::to_vec(&json!({"Body": {"stkCallback": value.clone()}})).unwrap());
        exercise(&serde_json::to_vec(&json!({"Result": value})).unwrap());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        exercise(&bytes);
    }
}
