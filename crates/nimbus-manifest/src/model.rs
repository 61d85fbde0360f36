//! The manifest's structure (version 1), as the user writes it.
//!
//! These types drive both decoding (through [`crate::de`]) and the JSON Schema (through
//! `schemars`), so the schema cannot drift from what the parser accepts. Doc comments become
//! the schema's descriptions. Values that later stages must point back at are [`Spanned`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::Spanned;
use crate::cors::RouteCors;
use crate::external::{Existing, Http};
use crate::extras::{AwsFunction, AzureFunction, GcpFunction, Only, Permissions};
use crate::types::{
    Access, BucketEvent, Duration, EnvName, Handler, HttpMethod, KeyType, MemoryMb, Name,
    ResourceKind, RoutePath, Runtime, SecretName, TableEvent,
};

/// A Nimbus manifest: one serverless service, described once for every provider.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Nimbus manifest", extend("$id" = "urn:nimbus:manifest:v1"))]
pub struct Manifest {
    /// The manifest format version; this is version `1`.
    pub version: Spanned<u32>,
    /// The service's name; it prefixes every resource the service creates.
    pub service: Spanned<Name>,
    /// Settings every function inherits unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
    /// Variables for templates: `{{ vars.name }}`. Stages may override them.
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Per-stage overrides of `vars`, `defaults` and `providers`, merged over the base.
    #[serde(default)]
    pub stages: BTreeMap<Spanned<Name>, Stage>,
    /// The resources functions use or are triggered by.
    #[serde(default)]
    pub resources: BTreeMap<Spanned<Name>, Resource>,
    /// Secrets, by name: values set with `nimbus secret set`, never written in the manifest.
    /// A function reads one through an environment variable: `env: { KEY: { secret: NAME } }`.
    #[serde(default)]
    pub secrets: BTreeMap<Spanned<SecretName>, Secret>,
    /// The functions, by name.
    pub functions: BTreeMap<Spanned<Name>, Function>,
    /// Settings of the HTTP API all `http` routes share: CORS and a custom domain.
    #[serde(default)]
    pub http: Http,
    /// Provider-specific settings (region, project, ...).
    #[serde(default)]
    pub providers: Providers,
    /// Where parts of the manifest are, for messages that point at a block rather than a value.
    #[serde(skip)]
    #[schemars(skip)]
    pub spans: ManifestSpans,
}

/// Where blocks of the manifest are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestSpans {
    /// The `providers:` key, when there is one.
    pub providers: Option<nimbus_diagnostic::Span>,
    /// Each `providers.<id>:` key (`aws`, `gcp`, ...), by id.
    pub provider: BTreeMap<String, nimbus_diagnostic::Span>,
}

/// The top-level keys of a manifest, in the order they are documented.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "version",
    "service",
    "defaults",
    "vars",
    "stages",
    "resources",
    "secrets",
    "functions",
    "http",
    "providers",
];

/// A declared secret. Its value lives in the provider's secret store (or, locally, in the user's
/// data directory), never in the manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// What the secret is for, shown by `nimbus secret list`.
    pub description: Option<Spanned<String>>,
}

/// Settings every function inherits.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Default runtime; without one, `.py` handlers run on `python3.12` and `.js` on `nodejs22`.
    pub runtime: Option<Spanned<Runtime>>,
    /// Default memory in MiB (256 when unset).
    pub memory: Option<Spanned<MemoryMb>>,
    /// Default timeout per invocation (`10s` when unset).
    pub timeout: Option<Spanned<Duration>>,
    /// Environment variables every function gets; a function's own `env` wins.
    #[serde(default)]
    pub env: BTreeMap<Spanned<EnvName>, Spanned<EnvValue>>,
    /// Default concurrency settings.
    pub concurrency: Option<Concurrency>,
    /// AWS settings every function inherits (`{ architecture: arm64 }`); a function's own
    /// `aws:` block wins key by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsFunction>,
    /// GCP settings every function inherits; a function's own `gcp:` block wins key by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpFunction>,
    /// Azure settings every function inherits; a function's own `azure:` block wins key by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureFunction>,
}

