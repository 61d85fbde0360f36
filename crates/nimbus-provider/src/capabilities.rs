//! The capability data model and the embedded `providers/<id>/capabilities.toml` files.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use nimbus_graph::TriggerKind;
use nimbus_manifest::{ResourceKind, Runtime};
use serde::Deserialize;

use crate::ProviderId;

/// What one provider can do, and its documented limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// `aws`, `gcp`, `azure` or `local`.
    pub id: String,
    /// A human name (`AWS Lambda`).
    pub name: String,
    /// Which schedule syntax the provider speaks (`aws`, `gcp`, `azure`, `local`).
    pub schedule_format: String,
    /// Neutral runtime id → the provider's runtime and its support dates; every neutral runtime
    /// has a row (one with `unsupported` says why the provider does not offer it).
    pub runtimes: BTreeMap<String, RuntimeRow>,
    /// Memory limits.
    pub memory: MemoryLimits,
    /// Longest timeout in seconds per trigger kind (`http`, `queue`, ...), and `default`.
    pub timeout: BTreeMap<String, u64>,
    /// Concurrency limits.
    pub concurrency: ConcurrencyLimits,
    /// Supported trigger kinds; a missing row means unsupported.
    pub triggers: BTreeMap<String, TriggerCapability>,
    /// Supported resource kinds; a missing row means unsupported.
    pub resources: BTreeMap<String, ResourceCapability>,
    /// Package size limits, when the provider documents them.
    pub package: Option<PackageLimits>,
    /// Lengths of free text the manifest passes through, where the provider limits them.
    #[serde(default)]
    pub text: TextLimits,
    /// Deployment settings (`providers.<id>.<key>`) by key.
    #[serde(default)]
    pub settings: BTreeMap<String, SettingCapability>,
    /// The provider's secret store.
    pub secrets: SecretsCapability,
    /// How `permissions.<id>` grants reach a function's identity; unset: the provider has no
    /// identities to grant to (the local runtime), so such blocks are not asked for.
    #[serde(default)]
    pub permissions: Option<PermissionsCapability>,
    /// Limits of the settings under a function's `<id>:` block (and `defaults.<id>`).
    #[serde(default)]
    pub function_settings: FunctionSettingsCapability,
    /// How `nimbus queue …` and `nimbus topic publish` work on this provider.
    pub queue_tools: QueueToolsCapability,
    /// The platform's log lines that tell an invocation's outcome (none for `local`, whose
    /// records carry it).
    #[serde(default)]
    pub logs: crate::log_outcomes::LogsCapability,
}

/// How the queue and topic tools reach the provider's own queues (`[queue_tools]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueToolsCapability {
    /// The native queue service (`Amazon SQS`).
    pub service: String,
    /// How `peek` reads messages and what it leaves changed, printed with every peek.
    pub peek: String,
    /// Why the queue itself (not its dead-letter queue) cannot be peeked while a function
    /// consumes it; unset: it can.
    #[serde(default)]
    pub peek_consumed: Option<String>,
    /// How `redrive` moves dead-lettered messages back.
    pub redrive: String,
    /// How `purge` empties a queue.
    pub purge: String,
    /// Why `topic publish` is not available here; unset: it is.
    #[serde(default)]
    pub publish_unsupported: Option<String>,
    /// Why messages cannot carry attributes (`--attr`) here; unset: they can.
    #[serde(default)]
    pub attributes_unsupported: Option<String>,
    /// The most messages one `peek` returns, where the provider caps it.
    #[serde(default)]
    pub peek_max: Option<u32>,
}

/// How extra permissions are granted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsCapability {
    /// The native mechanism.
    pub native: String,
    /// Built-in role names and their ids, for providers that assign roles by id (Azure).
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
}

