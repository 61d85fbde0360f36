//! One invocation through a function's pool, with its structured log record (one line with the
//! outcome: `ok`, `error`, `timeout`, `out of memory`, `crashed`; the failed items of a batch;
//! method, path and status of an HTTP request), its metrics and its entry in the recent
//! invocations ([`crate::console::Recorder`]: the console and the admin API's `GET /invocations`). The gateway, the consumers, the
//! scheduler and `nimbus invoke` all come through here.

use std::time::Instant;

use hyper::StatusCode;
use nimbus_local_workers::{Event, Invocation, InvokeError};
use serde::Serialize;
use serde_json::Value;

use crate::runtime::{Live, Runtime};
use crate::trace::{Span, SpanContext};

/// What an invocation serves beyond its trigger kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The HTTP request, for a gateway invocation.
    pub http: Option<HttpRequest<'a>>,
    /// The span that caused it (a message's `traceparent`, an HTTP request's header); `None`
    /// starts a new trace.
    pub parent: Option<SpanContext>,
}

/// The request line of an HTTP invocation.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// `GET`, `POST` …
    pub method: &'a str,
    /// The request path, as received.
    pub path: &'a str,
}

impl<'a> Context<'a> {
    /// The context of `event` sent by `trigger` without the gateway (`nimbus invoke`, a console
    /// replay): an HTTP event's request line is logged as the gateway's would be.
    pub fn of_event(trigger: &str, event: &'a Value) -> Context<'a> {
        let text = |name: &str| event.get(name).and_then(Value::as_str);
        Context {
            http: match (trigger, text("method"), text("path")) {
                ("http", Some(method), Some(path)) => Some(HttpRequest { method, path }),
                _ => None,
            },
            parent: None,
        }
    }

    /// The same context, continuing the trace of `parent`.
    pub fn child_of(self, parent: Option<SpanContext>) -> Context<'a> {
        Context { parent, ..self }
    }
}

/// The log record of one invocation (`"kind": "invocation"`; the log adds `ts`).
#[derive(Serialize, Clone)]
pub(crate) struct Record<'a> {
    kind: &'static str,
    function: &'a str,
    request_id: &'a str,
    trigger: &'a str,
    /// `ok`, `error`, `timeout`, `out of memory`, `crashed`, `throttled`, `unavailable`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    /// The HTTP status answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    duration_ms: f64,
    memory_mb: Option<u32>,
    /// Messages in a batch, and those the handler reported failed (or all, when it raised).
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cold: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    init_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The stack trace of a handler that raised or failed to load (the user's frames).
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<String>,
    /// W3C trace id (32 hex digits), span id and the parent's span id (16 hex digits).
    trace_id: String,
    span_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_span_id: Option<String>,
    /// Epoch ms (with µs as fraction) at the start.
    start_ms: f64,
}

