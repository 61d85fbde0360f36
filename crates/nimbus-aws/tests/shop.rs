//! Lowering the shop example: every kind, least privilege, references, order, names.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use nimbus_aws::kinds;
use nimbus_engine::NativeResource;
use nimbus_engine::resource::references;
use nimbus_test_support as support;
use serde_json::{Value, json};

fn shop_resources() -> Vec<NativeResource> {
    let g = support::shop("aws");
    nimbus_aws::lower(&g, &support::build_of(&g), &common::settings(&g)).unwrap()
}

fn find<'a>(rs: &'a [NativeResource], id: &str) -> &'a NativeResource {
    rs.iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no resource {id}"))
}

fn reference(id: &str, output: &str) -> Value {
    json!({ "$ref": id, "output": output })
}

/// Every statement of every policy document (inline policies and trust policies).
fn statements(rs: &[NativeResource]) -> Vec<(&str, &Value)> {
    let mut out = Vec::new();
    for r in rs {
        for key in ["PolicyDocument", "AssumeRolePolicyDocument"] {
            if let Some(doc) = r.properties.get(key) {
                for s in doc["Statement"].as_array().unwrap() {
                    out.push((r.id.as_str(), s));
                }
            }
        }
    }
    out
}

#[test]
fn every_kind_is_lowered() {
    let rs = shop_resources();
    let got: BTreeSet<&str> = rs.iter().map(|r| r.kind.as_str()).collect();
    // The shop has no JWT route; `lower.rs` tests the authorizer. Its `reports` bucket is
    // existing on AWS (an `aws.existing` stand-in).
    // The deployment bucket is made before the engine runs (it holds the state); only the
    // CloudFormation export has it, as a parameter.
    let want: BTreeSet<&str> = kinds::OUTPUTS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| *k != kinds::AUTHORIZER && *k != kinds::DEPLOYMENT_BUCKET)
        // The shop has no custom domain; `external.rs` tests it.
        .filter(|k| *k != kinds::DOMAIN_NAME && *k != kinds::API_MAPPING)
        .collect();
    assert_eq!(got, want);
    let ids: BTreeSet<&str> = rs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), rs.len(), "logical ids are unique");
    for r in &rs {
        assert!(r.id.starts_with(&format!("{}/", r.kind)), "{}", r.id);
        assert_eq!(
            r.retain_data,
            [kinds::BUCKET, kinds::TABLE, kinds::SECRET].contains(&r.kind.as_str()),
            "{}",
            r.id
        );
    }
}

#[test]
fn place_order_may_do_exactly_what_it_uses() {
    let rs = shop_resources();
    let policy = find(&rs, "aws.iam.role_policy/place-order");
    assert_eq!(
        policy.properties,
        json!({
            "RoleName": reference("aws.iam.role/place-order", "name"),
            "PolicyName": "nimbus",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    { "Sid": "Logs", "Effect": "Allow",
                      "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                      "Resource": [reference("aws.logs.log_group/place-order", "arn")] },
                    { "Sid": "UseOrderEvents", "Effect": "Allow", "Action": ["sns:Publish"],
                      "Resource": [reference("aws.sns.topic/order-events", "arn")] },
                    { "Sid": "UseOrders", "Effect": "Allow",
                      "Action": ["dynamodb:DeleteItem", "dynamodb:PutItem"],
                      "Resource": [reference("aws.dynamodb.table/orders", "arn")] },
                    { "Sid": "UsePayments", "Effect": "Allow", "Action": ["sqs:SendMessage"],
                      "Resource": [reference("aws.sqs.queue/payments", "arn")] },
                    // The manifest's `permissions.aws`, last and on this role only.
                    { "Sid": "Extra1", "Effect": "Allow", "Action": ["ses:SendEmail"],
                      "Resource": ["arn:aws:ses:us-east-1:123456789012:identity/example.com"] },
                ],
            },
        })
    );
    let role = find(&rs, "aws.iam.role/place-order");
    assert_eq!(
        role.properties["AssumeRolePolicyDocument"]["Statement"],
        json!([{ "Effect": "Allow", "Principal": { "Service": "lambda.amazonaws.com" }, "Action": "sts:AssumeRole" }])
    );
}

