//! The queue and topic tools on GCP (`nimbus queue … -p gcp`, `nimbus topic publish -p gcp`):
//! Pub/Sub calls on what a deploy created, found in the deployment's state. A queue is a topic
//! and its one subscription (`gcp.pubsub.topic/<name>`, `gcp.pubsub.subscription/<name>`); its
//! dead letters are kept by the subscription of the dead-letter topic (`…/<name>/dlq`).
//!
//! - `peek`: Pub/Sub has no read that leaves a message untouched: `pull`, then
//!   `modifyAckDeadline` 0 gives each message back at once. On a subscription with a
//!   dead-letter policy a pull counts as a delivery attempt; the dead-letter subscription has
//!   none, so peeking it is harmless. A queue a function consumes is a push subscription: a
//!   pull there would compete with the pushes, so only its dead-letter queue is peeked.
//! - `redrive`: pull the dead-letter subscription, publish each message (data and attributes)
//!   to the queue's topic, then acknowledge it; Pub/Sub has no move operation.
//! - `purge`: `seek` the subscription to now (acknowledges everything published before).
//! - `send` and `publish`: `topics.publish`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nimbus_cloud::queues::{Peeked, QueueMessage};
use nimbus_engine::State;
use nimbus_graph::AppGraph;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cloud::Gcp;
use crate::error::GcpError;
use crate::kinds;

/// Messages per pull.
const BATCH: u32 = 100;

/// The queues and topics of one deployed service and stage.
pub struct Queues<'a> {
    gcp: &'a Gcp,
    graph: &'a AppGraph,
    state: Option<State>,
}

