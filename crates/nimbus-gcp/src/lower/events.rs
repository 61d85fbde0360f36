//! Event triggers: schedules, queues, topics, buckets and tables.
//!
//! - schedule: a Cloud Scheduler job with the expression translated by
//!   `nimbus_schedule::to_gcp`, the trigger's time zone, an attempt deadline of the function's
//!   timeout (Scheduler's range: 15 s to 30 min), POSTing to the function's URL with an OIDC token
//!   of the invoker account (audience: the URL). Scheduler adds `X-CloudScheduler-JobName` and
//!   `X-CloudScheduler-ScheduleTime`, which the shim reads.
//! - queue: the queue's subscription pushes to the function's URL with an OIDC token (see
//!   [`push_config`]); a failed delivery is retried with backoff, then dead-lettered.
//! - topic: an Eventarc trigger on `google.cloud.pubsub.topic.v1.messagePublished` with the topic
//!   as its transport.
//! - bucket: an Eventarc trigger per event (`created` → `…object.v1.finalized`, `deleted` →
//!   `…object.v1.deleted`) filtered on the bucket; Eventarc cannot filter on the key, so a
//!   trigger's `prefix`/`suffix` is applied by the shim, which acknowledges other objects without
//!   calling the handler.
//! - table: one Eventarc trigger on `…document.v1.written` when all of insert, modify and remove
//!   are wanted, else one per event (`created`, `updated`, `deleted`), on documents
//!   `<collection>/{doc}` of the database, with JSON event data (the shim reads only JSON).
//!
//! On a resource that already exists (`existing.gcp`), nothing of it changes: a topic trigger's
//! Eventarc trigger makes a subscription of its own on the topic; a bucket trigger's makes the
//! Cloud Storage notification configuration Eventarc keeps on the bucket (added and deleted with
//! the trigger; the bucket must be in the deployment's region and project); a table trigger
//! watches the existing collection of a database of the deployment's project (in
//! `firestore_location`). A queue trigger is refused: the consumer of a queue is the push
//! endpoint of its subscription, which belongs to the subscription's owner.
//!
//! Every Eventarc trigger delivers to the function's Cloud Run service as the invoker account.

use nimbus_graph::{FunctionNode, TriggerSpec};
use nimbus_manifest::{BucketEvent, TableEvent};
use serde_json::{Value, json};

use super::{Cx, INVOKER, out};
use crate::error::GcpError;
use crate::kinds;
use crate::names;

pub(super) fn triggers(cx: &mut Cx, f: &FunctionNode) -> Result<(), GcpError> {
    for t in &f.triggers {
        match &t.spec {
            TriggerSpec::Http { .. } => {}
            TriggerSpec::Queue { resource, .. } => {
                if cx.existing(resource).is_some() {
                    // `validate -p gcp` refuses it first (providers/gcp/capabilities.toml).
                    return Err(GcpError::ExistingTrigger {
                        function: f.name.clone(),
                        kind: "queue".into(),
                        resource: resource.clone(),
                        reason: "its push endpoint is the subscription's own configuration".into(),
                    });
                }
            }
            TriggerSpec::Schedule {
                expression,
                timezone,
            } => schedule(cx, f, &t.id, expression, timezone)?,
            TriggerSpec::Topic { resource } => {
                let filters = vec![filter(
                    "type",
                    "google.cloud.pubsub.topic.v1.messagePublished",
                )];
                let mut props = eventarc(cx, f, &t.id, None, filters, &cx.settings.region.clone());
                props["transport"] = json!({ "pubsub": { "topic": cx.res(resource, "topic") } });
                push_trigger(cx, &t.id, None, props);
            }
            TriggerSpec::Bucket {
                resource, events, ..
            } => {
                for e in events {
                    let (suffix, event) = match e {
                        BucketEvent::Created => ("created", "finalized"),
                        BucketEvent::Deleted => ("deleted", "deleted"),
                    };
                    let filters = vec![
                        filter("type", &format!("google.cloud.storage.object.v1.{event}")),
                        json!({ "attribute": "bucket", "value": cx.res(resource, "bucket") }),
                    ];
                    let props = eventarc(
                        cx,
                        f,
                        &t.id,
                        Some(suffix),
                        filters,
                        &cx.settings.region.clone(),
                    );
                    push_trigger(cx, &t.id, Some(suffix), props);
                }
            }
            TriggerSpec::Table {
                resource, events, ..
            } => {
                let all = [TableEvent::Insert, TableEvent::Modify, TableEvent::Remove]
                    .iter()
                    .all(|e| events.contains(e));
                let wanted: Vec<(Option<&str>, &str)> = if all {
                    vec![(None, "written")]
                } else {
                    events
                        .iter()
                        .map(|e| match e {
                            TableEvent::Insert => (Some("insert"), "created"),
                            TableEvent::Modify => (Some("modify"), "updated"),
                            TableEvent::Remove => (Some("remove"), "deleted"),
                        })
                        .collect()
                };
                let (collection, database) = match cx.existing(resource) {
                    None => (
                        names::collection(cx.service(), cx.stage(), resource),
                        cx.settings.firestore_database.clone(),
                    ),
                    Some(_) => {
                        let parts = cx.existing_parts(resource)?;
                        // The Terraform export lowers with a placeholder project: unknown yet.
                        let placeholder = cx.project().starts_with('\u{E000}');
                        if parts["project"] != cx.project() && !placeholder {
                            return Err(GcpError::ExistingTrigger {
                                function: f.name.clone(),
                                kind: "table".into(),
                                resource: resource.clone(),
                                reason: format!(
                                    "its database is in project `{}`, and an Eventarc trigger only \
                                     receives the Firestore events of its own project (`{}`)",
                                    parts["project"],
                                    cx.project()
                                ),
                            });
                        }
                        (parts["name"].clone(), parts["database"].clone())
                    }
                };
                for (suffix, event) in wanted {
                    let filters = vec![
                        filter(
                            "type",
                            &format!("google.cloud.firestore.document.v1.{event}"),
                        ),
                        filter("database", &database),
                        json!({
                            "attribute": "document",
                            "value": format!("{collection}/{{doc}}"),
                            "operator": "match-path-pattern",
                        }),
                    ];
                    let location = cx.settings.firestore_location.clone();
                    let mut props = eventarc(cx, f, &t.id, suffix, filters, &location);
                    props["eventDataContentType"] = json!("application/json");
                    let id = push_trigger(cx, &t.id, suffix, props);
                    cx.depend(&id, &cx.res_id(kinds::COLLECTION, resource));
                }
            }
        }
    }
    Ok(())
}

