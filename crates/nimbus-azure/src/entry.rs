//! The files that make a function's package a Function App: the entry point in the Python v2
//! or Node.js v4 programming model, `host.json`, and (Node) the root `package.json`.
//!
//! The entry point registers one Azure function per trigger ([`crate::apps::Binding`]) and
//! calls the Azure shim's adapter (`providers/azure/shims/*/_nimbus/azure.*`), which turns the
//! native input into the neutral event and calls the neutral handler:
//!
//! | trigger | Python (`function_app.py`) | Node (`index.js`) | connection |
//! |---|---|---|---|
//! | http | `@app.route(route, methods, auth_level)` → `nimbus.http` | `app.http` | — |
//! | schedule | `@app.timer_trigger(schedule=<NCRONTAB>)` → `nimbus.timer(schedule=…)` | `app.timer` | — |
//! | queue | `@app.queue_trigger(queue_name)` → `nimbus.queue(resource=…)` | `app.storageQueue` | `NIMBUS_STORAGE` |
//! | topic | `@app.service_bus_topic_trigger(topic_name, subscription_name)` → `nimbus.service_bus(resource=…)` | `app.serviceBusTopic` | `NIMBUS_SERVICEBUS` |
//! | bucket | `@app.blob_trigger(path, source=EventGrid)` → `nimbus.blob(resource=…)` | `app.storageBlob` | `NIMBUS_STORAGE` |
//! | table | `@app.cosmos_db_trigger(database_name, container_name, lease_container_name, lease_container_prefix)` → `nimbus.cosmos(resource=…)` | `app.cosmosDB` | `NIMBUS_COSMOS` |
//!
//! Connections are identity-based: the app settings `NIMBUS_STORAGE__*`, `NIMBUS_SERVICEBUS__*`
//! and `NIMBUS_COSMOS__*` name the service URIs (the Cosmos DB account's `accountEndpoint`),
//! `managedidentity` and the client id of the app's user-assigned identity (see
//! [`crate::template`]). A table trigger retries a failed batch (exponential backoff, 4 s to
//! 15 min, 10 times), which the Cosmos DB trigger supports and without which the change feed
//! moves on past a failed batch.
//!
//! A trigger on a resource that already exists (`existing.azure`) connects through settings of
//! its own, `NIMBUS_SERVICEBUS_<R>__*` and `NIMBUS_COSMOS_<R>__*` (the owner's namespace or
//! account); a Cosmos DB trigger on one keeps its leases in the deployment's own account
//! (`leaseConnection` `NIMBUS_COSMOS`, `leaseDatabaseName` the deployment's database).
//!
//! `host.json` sets the route prefix to nothing (so paths match the manifest), the timeout, the
//! queue trigger's `batchSize` and `maxDequeueCount` (the manifest's `max_receives`; the poison
//! queue is the dead letter) and, when the manifest limits concurrency, one invocation per
//! instance. The same app always gives the same bytes.

use std::fmt::Write as _;

use nimbus_graph::AppGraph;
use nimbus_manifest::Language;
use serde_json::{Map, Value, json};

use crate::apps::{self, App, Trigger};

/// The storage connection's app-setting prefix.
pub const STORAGE_CONNECTION: &str = "NIMBUS_STORAGE";
/// The Service Bus connection's app-setting prefix.
pub const SERVICE_BUS_CONNECTION: &str = "NIMBUS_SERVICEBUS";
/// The Cosmos DB connection's app-setting prefix.
pub const COSMOS_CONNECTION: &str = "NIMBUS_COSMOS";
/// Retries of a failed Cosmos DB trigger batch.
pub const TABLE_RETRIES: u32 = 10;

/// The Python entry point's file name.
pub const PYTHON_ENTRY: &str = "function_app.py";
/// The Node entry point's file name.
pub const NODE_ENTRY: &str = "index.js";

/// A generated file of an app: its path in the package and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFile {
    /// Path in the package, `/`-separated.
    pub path: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// The generated files of `app`: the entry point and `host.json` (Node: also the root
