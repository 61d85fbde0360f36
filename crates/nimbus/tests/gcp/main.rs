//! GCP through the real `nimbus` binary: `deploy`, `plan`, `info`, `logs`, `invoke` and `remove`
//! with `-p gcp`, against the discovery-validated control-plane double in front of fake-gcs-server
//! and Google's Pub/Sub and Firestore emulators (started once for this test binary by
//! `crates/nimbus-gcp/tests/support/gcp_env.py`, whose Rust side is shared with nimbus-gcp's
//! tests). What the commands did is checked in the double's request log and its resources, never
//! with nimbus's own code.

#[path = "../../../nimbus-gcp/tests/common/mod.rs"]
mod common;
mod queues;

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use common::cloud::{self, CloudEnv};
use serde_json::{Value, json};

/// The value of the shop's secret `payment-key` in these tests.
const SHOP_PAYMENT_KEY: &str = "sk_test_shop_cli_e1a2b3";

/// A copy of the shop for one project, and how to run nimbus on it.
struct Shop {
    dir: tempfile::TempDir,
    project: String,
}

impl Shop {
    fn new(project: &str) -> Shop {
        // The shop's `reports` bucket exists already (its owner made it, with data).
        cloud::env().make_shop_reports(project);
        let dir = cloud::shop_copy(project);
        // One dependency cache for every test of the run (installs are atomic renames).
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nimbus-gcp-deps-cache");
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::create_dir_all(dir.path().join(".nimbus")).unwrap();
        std::os::unix::fs::symlink(&cache, dir.path().join(".nimbus/cache")).unwrap();
        Shop {
            dir,
            project: project.to_string(),
        }
    }

    fn run(&self, env: &CloudEnv, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_nimbus"))
            .args(args)
            .args(["-p", "gcp"])
            .current_dir(self.dir.path())
            .env_remove("NIMBUS_PROVIDER")
            .env_remove("NIMBUS_STAGE")
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env("NO_COLOR", "1")
            .envs(env.vars())
            .output()
            .expect("nimbus runs")
    }

    /// Sets the shop's secret `payment-key` (read by charge-payment) with `nimbus secret set`.
    fn set_payment_key(&self, env: &CloudEnv) {
        use std::io::Write as _;
        let mut child = Command::new(env!("CARGO_BIN_EXE_nimbus"))
            .args(["secret", "set", "payment-key", "-p", "gcp"])
            .current_dir(self.dir.path())
            .env_remove("NIMBUS_PROVIDER")
            .env_remove("NIMBUS_STAGE")
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .envs(env.vars())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("nimbus runs");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(SHOP_PAYMENT_KEY.as_bytes()).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }

