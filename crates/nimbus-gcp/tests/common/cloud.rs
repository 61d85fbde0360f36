//! Google Cloud on 127.0.0.1 for the tests of this binary: fake-gcs-server, the Pub/Sub and
//! Firestore emulators, and the discovery-validated control-plane double in front of them, started
//! once per test binary by `tests/support/gcp_env.py` and stopped by it when this process ends
//! (its stdin, held here, then closes). Each test deploys to a project of its own, so they run in
//! parallel against one environment and read only their own requests from the double's log.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nimbus_gcp::api::Endpoints;
use nimbus_test_support as support;
use serde_json::{Value, json};

/// The running environment.
pub struct CloudEnv {
    /// The double's base URL.
    pub double: String,
    /// fake-gcs-server, directly.
    pub storage: String,
    /// The Pub/Sub emulator, directly.
    pub pubsub: String,
    /// The Firestore emulator, directly.
    pub firestore: String,
    _child: Mutex<(Child, ChildStdin)>,
}

/// The environment, started on first use. A missing tool fails the test with the command that
/// installs it: a test that needs the emulators never passes without them.
pub fn env() -> &'static CloudEnv {
    static ENV: OnceLock<CloudEnv> = OnceLock::new();
    ENV.get_or_init(start)
}

// The child lives as long as this process: it stops when its stdin closes, at our exit.
#[allow(clippy::zombie_processes)]
fn start() -> CloudEnv {
    let python = support::required_venv_tool("python");
    let script = support::repo().join("crates/nimbus-gcp/tests/support/gcp_env.py");
    let mut child = Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting gcp_env.py");
    let stdin = child.stdin.take().expect("piped stdin");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("reading gcp_env.py's first line");
    let urls: Value = serde_json::from_str(&line)
        .unwrap_or_else(|_| panic!("gcp_env.py did not start: {line:?}"));
    if let Some(missing) = urls["missing"].as_str() {
        panic!("{missing}");
    }
    let url = |k: &str| urls[k].as_str().expect("a URL").to_string();
    CloudEnv {
        double: url("double"),
        storage: url("storage"),
        pubsub: url("pubsub"),
        firestore: url("firestore"),
        _child: Mutex::new((child, stdin)),
    }
}

impl CloudEnv {
    /// Every API through the double.
    pub fn endpoints(&self) -> Endpoints {
        let mut e = Endpoints::from_env();
        for (api, _) in nimbus_gcp::api::APIS {
            e.set(api, &format!("{}/{api}", self.double));
        }
        e
    }

    /// The environment variables that point the `nimbus` binary at it.
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = nimbus_gcp::api::APIS
            .iter()
            .map(|(api, _)| {
                (
                    format!("NIMBUS_GCP_{}_ENDPOINT", api.to_ascii_uppercase()),
                    format!("{}/{api}", self.double),
                )
            })
            .collect();
        vars.push(("NIMBUS_GCP_ANONYMOUS".into(), "1".into()));
        vars.push(("NIMBUS_GCP_POLL_MS".into(), "20".into()));
        vars.push(("NIMBUS_GCP_RETRY_BASE_MS".into(), "20".into()));
        vars
    }

    fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "-X",
            method,
            &format!("{}/_double/{path}", self.double),
        ]);
        if let Some(b) = body {
            cmd.args(["-H", "content-type: application/json", "-d", &b.to_string()]);
        }
        let out = cmd.output().expect("curl");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{path}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    fn list(&self, path: &str) -> Vec<Value> {
        self.control("GET", path, None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A position in the double's request log, for [`requests_since`](Self::requests_since).
    pub fn mark(&self) -> usize {
        self.list("requests").len()
    }

    /// The requests logged after `mark` that name `project` (in their path, query or body).
    pub fn requests_since(&self, project: &str, mark: usize) -> Vec<Value> {
        self.list("requests")
            .into_iter()
            .skip(mark)
            .filter(|r| r.to_string().contains(project))
            .collect()
    }

    /// The requests naming `project` that the published API reference does not allow.
    pub fn violations(&self, project: &str) -> Vec<Value> {
        self.list("violations")
            .into_iter()
            .filter(|r| r.to_string().contains(project))
            .collect()
    }

    /// Makes the next request of discovery method `method` whose path, query and body contain
    /// every text of `matching` fail as `mode` says (`operation_error`, `http_500`,
    /// `http_500_after_write`).
    pub fn fault(&self, method: &str, mode: &str, matching: &[&str]) {
        self.control(
            "POST",
            "faults",
            Some(json!({ "method": method, "mode": mode, "match": matching, "count": 1 })),
        );
    }

    /// Changes a resource on the double, as someone outside Nimbus would.
    pub fn mutate(&self, name: &str, set: Value) {
        self.control("POST", "mutate", Some(json!({ "name": name, "set": set })));
    }

    /// Makes the shop's existing `reports` bucket of `project` (when it is not there yet) with
    /// an object, through the double into fake-gcs-server, as its owner would.
    pub fn make_shop_reports(&self, project: &str) {
        let bucket = shop_reports(project);
        let curl = |args: &[&str]| {
            let out = std::process::Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
                .args(args)
                .output()
                .expect("curl runs");
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        let storage = format!("{}/storage", self.double);
        let status = curl(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            &json!({ "name": bucket, "location": "EUROPE-WEST1" }).to_string(),
            &format!("{storage}/storage/v1/b?project={project}"),
        ]);
        assert!(
            status == "200" || status == "409",
            "making {bucket}: {status}"
        );
        let status = curl(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            "{\"quarter\": \"2026-Q4\"}",
            &format!(
                "{storage}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
                SHOP_REPORTS_OBJECT.replace('/', "%2F")
            ),
        ]);
        assert_eq!(status, "200", "putting {SHOP_REPORTS_OBJECT} into {bucket}");
    }

    /// Whether the shop's `reports` bucket of `project` is there with its owner's object.
    pub fn shop_reports_intact(&self, project: &str) -> bool {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!(
                "{}/storage/storage/v1/b/{}/o/{}",
                self.double,
                shop_reports(project),
                SHOP_REPORTS_OBJECT.replace('/', "%2F")
            ))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout) == "200"
    }

    /// Every resource the double holds.
    pub fn resources(&self) -> Value {
        self.control("GET", "resources", None)
    }

    /// Asserts that the double holds no control-plane resource of `project` any more (functions,
    /// triggers, jobs, gateway APIs/configs/gateways, service accounts).
    pub fn assert_nothing_left(&self, project: &str) {
        let resources = self.resources();
        for table in [
            "functions",
            "triggers",
            "jobs",
            "apis",
            "configs",
            "gateways",
            "accounts",
        ] {
            let left: Vec<&String> = resources[table]
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| k.contains(project))
                .collect();
            assert!(left.is_empty(), "{table}: {left:?}");
        }
    }

    /// Adds Cloud Logging entries.
    pub fn add_logs(&self, entries: Value) {
        self.control("POST", "logs", Some(json!({ "entries": entries })));
    }

    /// The requests the functions' URLs received.
    pub fn invocations(&self) -> Vec<Value> {
        self.list("invocations")
    }
}

