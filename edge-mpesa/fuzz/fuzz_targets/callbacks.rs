//! Feeds arbitrary bytes to every callback and response parser of edge-mpesa.
#![no_main]

use edge_mpesa::{
    Error, StkQueryOutcome, TokenResponse, parse_c2b, parse_result, parse_stk_callback,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(callback) = parse_stk_callback(data) {
        let _ = callback.outcome.is_paid();
    }
    if let Ok(result) = parse_result(data) {
        let _ = result.b2c_payment();
        let _ = result.account_balances();
        let _ = result.amount();
        let _ = result.completed_at();
        let _ = result.is_final();
    }
    let _ = parse_c2b(data);
    let _ = StkQueryOutcome::from_http(200, data);
    let _ = StkQueryOutcome::from_http(500, data);
    let _ = TokenResponse::from_http(200, data);
    let _ = Error::from_response(400, data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = edge_mpesa::callbacks::parse_account_balances(text);
        let _ = edge_mpesa::time::parse_daraja_time(text);
    }
});
