//! Resources that already exist (`existing.gcp`) on Google Cloud: lowered to read-only
//! `gcp.existing` stand-ins with Nimbus's own members added to their IAM policies, exported as
//! Terraform data sources, and deployed through the discovery-validated control-plane double in
//! front of fake-gcs-server and the Pub/Sub and Firestore emulators, where the resources are made
//! first (with data and a binding of someone else's) and must come out of deploy and `remove`
//! unchanged but for Nimbus's members.

mod common;

use std::collections::BTreeSet;

use common::cloud::{self, CloudEnv};
use nimbus_cloud::{Cloud, DeployOptions, Options, Target};
use nimbus_engine::NativeResource;
use nimbus_gcp::api::{Client, Credentials};
use nimbus_gcp::kinds;
use nimbus_test_support as support;
use reqwest::Method;
use serde_json::{Value, json};

/// An app using one existing resource of each kind (and a table in another database), with the
/// triggers Google Cloud can wire to them. `PROJECT` is replaced by the project.
const APP: &str = r#"
version: 1
service: ledger
resources:
  users:
    type: table
    key: { id: string }
    existing: { gcp: "projects/PROJECT/databases/(default)/documents/users" }
  entries:
    type: table
    key: { id: string }
    existing: { gcp: "projects/PROJECT/databases/ledger/documents/entries" }
  jobs:
    type: queue
    existing: { gcp: "projects/PROJECT/subscriptions/jobs" }
  events:
    type: topic
    existing: { gcp: "projects/PROJECT/topics/events" }
  assets:
    type: bucket
    existing: { gcp: "projects/_/buckets/PROJECT-assets" }
  own: { type: bucket }
functions:
  writer:
    handler: app.py:handler
    uses:
      - { resource: users, access: read_write }
      - { resource: entries, access: read }
      - { resource: jobs, access: send }
      - { resource: events, access: publish }
      - { resource: assets, access: read_write }
      - { resource: own, access: read }
  on-event:
    handler: app.py:handler
    triggers: [ { topic: events }, { bucket: assets }, { table: users } ]
providers:
  gcp: { project: PROJECT, region: europe-west1 }
"#;

fn app(project: &str) -> String {
    APP.replace("PROJECT", project)
}

fn lowered(project: &str) -> Vec<NativeResource> {
    let g = support::graph_str("gcp", &app(project));
    nimbus_gcp::lower(&g, &support::build_of(&g), &common::settings(&g)).unwrap()
}

fn get<'a>(rs: &'a [NativeResource], id: &str) -> &'a NativeResource {
    rs.iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no resource {id}"))
}

fn reference(id: &str, output: &str) -> Value {
    json!({ "$ref": id, "output": output })
}