/// `POST /v1/projects/p/topics/t?x=y` for a logged request.
pub fn line(r: &Value) -> String {
    let q = r["query"].as_str().unwrap_or_default();
    format!(
        "{} /{}{}{}",
        r["http"].as_str().unwrap_or_default(),
        r["api"].as_str().unwrap_or_default(),
        r["path"].as_str().unwrap_or_default(),
        if q.is_empty() {
            String::new()
        } else {
            format!("?{q}")
        }
    )
}

/// A copy of the shop example in a fresh directory (its manifest's project set to `project`), so
/// a test can change handler files and build it. Its existing `reports` bucket (made by the
/// finance team, not by Nimbus) is [`shop_reports`]`(project)`, which the test makes first
/// ([`CloudEnv::make_shop_reports`]), as its owner would.
pub fn shop_copy(project: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&support::repo().join("examples/shop"), dir.path());
    let manifest = dir.path().join("nimbus.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let reports = "projects/_/buckets/acme-shop-reports";
    assert!(
        text.contains(reports),
        "the shop's reports bucket exists on GCP"
    );
    std::fs::write(
        &manifest,
        text.replace("project: my-project", &format!("project: {project}"))
            .replace(
                reports,
                &format!("projects/_/buckets/{}", shop_reports(project)),
            ),
    )
    .unwrap();
    dir
}

/// The shop's existing `reports` bucket in the tests of `project` (bucket names are global, and
/// each test has a project of its own).
pub fn shop_reports(project: &str) -> String {
    format!("{project}-reports")
}

/// The object the owner of the shop's `reports` bucket keeps in it.
pub const SHOP_REPORTS_OBJECT: &str = "finance/2026-q4.json";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if [".nimbus", "node_modules", "__pycache__"].contains(&name.to_str().unwrap_or_default()) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// The graph and a real build (`nimbus build -p gcp`'s) of the app in `dir`.
pub fn build(dir: &Path) -> (nimbus_graph::AppGraph, nimbus_package::BuildReport, PathBuf) {
    let graph = support::graph_of("gcp", &dir.join("nimbus.yaml"));
    let options = nimbus_package::BuildOptions::conventional(
        dir,
        nimbus_provider::ProviderId::Gcp,
        &graph.stage,
    );
    let report = nimbus_package::build(&graph, &options, &|_| {}).expect("building the packages");
    (graph, report, options.out_dir)
}

/// The timing of the tests: poll operations and retry every 20 ms.
pub fn fast() -> nimbus_gcp::driver::Timing {
    nimbus_gcp::driver::Timing {
        poll: Duration::from_millis(20),
        operation_timeout: Duration::from_secs(60),
        retry_base: Some(Duration::from_millis(20)),
    }
}
