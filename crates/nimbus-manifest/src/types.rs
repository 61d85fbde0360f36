//! Validated value types of the manifest: names, durations, memory sizes, handlers, routes,
//! environment variable names and the small enums (runtimes, methods, access levels, events).
//!
//! Each newtype checks its text when it is deserialized, so a bad value is reported at its own
//! line and column, and code past the manifest never sees an invalid one.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Implements `Display`, `TryFrom<String>`, serde and a string JSON Schema for a `FromStr` type.
macro_rules! string_newtype {
    ($ty:ident, $desc:literal, $schema:tt) => {
        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                s.parse()
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(TextVisitor($desc))
                    .and_then(|s| s.parse().map_err(serde::de::Error::custom))
            }
        }
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                let mut schema = json_schema!($schema);
                schema.insert("description".into(), $desc.into());
                schema
            }
        }
    };
}
pub(crate) use string_newtype;

/// Accepts only text; a bare `true`, `12` or `null` is an error that says how to quote it.
pub(crate) struct TextVisitor(pub(crate) &'static str);

impl TextVisitor {
    fn not_text<E: serde::de::Error>(&self, what: String) -> E {
        E::custom(format!(
            "expected text ({}), found {what}; put it in quotes if you mean the text",
            self.0
        ))
    }
}

impl serde::de::Visitor<'_> for TextVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<String, E> {
        Err(self.not_text(format!("the boolean `{v}`")))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
        Err(self.not_text(format!("the number `{v}`")))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
        Err(self.not_text(format!("the number `{v}`")))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
        Err(self.not_text(format!("the number `{v}`")))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<String, E> {
        Err(E::custom(format!("expected {}, found nothing", self.0)))
    }
}

/// A name of a service, stage, function or resource: lowercase letters, digits and `-`,
/// 1 to 63 characters, starting with a letter and not ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Name {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let hint = || {
            let mut spaced = String::new();
            let mut prev: Option<char> = None;
            for c in s.chars() {
                if c.is_ascii_uppercase()
                    && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
                {
                    spaced.push('-');
                }
                spaced.push(c);
                prev = Some(c);
            }
            let fixed: String = spaced
                .to_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
                .split('-')
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("-");
            if fixed.is_empty() || fixed == s {
                String::new()
            } else {
                format!(" (for example `{fixed}`)")
            }
        };
        if s.is_empty() {
            return Err("a name cannot be empty".into());
        }
        if s.len() > 63 {
            return Err(format!(
                "name `{s}` is {} characters long; the limit is 63",
                s.len()
            ));
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(format!(
                "name `{s}` must start with a lowercase letter{}",
                hint()
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!(
                "name `{s}` contains `{c}`; use lowercase letters, digits and `-`{}",
                hint()
            ));
        }
        if s.ends_with('-') {
            return Err(format!("name `{s}` must not end with `-`{}", hint()));
        }
        Ok(Name(s.to_string()))
    }
}

string_newtype!(
    Name,
    "lowercase letters, digits and `-`, 1-63 characters, starting with a letter",
    { "type": "string", "pattern": "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$" }
);

/// A duration written with a unit: `500ms`, `10s`, `5m`, `1h`. Stored in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    millis: u64,
}

