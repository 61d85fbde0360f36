//! Cross-origin resource sharing (CORS) as the manifest writes it: the app-wide `http.cors`
//! setting, a route's own `cors` (an override, or `false` to opt out), the validated origin and
//! header-name types, and the checks that need several fields at once (`*` with credentials,
//! `max_age` bounds).
//!
//! An origin is `scheme://host[:port]` exactly as a browser sends it in `Origin` (lower case, no
//! path, no default port), `*` for any, or `scheme://*.domain[:port]` for every subdomain of
//! `domain` (not `domain` itself). Which of these a provider can express is the provider
//! check's business (`nimbus-provider`), not this module's.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use nimbus_diagnostic::Diagnostic;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::Spanned;
use crate::model::{Manifest, Trigger};
use crate::types::{Duration, HttpMethod, TextVisitor, string_newtype};

/// The longest `max_age`: API Gateway's documented limit (86400 s); browsers cap it lower
/// (Chromium at 2 h, Firefox at 24 h).
pub const MAX_AGE_LIMIT_SECS: u64 = 86_400;

/// Which browser origins may call the API, and with what.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// Origins allowed to call: exact (`https://app.example.com`, `http://localhost:5173`),
    /// every subdomain of a domain (`https://*.example.com`), or `*` for any origin.
    pub origins: Spanned<Vec<Spanned<CorsOrigin>>>,
    /// Methods a cross-origin request may use (every method when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Spanned<Vec<Spanned<HttpMethod>>>>,
    /// Request headers a cross-origin request may send (`[content-type, authorization]` when
    /// unset; `*` for any, not with `credentials`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Spanned<Vec<Spanned<HeaderName>>>>,
    /// Response headers the browser lets the calling script read, beyond the safelisted ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<Spanned<HeaderName>>,
    /// Allow cookies and HTTP authentication (`Access-Control-Allow-Credentials: true`); false
    /// when unset. Not with the `*` origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Spanned<bool>>,
    /// How long a browser may cache a preflight's answer (at most `24h`; unset: the browser's
    /// default, 5 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Spanned<Duration>>,
}

/// A route's `cors`: its own settings, or `false` for none at all.
#[derive(Debug, Clone)]
pub enum RouteCors {
    /// `cors: false`: no CORS on this route, whatever `http.cors` says.
    Off,
    /// Settings that replace `http.cors` for this route.
    Policy(Cors),
}

