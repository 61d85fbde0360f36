//! The queue and topic tools on AWS, through [`nimbus_aws::queues::Queues`]. Credentials,
//! region and endpoint (`--endpoint-url`) come from the same chain as `deploy`.

use nimbus_aws::queues::{Queues, Redriven};
use nimbus_graph::AppGraph;
use serde_json::{Value, json};

use super::Op;
use crate::cli::Global;
use crate::output::Failure;

/// Runs `op` on the deployed queues and topics of `graph`'s service and stage.
pub(super) async fn run(global: &Global, graph: &AppGraph, op: &Op) -> Result<Value, Failure> {
    let aws = nimbus_aws::connect(
        graph,
        nimbus_cloud::Options::default(),
        global.endpoint_url.clone(),
    )
    .await
    .map_err(user)?;
    let queues = Queues::open(&aws, graph).await.map_err(user)?;
    Ok(match op {
        Op::Peek { queue, dlq, max } => {
            json!(queues.peek(queue, *dlq, *max).await.map_err(user)?)
        }
        Op::Send { queue, message } => {
            let id = queues
                .send(queue, &message.body, &message.attributes)
                .await
                .map_err(user)?;
            json!({ "queue": queue, "id": id })
        }
        Op::Purge { queue, dlq } => {
            let url = queues.purge(queue, *dlq).await.map_err(user)?;
            json!({ "queue": queue, "physical": url, "dlq": dlq })
        }
        Op::Redrive { queue } => match queues.redrive(queue).await.map_err(user)? {
            Redriven::Started(task) => json!({ "queue": queue, "started": true, "task": task }),
            Redriven::Moved(moved) => json!({
                "queue": queue,
                "moved": moved,
                "how": "the endpoint does not implement StartMessageMoveTask: the messages were received from the dead-letter queue, sent to the queue and deleted, one by one",
            }),
        },
        Op::Publish { topic, message } => {
            let id = queues
                .publish(topic, &message.body, &message.attributes)
                .await
                .map_err(user)?;
            json!({ "topic": topic, "id": id })
        }
    })
}

fn user(e: nimbus_aws::AwsError) -> Failure {
    Failure::User(anyhow::Error::new(e))
}