fn filter(attribute: &str, value: &str) -> Value {
    json!({ "attribute": attribute, "value": value })
}

/// An Eventarc trigger of function `f` in `location`, delivering to its Cloud Run service.
fn eventarc(
    cx: &Cx,
    f: &FunctionNode,
    trigger_id: &str,
    suffix: Option<&str>,
    filters: Vec<Value>,
    location: &str,
) -> Value {
    let name = names::eventarc_trigger(cx.service(), cx.stage(), trigger_id, suffix);
    json!({
        "name": format!("projects/{}/locations/{location}/triggers/{name}", cx.project()),
        "eventFilters": filters,
        "destination": {
            "cloudRun": {
                "service": out(kinds::FUNCTION, &f.name, "service"),
                "region": cx.settings.region,
            },
        },
        "serviceAccount": out(kinds::SERVICE_ACCOUNT, INVOKER, "email"),
        "labels": cx.label_map(),
    })
}

fn push_trigger(cx: &mut Cx, trigger_id: &str, suffix: Option<&str>, props: Value) -> String {
    let key = super::trigger_key(trigger_id);
    let key = match suffix {
        Some(s) => format!("{key}/{s}"),
        None => key.to_string(),
    };
    let physical = props["name"]
        .as_str()
        .and_then(|n| n.rsplit('/').next())
        .map(str::to_string);
    let f = key.split('/').next().unwrap_or_default().to_string();
    let id = cx.push(kinds::EVENTARC_TRIGGER, &key, physical, props);
    // The invoker must be allowed to call the function before events flow.
    cx.depend(&id, &super::id(kinds::SERVICE_IAM_MEMBER, &f));
    if cx.has(&super::id(kinds::PROJECT_IAM_MEMBER, "invoker/eventarc")) {
        cx.depend(
            &id,
            &super::id(kinds::PROJECT_IAM_MEMBER, "invoker/eventarc"),
        );
    }
    if cx.has(&super::id(
        kinds::PROJECT_IAM_MEMBER,
        "storage-agent/pubsub",
    )) {
        cx.depend(
            &id,
            &super::id(kinds::PROJECT_IAM_MEMBER, "storage-agent/pubsub"),
        );
    }
    id
}

/// The push configuration of a queue consumed by function `function`: its URL, with an OIDC
/// token of the invoker account.
pub(super) fn push_config(_cx: &Cx, function: &str) -> Value {
    json!({
        "pushEndpoint": out(kinds::FUNCTION, function, "uri"),
        "oidcToken": {
            "serviceAccountEmail": out(kinds::SERVICE_ACCOUNT, INVOKER, "email"),
            "audience": out(kinds::FUNCTION, function, "uri"),
        },
    })
}

fn schedule(
    cx: &mut Cx,
    f: &FunctionNode,
    trigger_id: &str,
    expression: &str,
    timezone: &str,
) -> Result<(), GcpError> {
    let problem = |reason: String| GcpError::Schedule {
        function: f.name.clone(),
        expression: expression.to_string(),
        reason,
    };
    let expr = nimbus_schedule::parse(expression).map_err(|e| problem(e.to_string()))?;
    let schedule = nimbus_schedule::to_gcp(&expr).map_err(|e| problem(e.to_string()))?;
    let job = names::job(cx.service(), cx.stage(), trigger_id);
    let deadline = f.timeout_ms.div_ceil(1000).clamp(15, 1800);
    let props = json!({
        "name": format!("{}/jobs/{job}", cx.settings.location()),
        "description": format!("{} of {}/{} (nimbus)", names::trigger_part(trigger_id), cx.service(), cx.stage()),
        "schedule": schedule,
        "timeZone": timezone,
        "attemptDeadline": format!("{deadline}s"),
        "httpTarget": {
            "uri": out(kinds::FUNCTION, &f.name, "uri"),
            "httpMethod": "POST",
            "oidcToken": {
                "serviceAccountEmail": out(kinds::SERVICE_ACCOUNT, INVOKER, "email"),
                "audience": out(kinds::FUNCTION, &f.name, "uri"),
            },
        },
    });
    let id = cx.push(
        kinds::SCHEDULER_JOB,
        super::trigger_key(trigger_id),
        Some(job),
        props,
    );
    cx.depend(&id, &super::id(kinds::SERVICE_IAM_MEMBER, &f.name));
    Ok(())
}
