//! `aws.existing`: a resource of the manifest that already exists (`existing.aws`). Reads only:
//! create and update look it up (DescribeTable, GetQueueUrl, GetTopicAttributes, HeadBucket)
//! and report its outputs; delete forgets it; nothing here ever writes to it. The physical id
//! is its ARN.
//!
//! [`preflight`] runs the same lookups before a deploy changes anything, and refuses a table
//! trigger on a table whose stream is off (enabling it would change the table), saying how to
//! turn it on.

use nimbus_engine::{Applied, DriverError, Live, NativeResource};
use serde_json::{Value, json};

use super::error::{Call, found};
use super::{AwsDriver, Props, applied, live};
use crate::kinds;
use crate::lower::existing_properties;

/// Looks the resource up; `need_stream`: fail unless a table's stream is enabled.
pub(super) async fn lookup(
    d: &AwsDriver,
    p: Props<'_>,
    need_stream: bool,
) -> Result<Applied, DriverError> {
    let arn = p.str("Arn")?;
    let name = p.str("Name")?;
    let kind = p.str("Kind")?;
    let missing = || {
        DriverError::permanent(format!(
            "the existing {kind} `{arn}` was not found (or these credentials may not see it); \
             create it, or fix `existing.aws` in the manifest"
        ))
    };
    let mut outputs = vec![("name", json!(name)), ("arn", json!(arn))];
    match kind {
        "table" => {
            let out = found(
                d.clients
                    .dynamodb
                    .describe_table()
                    .table_name(name)
                    .send()
                    .await
                    .call("DescribeTable"),
            )?
            .ok_or_else(missing)?;
            let table = out.table().ok_or_else(missing)?;
            let enabled = table
                .stream_specification()
                .is_some_and(|s| s.stream_enabled());
            match table.latest_stream_arn().filter(|_| enabled) {
                Some(stream) => outputs.push(("stream_arn", json!(stream))),
                None if need_stream => {
                    return Err(DriverError::permanent(format!(
                        "the existing table `{name}` has no stream, which a `table` trigger \
                         needs; Nimbus does not change tables it does not own: enable it with \
                         `aws dynamodb update-table --table-name {name} --stream-specification \
                         StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES`, then deploy again"
                    )));
                }
                None => {}
            }
        }
        "queue" => {
            let account = arn.split(':').nth(4).unwrap_or_default();
            let out = found(
                d.clients
                    .sqs
                    .get_queue_url()
                    .queue_name(name)
                    .queue_owner_aws_account_id(account)
                    .send()
                    .await
                    .call("GetQueueUrl"),
            )?
            .ok_or_else(missing)?;
            outputs.push(("url", json!(out.queue_url().unwrap_or_default())));
        }
        "topic" => {
            found(
                d.clients
                    .sns
                    .get_topic_attributes()
                    .topic_arn(arn)
                    .send()
                    .await
                    .call("GetTopicAttributes"),
            )?
            .ok_or_else(missing)?;
        }
        "bucket" => {
            found(
                d.clients
                    .s3
                    .head_bucket()
                    .bucket(name)
                    .send()
                    .await
                    .call("HeadBucket"),
            )?
            .ok_or_else(missing)?;
        }
        other => {
            return Err(DriverError::permanent(format!(
                "internal: `aws.existing` of unknown kind `{other}`"
            )));
        }
    }
    Ok(applied(arn, &outputs))
}

/// The resource as it is: the properties lowering gives its ARN, and its outputs.
pub(super) async fn read(d: &AwsDriver, arn: &str) -> Result<Option<Live>, DriverError> {
    let Some(properties) = existing_properties(arn) else {
        return Ok(None);
    };
    match lookup(d, Props::new(kinds::EXISTING, &properties), false).await {
        Ok(outputs) => Ok(Some(live(arn, properties, outputs))),
        Err(e) if !e.retryable && e.message.contains("was not found") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether some resource of `desired` reads the stream of existing table `id`.
fn stream_needed(desired: &[NativeResource], id: &str) -> bool {
    desired.iter().any(|r| {
        nimbus_engine::resource::references(&r.properties)
            .iter()
            .any(|(target, output)| target == id && output == "stream_arn")
    })
}

/// Every existing resource of `desired` looked up, before a deploy changes anything.
pub(crate) async fn preflight(
    d: &AwsDriver,
    desired: &[NativeResource],
) -> Result<(), DriverError> {
    for r in desired.iter().filter(|r| r.kind == kinds::EXISTING) {
        let need_stream = stream_needed(desired, &r.id);
        lookup(d, Props::new(&r.kind, &r.properties), need_stream).await?;
    }
    Ok(())
}

/// Create and update: the same lookup ([`preflight`] has checked the streams already).
pub(super) async fn apply(
    d: &AwsDriver,
    resource: &NativeResource,
    properties: &Value,
) -> Result<Applied, DriverError> {
    lookup(d, Props::new(&resource.kind, properties), false).await
}