#[test]
fn existing_resources_are_read_only_stand_ins_with_grants_and_triggers_on_them() {
    let rs = lowered("acme");
    // Nothing of the existing ones is created: only the app's own bucket is.
    let created: Vec<&str> = rs
        .iter()
        .filter(|r| {
            [
                kinds::TOPIC,
                kinds::SUBSCRIPTION,
                kinds::BUCKET,
                kinds::COLLECTION,
            ]
            .contains(&r.kind.as_str())
        })
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(created, vec!["gcp.storage.bucket/own"]);
    let stand_ins: Vec<(&str, &Value)> = rs
        .iter()
        .filter(|r| r.kind == kinds::EXISTING)
        .map(|r| (r.id.as_str(), &r.properties))
        .collect();
    assert_eq!(
        stand_ins,
        vec![
            (
                "gcp.existing/assets",
                &json!({ "kind": "bucket", "resource": "projects/_/buckets/acme-assets" })
            ),
            (
                "gcp.existing/entries",
                &json!({ "kind": "table", "resource": "projects/acme/databases/ledger/documents/entries" })
            ),
            (
                "gcp.existing/events",
                &json!({ "kind": "topic", "resource": "projects/acme/topics/events" })
            ),
            (
                "gcp.existing/jobs",
                &json!({ "kind": "queue", "resource": "projects/acme/subscriptions/jobs" })
            ),
            (
                "gcp.existing/users",
                &json!({ "kind": "table", "resource": "projects/acme/databases/(default)/documents/users" })
            ),
        ]
    );
    for (_, _) in &stand_ins {
        let r = rs.iter().find(|r| r.kind == kinds::EXISTING).unwrap();
        assert!(!r.retain_data, "a stand-in holds no data of the app's");
    }

    // Grants: one member on each existing resource's policy, for the function's own account.
    let member = reference("gcp.iam.service_account/writer", "member");
    let grant = |id: &str| &get(&rs, id).properties;
    assert_eq!(
        grant("gcp.pubsub.topic_iam_member/writer/uses/jobs"),
        &json!({ "topic": reference("gcp.existing/jobs", "topic"), "role": "roles/pubsub.publisher", "member": member })
    );
    assert_eq!(
        grant("gcp.pubsub.topic_iam_member/writer/uses/events"),
        &json!({ "topic": reference("gcp.existing/events", "topic"), "role": "roles/pubsub.publisher", "member": member })
    );
    assert_eq!(
        grant("gcp.storage.bucket_iam_member/writer/uses/assets"),
        &json!({ "bucket": reference("gcp.existing/assets", "name"), "role": "roles/storage.objectUser", "member": member })
    );
    // Firestore: a project binding per database, its condition naming that database.
    let firestore = grant("gcp.project.iam_member/writer/firestore");
    assert_eq!(firestore["role"], "roles/datastore.user");
    assert_eq!(
        firestore["condition"]["expression"],
        "resource.name == \"projects/acme/databases/(default)\""
    );
    let ledger = get(&rs, "gcp.project.iam_member/writer/firestore/entries");
    assert_eq!(ledger.properties["role"], "roles/datastore.viewer");
    assert_eq!(ledger.properties["project"], "acme");
    assert_eq!(
        ledger.properties["condition"]["expression"],
        "resource.name == \"projects/acme/databases/ledger\""
    );
    assert!(ledger.dependencies().contains("gcp.existing/entries"));

    // The function finds them by their own names.
    let writer = get(&rs, "gcp.functions.function/writer");
    let vars = &writer.properties["serviceConfig"]["environmentVariables"];
    let var = |k: &str| vars[k].clone();
    assert_eq!(
        var("NIMBUS_RESOURCE_USERS_COLLECTION"),
        reference("gcp.existing/users", "collection")
    );
    assert_eq!(
        var("NIMBUS_RESOURCE_ENTRIES_DATABASE"),
        json!("projects/acme/databases/ledger")
    );
    assert_eq!(
        var("NIMBUS_RESOURCE_JOBS_TOPIC"),
        reference("gcp.existing/jobs", "topic")
    );
    assert_eq!(
        var("NIMBUS_RESOURCE_JOBS_SUBSCRIPTION"),
        reference("gcp.existing/jobs", "subscription")
    );
    assert_eq!(
        var("NIMBUS_RESOURCE_ASSETS_NAME"),
        reference("gcp.existing/assets", "name")
    );

    // Triggers: Eventarc on the topic, the bucket and the collection; nothing else touches them.
    let triggers: Vec<&NativeResource> = rs
        .iter()
        .filter(|r| r.kind == kinds::EVENTARC_TRIGGER)
        .collect();
    assert_eq!(
        triggers.len(),
        3,
        "topic, bucket `created`, table `written`"
    );
    let topic = triggers.iter().find(|t| t.id.contains("/topic/")).unwrap();
    assert_eq!(
        topic.properties["transport"]["pubsub"]["topic"],
        reference("gcp.existing/events", "topic")
    );
    let bucket = triggers.iter().find(|t| t.id.contains("/bucket/")).unwrap();
    assert!(
        bucket.properties["eventFilters"]
            .as_array()
            .unwrap()
            .contains(
                &json!({ "attribute": "bucket", "value": reference("gcp.existing/assets", "name") })
            )
    );
    let table = triggers.iter().find(|t| t.id.contains("/table/")).unwrap();
    let filters = table.properties["eventFilters"].as_array().unwrap();
    assert!(filters.contains(&json!({ "attribute": "database", "value": "(default)" })));
    assert!(filters.contains(
        &json!({ "attribute": "document", "value": "users/{doc}", "operator": "match-path-pattern" })
    ));
    assert!(table.dependencies().contains("gcp.existing/users"));
}

