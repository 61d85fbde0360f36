//! SNS topics (physical id: the topic ARN, which follows from the name) and subscriptions
//! (physical id: the subscription ARN). Of a topic's attributes only `KmsMasterKeyId` is
//! managed.

use std::collections::BTreeMap;

use aws_sdk_sns::types::Tag;
use nimbus_engine::{Applied, DriverError, Live};
use serde_json::{Value, json};

use super::error::{Call, found, gone};
use super::props::{map_changes, tag_list_value};
use super::{AwsDriver, Props, applied, built, live};

const MANAGED: &[&str] = &["KmsMasterKeyId"];

fn topic_outputs(arn: &str) -> Applied {
    applied(arn, &[("arn", json!(arn))])
}

fn tags(map: BTreeMap<String, String>) -> Result<Vec<Tag>, DriverError> {
    map.into_iter()
        .map(|(k, v)| built(Tag::builder().key(k).value(v).build()))
        .collect()
}

fn attributes(p: Props<'_>) -> Result<BTreeMap<String, String>, DriverError> {
    Ok(p.string_map("Attributes")?
        .into_iter()
        .filter(|(k, _)| MANAGED.contains(&k.as_str()))
        .collect())
}

pub(super) async fn create_topic(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let out = d
        .clients
        .sns
        .create_topic()
        .name(p.str("Name")?)
        .set_attributes(Some(attributes(p)?.into_iter().collect()))
        .set_tags(Some(tags(p.tag_list("Tags")?)?))
        .send()
        .await
        .call("CreateTopic")?;
    Ok(topic_outputs(out.topic_arn().unwrap_or_default()))
}

pub(super) async fn update_topic(
    d: &AwsDriver,
    arn: &str,
    before: Props<'_>,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let sns = &d.clients.sns;
    let (set, removed) = map_changes(&attributes(before)?, &attributes(p)?);
    let cleared = removed.into_iter().map(|k| (k, String::new()));
    for (name, value) in set.into_iter().chain(cleared) {
        sns.set_topic_attributes()
            .topic_arn(arn)
            .attribute_name(name)
            .attribute_value(value)
            .send()
            .await
            .call("SetTopicAttributes")?;
    }
    let (set, removed) = map_changes(&before.tag_list("Tags")?, &p.tag_list("Tags")?);
    if !removed.is_empty() {
        sns.untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .call("UntagResource")?;
    }
    if !set.is_empty() {
        sns.tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags(set)?))
            .send()
            .await
            .call("TagResource")?;
    }
    Ok(topic_outputs(arn))
}

pub(super) async fn delete_topic(d: &AwsDriver, arn: &str) -> Result<(), DriverError> {
    gone(
        d.clients
            .sns
            .delete_topic()
            .topic_arn(arn)
            .send()
            .await
            .call("DeleteTopic"),
    )?;
    Ok(())
}

pub(super) async fn read_topic(d: &AwsDriver, id: &str) -> Result<Option<Live>, DriverError> {
    let arn = match id.starts_with("arn:") {
        true => id.to_string(),
        false => d.scope.arn("sns", id),
    };
    let sns = &d.clients.sns;
    let Some(out) = found(
        sns.get_topic_attributes()
            .topic_arn(&arn)
            .send()
            .await
            .call("GetTopicAttributes"),
    )?
    else {
        return Ok(None);
    };
    let attrs: serde_json::Map<String, Value> = out
        .attributes()
        .into_iter()
        .flatten()
        .filter(|(k, _)| MANAGED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let tags: BTreeMap<String, String> = sns
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .call("ListTagsForResource")?
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    let name = arn.rsplit(':').next().unwrap_or_default();
    let props = json!({
        "Name": name,
        "Attributes": Value::Object(attrs),
        "Tags": tag_list_value(&tags),
    });
    Ok(Some(live(arn.clone(), props, topic_outputs(&arn))))
}

pub(super) async fn subscribe(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let out = d
        .clients
        .sns
        .subscribe()
        .topic_arn(p.str("TopicArn")?)
        .protocol(p.str("Protocol")?)
        .endpoint(p.str("Endpoint")?)
        .return_subscription_arn(true)
        .send()
        .await
        .call("Subscribe")?;
    let arn = out.subscription_arn().unwrap_or_default();
    Ok(applied(arn, &[("arn", json!(arn))]))
}

pub(super) async fn unsubscribe(d: &AwsDriver, arn: &str) -> Result<(), DriverError> {
    gone(
        d.clients
            .sns
            .unsubscribe()
            .subscription_arn(arn)
            .send()
            .await
            .call("Unsubscribe"),
    )?;
    Ok(())
}

pub(super) async fn read_subscription(
    d: &AwsDriver,
    arn: &str,
) -> Result<Option<Live>, DriverError> {
    let Some(out) = found(
        d.clients
            .sns
            .get_subscription_attributes()
            .subscription_arn(arn)
            .send()
            .await
            .call("GetSubscriptionAttributes"),
    )?
    else {
        return Ok(None);
    };
    let attrs = out.attributes().cloned().unwrap_or_default();
    let get = |k: &str| attrs.get(k).cloned().unwrap_or_default();
    let props = json!({
        "TopicArn": get("TopicArn"),
        "Protocol": get("Protocol"),
        "Endpoint": get("Endpoint"),
    });
    Ok(Some(live(arn, props, applied(arn, &[("arn", json!(arn))]))))
}
