//! Lowering: the app graph and its build → the Google Cloud objects that run it, as native
//! resources.
//!
//! One [`NativeResource`] per object, in a fixed order (the resources by name, the invoker
//! account and project grants, then each function by name with its service account, grants,
//! code and triggers, then the HTTP entry), with properties shaped like the REST bodies that
//! create them (see [`crate::kinds`]). Logical ids are `<kind>/<name>`: `<name>` is the neutral
//! name of the resource or function, `<function>/<trigger kind>/<index>` for what belongs to one
//! trigger, `<function>/uses/<resource>` for grants, `<queue>/dlq` for dead letters, `invoker`
//! (the account Google's services call functions as), `http` (the API and gateway) and
//! `http-<hash>` (the API config). A `/` never occurs in a neutral name, so these never collide.
//!
//! **Functions** are Cloud Functions (2nd gen) without an `eventTrigger` of their own: every
//! trigger is an object of its own that calls the function's URL, as the invoker account
//! (which holds `roles/run.invoker` on exactly the functions that have triggers):
//! - http: one API Gateway (an OpenAPI 2.0 config with an `x-google-backend` per route, the path
//!   appended to the function's URL so the shim routes it and reads its path parameters);
//! - schedule: a Cloud Scheduler job (the translated cron and its time zone) POSTing to the
//!   function's URL with an OIDC token;
//! - queue: the queue's own subscription, pushing to the function's URL with an OIDC token, with
//!   the queue's dead-letter topic and `maxDeliveryAttempts`;
//! - topic, bucket, table: Eventarc triggers (`google.cloud.pubsub.topic.v1.messagePublished`,
//!   `google.cloud.storage.object.v1.finalized`/`deleted`,
//!   `google.cloud.firestore.document.v1.written`/`created`/`updated`/`deleted` with JSON event
//!   data) to the function's Cloud Run service.
//!
//! Why not the function's own `eventTrigger`: Cloud Functions allows one per function and no
//! Firestore JSON encoding, while a manifest function may have several triggers; an
//! `eventTrigger` is itself an Eventarc trigger, so this is the same machinery, made explicit.
//!
//! **Grants** (least privilege, on the exact resource): see [`iam`].
//!
//! **Secrets**: Secret Manager secrets read through the function's native
//! `secretEnvironmentVariables`: see [`secrets`].

mod events;
mod function;
mod http;
pub(crate) mod iam;
mod resources;

pub(crate) use resources::existing_properties;
pub(crate) mod secrets;

use std::collections::BTreeMap;

use nimbus_engine::{NativeResource, reference};
use nimbus_graph::AppGraph;
use nimbus_package::BuildManifest;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::GcpError;
use crate::kinds;
use crate::names;

/// Where the app is deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcpSettings {
    /// The project id.
    pub project: String,
    /// The project number (Google's service agents are named by it).
    pub project_number: String,
    /// The region of functions, buckets, triggers, jobs and the gateway.
    pub region: String,
    /// The bucket holding packages and state ([`names::deploy_bucket`] by convention).
    pub deploy_bucket: String,
    /// The Firestore database id (`(default)`).
    pub firestore_database: String,
    /// Where the Firestore database is (its Eventarc triggers must be there): the region unless set.
    pub firestore_location: String,
}

