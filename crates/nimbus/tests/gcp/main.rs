//! GCP through the real `nimbus` binary: `deploy`, `plan`, `info`, `logs`, `invoke` and `remove`
//! with `-p gcp`, against the discovery-validated control-plane double in front of fake-gcs-server
//! and Google's Pub/Sub and Firestore emulators (started once for this test binary by
//! `crates/nimbus-gcp/tests/support/gcp_env.py`, whose Rust side is shared with nimbus-gcp's
//! tests). What the commands did is checked in the double's request log and its resources, never
//! with nimbus's own code.

#[path = "../../../nimbus-gcp/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::cloud::{self, CloudEnv};
use serde_json::{Value, json};

/// A copy of the shop for one project, and how to run nimbus on it.
struct Shop {
    dir: tempfile::TempDir,
    project: String,
}

impl Shop {
    fn new(project: &str) -> Shop {
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
    deploy_plan_info_logs_invoke_and_remove_with_the_cli(env);
    refused.join().expect("the refused manifest scenario");
}

fn deploy_plan_info_logs_invoke_and_remove_with_the_cli(env: &CloudEnv) {
    let shop = Shop::new("nimbus-cli-shop");
    let p = shop.project.as_str();

    // Validate; remove before anything is deployed (no deployment bucket yet) does nothing.
    shop.expect(env, &["validate"], 0);
    shop.expect(env, &["remove", "--yes"], 0);

    // Plan: everything to create; the plan exits 2 with --detailed-exitcode.
    let plan = json_of(&shop.expect(env, &["plan", "--detailed-exitcode", "--output", "json"], 2));
    let creates = plan["summary"]["create"].as_u64().unwrap();
    assert!(creates > 40, "{plan}");
    assert!(
        env.requests_since(p, 0).iter().all(|r| r["write"] == false),
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
    let out = shop.run(env, &["deploy"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("`max_receives` of 3; on gcp it must be between 5 and 100")
            && err.contains("nimbus.yaml:"),
        "{err}"
    );
    assert!(
        env.requests_since(&shop.project, 0).is_empty(),
        "no call was made"
    );
}
