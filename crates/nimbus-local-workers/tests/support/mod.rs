//! Shared by the integration tests: real interpreters, packages laid out like the packager's
//! (common + local shims, `_nimbus/function.json`, a handler), and a recording `Hooks`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use nimbus_local_workers::{
    ErrorInfo, FunctionSpec, Hooks, Language, PoolEvent, RpcFuture, Stream,
};
use serde_json::{Value, json};

/// The real Python interpreter (never the pyenv shim).
pub fn python() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| resolve("python3", &["-c", "import sys; print(sys.executable)"]))
        .clone()
}

/// The real Node.js binary.
pub fn node() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| resolve("node", &["-p", "process.execPath"]))
        .clone()
}

fn resolve(program: &str, args: &[&str]) -> PathBuf {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("`{program}` is needed by these tests: {e}"));
    assert!(out.status.success(), "`{program}` failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "__pycache__" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The test handler of each language: its behaviour is picked by the http event's body,
/// `mode[:arg]`.
pub const PY_HANDLER: &str = r#"
import os, sys, threading, time
print("loading handler")

def handler(event, context):
    mode, _, arg = (event.get("body") or "echo").partition(":")
    if mode == "echo":
        return {"echo": arg, "pid": os.getpid(), "request_id": context.request_id}
    if mode == "env":
        return {"value": os.environ.get(arg), "pid": os.getpid()}
    if mode == "sleep":
        time.sleep(int(arg) / 1000)
        return {"slept": int(arg), "pid": os.getpid()}
    if mode == "deadline":
        return {"remaining_ms": context.remaining_ms(), "pid": os.getpid()}
    if mode == "die-after":
        time.sleep(int(arg) / 1000)
        os._exit(3)
    if mode == "alloc-after":
        time.sleep(int(arg) / 1000)
        block = bytearray(64 * 1024 * 1024 * 1024)
        return {"allocated": len(block)}
    if mode == "spin":
        end = time.perf_counter() + int(arg) / 1000
        while time.perf_counter() < end:
            pass
        return {"spun": int(arg), "pid": os.getpid()}
    if mode == "hang":
        while True:
            time.sleep(1)
    if mode == "exit":
        os._exit(int(arg or 3))
    if mode == "escape":
        # A child in a session of its own, and a daemon (forked twice: reparented to init),
        # their pids in files under `arg`; then hang until killed.
        import subprocess
        child = subprocess.Popen(["sleep", "120"], start_new_session=True)
        with open(os.path.join(arg, "setsid"), "w") as f:
            f.write(str(child.pid))
        daemon = "import os, sys, time\nif os.fork():\n    os._exit(0)\nos.setsid()\nopen(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
        subprocess.run([sys.executable, "-c", daemon, os.path.join(arg, "daemon")], check=True)
        while True:
            time.sleep(1)
    if mode == "exit-later":
        threading.Timer(0.05, os._exit, (5,)).start()
        return {"pid": os.getpid()}
    if mode == "raise":
        raise ValueError("bad input: " + arg)
    if mode == "alloc":
        block = bytearray(int(arg) * 1024 * 1024)
        return {"allocated_mb": len(block) // (1024 * 1024)}
    if mode == "print":
        print("out line 1")
        print("out line 2")
        sys.stderr.write("err line\n")
        sys.stdout.write("partial")
        return {"printed": True}
    if mode == "spam":
        for i in range(int(arg)):
            print("line %06d %s" % (i, "x" * 90))
        return {"printed": int(arg)}
    if mode == "rpc":
        from _nimbus.local_worker import rpc
        return {"got": rpc("orders", "get", {"id": arg})}
    if mode == "rpc-fail":
        from _nimbus.local_worker import ResourceError, rpc
        try:
            rpc("orders", "fail", {"id": arg})
        except ResourceError as e:
            return {"type": e.type, "message": str(e), "class": type(e).__name__}
        return {"type": None}
    if mode == "rpc-uncaught":
        from _nimbus.local_worker import rpc
        rpc("orders", "fail", {"id": arg})
    raise RuntimeError("unknown mode " + mode)
"#;

/// See [`PY_HANDLER`].
pub const JS_HANDLER: &str = r#"
const worker = () => require('./_nimbus/local_worker.js');
console.log('loading handler');

exports.handler = async (event, context) => {
  const body = event.body || 'echo';
  const at = body.indexOf(':');
  const mode = at < 0 ? body : body.slice(0, at);
  const arg = at < 0 ? '' : body.slice(at + 1);
  switch (mode) {
    case 'echo':
      return { echo: arg, pid: process.pid, request_id: context.requestId };
    case 'env':
      return { value: process.env[arg] ?? null, pid: process.pid };
    case 'sleep':
      await new Promise((r) => setTimeout(r, Number(arg)));
      return { slept: Number(arg), pid: process.pid };
    case 'hang':
      return new Promise(() => setInterval(() => {}, 1000));
    case 'deadline':
      return { remaining_ms: context.remainingMs(), pid: process.pid };
    case 'die-after':
      await new Promise((r) => setTimeout(r, Number(arg)));
      process.exit(3);
      break;
    case 'exit':
      process.exit(Number(arg || 3));
      break;
    case 'exit-later':
      setTimeout(() => process.exit(5), 50);
      return { pid: process.pid };
    case 'raise':
      throw new TypeError('bad input: ' + arg);
    case 'alloc': {
      const keep = [];
      for (let i = 0; i < Number(arg); i++) keep.push(new Array(128 * 1024).fill(1.5));
      return { allocated_mb: Number(arg) };
    }
    case 'print':
      console.log('out line 1');
      console.log('out line 2');
      console.error('err line');
      process.stdout.write('partial');
      return { printed: true };
    case 'spam':
      for (let i = 0; i < Number(arg); i++) console.log(`line ${String(i).padStart(6, '0')} ${'x'.repeat(90)}`);
      return { printed: Number(arg) };
    case 'rpc':
      return { got: await worker().rpc('orders', 'get', { id: arg }) };
    case 'rpc-many': {
      const ids = arg.split(',');
      return { got: await Promise.all(ids.map((id) => worker().rpc('orders', 'get', { id }))) };
    }
    case 'rpc-fail':
      try {
        await worker().rpc('orders', 'fail', { id: arg });
      } catch (e) {
        return { type: e.type, message: e.message, class: e.name };
      }
      return { type: null };
    case 'rpc-uncaught':
      await worker().rpc('orders', 'fail', { id: arg });
      return null;
    default:
      throw new Error('unknown mode ' + mode);
  }
};
"#;

/// A function package in a temporary directory, as the packager lays it out.
pub fn package(language: Language, handler_source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (lang, file, runtime) = match language {
        Language::Python => ("python", "handler.py", "python3.12"),
        Language::Node => ("node", "handler.js", "nodejs20"),
    };
    copy_tree(
        &repo().join("providers/common/shims").join(lang),
        dir.path(),
    );
    copy_tree(&repo().join("providers/local/shims").join(lang), dir.path());
    let config = json!({
        "service": "test", "stage": "dev", "provider": "local", "function": "probe",
        "handler": {"file": file, "export": "handler"}, "runtime": runtime,
        "timeout_ms": 5000, "memory_mb": 256,
        "resources": {}, "triggers": [{"type": "http", "method": "POST", "path": "/probe"}],
    });
    std::fs::write(
        dir.path().join("_nimbus/function.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join(file), handler_source).unwrap();
    dir
}

/// The test handler's package.
pub fn probe_package(language: Language) -> tempfile::TempDir {
    match language {
        Language::Python => package(language, PY_HANDLER),
        Language::Node => package(language, JS_HANDLER),
    }
}

/// A spec for `dir` with test defaults: 256 MB, 5 s timeout, 2 workers, 60 s idle, queue 100.
pub fn spec(language: Language, dir: &Path) -> FunctionSpec {
    FunctionSpec {
        name: "probe".into(),
        package_dir: dir.to_path_buf(),
        language,
        interpreter: match language {
            Language::Python => python(),
            Language::Node => node(),
        },
        memory_mb: 256,
        timeout: Duration::from_secs(5),
        max_concurrency: 2,
        scale_up_wait: FunctionSpec::DEFAULT_SCALE_UP_WAIT,
        send_ahead_below: FunctionSpec::DEFAULT_SEND_AHEAD_BELOW,
        idle_timeout: Duration::from_secs(60),
        max_queued: 100,
        env: BTreeMap::from([("GREETING".into(), "hi".into())]),
    }
}

/// An http event whose body picks the handler's behaviour.
pub fn http(body: &str) -> Value {
    json!({
        "type": "http", "method": "POST", "path": "/probe", "route": "/probe", "path_params": {},
        "query": {}, "headers": {}, "body": body, "is_base64": false, "source_ip": "127.0.0.1",
    })
}

/// The JSON body of an http result.
pub fn body(result: &Value) -> Value {
    assert_eq!(result["status"], 200, "{result}");
    serde_json::from_str(result["body"].as_str().expect("a text body")).unwrap()
}

/// Whether process `pid` exists and any of its threads is not a zombie: the main thread of a
/// process that exits (Node's, say) can be a zombie while other threads still hold its files.
pub fn alive(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    })
}

/// A log line as the hooks saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub request_id: Option<String>,
    pub stream: Stream,
    pub text: String,
}

/// A resource call as the hooks saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub function: String,
    pub request_id: String,
    pub call: Value,
}