impl GcpSettings {
    /// The settings in `graph.settings["gcp"]`: `project` and `region` (required), and optionally
    /// `deploy_bucket`, `firestore_database`, `firestore_location`; the project number is asked
    /// from Google at connect time.
    pub fn from_graph(graph: &AppGraph, project_number: &str) -> Result<Self, GcpError> {
        let gcp = graph.settings.get("gcp");
        let get = |key: &str| {
            gcp.and_then(|g| g.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let required = |key: &'static str| {
            get(key).filter(|v| !v.is_empty()).ok_or(GcpError::Setting {
                key,
                problem: "is required (set it under `providers: gcp:` in the manifest)".into(),
            })
        };
        let project = required("project")?;
        let region = required("region")?;
        let deploy_bucket = match get("deploy_bucket") {
            Some(b) => b,
            None => names::deploy_bucket(&project)?,
        };
        Ok(GcpSettings {
            project_number: project_number.to_string(),
            deploy_bucket,
            firestore_database: get("firestore_database").unwrap_or_else(|| "(default)".into()),
            firestore_location: get("firestore_location").unwrap_or_else(|| region.clone()),
            project,
            region,
        })
    }

    /// `projects/{project}/locations/{region}`.
    pub fn location(&self) -> String {
        format!("projects/{}/locations/{}", self.project, self.region)
    }

    /// The object key of a function's package in the deployment bucket.
    pub fn package_key(&self, service: &str, stage: &str, function: &str, sha256: &str) -> String {
        format!("packages/{service}/{stage}/{function}/{sha256}.zip")
    }
}

/// Lowers `graph`, packaged as `build`, into the Google Cloud objects that run it.
pub fn lower(
    graph: &AppGraph,
    build: &BuildManifest,
    settings: &GcpSettings,
) -> Result<Vec<NativeResource>, GcpError> {
    if graph.provider != "gcp" {
        return Err(GcpError::WrongProvider {
            what: "app graph",
            provider: graph.provider.clone(),
        });
    }
    if build.provider != "gcp" {
        return Err(GcpError::WrongProvider {
            what: "build",
            provider: build.provider.clone(),
        });
    }
    let mut cx = Cx::new(graph, build, settings);
    resources::all(&mut cx)?;
    secrets::all(&mut cx);
    iam::project_grants(&mut cx);
    for f in graph.functions.values() {
        function::function(&mut cx, f)?;
        events::triggers(&mut cx, f)?;
    }
    http::api(&mut cx)?;
    check_names(&cx.out)?;
    Ok(cx.out)
}

/// What lowering needs at hand, and what it has produced so far.
pub(crate) struct Cx<'a> {
    pub graph: &'a AppGraph,
    pub build: &'a BuildManifest,
    pub settings: &'a GcpSettings,
    /// Labels for every labelled object: the user's `providers.gcp.labels`, then
    /// `nimbus-service` and `nimbus-stage`.
    pub labels: BTreeMap<String, String>,
    pub out: Vec<NativeResource>,
}

impl<'a> Cx<'a> {
    fn new(graph: &'a AppGraph, build: &'a BuildManifest, settings: &'a GcpSettings) -> Self {
        let mut labels: BTreeMap<String, String> = graph
            .settings
            .get("gcp")
            .and_then(|g| g.get("labels"))
            .and_then(Value::as_object)
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        labels.insert("nimbus-service".into(), graph.service.clone());
        labels.insert("nimbus-stage".into(), graph.stage.clone());
        Cx {
            graph,
            build,
            settings,
            labels,
            out: Vec::new(),
        }
    }

    pub fn service(&self) -> &str {
        &self.graph.service
    }

    pub fn stage(&self) -> &str {
        &self.graph.stage
    }

    pub fn project(&self) -> &str {
        &self.settings.project
    }

    /// Labels as a JSON map.
    pub fn label_map(&self) -> Value {
        Value::Object(
            self.labels
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect::<Map<_, _>>(),
        )
    }

    /// Adds a resource; returns its logical id.
    pub fn push(
        &mut self,
        kind: &str,
        name: &str,
        physical_name: Option<String>,
        properties: Value,
    ) -> String {
        let id = id(kind, name);
        debug_assert!(kinds::outputs(kind).is_some(), "unknown kind {kind}");
        let replace_on = match kinds::replace_on(kind) {
            Some(props) => props.iter().map(|p| p.to_string()).collect(),
            None => properties
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
        };
        self.out.push(NativeResource {
            id: id.clone(),
            kind: kind.to_string(),
            physical_name,
            properties,
            depends_on: Vec::new(),
            replace_on,
            retain_data: kinds::holds_data(kind),
        });
        id
    }

    /// Whether a resource with this logical id was pushed.
    pub fn has(&self, id: &str) -> bool {
        self.out.iter().any(|r| r.id == id)
    }

    /// Makes `id` wait for `on` (beyond what its references imply).
    pub fn depend(&mut self, id: &str, on: &str) {
        let r = self
            .out
            .iter_mut()
            .find(|r| r.id == id)
            .expect("the resource was pushed");
        if !r.depends_on.iter().any(|d| d == on) {
            r.depends_on.push(on.to_string());
        }
    }

    /// Whether any function has a trigger at all (then the invoker account exists).
    pub fn has_triggers(&self) -> bool {
        self.graph
            .functions
            .values()
            .any(|f| !f.triggers.is_empty())
    }

