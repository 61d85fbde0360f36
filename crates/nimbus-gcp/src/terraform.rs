//! The Terraform JSON export (`main.tf.json`): the lowered app as one deterministic configuration
//! for the `google` provider (and `google-beta`, which alone has API Gateway).
//!
//! The configuration is made *from* the lowered resources, so it names and grants exactly what a
//! direct deploy does. Lowering runs with placeholders for the project, its number, the region
//! and the deployment bucket, which become `${var.project}`, `${data.google_project.this.number}`,
//! `${var.region}` and `${var.deploy_bucket}`; references become attribute expressions
//! (`${google_service_account.place_order.email}`). Names never depend on the project id's length
//! (see [`crate::names`]), so Terraform computes the same names as a direct deploy.
//!
//! Differences from the native resources, all forced by Terraform's model:
//! - the packages are `google_storage_bucket_object`s uploaded from the zips next to the file
//!   (`${path.module}/<function>.zip`), into the deployment bucket, which must exist;
//! - a Firestore collection is no Terraform resource (collections exist by their documents);
//! - the OpenAPI document is `base64encode(jsonencode(...))` of the document, with the
//!   functions' URLs as expressions;
//! - API configs are `create_before_destroy`, as the gateway keeps using the old one until it
//!   moves.
//!
//! - a resource that already exists (`gcp.existing`) is a data source, never a resource:
//!   `data.google_pubsub_topic`, `data.google_pubsub_subscription` (a queue; its `topic` is what
//!   functions publish to), `data.google_storage_bucket`; an existing Firestore collection has no
//!   data source (like the collections Nimbus uses), its names are written as they are.
//!
//! Literal `${` and `%{` in values are escaped (`$${`, `%%{`). The same graph, build and settings
//! always give the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use nimbus_engine::NativeResource;
use nimbus_engine::resource::as_reference;
use nimbus_graph::AppGraph;
use nimbus_package::BuildManifest;
use serde_json::{Map, Value, json};

use crate::error::GcpError;
use crate::kinds;
use crate::lower::{GcpSettings, lower};

fn placeholder(name: &str) -> String {
    format!("\u{E000}{name}\u{E001}")
}

/// The Terraform type of a kind (`None`: no resource of its own).
pub fn tf_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        kinds::SERVICE_ACCOUNT => "google_service_account",
        kinds::PROJECT_IAM_MEMBER => "google_project_iam_member",
        kinds::TOPIC => "google_pubsub_topic",
        kinds::SUBSCRIPTION => "google_pubsub_subscription",
        kinds::TOPIC_IAM_MEMBER => "google_pubsub_topic_iam_member",
        kinds::SUBSCRIPTION_IAM_MEMBER => "google_pubsub_subscription_iam_member",
        kinds::BUCKET => "google_storage_bucket",
        kinds::BUCKET_IAM_MEMBER => "google_storage_bucket_iam_member",
        kinds::FUNCTION => "google_cloudfunctions2_function",
        kinds::SERVICE_IAM_MEMBER => "google_cloud_run_v2_service_iam_member",
        kinds::EVENTARC_TRIGGER => "google_eventarc_trigger",
        kinds::SCHEDULER_JOB => "google_cloud_scheduler_job",
        kinds::SECRET => "google_secret_manager_secret",
        kinds::SECRET_IAM_MEMBER => "google_secret_manager_secret_iam_member",
        kinds::API => "google_api_gateway_api",
        kinds::API_CONFIG => "google_api_gateway_api_config",
        kinds::GATEWAY => "google_api_gateway_gateway",
        _ => return None,
    })
}

/// The data source an existing resource reads, and its arguments (`None`: a Firestore
/// collection, which has none).
fn existing_data(r: &NativeResource) -> Option<(&'static str, Value)> {
    let full = r.properties["resource"].as_str().unwrap_or_default();
    let parts: Vec<&str> = full.split('/').collect();
    match (r.properties["kind"].as_str()?, parts.as_slice()) {
        ("topic", ["projects", p, "topics", t]) => {
            Some(("google_pubsub_topic", json!({ "project": p, "name": t })))
        }
        ("queue", ["projects", p, "subscriptions", s]) => Some((
            "google_pubsub_subscription",
            json!({ "project": p, "name": s }),
        )),
        ("bucket", ["projects", "_", "buckets", b]) => {
            Some(("google_storage_bucket", json!({ "name": b })))
        }
        _ => None,
    }
}

