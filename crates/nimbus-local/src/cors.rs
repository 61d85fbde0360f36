//! CORS at the local gateway: preflights answered before routing reaches a handler, and the
//! policy's headers put on the responses of routes that have one (the neutral algorithm of
//! `nimbus_graph::cors`).

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use nimbus_graph::CorsPolicy;

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
pub(crate) struct Preflight {
    pub origin: String,
    pub method: String,
    pub headers: Option<String>,
}

impl Preflight {
    /// The preflight `method` and `header` describe, if they describe one.
    pub fn of(method: &str, header: impl Fn(&str) -> Option<String>) -> Option<Preflight> {
        if method != "OPTIONS" {
            return None;
        }
        Some(Preflight {
            origin: header("origin")?,
            method: header("access-control-request-method")?,
            headers: header("access-control-request-headers"),
        })
    }

    /// The gateway's answer: `204` with the policy's headers (none but `Vary` when refused).
    pub fn answer(&self, policy: &CorsPolicy, rid: &str) -> Response<Full<Bytes>> {
        let mut builder = Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header("x-nimbus-request-id", rid);
        for (name, value) in policy.preflight(&self.origin, &self.method, self.headers.as_deref()) {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }
}

/// Replaces whatever `Access-Control-*` headers the handler set with the policy's for `origin`
/// (none when the request had no `Origin`).
pub(crate) fn apply(
    response: &mut Response<Full<Bytes>>,
    policy: &CorsPolicy,
    origin: Option<&str>,
) {
    let headers = response.headers_mut();
    let theirs: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for k in theirs {
        headers.remove(k);
    }
    let Some(origin) = origin else { return };
    for (name, value) in policy.actual(origin) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            if name == "vary" {
                headers.append(name, value);
            } else {
                headers.insert(name, value);
            }
        }
    }
}
