//! A route's resolved CORS policy and the neutral CORS algorithm every target follows.
//!
//! Resolution: a route's own `cors` wins, `cors: false` means none, else `http.cors`. Defaults
//! are applied here: every method when `methods` is unset (spelled out when credentials are on,
//! as browsers read `*` literally then), `content-type` and `authorization` when `allow_headers`
//! is unset.
//!
//! The algorithm (the local gateway and the GCP shims implement it; AWS and Azure configure
//! their platform to the same effect, see `docs/cors.md`):
//! - a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered by
//!   the gateway, never the handler: `204`, `Vary: Origin`, and, only when the origin, the method
//!   and every requested header are allowed, the `Access-Control-Allow-*` headers;
//! - any other request with an allowed `Origin` reaches the handler, and its response gets
//!   `Access-Control-Allow-Origin`, `Vary: Origin` and, when set, `Access-Control-Expose-Headers`
//!   and `Access-Control-Allow-Credentials`; the handler's own `Access-Control-*` headers are
//!   dropped (as API Gateway does), so the manifest is the one source of truth;
//! - a request from an origin that is not allowed gets no `Access-Control-*` header at all, so
//!   the browser refuses it. The gateway does not answer 403: a request without CORS headers is
//!   what AWS and Azure answer too.

use nimbus_diagnostic::Span;
use nimbus_manifest::{Cors, HttpMethod};
use serde::{Deserialize, Serialize};

/// Every method a route may have, for `methods` left unset with credentials on.
const ALL_METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
/// Request headers allowed when `allow_headers` is unset.
pub const DEFAULT_ALLOW_HEADERS: [&str; 2] = ["content-type", "authorization"];

/// A route's CORS settings with defaults applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorsPolicy {
    /// Allowed origins (`*`, exact, or `scheme://*.domain[:port]`), lower case.
    pub origins: Vec<String>,
    /// Allowed methods, upper case; `["*"]` for every one.
    pub methods: Vec<String>,
    /// Allowed request headers, lower case; `["*"]` for any.
    pub allow_headers: Vec<String>,
    /// Response headers exposed to the calling script.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// `Access-Control-Allow-Credentials: true`.
    #[serde(default)]
    pub credentials: bool,
    /// `Access-Control-Max-Age`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_secs: Option<u64>,
    /// Where it was written.
    #[serde(skip)]
    pub spans: CorsSpans,
}

/// Where a policy's parts are in the manifest, for provider checks.
#[derive(Debug, Clone, Default)]
pub struct CorsSpans {
    /// The `cors` block (the route's, or `http.cors`).
    pub block: Span,
    /// Each origin, in order.
    pub origins: Vec<Span>,
}

/// Equal when the settings are; where they were written does not matter.
impl PartialEq for CorsPolicy {
    fn eq(&self, o: &Self) -> bool {
        (
            &self.origins,
            &self.methods,
            &self.allow_headers,
            &self.expose_headers,
            self.credentials,
            self.max_age_secs,
        ) == (
            &o.origins,
            &o.methods,
            &o.allow_headers,
            &o.expose_headers,
            o.credentials,
            o.max_age_secs,
        )
    }
}
impl Eq for CorsPolicy {}

impl CorsPolicy {
    /// Resolves the manifest's settings, written at `block`.
    pub fn resolve(c: &Cors, block: Span) -> CorsPolicy {
        let credentials = c.credentials.as_ref().is_some_and(|v| **v);
        let mut methods: Vec<String> = match &c.methods {
            Some(m) if !m.iter().any(|m| **m == HttpMethod::Any) => {
                m.iter().map(|m| m.to_string()).collect()
            }
            _ if credentials => ALL_METHODS.iter().map(|m| m.to_string()).collect(),
            _ => vec!["*".into()],
        };
        methods.dedup();
        let allow_headers = match &c.allow_headers {
            Some(h) => h.iter().map(|h| h.to_string()).collect(),
            None => DEFAULT_ALLOW_HEADERS
                .iter()
                .map(|h| h.to_string())
                .collect(),
        };
        CorsPolicy {
            origins: c.origins.iter().map(|o| o.to_string()).collect(),
            methods,
            allow_headers,
            expose_headers: c.expose_headers.iter().map(|h| h.to_string()).collect(),
            credentials,
            max_age_secs: c.max_age.as_ref().map(|a| a.as_secs_ceil()),
            spans: CorsSpans {
                block,
                origins: c.origins.iter().map(|o| o.span).collect(),
            },
        }
    }

    /// Whether `origin` (as the browser sent it) may call.
    pub fn allows_origin(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.origins.iter().any(|o| origin_matches(o, &origin))
    }

