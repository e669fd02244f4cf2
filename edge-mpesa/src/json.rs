//! Tolerant JSON access: case-insensitive keys, number-or-string values, one-or-many lists.

use serde_json::Value;

/// The member `name` of an object, matched exactly first and then ignoring ASCII case.
pub(crate) fn get<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The first of several spellings that is present and not null.
pub(crate) fn get_any<'a>(value: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| get(value, n).filter(|v| !v.is_null()))
}

/// A string, or a number rendered as Daraja wrote it (`1032`, `1500.5`), or a boolean.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(number_text(n)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number_text(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        // `f64`'s `Display` never uses an exponent and prints the shortest text that
        // reads back as the same value: `1500.0` prints `1500`, `152340.5` prints itself.
        n.as_f64().map(|f| f.to_string()).unwrap_or_default()
    }
}

/// A text field, or an empty string if absent.
pub(crate) fn text_or_empty(value: &Value, names: &[&str]) -> String {
    get_any(value, names).and_then(text).unwrap_or_default()
}

/// A text field, or `None` if absent or empty.
pub(crate) fn text_opt(value: &Value, names: &[&str]) -> Option<String> {
    get_any(value, names)
        .and_then(text)
        .filter(|s| !s.trim().is_empty())
}

/// A container that is usually an array but sometimes a single object.
pub(crate) fn one_or_many(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_strings_read_the_same() {
        assert_eq!(text(&json!(1032)).as_deref(), Some("1032"));
        assert_eq!(text(&json!("1032")).as_deref(), Some("1032"));
        assert_eq!(text(&json!(1500.00)).as_deref(), Some("1500"));
        assert_eq!(text(&json!(152340.50)).as_deref(), Some("152340.5"));
        assert_eq!(text(&json!(-330.00)).as_deref(), Some("-330"));
        assert_eq!(
            text(&json!(20250115143047u64)).as_deref(),
            Some("20250115143047")
        );
        assert_eq!(text(&json!(null)), None);
    }

    #[test]
    fn keys_match_ignoring_case() {
        let v = json!({"resultCode": 1, "ResultDesc": "x"});
        assert!(get(&v, "ResultCode").is_some());
        assert!(get(&v, "ResultDesc").is_some());
        assert!(get(&json!([1]), "x").is_none());
    }

    #[test]
    fn one_or_many_accepts_both() {
        assert_eq!(one_or_many(Some(&json!({"Key": "a"}))).len(), 1);
        assert_eq!(
            one_or_many(Some(&json!([{"Key": "a"}, {"Key": "b"}]))).len(),
            2
        );
        assert!(one_or_many(Some(&json!("x"))).is_empty());
        assert!(one_or_many(None).is_empty());
    }
}
