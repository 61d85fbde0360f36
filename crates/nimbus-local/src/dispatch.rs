//! Event delivery: a consumer per queue-backed trigger (queue, topic, bucket and table
//! triggers), a timer per schedule, and the bucket scanner. Started per deployed generation and
//! stopped when it is replaced.
//!
//! Delivery is at least once: a message is acknowledged only after the handler succeeded. A
//! failed message stays hidden until its visibility timeout (counted from its receive) runs
//! out, then is delivered again, as on SQS; the messages a handler reports in
//! `{"failed": [...]}` are retried alone. Each failure is logged
//! (`payments: message m-1 failed (attempt 3/5): ValueError: …`) and counted as a retry; a
//! failure on the last of the queue's `max_receives` makes the message visible at once, so that
//! it moves to its dead-letter queue (logged `moved to payments-dlq after 5 receives`, counted
//! as dead-lettered). Unacknowledged messages survive a crash: after a restart they are
//! delivered again once their visibility timeout has passed. Schedules retry a failed run twice
//! with a backoff (1 s, 2 s), as EventBridge would.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use nimbus_graph::TriggerSpec;
use nimbus_local_store::{NewMessage, Received};
use nimbus_local_workers::InvokeError;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use crate::buckets::Snapshot;
use crate::deployment::{DeployedFunction, DeployedTrigger};
use crate::invoke::{Context, invoke, request_id};
use crate::runtime::{Live, Runtime};
use crate::{names, now_ms};

