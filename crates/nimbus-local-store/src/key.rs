//! Table keys: their declaration, validation, and encoding into SQLite columns.
//!
//! An item row is found by `pk` and `sk`, the canonical JSON text of the
//! partition and sort values, so `{"id": 1}` and `{"id": "1"}` are different
//! items while `1` and `1.0` are the same one. Sort order comes from `sk_ord`,
//! which holds the sort value natively (integer or real for numbers, text for
//! strings, a blob for binary), so numbers sort numerically and binary values
//! byte by byte.

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, Value as SqlValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::StoreError;

/// The key attributes of a table: a partition key and an optional sort key,
/// each an attribute name and its type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableKey {
    /// The partition (hash) key attribute.
    pub partition: (String, KeyType),
    /// The sort (range) key attribute, if the table has one.
    pub sort: Option<(String, KeyType)>,
}

impl TableKey {
    /// A key with only a partition attribute.
    pub fn partition(name: impl Into<String>, ty: KeyType) -> TableKey {
        TableKey {
            partition: (name.into(), ty),
            sort: None,
        }
    }

    /// This key with a sort attribute added.
    pub fn with_sort(mut self, name: impl Into<String>, ty: KeyType) -> TableKey {
        self.sort = Some((name.into(), ty));
        self
    }

    /// "`id` (string)", or "`pk` (string) and `sk` (number)": for messages.
    pub(crate) fn describe(&self) -> String {
        let (name, ty) = &self.partition;
        let mut text = format!("`{name}` ({})", ty.as_str());
        if let Some((name, ty)) = &self.sort {
            text.push_str(&format!(" and `{name}` ({})", ty.as_str()));
        }
        text
    }
}

/// The JSON type of a key attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// A non-empty JSON string.
    String,
    /// A JSON number.
    Number,
    /// Bytes, written in JSON as a non-empty standard base64 string.
    Binary,
}

impl KeyType {
    fn as_str(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Number => "number",
            KeyType::Binary => "binary",
        }
    }
}

/// A sort value as SQLite stores and orders it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SortValue {
    /// The table has no sort key.
    None,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl ToSql for SortValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Owned(match self {
            SortValue::None => SqlValue::Null,
            SortValue::Integer(v) => SqlValue::Integer(*v),
            SortValue::Real(v) => SqlValue::Real(*v),
            SortValue::Text(v) => SqlValue::Text(v.clone()),
            SortValue::Blob(v) => SqlValue::Blob(v.clone()),
        }))
    }
}

/// A validated key, ready for SQL.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EncodedKey {
    /// Canonical JSON text of the partition value.
    pub(crate) pk: String,
    /// Canonical JSON text of the sort value, empty without a sort key.
    pub(crate) sk: String,
    /// The sort value in its SQLite ordering form.
    pub(crate) sk_ord: SortValue,
    /// `{partition: value, sort: value}` with canonical values, for change events.
    pub(crate) key: Value,
}

/// Where key values come from, which decides the error and whether other
/// attributes are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A whole item (`table_put`): other attributes are expected.
    Item,
    /// Key values only (`table_get`, `table_delete`): nothing else allowed.
    Key,
}

