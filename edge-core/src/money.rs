//! Money as integer minor units.
//!
//! An amount is an `i64` count of the currency's minor unit (cents for KES, whole
//! shillings for UGX) together with its [`Currency`]. Arithmetic is checked: overflow and
//! mixing currencies are errors, never wrap-arounds or silent conversions. Decimal strings
//! such as `"1500.00"` are parsed exactly; there are no floats anywhere in this module.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency that Edge handles.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Currency {
    /// Kenyan shilling (2 decimal places).
    #[serde(rename = "KES")]
    Kes,
    /// Ugandan shilling (no decimal places).
    #[serde(rename = "UGX")]
    Ugx,
    /// Tanzanian shilling (2 decimal places).
    #[serde(rename = "TZS")]
    Tzs,
    /// Rwandan franc (no decimal places).
    #[serde(rename = "RWF")]
    Rwf,
    /// US dollar (2 decimal places).
    #[serde(rename = "USD")]
    Usd,
}

impl Currency {
    /// Every supported currency.
    pub const ALL: [Currency; 5] = [
        Currency::Kes,
        Currency::Ugx,
        Currency::Tzs,
        Currency::Rwf,
        Currency::Usd,
    ];

    /// The ISO 4217 code, e.g. `"KES"`.
    pub const fn code(self) -> &'static str {
        match self {
            Currency::Kes => "KES",
            Currency::Ugx => "UGX",
            Currency::Tzs => "TZS",
            Currency::Rwf => "RWF",
            Currency::Usd => "USD",
        }
    }

    /// The ISO 4217 minor-unit exponent: how many decimal places the currency has.
    pub const fn exponent(self) -> u32 {
        match self {
            Currency::Kes | Currency::Tzs | Currency::Usd => 2,
            Currency::Ugx | Currency::Rwf => 0,
        }
    }

    /// How many minor units make one major unit (100 for KES, 1 for UGX).
    pub const fn minor_per_major(self) -> i64 {
        10i64.pow(self.exponent())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    /// Parses an ISO code, case-insensitively (`"KES"`, `"kes"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| MoneyError::UnknownCurrency(s.chars().take(16).collect()))
    }
}

/// What can go wrong with money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// The result does not fit in 64 bits of minor units.
    #[error("amount overflow")]
    Overflow,
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch {
        /// The left operand's currency.
        left: Currency,
        /// The right operand's currency.
        right: Currency,
    },
    /// A decimal string could not be read as an amount.
    #[error("invalid amount {input:?} for {currency}: {reason}")]
    Parse {
        /// The rejected input (at most 40 characters of it).
        input: String,
        /// The currency it was parsed for.
        currency: Currency,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The currency code is not one Edge handles.
    #[error("unknown currency {0:?}: expected one of KES, UGX, TZS, RWF, USD")]
    UnknownCurrency(String),
}

