//! The real validators on the shop's CloudFormation template: cfn-lint must report no error,
//! and checkov no failed check beyond `providers/aws/checkov-skips.txt` (each with its reason).
//!
//! The tools come from the project's venv: the directory of `NIMBUS_TEST_PYTHON` (which
//! `scripts/test` sets), else `<repo>/.tools/venv/bin/`. A missing tool fails the test, never
//! skips it: run `scripts/test` (or `source scripts/lib/tools.sh && ensure_venv`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn tool(name: &str) -> PathBuf {
    let dir = match std::env::var_os("NIMBUS_TEST_PYTHON") {
        Some(python) => PathBuf::from(python)
            .parent()
            .expect("NIMBUS_TEST_PYTHON is a file path")
            .to_path_buf(),
        None => common::repo().join(".tools/venv/bin"),
    };
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "`{name}` is not installed at {}: run scripts/test (it installs tests/requirements.txt into .tools/venv)",
        path.display()
    );
    path
}

/// The shop's template in a temporary directory.
fn shop_template() -> (tempfile::TempDir, PathBuf) {
    let g = common::shop();
    let text = nimbus_aws::template(&g, &common::build_of(&g), &common::settings(&g)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.template.json");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn cfn_lint_finds_no_error() {
    let (_dir, path) = shop_template();
    let output = Command::new(tool("cfn-lint"))
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

/// The skip list: check id → reason.
fn skips() -> BTreeMap<String, String> {
    let path = common::repo().join("providers/aws/checkov-skips.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, why) = line
            .split_once('#')
            .unwrap_or_else(|| panic!("{}: `{line}` has no `# justification`", path.display()));
        let why = why.trim();
        assert!(
            why.len() > 20,
            "{}: `{id}` needs a real justification",
            path.display()
        );
        out.insert(id.trim().to_string(), why.to_string());
    }
    out
}

#[test]
fn checkov_fails_only_the_skipped_checks() {
    let (dir, path) = shop_template();
    let output = Command::new(tool("checkov"))
        .current_dir(dir.path())
        .env("BC_SKIP_MAPPING", "TRUE")
        .args([
            "--framework",
            "cloudformation",
            "--skip-download",
            "--quiet",
            "-o",
            "json",
            "-f",
        ])
        .arg(&path)
        .output()
        .expect("checkov runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON ({e}); exit {:?}\n{stdout}\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let summary = &report["summary"];
    assert!(
        summary["passed"].as_u64().unwrap_or(0) > 50,
        "checkov checked too little: {summary}"
    );
    assert_eq!(
        summary["parsing_errors"], 0,
        "checkov could not parse the template: {summary}"
    );
    let failed: Vec<(String, String)> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["check_id"].as_str().unwrap_or_default().to_string(),
                c["resource"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let skips = skips();
    let unexpected: Vec<String> = failed
        .iter()
        .filter(|(id, _)| !skips.contains_key(id))
        .map(|(id, resource)| format!("{id} on {resource}"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "checkov failed checks that are not in providers/aws/checkov-skips.txt:\n{}",
        unexpected.join("\n")
    );
    let failing: BTreeSet<&str> = failed.iter().map(|(id, _)| id.as_str()).collect();
    let stale: Vec<&String> = skips
        .keys()
        .filter(|id| !failing.contains(id.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "these checks pass now; remove them from providers/aws/checkov-skips.txt: {stale:?}"
    );
}
