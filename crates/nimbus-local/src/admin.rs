//! The admin API on its own loopback port, used by the CLI (`deploy`, `invoke`, `info`,
//! `remove`) and by Prometheus: `GET /health`, `GET /metrics`, `GET /info`, `POST /invoke`,
//! `GET /invocations` (the last 100 invocations: their log record with event and result;
//! `?function=NAME` for one function's), `GET /trace?id=REQUEST_OR_TRACE_ID` (the causal tree
//! of a trace, see [`crate::trace`]), `POST /deploy`, `POST /restart` (`{"secret": NAME}`:
//! new workers for the functions that read it, the old ones drained), `POST /shutdown`, and the
//! queue and topic tools of [`crate::queues`] (`POST /queues/{peek,send,purge,redrive}`,
//! `POST /topics/publish`). Everything but `/health` and `/metrics` needs the token from
//! `runtime.json` (mode 0600) in `x-nimbus-admin-token`. The web console is served under
//! `/console` (see [`crate::console`]; its page loads without the token, its API needs it).

use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::accept;
use crate::deployment::Deployment;
use crate::invoke::{Context, invoke, request_id, status_of};
use crate::runtime::Runtime;
use crate::state::RuntimeInfo;
use nimbus_local_workers::InvokeError;

/// Serves the admin API until `shutdown` turns true; `POST /shutdown` turns it true.
pub async fn serve(
    rt: Arc<Runtime>,
    info: RuntimeInfo,
    listener: TcpListener,
    shutdown: watch::Sender<bool>,
) {
    let stop = shutdown.subscribe();
    let shutdown = Arc::new(shutdown);
    let log = {
        let rt = rt.clone();
        move |level: &str, message: String| rt.log(level, None, message)
    };
    let limits = rt.limits;
    accept::serve(listener, limits, stop, log, move |req, _peer| {
        let (rt, info, shutdown) = (rt.clone(), info.clone(), shutdown.clone());
        async move { handle(&rt, &info, &shutdown, req).await }
    })
    .await;
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

async fn handle(
    rt: &Runtime,
    info: &RuntimeInfo,
    shutdown: &watch::Sender<bool>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/health") => {
            return reply(
                StatusCode::OK,
                json!({ "ok": true, "pid": info.pid, "service": info.service, "stage": info.stage }),
            );
        }
        (&Method::GET, "/metrics") => {
            let queues = rt.store().queues().unwrap_or_default();
            let now = crate::now_ms();
            let depths: Vec<(String, u64, u64, u64)> = queues
                .into_iter()
                .filter_map(|q| {
                    rt.store()
                        .depth(&q, now)
                        .ok()
                        .map(|d| (q, d.visible, d.in_flight, d.dead_lettered))
                })
                .collect();
            return Response::builder()
                .header("content-type", "text/plain; version=0.0.4")
                .body(Full::new(Bytes::from(rt.metrics.render(&depths))))
                .expect("a valid response");
        }
        _ if crate::console::owns(&path) => return crate::console::handle(rt, info, req).await,
        _ => {}
    }
    let token_ok = req
        .headers()
        .get("x-nimbus-admin-token")
        .and_then(|v| v.to_str().ok())
        == Some(info.admin_token.as_str());
    if !token_ok {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "missing or wrong x-nimbus-admin-token (see runtime.json)" }),
        );
    }
    let method = req.method().clone();
    let req_query = req.uri().query().map(str::to_string);
    let body = match Limited::new(req.into_body(), 64 * 1024 * 1024)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": "request too large" }),
            );
        }
    };
    let input: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": format!("the request is not JSON: {e}") }),
                );
            }
        }
    };
    if method == Method::POST
        && let Some((status, body)) = crate::queues::handle(rt, &path, &input)
    {
        return reply(status, body);
    }
    match (method, path.as_str()) {
        (Method::GET, "/info") => reply(StatusCode::OK, crate::info(rt, info)),
        (Method::GET, "/invocations") => {
            let function = req_query
                .as_deref()
                .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("function=")));
            let kept = rt
                .console
                .list(0, |e| function.is_none_or(|f| e.function() == f));
            let invocations: Vec<Value> = kept.iter().map(|e| e.to_json(true)).collect();
            reply(StatusCode::OK, json!({ "invocations": invocations }))
        }
        (Method::GET, "/trace") => {
            let id = req_query
                .as_deref()
                .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("id=")))
                .unwrap_or("");
            match crate::trace::lookup(rt, id) {
                Some(tree) => reply(StatusCode::OK, tree),
                None => reply(
                    StatusCode::NOT_FOUND,
                    json!({ "error": format!("no trace of `{id}` is kept") }),
                ),
            }
        }
        (Method::POST, "/invoke") => {
            let Some(function) = input.get("function").and_then(Value::as_str) else {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": "missing `function`" }),
                );
            };
            let Some(live) = rt.live() else {
                return reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "error": "nothing is deployed" }),
                );
            };
            if !live.pools.contains_key(function) {
                let known: Vec<&String> = live.pools.keys().collect();
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({ "error": format!("no function `{function}`"), "functions": known }),
                );
            }
            let event = input.get("event").cloned().unwrap_or(Value::Null);
            let rid = request_id();
            let started = std::time::Instant::now();
            let trigger = event
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("invoke")
                .to_string();
            let context_event = event.clone();
            let cx = Context::of_event(&trigger, &context_event);
            match invoke(rt, &live, function, &trigger, &rid, event, cx).await {
                Ok(inv) => reply(
                    StatusCode::OK,
                    json!({ "ok": true, "request_id": rid, "result": inv.result, "cold": inv.cold, "duration_ms": started.elapsed().as_millis() as u64 }),
                ),
                Err(e) => {
                    let stack = match &e {
                        InvokeError::Handler { error } | InvokeError::LoadFailed { error } => {
                            error.stack.clone()
                        }
                        _ => None,
                    };
                    reply(
                        StatusCode::OK,
                        json!({ "ok": false, "request_id": rid, "status": status_of(&e), "error": e.to_string(), "stack": stack, "duration_ms": started.elapsed().as_millis() as u64 }),
                    )
                }
            }
        }
        (Method::POST, "/deploy") => {
            let Some(path) = input.get("deployment").and_then(Value::as_str) else {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": "missing `deployment`" }),
                );
            };
            let deployment = match Deployment::read(std::path::Path::new(path)) {
                Ok(d) => d,
                Err(e) => return reply(StatusCode::BAD_REQUEST, json!({ "error": e.to_string() })),
            };
            match rt.deploy(deployment).await {
                Ok(changed) => reply(StatusCode::OK, json!({ "ok": true, "changed": changed })),
                Err(e) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": e.to_string() }),
                ),
            }
        }
        (Method::POST, "/restart") => {
            let Some(secret) = input.get("secret").and_then(Value::as_str) else {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": "missing `secret`" }),
                );
            };
            match rt.restart_readers(secret).await {
                Ok(restarted) => reply(
                    StatusCode::OK,
                    json!({ "ok": true, "restarted": restarted }),
                ),
                Err(e) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": e.to_string() }),
                ),
            }
        }
        (Method::POST, "/shutdown") => {
            let _ = shutdown.send(true);
            reply(StatusCode::OK, json!({ "ok": true }))
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no admin endpoint {path}") }),
        ),
    }
}
