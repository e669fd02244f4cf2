//! East-African mobile numbers.
//!
//! People type the same number many ways: `0712 345 678`, `712-345-678`, `+254712345678`,
//! `254712345678`, `00254712345678`. [`Msisdn::parse`] accepts all of them and stores the
//! number once, in E.164 (`+254712345678`). Daraja wants the digits without `+`
//! ([`Msisdn::daraja`]) and so does the WhatsApp Cloud API ([`Msisdn::whatsapp`]).
//!
//! National forms (`07…`, `01…`, or the nine-digit number alone) need a default country;
//! international forms carry their own. Kenya (254), Uganda (256), Tanzania (255) and
//! Rwanda (250) are supported. Only mobile ranges are accepted: a landline cannot receive
//! an STK push or a WhatsApp message.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A country whose mobile numbers Edge understands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Country {
    /// Kenya, `+254`.
    #[serde(rename = "KE")]
    Kenya,
    /// Uganda, `+256`.
    #[serde(rename = "UG")]
    Uganda,
    /// Tanzania, `+255`.
    #[serde(rename = "TZ")]
    Tanzania,
    /// Rwanda, `+250`.
    #[serde(rename = "RW")]
    Rwanda,
}

impl Country {
    /// Every supported country.
    pub const ALL: [Country; 4] = [
        Country::Kenya,
        Country::Uganda,
        Country::Tanzania,
        Country::Rwanda,
    ];

    /// The international calling code, without `+`.
    pub const fn calling_code(self) -> &'static str {
        match self {
            Country::Kenya => "254",
            Country::Uganda => "256",
            Country::Tanzania => "255",
            Country::Rwanda => "250",
        }
    }

    /// The ISO 3166-1 alpha-2 code.
    pub const fn iso_code(self) -> &'static str {
        match self {
            Country::Kenya => "KE",
            Country::Uganda => "UG",
            Country::Tanzania => "TZ",
            Country::Rwanda => "RW",
        }
    }

    /// Digits a mobile national significant number may start with.
    ///
    /// Kenya: `7…` and the newer `1…` (Safaricom 0110–0115, Airtel 0100–0102, …).
    /// Uganda: `7…`. Tanzania: `6…` and `7…`. Rwanda: `7…`.
    const fn mobile_prefixes(self) -> &'static [u8] {
        match self {
            Country::Kenya => b"71",
            Country::Uganda | Country::Rwanda => b"7",
            Country::Tanzania => b"67",
        }
    }

    fn from_calling_code(digits: &str) -> Option<Country> {
        Country::ALL
            .into_iter()
            .find(|c| digits.starts_with(c.calling_code()))
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.iso_code())
    }
}

/// Why a string is not a mobile number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid phone number {input:?}: {reason}")]
pub struct MsisdnError {
    input: String,
    reason: &'static str,
}

impl MsisdnError {
    fn new(input: &str, reason: &'static str) -> Self {
        // Bound what we echo back: the input may be arbitrary user data.
        Self {
            input: input.chars().take(40).collect(),
            reason,
        }
    }

    /// The input that was rejected (at most 40 characters of it).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Why it was rejected, in words.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// The length of a national significant number in every supported country.
const NATIONAL_LEN: usize = 9;

/// A mobile number in E.164 form.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Msisdn {
    /// Always `+` followed by 12 digits.
    e164: String,
    country: Country,
}

impl Msisdn {
    /// Parses a number typed by a person, using `default_country` for national forms.
    ///
    /// Spaces, dashes, dots and parentheses are ignored. Accepted forms: `+CCC…`,
    /// `00CCC…`, `CCC…` (12 digits), `0…` (10 digits) and the nine-digit national number.
    pub fn parse(input: &str, default_country: Country) -> Result<Self, MsisdnError> {
        Self::parse_inner(input, Some(default_country))
    }

    /// Parses a number in international form only (`+254…`, `00254…` or `254…`).
    pub fn parse_international(input: &str) -> Result<Self, MsisdnError> {
        Self::parse_inner(input, None)
    }

