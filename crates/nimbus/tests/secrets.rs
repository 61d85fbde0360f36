//! Secrets on the local target, end to end through the real `nimbus` binary: `secret set | list
//! | rm | import`, deploy refusing missing values before changing anything, the value reaching
//! only the function that references it, masked in its logs, and — the leak test — a
//! distinctive value appearing in no output of any command and in no file of the project's
//! `.nimbus/` folder (builds and state) or the deployment registry. It runs `examples/secrets`.

#[path = "support/stdin.rs"]
mod stdin;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/poll.rs"]
mod poll;
use poll::eventually;

const CANARY: &str = "sk_live_CANARY_7f3a91c2d4";

/// The example this test runs: `examples/secrets`.
fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/secrets")
}

struct Project {
    dir: tempfile::TempDir,
    data: tempfile::TempDir,
    /// Every stdout and stderr of every command run, for the leak check.
    seen: String,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        for file in ["nimbus.yaml", "app.py"] {
            std::fs::copy(example().join(file), dir.path().join(file)).unwrap();
        }
        Project {
            dir,
            data: tempfile::tempdir().unwrap(),
            seen: String::new(),
        }
    }

    /// A project of `files` (path, content).
    fn with_files(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            std::fs::write(dir.path().join(path), content).unwrap();
        }
        Project {
            dir,
            data: tempfile::tempdir().unwrap(),
            seen: String::new(),
        }
    }

    /// Sets `name` to `value` from stdin, with `extra` arguments; its stderr.
    fn set(&mut self, name: &str, value: &str, extra: &[&str]) -> String {
        let args: Vec<&str> = ["secret", "set", name]
            .iter()
            .chain(extra)
            .copied()
            .collect();
        let out = self.run(&args, Some(value));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "nimbus {args:?}: {err}");
        err
    }

    fn run(&mut self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nimbus"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("NIMBUS_PROVIDER")
            .env_remove("NIMBUS_STAGE")
            .env("XDG_DATA_HOME", self.data.path());
        let out = stdin::output_with_stdin(&mut cmd, stdin.map(str::as_bytes));
        for b in [&out.stdout, &out.stderr] {
            self.seen.push_str(&String::from_utf8_lossy(b));
            self.seen.push('\n');
        }
        out
    }

    /// Runs `args`, which must succeed; its stdout.
    fn ok(&mut self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "nimbus {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `args`, which must fail with exit 1; its stderr.
    fn fails(&mut self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "nimbus {args:?}: {err}");
        err
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.run(&["remove", "--yes"], None);
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            files_under(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

/// Every file under `dir` that contains `needle` (in plain bytes, or inside a zip entry).
fn holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_under(dir, &mut files);
    files
        .into_iter()
        .filter(|f| {
            let bytes = std::fs::read(f).unwrap_or_default();
            contains(&bytes, needle) || zip_entries(&bytes).iter().any(|e| contains(e, needle))
        })
        .collect()
}

fn contains(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The uncompressed entries of a zip (none when `bytes` is not one): packages are deflated, so
/// a plain byte search would not see a value inside them.
fn zip_entries(bytes: &[u8]) -> Vec<Vec<u8>> {
    let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        return Vec::new();
    };
    (0..archive.len())
        .filter_map(|i| {
            let mut entry = archive.by_index(i).ok()?;
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut out).ok()?;
            Some(out)
        })
        .collect()
}

