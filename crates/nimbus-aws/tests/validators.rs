//! The real validators on the CloudFormation template of the shop with a secret: cfn-lint must
//! report no error, and checkov no failed check beyond `providers/aws/checkov-skips.txt` (each with its reason).
//!
//! The tools come from the project's venv: the directory of `NIMBUS_TEST_PYTHON` (which
//! `scripts/test` sets), else `<repo>/.tools/venv/bin/`. A missing tool fails the test, never
//! skips it: run `scripts/test` (or `source scripts/lib/tools.sh && ensure_venv`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use nimbus_test_support as support;
use serde_json::Value;

/// The template of the shop with a secret in a temporary directory.
fn shop_template() -> (tempfile::TempDir, PathBuf) {
    let g = support::shop("aws");
    assert_eq!(g.secret_readers().len(), 1);
    template_of(&g)
}

/// The shop with a custom domain and an existing table, queue and topic that trigger functions
/// (its `reports` bucket is existing already): what the shop's template does not declare.
fn external_template() -> (tempfile::TempDir, PathBuf) {
    let shop = std::fs::read_to_string(support::repo().join("examples/shop/nimbus.yaml")).unwrap();
    let manifest = shop
        .replacen("http:\n", "http:\n  domain: { name: api.example.com, certificate: { aws: \"arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\" } }\n", 1)
        .replacen(
            "resources:\n",
            r#"resources:
  ledger: { type: table, key: { id: string }, existing: { aws: "arn:aws:dynamodb:us-east-1:123456789012:table/ledger" } }
  jobs: { type: queue, existing: { aws: "arn:aws:sqs:us-east-1:123456789012:jobs" } }
  alerts: { type: topic, existing: { aws: "arn:aws:sns:us-east-1:123456789012:alerts" } }
"#,
            1,
        )
        .replacen(
            "functions:\n",
            r#"functions:
  audit-ledger:
    handler: orders/audit.py:handler
    triggers: [ { table: ledger }, { queue: jobs }, { topic: alerts } ]
"#,
            1,
        );
    template_of(&support::graph_str("aws", &manifest))
}

fn template_of(g: &nimbus_graph::AppGraph) -> (tempfile::TempDir, PathBuf) {
    let text = nimbus_aws::template(g, &support::build_of(g), &common::settings(g)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.template.json");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn cfn_lint_finds_no_error() {
    for (_dir, path) in [shop_template(), external_template()] {
        cfn_lint(&path);
    }
}

fn cfn_lint(path: &std::path::Path) {
    let output = Command::new(support::required_venv_tool("cfn-lint"))
        .arg("--format")
        .arg("json")
        .arg(path)
        .output()
        .expect("cfn-lint runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let matches: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "cfn-lint printed no JSON ({e}); exit {:?}\n{stdout}\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let describe = |m: &Value| {
        format!(
            "{} {} at line {}: {}",
            m["Level"], m["Rule"]["Id"], m["Location"]["Start"]["LineNumber"], m["Message"]
        )
    };
    let errors: Vec<String> = matches
        .iter()
        .filter(|m| m["Level"] == "Error")
        .map(describe)
        .collect();
    assert!(errors.is_empty(), "cfn-lint errors:\n{}", errors.join("\n"));
    // Warnings are reported, not fatal (e.g. a runtime the manifest chose nearing deprecation).
    for m in &matches {
        eprintln!("cfn-lint: {}", describe(m));
    }
    // Exit status: 0 clean, 2 errors (bit), 4 warnings, 8 informational.
    assert_eq!(
        output.status.code().unwrap_or(-1) & 3,
        0,
        "cfn-lint failed: {stdout}"
    );
}

#[test]
fn checkov_fails_only_the_skipped_checks() {
    for (_dir, path) in [shop_template(), external_template()] {
        support::assert_checkov_fails_only_skipped(
            &support::required_venv_tool("checkov"),
            "cloudformation",
            &path,
            "providers/aws/checkov-skips.txt",
            51,
        );
    }
}

/// The escape hatches' template (extra statements, arm64, reserved concurrency, a VPC): no
/// cfn-lint error; checkov fails nothing beyond the skip list, and the function in a VPC passes
/// CKV_AWS_117 (Lambda in a VPC) while the one outside fails only that listed check.
#[test]
fn escape_hatches_template_is_clean() {
    let g = support::graph_str("aws", common::ESCAPE_HATCHES);
    let text = nimbus_aws::template(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hatch.template.json");
    std::fs::write(&path, &text).unwrap();
    let lint = Command::new(support::required_venv_tool("cfn-lint"))
        .args(["--format", "json"])
        .arg(&path)
        .output()
        .expect("cfn-lint runs");
    let matches: Vec<Value> = serde_json::from_slice(&lint.stdout).expect("cfn-lint JSON");
    let errors: Vec<&Value> = matches.iter().filter(|m| m["Level"] == "Error").collect();
    assert!(errors.is_empty(), "cfn-lint errors: {errors:#?}");

    let out = Command::new(support::required_venv_tool("checkov"))
        .current_dir(dir.path())
        .env("BC_SKIP_MAPPING", "TRUE")
        // Not `--quiet`: the passed checks are needed too.
        .args([
            "--framework",
            "cloudformation",
            "--skip-download",
            "-o",
            "json",
            "-f",
        ])
        .arg(&path)
        .output()
        .expect("checkov runs");
    let report: Value = serde_json::from_slice(&out.stdout).expect("checkov JSON");
    let skips =
        std::fs::read_to_string(support::repo().join("providers/aws/checkov-skips.txt")).unwrap();
    let listed: Vec<&str> = skips
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let checks = |kind: &str| -> Vec<(String, String)> {
        report["results"][kind]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["check_id"].as_str().unwrap().to_string(),
                    c["resource"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let failed = checks("failed_checks");
    let unexpected: Vec<&(String, String)> = failed
        .iter()
        .filter(|(id, _)| !listed.contains(&id.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "checkov failures outside the skip list: {unexpected:?}"
    );
    let vpc_check = |list: &[(String, String)], fragment: &str| {
        list.iter()
            .any(|(id, r)| id == "CKV_AWS_117" && r.to_lowercase().contains(fragment))
    };
    assert!(
        vpc_check(&checks("passed_checks"), "mailer"),
        "{:?}",
        checks("passed_checks")
    );
    assert!(vpc_check(&failed, "plain"), "{failed:?}");
}