impl Duration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration {
            millis: secs * 1000,
        }
    }

    /// Milliseconds.
    pub fn as_millis(&self) -> u64 {
        self.millis
    }

    /// Whole seconds, rounded up.
    pub fn as_secs_ceil(&self) -> u64 {
        self.millis.div_ceil(1000)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.millis;
        if ms.is_multiple_of(3_600_000) && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let example = "write a whole number with a unit: `500ms`, `10s`, `5m` or `1h`";
        if unit.starts_with('.') {
            let exact = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let suffix = &t[exact.len()..];
            let hint = exact
                .parse::<f64>()
                .ok()
                .filter(|_| matches!(suffix, "s" | "m" | "h"))
                .map(|v| {
                    v * match suffix {
                        "s" => 1000.0,
                        "m" => 60_000.0,
                        _ => 3_600_000.0,
                    }
                })
                .filter(|ms| ms.fract() == 0.0)
                .map(|ms| format!("; write `{ms}ms`"))
                .unwrap_or_default();
            return Err(format!("durations are whole numbers, `{s}` is not{hint}"));
        }
        if digits.is_empty() {
            return Err(format!("`{s}` is not a duration; {example}"));
        }
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{s}` is too large a duration"))?;
        let factor = match unit.trim() {
            "ms" => 1,
            "s" | "sec" | "secs" | "second" | "seconds" => 1000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
            "h" | "hour" | "hours" => 3_600_000,
            "" => return Err(format!("duration `{s}` has no unit; {example}")),
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{s}`; {example}"
                ));
            }
        };
        let millis = n
            .checked_mul(factor)
            .ok_or_else(|| format!("`{s}` is too large a duration"))?;
        if millis == 0 {
            return Err(format!("duration `{s}` must be greater than zero"));
        }
        Ok(Duration { millis })
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `10s`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "duration `{v}` has no unit; write `{v}s` for seconds or `{v}ms` for milliseconds"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "duration `{v}` must be a positive number with a unit, such as `10s`"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9]+ ?(ms|s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hour|hours)$",
            "description": "a duration with a unit: `500ms`, `10s`, `5m`, `1h`"
        })
    }
}

/// Memory in MiB, an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct MemoryMb(#[schemars(range(min = 64, max = 32768))] u32);

impl MemoryMb {
    /// The smallest memory any function may ask for.
    pub const MIN: u32 = 64;
    /// The largest memory any function may ask for.
    pub const MAX: u32 = 32768;

    /// `mb` MiB; the caller checks the range.
    pub const fn new(mb: u32) -> Self {
        MemoryMb(mb)
    }

