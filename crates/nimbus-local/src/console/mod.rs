//! The local web console, served by the runtime's admin API on its loopback port under
//! `/console`: one HTML page, one script and one stylesheet written in this repository and
//! embedded in the binary (no build step, no download at run time), and a JSON API under
//! `/console/api/` for the page.
//!
//! The page itself is harmless without the admin token: it reads the token from the URL
//! fragment (`/console#token=…`, never sent to the server as part of the URL) and sends it in
//! `x-nimbus-admin-token` with every API call; every API endpoint refuses a missing or wrong one.

mod api;
mod data;
pub(crate) mod record;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

pub use record::Recorder;

use crate::runtime::Runtime;
use crate::state::RuntimeInfo;

/// The console page, script and stylesheet.
const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// Largest API request body (an upload travels as base64 in JSON).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// The console's link, with the admin token in the fragment.
pub fn url(info: &RuntimeInfo) -> String {
    format!("{}/console#token={}", info.admin_url(), info.admin_token)
}

/// The bytes of the page, script and stylesheet together.
pub fn page_weight() -> usize {
    INDEX.len() + SCRIPT.len() + STYLE.len()
}

/// Whether `path` belongs to the console.
pub(crate) fn owns(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

fn asset(content_type: &str, body: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .header(
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        )
        .header("referrer-policy", "no-referrer")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("a valid response")
}

/// Serves one console request.
pub(crate) async fn handle(
    rt: &Runtime,
    info: &RuntimeInfo,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/console" | "/console/") => {
            return asset("text/html; charset=utf-8", INDEX);
        }
        (&Method::GET, "/console/console.js") => {
            return asset("text/javascript; charset=utf-8", SCRIPT);
        }
        (&Method::GET, "/console/console.css") => return asset("text/css; charset=utf-8", STYLE),
        _ => {}
    }
    let Some(endpoint) = path.strip_prefix("/console/api/") else {
        return api::reply(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no console page {path}") }),
        );
    };
    let token_ok = req
        .headers()
        .get("x-nimbus-admin-token")
        .and_then(|v| v.to_str().ok())
        == Some(info.admin_token.as_str());
    if !token_ok {
        return api::reply(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "missing or wrong x-nimbus-admin-token: open the link `nimbus info --console` prints" }),
        );
    }
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return api::reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": format!("request larger than {MAX_BODY} bytes") }),
            );
        }
    };
    api::handle(rt, &method, endpoint, &query, &body).await
}
