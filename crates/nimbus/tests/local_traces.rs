//! Traces across triggers, through the real `nimbus` binary against a local deployment: an
//! HTTP request starts a trace (or continues the caller's `traceparent`); what its handler
//! sends, publishes, writes to a table or uploads to a bucket carries the context, so each
//! downstream invocation is a child span — two levels deep through a queue. `nimbus trace`
//! prints the causal tree from any request id of the trace (text and `--output json`), the log
//! records carry `trace_id`/`span_id`/`parent_span_id` (`nimbus logs --filter TRACE_ID`), the
//! handlers see only the attributes they were sent, and spans are exported over OTLP/HTTP to a
//! collector when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[path = "support/poll.rs"]
mod poll;
use poll::eventually;

use serde_json::Value;

const APP: &str = r#"version: 1
service: tracedemo
resources:
  events: { type: topic }
  jobs: { type: queue }
  more: { type: queue }
  items: { type: table, key: { id: string } }
  files: { type: bucket }
functions:
  start:
    handler: fns/app.py:start
    triggers: [ { http: { method: POST, path: /go } } ]
    uses:
      - { resource: events, access: publish }
      - { resource: jobs, access: send }
      - { resource: items, access: write }
      - { resource: files, access: write }
  on-topic:
    handler: fns/app.py:seen
    triggers: [ { topic: events } ]
  on-job:
    handler: fns/app.py:on_job
    triggers: [ { queue: { name: jobs, batch_size: 1 } } ]
    uses: [ { resource: more, access: send } ]
  on-more:
    handler: fns/app.py:seen
    triggers: [ { queue: { name: more, batch_size: 1 } } ]
  on-item:
    handler: fns/app.py:seen
    triggers: [ { table: { name: items, events: [insert] } } ]
  on-file:
    handler: fns/app.py:seen
    triggers: [ { bucket: { name: files, events: [created], prefix: up/ } } ]
"#;

const HANDLERS: &str = r#"import json


def start(event, context):
    r = context.resources
    r["events"].publish("placed", attributes={"kind": "order"})
    r["jobs"].send("job-1")
    r["items"].put({"id": "i-1"})
    r["files"].put("up/a.txt", b"hello")
    return {"status": 202}


def on_job(event, context):
    context.resources["more"].send("job-2")


def seen(event, context):
    attrs = [m.get("attributes") for m in event.get("messages", [])]
    print("attributes " + json.dumps(attrs))
"#;