    /// MiB.
    pub fn get(&self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for MemoryMb {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = MemoryMb;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("memory in MiB, a whole number such as `256`")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<MemoryMb, E> {
                if !(MemoryMb::MIN as u64..=MemoryMb::MAX as u64).contains(&v) {
                    return Err(E::custom(format!(
                        "memory `{v}` is out of range; give MiB between {} and {}",
                        MemoryMb::MIN,
                        MemoryMb::MAX
                    )));
                }
                Ok(MemoryMb(v as u32))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<MemoryMb, E> {
                Err(E::custom(format!(
                    "memory `{v}` must be a positive number of MiB"
                )))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MemoryMb, E> {
                let t = v.trim();
                if let Ok(n) = t.parse::<u64>() {
                    return self.visit_u64(n);
                }
                let lower = t.to_ascii_lowercase();
                let hint = lower
                    .strip_suffix("mb")
                    .or_else(|| lower.strip_suffix("mib"))
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .map(|n| format!("; write `{n}` (the unit is always MiB)"))
                    .or_else(|| {
                        lower
                            .strip_suffix("gb")
                            .or_else(|| lower.strip_suffix("gib"))
                            .and_then(|n| n.trim().parse::<u64>().ok())
                            .map(|n| format!("; write `{}` (the unit is always MiB)", n * 1024))
                    })
                    .unwrap_or_else(|| "; write MiB as a whole number such as `256`".into());
                Err(E::custom(format!("memory `{v}` is not a number{hint}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Where a function's code is: `path/to/file.py:function`, relative to the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handler {
    /// The file, relative to the manifest's directory, with `/` separators.
    pub file: String,
    /// The exported function's name.
    pub export: String,
}

impl Handler {
    /// The language the file is written in, from its extension.
    pub fn language(&self) -> Language {
        if self.file.ends_with(".py") {
            Language::Python
        } else {
            Language::Node
        }
    }

    /// The directory that holds the handler file (`""` for the manifest's own directory).
    pub fn dir(&self) -> &str {
        self.file.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
    }
}

impl fmt::Display for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.export)
    }
}

impl FromStr for Handler {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let form =
            "write `path/to/file.py:function` (or `.js`, `.mjs`, `.cjs`), relative to the manifest";
        let Some((file, export)) = s.rsplit_once(':') else {
            return Err(format!("handler `{s}` names no function; {form}"));
        };
        if file.is_empty() {
            return Err(format!("handler `{s}` names no file; {form}"));
        }
        if file.starts_with('/')
            || file.contains('\\')
            || (file.len() > 1 && file.as_bytes()[1] == b':')
        {
            return Err(format!(
                "handler file `{file}` must be a relative path with `/` separators"
            ));
        }
        if file.split('/').any(|part| part == "..") {
            return Err(format!(
                "handler file `{file}` must not leave the manifest's directory (`..`)"
            ));
        }
        let file = file.trim_start_matches("./");
        if ![".py", ".js", ".mjs", ".cjs"]
            .iter()
            .any(|ext| file.ends_with(ext))
        {
            return Err(format!(
                "handler file `{file}` must end in `.py`, `.js`, `.mjs` or `.cjs`"
            ));
        }
        let ident_ok = export
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
            && export
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        if !ident_ok {
            return Err(format!(
                "`{export}` is not a valid function name in handler `{s}`"
            ));
        }
        Ok(Handler {
            file: file.to_string(),
            export: export.to_string(),
        })
    }
}

impl Serialize for Handler {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

string_newtype!(
    Handler,
    "the handler: `path/to/file.py:function`, relative to the manifest",
    { "type": "string", "pattern": "^[^:]+\\.(py|js|mjs|cjs):[A-Za-z_$][A-Za-z0-9_$]*$" }
);

/// An HTTP route path: `/orders/{id}`, with `{name}` parameters and an optional final `{name+}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RoutePath(String);

impl RoutePath {
    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path with parameter names erased (`/orders/{}`): two routes with the same shape clash.
    pub fn shape(&self) -> String {
        self.segments()
            .map(|s| {
                if s.starts_with('{') {
                    if s.ends_with("+}") { "{+}" } else { "{}" }
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The path's segments, without the leading `/`.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').skip(1).filter(|s| !s.is_empty())
    }

    /// The names of its parameters, in order.
    pub fn params(&self) -> Vec<&str> {
        self.segments()
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|s| s.trim_end_matches('+'))
            .collect()
    }
}

impl fmt::Display for RoutePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RoutePath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if !s.starts_with('/') {
            return Err(format!(
                "route path `{s}` must start with `/` (for example `/{}`)",
                s.trim_start_matches('/')
            ));
        }
        if s.len() > 1 && s.ends_with('/') {
            return Err(format!(
                "route path `{s}` must not end with `/`; write `{}`",
                s.trim_end_matches('/')
            ));
        }
        if s.contains("//") {
            return Err(format!("route path `{s}` has an empty segment (`//`)"));
        }
        let segments: Vec<&str> = s.split('/').skip(1).filter(|p| !p.is_empty()).collect();
        let mut seen = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            if let Some(inner) = seg.strip_prefix('{') {
                let Some(inner) = inner.strip_suffix('}') else {
                    return Err(format!(
                        "route segment `{seg}` must be a whole `{{name}}` parameter"
                    ));
                };
                let greedy = inner.ends_with('+');
                let name = inner.trim_end_matches('+');
                if greedy && i + 1 != segments.len() {
                    return Err(format!(
                        "greedy parameter `{seg}` must be the last segment of `{s}`"
                    ));
                }
                let ok = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    return Err(format!(
                        "path parameter `{seg}` needs a name of letters, digits and `_`"
                    ));
                }
                if seen.contains(&name) {
                    return Err(format!("path parameter `{name}` appears twice in `{s}`"));
                }
                seen.push(name);
            } else if let Some(c) = seg
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
            {
                return Err(format!(
                    "route path `{s}` contains `{c}`; use letters, digits, `-`, `.`, `_`, `~` and `{{param}}`"
                ));
            }
        }
        Ok(RoutePath(s.to_string()))
    }
}

string_newtype!(
    RoutePath,
    "an HTTP path starting with `/`: `/orders/{id}`; `{name}` matches one segment, a final `{name+}` the rest of the path (a catch-all: `/files/{key+}`); when several routes match, a literal segment beats `{name}`, which beats `{name+}` (docs/routing.md)",
    { "type": "string", "pattern": "^/" }
);

/// An environment variable name: letters, digits and `_`, not starting with a digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct EnvName(String);

impl EnvName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for EnvName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!(
                "`{s}` is not a valid environment variable name; use letters, digits and `_`"
            ));
        }
        for reserved in [
            "AWS_",
            "NIMBUS_",
            "FUNCTIONS_",
            "AzureWebJobs",
            "K_",
            "X_GOOGLE_",
        ] {
            if s.starts_with(reserved) {
                return Err(format!(
                    "environment variable `{s}` uses the reserved prefix `{reserved}`"
                ));
            }
        }
        Ok(EnvName(s.to_string()))
    }
}