impl PermissionsCapability {
    /// The id of a role given by name (case-insensitively) or by id (a GUID, returned as is).
    pub fn role_id<'a>(&'a self, role: &'a str) -> Option<&'a str> {
        if is_guid(role) {
            return Some(role);
        }
        self.roles
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(role))
            .map(|(_, id)| id.as_str())
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hex digits.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Limits of the per-provider function settings; an unset row means the setting is not offered.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSettingsCapability {
    /// `architecture`: the instruction sets offered.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// `reserved_concurrency`.
    pub reserved_concurrency: Option<Range>,
    /// `vpc.subnet_ids`: most subnets.
    pub vpc_subnets: Option<usize>,
    /// `vpc.security_group_ids`: most security groups.
    pub vpc_security_groups: Option<usize>,
    /// `min_instances`.
    pub min_instances: Option<Range>,
    /// `always_ready`.
    pub always_ready: Option<Range>,
    /// Why `always_ready` cannot be had, when the provider's plan has no such setting.
    pub always_ready_unsupported: Option<String>,
}

/// Where a provider keeps secret values, and its limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsCapability {
    /// The store's name (`AWS Secrets Manager`).
    pub store: String,
    /// Whether this version maps secrets to it (deploys functions that reference them).
    pub supported: bool,
    /// The largest value it takes, in bytes.
    pub max_value_bytes: usize,
    /// Why the limit is what it is, when it is not the store's own.
    #[serde(default)]
    pub limit_note: Option<String>,
    /// When running instances see a value set again (`secret set`'s note and the README).
    #[serde(default)]
    pub rotation: Option<String>,
    /// Whether `nimbus secret set --restart` can restart the functions that read the secret.
    #[serde(default)]
    pub restart: bool,
}

/// A deployment setting, `providers.<id>.<key>`, and where else deploy reads it from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingCapability {
    /// Deploy refuses to run without it (so `validate -p <id>` refuses too).
    #[serde(default)]
    pub required: bool,
    /// Environment variables read, in order, when the manifest leaves it unset.
    #[serde(default)]
    pub env: Vec<String>,
    /// A value to show in the lines to add.
    pub example: String,
    /// What deploy does without it, for a setting that is not required (said in a warning).
    pub missing: Option<String>,
}

/// Longest free text the provider accepts, in characters; no limit when unset.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextLimits {
    /// A function's `description`.
    pub description: Option<usize>,
    /// The key of a tag in `providers.<id>.tags`.
    pub tag_key: Option<usize>,
    /// The value of a tag in `providers.<id>.tags`.
    pub tag_value: Option<usize>,
}

/// One neutral runtime on one provider: its id there and the dates the provider documents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeRow {
    /// The provider's runtime id (`nodejs22.x`, `python312`, `node|22`); unset when unsupported.
    pub id: Option<String>,
    /// The day the provider ends support (`YYYY-MM-DD`): from then on Nimbus refuses the runtime.
    pub deprecated: Option<String>,
    /// The day the provider stops creating (or updating) functions on it, when it says so.
    pub blocked: Option<String>,
    /// Why the provider does not offer this runtime at all.
    pub unsupported: Option<String>,
}

