//! The Terraform JSON export of the shop: golden snapshot, determinism, agreement with what
//! lowering deploys directly, and checkov (`--framework terraform_json`) with no failed check
//! beyond `providers/gcp/checkov-skips.txt` (each with its reason).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

fn shop_tf() -> String {
    let g = common::shop();
    nimbus_gcp::main_tf_json(&g, &common::build_of(&g), &common::settings(&g)).unwrap()
}

#[test]
fn shop_configuration_matches_the_snapshot() {
    let path = common::repo().join("crates/nimbus-gcp/tests/snapshots/shop.main.tf.json");
    let got = shop_tf();
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (BLESS=1 writes it)", path.display()));
    assert!(
        got == want,
        "the shop's main.tf.json differs from {} (BLESS=1 rewrites it); first difference at line {}",
        path.display(),
        got.lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .map_or(got.lines().count().min(want.lines().count()) + 1, |i| i + 1)
    );
}

#[test]
fn the_configuration_is_byte_identical_for_the_same_input() {
    assert_eq!(shop_tf(), shop_tf());
}

#[test]
fn the_configuration_names_what_lowering_does() {
    let g = common::shop();
    let native = nimbus_gcp::lower(&g, &common::build_of(&g), &common::settings(&g)).unwrap();
    let doc: Value = serde_json::from_str(&shop_tf()).unwrap();
    let resources = doc["resource"].as_object().unwrap();
    let count: usize = resources
        .iter()
        .filter(|(t, _)| *t != "google_storage_bucket_object")
        .map(|(_, r)| r.as_object().unwrap().len())
        .sum();
    assert_eq!(
        count,
        native
            .iter()
            .filter(|r| nimbus_gcp::terraform::tf_type(&r.kind).is_some())
            .count()
    );
    // Every named object has the same name in Terraform (names do not depend on the project).
    let name_key = |t: &str| match t {
        "google_service_account" => "account_id",
        "google_api_gateway_api" => "api_id",
        "google_api_gateway_gateway" => "gateway_id",
        "google_api_gateway_api_config" => "api_config_id",
        _ => "name",
    };
    let mut tf_names: BTreeSet<(String, String)> = BTreeSet::new();
    for (t, rs) in resources {
        for r in rs.as_object().unwrap().values() {
            if let Some(n) = r.get(name_key(t)).and_then(Value::as_str) {
                tf_names.insert((t.clone(), n.replace("${var.project}", "my-project")));
            }
        }
    }
    for r in &native {
        let (Some(name), Some(t)) = (&r.physical_name, nimbus_gcp::terraform::tf_type(&r.kind))
        else {
            continue;
        };
        assert!(
            tf_names.contains(&(t.to_string(), name.clone())),
            "{} ({name}) is not named alike in main.tf.json",
            r.id
        );
    }
    // The packages are uploaded from next to the file, content-addressed.
    let objects = resources["google_storage_bucket_object"]
        .as_object()
        .unwrap();
    assert_eq!(objects.len(), g.functions.len());
    assert_eq!(
        objects["package_place_order"]["source"],
        "${path.module}/place-order.zip"
    );
    assert_eq!(doc["variable"]["project"]["default"], "my-project");
}

/// The skip list: check id → reason.
fn skips() -> BTreeMap<String, String> {
    let path = common::repo().join("providers/gcp/checkov-skips.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, why) = line
            .split_once('#')
            .unwrap_or_else(|| panic!("{}: `{line}` has no `# justification`", path.display()));
        assert!(
            why.trim().len() > 20,
            "{}: `{id}` needs a real justification",
            path.display()
        );
        out.insert(id.trim().to_string(), why.trim().to_string());
    }
    out
}

#[test]
fn checkov_fails_only_the_skipped_checks() {
    let Some(checkov) = common::venv_tool("checkov") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("main.tf.json");
    std::fs::write(&path, shop_tf()).unwrap();
    let output = Command::new(checkov)
        .current_dir(dir.path())
        .env("BC_SKIP_MAPPING", "TRUE")
        .args([
            "--framework",
            "terraform_json",
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
        summary["passed"].as_u64().unwrap_or(0) >= 10,
        "checkov checked too little: {summary}"
    );
    assert_eq!(
        summary["parsing_errors"], 0,
        "checkov could not parse: {summary}"
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
        .map(|(id, r)| format!("{id} on {r}"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "checkov failed checks that are not in providers/gcp/checkov-skips.txt:\n{}",
        unexpected.join("\n")
    );
    let failing: BTreeSet<&str> = failed.iter().map(|(id, _)| id.as_str()).collect();
    let stale: Vec<&String> = skips
        .keys()
        .filter(|id| !failing.contains(id.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "these checks pass now; remove them from providers/gcp/checkov-skips.txt: {stale:?}"
    );
}
