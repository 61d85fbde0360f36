//! The mapping of neutral functions to Function Apps on the Flex Consumption plan (Linux).
//!
//! **One Function App per neutral function.** Everything Azure lets a deployer set lives on the
//! app, not on the function inside it: the instance memory (`instanceMemoryMB`), the timeout
//! (`functionTimeout` in `host.json`), the scale limit (`maximumInstanceCount`) and per-instance
//! concurrency, the identity the code runs as, the worker process (one per instance, sharing one
//! `sys.modules` or module cache) and the package with its dependencies. Grouping several
//! neutral functions into one app would make some of these the union or the maximum of the
//! group's — the identity would hold every member's grants, and two functions whose dependencies
//! differ could not share a package. Giving each function its own app keeps all of them exactly
//! the function's own, at no cost while idle (Flex Consumption bills executions and memory time,
//! not apps). The price: HTTP routes of different functions answer on different host names
//! (`https://<app>.azurewebsites.net/<path>`); `nimbus info` lists each route's full URL.
//!
//! Per app:
//! - **runtime**: `python`/`node` and the version, from `providers/azure/capabilities.toml`;
//! - **memory**: the smallest Flex instance size (512, 2048, 4096 MB) that holds the function's;
//! - **timeout**: `functionTimeout` = the function's timeout (HTTP responses are also cut by the
//!   front end at 230 s, which `nimbus validate` enforces);
//! - **scaling**: without `concurrency.max` the platform's defaults apply; with it, each
//!   instance runs one invocation at a time (HTTP `perInstanceConcurrency: 1`, queue
//!   `batchSize: 1` with `newBatchThreshold: 0`, Service Bus `maxConcurrentCalls: 1`) and
//!   `maximumInstanceCount` is the limit, so at most that many run at once;
//! - **bindings**: one Azure function per trigger ([`Binding`]); a `table` trigger is the Cosmos DB
//!   trigger on the table's container (its change feed, with the leases of every function in one
//!   lease container, each under its own prefix).

use nimbus_graph::{AppGraph, FunctionNode, ResourceSpec, TriggerSpec};
use nimbus_manifest::{Auth, BucketEvent, HttpMethod, Language, ResourceKind};
use nimbus_provider::ProviderId;
use serde_json::Value;

use crate::error::AzureError;
use crate::{entry, env, names};

/// Where the app goes: from `providers.azure` in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureSettings {
    /// The Azure region (`westeurope`); `None` lets the template use the resource group's.
    pub location: Option<String>,
    /// The resource group.
    pub resource_group: String,
    /// The subscription id, when the manifest names it (the environment may give it instead).
    pub subscription: Option<String>,
}

impl AzureSettings {
    /// The settings of `graph` (`providers.azure`), with the conventional resource group
    /// `{service}-{stage}` when none is named.
    pub fn of(graph: &AppGraph) -> Self {
        let azure = graph.settings.get("azure");
        let text = |key: &str| {
            azure
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        AzureSettings {
            location: text("location"),
            resource_group: text("resource_group")
                .unwrap_or_else(|| names::resource_group(&graph.service, &graph.stage)),
            subscription: text("subscription"),
        }
    }
}

/// What one Function App runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// The neutral function.
    pub function: String,
    /// Python or Node.
    pub language: Language,
    /// `python` or `node` (Flex `functionAppConfig.runtime.name`).
    pub runtime_name: String,
    /// `3.12`, `20`, … (Flex `functionAppConfig.runtime.version`).
    pub runtime_version: String,
    /// The Flex instance memory size, MB.
    pub instance_memory_mb: u32,
    /// `functionTimeout`, seconds.
    pub timeout_s: u64,
    /// `maximumInstanceCount` and one invocation per instance, when the manifest limits
    /// concurrency.
    pub max_instances: Option<u32>,
    /// Always-ready instances per trigger group (`azure.always_ready`).
    pub always_ready: Option<u32>,
    /// The handler file (relative to the package root), e.g. `payments/charge.js`.
    pub handler_file: String,
    /// One Azure function per trigger.
    pub bindings: Vec<Binding>,
    /// The app's CORS (`siteConfig.cors`), when its routes have one (the provider check
    /// refused routes of one function whose CORS differs).
    pub cors: Option<AppCors>,
}

