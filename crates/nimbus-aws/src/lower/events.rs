//! Event triggers: schedules, queues, topics, buckets and tables.
//!
//! - schedule: an EventBridge Scheduler schedule in the `default` group, with the expression
//!   translated by `nimbus_schedule::to_aws`, the trigger's time zone, and a target input shaped
//!   like the scheduled event the shim reads (`detail-type: Scheduled Event`, the scheduled
//!   `time` and the schedule's ARN in `resources`); it assumes a role of the function's own that
//!   may only `lambda:InvokeFunction` that function (trusted by `scheduler.amazonaws.com` for
//!   this account only).
//! - queue: an event source mapping with the batch size (and, past 10, the one-second batching
//!   window SQS then requires) and `ReportBatchItemFailures`; the queue's visibility timeout
//!   must cover the function's timeout.
//! - topic: a `lambda` subscription, and a permission for `sns.amazonaws.com` from that topic.
//! - bucket: a permission for `s3.amazonaws.com` from that bucket and account, and an entry in
//!   the bucket's one notification configuration (`s3:ObjectCreated:*` / `s3:ObjectRemoved:*`,
//!   prefix and suffix filters); overlapping entries are rejected here, as S3 would.
//! - table: an event source mapping on the table's stream from `LATEST`, with
//!   `ReportBatchItemFailures` and, when not every change is wanted, a filter on `eventName`.

use std::collections::BTreeMap;

use nimbus_graph::{FunctionNode, ResourceSpec, TriggerSpec};
use nimbus_manifest::{BucketEvent, TableEvent};
use serde_json::{Value, json};

use super::function::timeout_s;
use super::http::statement_id;
use super::{Cx, iam, id, out, trigger_key};
use crate::error::{AwsError, ScheduleProblem};
use crate::kinds;
use crate::names;

/// The triggers of one function (bucket notifications are gathered per bucket afterwards).
pub(super) fn triggers(cx: &mut Cx, f: &FunctionNode) -> Result<(), AwsError> {
    let mut scheduler_role = None;
    for t in &f.triggers {
        let key = trigger_key(&t.id);
        match &t.spec {
            TriggerSpec::Http { .. } => {}
            TriggerSpec::Schedule {
                expression,
                timezone,
            } => {
                let role = match &scheduler_role {
                    Some(role) => role,
                    None => scheduler_role.insert(scheduler_role_for(cx, f)),
                };
                schedule(cx, f, &t.id, key, expression, timezone, role)?;
            }
            TriggerSpec::Queue {
                resource,
                batch_size,
            } => queue(cx, f, key, resource, *batch_size)?,
            TriggerSpec::Topic { resource } => topic(cx, f, key, resource),
            TriggerSpec::Bucket { resource, .. } => {
                let bucket = cx.bucket_name(resource)?;
                let props = json!({
                    "FunctionName": out(kinds::FUNCTION, &f.name, "name"),
                    "StatementId": statement_id(key),
                    "Action": "lambda:InvokeFunction",
                    "Principal": "s3.amazonaws.com",
                    "SourceArn": cx.scope.bucket_arn(&bucket),
                    "SourceAccount": cx.scope.account,
                });
                cx.push(kinds::PERMISSION, key, None, props);
            }
            TriggerSpec::Table {
                resource,
                events,
                batch_size,
            } => table(cx, f, key, resource, events, *batch_size),
        }
    }
    Ok(())
}

/// The role the scheduler assumes to invoke `f`; returns the name of its resources.
fn scheduler_role_for(cx: &mut Cx, f: &FunctionNode) -> String {
    let name = format!("{}/scheduler", f.name);
    let role_name = names::scheduler_role(cx.service(), cx.stage(), &f.name, &cx.scope);
    let account = cx.scope.account.clone();
    let props = json!({
        "RoleName": role_name,
        "AssumeRolePolicyDocument": iam::trust("scheduler.amazonaws.com", Some(&account)),
        "Description": format!("Nimbus: lets EventBridge Scheduler invoke {} of {} ({})", f.name, cx.service(), cx.stage()),
        "Tags": cx.tag_list(),
    });
    cx.push(kinds::ROLE, &name, Some(role_name), props);
    let props = json!({
        "RoleName": out(kinds::ROLE, &name, "name"),
        "PolicyName": "nimbus",
        "PolicyDocument": iam::document(vec![iam::allow(
            "Invoke",
            &["lambda:InvokeFunction"],
            vec![out(kinds::FUNCTION, &f.name, "arn")],
        )]),
    });
    cx.push(kinds::ROLE_POLICY, &name, None, props);
    name
}

