//! Secrets Manager secrets (physical id: the secret's ARN). A deployment manages the secret's
//! name, description and tags — never its value: `CreateSecret` is sent without
//! `SecretString`, and nothing here reads a value. A secret that `nimbus secret set` created
//! before the first deploy (same deterministic name) is adopted: its description and tags are
//! brought to what lowering says. One scheduled for deletion (by hand, in the console) is
//! restored first. A delete removes the secret without a recovery window, since the engine
//! only deletes one holding a value when forced (`retain_data`).

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::types::Tag;
use nimbus_engine::{Applied, DriverError, Live};
use serde_json::json;

use super::error::{Call, found, gone};
use super::props::{map_changes, tag_list_value};
use super::{AwsDriver, Props, applied, live};

/// The version stage of a secret's current value.
pub(crate) const CURRENT: &str = "AWSCURRENT";

fn outputs(arn: &str, name: &str) -> Applied {
    applied(arn, &[("arn", json!(arn)), ("name", json!(name))])
}

fn tags(map: BTreeMap<String, String>) -> Vec<Tag> {
    map.into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Whether a described secret has a current value.
pub(crate) fn has_value(d: &DescribeSecretOutput) -> bool {
    d.version_ids_to_stages()
        .is_some_and(|m| m.values().any(|stages| stages.iter().any(|s| s == CURRENT)))
}

async fn describe(d: &AwsDriver, id: &str) -> Result<Option<DescribeSecretOutput>, DriverError> {
    let out = found(
        d.clients
            .secrets
            .describe_secret()
            .secret_id(id)
            .send()
            .await
            .call("DescribeSecret"),
    )?;
    Ok(out)
}

pub(super) async fn create(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let name = p.str("Name")?;
    let created = d
        .clients
        .secrets
        .create_secret()
        .name(name)
        .description(p.str("Description")?)
        .set_tags(Some(tags(p.tag_list("Tags")?)))
        .send()
        .await
        .call("CreateSecret");
    match created {
        Ok(out) => Ok(outputs(out.arn().unwrap_or_default(), name)),
        Err(e) if e.is("ResourceExistsException") => adopt(d, name, p).await,
        Err(e) if e.is("InvalidRequestException") && e.message.contains("deletion") => {
            d.clients
                .secrets
                .restore_secret()
                .secret_id(name)
                .send()
                .await
                .call("RestoreSecret")?;
            adopt(d, name, p).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Takes over the existing secret `name`: description and tags as `p` says.
async fn adopt(d: &AwsDriver, name: &str, p: Props<'_>) -> Result<Applied, DriverError> {
    let Some(existing) = describe(d, name).await? else {
        return Err(DriverError::retryable(format!(
            "CreateSecret: secret `{name}` exists but DescribeSecret does not find it yet"
        )));
    };
    let arn = existing.arn().unwrap_or_default().to_string();
    let before = json!({
        "Name": name,
        "Description": existing.description().unwrap_or_default(),
        "Tags": tag_list_value(&tag_map(existing.tags())),
    });
    update(d, &arn, Props::new(p.kind(), &before), p).await
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub(super) async fn update(
    d: &AwsDriver,
    arn: &str,
    before: Props<'_>,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let sm = &d.clients.secrets;
    let description = p.str("Description")?;
    if before.opt_str("Description") != Some(description) {
        sm.update_secret()
            .secret_id(arn)
            .description(description)
            .send()
            .await
            .call("UpdateSecret")?;
    }
    let (set, removed) = map_changes(&before.tag_list("Tags")?, &p.tag_list("Tags")?);
    if !removed.is_empty() {
        sm.untag_resource()
            .secret_id(arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .call("UntagResource")?;
    }
    if !set.is_empty() {
        sm.tag_resource()
            .secret_id(arn)
            .set_tags(Some(tags(set)))
            .send()
            .await
            .call("TagResource")?;
    }
    Ok(outputs(arn, p.str("Name")?))
}

pub(super) async fn delete(d: &AwsDriver, arn: &str) -> Result<(), DriverError> {
    gone(
        d.clients
            .secrets
            .delete_secret()
            .secret_id(arn)
            .force_delete_without_recovery(true)
            .send()
            .await
            .call("DeleteSecret"),
    )?;
    Ok(())
}

pub(super) async fn read(d: &AwsDriver, id: &str) -> Result<Option<Live>, DriverError> {
    // One scheduled for deletion is as good as gone: it cannot be read or written.
    let Some(out) = describe(d, id)
        .await?
        .filter(|s| s.deleted_date().is_none())
    else {
        return Ok(None);
    };
    let arn = out.arn().unwrap_or(id);
    let name = out.name().unwrap_or_default();
    let props = json!({
        "Name": name,
        "Description": out.description().unwrap_or_default(),
        "Tags": tag_list_value(&tag_map(out.tags())),
    });
    Ok(Some(live(arn, props, outputs(arn, name))))
}

/// Whether the secret has a current value (then `remove` keeps it unless forced).
pub(super) async fn holds_data(d: &AwsDriver, arn: &str) -> Result<bool, DriverError> {
    Ok(describe(d, arn)
        .await?
        .is_some_and(|s| s.deleted_date().is_none() && has_value(&s)))
}
