//! What goes wrong is visible, through the real `nimbus` binary against a local deployment:
//! one outcome line per invocation (HTTP request lines with method, path, status; failed batch
//! items), the user's stack trace (Python and source-mapped Node, shim frames dropped, secrets
//! masked) in `nimbus logs`, `nimbus invoke` and the local 500 body, retries after the queue's
//! visibility timeout and dead-lettering logged and counted (`info`, `/metrics`), `nimbus logs`
//! options, and `nimbus dev` streaming the lines.

#[path = "support/stdin.rs"]
mod stdin;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[path = "support/poll.rs"]
mod poll;
use poll::eventually;

use serde_json::Value;

/// The secret that `secretive` raises with; no output may show it.
const SECRET: &str = "sk_live_do_not_print_7f3a";

const APP: &str = r#"version: 1
service: logsdemo
secrets:
  api-key: {}
resources:
  payments: { type: queue, visibility_timeout: 2s, dead_letter: { max_receives: 3 } }
  checks: { type: queue }
functions:
  get-order:
    handler: fns/orders.py:get_order
    triggers: [ { http: { method: GET, path: "/orders/{id}" } } ]
  boom:
    handler: fns/orders.py:boom
    triggers: [ { http: { method: GET, path: /boom } } ]
  secretive:
    handler: fns/orders.py:secretive
    env: { API_KEY: { secret: api-key } }
    triggers: [ { http: { method: GET, path: /secretive } } ]
  printer:
    handler: fns/orders.py:printer
    triggers: [ { http: { method: POST, path: /print } } ]
  enqueue:
    handler: fns/orders.py:enqueue
    triggers: [ { http: { method: POST, path: /pay } } ]
    uses: [ { resource: payments, access: send } ]
  charge:
    handler: fns/charge.py:handler
    timeout: 1s
    triggers: [ { queue: { name: payments, batch_size: 1 } } ]
  picky:
    handler: fns/charge.py:picky
    triggers: [ { queue: { name: checks, batch_size: 10 } } ]
  mapped:
    handler: fns/mapped.js:handler
    triggers: [ { http: { method: GET, path: /mapped } } ]
"#;

const ORDERS: &str = r#"import json
import os


def get_order(event, context):
    return {"status": 404, "body": json.dumps({"error": "no order " + event["path_params"]["id"]})}


def lookup(order):
    return order["id"]


def boom(event, context):
    return lookup({})


def secretive(event, context):
    raise RuntimeError("upstream refused key " + os.environ["API_KEY"])


def printer(event, context):
    print("printed " + (event["body"] or ""))
    return {"status": 200}


def enqueue(event, context):
    context.resources["payments"].send(event["body"] or "{}")
    return {"status": 202}
"#;

const CHARGE: &str = r#"def charge(body):
    raise ValueError("card declined: " + body)


def handler(event, context):
    for m in event["messages"]:
        charge(m["body"])


def picky(event, context):
    return {"failed": [m["id"] for m in event["messages"] if "bad" in m["body"]]}
"#;

/// Compiled from `fns/mapped.ts` (line 11 throws), with its source map: the stack must point
/// at the TypeScript source.
const MAPPED_JS: &str = "exports.handler = async () => { throw new Error('mapped boom'); };\n//# sourceMappingURL=mapped.js.map\n";
const MAPPED_MAP: &str =
    r#"{"version":3,"file":"mapped.js","sources":["mapped.ts"],"names":[],"mappings":"AAUA"}"#;

