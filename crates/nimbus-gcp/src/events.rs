//! Neutral events → the HTTP requests Google would send a function, for `nimbus invoke -p gcp`:
//! the shim in the function then sees exactly what API Gateway, Cloud Scheduler, a queue's push
//! subscription or Eventarc would deliver, and converts it back. And the function's HTTP answer →
//! the neutral `{status, headers, body, is_base64}`.
//!
//! | neutral | request to the function's URL |
//! |---|---|
//! | `http` | the request itself: method, path and query (appended to the URL, as API Gateway's `APPEND_PATH_TO_ADDRESS` does), headers, body |
//! | `schedule` | Cloud Scheduler's `POST` with `X-CloudScheduler: true`, `X-CloudScheduler-JobName`, `X-CloudScheduler-ScheduleTime` |
//! | `queue` | a Pub/Sub push per message: `{"message": {data, attributes, messageId, publishTime}, "subscription", "deliveryAttempt"}` |
//! | `topic` | a CloudEvent `google.cloud.pubsub.topic.v1.messagePublished` per message, binary content mode |
//! | `bucket` | a CloudEvent `google.cloud.storage.object.v1.finalized` (created) or `.deleted` |
//! | `table` | a CloudEvent `google.cloud.firestore.document.v1.written` with the items as Firestore values (JSON) |
//!
//! CloudEvents go in binary content mode (`ce-*` headers, the data as the JSON body), as Eventarc
//! delivers them to Cloud Run.

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// The native names an event refers to.
#[derive(Debug, Clone, Default)]
pub struct Natives {
    /// The project id.
    pub project: String,
    /// A topic's or queue's full name (`projects/P/topics/T`).
    pub topic: String,
    /// A queue's subscription (`projects/P/subscriptions/S`).
    pub subscription: String,
    /// A bucket's name.
    pub bucket: String,
    /// The Firestore database (`projects/P/databases/D`).
    pub database: String,
    /// A table's collection id.
    pub collection: String,
    /// A table's key fields (partition, then sort).
    pub key_fields: Vec<String>,
    /// A schedule's Cloud Scheduler job (`projects/P/locations/R/jobs/J`).
    pub job: String,
}

/// One request to send to the function's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The HTTP method.
    pub method: String,
    /// What follows the function's URL: the path (`/` or the route's) and the query.
    pub path: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn messages(event: &Value) -> Vec<Value> {
    event["messages"].as_array().cloned().unwrap_or_default()
}

/// The requests that deliver the neutral `event` (one per message for queues and topics).
pub fn requests(event: &Value, natives: &Natives) -> Vec<Request> {
    match event["type"].as_str().unwrap_or("http") {
        "schedule" => {
            let time = event["time"].as_str().map_or_else(now, str::to_string);
            vec![Request {
                method: "POST".into(),
                path: "/".into(),
                headers: vec![
                    ("x-cloudscheduler".into(), "true".into()),
                    ("x-cloudscheduler-jobname".into(), natives.job.clone()),
                    ("x-cloudscheduler-scheduletime".into(), time),
                    ("user-agent".into(), "Google-Cloud-Scheduler".into()),
                ],
                body: Vec::new(),
            }]
        }
        "queue" => messages(event)
            .iter()
            .map(|m| {
                let body = json!({
                    "message": pubsub_message(m),
                    "subscription": natives.subscription,
                    "deliveryAttempt": m["receive_count"].as_u64().unwrap_or(1),
                });
                Request {
                    method: "POST".into(),
                    path: "/".into(),
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: body.to_string().into_bytes(),
                }
            })
            .collect(),
        "topic" => messages(event)
            .iter()
            .map(|m| {
                let data = json!({
                    "message": pubsub_message(m),
                    "subscription": format!("projects/{}/subscriptions/eventarc-nimbus-invoke", natives.project),
                });
                cloud_event(
                    "google.cloud.pubsub.topic.v1.messagePublished",
                    &format!("//pubsub.googleapis.com/{}", natives.topic),
                    None,
                    &text(&m["id"]),
                    &data,
                )
            })
            .collect(),
        "bucket" => {
            let key = text(&event["key"]);
            let deleted = event["action"] == "deleted";
            let mut data = json!({
                "bucket": natives.bucket,
                "name": key,
                "kind": "storage#object",
                "timeCreated": now(),
                "updated": now(),
            });
            if let Some(size) = event["size"].as_u64() {
                data["size"] = json!(size.to_string());
            }
            let kind = if deleted { "deleted" } else { "finalized" };
            vec![cloud_event(
                &format!("google.cloud.storage.object.v1.{kind}"),
                &format!(
                    "//storage.googleapis.com/projects/_/buckets/{}",
                    natives.bucket
                ),
                Some(&format!("objects/{key}")),
                &format!("nimbus-invoke-{}", chrono::Utc::now().timestamp_millis()),
                &data,
            )]
        }
        "table" => {
            let key = event["key"].as_object().cloned().unwrap_or_default();
            let id = document_id(&key, &natives.key_fields);
            let name = format!(
                "{}/documents/{}/{id}",
                natives.database, natives.collection
            );
            let doc = |item: &Value| {
                json!({
                    "name": name,
                    "fields": fields(item.as_object().cloned().unwrap_or_default()),
                    "createTime": now(),
                    "updateTime": now(),
                })
            };
            let mut data = Map::new();
            if event["new"].is_object() {
                data.insert("value".into(), doc(&event["new"]));
            }
            if event["old"].is_object() {
                data.insert("oldValue".into(), doc(&event["old"]));
            }
            vec![cloud_event(
                "google.cloud.firestore.document.v1.written",
                &format!("//firestore.googleapis.com/{}", natives.database),
                Some(&format!("documents/{}/{id}", natives.collection)),
                &format!("nimbus-invoke-{}", chrono::Utc::now().timestamp_millis()),
                &Value::Object(data),
            )]
        }
        _ => vec![http_request(event)],
    }
}

