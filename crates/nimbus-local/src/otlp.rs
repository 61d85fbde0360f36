//! Span export over OTLP/HTTP with the JSON encoding (OpenTelemetry protocol, `POST
//! /v1/traces`, `application/json`), to any collector (the OpenTelemetry Collector, Jaeger,
//! Grafana Tempo, Honeycomb's, …) when the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the
//! whole URL) or `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL; `/v1/traces` is appended) is set.
//!
//! Finished spans go through a bounded channel to one exporter thread, which posts them in
//! batches (at most [`BATCH`] spans, at least every [`INTERVAL`]). Nothing is started when no
//! endpoint is set; when the collector is down or slow, spans are dropped (counted, and said
//! once in the log), never the invocations. Plain `http://` only: a local collector is the
//! expected case (an `https://` endpoint is refused with a message at start).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::trace::Span;

/// Most spans in one export request.
pub const BATCH: usize = 512;
/// Longest a finished span waits before it is exported.
pub const INTERVAL: Duration = Duration::from_millis(500);
/// Spans waiting for the exporter thread; more are dropped.
const QUEUE: usize = 4096;

/// Where spans go: parsed from the OTLP environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port`.
    pub authority: String,
    /// The request path, `/v1/traces` by default.
    pub path: String,
}

impl Endpoint {
    /// The endpoint the environment names (`traces` wins over the base), `Ok(None)` when none
    /// is set, or why the value is unusable.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<Endpoint>, String> {
        if let Some(url) = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            return Endpoint::parse(&url, false)
                .map(Some)
                .map_err(|e| format!("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT `{url}`: {e}"));
        }
        if let Some(url) = env("OTEL_EXPORTER_OTLP_ENDPOINT") {
            return Endpoint::parse(&url, true)
                .map(Some)
                .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT `{url}`: {e}"));
        }
        Ok(None)
    }

    fn parse(url: &str, base: bool) -> Result<Endpoint, String> {
        let Some(rest) = url.trim().strip_prefix("http://") else {
            return Err(
                "only http:// endpoints are supported (run a local collector, e.g. `http://127.0.0.1:4318`)"
                    .into(),
            );
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, format!("/{p}")),
            None => (rest, "/".to_string()),
        };
        if authority.is_empty() {
            return Err("the URL has no host".into());
        }
        let authority = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let path = if base {
            format!("{}/v1/traces", path.trim_end_matches('/'))
        } else {
            path
        };
        Ok(Endpoint { authority, path })
    }
}

/// The sending side: cheap to call on every invocation.
pub struct Exporter {
    tx: SyncSender<Span>,
}

impl Exporter {
    /// Starts the exporter thread for `service` (the resource's `service.name`) and `stage`;
    /// `log` reports export failures (once per failure streak).
    pub fn start(
        endpoint: Endpoint,
        service: String,
        stage: String,
        log: impl Fn(String) + Send + 'static,
    ) -> Exporter {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("nimbus-otlp".into())
            .spawn(move || run(rx, &endpoint, &service, &stage, log))
            .expect("the exporter thread starts");
        Exporter { tx }
    }

    /// Queues a finished span; dropped when the exporter is behind.
    pub fn export(&self, span: &Span) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(span.clone()) {
            // The collector is behind: this span is lost, the invocation is not.
        }
    }
}

fn run(rx: Receiver<Span>, endpoint: &Endpoint, service: &str, stage: &str, log: impl Fn(String)) {
    let mut batch: Vec<Span> = Vec::new();
    let mut failing = false;
    loop {
        let deadline = Instant::now() + INTERVAL;
        let mut closed = false;
        while batch.len() < BATCH {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(span) => batch.push(span),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let body = encode(&batch, service, stage).to_string();
            match post(endpoint, &body) {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    log(format!(
                        "exporting {} span(s) to http://{}{}: {e} (spans are dropped until it answers)",
                        batch.len(),
                        endpoint.authority,
                        endpoint.path
                    ));
                }
                Err(_) => {}
            }
            batch.clear();
        }
        if closed {
            return;
        }
    }
}

