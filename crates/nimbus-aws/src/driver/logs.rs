//! CloudWatch Logs log groups (physical id: the log group name), with retention and tags.

use nimbus_engine::{Applied, DriverError, Live};
use serde_json::json;

use super::error::{Call, gone};
use super::props::{map_changes, map_value};
use super::{AwsDriver, Props, applied, live};

/// The log group's ARN as IAM policies and API Gateway take it (`…:log-group:NAME:*`).
fn outputs(d: &AwsDriver, name: &str) -> Applied {
    applied(
        name,
        &[
            ("arn", json!(format!("{}:*", tag_arn(d, name)))),
            ("name", json!(name)),
        ],
    )
}

/// The ARN the tagging APIs take (without the trailing `:*`).
fn tag_arn(d: &AwsDriver, name: &str) -> String {
    d.scope.arn("logs", &format!("log-group:{name}"))
}

pub(super) async fn create(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let name = p.str("logGroupName")?;
    let logs = &d.clients.logs;
    let created = logs
        .create_log_group()
        .log_group_name(name)
        .set_tags(Some(p.string_map("tags")?.into_iter().collect()))
        .send()
        .await
        .call("CreateLogGroup");
    match created {
        Ok(_) => {}
        // Ours by its deterministic name (e.g. written to before it was managed): adopt it.
        Err(e) if e.is("ResourceAlreadyExistsException") => {
            tag(d, name, &p.string_map("tags")?, &Default::default()).await?
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(days) = p.opt_i32("retentionInDays") {
        logs.put_retention_policy()
            .log_group_name(name)
            .retention_in_days(days)
            .send()
            .await
            .call("PutRetentionPolicy")?;
    }
    Ok(outputs(d, name))
}

async fn tag(
    d: &AwsDriver,
    name: &str,
    after: &std::collections::BTreeMap<String, String>,
    before: &std::collections::BTreeMap<String, String>,
) -> Result<(), DriverError> {
    let (set, removed) = map_changes(before, after);
    let logs = &d.clients.logs;
    if !removed.is_empty() {
        logs.untag_resource()
            .resource_arn(tag_arn(d, name))
            .set_tag_keys(Some(removed))
            .send()
            .await
            .call("UntagResource")?;
    }
    if !set.is_empty() {
        logs.tag_resource()
            .resource_arn(tag_arn(d, name))
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .call("TagResource")?;
    }
    Ok(())
}

pub(super) async fn update(
    d: &AwsDriver,
    before: Props<'_>,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let name = p.str("logGroupName")?;
    let logs = &d.clients.logs;
    if before.opt_i32("retentionInDays") != p.opt_i32("retentionInDays") {
        match p.opt_i32("retentionInDays") {
            Some(days) => {
                logs.put_retention_policy()
                    .log_group_name(name)
                    .retention_in_days(days)
                    .send()
                    .await
                    .call("PutRetentionPolicy")?;
            }
            None => {
                logs.delete_retention_policy()
                    .log_group_name(name)
                    .send()
                    .await
                    .call("DeleteRetentionPolicy")?;
            }
        }
    }
    tag(d, name, &p.string_map("tags")?, &before.string_map("tags")?).await?;
    Ok(outputs(d, name))
}

pub(super) async fn delete(d: &AwsDriver, name: &str) -> Result<(), DriverError> {
    gone(
        d.clients
            .logs
            .delete_log_group()
            .log_group_name(name)
            .send()
            .await
            .call("DeleteLogGroup"),
    )?;
    Ok(())
}

pub(super) async fn read(d: &AwsDriver, name: &str) -> Result<Option<Live>, DriverError> {
    let logs = &d.clients.logs;
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .call("DescribeLogGroups")?;
    let Some(group) = groups
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
    else {
        return Ok(None);
    };
    let tags = logs
        .list_tags_for_resource()
        .resource_arn(tag_arn(d, name))
        .send()
        .await
        .call("ListTagsForResource")?
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut props = json!({ "logGroupName": name, "tags": map_value(&tags) });
    if let Some(days) = group.retention_in_days() {
        props["retentionInDays"] = json!(days);
    }
    Ok(Some(live(name, props, outputs(d, name))))
}
