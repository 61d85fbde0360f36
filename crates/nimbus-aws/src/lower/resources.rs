//! Tables, queues, topics and buckets, and the deployment bucket.
//!
//! - table: DynamoDB on demand (`PAY_PER_REQUEST`) with the manifest's key (and sort key); a
//!   `NEW_AND_OLD_IMAGES` stream when a function has a `table` trigger on it; point-in-time
//!   recovery on (tables hold the app's data, and are kept when the app is removed).
//! - queue: SQS with SQS-managed encryption, the visibility timeout and retention of the
//!   manifest; with `dead_letter`, a second queue `…-dlq` (14 days of retention, the same
//!   visibility timeout) and a redrive
//!   policy with `maxReceiveCount`.
//! - topic: SNS encrypted with the AWS-managed key `alias/aws/sns` (its key policy lets SNS use
//!   it for every principal of the account, so publishers need no KMS grant).
//! - bucket: S3 with every public access blocked, SSE-S3 default encryption, versioning when
//!   the manifest asks for it.
//! - any kind with `existing.aws`: nothing is created; an `aws.existing` stand-in (ARN, name,
//!   queue URL) whose driver reads the resource and never writes to it. The manifest's settings
//!   of the kind (`visibility_timeout`, `versioning`, ...) are the owner's business there and
//!   are not applied. It must be in the deployment's region (the functions' clients use theirs).

use nimbus_graph::{ResourceNode, ResourceSpec, TriggerSpec};
use nimbus_manifest::{KeyType, ResourceKind};
use serde_json::{Value, json};

use super::{Cx, out};
use crate::error::AwsError;
use crate::kinds;
use crate::names;

/// Retention of dead-lettered messages: the SQS maximum, 14 days.
const DLQ_RETENTION_S: u64 = 1_209_600;

/// The node the CloudFormation export turns into its artifact-bucket parameter (a deploy
/// bootstraps the bucket itself, before the engine runs, since it also holds the state).
pub(super) fn deployment_bucket(cx: &mut Cx) -> Result<(), AwsError> {
    let name = names::deployment_bucket(cx.service(), cx.stage(), &cx.scope)?;
    let props = bucket_properties(cx, &name, false);
    cx.push(kinds::DEPLOYMENT_BUCKET, "deployment", Some(name), props);
    Ok(())
}

/// Every resource of the graph, by name.
pub(super) fn all(cx: &mut Cx) -> Result<(), AwsError> {
    for r in cx.graph.resources.values() {
        if let Some(arn) = &r.existing {
            existing(cx, r, arn)?;
            continue;
        }
        match r.kind {
            ResourceKind::Table => table(cx, r),
            ResourceKind::Queue => queue(cx, r),
            ResourceKind::Topic => topic(cx, r),
            ResourceKind::Bucket => bucket(cx, r)?,
        }
    }
    Ok(())
}

/// A resource that already exists: an `aws.existing` stand-in that the driver only reads.
fn existing(cx: &mut Cx, r: &ResourceNode, arn: &str) -> Result<(), AwsError> {
    // The name parses, or the ARN is reported as malformed.
    cx.existing_part(&r.name, "name")?;
    if r.kind != ResourceKind::Bucket {
        let region = cx.existing_part(&r.name, "region")?;
        // The CloudFormation export lowers with placeholders: any region may deploy it.
        let placeholder = cx.scope.region.starts_with('\u{E000}');
        if region != cx.scope.region && !placeholder {
            return Err(AwsError::ExistingRegion {
                resource: r.name.clone(),
                region,
                deployment: cx.scope.region.clone(),
            });
        }
    }
    let props = existing_properties(arn).ok_or_else(|| AwsError::ExistingArn {
        resource: r.name.clone(),
        kind: r.kind.to_string(),
        arn: arn.to_string(),
        shape: String::new(),
    })?;
    cx.push(kinds::EXISTING, &r.name, None, props);
    Ok(())
}

/// The properties of the `aws.existing` stand-in of the resource with ARN `arn`: `Kind`,
/// `Arn`, `Name`, and a queue's `Url` (what the CloudFormation export writes; a deploy reads
/// the real one with GetQueueUrl). The same for lowering and for the driver's reads, so a
/// refresh finds no drift. `None` when the ARN is of no kind's shape.
pub(crate) fn existing_properties(arn: &str) -> Option<Value> {
    let caps = nimbus_provider::ProviderId::Aws.capabilities();
    ResourceKind::ALL.iter().find_map(|kind| {
        let shape = &caps.resource(*kind)?.existing.as_ref()?.shape;
        let parts = nimbus_provider::external::parse_shape(shape, arn)?;
        let name = &parts["name"];
        let mut props = json!({ "Kind": kind.as_str(), "Arn": arn, "Name": name });
        if *kind == ResourceKind::Queue {
            props["Url"] = json!(format!(
                "https://sqs.{}.amazonaws.com/{}/{name}",
                parts["region"], parts["account"]
            ));
        }
        Some(props)
    })
}