/// A deployed project; removed when dropped.
struct App {
    dir: tempfile::TempDir,
    url: String,
    env: Vec<(String, String)>,
    _data: tempfile::TempDir,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_project(dir: &Path) {
    for (path, content) in [
        ("nimbus.yaml", APP),
        ("fns/orders.py", ORDERS),
        ("fns/charge.py", CHARGE),
        ("fns/mapped.js", MAPPED_JS),
        ("fns/mapped.js.map", MAPPED_MAP),
    ] {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

impl App {
    fn command(dir: &Path, env: &[(String, String)], args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nimbus"));
        cmd.args(args)
            .current_dir(dir)
            .env_remove("NIMBUS_PROVIDER")
            .env_remove("NIMBUS_STAGE")
            .env_remove("NO_COLOR")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// Writes the project, sets its secret and deploys it on a free port.
    fn deploy() -> App {
        let dir = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        write_project(dir.path());
        let env = vec![(
            "XDG_DATA_HOME".to_string(),
            data.path().to_string_lossy().into_owned(),
        )];
        set_secret(dir.path(), &env);
        let out = App::command(dir.path(), &env, &["deploy", "--port", "0"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let url = text(&out.stdout).trim().to_string();
        App {
            dir,
            url,
            env,
            _data: data,
        }
    }

    fn nimbus(&self, args: &[&str]) -> Output {
        App::command(self.dir.path(), &self.env, args)
            .output()
            .unwrap()
    }

    /// `nimbus logs ARGS…` (human lines), which must succeed.
    fn logs(&self, args: &[&str]) -> String {
        let out = self.nimbus(&[&["logs"], args].concat());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    }

    /// `nimbus logs FUNCTION --output json` as records.
    fn records(&self, function: &str) -> Vec<Value> {
        self.logs(&[function, "--output", "json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn admin_url(&self) -> String {
        let state = self
            .dir
            .path()
            .join(".nimbus/local/logsdemo/dev/runtime.json");
        let info: Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
        format!("http://127.0.0.1:{}", info["admin_port"])
    }

    fn admin_token(&self) -> String {
        let state = self
            .dir
            .path()
            .join(".nimbus/local/logsdemo/dev/runtime.json");
        let info: Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
        info["admin_token"].as_str().unwrap().to_string()
    }

    fn info(&self) -> Value {
        let out = self.nimbus(&["info", "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.nimbus(&["remove", "--yes"]);
    }
}

fn set_secret(dir: &Path, env: &[(String, String)]) {
    let out = stdin::output_with_stdin(
        &mut App::command(dir, env, &["secret", "set", "api-key"]),
        Some(SECRET.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A minimal HTTP/1.1 client: (status, body).
fn http(method: &str, url: &str, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = text(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn ms_of(ts: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(ts.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

#[test]
fn http_lines_carry_the_request_and_failures_keep_the_users_stack_trace() {
    let app = App::deploy();
    // A 404 from the handler is an answer: outcome ok, status 404.
    let (status, _) = http("GET", &format!("{}/orders/42", app.url), "", &[]);
    assert_eq!(status, 404);
    let line = app.logs(&["get-order"]);
    assert!(
        line.lines().any(|l| l.contains("get-order")
            && l.contains(" GET /orders/42 404 ")
            && l.contains("ms ok")),
        "{line}"
    );
    let record = app
        .records("get-order")
        .into_iter()
        .find(|r| r["kind"] == "invocation")
        .unwrap();
    assert_eq!(
        (
            &record["outcome"],
            &record["method"],
            &record["path"],
            &record["status"]
        ),
        (
            &"ok".into(),
            &"GET".into(),
            &"/orders/42".into(),
            &404.into()
        ),
        "{record}"
    );
    assert_eq!(record["request_id"].as_str().unwrap().len(), 24);

    // A request no route serves is logged by the gateway itself.
    let (status, _) = http("GET", &format!("{}/nowhere", app.url), "", &[]);
    assert_eq!(status, 404);
    let all = app.logs(&[]);
    assert!(all.contains(" GET /nowhere 404 "), "{all}");

    // A Python exception: 500 with the user's traceback (no shim frame), in the body (local
    // only), in `nimbus logs` and on `nimbus invoke`'s stderr.
    let (status, body) = http("GET", &format!("{}/boom", app.url), "", &[]);
    assert_eq!(status, 500, "{body}");
    let body = json_of(&body);
    let stack = body["stack"].as_str().unwrap();
    assert!(
        stack.starts_with(
            "Traceback (most recent call last):\n  File \"fns/orders.py\", line 14, in boom\n"
        ),
        "{stack}"
    );
    assert!(
        stack.contains("File \"fns/orders.py\", line 10, in lookup"),
        "{stack}"
    );
    assert!(stack.trim_end().ends_with("KeyError: 'id'"), "{stack}");
    assert!(
        !stack.contains("_nimbus"),
        "shim frames are dropped: {stack}"
    );
    let logs = app.logs(&["boom"]);
    assert!(logs.contains(" GET /boom 500 "), "{logs}");
    assert!(
        logs.contains("ms error — handler failed: KeyError: 'id'"),
        "{logs}"
    );
    assert!(logs.contains("\n    Traceback (most recent call last):\n      File \"fns/orders.py\", line 14, in boom"), "{logs}");
    let out = app.nimbus(&["invoke", "boom"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("`boom` failed (error): handler failed: KeyError: 'id'"),
        "{err}"
    );
    assert!(
        err.contains("    File \"fns/orders.py\", line 10, in lookup"),
        "{err}"
    );

    // Node: the stack is source-mapped to the TypeScript line that threw.
    let (status, body) = http("GET", &format!("{}/mapped", app.url), "", &[]);
    assert_eq!(status, 500, "{body}");
    let stack = json_of(&body)["stack"].as_str().unwrap().to_string();
    assert!(stack.starts_with("Error: mapped boom\n"), "{stack}");
    assert!(
        stack.contains("fns/mapped.ts:11:"),
        "source-mapped: {stack}"
    );
    assert!(
        !stack.contains("_nimbus") && !stack.contains("node:internal"),
        "{stack}"
    );

    // Secret values are masked in the message and the trace.
    let (status, body) = http("GET", &format!("{}/secretive", app.url), "", &[]);
    assert_eq!(status, 500, "{body}");
    assert!(!body.contains(SECRET), "{body}");
    assert!(body.contains("upstream refused key ***"), "{body}");
    let logs = app.logs(&["secretive", "--output", "json"]);
    assert!(
        logs.contains("fns/orders.py") && !logs.contains(SECRET),
        "{logs}"
    );

    // The admin API keeps each invocation with its event and result, for a console.
    let (status, body) = http(
        "GET",
        &format!("{}/invocations?function=get-order", app.admin_url()),
        "",
        &[("x-nimbus-admin-token", &app.admin_token())],
    );
    assert_eq!(status, 200, "{body}");
    let recent = json_of(&body)["invocations"].as_array().unwrap().clone();
    assert_eq!(recent.len(), 1, "{body}");
    assert_eq!(recent[0]["status"], 404);
    assert!(
        recent[0]["event"].to_string().contains("\"/orders/42\""),
        "{body}"
    );
    assert!(
        recent[0]["result"].to_string().contains("no order 42"),
        "{body}"
    );

    // `info` and `/metrics` count what failed.
    let counts = &app.info()["functions"]["boom"];
    assert_eq!(
        (&counts["invocations"], &counts["errors"]),
        (&2.into(), &2.into()),
        "{counts}"
    );
    let (_, metrics) = http("GET", &format!("{}/metrics", app.admin_url()), "", &[]);
    assert!(
        metrics.contains("nimbus_errors_total{function=\"boom\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nimbus_errors_total{function=\"get-order\"} 0"),
        "{metrics}"
    );
}

#[test]
fn failed_messages_come_back_after_the_visibility_timeout_and_are_dead_lettered_visibly() {
    let app = App::deploy();
    let (status, _) = http("POST", &format!("{}/pay", app.url), "{\"amount\": 5}", &[]);
    assert_eq!(status, 202);
    // `charge` raises on every receive.
    let moved = eventually(30, "the message to move to payments-dlq", || {
        let logs = app.logs(&["charge"]);
        logs.contains("moved to payments-dlq after 3 receives")
            .then_some(logs)
    });
    for attempt in 1..=3 {
        assert!(
            moved.contains(&format!(
                "failed (attempt {attempt}/3): ValueError: card declined: {{\"amount\": 5}}"
            )),
            "{moved}"
        );
    }
    let invocations: Vec<Value> = app
        .records("charge")
        .into_iter()
        .filter(|r| r["kind"] == "invocation")
        .collect();
    assert_eq!(invocations.len(), 3, "{invocations:?}");
    for r in &invocations {
        assert_eq!(
            (&r["outcome"], &r["items"], &r["failed"]),
            (&"error".into(), &1.into(), &1.into()),
            "{r}"
        );
        assert!(
            r["stack"]
                .as_str()
                .unwrap()
                .contains("File \"fns/charge.py\", line 2, in charge"),
            "{r}"
        );
    }
    // Received again when the 2 s visibility timeout ran out, not sooner.
    for pair in invocations.windows(2) {
        let gap = ms_of(&pair[1]["ts"]) - ms_of(&pair[0]["ts"]);
        assert!((1800..4000).contains(&gap), "redelivered after {gap} ms");
    }
    let store_says = eventually(10, "the dead-letter queue to hold it", || {
        let q = app.info()["queues"].clone();
        (q["payments-dlq"]["visible"] == 1).then_some(q)
    });
    assert_eq!(store_says["payments"]["dead_lettered"], 1, "{store_says}");
    let counts = &app.info()["functions"]["charge"];
    assert_eq!(
        (
            &counts["invocations"],
            &counts["errors"],
            &counts["retries"],
            &counts["dead_lettered"]
        ),
        (&3.into(), &3.into(), &2.into(), &1.into()),
        "{counts}"
    );
    let human = text(&app.nimbus(&["info"]).stdout);
    assert!(
        human.contains("errors 3") && human.contains("dead-lettered 1"),
        "{human}"
    );
    let (_, metrics) = http("GET", &format!("{}/metrics", app.admin_url()), "", &[]);
    for expected in [
        "nimbus_errors_total{function=\"charge\"} 3",
        "nimbus_retries_total{function=\"charge\"} 2",
        "nimbus_dead_lettered_total{function=\"charge\"} 1",
        "nimbus_queue_dead_lettered_total{queue=\"payments\"} 1",
        "nimbus_queue_depth{queue=\"payments-dlq\",state=\"visible\"} 1",
    ] {
        assert!(metrics.contains(expected), "{expected}:\n{metrics}");
    }

    // A batch whose handler reports some messages failed ends in `error` with the count.
    let out = app.nimbus(&[
        "invoke",
        "picky",
        "--data",
        r#"[{"ok": 1}, {"bad": 2}, {"ok": 3}]"#,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let logs = app.logs(&["picky"]);
    assert!(
        logs.contains("queue error")
            && logs.contains("1/3 failed — the handler reported 1 of 3 messages as failed"),
        "{logs}"
    );
}

#[test]
fn logs_show_an_invocation_at_once_and_filter_by_time_text_and_level() {
    let app = App::deploy();
    // No blind spot: the lines of an invocation that just ended are there.
    for i in 0..5 {
        let out = app.nimbus(&["invoke", "printer", "--data", &format!("{{\"n\":{i}}}")]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let logs = app.logs(&["printer"]);
        assert!(
            logs.contains(&format!("stdout: printed {{\"n\":{i}}}")),
            "{i}:\n{logs}"
        );
        assert_eq!(logs.matches(" POST /print 200 ").count(), i + 1, "{logs}");
    }
    let _ = app.nimbus(&["invoke", "boom"]);
    let errors = app.logs(&["--level", "error"]);
    assert!(
        errors.contains("boom") && errors.contains("KeyError"),
        "{errors}"
    );
    assert!(!errors.contains("printed"), "{errors}");
    let filtered = app.logs(&["--filter", "printed {\"n\":3}"]);
    assert_eq!(filtered.lines().count(), 1, "{filtered}");
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    assert_eq!(app.logs(&["--since", &future]), "");
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    assert!(app.logs(&["printer", "--since", &past]).contains("printed"));
    assert!(app.logs(&["printer", "--since", "10m"]).contains("printed"));
    let bad = app.nimbus(&["logs", "--level", "loud"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("debug, info, warn or error"),
        "{}",
        text(&bad.stderr)
    );
    let bad = app.nimbus(&["logs", "--since", "yesterday"]);
    assert!(
        text(&bad.stderr).contains("2026-01-02T03:04:05Z"),
        "{}",
        text(&bad.stderr)
    );
    let help = text(&app.nimbus(&["logs", "--help"]).stdout);
    for flag in [
        "--tail",
        "--since",
        "--filter",
        "--level",
        "nimbus logs -t --level error",
    ] {
        assert!(help.contains(flag), "{flag}:\n{help}");
    }

    // `--tail` (-t) prints new lines as they come.
    let mut tail = App::command(app.dir.path(), &app.env, &["logs", "-t", "printer"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut tail);
    let (status, _) = http("POST", &format!("{}/print", app.url), "tailed", &[]);
    assert_eq!(status, 200);
    let seen = wait_for(&lines, "printed tailed");
    assert!(seen.contains("stdout: printed tailed"), "{seen}");
    let _ = tail.kill();
    let _ = tail.wait();
}

/// Lines a child prints on stdout, read on a thread.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits (30 s at most) for a line containing `needle`; returns everything read until then.
fn wait_for(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(needle) {
                return seen;
            }
        }
    }
    panic!("no line with {needle:?} in:\n{seen}");
}

fn port_of(stderr: &str) -> Option<String> {
    let at = stderr.find("http://127.0.0.1:")?;
    let rest = &stderr[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.')))
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

#[test]
fn dev_streams_every_line_and_shows_manifest_errors_as_validate_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    write_project(dir.path());
    let env = vec![(
        "XDG_DATA_HOME".to_string(),
        data.path().to_string_lossy().into_owned(),
    )];
    set_secret(dir.path(), &env);
    let mut dev = App::command(dir.path(), &env, &["dev", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut dev);
    let stderr = dev.stderr.take().unwrap();
    let (etx, erx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if etx.send(line).is_err() {
                return;
            }
        }
    });
    let mut banner = String::new();
    let url = loop {
        let line = erx
            .recv_timeout(Duration::from_secs(120))
            .expect("dev starts");
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("serving") {
            break port_of(&line).unwrap();
        }
    };
    let (status, _) = http("GET", &format!("{url}/orders/7"), "", &[]);
    assert_eq!(status, 404);
    let seen = wait_for(&lines, "GET /orders/7 404");
    assert!(seen.contains("get-order"), "{seen}");
    let (status, _) = http("GET", &format!("{url}/boom"), "", &[]);
    assert_eq!(status, 500);
    let seen = wait_for(&lines, "in lookup");
    assert!(
        seen.contains("GET /boom 500") && seen.contains("fns/orders.py"),
        "{seen}"
    );
    assert!(
        !seen.contains('\x1b'),
        "no colours when stdout is not a terminal: {seen:?}"
    );

    // A broken manifest: the same diagnostic as `validate`, not JSON.
    let manifest = dir.path().join("nimbus.yaml");
    let broken = APP.replace("batch_size: 1 }", "batch_size: 1, bogus: 3 }");
    std::fs::write(&manifest, broken).unwrap();
    let mut err = String::new();
    while !err.contains("still serving the previous version") {
        let line = erx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no reload error in:\n{err}"));
        err.push_str(&line);
        err.push('\n');
    }
    assert!(err.contains("error: unknown key `bogus`"), "{err}");
    assert!(err.contains("--> nimbus.yaml:"), "{err}");
    assert!(!err.contains("{\""), "not raw JSON: {err}");
    interrupt(&dev);
    let _ = dev.wait();
}

/// Stops `nimbus dev` as Ctrl-C would.
fn interrupt(child: &Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
}

/// Colours, on a terminal only: `script` gives `nimbus dev` a pseudo-terminal.
#[test]
fn dev_colours_lines_per_function_on_a_terminal_unless_no_color() {
    for no_color in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        write_project(dir.path());
        let env = vec![(
            "XDG_DATA_HOME".to_string(),
            data.path().to_string_lossy().into_owned(),
        )];
        set_secret(dir.path(), &env);
        // Outside the project: `dev` watches the project's files.
        let terminal = tempfile::tempdir().unwrap();
        let typescript = terminal.path().join("typescript.txt");
        let bin = env!("CARGO_BIN_EXE_nimbus");
        let mut cmd = Command::new("script");
        cmd.args([
            "-q",
            "-f",
            "-e",
            "-c",
            &format!("{bin} dev --port 0"),
            &path_text(&typescript),
        ])
        .current_dir(dir.path())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env_remove("NIMBUS_PROVIDER")
        .env_remove("NIMBUS_STAGE")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let mut child = cmd
            .spawn()
            .expect("`script` (util-linux) runs: apt-get install bsdutils");
        let url = eventually(120, "dev to serve", || {
            port_of(&std::fs::read_to_string(&typescript).ok()?)
        });
        let (status, _) = http("GET", &format!("{url}/orders/9"), "", &[]);
        assert_eq!(status, 404);
        let out = eventually(30, "the request line", || {
            let t = std::fs::read_to_string(&typescript).ok()?;
            t.contains("GET /orders/9 404").then_some(t)
        });
        let line = out
            .lines()
            .find(|l| l.contains("GET /orders/9 404"))
            .unwrap()
            .to_string();
        match no_color {
            false => assert!(
                line.starts_with("\x1b[") && line.contains("\x1b[0m"),
                "{line:?}"
            ),
            true => assert!(!line.contains('\x1b'), "{line:?}"),
        }
        // Ctrl-C reaches dev through the terminal.
        let _ = child.stdin.take().unwrap().write_all(b"\x03");
        if eventually_exits(&mut child).is_none() {
            let _ = child.kill();
        }
        let _ = child.wait();
        kill_dev_in(dir.path());
    }
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn eventually_exits(child: &mut Child) -> Option<()> {
    for _ in 0..100 {
        if child.try_wait().ok().flatten().is_some() {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Stops a `nimbus dev` still serving from `dir` (its pid is in the state's runtime.json).
fn kill_dev_in(dir: &Path) {
    let state = dir.join(".nimbus/local/logsdemo/dev/runtime.json");
    if let Ok(bytes) = std::fs::read(state)
        && let Ok(info) = serde_json::from_slice::<Value>(&bytes)
        && let Some(pid) = info["pid"].as_u64()
        && Path::new(&format!("/proc/{pid}")).exists()
    {
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn a_failing_schedule_run_is_retried_twice_visibly_then_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("nimbus.yaml"),
        "version: 1\nservice: ticks\nfunctions:\n  tick:\n    handler: tick.py:handler\n    triggers: [ { schedule: \"rate(1 minute)\" } ]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tick.py"),
        "def handler(event, context):\n    raise ValueError('no data for ' + event['time'])\n",
    )
    .unwrap();
    // Schedule time runs a minute per second; retries wait 50 ms.
    let env = vec![
        (
            "XDG_DATA_HOME".to_string(),
            data.path().to_string_lossy().into_owned(),
        ),
        ("NIMBUS_LOCAL_CLOCK_SCALE".to_string(), "60".to_string()),
        ("NIMBUS_LOCAL_RETRY_BASE_MS".to_string(), "50".to_string()),
    ];
    let out = App::command(dir.path(), &env, &["deploy", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let app = App {
        url: text(&out.stdout).trim().to_string(),
        dir,
        env,
        _data: data,
    };
    let logs = eventually(30, "a run given up", || {
        let logs = app.logs(&["tick"]);
        logs.contains("failed (attempt 3/3)").then_some(logs)
    });
    let given_up = logs.lines().find(|l| l.contains("(attempt 3/3)")).unwrap();
    assert!(given_up.contains(" error tick: schedule "), "{given_up}");
    assert!(
        given_up.contains("ValueError: no data for ")
            && given_up.ends_with("; this run is given up"),
        "{given_up}"
    );
    assert!(
        logs.contains("failed (attempt 1/3)") && logs.contains("; retried"),
        "{logs}"
    );
    assert!(
        logs.contains("tick ") && logs.contains(" schedule error "),
        "{logs}"
    );
    assert!(app.info()["functions"]["tick"]["retries"].as_u64().unwrap() >= 2);
}
