//! The app graph: the manifest fully resolved into provider-neutral nodes.
//!
//! Functions (with defaults applied and triggers normalized), resources, and access edges
//! (function → resource, with the access level or the trigger that links them). Every node has
//! a stable id and a content hash, so later stages can tell what changed. Maps are ordered, so
//! the same manifest always gives byte-identical JSON. Provider adapters consume only this,
//! never the manifest; spans are kept (not serialized) so that provider checks can still point
//! at the manifest line.

#![deny(missing_docs)]

mod build;
pub mod cors;
mod hash;

use std::collections::BTreeMap;

use nimbus_diagnostic::Span;
use nimbus_manifest::{
    Access, Auth, AwsFunction, AzureFunction, BucketEvent, GcpFunction, HttpMethod, KeyType,
    Language, Permissions, ResourceKind, Runtime, TableEvent,
};
use serde::{Deserialize, Serialize};

pub use build::build;
pub use cors::CorsPolicy;

/// The resolved application for one stage and provider.
#[derive(Debug, Clone, Serialize)]
pub struct AppGraph {
    /// The service's name.
    pub service: String,
    /// The stage it was resolved for.
    pub stage: String,
    /// The provider it was resolved for.
    pub provider: String,
    /// Provider settings from the manifest (after the stage's overrides), as plain JSON.
    pub settings: BTreeMap<String, serde_json::Value>,
    /// Functions by name.
    pub functions: BTreeMap<String, FunctionNode>,
    /// Resources by name.
    pub resources: BTreeMap<String, ResourceNode>,
    /// Declared secrets by name (names and descriptions only; values never enter the graph).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretNode>,
    /// Function → resource edges, sorted.
    pub edges: Vec<Edge>,
    /// The custom domain of the HTTP API, with the certificate for this provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainNode>,
    /// Functions of the manifest left out for this provider and stage by their `only:`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Where the first skipped function's `only:` is, for the one message that lists them.
    #[serde(skip)]
    pub skipped_span: Option<Span>,
    /// Hash over every node's hash: changes when anything in the graph changes.
    pub hash: String,
}

/// The custom domain of the HTTP API (`http.domain`, after the stage's override).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainNode {
    /// The host name.
    pub name: String,
    /// The certificate given for this graph's provider, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// Where `http.domain` is.
    #[serde(skip)]
    pub span: Span,
    /// Where the host name is.
    #[serde(skip)]
    pub name_span: Span,
    /// Where this provider's certificate is (`span` when there is none).
    #[serde(skip)]
    pub certificate_span: Span,
}

/// A declared secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretNode {
    /// What it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl AppGraph {
    /// The secrets each function reads, by function: least privilege, derived like `uses`.
    pub fn secret_readers(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for f in self.functions.values() {
            for secret in f.secrets.values() {
                let readers = out.entry(secret.as_str()).or_default();
                if !readers.contains(&f.name.as_str()) {
                    readers.push(f.name.as_str());
                }
            }
        }
        out
    }
}

/// A function with every default applied.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionNode {
    /// Stable id: `function:<name>`.
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The handler file, relative to the manifest's directory.
    pub handler_file: String,
    /// The exported function.
    pub handler_export: String,
    /// The directory packaged for this function (relative to the manifest; `""` for its own).
    pub source_dir: String,
    /// The neutral runtime.
    pub runtime: Runtime,
    /// Its language.
    pub language: Language,
    /// Memory in MiB.
    pub memory_mb: u32,
    /// Timeout in milliseconds.
    pub timeout_ms: u64,
    /// Most concurrent invocations (the default when unset).
    pub concurrency: u32,
    /// Whether the manifest set `concurrency.max` (a cloud then reserves it; otherwise the
    /// function shares the account's pool).
    pub concurrency_set: bool,
    /// Environment variables with literal values (defaults merged under the function's own).
    pub env: BTreeMap<String, String>,
    /// Environment variables that take a secret's value: variable → secret name. Only names are
    /// in the graph, never values; a function may read exactly these secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// Package globs.
    pub include: Vec<String>,
    /// Package exclusion globs.
    pub exclude: Vec<String>,
    /// A human description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Triggers, in manifest order.
    pub triggers: Vec<TriggerNode>,
    /// Extra provider permissions (`permissions:`); each provider uses its own block only.
    #[serde(skip_serializing_if = "Permissions::is_empty")]
    pub permissions: Permissions,
    /// AWS settings: the function's `aws:` merged over `defaults.aws`.
    #[serde(skip_serializing_if = "AwsFunction::is_empty")]
    pub aws: AwsFunction,
    /// GCP settings: the function's `gcp:` merged over `defaults.gcp`.
    #[serde(skip_serializing_if = "GcpFunction::is_empty")]
    pub gcp: GcpFunction,
    /// Azure settings: the function's `azure:` merged over `defaults.azure`.
    #[serde(skip_serializing_if = "AzureFunction::is_empty")]
    pub azure: AzureFunction,
    /// Content hash of this node's configuration (not of its code; packaging hashes that).
    pub hash: String,
    /// Where things were written in the manifest.
    #[serde(skip)]
    pub spans: FunctionSpans,
    /// Where each secret reference names its secret, by environment variable.
    #[serde(skip)]
    pub secret_spans: BTreeMap<String, Span>,
}

