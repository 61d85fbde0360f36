//! The HTTP gateway on 127.0.0.1: routes requests to functions as the neutral `http` event and
//! turns the neutral response back into HTTP.
//!
//! Errors are JSON bodies with a status a cloud gateway would give: 404 (no route), 405 (wrong
//! method, with `Allow`), 400 (a malformed body), 408 (a body that does not arrive in time),
//! 413 (body over the limit), 401/403 (auth), 429 (every worker busy and the wait queue full), 500 (the handler raised), 502 (the worker crashed, ran out of memory or
//! could not load), 503 (redeploying), 504 (timeout). Every response carries
//! `x-nimbus-request-id`, the id in the logs.
//!
//! CORS (`cors`): a preflight for a path with a CORS route is answered here, before routing,
//! auth and the handler; a CORS route's responses get its policy's headers instead of the
//! handler's.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{HeaderMap, Request, Response, StatusCode};
use nimbus_local_workers::{Event, InvokeError};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::accept;
use crate::auth::{self, Denied};
use crate::cors::{self, Preflight};
use crate::invoke::{Context, HttpRequest, error_status, invoke, request_id};
use crate::router::{Matched, Routed, percent_decode};
use crate::runtime::{Live, Runtime};

/// Serves HTTP on `listener` until `shutdown` turns true, within the runtime's
/// [`ConnectionLimits`](crate::accept::ConnectionLimits).
pub async fn serve(
    rt: Arc<Runtime>,
    listener: TcpListener,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let log = {
        let rt = rt.clone();
        move |level: &str, message: String| rt.log(level, None, message)
    };
    let limits = rt.limits;
    accept::serve(listener, limits, shutdown, log, move |req, peer| {
        let rt = rt.clone();
        async move { handle(&rt, req, peer).await }
    })
    .await;
}

fn json_response(status: StatusCode, rid: &str, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-nimbus-request-id", rid)
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

/// Answers one request; those answered without invoking a function get a `request` log
/// record (the invocation record carries the request line otherwise).
async fn handle(rt: &Runtime, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    let started = std::time::Instant::now();
    let rid = request_id();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let response = answer(rt, req, peer, &rid).await;
    if response.extensions().get::<Invoked>().is_none() {
        let function = rt
            .live()
            .and_then(|live| match live.router.route(&method, &path) {
                Routed::Found(m) => Some(m.route.function.clone()),
                _ => None,
            });
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        rt.logs.write_record(&RequestRecord {
            kind: "request",
            request_id: &rid,
            method: &method,
            path: &path,
            status: response.status().as_u16(),
            duration_ms: (elapsed * 100.0).round() / 100.0,
            function: function.as_deref(),
        });
        rt.logs.flush();
    }
    response
}

async fn answer(
    rt: &Runtime,
    req: Request<Incoming>,
    peer: SocketAddr,
    rid: &str,
) -> Response<Full<Bytes>> {
    let rid = rid.to_string();
    let Some(live) = rt.live() else {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &rid,
            json!({ "error": "nothing is deployed" }),
        );
    };
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    // A preflight is the gateway's to answer: the handler never sees it.
    if let Some(preflight) = Preflight::of(&method, header)
        && let Some(policy) = live.router.cors_for(&preflight.method, &path)
    {
        return preflight.answer(policy, &rid);
    }
    let matched = match live.router.route(&method, &path) {
        Routed::Found(m) => m,
        Routed::NotFound => {
            return json_response(
                StatusCode::NOT_FOUND,
                &rid,
                json!({ "error": format!("no route for {method} {path}") }),
            );
        }
        Routed::MethodNotAllowed(allowed) => {
            let mut r = json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &rid,
                json!({ "error": format!("{method} is not allowed on {path}"), "allowed": allowed }),
            );
            r.headers_mut().insert(
                "allow",
                allowed
                    .join(", ")
                    .parse()
                    .expect("method names are valid header text"),
            );
            return r;
        }
    };
    let Some(cors) = matched.route.cors.clone() else {
        return routed(rt, &live, matched, req, peer, &rid).await;
    };
    let origin = header("origin");
    let mut response = routed(rt, &live, matched, req, peer, &rid).await;
    cors::apply(&mut response, &cors, origin.as_deref());
    response
}