/// Records what the pool reports. Resource calls: `orders`/`get` answers `{"id", "total": 12}`
/// (after `rpc_delay`), anything else fails with `NotFound`.
#[derive(Default)]
pub struct Recorder {
    pub lines: Mutex<Vec<Line>>,
    pub events: Mutex<Vec<PoolEvent>>,
    pub calls: Mutex<Vec<Call>>,
    pub rpc_delay: Duration,
    /// What [`Hooks::spawn_env`] answers (nothing added when `None`).
    pub spawn_env: Mutex<Option<Result<BTreeMap<String, String>, ErrorInfo>>>,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn lines_of(&self, request_id: Option<&str>) -> Vec<(Stream, String)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.request_id.as_deref() == request_id)
            .map(|l| (l.stream, l.text.clone()))
            .collect()
    }

    pub fn events(&self) -> Vec<PoolEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Waits up to 5 s for an event matching `pred` (events may be recorded just after the
    /// invocation that caused them returned).
    pub async fn wait_for_event(&self, pred: impl Fn(&PoolEvent) -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if self.events().iter().any(&pred) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

impl Hooks for Recorder {
    fn rpc(&self, function: &str, request_id: &str, call: Value) -> RpcFuture<'_> {
        self.calls.lock().unwrap().push(Call {
            function: function.to_owned(),
            request_id: request_id.to_owned(),
            call: call.clone(),
        });
        Box::pin(async move {
            if !self.rpc_delay.is_zero() {
                tokio::time::sleep(self.rpc_delay).await;
            }
            match (call["resource"].as_str(), call["op"].as_str()) {
                (Some("orders"), Some("get")) => Ok(json!({"id": call["args"]["id"], "total": 12})),
                _ => Err(ErrorInfo::new("NotFound", "no such order")),
            }
        })
    }

    fn log(&self, _function: &str, request_id: Option<&str>, stream: Stream, line: &str) {
        self.lines.lock().unwrap().push(Line {
            request_id: request_id.map(str::to_owned),
            stream,
            text: line.to_owned(),
        });
    }

    fn event(&self, _function: &str, event: PoolEvent) {
        self.events.lock().unwrap().push(event);
    }

    fn spawn_env(&self, _function: &str) -> Result<BTreeMap<String, String>, ErrorInfo> {
        self.spawn_env
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| Ok(BTreeMap::new()))
    }
}

/// Percentile `p` (0..=100) of sorted `samples`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}
