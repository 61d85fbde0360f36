//! The CORS request table (`tests/shims/cases/cors.json`) and evaluators of the platforms whose
//! CORS Nimbus only configures (AWS, Azure): given the configuration lowering gives the
//! platform, what it answers to each request, following the platform's documentation.
//!
//! This is configuration-level verification: it proves Nimbus writes the configuration whose
//! documented behaviour is the table's, not that the platform behaves as documented.
//! - AWS (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html): a
//!   preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered by API
//!   Gateway, before any integration, from `CorsConfiguration`; CORS headers are added to the
//!   integration's responses and the integration's own are ignored; origins are exact, `*`, or
//!   `scheme://*` (prefix), methods and headers listed or `*`.
//! - Azure (App Service CORS, `siteConfig.cors`): `allowedOrigins` (exact or `*`) and
//!   `supportCredentials`; a preflight from an allowed origin is answered for any requested
//!   method and headers (reflected), and App Service CORS takes precedence over the app's own
//!   CORS headers.
//!
//! Refused requests get no `Access-Control-*` header (the preflight still answers `204`), which
//! is what browsers act on; the platforms' exact status for a refused preflight is not
//! documented and the table does not depend on it beyond the neutral `204`.

use std::collections::BTreeMap;

use serde_json::Value;

/// The table.
pub fn table() -> Value {
    let path = crate::repo().join("tests/shims/cases/cors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("cors.json is JSON")
}

/// One request of the table.
#[derive(Debug, Clone)]
pub struct Request {
    /// `OPTIONS`, `POST`, ...
    pub method: String,
    /// `Origin`.
    pub origin: Option<String>,
    /// `Access-Control-Request-Method`.
    pub request_method: Option<String>,
    /// `Access-Control-Request-Headers`.
    pub request_headers: Option<String>,
}

impl Request {
    /// A case's `request`.
    pub fn of(case: &Value) -> Request {
        let r = &case["request"];
        let s = |k: &str| r[k].as_str().map(str::to_string);
        Request {
            method: s("method").expect("a method"),
            origin: s("origin"),
            request_method: s("request_method"),
            request_headers: s("request_headers"),
        }
    }

    fn is_preflight(&self) -> bool {
        self.method == "OPTIONS" && self.origin.is_some() && self.request_method.is_some()
    }

    fn requested_headers(&self) -> Vec<String> {
        self.request_headers
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect()
    }
}

/// What a target answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// Whether the handler ran.
    pub handler: bool,
    /// Response headers, lower-case names.
    pub headers: BTreeMap<String, String>,
}

/// The handler of the table: 200, `x-handled: yes`, and an `access-control-allow-origin` of
/// its own that CORS must replace.
pub fn handler_answer() -> Answer {
    Answer {
        status: 200,
        handler: true,
        headers: BTreeMap::from([
            ("x-handled".into(), "yes".into()),
            ("x-request-id".into(), "r-1".into()),
            (
                "access-control-allow-origin".into(),
                "https://handler.example".into(),
            ),
        ]),
    }
}

/// A case's expectation for `target` (`local`, `gcp`, `aws`, `azure`).
pub fn expected(case: &Value, target: &str) -> Value {
    case.get(target).unwrap_or(&case["expect"]).clone()
}

