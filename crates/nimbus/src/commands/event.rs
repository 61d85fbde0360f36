//! The neutral event `nimbus invoke` sends: built from `--data` and `--event-type` for the
//! function's trigger (or taken as is when the data has a `type`), the same for every provider.

use nimbus_graph::{AppGraph, FunctionNode, TriggerSpec};
use serde_json::{Value, json};

use crate::cli::{EventType, Global, InvokeArgs};
use crate::output::Failure;

/// The function `nimbus invoke` names and the neutral event to send it, from `--data` (JSON, or
/// `@file`) and `--event-type`.
pub fn for_invoke<'g>(
    graph: &'g AppGraph,
    args: &InvokeArgs,
    global: &Global,
) -> Result<(&'g FunctionNode, Value), Failure> {
    let Some(function) = graph.functions.get(&args.function) else {
        let names: Vec<&String> = graph.functions.keys().collect();
        return Err(Failure::user(format!(
            "no function `{}` in {}\n  hint: the functions are {}",
            args.function,
            global.file.display(),
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let data = match &args.data {
        None => None,
        Some(text) => {
            let (source, text) = match text.strip_prefix('@') {
                Some(path) => (
                    path.to_string(),
                    std::fs::read_to_string(path).map_err(|e| {
                        Failure::User(anyhow::Error::new(e).context(format!("reading `{path}`")))
                    })?,
                ),
                None => ("--data".to_string(), text.clone()),
            };
            Some(serde_json::from_str::<Value>(&text).map_err(|e| {
                Failure::user(format!("{source} is not valid JSON: {e} (line {}, column {})\n  hint: quote the JSON in single quotes: --data '{{\"key\": \"value\"}}'", e.line(), e.column()))
            })?)
        }
    };
    let event = neutral(
        function.triggers.first().map(|t| &t.spec),
        args.event_type,
        data,
    );
    Ok((function, event))
}

/// The neutral event for a function whose first trigger is `trigger`.
pub fn neutral(
    trigger: Option<&TriggerSpec>,
    wanted: Option<EventType>,
    data: Option<Value>,
) -> Value {
    if let Some(d) = &data
        && d.get("type").and_then(Value::as_str).is_some()
    {
        return d.clone();
    }
    let kind = wanted.unwrap_or(match trigger {
        Some(TriggerSpec::Http { .. }) | None => EventType::Http,
        Some(TriggerSpec::Schedule { .. }) => EventType::Schedule,
        Some(TriggerSpec::Queue { .. }) => EventType::Queue,
        Some(TriggerSpec::Topic { .. }) => EventType::Topic,
        Some(TriggerSpec::Bucket { .. }) => EventType::Bucket,
        Some(TriggerSpec::Table { .. }) => EventType::Table,
    });
    let source = trigger
        .and_then(|t| t.resource())
        .unwrap_or("manual")
        .to_string();
    let body_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match kind {
        EventType::Http => {
            let (method, route) = match trigger {
                Some(TriggerSpec::Http { method, path, .. }) => (
                    if method.to_string() == "ANY" {
                        "POST".to_string()
                    } else {
                        method.to_string()
                    },
                    path.clone(),
                ),
                _ => ("POST".to_string(), "/".to_string()),
            };
            // Path parameters are filled from the data's fields of the same name.
            let mut params = serde_json::Map::new();
            let path = route
                .split('/')
                .map(
                    |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => {
                            let name = name.trim_end_matches('+');
                            let value = data
                                .as_ref()
                                .and_then(|d| d.get(name))
                                .map(body_text)
                                .unwrap_or_default();
                            params.insert(name.to_string(), json!(value));
                            value
                        }
                        None => seg.to_string(),
                    },
                )
                .collect::<Vec<_>>()
                .join("/");
            let body = if method == "GET" || method == "HEAD" {
                Value::Null
            } else {
                data.as_ref()
                    .map(|d| json!(body_text(d)))
                    .unwrap_or(Value::Null)
            };
            json!({ "type": "http", "method": method, "path": path, "route": route, "path_params": params, "query": {}, "headers": { "content-type": "application/json" }, "body": body, "is_base64": false, "source_ip": "127.0.0.1" })
        }
        EventType::Queue | EventType::Topic => {
            let items = match data {
                Some(Value::Array(items)) => items,
                Some(other) => vec![other],
                None => vec![json!("")],
            };
            let messages: Vec<Value> = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let mut m = json!({ "id": format!("manual-{i}"), "body": body_text(item), "attributes": {} });
                    if kind == EventType::Queue {
                        m["receive_count"] = json!(1);
                    }
                    m
                })
                .collect();
            json!({ "type": if kind == EventType::Queue { "queue" } else { "topic" }, "source": source, "messages": messages })
        }
        EventType::Schedule => {
            json!({ "type": "schedule", "name": "manual", "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) })
        }
        EventType::Bucket => {
            let d = data.unwrap_or(json!({}));
            json!({ "type": "bucket", "bucket": source, "key": d.get("key").cloned().unwrap_or(json!("")), "size": d.get("size").cloned().unwrap_or(Value::Null), "action": d.get("action").cloned().unwrap_or(json!("created")) })
        }
        EventType::Table => {
            let d = data.unwrap_or(json!({}));
            json!({ "type": "table", "table": source, "action": d.get("action").cloned().unwrap_or(json!("insert")), "key": d.get("key").cloned().unwrap_or(json!({})), "old": d.get("old").cloned().unwrap_or(Value::Null), "new": d.get("new").cloned().unwrap_or(Value::Null) })
        }
    }
}