impl Serialize for RouteCors {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RouteCors::Off => s.serialize_bool(false),
            RouteCors::Policy(c) => c.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RouteCors {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RouteCors;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`false` or a mapping with `origins`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RouteCors, E> {
                if v {
                    Err(E::custom(
                        "`cors: true` is not a setting; leave `cors` out to use `http.cors`, or \
                         give this route its own `{ origins: [...] }`",
                    ))
                } else {
                    Ok(RouteCors::Off)
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RouteCors, A::Error> {
                Cors::deserialize(de::value::MapAccessDeserializer::new(map)).map(RouteCors::Policy)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for RouteCors {
    fn schema_name() -> Cow<'static, str> {
        "RouteCors".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let cors = g.subschema_for::<Cors>();
        json_schema!({
            "description": "this route's own CORS settings (replacing `http.cors`), or `false` for none",
            "anyOf": [{ "const": false }, cors]
        })
    }
}

/// An allowed origin: `*`, `scheme://host[:port]`, or `scheme://*.domain[:port]`. Kept in lower
/// case, as browsers send it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CorsOrigin(String);

impl CorsOrigin {
    /// The origin as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `*`: any origin.
    pub fn is_any(&self) -> bool {
        self.0 == "*"
    }

    /// A `scheme://*.domain` pattern.
    pub fn is_wildcard_subdomain(&self) -> bool {
        self.0.contains("://*.")
    }
}

impl fmt::Display for CorsOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CorsOrigin {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "*" {
            return Ok(CorsOrigin(s.into()));
        }
        let lower = s.to_ascii_lowercase();
        let Some((scheme, rest)) = lower.split_once("://") else {
            return Err(format!(
                "origin `{s}` has no scheme; write it as a browser sends it, e.g. `https://{}`",
                s.trim_start_matches('/')
            ));
        };
        let default_port = match scheme {
            "https" => 443,
            "http" => 80,
            _ => {
                return Err(format!(
                    "origin `{s}`: the scheme must be `https` or `http`, not `{scheme}`"
                ));
            }
        };
        if let Some(cut) = rest.find(['/', '?', '#']) {
            return Err(format!(
                "origin `{s}` has a path; an origin is `scheme://host[:port]` only: write \
                 `{scheme}://{}`",
                &rest[..cut]
            ));
        }
        if rest.contains('@') {
            return Err(format!(
                "origin `{s}` has user information; an origin is `scheme://host[:port]` only"
            ));
        }
        let (host, port) = split_port(rest).map_err(|e| format!("origin `{s}`: {e}"))?;
        if port == Some(default_port) {
            return Err(format!(
                "origin `{s}` names the default port, which browsers leave out of `Origin`: \
                 write `{scheme}://{host}`"
            ));
        }
        let bare = host.strip_prefix("*.").unwrap_or(host);
        if bare.contains('*') {
            return Err(format!(
                "origin `{s}`: a wildcard may only be the first label, as in \
                 `{scheme}://*.example.com`"
            ));
        }
        check_host(bare).map_err(|e| format!("origin `{s}`: {e}"))?;
        if bare.len() < host.len() && bare.split('.').count() < 2 {
            return Err(format!(
                "origin `{s}` would allow every subdomain of a top-level domain; name a \
                 registered domain, as in `{scheme}://*.example.com`"
            ));
        }
        Ok(CorsOrigin(lower))
    }
}

/// `host[:port]` → host and port; an IPv6 host keeps its brackets.
fn split_port(rest: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if rest.starts_with('[') {
        let end = rest
            .find(']')
            .ok_or("an IPv6 address needs its closing `]`")?;
        let (host, after) = rest.split_at(end + 1);
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("unexpected `{after}` after the host")),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Some(n),
            _ => return Err(format!("`{p}` is not a port (1-65535)")),
        },
    };
    Ok((host, port))
}

fn check_host(host: &str) -> Result<(), String> {
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.trim_end_matches(']');
        if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(format!("`{host}` is not an IPv6 address"));
        }
        return Ok(());
    }
    if host.len() > 253 {
        return Err("the host is over 253 characters".into());
    }
    for label in host.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "`{host}` is not a host name (labels of letters, digits and `-`, separated by `.`)"
            ));
        }
    }
    Ok(())
}

string_newtype!(
    CorsOrigin,
    "`scheme://host[:port]`, `scheme://*.domain[:port]` or `*`",
    { "type": "string", "pattern": "^(\\*|https?://(\\*\\.)?[^/*?#@]+)$" }
);

/// An HTTP header name (an RFC 9110 token), kept in lower case; `*` stands for any.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct HeaderName(String);

impl HeaderName {
    /// The name as text (lower case).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for HeaderName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if s.is_empty() || !s.chars().all(token) || (s.contains('*') && s != "*") {
            return Err(format!(
                "`{s}` is not a header name (letters, digits and `-`, such as `content-type`), \
                 nor `*`"
            ));
        }
        Ok(HeaderName(s.to_ascii_lowercase()))
    }
}

string_newtype!(
    HeaderName,
    "a header name such as `content-type`, or `*`",
    { "type": "string", "pattern": "^([!#$%&'+.^_`|~0-9A-Za-z-]+|\\*)$" }
);

