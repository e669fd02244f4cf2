//! Every fixture parses to the right typed value.

use chrono::{TimeZone, Utc};
use edge_core::{Currency, Money};
use edge_mpesa::callbacks::{
    C2B_CONFIRMATION_ACK, C2bRejection, C2bValidationReply, parse_account_balances,
};
use edge_mpesa::{StkOutcome, parse_c2b, parse_result, parse_stk_callback};

use crate::support::{kes, phone};

fn eat(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap() - chrono::Duration::hours(3)
}

#[test]
fn stk_success_carries_receipt_amount_phone_and_time() {
    let cb = parse_stk_callback(include_bytes!("../data/stk_callback_success.json")).unwrap();
    assert_eq!(cb.checkout_request_id, "ws_CO_15012025143001234708374149");
    assert_eq!(cb.merchant_request_id, "7a1c-4e2f-9b3d-5c6e7f8a9b0c1000001");
    assert_eq!(cb.result_code.as_str(), "0");
    let StkOutcome::Paid(payment) = &cb.outcome else {
        panic!("expected paid, got {:?}", cb.outcome);
    };
    assert_eq!(payment.receipt.as_deref(), Some("TESTRCPT01"));
    assert_eq!(payment.amount, Some(kes(1500)));
    assert_eq!(payment.phone, Some(phone("254708374149")));
    assert_eq!(payment.transaction_date, Some(eat(2025, 1, 15, 14, 30, 47)));
    // The Balance item has no Value and is kept as such.
    let balance = cb.metadata.iter().find(|i| i.key == "Balance").unwrap();
    assert_eq!(balance.value, None);
}

#[test]
fn stk_failures_map_to_outcomes_and_keep_the_code() {
    let cases: [(&[u8], StkOutcome, &str); 4] = [
        (
            include_bytes!("../data/stk_callback_cancelled.json"),
            StkOutcome::Cancelled,
            "1032",
        ),
        (
            include_bytes!("../data/stk_callback_timeout.json"),
            StkOutcome::TimedOut,
            "1037",
        ),
        (
            include_bytes!("../data/stk_callback_expired.json"),
            StkOutcome::TimedOut,
            "1019",
        ),
        (
            include_bytes!("../data/stk_callback_insufficient_funds.json"),
            StkOutcome::InsufficientFunds,
            "1",
        ),
    ];
    for (body, outcome, code) in cases {
        let cb = parse_stk_callback(body).unwrap();
        assert_eq!(cb.outcome, outcome);
        assert_eq!(cb.result_code.as_str(), code);
        assert!(cb.metadata.is_empty());
    }
}

#[test]
fn stk_quirks_text_codes_wrong_pin_string_codes_and_a_single_item() {
    let body = br#"{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"c",
        "ResultCode":"SFC_IC0003","ResultDesc":"The operator does not exist"}}}"#;
    let cb = parse_stk_callback(body).unwrap();
    assert!(
        matches!(&cb.outcome, StkOutcome::Other { code, description }
        if code.as_str() == "SFC_IC0003" && description == "The operator does not exist")
    );

    let body = br#"{"Body":{"stkCallback":{"CheckoutRequestID":"c","ResultCode":"2001"}}}"#;
    let cb = parse_stk_callback(body).unwrap();
    assert_eq!(cb.outcome, StkOutcome::WrongPin);
    assert_eq!(cb.merchant_request_id, "");

    let body = br#"{"Body":{"stkCallback":{"CheckoutRequestID":"c","ResultCode":0,
        "CallbackMetadata":{"Item":{"Name":"Amount","Value":"10.00"}}}}}"#;
    let cb = parse_stk_callback(body).unwrap();
    let StkOutcome::Paid(p) = cb.outcome else {
        panic!()
    };
    assert_eq!(p.amount, Some(kes(10)));
    assert_eq!(p.receipt, None);

    assert!(parse_stk_callback(b"{}").is_err());
    assert!(parse_stk_callback(b"not json").is_err());
}

