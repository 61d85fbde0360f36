//! The CloudFormation export of the shop: golden snapshot, determinism, and agreement with
//! what lowering deploys directly. (`validators.rs` runs cfn-lint and checkov on it.)

mod common;

use std::collections::BTreeMap;

use nimbus_aws::{cloudformation, kinds};
use nimbus_test_support as support;
use serde_json::Value;

fn shop_template() -> String {
    let g = support::shop("aws");
    nimbus_aws::template(&g, &support::build_of(&g), &common::settings(&g)).unwrap()
}

#[test]
fn shop_template_matches_the_snapshot() {
    support::assert_snapshot(
        &support::repo().join("crates/nimbus-aws/tests/snapshots/shop.template.json"),
        &shop_template(),
        "the shop's template",
    );
}

#[test]
fn the_template_is_byte_identical_for_the_same_input() {
    assert_eq!(shop_template(), shop_template());
}

/// `v` with `Fn::Sub` of pseudo parameters and `Ref` of pseudo parameters evaluated.
fn eval(v: &Value) -> Value {
    if let Some(s) = v.get("Fn::Sub").and_then(Value::as_str) {
        return Value::String(
            s.replace("${AWS::Partition}", "aws")
                .replace("${AWS::Region}", "us-east-1")
                .replace("${AWS::AccountId}", "123456789012")
                .replace("${!", "${"),
        );
    }
    match v.get("Ref").and_then(Value::as_str) {
        Some("AWS::AccountId") => return "123456789012".into(),
        Some("AWS::Region") => return "us-east-1".into(),
        _ => {}
    }
    v.clone()
}

#[test]
fn the_template_names_and_grants_what_lowering_does() {
    let g = support::shop("aws");
    let native = nimbus_aws::lower(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    let doc: Value = serde_json::from_str(&shop_template()).unwrap();
    let resources = doc["Resources"].as_object().unwrap();

    // Names: every named native object has a template resource with the same name.
    let name_property = |t: &str| match t {
        "AWS::IAM::Role" => "RoleName",
        "AWS::Logs::LogGroup" => "LogGroupName",
        "AWS::Lambda::Function" => "FunctionName",
        "AWS::SQS::Queue" => "QueueName",
        "AWS::SNS::Topic" => "TopicName",
        "AWS::S3::Bucket" => "BucketName",
        "AWS::DynamoDB::Table" => "TableName",
        _ => "Name",
    };
    let mut template_names: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in resources.values() {
        let t = r["Type"].as_str().unwrap();
        if let Some(n) = r["Properties"].get(name_property(t)) {
            *template_names
                .entry((t.into(), eval(n).as_str().unwrap().into()))
                .or_default() += 1;
        }
    }
    let mut named = 0;
    for r in &native {
        let (Some(name), Some(t)) = (&r.physical_name, cloudformation::cfn_type(&r.kind)) else {
            continue;
        };
        named += 1;
        assert_eq!(
            template_names.get(&(t.to_string(), name.clone())),
            Some(&1),
            "{} ({name}) is not named alike in the template",
            r.id
        );
    }
    assert_eq!(
        named,
        template_names.len(),
        "the template names nothing else"
    );
    assert_eq!(
        resources.len(),
        native
            .iter()
            .filter(|r| cloudformation::cfn_type(&r.kind).is_some())
            .count()
    );

    // Policies: the same statements (ids, actions, number of resources) on the same roles.
    let mut native_policies = BTreeMap::new();
    for r in native.iter().filter(|r| r.kind == kinds::ROLE_POLICY) {
        let role_id = r.properties["RoleName"]["$ref"].as_str().unwrap();
        let role = native.iter().find(|x| x.id == role_id).unwrap();
        native_policies.insert(
            role.physical_name.clone().unwrap(),
            summary(&r.properties["PolicyDocument"]),
        );
    }
    let mut template_policies = BTreeMap::new();
    for r in resources
        .values()
        .filter(|r| r["Type"] == "AWS::IAM::RolePolicy")
    {
        let role = &resources[r["Properties"]["RoleName"]["Ref"].as_str().unwrap()];
        let name = eval(&role["Properties"]["RoleName"])
            .as_str()
            .unwrap()
            .to_string();
        template_policies.insert(name, summary(&r["Properties"]["PolicyDocument"]));
    }
    assert_eq!(native_policies, template_policies);
    assert_eq!(native_policies.len(), 8);
}

fn summary(doc: &Value) -> Vec<(String, Value, usize)> {
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["Sid"].as_str().unwrap().to_string(),
                s["Action"].clone(),
                s["Resource"].as_array().unwrap().len(),
            )
        })
        .collect()
}

/// `examples/secrets`: the secret is an `AWS::SecretsManager::Secret` without any value, kept
/// on stack deletion; `pay`'s role reads exactly its ARN (`Ref`), which is also what its
/// environment holds; `other` gets neither.
#[test]
fn a_secret_is_a_valueless_secret_whose_arn_only_its_reader_may_read() {
    let g = support::graph_of("aws", &support::repo().join("examples/secrets/nimbus.yaml"));
    let text = nimbus_aws::template(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let resources = doc["Resources"].as_object().unwrap();
    let secrets: Vec<(&String, &Value)> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::SecretsManager::Secret")
        .collect();
    assert_eq!(secrets.len(), 1, "{text}");
    let (logical, secret) = secrets[0];
    assert_eq!(secret["DeletionPolicy"], "Retain");
    assert_eq!(secret["UpdateReplacePolicy"], "Retain");
    assert_eq!(secret["Properties"]["Name"], "payments-dev/payment-key");
    for key in ["SecretString", "GenerateSecretString", "SecretBinary"] {
        assert!(secret["Properties"].get(key).is_none(), "{key} in {secret}");
    }
    let reference = serde_json::json!({ "Ref": logical });
    let policy =
        |f: &str| resources[&format!("{f}RolePolicy")]["Properties"]["PolicyDocument"].clone();
    let reads: Vec<Value> = policy("Pay")["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"] == serde_json::json!(["secretsmanager:GetSecretValue"]))
        .cloned()
        .collect();
    assert_eq!(reads.len(), 1, "{}", policy("Pay"));
    assert_eq!(reads[0]["Resource"], serde_json::json!([reference]));
    assert!(!policy("Other").to_string().contains("secretsmanager"));
    let env = &resources["PayFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(env["NIMBUS_SECRET_PAYMENT_API_KEY"], reference);
    assert!(env.get("PAYMENT_API_KEY").is_none());
    let other = &resources["OtherFunction"]["Properties"]["Environment"];
    assert!(!other.to_string().contains("NIMBUS_SECRET"), "{other}");
}
