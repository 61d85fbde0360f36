//! Traces across triggers, in W3C trace context and the OpenTelemetry span model.
//!
//! An HTTP request starts a trace (or continues the caller's `traceparent` header); every
//! invocation is one span. While an invocation runs, its context is kept by request id
//! ([`Tracer::enter`]), so the resource calls its worker makes — a queue send, a topic publish,
//! a table write, a bucket upload — carry it as a `traceparent` message attribute (a bucket
//! upload: until the scanner turns it into an event). The invocation a message causes continues
//! that trace as a child span. Spans are kept in a bounded ring ([`KEEP`]) for the console, and
//! each invocation's log record carries `trace_id`, `span_id` and `parent_span_id`, so
//! `nimbus trace` and `nimbus logs --filter TRACE_ID` also read them from the log files.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::{Value, json};

/// The message attribute (and HTTP header) carrying the context.
pub const TRACEPARENT: &str = "traceparent";
/// How many spans the runtime keeps in memory.
pub const KEEP: usize = 1000;

/// A span's place in a trace: trace id and span id (W3C `traceparent`, version 00, sampled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    /// 128-bit trace id, never 0.
    pub trace_id: u128,
    /// 64-bit span id, never 0.
    pub span_id: u64,
}

impl SpanContext {
    /// Parses a `traceparent` value (`00-<32 hex>-<16 hex>-<2 hex>`); `None` when it is not
    /// one (all-zero ids and version `ff` are invalid, as the W3C specification says).
    pub fn parse(text: &str) -> Option<SpanContext> {
        let parts: Vec<&str> = text.trim().split('-').collect();
        if parts.len() < 4 {
            return None;
        }
        let hex = |s: &str, len: usize| {
            (s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
            .then_some(())
        };
        hex(parts[0], 2)?;
        hex(parts[1], 32)?;
        hex(parts[2], 16)?;
        hex(parts[3], 2)?;
        if parts[0] == "ff" || (parts[0] == "00" && parts.len() != 4) {
            return None;
        }
        let trace_id = u128::from_str_radix(parts[1], 16).ok()?;
        let span_id = u64::from_str_radix(parts[2], 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(SpanContext { trace_id, span_id })
    }

    /// The `traceparent` value.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_hex(), self.span_hex())
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The span id as 16 lower-case hex digits.
    pub fn span_hex(&self) -> String {
        format!("{:016x}", self.span_id)
    }

    /// A child of `parent` (same trace, new span id), or the root of a new trace.
    pub fn child_of(parent: Option<SpanContext>) -> SpanContext {
        let span_id = random_u64();
        match parent {
            Some(p) => SpanContext {
                trace_id: p.trace_id,
                span_id,
            },
            None => SpanContext {
                trace_id: (u128::from(random_u64()) << 64) | u128::from(random_u64()),
                span_id,
            },
        }
    }
}

/// A random non-zero number: a per-process random seed, then a counter through splitmix64.
fn random_u64() -> u64 {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let seed = *SEED.get_or_init(|| {
        u64::from_str_radix(&crate::state::random_token(8), 16).unwrap_or(0x2545_f491_4f6c_dd1d)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z.max(1)
}

/// One finished invocation as a span (the OpenTelemetry model: trace id, span id, parent span
/// id, name = the function, start and end, status = the outcome, attributes).
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Its context.
    pub context: SpanContext,
    /// The span that caused it; `None` for a trace's root (or a continued caller's span, which
    /// is then `remote_parent`).
    pub parent_span_id: Option<u64>,
    /// The function.
    pub function: String,
    /// What fired it: `http`, `queue`, `topic`, `table`, `bucket`, `schedule`, `invoke`…
    pub trigger: String,
    /// The request id of the invocation.
    pub request_id: String,
    /// `ok`, `error`, `timeout`, …
    pub outcome: String,
    /// Epoch µs at the start.
    pub start_us: u64,
    /// Duration in µs.
    pub duration_us: u64,
    /// `POST /orders 201` for an HTTP span.
    pub detail: Option<String>,
}

impl Span {
    /// The span as in a log record (`trace_id`, `span_id`, `parent_span_id`, `start_ms`,
    /// `duration_ms`, …), the form `nimbus trace` and the console read.
    pub fn to_json(&self) -> Value {
        json!({
            "function": self.function,
            "trigger": self.trigger,
            "request_id": self.request_id,
            "outcome": self.outcome,
            "trace_id": self.context.trace_hex(),
            "span_id": self.context.span_hex(),
            "parent_span_id": self.parent_span_id.map(|p| format!("{p:016x}")),
            "start_ms": self.start_us as f64 / 1000.0,
            "duration_ms": self.duration_us as f64 / 1000.0,
            "detail": self.detail,
        })
    }
}

/// The runtime's tracer: the contexts of running invocations, pending bucket uploads and the
/// ring of finished spans.
#[derive(Default)]
pub struct Tracer {
    running: Mutex<HashMap<String, SpanContext>>,
    uploads: Mutex<HashMap<(String, String), SpanContext>>,
    spans: Mutex<VecDeque<Span>>,
}

impl Tracer {
    /// Marks invocation `request_id` as running in `context` until the returned guard is
    /// dropped (also when the invocation's future is dropped half-way).
    pub fn enter<'a>(&'a self, request_id: &'a str, context: SpanContext) -> Running<'a> {
        lock(&self.running).insert(request_id.to_string(), context);
        Running {
            tracer: self,
            request_id,
        }
    }

    /// The invocation ended: keeps its span.
    pub fn exit(&self, span: Span) {
        let mut spans = lock(&self.spans);
        if spans.len() == KEEP {
            spans.pop_front();
        }
        spans.push_back(span);
    }

    /// The context of running invocation `request_id`.
    pub fn current(&self, request_id: &str) -> Option<SpanContext> {
        lock(&self.running).get(request_id).copied()
    }

    /// Remembers that `context` wrote `key` of `bucket` (a bucket event is found by a scan).
    pub fn uploaded(&self, bucket: &str, key: &str, context: SpanContext) {
        let mut uploads = lock(&self.uploads);
        if uploads.len() > 10_000 {
            uploads.clear();
        }
        uploads.insert((bucket.to_string(), key.to_string()), context);
    }

    /// Who wrote `key` of `bucket` last, once.
    pub fn take_upload(&self, bucket: &str, key: &str) -> Option<SpanContext> {
        lock(&self.uploads).remove(&(bucket.to_string(), key.to_string()))
    }

    /// The kept spans of the trace of `request_id` (or of trace id `id`), as JSON.
    pub fn trace_of(&self, id: &str) -> Vec<Value> {
        let spans = lock(&self.spans);
        let trace = spans
            .iter()
            .find(|s| s.request_id == id || s.context.trace_hex() == id)
            .map(|s| s.context.trace_id);
        match trace {
            Some(t) => spans
                .iter()
                .filter(|s| s.context.trace_id == t)
                .map(Span::to_json)
                .collect(),
            None => Vec::new(),
        }
    }
}

/// The trace of `id` (a request id or a trace id) as a tree ([`tree`]): from the runtime's
/// ring, else from its log files; `None` when neither has it.
pub(crate) fn lookup(rt: &crate::runtime::Runtime, id: &str) -> Option<Value> {
    let mut spans = select(rt.tracer.trace_of(id), id);
    if spans.is_empty() {
        let all = crate::logs::read(&rt.state.logs(), &crate::logs::Filter::default()).ok()?;
        spans = select(all, id);
    }
    (!spans.is_empty()).then(|| tree(&spans))
}

/// A running invocation's context, forgotten when dropped.
pub struct Running<'a> {
    tracer: &'a Tracer,
    request_id: &'a str,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        lock(&self.tracer.running).remove(self.request_id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `traceparent` carried in message attributes, taken out of them (a handler sees the
/// attributes it was sent).
pub fn take_from(attributes: &mut BTreeMap<String, String>) -> Option<SpanContext> {
    attributes
        .remove(TRACEPARENT)
        .and_then(|t| SpanContext::parse(&t))
}

/// Finds the trace of `id` (a request id or a trace id) among `records` (log records or
/// [`Span::to_json`] values) and returns its spans, oldest start first.
pub fn select(records: impl IntoIterator<Item = Value>, id: &str) -> Vec<Value> {
    let spans: Vec<Value> = records
        .into_iter()
        .filter(|r| r.get("span_id").and_then(Value::as_str).is_some())
        .collect();
    let Some(trace) = spans
        .iter()
        .find(|r| r["request_id"] == id || r["trace_id"] == id)
        .and_then(|r| r["trace_id"].as_str())
        .map(str::to_string)
    else {
        return Vec::new();
    };
    let mut chosen: Vec<Value> = spans
        .into_iter()
        .filter(|r| r["trace_id"] == trace.as_str())
        .collect();
    chosen.sort_by(|a, b| start(a).total_cmp(&start(b)));
    chosen.dedup_by(|a, b| a["span_id"] == b["span_id"]);
    chosen
}

fn start(span: &Value) -> f64 {
    span["start_ms"].as_f64().unwrap_or(0.0)
}

/// The causal tree of `spans` (one trace, from [`select`]): roots (spans whose parent is not
/// among them) with nested `children`, each with `offset_ms` from the trace's first start.
pub fn tree(spans: &[Value]) -> Value {
    let t0 = spans.iter().map(start).fold(f64::INFINITY, f64::min);
    let ids: std::collections::BTreeSet<&str> =
        spans.iter().filter_map(|s| s["span_id"].as_str()).collect();
    fn node(span: &Value, spans: &[Value], t0: f64, depth: usize) -> Value {
        let mut n = json!({
            "function": span["function"],
            "trigger": span["trigger"],
            "outcome": span["outcome"],
            "request_id": span["request_id"],
            "span_id": span["span_id"],
            "parent_span_id": span["parent_span_id"],
            "offset_ms": ((start(span) - t0) * 100.0).round() / 100.0,
            "duration_ms": span["duration_ms"],
        });
        for key in ["method", "path", "status", "error", "detail"] {
            if !span[key].is_null() {
                n[key] = span[key].clone();
            }
        }
        let children: Vec<Value> = if depth > 64 {
            Vec::new()
        } else {
            spans
                .iter()
                .filter(|c| c["parent_span_id"] == span["span_id"])
                .map(|c| node(c, spans, t0, depth + 1))
                .collect()
        };
        n["children"] = Value::Array(children);
        n
    }
    let roots: Vec<Value> = spans
        .iter()
        .filter(|s| {
            s["parent_span_id"]
                .as_str()
                .is_none_or(|p| !ids.contains(p))
        })
        .map(|s| node(s, spans, t0, 0))
        .collect();
    json!({
        "trace_id": spans.first().map_or(Value::Null, |s| s["trace_id"].clone()),
        "spans": spans.len(),
        "roots": roots,
    })
}

/// The tree as text: one line per span, indented under its parent.
pub fn render(tree: &Value) -> String {
    let mut out = format!(
        "trace {} ({} span{})\n",
        tree["trace_id"].as_str().unwrap_or("?"),
        tree["spans"],
        if tree["spans"] == 1 { "" } else { "s" }
    );
    fn line(n: &Value, prefix: &str, last: bool, top: bool, out: &mut String) {
        let branch = if top {
            ""
        } else if last {
            "└─ "
        } else {
            "├─ "
        };
        let s = |k: &str| n[k].as_str().unwrap_or("").to_string();
        let mut what = s("trigger");
        if let (Some(m), Some(p)) = (n["method"].as_str(), n["path"].as_str()) {
            what = format!("{what} {m} {p}");
            if let Some(st) = n["status"].as_u64() {
                what = format!("{what} {st}");
            }
        }
        out.push_str(&format!(
            "{prefix}{branch}{}  {what}  {}  +{} ms  {} ms  request {}\n",
            s("function"),
            s("outcome"),
            n["offset_ms"],
            n["duration_ms"],
            s("request_id"),
        ));
        let children = n["children"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let next = if top {
            prefix.to_string()
        } else {
            format!("{prefix}{}", if last { "   " } else { "│  " })
        };
        for (i, c) in children.iter().enumerate() {
            line(c, &next, i + 1 == children.len(), false, out);
        }
    }
    for r in tree["roots"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        line(r, "", true, true, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_bad_values() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = SpanContext::parse(text).unwrap();
        assert_eq!(cx.traceparent(), text);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(SpanContext::parse(bad).is_none(), "{bad}");
        }
        let child = SpanContext::child_of(Some(cx));
        assert_eq!(child.trace_id, cx.trace_id);
        assert_ne!(child.span_id, cx.span_id);
        assert_ne!(SpanContext::child_of(None).trace_id, cx.trace_id);
    }

    #[test]
    fn builds_the_causal_tree_from_any_request_id() {
        let tracer = Tracer::default();
        let root = SpanContext::child_of(None);
        let a = SpanContext::child_of(Some(root));
        let b = SpanContext::child_of(Some(a));
        let span = |cx: SpanContext, parent: Option<SpanContext>, f: &str, at: u64| Span {
            context: cx,
            parent_span_id: parent.map(|p| p.span_id),
            function: f.into(),
            trigger: "queue".into(),
            request_id: format!("r-{f}"),
            outcome: "ok".into(),
            start_us: at,
            duration_us: 1500,
            detail: None,
        };
        tracer.exit(span(b, Some(a), "charge", 3_000));
        tracer.exit(span(root, None, "place", 1_000));
        tracer.exit(span(a, Some(root), "reserve", 2_000));
        tracer.exit(span(SpanContext::child_of(None), None, "other", 0));
        let running = tracer.enter("r-live", root);
        assert_eq!(tracer.current("r-live"), Some(root));
        drop(running);
        assert_eq!(tracer.current("r-live"), None);
        let spans = select(tracer.trace_of("r-charge"), "r-charge");
        assert_eq!(spans.len(), 3);
        let t = tree(&spans);
        assert_eq!(t["roots"][0]["function"], "place");
        assert_eq!(t["roots"][0]["children"][0]["function"], "reserve");
        assert_eq!(
            t["roots"][0]["children"][0]["children"][0]["function"],
            "charge"
        );
        assert_eq!(
            t["roots"][0]["children"][0]["children"][0]["offset_ms"],
            2.0
        );
        let text = render(&t);
        assert!(text.contains("place  queue  ok  +0.0 ms"), "{text}");
        assert!(text.contains("   └─ charge  queue"), "{text}");
        assert!(select(tracer.trace_of("nope"), "nope").is_empty());
    }
}
