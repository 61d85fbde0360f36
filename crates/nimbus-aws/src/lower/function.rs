//! A function: its log group, role and policy, and the Lambda function itself.

use std::collections::BTreeMap;

use nimbus_graph::{FunctionNode, Link, TriggerSpec};
use nimbus_manifest::ResourceKind;
use nimbus_provider::ProviderId;
use serde_json::{Map, Value, json};

use super::{Cx, LOG_RETENTION_DAYS, iam, out};
use crate::env::{self, LAMBDA_ENV_LIMIT};
use crate::error::AwsError;
use crate::kinds;
use crate::names;

/// Lowers one function (not its triggers).
pub(super) fn function(cx: &mut Cx, f: &FunctionNode) -> Result<(), AwsError> {
    let artifact = cx
        .build
        .functions
        .get(&f.name)
        .ok_or_else(|| AwsError::MissingArtifact {
            function: f.name.clone(),
        })?;
    let runtime = ProviderId::Aws
        .capabilities()
        .runtime(f.runtime)
        .ok_or_else(|| AwsError::UnsupportedRuntime {
            function: f.name.clone(),
            runtime: f.runtime.id().to_string(),
        })?
        .to_string();
    let name = cx.function_name(&f.name);

    let log_group = names::log_group(&name);
    let log_props = json!({
        "logGroupName": log_group,
        "retentionInDays": LOG_RETENTION_DAYS,
        "tags": cx.tag_map(),
    });
    let log_id = cx.push(kinds::LOG_GROUP, &f.name, Some(log_group), log_props);

    let role_name = names::function_role(cx.service(), cx.stage(), &f.name, &cx.scope);
    let role_props = json!({
        "RoleName": role_name,
        "AssumeRolePolicyDocument": iam::trust("lambda.amazonaws.com", None),
        "Description": format!("Nimbus: runs function {} of {} ({})", f.name, cx.service(), cx.stage()),
        "Tags": cx.tag_list(),
    });
    cx.push(kinds::ROLE, &f.name, Some(role_name), role_props);
    let policy_props = json!({
        "RoleName": out(kinds::ROLE, &f.name, "name"),
        "PolicyName": "nimbus",
        "PolicyDocument": iam::document(statements(cx, f)?),
    });
    let policy_id = cx.push(kinds::ROLE_POLICY, &f.name, None, policy_props);

    let key = names::package_key(&cx.settings.artifact_prefix, &artifact.sha256);
    let variables = environment(cx, f)?;
    let description = f
        .description
        .clone()
        .unwrap_or_else(|| format!("{} {} ({}), by Nimbus", cx.service(), f.name, cx.stage()));
    let mut props = json!({
        "FunctionName": name,
        "Description": description,
        "Runtime": runtime,
        "Handler": crate::HANDLER,
        "Role": out(kinds::ROLE, &f.name, "arn"),
        "Code": {
            "S3Bucket": cx.packages.bucket(),
            "S3Key": key,
        },
        "PackageType": "Zip",
        "Architectures": [f.aws.architecture.as_ref().map_or("x86_64", |a| a.as_str())],
        "MemorySize": f.memory_mb,
        "Timeout": timeout_s(f),
        "Environment": { "Variables": variables },
        "Tags": cx.tag_map(),
    });
    // Reserve concurrency only when the manifest asks: reservations come out of the account's
    // pool, and new accounts have too little to reserve the default for every function.
    // `aws.reserved_concurrency` wins (0 stops the function from running).
    if let Some(n) = &f.aws.reserved_concurrency {
        props["ReservedConcurrentExecutions"] = json!(n.value);
    } else if f.concurrency_set {
        props["ReservedConcurrentExecutions"] = json!(f.concurrency);
    }
    if let Some(vpc) = &f.aws.vpc {
        props["VpcConfig"] = json!({
            "SubnetIds": vpc.subnet_ids.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "SecurityGroupIds": vpc.security_group_ids.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        });
    }
    let fid = cx.push(kinds::FUNCTION, &f.name, Some(name), props);
    cx.depend(&fid, &log_id);
    cx.depend(&fid, &policy_id);
    Ok(())
}

/// The function's timeout in whole seconds (Lambda's unit), rounded up.
pub(super) fn timeout_s(f: &FunctionNode) -> u64 {
    f.timeout_ms.div_ceil(1000).max(1)
}

/// The ARN of a table resource (deterministic: needed inside strings).
fn table_arn(cx: &Cx, table: &str) -> String {
    if let Some(arn) = cx.existing(table) {
        return arn.to_string();
    }
    cx.scope.arn(
        "dynamodb",
        &format!("table/{}", names::table(cx.service(), cx.stage(), table)),
    )
}

