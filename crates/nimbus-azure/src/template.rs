//! The ARM template: the whole app as one deterministic Azure Resource Manager template, which
//! `nimbus build -p azure` writes (`azuredeploy.json`) and `nimbus deploy -p azure` hands to ARM.
//!
//! Parameters: `location` (default: the resource group's), `suffix` (the 8 hex digits that make
//! global names unique, [`crate::names::suffix`]; its default is computed when the manifest
//! names the subscription, otherwise it must be passed) and `packages` (an object: function →
//! package blob name; defaults to this build's packages). Names are variables: the readable
//! part is fixed when the template is made, global names end with the suffix.
//!
//! What it holds:
//! - three storage accounts (Standard LRS, StorageV2, TLS 1.2 minimum, HTTPS only, no public
//!   blob access, no anonymous containers, soft delete for blobs and containers): *deployment*
//!   (`nimbus-state` for locks and state, and one package container `app-<function>` per app),
//!   *host* (`AzureWebJobsStorage` of every app) and, when the manifest has buckets or queues,
//!   *data* with a blob container per bucket and a queue and its `-poison` queue per queue;
//! - when the manifest has tables, a Cosmos DB for NoSQL account (serverless) with a container
//!   per table and the Cosmos DB triggers' lease container ([`cosmos`]);
//! - a Service Bus namespace (Standard, TLS 1.2, local auth off) with a topic per topic and a
//!   subscription per subscribing function, when the manifest has topics;
//! - when the manifest declares secrets, a Key Vault (RBAC authorization) without any secret in
//!   it: values are set by `nimbus secret set -p azure`; functions read them through Key Vault
//!   references resolved with their own identity, granted per secret ([`keyvault`]);
//! - a Log Analytics workspace and a workspace-based Application Insights component (local auth
//!   off: apps send telemetry with their identity);
//! - per function ([`crate::apps`]): a user-assigned identity, a Flex Consumption plan (FC1), the
//!   Function App (Linux, HTTPS only, TLS 1.2, FTPS off, identity-based connections), its code
//!   (`Microsoft.Web/sites/extensions` `onedeploy` from its package blob), the role assignments
//!   of [`crate::roles`] (Cosmos DB SQL role assignments for tables), and for each bucket trigger an Event Grid subscription on the data
//!   account's system topic that calls the blob trigger's webhook;
//! - with `http.domain`, the host name binding and the Key Vault certificate on the one app
//!   that serves the routes ([`domain`]);
//! - outputs: each app's name and host name, and the Application Insights app id.
//!
//! The same graph, build and settings always give the same bytes.

use std::collections::BTreeMap;

use nimbus_graph::{AppGraph, Link, ResourceSpec};
use nimbus_manifest::ResourceKind;
use nimbus_package::BuildManifest;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::apps::{self, App, AzureSettings, Trigger};
use crate::entry;
use crate::env;
use crate::error::AzureError;
use crate::names;
use crate::roles::{self, Role};

/// API versions, one per resource type.
pub mod api {
    /// `Microsoft.Storage/*`.
    pub const STORAGE: &str = "2023-05-01";
    /// `Microsoft.Web/*`.
    pub const WEB: &str = "2024-04-01";
    /// `Microsoft.ManagedIdentity/userAssignedIdentities`.
    pub const IDENTITY: &str = "2023-01-31";
    /// `Microsoft.Authorization/roleAssignments`.
    pub const ROLES: &str = "2022-04-01";
    /// `Microsoft.ServiceBus/*`. 2021-11-01 has no `minimumTlsVersion` or
    /// `publicNetworkAccess` on a namespace (ARM would drop them): a later version has both.
    pub const SERVICE_BUS: &str = "2026-01-01";
    /// `Microsoft.OperationalInsights/workspaces`.
    pub const WORKSPACE: &str = "2023-09-01";
    /// `Microsoft.Insights/components`.
    pub const INSIGHTS: &str = "2020-02-02";
    /// `Microsoft.EventGrid/*`.
    pub const EVENT_GRID: &str = "2022-06-15";
    /// `Microsoft.DocumentDB/*`.
    pub const COSMOS: &str = "2024-11-15";
    /// `Microsoft.KeyVault/vaults`.
    pub const KEY_VAULT: &str = "2024-11-01";
}

mod cosmos;
mod domain;
mod keyvault;

pub use domain::domain_app;

pub use keyvault::{SOFT_DELETE_DAYS, vault_properties};
mod extra;

pub use extra::{GrantKind, OutsideGrant, arm_guid, outside_assignments, outside_grants};

/// Days Log Analytics keeps the apps' logs.
pub const LOG_RETENTION_DAYS: u32 = 30;

/// The template's JSON Schema.
pub const SCHEMA: &str =
    "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#";