/// Checks `answer` against `case`'s expectation for `target`; the error says what differs.
pub fn check(case: &Value, target: &str, answer: &Answer) -> Result<(), String> {
    let want = expected(case, target);
    let name = case["name"].as_str().unwrap_or("?");
    let origin = case["request"]["origin"].as_str();
    let mut wrong = Vec::new();
    if want["status"].as_u64() != Some(u64::from(answer.status)) {
        wrong.push(format!(
            "status {} (want {})",
            answer.status, want["status"]
        ));
    }
    if want["handler"].as_bool() != Some(answer.handler) {
        wrong.push(format!(
            "handler ran: {} (want {})",
            answer.handler, want["handler"]
        ));
    }
    let acao = answer.headers.get("access-control-allow-origin");
    let allowed = acao.is_some_and(|v| Some(v.as_str()) == origin);
    if want["allowed"].as_bool() != Some(allowed) {
        wrong.push(format!(
            "allowed: {allowed} (want {}; access-control-allow-origin: {acao:?})",
            want["allowed"]
        ));
    }
    if !allowed {
        let leaked: Vec<&String> = answer
            .headers
            .keys()
            .filter(|k| k.starts_with("access-control-"))
            .collect();
        if !leaked.is_empty() {
            wrong.push(format!("a refused request got {leaked:?}"));
        }
    }
    if let Some(headers) = want["headers"].as_object() {
        for (k, v) in headers {
            if answer.headers.get(k).map(String::as_str) != v.as_str() {
                wrong.push(format!("{k}: {:?} (want {v})", answer.headers.get(k)));
            }
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{target} / {name}: {}", wrong.join("; ")))
    }
}

fn strip_cors(mut a: Answer) -> Answer {
    a.headers.retain(|k, _| !k.starts_with("access-control-"));
    a
}

fn list(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// What API Gateway HTTP API answers with `config` (a `CorsConfiguration`).
pub fn aws(config: &Value, req: &Request) -> Answer {
    let origins = list(config, "AllowOrigins");
    let credentials = config["AllowCredentials"].as_bool().unwrap_or(false);
    let origin_ok = |o: &str| {
        origins.iter().any(|p| {
            p == "*"
                || p.eq_ignore_ascii_case(o)
                || p.strip_suffix('*')
                    .is_some_and(|prefix| prefix.ends_with("://") && o.starts_with(prefix))
        })
    };
    let acao = |o: &str| {
        if origins.iter().any(|p| p == "*") && !credentials {
            "*".to_string()
        } else {
            o.to_string()
        }
    };
    if req.is_preflight() {
        let origin = req.origin.as_deref().unwrap_or_default();
        let method = req.request_method.as_deref().unwrap_or_default();
        let methods = list(config, "AllowMethods");
        let allow = list(config, "AllowHeaders");
        let ok = origin_ok(origin)
            && methods
                .iter()
                .any(|m| m == "*" || m.eq_ignore_ascii_case(method))
            && req
                .requested_headers()
                .iter()
                .all(|h| allow.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(h)));
        let mut headers = BTreeMap::new();
        if ok {
            headers.insert("access-control-allow-origin".into(), acao(origin));
            headers.insert("access-control-allow-methods".into(), methods.join(","));
            if !allow.is_empty() {
                headers.insert("access-control-allow-headers".into(), allow.join(","));
            }
            if credentials {
                headers.insert("access-control-allow-credentials".into(), "true".into());
            }
            if let Some(age) = config["MaxAge"].as_i64() {
                headers.insert("access-control-max-age".into(), age.to_string());
            }
        }
        return Answer {
            status: 204,
            handler: false,
            headers,
        };
    }
    // The integration's own CORS headers are ignored.
    let mut a = strip_cors(handler_answer());
    if let Some(origin) = req.origin.as_deref().filter(|o| origin_ok(o)) {
        a.headers
            .insert("access-control-allow-origin".into(), acao(origin));
        let expose = list(config, "ExposeHeaders");
        if !expose.is_empty() {
            a.headers
                .insert("access-control-expose-headers".into(), expose.join(","));
        }
        if credentials {
            a.headers
                .insert("access-control-allow-credentials".into(), "true".into());
        }
    }
    a
}

/// What App Service CORS answers with `cors` (a `siteConfig.cors`).
pub fn azure(cors: &Value, req: &Request) -> Answer {
    let origins = list(cors, "allowedOrigins");
    let credentials = cors["supportCredentials"].as_bool().unwrap_or(false);
    let origin_ok = |o: &str| {
        origins
            .iter()
            .any(|p| p == "*" || p.eq_ignore_ascii_case(o))
    };
    let acao = |o: &str| {
        if origins.iter().any(|p| p == "*") && !credentials {
            "*".to_string()
        } else {
            o.to_string()
        }
    };
    if req.is_preflight() {
        let origin = req.origin.as_deref().unwrap_or_default();
        let mut headers = BTreeMap::new();
        if origin_ok(origin) {
            headers.insert("access-control-allow-origin".into(), acao(origin));
            headers.insert(
                "access-control-allow-methods".into(),
                req.request_method.clone().unwrap_or_default(),
            );
            if let Some(h) = &req.request_headers {
                headers.insert("access-control-allow-headers".into(), h.clone());
            }
            if credentials {
                headers.insert("access-control-allow-credentials".into(), "true".into());
            }
        }
        return Answer {
            status: 204,
            handler: false,
            headers,
        };
    }
    // App Service CORS takes precedence over the app's own CORS headers.
    let mut a = strip_cors(handler_answer());
    if let Some(origin) = req.origin.as_deref().filter(|o| origin_ok(o)) {
        a.headers
            .insert("access-control-allow-origin".into(), acao(origin));
        if credentials {
            a.headers
                .insert("access-control-allow-credentials".into(), "true".into());
        }
    }
    a
}

/// A manifest with the table's route and `cors` (origins in `drop` left out), handler
/// `app.py:handler`.
pub fn manifest(drop: Option<&str>) -> String {
    let t = table();
    let mut cors = t["cors"].clone();
    if let Some(drop) = drop {
        let kept: Vec<Value> = list(&cors, "origins")
            .into_iter()
            .filter(|o| o != drop)
            .map(Value::from)
            .collect();
        cors["origins"] = Value::Array(kept);
    }
    format!(
        "version: 1\nservice: corsapp\nhttp: {{ cors: {cors} }}\nfunctions:\n  api:\n    handler: app.py:handler\n    triggers:\n      - http: {{ method: {}, path: {} }}\n",
        t["route"]["method"].as_str().expect("method"),
        t["route"]["path"].as_str().expect("path"),
    )
}