/// Invokes `function` of `live` with `event`; `trigger` names what fired it in the log.
pub async fn invoke(
    rt: &Runtime,
    live: &Live,
    function: &str,
    trigger: &str,
    request_id: &str,
    event: impl Into<Event>,
    cx: Context<'_>,
) -> Result<Invocation, InvokeError> {
    let started = Instant::now();
    let start_us = crate::now_us();
    let Some(pool) = live.pools.get(function) else {
        return Err(InvokeError::Draining);
    };
    let event = event.into();
    let span = SpanContext::child_of(cx.parent);
    let running = rt.tracer.enter(request_id, span);
    let mut result = pool.invoke(request_id, event.clone()).await;
    if matches!(result, Err(InvokeError::Draining)) {
        // Redeployed between routing and invoking: the new generation serves it instead.
        if let Some(current) = rt.live()
            && let Some(newer) = current.pools.get(function)
            && !std::sync::Arc::ptr_eq(newer, pool)
        {
            result = newer.invoke(request_id, event.clone()).await;
        }
    }
    // What reaches the caller, the HTTP client and the log never holds a secret value.
    let result = result.map_err(|e| rt.secrets.mask_error(e));
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut record = Record {
        kind: "invocation",
        function,
        request_id,
        trigger,
        outcome: "ok",
        method: cx.http.map(|h| h.method),
        path: cx.http.map(|h| h.path),
        status: None,
        duration_ms: (elapsed_ms * 100.0).round() / 100.0,
        memory_mb: live.deployment.functions.get(function).map(|f| f.memory_mb),
        items: None,
        failed: None,
        cold: None,
        init_ms: None,
        error: None,
        stack: None,
        trace_id: span.trace_hex(),
        span_id: span.span_hex(),
        parent_span_id: cx.parent.map(|p| p.span_hex()),
        start_ms: start_us as f64 / 1000.0,
    };
    // Only a batch's event is read back (an HTTP body may be megabytes).
    let batch = matches!(trigger, "queue" | "topic")
        .then(|| serde_json::from_str::<Value>(event.json()).ok())
        .flatten()
        .and_then(|e| e.get("messages").and_then(Value::as_array).map(Vec::len));
    record.items = batch;
    match &result {
        Ok(inv) => {
            record.cold = Some(inv.cold);
            record.init_ms = inv.init.map(|init| init.as_millis() as u64);
            if cx.http.is_some() {
                record.status = Some(
                    inv.result
                        .get("status")
                        .and_then(Value::as_u64)
                        .map_or(200, |s| s as u16),
                );
            }
            let failed = inv
                .result
                .get("failed")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if let Some(items) = batch {
                record.failed = Some(failed);
                if failed > 0 {
                    record.outcome = "error";
                    record.error = Some(format!(
                        "the handler reported {failed} of {items} message{} as failed",
                        if items == 1 { "" } else { "s" }
                    ));
                }
            }
        }
        Err(e) => {
            record.outcome = status_of(e);
            record.error = Some(e.to_string());
            record.failed = batch;
            if cx.http.is_some() {
                record.status = Some(error_status(e).as_u16());
            }
            if let InvokeError::Handler { error } | InvokeError::LoadFailed { error } = e {
                record.stack = error.stack.clone();
            }
        }
    }
    rt.metrics
        .function(function)
        .invocation(elapsed_ms, record.outcome, record.cold == Some(true));
    let span = Span {
        context: span,
        parent_span_id: cx.parent.map(|p| p.span_id),
        function: function.to_string(),
        trigger: trigger.to_string(),
        request_id: request_id.to_string(),
        outcome: record.outcome.to_string(),
        start_us,
        duration_us: (elapsed_ms * 1000.0) as u64,
        detail: cx.http.map(|h| match record.status {
            Some(status) => format!("{} {} {status}", h.method, h.path),
            None => format!("{} {}", h.method, h.path),
        }),
    };
    drop(running);
    rt.export_span(&span);
    rt.tracer.exit(span);
    rt.logs.write_record(&record);
    // `nimbus logs` right after an invocation sees all of its lines.
    rt.logs.flush();
    rt.console.record(
        serde_json::to_value(&record).unwrap_or(Value::Null),
        event,
        &result,
        |text| rt.secrets.mask(text),
    );
    result
}

/// The log word of an error's outcome.
pub fn status_of(e: &InvokeError) -> &'static str {
    match e {
        InvokeError::Timeout { .. } => "timeout",
        InvokeError::OutOfMemory { .. } => "out of memory",
        InvokeError::Crashed { .. } => "crashed",
        InvokeError::LoadFailed { .. } | InvokeError::Handler { .. } => "error",
        InvokeError::Overloaded => "throttled",
        InvokeError::Draining => "unavailable",
    }
}

/// The HTTP status the gateway answers an error with.
pub fn error_status(e: &InvokeError) -> StatusCode {
    match e {
        InvokeError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        InvokeError::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        InvokeError::Draining => StatusCode::SERVICE_UNAVAILABLE,
        InvokeError::Handler { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        InvokeError::OutOfMemory { .. }
        | InvokeError::Crashed { .. }
        | InvokeError::LoadFailed { .. } => StatusCode::BAD_GATEWAY,
    }
}

/// A fresh request id: 24 hex digits, unique within the runtime process. One random seed per
/// process, then a counter mixed through splitmix64 — no system call per request.
pub fn request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        u64::from_str_radix(&crate::state::random_token(8), 16).unwrap_or(0x9e37_79b9_7f4a_7c15)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("{z:016x}{:08x}", n as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_unique_and_fixed_width() {
        let ids: std::collections::BTreeSet<String> =
            (0..10_000).map(|_| super::request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|i| i.len() == 24 && i.chars().all(|c| c.is_ascii_hexdigit()))
        );
    }
}
