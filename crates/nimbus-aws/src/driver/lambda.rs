//! Lambda: functions, resource-policy statements (permissions) and event source mappings.
//!
//! A function's physical id is its name. Its code is read back from `CodeSha256` (the base64
//! SHA-256 of the zip): packages live under content-addressed keys ([`super::Artifacts`]), so
//! the key is known from the hash, and a function whose code was changed outside nimbus shows
//! as drift of `Code.S3Key`. Creates and updates wait until the function is `Active` and its
//! last update `Successful`, since Lambda refuses the next change (or an invocation) before.
//! A permission's physical id is `{function}/{statement id}`; a mapping's its UUID.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_lambda::types::{
    Architecture, Environment, EventSourcePosition, Filter, FilterCriteria, FunctionCode,
    FunctionResponseType, LastUpdateStatus, PackageType, Runtime, State, VpcConfig,
};
use base64::Engine as _;
use nimbus_engine::{Applied, DriverError, Live};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::error::{Call, found, gone, once_role_is_ready};
use super::props::{map_changes, map_value, parse_document};
use super::{AwsDriver, Props, applied, live, split_id};
use crate::kinds;

fn function_outputs(name: &str, arn: &str) -> Applied {
    applied(name, &[("arn", json!(arn)), ("name", json!(name))])
}

fn environment(p: Props<'_>) -> Result<Environment, DriverError> {
    let vars = p
        .object("Environment")
        .map(|e| e.string_map("Variables"))
        .transpose()?
        .unwrap_or_default();
    Ok(Environment::builder()
        .set_variables(Some(vars.into_iter().collect::<HashMap<_, _>>()))
        .build())
}

fn architectures(p: Props<'_>) -> Result<Vec<Architecture>, DriverError> {
    Ok(p.strings("Architectures")?
        .iter()
        .map(|a| Architecture::from(a.as_str()))
        .collect())
}

/// `VpcConfig`, or `None` for a function outside any VPC. Updates send empty lists to detach
/// one (`detach`), as UpdateFunctionConfiguration documents.
fn vpc_config(p: Props<'_>, detach: bool) -> Result<Option<VpcConfig>, DriverError> {
    match p.object("VpcConfig") {
        Some(v) => Ok(Some(
            VpcConfig::builder()
                .set_subnet_ids(Some(v.strings("SubnetIds")?))
                .set_security_group_ids(Some(v.strings("SecurityGroupIds")?))
                .build(),
        )),
        None if detach => Ok(Some(
            VpcConfig::builder()
                .set_subnet_ids(Some(Vec::new()))
                .set_security_group_ids(Some(Vec::new()))
                .build(),
        )),
        None => Ok(None),
    }
}

fn code(p: Props<'_>) -> Result<(String, String), DriverError> {
    let code = p
        .object("Code")
        .ok_or_else(|| DriverError::permanent("internal: a function without `Code`"))?;
    Ok((
        code.str("S3Bucket")?.to_string(),
        code.str("S3Key")?.to_string(),
    ))
}

pub(super) async fn create_function(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let name = p.str("FunctionName")?;
    let (bucket, key) = code(p)?;
    let lambda = &d.clients.lambda;
    let request = lambda
        .create_function()
        .function_name(name)
        .set_description(p.opt_str("Description").map(str::to_string))
        .runtime(Runtime::from(p.str("Runtime")?))
        .handler(p.str("Handler")?)
        .role(p.str("Role")?)
        .code(
            FunctionCode::builder()
                .s3_bucket(bucket)
                .s3_key(key)
                .build(),
        )
        .package_type(PackageType::from(p.opt_str("PackageType").unwrap_or("Zip")))
        .set_architectures(Some(architectures(p)?))
        .memory_size(p.i32("MemorySize")?)
        .timeout(p.i32("Timeout")?)
        .environment(environment(p)?)
        .set_vpc_config(vpc_config(p, false)?)
        .set_tags(Some(p.string_map("Tags")?.into_iter().collect()));
    let out = once_role_is_ready(|| async { request.clone().send().await.call("CreateFunction") })
        .await?;
    let arn = out.function_arn().unwrap_or_default().to_string();
    if let Some(n) = p.opt_i32("ReservedConcurrentExecutions") {
        lambda
            .put_function_concurrency()
            .function_name(name)
            .reserved_concurrent_executions(n)
            .send()
            .await
            .call("PutFunctionConcurrency")?;
    }
    settle(d, name).await?;
    Ok(function_outputs(name, &arn))
}

