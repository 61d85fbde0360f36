//! Resource calls from handlers (`context.resources[name].op(...)`), arriving from a worker as
//! `{"resource", "op", "args"}`: checked against the function's `uses`, then carried out on
//! the store and the bucket folders. Writes raise the events their subscribers expect: a table
//! write enqueues its change for table triggers in the same transaction, a publish fans out to
//! every subscriber's queue atomically, a bucket write is picked up by the scanner.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use nimbus_graph::ResourceSpec;
use nimbus_local_store::{KeyType as StoreKeyType, NewMessage, TableKey};
use nimbus_local_workers::ErrorInfo;
use nimbus_manifest::{Access, KeyType, ResourceKind};
use serde_json::{Value, json};

use crate::runtime::Runtime;
use crate::{names, now_ms};

fn err(kind: &str, message: impl Into<String>) -> ErrorInfo {
    ErrorInfo {
        kind: kind.into(),
        message: message.into(),
        stack: None,
    }
}

/// What each operation needs, by resource kind.
fn required(kind: ResourceKind, op: &str) -> Option<&'static [Access]> {
    use Access::*;
    Some(match (kind, op) {
        (ResourceKind::Table | ResourceKind::Bucket, "get" | "query" | "scan" | "list") => {
            &[Read, ReadWrite]
        }
        (ResourceKind::Table | ResourceKind::Bucket, "put" | "delete") => &[Write, ReadWrite],
        (ResourceKind::Queue, "send") => &[Send],
        (ResourceKind::Topic, "publish") => &[Publish],
        _ => return None,
    })
}

/// Carries out one resource call of `function`.
pub async fn call(
    rt: &Runtime,
    function: &str,
    request_id: &str,
    frame: Value,
) -> Result<Value, ErrorInfo> {
    // The calling invocation's trace context: what this call sends carries it.
    let traced = rt.tracer.current(request_id);
    let trace_attributes: BTreeMap<String, String> = traced
        .map(|cx| [(crate::trace::TRACEPARENT.to_string(), cx.traceparent())].into())
        .unwrap_or_default();
    let live = rt
        .live()
        .ok_or_else(|| err("Unavailable", "nothing is deployed"))?;
    let resource = frame
        .get("resource")
        .and_then(Value::as_str)
        .ok_or_else(|| err("BadRequest", "missing `resource`"))?;
    let op = frame
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| err("BadRequest", "missing `op`"))?;
    let args = frame.get("args").cloned().unwrap_or(json!({}));
    let f = live
        .deployment
        .functions
        .get(function)
        .ok_or_else(|| err("NotFound", format!("function `{function}` is not deployed")))?;
    let r = live.deployment.resources.get(resource).ok_or_else(|| {
        err(
            "NotFound",
            format!("there is no resource `{resource}` in this deployment"),
        )
    })?;
    let needs = required(r.kind, op).ok_or_else(|| {
        err(
            "BadRequest",
            format!("a {} has no operation `{op}`", r.kind),
        )
    })?;
    let granted = f.grants.get(resource);
    if !granted.is_some_and(|g| needs.contains(g)) {
        let have = granted
            .map(|g| format!("it was granted `{g}`"))
            .unwrap_or_else(|| "it has no grant on it".into());
        let want = needs
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(" or ");
        return Err(err(
            "AccessDenied",
            format!(
                "function `{function}` may not `{op}` {} `{resource}`: {have}; add `{{ resource: {resource}, access: ... }}` with {want} to its `uses`",
                r.kind
            ),
        ));
    }
    let store_err = |e: nimbus_local_store::StoreError| {
        let text = e.to_string();
        if matches!(e, nimbus_local_store::StoreError::BadItem { .. }) {
            err("BadRequest", text)
        } else {
            err("Internal", text)
        }
    };
    match (&r.spec, op) {
        (ResourceSpec::Table { key, sort_key }, _) => {
            let table_key = table_key(key, sort_key.as_ref());
            let changes: Vec<String> = live
                .deployment
                .subscribers(resource, "table")
                .filter_map(|(sub, t)| names::subscription(&t.spec, &sub.name))
                .collect();
            let result = match op {
                "get" => rt
                    .store
                    .table_get(resource, &table_key, arg(&args, "key")?)
                    .map_err(store_err)?
                    .unwrap_or(Value::Null),
                "put" => {
                    rt.store
                        .table_put_with(
                            resource,
                            &table_key,
                            arg(&args, "item")?.clone(),
                            &changes,
                            &trace_attributes,
                            now_ms(),
                        )
                        .map_err(store_err)?;
                    Value::Null
                }
                "delete" => {
                    rt.store
                        .table_delete_with(
                            resource,
                            &table_key,
                            arg(&args, "key")?,
                            &changes,
                            &trace_attributes,
                            now_ms(),
                        )
                        .map_err(store_err)?;
                    Value::Null
                }
                "query" => {
                    let key_arg = arg(&args, "key")?;
                    let value = key_arg.get(&key.0).ok_or_else(|| {
                        err(
                            "BadRequest",
                            format!("`query` needs the partition key `{}`", key.0),
                        )
                    })?;
                    Value::Array(
                        rt.store
                            .table_query(resource, &table_key, value, limit(&args))
                            .map_err(store_err)?,
                    )
                }
                "scan" => Value::Array(
                    rt.store
                        .table_scan(resource, limit(&args))
                        .map_err(store_err)?,
                ),
                _ => unreachable!("checked by `required`"),
            };
            for q in &changes {
                rt.wakeup(q).notify_one();
            }
            Ok(result)
        }
        (ResourceSpec::Queue { .. }, "send") => {
            let message = new_message(&args, &trace_attributes)?;
            let id = rt
                .store
                .send(resource, &message, now_ms())
                .map_err(store_err)?;
            rt.wakeup(resource).notify_one();
            Ok(json!(id))
        }
        (ResourceSpec::Topic {}, "publish") => {
            let message = new_message(&args, &trace_attributes)?;
            let queues: Vec<(String, NewMessage)> = live
                .deployment
                .subscribers(resource, "topic")
                .filter_map(|(sub, t)| names::subscription(&t.spec, &sub.name))
                .map(|q| (q, message.clone()))
                .collect();
            if queues.is_empty() {
                return Ok(json!(format!(
                    "unsubscribed-{}",
                    crate::state::random_token(8)
                )));
            }
            let ids = rt.store.send_batch(&queues, now_ms()).map_err(store_err)?;
            for (q, _) in &queues {
                rt.wakeup(q).notify_one();
            }
            Ok(json!(ids.first().cloned().unwrap_or_default()))
        }
        (ResourceSpec::Bucket { .. }, _) => {
            let bucket = live
                .buckets
                .get(resource)
                .ok_or_else(|| err("Internal", format!("bucket `{resource}` is not open")))?;
            let key = || {
                arg(&args, "key").and_then(|k| {
                    k.as_str()
                        .ok_or_else(|| err("BadRequest", "`key` must be a string"))
                })
            };
            let obj_err = |e: crate::buckets::ObjectError| match e {
                crate::buckets::ObjectError::BadKey(b) => err("BadRequest", b.to_string()),
                other => err("Internal", other.to_string()),
            };
            match op {
                "get" => match bucket.get(key()?).map_err(obj_err)? {
                    Some(bytes) => {
                        Ok(json!({ "data_b64": B64.encode(bytes), "content_type": Value::Null }))
                    }
                    None => Ok(Value::Null),
                },
                "put" => {
                    let data = arg(&args, "data_b64")?
                        .as_str()
                        .ok_or_else(|| err("BadRequest", "`data_b64` must be a string"))?;
                    let bytes = B64
                        .decode(data)
                        .map_err(|e| err("BadRequest", format!("`data_b64` is not base64: {e}")))?;
                    bucket.put(key()?, &bytes).map_err(obj_err)?;
                    if let Some(cx) = traced {
                        rt.tracer.uploaded(resource, key()?, cx);
                    }
                    rt.bucket_wake.notify_one();
                    Ok(Value::Null)
                }
                "delete" => {
                    bucket.delete(key()?).map_err(obj_err)?;
                    if let Some(cx) = traced {
                        rt.tracer.uploaded(resource, key()?, cx);
                    }
                    rt.bucket_wake.notify_one();
                    Ok(Value::Null)
                }
                "list" => {
                    let prefix = args.get("prefix").and_then(Value::as_str).unwrap_or("");
                    Ok(json!(bucket.list(prefix).map_err(obj_err)?))
                }
                _ => unreachable!("checked by `required`"),
            }
        }
        _ => Err(err(
            "BadRequest",
            format!("a {} has no operation `{op}`", r.kind),
        )),
    }
}