#[test]
fn b2c_results_success_and_failure() {
    let r = parse_result(include_bytes!("../data/b2c_result_success.json")).unwrap();
    assert!(r.is_success() && r.is_final());
    assert_eq!(r.originator_conversation_id, "tnt01HX3K9Q-payout-000017");
    assert_eq!(r.conversation_id, "AG_20250115_2010a1b2c3d4e5f60017");
    assert_eq!(r.transaction_id.as_deref(), Some("TESTRCPT02"));
    let p = r.b2c_payment().unwrap();
    assert_eq!(p.receipt.as_deref(), Some("TESTRCPT02"));
    assert_eq!(p.amount, Some(kes(2500)));
    assert_eq!(
        p.receiver_public_name.as_deref(),
        Some("254708374149 - TEST PAYER")
    );
    assert_eq!(p.completed_at, Some(eat(2025, 1, 15, 17, 1, 12)));
    assert_eq!(p.recipient_is_registered, Some(true));
    assert_eq!(
        p.utility_account_funds,
        Some(Money::from_minor(15_234_050, Currency::Kes))
    );
    assert_eq!(p.working_account_funds, Some(kes(90_000)));
    assert_eq!(p.charges_paid_account_funds, Some(kes(-330)));
    assert_eq!(r.reference_data.len(), 1);

    let r = parse_result(include_bytes!("../data/b2c_result_failure.json")).unwrap();
    assert!(!r.is_success());
    assert_eq!(r.result_code.as_str(), "2001");
    assert_eq!(r.result_desc, "The initiator information is invalid.");
    assert!(r.parameters.is_empty());
    assert_eq!(r.b2c_payment(), None);
}

#[test]
fn account_balance_with_string_codes_and_pipe_format() {
    let r = parse_result(include_bytes!("../data/account_balance_result.json")).unwrap();
    assert_eq!(r.result_type.as_deref(), Some("0"));
    assert!(r.is_success());
    let accounts = r.account_balances();
    assert_eq!(accounts.len(), 5);
    assert_eq!(accounts[0].name, "Working Account");
    assert_eq!(accounts[0].currency, "KES");
    assert_eq!(accounts[0].available, Some(kes(90_000)));
    assert_eq!(accounts[2].name, "Utility Account");
    assert_eq!(
        accounts[2].available,
        Some(Money::from_minor(15_234_050, Currency::Kes))
    );
    assert_eq!(accounts[3].available, Some(kes(-330)));
    assert_eq!(accounts[4].amounts.len(), 4);
    assert_eq!(r.completed_at(), Some(eat(2025, 1, 15, 18, 0, 3)));
    // ReferenceItem was a single object.
    assert_eq!(r.reference_data[0].key, "QueueTimeoutURL");
}

#[test]
fn transaction_status_keeps_items_without_value_and_repeated_keys() {
    let r = parse_result(include_bytes!("../data/transaction_status_result.json")).unwrap();
    assert_eq!(r.parameters.len(), 13);
    assert_eq!(r.parameter_text("ReceiptNo").as_deref(), Some("TESTRCPT02"));
    assert_eq!(
        r.parameter_text("TransactionStatus").as_deref(),
        Some("Completed")
    );
    assert_eq!(r.parameter("TransactionReason").unwrap().value, None);
    assert_eq!(r.amount(), Some(kes(2500)));
    assert_eq!(r.completed_at(), Some(eat(2025, 1, 15, 17, 1, 12)));
    assert_eq!(r.reference_data[0].key, "Occasion");
    assert_eq!(r.reference_data[0].value, None);
}

