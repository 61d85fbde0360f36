//! Lowering what Nimbus does not own: existing resources (`existing.aws`) and the custom domain
//! (`http.domain`), and the CloudFormation export of both.

mod common;

use nimbus_aws::{AwsError, kinds};
use nimbus_engine::NativeResource;
use nimbus_test_support as support;
use serde_json::{Value, json};

const APP: &str = r#"
version: 1
service: ledger
http:
  domain:
    name: api.example.com
    certificate: { aws: "arn:aws:acm:us-east-1:123456789012:certificate/abc" }
resources:
  users: { type: table, key: { id: string }, existing: { aws: "arn:aws:dynamodb:us-east-1:123456789012:table/users" } }
  jobs: { type: queue, existing: { aws: "arn:aws:sqs:us-east-1:123456789012:jobs" } }
  events: { type: topic, existing: { aws: "arn:aws:sns:us-east-1:123456789012:events" } }
  assets: { type: bucket, existing: { aws: "arn:aws:s3:::acme-assets" } }
  own: { type: bucket }
functions:
  api:
    handler: app.py:handler
    triggers: [ { http: { method: GET, path: /hello } } ]
    uses:
      - { resource: users, access: read_write }
      - { resource: jobs, access: send }
      - { resource: events, access: publish }
      - { resource: assets, access: read }
  on-change:
    handler: app.py:handler
    triggers: [ { table: users }, { queue: jobs }, { topic: events } ]
"#;

fn lower(manifest: &str) -> Result<Vec<NativeResource>, AwsError> {
    let g = support::graph_str("aws", manifest);
    nimbus_aws::lower(&g, &support::build_of(&g), &common::settings(&g))
}

fn find<'a>(rs: &'a [NativeResource], id: &str) -> &'a NativeResource {
    rs.iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no {id}"))
}

fn reference(id: &str, output: &str) -> Value {
    json!({ "$ref": id, "output": output })
}

fn policy(rs: &[NativeResource], function: &str) -> Vec<Value> {
    find(rs, &format!("aws.iam.role_policy/{function}")).properties["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .clone()
}

fn sid<'a>(statements: &'a [Value], sid: &str) -> &'a Value {
    statements
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid} in {statements:?}"))
}

#[test]
fn existing_resources_are_stand_ins_that_nothing_creates() {
    let rs = lower(APP).unwrap();
    // Nothing of theirs is created: no table, queue, topic or their bucket; ours is.
    for kind in [kinds::TABLE, kinds::QUEUE, kinds::TOPIC] {
        assert!(!rs.iter().any(|r| r.kind == kind), "{kind} created");
    }
    let buckets: Vec<&str> = rs
        .iter()
        .filter(|r| r.kind == kinds::BUCKET)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(buckets, ["aws.s3.bucket/own"]);
    let users = find(&rs, "aws.existing/users");
    assert_eq!(
        users.properties,
        json!({ "Kind": "table", "Arn": "arn:aws:dynamodb:us-east-1:123456789012:table/users", "Name": "users" })
    );
    assert!(
        !users.retain_data,
        "never deleted, so never retained either"
    );
    assert_eq!(
        find(&rs, "aws.existing/jobs").properties["Url"],
        "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"
    );
    assert_eq!(
        find(&rs, "aws.existing/assets").properties["Name"],
        "acme-assets"
    );
}

#[test]
fn grants_and_wiring_use_the_given_arns() {
    let rs = lower(APP).unwrap();
    let api = policy(&rs, "api");
    assert_eq!(
        sid(&api, "UseUsers")["Resource"],
        json!([reference("aws.existing/users", "arn")])
    );
    assert_eq!(
        sid(&api, "UseJobs")["Resource"],
        json!([reference("aws.existing/jobs", "arn")])
    );
    assert_eq!(
        sid(&api, "UseEvents")["Resource"],
        json!([reference("aws.existing/events", "arn")])
    );
    assert_eq!(
        sid(&api, "UseAssetsObjects")["Resource"],
        json!(["arn:aws:s3:::acme-assets/*"])
    );
    let on_change = policy(&rs, "on-change");
    assert_eq!(
        sid(&on_change, "ReadStreamUsers")["Resource"],
        json!([reference("aws.existing/users", "stream_arn")])
    );
    assert_eq!(
        sid(&on_change, "ListStreamsUsers")["Resource"],
        json!(["arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/*"])
    );
    let env = &find(&rs, "aws.lambda.function/api").properties["Environment"]["Variables"];
    assert_eq!(env["NIMBUS_RESOURCE_USERS_NAME"], "users");
    assert_eq!(env["NIMBUS_RESOURCE_ASSETS_NAME"], "acme-assets");
    assert_eq!(
        env["NIMBUS_RESOURCE_JOBS_URL"],
        reference("aws.existing/jobs", "url")
    );
    assert_eq!(
        find(&rs, "aws.lambda.event_source_mapping/on-change/table/0").properties["EventSourceArn"],
        reference("aws.existing/users", "stream_arn")
    );
    assert_eq!(
        find(&rs, "aws.lambda.event_source_mapping/on-change/queue/1").properties["EventSourceArn"],
        reference("aws.existing/jobs", "arn")
    );
    assert_eq!(
        find(&rs, "aws.sns.subscription/on-change/topic/2").properties["TopicArn"],
        reference("aws.existing/events", "arn")
    );
}

