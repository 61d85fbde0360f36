//! Names of the runtime's internal queues. Every event-driven trigger is a durable queue: a
//! user queue for `queue` triggers, a per-subscriber queue for `topic`, `bucket` and `table`
//! triggers (so each subscriber retries on its own), each with a dead-letter queue.

use nimbus_graph::TriggerSpec;

/// The dead-letter queue of `queue`.
pub fn dead_letter(queue: &str) -> String {
    match queue.strip_prefix("sub:") {
        Some(rest) => format!("dlq:{rest}"),
        None => format!("{queue}-dlq"),
    }
}

/// The queue a trigger is consumed from; `None` for HTTP and schedules.
pub fn subscription(spec: &TriggerSpec, function: &str) -> Option<String> {
    match spec {
        TriggerSpec::Http { .. } | TriggerSpec::Schedule { .. } | TriggerSpec::Queue { .. } => None,
        TriggerSpec::Topic { resource } => Some(format!("sub:topic:{resource}:{function}")),
        TriggerSpec::Bucket { resource, .. } => Some(format!("sub:bucket:{resource}:{function}")),
        TriggerSpec::Table { resource, .. } => Some(format!("sub:table:{resource}:{function}")),
    }
}

/// The queue a trigger's events are received from.
pub fn consumed_queue(spec: &TriggerSpec, function: &str) -> Option<String> {
    match spec {
        TriggerSpec::Queue { resource, .. } => Some(resource.clone()),
        other => subscription(other, function),
    }
}

/// Deliveries of a subscription event before it is dead-lettered (the first try and retries).
pub fn subscription_receives(spec: &TriggerSpec) -> u32 {
    match spec {
        TriggerSpec::Table { .. } => 5,
        _ => 3,
    }
}
