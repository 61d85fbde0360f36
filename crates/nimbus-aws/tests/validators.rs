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

/// The shop with one secret, the payment provider's key that `charge-payment` reads (a
/// Secrets Manager secret without a value, and a policy naming exactly its ARN).
fn shop_with_a_secret() -> String {
    let shop = std::fs::read_to_string(support::repo().join("examples/shop/nimbus.yaml")).unwrap();
    let with_env = shop.replacen(
        "  charge-payment:\n",
        "  charge-payment:\n    env: { PAYMENT_API_KEY: { secret: payment-key } }\n",
        1,
    );
    assert_ne!(with_env, shop, "the shop has a `charge-payment` function");
    format!(
        "{with_env}\nsecrets:\n  payment-key: {{ description: the payment provider's API key }}\n"
    )
}

/// The template of the shop with a secret in a temporary directory.
fn shop_template() -> (tempfile::TempDir, PathBuf) {
    let g = support::graph_str("aws", &shop_with_a_secret());
    assert_eq!(g.secret_readers().len(), 1);
    let text = nimbus_aws::template(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.template.json");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn cfn_lint_finds_no_error() {
    let (_dir, path) = shop_template();
    let output = Command::new(support::required_venv_tool("cfn-lint"))
        .arg("--format")
        .arg("json")
        .arg(&path)
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
    let (_dir, path) = shop_template();
    support::assert_checkov_fails_only_skipped(
        &support::required_venv_tool("checkov"),
        "cloudformation",
        &path,
        "providers/aws/checkov-skips.txt",
        51,
    );
}