/// A request the router matched, from the auth check to the response.
async fn routed(
    rt: &Runtime,
    live: &Live,
    matched: Matched<'_>,
    req: Request<Incoming>,
    peer: SocketAddr,
    rid: &str,
) -> Response<Full<Bytes>> {
    let rid = rid.to_string();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if let Err(denied) = auth::check(&matched.route.auth, &header, &rt.keys) {
        let (status, message) = match denied {
            Denied::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            Denied::Forbidden(m) => (StatusCode::FORBIDDEN, m),
        };
        return json_response(status, &rid, json!({ "error": message }));
    }
    let too_large = || {
        json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &rid,
            json!({ "error": format!("the request body is over the {} byte limit", rt.max_body_bytes) }),
        )
    };
    if header("content-length")
        .and_then(|l| l.parse::<usize>().ok())
        .is_some_and(|l| l > rt.max_body_bytes)
    {
        return too_large();
    }
    let function = matched.route.function.clone();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, rt.max_body_bytes).collect();
    let Ok(body) = tokio::time::timeout(rt.limits.body_timeout, body).await else {
        return json_response(
            StatusCode::REQUEST_TIMEOUT,
            &rid,
            json!({ "error": format!("the request body did not arrive within {} ms", rt.limits.body_timeout.as_millis()) }),
        );
    };
    let body = match body {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        // A broken chunked encoding, a body shorter than its `content-length`: the client's
        // request is malformed.
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &rid,
                json!({ "error": format!("the request body is malformed: {e}") }),
            );
        }
    };
    let text = std::str::from_utf8(&body).ok();
    let encoded;
    let (body, is_base64) = match text {
        _ if body.is_empty() => (None, false),
        Some(text) => (Some(text), false),
        None => {
            encoded = B64.encode(&body);
            (Some(encoded.as_str()), true)
        }
    };
    // Decoded as the cloud shims decode theirs (AWS `unquote(rawPath)`, Azure's URL path).
    let decoded_path = percent_decode(&path);
    let event = Event::encode(&HttpEvent {
        kind: "http",
        method: &method,
        path: &decoded_path,
        route: &matched.route.pattern,
        path_params: &matched.params,
        query: &query,
        headers: Headers(&parts.headers),
        body,
        is_base64,
        source_ip: peer.ip(),
    })
    .expect("an http event always serializes");
    let cx = Context {
        http: Some(HttpRequest {
            method: &method,
            path: &path,
        }),
        // A caller's W3C `traceparent` is continued; without one the request starts a trace.
        parent: parts
            .headers
            .get(crate::trace::TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::trace::SpanContext::parse),
    };
    let mut response = match invoke(rt, live, &function, "http", &rid, event, cx).await {
        Ok(inv) => http_response(&inv.result, &rid),
        Err(e) => {
            let status = error_status(&e);
            let message = match &e {
                InvokeError::Overloaded => {
                    format!("function `{function}` is at its concurrency limit; retry later")
                }
                InvokeError::Draining => "the function is being redeployed; retry".to_string(),
                _ => e.to_string(),
            };
            let mut body = json!({ "error": message, "request_id": rid });
            // Local only: the user's stack trace, for the developer reading the response.
            if let InvokeError::Handler { error } | InvokeError::LoadFailed { error } = &e
                && let Some(stack) = &error.stack
            {
                body["stack"] = json!(stack);
            }
            let mut r = json_response(status, &rid, body);
            if status == StatusCode::TOO_MANY_REQUESTS {
                r.headers_mut()
                    .insert("retry-after", "1".parse().expect("valid"));
            }
            r
        }
    };
    response.extensions_mut().insert(Invoked);
    response
}

