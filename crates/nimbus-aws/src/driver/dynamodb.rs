//! DynamoDB tables (physical id: the table name): on-demand, with a stream when a function
//! listens to changes, point-in-time recovery, tags. Creates and stream changes wait for the
//! table to be `ACTIVE` again, since the stream ARN is known only then and DynamoDB refuses the
//! next change before.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    PointInTimeRecoveryStatus, ScalarAttributeType, StreamSpecification, StreamViewType,
    TableDescription, TableStatus, Tag,
};
use nimbus_engine::{Applied, DriverError, Live};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::error::{Call, found, gone};
use super::props::{map_changes, tag_list_value};
use super::{AwsDriver, Props, applied, built, live};

fn outputs(t: &TableDescription) -> Applied {
    let name = t.table_name().unwrap_or_default();
    let mut out = vec![
        ("name", json!(name)),
        ("arn", json!(t.table_arn().unwrap_or_default())),
    ];
    if let Some(stream) = t.latest_stream_arn().filter(|_| stream_enabled(t)) {
        out.push(("stream_arn", json!(stream)));
    }
    applied(name, &out)
}

fn stream_enabled(t: &TableDescription) -> bool {
    t.stream_specification().is_some_and(|s| s.stream_enabled())
}

fn list(p: Props<'_>, key: &str) -> Vec<Value> {
    p.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn definitions(p: Props<'_>) -> Result<Vec<AttributeDefinition>, DriverError> {
    list(p, "AttributeDefinitions")
        .iter()
        .map(|a| {
            built(
                AttributeDefinition::builder()
                    .attribute_name(a["AttributeName"].as_str().unwrap_or_default())
                    .attribute_type(ScalarAttributeType::from(
                        a["AttributeType"].as_str().unwrap_or_default(),
                    ))
                    .build(),
            )
        })
        .collect()
}

fn key_schema(p: Props<'_>) -> Result<Vec<KeySchemaElement>, DriverError> {
    list(p, "KeySchema")
        .iter()
        .map(|k| {
            built(
                KeySchemaElement::builder()
                    .attribute_name(k["AttributeName"].as_str().unwrap_or_default())
                    .key_type(KeyType::from(k["KeyType"].as_str().unwrap_or_default()))
                    .build(),
            )
        })
        .collect()
}

fn stream(p: Props<'_>) -> Result<Option<StreamSpecification>, DriverError> {
    let Some(s) = p.object("StreamSpecification") else {
        return Ok(None);
    };
    Ok(Some(built(
        StreamSpecification::builder()
            .stream_enabled(s.opt_bool("StreamEnabled").unwrap_or(false))
            .set_stream_view_type(s.opt_str("StreamViewType").map(StreamViewType::from))
            .build(),
    )?))
}

fn tags(map: BTreeMap<String, String>) -> Result<Vec<Tag>, DriverError> {
    map.into_iter()
        .map(|(k, v)| built(Tag::builder().key(k).value(v).build()))
        .collect()
}

fn pitr(p: Props<'_>) -> Option<bool> {
    p.object("PointInTimeRecoverySpecification")
        .and_then(|s| s.opt_bool("PointInTimeRecoveryEnabled"))
}

async fn set_pitr(d: &AwsDriver, name: &str, enabled: bool) -> Result<(), DriverError> {
    d.clients
        .dynamodb
        .update_continuous_backups()
        .table_name(name)
        .point_in_time_recovery_specification(built(
            PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(enabled)
                .build(),
        )?)
        .send()
        .await
        .call("UpdateContinuousBackups")?;
    Ok(())
}

pub(super) async fn create(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let name = p.str("TableName")?;
    let created = d
        .clients
        .dynamodb
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(definitions(p)?))
        .set_key_schema(Some(key_schema(p)?))
        .billing_mode(BillingMode::from(
            p.opt_str("BillingMode").unwrap_or("PAY_PER_REQUEST"),
        ))
        .set_stream_specification(stream(p)?)
        .set_tags(Some(tags(p.tag_list("Tags")?)?))
        .send()
        .await
        .call("CreateTable");
    match created {
        Ok(_) => {}
        // Being created already (an earlier, interrupted create): wait for it.
        Err(e) if e.is("ResourceInUseException") => {}
        Err(e) => return Err(e.into()),
    }
    let table = settle(d, name).await?;
    if pitr(p) == Some(true) {
        set_pitr(d, name, true).await?;
    }
    Ok(outputs(&table))
}