#[test]
fn triggers_that_would_change_an_existing_resource_or_cross_projects_are_refused() {
    let queue = "version: 1\nservice: s\nresources:\n  jobs: { type: queue, existing: { gcp: \"projects/acme/subscriptions/jobs\" } }\nfunctions:\n  w: { handler: app.py:handler, triggers: [ { queue: jobs } ] }\nproviders:\n  gcp: { project: acme, region: europe-west1 }\n";
    let table = "version: 1\nservice: s\nresources:\n  t: { type: table, key: { id: string }, existing: { gcp: \"projects/other/databases/(default)/documents/t\" } }\nfunctions:\n  w: { handler: app.py:handler, triggers: [ { table: t } ] }\nproviders:\n  gcp: { project: acme, region: europe-west1 }\n";
    for (manifest, kind, says) in [
        (queue, "queue", "push endpoint"),
        (table, "table", "project `other`"),
    ] {
        let g = support::graph_str("gcp", manifest);
        let e = nimbus_gcp::lower(&g, &support::build_of(&g), &common::settings(&g)).unwrap_err();
        assert!(
            matches!(&e, nimbus_gcp::GcpError::ExistingTrigger { kind: k, .. } if k == kind),
            "{e}"
        );
        assert!(e.to_string().contains(says), "{e}");
    }
}

#[test]
fn terraform_reads_existing_resources_as_data_sources_and_creates_none() {
    let g = support::graph_str("gcp", &app("acme"));
    let build = support::build_of(&g);
    let text = nimbus_gcp::main_tf_json(&g, &build, &common::settings(&g)).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        doc["data"]["google_pubsub_topic"],
        json!({ "events": { "project": "acme", "name": "events" } })
    );
    assert_eq!(
        doc["data"]["google_pubsub_subscription"],
        json!({ "jobs": { "project": "acme", "name": "jobs" } })
    );
    assert_eq!(
        doc["data"]["google_storage_bucket"],
        json!({ "assets": { "name": "acme-assets" } })
    );
    let r = &doc["resource"];
    assert!(r.get("google_pubsub_topic").is_none(), "{r:#}");
    assert!(r.get("google_pubsub_subscription").is_none(), "{r:#}");
    let buckets: Vec<&String> = r["google_storage_bucket"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(buckets, vec!["own"]);
    assert_eq!(
        r["google_pubsub_topic_iam_member"]["writer_uses_jobs"]["topic"],
        "${data.google_pubsub_subscription.jobs.topic}"
    );
    assert_eq!(
        r["google_pubsub_topic_iam_member"]["writer_uses_events"]["topic"],
        "${data.google_pubsub_topic.events.id}"
    );
    assert_eq!(
        r["google_storage_bucket_iam_member"]["writer_uses_assets"]["bucket"],
        "${data.google_storage_bucket.assets.name}"
    );
    let writer =
        &r["google_cloudfunctions2_function"]["writer"]["service_config"]["environment_variables"];
    assert_eq!(writer["NIMBUS_RESOURCE_USERS_COLLECTION"], "users");
    assert_eq!(
        writer["NIMBUS_RESOURCE_JOBS_SUBSCRIPTION"],
        "${data.google_pubsub_subscription.jobs.id}"
    );
    // Deterministic.
    assert_eq!(
        text,
        nimbus_gcp::main_tf_json(&g, &build, &common::settings(&g)).unwrap()
    );
}