/// Overrides for one stage (`dev`, `prod`, ...).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Variables that replace the base `vars` of the same name.
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Defaults merged key by key over the base `defaults`.
    pub defaults: Option<Defaults>,
    /// Provider settings merged key by key over the base `providers`.
    pub providers: Option<Providers>,
    /// HTTP API settings merged key by key over the base `http` (a stage's own domain).
    pub http: Option<Http>,
}

/// One function: its code, its settings, what triggers it and what it may use.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Function {
    /// The code to run: `path/to/file.py:function`, relative to the manifest.
    pub handler: Spanned<Handler>,
    /// The runtime; overrides `defaults.runtime`.
    pub runtime: Option<Spanned<Runtime>>,
    /// Memory in MiB; overrides `defaults.memory`.
    pub memory: Option<Spanned<MemoryMb>>,
    /// Timeout per invocation; overrides `defaults.timeout`.
    pub timeout: Option<Spanned<Duration>>,
    /// A human description, copied to the provider where it has a place for one (AWS Lambda
    /// takes at most 256 characters).
    pub description: Option<Spanned<String>>,
    /// Environment variables, merged over `defaults.env`.
    #[serde(default)]
    pub env: BTreeMap<Spanned<EnvName>, Spanned<EnvValue>>,
    /// What invokes the function.
    #[serde(default)]
    pub triggers: Vec<Spanned<Trigger>>,
    /// Resources the function may use, and how.
    #[serde(default)]
    pub uses: Vec<Use>,
    /// How many invocations may run at once.
    pub concurrency: Option<Concurrency>,
    /// Which files of the function's directory go into its package.
    pub package: Option<PackageSpec>,
    /// Extra provider permissions for services outside the neutral model, per provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Spanned<Permissions>>,
    /// Deploy the function only to these providers and/or stages:
    /// `{ providers: [aws, local], stages: [prod] }`. Elsewhere it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Spanned<Only>>,
    /// AWS-only settings: `{ architecture: arm64, reserved_concurrency: 5, vpc: { ... } }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsFunction>,
    /// GCP-only settings: `{ vpc_connector: ..., egress: all, min_instances: 1 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpFunction>,
    /// Azure-only settings: `{ always_ready: 1 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureFunction>,
}

/// An environment variable's value: text (numbers and booleans are written as text), or a
/// reference to a declared secret, `{ secret: NAME }`, whose value is given at run time only.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum EnvValue {
    /// A literal value.
    Text(String),
    /// A secret's value, by the secret's name.
    Secret {
        /// The secret's name, as declared under `secrets:`.
        secret: Spanned<SecretName>,
    },
}

impl EnvValue {
    /// The literal value, or `None` for a secret reference.
    pub fn text(&self) -> Option<&str> {
        match self {
            EnvValue::Text(t) => Some(t),
            EnvValue::Secret { .. } => None,
        }
    }

    /// The secret referenced, if this is a secret reference.
    pub fn secret(&self) -> Option<&Spanned<SecretName>> {
        match self {
            EnvValue::Text(_) => None,
            EnvValue::Secret { secret } => Some(secret),
        }
    }
}