fn schedule(
    cx: &mut Cx,
    f: &FunctionNode,
    trigger_id: &str,
    key: &str,
    expression: &str,
    timezone: &str,
    role: &str,
) -> Result<(), AwsError> {
    let problem = |source: ScheduleProblem| AwsError::Schedule {
        function: f.name.clone(),
        expression: expression.to_string(),
        source,
    };
    let parsed = nimbus_schedule::parse(expression).map_err(|e| problem(e.into()))?;
    let aws = nimbus_schedule::to_aws(&parsed).map_err(|e| problem(e.into()))?;
    let name = names::schedule(cx.service(), cx.stage(), trigger_id);
    let props = json!({
        "Name": name,
        "GroupName": "default",
        "Description": format!("Nimbus: {expression} ({timezone}) runs {} of {} ({})", f.name, cx.service(), cx.stage()),
        "ScheduleExpression": aws,
        "ScheduleExpressionTimezone": timezone,
        "FlexibleTimeWindow": { "Mode": "OFF" },
        "State": "ENABLED",
        "Target": {
            "Arn": out(kinds::FUNCTION, &f.name, "arn"),
            "RoleArn": out(kinds::ROLE, role, "arn"),
            "Input": {
                "version": "0",
                "detail-type": "Scheduled Event",
                "source": "aws.scheduler",
                "time": "<aws.scheduler.scheduled-time>",
                "resources": ["<aws.scheduler.schedule-arn>"],
                "detail": {},
            },
            // EventBridge Scheduler's own defaults, written out so that what is deployed is
            // what the state records: retry for a day, up to 185 times.
            "RetryPolicy": { "MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185 },
        },
    });
    let schedule = cx.push(kinds::SCHEDULE, key, Some(name), props);
    cx.depend(&schedule, &id(kinds::ROLE_POLICY, role));
    Ok(())
}

fn queue(
    cx: &mut Cx,
    f: &FunctionNode,
    key: &str,
    resource: &str,
    batch_size: u32,
) -> Result<(), AwsError> {
    // An existing queue's visibility timeout is its owner's: Lambda itself refuses a mapping
    // whose queue hides messages for less than the function's timeout.
    if let ResourceSpec::Queue {
        visibility_timeout_ms,
        ..
    } = &cx.graph.resources[resource].spec
        && cx.existing(resource).is_none()
    {
        let visibility_s = visibility_timeout_ms.div_ceil(1000);
        if visibility_s < timeout_s(f) {
            return Err(AwsError::VisibilityTimeout {
                queue: resource.to_string(),
                function: f.name.clone(),
                visibility_s,
                timeout_s: timeout_s(f),
            });
        }
    }
    let mut props = json!({
        "FunctionName": out(kinds::FUNCTION, &f.name, "name"),
        "EventSourceArn": cx.res(resource, "arn"),
        "BatchSize": batch_size,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "Enabled": true,
    });
    if batch_size > 10 {
        props["MaximumBatchingWindowInSeconds"] = json!(1);
    }
    let mapping = cx.push(kinds::EVENT_SOURCE_MAPPING, key, None, props);
    // Lambda checks the role's SQS permissions when the mapping is created.
    cx.depend(&mapping, &id(kinds::ROLE_POLICY, &f.name));
    Ok(())
}

fn topic(cx: &mut Cx, f: &FunctionNode, key: &str, resource: &str) {
    let props = json!({
        "FunctionName": out(kinds::FUNCTION, &f.name, "name"),
        "StatementId": statement_id(key),
        "Action": "lambda:InvokeFunction",
        "Principal": "sns.amazonaws.com",
        "SourceArn": cx.res(resource, "arn"),
    });
    let permission = cx.push(kinds::PERMISSION, key, None, props);
    let props = json!({
        "TopicArn": cx.res(resource, "arn"),
        "Protocol": "lambda",
        "Endpoint": out(kinds::FUNCTION, &f.name, "arn"),
    });
    let subscription = cx.push(kinds::SUBSCRIPTION, key, None, props);
    cx.depend(&subscription, &permission);
}

fn table(
    cx: &mut Cx,
    f: &FunctionNode,
    key: &str,
    resource: &str,
    events: &[TableEvent],
    batch_size: u32,
) {
    let mut props = json!({
        "FunctionName": out(kinds::FUNCTION, &f.name, "name"),
        "EventSourceArn": cx.res(resource, "stream_arn"),
        "StartingPosition": "LATEST",
        "BatchSize": batch_size,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "Enabled": true,
    });
    let all = [TableEvent::Insert, TableEvent::Modify, TableEvent::Remove];
    if !all.iter().all(|e| events.contains(e)) {
        let names: Vec<&str> = all
            .iter()
            .filter(|e| events.contains(e))
            .map(|e| match e {
                TableEvent::Insert => "INSERT",
                TableEvent::Modify => "MODIFY",
                TableEvent::Remove => "REMOVE",
            })
            .collect();
        props["FilterCriteria"] = json!({ "Filters": [{ "Pattern": { "eventName": names } }] });
    }
    let mapping = cx.push(kinds::EVENT_SOURCE_MAPPING, key, None, props);
    cx.depend(&mapping, &id(kinds::ROLE_POLICY, &f.name));
}

/// One trigger's entry in a bucket's notification configuration.
struct Entry {
    function: String,
    key: String,
    events: Vec<BucketEvent>,
    prefix: String,
    suffix: String,
}

impl Entry {
    fn overlaps(&self, other: &Entry) -> bool {
        let either = |a: &str, b: &str, f: fn(&str, &str) -> bool| f(a, b) || f(b, a);
        self.events.iter().any(|e| other.events.contains(e))
            && either(&self.prefix, &other.prefix, |a, b| a.starts_with(b))
            && either(&self.suffix, &other.suffix, |a, b| a.ends_with(b))
    }
}

/// One notification configuration per bucket that triggers functions.
pub(super) fn bucket_notifications(cx: &mut Cx) -> Result<(), AwsError> {
    let mut per_bucket: BTreeMap<&str, Vec<Entry>> = BTreeMap::new();
    for f in cx.graph.functions.values() {
        for t in &f.triggers {
            if let TriggerSpec::Bucket {
                resource,
                events,
                prefix,
                suffix,
            } = &t.spec
            {
                per_bucket.entry(resource).or_default().push(Entry {
                    function: f.name.clone(),
                    key: trigger_key(&t.id).to_string(),
                    events: events.clone(),
                    prefix: prefix.clone().unwrap_or_default(),
                    suffix: suffix.clone().unwrap_or_default(),
                });
            }
        }
    }
    for (bucket, entries) in per_bucket {
        if cx.existing(bucket).is_some() {
            // `validate -p aws` refuses it first (see providers/aws/capabilities.toml).
            return Err(AwsError::ExistingBucketTrigger {
                bucket: bucket.to_string(),
            });
        }
        for (i, a) in entries.iter().enumerate() {
            if let Some(b) = entries[i + 1..].iter().find(|b| a.overlaps(b)) {
                return Err(AwsError::OverlappingNotifications {
                    bucket: bucket.to_string(),
                    first: a.function.clone(),
                    second: b.function.clone(),
                });
            }
        }
        let configurations: Vec<Value> = entries.iter().map(configuration).collect();
        let props = json!({
            "Bucket": out(kinds::BUCKET, bucket, "name"),
            "NotificationConfiguration": { "LambdaFunctionConfigurations": configurations },
        });
        let notification = cx.push(kinds::BUCKET_NOTIFICATION, bucket, None, props);
        // S3 checks that it may invoke each function when the configuration is written.
        for e in &entries {
            cx.depend(&notification, &id(kinds::PERMISSION, &e.key));
        }
    }
    Ok(())
}

fn configuration(e: &Entry) -> Value {
    let events: Vec<&str> = e
        .events
        .iter()
        .map(|ev| match ev {
            BucketEvent::Created => "s3:ObjectCreated:*",
            BucketEvent::Deleted => "s3:ObjectRemoved:*",
        })
        .collect();
    let mut c = json!({
        "Id": e.key.replace('/', "-"),
        "LambdaFunctionArn": out(kinds::FUNCTION, &e.function, "arn"),
        "Events": events,
    });
    let mut rules = Vec::new();
    if !e.prefix.is_empty() {
        rules.push(json!({ "Name": "prefix", "Value": e.prefix }));
    }
    if !e.suffix.is_empty() {
        rules.push(json!({ "Name": "suffix", "Value": e.suffix }));
    }
    if !rules.is_empty() {
        c["Filter"] = json!({ "Key": { "FilterRules": rules } });
    }
    c
}
