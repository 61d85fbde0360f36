//! Tables, queues, topics and buckets.
//!
//! - table: a Firestore collection `{service}-{stage}-{table}` in the configured database (a
//!   collection needs no creating; the resource checks the database and keeps the table in the
//!   state so `remove` can tell whether it holds data).
//! - topic: a Pub/Sub topic.
//! - queue: a Pub/Sub topic and the queue's one subscription (ack deadline = the visibility
//!   timeout, retention = the queue's, never expiring, retries backing off from 10 s to 600 s);
//!   with `dead_letter`, a dead-letter topic `…-dlq` with a subscription of its own (so dead
//!   letters are kept, 7 days) and a dead-letter policy with `maxDeliveryAttempts`, plus the
//!   grants the Pub/Sub service agent needs to move messages there. The consumer, if any, is
//!   set as the subscription's push endpoint (see `events`).
//! - bucket: Cloud Storage in the region, uniform bucket-level access, public access
//!   prevention enforced, versioning when the manifest asks for it.
//! - any kind with `existing.gcp`: nothing is created; a `gcp.existing` stand-in (its full name,
//!   parsed with the shape of `providers/gcp/capabilities.toml`) whose driver reads the resource
//!   and never writes to it. The manifest's settings of the kind (`visibility_timeout`,
//!   `versioning`, `dead_letter`, ...) are the owner's business there and are not applied.

use nimbus_graph::{ResourceNode, ResourceSpec, TriggerSpec};
use nimbus_manifest::ResourceKind;
use serde_json::{Value, json};

use super::{Cx, iam, out};
use crate::error::GcpError;
use crate::kinds;
use crate::names;

/// Retention of dead-lettered messages: the Pub/Sub maximum, 7 days.
const DLQ_RETENTION: &str = "604800s";

/// Every resource of the graph, by name.
pub(super) fn all(cx: &mut Cx) -> Result<(), GcpError> {
    for r in cx.graph.resources.values() {
        if let Some(full) = &r.existing {
            existing(cx, r, full)?;
            continue;
        }
        match r.kind {
            ResourceKind::Table => table(cx, r),
            ResourceKind::Queue => queue(cx, r)?,
            ResourceKind::Topic => topic(cx, r)?,
            ResourceKind::Bucket => bucket(cx, r)?,
        }
    }
    Ok(())
}

/// A resource that already exists: a `gcp.existing` stand-in that the driver only reads.
fn existing(cx: &mut Cx, r: &ResourceNode, full: &str) -> Result<(), GcpError> {
    cx.existing_parts(&r.name)?;
    let props = existing_properties(full).ok_or_else(|| GcpError::ExistingName {
        resource: r.name.clone(),
        kind: r.kind.to_string(),
        name: full.to_string(),
        shape: String::new(),
    })?;
    cx.push(kinds::EXISTING, &r.name, None, props);
    Ok(())
}

/// The properties of the `gcp.existing` stand-in of the resource named `full`: `kind` (the
/// first whose shape it has) and `resource`. The same for lowering and for the driver's reads,
/// so a refresh finds no drift. `None` when the name is of no kind's shape.
pub(crate) fn existing_properties(full: &str) -> Option<Value> {
    let caps = nimbus_provider::ProviderId::Gcp.capabilities();
    ResourceKind::ALL.iter().find_map(|kind| {
        let shape = &caps.resource(*kind)?.existing.as_ref()?.shape;
        nimbus_provider::external::parse_shape(shape, full)?;
        Some(json!({ "kind": kind.as_str(), "resource": full }))
    })
}

fn table(cx: &mut Cx, r: &ResourceNode) {
    let collection = names::collection(cx.service(), cx.stage(), &r.name);
    let props = json!({ "database": cx.database_path(), "collection": collection });
    cx.push(kinds::COLLECTION, &r.name, Some(collection), props);
}

fn topic(cx: &mut Cx, r: &ResourceNode) -> Result<(), GcpError> {
    let name = names::pubsub(cx.service(), cx.stage(), &r.name)?;
    let props = json!({ "name": cx.topic_path(&name), "labels": cx.label_map() });
    cx.push(kinds::TOPIC, &r.name, Some(name), props);
    Ok(())
}