fn pubsub_message(m: &Value) -> Value {
    json!({
        "data": b64(text(&m["body"]).as_bytes()),
        "attributes": m["attributes"].as_object().cloned().unwrap_or_default(),
        "messageId": text(&m["id"]),
        "publishTime": now(),
    })
}

fn cloud_event(kind: &str, source: &str, subject: Option<&str>, id: &str, data: &Value) -> Request {
    let mut headers = vec![
        ("ce-specversion".to_string(), "1.0".to_string()),
        ("ce-id".into(), id.to_string()),
        ("ce-type".into(), kind.to_string()),
        ("ce-source".into(), source.to_string()),
        ("ce-time".into(), now()),
        ("content-type".into(), "application/json".into()),
    ];
    if let Some(s) = subject {
        headers.push(("ce-subject".into(), s.to_string()));
    }
    Request {
        method: "POST".into(),
        path: "/".into(),
        headers,
        body: data.to_string().into_bytes(),
    }
}

fn http_request(event: &Value) -> Request {
    let method = event["method"]
        .as_str()
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let mut path = event["path"].as_str().unwrap_or("/").to_string();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let path: String = path
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let query: Vec<String> = event["query"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            format!(
                "{}={}",
                crate::api::urlencode(k),
                crate::api::urlencode(&text(v))
            )
        })
        .collect();
    let path = if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    };
    let headers = event["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !matches!(k.to_ascii_lowercase().as_str(), "host" | "content-length"))
        .map(|(k, v)| (k.to_ascii_lowercase(), text(v)))
        .collect();
    let body = match &event["body"] {
        Value::Null => Vec::new(),
        b if event["is_base64"] == true => base64::engine::general_purpose::STANDARD
            .decode(text(b))
            .unwrap_or_else(|_| text(b).into_bytes()),
        b => text(b).into_bytes(),
    };
    Request {
        method,
        path,
        headers,
        body,
    }
}

/// A plain JSON object as Firestore `fields` (the JSON form of `Value`s).
pub fn fields(item: Map<String, Value>) -> Value {
    Value::Object(
        item.into_iter()
            .map(|(k, v)| (k, firestore_value(&v)))
            .collect(),
    )
}

fn firestore_value(v: &Value) -> Value {
    match v {
        Value::Null => json!({ "nullValue": null }),
        Value::Bool(b) => json!({ "booleanValue": b }),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({ "integerValue": n.to_string() }),
        Value::Number(n) => json!({ "doubleValue": n.as_f64() }),
        Value::String(s) => json!({ "stringValue": s }),
        Value::Array(items) => {
            json!({ "arrayValue": { "values": items.iter().map(firestore_value).collect::<Vec<_>>() } })
        }
        Value::Object(m) => json!({ "mapValue": { "fields": fields(m.clone()) } }),
    }
}

