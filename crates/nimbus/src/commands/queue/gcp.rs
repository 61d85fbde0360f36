//! The queue and topic tools on GCP, through [`nimbus_gcp::queues::Queues`]. Endpoints and
//! credentials come from the environment, as for `deploy`.

use nimbus_gcp::queues::{PeekResult, Queues};
use nimbus_graph::AppGraph;
use nimbus_provider::ProviderId;
use serde_json::{Value, json};

use super::Op;
use crate::output::Failure;

/// Runs `op` on the deployed queues and topics of `graph`'s service and stage.
pub(super) async fn run(graph: &AppGraph, op: &Op) -> Result<Value, Failure> {
    let gcp = nimbus_gcp::connect(graph, nimbus_cloud::Options::default())
        .await
        .map_err(user)?;
    let queues = Queues::open(&gcp, graph).await.map_err(user)?;
    Ok(match op {
        Op::Peek { queue, dlq, max } => match queues.peek(queue, *dlq, *max).await.map_err(user)? {
            PeekResult::Peeked(p) => json!(p),
            PeekResult::Consumed => {
                let why = ProviderId::Gcp
                    .capabilities()
                    .queue_tools
                    .peek_consumed
                    .clone()
                    .unwrap_or_default();
                return Err(Failure::user(format!(
                    "queue `{queue}` cannot be peeked on gcp: {why}\n  hint: `nimbus queue peek {queue} --dlq -p gcp`"
                )));
            }
        },
        Op::Send { queue, message } => {
            let id = queues
                .send(queue, &message.body, &message.attributes)
                .await
                .map_err(user)?;
            json!({ "queue": queue, "id": id })
        }
        Op::Purge { queue, dlq } => {
            let sub = queues.purge(queue, *dlq).await.map_err(user)?;
            json!({ "queue": queue, "physical": sub, "dlq": dlq })
        }
        Op::Redrive { queue } => {
            let moved = queues.redrive(queue).await.map_err(user)?;
            json!({ "queue": queue, "moved": moved, "how": ProviderId::Gcp.capabilities().queue_tools.redrive })
        }
        Op::Publish { topic, message } => {
            let id = queues
                .publish(topic, &message.body, &message.attributes)
                .await
                .map_err(user)?;
            json!({ "topic": topic, "id": id })
        }
    })
}

fn user(e: nimbus_gcp::GcpError) -> Failure {
    Failure::User(anyhow::Error::new(e))
}
