//! The queue and topic tools on the local runtime: one call to its admin API
//! (`nimbus_local`'s `queues` module), which checks the names against what was deployed.

use nimbus_manifest::ResourceKind;
use serde_json::{Value, json};

use super::Op;
use crate::cli::{Global, Which};
use crate::commands::local::admin_call;
use crate::output::{Failure, Out};

/// Runs `op` on the running local deployment `which` addresses; returns the runtime's answer.
pub(super) fn run(global: &Global, which: &Which, op: &Op, out: &Out) -> Result<Value, Failure> {
    let (path, body) = match op {
        Op::Peek { queue, dlq, max } => (
            "/queues/peek",
            json!({ "queue": queue, "dlq": dlq, "max": max }),
        ),
        Op::Send { queue, message } => (
            "/queues/send",
            json!({ "queue": queue, "body": message.body, "attributes": message.attributes }),
        ),
        Op::Purge { queue, dlq } => ("/queues/purge", json!({ "queue": queue, "dlq": dlq })),
        Op::Redrive { queue } => ("/queues/redrive", json!({ "queue": queue })),
        Op::Publish { topic, message } => (
            "/topics/publish",
            json!({ "topic": topic, "body": message.body, "attributes": message.attributes }),
        ),
    };
    let (place, status, answer) = admin_call(global, which, path, &body, out)?;
    let error = answer["error"].as_str().unwrap_or_default();
    match status {
        200 => Ok(answer),
        404 if answer.get("declared").is_some() => {
            let (name, kind) = op.resource();
            let declared: Vec<&str> = answer["declared"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let found = ResourceKind::ALL
                .into_iter()
                .find(|k| answer["kind"].as_str() == Some(k.as_str()));
            Err(super::unknown(name, kind, found, &declared, &place))
        }
        400 if error.contains("no dead-letter queue") => Err(super::no_dlq(op.resource().0)),
        _ => Err(Failure::user(format!(
            "the local runtime answered {status}: {}",
            if error.is_empty() {
                answer.to_string()
            } else {
                error.to_string()
            }
        ))),
    }
}