/// The document id of the item with `key`, as the shim's table clients name documents: each key
/// value's text (numbers in decimal), every character but `A-Z a-z 0-9 -` percent-encoded,
/// joined with `,` (key fields in declared order, else sorted).
pub fn document_id(key: &Map<String, Value>, fields: &[String]) -> String {
    let names: Vec<String> = if fields.is_empty() {
        let mut k: Vec<String> = key.keys().cloned().collect();
        k.sort();
        k
    } else {
        fields.to_vec()
    };
    names
        .iter()
        .map(|f| {
            let t = match key.get(f) {
                Some(Value::Number(n)) => match n.as_f64() {
                    Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
                    _ => n.to_string(),
                },
                Some(v) => text(v),
                None => String::new(),
            };
            t.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The function's HTTP answer as the neutral `{status, headers, body, is_base64}`.
pub fn http_result(status: u16, headers: &[(String, String)], body: &[u8]) -> Value {
    let mut h = Map::new();
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        match h.get_mut(&k) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(v);
            }
            _ => {
                h.insert(k, json!(v));
            }
        }
    }
    let (body, is_base64) = match (body.is_empty(), std::str::from_utf8(body)) {
        (true, _) => (Value::Null, false),
        (false, Ok(s)) => (json!(s), false),
        (false, Err(_)) => (json!(b64(body)), true),
    };
    json!({ "status": status, "headers": h, "body": body, "is_base64": is_base64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn natives() -> Natives {
        Natives {
            project: "p".into(),
            topic: "projects/p/topics/shop-dev-order-events".into(),
            subscription: "projects/p/subscriptions/shop-dev-payments".into(),
            bucket: "shop-dev-images-p".into(),
            database: "projects/p/databases/(default)".into(),
            collection: "shop-dev-orders".into(),
            key_fields: vec!["id".into()],
            job: "projects/p/locations/r/jobs/shop-dev-nightly-report-schedule-0".into(),
        }
    }

    #[test]
    fn http_requests_keep_method_path_query_and_body() {
        let e = json!({ "type": "http", "method": "post", "path": "/orders/a b", "query": {"x": "1"}, "headers": {"Content-Type": "application/json", "Host": "h"}, "body": "{}" });
        let r = &requests(&e, &natives())[0];
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/orders/a%20b?x=1")
        );
        assert_eq!(
            r.headers,
            [("content-type".to_string(), "application/json".to_string())]
        );
        assert_eq!(r.body, b"{}");
    }

    #[test]
    fn events_become_what_google_delivers() {
        let q = requests(
            &json!({ "type": "queue", "messages": [{ "id": "m1", "body": "hi", "receive_count": 2 }] }),
            &natives(),
        );
        let body: Value = serde_json::from_slice(&q[0].body).unwrap();
        assert_eq!(
            body["subscription"],
            "projects/p/subscriptions/shop-dev-payments"
        );
        assert_eq!(
            (
                body["deliveryAttempt"].as_u64(),
                body["message"]["data"].as_str()
            ),
            (Some(2), Some("aGk="))
        );
        let t = &requests(
            &json!({ "type": "topic", "messages": [{ "id": "m1", "body": "hi" }] }),
            &natives(),
        )[0];
        assert!(t.headers.contains(&(
            "ce-source".into(),
            "//pubsub.googleapis.com/projects/p/topics/shop-dev-order-events".into()
        )));
        let d = &requests(
            &json!({ "type": "table", "key": {"id": "o/1"}, "new": {"id": "o/1", "n": 2, "f": 1.5}, "old": null }),
            &natives(),
        )[0];
        assert!(d.headers.contains(&(
            "ce-subject".into(),
            "documents/shop-dev-orders/o%2F1".into()
        )));
        let data: Value = serde_json::from_slice(&d.body).unwrap();
        assert_eq!(data["value"]["fields"]["n"], json!({ "integerValue": "2" }));
        assert_eq!(data["value"]["fields"]["f"], json!({ "doubleValue": 1.5 }));
        assert!(data.get("oldValue").is_none());
        let b = &requests(
            &json!({ "type": "bucket", "key": "uploads/a.jpg", "size": 3, "action": "created" }),
            &natives(),
        )[0];
        assert!(b.headers.contains(&(
            "ce-type".into(),
            "google.cloud.storage.object.v1.finalized".into()
        )));
        let s = &requests(
            &json!({ "type": "schedule", "name": "nightly", "time": "2026-01-01T03:00:00Z" }),
            &natives(),
        )[0];
        assert!(s.headers.contains(&(
            "x-cloudscheduler-scheduletime".into(),
            "2026-01-01T03:00:00Z".into()
        )));
    }

    #[test]
    fn answers_become_neutral_results() {
        let r = http_result(
            201,
            &[
                ("Set-Cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2".into()),
            ],
            b"ok",
        );
        assert_eq!(
            r,
            json!({ "status": 201, "headers": { "set-cookie": "a=1, b=2" }, "body": "ok", "is_base64": false })
        );
        assert_eq!(http_result(200, &[], &[0xff])["is_base64"], true);
        let mut key = Map::new();
        key.insert("c".into(), json!("x"));
        key.insert("i".into(), json!(7));
        assert_eq!(document_id(&key, &["c".into(), "i".into()]), "x,7");
    }
}