/// Reports what is wrong with `http.cors` and every route's own `cors`.
pub(crate) fn check(manifest: &Manifest, diags: &mut Vec<Diagnostic>) {
    if let Some(cors) = &manifest.http.cors {
        check_policy(cors, diags);
    }
    for f in manifest.functions.values() {
        for t in &f.triggers {
            if let Trigger::Http(h) = &t.value
                && let Some(c) = &h.cors
                && let RouteCors::Policy(policy) = &c.value
            {
                check_policy(&Spanned::new(c.span, policy.clone()), diags);
            }
        }
    }
}

fn check_policy(cors: &Spanned<Cors>, diags: &mut Vec<Diagnostic>) {
    if cors.origins.is_empty() {
        diags.push(
            Diagnostic::error(
                cors.origins.span,
                "`origins` is empty: no origin could call",
            )
            .with_hint("list the front-end origins, e.g. `origins: [\"https://app.example.com\"]`"),
        );
    }
    let credentials = cors.credentials.as_ref().is_some_and(|c| **c);
    if credentials {
        for o in cors.origins.iter().filter(|o| o.is_any()) {
            diags.push(
                Diagnostic::error(
                    o.span,
                    "the `*` origin cannot be used with `credentials: true`",
                )
                .with_label("browsers refuse a credentialed response allowed for `*`")
                .with_hint("list the origins that send cookies, or set `credentials: false`"),
            );
        }
        let stars = cors
            .allow_headers
            .iter()
            .flat_map(|h| h.iter())
            .chain(cors.expose_headers.iter())
            .filter(|h| h.as_str() == "*");
        for h in stars {
            diags.push(
                Diagnostic::error(
                    h.span,
                    "`*` cannot stand for every header with `credentials: true`",
                )
                .with_label("browsers read it as a header named `*` on credentialed requests")
                .with_hint("list the header names"),
            );
        }
    }
    if let Some(age) = &cors.max_age {
        if age.as_millis() % 1000 != 0 {
            diags.push(
                Diagnostic::error(age.span, "`max_age` is sent in whole seconds")
                    .with_hint(format!("write `{}s`", age.as_secs_ceil())),
            );
        } else if age.as_secs_ceil() > MAX_AGE_LIMIT_SECS {
            diags.push(
                Diagnostic::error(age.span, format!("`max_age` of {} is over 24h", age.value))
                    .with_label("API Gateway refuses more than 86400 s; browsers cap it lower")
                    .with_hint("write `max_age: 2h` (Chromium's own cap) or less"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_as_browsers_send_them() {
        for ok in [
            "*",
            "https://app.example.com",
            "HTTPS://App.Example.com",
            "http://localhost:5173",
            "https://*.example.com",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
        ] {
            assert!(ok.parse::<CorsOrigin>().is_ok(), "{ok}");
        }
        assert_eq!(
            "HTTPS://App.Example.com"
                .parse::<CorsOrigin>()
                .unwrap()
                .as_str(),
            "https://app.example.com"
        );
        for (bad, why) in [
            ("app.example.com", "no scheme"),
            ("ftp://example.com", "scheme must be"),
            ("https://example.com/", "has a path"),
            ("https://example.com/app", "has a path"),
            ("https://example.com:443", "default port"),
            ("https://example.com:0", "not a port"),
            ("https://app.*.example.com", "first label"),
            ("https://*example.com", "first label"),
            ("https://*.com", "top-level domain"),
            ("https://user@example.com", "user information"),
            ("https://exa mple.com", "not a host name"),
            ("https://", "no host"),
        ] {
            let e = bad.parse::<CorsOrigin>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn header_names_are_tokens() {
        assert_eq!(
            "Content-Type".parse::<HeaderName>().unwrap().as_str(),
            "content-type"
        );
        assert!("*".parse::<HeaderName>().is_ok());
        assert!("x-*".parse::<HeaderName>().is_err());
        assert!("bad header".parse::<HeaderName>().is_err());
        assert!("".parse::<HeaderName>().is_err());
    }
}