/// Whether a runtime can be used on a provider on a given day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeSupport<'a> {
    /// Supported, under this provider id.
    Supported(&'a str),
    /// The provider's support ended on `deprecated` (and new functions are blocked from `blocked`).
    Retired {
        /// The provider's runtime id.
        id: &'a str,
        /// When support ended.
        deprecated: &'a str,
        /// When creating functions on it stopped (or stops), if the provider says.
        blocked: Option<&'a str>,
    },
    /// Never offered; why.
    Unsupported(&'a str),
}

/// Today's date in UTC as `YYYY-MM-DD` (the form the capability files write dates in, so that
/// dates compare as strings).
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    civil_date((secs / 86_400) as i64)
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Largest deployment package the provider accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageLimits {
    /// Zipped size, in MB (10^6 bytes).
    pub max_zipped_mb: Option<u64>,
    /// Unzipped size, in MB (10^6 bytes).
    pub max_unzipped_mb: Option<u64>,
    /// How the client libraries the provider's shim declares (`providers/<id>/shims/python/
    /// requirements.txt`, `.../node/package.json`) reach a package: `vendor` (the default:
    /// installed into the zip with the function's own dependencies) or `list` (written into the
    /// zip's root dependency file for the platform's build to install).
    #[serde(default)]
    pub shim_deps: ShimDeps,
    /// Which of those client libraries a function needs, by name as the dependency files write
    /// them (pip and npm names in one table): `always`; `uses` when it uses any resource; and per
    /// resource kind it uses (`table`, `queue`, `topic`, `bucket`). Without this table every
    /// declared library goes to every function.
    #[serde(default)]
    pub libraries: Option<BTreeMap<String, Vec<String>>>,
}

impl PackageLimits {
    /// The names of the shim libraries a function using resources of `kinds` needs, or `None`
    /// when the provider does not say (then it needs them all).
    pub fn libraries_for(
        &self,
        kinds: impl IntoIterator<Item = ResourceKind>,
    ) -> Option<std::collections::BTreeSet<&str>> {
        let table = self.libraries.as_ref()?;
        let mut keys: Vec<&str> = vec!["always"];
        let kinds: Vec<ResourceKind> = kinds.into_iter().collect();
        if !kinds.is_empty() {
            keys.push("uses");
        }
        keys.extend(kinds.iter().map(|k| k.as_str()));
        Some(
            keys.iter()
                .filter_map(|k| table.get(*k))
                .flatten()
                .map(String::as_str)
                .collect(),
        )
    }
}

/// How a provider's shim libraries reach a package.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShimDeps {
    /// Installed into the zip, with the function's own dependencies.
    #[default]
    Vendor,
    /// Listed in the zip's root dependency file; the platform's build installs them.
    List,
}

/// Memory a function may ask for, in MiB.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryLimits {
    /// Smallest.
    pub min: u32,
    /// Largest.
    pub max: u32,
    /// Discrete instance sizes; a function gets the smallest one that holds its memory.
    #[serde(default)]
    pub sizes: Vec<u32>,
}

/// Concurrency limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyLimits {
    /// Most concurrent invocations (instances) of one function.
    pub max: u32,
}

/// How the provider implements a trigger kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerCapability {
    /// The native mechanism.
    pub native: String,
    /// Largest batch per invocation, for batched triggers.
    pub max_batch: Option<u32>,
    /// Why batches are limited, when a larger `batch_size` is accepted but has no effect.
    pub batch_note: Option<String>,
    /// Supported events (bucket, table triggers); all when unset.
    pub events: Option<Vec<String>>,
    /// Supported HTTP auth modes.
    pub auth: Option<Vec<String>>,
    /// The only header `api_key` auth can read the key from, when the provider fixes it.
    pub api_key_header: Option<String>,
    /// The only time zones schedules may use, when the provider limits them.
    pub timezones: Option<Vec<String>>,
    /// Why the provider cannot run this trigger kind at all (the row documents the gap).
    pub unsupported: Option<String>,
    /// Set when a function with this trigger can have no trigger of another kind: why.
    pub alone: Option<String>,
    /// HTTP: how the API is served on a custom domain (`http.domain`).
    pub domain: Option<crate::external::DomainCapability>,
    /// HTTP: how the platform answers cross-origin requests; no CORS at all when unset.
    pub cors: Option<CorsCapability>,
}

/// How a provider implements CORS (`[triggers.http.cors]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsCapability {
    /// The native mechanism.
    pub native: String,
    /// How far one CORS configuration reaches.
    pub scope: CorsScope,
    /// Why, and what to do instead, when routes in one scope differ.
    pub scope_note: Option<String>,
    /// Set when routes sharing a path must share their CORS too: why.
    pub per_path: Option<String>,
    /// Whether `scheme://*.domain` origins can be expressed.
    pub wildcard_subdomains: bool,
    /// Why not, when they cannot.
    pub wildcard_note: Option<String>,
    /// Set when preflights are answered for any method and request header (and `max_age`,
    /// `expose_headers` are not sent): what the platform does instead (documentation: the
    /// configuration-level tests evaluate requests with it).
    pub reflects: Option<String>,
}

