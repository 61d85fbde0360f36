//! HTTP routing: method + path pattern (`/orders/{id}`, a final `{rest+}`) → function.
//!
//! Literal segments win over parameters, parameters over a greedy tail, so `/orders/new` and
//! `/orders/{id}` can live side by side; a named method wins over `ANY` on the same path
//! (`nimbus_manifest::routes::order_key`, the same order on every target). A path that matches with another method gives 405;
//! methods are compared case-sensitively, as HTTP says (`get` is not `GET`).

use std::collections::BTreeMap;

use nimbus_graph::CorsPolicy;
use nimbus_manifest::{Auth, HttpMethod};

/// One route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The method, or `ANY`.
    pub method: HttpMethod,
    /// The pattern as written (`/orders/{id}`).
    pub pattern: String,
    /// The function it invokes.
    pub function: String,
    /// Who may call it.
    pub auth: Auth,
    /// Cross-origin requests, when the route answers them.
    pub cors: Option<CorsPolicy>,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

/// A matched route and its path parameters.
#[derive(Debug, Clone)]
pub struct Matched<'a> {
    /// The route.
    pub route: &'a Route,
    /// `{name}` → value (percent-decoded).
    pub params: BTreeMap<String, String>,
}

/// What routing found.
#[derive(Debug)]
pub enum Routed<'a> {
    /// A route for this method and path.
    Found(Matched<'a>),
    /// The path exists but not for this method; the allowed methods.
    MethodNotAllowed(Vec<String>),
    /// No route has this path.
    NotFound,
}

/// All routes of a deployment.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Adds a route without CORS.
    pub fn add(&mut self, method: HttpMethod, pattern: &str, function: &str, auth: Auth) {
        self.add_with_cors(method, pattern, function, auth, None);
    }

    /// Adds a route with its CORS policy.
    pub fn add_with_cors(
        &mut self,
        method: HttpMethod,
        pattern: &str,
        function: &str,
        auth: Auth,
        cors: Option<CorsPolicy>,
    ) {
        let segments = pattern
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) if name.ends_with('+') => {
                        Segment::Greedy(name.trim_end_matches('+').to_string())
                    }
                    Some(name) => Segment::Param(name.to_string()),
                    None => Segment::Literal(s.to_string()),
                },
            )
            .collect();
        self.routes.push(Route {
            method,
            pattern: pattern.to_string(),
            function: function.to_string(),
            auth,
            cors,
            segments,
        });
        // Most specific first: literals before params before greedy tails, longer before shorter.
        self.routes.sort_by_key(|r| {
            let rank: Vec<u8> = r
                .segments
                .iter()
                .map(|s| match s {
                    Segment::Literal(_) => 0,
                    Segment::Param(_) => 1,
                    Segment::Greedy(_) => 2,
                })
                .collect();
            (
                rank,
                std::cmp::Reverse(r.segments.len()),
                r.method == HttpMethod::Any,
            )
        });
    }

    /// Every route.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The CORS policy a preflight for `method` on `path` is answered with: the route's that
    /// `method` reaches, else the first route on the path that has one (a gateway answers
    /// preflights per path, as API Gateway does, whatever the method asked for).
    pub fn cors_for(&self, method: &str, path: &str) -> Option<&CorsPolicy> {
        if let Routed::Found(m) = self.route(method, path) {
            return m.route.cors.as_ref();
        }
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.routes
            .iter()
            .filter(|r| matches(&r.segments, &parts).is_some())
            .find_map(|r| r.cors.as_ref())
    }

    /// Finds the route for `method` and `path` (the path without its query string).
    pub fn route(&self, method: &str, path: &str) -> Routed<'_> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut allowed = Vec::new();
        let mut head_by_get = None;
        for route in &self.routes {
            let Some(params) = matches(&route.segments, &parts) else {
                continue;
            };
            // Method names are case-sensitive (RFC 9110, 9.1): `get` is not `GET`.
            if route.method == HttpMethod::Any || route.method.to_string() == method {
                return Routed::Found(Matched { route, params });
            }
            // HEAD falls back to a GET route only when no route takes HEAD itself (an `ANY`
            // beside the `GET` does, as on the clouds).
            if method == "HEAD" && route.method == HttpMethod::Get && head_by_get.is_none() {
                head_by_get = Some(Matched { route, params });
                continue;
            }
            allowed.push(route.method.to_string());
        }
        if let Some(found) = head_by_get {
            return Routed::Found(found);
        }
        if allowed.is_empty() {
            Routed::NotFound
        } else {
            allowed.sort();
            allowed.dedup();
            Routed::MethodNotAllowed(allowed)
        }
    }
}

