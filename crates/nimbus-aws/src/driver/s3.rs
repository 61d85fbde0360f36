//! S3 buckets of the app, and their notification configurations (one per bucket, holding
//! every function trigger on it).
//!
//! A bucket's physical id is its name. Its settings are separate API objects (public access
//! block, default encryption, versioning, tags), each written only when it changed and read
//! back in lowering's shape. A bucket is deleted only when empty — destroy asks
//! [`holds_data`] first and keeps one with data unless forced, and a forced delete empties it
//! (every version and delete marker) before deleting it. A notification configuration's
//! physical id is the bucket's name; deleting it writes an empty configuration.

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Delete, Event,
    FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, ObjectIdentifier, PublicAccessBlockConfiguration, S3KeyFilter,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, Tag, Tagging, VersioningConfiguration,
};
use nimbus_engine::{Applied, DriverError, Live};
use serde_json::{Value, json};

use super::error::{Call, CallError, found, gone};
use super::props::tag_list_value;
use super::{AwsDriver, Props, applied, built, live};

fn outputs(d: &AwsDriver, name: &str) -> Applied {
    applied(
        name,
        &[
            ("name", json!(name)),
            ("arn", json!(d.scope.bucket_arn(name))),
        ],
    )
}

pub(super) async fn create_bucket(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let name = p.str("Bucket")?;
    let location = p
        .object("CreateBucketConfiguration")
        .and_then(|c| c.opt_str("LocationConstraint"))
        .map(|l| {
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(l))
                .build()
        });
    let created = d
        .clients
        .s3
        .create_bucket()
        .bucket(name)
        .set_create_bucket_configuration(location)
        .send()
        .await
        .call("CreateBucket");
    match created {
        Ok(_) => {}
        // Ours already (an earlier, interrupted create): carry on configuring it.
        Err(e) if e.is("BucketAlreadyOwnedByYou") => {}
        Err(e) => return Err(e.into()),
    }
    configure(d, name, None, p).await?;
    Ok(outputs(d, name))
}

pub(super) async fn update_bucket(
    d: &AwsDriver,
    before: Props<'_>,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let name = p.str("Bucket")?;
    configure(d, name, Some(before), p).await?;
    Ok(outputs(d, name))
}

/// Writes each setting that differs from `before` (all of them when there is no `before`).
async fn configure(
    d: &AwsDriver,
    name: &str,
    before: Option<Props<'_>>,
    p: Props<'_>,
) -> Result<(), DriverError> {
    let s3 = &d.clients.s3;
    let changed = |key: &str| before.is_none_or(|b| b.get(key) != p.get(key));
    if changed("PublicAccessBlockConfiguration")
        && let Some(c) = p.object("PublicAccessBlockConfiguration")
    {
        let block = PublicAccessBlockConfiguration::builder()
            .set_block_public_acls(c.opt_bool("BlockPublicAcls"))
            .set_ignore_public_acls(c.opt_bool("IgnorePublicAcls"))
            .set_block_public_policy(c.opt_bool("BlockPublicPolicy"))
            .set_restrict_public_buckets(c.opt_bool("RestrictPublicBuckets"))
            .build();
        s3.put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(block)
            .send()
            .await
            .call("PutPublicAccessBlock")?;
    }
    if changed("ServerSideEncryptionConfiguration")
        && let Some(c) = p.get("ServerSideEncryptionConfiguration")
    {
        let algorithm = c["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
            .as_str()
            .unwrap_or("AES256");
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(built(
                ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::from(algorithm))
                    .build(),
            )?)
            .build();
        s3.put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(built(
                ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build(),
            )?)
            .send()
            .await
            .call("PutBucketEncryption")?;
    }
    // Versioning cannot be switched off, only suspended.
    if changed("VersioningConfiguration") {
        let status = match p
            .object("VersioningConfiguration")
            .and_then(|v| v.opt_str("Status"))
        {
            Some(s) => Some(BucketVersioningStatus::from(s)),
            None if before.is_some() => Some(BucketVersioningStatus::Suspended),
            None => None,
        };
        if let Some(status) = status {
            s3.put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(VersioningConfiguration::builder().status(status).build())
                .send()
                .await
                .call("PutBucketVersioning")?;
        }
    }
    if changed("Tagging") {
        let tags = p
            .object("Tagging")
            .map(|t| t.tag_list("TagSet"))
            .transpose()?
            .unwrap_or_default();
        if tags.is_empty() {
            s3.delete_bucket_tagging()
                .bucket(name)
                .send()
                .await
                .call("DeleteBucketTagging")?;
        } else {
            let set = tags
                .into_iter()
                .map(|(k, v)| built(Tag::builder().key(k).value(v).build()))
                .collect::<Result<Vec<_>, _>>()?;
            s3.put_bucket_tagging()
                .bucket(name)
                .tagging(built(Tagging::builder().set_tag_set(Some(set)).build())?)
                .send()
                .await
                .call("PutBucketTagging")?;
        }
    }
    Ok(())
}

