//! The console's JSON API (`/console/api/…`, admin token required): the graph, recent
//! invocations with their logs and replay, firing schedules, sending to queues, publishing to
//! topics, table and bucket browsing, dead-letter redrive, and the metrics.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Response, StatusCode};
use nimbus_graph::{ResourceSpec, TriggerSpec};
use nimbus_local_store::{KeyType as StoreKeyType, TableKey};
use nimbus_manifest::KeyType;
use serde_json::{Value, json};

use super::data;
use crate::invoke::{Context, invoke, request_id, status_of};
use crate::runtime::{Live, Runtime};
use crate::{names, now_ms};

type Reply = Response<Full<Bytes>>;

/// A JSON response.
pub fn reply(status: StatusCode, body: Value) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

/// A refused console request: its HTTP status and what to tell the page.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        reply(e.status, json!({ "error": e.message }))
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: message.into(),
    }
}

fn ok(body: Value) -> Reply {
    reply(StatusCode::OK, body)
}

/// One query parameter, percent-decoded.
fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn field<'a>(input: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    input
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("missing `{name}` (a string)")))
}

/// The live deployment, or a 503.
fn live_or(rt: &Runtime) -> Result<std::sync::Arc<Live>, ApiError> {
    rt.live().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "nothing is deployed".into(),
    })
}

/// Serves `endpoint` (the path after `/console/api/`).
pub async fn handle(
    rt: &Runtime,
    method: &Method,
    endpoint: &str,
    query: &str,
    body: &[u8],
) -> Reply {
    let input: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad(format!("the request is not JSON: {e}")).into(),
        }
    };
    let live = match live_or(rt) {
        Ok(l) => l,
        Err(e) => return e.into(),
    };
    let result = match (method, endpoint) {
        (&Method::GET, "graph") => Ok(ok(data::graph(&live))),
        (&Method::GET, "invocations") => Ok(invocations(rt, query)),
        (&Method::GET, "invocation") => Ok(invocation(rt, query)),
        (&Method::GET, "trace") => trace(rt, query),
        (&Method::POST, "replay") => replay(rt, &live, &input).await,
        (&Method::POST, "schedule") => fire_schedule(rt, &live, &input).await,
        (&Method::POST, "queue/send") => Ok(through_queue_tools(rt, "/queues/send", &input)),
        (&Method::POST, "topic/publish") => Ok(through_queue_tools(rt, "/topics/publish", &input)),
        (&Method::POST, "table") => table(rt, &live, &input),
        (&Method::GET, "bucket") => bucket_list(&live, query),
        (&Method::GET, "bucket/object") => bucket_get(&live, query),
        (&Method::POST, "bucket/put") => bucket_put(rt, &live, &input),
        (&Method::GET, "dead-letters") => Ok(ok(json!(data::dead_letters(rt)))),
        (&Method::POST, "dead-letters/redrive") => redrive(rt, &input),
        (&Method::GET, "metrics") => Ok(ok(json!({ "text": data::metrics_text(rt) }))),
        _ => Err(not_found(format!(
            "no console endpoint {method} {endpoint}"
        ))),
    };
    result.unwrap_or_else(Reply::from)
}

fn invocations(rt: &Runtime, query: &str) -> Reply {
    let after = param(query, "after")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let function = param(query, "function").filter(|f| !f.is_empty());
    let status = param(query, "status").filter(|s| !s.is_empty());
    let list: Vec<Value> = rt
        .console
        .list(after, |e| {
            function.as_ref().is_none_or(|f| e.function() == f)
                && status.as_ref().is_none_or(|s| match s.as_str() {
                    "failed" => e.outcome() != "ok",
                    s => e.outcome() == s,
                })
        })
        .iter()
        .map(|e| e.to_json(false))
        .collect();
    ok(json!(list))
}

fn invocation(rt: &Runtime, query: &str) -> Reply {
    let Some(rid) = param(query, "request_id") else {
        return bad("missing `request_id`").into();
    };
    let Some(entry) = rt.console.find(&rid) else {
        return not_found(format!(
            "invocation {rid} is no longer kept (the console keeps the last {})",
            super::record::KEEP
        ))
        .into();
    };
    let mut v = entry.to_json(true);
    v["logs"] = json!(data::logs_of(rt, &rid));
    ok(v)
}