fn matches(segments: &[Segment], parts: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Greedy(name) => {
                if i >= parts.len() {
                    return None;
                }
                let rest: Vec<String> = parts[i..].iter().map(|p| percent_decode(p)).collect();
                params.insert(name.clone(), rest.join("/"));
                return Some(params);
            }
            Segment::Literal(lit) => {
                if parts.get(i).map(|p| percent_decode(p)) != Some(lit.clone()) {
                    return None;
                }
            }
            Segment::Param(name) => {
                let value = parts.get(i)?;
                params.insert(name.clone(), percent_decode(value));
            }
        }
    }
    (segments.len() == parts.len()).then_some(params)
}

/// Decodes `%XX` escapes (and leaves malformed ones as they are); `+` stays `+` in paths.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let mut r = Router::default();
        r.add(HttpMethod::Post, "/orders", "place", Auth::None);
        r.add(HttpMethod::Get, "/orders/{id}", "get", Auth::None);
        r.add(HttpMethod::Get, "/orders/new", "new-form", Auth::None);
        r.add(HttpMethod::Any, "/files/{path+}", "files", Auth::None);
        r.add(HttpMethod::Get, "/", "root", Auth::None);
        r
    }

    fn found(r: &Router, m: &str, p: &str) -> (String, BTreeMap<String, String>) {
        match r.route(m, p) {
            Routed::Found(x) => (x.route.function.clone(), x.params),
            other => panic!("{m} {p}: {other:?}"),
        }
    }

    #[test]
    fn routes_by_method_and_specificity() {
        let r = router();
        assert_eq!(found(&r, "POST", "/orders").0, "place");
        let (f, p) = found(&r, "GET", "/orders/42");
        assert_eq!((f.as_str(), p["id"].as_str()), ("get", "42"));
        assert_eq!(
            found(&r, "GET", "/orders/new").0,
            "new-form",
            "literal beats parameter"
        );
        assert_eq!(found(&r, "GET", "/orders/a%20b").1["id"], "a b");
        let (f, p) = found(&r, "DELETE", "/files/a/b/c.txt");
        assert_eq!((f.as_str(), p["path"].as_str()), ("files", "a/b/c.txt"));
        assert_eq!(found(&r, "GET", "/").0, "root");
        assert_eq!(
            found(&r, "HEAD", "/orders/1").0,
            "get",
            "HEAD is served by GET"
        );
    }

    #[test]
    fn not_found_and_method_not_allowed() {
        let r = router();
        assert!(matches!(r.route("GET", "/nope"), Routed::NotFound));
        assert!(matches!(r.route("GET", "/orders/1/2"), Routed::NotFound));
        assert!(
            matches!(r.route("GET", "/files"), Routed::NotFound),
            "greedy needs one segment"
        );
        match r.route("PUT", "/orders") {
            Routed::MethodNotAllowed(m) => assert_eq!(m, vec!["POST".to_string()]),
            other => panic!("{other:?}"),
        }
        match r.route("get", "/orders/1") {
            Routed::MethodNotAllowed(m) => assert_eq!(m, vec!["GET".to_string()]),
            other => panic!("methods are case-sensitive: {other:?}"),
        }
        assert!(
            matches!(r.route("head", "/orders/1"), Routed::MethodNotAllowed(_)),
            "nor is `head` HEAD"
        );
        assert_eq!(
            found(&r, "patch", "/files/x").0,
            "files",
            "ANY takes any method"
        );
    }

    #[test]
    fn percent_decoding_leaves_malformed_escapes() {
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }
}
