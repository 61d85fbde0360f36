//! The `nimbus` binary end to end: commands, exit codes, stdout/stderr, JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;
use support::nimbus_env;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn nimbus(args: &[&str], dir: &Path) -> Output {
    nimbus_env(args, dir, &[])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SHOP: &str = "examples/shop/nimbus.yaml";

/// A temp project with `manifest` as its `nimbus.yaml` and a Python handler `app.py`.
fn project(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "def handler(e, c):\n    return 1\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("nimbus.yaml"), manifest).unwrap();
    dir
}

#[test]
fn shop_validates_for_every_provider() {
    // Azure included: its `table` trigger (audit-orders) is the Cosmos DB change feed. Azure's
    // subscription comes from the environment, as a deploy would read it.
    let subscription = [(
        "AZURE_SUBSCRIPTION_ID",
        "00000000-0000-0000-0000-000000000000",
    )];
    for provider in ["local", "aws", "gcp", "azure"] {
        let out = nimbus_env(
            &["validate", "-f", SHOP, "-p", provider],
            &repo(),
            &subscription,
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{provider}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains(&format!("is valid for {provider}")),
            "{}",
            text(&out.stdout)
        );
        // place-order's extra grant is AWS-only: the clouds without one say so, once.
        let said = text(&out.stderr)
            .matches(&format!(
                "function `place-order` has extra permissions for other providers but none for {provider}"
            ))
            .count();
        let expected = usize::from(matches!(provider, "gcp" | "azure"));
        assert_eq!(said, expected, "{provider}: {}", text(&out.stderr));
    }
}

#[test]
fn invalid_manifest_exits_1_with_location_on_stderr() {
    let dir = project(
        "version: 1\nservice: s\nfunctions:\n  f:\n    handlr: app.py:handler\n  g:\n    handler: app.py:handler\n    memory: lots\n",
    );
    let out = nimbus(&["validate"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "data only on stdout: {}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert!(err.contains("nimbus.yaml:5:5"), "{err}");
    assert!(err.contains("did you mean `handler`?"), "{err}");
    assert!(
        err.contains("nimbus.yaml:8:13"),
        "both errors are reported: {err}"
    );
    assert!(err.contains("found 2 errors"), "{err}");
    assert!(
        !err.contains('\x1b'),
        "no colour when stderr is not a terminal"
    );

    let out = nimbus(&["validate", "--output", "json"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["valid"], false);
    assert_eq!(json["errors"], 2);
    assert_eq!(json["diagnostics"][0]["span"]["line"], 5);
    assert_eq!(json["diagnostics"][0]["file"], "nimbus.yaml");
}

#[test]
fn provider_limits_fail_only_for_that_provider() {
    let dir = project(
        "version: 1\nservice: s\nresources:\n  t: { type: topic }\nfunctions:\n  f:\n    handler: app.py:handler\n    timeout: 10m\n    triggers: [ { topic: t } ]\n",
    );
    assert_eq!(
        nimbus(&["validate", "-p", "aws"], dir.path()).status.code(),
        Some(0)
    );
    let out = nimbus(&["validate", "-p", "gcp"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("nimbus.yaml:8:14") && err.contains("540 s"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_nimbus"))
        .args(["validate"])
        .current_dir(dir.path())
        .env("NIMBUS_PROVIDER", "gcp")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "NIMBUS_PROVIDER selects the provider"
    );
}

#[test]
fn graph_is_deterministic_and_follows_the_stage() {
    let a = nimbus(
        &["graph", "-f", SHOP, "-p", "aws", "--format", "json"],
        &repo(),
    );
    let b = nimbus(
        &["graph", "-f", SHOP, "-p", "aws", "--output", "json"],
        &repo(),
    );
    assert_eq!(a.status.code(), Some(0), "{}", text(&a.stderr));
    assert_eq!(
        a.stdout, b.stdout,
        "the same manifest gives byte-identical graphs"
    );
    let graph: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(graph["functions"].as_object().unwrap().len(), 7);
    assert_eq!(
        graph["functions"]["place-order"]["env"]["LOG_LEVEL"], "debug",
        "dev stage var"
    );
    assert_eq!(graph["functions"]["place-order"]["memory_mb"], 256);
    let prod = nimbus(
        &[
            "graph", "-f", SHOP, "-p", "aws", "-s", "prod", "--format", "json",
        ],
        &repo(),
    );
    let prod: serde_json::Value = serde_json::from_slice(&prod.stdout).unwrap();
    assert_eq!(
        prod["functions"]["place-order"]["memory_mb"], 512,
        "prod stage defaults"
    );
    assert_eq!(prod["functions"]["place-order"]["env"]["LOG_LEVEL"], "info");
    assert_ne!(prod["hash"], graph["hash"]);
    assert_eq!(
        prod["functions"]["get-order"]["triggers"][0]["path"],
        "/orders/{id}"
    );

    let yaml = nimbus(&["graph", "-f", SHOP], &repo());
    assert_eq!(yaml.status.code(), Some(0));
    assert!(
        text(&yaml.stdout).starts_with("service: shop\nstage: dev\nprovider: local\n"),
        "{}",
        text(&yaml.stdout)
    );
}

#[test]
fn schema_matches_the_checked_in_file() {
    let out = nimbus(&["schema"], &repo());
    assert_eq!(out.status.code(), Some(0));
    let checked_in = std::fs::read_to_string(repo().join("schemas/nimbus.schema.json")).unwrap();
    assert!(
        text(&out.stdout) == checked_in,
        "`nimbus schema` differs from schemas/nimbus.schema.json"
    );
}

#[test]
fn init_writes_a_valid_project_and_never_overwrites() {
    for template in ["python", "node"] {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("My_App");
        let out = nimbus(
            &["init", project.to_str().unwrap(), "--template", template],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let manifest = std::fs::read_to_string(project.join("nimbus.yaml")).unwrap();
        assert!(manifest.contains("service: my-app"), "{manifest}");
        // Editors validate against the schema file init wrote, offline: no address to fetch.
        assert_eq!(
            manifest.lines().next(),
            Some("# yaml-language-server: $schema=./nimbus.schema.json")
        );
        let schema = std::fs::read_to_string(project.join("nimbus.schema.json")).unwrap();
        let printed = nimbus(&["schema"], dir.path());
        assert_eq!(schema, text(&printed.stdout), "init writes `nimbus schema`");
        assert!(
            !schema.contains("https://nimbus.dev"),
            "no stranger's address"
        );
        for provider in ["local", "aws"] {
            let v = nimbus(&["validate", "-p", provider], &project);
            assert_eq!(
                v.status.code(),
                Some(0),
                "{template}/{provider}: {}",
                text(&v.stderr)
            );
        }
        // The clouds' required settings are not in the starter: validate refuses as deploy
        // would, naming them; from the environment they do.
        for (provider, env) in [
            (
                "gcp",
                &[
                    ("GOOGLE_CLOUD_PROJECT", "my-project"),
                    ("CLOUDSDK_FUNCTIONS_REGION", "europe-west1"),
                ][..],
            ),
            (
                "azure",
                &[
                    (
                        "AZURE_SUBSCRIPTION_ID",
                        "00000000-0000-0000-0000-000000000000",
                    ),
                    ("AZURE_DEFAULTS_LOCATION", "westeurope"),
                ][..],
            ),
        ] {
            let v = nimbus(&["validate", "-p", provider], &project);
            assert_eq!(v.status.code(), Some(1), "{template}/{provider}");
            assert!(
                text(&v.stderr).contains(&format!("needs `providers.{provider}.")),
                "{}",
                text(&v.stderr)
            );
            let v = nimbus_env(&["validate", "-p", provider], &project, env);
            assert_eq!(
                v.status.code(),
                Some(0),
                "{template}/{provider}: {}",
                text(&v.stderr)
            );
        }
        std::fs::write(project.join("nimbus.yaml"), "mine").unwrap();
        let again = nimbus(
            &["init", project.to_str().unwrap(), "--template", template],
            dir.path(),
        );
        assert_eq!(again.status.code(), Some(1));
        assert!(
            text(&again.stderr).contains("nothing was written"),
            "{}",
            text(&again.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(project.join("nimbus.yaml")).unwrap(),
            "mine"
        );
    }
}

#[test]
fn user_mistakes_exit_1_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let out = nimbus(&["validate"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nimbus init"),
        "{}",
        text(&out.stderr)
    );

    let out = nimbus(&["validate", "-f", SHOP, "-p", "oracle"], &repo());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown provider `oracle`"));

    let out = nimbus(&["validate", "--frobnicate"], &repo());
    assert_eq!(
        out.status.code(),
        Some(1),
        "usage errors are user errors, not internal ones"
    );

    let out = nimbus(&["validate", "-f", SHOP, "-s", "Prod"], &repo());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("invalid stage"));
}

#[test]
fn help_teaches_with_examples() {
    for cmd in [
        vec!["--help"],
        vec!["validate", "--help"],
        vec!["graph", "--help"],
        vec!["init", "--help"],
        vec!["schema", "--help"],
    ] {
        let out = nimbus(&cmd, &repo());
        assert_eq!(out.status.code(), Some(0));
        assert!(
            text(&out.stdout).contains("Example"),
            "{cmd:?} has no example"
        );
    }
}

#[test]
fn build_names_each_secret_left_out_once_on_stderr_and_in_json() {
    // Two functions in one folder: the `.env` is left out of both and named once.
    let dir = project(
        "version: 1\nservice: s\nfunctions:\n  f:\n    handler: app.py:handler\n  g:\n    handler: app.py:handler\n",
    );
    std::fs::write(dir.path().join(".env"), "TOKEN=1\n").unwrap();
    std::os::unix::fs::symlink(".env", dir.path().join("config.txt")).unwrap();
    let out = nimbus(&["build", "-p", "aws"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let notes: Vec<&str> = err.lines().filter(|l| l.contains("left out")).collect();
    assert_eq!(
        notes,
        [
            "  note      left out .env: looks like a secret; add it to package.include to ship it anyway",
            "  note      left out config.txt: looks like a secret (it is a link to `.env`); add it to package.include to ship it anyway",
        ],
        "{err}"
    );
    let out = nimbus(&["build", "-p", "aws", "--output", "json"], dir.path());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["left_out"],
        serde_json::json!([{ "path": ".env" }, { "path": "config.txt", "why": "it is a link to `.env`" }])
    );
}

#[test]
fn build_reports_built_then_cached_and_fails_cleanly() {
    let dir = project("version: 1\nservice: s\nfunctions:\n  f:\n    handler: app.py:handler\n");
    let out = nimbus(&["build", "-p", "aws", "--output", "json"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["built"], serde_json::json!(["f"]));
    assert!(dir.path().join(".nimbus/build/aws/dev/f.zip").is_file());
    let sha = json["build"]["functions"]["f"]["sha256"].clone();

    let out = nimbus(&["build", "-p", "aws"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("cached    f"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("built 0 and reused 1 package"),
        "{}",
        text(&out.stdout)
    );

    let out = nimbus(
        &["build", "-p", "aws", "--force", "--output", "json"],
        dir.path(),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["built"], serde_json::json!(["f"]));
    assert_eq!(
        json["build"]["functions"]["f"]["sha256"], sha,
        "a forced rebuild gives the same bytes"
    );

    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
    let out = nimbus(&["build", "-p", "aws"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("outside the function's directory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_cloudformation_template_follows_the_manifest() {
    let dir = project(
        "version: 1\nservice: s\nfunctions:\n  f:\n    handler: app.py:handler\n    memory: 256\n",
    );
    let template = dir.path().join(".nimbus/build/aws/dev/template.json");
    assert_eq!(
        nimbus(&["build", "-p", "aws"], dir.path()).status.code(),
        Some(0)
    );
    let first = std::fs::read_to_string(&template).unwrap();
    assert!(first.contains("\"MemorySize\": 256"), "{first}");
    // Unchanged: the template is reused byte for byte.
    assert_eq!(
        nimbus(&["build", "-p", "aws"], dir.path()).status.code(),
        Some(0)
    );
    assert_eq!(std::fs::read_to_string(&template).unwrap(), first);
    // Changed: it is written again.
    std::fs::write(
        dir.path().join("nimbus.yaml"),
        "version: 1\nservice: s\nfunctions:\n  f:\n    handler: app.py:handler\n    memory: 512\n",
    )
    .unwrap();
    assert_eq!(
        nimbus(&["build", "-p", "aws"], dir.path()).status.code(),
        Some(0)
    );
    assert!(
        std::fs::read_to_string(&template)
            .unwrap()
            .contains("\"MemorySize\": 512")
    );
}

#[test]
fn build_for_gcp_writes_the_terraform_configuration() {
    let dir = project(
        "version: 1\nservice: s\nfunctions:\n  f:\n    handler: app.py:handler\n    memory: 512\n    triggers: [ { http: { method: GET, path: /f } } ]\nproviders:\n  gcp: { project: my-proj, region: us-central1 }\n",
    );
    let out = nimbus(&["build", "-p", "gcp"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("wrote the Terraform configuration"),
        "{}",
        text(&out.stdout)
    );
    let path = dir.path().join(".nimbus/build/gcp/dev/main.tf.json");
    let tf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let f = &tf["resource"]["google_cloudfunctions2_function"]["f"];
    assert_eq!(f["service_config"]["available_memory"], "512Mi");
    assert_eq!(f["name"], "s-dev-f");
    assert_eq!(tf["variable"]["project"]["default"], "my-proj");
    assert!(
        tf["resource"]["google_storage_bucket_object"]["package_f"]["source"]
            .as_str()
            .unwrap()
            .ends_with("/f.zip")
    );
}

#[test]
fn build_for_azure_writes_the_arm_template_and_the_entry_points() {
    let dir = project(
        "version: 1\nservice: s\nfunctions:\n  f:\n    handler: app.py:handler\n    memory: 1024\n    triggers:\n      - http: { method: GET, path: /hello }\nproviders:\n  azure: { location: westeurope, subscription: 00000000-0000-0000-0000-000000000001 }\n",
    );
    let out = nimbus(&["build", "-p", "azure", "--output", "json"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let build = dir.path().join(".nimbus/build/azure/dev");
    assert!(
        json["template"]
            .as_str()
            .unwrap()
            .ends_with(".nimbus/build/azure/dev/azuredeploy.json"),
        "{json}"
    );
    let template: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(build.join("azuredeploy.json")).unwrap())
            .unwrap();
    let site = template["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Microsoft.Web/sites")
        .unwrap();
    assert_eq!(
        site["properties"]["functionAppConfig"]["scaleAndConcurrency"]["instanceMemoryMB"],
        2048
    );
    assert_eq!(
        template["parameters"]["suffix"]["defaultValue"]
            .as_str()
            .unwrap()
            .len(),
        8
    );
    let app = std::fs::read_to_string(build.join("azure/f/function_app.py")).unwrap();
    assert!(
        app.contains("@app.route(route=\"hello\", methods=[\"GET\"]"),
        "{app}"
    );
    let host = std::fs::read_to_string(build.join("azure/f/host.json")).unwrap();
    assert!(host.contains("\"routePrefix\": \"\""), "{host}");

    // A table trigger is the Cosmos DB trigger on the table's container.
    let dir = project(
        "version: 1\nservice: s\nresources:\n  t: { type: table, key: { id: string } }\nfunctions:\n  f:\n    handler: app.py:handler\n    triggers: [ { table: { name: t } } ]\n",
    );
    let out = nimbus(&["build", "-p", "azure"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let app = std::fs::read_to_string(
        dir.path()
            .join(".nimbus/build/azure/dev/azure/f/function_app.py"),
    )
    .unwrap();
    assert!(
        app.contains("@app.cosmos_db_trigger(") && app.contains("container_name=\"t\""),
        "{app}"
    );
}

#[test]
fn the_manifest_is_found_in_the_folders_above_like_cargo_finds_cargo_toml() {
    let dir = project(
        "version: 1\nservice: found\nfunctions:\n  hi:\n    handler: app.py:handler\n    triggers: [ { http: { method: GET, path: /hi } } ]\n",
    );
    let deep = dir.path().join("src/deeper");
    std::fs::create_dir_all(&deep).unwrap();
    let out = nimbus(&["validate"], &deep);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("../../nimbus.yaml is valid for local (service `found`"),
        "handler paths resolve against the manifest's folder: {}",
        text(&out.stdout)
    );
    // `-f` takes the manifest's folder too.
    let out = nimbus(&["validate", "-f", "src/.."], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // `nimbus.yml`, for Serverless Framework habits; both names in one folder is ambiguous.
    std::fs::copy(
        dir.path().join("nimbus.yaml"),
        dir.path().join("nimbus.yml"),
    )
    .unwrap();
    let out = nimbus(&["validate"], &deep);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("has both `") && err.contains("which one is the manifest?"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("nimbus.yaml")).unwrap();
    let out = nimbus(&["graph", "--format", "json"], &deep);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // No manifest here or above: where it looked, and how to make one.
    let empty = tempfile::tempdir().unwrap();
    let out = nimbus(&["validate"], empty.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("no `nimbus.yaml` or `nimbus.yml` in `")
            && err.contains("or any folder above it")
            && err.contains("nimbus init"),
        "{err}"
    );
}

#[test]
fn dash_f_with_a_function_name_says_which_command_was_meant() {
    let dir = project(
        "version: 1\nservice: sls\nfunctions:\n  place-order:\n    handler: app.py:handler\n    env: { KEY: \"{{ env.NIMBUS_TEST_UNSET }}\" }\n    triggers: [ { http: { method: POST, path: /orders } } ]\n",
    );
    for (args, meant) in [
        (
            &["logs", "-f", "place-order"][..],
            "`nimbus logs place-order`",
        ),
        (
            &["invoke", "-f", "place-order"][..],
            "`nimbus invoke place-order`",
        ),
        (&["deploy", "-f", "place-order"][..], "`nimbus deploy`"),
        (
            &["info", "-f", "place-order", "-p", "aws"][..],
            "`nimbus info`",
        ),
    ] {
        let out = nimbus(args, dir.path());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("there is no file `place-order`: `-f` is `--file`, the manifest, but `place-order` is a function of nimbus.yaml")
                && err.contains(&format!("did you mean {meant}?")),
            "{args:?}: {err}"
        );
    }
    // Any other missing file is just that.
    let out = nimbus(&["validate", "-f", "nope.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("no manifest to read") && !err.contains("did you mean"),
        "{err}"
    );
}

#[test]
fn local_deployments_are_addressed_without_a_manifest_only_locally() {
    let empty = tempfile::tempdir().unwrap();
    let out = nimbus(&["info", "--all"], empty.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "no local deployments are recorded on this machine"
    );
    let out = nimbus(&["remove", "--service", "ghost", "--yes"], empty.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no local deployment of `ghost` is recorded on this machine"),
        "{}",
        text(&out.stderr)
    );
    for args in [
        &["info", "--all", "-p", "aws"][..],
        &["logs", "--service", "shop", "-p", "gcp"][..],
    ] {
        let out = nimbus(args, empty.path());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains("finds local deployments (`-p local`)"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