/// Starts the consumers and schedules of `live`, and the bucket scanner.
pub fn start(rt: &Arc<Runtime>, live: &Arc<Live>) {
    for f in live.deployment.functions.values() {
        for t in &f.triggers {
            match &t.spec {
                TriggerSpec::Http { .. } => {}
                TriggerSpec::Schedule { .. } => {
                    tokio::spawn(schedule(
                        rt.clone(),
                        live.clone(),
                        f.name.clone(),
                        t.clone(),
                    ));
                }
                spec => {
                    let queue = names::consumed_queue(spec, &f.name)
                        .expect("event triggers consume a queue");
                    tokio::spawn(consume(
                        rt.clone(),
                        live.clone(),
                        f.clone(),
                        t.clone(),
                        queue,
                    ));
                }
            }
        }
    }
    if live.deployment.functions.values().any(|f| {
        f.triggers
            .iter()
            .any(|t| matches!(t.spec, TriggerSpec::Bucket { .. }))
    }) {
        tokio::spawn(scan_buckets(rt.clone(), live.clone()));
    }
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Retry delay after `receive_count` deliveries: `base`, doubling, at most 60 s.
fn backoff(base: u64, receive_count: u32) -> u64 {
    base.saturating_mul(1 << receive_count.saturating_sub(1).min(6))
        .min(60_000)
}

async fn consume(
    rt: Arc<Runtime>,
    live: Arc<Live>,
    f: DeployedFunction,
    trigger: DeployedTrigger,
    queue: String,
) {
    let mut stop = live.stopped();
    let batch = match &trigger.spec {
        TriggerSpec::Queue { batch_size, .. } => (*batch_size).max(1) as usize,
        _ => 1,
    };
    let kind = trigger.spec.kind().as_str();
    let permits = Arc::new(Semaphore::new(f.concurrency.max(1) as usize));
    let wake = rt.wakeup(&queue);
    loop {
        if *stop.borrow() {
            return;
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = stopped(&mut stop) => return,
        };
        let messages = match rt.store.receive(&queue, batch, now_ms()) {
            Ok(m) => m,
            Err(e) => {
                rt.log(
                    "error",
                    Some(&f.name),
                    format!("receiving from `{queue}`: {e}"),
                );
                Vec::new()
            }
        };
        if messages.is_empty() {
            drop(permit);
            let sleep = match rt.store.next_visible_at(&queue) {
                Ok(Some(at)) => Duration::from_millis(at.saturating_sub(now_ms()).clamp(5, 1000)),
                _ => Duration::from_millis(1000),
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = stopped(&mut stop) => return,
            }
            continue;
        }
        let (rt2, live2, name, queue2, kind2) = (
            rt.clone(),
            live.clone(),
            f.name.clone(),
            queue.clone(),
            kind.to_string(),
        );
        let trigger = trigger.clone();
        tokio::spawn(async move {
            deliver(&rt2, &live2, &name, &trigger, &queue2, &kind2, messages).await;
            drop(permit);
        });
    }
}

/// The neutral event for messages of a queue-backed trigger.
fn event_for(trigger: &TriggerSpec, messages: &[Received]) -> Value {
    let as_messages = |with_count: bool| -> Vec<Value> {
        messages
            .iter()
            .map(|m| {
                // The trace context is the runtime's, not the sender's attribute.
                let mut attributes = m.attributes.clone();
                attributes.remove(crate::trace::TRACEPARENT);
                let mut v = json!({ "id": m.id, "body": m.body, "attributes": attributes });
                if with_count {
                    v["receive_count"] = json!(m.receive_count);
                }
                v
            })
            .collect()
    };
    match trigger {
        TriggerSpec::Queue { resource, .. } => {
            json!({ "type": "queue", "source": resource, "messages": as_messages(true) })
        }
        TriggerSpec::Topic { resource } => {
            json!({ "type": "topic", "source": resource, "messages": as_messages(false) })
        }
        TriggerSpec::Bucket { .. } | TriggerSpec::Table { .. } => {
            // One change per event; the stored body is the event without its type.
            let mut event: Value = serde_json::from_str(&messages[0].body).unwrap_or(Value::Null);
            event["type"] = json!(trigger.kind().as_str());
            event
        }
        TriggerSpec::Http { .. } | TriggerSpec::Schedule { .. } => Value::Null,
    }
}

/// Receives of a message of `trigger`'s queue before it is dead-lettered (`None`: retried
/// forever), and the dead-letter queue's name.
fn receive_limit(live: &Live, spec: &TriggerSpec, queue: &str) -> Option<(u32, String)> {
    let limit = match spec {
        TriggerSpec::Queue { resource, .. } => match &live.deployment.resources.get(resource)?.spec
        {
            nimbus_graph::ResourceSpec::Queue { max_receives, .. } => (*max_receives)?,
            _ => return None,
        },
        other => names::subscription_receives(other),
    };
    Some((limit, names::dead_letter(queue)))
}

/// How a queue is named to the user: a subscription's queue as `topic order-events →
/// reserve-stock`, its dead-letter queue as `the dead-letter queue of topic order-events →
/// reserve-stock`.
fn shown(queue: &str) -> String {
    let subscription = |rest: &str| {
        let parts: Vec<&str> = rest.splitn(3, ':').collect();
        (parts.len() == 3).then(|| format!("{} {} → {}", parts[0], parts[1], parts[2]))
    };
    if let Some(name) = queue.strip_prefix("sub:").and_then(subscription) {
        return name;
    }
    if let Some(name) = queue.strip_prefix("dlq:").and_then(subscription) {
        return format!("the dead-letter queue of {name}");
    }
    queue.to_string()
}

async fn deliver(
    rt: &Runtime,
    live: &Live,
    function: &str,
    trigger: &DeployedTrigger,
    queue: &str,
    kind: &str,
    messages: Vec<Received>,
) {
    let event = event_for(&trigger.spec, &messages);
    // The invocation continues the trace of the (first traced) message it got; the other
    // messages of a batch are received in their own traces' names too, as a span link would.
    let parent = messages.iter().find_map(|m| {
        m.attributes
            .get(crate::trace::TRACEPARENT)
            .and_then(|t| crate::trace::SpanContext::parse(t))
    });
    let result = invoke(
        rt,
        live,
        function,
        kind,
        &request_id(),
        event,
        Context::default().child_of(parent),
    )
    .await;
    let (failed, why): (BTreeSet<String>, String) = match &result {
        Ok(inv) => (
            inv.result
                .get("failed")
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            "reported failed by the handler".to_string(),
        ),
        Err(InvokeError::Overloaded | InvokeError::Draining) => {
            // Not the handler's fault: put them back soon without waiting out the backoff.
            for m in &messages {
                let _ = rt.store.retry(queue, &m.receipt, 200, now_ms());
            }
            return;
        }
        Err(e) => (
            messages.iter().map(|m| m.id.clone()).collect(),
            match e {
                InvokeError::Handler { error } | InvokeError::LoadFailed { error } => {
                    error.to_string()
                }
                other => other.to_string(),
            },
        ),
    };
    let (retry, done): (Vec<&Received>, Vec<&Received>) =
        messages.iter().partition(|m| failed.contains(&m.id));
    let receipts: Vec<_> = done.iter().map(|m| m.receipt.clone()).collect();
    if let Err(e) = rt.store.ack(queue, &receipts) {
        rt.log(
            "error",
            Some(function),
            format!("acknowledging on `{queue}`: {e}"),
        );
    }
    let limit = receive_limit(live, &trigger.spec, queue);
    let metrics = rt.metrics.function(function);
    let name = shown(queue);
    for m in retry {
        let attempt = match &limit {
            Some((max, _)) => format!("attempt {}/{max}", m.receive_count),
            None => format!("attempt {}", m.receive_count),
        };
        rt.log(
            "warn",
            Some(function),
            format!("{name}: message {} failed ({attempt}): {why}", m.id),
        );
        let last = limit.as_ref().filter(|(max, _)| m.receive_count >= *max);
        // A last failure is made visible at once, so that the next receive moves it to the
        // dead-letter queue; the others wait out their visibility timeout (or the testing aid's
        // delay).
        let delay = match (last, rt.redeliver_after_ms) {
            (Some(_), _) => Some(0),
            (None, Some(ms)) => Some(ms),
            (None, None) => None,
        };
        if let Some(delay) = delay
            && let Err(e) = rt.store.retry(queue, &m.receipt, delay, now_ms())
        {
            rt.log(
                "error",
                Some(function),
                format!("scheduling a retry on `{queue}`: {e}"),
            );
        }
        match last {
            Some((max, dlq)) => {
                metrics.dead_letter();
                rt.log(
                    "error",
                    Some(function),
                    format!(
                        "{name}: message {} moved to {} after {max} receives",
                        m.id,
                        shown(dlq)
                    ),
                );
                rt.wakeup(queue).notify_one();
            }
            None => metrics.retry(),
        }
    }
}

async fn schedule(rt: Arc<Runtime>, live: Arc<Live>, function: String, trigger: DeployedTrigger) {
    let TriggerSpec::Schedule {
        expression,
        timezone,
    } = &trigger.spec
    else {
        return;
    };
    let (Ok(expr), Ok(tz)) = (
        nimbus_schedule::parse(expression),
        timezone.parse::<chrono_tz::Tz>(),
    ) else {
        rt.log(
            "error",
            Some(&function),
            format!("schedule `{expression}` ({timezone}) cannot run"),
        );
        return;
    };
    let name = trigger.id.trim_start_matches("trigger:").replace('/', "-");
    let mut stop = live.stopped();
    let mut after = rt.clock.now();
    loop {
        let Some(next) = nimbus_schedule::next_after(&expr, after, tz) else {
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep(rt.clock.real_until(next)) => {}
            _ = stopped(&mut stop) => return,
        }
        after = next;
        let event = json!({ "type": "schedule", "name": name, "time": next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true) });
        // Two retries, as EventBridge would, then give up on this run.
        for attempt in 1..=3u32 {
            let Err(e) = invoke(
                &rt,
                &live,
                &function,
                "schedule",
                &request_id(),
                event.clone(),
                Context::default(),
            )
            .await
            else {
                break;
            };
            let verdict = if attempt == 3 {
                "; this run is given up"
            } else {
                "; retried"
            };
            rt.log(
                if attempt == 3 { "error" } else { "warn" },
                Some(&function),
                format!(
                    "schedule {name}: the run of {} failed (attempt {attempt}/3): {e}{verdict}",
                    event["time"].as_str().unwrap_or("")
                ),
            );
            if attempt < 3 {
                rt.metrics.function(&function).retry();
                tokio::time::sleep(Duration::from_millis(backoff(rt.retry_base_ms, attempt))).await;
            }
        }
    }
}