string_newtype!(
    EnvName,
    "an environment variable name (letters, digits, `_`; not starting with `AWS_` or `NIMBUS_`)",
    { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" }
);

/// A secret's name, valid in every provider's secret store: 1 to 127 ASCII letters, digits and
/// `-` (Azure Key Vault's rule, which is also within Google Secret Manager's up to 255 of
/// `[A-Za-z0-9_-]` and AWS Secrets Manager's rules).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SecretName(String);

impl SecretName {
    /// The longest name every provider accepts (Azure Key Vault's limit).
    pub const MAX_LEN: usize = 127;

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SecretName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let fixed: String = s
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        if s.is_empty() {
            return Err("a secret name cannot be empty".into());
        }
        if s.len() > 255
            || s.chars()
                .any(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            return Err(format!(
                "`{s}` is not a valid Google Secret Manager secret name (up to 255 of \
                 `[A-Za-z0-9_-]`); use letters, digits and `-`, e.g. `{fixed}`"
            ));
        }
        if s.contains('_') {
            return Err(format!(
                "`{s}` is not a valid Azure Key Vault secret name (1-127 letters, digits and `-`; \
                 no `_`); write `{fixed}`"
            ));
        }
        if s.len() > Self::MAX_LEN {
            return Err(format!(
                "secret name `{s}` is {} characters; Azure Key Vault allows at most {}",
                s.len(),
                Self::MAX_LEN
            ));
        }
        Ok(SecretName(s.to_string()))
    }
}

string_newtype!(
    SecretName,
    "a secret name: 1 to 127 letters, digits and `-` (valid for AWS, Google and Azure)",
    { "type": "string", "pattern": "^[A-Za-z0-9-]{1,127}$" }
);

/// The language a handler is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Python.
    Python,
    /// JavaScript on Node.js.
    Node,
}

/// A neutral runtime; each provider maps it to its own identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
pub enum Runtime {
    /// Python 3.11.
    #[serde(rename = "python3.11")]
    Python311,
    /// Python 3.12.
    #[serde(rename = "python3.12")]
    Python312,
    /// Python 3.13.
    #[serde(rename = "python3.13")]
    Python313,
    /// Node.js 20 (retired: every provider's support ended on 2026-04-30; kept so that a
    /// manifest naming it is refused with that date rather than as an unknown word).
    #[serde(rename = "nodejs20")]
    #[schemars(skip)]
    Nodejs20,
    /// Node.js 22.
    #[serde(rename = "nodejs22")]
    Nodejs22,
    /// Node.js 24.
    #[serde(rename = "nodejs24")]
    Nodejs24,
}

impl Runtime {
    /// Every neutral runtime.
    pub const ALL: [Runtime; 6] = [
        Runtime::Python311,
        Runtime::Python312,
        Runtime::Python313,
        Runtime::Nodejs20,
        Runtime::Nodejs22,
        Runtime::Nodejs24,
    ];