/// The causal tree of the trace of `?request_id=` (any invocation of it).
fn trace(rt: &Runtime, query: &str) -> Result<Reply, ApiError> {
    let rid = param(query, "request_id").ok_or_else(|| bad("missing `request_id`"))?;
    crate::trace::lookup(rt, &rid)
        .map(ok)
        .ok_or_else(|| not_found(format!("no trace of invocation {rid} is kept")))
}

async fn run(rt: &Runtime, live: &Live, function: &str, trigger: &str, event: Value) -> Reply {
    if !live.pools.contains_key(function) {
        return not_found(format!("no function `{function}`")).into();
    }
    let rid = request_id();
    let context_event = event.clone();
    let cx = Context::of_event(trigger, &context_event);
    match invoke(rt, live, function, trigger, &rid, event, cx).await {
        Ok(inv) => ok(json!({ "ok": true, "request_id": rid, "result": inv.result })),
        Err(e) => ok(
            json!({ "ok": false, "request_id": rid, "status": status_of(&e), "error": e.to_string() }),
        ),
    }
}

async fn replay(rt: &Runtime, live: &Live, input: &Value) -> Result<Reply, ApiError> {
    let rid = field(input, "request_id")?;
    let entry = rt
        .console
        .find(rid)
        .ok_or_else(|| not_found(format!("invocation {rid} is no longer kept")))?;
    let kept = entry.event.as_ref().ok_or_else(|| {
        bad(format!(
            "invocation {rid} had an event over {} bytes, which the console does not keep",
            super::record::MAX_EVENT
        ))
    })?;
    let event: Value = serde_json::from_str(kept.json()).unwrap_or(Value::Null);
    Ok(run(rt, live, entry.function(), entry.trigger(), event).await)
}

async fn fire_schedule(rt: &Runtime, live: &Live, input: &Value) -> Result<Reply, ApiError> {
    let function = field(input, "function")?;
    let trigger = live
        .deployment
        .functions
        .get(function)
        .and_then(|f| {
            f.triggers
                .iter()
                .find(|t| matches!(t.spec, TriggerSpec::Schedule { .. }))
        })
        .ok_or_else(|| not_found(format!("function `{function}` has no schedule")))?;
    // The same event the scheduler sends (crates/nimbus-local/src/dispatch.rs).
    let name = trigger.id.trim_start_matches("trigger:").replace('/', "-");
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let event = json!({ "type": "schedule", "name": name, "time": time });
    Ok(run(rt, live, function, "schedule", event).await)
}

fn resource_of<'a>(live: &'a Live, name: &str, kind: &str) -> Result<&'a ResourceSpec, ApiError> {
    live.deployment
        .resources
        .get(name)
        .filter(|r| r.kind.to_string() == kind)
        .map(|r| &r.spec)
        .ok_or_else(|| not_found(format!("there is no {kind} `{name}`")))
}

fn store_err(e: nimbus_local_store::StoreError) -> ApiError {
    bad(e.to_string())
}

/// Sends to a queue or publishes to a topic through the admin API's queue tools
/// ([`crate::queues`]: the declared resource checked, consumers woken, the publish logged), in
/// the console's answer shape (`ok`, and the number of subscribers a publish reached).
fn through_queue_tools(rt: &Runtime, path: &str, input: &Value) -> Reply {
    let Some((status, mut body)) = crate::queues::handle(rt, path, input) else {
        return not_found(format!("no queue tool `{path}`")).into();
    };
    if status.is_success() {
        body["ok"] = json!(true);
        if let Some(names) = body["subscribers"].as_array() {
            body["subscribers"] = json!(names.len());
        }
    }
    reply(status, body)
}

fn store_key(t: KeyType) -> StoreKeyType {
    match t {
        KeyType::String => StoreKeyType::String,
        KeyType::Number => StoreKeyType::Number,
        KeyType::Binary => StoreKeyType::Binary,
    }
}