#[test]
fn triggers_get_what_their_pollers_need() {
    let rs = shop_resources();
    let doc = |f: &str| {
        find(&rs, &format!("aws.iam.role_policy/{f}")).properties["PolicyDocument"]["Statement"]
            .clone()
    };
    // charge-payment: read_write on orders, consumes payments.
    assert_eq!(
        doc("charge-payment")
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "ConsumePayments")
            .cloned()
            .unwrap_or_default(),
        json!({ "Sid": "ConsumePayments", "Effect": "Allow",
                "Action": ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
                "Resource": [reference("aws.sqs.queue/payments", "arn")] })
    );
    assert_eq!(
        doc("charge-payment")[1]["Action"],
        json!([
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:Scan"
        ])
    );
    // audit-orders uses nothing: logs and the stream only.
    assert_eq!(
        doc("audit-orders"),
        json!([
            { "Sid": "Logs", "Effect": "Allow",
              "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
              "Resource": [reference("aws.logs.log_group/audit-orders", "arn")] },
            { "Sid": "ReadStreamOrders", "Effect": "Allow",
              "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
              "Resource": [reference("aws.dynamodb.table/orders", "stream_arn")] },
            { "Sid": "ListStreamsOrders", "Effect": "Allow", "Action": ["dynamodb:ListStreams"],
              "Resource": ["arn:aws:dynamodb:us-east-1:123456789012:table/shop-dev-orders/stream/*"] },
        ])
    );
    // Buckets: objects and listing apart; write only: no reads.
    let b = "arn:aws:s3:::shop-dev-images-123456789012-us-east-1";
    assert_eq!(
        doc("make-thumbnail").as_array().unwrap()[1..],
        [
            json!({ "Sid": "UseImagesObjects", "Effect": "Allow",
                    "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"], "Resource": [format!("{b}/*")] }),
            json!({ "Sid": "UseImagesList", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [b] }),
        ]
    );
    let nightly = doc("nightly-report");
    let reports = nightly
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "UseReportsObjects")
        .unwrap();
    assert_eq!(
        reports["Action"],
        json!(["s3:DeleteObject", "s3:PutObject"])
    );
    assert!(
        !nightly
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["Sid"] == "UseReportsList")
    );
}

