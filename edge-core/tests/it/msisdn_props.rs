use edge_core::{Country, Msisdn};
use proptest::prelude::*;

fn country() -> impl Strategy<Value = Country> {
    prop::sample::select(Country::ALL.to_vec())
}

/// A nine-digit national number in a mobile range of `country`.
fn national(country: Country) -> impl Strategy<Value = String> {
    let first: &'static [char] = match country {
        Country::Kenya => &['7', '1'],
        Country::Tanzania => &['6', '7'],
        _ => &['7'],
    };
    (prop::sample::select(first), "[0-9]{8}").prop_map(|(f, rest)| format!("{f}{rest}"))
}

/// Inserts spaces and dashes between digits, the way people type.
fn decorate(digits: &str, seps: &[u8]) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        out.push(c);
        match seps.get(i).copied().unwrap_or(0) % 6 {
            0 => out.push(' '),
            1 => out.push('-'),
            _ => {}
        }
    }
    out
}

proptest! {
    #[test]
    fn every_typed_form_of_a_number_parses_to_the_same_e164(
        (country, national) in country().prop_flat_map(|c| (Just(c), national(c))),
        seps in prop::collection::vec(any::<u8>(), 0..14),
    ) {
        let code = country.calling_code();
        let expected = format!("+{code}{national}");
        let forms = [
            format!("+{code}{national}"),
            format!("{code}{national}"),
            format!("00{code}{national}"),
            format!("0{national}"),
            national.clone(),
            decorate(&format!("0{national}"), &seps),
            format!("+{}", decorate(&format!("{code}{national}"), &seps)),
        ];
        for form in forms {
            let parsed = Msisdn::parse(&form, country).unwrap();
            prop_assert_eq!(parsed.as_e164(), expected.as_str(), "{}", form);
            prop_assert_eq!(parsed.country(), country);
            prop_assert_eq!(parsed.daraja(), &expected[1..]);
            prop_assert_eq!(parsed.whatsapp(), &expected[1..]);
            prop_assert_eq!(parsed.national_number(), national.as_str());
        }
    }

    #[test]
    fn parsing_the_e164_form_is_a_fixed_point(
        (country, national) in country().prop_flat_map(|c| (Just(c), national(c))),
    ) {
        let first = Msisdn::parse(&national, country).unwrap();
        let again = Msisdn::parse_international(first.as_e164()).unwrap();
        prop_assert_eq!(&first, &again);
        let json = serde_json::to_string(&first).unwrap();
        prop_assert_eq!(serde_json::from_str::<Msisdn>(&json).unwrap(), first);
    }

    #[test]
    fn arbitrary_text_never_panics_and_errors_name_the_input(input in ".{0,30}") {
        match Msisdn::parse(&input, Country::Kenya) {
            Ok(m) => {
                prop_assert_eq!(m.as_e164().len(), 13);
                prop_assert!(m.as_e164()[1..].bytes().all(|b| b.is_ascii_digit()));
            }
            Err(e) => {
                prop_assert!(e.to_string().starts_with("invalid phone number"));
                prop_assert!(input.starts_with(e.input()));
            }
        }
    }

    #[test]
    fn wrong_lengths_are_refused(digits in "[0-9]{1,20}") {
        prop_assume!(!(9..=14).contains(&digits.len()));
        prop_assert!(Msisdn::parse(&digits, Country::Kenya).is_err());
    }
}