/// How far one CORS configuration reaches on a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorsScope {
    /// One for the whole API (API Gateway HTTP API).
    Api,
    /// One per function (a Function App per function; the GCP shim per function).
    Function,
    /// One per route (the local gateway).
    Route,
}

/// How the provider implements a resource kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceCapability {
    /// The native service.
    pub native: String,
    /// Queues: the visibility timeout the provider allows, in seconds.
    pub visibility_timeout: Option<Range>,
    /// Queues: the retention the provider allows, in seconds.
    pub retention: Option<Range>,
    /// Queues: the `dead_letter.max_receives` the provider allows.
    pub max_receives: Option<Range>,
    /// A resource of this kind that already exists (`existing.<provider>`); unset for a provider
    /// without identifiers of its own (the local runtime emulates an existing resource).
    pub existing: Option<crate::external::ExistingCapability>,
}

/// An inclusive range of allowed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Smallest.
    pub min: u64,
    /// Largest.
    pub max: u64,
}

impl Range {
    /// Whether `v` is in the range.
    pub fn contains(&self, v: u64) -> bool {
        (self.min..=self.max).contains(&v)
    }
}

impl Capabilities {
    /// The provider's id for a neutral runtime, if it offers it (retired or not: see
    /// [`runtime_support`](Self::runtime_support)).
    pub fn runtime(&self, runtime: Runtime) -> Option<&str> {
        self.runtimes.get(runtime.id())?.id.as_deref()
    }

    /// Whether `runtime` can be used on `today` (`YYYY-MM-DD`).
    pub fn runtime_support(&self, runtime: Runtime, today: &str) -> RuntimeSupport<'_> {
        let Some(row) = self.runtimes.get(runtime.id()) else {
            return RuntimeSupport::Unsupported("the provider has no such runtime");
        };
        match (&row.id, &row.deprecated) {
            (None, _) => RuntimeSupport::Unsupported(
                row.unsupported
                    .as_deref()
                    .unwrap_or("the provider has no such runtime"),
            ),
            (Some(id), Some(deprecated)) if today >= deprecated.as_str() => {
                RuntimeSupport::Retired {
                    id,
                    deprecated,
                    blocked: row.blocked.as_deref(),
                }
            }
            (Some(id), _) => RuntimeSupport::Supported(id),
        }
    }

    /// Longest timeout, in seconds, for a trigger kind (`None`: the function has no trigger).
    pub fn max_timeout_secs(&self, kind: Option<TriggerKind>) -> u64 {
        let key = kind.map(|k| k.as_str()).unwrap_or("default");
        self.timeout
            .get(key)
            .or_else(|| self.timeout.get("default"))
            .copied()
            .unwrap_or(u64::MAX)
    }

    /// How the provider implements a trigger kind, if it does.
    pub fn trigger(&self, kind: TriggerKind) -> Option<&TriggerCapability> {
        self.triggers.get(kind.as_str())
    }

    /// How the provider implements a resource kind, if it does.
    pub fn resource(&self, kind: ResourceKind) -> Option<&ResourceCapability> {
        self.resources.get(kind.as_str())
    }

    /// The memory a function asking for `mb` actually gets (the instance size on providers
    /// with discrete sizes), or `None` when it is out of range.
    pub fn effective_memory(&self, mb: u32) -> Option<u32> {
        if mb < self.memory.min || mb > self.memory.max {
            return None;
        }
        if self.memory.sizes.is_empty() {
            return Some(mb);
        }
        self.memory.sizes.iter().copied().find(|&s| s >= mb)
    }
}

