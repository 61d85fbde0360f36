//! The Terraform JSON export of the shop: golden snapshot, determinism, agreement with what
//! lowering deploys directly, and checkov (`--framework terraform_json`) with no failed check
//! beyond `providers/gcp/checkov-skips.txt` (each with its reason).

mod common;

use std::collections::BTreeSet;

use nimbus_gcp::kinds;
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

const ESCAPE_HATCHES: &str = r#"
version: 1
service: hatch
providers: { gcp: { project: my-project, region: europe-west1 } }
functions:
  mailer:
    handler: a.py:handler
    concurrency: { max: 5 }
    permissions:
      gcp:
        - { role: roles/aiplatform.user }
        - { role: roles/pubsub.publisher, resource: projects/mail/topics/outbox }
        - { role: roles/pubsub.subscriber, resource: projects/mail/subscriptions/inbox }
        - { role: roles/secretmanager.secretAccessor, resource: projects/mail/secrets/smtp }
        - { role: roles/storage.objectViewer, resource: projects/_/buckets/templates }
        - { role: roles/bigquery.dataViewer, resource: projects/warehouse }
      aws: [ { actions: [ses:SendEmail], resources: ["*"] } ]
    gcp:
      vpc_connector: projects/my-project/locations/europe-west1/connectors/shop
      egress: all
      min_instances: 2
  plain:
    handler: b.py:handler
    gcp: { vpc_connector: projects/my-project/locations/europe-west1/connectors/shop }
  aws-only:
    handler: b.py:handler
    only: { providers: [aws] }
"#;

/// Extra grants bind the function's own account on exactly what they name (the project when
/// they name nothing), the `gcp:` settings reach `serviceConfig`, and the Terraform export says
/// the same.
#[test]
fn escape_hatches_are_lowered_and_exported_alike() {
    let g = support::graph_str("gcp", ESCAPE_HATCHES);
    let build = support::build_of(&g);
    let rs = nimbus_gcp::lower(&g, &build, &common::settings(&g)).unwrap();
    assert!(!rs.iter().any(|r| r.id.contains("aws-only")));
    let extra: Vec<(&str, &Value)> = rs
        .iter()
        .filter(|r| r.id.contains("/mailer/extra/"))
        .map(|r| (r.kind.as_str(), &r.properties))
        .collect();
    let member =
        serde_json::json!({ "$ref": "gcp.iam.service_account/mailer", "output": "member" });
    let project = common::settings(&g).project;
    assert_eq!(
        extra,
        vec![
            (
                kinds::PROJECT_IAM_MEMBER,
                &serde_json::json!({ "project": project, "role": "roles/aiplatform.user", "member": member })
            ),
            (
                kinds::TOPIC_IAM_MEMBER,
                &serde_json::json!({ "topic": "projects/mail/topics/outbox", "role": "roles/pubsub.publisher", "member": member })
            ),
            (
                kinds::SUBSCRIPTION_IAM_MEMBER,
                &serde_json::json!({ "subscription": "projects/mail/subscriptions/inbox", "role": "roles/pubsub.subscriber", "member": member })
            ),
            (
                kinds::SECRET_IAM_MEMBER,
                &serde_json::json!({ "secret": "projects/mail/secrets/smtp", "role": "roles/secretmanager.secretAccessor", "member": member })
            ),
            (
                kinds::BUCKET_IAM_MEMBER,
                &serde_json::json!({ "bucket": "templates", "role": "roles/storage.objectViewer", "member": member })
            ),
            (
                kinds::PROJECT_IAM_MEMBER,
                &serde_json::json!({ "project": "warehouse", "role": "roles/bigquery.dataViewer", "member": member })
            ),
        ]
    );
    assert!(!rs.iter().any(|r| r.id.contains("/plain/extra/")));
    let function = |name: &str| {
        rs.iter()
            .find(|r| r.kind == kinds::FUNCTION && r.id.ends_with(&format!("/{name}")))
            .unwrap()
    };
    let mailer = function("mailer");
    let s = &mailer.properties["serviceConfig"];
    assert_eq!(
        s["vpcConnector"],
        "projects/my-project/locations/europe-west1/connectors/shop"
    );
    assert_eq!(s["vpcConnectorEgressSettings"], "ALL_TRAFFIC");
    assert_eq!(s["minInstanceCount"], 2);
    for r in rs.iter().filter(|r| r.id.contains("/mailer/extra/")) {
        assert!(
            mailer.dependencies().contains(&r.id),
            "grants precede the code: {}",
            r.id
        );
    }
    let plain = &function("plain").properties["serviceConfig"];
    assert_eq!(plain["vpcConnectorEgressSettings"], "PRIVATE_RANGES_ONLY");
    assert!(plain.get("minInstanceCount").is_none());

    let text = nimbus_gcp::main_tf_json(&g, &build, &common::settings(&g)).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let r = &doc["resource"];
    let projects: Vec<(&Value, &Value)> = r["google_project_iam_member"]
        .as_object()
        .unwrap()
        .values()
        .filter(|m| {
            m["member"]
                .as_str()
                .unwrap()
                .contains("google_service_account.mailer")
        })
        .map(|m| (&m["project"], &m["role"]))
        .collect();
    assert_eq!(
        projects,
        vec![
            (
                &serde_json::json!("${var.project}"),
                &serde_json::json!("roles/aiplatform.user")
            ),
            (
                &serde_json::json!("warehouse"),
                &serde_json::json!("roles/bigquery.dataViewer")
            ),
        ]
    );
    for (tf, key, value) in [
        (
            "google_pubsub_topic_iam_member",
            "topic",
            "projects/mail/topics/outbox",
        ),
        (
            "google_pubsub_subscription_iam_member",
            "subscription",
            "projects/mail/subscriptions/inbox",
        ),
        (
            "google_secret_manager_secret_iam_member",
            "secret_id",
            "projects/mail/secrets/smtp",
        ),
        ("google_storage_bucket_iam_member", "bucket", "templates"),
    ] {
        assert!(
            r[tf].as_object().unwrap().values().any(|m| m[key] == value),
            "{tf} on {value}: {}",
            r[tf]
        );
    }
    let f = r["google_cloudfunctions2_function"]
        .as_object()
        .unwrap()
        .values()
        .find(|f| f["name"].as_str().unwrap().ends_with("mailer"))
        .unwrap();
    assert_eq!(
        (
            &f["service_config"]["vpc_connector"],
            &f["service_config"]["vpc_connector_egress_settings"],
            &f["service_config"]["min_instance_count"]
        ),
        (
            &serde_json::json!("projects/my-project/locations/europe-west1/connectors/shop"),
            &serde_json::json!("ALL_TRAFFIC"),
            &serde_json::json!(2)
        )
    );
}