/// The package blob (in the app's container) of `function`: content-addressed by everything
/// that goes into the app package — the function's zip and the generated files.
pub fn package_id(
    graph: &AppGraph,
    build: &BuildManifest,
    app: &App,
) -> Result<String, AzureError> {
    let artifact =
        build
            .functions
            .get(&app.function)
            .ok_or_else(|| AzureError::MissingArtifact {
                function: app.function.clone(),
            })?;
    let mut h = Sha256::new();
    h.update(crate::package::FORMAT);
    h.update(artifact.sha256.as_bytes());
    for f in entry::files(graph, app) {
        h.update(format!("\n{} {}", f.path, hex(&Sha256::digest(&f.bytes))));
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The ARM template of `graph` built as `build` (pretty JSON ending with a newline).
pub fn template(
    graph: &AppGraph,
    build: &BuildManifest,
    settings: &AzureSettings,
) -> Result<String, AzureError> {
    if build.provider != "azure" {
        return Err(AzureError::WrongProvider {
            what: "build",
            provider: build.provider.clone(),
        });
    }
    let apps = apps::apps(graph)?;
    let mut t = Template::new(graph);
    let doc = t.document(build, settings, &apps)?;
    let mut text = serde_json::to_string_pretty(&doc).expect("a template serializes");
    text.push('\n');
    Ok(text)
}

/// An ARM expression: `[...]`.
fn expr(inner: impl AsRef<str>) -> Value {
    Value::String(format!("[{}]", inner.as_ref()))
}

/// A quoted ARM string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn var(name: &str) -> String {
    format!("variables({})", lit(name))
}

/// `resourceId('type', name parts…)` with each part an expression.
fn rid(kind: &str, parts: &[String]) -> String {
    let mut s = format!("resourceId({}", lit(kind));
    for p in parts {
        s.push_str(", ");
        s.push_str(p);
    }
    s.push(')');
    s
}

/// Builds the document.
struct Template<'a> {
    graph: &'a AppGraph,
    variables: Map<String, Value>,
    resources: Vec<Value>,
    outputs: Map<String, Value>,
    tags: Value,
}

/// Variable names.
const DEPLOYMENT_ACCOUNT: &str = "deploymentAccount";
const HOST_ACCOUNT: &str = "hostAccount";
const DATA_ACCOUNT: &str = "dataAccount";
const SERVICE_BUS: &str = "serviceBusNamespace";
const MONITORING: &str = "monitoring";
const SYSTEM_TOPIC: &str = "dataSystemTopic";

impl<'a> Template<'a> {
    fn new(graph: &'a AppGraph) -> Self {
        Template {
            graph,
            variables: Map::new(),
            resources: Vec::new(),
            outputs: Map::new(),
            tags: json!({ "nimbus-service": graph.service, "nimbus-stage": graph.stage }),
        }
    }

    fn service(&self) -> &str {
        &self.graph.service
    }

    fn stage(&self) -> &str {
        &self.graph.stage
    }

    /// Whether resource `name` already exists (`existing.azure`).
    fn is_existing(&self, name: &str) -> bool {
        self.graph
            .resources
            .get(name)
            .is_some_and(|r| r.existing.is_some())
    }

    /// The endpoint of the existing resource `name` (its account's or namespace's).
    fn existing_endpoint(&self, name: &str) -> String {
        self.graph
            .resources
            .get(name)
            .and_then(|r| env::existing(r.kind, r.existing.as_deref()?))
            .map(|(_, endpoint)| endpoint)
            .unwrap_or_default()
    }

    /// Whether the template creates a resource of `kind` (one that already exists is not).
    fn has(&self, kind: ResourceKind) -> bool {
        self.graph
            .resources
            .values()
            .any(|r| r.kind == kind && r.existing.is_none())
    }

    fn has_data(&self) -> bool {
        self.has(ResourceKind::Bucket) || self.has(ResourceKind::Queue)
    }

    fn global(&mut self, variable: &str, prefix: String, dash: bool) {
        let sep = if dash { "-" } else { "" };
        self.variables.insert(
            variable.into(),
            expr(format!(
                "concat({}, parameters('suffix'))",
                lit(&format!("{prefix}{sep}"))
            )),
        );
    }

    fn account_id(account: &str) -> String {
        rid("Microsoft.Storage/storageAccounts", &[var(account)])
    }