/// `package.json`, which the package assembly merges with one the function ships).
pub fn files(graph: &AppGraph, app: &App) -> Vec<EntryFile> {
    let mut out = vec![EntryFile {
        path: "host.json".into(),
        bytes: pretty(&host_json(graph, app)),
    }];
    match app.language {
        Language::Python => out.push(EntryFile {
            path: PYTHON_ENTRY.into(),
            bytes: function_app_py(graph, app).into_bytes(),
        }),
        Language::Node => {
            out.push(EntryFile {
                path: NODE_ENTRY.into(),
                bytes: index_js(graph, app).into_bytes(),
            });
            out.push(EntryFile {
                path: "package.json".into(),
                bytes: pretty(&json!({
                    "name": format!("{}-{}-{}", graph.service, graph.stage, app.function),
                    "private": true,
                    "main": NODE_ENTRY,
                })),
            });
        }
    }
    out
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(v).expect("json");
    bytes.push(b'\n');
    bytes
}

/// `host.json` of `app`.
pub fn host_json(graph: &AppGraph, app: &App) -> Value {
    let mut extensions = Map::new();
    extensions.insert("http".into(), json!({ "routePrefix": "" }));
    let one_at_a_time = app.max_instances.is_some();
    if let Some((batch, resource)) = app.bindings.iter().find_map(|b| match &b.trigger {
        Trigger::Queue {
            batch_size,
            resource,
            ..
        } => Some((*batch_size, resource)),
        _ => None,
    }) {
        let mut queues = json!({
            "maxDequeueCount": apps::max_dequeue_count(graph, resource),
            "batchSize": if one_at_a_time { 1 } else { batch },
        });
        if one_at_a_time {
            queues["newBatchThreshold"] = json!(0);
        }
        extensions.insert("queues".into(), queues);
    }
    if one_at_a_time
        && app
            .bindings
            .iter()
            .any(|b| matches!(b.trigger, Trigger::Topic { .. }))
    {
        extensions.insert(
            "serviceBus".into(),
            json!({ "maxConcurrentCalls": 1, "maxConcurrentSessions": 1 }),
        );
    }
    json!({
        "version": "2.0",
        "functionTimeout": hms(app.timeout_s),
        "extensionBundle": {
            "id": "Microsoft.Azure.Functions.ExtensionBundle",
            "version": "[4.*, 5.0.0)",
        },
        "extensions": extensions,
        "logging": {
            "applicationInsights": { "samplingSettings": { "isEnabled": false } },
        },
    })
}

/// `hh:mm:ss` (hours may exceed 24 as Azure's `TimeSpan` parsing allows `d.hh:mm:ss`).
fn hms(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}.{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// A Python string literal.
fn py(s: &str) -> String {
    serde_json::to_string(s).expect("json")
}

/// A JavaScript string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).expect("json")
}

/// `place-order-http-0` → `place_order_http_0`.
fn ident(name: &str) -> String {
    name.replace('-', "_")
}

fn header(graph: &AppGraph, app: &App, comment: &str) -> String {
    format!(
        "{comment} Generated by `nimbus build -p azure` for function `{}` of {} (stage {}); do not edit.\n\
         {comment} Each trigger is one Azure function calling the neutral handler through the Nimbus shim.\n",
        app.function, graph.service, graph.stage
    )
}

/// The blob trigger's path: `container/prefix{name}suffix`.
fn blob_path(container: &str, prefix: &str, suffix: &str) -> String {
    // `{` and `}` delimit binding expressions in blob paths; doubling escapes them.
    let escape = |s: &str| s.replace('{', "{{").replace('}', "}}");
    format!("{container}/{}{{name}}{}", escape(prefix), escape(suffix))
}