/// The role's statements: logs, then every `uses` grant, then what its triggers need.
fn statements(cx: &Cx, f: &FunctionNode) -> Result<Vec<Value>, AwsError> {
    let mut out_statements = vec![iam::allow(
        "Logs",
        &["logs:CreateLogStream", "logs:PutLogEvents"],
        vec![out(kinds::LOG_GROUP, &f.name, "arn")],
    )];
    for edge in cx.graph.edges.iter().filter(|e| e.from == f.id) {
        let Link::Uses { access } = &edge.link else {
            continue;
        };
        let name = edge.to.trim_start_matches("resource:");
        let r = &cx.graph.resources[name];
        let (arn, objects) = match r.kind {
            ResourceKind::Table | ResourceKind::Queue | ResourceKind::Topic => {
                (cx.res(name, "arn"), None)
            }
            ResourceKind::Bucket => {
                let arn = cx.scope.bucket_arn(&cx.bucket_name(name)?);
                (json!(arn), Some(format!("{arn}/*")))
            }
        };
        out_statements.extend(iam::uses(r.kind, name, *access, arn, objects));
    }
    // Exactly the function's own secrets, each by its exact ARN.
    out_statements.extend(super::secrets::statements(f));
    for t in &f.triggers {
        match &t.spec {
            TriggerSpec::Queue { resource, .. } => out_statements.push(iam::allow(
                &format!("Consume{}", iam::pascal(resource)),
                &[
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage",
                ],
                vec![cx.res(resource, "arn")],
            )),
            TriggerSpec::Table { resource, .. } => {
                out_statements.push(iam::allow(
                    &format!("ReadStream{}", iam::pascal(resource)),
                    &[
                        "dynamodb:DescribeStream",
                        "dynamodb:GetRecords",
                        "dynamodb:GetShardIterator",
                    ],
                    vec![cx.res(resource, "stream_arn")],
                ));
                out_statements.push(iam::allow(
                    &format!("ListStreams{}", iam::pascal(resource)),
                    &["dynamodb:ListStreams"],
                    vec![json!(format!("{}/stream/*", table_arn(cx, resource)))],
                ));
            }
            _ => {}
        }
    }
    out_statements.extend(iam::vpc(cx, f));
    out_statements.extend(iam::extra(f));
    // Two triggers on one source would repeat a statement: keep the first.
    let mut seen = std::collections::BTreeSet::new();
    out_statements.retain(|s| seen.insert(s["Sid"].as_str().unwrap_or_default().to_string()));
    Ok(out_statements)
}

/// The user's variables plus the `NIMBUS_*` variables of [`crate::env`].
fn environment(cx: &Cx, f: &FunctionNode) -> Result<Value, AwsError> {
    let mut vars: BTreeMap<String, Value> =
        f.env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut triggered_tables = Vec::new();
    for t in &f.triggers {
        if let TriggerSpec::Table { resource, .. } = &t.spec {
            triggered_tables.push(resource.as_str());
        }
        if matches!(t.spec, TriggerSpec::Schedule { .. }) {
            let schedule = names::schedule(cx.service(), cx.stage(), &t.id);
            vars.insert(
                env::schedule_var(&names::schedule_trigger(&t.id)),
                json!(cx.scope.schedule_arn(&schedule)),
            );
        }
    }
    for edge in cx.graph.edges.iter().filter(|e| e.from == f.id) {
        let name = edge.to.trim_start_matches("resource:");
        let r = &cx.graph.resources[name];
        let (physical, arn) = match r.kind {
            _ if cx.existing(name).is_some() => {
                (cx.existing_part(name, "name")?, cx.res(name, "arn"))
            }
            ResourceKind::Table => (
                names::table(cx.service(), cx.stage(), name),
                out(kinds::TABLE, name, "arn"),
            ),
            ResourceKind::Queue => (
                names::queue(cx.service(), cx.stage(), name),
                out(kinds::QUEUE, name, "arn"),
            ),
            ResourceKind::Topic => (
                names::topic(cx.service(), cx.stage(), name),
                out(kinds::TOPIC, name, "arn"),
            ),
            ResourceKind::Bucket => {
                let b = cx.bucket_name(name)?;
                let arn = json!(cx.scope.bucket_arn(&b));
                (b, arn)
            }
        };
        vars.insert(env::resource_var(name, "NAME"), json!(physical));
        vars.insert(env::resource_var(name, "ARN"), arn);
        if r.kind == ResourceKind::Queue {
            vars.insert(env::resource_var(name, "URL"), cx.res(name, "url"));
        }
        if r.kind == ResourceKind::Table && triggered_tables.contains(&name) {
            vars.insert(
                env::resource_var(name, "STREAM_ARN"),
                cx.res(name, "stream_arn"),
            );
        }
    }
    // Only a reference, never a value: the shim reads it at cold start, by the secret's
    // complete ARN (a name ending in `-` and 6 characters could be taken for a partial ARN).
    for (var, secret) in &f.secrets {
        vars.insert(env::secret_var(var), out(kinds::SECRET, secret, "arn"));
    }
    let bytes = estimated_size(&vars);
    if bytes > LAMBDA_ENV_LIMIT {
        return Err(AwsError::EnvironmentTooLarge {
            function: f.name.clone(),
            bytes,
        });
    }
    Ok(Value::Object(vars.into_iter().collect::<Map<_, _>>()))
}

/// About how many bytes the environment takes once references are resolved (Lambda counts
/// names and values): references count as long ARNs or URLs.
fn estimated_size(vars: &BTreeMap<String, Value>) -> usize {
    vars.iter()
        .map(|(k, v)| {
            k.len()
                + match nimbus_engine::resource::as_reference(v) {
                    Some((_, "stream_arn")) => 160,
                    Some(_) => 120,
                    None => v.as_str().map_or(0, str::len),
                }
        })
        .sum()
}
