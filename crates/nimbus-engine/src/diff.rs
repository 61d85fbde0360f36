//! Property diffs: which paths differ between two JSON documents (`memory`, `env.LOG_LEVEL`,
//! `layers[0]`, `tags["a.b"]`), and the marker for values only known after apply.
//!
//! Objects are compared key by key (keys sorted), arrays index by index when their lengths are
//! equal and as a whole otherwise, anything else by value.

use serde_json::{Map, Value, json};

/// The key of the marker object that stands for a value known only after apply.
const UNKNOWN_KEY: &str = "$known_after_apply";

/// How an unknown value is shown.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// A value that will be known only after apply (a reference to a resource not yet created).
pub(crate) fn unknown() -> Value {
    json!({ UNKNOWN_KEY: true })
}

fn is_unknown(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| o.len() == 1 && o.get(UNKNOWN_KEY) == Some(&Value::Bool(true)))
}

/// Whether `v` is or contains an unknown value.
pub(crate) fn contains_unknown(v: &Value) -> bool {
    is_unknown(v)
        || match v {
            Value::Array(items) => items.iter().any(contains_unknown),
            Value::Object(map) => map.values().any(contains_unknown),
            _ => false,
        }
}

/// `v` with every unknown value replaced by the text [`KNOWN_AFTER_APPLY`].
pub(crate) fn show_unknown(v: &Value) -> Value {
    if is_unknown(v) {
        return Value::String(KNOWN_AFTER_APPLY.into());
    }
    match v {
        Value::Array(items) => Value::Array(items.iter().map(show_unknown).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), show_unknown(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One differing path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    /// The path, e.g. `env.LOG_LEVEL`.
    pub path: String,
    /// The top-level property it is under (what `replace_on` names).
    pub top: Option<String>,
    /// The value before, `None` when absent.
    pub before: Option<Value>,
    /// The value after, `None` when absent.
    pub after: Option<Value>,
}

/// Every path where `before` and `after` differ, in key order.
pub(crate) fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(String::new(), None, Some(before), Some(after), &mut out);
    out
}

fn walk(
    path: String,
    top: Option<&str>,
    before: Option<&Value>,
    after: Option<&Value>,
    out: &mut Vec<Change>,
) {
    let changed = |out: &mut Vec<Change>| {
        out.push(Change {
            path: path.clone(),
            top: top.map(str::to_string),
            before: before.cloned(),
            after: after.cloned(),
        })
    };
    if after.is_some_and(is_unknown) {
        return changed(out);
    }
    match (before, after) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let top = top.unwrap_or(k);
                walk(join_key(&path, k), Some(top), a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(format!("{path}[{i}]"), top, Some(x), Some(y), out);
            }
        }
        (x, y) if x == y => {}
        _ => changed(out),
    }
}

fn join_key(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", Value::String(key.to_string())),
    }
}

/// An empty object, the "before" of a create.
pub(crate) fn empty() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(a: Value, b: Value) -> Vec<String> {
        diff(&a, &b).into_iter().map(|c| c.path).collect()
    }

    #[test]
    fn paths_name_what_changed() {
        let a = json!({"memory": 256, "env": {"A": "1", "B": "2"}, "layers": [1, 2], "tags": {"a.b": 1}, "same": [1]});
        let b = json!({"env": {"B": "3", "A": "1", "C": "4"}, "memory": 512, "layers": [1, 3], "tags": {"a.b": 2}, "same": [1]});
        assert_eq!(
            paths(a, b),
            ["env.B", "env.C", "layers[1]", "memory", "tags[\"a.b\"]"]
        );
        assert_eq!(paths(json!({"l": [1]}), json!({"l": [1, 2]})), ["l"]);
        assert_eq!(paths(json!({"x": 1}), json!({})), ["x"]);
        let c = &diff(&json!({"a": {"b": 1}}), &json!({"a": {"b": 2}}))[0];
        assert_eq!(c.top.as_deref(), Some("a"));
    }

    #[test]
    fn key_order_does_not_matter_and_unknowns_always_differ() {
        let a: Value = serde_json::from_str(r#"{"a": 1, "b": 2}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b": 2, "a": 1}"#).unwrap();
        assert_eq!(a, b);
        assert!(diff(&a, &b).is_empty());
        let changes = diff(&json!({"role": {"x": 1}}), &json!({"role": unknown()}));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "role");
        assert!(contains_unknown(&json!([1, {"a": unknown()}])));
        assert_eq!(
            show_unknown(&json!([unknown()])),
            json!([KNOWN_AFTER_APPLY])
        );
    }
}