    fn document(
        &mut self,
        build: &BuildManifest,
        settings: &AzureSettings,
        apps: &[App],
    ) -> Result<Value, AzureError> {
        let (service, stage) = (self.service().to_string(), self.stage().to_string());
        self.global(
            DEPLOYMENT_ACCOUNT,
            names::deployment_account_prefix(&service, &stage),
            false,
        );
        self.global(
            HOST_ACCOUNT,
            names::host_account_prefix(&service, &stage),
            false,
        );
        if self.has_data() {
            self.global(
                DATA_ACCOUNT,
                names::data_account_prefix(&service, &stage),
                false,
            );
        }
        if self.has(ResourceKind::Topic) {
            self.global(
                SERVICE_BUS,
                names::service_bus_prefix(&service, &stage),
                true,
            );
        }
        self.variables.insert(
            MONITORING.into(),
            json!(names::monitoring(&service, &stage)),
        );
        let bucket_triggers = apps.iter().any(|a| {
            a.bindings
                .iter()
                .any(|b| matches!(b.trigger, Trigger::Blob { .. }))
        });
        if bucket_triggers {
            self.variables.insert(
                SYSTEM_TOPIC.into(),
                json!(names::system_topic(&service, &stage)),
            );
        }
        for a in apps {
            self.global(
                &format!("app-{}", a.function),
                names::app_prefix(&service, &stage, &a.function),
                true,
            );
        }

        // Storage.
        self.storage_account(DEPLOYMENT_ACCOUNT, false);
        self.container(DEPLOYMENT_ACCOUNT, names::STATE_CONTAINER);
        for a in apps {
            self.container(DEPLOYMENT_ACCOUNT, &names::app_container(&a.function));
        }
        self.storage_account(HOST_ACCOUNT, false);
        if self.has_data() {
            let versioning = self
                .graph
                .resources
                .values()
                .any(|r| matches!(r.spec, ResourceSpec::Bucket { versioning: true }));
            self.storage_account(DATA_ACCOUNT, versioning);
            self.data_resources();
        }
        // A trigger on an existing container keeps its leases in an account of the deployment.
        let leases = apps.iter().any(|a| {
            a.bindings
                .iter()
                .any(|b| matches!(b.trigger, Trigger::Table { .. }))
        });
        if self.has(ResourceKind::Table) || leases {
            self.cosmos(leases);
        }
        if self.has(ResourceKind::Topic) {
            self.service_bus(apps);
        }
        if !self.graph.secrets.is_empty() {
            self.key_vault();
        }
        self.monitoring();
        if bucket_triggers {
            self.resources.push(json!({
                "type": "Microsoft.EventGrid/systemTopics",
                "apiVersion": api::EVENT_GRID,
                "name": expr(var(SYSTEM_TOPIC)),
                "location": expr("parameters('location')"),
                "tags": self.tags,
                "dependsOn": [expr(Self::account_id(DATA_ACCOUNT))],
                "properties": {
                    "source": expr(Self::account_id(DATA_ACCOUNT)),
                    "topicType": "Microsoft.Storage.StorageAccounts",
                },
            }));
        }
        let mut packages = Map::new();
        for a in apps {
            packages.insert(
                a.function.clone(),
                json!(names::package_blob(&package_id(self.graph, build, a)?)),
            );
            self.app(a);
        }
        if let (Some(d), Some(a)) = (&self.graph.domain, domain_app(apps)) {
            let plan = names::plan(&service, &stage, &a.function);
            let plan_id = rid("Microsoft.Web/serverfarms", &[lit(&plan)]);
            let (resources, outputs) = domain::resources(d, a, &plan_id, &self.tags);
            self.resources.extend(resources);
            self.outputs.extend(outputs);
        }

        let mut suffix = json!({
            "type": "string",
            "minLength": names::SUFFIX_LEN,
            "maxLength": names::SUFFIX_LEN,
            "metadata": { "description": "8 hex digits that make global names (storage accounts, function apps, the Service Bus namespace) unique: the first 8 hex digits of the SHA-256 of `<subscription id>/<resource group>/<service>/<stage>`, lower-cased" },
        });
        if let Some(sub) = &settings.subscription {
            suffix["defaultValue"] = json!(names::suffix(
                sub,
                &settings.resource_group,
                &service,
                &stage
            ));
        }
        let mut location = json!({
            "type": "string",
            "defaultValue": "[resourceGroup().location]",
            "metadata": { "description": "The Azure region" },
        });
        if let Some(l) = &settings.location {
            location["defaultValue"] = json!(l);
        }
        let mut doc = json!({
            "$schema": SCHEMA,
            "contentVersion": "1.0.0.0",
            "metadata": {
                "description": format!(
                    "Nimbus app {service} (stage {stage}), generated by `nimbus build -p azure`; do not edit"
                ),
            },
            "parameters": {
                "location": location,
                "suffix": suffix,
                "packages": {
                    "type": "object",
                    "defaultValue": packages,
                    "metadata": { "description": "Function → its package blob in its container `app-<function>` of the deployment storage account (uploaded before the deployment)" },
                },
            },
        });
        doc["variables"] = Value::Object(std::mem::take(&mut self.variables));
        doc["resources"] = Value::Array(std::mem::take(&mut self.resources));
        doc["outputs"] = Value::Object(std::mem::take(&mut self.outputs));
        Ok(doc)
    }

    fn storage_account(&mut self, account: &str, versioning: bool) {
        let name = expr(var(account));
        self.resources.push(json!({
            "type": "Microsoft.Storage/storageAccounts",
            "apiVersion": api::STORAGE,
            "name": name,
            "location": expr("parameters('location')"),
            "tags": self.tags,
            "sku": { "name": "Standard_LRS" },
            "kind": "StorageV2",
            "properties": {
                "minimumTlsVersion": "TLS1_2",
                "supportsHttpsTrafficOnly": true,
                "allowBlobPublicAccess": false,
                "allowSharedKeyAccess": account == DEPLOYMENT_ACCOUNT,
                "defaultToOAuthAuthentication": true,
                "accessTier": "Hot",
                "networkAcls": { "bypass": "AzureServices", "defaultAction": "Allow" },
                "encryption": {
                    "keySource": "Microsoft.Storage",
                    "services": {
                        "blob": { "enabled": true },
                        "file": { "enabled": true },
                        "queue": { "enabled": true, "keyType": "Account" },
                        "table": { "enabled": true, "keyType": "Account" },
                    },
                },
            },
        }));
        self.resources.push(json!({
            "type": "Microsoft.Storage/storageAccounts/blobServices",
            "apiVersion": api::STORAGE,
            "name": expr(format!("concat({}, '/default')", var(account))),
            "dependsOn": [expr(Self::account_id(account))],
            "properties": {
                "isVersioningEnabled": versioning,
                "deleteRetentionPolicy": { "enabled": true, "days": 7 },
                "containerDeleteRetentionPolicy": { "enabled": true, "days": 7 },
            },
        }));
    }

