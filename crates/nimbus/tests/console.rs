//! The local web console end to end in a real browser: the real `nimbus` binary deploys
//! examples/shop locally, then `tests/console/drive.js` drives Debian's `chromium` through
//! `playwright-core` (both installed by scripts/lib/tools.sh; missing ones fail the test with
//! the command that installs them). Screenshots are kept in `target/console-screenshots/`.

#[path = "support/stdin.rs"]
mod stdin;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/poll.rs"]
mod poll;
use poll::eventually;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Chromium, or a panic that says how to install it.
fn chromium() -> PathBuf {
    let found = std::env::var_os("NIMBUS_TEST_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|d| d.join("chromium"))
                .find(|p| p.is_file())
        });
    match found {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "chromium is not installed; install it with `sudo apt-get install -y chromium` \
             (or `bash -c 'source scripts/lib/tools.sh && ensure_chromium'`), or set NIMBUS_TEST_CHROMIUM"
        ),
    }
}

/// The project's node_modules holding playwright-core, or a panic that says how to install it.
fn node_modules() -> PathBuf {
    let dir = std::env::var_os("NIMBUS_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".tools/node/node_modules"));
    assert!(
        dir.join("playwright-core/package.json").is_file(),
        "playwright-core is not installed in {}; install it with \
         `bash -c 'source scripts/lib/tools.sh && ensure_node_modules'` (tests/package.json pins it)",
        dir.display()
    );
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if [
            ".nimbus",
            "__pycache__",
            ".pytest_cache",
            "tests",
            "node_modules",
        ]
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

struct Shop {
    dir: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Shop {
    fn nimbus(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("nimbus runs")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nimbus"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("NIMBUS_PROVIDER")
            .env_remove("NIMBUS_STAGE")
            .env("XDG_DATA_HOME", self._data.path())
            .env("NIMBUS_LOCAL_RETRY_BASE_MS", "100");
        cmd
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = self.nimbus(&["remove", "--yes"]);
    }
}

/// VmRSS of a process, in kB.
fn rss_kb(pid: u64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn the_console_shows_and_drives_the_shop_in_a_real_browser() {
    let chromium = chromium();
    let modules = node_modules();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/shop"), dir.path());
    let shop = Shop {
        dir,
        _data: tempfile::tempdir().unwrap(),
    };
    let out = stdin::output_with_stdin(
        &mut shop.command(&["secret", "set", "payment-key"]),
        Some(b"sk_test_console_7f3a"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = shop.nimbus(&["deploy", "--port", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shop_url = text(&out.stdout).trim().to_string();
    // deploy prints the console link beside the URL; `info --console` prints only the link.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("console: http://127.0.0.1:"), "{stderr}");
    let out = shop.nimbus(&["info", "--console"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let console = text(&out.stdout).trim().to_string();
    assert!(
        console.starts_with("http://127.0.0.1:") && console.contains("/console#token="),
        "{console}"
    );
    assert!(stderr.contains(&console), "{stderr}");

    // Idle memory of the runtime process after the deploy, before any request.
    let info: serde_json::Value =
        serde_json::from_slice(&shop.nimbus(&["info", "--output", "json"]).stdout).unwrap();
    let pid = info["pid"].as_u64().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let idle = rss_kb(pid);
    eprintln!("runtime idle RSS after deploying the shop: {idle} kB");
    assert!(idle < 20 * 1024, "idle RSS {idle} kB is over 20 MB");

    let shots = repo().join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let run = Command::new("node")
        .arg(repo().join("tests/console/drive.js"))
        .env("NODE_PATH", &modules)
        .env("CONSOLE_URL", &console)
        .env("SHOP_URL", &shop_url)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOTS", &shots)
        .env(
            "CAT_PNG",
            repo().join("crates/nimbus/tests/fixtures/cat.png"),
        )
        .output()
        .expect("node runs");
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    eprintln!("{stdout}{stderr}");
    assert_eq!(run.status.code(), Some(0), "the browser test failed");
    assert!(stdout.contains("console: page weight"), "{stdout}");

    // What the browser did reached the runtime: the uploaded file's thumbnail is in the bucket
    // folder, and the redrive is in the runtime's log.
    let images = shop
        .dir
        .path()
        .join(".nimbus/local/shop/dev/buckets/images");
    let thumb = eventually(30, "the thumbnail", || {
        std::fs::read(images.join("thumbnails/cat.png")).ok()
    });
    assert_eq!(&thumb[..8], b"\x89PNG\r\n\x1a\n");
    let logs = text(&shop.nimbus(&["logs", "--output", "json"]).stdout);
    assert!(
        logs.contains("redrove 1 message(s) from `payments-dlq` to `payments`"),
        "{logs}"
    );
}
