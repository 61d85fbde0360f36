//! The queue and topic tools on AWS (`nimbus queue … -p aws`, `nimbus topic publish -p aws`):
//! SQS and SNS calls on the queues and topics a deploy created, found in the deployment's state
//! (`aws.sqs.queue/<name>` and `aws.sqs.queue/<name>/dlq` record each queue's URL and ARN,
//! `aws.sns.topic/<name>` the topic's ARN; an existing queue its URL), as `invoke` finds them.
//!
//! - `peek`: SQS has no read that leaves a message untouched. `ReceiveMessage` with
//!   `VisibilityTimeout=0` keeps messages available, but each receive adds one to their
//!   `ApproximateReceiveCount`, which counts toward the source queue's `maxReceiveCount`; the
//!   dead-letter queue has no redrive policy, so peeking it is harmless.
//! - `redrive`: `StartMessageMoveTask` from the dead-letter queue to its source (SQS moves the
//!   messages asynchronously). An endpoint that does not implement it (moto answers 500 without
//!   an AWS error code) gets the same move done here: receive, send to the source with body and
//!   attributes, delete from the dead-letter queue, ten messages at a time.
//! - `purge`: `PurgeQueue`. `send`: `SendMessage`. `publish`: SNS `Publish`.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use nimbus_cloud::DeployOptions;
use nimbus_cloud::queues::{Peeked, QueueMessage};
use nimbus_engine::State;
use nimbus_graph::AppGraph;
use serde_json::Value;

use crate::cloud::Aws;
use crate::driver::error::{Call, CallError};
use crate::error::AwsError;
use crate::kinds;

/// How a redrive went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redriven {
    /// SQS started a message move task (it runs on its own); its handle.
    Started(String),
    /// The endpoint has no `StartMessageMoveTask`: this many messages were moved here.
    Moved(u64),
}

/// A deployed queue: its URL and ARN.
#[derive(Debug, Clone)]
struct Queue {
    url: String,
    arn: String,
}

/// The queues and topics of one deployed service and stage.
pub struct Queues<'a> {
    aws: &'a Aws,
    graph: &'a AppGraph,
    state: Option<State>,
}