/// `90061ms` → `"91s"` (Google durations are seconds with an `s`).
pub(super) fn duration(ms: u64) -> String {
    format!("{}s", ms.div_ceil(1000))
}

fn queue(cx: &mut Cx, r: &ResourceNode) -> Result<(), GcpError> {
    let ResourceSpec::Queue {
        visibility_timeout_ms,
        retention_ms,
        max_receives,
    } = &r.spec
    else {
        unreachable!("a queue has a queue spec")
    };
    let name = names::pubsub(cx.service(), cx.stage(), &r.name)?;
    let props = json!({ "name": cx.topic_path(&name), "labels": cx.label_map() });
    cx.push(kinds::TOPIC, &r.name, Some(name.clone()), props);

    let mut sub = json!({
        "name": cx.subscription_path(&name),
        "topic": out(kinds::TOPIC, &r.name, "name"),
        "ackDeadlineSeconds": visibility_timeout_ms.div_ceil(1000),
        "messageRetentionDuration": duration(*retention_ms),
        "expirationPolicy": {},
        "retryPolicy": { "minimumBackoff": "10s", "maximumBackoff": "600s" },
        "pushConfig": {},
        "labels": cx.label_map(),
    });
    if let Some(max) = max_receives {
        let dlq = format!("{}/dlq", r.name);
        let dlq_name = names::dead_letter(cx.service(), cx.stage(), &r.name)?;
        let props = json!({ "name": cx.topic_path(&dlq_name), "labels": cx.label_map() });
        cx.push(kinds::TOPIC, &dlq, Some(dlq_name.clone()), props);
        let props = json!({
            "name": cx.subscription_path(&dlq_name),
            "topic": out(kinds::TOPIC, &dlq, "name"),
            "ackDeadlineSeconds": 60,
            "messageRetentionDuration": DLQ_RETENTION,
            "expirationPolicy": {},
            "pushConfig": {},
            "labels": cx.label_map(),
        });
        cx.push(kinds::SUBSCRIPTION, &dlq, Some(dlq_name), props);
        sub["deadLetterPolicy"] = json!({
            "deadLetterTopic": out(kinds::TOPIC, &dlq, "name"),
            "maxDeliveryAttempts": max,
        });
    }
    let consumer = consumer(cx, &r.name);
    if let Some(f) = &consumer {
        sub["pushConfig"] = super::events::push_config(cx, f);
    }
    let id = cx.push(kinds::SUBSCRIPTION, &r.name, Some(name), sub);
    if let Some(f) = &consumer {
        // Pushes succeed only once the invoker may call the function.
        cx.depend(&id, &super::id(kinds::SERVICE_IAM_MEMBER, f));
    }
    if max_receives.is_some() {
        iam::dead_letter_grants(cx, &r.name);
    }
    Ok(())
}

/// The function that consumes `queue`, if any (the manifest allows one).
fn consumer(cx: &Cx, queue: &str) -> Option<String> {
    cx.graph.functions.values().find_map(|f| {
        f.triggers
            .iter()
            .any(|t| matches!(&t.spec, TriggerSpec::Queue { resource, .. } if resource == queue))
            .then(|| f.name.clone())
    })
}

fn bucket(cx: &mut Cx, r: &ResourceNode) -> Result<(), GcpError> {
    let ResourceSpec::Bucket { versioning } = &r.spec else {
        unreachable!("a bucket has a bucket spec")
    };
    let name = names::bucket(cx.service(), cx.stage(), &r.name, cx.project())?;
    let props = bucket_properties(cx, &name, *versioning);
    cx.push(kinds::BUCKET, &r.name, Some(name), props);
    Ok(())
}

/// A bucket's properties: the region, uniform access, public access prevention.
pub(crate) fn bucket_properties(cx: &Cx, name: &str, versioning: bool) -> Value {
    json!({
        "name": name,
        "project": cx.project(),
        "location": cx.settings.region,
        "storageClass": "STANDARD",
        "iamConfiguration": {
            "uniformBucketLevelAccess": { "enabled": true },
            "publicAccessPrevention": "enforced",
        },
        "versioning": { "enabled": versioning },
        "labels": cx.label_map(),
    })
}
