//! The dead-letter and messaging tools of the admin API (`nimbus queue …`, `nimbus topic
//! publish`): `POST /queues/peek`, `/queues/send`, `/queues/purge`, `/queues/redrive` and
//! `/topics/publish`, each with a JSON body naming the manifest's queue or topic.
//!
//! A queue is named as the manifest declares it; `"dlq": true` addresses its dead-letter queue
//! (`<queue>-dlq`, present when the queue has `dead_letter`). Peeking changes nothing: no
//! receive count goes up, nothing is hidden. A redrive moves every dead-lettered message back
//! to its queue in one store transaction, with its receive count reset, and wakes the queue's
//! consumer; so does a send. A publish fans out to every subscriber's queue as a function's
//! `publish` does.

use hyper::StatusCode;
use nimbus_graph::ResourceSpec;
use nimbus_local_store::{NewMessage, StoredMessage};
use nimbus_manifest::ResourceKind;
use serde_json::{Value, json};

use crate::runtime::{Live, Runtime};
use crate::{names, now_ms};

/// Messages a peek returns when the request sets no `max`.
const DEFAULT_PEEK: usize = 10;

/// An answer: status and JSON body.
pub(crate) type Answer = (StatusCode, Value);

/// Serves `path` (one of this module's endpoints) with the request body `input`; `None` when
/// `path` is not one of them.
pub(crate) fn handle(rt: &Runtime, path: &str, input: &Value) -> Option<Answer> {
    let op = match path {
        "/queues/peek" | "/queues/send" | "/queues/purge" | "/queues/redrive"
        | "/topics/publish" => path,
        _ => return None,
    };
    let Some(live) = rt.live() else {
        return Some(fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "nothing is deployed".into(),
        ));
    };
    Some(match run(rt, &live, op, input) {
        Ok(v) => (StatusCode::OK, v),
        Err(answer) => answer,
    })
}

fn fail(status: StatusCode, error: String) -> Answer {
    (status, json!({ "error": error }))
}

fn run(rt: &Runtime, live: &Live, op: &str, input: &Value) -> Result<Value, Answer> {
    let store_err = |e: nimbus_local_store::StoreError| {
        fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("local store: {e}"),
        )
    };
    if op == "/topics/publish" {
        let topic = named(live, input, "topic", ResourceKind::Topic)?;
        let message = message(input)?;
        let queues: Vec<(String, NewMessage)> = live
            .deployment
            .subscribers(&topic, "topic")
            .filter_map(|(f, t)| names::subscription(&t.spec, &f.name))
            .map(|q| (q, message.clone()))
            .collect();
        let ids = rt
            .store()
            .send_batch(&queues, now_ms())
            .map_err(store_err)?;
        for (q, _) in &queues {
            rt.wakeup(q).notify_one();
        }
        let subscribers: Vec<&str> = live
            .deployment
            .subscribers(&topic, "topic")
            .map(|(f, _)| f.name.as_str())
            .collect();
        rt.log(
            "info",
            None,
            format!(
                "published to topic {topic} from the admin API ({} subscriber(s))",
                subscribers.len()
            ),
        );
        return Ok(json!({ "topic": topic, "ids": ids, "subscribers": subscribers }));
    }
    let queue = named(live, input, "queue", ResourceKind::Queue)?;
    let dlq = dead_letter_of(live, &queue);
    let wants_dlq = input.get("dlq").and_then(Value::as_bool).unwrap_or(false);
    let no_dlq = || {
        fail(
            StatusCode::BAD_REQUEST,
            format!(
                "queue `{queue}` has no dead-letter queue (add `dead_letter: {{ max_receives: N }}` to it in the manifest)"
            ),
        )
    };
    let target = match wants_dlq {
        true => dlq.clone().ok_or_else(no_dlq)?,
        false => queue.clone(),
    };
    let store = rt.store();
    match op {
        "/queues/peek" => {
            let max = input
                .get("max")
                .and_then(Value::as_u64)
                .map_or(DEFAULT_PEEK, |m| usize::try_from(m).unwrap_or(usize::MAX));
            let all = store.peek_all(&target).map_err(store_err)?;
            let total = all.len();
            let now = now_ms();
            let messages: Vec<Value> = all.iter().take(max).map(|m| shown(m, now)).collect();
            Ok(
                json!({ "queue": queue, "physical": target, "dlq": wants_dlq, "total": total, "messages": messages }),
            )
        }
        "/queues/send" => {
            let message = message(input)?;
            let id = store.send(&target, &message, now_ms()).map_err(store_err)?;
            rt.wakeup(&target).notify_one();
            Ok(json!({ "queue": queue, "physical": target, "id": id }))
        }
        "/queues/purge" => {
            let purged = store.purge(&target).map_err(store_err)?;
            rt.log(
                "info",
                None,
                format!("purged {purged} message(s) from queue {target}"),
            );
            Ok(json!({ "queue": queue, "physical": target, "purged": purged }))
        }
        "/queues/redrive" => {
            let from = dlq.ok_or_else(no_dlq)?;
            let moved = store.redrive(&from, &queue, now_ms()).map_err(store_err)?;
            rt.wakeup(&queue).notify_one();
            rt.log(
                "info",
                None,
                format!("redrove {moved} message(s) from {from} back to {queue}"),
            );
            Ok(json!({ "queue": queue, "from": from, "moved": moved }))
        }
        _ => unreachable!("checked by `handle`"),
    }
}