/// Waits until the function is `Active` and not being updated.
async fn settle(d: &AwsDriver, name: &str) -> Result<String, DriverError> {
    let started = Instant::now();
    loop {
        let c = d
            .clients
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .call("GetFunctionConfiguration")?;
        let failed = |what: &str, reason: Option<&str>| {
            DriverError::permanent(format!(
                "function `{name}` {what}: {}",
                reason.unwrap_or("no reason given")
            ))
        };
        if c.state() == Some(&State::Failed) {
            return Err(failed("failed to become active", c.state_reason()));
        }
        if c.last_update_status() == Some(&LastUpdateStatus::Failed) {
            return Err(failed("failed to update", c.last_update_status_reason()));
        }
        let active = matches!(c.state(), None | Some(State::Active));
        let updating = c.last_update_status() == Some(&LastUpdateStatus::InProgress);
        if active && !updating {
            return Ok(c.function_arn().unwrap_or_default().to_string());
        }
        if started.elapsed() > d.settle_timeout {
            return Err(DriverError::retryable(format!(
                "function `{name}` is still {} after {} s",
                if updating { "updating" } else { "pending" },
                d.settle_timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

const CONFIGURATION: &[&str] = &[
    "Description",
    "Runtime",
    "Handler",
    "Role",
    "MemorySize",
    "Timeout",
    "Environment",
    "VpcConfig",
];

pub(super) async fn update_function(
    d: &AwsDriver,
    before: Props<'_>,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let name = p.str("FunctionName")?;
    let lambda = &d.clients.lambda;
    let changed = |key: &str| before.get(key) != p.get(key);
    if changed("Code") || changed("Architectures") {
        let (bucket, key) = code(p)?;
        lambda
            .update_function_code()
            .function_name(name)
            .s3_bucket(bucket)
            .s3_key(key)
            .set_architectures(Some(architectures(p)?))
            .send()
            .await
            .call("UpdateFunctionCode")?;
        settle(d, name).await?;
    }
    if CONFIGURATION.iter().any(|k| changed(k)) {
        lambda
            .update_function_configuration()
            .function_name(name)
            .description(p.opt_str("Description").unwrap_or_default())
            .runtime(Runtime::from(p.str("Runtime")?))
            .handler(p.str("Handler")?)
            .role(p.str("Role")?)
            .memory_size(p.i32("MemorySize")?)
            .timeout(p.i32("Timeout")?)
            .environment(environment(p)?)
            .set_vpc_config(vpc_config(p, before.get("VpcConfig").is_some())?)
            .send()
            .await
            .call("UpdateFunctionConfiguration")?;
        settle(d, name).await?;
    }
    if changed("ReservedConcurrentExecutions") {
        match p.opt_i32("ReservedConcurrentExecutions") {
            Some(n) => {
                lambda
                    .put_function_concurrency()
                    .function_name(name)
                    .reserved_concurrent_executions(n)
                    .send()
                    .await
                    .call("PutFunctionConcurrency")?;
            }
            None => {
                lambda
                    .delete_function_concurrency()
                    .function_name(name)
                    .send()
                    .await
                    .call("DeleteFunctionConcurrency")?;
            }
        }
    }
    let arn = settle(d, name).await?;
    let (set, removed) = map_changes(&before.string_map("Tags")?, &p.string_map("Tags")?);
    if !removed.is_empty() {
        lambda
            .untag_resource()
            .resource(&arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .call("UntagResource")?;
    }
    if !set.is_empty() {
        lambda
            .tag_resource()
            .resource(&arn)
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .call("TagResource")?;
    }
    Ok(function_outputs(name, &arn))
}

pub(super) async fn delete_function(d: &AwsDriver, name: &str) -> Result<(), DriverError> {
    gone(
        d.clients
            .lambda
            .delete_function()
            .function_name(name)
            .send()
            .await
            .call("DeleteFunction"),
    )?;
    Ok(())
}

pub(super) async fn read_function(d: &AwsDriver, name: &str) -> Result<Option<Live>, DriverError> {
    let Some(out) = found(
        d.clients
            .lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .call("GetFunction"),
    )?
    else {
        return Ok(None);
    };
    let Some(c) = out.configuration() else {
        return Ok(None);
    };
    let vars: BTreeMap<String, String> = c
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let tags: BTreeMap<String, String> = out
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let key = c
        .code_sha256()
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .map(|bytes| d.artifacts.key(&hex(&bytes)))
        .unwrap_or_default();
    let mut props = json!({
        "FunctionName": c.function_name().unwrap_or(name),
        "Description": c.description().unwrap_or_default(),
        "Runtime": c.runtime().map(|r| r.as_str()).unwrap_or_default(),
        "Handler": c.handler().unwrap_or_default(),
        "Role": c.role().unwrap_or_default(),
        "Code": { "S3Bucket": d.artifacts.bucket, "S3Key": key },
        "PackageType": c.package_type().map(|t| t.as_str()).unwrap_or("Zip"),
        "Architectures": c.architectures().iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "MemorySize": c.memory_size(),
        "Timeout": c.timeout(),
        "Environment": { "Variables": map_value(&vars) },
        "Tags": map_value(&tags),
    });
    if let Some(vpc) = c.vpc_config()
        && !vpc.subnet_ids().is_empty()
    {
        props["VpcConfig"] = json!({
            "SubnetIds": vpc.subnet_ids(),
            "SecurityGroupIds": vpc.security_group_ids(),
        });
    }
    if let Some(n) = out
        .concurrency()
        .and_then(|c| c.reserved_concurrent_executions())
    {
        props["ReservedConcurrentExecutions"] = json!(n);
    }
    let arn = c.function_arn().unwrap_or_default();
    Ok(Some(live(name, props, function_outputs(name, arn))))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) async fn add_permission(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let function = p.str("FunctionName")?;
    let sid = p.str("StatementId")?;
    let added = d
        .clients
        .lambda
        .add_permission()
        .function_name(function)
        .statement_id(sid)
        .action(p.str("Action")?)
        .principal(p.str("Principal")?)
        .set_source_arn(p.opt_str("SourceArn").map(str::to_string))
        .set_source_account(p.opt_str("SourceAccount").map(str::to_string))
        .send()
        .await
        .call("AddPermission");
    match added {
        Ok(_) => {}
        // The statement id is ours and deterministic: an earlier, interrupted create made it.
        Err(e) if e.is("ResourceConflictException") && e.message.contains("already exists") => {}
        Err(e) => return Err(e.into()),
    }
    Ok(applied(format!("{function}/{sid}"), &[]))
}

pub(super) async fn remove_permission(d: &AwsDriver, id: &str) -> Result<(), DriverError> {
    let (function, sid) = split_id(kinds::PERMISSION, id)?;
    gone(
        d.clients
            .lambda
            .remove_permission()
            .function_name(function)
            .statement_id(sid)
            .send()
            .await
            .call("RemovePermission"),
    )?;
    Ok(())
}

pub(super) async fn read_permission(d: &AwsDriver, id: &str) -> Result<Option<Live>, DriverError> {
    let (function, sid) = split_id(kinds::PERMISSION, id)?;
    let Some(out) = found(
        d.clients
            .lambda
            .get_policy()
            .function_name(function)
            .send()
            .await
            .call("GetPolicy"),
    )?
    else {
        return Ok(None);
    };
    let policy = parse_document(out.policy().unwrap_or("{}"));
    let statements = match &policy["Statement"] {
        Value::Array(s) => s.clone(),
        Value::Object(_) => vec![policy["Statement"].clone()],
        _ => Vec::new(),
    };
    let Some(s) = statements.iter().find(|s| s["Sid"] == sid) else {
        return Ok(None);
    };
    let principal = match &s["Principal"] {
        Value::String(p) => p.clone(),
        other => other["Service"]
            .as_str()
            .or_else(|| other["AWS"].as_str())
            .unwrap_or_default()
            .to_string(),
    };
    let mut props = json!({
        "FunctionName": function,
        "StatementId": sid,
        "Action": s["Action"],
        "Principal": principal,
    });
    if let Some(arn) = s["Condition"]["ArnLike"]["AWS:SourceArn"].as_str() {
        props["SourceArn"] = json!(arn);
    }
    if let Some(account) = s["Condition"]["StringEquals"]["AWS:SourceAccount"].as_str() {
        props["SourceAccount"] = json!(account);
    }
    Ok(Some(live(id, props, applied(id, &[]))))
}

fn response_types(p: Props<'_>) -> Result<Vec<FunctionResponseType>, DriverError> {
    Ok(p.strings("FunctionResponseTypes")?
        .iter()
        .map(|t| FunctionResponseType::from(t.as_str()))
        .collect())
}

fn filter_criteria(p: Props<'_>) -> Option<FilterCriteria> {
    let filters = p.get("FilterCriteria")?.get("Filters")?.as_array()?;
    Some(
        FilterCriteria::builder()
            .set_filters(Some(
                filters
                    .iter()
                    .map(|f| {
                        let pattern = match &f["Pattern"] {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        Filter::builder().pattern(pattern).build()
                    })
                    .collect(),
            ))
            .build(),
    )
}

pub(super) async fn create_mapping(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let out = d
        .clients
        .lambda
        .create_event_source_mapping()
        .function_name(p.str("FunctionName")?)
        .event_source_arn(p.str("EventSourceArn")?)
        .set_batch_size(p.opt_i32("BatchSize"))
        .set_maximum_batching_window_in_seconds(p.opt_i32("MaximumBatchingWindowInSeconds"))
        .set_starting_position(p.opt_str("StartingPosition").map(EventSourcePosition::from))
        .set_function_response_types(Some(response_types(p)?))
        .set_filter_criteria(filter_criteria(p))
        .set_enabled(p.opt_bool("Enabled"))
        .send()
        .await
        .call("CreateEventSourceMapping")?;
    let uuid = out.uuid().unwrap_or_default();
    Ok(applied(uuid, &[("uuid", json!(uuid))]))
}

pub(super) async fn update_mapping(
    d: &AwsDriver,
    uuid: &str,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    d.clients
        .lambda
        .update_event_source_mapping()
        .uuid(uuid)
        .function_name(p.str("FunctionName")?)
        .set_batch_size(p.opt_i32("BatchSize"))
        .maximum_batching_window_in_seconds(
            p.opt_i32("MaximumBatchingWindowInSeconds").unwrap_or(0),
        )
        .set_function_response_types(Some(response_types(p)?))
        .filter_criteria(filter_criteria(p).unwrap_or_else(|| FilterCriteria::builder().build()))
        .set_enabled(p.opt_bool("Enabled"))
        .send()
        .await
        .call("UpdateEventSourceMapping")?;
    Ok(applied(uuid, &[("uuid", json!(uuid))]))
}

pub(super) async fn delete_mapping(d: &AwsDriver, uuid: &str) -> Result<(), DriverError> {
    gone(
        d.clients
            .lambda
            .delete_event_source_mapping()
            .uuid(uuid)
            .send()
            .await
            .call("DeleteEventSourceMapping"),
    )?;
    Ok(())
}

pub(super) async fn read_mapping(d: &AwsDriver, uuid: &str) -> Result<Option<Live>, DriverError> {
    let Some(m) = found(
        d.clients
            .lambda
            .get_event_source_mapping()
            .uuid(uuid)
            .send()
            .await
            .call("GetEventSourceMapping"),
    )?
    else {
        return Ok(None);
    };
    // Lambda reports the function by ARN; lowering names it.
    let function = m
        .function_arn()
        .and_then(|a| a.rsplit(':').next())
        .unwrap_or_default();
    let mut props = json!({
        "FunctionName": function,
        "EventSourceArn": m.event_source_arn().unwrap_or_default(),
        "FunctionResponseTypes": m.function_response_types().iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "Enabled": !matches!(m.state(), Some("Disabled" | "Disabling")),
    });
    if let Some(n) = m.batch_size() {
        props["BatchSize"] = json!(n);
    }
    if let Some(n) = m.maximum_batching_window_in_seconds().filter(|n| *n > 0) {
        props["MaximumBatchingWindowInSeconds"] = json!(n);
    }
    if let Some(pos) = m.starting_position() {
        props["StartingPosition"] = json!(pos.as_str());
    }
    if let Some(filters) = m
        .filter_criteria()
        .map(|c| c.filters())
        .filter(|f| !f.is_empty())
    {
        props["FilterCriteria"] = json!({
            "Filters": filters
                .iter()
                .map(|f| json!({ "Pattern": parse_document(f.pattern().unwrap_or("{}")) }))
                .collect::<Vec<_>>()
        });
    }
    Ok(Some(live(
        uuid,
        props,
        applied(uuid, &[("uuid", json!(uuid))]),
    )))
}
