//! IAM: trust policies and the least-privilege statements of a function's role.
//!
//! | grant | actions | resource |
//! |---|---|---|
//! | table `read` | `dynamodb:GetItem`, `dynamodb:Query`, `dynamodb:Scan` | the table ARN |
//! | table `write` | `dynamodb:DeleteItem`, `dynamodb:PutItem` | the table ARN |
//! | table `read_write` | both | the table ARN |
//! | bucket `read` | `s3:GetObject`; `s3:ListBucket` | `<bucket ARN>/*`; the bucket ARN |
//! | bucket `write` | `s3:DeleteObject`, `s3:PutObject` | `<bucket ARN>/*` |
//! | bucket `read_write` | both | both |
//! | queue `send` | `sqs:SendMessage` | the queue ARN |
//! | topic `publish` | `sns:Publish` | the topic ARN |
//! | queue trigger | `sqs:DeleteMessage`, `sqs:GetQueueAttributes`, `sqs:ReceiveMessage` | the queue ARN |
//! | table trigger | `dynamodb:DescribeStream`, `dynamodb:GetRecords`, `dynamodb:GetShardIterator`; `dynamodb:ListStreams` | the stream ARN; `<table ARN>/stream/*` |
//! | secret reference `{ secret: NAME }` | `secretsmanager:GetSecretValue` | exactly that secret's ARN (a reference to its `arn`) |
//! | logs | `logs:CreateLogStream`, `logs:PutLogEvents` | the function's log group (`…:log-group:<name>:*`) |
//! | `aws.vpc` | `ec2:DescribeNetworkInterfaces`, `ec2:DescribeSubnets`; `ec2:CreateNetworkInterface`, `ec2:DeleteNetworkInterface`, `ec2:AssignPrivateIpAddresses`, `ec2:UnassignPrivateIpAddresses` | `*` (describe calls take no resource); network interfaces, the named subnets and security groups |
//! | `permissions.aws` statement *n* | its `actions` (`Sid` `Extra<n>`) | its `resources`, exactly as written |
//!
//! The VPC statements are what the managed `AWSLambdaVPCAccessExecutionRole` grants, written
//! inline so that the role keeps one policy and the create/delete calls are limited to the
//! function's own subnets and security groups. Extra statements (the escape hatch) go to this
//! function's role only.
//!
//! These are the calls the neutral resource clients make (get/query/scan, put/delete,
//! send, publish, get/put/delete/list) and the ones Lambda's pollers make with the function's
//! role. Topic, bucket and schedule triggers need no grant on the role: SNS and S3 invoke the
//! function through its resource policy (`aws.lambda.permission`), the scheduler through its
//! own role.

use nimbus_graph::FunctionNode;
use nimbus_manifest::{Access, ResourceKind};
use serde_json::{Value, json};

/// The version every policy document declares.
pub(super) const POLICY_VERSION: &str = "2012-10-17";