#[test]
fn a_local_secret_reaches_only_its_function_and_leaks_nowhere() {
    let mut p = Project::new();

    // Deploy refuses before changing anything, naming the exact command.
    let err = p.fails(&["deploy", "--port", "0"], None);
    assert!(err.contains("payment-key (read by pay)"), "{err}");
    assert!(
        err.contains("nimbus secret set payment-key -p local -s dev"),
        "{err}"
    );
    assert!(
        !p.dir.path().join(".nimbus").exists(),
        "deploy built before the check"
    );

    // Values never come from argv; bad names, sizes and providers are refused before storing.
    let err = p.fails(&["secret", "set", "payment-kee"], Some("x"));
    assert!(err.contains("did you mean `payment-key`"), "{err}");
    let big = "x".repeat(25 * 1024 + 1);
    let err = p.fails(&["secret", "set", "payment-key"], Some(&big));
    assert!(err.contains("25 KiB"), "{err}");
    let huge = "x".repeat(64 * 1024 + 1);
    let err = p.fails(&["secret", "set", "payment-key", "-p", "aws"], Some(&huge));
    assert!(
        err.contains("AWS Secrets Manager takes at most 64 KiB"),
        "{err}"
    );
    // Key Vault's 25 KiB, before any call (no Azure credential or endpoint is set here).
    let err = p.fails(&["secret", "set", "payment-key", "-p", "azure"], Some(&big));
    assert!(err.contains("over azure's limit of 25600"), "{err}");
    let err = p.fails(&["secret", "set", "payment-key"], Some(""));
    assert!(err.contains("is empty"), "{err}");
    let listed = p.ok(&["secret", "list"]);
    assert!(
        listed.contains("payment-key  local/dev  NOT SET"),
        "{listed}"
    );

    // Set from stdin (one final newline dropped, as `echo` adds it).
    let out = p.run(
        &["secret", "set", "payment-key"],
        Some(&format!("{CANARY}\n")),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secrets_file = p.data.path().join("nimbus/local/secrets/payments/dev.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&secrets_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(secrets_file.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    assert!(!secrets_file.starts_with(p.dir.path()));

    let listed: serde_json::Value =
        serde_json::from_str(&p.ok(&["secret", "list", "--output", "json"])).unwrap();
    let row = &listed["secrets"][0];
    assert_eq!(row["name"], "payment-key");
    assert_eq!(row["set"], true);
    assert_eq!(row["used_by"], serde_json::json!(["pay"]));
    assert!(row["set_at"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Build, deploy, invoke, info, logs — human and JSON.
    p.ok(&["build"]);
    p.ok(&["build", "--output", "json"]);
    let url = p.ok(&["deploy", "--port", "0"]);
    assert!(url.trim().starts_with("http://127.0.0.1:"), "{url}");
    p.ok(&["deploy", "--port", "0", "--output", "json"]);
    let paid = p.ok(&["invoke", "pay"]);
    let expected = format!(r#"key_length\":{}"#, CANARY.len());
    assert!(paid.contains(&expected), "{paid}");
    assert!(
        paid.contains("test"),
        "the literal env still reaches it: {paid}"
    );
    let other = p.ok(&["invoke", "other", "--output", "json"]);
    assert!(
        other.contains("false"),
        "a function that does not reference the secret sees it: {other}"
    );
    p.ok(&["invoke", "pay", "--output", "json"]);
    p.ok(&["info"]);
    p.ok(&["info", "--output", "json"]);
    p.ok(&["graph", "--format", "json"]);
    let logs = eventually(10, "the handler's line in the logs", || {
        let logs = p.ok(&["logs", "pay"]);
        logs.contains("charging with key").then_some(logs)
    });
    assert!(logs.contains("charging with key ***"), "{logs}");
    p.ok(&["logs", "pay", "--output", "json"]);
    p.ok(&["logs", "--output", "json"]);

    // The leak check: no output, no file of the project's .nimbus/ (builds, state, logs), no
    // deployment record holds the value. Only the secrets file does.
    assert!(
        !p.seen.contains(CANARY),
        "the value was printed:\n{}",
        p.seen
    );
    let mut built = Vec::new();
    files_under(&p.dir.path().join(".nimbus/build/local/dev"), &mut built);
    let zips: Vec<_> = built
        .iter()
        .filter(|f| !zip_entries(&std::fs::read(f).unwrap()).is_empty())
        .collect();
    assert!(
        zips.len() >= 2,
        "the packages are read entry by entry: {built:?}"
    );
    let leaked = holding(&p.dir.path().join(".nimbus"), CANARY);
    assert!(leaked.is_empty(), "the value is in {leaked:?}");
    let leaked = holding(p.dir.path(), CANARY);
    assert!(leaked.is_empty(), "the value is in {leaked:?}");
    assert_eq!(
        holding(p.data.path(), CANARY),
        std::slice::from_ref(&secrets_file)
    );

    // info, logs and remove need no secret.
    p.ok(&["secret", "rm", "payment-key"]);
    assert!(p.ok(&["secret", "list"]).contains("NOT SET"));
    p.ok(&["info"]);
    p.ok(&["logs", "pay"]);
    p.ok(&["remove", "--yes"]);

    // --from-file takes the file as is.
    let key_file = p.data.path().join("key.txt");
    std::fs::write(&key_file, "from-a-file").unwrap();
    p.ok(&[
        "secret",
        "set",
        "payment-key",
        "--from-file",
        key_file.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read_to_string(&secrets_file)
            .unwrap()
            .contains("\"from-a-file\"")
    );
    p.ok(&["secret", "rm", "payment-key"]);

    // import takes dotenv pairs: by secret name or by the variable that reads it.
    std::fs::write(
        p.dir.path().join(".env"),
        "# local values\nPAYMENT_API_KEY=\"from dotenv\"\nUNRELATED=1\n",
    )
    .unwrap();
    let out = p.run(&["secret", "import", ".env"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("imported 1 secret(s) for local/dev: payment-key"),
        "{err}"
    );
    assert!(err.contains("skipped UNRELATED"), "{err}");
    assert!(
        p.ok(&["secret", "list"])
            .contains("payment-key  local/dev  set ")
    );
    std::fs::write(p.dir.path().join("bad.env"), "GOOD=1\nnot a pair\n").unwrap();
    let err = p.fails(&["secret", "import", "bad.env"], None);
    assert!(
        err.contains("bad.env:2:5: cannot parse `not a pair`"),
        "{err}"
    );
}

/// A project whose functions read `api-key` and report which value they see (its last word:
/// the values below end in distinct words), raise an error holding it, or print it in pieces.
const ROTATE_MANIFEST: &str = r#"version: 1
service: rotate
secrets:
  api-key: {}
functions:
  py:
    handler: app.py:handler
    env: { API_KEY: { secret: api-key } }
    concurrency: { max: 1 }
    triggers: [ { http: { method: GET, path: /py } } ]
  js:
    runtime: nodejs22
    handler: app.js:handler
    env: { API_KEY: { secret: api-key } }
    triggers: [ { http: { method: GET, path: /js } } ]
  plain:
    handler: app.py:plain
    triggers: [ { http: { method: GET, path: /plain } } ]
providers:
  gcp: { project: demo-project, region: europe-west1 }
"#;

const ROTATE_PY: &str = r#"import os, sys, time

def handler(event, context):
    key = os.environ["API_KEY"]
    mode = (event.get("query") or {}).get("mode", "which")
    if mode == "which":
        return {"status": 200, "body": {"which": key.rsplit("-", 1)[1], "pid": os.getpid()}}
    if mode == "slow":
        time.sleep(2)
        return {"status": 200, "body": {"which": key.rsplit("-", 1)[1], "pid": os.getpid()}}
    if mode == "raise":
        raise ValueError("card declined for key " + key)
    if mode == "split":
        # One line, written in two pieces with a log sweep (200 ms) in between.
        sys.stdout.write("split key=" + key[:6])
        sys.stdout.flush()
        time.sleep(0.5)
        sys.stdout.write(key[6:] + " end\n")
        sys.stdout.flush()
        return {"status": 200, "body": "split"}
    if mode == "exit":
        os._exit(3)

def plain(event, context):
    return {"status": 200, "body": "plain"}
"#;

const ROTATE_JS: &str = r#"exports.handler = async (event) => {
  const key = process.env.API_KEY;
  if ((event.query || {}).mode === 'raise') throw new TypeError('declined for key ' + key);
  return { status: 200, body: { which: key.split('-').pop() } };
};
"#;

const V1: &str = "rotating-secret-value-ONE";
const V2: &str = "rotating-secret-value-TWO";
const V3: &str = "rotating-secret-value-THREE";
const V4: &str = "rotating-secret-value-FOUR";

/// `which` a function answers through `nimbus invoke`, and the worker's pid.
fn which(p: &mut Project, function: &str) -> (String, u64) {
    let out = p.ok(&[
        "invoke",
        function,
        "--path",
        &format!("/{function}?mode=which"),
        "--output",
        "json",
    ]);
    let reply: serde_json::Value = serde_json::from_str(&out).unwrap();
    let body: serde_json::Value = match &reply["result"]["body"] {
        serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    };
    (
        body["which"].as_str().unwrap_or_default().to_string(),
        body["pid"].as_u64().unwrap_or(0),
    )
}

/// A GET on the gateway: status and body.
fn get(url: &str) -> (u16, String) {
    use std::io::Read;
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

#[test]
fn a_secret_set_again_reaches_new_workers_restart_drains_and_errors_are_masked() {
    let mut p = Project::with_files(&[
        ("nimbus.yaml", ROTATE_MANIFEST),
        ("app.py", ROTATE_PY),
        ("app.js", ROTATE_JS),
    ]);
    p.set("api-key", V1, &[]);
    let url = p.ok(&["deploy", "--port", "0"]).trim().to_string();
    let (seen, warm) = which(&mut p, "py");
    assert_eq!(seen, "ONE");

    // Set again without a redeploy: the warm worker keeps its value; the next worker started
    // (here after a crash) reads the store again and gets the new one.
    p.set("api-key", V2, &[]);
    assert_eq!(which(&mut p, "py"), ("ONE".to_string(), warm));
    let out = p.run(&["invoke", "py", "--path", "/py?mode=exit"], None);
    assert_eq!(out.status.code(), Some(1));
    let (seen, pid) = which(&mut p, "py");
    assert_eq!(
        seen, "TWO",
        "a worker started after `secret set` reads the new value"
    );
    assert_ne!(pid, warm);
    assert_eq!(
        which(&mut p, "js").0,
        "TWO",
        "a function's first worker too"
    );

    // --restart: the readers get new workers now; an invocation running on an old one
    // finishes (on the old value) instead of being cut.
    let slow_url = format!("{url}/py?mode=slow");
    let slow = std::thread::spawn(move || get(&slow_url));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let err = p.set("api-key", V3, &["--restart"]);
    assert!(
        err.contains("restarted js, py on the local runtime"),
        "{err}"
    );
    let (status, body) = slow.join().unwrap();
    assert_eq!(status, 200, "the running invocation finished: {body}");
    assert!(body.contains("\"TWO\""), "it ran on the old worker: {body}");
    assert_eq!(which(&mut p, "py").0, "THREE");
    assert_eq!(which(&mut p, "js").0, "THREE");
    let logs = p.ok(&["logs"]);
    assert!(
        logs.contains("restarted js, py (secret `api-key` set again)"),
        "{logs}"
    );

    // Errors: the value in an exception's message and stack trace shows as *** in `invoke`'s
    // error, in the HTTP 500 body and in `nimbus logs` (Python and Node).
    let out = p.run(&["invoke", "py", "--path", "/py?mode=raise"], None);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ValueError: card declined for key ***"),
        "{err}"
    );
    let out = p.run(
        &[
            "invoke",
            "js",
            "--path",
            "/js?mode=raise",
            "--output",
            "json",
        ],
        None,
    );
    let json_out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        json_out.contains("TypeError: declined for key ***"),
        "{json_out}"
    );
    for (path, expected) in [
        ("py", "card declined for key ***"),
        ("js", "declined for key ***"),
    ] {
        let (status, body) = get(&format!("{url}/{path}?mode=raise"));
        assert_eq!(status, 500, "{body}");
        assert!(body.contains(expected), "{body}");
    }
    let (status, _) = get(&format!("{url}/py?mode=split"));
    assert_eq!(status, 200);
    let logs = eventually(10, "the errors and the split line in the logs", || {
        let logs = p.ok(&["logs"]);
        (logs.contains("split key=") && logs.matches("declined for key").count() >= 8)
            .then_some(logs)
    });
    assert!(logs.contains("split key=*** end"), "{logs}");
    assert!(
        logs.contains("Traceback (most recent call last)"),
        "the stack is shown: {logs}"
    );
    assert!(
        logs.contains("    ValueError: card declined for key ***"),
        "{logs}"
    );
    assert!(logs.contains("app.js:3"), "the Node stack is shown: {logs}");
    let json_logs = p.ok(&["logs", "--output", "json"]);
    assert!(json_logs.contains("\"stack\""), "{json_logs}");
    for v in [V1, V2, V3] {
        assert!(!p.seen.contains(v), "a value was printed:\n{}", p.seen);
        let leaked = holding(&p.dir.path().join(".nimbus"), v);
        assert!(leaked.is_empty(), "{v} is in {leaked:?}");
    }

    // Where --restart cannot work, it is refused before anything is stored.
    let err = p.fails(
        &["secret", "set", "api-key", "-p", "gcp", "--restart"],
        Some(V4),
    );
    assert!(
        err.contains("`--restart` is not available for gcp; nothing was stored"),
        "{err}"
    );
    assert!(err.contains("version `latest`"), "{err}");
    let err = p.fails(
        &["secret", "set", "api-key", "-p", "aws", "--restart"],
        Some(V4),
    );
    assert!(
        err.contains("`--restart` is not available for aws; nothing was stored"),
        "{err}"
    );

    // With no runtime running, --restart stores the value and says there is nothing to restart.
    p.ok(&["remove", "--yes"]);
    let err = p.set("api-key", V4, &["--restart"]);
    assert!(err.contains("nothing to restart"), "{err}");
    assert!(
        p.ok(&["secret", "list"])
            .contains("api-key  local/dev  set ")
    );
}