/// The settings the export takes its variables' defaults from: the manifest's
/// `providers.gcp` block, where `project` and `region` may be missing (the variables then have no
/// default and Terraform asks for them).
pub fn export_settings(graph: &AppGraph) -> Result<GcpSettings, GcpError> {
    let gcp = graph.settings.get("gcp");
    let get = |key: &str| {
        gcp.and_then(|g| g.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if !get("project").is_empty() && !get("region").is_empty() {
        return GcpSettings::from_graph(graph, "");
    }
    Ok(GcpSettings {
        project: get("project"),
        project_number: String::new(),
        region: get("region"),
        deploy_bucket: get("deploy_bucket"),
        firestore_database: "(default)".into(),
        firestore_location: get("region"),
    })
}

/// The configuration (JSON, pretty, ending with a newline) of `graph` built as `build`;
/// `settings` gives the defaults of the variables.
pub fn main_tf_json(
    graph: &AppGraph,
    build: &BuildManifest,
    settings: &GcpSettings,
) -> Result<String, GcpError> {
    let placeholders = GcpSettings {
        project: placeholder("project"),
        project_number: placeholder("number"),
        region: placeholder("region"),
        deploy_bucket: placeholder("bucket"),
        firestore_database: settings.firestore_database.clone(),
        firestore_location: if settings.firestore_location == settings.region {
            placeholder("region")
        } else {
            settings.firestore_location.clone()
        },
    };
    let resources = lower(graph, build, &placeholders)?;
    let doc = Converter::new(&resources).document(graph, build, settings, &placeholders);
    let mut text = serde_json::to_string_pretty(&doc).expect("a configuration serializes");
    text.push('\n');
    Ok(text)
}

struct Converter<'a> {
    by_id: BTreeMap<&'a str, &'a NativeResource>,
    label: BTreeMap<&'a str, String>,
    resources: &'a [NativeResource],
}

/// `place-order/uses/orders` → `place_order_uses_orders`.
fn tf_name(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s.insert(0, 'r');
    }
    s
}

impl<'a> Converter<'a> {
    fn new(resources: &'a [NativeResource]) -> Self {
        let by_id = resources.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut label: BTreeMap<&str, String> = resources
            .iter()
            .map(|r| {
                let name = r.id.split_once('/').map_or(r.id.as_str(), |x| x.1);
                (r.id.as_str(), tf_name(name))
            })
            .collect();
        let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
        for r in resources {
            *seen
                .entry((r.kind.clone(), label[r.id.as_str()].clone()))
                .or_default() += 1;
        }
        for r in resources {
            if seen[&(r.kind.clone(), label[r.id.as_str()].clone())] > 1 {
                let l = label.get_mut(r.id.as_str()).expect("labelled");
                l.push('_');
                l.push_str(&crate::names::short_hash(&r.id));
            }
        }
        Converter {
            by_id,
            label,
            resources,
        }
    }

    fn address(&self, id: &str) -> Option<String> {
        let r = self.by_id.get(id)?;
        if r.kind == kinds::EXISTING {
            let (t, _) = existing_data(r)?;
            return Some(format!("data.{t}.{}", self.label[id]));
        }
        Some(format!("{}.{}", tf_type(&r.kind)?, self.label[id]))
    }