fn source(id: ProviderId) -> &'static str {
    match id {
        ProviderId::Local => include_str!("../../../providers/local/capabilities.toml"),
        ProviderId::Aws => include_str!("../../../providers/aws/capabilities.toml"),
        ProviderId::Gcp => include_str!("../../../providers/gcp/capabilities.toml"),
        ProviderId::Azure => include_str!("../../../providers/azure/capabilities.toml"),
    }
}

/// The embedded capabilities of `id`, parsed once.
pub(crate) fn get(id: ProviderId) -> &'static Capabilities {
    static CACHE: OnceLock<Vec<Capabilities>> = OnceLock::new();
    let all = CACHE.get_or_init(|| {
        ProviderId::ALL
            .iter()
            .map(|p| {
                toml::from_str(source(*p)).unwrap_or_else(|e| {
                    panic!("embedded providers/{p}/capabilities.toml is invalid: {e}")
                })
            })
            .collect()
    });
    &all[ProviderId::ALL
        .iter()
        .position(|p| *p == id)
        .expect("listed")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_row_for_every_provider() {
        for p in ProviderId::ALL {
            let caps = p.capabilities();
            assert_eq!(caps.id, p.as_str());
            for kind in TriggerKind::ALL {
                assert!(
                    caps.trigger(kind).is_some(),
                    "{p}: no row for trigger `{kind}`"
                );
                assert!(
                    caps.timeout.contains_key(kind.as_str()),
                    "{p}: no timeout for trigger `{kind}`"
                );
            }
            assert!(
                caps.timeout.contains_key("default"),
                "{p}: no default timeout"
            );
            for kind in ResourceKind::ALL {
                assert!(
                    caps.resource(kind).is_some(),
                    "{p}: no row for resource `{kind}`"
                );
            }
            for runtime in Runtime::ALL {
                let row = caps.runtimes.get(runtime.id());
                let row = row.unwrap_or_else(|| panic!("{p}: no row for runtime `{runtime}`"));
                assert!(
                    row.id.is_some() != row.unsupported.is_some(),
                    "{p}: runtime `{runtime}` needs exactly one of `id` and `unsupported`"
                );
                for date in [&row.deprecated, &row.blocked].into_iter().flatten() {
                    let ok = date.len() == 10
                        && date.chars().enumerate().all(|(i, c)| match i {
                            4 | 7 => c == '-',
                            _ => c.is_ascii_digit(),
                        });
                    assert!(ok, "{p}: `{runtime}` date `{date}` is not YYYY-MM-DD");
                }
                assert!(
                    row.id.is_none() || row.deprecated.is_some(),
                    "{p}: `{runtime}` has no `deprecated` date (every provider documents one)"
                );
            }
            for id in caps.runtimes.keys() {
                assert!(
                    Runtime::ALL.iter().any(|r| r.id() == id),
                    "{p}: unknown neutral runtime `{id}`"
                );
            }
            for (kind, t) in &caps.triggers {
                assert!(
                    TriggerKind::ALL.iter().any(|k| k.as_str() == kind),
                    "{p}: unknown trigger `{kind}`"
                );
                for e in t.events.iter().flatten() {
                    let known = ["created", "deleted"].contains(&e.as_str())
                        || ["insert", "modify", "remove"].contains(&e.as_str());
                    assert!(known, "{p}: unknown event `{e}`");
                }
            }
            assert!(caps.memory.min <= caps.memory.max);
            let libraries = caps.package.as_ref().and_then(|p| p.libraries.as_ref());
            for key in libraries.into_iter().flat_map(|l| l.keys()) {
                let known = ["always", "uses"].contains(&key.as_str())
                    || ResourceKind::ALL.iter().any(|k| k.as_str() == key);
                assert!(known, "{p}: unknown `package.libraries` key `{key}`");
            }
        }
    }

    /// The day the runtime dates were last checked against the providers' documentation.
    const CHECKED: &str = "2026-12-07";

    #[test]
    fn retired_runtimes_are_dated_and_the_default_is_current_everywhere() {
        let aws = ProviderId::Aws.capabilities();
        assert_eq!(
            aws.runtime_support(Runtime::Nodejs20, CHECKED),
            RuntimeSupport::Retired {
                id: "nodejs20.x",
                deprecated: "2026-04-30",
                blocked: Some("2026-06-01"),
            }
        );
        assert_eq!(
            aws.runtime_support(Runtime::Nodejs20, "2026-04-29"),
            RuntimeSupport::Supported("nodejs20.x")
        );
        assert!(matches!(
            ProviderId::Azure
                .capabilities()
                .runtime_support(Runtime::Nodejs24, CHECKED),
            RuntimeSupport::Unsupported(why) if why.contains("preview")
        ));
        // The defaults: no provider has deprecated them (cfn-lint W2531 flags nodejs20.x).
        for language in [
            nimbus_manifest::Language::Python,
            nimbus_manifest::Language::Node,
        ] {
            let default = Runtime::default_for(language);
            for p in ProviderId::ALL {
                assert!(
                    matches!(
                        p.capabilities().runtime_support(default, CHECKED),
                        RuntimeSupport::Supported(_)
                    ),
                    "{p} does not fully support the default runtime `{default}`"
                );
            }
        }
    }

    #[test]
    fn dates_are_civil_days() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_429), "2025-12-07");
        assert_eq!(civil_date(19_782), "2024-02-29");
        assert_eq!(today().len(), 10);
    }

    #[test]
    fn documented_limits() {
        let aws = ProviderId::Aws.capabilities();
        assert_eq!((aws.memory.min, aws.memory.max), (128, 10240));
        assert_eq!(aws.max_timeout_secs(Some(TriggerKind::Queue)), 900);
        assert_eq!(aws.runtime(Runtime::Nodejs22), Some("nodejs22.x"));
        assert_eq!(aws.runtime(Runtime::Nodejs24), Some("nodejs24.x"));
        let gcp = ProviderId::Gcp.capabilities();
        assert_eq!(gcp.max_timeout_secs(Some(TriggerKind::Topic)), 540);
        assert_eq!(gcp.max_timeout_secs(Some(TriggerKind::Http)), 3600);
        let azure = ProviderId::Azure.capabilities();
        assert_eq!(azure.max_timeout_secs(Some(TriggerKind::Http)), 230);
        assert_eq!(azure.effective_memory(256), Some(512));
        assert_eq!(azure.effective_memory(2048), Some(2048));
        assert_eq!(azure.effective_memory(3000), Some(4096));
        // Secret value limits: Secrets Manager 64 KiB, Secret Manager 64 KiB, Key Vault 25 KiB;
        // local is held to the smallest.
        assert_eq!(aws.secrets.max_value_bytes, 64 * 1024);
        assert_eq!(gcp.secrets.max_value_bytes, 64 * 1024);
        assert_eq!(azure.secrets.max_value_bytes, 25 * 1024);
        let local = ProviderId::Local.capabilities();
        assert_eq!(local.secrets.max_value_bytes, 25 * 1024);
        assert_eq!(ProviderId::with_secrets(), "local, aws, gcp, azure");
        // `secret set --restart`: local restarts the readers; GCP says when instances see a new
        // value instead.
        assert!(local.secrets.restart && local.secrets.rotation.is_some());
        assert!(
            !gcp.secrets.restart
                && gcp
                    .secrets
                    .rotation
                    .as_deref()
                    .is_some_and(|r| r.contains("latest"))
        );
        assert_eq!(azure.effective_memory(8192), None);
        assert_eq!(aws.text.description, Some(256));
        assert_eq!(
            (aws.text.tag_key, aws.text.tag_value),
            (Some(128), Some(256))
        );
    }
}