    fn child(account: &str, name: &str) -> Value {
        expr(format!("concat({}, '/default/{}')", var(account), name))
    }

    fn child_id(account: &str, kind: &str, service: &str, name: &str) -> String {
        rid(kind, &[var(account), lit(service), lit(name)])
    }

    fn container_id(account: &str, name: &str) -> String {
        Self::child_id(
            account,
            "Microsoft.Storage/storageAccounts/blobServices/containers",
            "default",
            name,
        )
    }

    fn queue_id(name: &str) -> String {
        Self::child_id(
            DATA_ACCOUNT,
            "Microsoft.Storage/storageAccounts/queueServices/queues",
            "default",
            name,
        )
    }

    fn container(&mut self, account: &str, name: &str) {
        self.resources.push(json!({
            "type": "Microsoft.Storage/storageAccounts/blobServices/containers",
            "apiVersion": api::STORAGE,
            "name": Self::child(account, name),
            "dependsOn": [expr(rid(
                "Microsoft.Storage/storageAccounts/blobServices",
                &[var(account), lit("default")],
            ))],
            "properties": { "publicAccess": "None" },
        }));
    }

    fn data_resources(&mut self) {
        let account = expr(Self::account_id(DATA_ACCOUNT));
        let resources: Vec<_> = self.graph.resources.values().cloned().collect();
        for r in resources.iter().filter(|r| r.existing.is_none()) {
            match r.kind {
                ResourceKind::Bucket => self.container(DATA_ACCOUNT, &names::container(&r.name)),
                ResourceKind::Queue => {
                    for q in [names::queue(&r.name), names::poison_queue(&r.name)] {
                        self.resources.push(json!({
                            "type": "Microsoft.Storage/storageAccounts/queueServices/queues",
                            "apiVersion": api::STORAGE,
                            "name": Self::child(DATA_ACCOUNT, &q),
                            "dependsOn": [account],
                            "properties": { "metadata": { "nimbus-resource": r.name } },
                        }));
                    }
                }
                ResourceKind::Table | ResourceKind::Topic => {}
            }
        }
    }

    fn namespace_id() -> String {
        rid("Microsoft.ServiceBus/namespaces", &[var(SERVICE_BUS)])
    }

    fn topic_id(topic: &str) -> String {
        rid(
            "Microsoft.ServiceBus/namespaces/topics",
            &[var(SERVICE_BUS), lit(&names::topic(topic))],
        )
    }

    fn subscription_id(topic: &str, function: &str) -> String {
        rid(
            "Microsoft.ServiceBus/namespaces/topics/subscriptions",
            &[
                var(SERVICE_BUS),
                lit(&names::topic(topic)),
                lit(&names::subscription(function)),
            ],
        )
    }

    fn service_bus(&mut self, apps: &[App]) {
        self.resources.push(json!({
            "type": "Microsoft.ServiceBus/namespaces",
            "apiVersion": api::SERVICE_BUS,
            "name": expr(var(SERVICE_BUS)),
            "location": expr("parameters('location')"),
            "tags": self.tags,
            "sku": { "name": "Standard", "tier": "Standard" },
            "properties": { "minimumTlsVersion": "1.2", "disableLocalAuth": true, "publicNetworkAccess": "Enabled" },
        }));
        let topics: Vec<String> = self
            .graph
            .resources
            .values()
            .filter(|r| r.kind == ResourceKind::Topic && r.existing.is_none())
            .map(|r| r.name.clone())
            .collect();
        for topic in &topics {
            self.resources.push(json!({
                "type": "Microsoft.ServiceBus/namespaces/topics",
                "apiVersion": api::SERVICE_BUS,
                "name": expr(format!("concat({}, '/{}')", var(SERVICE_BUS), names::topic(topic))),
                "dependsOn": [expr(Self::namespace_id())],
                "properties": { "defaultMessageTimeToLive": "P14D", "enableBatchedOperations": true },
            }));
        }
        for a in apps {
            for b in &a.bindings {
                let Trigger::Topic {
                    resource,
                    topic,
                    subscription,
                    ..
                } = &b.trigger
                else {
                    continue;
                };
                // On an existing topic: a nested deployment at its namespace (`extra`).
                if self.is_existing(resource) {
                    continue;
                }
                self.resources.push(json!({
                    "type": "Microsoft.ServiceBus/namespaces/topics/subscriptions",
                    "apiVersion": api::SERVICE_BUS,
                    "name": expr(format!("concat({}, '/{topic}/{subscription}')", var(SERVICE_BUS))),
                    "dependsOn": [expr(Self::topic_id(resource))],
                    "properties": {
                        "maxDeliveryCount": 10,
                        "lockDuration": "PT5M",
                        "deadLetteringOnMessageExpiration": true,
                    },
                }));
            }
        }
    }

    fn workspace_id() -> String {
        rid(
            "Microsoft.OperationalInsights/workspaces",
            &[var(MONITORING)],
        )
    }

    fn component_id() -> String {
        rid("Microsoft.Insights/components", &[var(MONITORING)])
    }

