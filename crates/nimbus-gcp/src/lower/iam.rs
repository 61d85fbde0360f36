//! IAM: service accounts and the least-privilege role bindings of each one, each on the exact
//! resource it is for (never a project-wide editor or owner role).
//!
//! | grant | role | on |
//! |---|---|---|
//! | table `read` | `roles/datastore.viewer` | the project, with an IAM condition naming the Firestore database |
//! | table `write`, `read_write` | `roles/datastore.user` | the project, with the same condition |
//! | existing table (`existing.gcp`) | the same role | the project of its database, with a condition naming that database |
//! | existing queue, topic, bucket | the same role as a created one | that topic (a queue's: its subscription's topic), that bucket: one member added to its IAM policy, removed again by `remove` |
//! | queue `send` | `roles/pubsub.publisher` | the queue's topic |
//! | topic `publish` | `roles/pubsub.publisher` | the topic |
//! | bucket `read` | `roles/storage.objectViewer` | the bucket |
//! | bucket `write`, `read_write` | `roles/storage.objectUser` | the bucket |
//! | any trigger (invoker account) | `roles/run.invoker` | each triggered function's Cloud Run service |
//! | topic, bucket, table triggers (invoker account) | `roles/eventarc.eventReceiver` | the project |
//! | dead letters (Pub/Sub service agent) | `roles/pubsub.publisher`; `roles/pubsub.subscriber` | the dead-letter topic; the queue's subscription |
//! | bucket triggers (Cloud Storage service agent) | `roles/pubsub.publisher` | the project |
//! | `permissions.gcp` grant without `resource` | its `role` | the deployment's project |
//! | `permissions.gcp` grant with `resource` | its `role` | that project, topic, subscription, secret or bucket |
//!
//! Extra grants (the escape hatch) bind the function's own service account only. A grant names
//! a resource of a type Nimbus can bind on (validation refuses others rather than widening them
//! to the project); without one it is a project-level binding, which the user asked for.
//!
//! Documented exceptions, where Google offers nothing narrower: Firestore has no per-collection
//! IAM (the grant is limited to the database by a condition, and the shim only touches the
//! function's own collections); `roles/storage.objectUser` is the smallest predefined role that
//! can both create and delete objects (it can read them too); Eventarc's event receiver and the
//! Cloud Storage agent's publisher role exist only at project level.

use nimbus_graph::{FunctionNode, Link, TriggerSpec};
use nimbus_manifest::{Access, ResourceKind};
use serde_json::{Value, json};

use std::collections::BTreeMap;

use super::{Cx, INVOKER, id, out};
use crate::kinds;
use crate::names;

/// The member string of the Pub/Sub service agent.
fn pubsub_agent(cx: &Cx) -> String {
    format!(
        "serviceAccount:service-{}@gcp-sa-pubsub.iam.gserviceaccount.com",
        cx.settings.project_number
    )
}

/// The member string of the Cloud Storage service agent.
fn storage_agent(cx: &Cx) -> String {
    format!(
        "serviceAccount:service-{}@gs-project-accounts.iam.gserviceaccount.com",
        cx.settings.project_number
    )
}

/// The invoker account and the project-level grants events need.
pub(super) fn project_grants(cx: &mut Cx) {
    if !cx.has_triggers() {
        return;
    }
    let account = names::invoker_account(cx.service(), cx.stage());
    let props = json!({
        "project": cx.project(),
        "accountId": account,
        "displayName": format!("{} {} invoker", cx.service(), cx.stage()),
        "description": format!(
            "Calls the functions of {}/{} for API Gateway, Eventarc, Pub/Sub and Cloud Scheduler (nimbus)",
            cx.service(), cx.stage()
        ),
    });
    cx.push(kinds::SERVICE_ACCOUNT, INVOKER, Some(account), props);
    let triggers: Vec<&TriggerSpec> = cx
        .graph
        .functions
        .values()
        .flat_map(|f| f.triggers.iter().map(|t| &t.spec))
        .collect();
    let eventarc = triggers.iter().any(|t| {
        matches!(
            t,
            TriggerSpec::Topic { .. } | TriggerSpec::Bucket { .. } | TriggerSpec::Table { .. }
        )
    });
    if eventarc {
        let props = json!({
            "project": cx.project(),
            "role": "roles/eventarc.eventReceiver",
            "member": out(kinds::SERVICE_ACCOUNT, INVOKER, "member"),
        });
        cx.push(kinds::PROJECT_IAM_MEMBER, "invoker/eventarc", None, props);
    }
    if triggers
        .iter()
        .any(|t| matches!(t, TriggerSpec::Bucket { .. }))
    {
        let props = json!({
            "project": cx.project(),
            "role": "roles/pubsub.publisher",
            "member": storage_agent(cx),
        });
        cx.push(
            kinds::PROJECT_IAM_MEMBER,
            "storage-agent/pubsub",
            None,
            props,
        );
    }
}

/// What the Pub/Sub service agent needs to dead-letter `queue`'s messages.
pub(super) fn dead_letter_grants(cx: &mut Cx, queue: &str) {
    let dlq = format!("{queue}/dlq");
    let props = json!({
        "topic": out(kinds::TOPIC, &dlq, "name"),
        "role": "roles/pubsub.publisher",
        "member": pubsub_agent(cx),
    });
    cx.push(
        kinds::TOPIC_IAM_MEMBER,
        &format!("{dlq}/agent"),
        None,
        props,
    );
    let props = json!({
        "subscription": out(kinds::SUBSCRIPTION, queue, "name"),
        "role": "roles/pubsub.subscriber",
        "member": pubsub_agent(cx),
    });
    cx.push(
        kinds::SUBSCRIPTION_IAM_MEMBER,
        &format!("{queue}/dlq-agent"),
        None,
        props,
    );
}