/// App Service CORS (`siteConfig.cors`): origins and credentials only; the platform answers
/// preflights for any method and request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCors {
    /// `allowedOrigins`: exact origins, or `*`.
    pub allowed_origins: Vec<String>,
    /// `supportCredentials`.
    pub support_credentials: bool,
}

/// One Azure function of an app: a trigger and how it reaches the neutral handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Azure function name: the trigger id's tail, `place-order-http-0`.
    pub name: String,
    /// The trigger.
    pub trigger: Trigger,
}

/// An Azure trigger binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// `httpTrigger`.
    Http {
        /// `GET`, …; `None` for any method.
        method: Option<String>,
        /// The neutral path (`/orders/{id}`).
        path: String,
        /// The Azure route (`orders/{id}`, `files/{*rest}`).
        route: String,
        /// `anonymous` or `function`.
        auth_level: &'static str,
    },
    /// `timerTrigger`.
    Timer {
        /// The neutral schedule trigger name (`nightly-report-schedule-0`).
        schedule: String,
        /// The NCRONTAB expression (six fields, UTC).
        ncrontab: String,
    },
    /// `queueTrigger` on a storage queue.
    Queue {
        /// The neutral queue.
        resource: String,
        /// The storage queue.
        queue: String,
        /// Messages the host fetches at once (`batchSize`, at most 32).
        batch_size: u32,
    },
    /// `serviceBusTrigger` on a topic subscription.
    Topic {
        /// The neutral topic.
        resource: String,
        /// The Service Bus topic.
        topic: String,
        /// The function's subscription.
        subscription: String,
        /// The connection's app-setting prefix: the deployment's namespace, or the existing
        /// topic's own (`NIMBUS_SERVICEBUS_<R>`).
        connection: String,
    },
    /// `cosmosDBTrigger` on a table's container (its change feed).
    Table {
        /// The neutral table.
        resource: String,
        /// The Cosmos DB database.
        database: String,
        /// The table's container.
        container: String,
        /// The function's prefix in the lease container.
        lease_prefix: String,
        /// Documents per invocation at most (`maxItemsPerInvocation`).
        batch_size: u32,
        /// The connection's app-setting prefix: the deployment's account, or the existing
        /// container's own (`NIMBUS_COSMOS_<R>`).
        connection: String,
        /// On an existing container: the lease container's connection and database (the
        /// deployment's own account, `leaseConnection`/`leaseDatabaseName`), so that nothing is
        /// written to the owner's account.
        lease: Option<(String, String)>,
    },
    /// `blobTrigger` with the Event Grid source.
    Blob {
        /// The neutral bucket.
        resource: String,
        /// The blob container.
        container: String,
        /// Key prefix filter.
        prefix: String,
        /// Key suffix filter.
        suffix: String,
        /// The trigger's index among the function's triggers (names its Event Grid subscription).
        index: usize,
    },
}

impl Trigger {
    /// The Azure binding type.
    pub fn binding_type(&self) -> &'static str {
        match self {
            Trigger::Http { .. } => "httpTrigger",
            Trigger::Timer { .. } => "timerTrigger",
            Trigger::Queue { .. } => "queueTrigger",
            Trigger::Topic { .. } => "serviceBusTrigger",
            Trigger::Blob { .. } => "blobTrigger",
            Trigger::Table { .. } => "cosmosDBTrigger",
        }
    }
}

/// The apps of `graph`: one per function, by function name.
pub fn apps(graph: &AppGraph) -> Result<Vec<App>, AzureError> {
    if graph.provider != "azure" {
        return Err(AzureError::WrongProvider {
            what: "app graph",
            provider: graph.provider.clone(),
        });
    }
    graph.functions.values().map(|f| app(graph, f)).collect()
}