    /// Runs nimbus, requires `code`; returns stdout.
    fn expect(&self, env: &CloudEnv, args: &[&str], code: i32) -> String {
        let out = self.run(env, args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "nimbus {} -p gcp:\n{}\n{}",
            args.join(" "),
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// One test, so that one environment serves both scenarios (cargo nextest runs each test in a
/// process of its own, and the emulators take seconds to start).
#[test]
fn gcp_with_the_cli() {
    let env = cloud::env();
    let refused =
        std::thread::spawn(move || a_manifest_gen2_cannot_run_is_refused_before_any_call(env));
    let secrets = std::thread::spawn(move || a_secret_value_reaches_only_secret_manager(env));
    let queues = std::thread::spawn(move || queues::queue_tools_on_pubsub(env));
    deploy_plan_info_logs_invoke_and_remove_with_the_cli(env);
    refused.join().expect("the refused manifest scenario");
    secrets.join().expect("the secrets scenario");
    queues.join().expect("the queue tools scenario");
}

fn deploy_plan_info_logs_invoke_and_remove_with_the_cli(env: &CloudEnv) {
    let shop = Shop::new("nimbus-cli-shop");
    let p = shop.project.as_str();

    // Validate; remove before anything is deployed (no deployment bucket yet) does nothing.
    shop.expect(env, &["validate"], 0);
    shop.expect(env, &["remove", "--yes"], 0);

    // The shop's payment key first (plan and deploy refuse a secret with no value).
    shop.set_payment_key(env);

    // Plan: everything to create; the plan exits 2 with --detailed-exitcode.
    let mark = env.mark();
    let plan = json_of(&shop.expect(env, &["plan", "--detailed-exitcode", "--output", "json"], 2));
    let creates = plan["summary"]["create"].as_u64().unwrap();
    assert!(creates > 40, "{plan}");
    // The existing `reports` bucket is used, not created.
    let text = plan.to_string();
    assert!(text.contains("gcp.existing/reports"), "{plan}");
    assert!(!text.contains("gcp.storage.bucket/reports"), "{plan}");
    assert!(
        env.requests_since(p, mark)
            .iter()
            .all(|r| r["write"] == false),
        "plan writes nothing"
    );

    // Deploy.
    let mark = env.mark();
    let deployed = json_of(&shop.expect(env, &["deploy", "--output", "json"], 0));
    assert_eq!(
        deployed["report"]["summary"]["create"].as_u64(),
        Some(creates)
    );
    let writes = env
        .requests_since(p, mark)
        .iter()
        .filter(|r| r["write"] == true)
        .count();
    assert!(
        writes as u64 > creates,
        "every resource created: {writes} writes"
    );
    let functions = env.resources()["functions"].clone();
    let ours: Vec<&String> = functions
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.contains(p))
        .collect();
    assert_eq!(ours.len(), 7, "{ours:?}");

    // Nothing to do now: plan exits 0, also after reading the cloud back.
    shop.expect(env, &["plan", "--detailed-exitcode"], 0);
    shop.expect(env, &["plan", "--refresh", "--detailed-exitcode"], 0);

    // An unchanged redeploy writes nothing at all.
    let mark = env.mark();
    let again = json_of(&shop.expect(env, &["deploy", "--output", "json"], 0));
    assert_eq!(again["report"]["calls"]["creates"], 0);
    let writes: Vec<String> = env
        .requests_since(p, mark)
        .iter()
        .filter(|r| r["write"] == true)
        .map(cloud::line)
        .collect();
    assert_eq!(writes, Vec::<String>::new());

    // Info: the functions, the gateway's routes, the resources.
    let info = json_of(&shop.expect(env, &["info", "--output", "json"], 0));
    assert_eq!(info["provider"], "gcp");
    assert_eq!(info["functions"].as_array().unwrap().len(), 7);
    let routes: Vec<String> = info["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["method"].as_str().unwrap(),
                e["url"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        routes
            .iter()
            .any(|r| r.starts_with("POST https://shop-dev-") && r.ends_with(".gateway.dev/orders")),
        "{routes:?}"
    );
    assert_eq!(
        info["state"],
        format!("gs://nimbus-deploy-{p}/state/shop/dev/gcp/state.json")
    );

    // Logs of one function from Cloud Logging.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    env.add_logs(json!([{
        "insertId": "cli-1", "logName": format!("projects/{p}/logs/run.googleapis.com%2Fstdout"),
        "resource": { "type": "cloud_run_revision", "labels": { "service_name": "shop-dev-place-order" } },
        "timestamp": now, "textPayload": "order placed from the cli test",
    }]));
    let logs = shop.expect(env, &["logs", "place-order"], 0);
    assert!(logs.contains("order placed from the cli test"), "{logs}");

    // Invoke: the request reaches the function's URL as API Gateway would send it.
    let out = shop.expect(
        env,
        &[
            "invoke",
            "get-order",
            "--data",
            r#"{"id": "o-42"}"#,
            "--output",
            "json",
        ],
        0,
    );
    assert!(out.contains("o-42"), "{out}");
    let got = env
        .invocations()
        .into_iter()
        .rfind(|i| i["service"] == "shop-dev-get-order")
        .unwrap();
    assert_eq!(
        (got["method"].as_str(), got["path"].as_str()),
        (Some("GET"), Some("/orders/o-42"))
    );

    // Remove: nothing of the project is left in the double.
    shop.expect(env, &["remove", "--yes"], 0);
    env.assert_nothing_left(p);
    // The existing `reports` bucket (its owner's) is left as it was, its object in it.
    assert!(env.shop_reports_intact(p));
    let info = json_of(&shop.expect(env, &["info", "--output", "json"], 0));
    assert_eq!(info["deployed"], false);
    assert_eq!(env.violations(p), Vec::<Value>::new());
}

