use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use edge_core::{Currency, FixedClock, Money, Msisdn};
use edge_mpesa::fake::FakeDaraja;
use edge_mpesa::{Credentials, DarajaClient};
use secrecy::SecretString;

pub const SANDBOX_PASSKEY: &str =
    "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";
pub const SECURITY_CREDENTIAL: &str = "Tk9ULUEtUkVBTC1TRUNVUklUWS1DUkVERU5USUFMLU5PVC1BLVJFQUwtU0VDVVJJVFktQ1JFREVOVElBTC1OT1QtQS1SRUFMLVNFQ1VSSVRZLUNSRURFTlRJQUwtTk9ULUEtUkVBTC1TRUNVUklUWS1DUkVERU5USUFMLU5PVC1BLVJFQUwtU0VDVVJJVFktQ1JFREVOVElBTC1OT1QtQS1SRUFMLVNFQ1VSSVRZLUNSRURFTlRJQUwtTk9ULUEtUkVBTC1TRUNVUklUWS1DUkVERU5USUFMLU5PVC1BLVJFQUwtU0VDVVJJVFktQ1JFREVOVElBTC1OT1QtQS1SRQ==";
pub const CB: &str = "https://billing.example.com/cb/tnt_01HX3K9Q/7f3c2a9e5b1d4c8fa6e0b2d9c4a7e1f3";

pub fn kes(whole: i64) -> Money {
    Money::from_major(whole, Currency::Kes).unwrap()
}

pub fn phone(text: &str) -> Msisdn {
    text.parse().unwrap()
}

/// 2025-01-15 14:30:00 EAT.
pub fn fixture_clock() -> FixedClock {
    FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 11, 30, 0).unwrap())
}

pub fn sandbox_credentials() -> Credentials {
    Credentials::new("sandbox-key", SecretString::from("sandbox-secret"))
        .shortcode("174379")
        .passkey(SecretString::from(SANDBOX_PASSKEY))
}

pub fn initiator_credentials(shortcode: &str) -> Credentials {
    Credentials::new("b2c-key", SecretString::from("b2c-secret"))
        .shortcode(shortcode)
        .initiator("testapi", SecretString::from(SECURITY_CREDENTIAL))
}

pub fn client_for(fake: &FakeDaraja, clock: Option<FixedClock>) -> DarajaClient {
    let mut builder = DarajaClient::builder(fake.environment())
        .allow_http_callbacks(true)
        .timeout(Duration::from_secs(30));
    if let Some(clock) = clock {
        builder = builder.clock(Arc::new(clock));
    }
    builder.build().unwrap()
}

pub async fn fake() -> FakeDaraja {
    let fake = FakeDaraja::start().await.unwrap();
    fake.merchant("174379", SANDBOX_PASSKEY);
    fake.callback_delay(Duration::from_millis(20));
    fake
}
