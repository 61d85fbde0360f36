//! A serde `Deserializer` over marked-yaml's node tree that puts a span on every error.
//!
//! marked-yaml parses YAML into nodes that know where they came from, but its own serde bridge
//! drops most positions. This one attaches the innermost node's span to any error raised while
//! deserializing it, turns serde's "unknown field" into an "unknown key" diagnostic with a
//! did-you-mean hint, and fills [`crate::Spanned`] values. Only this module and [`crate::yaml`]
//! know marked-yaml's types.

use std::fmt;

use marked_yaml::Node;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use nimbus_diagnostic::{Diagnostic, Span, did_you_mean};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};

use crate::spanned;

/// An error found while turning YAML nodes into typed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeError {
    pub message: String,
    pub span: Option<Span>,
    pub hint: Option<String>,
}

impl DeError {
    fn new(message: impl Into<String>) -> Self {
        DeError {
            message: message.into(),
            span: None,
            hint: None,
        }
    }

    /// Sets the span unless an inner node already did.
    fn at(mut self, span: Span) -> Self {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }

    pub fn into_diagnostic(self) -> Diagnostic {
        Diagnostic::error(self.span, self.message).with_hint_opt(self.hint)
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

fn one_of(expected: &[&str]) -> String {
    let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    match list.len() {
        0 => "nothing is allowed here".to_string(),
        1 => format!("expected {}", list[0]),
        _ => format!("expected one of {}", list.join(", ")),
    }
}

fn suggestion(word: &str, expected: &'static [&'static str]) -> String {
    if let Some(same) = expected.iter().find(|e| e.eq_ignore_ascii_case(word)) {
        return format!("did you mean `{same}`? (case matters)");
    }
    match did_you_mean(word, expected.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => one_of(expected),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(format!("expected {exp}, found {}", describe(&unexp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(format!(
            "invalid value {}, expected {exp}",
            describe(&unexp)
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            hint: Some(suggestion(field, expected)),
            ..DeError::new(format!("unknown key `{field}`"))
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            hint: Some(suggestion(variant, expected)),
            ..DeError::new(format!("unknown value `{variant}`"))
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::new(format!("missing required key `{field}`"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        DeError::new(format!("key `{field}` is given twice"))
    }
}

fn describe(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Str(s) => format!("`{s}`"),
        Unexpected::Unsigned(n) => format!("the number `{n}`"),
        Unexpected::Signed(n) => format!("the number `{n}`"),
        Unexpected::Float(n) => format!("the number `{n}`"),
        Unexpected::Bool(b) => format!("`{b}`"),
        Unexpected::Map => "a mapping".to_string(),
        Unexpected::Seq => "a list".to_string(),
        Unexpected::Unit => "nothing (null)".to_string(),
        other => other.to_string(),
    }
}

/// The span of a node: from its start mark to its end (computed for scalars, which only carry a start).
pub(crate) fn node_span(node: &Node) -> Span {
    match node {
        Node::Scalar(s) => scalar_span(s),
        Node::Mapping(m) => marked_span(m.span()),
        Node::Sequence(s) => marked_span(s.span()),
    }
}

pub(crate) fn scalar_span(scalar: &MarkedScalarNode) -> Span {
    let mut span = marked_span(scalar.span());
    let text = scalar.as_str();
    if scalar.span().end().is_none() && !text.contains('\n') {
        let quotes = if scalar.may_coerce() { 0 } else { 2 };
        span.end_line = span.line;
        span.end_column = span.column + text.chars().count() as u32 + quotes;
        if span.end_column == span.column {
            span.end_column += 1;
        }
    }
    span
}

fn marked_span(span: &marked_yaml::Span) -> Span {
    let start = span
        .start()
        .map(|m| (m.line() as u32, m.column() as u32))
        .unwrap_or((0, 0));
    let end = span
        .end()
        .map(|m| (m.line() as u32, m.column() as u32))
        .unwrap_or((start.0, start.1 + 1));
    // A mapping or list ends on the line after its last value; clamp to one line in that case.
    if end.0 > start.0 && end.1 <= 1 {
        return Span::new(start.0, start.1, start.0, u32::MAX);
    }
    Span::new(start.0, start.1, end.0, end.1)
}

/// Deserializes `T` from `node`.
pub(crate) fn from_node<'de, T: serde::Deserialize<'de>>(node: &'de Node) -> Result<T, DeError> {
    T::deserialize(De::Node(node))
}

/// Deserializes `T` from a mapping key.
pub(crate) fn from_key<'de, T: serde::Deserialize<'de>>(
    key: &'de MarkedScalarNode,
) -> Result<T, DeError> {
    T::deserialize(De::Key(key))
}

#[derive(Clone, Copy)]
enum De<'a> {
    Node(&'a Node),
    Key(&'a MarkedScalarNode),
    /// An empty (null) value, pointed at through its key.
    Null(&'a Node, Span),
}

impl<'a> De<'a> {
    fn span(&self) -> Span {
        match self {
            De::Node(n) => node_span(n),
            De::Key(k) => scalar_span(k),
            De::Null(_, span) => *span,
        }
    }

    fn scalar(&self) -> Option<&'a MarkedScalarNode> {
        match *self {
            De::Node(Node::Scalar(s)) | De::Null(Node::Scalar(s), _) => Some(s),
            De::Key(k) => Some(k),
            _ => None,
        }
    }

    fn unexpected(&self) -> Unexpected<'a> {
        match *self {
            De::Null(..) => Unexpected::Unit,
            De::Node(Node::Mapping(_)) => Unexpected::Map,
            De::Node(Node::Sequence(_)) => Unexpected::Seq,
            De::Node(Node::Scalar(s)) | De::Key(s) => Unexpected::Str(s.as_str()),
        }
    }

    fn is_null(&self) -> bool {
        self.scalar().is_some_and(|s| {
            s.may_coerce() && matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL")
        })
    }

    fn invalid<T>(&self, exp: &dyn de::Expected) -> Result<T, DeError> {
        Err(de::Error::invalid_type(self.unexpected(), exp))
    }

    fn integer(&self) -> Result<i128, DeError> {
        let Some(s) = self.scalar() else {
            return Err(DeError::new(format!(
                "expected a whole number, found {}",
                describe(&self.unexpected())
            )));
        };
        let text = s.as_str().trim().replace('_', "");
        text.parse::<i128>()
            .map_err(|_| DeError::new(format!("expected a whole number, found `{}`", s.as_str())))
    }
}

macro_rules! integer_method {
    ($method:ident, $ty:ty, $visit:ident, $wide:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let span = self.span();
            let n = self.integer().map_err(|e| e.at(span))?;
            let n = <$ty>::try_from(n).map_err(|_| {
                DeError::new(format!(
                    "the number `{n}` is out of range ({} to {})",
                    <$ty>::MIN,
                    <$ty>::MAX
                ))
                .at(span)
            })?;
            visitor
                .$visit::<DeError>(n as $wide)
                .map_err(|e| e.at(span))
        }
    };
}

impl<'de> de::Deserializer<'de> for De<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.span();
        let result = match self {
            De::Node(Node::Mapping(m)) => visitor.visit_map(MapDe::new(m)),
            De::Node(Node::Sequence(s)) => visitor.visit_seq(SeqDe::new(s)),
            De::Null(..) => visitor.visit_unit(),
            De::Node(Node::Scalar(s)) | De::Key(s) => {
                let text = s.as_str();
                if !s.may_coerce() {
                    visitor.visit_borrowed_str(text)
                } else if self.is_null() {
                    visitor.visit_unit()
                } else if let Some(b) = s.as_bool() {
                    visitor.visit_bool(b)
                } else if let Ok(n) = text.parse::<u64>() {
                    visitor.visit_u64(n)
                } else if let Ok(n) = text.parse::<i64>() {
                    visitor.visit_i64(n)
                } else if let Some(f) = text
                    .parse::<f64>()
                    .ok()
                    .filter(|_| text.contains(['.', 'e', 'E']))
                {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_borrowed_str(text)
                }
            }
        };
        result.map_err(|e| e.at(span))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.span();
        match self.scalar().and_then(|s| s.as_bool()) {
            Some(b) => visitor.visit_bool(b),
            None => self.invalid(&"`true` or `false`"),
        }
        .map_err(|e| e.at(span))
    }

    integer_method!(deserialize_u8, u8, visit_u64, u64);
    integer_method!(deserialize_u16, u16, visit_u64, u64);
    integer_method!(deserialize_u32, u32, visit_u64, u64);
    integer_method!(deserialize_u64, u64, visit_u64, u64);
    integer_method!(deserialize_i8, i8, visit_i64, i64);
    integer_method!(deserialize_i16, i16, visit_i64, i64);
    integer_method!(deserialize_i32, i32, visit_i64, i64);
    integer_method!(deserialize_i64, i64, visit_i64, i64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.span();
        match self
            .scalar()
            .and_then(|s| s.as_str().trim().parse::<f64>().ok())
        {
            Some(f) => visitor.visit_f64(f),
            None => self.invalid(&"a number"),
        }
        .map_err(|e| e.at(span))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.span();
        match self.scalar() {
            Some(s) => visitor.visit_borrowed_str(s.as_str()),
            None => self.invalid(&visitor),
        }
        .map_err(|e| e.at(span))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.span();
        if self.is_null() {
            visitor.visit_unit()
        } else {
            self.invalid(&"nothing (null)")
        }
        .map_err(|e| e.at(span))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.span();
        match self {
            De::Node(Node::Sequence(s)) => visitor.visit_seq(SeqDe::new(s)),
            _ => self.invalid(&visitor),
        }
        .map_err(|e| e.at(span))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.span();
        match self {
            De::Node(Node::Mapping(m)) => visitor.visit_map(MapDe::new(m)),
            // `key:` with nothing after it is an empty mapping.
            _ if self.is_null() => visitor.visit_map(de::value::MapDeserializer::new(
                std::iter::empty::<((), ())>(),
            )),
            _ => self.invalid(&visitor),
        }
        .map_err(|e| e.at(span))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == spanned::MAGIC {
            return visitor.visit_map(SpannedDe {
                span: self.span(),
                inner: self,
                field: 0,
            });
        }
        let span = self.span();
        match self {
            De::Node(Node::Mapping(m)) => visitor.visit_map(MapDe::new(m)),
            _ if self.is_null() => visitor.visit_map(de::value::MapDeserializer::new(
                std::iter::empty::<((), ())>(),
            )),
            _ => Err(DeError::new(format!(
                "expected a mapping, found {}",
                describe(&self.unexpected())
            ))
            .at(span)
            .with_keys(fields)),
        }
        .map_err(|e| e.at(span))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let span = self.span();
        match self {
            De::Node(Node::Scalar(s)) | De::Key(s) | De::Null(Node::Scalar(s), _) => visitor
                .visit_enum(EnumDe {
                    tag: s,
                    value: None,
                }),
            De::Node(Node::Mapping(m)) if m.len() == 1 => {
                let (k, v) = m.iter().next().expect("one entry");
                visitor.visit_enum(EnumDe {
                    tag: k,
                    value: Some(v),
                })
            }
            De::Node(Node::Mapping(m)) if m.is_empty() => Err(DeError {
                hint: Some(one_of(variants)),
                ..DeError::new("expected one key, found an empty mapping")
            }),
            De::Node(Node::Mapping(m)) => {
                let keys: Vec<String> = m.keys().map(|k| format!("`{}`", k.as_str())).collect();
                let second = m.keys().nth(1).map(scalar_span);
                Err(DeError {
                    span: second,
                    hint: Some("write each as its own `- ` list item".into()),
                    ..DeError::new(format!(
                        "expected one key here, found {}",
                        keys.join(" and ")
                    ))
                })
            }
            De::Node(Node::Sequence(_)) | De::Null(..) => Err(DeError {
                hint: Some(one_of(variants)),
                ..DeError::new(format!(
                    "expected one of the keys below, found {}",
                    describe(&self.unexpected())
                ))
            }),
        }
        .map_err(|e| e.at(span))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

impl DeError {
    fn with_keys(mut self, keys: &[&str]) -> Self {
        if self.hint.is_none() && !keys.is_empty() {
            let list: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
            self.hint = Some(format!("write a mapping with the keys {}", list.join(", ")));
        }
        self
    }
}

struct SeqDe<'a> {
    items: std::slice::Iter<'a, Node>,
}

impl<'a> SeqDe<'a> {
    fn new(seq: &'a MarkedSequenceNode) -> Self {
        SeqDe { items: seq.iter() }
    }
}

impl<'de> de::SeqAccess<'de> for SeqDe<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => seed
                .deserialize(De::Node(node))
                .map(Some)
                .map_err(|e| e.at(node_span(node))),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'a> {
    entries: Box<dyn Iterator<Item = (&'a MarkedScalarNode, &'a Node)> + 'a>,
    value: Option<&'a Node>,
    key_span: Span,
}

impl<'a> MapDe<'a> {
    fn new(map: &'a MarkedMappingNode) -> Self {
        MapDe {
            entries: Box::new(map.iter()),
            value: None,
            key_span: Span::default(),
        }
    }
}

impl<'de> de::MapAccess<'de> for MapDe<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                let span = scalar_span(key);
                self.key_span = span;
                seed.deserialize(De::Key(key))
                    .map(Some)
                    .map_err(|e| e.at(span))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self.value.take().expect("next_value after next_key");
        // An empty value has no text of its own to point at; point at its key.
        let span = if De::Node(node).is_null() {
            self.key_span
        } else {
            node_span(node)
        };
        let de = if De::Node(node).is_null() {
            De::Null(node, span)
        } else {
            De::Node(node)
        };
        seed.deserialize(de).map_err(|e| e.at(span))
    }
}

/// Presents a node as the magic `{$line, $column, $end_line, $end_column, $value}` struct.
struct SpannedDe<'a> {
    span: Span,
    inner: De<'a>,
    field: usize,
}

impl<'de> de::MapAccess<'de> for SpannedDe<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match spanned::FIELDS.get(self.field) {
            Some(name) => seed.deserialize(name.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let field = self.field;
        self.field += 1;
        let number = match field {
            0 => self.span.line,
            1 => self.span.column,
            2 => self.span.end_line,
            3 => self.span.end_column,
            _ => return seed.deserialize(self.inner).map_err(|e| e.at(self.span)),
        };
        seed.deserialize(number.into_deserializer())
    }
}

struct EnumDe<'a> {
    tag: &'a MarkedScalarNode,
    value: Option<&'a Node>,
}