    /// `default_country: None` refuses national forms.
    fn parse_inner(input: &str, default_country: Option<Country>) -> Result<Self, MsisdnError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(MsisdnError::new(input, "it is empty"));
        }
        let (has_plus, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
                '+' => return Err(MsisdnError::new(input, "'+' may only appear first")),
                _ => {
                    return Err(MsisdnError::new(
                        input,
                        "it may contain only digits, spaces, dashes and a leading '+'",
                    ));
                }
            }
        }
        if digits.is_empty() {
            return Err(MsisdnError::new(input, "it has no digits"));
        }

        let international = if has_plus {
            Some(digits.as_str())
        } else if let Some(after) = digits.strip_prefix("00") {
            Some(after)
        } else if digits.len() == 3 + NATIONAL_LEN && !digits.starts_with('0') {
            Some(digits.as_str())
        } else {
            None
        };

        let (country, national) = match international {
            Some(number) => {
                let country = Country::from_calling_code(number).ok_or_else(|| {
                    MsisdnError::new(
                        input,
                        "the country code is not one of 254 (Kenya), 256 (Uganda), 255 (Tanzania) or 250 (Rwanda)",
                    )
                })?;
                (country, &number[3..])
            }
            None => {
                let default_country = default_country.ok_or_else(|| {
                    MsisdnError::new(
                        input,
                        "it must be in international form, with the country code",
                    )
                })?;
                let national = match digits.len() {
                    10 => digits.strip_prefix('0').ok_or_else(|| {
                        MsisdnError::new(input, "a 10-digit national number must start with 0")
                    })?,
                    NATIONAL_LEN => digits.as_str(),
                    _ => {
                        return Err(MsisdnError::new(
                            input,
                            "it has the wrong number of digits for a mobile number",
                        ));
                    }
                };
                (default_country, national)
            }
        };

        if national.len() != NATIONAL_LEN {
            return Err(MsisdnError::new(
                input,
                "it has the wrong number of digits for a mobile number",
            ));
        }
        let first = national.as_bytes()[0];
        if !country.mobile_prefixes().contains(&first) {
            return Err(MsisdnError::new(input, "it is not a mobile number"));
        }

        Ok(Self {
            e164: format!("+{}{}", country.calling_code(), national),
            country,
        })
    }

    /// E.164 with the leading `+`, e.g. `+254712345678`.
    pub fn as_e164(&self) -> &str {
        &self.e164
    }

    /// The form Daraja expects: 12 digits, no `+` (e.g. `254712345678`).
    pub fn daraja(&self) -> &str {
        &self.e164[1..]
    }

    /// The form the WhatsApp Cloud API uses for `to` and `wa_id`: digits, no `+`.
    pub fn whatsapp(&self) -> &str {
        &self.e164[1..]
    }

    /// The Daraja form as a number, for the fields Daraja types as integers.
    pub fn daraja_number(&self) -> u64 {
        // Twelve ASCII digits always fit in a u64; `parse` guarantees the shape.
        self.daraja()
            .bytes()
            .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'))
    }

    /// The country the number belongs to.
    pub fn country(&self) -> Country {
        self.country
    }

    /// The nine-digit national significant number (without trunk `0`).
    pub fn national_number(&self) -> &str {
        &self.e164[4..]
    }

    /// The national form with trunk `0`, as people in the country write it (`0712345678`).
    pub fn national_display(&self) -> String {
        format!("0{}", self.national_number())
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

impl fmt::Debug for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn({})", self.e164)
    }
}

/// Parses with Kenya as the default country for national forms.
///
/// Use [`Msisdn::parse`] to choose another default (for example an organization's country).
impl FromStr for Msisdn {
    type Err = MsisdnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s, Country::Kenya)
    }
}

impl Serialize for Msisdn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.e164)
    }
}

/// Deserializes any accepted form, with Kenya as the default country (see [`FromStr`]).
impl<'de> Deserialize<'de> for Msisdn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_ways_kenyans_type_numbers() {
        for input in [
            "0712345678",
            "712345678",
            "+254712345678",
            "254712345678",
            "00254712345678",
            "0712 345 678",
            "0712-345-678",
            "+254 712 345 678",
            "(0712) 345.678",
            "  0712345678  ",
        ] {
            let m = Msisdn::parse(input, Country::Kenya).unwrap();
            assert_eq!(m.as_e164(), "+254712345678", "{input}");
            assert_eq!(m.daraja(), "254712345678");
            assert_eq!(m.whatsapp(), "254712345678");
            assert_eq!(m.daraja_number(), 254_712_345_678);
            assert_eq!(m.country(), Country::Kenya);
            assert_eq!(m.national_display(), "0712345678");
        }
    }

    #[test]
    fn accepts_the_newer_kenyan_01_range() {
        let m: Msisdn = "0112345678".parse().unwrap();
        assert_eq!(m.as_e164(), "+254112345678");
    }

    #[test]
    fn accepts_neighbours_in_international_form() {
        let cases = [
            ("+256772123456", Country::Uganda, "+256772123456"),
            ("256772123456", Country::Uganda, "+256772123456"),
            ("+255754123456", Country::Tanzania, "+255754123456"),
            ("255654123456", Country::Tanzania, "+255654123456"),
            ("+250788123456", Country::Rwanda, "+250788123456"),
        ];
        for (input, country, e164) in cases {
            let m = Msisdn::parse(input, Country::Kenya).unwrap();
            assert_eq!(m.country(), country, "{input}");
            assert_eq!(m.as_e164(), e164);
        }
    }

    #[test]
    fn national_forms_use_the_default_country() {
        let m = Msisdn::parse("0772123456", Country::Uganda).unwrap();
        assert_eq!(m.as_e164(), "+256772123456");
        let m = Msisdn::parse("788123456", Country::Rwanda).unwrap();
        assert_eq!(m.as_e164(), "+250788123456");
    }

    #[test]
    fn rejections_name_the_input_and_the_reason() {
        let cases = [
            ("", "empty"),
            ("abc", "only digits"),
            ("07123456", "wrong number of digits"),
            ("07123456789", "wrong number of digits"),
            ("7712345678", "10-digit national number must start"),
            ("+1 415 555 0100", "country code"),
            ("+44712345678", "country code"),
            ("0212345678", "not a mobile number"),
            ("254212345678", "not a mobile number"),
            ("+2547123456789", "wrong number of digits"),
            ("07+12345678", "'+' may only appear first"),
        ];
        for (input, reason) in cases {
            let err = Msisdn::parse(input, Country::Kenya).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(reason), "{input}: {message}");
            assert!(message.contains(&format!("{:?}", err.input())), "{message}");
        }
    }

    #[test]
    fn parse_international_refuses_national_forms() {
        assert!(Msisdn::parse_international("+254712345678").is_ok());
        assert!(Msisdn::parse_international("254712345678").is_ok());
        assert!(Msisdn::parse_international("0712345678").is_err());
        assert!(Msisdn::parse_international("712345678").is_err());
    }

    #[test]
    fn serde_uses_e164_and_accepts_any_form() {
        let m: Msisdn = serde_json::from_str("\"0712 345 678\"").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"+254712345678\"");
        assert!(serde_json::from_str::<Msisdn>("\"12\"").is_err());
    }
}