/// Marks a response that came through [`invoke`], whose log record has the request line.
#[derive(Clone, Copy)]
struct Invoked;

/// The log record of a request the gateway answered itself (no route, auth, a bad body …).
#[derive(Serialize)]
struct RequestRecord<'a> {
    kind: &'static str,
    request_id: &'a str,
    method: &'a str,
    path: &'a str,
    status: u16,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    function: Option<&'a str>,
}

/// The neutral `http` event (docs/function-contract.md, "Events"), serialized straight from the
/// request.
#[derive(Serialize)]
struct HttpEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    method: &'a str,
    path: &'a str,
    route: &'a str,
    path_params: &'a BTreeMap<String, String>,
    query: &'a BTreeMap<String, String>,
    headers: Headers<'a>,
    body: Option<&'a str>,
    is_base64: bool,
    source_ip: IpAddr,
}

/// Request headers as a JSON object: lower-case names, repeated headers joined with `", "`.
struct Headers<'a>(&'a HeaderMap);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.keys_len()))?;
        for name in self.0.keys() {
            let mut values = self.0.get_all(name).iter();
            let first = values
                .next()
                .map_or(Cow::Borrowed(""), |v| String::from_utf8_lossy(v.as_bytes()));
            let mut joined = first;
            for v in values {
                let joined = joined.to_mut();
                joined.push_str(", ");
                joined.push_str(&String::from_utf8_lossy(v.as_bytes()));
            }
            map.serialize_entry(name.as_str(), &joined)?;
        }
        map.end()
    }
}

/// Query parameters, repeated keys joined with `,`.
fn parse_query(q: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| percent_decode(&s.replace('+', " "));
        let (k, v) = (decode(k), decode(v));
        out.entry(k)
            .and_modify(|e| *e = format!("{e},{v}"))
            .or_insert(v);
    }
    out
}

/// The neutral response (`{status, headers, body, is_base64}`, as the worker normalized it) as HTTP.
fn http_response(result: &Value, rid: &str) -> Response<Full<Bytes>> {
    let status = result
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let mut builder = Response::builder()
        .status(status)
        .header("x-nimbus-request-id", rid);
    if let Some(headers) = result.get("headers").and_then(Value::as_object) {
        for (k, v) in headers {
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(k.as_bytes()),
                hyper::header::HeaderValue::from_str(&value),
            ) {
                builder = builder.header(name, value);
            }
        }
    }
    let body = match result.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s))
            if result.get("is_base64").and_then(Value::as_bool) == Some(true) =>
        {
            Bytes::from(B64.decode(s).unwrap_or_default())
        }
        Some(Value::String(s)) => Bytes::from(s.clone()),
        Some(other) => Bytes::from(other.to_string()),
    };
    builder.body(Full::new(body)).unwrap_or_else(|_| {
        json_response(
            StatusCode::BAD_GATEWAY,
            rid,
            json!({ "error": "the handler returned an invalid response" }),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn futures_body(body: Full<Bytes>) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async { body.collect().await.unwrap().to_bytes().to_vec() })
    }

    #[test]
    fn query_strings() {
        let q = parse_query("a=1&a=2&b=x+y&c&d=%2F");
        assert_eq!(q["a"], "1,2");
        assert_eq!(q["b"], "x y");
        assert_eq!(q["c"], "");
        assert_eq!(q["d"], "/");
    }

    #[test]
    fn neutral_responses_become_http() {
        let r = http_response(
            &json!({ "status": 201, "headers": { "x-a": "1" }, "body": "{\"ok\":true}" }),
            "rid",
        );
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-a"], "1");
        let r = http_response(
            &json!({ "status": 200, "body": "aGk=", "is_base64": true }),
            "rid",
        );
        let body = futures_body(r.into_body());
        assert_eq!(body, b"hi");
    }
}
