//! The local runtime end to end, through the real `nimbus` binary: `deploy` starts a background
//! runtime, real HTTP requests drive it, its durable store is read back with the store crate,
//! and `remove` stops it. Every project lives in a temp dir and binds free loopback ports.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[path = "support/poll.rs"]
mod poll;
use poll::eventually;

use nimbus_local_store::{KeyType, Store, TableKey};
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A deployed project; removed (runtime stopped, data deleted) when dropped. Its registry of
/// local deployments is its own (`XDG_DATA_HOME` in a temp dir).
struct App {
    dir: tempfile::TempDir,
    url: String,
    env: Vec<(String, String)>,
    _data: tempfile::TempDir,
}

fn nimbus_in(dir: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nimbus"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("NIMBUS_PROVIDER")
        .env_remove("NIMBUS_STAGE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("nimbus runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl App {
    /// Writes `files` into a temp project and deploys it on a free port.
    fn deploy(files: &[(&str, &str)], env: &[(&str, &str)]) -> App {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        App::deploy_dir(dir, env)
    }

    fn deploy_dir(dir: tempfile::TempDir, env: &[(&str, &str)]) -> App {
        App::deploy_dir_with_secrets(dir, env, &[])
    }

    /// Sets `secrets` (name, value) with `nimbus secret set`, then deploys `dir`.
    fn deploy_dir_with_secrets(
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
        secrets: &[(&str, &str)],
    ) -> App {
        let data = tempfile::tempdir().unwrap();
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.push((
            "XDG_DATA_HOME".into(),
            data.path().to_string_lossy().into_owned(),
        ));
        for (name, value) in secrets {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_nimbus"));
            cmd.args(["secret", "set", name])
                .current_dir(dir.path())
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("nimbus runs");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(value.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        }
        let out = nimbus_in(dir.path(), &env, &["deploy", "--port", "0"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "deploy failed:\n{}",
            text(&out.stderr)
        );
        let url = text(&out.stdout).trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        App {
            dir,
            url,
            env,
            _data: data,
        }
    }

    fn nimbus(&self, args: &[&str]) -> Output {
        nimbus_in(self.dir.path(), &self.env, args)
    }

    fn info(&self) -> Value {
        let out = self.nimbus(&["info", "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn state(&self, service: &str) -> PathBuf {
        self.dir
            .path()
            .join(".nimbus/local")
            .join(service)
            .join("dev")
    }

    fn store(&self, service: &str) -> Store {
        Store::open(&self.state(service).join("state.db")).unwrap()
    }

    fn logs(&self, function: &str) -> String {
        text(&self.nimbus(&["logs", function, "--output", "json"]).stdout)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.nimbus(&["remove", "--yes"]);
    }
}

/// A minimal HTTP/1.1 client: (status, headers, body).
fn http(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.unwrap_or("");
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
    (status, head.to_lowercase(), body.to_string())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if [".nimbus", "__pycache__", ".pytest_cache", "tests"]
            .iter()
            .any(|n| name == *n)
        {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (be(16), be(20))
}

/// The shop's payment provider key, set with `nimbus secret set payment-key` before deploying.
const SHOP_PAYMENT_KEY: &str = "sk_test_shop_local_5c1e0f";

#[test]
fn the_shop_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/shop"), dir.path());
    // Schedule time runs 12 h per second so the nightly report fires; retries are fast. The
    // payment provider's key is a secret that charge-payment reads.
    let app = App::deploy_dir_with_secrets(
        dir,
        &[
            ("NIMBUS_LOCAL_CLOCK_SCALE", "43200"),
            ("NIMBUS_LOCAL_RETRY_BASE_MS", "100"),
        ],
        &[("payment-key", SHOP_PAYMENT_KEY)],
    );
    let order = |body: Value| {
        let (status, _, body) = http(
            "POST",
            &format!("{}/orders", app.url),
            Some(&body.to_string()),
            &[("content-type", "application/json")],
        );
        assert_eq!(status, 201, "{body}");
        json_of(&body)["id"].as_str().unwrap().to_string()
    };
    let good = order(
        json!({ "items": [{ "sku": "widget", "qty": 2 }], "email": "a@example.com", "amount": 25 }),
    );
    let flaky = order(
        json!({ "items": [{ "sku": "widget", "qty": 1 }], "email": "b@example.com", "amount": 5, "flaky": true }),
    );
    let poison = order(
        json!({ "items": [{ "sku": "gadget", "qty": 1 }], "email": "c@example.com", "amount": 0 }),
    );

    // The payment queue drives charge-payment: both good orders end up paid (the flaky one after a retry).
    for id in [&good, &flaky] {
        eventually(30, "the order to be paid", || {
            let (status, _, body) = http("GET", &format!("{}/orders/{id}", app.url), None, &[]);
            (status == 200 && json_of(&body)["status"] == "paid").then_some(())
        });
    }
    // The catch-all route `GET /orders/{id}/{field+}` serves a part of the order.
    let (status, _, body) = http(
        "GET",
        &format!("{}/orders/{good}/items/0/sku", app.url),
        None,
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_of(&body),
        json!({ "id": good, "field": "items/0/sku", "value": "widget" })
    );
    let (status, _, _) = http("GET", &format!("{}/orders/{good}/nope", app.url), None, &[]);
    assert_eq!(status, 404);
    let charge_logs = app.logs("charge-payment");
    assert!(
        charge_logs.contains("flaky, first receive"),
        "the flaky payment failed once first:\n{charge_logs}"
    );
    // Charged with the key (its reference is signed with it), which no log or state file holds.
    let (_, _, body) = http("GET", &format!("{}/orders/{good}", app.url), None, &[]);
    let paid = json_of(&body);
    assert!(
        paid["payment_ref"].as_str().is_some_and(|r| r.len() == 24),
        "{paid}"
    );
    assert!(!body.contains(SHOP_PAYMENT_KEY));
    let leaked: Vec<PathBuf> = walk(&app.state("shop"))
        .into_iter()
        .filter(|f| {
            let bytes = std::fs::read(f).unwrap_or_default();
            bytes
                .windows(SHOP_PAYMENT_KEY.len())
                .any(|w| w == SHOP_PAYMENT_KEY.as_bytes())
        })
        .collect();
    assert!(leaked.is_empty(), "the payment key is in {leaked:?}");
    // The poison payment is retried, then lands in the dead-letter queue after 5 receives.
    let store = app.store("shop");
    let dead = eventually(60, "the poison message in payments-dlq", || {
        let msgs = store.peek_all("payments-dlq").ok()?;
        msgs.into_iter().find(|m| m.body.contains(&poison))
    });
    assert!(
        dead.body.contains("\"amount\":0") || dead.body.contains("\"amount\": 0"),
        "{}",
        dead.body
    );
    let (_, _, body) = http("GET", &format!("{}/orders/{poison}", app.url), None, &[]);
    assert_eq!(json_of(&body)["status"], "placed", "never charged");

    // The topic fanned out to reserve-stock: 100 - 2 - 1 widgets, 99 gadgets.
    let inventory = TableKey {
        partition: ("sku".into(), KeyType::String),
        sort: None,
    };
    let widgets = eventually(30, "stock to be reserved", || {
        let item = store
            .table_get("inventory", &inventory, &json!({ "sku": "widget" }))
            .ok()??;
        (item["available"] == 97).then_some(item)
    });
    assert_eq!(widgets["available"], 97);

    // Every insert and update of an order reached audit-orders.
    let audit = app.logs("audit-orders");
    assert!(
        audit.contains(&format!(
            "\\\"audit\\\": \\\"insert\\\", \\\"key\\\": {{\\\"id\\\": \\\"{good}\\\"}}"
        )) || audit.contains(&good),
        "{audit}"
    );
    assert!(audit.contains("modify"), "{audit}");

    // A file dropped into the images bucket under uploads/ becomes a 128 px thumbnail.
    let images = app.state("shop").join("buckets/images");
    std::fs::create_dir_all(images.join("uploads")).unwrap();
    std::fs::copy(
        repo().join("crates/nimbus/tests/fixtures/cat.png"),
        images.join("uploads/cat.png"),
    )
    .unwrap();
    let thumb = eventually(60, "the thumbnail", || {
        std::fs::read(images.join("thumbnails/cat.png")).ok()
    });
    assert_eq!(png_size(&thumb), (128, 85));

    // The nightly schedule fired and wrote a report with every order in it (schedule time runs
    // fast: a report of a night before the orders were placed may be there too).
    let reports = app.state("shop").join("buckets/reports/nightly");
    let report = eventually(30, "a nightly report with every order", || {
        std::fs::read_dir(&reports)
            .ok()?
            .flatten()
            .filter_map(|e| serde_json::from_slice::<Value>(&std::fs::read(e.path()).ok()?).ok())
            .find(|r| r["orders"].as_u64().is_some_and(|n| n >= 3))
    });
    assert!(report["by_status"].is_object(), "{report}");

    // Observability: info and Prometheus metrics.
    let info = app.info();
    assert_eq!(info["functions"]["place-order"]["invocations"], 3);
    let admin = json_of(&std::fs::read_to_string(app.state("shop").join("runtime.json")).unwrap());
    let (status, _, metrics) = http(
        "GET",
        &format!("http://127.0.0.1:{}/metrics", admin["admin_port"]),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert!(
        metrics.contains("nimbus_invocations_total{function=\"charge-payment\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nimbus_queue_depth{queue=\"payments-dlq\",state=\"visible\"} 1"),
        "{metrics}"
    );
    // The failures are visible: each receive of the poison message is logged with its attempt,
    // then its move, and counted as errors, retries and a dead-lettered message.
    let charge_logs = text(&app.nimbus(&["logs", "charge-payment"]).stdout);
    for attempt in 1..=5 {
        assert!(
            charge_logs.contains(&format!(
                "failed (attempt {attempt}/5): reported failed by the handler"
            )),
            "attempt {attempt}:\n{charge_logs}"
        );
    }
    assert!(
        charge_logs.contains("moved to payments-dlq after 5 receives"),
        "{charge_logs}"
    );
    assert!(
        charge_logs.contains("queue error")
            && charge_logs.contains(" failed — the handler reported 1 of"),
        "{charge_logs}"
    );
    assert!(
        metrics.contains("nimbus_dead_lettered_total{function=\"charge-payment\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nimbus_queue_dead_lettered_total{queue=\"payments\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("nimbus_errors_total{function=\"charge-payment\"} 0"),
        "{metrics}"
    );
    let counts = &app.info()["functions"]["charge-payment"];
    assert!(
        counts["errors"].as_u64().unwrap() >= 6,
        "flaky once, poison 5 times: {counts}"
    );
    assert!(counts["retries"].as_u64().unwrap() >= 5, "{counts}");
    assert_eq!(counts["dead_lettered"], 1, "{counts}");
    assert_eq!(app.info()["queues"]["payments"]["dead_lettered"], 1);

    // remove stops the runtime and deletes its data.
    let pid = admin["pid"].as_u64().unwrap();
    let out = app.nimbus(&["remove", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z")
    );
    assert!(!app.state("shop").exists());
}

const SLOW_APP: &str = "version: 1\nservice: slow\nproviders:\n  local: { idle_timeout: 2s }\nfunctions:\n  slow:\n    handler: app.py:handler\n    concurrency: { max: 4 }\n    triggers: [ { http: { method: GET, path: /slow } } ]\n";
const SLOW_HANDLER: &str = "import time\n\ndef handler(event, context):\n    time.sleep(0.5)\n    return {'status': 200, 'body': 'ok'}\n";

fn workers_of(pid: u64) -> usize {
    // Direct children of the runtime that are Python workers.
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let after = stat.rsplit(')').next().unwrap_or("");
            let fields: Vec<&str> = after.split_whitespace().collect();
            fields.get(1) == Some(&pid.to_string().as_str()) && fields.first() != Some(&"Z")
        })
        .count()
}

#[test]
fn pools_grow_to_the_cap_and_shrink_to_zero() {
    let app = App::deploy(&[("nimbus.yaml", SLOW_APP), ("app.py", SLOW_HANDLER)], &[]);
    let pid = app.info()["pid"].as_u64().unwrap();
    assert_eq!(workers_of(pid), 0, "nothing runs before the first request");
    // The unpacked package was compiled once, so that workers start without compiling it.
    let functions = app.state("slow").join("functions");
    let package = std::fs::read_dir(&functions)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    for compiled in [
        package.join("__pycache__"),
        package.join("_nimbus/__pycache__"),
    ] {
        let names: Vec<String> = std::fs::read_dir(&compiled)
            .unwrap_or_else(|e| panic!("{}: {e}", compiled.display()))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().any(|n| n.ends_with(".pyc")), "{names:?}");
    }
    let url = format!("{}/slow", app.url);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(workers_of(pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || http("GET", &url, None, &[]).0)
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        peak <= 4,
        "never more workers than concurrency.max: saw {peak}"
    );
    assert!(peak >= 2, "the pool grew under load: saw {peak}");
    // 32 requests of 0.5 s through at most 4 workers take at least 4 s.
    assert!(elapsed >= Duration::from_millis(3900), "{elapsed:?}");
    let info = app.info();
    assert!(info["functions"]["slow"]["cold_starts"].as_u64().unwrap() <= 4);
    eventually(15, "the pool to shrink to zero processes", || {
        (workers_of(pid) == 0).then_some(())
    });
    assert_eq!(app.info()["functions"]["slow"]["instances"], 0);
}

const FAULTS_APP: &str = r#"version: 1
service: faults
functions:
  sleepy:
    handler: fns/sleepy.py:handler
    timeout: 1s
    triggers: [ { http: { method: GET, path: /sleepy } } ]
  spinner:
    handler: fns/spinner.py:handler
    timeout: 1s
    triggers: [ { http: { method: GET, path: /spinner } } ]
  hog:
    handler: fns/hog.py:handler
    memory: 128
    triggers: [ { http: { method: GET, path: /hog } } ]
  quitter:
    handler: fns/quitter.py:handler
    triggers: [ { http: { method: GET, path: /quitter } } ]
  node-hog:
    handler: fns/hog.js:handler
    memory: 128
    triggers: [ { http: { method: GET, path: /node-hog } } ]
  fine:
    handler: fns/fine.py:handler
    triggers: [ { http: { method: GET, path: /fine } } ]
"#;

#[test]
fn faulty_handlers_get_their_errors_and_the_runtime_keeps_serving() {
    let files = [
        ("nimbus.yaml", FAULTS_APP),
        (
            "fns/sleepy.py",
            "import time\n\ndef handler(event, context):\n    time.sleep(30)\n",
        ),
        (
            "fns/spinner.py",
            "def handler(event, context):\n    while True:\n        pass\n",
        ),
        (
            "fns/hog.py",
            "def handler(event, context):\n    hoard = []\n    while True:\n        hoard.append(bytearray(16 * 1024 * 1024))\n",
        ),
        (
            "fns/quitter.py",
            "import os\n\ndef handler(event, context):\n    os._exit(3)\n",
        ),
        (
            "fns/hog.js",
            "exports.handler = async () => { const hoard = []; for (;;) hoard.push(new Array(1e6).fill(1.5)); };\n",
        ),
        (
            "fns/fine.py",
            "def handler(event, context):\n    return {'status': 200, 'body': 'fine'}\n",
        ),
    ];
    let app = App::deploy(&files, &[]);
    let get = |p: &str| http("GET", &format!("{}{p}", app.url), None, &[]);
    for _ in 0..2 {
        let (status, _, body) = get("/sleepy");
        assert_eq!(status, 504, "{body}");
        assert!(body.contains("timed out"), "{body}");
        let (status, _, body) = get("/spinner");
        assert_eq!(status, 504, "{body}");
        let (status, _, body) = get("/hog");
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("out of memory"), "{body}");
        let (status, _, body) = get("/node-hog");
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("out of memory"), "{body}");
        let (status, _, body) = get("/quitter");
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("crashed"), "{body}");
        let (status, _, body) = get("/fine");
        assert_eq!(
            (status, body.as_str()),
            (200, "fine"),
            "other functions are unaffected"
        );
    }
    let logs = app.logs("sleepy");
    assert!(logs.contains("\"outcome\":\"timeout\""), "{logs}");
    // Each failure ends in one line with its outcome word (and, for HTTP, the request line).
    for (function, outcome, status) in [
        ("hog", "out of memory", 502),
        ("quitter", "crashed", 502),
        ("spinner", "timeout", 504),
    ] {
        let human = text(&app.nimbus(&["logs", function]).stdout);
        let lines: Vec<&str> = human
            .lines()
            .filter(|l| l.contains(&format!(" {status} ")) && l.contains(&format!("ms {outcome}")))
            .collect();
        assert_eq!(lines.len(), 2, "{function}:\n{human}");
        assert!(lines.iter().all(|l| l.contains(" GET /")), "{human}");
    }
    let counts = &app.info()["functions"]["sleepy"];
    assert_eq!(
        (&counts["errors"], &counts["timeouts"]),
        (&2.into(), &2.into()),
        "{counts}"
    );
}

const QUEUE_APP: &str = r#"version: 1
service: durable
resources:
  jobs: { type: queue, visibility_timeout: 2s }
  seen: { type: table, key: { id: string } }
functions:
  enqueue:
    handler: fns/enqueue.py:handler
    triggers: [ { http: { method: POST, path: /jobs } } ]
    uses: [ { resource: jobs, access: send } ]
  work:
    handler: fns/work.py:handler
    timeout: 1s
    triggers: [ { queue: { name: jobs, batch_size: 1 } } ]
    uses: [ { resource: seen, access: write } ]
"#;

#[test]
fn queued_messages_survive_kill_9_of_the_runtime() {
    let files = [
        ("nimbus.yaml", QUEUE_APP),
        (
            "fns/enqueue.py",
            "def handler(event, context):\n    for i in range(30):\n        context.resources['jobs'].send({'n': i})\n    return {'status': 202, 'body': 'queued'}\n",
        ),
        (
            "fns/work.py",
            "import json, time\n\ndef handler(event, context):\n    for m in event['messages']:\n        time.sleep(0.1)\n        context.resources['seen'].put({'id': str(json.loads(m['body'])['n'])})\n",
        ),
    ];
    let app = App::deploy(&files, &[]);
    let (status, _, body) = http("POST", &format!("{}/jobs", app.url), Some(""), &[]);
    assert_eq!(status, 202, "{body}");
    std::thread::sleep(Duration::from_millis(400));
    let pid = app.info()["pid"].as_u64().unwrap();
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let store = app.store("durable");
    let key = TableKey {
        partition: ("id".into(), KeyType::String),
        sort: None,
    };
    let before = store.table_scan("seen", None).unwrap().len();
    assert!(
        before < 30,
        "the kill landed with work left: {before} of 30 done"
    );
    // A new deploy starts a new runtime on the same state: every message is handled.
    let out = app.nimbus(&["deploy", "--port", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    eventually(60, "all 30 messages handled after the restart", || {
        (store.table_scan("seen", None).ok()?.len() == 30).then_some(())
    });
    for i in 0..30 {
        assert!(
            store
                .table_get("seen", &key, &json!({ "id": i.to_string() }))
                .unwrap()
                .is_some(),
            "message {i}"
        );
    }
}

const EDGE_APP: &str = r#"version: 1
service: edges
resources:
  files: { type: bucket }
functions:
  echo:
    handler: fns/echo.py:handler
    triggers:
      - http: { method: POST, path: /echo }
      - http: { method: GET, path: "/items/{id}" }
  escape:
    handler: fns/escape.py:handler
    triggers: [ { http: { method: POST, path: /escape } } ]
    uses: [ { resource: files, access: read_write } ]
  reader:
    handler: fns/reader.py:handler
    triggers: [ { http: { method: GET, path: /read } } ]
    uses: [ { resource: files, access: read } ]
  keyed:
    handler: fns/echo.py:handler
    triggers: [ { http: { method: GET, path: /keyed, auth: { api_key: { header: x-api-key } } } } ]
  jwt:
    handler: fns/echo.py:handler
    triggers: [ { http: { method: GET, path: /jwt, auth: { jwt: { issuer: "https://issuer.test", audience: edges } } } } ]
"#;

#[test]
fn bad_input_gets_clear_4xx_and_nothing_escapes_the_state_folder() {
    let files = [
        ("nimbus.yaml", EDGE_APP),
        (
            "fns/echo.py",
            "def handler(event, context):\n    return {'path_params': event['path_params'], 'body': event['body'], 'query': event['query']}\n",
        ),
        (
            "fns/escape.py",
            "def handler(event, context):\n    try:\n        context.resources['files'].put('../../../escaped.txt', b'x')\n    except Exception as e:\n        return {'status': 400, 'body': {'error': str(e)}}\n    return {'status': 200, 'body': 'written'}\n",
        ),
        (
            "fns/reader.py",
            "from _nimbus import local_worker\n\ndef handler(event, context):\n    errors = []\n    try:\n        context.resources['files'].put('a.txt', b'x')\n    except Exception as e:\n        errors.append(str(e))\n    try:\n        local_worker.rpc('files', 'put', {'key': 'a.txt', 'data_b64': 'eA=='})\n    except Exception as e:\n        errors.append(str(e))\n    return {'status': 403, 'body': {'errors': errors}}\n",
        ),
    ];
    let secret = "0123456789abcdef0123456789abcdef";
    let app = App::deploy(
        &files,
        &[
            ("NIMBUS_LOCAL_MAX_BODY", "1000"),
            ("NIMBUS_JWT_SECRET", secret),
        ],
    );
    let u = |p: &str| format!("{}{p}", app.url);

    let (status, _, body) = http("POST", &u("/echo"), Some(&"x".repeat(1001)), &[]);
    assert_eq!(status, 413, "{body}");
    let (status, _, body) = http("POST", &u("/echo?a=1&a=2"), Some("hello"), &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["body"], "hello");
    assert_eq!(json_of(&body)["query"]["a"], "1,2");
    let (status, _, body) = http("GET", &u("/items/a%20b"), None, &[]);
    assert_eq!(
        (status, json_of(&body)["path_params"]["id"].clone()),
        (200, json!("a b"))
    );
    let (status, _, body) = http("GET", &u("/nowhere"), None, &[]);
    assert_eq!(status, 404);
    assert!(
        json_of(&body)["error"]
            .as_str()
            .unwrap()
            .contains("no route")
    );
    let (status, head, _) = http("DELETE", &u("/echo"), None, &[]);
    assert_eq!(status, 405);
    assert!(head.contains("allow: post"), "{head}");

    // Path traversal in a bucket key is refused; nothing is written outside the bucket.
    let (status, _, body) = http("POST", &u("/escape"), Some(""), &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid object key"), "{body}");
    let leaked: Vec<_> = walk(app.dir.path())
        .into_iter()
        .filter(|p| p.ends_with("escaped.txt"))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
    // A function without write access is refused by its shim, and by the runtime when the
    // shim is bypassed with a raw resource call.
    let (status, _, body) = http("GET", &u("/read"), None, &[]);
    assert_eq!(status, 403, "{body}");
    let errors = json_of(&body)["errors"].clone();
    assert!(
        errors[0].as_str().unwrap().contains("does not allow put"),
        "{body}"
    );
    assert!(
        errors[1]
            .as_str()
            .unwrap()
            .contains("may not `put` bucket `files`"),
        "{body}"
    );
    assert!(!app.state("edges").join("buckets/files/a.txt").exists());

    // API key and JWT routes.
    assert_eq!(http("GET", &u("/keyed"), None, &[]).0, 401);
    assert_eq!(
        http("GET", &u("/keyed"), None, &[("x-api-key", "wrong")]).0,
        403
    );
    let key = app.info()["api_key"].as_str().unwrap().to_string();
    assert_eq!(
        http("GET", &u("/keyed"), None, &[("x-api-key", &key)]).0,
        200
    );
    let exp = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600) as i64;
    let token = |aud: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({ "iss": "https://issuer.test", "aud": aud, "exp": exp }),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    assert_eq!(http("GET", &u("/jwt"), None, &[]).0, 401);
    assert_eq!(
        http(
            "GET",
            &u("/jwt"),
            None,
            &[("authorization", &format!("Bearer {}", token("edges")))]
        )
        .0,
        200
    );
    assert_eq!(
        http(
            "GET",
            &u("/jwt"),
            None,
            &[("authorization", &format!("Bearer {}", token("other")))]
        )
        .0,
        403
    );

    // Malformed JSON to `invoke` is a clear user error.
    let out = app.nimbus(&["invoke", "echo", "--data", "{not json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not valid JSON"),
        "{}",
        text(&out.stderr)
    );
    let out = app.nimbus(&["invoke", "echo", "--data", "{\"id\": \"7\"}"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = app.nimbus(&["invoke", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no function `nope`"));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn redeploy_replaces_only_changed_functions_without_dropping_requests() {
    let manifest = "version: 1\nservice: redeploy\nfunctions:\n  a:\n    handler: a/app.py:handler\n    triggers: [ { http: { method: GET, path: /a } } ]\n  b:\n    handler: b/app.py:handler\n    triggers: [ { http: { method: GET, path: /b } } ]\n";
    let v = |n: u32| {
        format!(
            "import time\n\ndef handler(event, context):\n    time.sleep(0.05)\n    return 'v{n}'\n"
        )
    };
    let app = App::deploy(
        &[
            ("nimbus.yaml", manifest),
            ("a/app.py", &v(1)),
            ("b/app.py", &v(1)),
        ],
        &[],
    );
    let url = format!("{}/a", app.url);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // How many answers the load got, and how many of them came from the new version.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let from_v2 = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (url, stop) = (url.clone(), stop.clone());
            let (answered, from_v2) = (answered.clone(), from_v2.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (status, _, body) = http("GET", &url, None, &[]);
                    answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if body == "v2" {
                        from_v2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    seen.push((status, body));
                }
                seen
            })
        })
        .collect();
    // The redeploy happens under load: requests are in flight before and after it, whatever
    // the machine's speed.
    eventually(30, "the load to get going", || {
        (answered.load(std::sync::atomic::Ordering::Relaxed) >= 8).then_some(())
    });
    std::fs::write(app.dir.path().join("a/app.py"), v(2)).unwrap();
    let out = app.nimbus(&["deploy", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["action"], "updated");
    assert_eq!(
        reply["changed"],
        json!(["a"]),
        "only the changed function is replaced"
    );
    eventually(30, "the load to be served by v2", || {
        (from_v2.load(std::sync::atomic::Ordering::Relaxed) >= 8).then_some(())
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen: Vec<(u16, String)> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(
        seen.iter().any(|(_, b)| b == "v1") && seen.iter().any(|(_, b)| b == "v2"),
        "the load spans the redeploy"
    );
    let bad: Vec<_> = seen.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        bad.is_empty(),
        "no request may fail during a redeploy: {bad:?}"
    );
    assert_eq!(http("GET", &format!("{}/b", app.url), None, &[]).2, "v1");
}

#[test]
fn dev_reloads_a_changed_handler() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = "version: 1\nservice: devloop\nfunctions:\n  hi:\n    handler: app.py:handler\n    triggers: [ { http: { method: GET, path: /hi } } ]\n";
    std::fs::write(dir.path().join("nimbus.yaml"), manifest).unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "def handler(event, context):\n    return 'one'\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nimbus"))
        .args(["dev", "--port", "0"])
        .current_dir(dir.path())
        .env("XDG_DATA_HOME", data.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let url = loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0,
            "nimbus dev exited"
        );
        if let Some(rest) = line.split(" on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    assert_eq!(http("GET", &format!("{url}/hi"), None, &[]).2, "one");
    std::fs::write(
        dir.path().join("app.py"),
        "def handler(event, context):\n    return 'two'\n",
    )
    .unwrap();
    let changed = Instant::now();
    eventually(10, "the reload", || {
        (http("GET", &format!("{url}/hi"), None, &[]).2 == "two").then_some(())
    });
    eprintln!("dev reload took {:?}", changed.elapsed());
    // `nimbus dev` is a local deployment like the others while it runs.
    let all = json_of(&ok(nimbus_with(
        dir.path(),
        data.path(),
        &[],
        &["info", "--all", "--output", "json"],
    )));
    assert_eq!(
        (
            all[0]["service"].as_str(),
            all[0]["status"].as_str(),
            all[0]["url"].as_str()
        ),
        (Some("devloop"), Some("running"), Some(url.as_str()))
    );
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "Ctrl-C stops cleanly: {status:?}");
}

/// The executable of process `pid` and the arguments it was given.
fn program_of(pid: u64) -> (String, Vec<String>) {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let mut words = raw.split(|b| *b == 0).filter(|w| !w.is_empty()).map(text);
    let program = words.next().unwrap();
    (program, words.collect())
}

#[test]
fn the_runtime_runs_as_its_lean_executable_or_as_nimbus_runtime_when_that_is_missing() {
    let files = [
        (
            "nimbus.yaml",
            "version: 1\nservice: lean\nfunctions:\n  hi:\n    handler: app.py:handler\n    triggers: [ { http: { method: GET, path: /hi } } ]\n",
        ),
        ("app.py", "def handler(event, context):\n    return 'hi'\n"),
    ];
    // Beside `nimbus` (as cargo builds and installs them): the lean executable serves.
    let app = App::deploy(&files, &[]);
    let (program, _) = program_of(app.info()["pid"].as_u64().unwrap());
    assert!(
        program.ends_with("/nimbus-runtime"),
        "the runtime is the lean executable: {program}"
    );
    assert_eq!(http("GET", &format!("{}/hi", app.url), None, &[]).2, "hi");
    drop(app);

    // A `nimbus` copied alone: it serves the deployment itself through `nimbus __runtime`.
    let alone = tempfile::tempdir().unwrap();
    let exe = alone.path().join("nimbus");
    std::fs::copy(env!("CARGO_BIN_EXE_nimbus"), &exe).unwrap();
    let project = tempfile::tempdir().unwrap();
    for (path, content) in files {
        std::fs::write(project.path().join(path), content).unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(&exe)
            .args(args)
            .current_dir(project.path())
            .env_remove("NIMBUS_PROVIDER")
            .env_remove("NIMBUS_STAGE")
            .env("XDG_DATA_HOME", data.path())
            .output()
            .unwrap()
    };
    let out = run(&["deploy", "--port", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let url = text(&out.stdout).trim().to_string();
    let info: Value = serde_json::from_slice(&run(&["info", "--output", "json"]).stdout).unwrap();
    let (program, args) = program_of(info["pid"].as_u64().unwrap());
    let served = http("GET", &format!("{url}/hi"), None, &[]).2;
    let removed = run(&["remove", "--yes"]);
    assert_eq!(program, exe.to_string_lossy(), "the copied nimbus runs it");
    assert_eq!(args.first().map(String::as_str), Some("__runtime"));
    assert_eq!(served, "hi");
    assert_eq!(removed.status.code(), Some(0), "{}", text(&removed.stderr));
}

/// Runs nimbus in `dir` with the registry of local deployments in `data` and extra `env`.
fn nimbus_with(dir: &Path, data: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push(("XDG_DATA_HOME".into(), data.to_string_lossy().into_owned()));
    nimbus_in(dir, &env, args)
}

/// Requires exit 0; returns stdout.
fn ok(out: Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Requires exit 1; returns stderr.
fn fails(out: Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

const FINDER_APP: &str = "version: 1\nservice: finder\nfunctions:\n  greet:\n    handler: app.py:handler\n    env: { GREETING: \"{{ env.NIMBUS_TEST_GREETING }}\" }\n    triggers: [ { http: { method: GET, path: \"/greet/{name}\" } } ]\n";
const FINDER_HANDLER: &str = "import os\n\ndef handler(event, context):\n    print('greeting', event['path_params']['name'])\n    return os.environ['GREETING'] + ' ' + event['path_params']['name']\n";

#[test]
fn a_local_deployment_is_found_from_anywhere_and_needs_no_deploy_time_input_after_deploy() {
    let repo = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (root, data) = (repo.path(), data.path());
    let app = root.join("examples/finder");
    write_files(
        &app,
        &[
            ("nimbus.yaml", FINDER_APP),
            ("app.py", FINDER_HANDLER),
            ("sub/deeper/notes.txt", "below the manifest\n"),
        ],
    );
    let deploy = ["deploy", "-f", "examples/finder/nimbus.yaml", "--port", "0"];

    // Deploying needs the variable the manifest reads: without it, the error names it.
    let err = fails(nimbus_with(root, data, &[], &deploy));
    assert!(
        err.contains("undefined template variable `env.NIMBUS_TEST_GREETING`"),
        "{err}"
    );
    // With it, from the repository's root; the hints keep the `-f`.
    let out = nimbus_with(root, data, &[("NIMBUS_TEST_GREETING", "hello")], &deploy);
    let stderr = text(&out.stderr);
    let url = ok(out).trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        stderr.contains(&format!("serving on {url}"))
            && stderr.contains("nimbus info -f examples/finder/nimbus.yaml")
            && stderr.contains("nimbus remove -f examples/finder/nimbus.yaml"),
        "{stderr}"
    );
    assert_eq!(
        http("GET", &format!("{url}/greet/ann"), None, &[]).2,
        "hello ann"
    );

    // At the root — no manifest there, the variable unset — info, logs and invoke work from
    // what was deployed from here.
    let info = json_of(&ok(nimbus_with(
        root,
        data,
        &[],
        &["info", "--output", "json"],
    )));
    assert_eq!(
        (info["service"].as_str(), info["url"].as_str()),
        (Some("finder"), Some(url.as_str()))
    );
    eventually(10, "the handler's output in the logs", || {
        let logs = ok(nimbus_with(
            root,
            data,
            &[],
            &["logs", "greet", "--output", "json"],
        ));
        logs.contains("greeting ann").then_some(())
    });
    let invoked = ok(nimbus_with(
        root,
        data,
        &[],
        &["invoke", "greet", "--data", r#"{"name": "bo"}"#],
    ));
    assert!(invoked.contains("hello bo"), "{invoked}");
    // Below the manifest, it is found in the folders above, as cargo finds Cargo.toml.
    let info = json_of(&ok(nimbus_with(
        &app.join("sub/deeper"),
        data,
        &[],
        &["info", "--output", "json"],
    )));
    assert_eq!(info["url"], url.as_str());

    // Elsewhere, with no manifest and nothing deployed from there: the error lists what is.
    let elsewhere = tempfile::tempdir().unwrap();
    let elsewhere = elsewhere.path();
    let err = fails(nimbus_with(elsewhere, data, &[], &["info"]));
    assert!(
        err.contains("no `nimbus.yaml` or `nimbus.yml` in")
            && err.contains("`finder` (stage `dev`) from")
            && err.contains("--service"),
        "{err}"
    );
    // `--all` lists every local deployment; `--service` finds one by name.
    let listed = || {
        json_of(&ok(nimbus_with(
            elsewhere,
            data,
            &[],
            &["info", "--all", "--output", "json"],
        )))
    };
    let all = listed();
    let manifest = app.join("nimbus.yaml").canonicalize().unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(
        (
            all[0]["service"].as_str(),
            all[0]["stage"].as_str(),
            all[0]["status"].as_str(),
            all[0]["url"].as_str(),
            all[0]["manifest"].as_str()
        ),
        (
            Some("finder"),
            Some("dev"),
            Some("running"),
            Some(url.as_str()),
            manifest.to_str()
        )
    );
    let table = ok(nimbus_with(elsewhere, data, &[], &["info", "--all"]));
    assert!(table.contains("finder") && table.contains(&url), "{table}");
    let info = json_of(&ok(nimbus_with(
        elsewhere,
        data,
        &[],
        &["info", "--service", "finder", "--output", "json"],
    )));
    assert_eq!(info["url"], url.as_str());
    let pid = info["pid"].as_u64().unwrap();
    // The registry holds no secret and is private all the same.
    use std::os::unix::fs::PermissionsExt;
    let registry = data.join("nimbus/local/deployments");
    assert_eq!(
        std::fs::metadata(&registry).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for record in std::fs::read_dir(&registry).unwrap() {
        let record = record.unwrap().path();
        assert_eq!(
            std::fs::metadata(&record).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = std::fs::read_to_string(&record).unwrap();
        assert!(
            !text.contains(info["api_key"].as_str().unwrap()),
            "no API key in the registry: {text}"
        );
    }

    // The project moves: its runtime is still known, and removed by service name.
    let moved = root.join("moved");
    std::fs::rename(&app, &moved).unwrap();
    let all = listed();
    assert_eq!(all[0]["status"], "running", "{all}");
    let removed = ok(nimbus_with(
        elsewhere,
        data,
        &[],
        &["remove", "--service", "finder", "--yes"],
    ));
    assert!(
        removed.contains("stopped `finder` (stage `dev`)"),
        "{removed}"
    );
    eventually(10, "the runtime to exit", || (!alive(pid)).then_some(()));
    let all = listed();
    assert_eq!(all, json!([]));

    // Deployed again where it is now, stopped, then deleted: listed as gone, and forgotten
    // by `remove --service` (nothing left to stop).
    ok(nimbus_with(
        &moved,
        data,
        &[("NIMBUS_TEST_GREETING", "hi")],
        &["deploy"],
    ));
    let stopped = ok(nimbus_with(&moved, data, &[], &["remove", "--keep-data"]));
    assert!(stopped.contains("kept its data"), "{stopped}");
    std::fs::remove_dir_all(&moved).unwrap();
    let all = listed();
    assert_eq!(all[0]["status"], "gone", "{all}");
    let forgot = ok(nimbus_with(
        elsewhere,
        data,
        &[],
        &["remove", "--service", "finder", "--yes"],
    ));
    assert!(
        forgot.contains("nothing was running for `finder`"),
        "{forgot}"
    );
    let all = listed();
    assert_eq!(all, json!([]));
}

const PORTY_APP: &str = "version: 1\nservice: porty\nfunctions:\n  hi:\n    handler: app.py:handler\n    triggers: [ { http: { method: GET, path: /hi } } ]\n";

#[test]
fn an_asked_for_port_is_exact_and_a_redeploy_keeps_its_port() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write_files(
        dir,
        &[
            ("nimbus.yaml", PORTY_APP),
            ("app.py", "def handler(event, context):\n    return 'hi'\n"),
        ],
    );
    let me = std::process::id();

    // `--port`: exactly that port, or an error naming who holds it — never a silent move.
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let err = fails(nimbus_with(dir, data, &[], &["deploy", "--port", &port]));
    assert!(
        err.contains(&format!(
            "port {port} on 127.0.0.1 is already in use by pid {me} (`"
        )) && err.contains("(asked for by --port)")
            && err.contains("hint: stop what holds it"),
        "{err}"
    );
    let info = json_of(&ok(nimbus_with(
        dir,
        data,
        &[],
        &["info", "--output", "json"],
    )));
    assert_eq!(info["running"], false, "nothing started: {info}");
    // `providers.local.port` likewise.
    std::fs::write(
        dir.join("nimbus.yaml"),
        format!("{PORTY_APP}providers:\n  local: {{ port: {port} }}\n"),
    )
    .unwrap();
    let err = fails(nimbus_with(dir, data, &[], &["deploy"]));
    assert!(
        err.contains(&format!(
            "port {port} on 127.0.0.1 is already in use by pid {me}"
        )) && err.contains("(asked for by `providers.local.port`)"),
        "{err}"
    );
    std::fs::write(dir.join("nimbus.yaml"), PORTY_APP).unwrap();
    drop(taken);

    // Nothing asked: a free port, printed; a redeploy after a stop keeps it.
    let out = nimbus_with(dir, data, &[], &["deploy"]);
    let stderr = text(&out.stderr);
    let first = ok(out).trim().to_string();
    assert!(stderr.contains(&format!("serving on {first}")), "{stderr}");
    ok(nimbus_with(dir, data, &[], &["remove", "--keep-data"]));
    let again = ok(nimbus_with(dir, data, &[], &["deploy"]))
        .trim()
        .to_string();
    assert_eq!(again, first, "a redeploy keeps the port");
    let first_port = first.rsplit(':').next().unwrap().to_string();

    // Another local deployment holding the asked-for port is named.
    let other = tempfile::tempdir().unwrap();
    write_files(
        other.path(),
        &[
            (
                "nimbus.yaml",
                &PORTY_APP.replace("service: porty", "service: other"),
            ),
            (
                "app.py",
                "def handler(event, context):\n    return 'other'\n",
            ),
        ],
    );
    let err = fails(nimbus_with(
        other.path(),
        data,
        &[],
        &["deploy", "--port", &first_port],
    ));
    assert!(
        err.contains(&format!(
            "port {first_port} on 127.0.0.1 is already in use by the local runtime of `porty` (stage `dev`"
        )),
        "{err}"
    );

    // The port of last time is taken meanwhile: the gateway moves, and says so.
    ok(nimbus_with(dir, data, &[], &["remove", "--keep-data"]));
    let holder =
        std::net::TcpListener::bind(("127.0.0.1", first_port.parse::<u16>().unwrap())).unwrap();
    let out = nimbus_with(dir, data, &[], &["deploy"]);
    let stderr = text(&out.stderr);
    let moved = ok(out).trim().to_string();
    assert_ne!(moved, first);
    assert!(
        stderr.contains(&format!(
            "note: port {first_port}, used last time, is taken by pid {me}"
        )),
        "{stderr}"
    );
    drop(holder);
    ok(nimbus_with(dir, data, &[], &["remove", "--yes"]));
}

const INVOKER_APP: &str = "version: 1
service: invoker
resources:
  jobs: { type: queue }
functions:
  get-item:
    handler: fns/get.py:handler
    triggers:
      - http: { method: GET, path: \"/items/{id}\" }
      - http: { method: DELETE, path: \"/items/{id}/tags/{tag}\" }
  worker:
    handler: fns/worker.py:handler
    triggers: [ { queue: { name: jobs } } ]
  broken:
    handler: fns/broken.py:handler
    triggers: [ { http: { method: POST, path: /broken } } ]
";

#[test]
fn invoke_infers_the_event_from_the_triggers_routes_it_and_fails_with_the_handler() {
    let files = [
        ("nimbus.yaml", INVOKER_APP),
        (
            "fns/get.py",
            "import json\n\ndef handler(event, context):\n    return {'status': 200, 'body': json.dumps({'method': event['method'], 'route': event['route'], 'params': event['path_params'], 'query': event['query']})}\n",
        ),
        (
            "fns/worker.py",
            "import json\n\ndef handler(event, context):\n    failed = [m['id'] for m in event['messages'] if json.loads(m['body']).get('fail')]\n    return {'failed': failed} if failed else None\n",
        ),
        (
            "fns/broken.py",
            "def handler(event, context):\n    raise RuntimeError('boom')\n",
        ),
    ];
    let app = App::deploy(&files, &[]);
    let body = |out: &str| json_of(json_of(out)["body"].as_str().unwrap());

    // The function's HTTP route, its parameter from the data.
    let got = body(&ok(app.nimbus(&[
        "invoke",
        "get-item",
        "--data",
        r#"{"id": "7", "full": 1}"#,
    ])));
    assert_eq!(
        got,
        json!({ "method": "GET", "route": "/items/{id}", "params": { "id": "7" }, "query": { "full": "1" } })
    );
    // A path is matched against every route of the function.
    let got = body(&ok(app.nimbus(&[
        "invoke",
        "get-item",
        "--path",
        "/items/7/tags/red",
    ])));
    assert_eq!(
        (got["method"].as_str(), got["params"].clone()),
        (Some("DELETE"), json!({ "id": "7", "tag": "red" }))
    );
    // A saved HTTP event is routed.
    let saved = app.dir.path().join("saved.json");
    std::fs::write(
        &saved,
        r#"{"type": "http", "method": "GET", "path": "/items/42?x=1", "headers": {}}"#,
    )
    .unwrap();
    let got = body(&ok(app.nimbus(&[
        "invoke",
        "get-item",
        "--raw",
        "--data",
        "@saved.json",
    ])));
    assert_eq!(
        (got["params"].clone(), got["query"].clone()),
        (json!({ "id": "42" }), json!({ "x": "1" }))
    );
    // An event kind the function has no trigger for is refused, naming its triggers.
    let err = fails(app.nimbus(&["invoke", "get-item", "--event-type", "queue"]));
    assert!(
        err.contains("`get-item` has no `queue` trigger") && err.contains("its triggers: `http`"),
        "{err}"
    );
    let err = fails(app.nimbus(&[
        "invoke",
        "get-item",
        "--raw",
        "--data",
        r#"{"type": "queue", "messages": []}"#,
    ]));
    assert!(err.contains("has no `queue` trigger"), "{err}");
    let err = fails(app.nimbus(&["invoke", "get-item", "--path", "/nowhere"]));
    assert!(
        err.contains("matches no route of `get-item`") && err.contains("`GET /items/{id}`"),
        "{err}"
    );

    // A `type` in the data is data: the worker gets a queue message (an HTTP event has no
    // `messages`, and the handler would fail).
    ok(app.nimbus(&["invoke", "worker", "--data", r#"{"type": "http", "n": 1}"#]));
    // A failed batch item, and an exception, make invoke fail and say so.
    let err = fails(app.nimbus(&[
        "invoke",
        "worker",
        "--data",
        r#"[{"n": 1}, {"fail": true}]"#,
    ]));
    assert!(
        err.contains("`worker` reported 1 of 2 messages as failed: `manual-1`"),
        "{err}"
    );
    let err = fails(app.nimbus(&["invoke", "broken"]));
    assert!(
        err.contains("`broken` failed (error)") && err.contains("boom"),
        "{err}"
    );
    // Serverless Framework's `-f FUNCTION` gets the command that was meant.
    let err = fails(app.nimbus(&["invoke", "-f", "worker"]));
    assert!(
        err.contains("did you mean `nimbus invoke worker`?"),
        "{err}"
    );
    let err = fails(app.nimbus(&["logs", "-f", "broken"]));
    assert!(err.contains("did you mean `nimbus logs broken`?"), "{err}");
}

// --- No stalls, no orphans -------------------------------------------------------------------

/// How many sockets process `pid` holds open.
fn sockets_of(pid: u64) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten()
                .filter(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Whether the server closed `s` (end of file, a reset, or a 408 before closing), reading
/// for at most 30 s.
fn closed_by_server(mut s: &TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false, // still open after 30 s
        }
    }
}

const HELLO_APP: &str = "version: 1\nservice: hello\nfunctions:\n  hello:\n    handler: app.py:handler\n    triggers: [ { http: { method: GET, path: /hello } }, { http: { method: POST, path: /hello } } ]\n";
const HELLO_HANDLER: &str =
    "def handler(event, context):\n    return {'status': 200, 'body': 'hello'}\n";

#[test]
fn slowloris_connections_are_capped_and_closed_while_real_requests_are_served() {
    let app = App::deploy(
        &[("nimbus.yaml", HELLO_APP), ("app.py", HELLO_HANDLER)],
        &[
            ("NIMBUS_LOCAL_MAX_CONNECTIONS", "50"),
            // Long enough that the 50 held connections are seen together on a loaded machine
            // (with 1 s, the first ones were closed before the last were accepted).
            ("NIMBUS_LOCAL_HEADER_TIMEOUT_MS", "3000"),
            ("NIMBUS_LOCAL_BODY_TIMEOUT_MS", "1000"),
        ],
    );
    let hello = format!("{}/hello", app.url);
    assert_eq!(http("GET", &hello, None, &[]).0, 200);
    let pid = app.info()["pid"].as_u64().unwrap();
    let idle = sockets_of(pid);
    let host = app.url.strip_prefix("http://").unwrap().to_string();
    // 200 connections that never finish their request head.
    let partial: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(&host).unwrap();
            s.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\nx-slow: ")
                .unwrap();
            s
        })
        .collect();
    let held = eventually(10, "the runtime to hold connections", || {
        let held = sockets_of(pid).saturating_sub(idle);
        (held >= 50).then_some(held)
    });
    assert!(
        held <= 50,
        "at most 50 connections held at once, saw {held}"
    );
    // A real request waits for a free slot and is served.
    let (status, _, body) = http("GET", &hello, None, &[]);
    assert_eq!((status, body.as_str()), (200, "hello"));
    // Every partial request is closed by the server.
    let open = partial.iter().filter(|s| !closed_by_server(s)).count();
    assert_eq!(open, 0, "{open} of 200 partial requests still open");
    // A head without the body it announces gets 408.
    let mut s = TcpStream::connect(&host).unwrap();
    s.write_all(b"POST /hello HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc")
        .unwrap();
    let mut reply = String::new();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
}

#[test]
fn at_the_open_file_limit_accept_backs_off_and_recovers() {
    // The runtime inherits `deploy`'s limit: 256 files.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nimbus.yaml"), HELLO_APP).unwrap();
    std::fs::write(dir.path().join("app.py"), HELLO_HANDLER).unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" deploy --port 0")
        .arg(env!("CARGO_BIN_EXE_nimbus"))
        .current_dir(dir.path())
        .env("XDG_DATA_HOME", data.path())
        .env("NIMBUS_LOCAL_MAX_CONNECTIONS", "100000")
        .env("NIMBUS_LOCAL_HEADER_TIMEOUT_MS", "3000")
        .env_remove("NIMBUS_PROVIDER")
        .env_remove("NIMBUS_STAGE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let app = App {
        url: text(&out.stdout).trim().to_string(),
        env: vec![(
            "XDG_DATA_HOME".into(),
            data.path().to_string_lossy().into_owned(),
        )],
        dir,
        _data: data,
    };
    let hello = format!("{}/hello", app.url);
    assert_eq!(http("GET", &hello, None, &[]).0, 200, "a warm worker");
    let pid = app.info()["pid"].as_u64().unwrap();
    let host = app.url.strip_prefix("http://").unwrap().to_string();
    // More idle connections than the runtime has files left: `accept` fails with EMFILE while
    // the rest wait in the backlog.
    let _idle: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect(&host).unwrap())
        .collect();
    let log = app.state("hello").join("logs/runtime.log");
    eventually(20, "accept to fail", || {
        std::fs::read_to_string(&log)
            .ok()?
            .contains("cannot accept connections")
            .then_some(())
    });
    // It waits instead of spinning: CPU time over 2 s of failing accepts stays low.
    let cpu = |pid: u64| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<u64> = stat
            .rsplit_once(") ")
            .unwrap()
            .1
            .split(' ')
            .skip(11)
            .take(2)
            .map(|f| f.parse().unwrap())
            .collect();
        fields[0] + fields[1]
    };
    let ticks = 100; // USER_HZ
    let before = cpu(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu(pid) - before;
    assert!(
        used < ticks / 2,
        "{used} ticks of CPU in 2 s while accept failed (a spin takes ~{})",
        2 * ticks
    );
    // Once the idle connections time out, requests are served again.
    let (status, _, body) = http("GET", &hello, None, &[]);
    assert_eq!((status, body.as_str()), (200, "hello"));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        logged.matches("cannot accept connections").count(),
        1,
        "logged once, not at every failed accept:\n{logged}"
    );
}

#[test]
fn workers_and_their_children_die_with_a_killed_runtime() {
    let pids = tempfile::tempdir().unwrap();
    let manifest = format!(
        "version: 1\nservice: orphans\nfunctions:\n  py:\n    handler: fns/sleepy.py:handler\n    timeout: 60s\n    env: {{ PIDS: \"{dir}\" }}\n    triggers: [ {{ http: {{ method: GET, path: /py }} }} ]\n  js:\n    handler: fns/sleepy.js:handler\n    runtime: nodejs22\n    timeout: 60s\n    env: {{ PIDS: \"{dir}\" }}\n    triggers: [ {{ http: {{ method: GET, path: /js }} }} ]\n",
        dir = pids.path().display()
    );
    let files = [
        ("nimbus.yaml", manifest.as_str()),
        (
            "fns/sleepy.py",
            "import os, subprocess, time\n\ndef handler(event, context):\n    child = subprocess.Popen(['sleep', '120'])\n    own = subprocess.Popen(['sleep', '120'], start_new_session=True)\n    with open(os.path.join(os.environ['PIDS'], 'py'), 'w') as f:\n        f.write('%d %d %d' % (os.getpid(), child.pid, own.pid))\n    time.sleep(30)\n    return 'done'\n",
        ),
        (
            "fns/sleepy.js",
            "const fs = require('node:fs');\nconst path = require('node:path');\nconst { spawn } = require('node:child_process');\nexports.handler = async () => {\n  const child = spawn('sleep', ['120'], { stdio: 'ignore' });\n  const own = spawn('sleep', ['120'], { stdio: 'ignore', detached: true });\n  fs.writeFileSync(path.join(process.env.PIDS, 'js'), `${process.pid} ${child.pid} ${own.pid}`);\n  const end = Date.now() + 30000;\n  while (Date.now() < end);\n  return 'done';\n};\n",
        ),
    ];
    let app = App::deploy(&files, &[]);
    let calls: Vec<_> = ["/py", "/js"]
        .into_iter()
        .map(|p| {
            let url = format!("{}{p}", app.url);
            std::thread::spawn(move || http("GET", &url, None, &[]).0)
        })
        .collect();
    // Both handlers run (Node's blocking its event loop), each with a child in its process group
    // and one in a session of its own.
    let running: Vec<u64> = ["py", "js"]
        .iter()
        .flat_map(|name| {
            let file = pids.path().join(name);
            eventually(30, &format!("the {name} handler to start"), || {
                let text = std::fs::read_to_string(&file).ok()?;
                let pids: Vec<u64> = text
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect();
                (pids.len() == 3).then_some(pids)
            })
        })
        .collect();
    assert!(running.iter().all(|p| alive(*p)), "{running:?}");
    let runtime = app.info()["pid"].as_u64().unwrap();
    let killed = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-9", &runtime.to_string()])
            .status()
            .unwrap()
            .success()
    );
    eventually(5, "the workers and what they started to die", || {
        running.iter().all(|p| !alive(*p)).then_some(())
    });
    eprintln!(
        "workers gone {:?} after the runtime was killed",
        killed.elapsed()
    );
    for call in calls {
        assert_ne!(call.join().unwrap(), 200, "the runtime died mid-invocation");
    }
}

/// Sends `raw` as is; returns the status and the body.
fn raw_http(url: &str, raw: &str) -> (u16, String) {
    let host = url.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let reply = text(&reply);
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

#[test]
fn local_http_follows_the_contract_decoded_paths_malformed_bodies_exact_methods_and_nbf() {
    let manifest = "version: 1\nservice: contract\nfunctions:\n  echo:\n    handler: echo.py:handler\n    triggers:\n      - http: { method: GET, path: \"/items/{id}\" }\n      - http: { method: POST, path: /echo }\n      - http: { method: GET, path: /jwt, auth: { jwt: { issuer: \"https://issuer.test\", audience: contract } } }\n";
    let secret = "0123456789abcdef0123456789abcdef";
    let app = App::deploy(
        &[
            ("nimbus.yaml", manifest),
            (
                "echo.py",
                "def handler(event, context):\n    return {'path': event['path'], 'params': event['path_params'], 'body': event['body']}\n",
            ),
        ],
        &[("NIMBUS_JWT_SECRET", secret)],
    );
    let u = |p: &str| format!("{}{p}", app.url);
    // `event.path` is percent-decoded, as the AWS and Azure shims give it.
    let (status, _, body) = http("GET", &u("/items/a%20b%2Fc"), None, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_of(&body),
        json!({ "path": "/items/a b/c", "params": { "id": "a b/c" }, "body": null })
    );
    // Methods are case-sensitive: `get` is not `GET`.
    let (status, head, body) = http("get", &u("/items/1"), None, &[]);
    assert_eq!(status, 405, "{body}");
    assert!(head.contains("allow: get"), "{head}");
    // A malformed chunked body is the client's error, not a size problem.
    let (status, body) = raw_http(
        &app.url,
        "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("malformed"), "{body}");
    let (status, body) = raw_http(
        &app.url,
        "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(
        (status, json_of(&body)["body"].clone()),
        (200, json!("abc"))
    );
    // A token before its `nbf` is refused (beyond the 60 s leeway), as an expired one is.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let bearer = |nbf: i64| {
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({ "iss": "https://issuer.test", "aud": "contract", "exp": now + 3600, "nbf": nbf }),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        format!("Bearer {token}")
    };
    let (status, _, body) = http(
        "GET",
        &u("/jwt"),
        None,
        &[("authorization", &bearer(now + 600))],
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("not valid yet"), "{body}");
    let (status, _, body) = http(
        "GET",
        &u("/jwt"),
        None,
        &[("authorization", &bearer(now - 5))],
    );
    assert_eq!(status, 200, "{body}");
}

/// The routing table (`tests/routing/table.json`, the same one every provider's configuration and
/// shim is checked with) through the local gateway over real HTTP: which function serves each
/// request, with which route and path parameters (`docs/routing.md`).
#[test]
fn the_routing_table_resolves_over_http() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/routing"), dir.path());
    let app = App::deploy_dir(dir, &[]);
    let table: Value =
        serde_json::from_slice(&std::fs::read(repo().join("tests/routing/table.json")).unwrap())
            .unwrap();
    let mut failures = Vec::new();
    for row in table["requests"].as_array().unwrap() {
        let (method, path) = (
            row["method"].as_str().unwrap(),
            row["path"].as_str().unwrap(),
        );
        let (status, head, _) = http(method, &format!("{}{path}", app.url), None, &[]);
        let seen = head
            .lines()
            .find_map(|l| l.strip_prefix("x-routing: "))
            .map(json_of);
        let want = (!row["function"].is_null()).then(|| {
            json!({ "function": row["function"], "route": row["route"], "path_params": row["params"] })
        });
        let served_right = match (&seen, &want) {
            (Some(s), Some(w)) => status == 200 && s == w,
            (None, None) => status == 404 || status == 405,
            _ => false,
        };
        if !served_right {
            failures.push(format!("{method} {path}: {status} {seen:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