struct App {
    dir: tempfile::TempDir,
    url: String,
    env: Vec<(String, String)>,
    _data: tempfile::TempDir,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl App {
    fn command(dir: &Path, env: &[(String, String)], args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nimbus"));
        cmd.args(args)
            .current_dir(dir)
            .env_remove("NIMBUS_PROVIDER")
            .env_remove("NIMBUS_STAGE")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    fn deploy(extra_env: &[(&str, &str)]) -> App {
        let dir = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        for (path, content) in [("nimbus.yaml", APP), ("fns/app.py", HANDLERS)] {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        let mut env = vec![(
            "XDG_DATA_HOME".to_string(),
            data.path().to_string_lossy().into_owned(),
        )];
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let out = App::command(dir.path(), &env, &["deploy", "--port", "0"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        App {
            url: text(&out.stdout).trim().to_string(),
            dir,
            env,
            _data: data,
        }
    }

    fn nimbus(&self, args: &[&str]) -> Output {
        App::command(self.dir.path(), &self.env, args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.nimbus(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.nimbus(&["remove", "--yes"]);
    }
}

/// POST with headers: (status, response head).
fn post(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "POST /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: 0\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = text(&raw);
    let head = raw.split("\r\n\r\n").next().unwrap_or("").to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head)
}

fn request_id(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("x-nimbus-request-id: "))
        .expect("a request id header")
        .trim()
        .to_string()
}

/// Every span of a tree, depth first: (function, parent function).
fn edges(node: &Value, parent: Option<&str>, out: &mut Vec<(String, Option<String>)>) {
    let f = node["function"].as_str().unwrap().to_string();
    out.push((f.clone(), parent.map(str::to_string)));
    for c in node["children"].as_array().unwrap() {
        edges(c, Some(&f), out);
    }
}

const DOWNSTREAM: [(&str, &str); 5] = [
    ("on-topic", "start"),
    ("on-job", "start"),
    ("on-more", "on-job"),
    ("on-item", "start"),
    ("on-file", "start"),
];

/// Waits until the trace of `rid` holds all six invocations; its JSON tree.
fn whole_trace(app: &App, rid: &str) -> Value {
    eventually(30, "a trace of six invocations", || {
        let out = app.nimbus(&["trace", rid, "--output", "json"]);
        let tree: Value = serde_json::from_slice(&out.stdout).ok()?;
        (tree["spans"] == 6).then_some(tree)
    })
}

#[test]
fn one_request_traces_through_topics_queues_tables_and_buckets() {
    let app = App::deploy(&[]);
    let (status, head) = post(&format!("{}/go", app.url), &[]);
    assert_eq!(status, 202, "{head}");
    let rid = request_id(&head);
    let tree = whole_trace(&app, &rid);
    let roots = tree["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "{tree:#}");
    assert_eq!(roots[0]["function"], "start");
    assert_eq!(roots[0]["trigger"], "http");
    assert_eq!(roots[0]["request_id"], rid.as_str());
    assert!(roots[0]["parent_span_id"].is_null(), "{tree:#}");
    let mut seen = Vec::new();
    edges(&roots[0], None, &mut seen);
    for (child, parent) in DOWNSTREAM {
        assert!(
            seen.contains(&(child.to_string(), Some(parent.to_string()))),
            "{child} is not a child of {parent}: {seen:?}"
        );
    }
    let trace_id = tree["trace_id"].as_str().unwrap().to_string();
    assert_eq!(trace_id.len(), 32);

    // Any request id of the trace, and the trace id, give the same tree.
    let records: Vec<Value> = app
        .ok(&["logs", "--filter", &trace_id, "--output", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let invocations: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "invocation")
        .collect();
    assert_eq!(invocations.len(), 6, "{records:#?}");
    assert!(
        invocations
            .iter()
            .all(|r| r["trace_id"] == trace_id.as_str()
                && r["span_id"].as_str().is_some_and(|s| s.len() == 16))
    );
    let more = invocations
        .iter()
        .find(|r| r["function"] == "on-more")
        .unwrap();
    let from_more = app.ok(&[
        "trace",
        more["request_id"].as_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(serde_json::from_str::<Value>(&from_more).unwrap(), tree);
    let by_trace = app.ok(&["trace", &trace_id, "--output", "json"]);
    assert_eq!(serde_json::from_str::<Value>(&by_trace).unwrap(), tree);

    // The text tree: one line per span, children indented under their parent.
    let printed = app.ok(&["trace", &rid]);
    assert!(
        printed.starts_with(&format!(
            "trace {trace_id} (6 spans)\nstart  http POST /go 202  ok  +0"
        )),
        "{printed}"
    );
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 7, "{printed}");
    for f in [
        "on-topic  topic  ok",
        "on-job  queue  ok",
        "on-item  table  ok",
        "on-file  bucket  ok",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| (l.starts_with("├─ ") || l.starts_with("└─ "))
                    && l[l.find(' ').unwrap() + 1..].starts_with(f)),
            "{f} is a child of start: {printed}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| (l.starts_with("│  └─ on-more  queue  ok")
                || l.starts_with("   └─ on-more  queue  ok"))
                && l.contains(&format!("request {}", more["request_id"].as_str().unwrap()))),
        "on-more is nested under on-job: {printed}"
    );

    // Handlers see the attributes they were sent, not the runtime's trace context.
    let topic_out = app.ok(&["logs", "on-topic"]);
    assert!(
        topic_out.contains(r#"attributes [{"kind": "order"}]"#),
        "{topic_out}"
    );
    let job_out = app.ok(&["logs", "on-more"]);
    assert!(job_out.contains("attributes [{}]"), "{job_out}");

    // A caller's traceparent is continued: its trace id, the caller's span as parent.
    let caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (status, head) = post(&format!("{}/go", app.url), &[("traceparent", caller)]);
    assert_eq!(status, 202);
    let continued = whole_trace(&app, &request_id(&head));
    assert_eq!(continued["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(continued["roots"][0]["parent_span_id"], "b7ad6b7169203331");
    assert_eq!(continued["roots"][0]["function"], "start");

    // An unknown id is a clear error.
    let out = app.nimbus(&["trace", "nosuchrequest"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no invocation of")
            && text(&out.stderr).contains("nosuchrequest"),
        "{}",
        text(&out.stderr)
    );
}

/// A tiny OTLP/HTTP collector: records (path, content type, JSON body) of every POST, answers
/// 200 `{}` as the protocol's success.
/// What the collector received: (path, content type, JSON body) of each POST.
type Received = Arc<Mutex<Vec<(String, String, Value)>>>;

fn collector() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let (mut length, mut content_type) = (0usize, String::new());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (k, v) = line.split_once(':').unwrap();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap(),
                    "content-type" => content_type = v.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let path = request_line.split_whitespace().nth(1).unwrap().to_string();
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            sink.lock().unwrap().push((path, content_type, json));
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
            );
        }
    });
    (url, got)
}

#[test]
fn spans_are_exported_over_otlp_http_with_their_parent_links() {
    let (endpoint, got) = collector();
    let app = App::deploy(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]);
    let (status, head) = post(&format!("{}/go", app.url), &[]);
    assert_eq!(status, 202, "{head}");
    let rid = request_id(&head);
    let tree = whole_trace(&app, &rid);
    let trace_id = tree["trace_id"].as_str().unwrap().to_string();
    // name -> (span id, parent span id, resource service.name)
    let spans = eventually(30, "six exported spans", || {
        let got = got.lock().unwrap();
        let mut spans = std::collections::BTreeMap::new();
        for (path, content_type, body) in got.iter() {
            assert_eq!(path, "/v1/traces");
            assert_eq!(content_type, "application/json");
            for rs in body["resourceSpans"].as_array().unwrap() {
                let service = rs["resource"]["attributes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|a| a["key"] == "service.name")
                    .map(|a| a["value"]["stringValue"].clone())
                    .unwrap();
                for ss in rs["scopeSpans"].as_array().unwrap() {
                    for span in ss["spans"].as_array().unwrap() {
                        if span["traceId"] == trace_id.as_str() {
                            spans.insert(
                                span["name"].as_str().unwrap().to_string(),
                                (span.clone(), service.clone()),
                            );
                        }
                    }
                }
            }
        }
        (spans.len() == 6).then_some(spans)
    });
    let id = |name: &str| spans[name].0["spanId"].clone();
    assert!(spans["start"].0.get("parentSpanId").is_none());
    assert_eq!(spans["start"].0["kind"], 2, "an HTTP span is a server span");
    assert_eq!(spans["start"].1, "tracedemo");
    for (child, parent) in DOWNSTREAM {
        assert_eq!(spans[child].0["parentSpanId"], id(parent), "{child}");
        assert_eq!(spans[child].0["kind"], 5, "{child} is a consumer span");
    }
    let start = &spans["start"].0;
    let nanos = |k: &str| start[k].as_str().unwrap().parse::<u128>().unwrap();
    assert!(nanos("endTimeUnixNano") > nanos("startTimeUnixNano"));
    assert_eq!(start["status"]["code"], 1);
    assert!(
        start["attributes"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(
                { "key": "faas.invocation_id", "value": { "stringValue": rid } }
            ))
    );
}
