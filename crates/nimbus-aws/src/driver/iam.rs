//! IAM roles and their inline policies.
//!
//! A role's physical id is its name; an inline policy's is `{role}/{policy}` (role names
//! cannot contain `/`). IAM returns policy documents URL-encoded: they are decoded and parsed
//! so they compare with what lowering wrote.

use aws_sdk_iam::types::Tag;
use nimbus_engine::{Applied, DriverError, Live};
use serde_json::{Value, json};

use super::error::{Call, found, gone};
use super::props::{map_changes, parse_document, tag_list_value};
use super::{AwsDriver, Props, applied, built, live, split_id};
use crate::kinds;

fn tags(p: Props<'_>) -> Result<Vec<Tag>, DriverError> {
    p.tag_list("Tags")?
        .into_iter()
        .map(|(k, v)| built(Tag::builder().key(k).value(v).build()))
        .collect()
}

fn role_outputs(name: &str, arn: &str) -> Applied {
    applied(name, &[("arn", json!(arn)), ("name", json!(name))])
}

pub(super) async fn create_role(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let name = p.str("RoleName")?;
    let out = d
        .clients
        .iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(p.json_string("AssumeRolePolicyDocument")?)
        .set_description(p.opt_str("Description").map(str::to_string))
        .set_tags(Some(tags(p)?))
        .send()
        .await
        .call("CreateRole")?;
    let arn = out.role().map(|r| r.arn().to_string()).unwrap_or_default();
    Ok(role_outputs(name, &arn))
}

pub(super) async fn update_role(
    d: &AwsDriver,
    before: Props<'_>,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let name = p.str("RoleName")?;
    let iam = &d.clients.iam;
    if before.get("AssumeRolePolicyDocument") != p.get("AssumeRolePolicyDocument") {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(p.json_string("AssumeRolePolicyDocument")?)
            .send()
            .await
            .call("UpdateAssumeRolePolicy")?;
    }
    if before.get("Description") != p.get("Description") {
        iam.update_role()
            .role_name(name)
            .description(p.opt_str("Description").unwrap_or_default())
            .send()
            .await
            .call("UpdateRole")?;
    }
    let (set, removed) = map_changes(&before.tag_list("Tags")?, &p.tag_list("Tags")?);
    if !removed.is_empty() {
        iam.untag_role()
            .role_name(name)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .call("UntagRole")?;
    }
    if !set.is_empty() {
        let tags = set
            .into_iter()
            .map(|(k, v)| built(Tag::builder().key(k).value(v).build()))
            .collect::<Result<Vec<_>, _>>()?;
        iam.tag_role()
            .role_name(name)
            .set_tags(Some(tags))
            .send()
            .await
            .call("TagRole")?;
    }
    let arn = iam
        .get_role()
        .role_name(name)
        .send()
        .await
        .call("GetRole")?
        .role()
        .map(|r| r.arn().to_string())
        .unwrap_or_default();
    Ok(role_outputs(name, &arn))
}

/// Deletes the role, after every inline policy still on it (IAM refuses otherwise).
pub(super) async fn delete_role(d: &AwsDriver, name: &str) -> Result<(), DriverError> {
    let iam = &d.clients.iam;
    let Some(policies) = found(
        iam.list_role_policies()
            .role_name(name)
            .send()
            .await
            .call("ListRolePolicies"),
    )?
    else {
        return Ok(());
    };
    for policy in policies.policy_names() {
        gone(
            iam.delete_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .call("DeleteRolePolicy"),
        )?;
    }
    gone(
        iam.delete_role()
            .role_name(name)
            .send()
            .await
            .call("DeleteRole"),
    )?;
    Ok(())
}

pub(super) async fn read_role(d: &AwsDriver, name: &str) -> Result<Option<Live>, DriverError> {
    let iam = &d.clients.iam;
    let Some(out) = found(iam.get_role().role_name(name).send().await.call("GetRole"))? else {
        return Ok(None);
    };
    let Some(role) = out.role() else {
        return Ok(None);
    };
    let tags = iam
        .list_role_tags()
        .role_name(name)
        .send()
        .await
        .call("ListRoleTags")?;
    let tags = tags
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    let mut props = json!({
        "RoleName": role.role_name(),
        "AssumeRolePolicyDocument": parse_document(role.assume_role_policy_document().unwrap_or("{}")),
        "Tags": tag_list_value(&tags),
    });
    if let Some(description) = role.description() {
        props["Description"] = json!(description);
    }
    Ok(Some(live(
        role.role_name(),
        props,
        role_outputs(role.role_name(), role.arn()),
    )))
}

pub(super) async fn put_role_policy(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let role = p.str("RoleName")?;
    let policy = p.str("PolicyName")?;
    d.clients
        .iam
        .put_role_policy()
        .role_name(role)
        .policy_name(policy)
        .policy_document(p.json_string("PolicyDocument")?)
        .send()
        .await
        .call("PutRolePolicy")?;
    Ok(applied(
        format!("{role}/{policy}"),
        &[("name", json!(policy))],
    ))
}

pub(super) async fn delete_role_policy(d: &AwsDriver, id: &str) -> Result<(), DriverError> {
    let (role, policy) = split_id(kinds::ROLE_POLICY, id)?;
    gone(
        d.clients
            .iam
            .delete_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
            .call("DeleteRolePolicy"),
    )?;
    Ok(())
}

pub(super) async fn read_role_policy(d: &AwsDriver, id: &str) -> Result<Option<Live>, DriverError> {
    let (role, policy) = split_id(kinds::ROLE_POLICY, id)?;
    let Some(out) = found(
        d.clients
            .iam
            .get_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
            .call("GetRolePolicy"),
    )?
    else {
        return Ok(None);
    };
    let props: Value = json!({
        "RoleName": out.role_name(),
        "PolicyName": out.policy_name(),
        "PolicyDocument": parse_document(out.policy_document()),
    });
    Ok(Some(live(
        id,
        props,
        applied(id, &[("name", json!(policy))]),
    )))
}