fn attribute_type(t: KeyType) -> &'static str {
    match t {
        KeyType::String => "S",
        KeyType::Number => "N",
        KeyType::Binary => "B",
    }
}

/// True when some function has a `table` trigger on `table`.
pub(super) fn has_stream(cx: &Cx, table: &str) -> bool {
    cx.graph.functions.values().any(|f| {
        f.triggers
            .iter()
            .any(|t| matches!(&t.spec, TriggerSpec::Table { resource, .. } if resource == table))
    })
}

fn table(cx: &mut Cx, r: &ResourceNode) {
    let ResourceSpec::Table { key, sort_key } = &r.spec else {
        unreachable!("a table has a table spec")
    };
    let mut attributes =
        vec![json!({ "AttributeName": key.0, "AttributeType": attribute_type(key.1) })];
    let mut schema = vec![json!({ "AttributeName": key.0, "KeyType": "HASH" })];
    if let Some((name, t)) = sort_key {
        attributes.push(json!({ "AttributeName": name, "AttributeType": attribute_type(*t) }));
        schema.push(json!({ "AttributeName": name, "KeyType": "RANGE" }));
    }
    let stream = if has_stream(cx, &r.name) {
        json!({ "StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES" })
    } else {
        json!({ "StreamEnabled": false })
    };
    let name = names::table(cx.service(), cx.stage(), &r.name);
    let props = json!({
        "TableName": name,
        "AttributeDefinitions": attributes,
        "KeySchema": schema,
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": stream,
        "PointInTimeRecoverySpecification": { "PointInTimeRecoveryEnabled": true },
        "Tags": cx.tag_list(),
    });
    cx.push(kinds::TABLE, &r.name, Some(name), props);
}

fn seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

fn queue(cx: &mut Cx, r: &ResourceNode) {
    let ResourceSpec::Queue {
        visibility_timeout_ms,
        retention_ms,
        max_receives,
    } = &r.spec
    else {
        unreachable!("a queue has a queue spec")
    };
    let mut attributes = json!({
        "VisibilityTimeout": seconds(*visibility_timeout_ms).to_string(),
        "MessageRetentionPeriod": seconds(*retention_ms).to_string(),
        "SqsManagedSseEnabled": "true",
    });
    if let Some(max) = max_receives {
        let dlq_name = names::dead_letter_queue(cx.service(), cx.stage(), &r.name);
        let dlq = format!("{}/dlq", r.name);
        let props = json!({
            "QueueName": dlq_name,
            "Attributes": {
                "VisibilityTimeout": seconds(*visibility_timeout_ms).to_string(),
                "MessageRetentionPeriod": DLQ_RETENTION_S.to_string(),
                "SqsManagedSseEnabled": "true",
            },
            "tags": cx.tag_map(),
        });
        cx.push(kinds::QUEUE, &dlq, Some(dlq_name), props);
        attributes["RedrivePolicy"] = json!({
            "deadLetterTargetArn": out(kinds::QUEUE, &dlq, "arn"),
            "maxReceiveCount": max,
        });
    }
    let name = names::queue(cx.service(), cx.stage(), &r.name);
    let props = json!({ "QueueName": name, "Attributes": attributes, "tags": cx.tag_map() });
    cx.push(kinds::QUEUE, &r.name, Some(name), props);
}

fn topic(cx: &mut Cx, r: &ResourceNode) {
    let name = names::topic(cx.service(), cx.stage(), &r.name);
    let props = json!({
        "Name": name,
        "Attributes": { "KmsMasterKeyId": "alias/aws/sns" },
        "Tags": cx.tag_list(),
    });
    cx.push(kinds::TOPIC, &r.name, Some(name), props);
}

fn bucket(cx: &mut Cx, r: &ResourceNode) -> Result<(), AwsError> {
    let ResourceSpec::Bucket { versioning } = &r.spec else {
        unreachable!("a bucket has a bucket spec")
    };
    let name = cx.bucket_name(&r.name)?;
    let props = bucket_properties(cx, &name, *versioning);
    cx.push(kinds::BUCKET, &r.name, Some(name), props);
    Ok(())
}

fn bucket_properties(cx: &Cx, name: &str, versioning: bool) -> Value {
    let mut props = json!({
        "Bucket": name,
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": true,
            "IgnorePublicAcls": true,
            "BlockPublicPolicy": true,
            "RestrictPublicBuckets": true,
        },
        "ServerSideEncryptionConfiguration": {
            "Rules": [{ "ApplyServerSideEncryptionByDefault": { "SSEAlgorithm": "AES256" } }],
        },
        "Tagging": { "TagSet": cx.tag_list() },
    });
    // CreateBucket takes no location in us-east-1 (and rejects `us-east-1` as one).
    if cx.scope.region != "us-east-1" {
        props["CreateBucketConfiguration"] = json!({ "LocationConstraint": cx.scope.region });
    }
    if versioning {
        props["VersioningConfiguration"] = json!({ "Status": "Enabled" });
    }
    props
}
