//! Lowering small apps: the cases the shop does not cover, and the errors.

mod common;

use nimbus_aws::{AwsError, AwsSettings};
use nimbus_engine::NativeResource;
use nimbus_test_support as support;
use serde_json::json;

fn lower(manifest: &str) -> Result<Vec<NativeResource>, AwsError> {
    let g = support::graph_str("aws", manifest);
    nimbus_aws::lower(&g, &support::build_of(&g), &common::settings(&g))
}

fn find<'a>(rs: &'a [NativeResource], id: &str) -> &'a NativeResource {
    rs.iter().find(|r| r.id == id).unwrap_or_else(|| {
        panic!(
            "no {id} in {:?}",
            rs.iter().map(|r| &r.id).collect::<Vec<_>>()
        )
    })
}

const JWT: &str = r#"
version: 1
service: api
functions:
  a:
    handler: a.py:handler
    triggers:
      - http: { method: GET, path: "/files/{path+}", auth: { jwt: { issuer: "https://issuer.example", audience: app } } }
      - http: { method: ANY, path: /any, auth: { jwt: { issuer: "https://issuer.example", audience: app } } }
  b:
    handler: b.py:handler
    triggers:
      - http: { method: POST, path: /b, auth: { jwt: { issuer: "https://other.example", audience: app } } }
"#;