impl<'a> Queues<'a> {
    /// Reads the deployment's state for `graph`'s service and stage.
    pub async fn open(gcp: &'a Gcp, graph: &'a AppGraph) -> Result<Queues<'a>, GcpError> {
        let state = gcp.engine(graph)?.state().await?;
        Ok(Queues { gcp, graph, state })
    }

    /// The full name (`projects/P/…`) recorded for the state entry `id`.
    fn name_of(&self, id: &str) -> Option<String> {
        let e = self.state.as_ref()?.get(id)?;
        e.outputs
            .get("name")
            .or_else(|| e.properties.get("name"))
            .and_then(Value::as_str)
            .map(String::from)
    }

    fn not_deployed(&self, what: String) -> GcpError {
        GcpError::NotDeployedResource {
            what,
            stage: self.graph.stage.clone(),
        }
    }

    /// The subscription of queue `name` (or of its dead-letter topic).
    fn subscription(&self, name: &str, dlq: bool) -> Result<(String, bool), GcpError> {
        let id = match dlq {
            true => format!("{}/{name}/dlq", kinds::SUBSCRIPTION),
            false => format!("{}/{name}", kinds::SUBSCRIPTION),
        };
        let full = self.name_of(&id).ok_or_else(|| {
            self.not_deployed(match dlq {
                true => format!("the dead-letter queue of `{name}`"),
                false => format!("queue `{name}`"),
            })
        })?;
        let push = self
            .state
            .as_ref()
            .and_then(|s| s.get(&id))
            .and_then(|e| e.properties["pushConfig"]["pushEndpoint"].as_str())
            .is_some_and(|e| !e.is_empty());
        Ok((full, push))
    }

    /// The topic of queue or topic `name`.
    fn topic(&self, name: &str, what: &str) -> Result<String, GcpError> {
        self.name_of(&format!("{}/{name}", kinds::TOPIC))
            .ok_or_else(|| self.not_deployed(format!("{what} `{name}`")))
    }

    async fn call(&self, path: &str, body: Value, action: String) -> Result<Value, GcpError> {
        let url = self.gcp.client().url("pubsub", &format!("/v1/{path}"));
        self.gcp
            .client()
            .json(Method::POST, &url, Some(&body))
            .await
            .map_err(|source| GcpError::Api { action, source })
    }

    async fn pull(&self, subscription: &str, max: u32) -> Result<Vec<Value>, GcpError> {
        let answer = self
            .call(
                &format!("{subscription}:pull"),
                json!({ "maxMessages": max, "returnImmediately": true }),
                format!("pulling from `{subscription}`"),
            )
            .await?;
        Ok(answer["receivedMessages"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Up to `max` messages, each given back at once; [`PeekResult::Consumed`] when the queue
    /// is a push subscription (a function consumes it).
    pub async fn peek(&self, name: &str, dlq: bool, max: u32) -> Result<PeekResult, GcpError> {
        let (subscription, push) = self.subscription(name, dlq)?;
        if push {
            return Ok(PeekResult::Consumed);
        }
        let mut messages = Vec::new();
        let mut ack_ids = Vec::new();
        while messages.len() < max as usize {
            let got = self
                .pull(&subscription, (max - messages.len() as u32).min(BATCH))
                .await?;
            if got.is_empty() {
                break;
            }
            for r in &got {
                ack_ids.push(r["ackId"].clone());
                let m = &r["message"];
                messages.push(QueueMessage {
                    id: m["messageId"].as_str().unwrap_or_default().to_string(),
                    body: decode(&m["data"]),
                    attributes: attributes(&m["attributes"]),
                    receive_count: r["deliveryAttempt"].as_u64().map(|n| n as u32),
                    sent_at_ms: m["publishTime"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.timestamp_millis()),
                });
            }
        }
        // Held messages are not pulled again until given back: give them all back at the end.
        if !ack_ids.is_empty() {
            self.call(
                &format!("{subscription}:modifyAckDeadline"),
                json!({ "ackIds": ack_ids, "ackDeadlineSeconds": 0 }),
                format!("giving messages back to `{subscription}`"),
            )
            .await?;
        }
        Ok(PeekResult::Peeked(Peeked {
            queue: name.to_string(),
            physical: subscription,
            dlq,
            messages,
        }))
    }

    /// Publishes to the topic of queue `name`; returns the message id.
    pub async fn send(
        &self,
        name: &str,
        body: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<String, GcpError> {
        let topic = self.topic(name, "queue")?;
        self.publish_to(&topic, body.as_bytes(), attributes).await
    }

    /// Publishes to topic `name`; returns the message id.
    pub async fn publish(
        &self,
        name: &str,
        body: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<String, GcpError> {
        let topic = self.topic(name, "topic")?;
        self.publish_to(&topic, body.as_bytes(), attributes).await
    }

    async fn publish_to(
        &self,
        topic: &str,
        data: &[u8],
        attributes: &BTreeMap<String, String>,
    ) -> Result<String, GcpError> {
        let mut message = json!({ "data": STANDARD.encode(data) });
        if !attributes.is_empty() {
            message["attributes"] = json!(attributes);
        }
        let answer = self
            .call(
                &format!("{topic}:publish"),
                json!({ "messages": [message] }),
                format!("publishing to `{topic}`"),
            )
            .await?;
        Ok(answer["messageIds"][0]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Seeks the subscription of `name` (or of its dead-letter topic) to now; returns it.
    pub async fn purge(&self, name: &str, dlq: bool) -> Result<String, GcpError> {
        let (subscription, _) = self.subscription(name, dlq)?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.call(
            &format!("{subscription}:seek"),
            json!({ "time": now }),
            format!("purging `{subscription}`"),
        )
        .await?;
        Ok(subscription)
    }

    /// Republishes the dead letters of `name` to its topic; returns how many moved.
    pub async fn redrive(&self, name: &str) -> Result<u64, GcpError> {
        let (dlq, _) = self.subscription(name, true)?;
        let topic = self.topic(name, "queue")?;
        let mut moved = 0;
        loop {
            let got = self.pull(&dlq, BATCH).await?;
            if got.is_empty() {
                return Ok(moved);
            }
            let mut ack_ids = Vec::new();
            for r in &got {
                let m = &r["message"];
                let data = m["data"]
                    .as_str()
                    .and_then(|d| STANDARD.decode(d).ok())
                    .unwrap_or_default();
                self.publish_to(&topic, &data, &attributes(&m["attributes"]))
                    .await?;
                ack_ids.push(r["ackId"].clone());
                moved += 1;
            }
            self.call(
                &format!("{dlq}:acknowledge"),
                json!({ "ackIds": ack_ids }),
                format!("acknowledging moved messages on `{dlq}`"),
            )
            .await?;
        }
    }
}

/// What `peek` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeekResult {
    /// The messages.
    Peeked(Peeked),
    /// The queue is a push subscription (a function consumes it): not pulled.
    Consumed,
}

fn decode(data: &Value) -> String {
    let bytes = data
        .as_str()
        .and_then(|d| STANDARD.decode(d).ok())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn attributes(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}
