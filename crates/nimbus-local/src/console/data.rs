//! What the console reads, behind one small interface so its sources can change without the
//! page noticing: the app graph from the live deployment, an invocation's log lines from the
//! JSON log file, the Prometheus counters, and the dead-letter queues of the store.

use nimbus_graph::TriggerSpec;
use serde_json::{Value, json};

use crate::names;
use crate::runtime::{Live, Runtime};

/// The architecture: functions with their triggers and grants, and resources.
pub fn graph(live: &Live) -> Value {
    let d = &live.deployment;
    let functions: Vec<Value> = d
        .functions
        .values()
        .map(|f| {
            let triggers: Vec<Value> = f
                .triggers
                .iter()
                .map(|t| {
                    let label = match &t.spec {
                        TriggerSpec::Http { method, path, .. } => format!("{method} {path}"),
                        TriggerSpec::Schedule { expression, .. } => expression.clone(),
                        other => other.resource().unwrap_or_default().to_string(),
                    };
                    json!({ "id": t.id, "kind": t.spec.kind().as_str(), "resource": t.spec.resource(), "label": label })
                })
                .collect();
            let uses: Vec<Value> = f
                .grants
                .iter()
                .map(|(r, a)| json!({ "resource": r, "access": a.to_string() }))
                .collect();
            json!({ "name": f.name, "runtime": f.runtime, "triggers": triggers, "uses": uses })
        })
        .collect();
    let resources: Vec<Value> = d
        .resources
        .iter()
        .map(|(name, r)| json!({ "name": name, "kind": r.kind.to_string() }))
        .collect();
    json!({ "service": d.service, "stage": d.stage, "functions": functions, "resources": resources })
}

/// The log records of one invocation, from the JSON log file.
pub fn logs_of(rt: &Runtime, request_id: &str) -> Vec<Value> {
    rt.logs.flush();
    crate::logs::read(&rt.state.logs(), &crate::logs::Filter::default())
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.get("request_id").and_then(Value::as_str) == Some(request_id))
        .collect()
}

/// The Prometheus text of the runtime's counters (queue depths left out).
pub fn metrics_text(rt: &Runtime) -> String {
    rt.metrics.render(&[])
}

/// The queue a dead-letter queue's messages came from, if `queue` is one.
pub fn source_of(queue: &str) -> Option<String> {
    if let Some(rest) = queue.strip_prefix("dlq:") {
        return Some(format!("sub:{rest}"));
    }
    let source = queue.strip_suffix("-dlq")?;
    (names::dead_letter(source) == queue).then(|| source.to_string())
}

/// Every dead-letter queue with its messages and the queue they came from.
pub fn dead_letters(rt: &Runtime) -> Vec<Value> {
    let store = rt.store();
    let queues = store.queues().unwrap_or_default();
    queues
        .iter()
        .filter_map(|q| {
            let source = source_of(q).filter(|s| queues.contains(s))?;
            let messages: Vec<Value> = store
                .peek_all(q)
                .unwrap_or_default()
                .into_iter()
                .map(|m| json!({ "id": m.id, "body": m.body, "attributes": m.attributes, "receive_count": m.receive_count, "sent_at_ms": m.sent_at_ms }))
                .collect();
            Some(json!({ "queue": q, "source": source, "messages": messages }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::source_of;

    #[test]
    fn dead_letter_queues_map_back_to_their_source() {
        assert_eq!(source_of("payments-dlq").as_deref(), Some("payments"));
        assert_eq!(
            source_of("dlq:topic:order-events:reserve-stock").as_deref(),
            Some("sub:topic:order-events:reserve-stock")
        );
        assert_eq!(source_of("payments"), None);
    }
}