/// The `{ secret: NAME }` form of an environment variable's value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretRef {
    secret: Spanned<SecretName>,
}

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text, a number, a boolean or `{ secret: NAME }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvValue, E> {
                Ok(EnvValue::Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EnvValue, E> {
                Ok(EnvValue::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EnvValue, E> {
                Ok(EnvValue::Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EnvValue, E> {
                Ok(EnvValue::Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<EnvValue, E> {
                Ok(EnvValue::Text(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<EnvValue, E> {
                Err(E::custom(
                    "an environment variable needs a value; write `\"\"` for an empty one",
                ))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EnvValue, A::Error> {
                let r = SecretRef::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(EnvValue::Secret { secret: r.secret })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for EnvValue {
    fn schema_name() -> Cow<'static, str> {
        "EnvValue".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let name = g.subschema_for::<SecretName>();
        json_schema!({
            "anyOf": [
                { "type": ["string", "number", "boolean"] },
                {
                    "type": "object",
                    "description": "the value of a secret declared under `secrets:`",
                    "properties": { "secret": name },
                    "required": ["secret"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// Concurrency limits.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    /// Most invocations at once (instances); 10 when unset.
    #[schemars(range(min = 1, max = 1000))]
    pub max: Option<Spanned<u32>>,
}

/// Globs (relative to the function's directory) that select the files of its package.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    /// Only files matching one of these are packaged (all files when empty). Secret-looking
    /// files (`.env`, keys, credentials) are left out unless a glob names them (`server.pem`) or
    /// is written for them (`*.pem`); `**` or `*.json` does not ship them.
    #[serde(default)]
    pub include: Vec<String>,
    /// Files matching one of these are left out (after `include`).
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// What invokes a function. Exactly one key per trigger.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// An HTTP route.
    Http(HttpTrigger),
    /// A schedule: `cron(m h dom mon dow)` or `rate(N unit)`, or a mapping with a time zone.
    Schedule(
        #[serde(deserialize_with = "string_or_map")]
        #[schemars(schema_with = "string_or_map_schema::<ScheduleTrigger>")]
        ScheduleTrigger,
    ),
    /// Messages on a queue resource, delivered in batches: the queue's name, or a mapping.
    Queue(
        #[serde(deserialize_with = "string_or_map")]
        #[schemars(schema_with = "string_or_map_schema::<QueueTrigger>")]
        QueueTrigger,
    ),
    /// Messages published to a topic resource: the topic's name, or a mapping.
    Topic(
        #[serde(deserialize_with = "string_or_map")]
        #[schemars(schema_with = "string_or_map_schema::<TopicTrigger>")]
        TopicTrigger,
    ),
    /// Objects created or deleted in a bucket resource: the bucket's name, or a mapping.
    Bucket(
        #[serde(deserialize_with = "string_or_map")]
        #[schemars(schema_with = "string_or_map_schema::<BucketTrigger>")]
        BucketTrigger,
    ),
    /// Inserts, updates and deletes in a table resource: the table's name, or a mapping.
    Table(
        #[serde(deserialize_with = "string_or_map")]
        #[schemars(schema_with = "string_or_map_schema::<TableTrigger>")]
        TableTrigger,
    ),
}

impl Trigger {
    /// The trigger kind as written in the manifest (`http`, `schedule`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Http(_) => "http",
            Trigger::Schedule(_) => "schedule",
            Trigger::Queue(_) => "queue",
            Trigger::Topic(_) => "topic",
            Trigger::Bucket(_) => "bucket",
            Trigger::Table(_) => "table",
        }
    }

    /// The resource the trigger listens to, if any.
    pub fn resource(&self) -> Option<&Spanned<Name>> {
        match self {
            Trigger::Http(_) | Trigger::Schedule(_) => None,
            Trigger::Queue(q) => Some(&q.name),
            Trigger::Topic(t) => Some(&t.name),
            Trigger::Bucket(b) => Some(&b.name),
            Trigger::Table(t) => Some(&t.name),
        }
    }
}

/// An HTTP route.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpTrigger {
    /// The method (`GET`, `POST`, ...; `ANY` for all).
    pub method: Spanned<HttpMethod>,
    /// The path, with `{name}` parameters: `/orders/{id}`.
    pub path: Spanned<RoutePath>,
    /// Who may call the route; public when unset.
    pub auth: Option<Auth>,
    /// This route's own CORS settings, replacing `http.cors`; `false` for none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<Spanned<RouteCors>>,
}

/// How an HTTP route authenticates callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// Public.
    None,
    /// A shared key in a request header.
    ApiKey(ApiKeyAuth),
    /// A JSON Web Token in `Authorization: Bearer ...`.
    Jwt(JwtAuth),
}

/// API key settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyAuth {
    /// The header that carries the key (`x-api-key` when unset).
    #[serde(default = "default_api_key_header")]
    pub header: String,
}