impl<'a> Queues<'a> {
    /// Reads the deployment's state for `graph`'s service and stage.
    pub async fn open(aws: &'a Aws, graph: &'a AppGraph) -> Result<Queues<'a>, AwsError> {
        let state = aws.engine(graph, DeployOptions::default())?.state().await?;
        Ok(Queues { aws, graph, state })
    }

    fn output(&self, id: &str, key: &str) -> Option<String> {
        let entry = self.state.as_ref()?.get(id)?;
        entry
            .outputs
            .get(key)
            .and_then(Value::as_str)
            .map(String::from)
    }

    fn not_deployed(&self, what: String) -> AwsError {
        AwsError::Call(format!(
            "{what} is not deployed to aws (stage `{}`); deploy it first: `nimbus deploy -p aws -s {}`",
            self.graph.stage, self.graph.stage
        ))
    }

    /// The deployed queue `name`, or its dead-letter queue.
    fn queue(&self, name: &str, dlq: bool) -> Result<Queue, AwsError> {
        let id = match dlq {
            true => format!("{}/{name}/dlq", kinds::QUEUE),
            false => format!("{}/{name}", kinds::QUEUE),
        };
        if let (Some(url), Some(arn)) = (self.output(&id, "url"), self.output(&id, "arn")) {
            return Ok(Queue { url, arn });
        }
        let existing = format!("{}/{name}", kinds::EXISTING);
        if !dlq
            && let (Some(url), Some(arn)) =
                (self.output(&existing, "url"), self.output(&existing, "arn"))
        {
            return Ok(Queue { url, arn });
        }
        Err(self.not_deployed(match dlq {
            true => format!("the dead-letter queue of `{name}`"),
            false => format!("queue `{name}`"),
        }))
    }

    /// Up to `max` messages of the queue (or its dead-letter queue), received with a visibility
    /// timeout of 0 (see the module docs for what that changes).
    pub async fn peek(&self, name: &str, dlq: bool, max: u32) -> Result<Peeked, AwsError> {
        let queue = self.queue(name, dlq)?;
        let sqs = &self.aws.clients().sqs;
        let mut seen = BTreeSet::new();
        let mut messages = Vec::new();
        // Visible messages come back in no fixed order; messages seen twice are skipped.
        while messages.len() < max as usize {
            let want = (max as usize - messages.len()).min(10) as i32;
            let out = sqs
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(want)
                .visibility_timeout(0)
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .call("ReceiveMessage")?;
            let mut fresh = 0;
            for m in out.messages() {
                let id = m.message_id().unwrap_or_default().to_string();
                if !seen.insert(id.clone()) {
                    continue;
                }
                fresh += 1;
                let system = m.attributes();
                let number = |k: MessageSystemAttributeName| {
                    system
                        .and_then(|a| a.get(&k))
                        .and_then(|v| v.parse::<i64>().ok())
                };
                messages.push(QueueMessage {
                    id,
                    body: m.body().unwrap_or_default().to_string(),
                    attributes: m
                        .message_attributes()
                        .map(|a| {
                            a.iter()
                                .map(|(k, v)| {
                                    (k.clone(), v.string_value().unwrap_or_default().to_string())
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    receive_count: number(MessageSystemAttributeName::ApproximateReceiveCount)
                        .map(|n| n as u32),
                    sent_at_ms: number(MessageSystemAttributeName::SentTimestamp),
                });
            }
            // A short batch (SQS returns what it has, up to `want`) or nothing new: done, so
            // that a peek receives each message once.
            if fresh == 0 || out.messages().len() < want as usize {
                break;
            }
        }
        Ok(Peeked {
            queue: name.to_string(),
            physical: queue.url,
            dlq,
            messages,
        })
    }

    /// Sends one message; returns its id.
    pub async fn send(
        &self,
        name: &str,
        body: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        let queue = self.queue(name, false)?;
        send(self.aws, &queue.url, body, &sqs_attributes(attributes)?).await
    }

    /// Purges the queue (or its dead-letter queue); returns its URL.
    pub async fn purge(&self, name: &str, dlq: bool) -> Result<String, AwsError> {
        let queue = self.queue(name, dlq)?;
        self.aws
            .clients()
            .sqs
            .purge_queue()
            .queue_url(&queue.url)
            .send()
            .await
            .call("PurgeQueue")?;
        Ok(queue.url)
    }

    /// Moves the dead letters of `name` back to it.
    pub async fn redrive(&self, name: &str) -> Result<Redriven, AwsError> {
        let source = self.queue(name, false)?;
        let dlq = self.queue(name, true)?;
        let sqs = &self.aws.clients().sqs;
        let task = sqs
            .start_message_move_task()
            .source_arn(&dlq.arn)
            .destination_arn(&source.arn)
            .send()
            .await
            .call("StartMessageMoveTask");
        match task {
            Ok(out) => {
                return Ok(Redriven::Started(
                    out.task_handle().unwrap_or_default().to_string(),
                ));
            }
            Err(e) if !unimplemented(&e) => return Err(e.into()),
            Err(_) => {}
        }
        let mut moved = 0;
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&dlq.url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .wait_time_seconds(0)
                .message_attribute_names("All")
                .send()
                .await
                .call("ReceiveMessage")?;
            if out.messages().is_empty() {
                return Ok(Redriven::Moved(moved));
            }
            for m in out.messages() {
                let attributes = m.message_attributes().cloned().unwrap_or_default();
                send(
                    self.aws,
                    &source.url,
                    m.body().unwrap_or_default(),
                    &attributes,
                )
                .await?;
                sqs.delete_message()
                    .queue_url(&dlq.url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .call("DeleteMessage")?;
                moved += 1;
            }
        }
    }

    /// Publishes to topic `name`; returns the message id.
    pub async fn publish(
        &self,
        name: &str,
        body: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        let arn = self
            .output(&format!("{}/{name}", kinds::TOPIC), "arn")
            .or_else(|| self.output(&format!("{}/{name}", kinds::EXISTING), "arn"))
            .ok_or_else(|| self.not_deployed(format!("topic `{name}`")))?;
        let mut publish = self
            .aws
            .clients()
            .sns
            .publish()
            .topic_arn(arn)
            .message(body);
        for (k, v) in attributes {
            let value = aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| AwsError::Call(format!("attribute `{k}`: {e}")))?;
            publish = publish.message_attributes(k, value);
        }
        let out = publish.send().await.call("Publish")?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}

/// Whether the endpoint does not implement the call (moto: a 500 without an AWS error code).
fn unimplemented(e: &CallError) -> bool {
    matches!(
        e.code.as_deref(),
        Some("InvalidAction" | "UnknownOperationException" | "NotImplemented")
    ) || (e.code.is_none() && matches!(e.status, Some(500 | 501)))
}

fn sqs_attributes(
    attributes: &BTreeMap<String, String>,
) -> Result<std::collections::HashMap<String, MessageAttributeValue>, AwsError> {
    attributes
        .iter()
        .map(|(k, v)| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map(|a| (k.clone(), a))
                .map_err(|e| AwsError::Call(format!("attribute `{k}`: {e}")))
        })
        .collect()
}

async fn send(
    aws: &Aws,
    url: &str,
    body: &str,
    attributes: &std::collections::HashMap<String, MessageAttributeValue>,
) -> Result<String, AwsError> {
    let out = aws
        .clients()
        .sqs
        .send_message()
        .queue_url(url)
        .message_body(body)
        .set_message_attributes((!attributes.is_empty()).then(|| attributes.clone()))
        .send()
        .await
        .call("SendMessage")?;
    Ok(out.message_id().unwrap_or_default().to_string())
}