fn app(graph: &AppGraph, f: &FunctionNode) -> Result<App, AzureError> {
    let caps = ProviderId::Azure.capabilities();
    let unsupported = |what: String| AzureError::Unsupported {
        function: f.name.clone(),
        what,
    };
    let runtime = caps.runtime(f.runtime).ok_or_else(|| {
        unsupported(format!(
            "Azure Functions has no runtime for `{}`",
            f.runtime
        ))
    })?;
    let (runtime_name, runtime_version) = runtime.split_once('|').unwrap_or((runtime, ""));
    let instance_memory_mb = caps.effective_memory(f.memory_mb).ok_or_else(|| {
        unsupported(format!(
            "{} MiB is more than the largest Flex Consumption instance",
            f.memory_mb
        ))
    })?;
    let mut bindings = Vec::new();
    for (index, t) in f.triggers.iter().enumerate() {
        let name = t.id.trim_start_matches("trigger:").replace('/', "-");
        let trigger = match &t.spec {
            TriggerSpec::Http {
                method, path, auth, ..
            } => Trigger::Http {
                method: (*method != HttpMethod::Any).then(|| method.to_string()),
                path: path.clone(),
                route: route(path),
                auth_level: match auth {
                    Auth::None => "anonymous",
                    Auth::ApiKey(key) if key.header.eq_ignore_ascii_case(FUNCTION_KEY_HEADER) => {
                        "function"
                    }
                    Auth::ApiKey(key) => {
                        return Err(unsupported(format!(
                            "`api_key` auth on Azure reads the key from the `{FUNCTION_KEY_HEADER}` header, not `{}`",
                            key.header
                        )));
                    }
                    Auth::Jwt(_) => {
                        return Err(unsupported(
                            "`jwt` auth is not offered on Azure (App Service authentication is per app, not per route)".into(),
                        ));
                    }
                },
            },
            TriggerSpec::Schedule {
                expression,
                timezone,
            } => {
                let schedule_error = |reason: String| AzureError::Schedule {
                    function: f.name.clone(),
                    expression: expression.clone(),
                    reason,
                };
                if timezone != "UTC" {
                    return Err(schedule_error(format!(
                        "Linux Function Apps run timers in UTC only, not `{timezone}`"
                    )));
                }
                let parsed = nimbus_schedule::parse(expression)
                    .map_err(|e| schedule_error(e.to_string()))?;
                let ncrontab = nimbus_schedule::to_azure(&parsed)
                    .map_err(|e| schedule_error(e.reason.clone()))?;
                Trigger::Timer {
                    schedule: name.clone(),
                    ncrontab,
                }
            }
            TriggerSpec::Queue {
                resource,
                batch_size,
            } => Trigger::Queue {
                resource: resource.clone(),
                queue: names::queue(resource),
                batch_size: (*batch_size).clamp(1, MAX_QUEUE_BATCH),
            },
            TriggerSpec::Topic { resource } => match existing(graph, ResourceKind::Topic, resource)
            {
                Some(parts) => Trigger::Topic {
                    resource: resource.clone(),
                    topic: parts.get("name").cloned().unwrap_or_default(),
                    subscription: names::existing_subscription(
                        &graph.service,
                        &graph.stage,
                        &f.name,
                    ),
                    connection: env::existing_connection(entry::SERVICE_BUS_CONNECTION, resource),
                },
                None => Trigger::Topic {
                    resource: resource.clone(),
                    topic: names::topic(resource),
                    subscription: names::subscription(&f.name),
                    connection: entry::SERVICE_BUS_CONNECTION.to_string(),
                },
            },
            TriggerSpec::Bucket {
                resource,
                events,
                prefix,
                suffix,
            } => {
                if events.contains(&BucketEvent::Deleted) {
                    return Err(unsupported(
                        "bucket `deleted` events: the Event Grid blob trigger delivers created blobs only".into(),
                    ));
                }
                Trigger::Blob {
                    resource: resource.clone(),
                    container: names::container(resource),
                    prefix: prefix.clone().unwrap_or_default(),
                    suffix: suffix.clone().unwrap_or_default(),
                    index,
                }
            }
            TriggerSpec::Table {
                resource,
                batch_size,
                ..
            } => match existing(graph, ResourceKind::Table, resource) {
                Some(parts) => Trigger::Table {
                    resource: resource.clone(),
                    database: parts.get("database").cloned().unwrap_or_default(),
                    container: parts.get("name").cloned().unwrap_or_default(),
                    lease_prefix: names::lease_prefix(&f.name),
                    batch_size: (*batch_size).max(1),
                    connection: env::existing_connection(entry::COSMOS_CONNECTION, resource),
                    lease: Some((
                        entry::COSMOS_CONNECTION.to_string(),
                        names::cosmos_database(&graph.service),
                    )),
                },
                None => Trigger::Table {
                    resource: resource.clone(),
                    database: names::cosmos_database(&graph.service),
                    container: names::table(resource),
                    lease_prefix: names::lease_prefix(&f.name),
                    batch_size: (*batch_size).max(1),
                    connection: entry::COSMOS_CONNECTION.to_string(),
                    lease: None,
                },
            },
        };
        bindings.push(Binding { name, trigger });
    }
    order_http_bindings(f, &mut bindings);
    Ok(App {
        function: f.name.clone(),
        language: f.language,
        runtime_name: runtime_name.to_string(),
        runtime_version: runtime_version.to_string(),
        instance_memory_mb,
        timeout_s: f.timeout_ms.div_ceil(1000).max(1),
        max_instances: f.concurrency_set.then_some(f.concurrency),
        always_ready: f.azure.always_ready.as_ref().map(|n| n.value),
        handler_file: f.handler_file.clone(),
        bindings,
        cors: f.triggers.iter().find_map(|t| match &t.spec {
            TriggerSpec::Http { cors: Some(c), .. } => Some(AppCors {
                allowed_origins: c.origins.clone(),
                support_credentials: c.credentials,
            }),
            _ => None,
        }),
    })
}