fn a_manifest_gen2_cannot_run_is_refused_before_any_call(env: &CloudEnv) {
    let shop = Shop::new("nimbus-cli-refused");
    let manifest = shop.dir.path().join("nimbus.yaml");
    let yaml = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        yaml.replace(
            "payments:     { type: queue, visibility_timeout: 60s, dead_letter: { max_receives: 5 } }",
            "payments:     { type: queue, visibility_timeout: 60s, dead_letter: { max_receives: 3 } }",
        ),
    )
    .unwrap();
    // (After the `reports` bucket's owner made it: the deploy's own calls are counted.)
    let mark = env.mark();
    let out = shop.run(env, &["deploy"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("`max_receives` of 3; on gcp it must be between 5 and 100")
            && err.contains("nimbus.yaml:"),
        "{err}"
    );
    assert!(
        env.requests_since(&shop.project, mark).is_empty(),
        "no call was made"
    );
}

/// A distinctive value: the leak check looks for it everywhere.
const CANARY: &str = "sk_live_GCP_CANARY_5e81b0d7";

/// `examples/secrets` on GCP: `nimbus secret set -p gcp` (stdin) stores the value in Secret
/// Manager; plan and deploy refuse while it is missing; deploy gives `pay` alone the native
/// secret variable and accessor binding; `list`, `rm`. The value appears in no output (of
/// `secret`, `plan`, `deploy`, `info`, `logs`, `build`, `remove`, text or JSON), no file
/// under `.nimbus/`, no `main.tf.json` and no object of the deployment bucket (the state).
fn a_secret_value_reaches_only_secret_manager(env: &CloudEnv) {
    let p = "nimbus-cli-secrets";
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/secrets");
    std::fs::copy(example.join("app.py"), dir.path().join("app.py")).unwrap();
    let yaml = std::fs::read_to_string(example.join("nimbus.yaml")).unwrap();
    std::fs::write(
        dir.path().join("nimbus.yaml"),
        format!("{yaml}providers:\n  gcp: {{ project: {p}, region: europe-west1 }}\n"),
    )
    .unwrap();
    let mut seen = String::new();
    let mut run = |args: &[&str], stdin: Option<&str>, code: i32| -> String {
        use std::io::Write as _;
        let mut child = Command::new(env!("CARGO_BIN_EXE_nimbus"))
            .args(args)
            .args(["-p", "gcp"])
            .current_dir(dir.path())
            .env_remove("NIMBUS_PROVIDER")
            .env_remove("NIMBUS_STAGE")
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env("NO_COLOR", "1")
            .envs(env.vars())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("nimbus runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        seen.push_str(&format!("{stdout}\n{stderr}\n"));
        assert_eq!(
            out.status.code(),
            Some(code),
            "nimbus {} -p gcp:\n{stdout}\n{stderr}",
            args.join(" ")
        );
        format!("{stdout}{stderr}")
    };

    // Missing value: plan and deploy refuse before changing anything, naming the command.
    let mark = env.mark();
    for cmd in [&["plan"][..], &["deploy"][..]] {
        let err = run(cmd, None, 1);
        assert!(
            err.contains("nimbus secret set payment-key -p gcp -s dev"),
            "{err}"
        );
    }
    assert!(
        env.requests_since(p, mark)
            .iter()
            .all(|r| r["write"] == false),
        "nothing was changed"
    );
    let listed = json_of(&run(&["secret", "list", "--output", "json"], None, 0));
    assert_eq!(listed["secrets"][0]["set"], false, "{listed}");

    // Over Secret Manager's limit: refused before any call.
    let mark = env.mark();
    let big = "x".repeat(65537);
    let err = run(&["secret", "set", "payment-key"], Some(&big), 1);
    assert!(err.contains("over gcp's limit of 65536"), "{err}");
    assert!(env.requests_since(p, mark).is_empty(), "no call was made");

    // Set from stdin (one final newline dropped), then list shows when, never the value.
    run(
        &["secret", "set", "payment-key"],
        Some(&format!("{CANARY}\n")),
        0,
    );
    let secret = format!("projects/{p}/secrets/payments-dev-payment-key");
    let access = env
        .requests_since(p, 0)
        .iter()
        .filter(|r| {
            r["http"] == "POST" && r["path"].as_str().unwrap_or("").ends_with(":addVersion")
        })
        .count();
    assert_eq!(access, 1, "one version added");
    let stored = curl_json(&format!(
        "{}/secretmanager/v1/{secret}/versions/latest:access",
        env.double
    ));
    let stored = base64::engine::general_purpose::STANDARD
        .decode(stored["payload"]["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(stored, CANARY.as_bytes(), "the value, without the newline");
    let listed = json_of(&run(&["secret", "list", "--output", "json"], None, 0));
    assert_eq!(listed["secrets"][0]["name"], "payment-key");
    assert_eq!(listed["secrets"][0]["set"], true, "{listed}");
    assert!(listed["secrets"][0]["set_at"].is_string(), "{listed}");

    // Plan, deploy, info: pay alone reads it natively, through its own account.
    run(&["plan", "--output", "json"], None, 0);
    run(&["deploy", "--output", "json"], None, 0);
    run(&["info", "--output", "json"], None, 0);
    run(&["info"], None, 0);
    run(&["logs", "pay"], None, 0);
    run(&["build", "--output", "json"], None, 0);
    let resources = env.resources();
    assert!(resources["secrets"].get(&secret).is_some(), "{resources}");
    let pay = &resources["functions"]
        [format!("projects/{p}/locations/europe-west1/functions/payments-dev-pay")];
    assert_eq!(
        pay["serviceConfig"]["secretEnvironmentVariables"],
        json!([{ "key": "PAYMENT_API_KEY", "projectId": p,
                 "secret": "payments-dev-payment-key", "version": "latest" }]),
        "{pay}"
    );
    let other = &resources["functions"]
        [format!("projects/{p}/locations/europe-west1/functions/payments-dev-other")];
    assert!(
        other["serviceConfig"]["secretEnvironmentVariables"].is_null(),
        "{other}"
    );
    let bindings = &resources["policies"][format!("secret:{secret}")]["bindings"];
    assert_eq!(bindings.as_array().map(Vec::len), Some(1), "{bindings}");
    assert_eq!(bindings[0]["role"], "roles/secretmanager.secretAccessor");
    assert_eq!(
        bindings[0]["members"],
        json!([pay["serviceConfig"]["serviceAccountEmail"]
            .as_str()
            .map(|a| format!("serviceAccount:{a}"))
            .unwrap()])
    );

    // The leak check: every file under .nimbus/ (builds, main.tf.json), every object of the
    // deployment bucket (the state, the packages); the outputs at the end.
    let mut files = vec![dir.path().join(".nimbus")];
    let mut checked = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(CANARY),
                "the value is in {}",
                path.display()
            );
            checked.push(path);
        }
    }
    assert!(
        checked.iter().any(|f| f.ends_with("main.tf.json")),
        "{checked:?}"
    );
    let bucket = format!("nimbus-deploy-{p}");
    let objects = curl_json(&format!("{}/storage/storage/v1/b/{bucket}/o", env.double));
    let names: Vec<&str> = objects["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("state/payments/dev/gcp/")),
        "{names:?}"
    );
    for name in &names {
        let url = format!(
            "{}/storage/storage/v1/b/{bucket}/o/{}?alt=media",
            env.double,
            name.replace('/', "%2F")
        );
        let out = Command::new("curl").args(["-sS", &url]).output().unwrap();
        assert!(out.status.success());
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(CANARY),
            "the value is in gs://{bucket}/{name}"
        );
    }

    // rm deletes it from Secret Manager; a second rm says there is nothing to remove.
    run(&["remove", "--yes"], None, 0);
    run(&["secret", "set", "payment-key"], Some(CANARY), 0);
    run(&["secret", "rm", "payment-key"], None, 0);
    assert!(env.resources()["secrets"].get(&secret).is_none());
    let err = run(&["secret", "rm", "payment-key"], None, 1);
    assert!(err.contains("has no value"), "{err}");
    assert!(!seen.contains(CANARY), "the value appeared in an output");
    assert_eq!(env.violations(p), Vec::<Value>::new());
}

fn curl_json(url: &str) -> Value {
    let out = Command::new("curl").args(["-sS", url]).output().unwrap();
    json_of(&text(&out.stdout))
}