/// Whether the bucket has any object, object version or delete marker.
pub(super) async fn holds_data(d: &AwsDriver, name: &str) -> Result<bool, DriverError> {
    let s3 = &d.clients.s3;
    let Some(objects) = found(
        s3.list_objects_v2()
            .bucket(name)
            .max_keys(1)
            .send()
            .await
            .call("ListObjectsV2"),
    )?
    else {
        return Ok(false);
    };
    if objects.key_count().unwrap_or(0) > 0 || !objects.contents().is_empty() {
        return Ok(true);
    }
    let versions = found(
        s3.list_object_versions()
            .bucket(name)
            .max_keys(1)
            .send()
            .await
            .call("ListObjectVersions"),
    )?;
    Ok(versions.is_some_and(|v| !v.versions().is_empty() || !v.delete_markers().is_empty()))
}

/// Deletes every object version and delete marker, then every remaining object.
pub(crate) async fn empty(s3: &aws_sdk_s3::Client, name: &str) -> Result<(), CallError> {
    loop {
        let page = s3
            .list_object_versions()
            .bucket(name)
            .send()
            .await
            .call("ListObjectVersions")?;
        let versions = page.versions().iter().map(|v| (v.key(), v.version_id()));
        let markers = page
            .delete_markers()
            .iter()
            .map(|m| (m.key(), m.version_id()));
        let ids: Vec<ObjectIdentifier> = versions
            .chain(markers)
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder()
                    .key(key?)
                    .set_version_id(version.map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        if ids.is_empty() {
            break;
        }
        delete_objects(s3, name, ids).await?;
    }
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(name)
            .send()
            .await
            .call("ListObjectsV2")?;
        let ids: Vec<ObjectIdentifier> = page
            .contents()
            .iter()
            .filter_map(|o| {
                ObjectIdentifier::builder()
                    .key(o.key().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        delete_objects(s3, name, ids).await?;
    }
}

async fn delete_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    ids: Vec<ObjectIdentifier>,
) -> Result<(), CallError> {
    for chunk in ids.chunks(1000) {
        let Ok(delete) = Delete::builder()
            .set_objects(Some(chunk.to_vec()))
            .quiet(true)
            .build()
        else {
            continue;
        };
        s3.delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .call("DeleteObjects")?;
    }
    Ok(())
}

pub(super) async fn delete_bucket(d: &AwsDriver, name: &str) -> Result<(), DriverError> {
    match empty(&d.clients.s3, name).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    gone(
        d.clients
            .s3
            .delete_bucket()
            .bucket(name)
            .send()
            .await
            .call("DeleteBucket"),
    )?;
    Ok(())
}

pub(super) async fn read_bucket(d: &AwsDriver, name: &str) -> Result<Option<Live>, DriverError> {
    let s3 = &d.clients.s3;
    if found(
        s3.head_bucket()
            .bucket(name)
            .send()
            .await
            .call("HeadBucket"),
    )?
    .is_none()
    {
        return Ok(None);
    }
    let mut props = json!({ "Bucket": name });
    let location = s3
        .get_bucket_location()
        .bucket(name)
        .send()
        .await
        .call("GetBucketLocation")?;
    if let Some(l) = location
        .location_constraint()
        .map(|l| l.as_str())
        .filter(|l| !l.is_empty() && *l != "us-east-1")
    {
        props["CreateBucketConfiguration"] = json!({ "LocationConstraint": l });
    }
    let block = s3
        .get_public_access_block()
        .bucket(name)
        .send()
        .await
        .call("GetPublicAccessBlock");
    match block {
        Ok(out) => {
            if let Some(c) = out.public_access_block_configuration() {
                props["PublicAccessBlockConfiguration"] = json!({
                    "BlockPublicAcls": c.block_public_acls().unwrap_or(false),
                    "IgnorePublicAcls": c.ignore_public_acls().unwrap_or(false),
                    "BlockPublicPolicy": c.block_public_policy().unwrap_or(false),
                    "RestrictPublicBuckets": c.restrict_public_buckets().unwrap_or(false),
                });
            }
        }
        Err(e) if e.is("NoSuchPublicAccessBlockConfiguration") => {}
        Err(e) => return Err(e.into()),
    }
    let encryption = s3
        .get_bucket_encryption()
        .bucket(name)
        .send()
        .await
        .call("GetBucketEncryption");
    match encryption {
        Ok(out) => {
            if let Some(rule) = out
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first())
                && let Some(default) = rule.apply_server_side_encryption_by_default()
            {
                props["ServerSideEncryptionConfiguration"] = json!({
                    "Rules": [{ "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": default.sse_algorithm().as_str()
                    } }]
                });
            }
        }
        Err(e) if e.is("ServerSideEncryptionConfigurationNotFoundError") => {}
        Err(e) => return Err(e.into()),
    }
    let versioning = s3
        .get_bucket_versioning()
        .bucket(name)
        .send()
        .await
        .call("GetBucketVersioning");
    match versioning {
        Ok(v) if v.status() == Some(&BucketVersioningStatus::Enabled) => {
            props["VersioningConfiguration"] = json!({ "Status": "Enabled" });
        }
        Ok(_) => {}
        // A bucket that never had versioning answers an empty document; some S3
        // implementations (moto) give it a root element the SDK cannot parse. A 200 that does
        // not parse says the same: versioning is not enabled.
        Err(e) if e.status == Some(200) && e.code.is_none() => {}
        Err(e) => return Err(e.into()),
    }
    let tags = match s3
        .get_bucket_tagging()
        .bucket(name)
        .send()
        .await
        .call("GetBucketTagging")
    {
        Ok(out) => out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(e) if e.is("NoSuchTagSet") => Default::default(),
        Err(e) => return Err(e.into()),
    };
    props["Tagging"] = json!({ "TagSet": tag_list_value(&tags) });
    Ok(Some(live(name, props, outputs(d, name))))
}