/// `{"table", "op": "scan"|"get"|"query"|"put"|"delete", "key"?, "item"?, "limit"?}`.
fn table(rt: &Runtime, live: &Live, input: &Value) -> Result<Reply, ApiError> {
    let name = field(input, "table")?;
    let op = field(input, "op")?;
    let ResourceSpec::Table { key, sort_key } = resource_of(live, name, "table")? else {
        return Err(bad(format!("`{name}` is not a table")));
    };
    let mut table_key = TableKey::partition(&key.0, store_key(key.1));
    if let Some((s, t)) = sort_key {
        table_key = table_key.with_sort(s, store_key(*t));
    }
    let changes: Vec<String> = live
        .deployment
        .subscribers(name, "table")
        .filter_map(|(f, t)| names::subscription(&t.spec, &f.name))
        .collect();
    let arg = |n: &str| {
        input
            .get(n)
            .filter(|v| !v.is_null())
            .ok_or_else(|| bad(format!("`{op}` needs `{n}`")))
    };
    let limit = input
        .get("limit")
        .and_then(Value::as_u64)
        .map(|l| l as usize)
        .or(Some(100));
    let result = match op {
        "scan" => json!(rt.store.table_scan(name, limit).map_err(store_err)?),
        "get" => rt
            .store
            .table_get(name, &table_key, arg("key")?)
            .map_err(store_err)?
            .unwrap_or(Value::Null),
        "query" => {
            let value = arg("key")?
                .get(&key.0)
                .ok_or_else(|| bad(format!("`query` needs the partition key `{}`", key.0)))?;
            json!(
                rt.store
                    .table_query(name, &table_key, value, limit)
                    .map_err(store_err)?
            )
        }
        "put" => {
            rt.store
                .table_put(name, &table_key, arg("item")?.clone(), &changes, now_ms())
                .map_err(store_err)?;
            Value::Null
        }
        "delete" => {
            rt.store
                .table_delete(name, &table_key, arg("key")?, &changes, now_ms())
                .map_err(store_err)?;
            Value::Null
        }
        other => return Err(bad(format!("a table has no operation `{other}`"))),
    };
    for q in &changes {
        rt.wakeup(q).notify_one();
    }
    Ok(ok(json!({ "ok": true, "key": key.0, "result": result })))
}

fn bucket<'a>(live: &'a Live, name: &str) -> Result<&'a crate::buckets::Bucket, ApiError> {
    live.buckets
        .get(name)
        .ok_or_else(|| not_found(format!("there is no bucket `{name}`")))
}

fn bucket_list(live: &Live, query: &str) -> Result<Reply, ApiError> {
    let name = param(query, "bucket").ok_or_else(|| bad("missing `bucket`"))?;
    let prefix = param(query, "prefix").unwrap_or_default();
    let keys = bucket(live, &name)?
        .list(&prefix)
        .map_err(|e| bad(e.to_string()))?;
    Ok(ok(json!(keys)))
}

fn bucket_get(live: &Live, query: &str) -> Result<Reply, ApiError> {
    let name = param(query, "bucket").ok_or_else(|| bad("missing `bucket`"))?;
    let key = param(query, "key").ok_or_else(|| bad("missing `key`"))?;
    let bytes = bucket(live, &name)?
        .get(&key)
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| not_found(format!("no object `{key}` in `{name}`")))?;
    Ok(Response::builder()
        .header("content-type", "application/octet-stream")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(bytes)))
        .expect("a valid response"))
}

fn bucket_put(rt: &Runtime, live: &Live, input: &Value) -> Result<Reply, ApiError> {
    let name = field(input, "bucket")?;
    let key = field(input, "key")?;
    let data = B64
        .decode(field(input, "data_b64")?)
        .map_err(|e| bad(format!("`data_b64` is not base64: {e}")))?;
    bucket(live, name)?
        .put(key, &data)
        .map_err(|e| bad(e.to_string()))?;
    // The scanner raises the created event for the bucket's triggers.
    rt.bucket_wake.notify_one();
    Ok(ok(json!({ "ok": true, "bytes": data.len() })))
}

fn redrive(rt: &Runtime, input: &Value) -> Result<Reply, ApiError> {
    let queue = field(input, "queue")?;
    let source = data::source_of(queue)
        .ok_or_else(|| bad(format!("`{queue}` is not a dead-letter queue")))?;
    let moved = rt
        .store
        .redrive(queue, &source, now_ms())
        .map_err(store_err)?;
    rt.wakeup(&source).notify_one();
    rt.log(
        "info",
        None,
        format!("console: redrove {moved} message(s) from `{queue}` to `{source}`"),
    );
    Ok(ok(json!({ "ok": true, "moved": moved, "to": source })))
}

#[cfg(test)]
mod tests {
    use super::{decode, param};

    #[test]
    fn query_parameters_are_percent_decoded() {
        assert_eq!(
            param("a=1&key=uploads%2Fcat%20x.png", "key").as_deref(),
            Some("uploads/cat x.png")
        );
        assert_eq!(param("a=1", "b"), None);
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz+"), "%zz ");
    }
}