fn default_api_key_header() -> String {
    "x-api-key".to_string()
}

/// JWT settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtAuth {
    /// The required `iss` claim.
    pub issuer: String,
    /// The required `aud` claim.
    pub audience: String,
}

/// A schedule, with an optional time zone.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleTrigger {
    /// `cron(m h dom mon dow)` (standard 5-field cron) or `rate(N minutes|hours|days)`.
    pub expression: Spanned<String>,
    /// IANA time zone the cron is evaluated in, such as `Europe/Paris` (`UTC` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Spanned<String>>,
}

/// Messages on a queue.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueTrigger {
    /// The queue resource.
    pub name: Spanned<Name>,
    /// Most messages per invocation (1 when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub batch_size: Option<Spanned<u32>>,
}

/// Messages on a topic.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicTrigger {
    /// The topic resource.
    pub name: Spanned<Name>,
}

/// Objects created or deleted in a bucket.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketTrigger {
    /// The bucket resource.
    pub name: Spanned<Name>,
    /// Which events (`[created]` when unset).
    #[serde(default = "default_bucket_events")]
    pub events: Spanned<Vec<BucketEvent>>,
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Only keys ending with this.
    pub suffix: Option<String>,
}

fn default_bucket_events() -> Spanned<Vec<BucketEvent>> {
    Spanned::unspanned(vec![BucketEvent::Created])
}

/// Changes in a table.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableTrigger {
    /// The table resource.
    pub name: Spanned<Name>,
    /// Which changes (all three when unset).
    #[serde(default = "default_table_events")]
    pub events: Spanned<Vec<TableEvent>>,
    /// Most changes per invocation (1 when unset).
    #[schemars(range(min = 1, max = 10000))]
    pub batch_size: Option<Spanned<u32>>,
}

fn default_table_events() -> Spanned<Vec<TableEvent>> {
    Spanned::unspanned(vec![
        TableEvent::Insert,
        TableEvent::Modify,
        TableEvent::Remove,
    ])
}

/// A grant: the function may use `resource` with `access`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Use {
    /// The resource's name.
    pub resource: Spanned<Name>,
    /// `read`, `write` or `read_write` (tables, buckets), `send` (queues), `publish` (topics).
    pub access: Spanned<Access>,
}

/// A resource. Which settings apply depends on `type`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// `table`, `queue`, `topic` or `bucket`.
    #[serde(rename = "type")]
    pub kind: Spanned<ResourceKind>,
    /// Tables: the partition key, one attribute and its type: `{ id: string }`.
    pub key: Option<Spanned<BTreeMap<Spanned<String>, KeyType>>>,
    /// Tables: an optional sort key, one attribute and its type.
    pub sort_key: Option<Spanned<BTreeMap<Spanned<String>, KeyType>>>,
    /// Queues: how long a received message stays hidden before it is delivered again (30s when unset).
    pub visibility_timeout: Option<Spanned<Duration>>,
    /// Queues: how long an undelivered message is kept (4 days when unset).
    pub retention: Option<Spanned<Duration>>,
    /// Queues: move a message to a dead-letter queue after this many receives.
    pub dead_letter: Option<Spanned<DeadLetter>>,
    /// Buckets: keep old versions of objects.
    pub versioning: Option<Spanned<bool>>,
    /// The resource already exists: its identifier per provider. Nimbus then grants access to
    /// it and wires triggers to it there, but never creates, changes or deletes it.
    pub existing: Option<Spanned<Existing>>,
}

/// Dead-letter settings of a queue.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    /// Receives before a message is moved to the dead-letter queue.
    #[schemars(range(min = 1, max = 1000))]
    pub max_receives: Spanned<u32>,
}

/// Provider-specific settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Providers {
    /// Amazon Web Services.
    pub aws: Option<AwsSettings>,
    /// Google Cloud.
    pub gcp: Option<GcpSettings>,
    /// Microsoft Azure.
    pub azure: Option<AzureSettings>,
    /// The local runtime.
    pub local: Option<LocalSettings>,
}

