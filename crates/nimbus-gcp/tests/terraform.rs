//! The Terraform JSON export of the shop: golden snapshot, determinism, agreement with what
//! lowering deploys directly, and checkov (`--framework terraform_json`) with no failed check
//! beyond `providers/gcp/checkov-skips.txt` (each with its reason).

mod common;

use std::collections::BTreeSet;

use nimbus_test_support as support;
use serde_json::Value;

fn shop_tf() -> String {
    let g = support::shop("gcp");
    nimbus_gcp::main_tf_json(&g, &support::build_of(&g), &common::settings(&g)).unwrap()
}

#[test]
fn shop_configuration_matches_the_snapshot() {
    support::assert_snapshot(
        &support::repo().join("crates/nimbus-gcp/tests/snapshots/shop.main.tf.json"),
        &shop_tf(),
        "the shop's main.tf.json",
    );
}

#[test]
fn the_configuration_is_byte_identical_for_the_same_input() {
    assert_eq!(shop_tf(), shop_tf());
}

#[test]
fn the_configuration_names_what_lowering_does() {
    let g = support::shop("gcp");
    let native = nimbus_gcp::lower(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
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
        "google_secret_manager_secret" => "secret_id",
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

#[test]
fn checkov_fails_only_the_skipped_checks() {
    let checkov = support::required_venv_tool("checkov");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("main.tf.json");
    std::fs::write(&path, shop_tf()).unwrap();
    support::assert_checkov_fails_only_skipped(
        &checkov,
        "terraform_json",
        &path,
        "providers/gcp/checkov-skips.txt",
        10,
    );
}

#[test]
fn secrets_are_exported_by_name_with_their_grant_and_the_functions_secret_variables() {
    // The shop's secret: `payment-key`, read by charge-payment as `PAYMENT_API_KEY`.
    let g = support::shop("gcp");
    let text = nimbus_gcp::main_tf_json(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let r = &doc["resource"];
    let secrets = r["google_secret_manager_secret"].as_object().unwrap();
    assert_eq!(secrets.len(), 1);
    let (label, secret) = secrets.iter().next().unwrap();
    assert_eq!(secret["secret_id"], "shop-dev-payment-key");
    assert_eq!(secret["project"], "${var.project}");
    assert_eq!(secret["replication"], serde_json::json!({ "auto": {} }));
    // A secret version (a value) is never part of the configuration.
    assert!(r.get("google_secret_manager_secret_version").is_none());

    let members = r["google_secret_manager_secret_iam_member"]
        .as_object()
        .unwrap();
    assert_eq!(members.len(), 1);
    let member = members.values().next().unwrap();
    assert_eq!(member["role"], "roles/secretmanager.secretAccessor");
    assert_eq!(
        member["secret_id"],
        format!("${{google_secret_manager_secret.{label}.id}}")
    );
    let account = member["member"].as_str().unwrap();
    assert!(
        account.starts_with("${google_service_account.") && account.ends_with(".member}"),
        "{account}"
    );

    let functions = r["google_cloudfunctions2_function"].as_object().unwrap();
    let with_secrets: Vec<(&String, &Value)> = functions
        .iter()
        .filter(|(_, f)| {
            f["service_config"]
                .get("secret_environment_variables")
                .is_some()
        })
        .collect();
    assert_eq!(with_secrets.len(), 1);
    assert_eq!(
        with_secrets[0].1["service_config"]["secret_environment_variables"],
        serde_json::json!([{
            "key": "PAYMENT_API_KEY",
            "project_id": "${var.project}",
            "secret": format!("${{google_secret_manager_secret.{label}.secret_id}}"),
            "version": "latest",
        }])
    );
}
