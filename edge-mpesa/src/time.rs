//! Daraja time: `YYYYMMDDHHmmss` in East Africa Time (UTC+3, no daylight saving).

use base64::Engine as _;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// East Africa Time, UTC+3.
pub const EAT: FixedOffset = match FixedOffset::east_opt(3 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+3 is a valid offset"),
};

/// East Africa Time, UTC+3.
pub fn eat() -> FixedOffset {
    EAT
}

/// A Daraja request timestamp: 14 digits, East Africa Time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timestamp(String);

impl Timestamp {
    /// The timestamp for `instant`, converted to East Africa Time.
    pub fn at(instant: DateTime<Utc>) -> Self {
        Self(
            instant
                .with_timezone(&eat())
                .format("%Y%m%d%H%M%S")
                .to_string(),
        )
    }

    /// Reads 14 digits (`YYYYMMDDHHmmss`) back, e.g. to check a password server-side.
    pub fn from_digits(digits: &str) -> Option<Self> {
        NaiveDateTime::parse_from_str(digits, "%Y%m%d%H%M%S").ok()?;
        (digits.len() == 14).then(|| Self(digits.to_owned()))
    }

    /// The 14 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The STK `Password`: `base64(shortcode + passkey + timestamp)`, standard alphabet with
/// padding. Use the same [`Timestamp`] for the `Timestamp` field.
pub fn stk_password(shortcode: &str, passkey: &str, timestamp: &Timestamp) -> String {
    let mut raw = String::with_capacity(shortcode.len() + passkey.len() + 14);
    raw.push_str(shortcode);
    raw.push_str(passkey);
    raw.push_str(timestamp.as_str());
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// Parses Daraja's local-time formats (`YYYYMMDDHHmmss`, `DD.MM.YYYY HH:mm:ss`,
/// `yyyy-MM-dd H:mm:ss`) as East Africa Time.
pub fn parse_daraja_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let naive = NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%d.%m.%Y %H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y%m%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    eat()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_is_eat() {
        let t = Utc.with_ymd_and_hms(2025, 1, 15, 11, 30, 0).unwrap();
        assert_eq!(Timestamp::at(t).as_str(), "20250115143000");
        // Crossing midnight in EAT while still the previous day in UTC.
        let t = Utc.with_ymd_and_hms(2025, 1, 15, 22, 0, 1).unwrap();
        assert_eq!(Timestamp::at(t).as_str(), "20250116010001");
    }

    #[test]
    fn password_matches_the_sandbox_fixture() {
        let ts = Timestamp("20250115143000".into());
        assert_eq!(
            stk_password(
                "174379",
                "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
                &ts
            ),
            "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQyYzkxOTIwMjUwMTE1MTQzMDAw"
        );
    }

    #[test]
    fn parses_every_daraja_time_shape() {
        let expected = Utc.with_ymd_and_hms(2025, 1, 15, 14, 1, 12).unwrap();
        assert_eq!(parse_daraja_time("20250115170112"), Some(expected));
        assert_eq!(parse_daraja_time("15.01.2025 17:01:12"), Some(expected));
        assert_eq!(parse_daraja_time("2025-01-15 17:01:12"), Some(expected));
        assert!(parse_daraja_time("20250115").is_some());
        assert_eq!(parse_daraja_time("not a time"), None);
        assert_eq!(parse_daraja_time("20251315170112"), None);
    }
}
