//! SQS queues. The physical id is the queue URL (what every SQS call takes); a bare name (an
//! interrupted create, found by lowering's physical name) is looked up with GetQueueUrl.
//! Only the attributes nimbus sets are read back: `VisibilityTimeout`, `MessageRetentionPeriod`,
//! `SqsManagedSseEnabled` and `RedrivePolicy` (parsed, so it compares with lowering's value).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_sqs::types::QueueAttributeName;
use nimbus_engine::{Applied, DriverError, Live};
use serde_json::{Value, json};

use super::error::{Call, found, gone};
use super::props::{map_changes, map_value};
use super::{AwsDriver, Props, applied, live};

/// The attributes nimbus manages.
const MANAGED: &[&str] = &[
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "SqsManagedSseEnabled",
    "RedrivePolicy",
];

fn outputs(d: &AwsDriver, url: &str, name: &str) -> Applied {
    applied(
        url,
        &[
            ("url", json!(url)),
            ("arn", json!(d.scope.arn("sqs", name))),
            ("name", json!(name)),
        ],
    )
}

/// The attributes as SQS takes them: strings, the redrive policy as JSON text.
fn attributes(p: Props<'_>) -> Result<BTreeMap<String, String>, DriverError> {
    let Some(attrs) = p.object("Attributes") else {
        return Ok(BTreeMap::new());
    };
    MANAGED
        .iter()
        .filter(|k| attrs.get(k).is_some())
        .map(|k| {
            let v = match attrs.get(k) {
                Some(Value::String(s)) => s.clone(),
                _ => attrs.json_string(k)?,
            };
            Ok((k.to_string(), v))
        })
        .collect()
}

fn sdk_attributes(attrs: BTreeMap<String, String>) -> HashMap<QueueAttributeName, String> {
    attrs
        .into_iter()
        .map(|(k, v)| (QueueAttributeName::from(k.as_str()), v))
        .collect()
}

pub(super) async fn create(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let name = p.str("QueueName")?;
    let out = d
        .clients
        .sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(sdk_attributes(attributes(p)?)))
        .set_tags(Some(p.string_map("tags")?.into_iter().collect()))
        .send()
        .await
        .call("CreateQueue")?;
    Ok(outputs(d, out.queue_url().unwrap_or_default(), name))
}

pub(super) async fn update(
    d: &AwsDriver,
    url: &str,
    before: Props<'_>,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let name = p.str("QueueName")?;
    let sqs = &d.clients.sqs;
    let (mut set, removed) = map_changes(&attributes(before)?, &attributes(p)?);
    // An attribute no longer wanted goes back to SQS's default (a redrive policy is removed
    // by setting it empty).
    for key in removed {
        let default = match key.as_str() {
            "VisibilityTimeout" => "30",
            "MessageRetentionPeriod" => "345600",
            "SqsManagedSseEnabled" => "false",
            _ => "",
        };
        set.insert(key, default.to_string());
    }
    if !set.is_empty() {
        sqs.set_queue_attributes()
            .queue_url(url)
            .set_attributes(Some(sdk_attributes(set)))
            .send()
            .await
            .call("SetQueueAttributes")?;
    }
    let (set, removed) = map_changes(&before.string_map("tags")?, &p.string_map("tags")?);
    if !removed.is_empty() {
        sqs.untag_queue()
            .queue_url(url)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .call("UntagQueue")?;
    }
    if !set.is_empty() {
        sqs.tag_queue()
            .queue_url(url)
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .call("TagQueue")?;
    }
    Ok(outputs(d, url, name))
}

pub(super) async fn delete(d: &AwsDriver, url: &str) -> Result<(), DriverError> {
    gone(
        d.clients
            .sqs
            .delete_queue()
            .queue_url(url)
            .send()
            .await
            .call("DeleteQueue"),
    )?;
    Ok(())
}

pub(super) async fn read(d: &AwsDriver, id: &str) -> Result<Option<Live>, DriverError> {
    let sqs = &d.clients.sqs;
    let url = if id.starts_with("http://") || id.starts_with("https://") {
        id.to_string()
    } else {
        match found(
            sqs.get_queue_url()
                .queue_name(id)
                .send()
                .await
                .call("GetQueueUrl"),
        )? {
            Some(out) => out.queue_url().unwrap_or_default().to_string(),
            None => return Ok(None),
        }
    };
    let name = url.rsplit('/').next().unwrap_or_default().to_string();
    let Some(out) = found(
        sqs.get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .call("GetQueueAttributes"),
    )?
    else {
        return Ok(None);
    };
    let mut attrs = serde_json::Map::new();
    for (k, v) in out.attributes().into_iter().flatten() {
        let key = k.as_str();
        if !MANAGED.contains(&key) {
            continue;
        }
        let value = match key {
            "RedrivePolicy" => redrive(v),
            _ => json!(v),
        };
        attrs.insert(key.to_string(), value);
    }
    let tags: BTreeMap<String, String> = sqs
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .call("ListQueueTags")?
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let props = json!({
        "QueueName": name,
        "Attributes": Value::Object(attrs.into_iter().collect()),
        "tags": map_value(&tags),
    });
    Ok(Some(live(url.clone(), props, outputs(d, &url, &name))))
}

/// A redrive policy as lowering writes it: `maxReceiveCount` a number.
fn redrive(text: &str) -> Value {
    let mut v: Value = serde_json::from_str(text).unwrap_or_else(|_| json!(text));
    if let Some(n) = v
        .get("maxReceiveCount")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u64>().ok())
    {
        v["maxReceiveCount"] = json!(n);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_counts_are_numbers() {
        assert_eq!(
            redrive(r#"{"deadLetterTargetArn":"arn:q","maxReceiveCount":"5"}"#),
            json!({"deadLetterTargetArn": "arn:q", "maxReceiveCount": 5})
        );
        assert_eq!(
            redrive(r#"{"deadLetterTargetArn":"arn:q","maxReceiveCount":5}"#)["maxReceiveCount"],
            json!(5)
        );
    }
}