async fn scan_buckets(rt: Arc<Runtime>, live: Arc<Live>) {
    let mut stop = live.stopped();
    let path = rt.state.bucket_snapshot();
    let mut snapshots: std::collections::BTreeMap<String, Snapshot> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    loop {
        let mut changed = false;
        for (name, bucket) in &live.buckets {
            let snap = snapshots.entry(name.clone()).or_default();
            let events = match bucket.scan(snap) {
                Ok(e) => e,
                Err(e) => {
                    rt.log("error", None, format!("scanning bucket `{name}`: {e}"));
                    continue;
                }
            };
            if events.is_empty() {
                continue;
            }
            changed = true;
            // Who uploaded each key (a handler's write): its event continues that trace.
            let traced: Vec<std::collections::BTreeMap<String, String>> = events
                .iter()
                .map(|e| {
                    rt.tracer
                        .take_upload(name, &e.key)
                        .map(|cx| {
                            [(crate::trace::TRACEPARENT.to_string(), cx.traceparent())].into()
                        })
                        .unwrap_or_default()
                })
                .collect();
            let mut sends = Vec::new();
            for (f, t) in live.deployment.subscribers(name, "bucket") {
                let TriggerSpec::Bucket {
                    events: wanted,
                    prefix,
                    suffix,
                    ..
                } = &t.spec
                else {
                    continue;
                };
                let queue =
                    names::subscription(&t.spec, &f.name).expect("bucket triggers have a queue");
                for (e, attributes) in events.iter().zip(&traced) {
                    let action_ok = wanted
                        .iter()
                        .any(|w| format!("{w:?}").eq_ignore_ascii_case(e.action));
                    let filter_ok = prefix.as_deref().is_none_or(|p| e.key.starts_with(p))
                        && suffix.as_deref().is_none_or(|s| e.key.ends_with(s));
                    if action_ok && filter_ok {
                        let body = json!({ "bucket": name, "key": e.key, "size": e.size, "action": e.action }).to_string();
                        sends.push((
                            queue.clone(),
                            NewMessage {
                                body,
                                attributes: attributes.clone(),
                                delay_ms: 0,
                            },
                        ));
                    }
                }
            }
            if !sends.is_empty() {
                match rt.store.send_batch(&sends, now_ms()) {
                    Ok(_) => sends.iter().for_each(|(q, _)| rt.wakeup(q).notify_one()),
                    Err(e) => rt.log(
                        "error",
                        None,
                        format!("queueing bucket events of `{name}`: {e}"),
                    ),
                }
            }
        }
        if changed && let Ok(bytes) = serde_json::to_vec(&snapshots) {
            let _ = crate::state::write_atomic(&path, &bytes);
        }
        tokio::select! {
            _ = rt.bucket_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{backoff, shown};

    #[test]
    fn queues_are_named_as_the_user_declared_them() {
        assert_eq!(shown("payments"), "payments");
        assert_eq!(
            shown("sub:topic:order-events:reserve-stock"),
            "topic order-events → reserve-stock"
        );
        assert_eq!(
            shown("dlq:table:orders:audit-orders"),
            "the dead-letter queue of table orders → audit-orders"
        );
        assert_eq!(shown("payments-dlq"), "payments-dlq");
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        assert_eq!(
            [
                backoff(1000, 1),
                backoff(1000, 2),
                backoff(1000, 3),
                backoff(1000, 7),
                backoff(1000, 40)
            ],
            [1000, 2000, 4000, 60_000, 60_000]
        );
    }
}