/// The role a grant of `access` on a `kind` resource needs.
pub(crate) fn role(kind: ResourceKind, access: Access) -> &'static str {
    let read_only = matches!(access, Access::Read);
    match kind {
        ResourceKind::Table if read_only => "roles/datastore.viewer",
        ResourceKind::Table => "roles/datastore.user",
        ResourceKind::Bucket if read_only => "roles/storage.objectViewer",
        ResourceKind::Bucket => "roles/storage.objectUser",
        ResourceKind::Queue | ResourceKind::Topic => "roles/pubsub.publisher",
    }
}

/// The function's grants on what it `uses`.
pub(super) fn uses(cx: &mut Cx, f: &FunctionNode) {
    let member = out(kinds::SERVICE_ACCOUNT, &f.name, "member");
    let from = f.id.clone();
    let grants: Vec<(String, Access)> = cx
        .graph
        .edges
        .iter()
        .filter(|e| e.from == from)
        .filter_map(|e| match &e.link {
            Link::Uses { access } => {
                Some((e.to.trim_start_matches("resource:").to_string(), *access))
            }
            Link::Trigger { .. } => None,
        })
        .collect();
    // Firestore grants are per project: one binding per database and role, whatever the number
    // of tables (an existing table may be in a database, or a project, of its own).
    let own = cx.database_path();
    let mut datastore: BTreeMap<String, Datastore> = BTreeMap::new();
    for (name, access) in grants {
        let Some(r) = cx.graph.resources.get(&name) else {
            continue;
        };
        let role = role(r.kind, access);
        let key = format!("{}/uses/{name}", f.name);
        let needs = cx.existing(&name).map(|_| id(kinds::EXISTING, &name));
        match r.kind {
            ResourceKind::Table => {
                let database = cx
                    .res(&name, "database")
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let project = database.split('/').nth(1).unwrap_or_default().to_string();
                let entry = datastore.entry(database).or_insert(Datastore {
                    role,
                    project,
                    tables: Vec::new(),
                    needs: Vec::new(),
                });
                if role == "roles/datastore.user" {
                    entry.role = role;
                }
                entry.needs.extend(needs);
                entry.tables.push(name);
            }
            ResourceKind::Queue | ResourceKind::Topic => {
                let props = json!({
                    "topic": cx.res(&name, "topic"),
                    "role": role,
                    "member": member.clone(),
                });
                cx.push(kinds::TOPIC_IAM_MEMBER, &key, None, props);
            }
            ResourceKind::Bucket => {
                let props = json!({
                    "bucket": cx.res(&name, "bucket"),
                    "role": role,
                    "member": member.clone(),
                });
                cx.push(kinds::BUCKET_IAM_MEMBER, &key, None, props);
            }
        }
    }
    for (database, d) in datastore {
        let props = json!({
            "project": d.project,
            "role": d.role,
            "member": member.clone(),
            "condition": database_condition(&database),
        });
        // The app's own database keeps the key it always had; another one is named by its first
        // table (and waits for the existing tables' lookups, which the condition does not name).
        let key = match database == own {
            true => format!("{}/firestore", f.name),
            false => format!("{}/firestore/{}", f.name, d.tables[0]),
        };
        let binding = cx.push(kinds::PROJECT_IAM_MEMBER, &key, None, props);
        for n in d.needs {
            cx.depend(&binding, &n);
        }
    }
}

/// One Firestore binding of a function: its role, the database's project, the tables it is
/// for, and the existing tables' stand-ins it waits for.
struct Datastore {
    role: &'static str,
    project: String,
    tables: Vec<String>,
    needs: Vec<String>,
}

/// The function's own `permissions.gcp` grants, keyed `<function>/extra/<n>` (from 1).
pub(super) fn extra(cx: &mut Cx, f: &FunctionNode) {
    let member = out(kinds::SERVICE_ACCOUNT, &f.name, "member");
    for (i, g) in f.permissions.gcp.iter().enumerate() {
        let key = format!("{}/extra/{}", f.name, i + 1);
        let role = g.role.as_str();
        let resource = g.resource.as_ref().map(|r| r.as_str());
        let parts: Vec<&str> = resource.map(|r| r.split('/').collect()).unwrap_or_default();
        let (kind, props) = match parts.as_slice() {
            ["projects", "_", "buckets", b] => (
                kinds::BUCKET_IAM_MEMBER,
                json!({ "bucket": b, "role": role, "member": member.clone() }),
            ),
            ["projects", _, "topics", _] => (
                kinds::TOPIC_IAM_MEMBER,
                json!({ "topic": resource, "role": role, "member": member.clone() }),
            ),
            ["projects", _, "subscriptions", _] => (
                kinds::SUBSCRIPTION_IAM_MEMBER,
                json!({ "subscription": resource, "role": role, "member": member.clone() }),
            ),
            ["projects", _, "secrets", _] => (
                kinds::SECRET_IAM_MEMBER,
                json!({ "secret": resource, "role": role, "member": member.clone() }),
            ),
            ["projects", p] => (
                kinds::PROJECT_IAM_MEMBER,
                json!({ "project": p, "role": role, "member": member.clone() }),
            ),
            // No resource (validation refuses the shapes Nimbus cannot bind on).
            _ => (
                kinds::PROJECT_IAM_MEMBER,
                json!({ "project": cx.project(), "role": role, "member": member.clone() }),
            ),
        };
        cx.push(kind, &key, None, props);
    }
}

/// The IAM condition that limits a Firestore grant to `database` (its full name).
fn database_condition(database: &str) -> Value {
    json!({
        "title": "nimbus-firestore-database",
        "description": "Only the Firestore database the app's collections live in",
        "expression": format!("resource.name == \"{database}\""),
    })
}
