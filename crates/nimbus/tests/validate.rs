//! `nimbus validate` through the real binary: one pass over every stage, the providers'
//! required settings, bounded templates and encodings.

use std::path::Path;
use std::process::Output;

mod support;

fn nimbus(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    support::nimbus_env(args, dir, env)
}

/// A project folder with `manifest` as `nimbus.yaml` and an `app.py`.
fn project(manifest: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nimbus.yaml"), manifest).unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "def handler(event, context):\n    return 1\n",
    )
    .unwrap();
    dir
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn every_stage_reports_in_one_run() {
    let dir = project(
        b"version: 1
service: shop
resources:
  jobs: { type: queue, visibility_timeout: 60s }
functions:
  worker:
    handler: app.py:handler
    timeout: 900s
    triggers: [ { queue: jobs } ]
  typo:
    handler: app.py:handler
    memory: lots
providers:
  gcp: { project: my-project, region: europe-west1 }
",
    );
    let out = nimbus(&["validate", "-p", "gcp"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // A type error, a reference check and the provider's limit, all at once.
    assert!(err.contains("nimbus.yaml:12:13"), "{err}");
    assert!(
        err.contains("queue `jobs` hides a received message for 1m"),
        "{err}"
    );
    assert!(err.contains("nimbus.yaml:9:"), "{err}");
    assert!(
        err.contains("limits queue-triggered functions to 540 s"),
        "{err}"
    );
    assert!(err.contains("nimbus.yaml:8:14"), "{err}");
    assert!(err.contains("found 3 errors"), "{err}");
}

#[test]
fn required_settings_are_checked_with_the_lines_to_add_and_read_from_the_environment() {
    let starter = b"version: 1\nservice: shop\nfunctions:\n  hello:\n    handler: app.py:handler\n";
    let dir = project(starter);
    let out = nimbus(&["validate", "-p", "gcp"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("needs `providers.gcp.project` and `providers.gcp.region`")
            && err.contains("nimbus.yaml:1:1")
            && err.contains("            providers:\n              gcp:\n                project: my-project-id\n                region: europe-west1\n")
            && err.contains("`GOOGLE_CLOUD_PROJECT` or `CLOUDSDK_CORE_PROJECT`"),
        "{err}"
    );
    // Deploy refuses the same, before anything else.
    let deploy = nimbus(&["deploy", "-p", "gcp"], dir.path(), &[]);
    assert_eq!(deploy.status.code(), Some(1));
    assert!(
        stderr(&deploy).contains("needs `providers.gcp.project`"),
        "{}",
        stderr(&deploy)
    );

    let env = [
        ("CLOUDSDK_CORE_PROJECT", "from-env"),
        ("GOOGLE_CLOUD_REGION", "europe-west1"),
    ];
    let out = nimbus(&["validate", "-p", "gcp"], dir.path(), &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // What the environment gave is what a deploy would use.
    let graph = nimbus(&["graph", "-p", "gcp"], dir.path(), &env);
    let graph = String::from_utf8_lossy(&graph.stdout);
    assert!(graph.contains("from-env"), "{graph}");

    // With a `providers:` block, the message points at it and indents the lines to go there.
    let dir = project(b"version: 1\nservice: shop\nfunctions:\n  hello:\n    handler: app.py:handler\nproviders:\n  azure:\n    location: westeurope\n");
    let out = nimbus(&["validate", "-p", "azure"], dir.path(), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("needs `providers.azure.subscription`")
            && err.contains("nimbus.yaml:7:3")
            && err.contains("add under `azure:` (line 7):\n                subscription: ")
            && err.contains("`AZURE_SUBSCRIPTION_ID`"),
        "{err}"
    );
}

#[test]
fn template_bombs_end_with_an_error_at_the_template() {
    let dir = project(
        b"version: 1
service: shop
functions:
  hello:
    handler: app.py:handler
    description: \"{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}\"
  again:
    handler: app.py:handler
    description: \"{% for a in range(100000) %}{{ 'x' * 90000 }}{% endfor %}\"
",
    );
    let out = nimbus(&["validate"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("template does too much work: it ran past 20000 steps")
            && err.contains("nimbus.yaml:6:18"),
        "{err}"
    );
    assert!(
        err.contains("`*` is not available in manifest templates")
            && err.contains("nimbus.yaml:9:54"),
        "{err}"
    );
}

#[test]
fn encodings_a_user_really_has() {
    // A byte-order mark (Windows editors) is fine; columns stay those the editor shows.
    let dir = project(b"\xEF\xBB\xBFversion: 1\nservice: shop\nfunctions:\n  hello:\n    handler: app.py:handler\n");
    let out = nimbus(&["validate"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Latin-1 text: an error at the first bad byte, not "no manifest to read".
    let dir = project(b"version: 1\nservice: shop\nfunctions:\n  hello:\n    handler: app.py:handler\n    description: \"caf\xE9\"\n");
    let out = nimbus(&["validate"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("not valid UTF-8: byte `0xE9` at line 6, column 22")
            && err.contains("nimbus.yaml:6:22"),
        "{err}"
    );

    // Old Mac line endings: the right line under the caret.
    let dir = project(b"version: 1\rservice: shop\rfunctions:\r  hello:\r    handler: app.py:handler\r    memory: lots\r");
    let out = nimbus(&["validate"], dir.path(), &[]);
    let err = stderr(&out);
    assert!(
        err.contains("6 |     memory: lots\n  |             ^^^^"),
        "{err}"
    );
}

#[test]
fn a_missing_handler_is_reported_at_the_function() {
    let dir = project(b"version: 1\nservice: shop\nfunctions:\n  hello:\n    memory: 256\n    triggers:\n      - http: { method: GET, path: /hello }\n");
    let out = nimbus(&["validate"], dir.path(), &[]);
    let err = stderr(&out);
    assert!(
        err.contains("function `hello` has no `handler`") && err.contains("nimbus.yaml:4:3"),
        "{err}"
    );
}