/// Manifest positions of a function's settings, for provider checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct FunctionSpans {
    /// The function's name (its key).
    pub name: Span,
    /// The handler value.
    pub handler: Span,
    /// The runtime (the function's, or the defaults' when inherited).
    pub runtime: Span,
    /// The memory (function's or defaults').
    pub memory: Span,
    /// The timeout (function's or defaults').
    pub timeout: Span,
    /// `concurrency.max` (function's or defaults'); the name when unset.
    pub concurrency: Span,
    /// The description; the name when unset.
    pub description: Span,
    /// The `permissions:` block; the name when unset.
    pub permissions: Span,
}

/// One trigger of a function.
#[derive(Debug, Clone, Serialize)]
pub struct TriggerNode {
    /// Stable id: `trigger:<function>/<kind>/<index>`.
    pub id: String,
    /// What fires it.
    #[serde(flatten)]
    pub spec: TriggerSpec,
    /// Where it was written.
    #[serde(skip)]
    pub span: Span,
    /// Where its main value was written: the schedule expression, the resource name, the path.
    #[serde(skip)]
    pub value_span: Span,
}

/// The kinds of trigger, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TriggerSpec {
    /// An HTTP route.
    Http {
        /// The method.
        method: HttpMethod,
        /// The path with `{param}`s.
        path: String,
        /// Who may call it.
        auth: Auth,
        /// Cross-origin requests from browsers: the route's own `cors`, else `http.cors`;
        /// `None` for no CORS.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cors: Option<CorsPolicy>,
    },
    /// A schedule.
    Schedule {
        /// The canonical neutral expression.
        expression: String,
        /// IANA time zone.
        timezone: String,
    },
    /// A queue.
    Queue {
        /// The queue resource.
        resource: String,
        /// Messages per invocation.
        batch_size: u32,
    },
    /// A topic.
    Topic {
        /// The topic resource.
        resource: String,
    },
    /// A bucket.
    Bucket {
        /// The bucket resource.
        resource: String,
        /// Which events.
        events: Vec<BucketEvent>,
        /// Key prefix filter.
        #[serde(skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// Key suffix filter.
        #[serde(skip_serializing_if = "Option::is_none")]
        suffix: Option<String>,
    },
    /// Table changes.
    Table {
        /// The table resource.
        resource: String,
        /// Which changes.
        events: Vec<TableEvent>,
        /// Changes per invocation.
        batch_size: u32,
    },
}

impl TriggerSpec {
    /// The kind as written in the manifest.
    pub fn kind(&self) -> TriggerKind {
        match self {
            TriggerSpec::Http { .. } => TriggerKind::Http,
            TriggerSpec::Schedule { .. } => TriggerKind::Schedule,
            TriggerSpec::Queue { .. } => TriggerKind::Queue,
            TriggerSpec::Topic { .. } => TriggerKind::Topic,
            TriggerSpec::Bucket { .. } => TriggerKind::Bucket,
            TriggerSpec::Table { .. } => TriggerKind::Table,
        }
    }

    /// The resource it listens to, if any.
    pub fn resource(&self) -> Option<&str> {
        match self {
            TriggerSpec::Http { .. } | TriggerSpec::Schedule { .. } => None,
            TriggerSpec::Queue { resource, .. }
            | TriggerSpec::Topic { resource }
            | TriggerSpec::Bucket { resource, .. }
            | TriggerSpec::Table { resource, .. } => Some(resource),
        }
    }
}