impl<'de> de::EnumAccess<'de> for EnumDe<'de> {
    type Error = DeError;
    type Variant = VariantDe<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantDe<'de>), DeError> {
        let span = scalar_span(self.tag);
        let variant = seed
            .deserialize(De::Key(self.tag))
            .map_err(|e| e.at(span))?;
        Ok((
            variant,
            VariantDe {
                tag: self.tag,
                value: self.value,
            },
        ))
    }
}

struct VariantDe<'a> {
    tag: &'a MarkedScalarNode,
    value: Option<&'a Node>,
}

impl<'a> VariantDe<'a> {
    fn value(&self, what: &str) -> Result<De<'a>, DeError> {
        self.value.map(De::Node).ok_or_else(|| {
            DeError::new(format!("`{}` needs {what}", self.tag.as_str()))
                .at(scalar_span(self.tag))
                .with_hint(format!("write `{}: ...`", self.tag.as_str()))
        })
    }
}

impl DeError {
    fn with_hint(mut self, hint: String) -> Self {
        self.hint = Some(hint);
        self
    }
}

impl<'de> de::VariantAccess<'de> for VariantDe<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            None => Ok(()),
            Some(node) if De::Node(node).is_null() => Ok(()),
            Some(node) => Err(
                DeError::new(format!("`{}` takes no settings", self.tag.as_str()))
                    .at(node_span(node))
                    .with_hint(format!("write just `{}`", self.tag.as_str())),
            ),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let de = self.value("a value")?;
        let span = de.span();
        seed.deserialize(de).map_err(|e| e.at(span))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        let de = self.value("a list")?;
        de::Deserializer::deserialize_seq(de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let de = self.value("settings")?;
        de::Deserializer::deserialize_struct(de, "", fields, visitor)
    }
}