    fn allows_method(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == "*" || m == method)
    }

    fn allows_headers(&self, requested: &str) -> bool {
        requested
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .all(|h| self.allow_headers.iter().any(|a| a == "*" || *a == h))
    }

    fn allow_origin_value(&self, origin: &str) -> String {
        if !self.credentials && self.origins.iter().any(|o| o == "*") {
            "*".into()
        } else {
            origin.to_string()
        }
    }

    /// The headers of the gateway's `204` answer to a preflight.
    pub fn preflight(
        &self,
        origin: &str,
        request_method: &str,
        request_headers: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let mut out = vec![("vary", "Origin".to_string())];
        if !self.allows_origin(origin)
            || !self.allows_method(request_method)
            || !self.allows_headers(request_headers.unwrap_or(""))
        {
            return out;
        }
        out.push((
            "access-control-allow-origin",
            self.allow_origin_value(origin),
        ));
        out.push(("access-control-allow-methods", self.methods.join(", ")));
        if !self.allow_headers.is_empty() {
            out.push((
                "access-control-allow-headers",
                self.allow_headers.join(", "),
            ));
        }
        if self.credentials {
            out.push(("access-control-allow-credentials", "true".into()));
        }
        if let Some(age) = self.max_age_secs {
            out.push(("access-control-max-age", age.to_string()));
        }
        out
    }

    /// The headers added to the handler's response to a request with `Origin` (none when the
    /// origin is not allowed; `Vary: Origin` always).
    pub fn actual(&self, origin: &str) -> Vec<(&'static str, String)> {
        let mut out = vec![("vary", "Origin".to_string())];
        if !self.allows_origin(origin) {
            return out;
        }
        out.push((
            "access-control-allow-origin",
            self.allow_origin_value(origin),
        ));
        if !self.expose_headers.is_empty() {
            out.push((
                "access-control-expose-headers",
                self.expose_headers.join(", "),
            ));
        }
        if self.credentials {
            out.push(("access-control-allow-credentials", "true".into()));
        }
        out
    }
}

/// `pattern` (`*`, exact, or `scheme://*.domain[:port]`) against a lower-case origin.
pub fn origin_matches(pattern: &str, origin: &str) -> bool {
    if pattern == "*" || pattern == origin {
        return true;
    }
    let Some((scheme, rest)) = pattern.split_once("://*.") else {
        return false;
    };
    let Some(host_port) = origin
        .strip_prefix(scheme)
        .and_then(|o| o.strip_prefix("://"))
    else {
        return false;
    };
    // `rest` is `domain[:port]`: the origin must end with `.domain[:port]` after a non-empty
    // subdomain made of host characters only (no port or `@` smuggled in front).
    host_port
        .strip_suffix(rest)
        .and_then(|sub| sub.strip_suffix('.'))
        .is_some_and(|sub| {
            !sub.is_empty()
                && sub
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: &[&str], credentials: bool) -> CorsPolicy {
        CorsPolicy {
            origins: origins.iter().map(|s| s.to_string()).collect(),
            methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["content-type".into()],
            expose_headers: vec!["x-request-id".into()],
            credentials,
            max_age_secs: Some(600),
            spans: CorsSpans::default(),
        }
    }

    #[test]
    fn wildcard_subdomains_match_subdomains_only() {
        let p = "https://*.example.com";
        assert!(origin_matches(p, "https://a.example.com"));
        assert!(origin_matches(p, "https://a.b.example.com"));
        assert!(!origin_matches(p, "https://example.com"));
        assert!(!origin_matches(p, "http://a.example.com"));
        assert!(!origin_matches(p, "https://a.example.com:8443"));
        assert!(!origin_matches(p, "https://evil-example.com"));
        assert!(!origin_matches(p, "https://a.example.com.evil.net"));
        assert!(origin_matches(
            "https://*.example.com:8443",
            "https://a.example.com:8443"
        ));
    }

    #[test]
    fn preflight_allows_only_what_is_configured() {
        let p = policy(&["https://app.example.com"], true);
        let h = p.preflight("https://app.example.com", "POST", Some("Content-Type"));
        assert!(h.contains(&(
            "access-control-allow-origin",
            "https://app.example.com".into()
        )));
        assert!(h.contains(&("access-control-allow-credentials", "true".into())));
        assert!(h.contains(&("access-control-max-age", "600".into())));
        for (origin, method, headers) in [
            ("https://evil.example", "POST", None),
            ("https://app.example.com", "DELETE", None),
            (
                "https://app.example.com",
                "POST",
                Some("content-type, x-secret"),
            ),
        ] {
            assert_eq!(
                p.preflight(origin, method, headers),
                vec![("vary", "Origin".to_string())]
            );
        }
    }

    #[test]
    fn any_origin_answers_star_without_credentials() {
        let p = policy(&["*"], false);
        let h = p.actual("https://who.ever");
        assert!(h.contains(&("access-control-allow-origin", "*".into())));
        assert!(h.contains(&("access-control-expose-headers", "x-request-id".into())));
        assert!(
            !h.iter()
                .any(|(k, _)| *k == "access-control-allow-credentials")
        );
    }
}