    /// The expression a reference stands for.
    fn reference(&self, id: &str, output: &str) -> String {
        let r = self.by_id[id];
        let a = self.address(id).unwrap_or_default();
        match (r.kind.as_str(), output) {
            (kinds::EXISTING, o) => {
                let full = r.properties["resource"].as_str().unwrap_or_default();
                match (r.properties["kind"].as_str().unwrap_or_default(), o) {
                    ("queue", "name" | "topic") => format!("${{{a}.topic}}"),
                    ("bucket", _) => format!("${{{a}.name}}"),
                    ("table", "collection") => full.rsplit('/').next().unwrap_or_default().into(),
                    ("table", "database") => {
                        full.split("/documents/").next().unwrap_or_default().into()
                    }
                    ("table", _) => full.to_string(),
                    _ => format!("${{{a}.id}}"),
                }
            }
            (kinds::SERVICE_ACCOUNT, o) => format!("${{{a}.{o}}}"),
            (kinds::TOPIC | kinds::SUBSCRIPTION, _) => format!("${{{a}.id}}"),
            (kinds::BUCKET, _) => format!("${{{a}.name}}"),
            (kinds::COLLECTION, o) => r.properties[if o == "path" {
                "database"
            } else {
                "collection"
            }]
            .as_str()
            .map(|s| {
                if o == "path" {
                    format!(
                        "{s}/documents/{}",
                        r.properties["collection"].as_str().unwrap_or_default()
                    )
                } else {
                    s.to_string()
                }
            })
            .unwrap_or_default(),
            (kinds::FUNCTION, "uri") => format!("${{{a}.url}}"),
            (kinds::FUNCTION, "service") => format!("${{{a}.name}}"),
            (kinds::FUNCTION, "service_path") => format!(
                "projects/{}/locations/{}/services/${{{a}.name}}",
                placeholder("project"),
                placeholder("region")
            ),
            (kinds::FUNCTION, _) => format!("${{{a}.id}}"),
            (kinds::SECRET, "secret_id") => format!("${{{a}.secret_id}}"),
            (kinds::API, "managedService") => format!("${{{a}.managed_service}}"),
            (kinds::API, _) => format!("${{{a}.api_id}}"),
            (kinds::API_CONFIG, _) => format!("${{{a}.id}}"),
            (kinds::GATEWAY, "url") => format!("https://${{{a}.default_hostname}}"),
            (_, _) => format!("${{{a}.id}}"),
        }
    }