#[test]
fn an_existing_resource_in_another_region_is_refused() {
    let other = APP.replace(
        "arn:aws:sqs:us-east-1:123456789012:jobs",
        "arn:aws:sqs:eu-west-1:123456789012:jobs",
    );
    let err = lower(&other).unwrap_err().to_string();
    assert!(
        err.contains("resource `jobs` exists in region `eu-west-1`")
            && err.contains("deploys to `us-east-1`"),
        "{err}"
    );
}

#[test]
fn the_domain_is_a_regional_domain_name_mapped_to_the_default_stage() {
    let rs = lower(APP).unwrap();
    let domain = find(&rs, "aws.apigatewayv2.domain_name/domain");
    assert_eq!(domain.physical_name.as_deref(), Some("api.example.com"));
    assert_eq!(
        domain.properties["DomainNameConfigurations"],
        json!([{
            "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            "EndpointType": "REGIONAL",
            "SecurityPolicy": "TLS_1_2",
        }])
    );
    let mapping = find(&rs, "aws.apigatewayv2.api_mapping/domain");
    assert_eq!(
        mapping.properties,
        json!({
            "DomainName": reference("aws.apigatewayv2.domain_name/domain", "name"),
            "ApiId": reference("aws.apigatewayv2.api/http", "id"),
            "Stage": "$default",
        })
    );
    assert!(
        mapping
            .depends_on
            .contains(&"aws.apigatewayv2.stage/default".to_string())
    );
    // No routes, no API, no domain.
    let quiet = APP.replace("triggers: [ { http: { method: GET, path: /hello } } ]", "");
    let rs = lower(&quiet).unwrap();
    assert!(!rs.iter().any(|r| r.kind == kinds::DOMAIN_NAME));
}

#[test]
fn the_export_references_existing_resources_and_declares_the_domain() {
    let g = support::graph_str("aws", APP);
    let text = nimbus_aws::template(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let resources = doc["Resources"].as_object().unwrap();
    let types: Vec<&str> = resources
        .values()
        .map(|r| r["Type"].as_str().unwrap())
        .collect();
    assert!(!types.contains(&"AWS::DynamoDB::Table"));
    assert!(!types.contains(&"AWS::SQS::Queue"));
    assert!(!types.contains(&"AWS::SNS::Topic"));
    assert_eq!(
        types.iter().filter(|t| **t == "AWS::S3::Bucket").count(),
        1,
        "only the app's own bucket"
    );
    assert!(
        !text.contains("aws.existing"),
        "no stand-in leaks into the template"
    );
    // The stream of the existing table is a parameter; the rest are literals.
    assert_eq!(
        doc["Parameters"]["UsersExistingStreamArn"]["Type"],
        "String"
    );
    let mapping = &resources["OnChangeTable0EventSourceMapping"]["Properties"];
    assert_eq!(
        mapping["EventSourceArn"],
        json!({ "Ref": "UsersExistingStreamArn" })
    );
    let queue = &resources["OnChangeQueue1EventSourceMapping"]["Properties"];
    assert_eq!(
        queue["EventSourceArn"],
        "arn:aws:sqs:us-east-1:123456789012:jobs"
    );
    let env = &resources["ApiFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        env["NIMBUS_RESOURCE_JOBS_URL"],
        "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"
    );
    // The domain, its mapping after the stage, and the CNAME target as an output.
    let domain = &resources["DomainDomainName"];
    assert_eq!(domain["Type"], "AWS::ApiGatewayV2::DomainName");
    assert_eq!(domain["Properties"]["DomainName"], "api.example.com");
    let mapping = &resources["DomainApiMapping"];
    assert_eq!(
        mapping["Properties"]["DomainName"],
        json!({ "Ref": "DomainDomainName" })
    );
    assert_eq!(mapping["DependsOn"], json!(["DefaultStage"]));
    assert_eq!(
        doc["Outputs"]["DomainDomainNameTarget"]["Value"],
        json!({ "Fn::GetAtt": ["DomainDomainName", "RegionalDomainName"] })
    );
}