/// An amount of money: integer minor units and a currency.
///
/// Serialized as `{"amount": "1500.00", "currency": "KES", "amount_minor": 150000}`;
/// deserialized from `amount` (a decimal string, exact) and `currency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// An amount of `minor` units (cents for KES).
    pub const fn from_minor(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Self::from_minor(0, currency)
    }

    /// A whole number of major units (shillings), checked for overflow.
    pub fn from_major(major: i64, currency: Currency) -> Result<Self, MoneyError> {
        major
            .checked_mul(currency.minor_per_major())
            .map(|minor| Self::from_minor(minor, currency))
            .ok_or(MoneyError::Overflow)
    }

    /// Parses a decimal string exactly: `"1500"`, `"1500.5"`, `"1500.00"`, `"-20.00"`.
    ///
    /// At most the currency's number of decimal places, except that extra trailing zeros
    /// are accepted (`"100.000"` is 100 KES; `"100.00"` is 100 UGX). No thousands
    /// separators, exponents or signs other than a leading `-`.
    pub fn parse(input: &str, currency: Currency) -> Result<Self, MoneyError> {
        let fail = |reason| MoneyError::Parse {
            input: input.chars().take(40).collect(),
            currency,
            reason,
        };
        let text = input.trim();
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (unsigned, None),
        };
        if whole.is_empty() {
            return Err(fail("it needs digits before the decimal point"));
        }
        if !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(
                "it may contain only digits, one '.' and a leading '-'",
            ));
        }
        let fraction = fraction.unwrap_or("");
        if unsigned.contains('.') && fraction.is_empty() {
            return Err(fail("it needs digits after the decimal point"));
        }
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(
                "it may contain only digits, one '.' and a leading '-'",
            ));
        }
        let places = currency.exponent() as usize;
        let (kept, extra) = fraction.split_at(fraction.len().min(places));
        if extra.bytes().any(|b| b != b'0') {
            return Err(fail(if places == 0 {
                "this currency has no decimal places"
            } else {
                "it has more decimal places than the currency allows"
            }));
        }

        let mut minor: i64 = 0;
        for digit in whole.bytes().chain(kept.bytes()) {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(digit - b'0')))
                .ok_or_else(|| fail("it is too large"))?;
        }
        for _ in kept.len()..places {
            minor = minor
                .checked_mul(10)
                .ok_or_else(|| fail("it is too large"))?;
        }
        if negative {
            minor = -minor;
        }
        Ok(Self::from_minor(minor, currency))
    }

    /// The amount in minor units.
    pub const fn minor(&self) -> i64 {
        self.minor
    }

    /// The currency.
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// True if the amount is greater than zero.
    pub const fn is_positive(&self) -> bool {
        self.minor > 0
    }

    /// True if the amount is zero.
    pub const fn is_zero(&self) -> bool {
        self.minor == 0
    }

    /// True if the amount is below zero.
    pub const fn is_negative(&self) -> bool {
        self.minor < 0
    }

    /// The whole major units if the amount has no fractional part (for Daraja, which
    /// takes whole shillings), otherwise `None`.
    pub fn whole_major(&self) -> Option<i64> {
        let per = self.currency.minor_per_major();
        (self.minor % per == 0).then_some(self.minor / per)
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// `self + other`, or an error on overflow or mixed currencies.
    pub fn checked_add(&self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        self.minor
            .checked_add(other.minor)
            .map(|minor| Money::from_minor(minor, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `self - other`, or an error on overflow or mixed currencies.
    pub fn checked_sub(&self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        self.minor
            .checked_sub(other.minor)
            .map(|minor| Money::from_minor(minor, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `self × factor` (a count, such as a number of messages), checked for overflow.
    pub fn checked_mul(&self, factor: i64) -> Result<Money, MoneyError> {
        self.minor
            .checked_mul(factor)
            .map(|minor| Money::from_minor(minor, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `-self`, checked for overflow.
    pub fn checked_neg(&self) -> Result<Money, MoneyError> {
        self.minor
            .checked_neg()
            .map(|minor| Money::from_minor(minor, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// Compares two amounts of the same currency.
    pub fn checked_cmp(&self, other: &Money) -> Result<std::cmp::Ordering, MoneyError> {
        self.same_currency(other)?;
        Ok(self.minor.cmp(&other.minor))
    }

    /// Sums amounts that must all be in `currency`.
    pub fn checked_sum<I>(currency: Currency, amounts: I) -> Result<Money, MoneyError>
    where
        I: IntoIterator<Item = Money>,
    {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), |acc, m| acc.checked_add(m))
    }

    /// The amount as an exact decimal string without the currency: `"1500.00"`.
    pub fn to_decimal_string(&self) -> String {
        let places = self.currency.exponent() as usize;
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if places == 0 {
            return format!("{sign}{abs}");
        }
        let per = 10u64.pow(places as u32);
        format!("{sign}{}.{:0places$}", abs / per, abs % per)
    }
}

impl fmt::Display for Money {
    /// `KES 1500.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency, self.to_decimal_string())
    }
}

#[derive(Serialize, Deserialize)]
struct MoneyRepr {
    amount: String,
    currency: Currency,
    #[serde(default, skip_deserializing)]
    amount_minor: i64,
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MoneyRepr {
            amount: self.to_decimal_string(),
            currency: self.currency,
            amount_minor: self.minor,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = MoneyRepr::deserialize(deserializer)?;
        Money::parse(&repr.amount, repr.currency).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kes(text: &str) -> Money {
        Money::parse(text, Currency::Kes).unwrap()
    }

    #[test]
    fn parses_decimal_strings_exactly() {
        assert_eq!(kes("1500.00").minor(), 150_000);
        assert_eq!(kes("1500").minor(), 150_000);
        assert_eq!(kes("1500.5").minor(), 150_050);
        assert_eq!(kes("0.01").minor(), 1);
        assert_eq!(kes("-20.25").minor(), -2_025);
        assert_eq!(kes("100.000").minor(), 10_000);
        assert_eq!(Money::parse("2500", Currency::Ugx).unwrap().minor(), 2_500);
        assert_eq!(
            Money::parse("2500.00", Currency::Ugx).unwrap().minor(),
            2_500
        );
    }

    #[test]
    fn rejects_what_is_not_an_exact_amount() {
        for (input, reason) in [
            ("", "digits before"),
            (".5", "digits before"),
            ("1.", "digits after"),
            ("1,500.00", "only digits"),
            ("1e3", "only digits"),
            ("12.345", "more decimal places"),
            ("+5", "only digits"),
            ("1.2.3", "only digits"),
            ("99999999999999999999", "too large"),
        ] {
            let err = Money::parse(input, Currency::Kes).unwrap_err();
            assert!(err.to_string().contains(reason), "{input}: {err}");
        }
        let err = Money::parse("10.50", Currency::Ugx).unwrap_err();
        assert!(err.to_string().contains("no decimal places"), "{err}");
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = kes("10.00");
        assert_eq!(a.checked_add(kes("0.50")).unwrap(), kes("10.50"));
        assert_eq!(a.checked_sub(kes("20.00")).unwrap(), kes("-10.00"));
        assert_eq!(a.checked_mul(3).unwrap(), kes("30.00"));
        let max = Money::from_minor(i64::MAX, Currency::Kes);
        assert_eq!(max.checked_add(kes("0.01")), Err(MoneyError::Overflow));
        assert_eq!(max.checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(
            Money::from_minor(i64::MIN, Currency::Kes).checked_neg(),
            Err(MoneyError::Overflow)
        );
        let ugx = Money::from_major(10, Currency::Ugx).unwrap();
        assert_eq!(
            a.checked_add(ugx),
            Err(MoneyError::CurrencyMismatch {
                left: Currency::Kes,
                right: Currency::Ugx
            })
        );
    }

    #[test]
    fn formats_with_the_currency_exponent() {
        assert_eq!(kes("1500").to_decimal_string(), "1500.00");
        assert_eq!(kes("-0.05").to_decimal_string(), "-0.05");
        assert_eq!(kes("-0.05").to_string(), "KES -0.05");
        assert_eq!(
            Money::from_minor(2500, Currency::Rwf).to_string(),
            "RWF 2500"
        );
        assert_eq!(
            Money::from_minor(i64::MIN, Currency::Kes).to_decimal_string(),
            "-92233720368547758.08"
        );
    }

    #[test]
    fn whole_major_is_only_for_whole_amounts() {
        assert_eq!(kes("150.00").whole_major(), Some(150));
        assert_eq!(kes("150.50").whole_major(), None);
    }

    #[test]
    fn json_carries_a_decimal_string_and_never_a_float() {
        let json = serde_json::to_value(kes("1500.00")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"amount": "1500.00", "currency": "KES", "amount_minor": 150000})
        );
        let back: Money =
            serde_json::from_value(serde_json::json!({"amount": "12.30", "currency": "KES"}))
                .unwrap();
        assert_eq!(back, kes("12.30"));
        assert!(
            serde_json::from_value::<Money>(serde_json::json!({"amount": 12.3, "currency": "KES"}))
                .is_err()
        );
    }

    #[test]
    fn currency_codes_parse_case_insensitively() {
        assert_eq!("kes".parse::<Currency>().unwrap(), Currency::Kes);
        assert!("EUR".parse::<Currency>().is_err());
    }
}
