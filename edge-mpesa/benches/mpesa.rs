//! Request building and callback parsing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use edge_core::{Currency, IdempotencyKey, Money, Msisdn};
use edge_mpesa::{
    B2cCommand, B2cPayment, Credentials, StkPush, parse_c2b, parse_result, parse_stk_callback,
};
use secrecy::SecretString;

const CB: &str = "https://billing.example.com/cb/tnt_01HX3K9Q/7f3c2a9e5b1d4c8fa6e0b2d9c4a7e1f3";

fn requests(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2025, 1, 15, 11, 30, 0).unwrap();
    let creds = Credentials::new("key", SecretString::from("secret"))
        .shortcode("174379")
        .passkey(SecretString::from(
            "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
        ))
        .initiator("testapi", SecretString::from("c2VjdXJpdHk="));
    let phone: Msisdn = "0708374149".parse().unwrap();
    let amount = Money::from_major(1500, Currency::Kes).unwrap();
    let push = StkPush::new(phone.clone(), amount, "INV-000042", format!("{CB}/stk"))
        .description("Plan renewal");
    c.bench_function(
        "build/stk_push (validate + timestamp + password + JSON)",
        |b| b.iter(|| black_box(&push).to_json(black_box(&creds), now).unwrap()),
    );
    let b2c = B2cPayment::new(
        IdempotencyKey::new("tnt01HX3K9Q-payout-000017").unwrap(),
        B2cCommand::BusinessPayment,
        amount,
        phone,
        "Refund INV-000041",
        format!("{CB}/b2c/result"),
        format!("{CB}/b2c/timeout"),
    )
    .occasion("Refund");
    c.bench_function("build/b2c_payment", |b| {
        b.iter(|| black_box(&b2c).to_json(black_box(&creds)).unwrap())
    });
}

fn callbacks(c: &mut Criterion) {
    let stk = include_bytes!("../tests/data/stk_callback_success.json");
    let b2c = include_bytes!("../tests/data/b2c_result_success.json");
    let status = include_bytes!("../tests/data/transaction_status_result.json");
    let c2b = include_bytes!("../tests/data/c2b_confirmation.json");
    c.bench_function("parse/stk_callback_success", |b| {
        b.iter(|| parse_stk_callback(black_box(stk)).unwrap())
    });
    c.bench_function("parse/b2c_result_success + b2c_payment()", |b| {
        b.iter(|| parse_result(black_box(b2c)).unwrap().b2c_payment())
    });
    c.bench_function("parse/transaction_status_result", |b| {
        b.iter(|| parse_result(black_box(status)).unwrap())
    });
    c.bench_function("parse/c2b_confirmation", |b| {
        b.iter(|| parse_c2b(black_box(c2b)).unwrap())
    });
}

criterion_group!(benches, requests, callbacks);
criterion_main!(benches);