/// Validates and encodes the key attributes of `value` (an item or a key).
pub(crate) fn encode(
    table: &str,
    key: &TableKey,
    value: &Value,
    source: Source,
) -> Result<EncodedKey, StoreError> {
    let fail = |reason: String| match source {
        Source::Item => StoreError::BadItem {
            table: table.to_owned(),
            reason,
        },
        Source::Key => StoreError::BadKey {
            table: table.to_owned(),
            reason,
        },
    };
    let Value::Object(object) = value else {
        let what = if source == Source::Item {
            "an item"
        } else {
            "a key"
        };
        return Err(fail(format!(
            "{what} must be a JSON object, found {}",
            kind(value)
        )));
    };
    if source == Source::Key
        && let Some(extra) = object.keys().find(|name| {
            **name != key.partition.0 && key.sort.as_ref().is_none_or(|(sort, _)| *name != sort)
        })
    {
        return Err(fail(format!(
            "`{extra}` is not a key attribute; the key is {}",
            key.describe()
        )));
    }
    let attribute = |(name, ty): &(String, KeyType)| {
        let value = object
            .get(name)
            .ok_or_else(|| fail(format!("missing key attribute `{name}`")))?;
        canonical(name, *ty, value).map_err(fail)
    };
    let (pk_value, _) = attribute(&key.partition)?;
    let mut key_object = Map::new();
    key_object.insert(key.partition.0.clone(), pk_value.clone());
    let (sk, sk_ord) = match &key.sort {
        None => (String::new(), SortValue::None),
        Some(sort) => {
            let (sk_value, sk_ord) = attribute(sort)?;
            let sk = sk_value.to_string();
            key_object.insert(sort.0.clone(), sk_value);
            (sk, sk_ord)
        }
    };
    Ok(EncodedKey {
        pk: pk_value.to_string(),
        sk,
        sk_ord,
        key: Value::Object(key_object),
    })
}

/// Validates and encodes a bare partition value (`table_query`).
pub(crate) fn encode_partition(
    table: &str,
    key: &TableKey,
    value: &Value,
) -> Result<String, StoreError> {
    let (name, ty) = &key.partition;
    let (value, _) = canonical(name, *ty, value).map_err(|reason| StoreError::BadKey {
        table: table.to_owned(),
        reason,
    })?;
    Ok(value.to_string())
}

/// The canonical JSON form of one key value and its ordering form, or why it
/// is not a valid value of type `ty`.
fn canonical(name: &str, ty: KeyType, value: &Value) -> Result<(Value, SortValue), String> {
    let wrong = || {
        format!(
            "key attribute `{name}` must be a {}, found {} `{value}`",
            ty.as_str(),
            kind(value)
        )
    };
    match (ty, value) {
        (KeyType::String, Value::String(s)) if s.is_empty() => {
            Err(format!("key attribute `{name}` must not be empty"))
        }
        (KeyType::String, Value::String(s)) => Ok((value.clone(), SortValue::Text(s.clone()))),
        (KeyType::Number, Value::Number(n)) => Ok(canonical_number(n)),
        (KeyType::Binary, Value::String(s)) => {
            let bytes = base64_decode(s).map_err(|why| {
                format!("key attribute `{name}` must be base64-encoded binary: {why}")
            })?;
            if bytes.is_empty() {
                return Err(format!("key attribute `{name}` must not be empty"));
            }
            Ok((Value::String(base64_encode(&bytes)), SortValue::Blob(bytes)))
        }
        _ => Err(wrong()),
    }
}

/// Integers, and floats with an integral value that fits, become `i64`
/// (so `1.0` is `1`); other floats keep their shortest round-trip form.
fn canonical_number(n: &Number) -> (Value, SortValue) {
    if let Some(i) = n.as_i64() {
        return (Value::from(i), SortValue::Integer(i));
    }
    if let Some(u) = n.as_u64() {
        return (Value::from(u), SortValue::Real(u as f64));
    }
    let f = n.as_f64().unwrap_or(0.0);
    // The range check is exact: both bounds are powers of two.
    if f.fract() == 0.0 && f >= -(2f64.powi(63)) && f < 2f64.powi(63) {
        let i = f as i64;
        return (Value::from(i), SortValue::Integer(i));
    }
    (Value::Number(n.clone()), SortValue::Real(f))
}

