//! The local runtime end to end, through the real `nimbus` binary: `deploy` starts a background
//! runtime, real HTTP requests drive it, its durable store is read back with the store crate,
//! and `remove` stops it. Every project lives in a temp dir and binds free loopback ports.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nimbus_local_store::{KeyType, Store, TableKey};
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A deployed project; removed (runtime stopped, data deleted) when dropped.
struct App {
    dir: tempfile::TempDir,
    url: String,
    env: Vec<(String, String)>,
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
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let out = nimbus_in(dir.path(), &env, &["deploy", "--port", "0"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "deploy failed:\n{}",
            text(&out.stderr)
        );
        let url = text(&out.stdout).trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        App { dir, url, env }
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

/// Polls `check` until it returns Some, or panics with `what` after `secs`.
fn eventually<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
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

#[test]
fn the_shop_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/shop"), dir.path());
    // Schedule time runs 12 h per second so the nightly report fires; retries are fast.
    let app = App::deploy_dir(
        dir,
        &[
            ("NIMBUS_LOCAL_CLOCK_SCALE", "43200"),
            ("NIMBUS_LOCAL_RETRY_BASE_MS", "100"),
        ],
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
    let charge_logs = app.logs("charge-payment");
    assert!(
        charge_logs.contains("flaky, first receive"),
        "the flaky payment failed once first:\n{charge_logs}"
    );
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

    // The nightly schedule fired and wrote a report with every order in it.
    let reports = app.state("shop").join("buckets/reports/nightly");
    let report = eventually(30, "a nightly report", || {
        let entry = std::fs::read_dir(&reports).ok()?.flatten().next()?;
        serde_json::from_slice::<Value>(&std::fs::read(entry.path()).ok()?).ok()
    });
    assert!(report["orders"].as_u64().unwrap() >= 3, "{report}");

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
    assert!(logs.contains("\"status\":\"timeout\""), "{logs}");
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_nimbus"))
        .args(["dev", "--port", "0"])
        .current_dir(dir.path())
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
    let run = |args: &[&str]| {
        Command::new(&exe)
            .args(args)
            .current_dir(project.path())
            .env_remove("NIMBUS_PROVIDER")
            .env_remove("NIMBUS_STAGE")
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
