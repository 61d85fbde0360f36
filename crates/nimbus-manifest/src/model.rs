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
use crate::types::{
    Access, BucketEvent, Duration, EnvName, Handler, HttpMethod, KeyType, MemoryMb, Name, ResourceKind, RoutePath,
    Runtime, TableEvent,
};

/// A Nimbus manifest: one serverless service, described once for every provider.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Nimbus manifest", extend("$id" = "https://nimbus.dev/schemas/nimbus.schema.json"))]
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
    /// The functions, by name.
    pub functions: BTreeMap<Spanned<Name>, Function>,
    /// Provider-specific settings (region, project, ...).
    #[serde(default)]
    pub providers: Providers,
}

/// The top-level keys of a manifest, in the order they are documented.
pub const TOP_LEVEL_KEYS: &[&str] =
    &["version", "service", "defaults", "vars", "stages", "resources", "functions", "providers"];

/// Settings every function inherits.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Default runtime; without one, `.py` handlers run on `python3.12` and `.js` on `nodejs20`.
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
    /// A human description, copied to the provider where it has a place for one.
    pub description: Option<String>,
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
}

/// An environment variable's value; numbers and booleans are written as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct EnvValue(pub String);

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text, a number or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<EnvValue, E> {
                Err(E::custom("an environment variable needs a value; write `\"\"` for an empty one"))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for EnvValue {
    fn schema_name() -> Cow<'static, str> {
        "EnvValue".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
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
    /// Only files matching one of these are packaged (all files when empty).
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
    /// A schedule: `cron(m h dom mon dow)` or `rate(N unit)`, optionally with a time zone.
    Schedule(ScheduleTrigger),
    /// Messages on a queue resource, delivered in batches.
    Queue(QueueTrigger),
    /// Messages published to a topic resource.
    Topic(TopicTrigger),
    /// Objects created or deleted in a bucket resource.
    Bucket(BucketTrigger),
    /// Inserts, updates and deletes in a table resource.
    Table(TableTrigger),
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

/// A schedule: a string (`cron(0 3 * * *)`, `rate(5 minutes)`) or a mapping with a time zone.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleTrigger {
    /// `cron(m h dom mon dow)` (standard 5-field cron) or `rate(N minutes|hours|days)`.
    pub expression: Spanned<String>,
    /// IANA time zone the cron is evaluated in (`UTC` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Spanned<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ScheduleTriggerMap {
    /// `cron(m h dom mon dow)` (standard 5-field cron) or `rate(N minutes|hours|days)`.
    expression: Spanned<String>,
    /// IANA time zone the cron is evaluated in, such as `Europe/Paris` (`UTC` when unset).
    timezone: Option<Spanned<String>>,
}

/// Messages on a queue: the queue's name, or a mapping with the batch size.
#[derive(Debug, Clone, Serialize)]
pub struct QueueTrigger {
    /// The queue resource.
    pub name: Spanned<Name>,
    /// Most messages per invocation (1 when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<Spanned<u32>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct QueueTriggerMap {
    /// The queue resource.
    name: Spanned<Name>,
    /// Most messages per invocation (1 when unset).
    #[schemars(range(min = 1, max = 10000))]
    batch_size: Option<Spanned<u32>>,
}

/// Messages on a topic: the topic's name, or a mapping.
#[derive(Debug, Clone, Serialize)]
pub struct TopicTrigger {
    /// The topic resource.
    pub name: Spanned<Name>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TopicTriggerMap {
    /// The topic resource.
    name: Spanned<Name>,
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
    Spanned::unspanned(vec![TableEvent::Insert, TableEvent::Modify, TableEvent::Remove])
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
    /// The gateway's port (3000, or the next free one, when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<Spanned<u16>>,
    /// How long an idle worker is kept before it is stopped (`60s` when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Spanned<Duration>>,
}

/// A value written either as a plain string or as a mapping.
enum StringOrMap<T> {
    String(Spanned<String>),
    Map(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for StringOrMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Inner<T>>::deserialize(d)?;
        Ok(match spanned.value.0 {
            StringOrMap::String(s) => StringOrMap::String(Spanned::new(spanned.span, s.value)),
            map => map,
        })
    }
}

/// Adapter so that `Spanned` can wrap the string-or-map visitor.
struct Inner<T>(StringOrMap<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Inner<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Inner<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name or a mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Inner(StringOrMap::String(Spanned::unspanned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Inner(StringOrMap::Map(t)))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

fn parse_name<E: de::Error>(s: Spanned<String>) -> Result<Spanned<Name>, E> {
    s.value.parse().map(|n| Spanned::new(s.span, n)).map_err(E::custom)
}

impl<'de> Deserialize<'de> for ScheduleTrigger {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match StringOrMap::<ScheduleTriggerMap>::deserialize(d)? {
            StringOrMap::String(expression) => ScheduleTrigger { expression, timezone: None },
            StringOrMap::Map(m) => ScheduleTrigger { expression: m.expression, timezone: m.timezone },
        })
    }
}

impl<'de> Deserialize<'de> for QueueTrigger {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match StringOrMap::<QueueTriggerMap>::deserialize(d)? {
            StringOrMap::String(name) => QueueTrigger { name: parse_name(name)?, batch_size: None },
            StringOrMap::Map(m) => QueueTrigger { name: m.name, batch_size: m.batch_size },
        })
    }
}

impl<'de> Deserialize<'de> for TopicTrigger {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match StringOrMap::<TopicTriggerMap>::deserialize(d)? {
            StringOrMap::String(name) => TopicTrigger { name: parse_name(name)?, },
            StringOrMap::Map(m) => TopicTrigger { name: m.name },
        })
    }
}

/// JSON Schema for a "string or mapping" value: `anyOf [string, M]`.
fn string_or_schema<M: JsonSchema>(generator: &mut SchemaGenerator, string: Schema, description: &str) -> Schema {
    let map = generator.subschema_for::<M>();
    json_schema!({ "description": description, "anyOf": [string, map] })
}

impl JsonSchema for ScheduleTrigger {
    fn schema_name() -> Cow<'static, str> {
        "ScheduleTrigger".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let string = json_schema!({ "type": "string", "pattern": "^(cron|rate)\\(.*\\)$" });
        string_or_schema::<ScheduleTriggerMap>(generator, string, "`cron(m h dom mon dow)` or `rate(N unit)`, or a mapping with `expression` and `timezone`")
    }
}

impl JsonSchema for QueueTrigger {
    fn schema_name() -> Cow<'static, str> {
        "QueueTrigger".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let string = generator.subschema_for::<Name>();
        string_or_schema::<QueueTriggerMap>(generator, string, "the queue's name, or a mapping with `name` and `batch_size`")
    }
}

impl JsonSchema for TopicTrigger {
    fn schema_name() -> Cow<'static, str> {
        "TopicTrigger".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let string = generator.subschema_for::<Name>();
        string_or_schema::<TopicTriggerMap>(generator, string, "the topic's name, or a mapping with `name`")
    }
}