/// "string", "number", ...: the JSON kind of a value, for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64; padding is optional but must be right when present, and
/// the unused low bits must be zero so that each byte string has one spelling.
pub(crate) fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let data = text.trim_end_matches('=');
    let padding = text.len() - data.len();
    if padding > 2 || (padding > 0 && !text.len().is_multiple_of(4)) {
        return Err("wrong `=` padding".to_owned());
    }
    if data.len() % 4 == 1 {
        return Err(format!("{} characters cannot be base64", data.len()));
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for (position, c) in data.char_indices() {
        let Some(value) = BASE64.iter().position(|b| char::from(*b) == c) else {
            return Err(format!(
                "`{c}` at position {position} is not a base64 character"
            ));
        };
        buffer = (buffer << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    if buffer != 0 {
        return Err("the last character has non-zero unused bits".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item(value: Value) -> Result<EncodedKey, StoreError> {
        let key = TableKey::partition("id", KeyType::Number).with_sort("at", KeyType::String);
        encode("t", &key, &value, Source::Item)
    }

    #[test]
    fn base64_round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..40 {
            let text = base64_encode(&data[..len]);
            assert_eq!(text.len() % 4, 0);
            assert_eq!(base64_decode(&text).unwrap(), &data[..len], "{text}");
            assert_eq!(
                base64_decode(text.trim_end_matches('=')).unwrap(),
                &data[..len]
            );
        }
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
    }

    #[test]
    fn base64_rejects_bad_text() {
        for bad in ["a", "aGVsbG8==", "aGV=sbG8", "aG!s", "aGVsbG9=", "===="] {
            assert!(base64_decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_are_canonical_and_distinct_from_strings() {
        let one = item(json!({"id": 1, "at": "x"})).unwrap();
        let one_float = item(json!({"id": 1.0, "at": "x"})).unwrap();
        assert_eq!(one, one_float);
        assert_eq!(one.pk, "1");
        assert_eq!(one.key, json!({"id": 1, "at": "x"}));

        let string_key = TableKey::partition("id", KeyType::String);
        let text = encode("t", &string_key, &json!({"id": "1"}), Source::Item).unwrap();
        assert_eq!(text.pk, "\"1\"");
        assert_ne!(text.pk, one.pk);

        let half = item(json!({"id": 0.5, "at": "x"})).unwrap();
        assert_eq!(half.pk, "0.5");
        let big = item(json!({"id": u64::MAX, "at": "x"})).unwrap();
        assert_eq!(big.pk, u64::MAX.to_string());
    }

    #[test]
    fn item_errors_name_the_attribute_and_the_types() {
        let err = item(json!({"at": "x"})).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid item for table `t`: missing key attribute `id`"
        );
        let err = item(json!({"id": "1", "at": "x"})).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid item for table `t`: key attribute `id` must be a number, found string `\"1\"`"
        );
        let err = item(json!({"id": 1, "at": ""})).unwrap_err().to_string();
        assert!(
            err.ends_with("key attribute `at` must not be empty"),
            "{err}"
        );
        let err = item(json!([1])).unwrap_err().to_string();
        assert!(
            err.ends_with("an item must be a JSON object, found array"),
            "{err}"
        );
    }

    #[test]
    fn keys_refuse_other_attributes() {
        let key = TableKey::partition("id", KeyType::String);
        let err = encode("t", &key, &json!({"id": "a", "x": 1}), Source::Key).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid key for table `t`: `x` is not a key attribute; the key is `id` (string)"
        );
        assert!(encode("t", &key, &json!({"id": "a", "x": 1}), Source::Item).is_ok());
    }

    #[test]
    fn binary_keys_are_validated_and_canonical() {
        let key = TableKey::partition("b", KeyType::Binary);
        let ok = encode("t", &key, &json!({"b": "aGVsbG8"}), Source::Item).unwrap();
        assert_eq!(ok.key, json!({"b": "aGVsbG8="}));
        assert_eq!(ok.sk_ord, SortValue::None);
        let err = encode("t", &key, &json!({"b": "not base64!"}), Source::Item).unwrap_err();
        assert!(
            err.to_string().contains("must be base64-encoded binary"),
            "{err}"
        );
    }
}