fn arg<'a>(args: &'a Value, name: &str) -> Result<&'a Value, ErrorInfo> {
    args.get(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| err("BadRequest", format!("missing argument `{name}`")))
}

fn limit(args: &Value) -> Option<usize> {
    args.get("limit")
        .and_then(Value::as_u64)
        .map(|l| l as usize)
}

/// The message of a `send` or `publish`, with `trace` (the caller's `traceparent`) unless the
/// handler set its own.
fn new_message(args: &Value, trace: &BTreeMap<String, String>) -> Result<NewMessage, ErrorInfo> {
    let body = match arg(args, "body")? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut attributes = BTreeMap::new();
    if let Some(map) = args.get("attributes").and_then(Value::as_object) {
        for (k, v) in map {
            let v = v
                .as_str()
                .ok_or_else(|| err("BadRequest", format!("attribute `{k}` must be a string")))?;
            attributes.insert(k.clone(), v.to_string());
        }
    }
    for (k, v) in trace {
        attributes.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let delay_ms = args
        .get("delay_seconds")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(900)
        * 1000;
    Ok(NewMessage {
        body,
        attributes,
        delay_ms,
    })
}

fn table_key(key: &(String, KeyType), sort: Option<&(String, KeyType)>) -> TableKey {
    let conv = |t: KeyType| match t {
        KeyType::String => StoreKeyType::String,
        KeyType::Number => StoreKeyType::Number,
        KeyType::Binary => StoreKeyType::Binary,
    };
    TableKey {
        partition: (key.0.clone(), conv(key.1)),
        sort: sort.map(|s| (s.0.clone(), conv(s.1))),
    }
}
