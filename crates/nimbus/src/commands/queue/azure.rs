//! The queue tools on Azure, through [`nimbus_azure::queues::Queues`]: the stage's data storage
//! account, found as `deploy` and `info` find it (the manifest's `providers.azure` and the
//! environment). Topics are Service Bus topics: `topic publish` is refused before this (see
//! `[queue_tools]` in `providers/azure/capabilities.toml`).

use nimbus_graph::AppGraph;
use nimbus_provider::ProviderId;
use serde_json::{Value, json};

use super::Op;
use crate::output::Failure;

/// Runs `op` on the stage's storage queues.
pub(super) async fn run(graph: &AppGraph, op: &Op) -> Result<Value, Failure> {
    let azure = nimbus_azure::connect(graph, nimbus_cloud::Options::default())
        .await
        .map_err(user)?;
    let queues = azure.queues().await.map_err(user)?;
    Ok(match op {
        Op::Peek { queue, dlq, max } => {
            json!(queues.peek(queue, *dlq, *max).await.map_err(user)?)
        }
        Op::Send { queue, message } => {
            let id = queues.send(queue, &message.body).await.map_err(user)?;
            json!({ "queue": queue, "id": id })
        }
        Op::Purge { queue, dlq } => {
            let physical = queues.purge(queue, *dlq).await.map_err(user)?;
            json!({ "queue": queue, "physical": physical, "dlq": dlq })
        }
        Op::Redrive { queue } => {
            let moved = queues.redrive(queue).await.map_err(user)?;
            json!({ "queue": queue, "moved": moved, "how": ProviderId::Azure.capabilities().queue_tools.redrive })
        }
        Op::Publish { .. } => unreachable!("refused by the capabilities"),
    })
}

fn user(e: nimbus_azure::AzureError) -> Failure {
    Failure::User(anyhow::Error::new(e))
}