    /// The full name of a Pub/Sub topic id.
    pub fn topic_path(&self, id: &str) -> String {
        format!("projects/{}/topics/{id}", self.project())
    }

    /// The full name of a Pub/Sub subscription id.
    pub fn subscription_path(&self, id: &str) -> String {
        format!("projects/{}/subscriptions/{id}", self.project())
    }

    /// The full name of resource `name` when it already exists (`existing.gcp`).
    pub fn existing(&self, name: &str) -> Option<&'a str> {
        self.graph.resources.get(name)?.existing.as_deref()
    }

    /// The parts (`project`, `database`, `name`) of the full name of existing resource `name`,
    /// read with the shape of `providers/gcp/capabilities.toml`.
    pub fn existing_parts(&self, name: &str) -> Result<BTreeMap<String, String>, GcpError> {
        let r = &self.graph.resources[name];
        let given = r.existing.as_deref().unwrap_or_default();
        let shape = nimbus_provider::ProviderId::Gcp
            .capabilities()
            .resource(r.kind)
            .and_then(|c| c.existing.as_ref())
            .map(|e| e.shape.as_str())
            .unwrap_or_default();
        nimbus_provider::external::parse_shape(shape, given).ok_or_else(|| GcpError::ExistingName {
            resource: name.to_string(),
            kind: r.kind.to_string(),
            name: given.to_string(),
            shape: shape.to_string(),
        })
    }

    /// A reference to what resource `name` is on Google Cloud, of the object Nimbus creates or
    /// of its `gcp.existing` stand-in: `topic` (a topic's, or a queue's topic), `subscription`
    /// (a queue's), `bucket`, `collection`; `database` is the Firestore database's full name.
    pub fn res(&self, name: &str, what: &str) -> Value {
        if let Some(full) = self.existing(name) {
            return match what {
                "bucket" => out(kinds::EXISTING, name, "name"),
                "database" => json!(full.split_once("/documents/").map_or(full, |d| d.0)),
                other => out(kinds::EXISTING, name, other),
            };
        }
        match what {
            "topic" => out(kinds::TOPIC, name, "name"),
            "subscription" => out(kinds::SUBSCRIPTION, name, "name"),
            "bucket" => out(kinds::BUCKET, name, "name"),
            "collection" => out(kinds::COLLECTION, name, "collection"),
            "database" => json!(self.database_path()),
            other => unreachable!("no neutral output `{other}`"),
        }
    }

    /// The logical id of what stands for resource `name` of `kind` (its stand-in when it
    /// already exists).
    pub fn res_id(&self, kind: &str, name: &str) -> String {
        match self.existing(name) {
            Some(_) => id(kinds::EXISTING, name),
            None => id(kind, name),
        }
    }

    /// The Firestore database's full name.
    pub fn database_path(&self) -> String {
        format!(
            "projects/{}/databases/{}",
            self.project(),
            self.settings.firestore_database
        )
    }
}

/// The logical id of a resource of `kind` named `name`.
pub(crate) fn id(kind: &str, name: &str) -> String {
    format!("{kind}/{name}")
}

/// A reference to output `output` of the resource of `kind` named `name`.
pub(crate) fn out(kind: &str, name: &str, output: &str) -> Value {
    debug_assert!(
        kinds::outputs(kind).is_some_and(|o| o.contains(&output)),
        "{kind} has no output {output}"
    );
    reference(&id(kind, name), output)
}

/// `trigger:place-order/http/0` → `place-order/http/0`.
pub(crate) fn trigger_key(trigger_id: &str) -> &str {
    trigger_id.trim_start_matches("trigger:")
}

/// The invoker account's logical name.
pub(crate) const INVOKER: &str = "invoker";

/// Physical names must be unique within each namespace.
fn check_names(out: &[NativeResource]) -> Result<(), GcpError> {
    let mut seen: BTreeMap<(String, String), &str> = BTreeMap::new();
    for r in out {
        let Some(name) = &r.physical_name else {
            continue;
        };
        if let Some(first) = seen.insert((r.kind.clone(), name.clone()), &r.id) {
            return Err(GcpError::NameClash {
                kind: r.kind.clone(),
                name: name.clone(),
                first: first.to_string(),
                second: r.id.clone(),
            });
        }
    }
    Ok(())
}