#[test]
fn reversal_success_and_text_code_failure() {
    let r = parse_result(include_bytes!("../data/reversal_result.json")).unwrap();
    assert!(r.is_success());
    assert_eq!(r.amount(), Some(kes(1500)));
    assert_eq!(
        r.parameter_text("OriginalTransactionID").as_deref(),
        Some("TESTRCPT01")
    );
    assert_eq!(r.completed_at(), Some(eat(2025, 1, 16, 9, 15, 22)));
    assert_eq!(r.account_balances()[0].available, Some(kes(46_750)));

    let r = parse_result(include_bytes!("../data/reversal_result_failure.json")).unwrap();
    assert_eq!(r.result_code.as_str(), "R000002");
    assert!(!r.is_success());
}

#[test]
fn result_quirks_single_parameter_object_and_list_reference_items() {
    let body = br#"{"Result":{"ResultType":"1","ResultCode":"0","ConversationID":"AG_1",
        "ResultParameters":{"ResultParameter":{"Key":"AccountBalance","Value":"Working Account|KES|1.00|1.00|0.00|0.00"}},
        "ReferenceData":{"ReferenceItem":[{"Key":"A","Value":1},{"Key":"B"}]}}}"#;
    let r = parse_result(body).unwrap();
    assert!(!r.is_final());
    assert_eq!(r.account_balances()[0].available, Some(kes(1)));
    assert_eq!(r.reference_data.len(), 2);
    assert!(parse_result(br#"{"Result":{"ResultCode":0}}"#).is_err());
}

#[test]
fn c2b_validation_and_confirmations_v1_and_v2() {
    let v = parse_c2b(include_bytes!("../data/c2b_validation.json")).unwrap();
    assert_eq!(v.trans_id, "TESTC2B001");
    assert_eq!(v.transaction_type, "Pay Bill");
    assert_eq!(v.amount, Some(kes(1500)));
    assert_eq!(v.msisdn, "2547 ***** 149");
    assert_eq!(v.org_account_balance, "");
    assert_eq!(v.trans_time, Some(eat(2025, 1, 15, 16, 5, 12)));

    let c = parse_c2b(include_bytes!("../data/c2b_confirmation.json")).unwrap();
    assert_eq!(c.third_party_trans_id, "tnt01HX3K9Q-inv42");
    assert_eq!(c.bill_ref_number, "INV-000042");
    assert_eq!(c.org_account_balance, "48250.00");
    assert_eq!(
        (c.first_name.as_str(), c.last_name.as_str()),
        ("TEST", "PAYER")
    );

    let h = parse_c2b(include_bytes!(
        "../data/c2b_confirmation_v1_hashed_msisdn.json"
    ))
    .unwrap();
    assert_eq!(h.transaction_type, "Buy Goods");
    assert_eq!(h.amount, Some(kes(750)));
    assert_eq!(h.msisdn.len(), 64);
    assert_eq!(h.bill_ref_number, "");

    assert!(parse_c2b(br#"{"TransAmount":"10"}"#).is_err());
}

fn same_json(a: &str, b: &str) {
    let a: serde_json::Value = serde_json::from_str(a).unwrap();
    let b: serde_json::Value = serde_json::from_str(b).unwrap();
    assert_eq!(a, b);
}

#[test]
fn acknowledgement_bodies_match_the_fixtures() {
    same_json(
        &C2bValidationReply::Accept {
            third_party_trans_id: Some("tnt01HX3K9Q-inv42".into()),
        }
        .to_json(),
        include_str!("../data/c2b_validation_accept_response.json"),
    );
    same_json(
        &C2bValidationReply::Reject(C2bRejection::InvalidAccountNumber).to_json(),
        include_str!("../data/c2b_validation_reject_response.json"),
    );
    same_json(
        C2B_CONFIRMATION_ACK,
        include_str!("../data/c2b_confirmation_ack.json"),
    );
}

#[test]
fn the_balance_string_parser_survives_odd_input() {
    assert!(parse_account_balances("").is_empty());
    let a = parse_account_balances("Odd|XYZ|abc&&Only name");
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].available, None);
    assert_eq!(a[1].name, "Only name");
}