/// The OTLP `ExportTraceServiceRequest` of `spans`, JSON-encoded as the protocol specifies
/// (ids in hex, times in nanoseconds as strings, enums as numbers).
pub fn encode(spans: &[Span], service: &str, stage: &str) -> Value {
    let attr = |key: &str, value: Value| match value {
        Value::Number(n) => json!({ "key": key, "value": { "intValue": n.to_string() } }),
        other => json!({ "key": key, "value": { "stringValue": other.as_str().unwrap_or("") } }),
    };
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            // OpenTelemetry's FaaS conventions: `faas.trigger` and the span kind.
            let (faas_trigger, kind) = match s.trigger.as_str() {
                "http" => ("http", 2),
                "queue" | "topic" => ("pubsub", 5),
                "table" | "bucket" => ("datasource", 5),
                "schedule" => ("timer", 5),
                _ => ("other", 1),
            };
            let mut attributes = vec![
                attr("faas.invoked_name", json!(s.function)),
                attr("faas.trigger", json!(faas_trigger)),
                attr("faas.invocation_id", json!(s.request_id)),
                attr("nimbus.trigger", json!(s.trigger)),
                attr("nimbus.outcome", json!(s.outcome)),
            ];
            if let Some(detail) = &s.detail {
                let mut parts = detail.split(' ');
                if let (Some(method), Some(path)) = (parts.next(), parts.next()) {
                    attributes.push(attr("http.request.method", json!(method)));
                    attributes.push(attr("url.path", json!(path)));
                }
                if let Some(status) = parts.next().and_then(|s| s.parse::<u64>().ok()) {
                    attributes.push(attr("http.response.status_code", json!(status)));
                }
            }
            let status = if s.outcome == "ok" {
                json!({ "code": 1 })
            } else {
                json!({ "code": 2, "message": s.outcome })
            };
            let mut span = json!({
                "traceId": s.context.trace_hex(),
                "spanId": s.context.span_hex(),
                "name": s.function,
                "kind": kind,
                "startTimeUnixNano": (u128::from(s.start_us) * 1000).to_string(),
                "endTimeUnixNano": (u128::from(s.start_us + s.duration_us) * 1000).to_string(),
                "attributes": attributes,
                "status": status,
            });
            if let Some(parent) = s.parent_span_id {
                span["parentSpanId"] = json!(format!("{parent:016x}"));
            }
            span
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": { "attributes": [
                attr("service.name", json!(service)),
                attr("deployment.environment.name", json!(stage)),
                attr("telemetry.sdk.name", json!("nimbus")),
                attr("telemetry.sdk.version", json!(env!("CARGO_PKG_VERSION"))),
            ] },
            "scopeSpans": [{
                "scope": { "name": "nimbus-local", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans,
            }],
        }]
    })
}

/// One HTTP/1.1 POST; an error unless the collector answers 2xx.
fn post(endpoint: &Endpoint, body: &str) -> Result<(), String> {
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&endpoint.authority)
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("the host has no address")?;
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .and_then(|()| s.set_write_timeout(Some(Duration::from_secs(10))))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        endpoint.path,
        endpoint.authority,
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body.as_bytes()))
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = s.take(64 * 1024).read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text.split_whitespace().nth(1).unwrap_or("");
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(format!(
            "the collector answered `{}`",
            text.lines().next().unwrap_or("nothing")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::SpanContext;

    #[test]
    fn endpoints_follow_the_otlp_environment_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Endpoint::from_env(env(&[])), Ok(None));
        assert_eq!(
            Endpoint::from_env(env(&[(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://127.0.0.1:4318"
            )]))
            .unwrap()
            .unwrap(),
            Endpoint {
                authority: "127.0.0.1:4318".into(),
                path: "/v1/traces".into()
            }
        );
        assert_eq!(
            Endpoint::from_env(env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:1"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://collector/custom"
                )
            ]))
            .unwrap()
            .unwrap(),
            Endpoint {
                authority: "collector:80".into(),
                path: "/custom".into()
            }
        );
        let e = Endpoint::from_env(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://x:4318")]))
            .unwrap_err();
        assert!(e.contains("only http://"), "{e}");
    }

    #[test]
    fn spans_encode_as_otlp_json() {
        let root = SpanContext::child_of(None);
        let span = Span {
            context: SpanContext::child_of(Some(root)),
            parent_span_id: Some(root.span_id),
            function: "place-order".into(),
            trigger: "http".into(),
            request_id: "r1".into(),
            outcome: "error".into(),
            start_us: 1_700_000_000_000_000,
            duration_us: 1500,
            detail: Some("POST /orders 500".into()),
        };
        let v = encode(&[span], "shop", "dev");
        let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], root.trace_hex());
        assert_eq!(s["parentSpanId"], root.span_hex());
        assert_eq!(s["kind"], 2);
        assert_eq!(s["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(s["endTimeUnixNano"], "1700000000001500000");
        assert_eq!(s["status"]["code"], 2);
        assert!(s["attributes"].as_array().unwrap().contains(
            &json!({ "key": "http.response.status_code", "value": { "intValue": "500" } })
        ));
        assert_eq!(
            v["resourceSpans"][0]["resource"]["attributes"][0],
            json!({ "key": "service.name", "value": { "stringValue": "shop" } })
        );
    }
}
