use edge_core::{Currency, Money, MoneyError};
use proptest::prelude::*;

fn currency() -> impl Strategy<Value = Currency> {
    prop::sample::select(Currency::ALL.to_vec())
}

proptest! {
    #[test]
    fn decimal_strings_round_trip_exactly(minor in any::<i64>(), currency in currency()) {
        let money = Money::from_minor(minor, currency);
        let text = money.to_decimal_string();
        prop_assert_eq!(Money::parse(&text, currency).unwrap(), money);
        let json = serde_json::to_string(&money).unwrap();
        prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
    }

    #[test]
    fn addition_is_checked_and_matches_wide_arithmetic(a in any::<i64>(), b in any::<i64>()) {
        let x = Money::from_minor(a, Currency::Kes);
        let y = Money::from_minor(b, Currency::Kes);
        let wide = i128::from(a) + i128::from(b);
        match x.checked_add(y) {
            Ok(sum) => prop_assert_eq!(i128::from(sum.minor()), wide),
            Err(e) => {
                prop_assert_eq!(e, MoneyError::Overflow);
                prop_assert!(wide > i128::from(i64::MAX) || wide < i128::from(i64::MIN));
            }
        }
        let diff = i128::from(a) - i128::from(b);
        match x.checked_sub(y) {
            Ok(d) => prop_assert_eq!(i128::from(d.minor()), diff),
            Err(e) => {
                prop_assert_eq!(e, MoneyError::Overflow);
                prop_assert!(diff > i128::from(i64::MAX) || diff < i128::from(i64::MIN));
            }
        }
    }

    #[test]
    fn sums_of_parts_equal_the_whole(parts in prop::collection::vec(-1_000_000_000i64..1_000_000_000, 0..50)) {
        let total: i64 = parts.iter().sum();
        let sum = Money::checked_sum(
            Currency::Kes,
            parts.iter().map(|&p| Money::from_minor(p, Currency::Kes)),
        ).unwrap();
        prop_assert_eq!(sum.minor(), total);
        prop_assert_eq!(sum.checked_sub(sum).unwrap(), Money::zero(Currency::Kes));
    }

    #[test]
    fn different_currencies_never_mix(a in any::<i64>(), b in any::<i64>(), c1 in currency(), c2 in currency()) {
        prop_assume!(c1 != c2);
        let err = Money::from_minor(a, c1).checked_add(Money::from_minor(b, c2)).unwrap_err();
        prop_assert_eq!(err, MoneyError::CurrencyMismatch { left: c1, right: c2 });
    }

    #[test]
    fn arbitrary_text_never_panics(input in ".{0,40}", currency in currency()) {
        if let Ok(m) = Money::parse(&input, currency) {
            prop_assert_eq!(m.currency(), currency);
        }
    }

    #[test]
    fn whole_shillings_parse_with_and_without_cents(major in 0i64..1_000_000_000) {
        let a = Money::parse(&major.to_string(), Currency::Kes).unwrap();
        let b = Money::parse(&format!("{major}.00"), Currency::Kes).unwrap();
        prop_assert_eq!(a, b);
        prop_assert_eq!(a.whole_major(), Some(major));
    }
}