#[test]
fn no_wildcard_action_and_no_wildcard_resource() {
    let rs = shop_resources();
    let all = statements(&rs);
    assert!(all.len() > 20);
    for (id, s) in all {
        assert_eq!(s["Effect"], "Allow", "{id}");
        let actions: Vec<&Value> = match &s["Action"] {
            Value::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        for a in actions {
            let a = a.as_str().unwrap();
            assert!(!a.contains('*'), "{id}: action {a}");
            assert!(a.contains(':'), "{id}: action {a}");
        }
        // No documented exception: nothing Nimbus grants needs `Resource: "*"`.
        for r in s["Resource"].as_array().into_iter().flatten() {
            assert_ne!(r, "*", "{id}: {s}");
        }
    }
}

#[test]
fn the_scheduler_may_only_invoke_its_function() {
    let rs = shop_resources();
    let policy = find(&rs, "aws.iam.role_policy/nightly-report/scheduler");
    assert_eq!(
        policy.properties["PolicyDocument"]["Statement"],
        json!([{ "Sid": "Invoke", "Effect": "Allow", "Action": ["lambda:InvokeFunction"],
                 "Resource": [reference("aws.lambda.function/nightly-report", "arn")] }])
    );
    let role = find(&rs, "aws.iam.role/nightly-report/scheduler");
    assert_eq!(
        role.properties["AssumeRolePolicyDocument"]["Statement"][0]["Condition"],
        json!({ "StringEquals": { "aws:SourceAccount": "123456789012" } })
    );
    let s = find(&rs, "aws.scheduler.schedule/nightly-report/schedule/0");
    assert_eq!(
        s.physical_name.as_deref(),
        Some("shop-dev-nightly-report-schedule-0")
    );
    assert_eq!(s.properties["ScheduleExpression"], "cron(0 3 * * ? *)");
    assert_eq!(s.properties["ScheduleExpressionTimezone"], "UTC");
    assert_eq!(
        s.properties["Target"],
        json!({
            "Arn": reference("aws.lambda.function/nightly-report", "arn"),
            "RoleArn": reference("aws.iam.role/nightly-report/scheduler", "arn"),
            "Input": {
                "version": "0",
                "detail-type": "Scheduled Event",
                "source": "aws.scheduler",
                "time": "<aws.scheduler.scheduled-time>",
                "resources": ["<aws.scheduler.schedule-arn>"],
                "detail": {},
            },
            "RetryPolicy": { "MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185 },
        })
    );
}

#[test]
fn functions_run_the_shim_with_their_settings() {
    let rs = shop_resources();
    let f = find(&rs, "aws.lambda.function/charge-payment");
    let p = &f.properties;
    assert_eq!(f.physical_name.as_deref(), Some("shop-dev-charge-payment"));
    assert_eq!(p["Runtime"], "nodejs22.x");
    assert_eq!(p["Handler"], "_nimbus_aws.handler");
    assert_eq!(p["MemorySize"], 256);
    assert_eq!(p["Timeout"], 10);
    assert!(
        p.get("ReservedConcurrentExecutions").is_none(),
        "the shop sets no concurrency, so nothing is reserved"
    );
    assert_eq!(p["Role"], reference("aws.iam.role/charge-payment", "arn"));
    assert_eq!(
        p["Code"]["S3Bucket"],
        "nimbus-shop-dev-123456789012-us-east-1"
    );
    let g = support::shop("aws");
    let sha = &support::build_of(&g).functions["charge-payment"].sha256;
    assert_eq!(p["Code"]["S3Key"], format!("shop/dev/{sha}.zip"));
    assert_eq!(
        f.depends_on,
        [
            "aws.logs.log_group/charge-payment",
            "aws.iam.role_policy/charge-payment"
        ]
    );
    let thumb = find(&rs, "aws.lambda.function/make-thumbnail");
    assert_eq!(thumb.properties["MemorySize"], 512);
    assert_eq!(thumb.properties["Timeout"], 30);
    assert_eq!(
        find(&rs, "aws.logs.log_group/make-thumbnail").properties,
        json!({ "logGroupName": "/aws/lambda/shop-dev-make-thumbnail", "retentionInDays": 30,
                "tags": { "nimbus:service": "shop", "nimbus:stage": "dev" } })
    );
}

#[test]
fn the_environment_names_what_the_shim_needs() {
    let rs = shop_resources();
    let vars = |f: &str| {
        find(&rs, &format!("aws.lambda.function/{f}")).properties["Environment"]["Variables"]
            .clone()
    };
    assert_eq!(
        vars("place-order"),
        json!({
            "LOG_LEVEL": "debug",
            "NIMBUS_RESOURCE_ORDERS_ARN": reference("aws.dynamodb.table/orders", "arn"),
            "NIMBUS_RESOURCE_ORDERS_NAME": "shop-dev-orders",
            "NIMBUS_RESOURCE_ORDER_EVENTS_ARN": reference("aws.sns.topic/order-events", "arn"),
            "NIMBUS_RESOURCE_ORDER_EVENTS_NAME": "shop-dev-order-events",
            "NIMBUS_RESOURCE_PAYMENTS_ARN": reference("aws.sqs.queue/payments", "arn"),
            "NIMBUS_RESOURCE_PAYMENTS_NAME": "shop-dev-payments",
            "NIMBUS_RESOURCE_PAYMENTS_URL": reference("aws.sqs.queue/payments", "url"),
        })
    );
    assert_eq!(
        vars("audit-orders"),
        json!({
            "NIMBUS_RESOURCE_ORDERS_ARN": reference("aws.dynamodb.table/orders", "arn"),
            "NIMBUS_RESOURCE_ORDERS_NAME": "shop-dev-orders",
            "NIMBUS_RESOURCE_ORDERS_STREAM_ARN": reference("aws.dynamodb.table/orders", "stream_arn"),
        })
    );
    assert_eq!(
        vars("nightly-report")["NIMBUS_SCHEDULE_NIGHTLY_REPORT_SCHEDULE_0_ARN"],
        "arn:aws:scheduler:us-east-1:123456789012:schedule/default/shop-dev-nightly-report-schedule-0"
    );
    assert_eq!(
        vars("make-thumbnail")["NIMBUS_RESOURCE_IMAGES_ARN"],
        "arn:aws:s3:::shop-dev-images-123456789012-us-east-1"
    );
}

#[test]
fn event_sources_report_batch_item_failures() {
    let rs = shop_resources();
    let q = find(
        &rs,
        "aws.lambda.event_source_mapping/charge-payment/queue/0",
    );
    assert_eq!(
        q.properties,
        json!({
            "FunctionName": reference("aws.lambda.function/charge-payment", "name"),
            "EventSourceArn": reference("aws.sqs.queue/payments", "arn"),
            "BatchSize": 10,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "Enabled": true,
        })
    );
    assert_eq!(q.depends_on, ["aws.iam.role_policy/charge-payment"]);
    let t = find(&rs, "aws.lambda.event_source_mapping/audit-orders/table/0");
    assert_eq!(
        t.properties["EventSourceArn"],
        reference("aws.dynamodb.table/orders", "stream_arn")
    );
    assert_eq!(t.properties["StartingPosition"], "LATEST");
    assert_eq!(
        t.properties["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert!(
        t.properties.get("FilterCriteria").is_none(),
        "all three events: no filter"
    );

    let orders = find(&rs, "aws.dynamodb.table/orders");
    assert_eq!(
        orders.properties["StreamSpecification"],
        json!({ "StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES" })
    );
    assert_eq!(orders.properties["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        orders.properties["KeySchema"],
        json!([{ "AttributeName": "id", "KeyType": "HASH" }])
    );
    let inventory = find(&rs, "aws.dynamodb.table/inventory");
    assert_eq!(
        inventory.properties["StreamSpecification"],
        json!({ "StreamEnabled": false })
    );

    let payments = find(&rs, "aws.sqs.queue/payments");
    assert_eq!(
        payments.properties["Attributes"],
        json!({
            "VisibilityTimeout": "60",
            "MessageRetentionPeriod": "345600",
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": {
                "deadLetterTargetArn": reference("aws.sqs.queue/payments/dlq", "arn"),
                "maxReceiveCount": 5,
            },
        })
    );
    assert_eq!(
        find(&rs, "aws.sqs.queue/payments/dlq")
            .physical_name
            .as_deref(),
        Some("shop-dev-payments-dlq")
    );
}

#[test]
fn topics_buckets_and_routes_invoke_through_permissions() {
    let rs = shop_resources();
    let p = find(&rs, "aws.lambda.permission/reserve-stock/topic/0");
    assert_eq!(p.properties["Principal"], "sns.amazonaws.com");
    assert_eq!(
        p.properties["SourceArn"],
        reference("aws.sns.topic/order-events", "arn")
    );
    let sub = find(&rs, "aws.sns.subscription/reserve-stock/topic/0");
    assert_eq!(sub.properties["Protocol"], "lambda");
    assert_eq!(
        sub.depends_on,
        ["aws.lambda.permission/reserve-stock/topic/0"]
    );

    let p = find(&rs, "aws.lambda.permission/make-thumbnail/bucket/0");
    assert_eq!(
        p.properties,
        json!({
            "FunctionName": reference("aws.lambda.function/make-thumbnail", "name"),
            "StatementId": "nimbus-make-thumbnail-bucket-0",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
            "SourceArn": "arn:aws:s3:::shop-dev-images-123456789012-us-east-1",
            "SourceAccount": "123456789012",
        })
    );
    let n = find(&rs, "aws.s3.bucket_notification/images");
    assert_eq!(
        n.properties["NotificationConfiguration"],
        json!({ "LambdaFunctionConfigurations": [{
            "Id": "make-thumbnail-bucket-0",
            "LambdaFunctionArn": reference("aws.lambda.function/make-thumbnail", "arn"),
            "Events": ["s3:ObjectCreated:*"],
            "Filter": { "Key": { "FilterRules": [{ "Name": "prefix", "Value": "uploads/" }] } },
        }] })
    );
    assert_eq!(
        n.depends_on,
        ["aws.lambda.permission/make-thumbnail/bucket/0"]
    );
    let images = find(&rs, "aws.s3.bucket/images");
    assert_eq!(
        images.properties["PublicAccessBlockConfiguration"],
        json!({ "BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true })
    );
    assert!(
        images.properties.get("CreateBucketConfiguration").is_none(),
        "us-east-1"
    );

    let route = find(&rs, "aws.apigatewayv2.route/get-order/http/0");
    assert_eq!(route.properties["RouteKey"], "GET /orders/{id}");
    assert_eq!(
        route.properties["Target"],
        reference("aws.apigatewayv2.integration/get-order", "target")
    );
    assert_eq!(route.properties["AuthorizationType"], "NONE");
    let p = find(&rs, "aws.lambda.permission/get-order/http/0");
    assert_eq!(p.properties["Principal"], "apigateway.amazonaws.com");
    assert_eq!(
        p.properties["SourceArn"],
        reference("aws.apigatewayv2.route/get-order/http/0", "source_arn")
    );
    let i = find(&rs, "aws.apigatewayv2.integration/place-order");
    assert_eq!(i.properties["PayloadFormatVersion"], "2.0");
    assert_eq!(i.properties["IntegrationType"], "AWS_PROXY");
    assert_eq!(i.properties["TimeoutInMillis"], 10000);
    let stage = find(&rs, "aws.apigatewayv2.stage/default");
    assert_eq!(stage.properties["StageName"], "$default");
    assert_eq!(stage.properties["AutoDeploy"], true);
}

#[test]
fn references_name_existing_resources_and_documented_outputs() {
    let rs = shop_resources();
    let by_id: BTreeMap<&str, &NativeResource> = rs.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut count = 0;
    for r in &rs {
        for (id, output) in references(&r.properties) {
            let target = by_id
                .get(id.as_str())
                .unwrap_or_else(|| panic!("{} refers to missing {id}", r.id));
            let outputs = kinds::outputs(&target.kind).unwrap();
            assert!(
                outputs.contains(&output.as_str()),
                "{} refers to {id}.{output}",
                r.id
            );
            count += 1;
        }
        for d in &r.depends_on {
            assert!(
                by_id.contains_key(d.as_str()),
                "{} depends on missing {d}",
                r.id
            );
        }
    }
    assert!(count > 50);
}

#[test]
fn dependencies_have_no_cycle() {
    let rs = shop_resources();
    let mut deps: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for r in &rs {
        let d = deps.entry(&r.id).or_default();
        d.extend(r.depends_on.iter().cloned());
        d.extend(references(&r.properties).into_iter().map(|(id, _)| id));
    }
    // Kahn's algorithm: everything can be ordered.
    let mut done: BTreeSet<String> = BTreeSet::new();
    while done.len() < deps.len() {
        let ready: Vec<&str> = deps
            .iter()
            .filter(|(id, d)| !done.contains(**id) && d.iter().all(|x| done.contains(x)))
            .map(|(id, _)| *id)
            .collect();
        assert!(
            !ready.is_empty(),
            "cycle among {:?}",
            deps.keys()
                .filter(|k| !done.contains(**k))
                .collect::<Vec<_>>()
        );
        done.extend(ready.into_iter().map(String::from));
    }
}

#[test]
fn physical_names_respect_aws_rules() {
    for r in shop_resources() {
        let Some(name) = &r.physical_name else {
            continue;
        };
        let (max, ok): (usize, fn(char) -> bool) = match r.kind.as_str() {
            kinds::FUNCTION => (64, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            kinds::ROLE => (64, |c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)),
            kinds::QUEUE => (80, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            kinds::TOPIC => (256, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            kinds::TABLE => (255, |c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            kinds::BUCKET | kinds::DEPLOYMENT_BUCKET => (63, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
            }),
            kinds::SCHEDULE => (64, |c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            kinds::LOG_GROUP => (512, |c| c.is_ascii_alphanumeric() || "_-/.#".contains(c)),
            kinds::API => (128, |_| true),
            kinds::SECRET => (512, |c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c)),
            other => panic!("unexpected physical name on {other}"),
        };
        assert!(
            name.len() <= max && name.chars().all(ok),
            "{}: {name}",
            r.id
        );
    }
}

#[test]
fn lowering_is_deterministic() {
    assert_eq!(shop_resources(), shop_resources());
}
