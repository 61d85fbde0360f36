//! checkov on a generated template, held to a provider's skip list
//! (`providers/<id>/checkov-skips.txt`: one `CHECK_ID  # reason` a line): every failed check
//! must be listed, and every listed check must still fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `checkov` (a venv tool) with `--framework framework` on `file`, from `file`'s directory,
/// and asserts that it parsed the file, passed at least `min_passed` checks, and failed exactly
/// the checks of the skip list `skips` (a path relative to the repository).
pub fn assert_checkov_fails_only_skipped(
    checkov: &Path,
    framework: &str,
    file: &Path,
    skips: &str,
    min_passed: u64,
) {
    check(checkov, framework, file, skips, min_passed, true);
}

/// As [`assert_checkov_fails_only_skipped`], for a file that holds only some of the resources
/// the skip list is about: a skipped check need not fail there.
pub fn assert_checkov_fails_nothing_but_skipped(
    checkov: &Path,
    framework: &str,
    file: &Path,
    skips: &str,
    min_passed: u64,
) {
    check(checkov, framework, file, skips, min_passed, false);
}

fn check(
    checkov: &Path,
    framework: &str,
    file: &Path,
    skips: &str,
    min_passed: u64,
    every_skip_fails: bool,
) {
    let output = Command::new(checkov)
        .current_dir(file.parent().expect("a file in a directory"))
        .env("BC_SKIP_MAPPING", "TRUE")
        .args([
            "--framework",
            framework,
            "--skip-download",
            "--quiet",
            "-o",
            "json",
            "-f",
        ])
        .arg(file)
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
        summary["passed"].as_u64().unwrap_or(0) >= min_passed,
        "checkov checked too little: {summary}"
    );
    assert_eq!(
        summary["parsing_errors"],
        0,
        "checkov could not parse {}: {summary}",
        file.display()
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
    let listed = skip_list(&crate::repo().join(skips));
    let unexpected: Vec<String> = failed
        .iter()
        .filter(|(id, _)| !listed.contains_key(id))
        .map(|(id, resource)| format!("{id} on {resource}"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "checkov failed checks that are not in {skips}:\n{}",
        unexpected.join("\n")
    );
    let failing: BTreeSet<&str> = failed.iter().map(|(id, _)| id.as_str()).collect();
    let stale: Vec<&String> = listed
        .keys()
        .filter(|id| !failing.contains(id.as_str()))
        .collect();
    assert!(
        !every_skip_fails || stale.is_empty(),
        "these checks pass now; remove them from {skips}: {stale:?}"
    );
}

/// The skip list at `path`: check id → reason (each reason a real sentence).
fn skip_list(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
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