/// `function_app.py` (Python v2 programming model).
pub fn function_app_py(graph: &AppGraph, app: &App) -> String {
    let mut s = header(graph, app, "#");
    s.push_str("import azure.functions as func\n\nfrom _nimbus import azure as nimbus\n\n");
    s.push_str("app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)\n");
    for b in &app.bindings {
        let f = ident(&b.name);
        s.push_str("\n\n");
        writeln!(s, "@app.function_name(name={})", py(&b.name)).unwrap();
        match &b.trigger {
            Trigger::Http {
                method,
                route,
                auth_level,
                ..
            } => {
                let methods = method
                    .as_ref()
                    .map(|m| format!(", methods=[{}]", py(m)))
                    .unwrap_or_default();
                let level = match *auth_level {
                    "function" => "FUNCTION",
                    _ => "ANONYMOUS",
                };
                writeln!(
                    s,
                    "@app.route(route={}{methods}, auth_level=func.AuthLevel.{level})",
                    py(route)
                )
                .unwrap();
                writeln!(
                    s,
                    "def {f}(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:\n    return nimbus.http(req, None, context)"
                )
                .unwrap();
            }
            Trigger::Timer { schedule, ncrontab } => {
                writeln!(
                    s,
                    "@app.timer_trigger(arg_name=\"timer\", schedule={}, run_on_startup=False, use_monitor=True)",
                    py(ncrontab)
                )
                .unwrap();
                writeln!(
                    s,
                    "def {f}(timer: func.TimerRequest, context: func.Context) -> None:\n    nimbus.timer(timer, None, context, schedule={})",
                    py(schedule)
                )
                .unwrap();
            }
            Trigger::Queue {
                resource, queue, ..
            } => {
                writeln!(
                    s,
                    "@app.queue_trigger(arg_name=\"msg\", queue_name={}, connection={})",
                    py(queue),
                    py(STORAGE_CONNECTION)
                )
                .unwrap();
                writeln!(
                    s,
                    "def {f}(msg: func.QueueMessage, context: func.Context) -> None:\n    nimbus.queue(msg, None, context, resource={})",
                    py(resource)
                )
                .unwrap();
            }
            Trigger::Topic {
                resource,
                topic,
                subscription,
                connection,
            } => {
                writeln!(
                    s,
                    "@app.service_bus_topic_trigger(arg_name=\"msg\", topic_name={}, subscription_name={}, connection={})",
                    py(topic),
                    py(subscription),
                    py(connection)
                )
                .unwrap();
                writeln!(
                    s,
                    "def {f}(msg: func.ServiceBusMessage, context: func.Context) -> None:\n    nimbus.service_bus(msg, None, context, resource={})",
                    py(resource)
                )
                .unwrap();
            }
            Trigger::Table {
                resource,
                database,
                container,
                lease_prefix,
                batch_size,
                connection,
                lease,
            } => {
                let lease_args = match lease {
                    Some((c, db)) => format!(
                        ", lease_connection={}, lease_database_name={}",
                        py(c),
                        py(db)
                    ),
                    None => String::new(),
                };
                writeln!(
                    s,
                    "@app.retry(strategy=\"exponential_backoff\", max_retry_count=\"{TABLE_RETRIES}\", minimum_interval=\"00:00:04\", maximum_interval=\"00:15:00\")"
                )
                .unwrap();
                writeln!(
                    s,
                    "@app.cosmos_db_trigger(arg_name=\"docs\", connection={}, database_name={}, container_name={}{lease_args}, lease_container_name={}, lease_container_prefix={}, create_lease_container_if_not_exists=False, max_items_per_invocation={batch_size})",
                    py(connection),
                    py(database),
                    py(container),
                    py(crate::names::LEASES_CONTAINER),
                    py(lease_prefix)
                )
                .unwrap();
                writeln!(
                    s,
                    "def {f}(docs: func.DocumentList, context: func.Context) -> None:\n    nimbus.cosmos(docs, None, context, resource={})",
                    py(resource)
                )
                .unwrap();
            }
            Trigger::Blob {
                resource,
                container,
                prefix,
                suffix,
                ..
            } => {
                writeln!(
                    s,
                    "@app.blob_trigger(arg_name=\"blob\", path={}, connection={}, source=func.BlobSource.EVENT_GRID)",
                    py(&blob_path(container, prefix, suffix)),
                    py(STORAGE_CONNECTION)
                )
                .unwrap();
                writeln!(
                    s,
                    "def {f}(blob: func.InputStream, context: func.Context) -> None:\n    nimbus.blob(blob, None, context, resource={})",
                    py(resource)
                )
                .unwrap();
            }
        }
    }
    s
}

