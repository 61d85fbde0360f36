//! Secrets on the local target, end to end through the real `nimbus` binary: `secret set | list
//! | rm | import`, deploy refusing missing values before changing anything, the value reaching
//! only the function that references it, masked in its logs, and — the leak test — a
//! distinctive value appearing in no output of any command and in no file of the project's
//! `.nimbus/` folder (builds and state) or the deployment registry. It runs `examples/secrets`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

    fn run(&mut self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nimbus"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("NIMBUS_PROVIDER")
            .env_remove("NIMBUS_STAGE")
            .env("XDG_DATA_HOME", self.data.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("nimbus runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
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