/// Names an app's HTTP bindings so that their alphabetical order is the neutral precedence.
///
/// The Functions host tries an app's routes in the alphabetical order of the functions' names,
/// not by ASP.NET Core's route precedence (azure-functions-host issues #3153 and #9876; the fix,
/// azure-webjobs-sdk-extensions PR #842, is not merged). When two of a function's routes can
/// match one path, each HTTP binding gets the prefix `r<rank>-` (rank in
/// `nimbus_manifest::routes::order_key` order), so `orders/new` is tried before `orders/{id}`,
/// `orders/{id}` before `orders/{*rest}`, and a `GET` before an `ANY` on the same path. Routes
/// that never compete keep their plain names.
/// The parts of the ARM id of `resource` when it is one of `kind` that already exists.
fn existing(
    graph: &AppGraph,
    kind: ResourceKind,
    resource: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    let r = graph.resources.get(resource)?;
    env::existing_parts(kind, r.existing.as_deref()?)
}

fn order_http_bindings(f: &FunctionNode, bindings: &mut [Binding]) {
    use nimbus_manifest::{RoutePath, routes};
    let mut http: Vec<(usize, HttpMethod, RoutePath)> = f
        .triggers
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match &t.spec {
            TriggerSpec::Http { method, path, .. } => {
                path.parse::<RoutePath>().ok().map(|p| (i, *method, p))
            }
            _ => None,
        })
        .collect();
    let overlapping = http
        .iter()
        .enumerate()
        .any(|(i, (_, _, a))| http[i + 1..].iter().any(|(_, _, b)| routes::overlap(a, b)));
    if !overlapping {
        return;
    }
    http.sort_by(|a, b| {
        routes::order_key(a.1, &a.2)
            .cmp(&routes::order_key(b.1, &b.2))
            .then(a.0.cmp(&b.0))
    });
    let width = http.len().to_string().len().max(2);
    for (rank, (index, _, _)) in http.iter().enumerate() {
        let b = &mut bindings[*index];
        b.name = format!("r{rank:0width$}-{}", b.name);
    }
}

/// The header Azure reads function keys from.
pub const FUNCTION_KEY_HEADER: &str = "x-functions-key";

/// A neutral path as an Azure route (no leading `/`; `{rest+}` becomes `{*rest}`).
pub fn route(path: &str) -> String {
    path.trim_start_matches('/')
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                Some(name) => format!("{{*{name}}}"),
                None => segment.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// `max_receives` of a queue: how many deliveries before the poison queue (Azure's default, 5,
/// when the manifest sets no dead letter: Azure always moves a message there eventually).
pub fn max_dequeue_count(graph: &AppGraph, queue: &str) -> u32 {
    match graph.resources.get(queue).map(|r| &r.spec) {
        Some(ResourceSpec::Queue {
            max_receives: Some(n),
            ..
        }) => *n,
        _ => DEFAULT_MAX_DEQUEUE_COUNT,
    }
}

/// The largest `batchSize` of the storage queue trigger.
pub const MAX_QUEUE_BATCH: u32 = 32;

/// Azure's default `maxDequeueCount`.
pub const DEFAULT_MAX_DEQUEUE_COUNT: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/orders"), "orders");
        assert_eq!(route("/orders/{id}"), "orders/{id}");
        assert_eq!(route("/files/{rest+}"), "files/{*rest}");
        assert_eq!(route("/"), "");
    }
}