/// `index.js` (Node.js v4 programming model). `@azure/functions` is resolved from the handler's
/// directory, where the function's dependencies are installed.
pub fn index_js(graph: &AppGraph, app: &App) -> String {
    let mut s = header(graph, app, "//");
    s.push_str("'use strict';\n\nconst path = require('path');\nconst { createRequire } = require('module');\n\n");
    writeln!(
        s,
        "const {{ app }} = createRequire(path.join(__dirname, {}))('@azure/functions');",
        js(&app.handler_file)
    )
    .unwrap();
    s.push_str("const nimbus = require('./_nimbus/azure.js');\n");
    for b in &app.bindings {
        s.push('\n');
        let name = js(&b.name);
        match &b.trigger {
            Trigger::Http {
                method,
                route,
                auth_level,
                ..
            } => {
                let methods = method
                    .as_ref()
                    .map(|m| format!("methods: [{}], ", js(m)))
                    .unwrap_or_default();
                writeln!(
                    s,
                    "app.http({name}, {{\n  {methods}route: {}, authLevel: {},\n  handler: (request, context) => nimbus.http(request, context),\n}});",
                    js(route),
                    js(auth_level)
                )
                .unwrap();
            }
            Trigger::Timer { schedule, ncrontab } => {
                writeln!(
                    s,
                    "app.timer({name}, {{\n  schedule: {}, runOnStartup: false, useMonitor: true,\n  handler: (timer, context) => nimbus.timer(timer, context, null, {{ schedule: {} }}),\n}});",
                    js(ncrontab),
                    js(schedule)
                )
                .unwrap();
            }
            Trigger::Queue {
                resource, queue, ..
            } => {
                writeln!(
                    s,
                    "app.storageQueue({name}, {{\n  queueName: {}, connection: {},\n  handler: (item, context) => nimbus.queue(item, context, null, {{ resource: {} }}),\n}});",
                    js(queue),
                    js(STORAGE_CONNECTION),
                    js(resource)
                )
                .unwrap();
            }
            Trigger::Topic {
                resource,
                topic,
                subscription,
                connection,
            } => {
                writeln!(
                    s,
                    "app.serviceBusTopic({name}, {{\n  topicName: {}, subscriptionName: {}, connection: {},\n  handler: (message, context) => nimbus.serviceBus(message, context, null, {{ resource: {} }}),\n}});",
                    js(topic),
                    js(subscription),
                    js(connection),
                    js(resource)
                )
                .unwrap();
            }
            Trigger::Table {
                resource,
                database,
                container,
                lease_prefix,
                batch_size,
                connection,
                lease,
            } => {
                let lease_args = match lease {
                    Some((c, db)) => format!(
                        "\n  leaseConnection: {}, leaseDatabaseName: {},",
                        js(c),
                        js(db)
                    ),
                    None => String::new(),
                };
                writeln!(
                    s,
                    "app.cosmosDB({name}, {{\n  connection: {}, databaseName: {}, containerName: {},{lease_args}\n  leaseContainerName: {}, leaseContainerPrefix: {}, createLeaseContainerIfNotExists: false, maxItemsPerInvocation: {batch_size},\n  retry: {{ strategy: 'exponentialBackoff', maxRetryCount: {TABLE_RETRIES}, minimumInterval: {{ seconds: 4 }}, maximumInterval: {{ minutes: 15 }} }},\n  handler: (documents, context) => nimbus.cosmosDB(documents, context, null, {{ resource: {} }}),\n}});",
                    js(connection),
                    js(database),
                    js(container),
                    js(crate::names::LEASES_CONTAINER),
                    js(lease_prefix),
                    js(resource)
                )
                .unwrap();
            }
            Trigger::Blob {
                resource,
                container,
                prefix,
                suffix,
                ..
            } => {
                writeln!(
                    s,
                    "app.storageBlob({name}, {{\n  path: {}, connection: {}, source: 'EventGrid',\n  handler: (blob, context) => nimbus.blob(blob, context, null, {{ resource: {} }}),\n}});",
                    js(&blob_path(container, prefix, suffix)),
                    js(STORAGE_CONNECTION),
                    js(resource)
                )
                .unwrap();
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_and_paths() {
        assert_eq!(hms(10), "00:00:10");
        assert_eq!(hms(3600 + 61), "01:01:01");
        assert_eq!(hms(86_400 + 1), "1.00:00:01");
        assert_eq!(blob_path("images", "uploads/", ""), "images/uploads/{name}");
        assert_eq!(blob_path("c", "", ".png"), "c/{name}.png");
        assert_eq!(blob_path("c", "a{b}", ""), "c/a{{b}}{name}");
    }
}
