//! Neutral events → the native events AWS would deliver, for `nimbus invoke -p aws`: the shim in
//! the function then sees exactly what API Gateway, SQS, SNS, EventBridge Scheduler, S3 or
//! DynamoDB Streams would send, and converts it back. And the native HTTP response → the neutral
//! `{status, headers, body}`.
//!
//! | neutral | native |
//! |---|---|
//! | `http` | API Gateway HTTP API payload 2.0 |
//! | `queue` | SQS event (`Records[].eventSource = aws:sqs`) |
//! | `topic` | SNS event (`Records[].EventSource = aws:sns`) |
//! | `schedule` | EventBridge Scheduler event (`detail-type: Scheduled Event`) |
//! | `bucket` | S3 event notification |
//! | `table` | DynamoDB Streams event, items marshalled to attribute values |

use serde_json::{Map, Value, json};

/// The ARNs and names a native event refers to (the source of the event).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The region.
    pub region: String,
    /// The ARN of the event's source: queue, topic, bucket, stream or schedule.
    pub source_arn: String,
    /// The physical name of the source (the bucket name for S3 events).
    pub source_name: String,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The native event for the neutral `event`.
pub fn native(event: &Value, sources: &Sources) -> Value {
    let kind = event["type"].as_str().unwrap_or("http");
    match kind {
        "queue" => {
            let records: Vec<Value> = messages(event)
                .iter()
                .map(|m| {
                    json!({
                        "messageId": m["id"],
                        "receiptHandle": format!("nimbus-invoke-{}", text(&m["id"])),
                        "body": text(&m["body"]),
                        "attributes": { "ApproximateReceiveCount": m["receive_count"].as_u64().unwrap_or(1).to_string() },
                        "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": sources.source_arn,
                        "awsRegion": sources.region,
                    })
                })
                .collect();
            json!({ "Records": records })
        }
        "topic" => {
            let records: Vec<Value> = messages(event)
                .iter()
                .map(|m| {
                    json!({
                        "EventSource": "aws:sns",
                        "EventVersion": "1.0",
                        "EventSubscriptionArn": format!("{}:nimbus-invoke", sources.source_arn),
                        "Sns": {
                            "Type": "Notification",
                            "MessageId": m["id"],
                            "TopicArn": sources.source_arn,
                            "Message": text(&m["body"]),
                            "MessageAttributes": {},
                            "Timestamp": now(),
                        },
                    })
                })
                .collect();
            json!({ "Records": records })
        }
        "schedule" => json!({
            "version": "0",
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler",
            "time": event.get("time").cloned().unwrap_or_else(|| json!(now())),
            "resources": [sources.source_arn],
            "detail": {},
        }),
        "bucket" => {
            let deleted = event["action"].as_str() == Some("deleted");
            let mut object = json!({ "key": encode_key(&text(&event["key"])) });
            if let Some(size) = event["size"].as_u64() {
                object["size"] = json!(size);
            }
            json!({ "Records": [{
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": sources.region,
                "eventTime": now(),
                "eventName": if deleted { "ObjectRemoved:Delete" } else { "ObjectCreated:Put" },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": { "name": sources.source_name, "arn": sources.source_arn },
                    "object": object,
                },
            }] })
        }
        "table" => {
            let name = match event["action"].as_str() {
                Some("modify") => "MODIFY",
                Some("remove") => "REMOVE",
                _ => "INSERT",
            };
            let mut dynamodb = json!({
                "Keys": marshal_item(&event["key"]),
                "SequenceNumber": "1",
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            });
            if event["new"].is_object() {
                dynamodb["NewImage"] = marshal_item(&event["new"]);
            }
            if event["old"].is_object() {
                dynamodb["OldImage"] = marshal_item(&event["old"]);
            }
            json!({ "Records": [{
                "eventID": "nimbus-invoke",
                "eventName": name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": sources.region,
                "eventSourceARN": sources.source_arn,
                "dynamodb": dynamodb,
            }] })
        }
        _ => http(event),
    }
}

fn messages(event: &Value) -> Vec<Value> {
    event["messages"].as_array().cloned().unwrap_or_default()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// S3 event keys are URL-encoded, with spaces as `+`.
fn encode_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn http(event: &Value) -> Value {
    let method = event["method"].as_str().unwrap_or("GET");
    let path = event["path"].as_str().unwrap_or("/");
    let route = event["route"].as_str().unwrap_or(path);
    let query = event["query"].as_object().cloned().unwrap_or_default();
    let raw_query = query
        .iter()
        .map(|(k, v)| format!("{k}={}", text(v)))
        .collect::<Vec<_>>()
        .join("&");
    let headers: Map<String, Value> = event["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), json!(text(v))))
                .collect()
        })
        .unwrap_or_default();
    let mut native = json!({
        "version": "2.0",
        "routeKey": format!("{method} {route}"),
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": event["source_ip"].as_str().unwrap_or("127.0.0.1"),
                "userAgent": "nimbus-invoke",
            },
            "requestId": "nimbus-invoke",
            "routeKey": format!("{method} {route}"),
            "stage": "$default",
            "timeEpoch": chrono::Utc::now().timestamp_millis(),
        },
        "isBase64Encoded": event["is_base64"].as_bool().unwrap_or(false),
    });
    if !query.is_empty() {
        native["queryStringParameters"] = Value::Object(
            query
                .iter()
                .map(|(k, v)| (k.clone(), json!(text(v))))
                .collect(),
        );
    }
    if let Some(params) = event["path_params"].as_object().filter(|p| !p.is_empty()) {
        native["pathParameters"] = Value::Object(params.clone());
    }
    if !event["body"].is_null() {
        native["body"] = json!(text(&event["body"]));
    }
    native
}

