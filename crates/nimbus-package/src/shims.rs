//! The provider shim files (embedded from `providers/<id>/shims/<language>/` at build time) and
//! the files generated per function: `_nimbus/function.json` and provider entry files.

use std::collections::BTreeMap;
use std::sync::Arc;

use nimbus_graph::{AppGraph, FunctionNode, ResourceSpec, TriggerSpec};
use nimbus_manifest::Language;
use nimbus_provider::ProviderId;
use serde_json::{Value, json};

use crate::archive::{Data, Entry};

include!(concat!(env!("OUT_DIR"), "/shims.rs"));

/// The shim files for a provider and language: the common runtime, then the provider's adapter.
pub(crate) fn files(provider: ProviderId, language: Language) -> Vec<Entry> {
    let lang = match language {
        Language::Python => "python",
        Language::Node => "node",
    };
    let mut entries: BTreeMap<&str, Entry> = BTreeMap::new();
    for (owner, l, path, bytes) in SHIM_FILES {
        if *l == lang && (*owner == "common" || *owner == provider.as_str()) {
            entries.insert(
                path,
                Entry {
                    path: path.to_string(),
                    mode: 0o644,
                    data: Data::Bytes(Arc::from(*bytes)),
                },
            );
        }
    }
    if provider == ProviderId::Gcp && language == Language::Node {
        // functions-framework loads the package's `main`.
        let package = serde_json::to_vec_pretty(
            &json!({ "name": "nimbus-function", "private": true, "main": "_nimbus_gcp.js" }),
        )
        .expect("json");
        entries.insert(
            "package.json",
            Entry {
                path: "package.json".into(),
                mode: 0o644,
                data: Data::Bytes(Arc::from(package)),
            },
        );
    }
    entries.into_values().collect()
}

/// The `_nimbus/function.json` the shim reads at cold start: which handler to load, its limits,
/// its triggers and the resources it may use.
pub(crate) fn function_json(graph: &AppGraph, f: &FunctionNode) -> Vec<u8> {
    let mut resources = serde_json::Map::new();
    for edge in graph.edges.iter().filter(|e| e.from == f.id) {
        let name = edge.to.trim_start_matches("resource:");
        let Some(r) = graph.resources.get(name) else {
            continue;
        };
        let entry = resources.entry(name.to_string()).or_insert_with(|| {
            let mut spec = json!({ "type": r.kind.as_str(), "native": {} });
            if let ResourceSpec::Table { key, sort_key } = &r.spec {
                let mut keys = vec![key.0.clone()];
                keys.extend(sort_key.as_ref().map(|k| k.0.clone()));
                spec["key"] = json!(keys);
            }
            spec
        });
        if let nimbus_graph::Link::Uses { access } = &edge.link {
            entry["access"] = json!(access.as_str());
        }
    }
    let triggers: Vec<Value> = f
        .triggers
        .iter()
        .map(|t| {
            let mut v = serde_json::to_value(&t.spec).expect("triggers serialize");
            let kind = v
                .as_object_mut()
                .and_then(|o| o.remove("kind"))
                .unwrap_or(Value::Null);
            v["type"] = kind;
            v["id"] = json!(t.id);
            if matches!(t.spec, TriggerSpec::Schedule { .. }) {
                v["name"] = json!(t.id.trim_start_matches("trigger:").replace('/', "-"));
            }
            v
        })
        .collect();
    let mut doc = json!({
        "service": graph.service,
        "stage": graph.stage,
        "provider": graph.provider,
        "function": f.name,
        "handler": { "file": f.handler_file, "export": f.handler_export },
        "runtime": f.runtime.id(),
        "timeout_ms": f.timeout_ms,
        "memory_mb": f.memory_mb,
        "resources": resources,
        "triggers": triggers,
    });
    if graph.provider == "gcp" {
        // Cloud Scheduler and a queue's push subscription call the function's URL over HTTP.
        let http = f.triggers.iter().any(|t| {
            matches!(
                t.spec,
                TriggerSpec::Http { .. } | TriggerSpec::Schedule { .. } | TriggerSpec::Queue { .. }
            )
        });
        doc["gcp"] = json!({ "signature": if http || f.triggers.is_empty() { "http" } else { "cloudevent" } });
    }
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("json");
    bytes.push(b'\n');
    bytes
}