/// A policy statement allowing `actions` on `resources`.
pub(super) fn allow(sid: &str, actions: &[&str], resources: Vec<Value>) -> Value {
    let mut actions: Vec<&str> = actions.to_vec();
    actions.sort_unstable();
    actions.dedup();
    json!({ "Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources })
}

/// A policy document of `statements`.
pub(super) fn document(statements: Vec<Value>) -> Value {
    json!({ "Version": POLICY_VERSION, "Statement": statements })
}

/// The trust policy of a role that `service` assumes; `account` adds an `aws:SourceAccount`
/// condition (confused-deputy protection for services acting for the account).
pub(super) fn trust(service: &str, account: Option<&str>) -> Value {
    let mut statement = json!({
        "Effect": "Allow",
        "Principal": { "Service": service },
        "Action": "sts:AssumeRole",
    });
    if let Some(account) = account {
        statement["Condition"] = json!({ "StringEquals": { "aws:SourceAccount": account } });
    }
    document(vec![statement])
}

/// `orders` → `Orders`, `order-events` → `OrderEvents` (statement ids are alphanumeric).
pub(crate) fn pascal(name: &str) -> String {
    name.split(['-', '/', '_', '.'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The statements that grant `access` on a resource: `arn` is its ARN (a reference or a
/// string); buckets also need `objects`, the ARN of their objects (`<arn>/*`).
pub(super) fn uses(
    kind: ResourceKind,
    name: &str,
    access: Access,
    arn: Value,
    objects: Option<String>,
) -> Vec<Value> {
    let sid = format!("Use{}", pascal(name));
    let read = matches!(access, Access::Read | Access::ReadWrite);
    let write = matches!(access, Access::Write | Access::ReadWrite);
    match kind {
        ResourceKind::Table => {
            let mut actions = Vec::new();
            if read {
                actions.extend(["dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"]);
            }
            if write {
                actions.extend(["dynamodb:DeleteItem", "dynamodb:PutItem"]);
            }
            vec![allow(&sid, &actions, vec![arn])]
        }
        ResourceKind::Bucket => {
            let objects = objects.expect("buckets pass their objects' ARN");
            let mut actions = Vec::new();
            if read {
                actions.push("s3:GetObject");
            }
            if write {
                actions.extend(["s3:DeleteObject", "s3:PutObject"]);
            }
            let mut out = vec![allow(
                &format!("{sid}Objects"),
                &actions,
                vec![json!(objects)],
            )];
            if read {
                out.push(allow(&format!("{sid}List"), &["s3:ListBucket"], vec![arn]));
            }
            out
        }
        ResourceKind::Queue => vec![allow(&sid, &["sqs:SendMessage"], vec![arn])],
        ResourceKind::Topic => vec![allow(&sid, &["sns:Publish"], vec![arn])],
    }
}

/// The network-interface statements a function attached to a VPC needs (see the table above).
pub(super) fn vpc(cx: &super::Cx, f: &FunctionNode) -> Vec<Value> {
    let Some(vpc) = &f.aws.vpc else {
        return Vec::new();
    };
    let mut resources = vec![json!(cx.scope.arn("ec2", "network-interface/*"))];
    resources.extend(
        vpc.subnet_ids
            .iter()
            .map(|s| json!(cx.scope.arn("ec2", &format!("subnet/{}", s.as_str())))),
    );
    resources.extend(vpc.security_group_ids.iter().map(|s| {
        json!(
            cx.scope
                .arn("ec2", &format!("security-group/{}", s.as_str()))
        )
    }));
    vec![
        allow(
            "VpcDescribe",
            &["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            vec![json!("*")],
        ),
        allow(
            "VpcNetworkInterfaces",
            &[
                "ec2:AssignPrivateIpAddresses",
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:UnassignPrivateIpAddresses",
            ],
            resources,
        ),
    ]
}

/// The function's own `permissions.aws` statements, `Extra1`, `Extra2`, ... in manifest order.
pub(super) fn extra(f: &FunctionNode) -> Vec<Value> {
    f.permissions
        .aws
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let actions: Vec<&str> = s.actions.iter().map(|a| a.as_str()).collect();
            let resources = s.resources.iter().map(|r| json!(r.as_str())).collect();
            allow(&format!("Extra{}", i + 1), &actions, resources)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements() {
        assert_eq!(pascal("order-events"), "OrderEvents");
        let s = uses(
            ResourceKind::Table,
            "orders",
            Access::Write,
            json!("arn:t"),
            None,
        );
        assert_eq!(
            s,
            vec![json!({ "Sid": "UseOrders", "Effect": "Allow",
                "Action": ["dynamodb:DeleteItem", "dynamodb:PutItem"], "Resource": ["arn:t"] })]
        );
        let s = uses(
            ResourceKind::Bucket,
            "images",
            Access::Read,
            json!("arn:b"),
            Some("arn:b/*".into()),
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0]["Action"], json!(["s3:GetObject"]));
        assert_eq!(s[1]["Resource"], json!(["arn:b"]));
    }
}