/// AWS settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// The region (`us-east-1`); the standard AWS chain decides when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Spanned<String>>,
    /// A named profile from the AWS config files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Tags put on every resource.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Google Cloud settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GcpSettings {
    /// The project id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<Spanned<String>>,
    /// The region (`europe-west1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Spanned<String>>,
}

/// Azure settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AzureSettings {
    /// The location (`westeurope`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Spanned<String>>,
    /// The resource group to deploy into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<Spanned<String>>,
    /// The subscription id; the Azure identity chain decides when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
}

/// Local runtime settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalSettings {
    /// The gateway's port, exactly: `deploy` and `dev` fail, naming the holder, when it is
    /// taken (`0`: any free port). Unset: the port this deployment had last time, else 3000 or
    /// the next free one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<Spanned<u16>>,
    /// How long an idle worker is kept before it is stopped (`60s` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Spanned<Duration>>,
}

/// A trigger setting that can be written as one string: the resource's name, or the schedule.
trait Shorthand: Sized {
    /// What the string means, for the schema.
    const SHORTHAND: &'static str;
    /// The setting the string stands for.
    fn from_shorthand(text: Spanned<String>) -> Result<Self, String>;
}

fn named(text: Spanned<String>) -> Result<Spanned<Name>, String> {
    text.value.parse().map(|n| Spanned::new(text.span, n))
}

impl Shorthand for ScheduleTrigger {
    const SHORTHAND: &'static str = "`cron(m h dom mon dow)` or `rate(N unit)`";
    fn from_shorthand(expression: Spanned<String>) -> Result<Self, String> {
        Ok(ScheduleTrigger {
            expression,
            timezone: None,
        })
    }
}

impl Shorthand for QueueTrigger {
    const SHORTHAND: &'static str = "the queue's name";
    fn from_shorthand(text: Spanned<String>) -> Result<Self, String> {
        Ok(QueueTrigger {
            name: named(text)?,
            batch_size: None,
        })
    }
}

impl Shorthand for TopicTrigger {
    const SHORTHAND: &'static str = "the topic's name";
    fn from_shorthand(text: Spanned<String>) -> Result<Self, String> {
        Ok(TopicTrigger { name: named(text)? })
    }
}

impl Shorthand for BucketTrigger {
    const SHORTHAND: &'static str = "the bucket's name (object created events)";
    fn from_shorthand(text: Spanned<String>) -> Result<Self, String> {
        Ok(BucketTrigger {
            name: named(text)?,
            events: default_bucket_events(),
            prefix: None,
            suffix: None,
        })
    }
}

impl Shorthand for TableTrigger {
    const SHORTHAND: &'static str = "the table's name (all changes)";
    fn from_shorthand(text: Spanned<String>) -> Result<Self, String> {
        Ok(TableTrigger {
            name: named(text)?,
            events: default_table_events(),
            batch_size: None,
        })
    }
}

/// Either the shorthand string or the full mapping.
enum StringOrMap<T> {
    String(String),
    Map(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for StringOrMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = StringOrMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name or a mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StringOrMap::String(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(StringOrMap::Map)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Deserializes a trigger setting written either as its shorthand string or as a mapping.
fn string_or_map<'de, D: Deserializer<'de>, T: Deserialize<'de> + Shorthand>(
    d: D,
) -> Result<T, D::Error> {
    let value = Spanned::<StringOrMap<T>>::deserialize(d)?;
    match value.value {
        StringOrMap::String(text) => {
            T::from_shorthand(Spanned::new(value.span, text)).map_err(de::Error::custom)
        }
        StringOrMap::Map(t) => Ok(t),
    }
}

/// JSON Schema of a shorthand-or-mapping setting: `anyOf [string, T]`.
fn string_or_map_schema<T: JsonSchema + Shorthand>(generator: &mut SchemaGenerator) -> Schema {
    let map = generator.subschema_for::<T>();
    let description = format!("{}, or a mapping", T::SHORTHAND);
    json_schema!({ "description": description, "anyOf": [{ "type": "string" }, map] })
}