    /// The neutral identifier (`python3.12`).
    pub fn id(&self) -> &'static str {
        match self {
            Runtime::Python311 => "python3.11",
            Runtime::Python312 => "python3.12",
            Runtime::Python313 => "python3.13",
            Runtime::Nodejs20 => "nodejs20",
            Runtime::Nodejs22 => "nodejs22",
            Runtime::Nodejs24 => "nodejs24",
        }
    }

    /// The language it runs.
    pub fn language(&self) -> Language {
        match self {
            Runtime::Python311 | Runtime::Python312 | Runtime::Python313 => Language::Python,
            Runtime::Nodejs20 | Runtime::Nodejs22 | Runtime::Nodejs24 => Language::Node,
        }
    }

    /// The runtime used when neither the function nor the defaults name one: one that every
    /// provider supports and none has deprecated (a test in `nimbus-provider` holds this).
    pub fn default_for(language: Language) -> Runtime {
        match language {
            Language::Python => Runtime::Python312,
            Language::Node => Runtime::Nodejs22,
        }
    }
}

impl<'de> Deserialize<'de> for Runtime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = d.deserialize_any(TextVisitor("a runtime such as `python3.12`"))?;
        Runtime::ALL
            .into_iter()
            .find(|r| r.id() == text)
            .ok_or_else(|| {
                let list: Vec<String> = Runtime::ALL.iter().map(|r| format!("`{r}`")).collect();
                serde::de::Error::custom(format!(
                    "unsupported runtime `{text}`; the runtimes are {}",
                    list.join(", ")
                ))
            })
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// An HTTP method; `ANY` matches every method.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
#[allow(missing_docs)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
    Any,
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Head => "HEAD",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Any => "ANY",
        };
        f.write_str(s)
    }
}

/// The kind of a resource.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// A key-value table (DynamoDB, Firestore, Table storage).
    Table,
    /// A queue: each message to one consumer (SQS, Pub/Sub subscription, Storage Queue).
    Queue,
    /// A topic: each message to every subscriber (SNS, Pub/Sub, Service Bus topic).
    Topic,
    /// An object store (S3, Cloud Storage, Blob container).
    Bucket,
}

impl ResourceKind {
    /// Every resource kind.
    pub const ALL: [ResourceKind; 4] = [
        ResourceKind::Table,
        ResourceKind::Queue,
        ResourceKind::Topic,
        ResourceKind::Bucket,
    ];

    /// The kind's name as written in the manifest.
    pub fn as_str(&self) -> &'static str {
        match self {
            ResourceKind::Table => "table",
            ResourceKind::Queue => "queue",
            ResourceKind::Topic => "topic",
            ResourceKind::Bucket => "bucket",
        }
    }

    /// The access levels a function may be granted on this kind.
    pub fn access_levels(&self) -> &'static [Access] {
        match self {
            ResourceKind::Table | ResourceKind::Bucket => {
                &[Access::Read, Access::Write, Access::ReadWrite]
            }
            ResourceKind::Queue => &[Access::Send],
            ResourceKind::Topic => &[Access::Publish],
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a function may do with a resource it uses.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Read items or objects.
    Read,
    /// Write and delete items or objects (no reads).
    Write,
    /// Read, write and delete.
    ReadWrite,
    /// Send messages to a queue.
    Send,
    /// Publish messages to a topic.
    Publish,
}