/// Trigger kinds, for capability tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// HTTP route.
    Http,
    /// Schedule.
    Schedule,
    /// Queue messages.
    Queue,
    /// Topic messages.
    Topic,
    /// Bucket events.
    Bucket,
    /// Table changes.
    Table,
}

impl TriggerKind {
    /// Every trigger kind.
    pub const ALL: [TriggerKind; 6] = [
        TriggerKind::Http,
        TriggerKind::Schedule,
        TriggerKind::Queue,
        TriggerKind::Topic,
        TriggerKind::Bucket,
        TriggerKind::Table,
    ];

    /// The kind as written in the manifest.
    pub fn as_str(&self) -> &'static str {
        match self {
            TriggerKind::Http => "http",
            TriggerKind::Schedule => "schedule",
            TriggerKind::Queue => "queue",
            TriggerKind::Topic => "topic",
            TriggerKind::Bucket => "bucket",
            TriggerKind::Table => "table",
        }
    }

    /// True for triggers driven by events rather than by a caller waiting for a response.
    pub fn is_event(&self) -> bool {
        !matches!(self, TriggerKind::Http)
    }
}

impl std::fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource, normalized.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceNode {
    /// Stable id: `resource:<name>`.
    pub id: String,
    /// The resource's name.
    pub name: String,
    /// Its kind.
    pub kind: ResourceKind,
    /// Kind-specific settings.
    pub spec: ResourceSpec,
    /// The identifier of the resource that already exists on this graph's provider
    /// (`existing.<provider>`): it is used, never created, changed or deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing: Option<String>,
    /// Content hash of its configuration.
    pub hash: String,
    /// Where it was declared.
    #[serde(skip)]
    pub span: Span,
    /// Where its settings are (each falls back to `span` when the manifest leaves it out).
    #[serde(skip)]
    pub spans: ResourceSpans,
}

/// Manifest positions of a resource's settings, for provider checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceSpans {
    /// A queue's `visibility_timeout`.
    pub visibility_timeout: Span,
    /// A queue's `retention`.
    pub retention: Span,
    /// A queue's `dead_letter.max_receives`.
    pub max_receives: Span,
    /// This provider's `existing` identifier.
    pub existing: Span,
}

/// Kind-specific resource settings, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", untagged)]
pub enum ResourceSpec {
    /// A table.
    Table {
        /// Partition key attribute and type.
        key: (String, KeyType),
        /// Optional sort key attribute and type.
        #[serde(skip_serializing_if = "Option::is_none")]
        sort_key: Option<(String, KeyType)>,
    },
    /// A queue.
    Queue {
        /// Visibility timeout, ms.
        visibility_timeout_ms: u64,
        /// Retention, ms.
        retention_ms: u64,
        /// Receives before dead-lettering, if a dead-letter queue is wanted.
        #[serde(skip_serializing_if = "Option::is_none")]
        max_receives: Option<u32>,
    },
    /// A bucket.
    Bucket {
        /// Keep old versions.
        versioning: bool,
    },
    /// A topic. Last: with no fields of its own, it would match any other kind's settings.
    Topic {},
}

/// A link from a function to a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    /// `function:<name>`.
    pub from: String,
    /// `resource:<name>`.
    pub to: String,
    /// Why they are linked.
    #[serde(flatten)]
    pub link: Link,
}

/// Why a function is linked to a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Link {
    /// A grant in `uses`.
    Uses {
        /// The access level.
        access: Access,
    },
    /// The resource triggers the function.
    Trigger {
        /// The trigger's id.
        trigger: String,
    },
}

impl AppGraph {
    /// The access a function was granted on a resource, if any.
    pub fn access(&self, function: &str, resource: &str) -> Option<Access> {
        let from = format!("function:{function}");
        let to = format!("resource:{resource}");
        self.edges.iter().find_map(|e| match &e.link {
            Link::Uses { access } if e.from == from && e.to == to => Some(*access),
            _ => None,
        })
    }

    /// Pretty JSON, stable across runs.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("the graph serializes");
        text.push('\n');
        text
    }
}