fn notification(p: Props<'_>) -> Result<NotificationConfiguration, DriverError> {
    let mut configurations = Vec::new();
    let empty = Vec::new();
    let list = p
        .get("NotificationConfiguration")
        .and_then(|n| n.get("LambdaFunctionConfigurations"))
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for c in list {
        let c = Props::new("aws.s3.bucket_notification", c);
        let rules = c
            .get("Filter")
            .and_then(|f| f.get("Key"))
            .and_then(|k| k.get("FilterRules"))
            .and_then(Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .map(|r| {
                        FilterRule::builder()
                            .set_name(r["Name"].as_str().map(FilterRuleName::from))
                            .set_value(r["Value"].as_str().map(str::to_string))
                            .build()
                    })
                    .collect::<Vec<_>>()
            });
        let filter = rules.map(|rules| {
            NotificationConfigurationFilter::builder()
                .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                .build()
        });
        configurations.push(built(
            LambdaFunctionConfiguration::builder()
                .set_id(c.opt_str("Id").map(str::to_string))
                .lambda_function_arn(c.str("LambdaFunctionArn")?)
                .set_events(Some(
                    c.strings("Events")?
                        .iter()
                        .map(|e| Event::from(e.as_str()))
                        .collect(),
                ))
                .set_filter(filter)
                .build(),
        )?);
    }
    Ok(NotificationConfiguration::builder()
        .set_lambda_function_configurations(Some(configurations))
        .build())
}

pub(super) async fn put_notification(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let bucket = p.str("Bucket")?;
    d.clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(notification(p)?)
        .send()
        .await
        .call("PutBucketNotificationConfiguration")?;
    Ok(applied(bucket, &[]))
}

pub(super) async fn delete_notification(d: &AwsDriver, bucket: &str) -> Result<(), DriverError> {
    gone(
        d.clients
            .s3
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(NotificationConfiguration::builder().build())
            .send()
            .await
            .call("PutBucketNotificationConfiguration"),
    )?;
    Ok(())
}

pub(super) async fn read_notification(
    d: &AwsDriver,
    bucket: &str,
) -> Result<Option<Live>, DriverError> {
    let Some(out) = found(
        d.clients
            .s3
            .get_bucket_notification_configuration()
            .bucket(bucket)
            .send()
            .await
            .call("GetBucketNotificationConfiguration"),
    )?
    else {
        return Ok(None);
    };
    let configurations: Vec<Value> = out
        .lambda_function_configurations()
        .iter()
        .map(|c| {
            let mut v = json!({
                "Id": c.id(),
                "LambdaFunctionArn": c.lambda_function_arn(),
                "Events": c.events().iter().map(|e| e.as_str()).collect::<Vec<_>>(),
            });
            let rules: Vec<Value> = c
                .filter()
                .and_then(|f| f.key())
                .map(|k| k.filter_rules())
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    json!({
                        "Name": r.name().map(|n| n.as_str().to_ascii_lowercase()),
                        "Value": r.value(),
                    })
                })
                .collect();
            if !rules.is_empty() {
                v["Filter"] = json!({ "Key": { "FilterRules": rules } });
            }
            v
        })
        .collect();
    if configurations.is_empty() {
        return Ok(None);
    }
    let props = json!({
        "Bucket": bucket,
        "NotificationConfiguration": { "LambdaFunctionConfigurations": configurations },
    });
    Ok(Some(live(bucket, props, applied(bucket, &[]))))
}