impl Access {
    /// The level as written in the manifest.
    pub fn as_str(&self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::ReadWrite => "read_write",
            Access::Send => "send",
            Access::Publish => "publish",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bucket event that can trigger a function.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum BucketEvent {
    /// An object was written (created or overwritten).
    Created,
    /// An object was deleted.
    Deleted,
}

/// A table change that can trigger a function.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TableEvent {
    /// A new item.
    Insert,
    /// A changed item.
    Modify,
    /// A deleted item.
    Remove,
}

/// The type of a table key attribute.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// Text.
    String,
    /// A number.
    Number,
    /// Raw bytes.
    Binary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!("place-order".parse::<Name>().is_ok());
        assert!("a".parse::<Name>().is_ok());
        assert!("a1-b2".parse::<Name>().is_ok());
        for bad in [
            "",
            "Place",
            "1abc",
            "a_b",
            "a-",
            "-a",
            "a.b",
            &"x".repeat(64),
        ] {
            assert!(bad.parse::<Name>().is_err(), "{bad}");
        }
        assert!(
            "Place_Order"
                .parse::<Name>()
                .unwrap_err()
                .contains("`place-order`")
        );
        assert!(
            "PlaceOrder"
                .parse::<Name>()
                .unwrap_err()
                .contains("`place-order`")
        );
        assert!("1.5s".parse::<Duration>().unwrap_err().contains("`1500ms`"));
    }

    #[test]
    fn durations() {
        assert_eq!("10s".parse::<Duration>().unwrap().as_millis(), 10_000);
        assert_eq!("500ms".parse::<Duration>().unwrap().as_millis(), 500);
        assert_eq!("5m".parse::<Duration>().unwrap().as_millis(), 300_000);
        assert_eq!("1h".parse::<Duration>().unwrap().to_string(), "1h");
        assert_eq!("90s".parse::<Duration>().unwrap().to_string(), "90s");
        assert_eq!("1500ms".parse::<Duration>().unwrap().as_secs_ceil(), 2);
        for bad in [
            "",
            "10",
            "s",
            "10x",
            "0s",
            "-5s",
            "1.5s",
            "99999999999999999999h",
        ] {
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn handlers() {
        let h: Handler = "orders/place.py:handler".parse().unwrap();
        assert_eq!(
            (h.file.as_str(), h.export.as_str(), h.dir()),
            ("orders/place.py", "handler", "orders")
        );
        assert_eq!(h.language(), Language::Python);
        let h: Handler = "./index.mjs:main".parse().unwrap();
        assert_eq!(
            (h.file.as_str(), h.dir(), h.language()),
            ("index.mjs", "", Language::Node)
        );
        for bad in [
            "orders/place.py",
            "place.rb:handler",
            "../x.py:h",
            "/abs/x.py:h",
            "x.py:1h",
            ":h",
            "a\\b.py:h",
        ] {
            assert!(bad.parse::<Handler>().is_err(), "{bad}");
        }
    }

    #[test]
    fn routes() {
        let r: RoutePath = "/orders/{id}".parse().unwrap();
        assert_eq!(r.params(), vec!["id"]);
        assert_eq!(r.shape(), "orders/{}");
        assert_eq!(
            "/files/{path+}".parse::<RoutePath>().unwrap().shape(),
            "files/{+}"
        );
        assert!("/".parse::<RoutePath>().is_ok());
        for bad in [
            "orders", "/orders/", "/a//b", "/{a}/{a}", "/{a+}/b", "/a b", "/x{y}", "/{}",
        ] {
            assert!(bad.parse::<RoutePath>().is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_names() {
        assert!("payment-key".parse::<SecretName>().is_ok());
        assert!("A1-b2".parse::<SecretName>().is_ok());
        let e = "payment_key".parse::<SecretName>().unwrap_err();
        assert!(
            e.contains("Azure Key Vault") && e.contains("payment-key"),
            "{e}"
        );
        let e = "pay.key".parse::<SecretName>().unwrap_err();
        assert!(e.contains("Google Secret Manager"), "{e}");
        let e = "a".repeat(128).parse::<SecretName>().unwrap_err();
        assert!(e.contains("at most 127"), "{e}");
        assert!("a".repeat(127).parse::<SecretName>().is_ok());
        assert!("".parse::<SecretName>().is_err());
    }

    #[test]
    fn env_names() {
        assert!("LOG_LEVEL".parse::<EnvName>().is_ok());
        for bad in ["1X", "A-B", "AWS_REGION", "NIMBUS_X", ""] {
            assert!(bad.parse::<EnvName>().is_err(), "{bad}");
        }
    }
}
