//! Reading a resource's properties (the JSON of `crate::kinds`) with clear errors, and writing
//! back what the cloud reports in the same shape.
//!
//! Properties come from lowering, so a missing or mistyped property is a bug in nimbus, not in
//! the user's manifest; it still becomes a [`DriverError`] naming the property, never a panic.

use std::collections::BTreeMap;

use nimbus_engine::DriverError;
use serde_json::{Map, Value};

/// A resource's properties with typed getters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Props<'a> {
    kind: &'a str,
    value: &'a Value,
}

impl<'a> Props<'a> {
    pub fn new(kind: &'a str, value: &'a Value) -> Self {
        Props { kind, value }
    }

    /// The kind these properties belong to.
    pub fn kind(&self) -> &'a str {
        self.kind
    }

    fn bad(&self, key: &str, expected: &str) -> DriverError {
        DriverError::permanent(format!(
            "internal: property `{key}` of a `{}` is missing or not {expected}",
            self.kind
        ))
    }

    /// The value under `key`, if present and not null.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.value.get(key).filter(|v| !v.is_null())
    }

    /// A nested object as props.
    pub fn object(&self, key: &str) -> Option<Props<'a>> {
        self.get(key)
            .filter(|v| v.is_object())
            .map(|v| Props::new(self.kind, v))
    }

    pub fn str(&self, key: &str) -> Result<&'a str, DriverError> {
        self.opt_str(key).ok_or_else(|| self.bad(key, "a string"))
    }

    pub fn opt_str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn i32(&self, key: &str) -> Result<i32, DriverError> {
        self.opt_i32(key)
            .ok_or_else(|| self.bad(key, "a 32-bit integer"))
    }

    pub fn opt_i32(&self, key: &str) -> Option<i32> {
        self.get(key)
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
    }

    pub fn opt_bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// A list of strings (absent = empty).
    pub fn strings(&self, key: &str) -> Result<Vec<String>, DriverError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| self.bad(key, "a list of strings")),
            Some(_) => Err(self.bad(key, "a list of strings")),
        }
    }

    /// A map of strings (absent = empty): tags as `{"k": "v"}`, environment variables,
    /// attribute maps.
    pub fn string_map(&self, key: &str) -> Result<BTreeMap<String, String>, DriverError> {
        match self.get(key) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect::<Option<_>>()
                .ok_or_else(|| self.bad(key, "a map of strings")),
            Some(_) => Err(self.bad(key, "a map of strings")),
        }
    }

    /// Tags given as `[{"Key", "Value"}]` (IAM, SNS, DynamoDB, S3).
    pub fn tag_list(&self, key: &str) -> Result<BTreeMap<String, String>, DriverError> {
        let Some(value) = self.get(key) else {
            return Ok(BTreeMap::new());
        };
        let items = value
            .as_array()
            .ok_or_else(|| self.bad(key, "a tag list"))?;
        items
            .iter()
            .map(|t| {
                Some((
                    t.get("Key")?.as_str()?.to_string(),
                    t.get("Value")?.as_str()?.to_string(),
                ))
            })
            .collect::<Option<_>>()
            .ok_or_else(|| self.bad(key, "a tag list"))
    }

    /// A JSON value the API takes as a string (policy documents, redrive policies): compact JSON.
    pub fn json_string(&self, key: &str) -> Result<String, DriverError> {
        let v = self.get(key).ok_or_else(|| self.bad(key, "present"))?;
        Ok(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// `{"k": "v"}` from a string map.
pub(crate) fn map_value(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// `[{"Key", "Value"}]` from a string map, sorted by key (as lowering writes them).
pub(crate) fn tag_list_value(map: &BTreeMap<String, String>) -> Value {
    Value::Array(
        map.iter()
            .map(|(k, v)| serde_json::json!({ "Key": k, "Value": v }))
            .collect(),
    )
}

/// Parses a JSON document the API returned as a string (URL-encoded for IAM), so it compares
/// with the value lowering wrote; a document that does not parse is kept as a string.
pub(crate) fn parse_document(text: &str) -> Value {
    let decoded = if text.trim_start().starts_with('%') || text.contains("%22") {
        percent_decode(text)
    } else {
        text.to_string()
    };
    serde_json::from_str(&decoded).unwrap_or(Value::String(decoded))
}

/// Decodes `%XX` escapes (and `+` is left alone: IAM encodes spaces as `%20`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Differences between two string maps: what to set and which keys to remove.
pub(crate) fn map_changes(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let set = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let removed = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    (set, removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn getters_and_errors() {
        let v = json!({ "A": "x", "N": 5, "L": ["a", "b"], "M": {"k": "v"}, "T": [{"Key": "k", "Value": "v"}], "D": {"x": [1]} });
        let p = Props::new("aws.test", &v);
        assert_eq!(p.str("A").unwrap(), "x");
        assert_eq!(p.i32("N").unwrap(), 5);
        assert_eq!(p.strings("L").unwrap(), ["a", "b"]);
        assert_eq!(p.string_map("M").unwrap()["k"], "v");
        assert_eq!(p.tag_list("T").unwrap()["k"], "v");
        assert_eq!(p.json_string("D").unwrap(), r#"{"x":[1]}"#);
        let err = p.str("N").unwrap_err();
        assert!(!err.retryable);
        assert!(
            err.message.contains("`N` of a `aws.test`"),
            "{}",
            err.message
        );
        assert!(p.strings("M").is_err());
        assert!(p.strings("missing").unwrap().is_empty());
    }

    #[test]
    fn documents_compare_as_values() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(
            parse_document(encoded),
            json!({"Version": "2012-10-17", "Statement": []})
        );
        assert_eq!(parse_document(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(parse_document("not json"), json!("not json"));
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn map_changes_lists_sets_and_removals() {
        let before = BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]);
        let after = BTreeMap::from([("a".into(), "1".into()), ("c".into(), "3".into())]);
        let (set, removed) = map_changes(&before, &after);
        assert_eq!(set, BTreeMap::from([("c".into(), "3".into())]));
        assert_eq!(removed, ["b"]);
    }
}