/// Waits until the table is `ACTIVE`.
async fn settle(d: &AwsDriver, name: &str) -> Result<TableDescription, DriverError> {
    let started = Instant::now();
    loop {
        let out = d
            .clients
            .dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .call("DescribeTable")?;
        if let Some(t) = out.table()
            && matches!(t.table_status(), None | Some(TableStatus::Active))
        {
            return Ok(t.clone());
        }
        if started.elapsed() > d.settle_timeout {
            return Err(DriverError::retryable(format!(
                "table `{name}` is not ACTIVE after {} s",
                d.settle_timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub(super) async fn update(
    d: &AwsDriver,
    before: Props<'_>,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let name = p.str("TableName")?;
    let db = &d.clients.dynamodb;
    let changed = |key: &str| before.get(key) != p.get(key);
    if changed("BillingMode") {
        db.update_table()
            .table_name(name)
            .billing_mode(BillingMode::from(
                p.opt_str("BillingMode").unwrap_or("PAY_PER_REQUEST"),
            ))
            .send()
            .await
            .call("UpdateTable")?;
        settle(d, name).await?;
    }
    if changed("StreamSpecification") {
        db.update_table()
            .table_name(name)
            .set_stream_specification(stream(p)?)
            .send()
            .await
            .call("UpdateTable")?;
        settle(d, name).await?;
    }
    if pitr(before) != pitr(p) {
        set_pitr(d, name, pitr(p) == Some(true)).await?;
    }
    let table = settle(d, name).await?;
    let arn = table.table_arn().unwrap_or_default().to_string();
    let (set, removed) = map_changes(&before.tag_list("Tags")?, &p.tag_list("Tags")?);
    if !removed.is_empty() {
        db.untag_resource()
            .resource_arn(&arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .call("UntagResource")?;
    }
    if !set.is_empty() {
        db.tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(tags(set)?))
            .send()
            .await
            .call("TagResource")?;
    }
    Ok(outputs(&table))
}

pub(super) async fn delete(d: &AwsDriver, name: &str) -> Result<(), DriverError> {
    gone(
        d.clients
            .dynamodb
            .delete_table()
            .table_name(name)
            .send()
            .await
            .call("DeleteTable"),
    )?;
    Ok(())
}

pub(super) async fn holds_data(d: &AwsDriver, name: &str) -> Result<bool, DriverError> {
    let out = found(
        d.clients
            .dynamodb
            .scan()
            .table_name(name)
            .limit(1)
            .send()
            .await
            .call("Scan"),
    )?;
    Ok(out.is_some_and(|o| o.count() > 0 || !o.items().is_empty()))
}

pub(super) async fn read(d: &AwsDriver, name: &str) -> Result<Option<Live>, DriverError> {
    let db = &d.clients.dynamodb;
    let Some(out) = found(
        db.describe_table()
            .table_name(name)
            .send()
            .await
            .call("DescribeTable"),
    )?
    else {
        return Ok(None);
    };
    let Some(t) = out.table() else {
        return Ok(None);
    };
    let stream = match t.stream_specification().filter(|s| s.stream_enabled()) {
        Some(s) => json!({
            "StreamEnabled": true,
            "StreamViewType": s.stream_view_type().map(|v| v.as_str()),
        }),
        None => json!({ "StreamEnabled": false }),
    };
    let backups = db
        .describe_continuous_backups()
        .table_name(name)
        .send()
        .await
        .call("DescribeContinuousBackups")?;
    let pitr = backups
        .continuous_backups_description()
        .and_then(|c| c.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        == Some(&PointInTimeRecoveryStatus::Enabled);
    let tags: BTreeMap<String, String> = db
        .list_tags_of_resource()
        .resource_arn(t.table_arn().unwrap_or_default())
        .send()
        .await
        .call("ListTagsOfResource")?
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    let props = json!({
        "TableName": t.table_name().unwrap_or(name),
        "AttributeDefinitions": t.attribute_definitions().iter().map(|a| json!({
            "AttributeName": a.attribute_name(),
            "AttributeType": a.attribute_type().as_str(),
        })).collect::<Vec<_>>(),
        "KeySchema": t.key_schema().iter().map(|k| json!({
            "AttributeName": k.attribute_name(),
            "KeyType": k.key_type().as_str(),
        })).collect::<Vec<_>>(),
        "BillingMode": t
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str())
            .unwrap_or("PROVISIONED"),
        "StreamSpecification": stream,
        "PointInTimeRecoverySpecification": { "PointInTimeRecoveryEnabled": pitr },
        "Tags": tag_list_value(&tags),
    });
    Ok(Some(live(name, props, outputs(t))))
}