// ------------------------------------------------------------------- through the emulators

/// A call through the double (as the resources' owner would make it, outside Nimbus).
async fn call(
    client: &Client,
    method: Method,
    api: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    client
        .json(method, &client.url(api, path), body.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{api}{path}: {e:?}"))
}

/// The bindings of a policy as `role member` lines, sorted.
fn members(policy: &Value) -> BTreeSet<String> {
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| {
            let role = b["role"].as_str().unwrap_or_default().to_string();
            b["members"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |m| format!("{role} {}", m.as_str().unwrap_or_default()))
        })
        .collect()
}

struct Made {
    topic: String,
    subscription: String,
    bucket: String,
    document: String,
}

/// What the resources' owner made before the app: the topic (with a subscriber of its own),
/// the subscription of the queue on a topic of its own, the bucket with an object, a document
/// in `users`, and on the topic and the bucket a binding of someone else's.
async fn make_existing(client: &Client, project: &str) -> Made {
    let topic = format!("projects/{project}/topics/events");
    call(
        client,
        Method::PUT,
        "pubsub",
        &format!("/v1/{topic}"),
        Some(json!({})),
    )
    .await;
    let jobs_topic = format!("projects/{project}/topics/jobs-in");
    call(
        client,
        Method::PUT,
        "pubsub",
        &format!("/v1/{jobs_topic}"),
        Some(json!({})),
    )
    .await;
    let subscription = format!("projects/{project}/subscriptions/jobs");
    call(
        client,
        Method::PUT,
        "pubsub",
        &format!("/v1/{subscription}"),
        Some(json!({ "topic": jobs_topic, "ackDeadlineSeconds": 30 })),
    )
    .await;
    let bucket = format!("{project}-assets");
    call(
        client,
        Method::POST,
        "storage",
        &format!("/storage/v1/b?project={project}"),
        Some(json!({ "name": bucket, "location": "EUROPE-WEST1" })),
    )
    .await;
    nimbus_gcp::storage::GcsStore::new(client.clone(), &bucket)
        .upload("kept.txt", b"the owner's".to_vec(), "text/plain", None)
        .await
        .unwrap();
    let owner =
        json!([{ "role": "roles/storage.objectViewer", "members": ["user:owner@example.com"] }]);
    call(
        client,
        Method::PUT,
        "storage",
        &format!("/storage/v1/b/{bucket}/iam"),
        Some(json!({ "bindings": owner })),
    )
    .await;
    let owner =
        json!([{ "role": "roles/pubsub.subscriber", "members": ["user:owner@example.com"] }]);
    call(
        client,
        Method::POST,
        "pubsub",
        &format!("/v1/{topic}:setIamPolicy"),
        Some(json!({ "policy": { "bindings": owner } })),
    )
    .await;
    let database = format!("projects/{project}/databases/(default)");
    call(
        client,
        Method::PATCH,
        "firestore",
        &format!("/v1/{database}/documents/users/ada"),
        Some(json!({ "fields": { "name": { "stringValue": "Ada" } } })),
    )
    .await;
    Made {
        topic,
        subscription,
        bucket,
        document: format!("{database}/documents/users/ada"),
    }
}

/// The app in a fresh directory, built for real.
fn built(
    project: &str,
) -> (
    tempfile::TempDir,
    nimbus_graph::AppGraph,
    nimbus_package::BuildReport,
    std::path::PathBuf,
) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nimbus.yaml"), app(project)).unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "def handler(event, context):\n    return {\"ok\": True}\n",
    )
    .unwrap();
    let (graph, build, out) = cloud::build(dir.path());
    (dir, graph, build, out)
}