    /// `v` with references replaced by expressions (as template strings).
    fn value(&self, v: &Value) -> Value {
        if let Some((id, output)) = as_reference(v) {
            return Value::String(self.reference(id, output));
        }
        match v {
            Value::String(s) => Value::String(escape(s)),
            Value::Array(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn document(
        &self,
        graph: &AppGraph,
        build: &BuildManifest,
        settings: &GcpSettings,
        placeholders: &GcpSettings,
    ) -> Value {
        let mut resources: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        let mut packages = BTreeMap::new();
        for (function, artifact) in &build.functions {
            let key =
                placeholders.package_key(&graph.service, &graph.stage, function, &artifact.sha256);
            let label = format!("package_{}", tf_name(function));
            packages.insert(
                function.clone(),
                format!("google_storage_bucket_object.{label}"),
            );
            resources
                .entry("google_storage_bucket_object".into())
                .or_default()
                .insert(
                    label,
                    json!({
                        "name": key,
                        "bucket": "${var.deploy_bucket}",
                        "source": format!("${{path.module}}/{}", artifact.file),
                        "content_type": "application/zip",
                    }),
                );
        }
        for r in self.resources {
            let Some(t) = tf_type(&r.kind) else { continue };
            let mut body = self.body(r, &packages);
            let deps: BTreeSet<String> = r
                .depends_on
                .iter()
                .filter_map(|d| self.address(d))
                .collect();
            if !deps.is_empty() {
                body["depends_on"] = json!(deps);
            }
            resources
                .entry(t.to_string())
                .or_default()
                .insert(self.label[r.id.as_str()].clone(), body);
        }
        let mut data: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for r in self.resources.iter().filter(|r| r.kind == kinds::EXISTING) {
            if let Some((t, args)) = existing_data(r) {
                data.entry(t.to_string())
                    .or_default()
                    .insert(self.label[r.id.as_str()].clone(), args);
            }
        }
        let needs_number = self
            .resources
            .iter()
            .any(|r| r.properties.to_string().contains(&placeholder("number")));
        let variable = |description: &str, default: &str| {
            let mut v = json!({ "type": "string", "description": description });
            if !default.is_empty() {
                v["default"] = json!(default);
            }
            v
        };
        let mut doc = json!({
            "//": format!(
                "Nimbus app {} (stage {}), generated by `nimbus build -p gcp`; do not edit",
                graph.service, graph.stage
            ),
            "terraform": {
                "required_providers": {
                    "google": { "source": "hashicorp/google", "version": ">= 6.0" },
                    "google-beta": { "source": "hashicorp/google-beta", "version": ">= 6.0" },
                },
            },
            "provider": {
                "google": { "project": "${var.project}", "region": "${var.region}" },
                "google-beta": { "project": "${var.project}", "region": "${var.region}" },
            },
            "variable": {
                "project": variable("The project to deploy to", &settings.project),
                "region": variable("The region of functions, buckets, triggers, jobs and the gateway", &settings.region),
                "deploy_bucket": variable("An existing bucket for the function packages", &settings.deploy_bucket),
            },
        });
        if needs_number {
            data.entry("google_project".into())
                .or_default()
                .insert("this".into(), json!({ "project_id": "${var.project}" }));
        }
        if !data.is_empty() {
            doc["data"] = json!(data);
        }
        doc["resource"] = json!(resources);
        let mut outputs = Map::new();
        for r in self.resources {
            let name = r.id.split_once('/').map_or("", |x| x.1);
            match r.kind.as_str() {
                kinds::GATEWAY => {
                    outputs.insert(
                        "url".into(),
                        json!({ "description": "The URL of the HTTP API", "value": self.reference(&r.id, "url") }),
                    );
                }
                kinds::FUNCTION => {
                    outputs.insert(
                        format!("function_{}", tf_name(name)),
                        json!({ "description": format!("The URL of function {name}"), "value": self.reference(&r.id, "uri") }),
                    );
                }
                _ => {}
            }
        }
        if !outputs.is_empty() {
            doc["output"] = Value::Object(outputs);
        }
        substitute(&doc, &placeholders.deploy_bucket)
    }

    /// The Terraform arguments of one resource.
    fn body(&self, r: &NativeResource, packages: &BTreeMap<String, String>) -> Value {
        let p = self.value(&r.properties);
        let short = |v: &Value| -> Value {
            json!(
                v.as_str()
                    .and_then(|s| s.rsplit('/').next())
                    .unwrap_or_default()
            )
        };
        let segment = |v: &Value, i: usize| -> Value {
            json!(
                v.as_str()
                    .and_then(|s| s.split('/').nth(i))
                    .unwrap_or_default()
            )
        };
        let project = json!("${var.project}");
        match r.kind.as_str() {
            kinds::SERVICE_ACCOUNT => json!({
                "project": project,
                "account_id": p["accountId"],
                "display_name": p["displayName"],
                "description": p["description"],
            }),
            kinds::PROJECT_IAM_MEMBER => {
                // The deployment's project (`${var.project}`), or another one an extra grant names.
                let mut b =
                    json!({ "project": p["project"], "role": p["role"], "member": p["member"] });
                if let Some(c) = p.get("condition") {
                    b["condition"] = c.clone();
                }
                b
            }
            kinds::TOPIC => {
                json!({ "project": project, "name": short(&p["name"]), "labels": p["labels"] })
            }
            kinds::SUBSCRIPTION => {
                let mut b = json!({
                    "project": project,
                    "name": short(&p["name"]),
                    "topic": p["topic"],
                    "ack_deadline_seconds": p["ackDeadlineSeconds"],
                    "message_retention_duration": p["messageRetentionDuration"],
                    "expiration_policy": { "ttl": "" },
                    "labels": p["labels"],
                });
                if let Some(rp) = p.get("retryPolicy") {
                    b["retry_policy"] = json!({
                        "minimum_backoff": rp["minimumBackoff"],
                        "maximum_backoff": rp["maximumBackoff"],
                    });
                }
                if let Some(d) = p.get("deadLetterPolicy") {
                    b["dead_letter_policy"] = json!({
                        "dead_letter_topic": d["deadLetterTopic"],
                        "max_delivery_attempts": d["maxDeliveryAttempts"],
                    });
                }
                if let Some(endpoint) = p["pushConfig"].get("pushEndpoint") {
                    b["push_config"] = json!({
                        "push_endpoint": endpoint,
                        "oidc_token": {
                            "service_account_email": p["pushConfig"]["oidcToken"]["serviceAccountEmail"],
                            "audience": p["pushConfig"]["oidcToken"]["audience"],
                        },
                    });
                }
                b
            }
            kinds::TOPIC_IAM_MEMBER => {
                json!({ "project": project, "topic": p["topic"], "role": p["role"], "member": p["member"] })
            }
            kinds::SUBSCRIPTION_IAM_MEMBER => {
                json!({ "project": project, "subscription": p["subscription"], "role": p["role"], "member": p["member"] })
            }
            kinds::BUCKET => json!({
                "project": project,
                "name": p["name"],
                "location": p["location"],
                "storage_class": p["storageClass"],
                "uniform_bucket_level_access": true,
                "public_access_prevention": p["iamConfiguration"]["publicAccessPrevention"],
                "versioning": { "enabled": p["versioning"]["enabled"] },
                "labels": p["labels"],
                "force_destroy": false,
            }),
            kinds::BUCKET_IAM_MEMBER => {
                json!({ "bucket": p["bucket"], "role": p["role"], "member": p["member"] })
            }
            kinds::FUNCTION => {
                let s = &p["serviceConfig"];
                let function = r.id.split_once('/').map_or("", |x| x.1);
                let object = packages
                    .get(function)
                    .map(|a| json!(format!("${{{a}.name}}")))
                    .unwrap_or_else(|| {
                        p["buildConfig"]["source"]["storageSource"]["object"].clone()
                    });
                let mut b = json!({
                    "project": project,
                    "location": segment(&p["name"], 3),
                    "name": short(&p["name"]),
                    "description": p["description"],
                    "labels": p["labels"],
                    "build_config": {
                        "runtime": p["buildConfig"]["runtime"],
                        "entry_point": p["buildConfig"]["entryPoint"],
                        "source": { "storage_source": {
                            "bucket": p["buildConfig"]["source"]["storageSource"]["bucket"],
                            "object": object,
                        } },
                    },
                    "service_config": {
                        "available_memory": s["availableMemory"],
                        "timeout_seconds": s["timeoutSeconds"],
                        "max_instance_count": s["maxInstanceCount"],
                        "max_instance_request_concurrency": s["maxInstanceRequestConcurrency"],
                        "environment_variables": s["environmentVariables"],
                        "service_account_email": s["serviceAccountEmail"],
                        "ingress_settings": s["ingressSettings"],
                        "all_traffic_on_latest_revision": s["allTrafficOnLatestRevision"],
                    },
                });
                for (api, tf) in [
                    ("vpcConnector", "vpc_connector"),
                    (
                        "vpcConnectorEgressSettings",
                        "vpc_connector_egress_settings",
                    ),
                    ("minInstanceCount", "min_instance_count"),
                ] {
                    if let Some(v) = s.get(api) {
                        b["service_config"][tf] = v.clone();
                    }
                }
                if let Some(Value::Array(vars)) = s.get("secretEnvironmentVariables") {
                    b["service_config"]["secret_environment_variables"] = vars
                        .iter()
                        .map(|v| {
                            json!({
                                "key": v["key"],
                                "project_id": v["projectId"],
                                "secret": v["secret"],
                                "version": v["version"],
                            })
                        })
                        .collect();
                }
                b
            }
            kinds::SECRET => json!({
                "project": project,
                "secret_id": short(&p["name"]),
                "replication": { "auto": {} },
                "labels": p["labels"],
            }),
            kinds::SECRET_IAM_MEMBER => {
                json!({ "project": project, "secret_id": p["secret"], "role": p["role"], "member": p["member"] })
            }
            kinds::SERVICE_IAM_MEMBER => {
                // `service` is `projects/P/locations/R/services/${function.name}`.
                let service = p["service"].as_str().unwrap_or_default();
                json!({
                    "project": project,
                    "location": segment(&p["service"], 3),
                    "name": service.rsplit('/').next().unwrap_or_default(),
                    "role": p["role"],
                    "member": p["member"],
                })
            }
            kinds::EVENTARC_TRIGGER => {
                let mut b = json!({
                    "project": project,
                    "location": segment(&p["name"], 3),
                    "name": short(&p["name"]),
                    "matching_criteria": p["eventFilters"],
                    "destination": { "cloud_run_service": {
                        "service": p["destination"]["cloudRun"]["service"],
                        "region": p["destination"]["cloudRun"]["region"],
                    } },
                    "service_account": p["serviceAccount"],
                    "labels": p["labels"],
                });
                if let Some(t) = p.get("transport") {
                    b["transport"] = json!({ "pubsub": { "topic": t["pubsub"]["topic"] } });
                }
                if let Some(ct) = p.get("eventDataContentType") {
                    b["event_data_content_type"] = ct.clone();
                }
                b
            }
            kinds::SCHEDULER_JOB => json!({
                "project": project,
                "region": segment(&p["name"], 3),
                "name": short(&p["name"]),
                "description": p["description"],
                "schedule": p["schedule"],
                "time_zone": p["timeZone"],
                "attempt_deadline": p["attemptDeadline"],
                "http_target": {
                    "uri": p["httpTarget"]["uri"],
                    "http_method": p["httpTarget"]["httpMethod"],
                    "oidc_token": {
                        "service_account_email": p["httpTarget"]["oidcToken"]["serviceAccountEmail"],
                        "audience": p["httpTarget"]["oidcToken"]["audience"],
                    },
                },
            }),
            kinds::API => json!({
                "provider": "google-beta",
                "project": project,
                "api_id": short(&p["name"]),
                "display_name": p["displayName"],
                "labels": p["labels"],
            }),
            kinds::API_CONFIG => {
                let api = self.reference(&format!("{}/http", kinds::API), "name");
                let docs: Vec<Value> = r.properties["openapiDocuments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| {
                        json!({ "document": {
                            "path": d["document"]["path"],
                            "contents": format!("${{base64encode(jsonencode({}))}}", self.hcl(&d["document"]["contents"])),
                        } })
                    })
                    .collect();
                json!({
                    "provider": "google-beta",
                    "project": project,
                    "api": api,
                    "api_config_id": short(&p["name"]),
                    "display_name": p["displayName"],
                    "openapi_documents": docs,
                    "gateway_config": { "backend_config": { "google_service_account": p["gatewayServiceAccount"] } },
                    "labels": p["labels"],
                    "lifecycle": { "create_before_destroy": true },
                })
            }
            kinds::GATEWAY => json!({
                "provider": "google-beta",
                "project": project,
                "region": segment(&p["name"], 3),
                "gateway_id": short(&p["name"]),
                "api_config": p["apiConfig"],
                "display_name": p["displayName"],
                "labels": p["labels"],
            }),
            _ => p,
        }
    }

    /// `v` as an HCL expression (JSON is HCL object syntax), references as bare expressions.
    fn hcl(&self, v: &Value) -> String {
        if let Some((id, output)) = as_reference(v) {
            let e = self.reference(id, output);
            return match e.strip_prefix("${").and_then(|e| e.strip_suffix('}')) {
                Some(bare) if !bare.contains("${") => bare.to_string(),
                _ => serde_json::to_string(&e).expect("json"),
            };
        }
        match v {
            Value::String(s) => serde_json::to_string(&escape(s)).expect("json"),
            Value::Array(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| self.hcl(i))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Object(map) => format!(
                "{{{}}}",
                map.iter()
                    .map(|(k, v)| format!(
                        "{} = {}",
                        serde_json::to_string(k).expect("json"),
                        self.hcl(v)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => other.to_string(),
        }
    }
}

/// Escapes Terraform template sequences in a literal.
fn escape(s: &str) -> String {
    s.replace("${", "$${").replace("%{", "%%{")
}

/// Replaces the placeholders in every string of `v`.
fn substitute(v: &Value, bucket: &str) -> Value {
    match v {
        Value::String(s) => Value::String(
            s.replace(bucket, "${var.deploy_bucket}")
                .replace(&placeholder("project"), "${var.project}")
                .replace(&placeholder("region"), "${var.region}")
                .replace(&placeholder("number"), "${data.google_project.this.number}"),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|i| substitute(i, bucket)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, bucket)))
                .collect(),
        ),
        other => other.clone(),
    }
}
