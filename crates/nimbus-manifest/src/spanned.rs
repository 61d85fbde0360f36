//! `Spanned<T>`: a value together with the place in the manifest it came from.
//!
//! The YAML deserializer in [`crate::de`] recognises this type by a private struct name and
//! fills in the span; everywhere else it serializes and describes itself (JSON Schema) exactly
//! like `T`, so spans never leak into generated artifacts.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use nimbus_diagnostic::Span;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde::{Serialize, Serializer};

/// Struct name by which the deserializer recognises a request for a span.
pub(crate) const MAGIC: &str = "$__nimbus_spanned";
/// The fields of the magic struct: the four span numbers, then the value.
pub(crate) const FIELDS: &[&str] = &["$line", "$column", "$end_line", "$end_column", "$value"];

/// A value with its source span. Compares, hashes and serializes as the bare value.
#[derive(Clone)]
pub struct Spanned<T> {
    /// Where the value was written; [`Span::default`] when it did not come from a file.
    pub span: Span,
    /// The value.
    pub value: T,
}

impl<T> Spanned<T> {
    /// Wraps `value` with `span`.
    pub fn new(span: Span, value: T) -> Self {
        Spanned { span, value }
    }

    /// Wraps a value that has no source position (defaults, generated values).
    pub fn unspanned(value: T) -> Self {
        Spanned {
            span: Span::default(),
            value,
        }
    }

    /// The inner value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<T: Eq> Eq for Spanned<T> {}
impl<T: PartialOrd> PartialOrd for Spanned<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.value.partial_cmp(&other.value)
    }
}
impl<T: Ord> Ord for Spanned<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}
impl<T: Hash> Hash for Spanned<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}
impl std::borrow::Borrow<str> for Spanned<crate::Name> {
    fn borrow(&self) -> &str {
        self.value.as_str()
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpannedVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
            type Value = Spanned<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut numbers = [0u32; 4];
                for (i, slot) in numbers.iter_mut().enumerate() {
                    match map.next_key::<String>()? {
                        Some(key) if key == FIELDS[i] => *slot = map.next_value()?,
                        _ => {
                            return Err(de::Error::custom(
                                "spanned value read by a foreign deserializer",
                            ));
                        }
                    }
                }
                match map.next_key::<String>()? {
                    Some(key) if key == FIELDS[4] => {}
                    _ => {
                        return Err(de::Error::custom(
                            "spanned value read by a foreign deserializer",
                        ));
                    }
                }
                let value = map.next_value()?;
                let [line, column, end_line, end_column] = numbers;
                Ok(Spanned::new(
                    Span::new(line, column, end_line, end_column),
                    value,
                ))
            }
        }

        deserializer.deserialize_struct(MAGIC, FIELDS, SpannedVisitor(std::marker::PhantomData))
    }
}