#[test]
fn jwt_routes_share_an_authorizer_per_issuer_and_audience() {
    let rs = lower(JWT).unwrap();
    let authorizers: Vec<&NativeResource> = rs
        .iter()
        .filter(|r| r.kind == "aws.apigatewayv2.authorizer")
        .collect();
    assert_eq!(authorizers.len(), 2);
    let route = find(&rs, "aws.apigatewayv2.route/a/http/0");
    assert_eq!(route.properties["RouteKey"], "GET /files/{path+}");
    assert_eq!(route.properties["AuthorizationType"], "JWT");
    let any = find(&rs, "aws.apigatewayv2.route/a/http/1");
    assert_eq!(any.properties["RouteKey"], "ANY /any");
    assert_eq!(
        route.properties["AuthorizerId"],
        any.properties["AuthorizerId"]
    );
    let authorizer_id = route.properties["AuthorizerId"]["$ref"].as_str().unwrap();
    assert_eq!(
        find(&rs, authorizer_id).properties["JwtConfiguration"],
        json!({ "Issuer": "https://issuer.example", "Audience": ["app"] })
    );
    // The template turns the route's execute-api ARN into the same pattern.
    let g = support::graph_str("aws", JWT);
    let t = nimbus_aws::template(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    assert!(t.contains(r#":${HttpApi}/*/GET/files/*""#), "{t}");
    assert!(t.contains(r#":${HttpApi}/*/*/any""#), "{t}");
}

#[test]
fn api_key_auth_is_rejected_with_the_alternative() {
    let err = lower(
        r#"
version: 1
service: api
functions:
  a:
    handler: a.py:handler
    triggers: [ { http: { method: GET, path: /a, auth: { api_key: {} } } } ]
"#,
    )
    .unwrap_err();
    assert!(matches!(err, AwsError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("use `jwt`"), "{err}");
}

#[test]
fn a_queue_must_hide_messages_longer_than_its_consumer_runs() {
    // The manifest's validation says so first; lowering keeps AWS's rule on its own graph.
    let mut g = support::graph_str(
        "aws",
        r#"
version: 1
service: q
resources:
  jobs: { type: queue, visibility_timeout: 60s }
functions:
  work:
    handler: w.py:handler
    timeout: 60s
    triggers: [ { queue: jobs } ]
"#,
    );
    let build = support::build_of(&g);
    assert!(nimbus_aws::lower(&g, &build, &common::settings(&g)).is_ok());
    g.functions.get_mut("work").unwrap().timeout_ms = 61_000;
    let err = nimbus_aws::lower(&g, &build, &common::settings(&g)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "queue `jobs` hides a received message for 60 s, less than the 61 s timeout of function `work` that consumes it (AWS rejects this)"
    );
}

#[test]
fn large_batches_get_a_batching_window_and_partial_table_events_a_filter() {
    let rs = lower(
        r#"
version: 1
service: q
resources:
  jobs: { type: queue, visibility_timeout: 60s }
  items: { type: table, key: { pk: string }, sort_key: { n: number } }
functions:
  work:
    handler: w.py:handler
    triggers:
      - { queue: { name: jobs, batch_size: 100 } }
      - { table: { name: items, events: [insert, remove], batch_size: 50 } }
"#,
    )
    .unwrap();
    let q = find(&rs, "aws.lambda.event_source_mapping/work/queue/0");
    assert_eq!(q.properties["BatchSize"], 100);
    assert_eq!(q.properties["MaximumBatchingWindowInSeconds"], 1);
    let t = find(&rs, "aws.lambda.event_source_mapping/work/table/1");
    assert_eq!(t.properties["BatchSize"], 50);
    assert_eq!(
        t.properties["FilterCriteria"],
        json!({ "Filters": [{ "Pattern": { "eventName": ["INSERT", "REMOVE"] } }] })
    );
    let table = find(&rs, "aws.dynamodb.table/items");
    assert_eq!(
        table.properties["KeySchema"],
        json!([{ "AttributeName": "pk", "KeyType": "HASH" }, { "AttributeName": "n", "KeyType": "RANGE" }])
    );
    assert_eq!(
        table.properties["AttributeDefinitions"],
        json!([{ "AttributeName": "pk", "AttributeType": "S" }, { "AttributeName": "n", "AttributeType": "N" }])
    );
    // The template gives the pattern as a string, as CloudFormation wants.
    let g = support::graph_str(
        "aws",
        r#"
version: 1
service: q
resources:
  items: { type: table, key: { pk: string } }
functions:
  work:
    handler: w.py:handler
    triggers: [ { table: { name: items, events: [modify] } } ]
"#,
    );
    let t = nimbus_aws::template(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    assert!(
        t.contains(r#""Pattern": "{\"eventName\":[\"MODIFY\"]}""#),
        "{t}"
    );
}

#[test]
fn overlapping_bucket_triggers_are_rejected_and_disjoint_ones_share_a_configuration() {
    let manifest = |b_prefix: &str| {
        format!(
            r#"
version: 1
service: s
resources:
  files: {{ type: bucket }}
functions:
  a:
    handler: a.py:handler
    triggers: [ {{ bucket: {{ name: files, events: [created, deleted], prefix: in/ }} }} ]
  b:
    handler: b.py:handler
    triggers: [ {{ bucket: {{ name: files, prefix: {b_prefix}, suffix: .png }} }} ]
"#
        )
    };
    let err = lower(&manifest("in/img/")).unwrap_err();
    assert!(
        matches!(err, AwsError::OverlappingNotifications { .. }),
        "{err}"
    );
    let rs = lower(&manifest("out/")).unwrap();
    let n = find(&rs, "aws.s3.bucket_notification/files");
    let configs = n.properties["NotificationConfiguration"]["LambdaFunctionConfigurations"]
        .as_array()
        .unwrap();
    assert_eq!(configs.len(), 2);
    assert_eq!(
        configs[0]["Events"],
        json!(["s3:ObjectCreated:*", "s3:ObjectRemoved:*"])
    );
    assert_eq!(
        configs[1]["Filter"],
        json!({ "Key": { "FilterRules": [{ "Name": "prefix", "Value": "out/" }, { "Name": "suffix", "Value": ".png" }] } })
    );
    assert_eq!(n.depends_on.len(), 2);
}

#[test]
fn physical_name_clashes_are_reported() {
    let err = lower(
        r#"
version: 1
service: s
resources:
  jobs: { type: queue, dead_letter: { max_receives: 3 } }
  jobs-dlq: { type: queue }
functions:
  a:
    handler: a.py:handler
    uses: [ { resource: jobs, access: send } ]
"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "aws.sqs.queue name `s-dev-jobs-dlq` is given to both `aws.sqs.queue/jobs/dlq` and `aws.sqs.queue/jobs-dlq`; rename one of them"
    );
}

const ONE: &str = r#"
version: 1
service: s
resources:
  files: { type: bucket, versioning: true }
functions:
  a:
    handler: a.py:handler
    uses: [ { resource: files, access: read } ]
providers:
  aws: { region: eu-west-1, tags: { team: shop } }
"#;

#[test]
fn builds_and_settings_are_checked_and_used() {
    let g = support::graph_str("aws", ONE);
    let build = support::build_of(&g);
    let settings = AwsSettings {
        region: "eu-west-1".into(),
        account_id: "210987654321".into(),
        artifact_bucket: "my-artifacts".into(),
        artifact_prefix: String::new(),
    };
    let rs = nimbus_aws::lower(&g, &build, &settings).unwrap();
    let bucket = find(&rs, "aws.s3.bucket/files");
    assert_eq!(
        bucket.physical_name.as_deref(),
        Some("s-dev-files-210987654321-eu-west-1")
    );
    assert_eq!(
        bucket.properties["CreateBucketConfiguration"],
        json!({ "LocationConstraint": "eu-west-1" })
    );
    assert_eq!(
        bucket.properties["VersioningConfiguration"],
        json!({ "Status": "Enabled" })
    );
    assert_eq!(
        bucket.properties["Tagging"]["TagSet"],
        json!([{ "Key": "nimbus:service", "Value": "s" }, { "Key": "nimbus:stage", "Value": "dev" }, { "Key": "team", "Value": "shop" }])
    );
    // The packages' bucket is not a resource of the deployment: a deploy creates it first.
    assert!(!rs.iter().any(|r| r.kind == "aws.s3.deployment_bucket"));
    let f = find(&rs, "aws.lambda.function/a");
    assert_eq!(f.properties["Code"]["S3Bucket"], "my-artifacts");
    assert_eq!(
        f.properties["Code"]["S3Key"],
        format!("{}.zip", build.functions["a"].sha256)
    );
    assert_eq!(f.properties["Tags"]["team"], "shop");

    let mut missing = build.clone();
    missing.functions.clear();
    let err = nimbus_aws::lower(&g, &missing, &settings).unwrap_err();
    assert_eq!(
        err.to_string(),
        "function `a` has no package in the build; run `nimbus build -p aws`"
    );
    let mut local = build.clone();
    local.provider = "local".into();
    let err = nimbus_aws::lower(&g, &local, &settings).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the build is for provider `local`, not `aws`"
    );

    // The template's parameter defaults to a given artifact bucket.
    let t = nimbus_aws::template(&g, &build, &settings).unwrap();
    assert!(t.contains(r#""Default": "my-artifacts""#), "{t}");
}

#[test]
fn only_an_explicit_concurrency_is_reserved() {
    let manifest = "version: 1\nservice: conc\nfunctions:\n  capped:\n    handler: app.py:handler\n    concurrency: { max: 3 }\n  shared:\n    handler: app.py:handler\n";
    let rs = lower(manifest).unwrap();
    let capped = &find(&rs, "aws.lambda.function/capped").properties;
    assert_eq!(capped["ReservedConcurrentExecutions"], json!(3));
    let shared = &find(&rs, "aws.lambda.function/shared").properties;
    assert!(shared.get("ReservedConcurrentExecutions").is_none());
}

const SECRETS: &str = r#"
version: 1
service: payments
secrets:
  payment-key: { description: the payment provider's API key }
  other-key: {}
functions:
  pay:
    handler: app.py:pay
    env:
      PAYMENT_API_KEY: { secret: payment-key }
      MODE: test
  other:
    handler: app.py:other
    env:
      OTHER: { secret: other-key }
  plain:
    handler: app.py:plain
"#;

#[test]
fn secrets_are_references_in_the_env_and_each_role_reads_exactly_its_own() {
    let rs = lower(SECRETS).unwrap();
    // One secret per declared secret, without a value, kept when it holds one.
    let secret = find(&rs, "aws.secretsmanager.secret/payment-key");
    assert_eq!(
        secret.physical_name.as_deref(),
        Some("payments-dev/payment-key")
    );
    assert_eq!(secret.properties["Name"], "payments-dev/payment-key");
    assert_eq!(
        secret.properties["Description"],
        "the payment provider's API key"
    );
    assert!(secret.retain_data);
    assert_eq!(secret.replace_on, vec!["Name".to_string()]);
    let mut keys: Vec<&String> = secret.properties.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["Description", "Name", "Tags"], "no value property");
    assert_eq!(
        find(&rs, "aws.secretsmanager.secret/other-key").properties["Description"],
        "Nimbus: secret other-key of payments (dev)"
    );

    let arn_of =
        |s: &str| json!({ "$ref": format!("aws.secretsmanager.secret/{s}"), "output": "arn" });
    let pay = &find(&rs, "aws.lambda.function/pay").properties["Environment"]["Variables"];
    assert_eq!(pay["NIMBUS_SECRET_PAYMENT_API_KEY"], arn_of("payment-key"));
    assert_eq!(pay["MODE"], "test");
    // The variable itself is set by the shim at cold start, never in the deployment.
    assert!(pay.get("PAYMENT_API_KEY").is_none(), "{pay}");
    assert!(pay.get("NIMBUS_SECRET_OTHER").is_none(), "{pay}");

    let secret_statements = |f: &str| -> Vec<serde_json::Value> {
        let policy = &find(&rs, &format!("aws.iam.role_policy/{f}")).properties;
        policy["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s.to_string().contains("secretsmanager"))
            .cloned()
            .collect()
    };
    assert_eq!(
        secret_statements("pay"),
        vec![json!({ "Sid": "ReadSecretPaymentKey", "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [arn_of("payment-key")] })]
    );
    assert_eq!(
        secret_statements("other")[0]["Resource"],
        json!([arn_of("other-key")])
    );
    assert!(secret_statements("plain").is_empty());
}

#[test]
fn escape_hatches_reach_the_role_and_the_function() {
    let rs = lower(common::ESCAPE_HATCHES).unwrap();
    assert!(
        !rs.iter().any(|r| r.id.contains("gcp-only")),
        "`only:` leaves the function out"
    );
    let mailer = &find(&rs, "aws.lambda.function/mailer").properties;
    assert_eq!(mailer["Architectures"], json!(["arm64"]));
    assert_eq!(
        mailer["ReservedConcurrentExecutions"],
        json!(0),
        "`aws.reserved_concurrency` wins over `concurrency.max`"
    );
    assert_eq!(
        mailer["VpcConfig"],
        json!({
            "SubnetIds": ["subnet-0123456789abcdef0", "subnet-01234567"],
            "SecurityGroupIds": ["sg-0123456789abcdef0"],
        })
    );
    let plain = &find(&rs, "aws.lambda.function/plain").properties;
    assert_eq!(plain["Architectures"], json!(["x86_64"]));
    assert!(plain.get("VpcConfig").is_none());

    let statements = |f: &str| {
        find(&rs, &format!("aws.iam.role_policy/{f}")).properties["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
            .clone()
    };
    let mailer_policy = statements("mailer");
    let extra: Vec<&serde_json::Value> = mailer_policy
        .iter()
        .filter(|s| s["Sid"].as_str().unwrap().starts_with("Extra"))
        .collect();
    assert_eq!(
        extra,
        vec![&json!({
            "Sid": "Extra1", "Effect": "Allow",
            "Action": ["ses:SendEmail", "ses:SendRawEmail"],
            "Resource": ["arn:aws:ses:us-east-1:123456789012:identity/example.com"],
        })]
    );
    let eni = mailer_policy
        .iter()
        .find(|s| s["Sid"] == "VpcNetworkInterfaces")
        .expect("the VPC statements");
    assert_eq!(
        eni["Action"],
        json!([
            "ec2:AssignPrivateIpAddresses",
            "ec2:CreateNetworkInterface",
            "ec2:DeleteNetworkInterface",
            "ec2:UnassignPrivateIpAddresses"
        ])
    );
    let resources: Vec<&str> = eni["Resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        resources
            .iter()
            .any(|r| r.ends_with(":subnet/subnet-01234567")),
        "{resources:?}"
    );
    assert!(
        resources
            .iter()
            .any(|r| r.ends_with(":security-group/sg-0123456789abcdef0"))
    );
    assert!(!resources.contains(&"*"), "create/delete are limited");
    // The other function gets neither the extra grant nor the VPC actions.
    let plain_policy = statements("plain");
    assert!(
        plain_policy
            .iter()
            .all(|s| !s["Sid"].as_str().unwrap().starts_with("Extra")
                && !s["Sid"].as_str().unwrap().starts_with("Vpc")),
        "{plain_policy:?}"
    );
}