    fn monitoring(&mut self) {
        self.resources.push(json!({
            "type": "Microsoft.OperationalInsights/workspaces",
            "apiVersion": api::WORKSPACE,
            "name": expr(var(MONITORING)),
            "location": expr("parameters('location')"),
            "tags": self.tags,
            "properties": { "sku": { "name": "PerGB2018" }, "retentionInDays": LOG_RETENTION_DAYS },
        }));
        self.resources.push(json!({
            "type": "Microsoft.Insights/components",
            "apiVersion": api::INSIGHTS,
            "name": expr(var(MONITORING)),
            "location": expr("parameters('location')"),
            "tags": self.tags,
            "kind": "web",
            "dependsOn": [expr(Self::workspace_id())],
            "properties": {
                "Application_Type": "web",
                "WorkspaceResourceId": expr(Self::workspace_id()),
                "DisableLocalAuth": true,
            },
        }));
        self.outputs.insert(
            "appInsightsAppId".into(),
            json!({ "type": "string", "value": expr(format!("reference({}, '{}').AppId", Self::component_id(), api::INSIGHTS)) }),
        );
    }

    /// One function's app: identity, plan, site, code, roles, event subscriptions.
    fn app(&mut self, a: &App) {
        let (service, stage) = (self.service().to_string(), self.stage().to_string());
        let f = a.function.as_str();
        let site_var = format!("app-{f}");
        let identity = names::identity(&service, &stage, f);
        let identity_id = rid(
            "Microsoft.ManagedIdentity/userAssignedIdentities",
            &[lit(&identity)],
        );
        let plan = names::plan(&service, &stage, f);
        let plan_id = rid("Microsoft.Web/serverfarms", &[lit(&plan)]);
        let site_id = rid("Microsoft.Web/sites", &[var(&site_var)]);
        let identity_ref =
            |field: &str| format!("reference({identity_id}, '{}').{field}", api::IDENTITY);
        let client_id = expr(identity_ref("clientId"));

        self.resources.push(json!({
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "apiVersion": api::IDENTITY,
            "name": identity,
            "location": expr("parameters('location')"),
            "tags": self.tags,
        }));
        self.resources.push(json!({
            "type": "Microsoft.Web/serverfarms",
            "apiVersion": api::WEB,
            "name": plan,
            "location": expr("parameters('location')"),
            "tags": self.tags,
            "kind": "functionapp",
            "sku": { "name": "FC1", "tier": "FlexConsumption" },
            "properties": { "reserved": true },
        }));

        // Roles: what the host, the code and the triggers need.
        let mut grants: Vec<(Role, String, String)> = Vec::new(); // (role, scope id, what)
        let host = Self::account_id(HOST_ACCOUNT);
        for role in [
            roles::BLOB_OWNER,
            roles::QUEUE_CONTRIBUTOR,
            roles::TABLE_CONTRIBUTOR,
        ] {
            grants.push((role, host.clone(), "host storage".into()));
        }
        let package_container = names::app_container(f);
        grants.push((
            roles::BLOB_CONTRIBUTOR,
            Self::container_id(DEPLOYMENT_ACCOUNT, &package_container),
            "package".into(),
        ));
        grants.push((
            roles::METRICS_PUBLISHER,
            Self::component_id(),
            "logs".into(),
        ));
        let fid = format!("function:{f}");
        let mut cosmos_grants: Vec<(Role, String)> = Vec::new(); // (role, container)
        for e in self.graph.edges.iter().filter(|e| e.from == fid) {
            let Link::Uses { access } = &e.link else {
                continue;
            };
            let name = e.to.trim_start_matches("resource:");
            let Some(r) = self.graph.resources.get(name) else {
                continue;
            };
            // Granted on the existing resource by a nested deployment (`extra`).
            if r.existing.is_some() {
                continue;
            }
            if r.kind == ResourceKind::Table {
                cosmos_grants.push((roles::for_access(r.kind, *access), names::table(name)));
                continue;
            }
            grants.push((
                roles::for_access(r.kind, *access),
                self.resource_scope(r.kind, name),
                format!("uses {name}"),
            ));
        }
        for b in &a.bindings {
            match &b.trigger {
                Trigger::Queue { resource, .. } => {
                    grants.push((
                        roles::QUEUE_READER,
                        Self::queue_id(&names::queue(resource)),
                        format!("trigger {resource}"),
                    ));
                    grants.push((
                        roles::QUEUE_PROCESSOR,
                        Self::queue_id(&names::queue(resource)),
                        format!("trigger {resource}"),
                    ));
                    grants.push((
                        roles::QUEUE_SENDER,
                        Self::queue_id(&names::poison_queue(resource)),
                        format!("dead letters of {resource}"),
                    ));
                }
                // On an existing topic or container: a nested deployment (`extra`).
                Trigger::Topic { resource, .. } if self.is_existing(resource) => {}
                Trigger::Topic { resource, .. } => grants.push((
                    roles::SERVICE_BUS_RECEIVER,
                    Self::subscription_id(resource, f),
                    format!("trigger {resource}"),
                )),
                Trigger::Blob { resource, .. } => grants.push((
                    roles::BLOB_READER,
                    Self::container_id(DATA_ACCOUNT, &names::container(resource)),
                    format!("trigger {resource}"),
                )),
                Trigger::Table {
                    container,
                    resource,
                    ..
                } => {
                    if !self.is_existing(resource) {
                        cosmos_grants.push((roles::COSMOS_READER, container.clone()));
                    }
                    cosmos_grants.push((
                        roles::COSMOS_CONTRIBUTOR,
                        names::LEASES_CONTAINER.to_string(),
                    ));
                }
                Trigger::Http { .. } | Trigger::Timer { .. } => {}
            }
        }
        grants.sort();
        grants.dedup_by(|x, y| x.0 == y.0 && x.1 == y.1);
        cosmos_grants.sort();
        cosmos_grants.dedup();
        // A container both read (trigger) and written (uses): the contributor role covers both.
        let written: Vec<String> = cosmos_grants
            .iter()
            .filter(|(r, _)| *r == roles::COSMOS_CONTRIBUTOR)
            .map(|(_, c)| c.clone())
            .collect();
        cosmos_grants.retain(|(r, c)| *r == roles::COSMOS_CONTRIBUTOR || !written.contains(c));
        let mut role_ids = Vec::new();
        for (role, scope, what) in &grants {
            let name = format!("guid({scope}, {identity_id}, {})", lit(role.id));
            let role_def = format!(
                "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', {})",
                lit(role.id)
            );
            self.resources.push(json!({
                "type": "Microsoft.Authorization/roleAssignments",
                "apiVersion": api::ROLES,
                "name": expr(&name),
                "scope": expr(scope_of(scope)),
                "dependsOn": [expr(scope), expr(&identity_id)],
                "properties": {
                    "roleDefinitionId": expr(role_def),
                    "principalId": expr(identity_ref("principalId")),
                    "principalType": "ServicePrincipal",
                    "description": format!("nimbus: {f} ({what}): {}", role.name),
                },
            }));
            role_ids.push(expr(format!(
                "extensionResourceId({scope}, 'Microsoft.Authorization/roleAssignments', {name})"
            )));
        }

        role_ids.extend(self.cosmos_grants(&identity_id, &cosmos_grants));
        let graph = self.graph;
        let node = graph.functions.get(f);
        let reads_secrets = node.is_some_and(|n| !n.secrets.is_empty());
        if let Some(node) = node {
            role_ids.extend(self.secret_grants(node, &identity_id));
            for deployment in extra::grants(graph, node, &identity_id) {
                let name = deployment["name"].as_str().unwrap_or_default().to_string();
                let id = match (
                    deployment.get("subscriptionId"),
                    deployment.get("resourceGroup"),
                ) {
                    (Some(s), Some(g)) => format!(
                        "resourceId({}, {}, 'Microsoft.Resources/deployments', {})",
                        lit(s.as_str().unwrap_or_default()),
                        lit(g.as_str().unwrap_or_default()),
                        lit(&name)
                    ),
                    (Some(s), None) => format!(
                        "subscriptionResourceId({}, 'Microsoft.Resources/deployments', {})",
                        lit(s.as_str().unwrap_or_default()),
                        lit(&name)
                    ),
                    _ => rid("Microsoft.Resources/deployments", &[lit(&name)]),
                };
                role_ids.push(expr(id));
                self.resources.push(deployment);
            }
        }

        // App settings.
        let mut settings: BTreeMap<String, Value> = BTreeMap::new();
        let mut set = |k: &str, v: Value| {
            settings.insert(k.to_string(), v);
        };
        set("AzureWebJobsStorage__accountName", expr(var(HOST_ACCOUNT)));
        set("AzureWebJobsStorage__credential", json!("managedidentity"));
        set("AzureWebJobsStorage__clientId", client_id.clone());
        set("AZURE_CLIENT_ID", client_id.clone());
        set(
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            expr(format!(
                "reference({}, '{}').ConnectionString",
                Self::component_id(),
                api::INSIGHTS
            )),
        );
        set(
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
            expr(format!(
                "concat('ClientId=', {}, ';Authorization=AAD')",
                identity_ref("clientId")
            )),
        );
        let used: Vec<(&str, ResourceKind)> = self
            .graph
            .edges
            .iter()
            .filter(|e| e.from == fid)
            .filter_map(|e| {
                let n = e.to.trim_start_matches("resource:");
                self.graph
                    .resources
                    .get(n)
                    .filter(|r| r.existing.is_none())
                    .map(|r| (r.name.as_str(), r.kind))
            })
            .collect();
        // Resources that already exist: their own name and account (or namespace) endpoint.
        for e in self.graph.edges.iter().filter(|e| e.from == fid) {
            let n = e.to.trim_start_matches("resource:");
            let Some((r, id)) = self
                .graph
                .resources
                .get(n)
                .and_then(|r| Some((r, r.existing.as_deref()?)))
            else {
                continue;
            };
            if let Some((name, endpoint)) = env::existing(r.kind, id) {
                set(&env::resource_var(n), json!(name));
                set(&env::resource_endpoint_var(n), json!(endpoint.clone()));
                if let Some(db) =
                    env::existing_parts(r.kind, id).and_then(|p| p.get("database").cloned())
                {
                    set(&env::resource_database_var(n), json!(db));
                }
            }
        }
        // Triggers on existing resources connect to the owner's namespace or account.
        let mut leases = false;
        for b in &a.bindings {
            let (connection, key, value) = match &b.trigger {
                Trigger::Topic {
                    resource,
                    connection,
                    ..
                } if self.is_existing(resource) => (
                    connection,
                    "fullyQualifiedNamespace",
                    self.existing_endpoint(resource),
                ),
                Trigger::Table {
                    resource,
                    connection,
                    lease,
                    ..
                } if self.is_existing(resource) => {
                    leases |= lease.is_some();
                    (
                        connection,
                        "accountEndpoint",
                        self.existing_endpoint(resource),
                    )
                }
                _ => continue,
            };
            set(&format!("{connection}__{key}"), json!(value));
            set(
                &format!("{connection}__credential"),
                json!("managedidentity"),
            );
            set(&format!("{connection}__clientId"), client_id.clone());
        }
        let data_endpoint = |service: &str| {
            expr(format!(
                "reference({}, '{}').primaryEndpoints.{service}",
                Self::account_id(DATA_ACCOUNT),
                api::STORAGE
            ))
        };
        let storage = |k: &ResourceKind| matches!(k, ResourceKind::Bucket | ResourceKind::Queue);
        if used.iter().any(|(_, k)| storage(k)) {
            for (service, var_name) in
                [("blob", env::BLOB_ENDPOINT), ("queue", env::QUEUE_ENDPOINT)]
            {
                set(var_name, data_endpoint(service));
                set(
                    &format!("{}__{service}ServiceUri", entry::STORAGE_CONNECTION),
                    data_endpoint(service),
                );
            }
            set(
                &format!("{}__credential", entry::STORAGE_CONNECTION),
                json!("managedidentity"),
            );
            set(
                &format!("{}__clientId", entry::STORAGE_CONNECTION),
                client_id.clone(),
            );
        }
        let tables = used.iter().any(|(_, k)| *k == ResourceKind::Table);
        if tables || leases {
            set(env::COSMOS_ENDPOINT, cosmos::endpoint());
            set(env::COSMOS_DATABASE, cosmos::database());
            set(
                &format!("{}__accountEndpoint", entry::COSMOS_CONNECTION),
                cosmos::endpoint(),
            );
            set(
                &format!("{}__credential", entry::COSMOS_CONNECTION),
                json!("managedidentity"),
            );
            set(
                &format!("{}__clientId", entry::COSMOS_CONNECTION),
                client_id.clone(),
            );
        }
        if used.iter().any(|(_, k)| *k == ResourceKind::Topic) {
            let fqdn = expr(format!(
                "concat({}, '.servicebus.windows.net')",
                var(SERVICE_BUS)
            ));
            set(env::SERVICE_BUS_NAMESPACE, fqdn.clone());
            set(
                &format!("{}__fullyQualifiedNamespace", entry::SERVICE_BUS_CONNECTION),
                fqdn,
            );
            set(
                &format!("{}__credential", entry::SERVICE_BUS_CONNECTION),
                json!("managedidentity"),
            );
            set(
                &format!("{}__clientId", entry::SERVICE_BUS_CONNECTION),
                client_id.clone(),
            );
        }
        for (name, kind) in &used {
            set(
                &env::resource_var(name),
                json!(env::native_name(*kind, name)),
            );
        }
        if let Some(node) = self.graph.functions.get(f) {
            for (k, v) in &node.env {
                set(k, json!(v));
            }
            // Names only: the platform resolves each reference with the app's identity.
            for (k, secret) in &node.secrets {
                set(k, keyvault::reference(secret));
            }
        }
        let app_settings: Vec<Value> = settings
            .into_iter()
            .map(|(name, value)| json!({ "name": name, "value": value }))
            .collect();

        let mut site_config = json!({
            "minTlsVersion": "1.2",
            "scmMinTlsVersion": "1.2",
            "ftpsState": "Disabled",
            "http20Enabled": true,
            "appSettings": app_settings,
        });
        if let Some(cors) = &a.cors {
            // App Service answers the preflights and adds the headers (origins and credentials
            // only: it reflects the requested method and headers).
            site_config["cors"] = json!({
                "allowedOrigins": cors.allowed_origins,
                "supportCredentials": cors.support_credentials,
            });
        }
        let mut scale = json!({ "instanceMemoryMB": a.instance_memory_mb });
        if let Some(n) = a.always_ready {
            scale["alwaysReady"] = extra::always_ready(a, n);
        }
        if let Some(max) = a.max_instances {
            scale["maximumInstanceCount"] = json!(max);
            if a.bindings
                .iter()
                .any(|b| matches!(b.trigger, Trigger::Http { .. }))
            {
                scale["triggers"] = json!({ "http": { "perInstanceConcurrency": 1 } });
            }
        }
        let mut depends = vec![
            expr(&plan_id),
            expr(&identity_id),
            expr(Self::component_id()),
            expr(Self::container_id(DEPLOYMENT_ACCOUNT, &package_container)),
            expr(Self::account_id(HOST_ACCOUNT)),
        ];
        if used.iter().any(|(_, k)| storage(k)) {
            depends.push(expr(Self::account_id(DATA_ACCOUNT)));
        }
        if tables || leases {
            depends.push(expr(cosmos::account_id()));
        }
        if reads_secrets {
            depends.push(expr(keyvault::vault_id()));
        }
        let mut site = json!({
            "type": "Microsoft.Web/sites",
            "apiVersion": api::WEB,
            "name": expr(var(&site_var)),
            "location": expr("parameters('location')"),
            "tags": self.tags,
            "kind": "functionapp,linux",
            "identity": {
                "type": "UserAssigned",
                "userAssignedIdentities": { format!("[{identity_id}]"): {} },
            },
            "dependsOn": depends,
            "properties": {
                "serverFarmId": expr(&plan_id),
                "httpsOnly": true,
                "clientCertMode": "Optional",
                "siteConfig": site_config,
                "functionAppConfig": {
                    "deployment": {
                        "storage": {
                            "type": "blobContainer",
                            "value": expr(format!(
                                "concat(reference({}, '{}').primaryEndpoints.blob, '{package_container}')",
                                Self::account_id(DEPLOYMENT_ACCOUNT),
                                api::STORAGE
                            )),
                            "authentication": {
                                "type": "UserAssignedIdentity",
                                "userAssignedIdentityResourceId": expr(&identity_id),
                            },
                        },
                    },
                    "scaleAndConcurrency": scale,
                    "runtime": { "name": a.runtime_name, "version": a.runtime_version },
                },
            },
        });
        if reads_secrets {
            // Key Vault references resolve with this identity, not a system-assigned one.
            site["properties"]["keyVaultReferenceIdentity"] = expr(&identity_id);
        }
        self.resources.push(site);
        let mut code_depends = vec![expr(&site_id)];
        code_depends.extend(role_ids);
        self.resources.push(json!({
            "type": "Microsoft.Web/sites/extensions",
            "apiVersion": api::WEB,
            "name": expr(format!("concat({}, '/onedeploy')", var(&site_var))),
            "dependsOn": code_depends,
            "properties": {
                "packageUri": expr(format!(
                    "concat(reference({}, '{}').primaryEndpoints.blob, '{package_container}/', parameters('packages')[{}])",
                    Self::account_id(DEPLOYMENT_ACCOUNT),
                    api::STORAGE,
                    lit(f)
                )),
                "remoteBuild": false,
            },
        }));
        let code_id = rid(
            "Microsoft.Web/sites/extensions",
            &[var(&site_var), lit("onedeploy")],
        );

        for b in &a.bindings {
            let Trigger::Blob {
                container,
                prefix,
                suffix,
                index,
                ..
            } = &b.trigger
            else {
                continue;
            };
            let mut filter = json!({
                "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
                "subjectBeginsWith": format!("/blobServices/default/containers/{container}/blobs/{prefix}"),
                "enableAdvancedFilteringOnArrays": true,
            });
            if !suffix.is_empty() {
                filter["subjectEndsWith"] = json!(suffix);
            }
            let webhook = format!(
                "concat('https://', reference({site_id}, '{}').defaultHostName, '/runtime/webhooks/blobs?functionName=Host.Functions.{}&code=', listKeys(resourceId('Microsoft.Web/sites/host', {}, 'default'), '{}').systemKeys.blobs_extension)",
                api::WEB,
                b.name,
                var(&site_var),
                api::WEB
            );
            self.resources.push(json!({
                "type": "Microsoft.EventGrid/systemTopics/eventSubscriptions",
                "apiVersion": api::EVENT_GRID,
                "name": expr(format!("concat({}, '/{}')", var(SYSTEM_TOPIC), names::event_subscription(f, *index))),
                "dependsOn": [
                    expr(rid("Microsoft.EventGrid/systemTopics", &[var(SYSTEM_TOPIC)])),
                    expr(&code_id),
                ],
                "properties": {
                    "destination": {
                        "endpointType": "WebHook",
                        "properties": { "endpointUrl": expr(webhook) },
                    },
                    "filter": filter,
                    "eventDeliverySchema": "EventGridSchema",
                    "retryPolicy": { "maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440 },
                },
            }));
        }

        let key = output_key(f);
        self.outputs.insert(
            format!("{key}App"),
            json!({ "type": "string", "value": expr(var(&site_var)) }),
        );
        self.outputs.insert(
            format!("{key}HostName"),
            json!({ "type": "string", "value": expr(format!("reference({site_id}, '{}').defaultHostName", api::WEB)) }),
        );
    }

    fn resource_scope(&self, kind: ResourceKind, name: &str) -> String {
        match kind {
            ResourceKind::Bucket => Self::container_id(DATA_ACCOUNT, &names::container(name)),
            ResourceKind::Queue => Self::queue_id(&names::queue(name)),
            ResourceKind::Table => cosmos::container_id(&names::table(name)),
            ResourceKind::Topic => Self::topic_id(name),
        }
    }
}

/// A role assignment's `scope` from the scope's `resourceId(...)` expression: the same id.
fn scope_of(resource_id: &str) -> String {
    resource_id.to_string()
}

/// The output key prefix of a function: `place-order` → `placeOrder`.
pub fn output_key(function: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in function.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// What `nimbus build -p azure` writes next to `build.json`: the template as
/// `azuredeploy.json`, and each app's generated files under `azure/<function>/` (to read or to
/// check; the packages themselves are assembled at deploy time). Paths are relative and
/// `/`-separated; the same input gives the same bytes.
pub fn build_outputs(
    graph: &AppGraph,
    build: &BuildManifest,
    settings: &AzureSettings,
) -> Result<Vec<(String, Vec<u8>)>, AzureError> {
    let mut out = vec![(
        TEMPLATE_FILE.to_string(),
        template(graph, build, settings)?.into_bytes(),
    )];
    for a in apps::apps(graph)? {
        for f in entry::files(graph, &a) {
            out.push((format!("azure/{}/{}", a.function, f.path), f.bytes));
        }
    }
    Ok(out)
}

/// The template's file name next to `build.json`.
pub const TEMPLATE_FILE: &str = "azuredeploy.json";