/// The resource named by `input[field]`, which must be declared and of `kind`.
fn named(live: &Live, input: &Value, field: &str, kind: ResourceKind) -> Result<String, Answer> {
    let Some(name) = input.get(field).and_then(Value::as_str) else {
        return Err(fail(StatusCode::BAD_REQUEST, format!("missing `{field}`")));
    };
    let declared: Vec<&String> = live
        .deployment
        .resources
        .iter()
        .filter(|(_, r)| r.kind == kind)
        .map(|(n, _)| n)
        .collect();
    match live.deployment.resources.get(name) {
        Some(r) if r.kind == kind => Ok(name.to_string()),
        found => {
            let what = match found {
                Some(r) => format!("`{name}` is a {}, not a {field}", r.kind.as_str()),
                None => format!("no {field} `{name}` is deployed"),
            };
            Err((
                StatusCode::NOT_FOUND,
                json!({ "error": what, "declared": declared, "kind": found.map(|r| r.kind.as_str()) }),
            ))
        }
    }
}

/// The dead-letter queue of the manifest's queue `queue`, if it has one.
fn dead_letter_of(live: &Live, queue: &str) -> Option<String> {
    match &live.deployment.resources.get(queue)?.spec {
        ResourceSpec::Queue {
            max_receives: Some(_),
            ..
        } => Some(names::dead_letter(queue)),
        _ => None,
    }
}

/// The message to send: `body` (a string), `attributes` (strings).
fn message(input: &Value) -> Result<NewMessage, Answer> {
    let bad = |m: &str| fail(StatusCode::BAD_REQUEST, m.to_string());
    let body = match input.get("body") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad("`body` must be a string")),
        None => return Err(bad("missing `body`")),
    };
    let mut message = NewMessage::new(body);
    if let Some(map) = input.get("attributes").and_then(Value::as_object) {
        for (k, v) in map {
            let v = v
                .as_str()
                .ok_or_else(|| bad(&format!("attribute `{k}` must be a string")))?;
            message = message.with_attribute(k, v);
        }
    }
    Ok(message)
}

/// A stored message as `peek` shows it.
fn shown(m: &StoredMessage, now: u64) -> Value {
    let state = if m.visible_at_ms <= now {
        "visible"
    } else if m.leased {
        "in_flight"
    } else {
        "delayed"
    };
    json!({
        "id": m.id,
        "body": m.body,
        "attributes": m.attributes,
        "receive_count": m.receive_count,
        "sent_at_ms": m.sent_at_ms,
        "state": state,
    })
}