async fn connect(env: &CloudEnv, graph: &nimbus_graph::AppGraph) -> nimbus_gcp::Gcp {
    nimbus_gcp::Gcp::new(
        graph,
        Options::default(),
        env.endpoints(),
        Credentials::Anonymous,
        None,
    )
    .await
    .unwrap()
    .with_timing(cloud::fast())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_grants_on_existing_resources_and_remove_leaves_them_as_they_were() {
    let env = cloud::env();
    let project = "nimbus-existing";
    let client = Client::new(env.endpoints(), Credentials::Anonymous).unwrap();
    let (_dir, graph, build, out) = built(project);
    let target = Target {
        graph: &graph,
        build: &build.manifest,
        build_dir: &out,
    };
    let gcp = connect(env, &graph).await;

    // Missing: the deploy stops before it changes anything, naming what is missing.
    let mark = env.mark();
    let e = gcp
        .deploy(&target, DeployOptions::default())
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(e, nimbus_gcp::GcpError::Existing(_)), "{e}");
    assert!(e.to_string().contains("was not found"), "{e}");
    assert!(e.to_string().contains("fix `existing.gcp`"), "{e}");
    let writes: Vec<Value> = env
        .requests_since(project, mark)
        .into_iter()
        .filter(|r| r["write"] == true)
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");

    let made = make_existing(&client, project).await;
    let topic_policy = format!("/v1/{}:getIamPolicy", made.topic);
    let bucket_policy = format!("/storage/v1/b/{}/iam", made.bucket);
    let before_topic = members(&call(&client, Method::GET, "pubsub", &topic_policy, None).await);
    let before_bucket = members(&call(&client, Method::GET, "storage", &bucket_policy, None).await);
    let subscription_before = call(
        &client,
        Method::GET,
        "pubsub",
        &format!("/v1/{}", made.subscription),
        None,
    )
    .await;

    let mark = env.mark();
    gcp.deploy(&target, DeployOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let requests = env.requests_since(project, mark);

    // Nothing but setIamPolicy ever writes to an existing resource.
    let names = [
        made.topic.as_str(),
        made.subscription.as_str(),
        made.bucket.as_str(),
        "/documents/users",
    ];
    let touching: Vec<String> = requests
        .iter()
        .filter(|r| r["write"] == true)
        .filter(|r| {
            let path = r["path"].as_str().unwrap_or_default();
            names.iter().any(|n| path.contains(n))
        })
        .map(|r| format!("{} {}", r["method"], cloud::line(r)))
        .collect();
    assert!(
        touching.iter().all(|t| t.contains("setIamPolicy")),
        "{touching:#?}"
    );
    assert_eq!(
        touching.len(),
        2,
        "one policy write each on the topic and the bucket: {touching:#?}"
    );

    let account = format!("serviceAccount:ledger-dev-writer@{project}.iam.gserviceaccount.com");
    let topic_members = members(&call(&client, Method::GET, "pubsub", &topic_policy, None).await);
    let expected: BTreeSet<String> = before_topic
        .iter()
        .cloned()
        .chain([format!("roles/pubsub.publisher {account}")])
        .collect();
    assert_eq!(topic_members, expected);
    let bucket_members =
        members(&call(&client, Method::GET, "storage", &bucket_policy, None).await);
    let expected: BTreeSet<String> = before_bucket
        .iter()
        .cloned()
        .chain([format!("roles/storage.objectUser {account}")])
        .collect();
    assert_eq!(bucket_members, expected);
    // The queue's grant is on its subscription's topic, read from the subscription.
    let jobs_topic = format!("/v1/projects/{project}/topics/jobs-in:getIamPolicy");
    assert!(
        members(&call(&client, Method::GET, "pubsub", &jobs_topic, None).await)
            .contains(&format!("roles/pubsub.publisher {account}"))
    );
    let resources = env.resources();
    let functions = resources["functions"].as_object().unwrap();
    let writer = functions
        .iter()
        .find(|(n, _)| {
            n.ends_with(&format!(
                "{project}/locations/europe-west1/functions/ledger-dev-writer"
            ))
        })
        .map(|(_, f)| f)
        .expect("the writer function");
    let vars = &writer["serviceConfig"]["environmentVariables"];
    assert_eq!(
        vars["NIMBUS_RESOURCE_JOBS_TOPIC"],
        format!("projects/{project}/topics/jobs-in")
    );
    assert_eq!(
        vars["NIMBUS_RESOURCE_JOBS_SUBSCRIPTION"],
        json!(made.subscription)
    );
    assert_eq!(vars["NIMBUS_RESOURCE_ASSETS_NAME"], json!(made.bucket));
    assert_eq!(vars["NIMBUS_RESOURCE_USERS_COLLECTION"], "users");

    // The plan after the deploy is clean (the stand-ins read back as lowered).
    let plan = gcp.plan(&target, true).await.unwrap();
    let drifted: Vec<&str> = plan
        .resources
        .iter()
        .filter(|r| !r.drift.is_empty() || r.missing_in_cloud)
        .map(|r| r.id.as_str())
        .collect();
    assert!(drifted.is_empty(), "{drifted:?}");

    gcp.remove(&graph, false).await.unwrap();
    // Everything is there as before: the resources, their data, the owner's bindings.
    assert_eq!(
        members(&call(&client, Method::GET, "pubsub", &topic_policy, None).await),
        before_topic
    );
    assert_eq!(
        members(&call(&client, Method::GET, "storage", &bucket_policy, None).await),
        before_bucket
    );
    assert!(
        !members(&call(&client, Method::GET, "pubsub", &jobs_topic, None).await)
            .iter()
            .any(|m| m.contains(&account))
    );
    let subscription_after = call(
        &client,
        Method::GET,
        "pubsub",
        &format!("/v1/{}", made.subscription),
        None,
    )
    .await;
    assert_eq!(subscription_after, subscription_before);
    let store = nimbus_gcp::storage::GcsStore::new(client.clone(), &made.bucket);
    assert!(store.exists("kept.txt").await.unwrap());
    let doc = call(
        &client,
        Method::GET,
        "firestore",
        &format!("/v1/{}", made.document),
        None,
    )
    .await;
    assert_eq!(doc["fields"]["name"]["stringValue"], "Ada");
    env.assert_nothing_left(project);
    assert_eq!(env.violations(project), Vec::<Value>::new());
}

/// A bucket trigger's Eventarc trigger must be in the bucket's location: an existing bucket
/// elsewhere is refused before anything changes, saying where it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triggered_existing_bucket_in_another_location_is_refused_before_any_change() {
    let env = cloud::env();
    let project = "nimbus-existing-far";
    let client = Client::new(env.endpoints(), Credentials::Anonymous).unwrap();
    let bucket = format!("{project}-far");
    call(
        &client,
        Method::POST,
        "storage",
        &format!("/storage/v1/b?project={project}"),
        Some(json!({ "name": bucket, "location": "US" })),
    )
    .await;
    let manifest = format!(
        "version: 1\nservice: far\nresources:\n  far: {{ type: bucket, existing: {{ gcp: \"projects/_/buckets/{bucket}\" }} }}\nfunctions:\n  on-upload:\n    handler: app.py:handler\n    triggers: [ {{ bucket: far }} ]\nproviders:\n  gcp: {{ project: {project}, region: europe-west1 }}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nimbus.yaml"), &manifest).unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "def handler(event, context):\n    return None\n",
    )
    .unwrap();
    let (graph, build, out) = cloud::build(dir.path());
    let target = Target {
        graph: &graph,
        build: &build.manifest,
        build_dir: &out,
    };
    let gcp = connect(env, &graph).await;
    let mark = env.mark();
    let e = gcp
        .deploy(&target, DeployOptions::default())
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(e, nimbus_gcp::GcpError::Existing(_)), "{e}");
    assert!(e.to_string().contains("is in `us`"), "{e}");
    assert!(e.to_string().contains("`europe-west1`"), "{e}");
    let writes: Vec<Value> = env
        .requests_since(project, mark)
        .into_iter()
        .filter(|r| r["write"] == true)
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
}