/// A JSON value as a DynamoDB attribute value.
pub fn marshal(v: &Value) -> Value {
    match v {
        Value::Null => json!({ "NULL": true }),
        Value::Bool(b) => json!({ "BOOL": b }),
        Value::Number(n) => json!({ "N": n.to_string() }),
        Value::String(s) => json!({ "S": s }),
        Value::Array(items) => json!({ "L": items.iter().map(marshal).collect::<Vec<_>>() }),
        Value::Object(_) => json!({ "M": marshal_item(v) }),
    }
}

fn marshal_item(v: &Value) -> Value {
    Value::Object(
        v.as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), marshal(v))).collect())
            .unwrap_or_default(),
    )
}

/// The neutral HTTP result of an API Gateway proxy response (payload 2.0; a bare value is a
/// 200 with that value as JSON, as API Gateway treats it).
pub fn http_result(payload: &Value) -> Value {
    let Some(status) = payload.get("statusCode").and_then(Value::as_u64) else {
        return json!({ "status": 200, "headers": { "content-type": "application/json" }, "body": payload.to_string() });
    };
    json!({
        "status": status,
        "headers": payload.get("headers").cloned().unwrap_or(json!({})),
        "body": payload.get("body").cloned().unwrap_or(Value::Null),
        "is_base64": payload.get("isBase64Encoded").cloned().unwrap_or(json!(false)),
    })
}

/// Whether a function's result reports failed items: the partial batch response of an SQS or
/// DynamoDB Streams invocation (`{"batchItemFailures": [{"itemIdentifier": ...}]}`) with at least
/// one item. Lambda counts such an invocation as a success; `nimbus invoke` does not.
pub fn reports_failed_items(payload: &Value) -> bool {
    payload
        .get("batchItemFailures")
        .and_then(Value::as_array)
        .is_some_and(|items| !items.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_batch_response_with_items_is_a_failure() {
        assert!(reports_failed_items(
            &json!({ "batchItemFailures": [{ "itemIdentifier": "m-1" }] })
        ));
        assert!(!reports_failed_items(&json!({ "batchItemFailures": [] })));
        assert!(!reports_failed_items(&json!({ "statusCode": 200 })));
        assert!(!reports_failed_items(&Value::Null));
    }

    fn sources() -> Sources {
        Sources {
            region: "us-east-1".into(),
            source_arn: "arn:aws:sqs:us-east-1:123456789012:shop-dev-payments".into(),
            source_name: "shop-dev-payments".into(),
        }
    }

    #[test]
    fn http_becomes_payload_v2() {
        let e = json!({ "type": "http", "method": "GET", "path": "/orders/42", "route": "/orders/{id}", "path_params": {"id": "42"}, "query": {"x": "1"}, "headers": {"Accept": "text/plain"}, "body": null });
        let n = native(&e, &sources());
        assert_eq!(n["routeKey"], "GET /orders/{id}");
        assert_eq!(n["rawPath"], "/orders/42");
        assert_eq!(n["rawQueryString"], "x=1");
        assert_eq!(n["pathParameters"]["id"], "42");
        assert_eq!(n["headers"]["accept"], "text/plain");
        assert!(n.get("body").is_none());
    }

    #[test]
    fn queue_table_and_bucket_events() {
        let q = native(
            &json!({ "type": "queue", "messages": [{ "id": "m1", "body": "{\"a\":1}", "receive_count": 2 }] }),
            &sources(),
        );
        assert_eq!(q["Records"][0]["eventSource"], "aws:sqs");
        assert_eq!(q["Records"][0]["body"], "{\"a\":1}");
        assert_eq!(
            q["Records"][0]["attributes"]["ApproximateReceiveCount"],
            "2"
        );
        let t = native(
            &json!({ "type": "table", "action": "modify", "key": {"id": "1"}, "new": {"id": "1", "n": 2, "tags": ["a"]}, "old": {"id": "1", "n": 1} }),
            &sources(),
        );
        let d = &t["Records"][0]["dynamodb"];
        assert_eq!(t["Records"][0]["eventName"], "MODIFY");
        assert_eq!(d["Keys"]["id"], json!({"S": "1"}));
        assert_eq!(d["NewImage"]["n"], json!({"N": "2"}));
        assert_eq!(d["NewImage"]["tags"], json!({"L": [{"S": "a"}]}));
        let b = native(
            &json!({ "type": "bucket", "key": "uploads/a b.png", "size": 3, "action": "created" }),
            &sources(),
        );
        assert_eq!(b["Records"][0]["s3"]["object"]["key"], "uploads/a+b.png");
        assert_eq!(b["Records"][0]["eventName"], "ObjectCreated:Put");
    }

    #[test]
    fn http_results() {
        let r = http_result(&json!({ "statusCode": 201, "headers": {"x": "1"}, "body": "ok" }));
        assert_eq!(r["status"], 201);
        assert_eq!(r["body"], "ok");
        assert_eq!(http_result(&json!({"a": 1}))["status"], 200);
    }
}
