//! The shapes of the queue and topic tools (`nimbus queue peek | send | purge | redrive`,
//! `nimbus topic publish`), the same for every provider: each provider crate reads and writes
//! its own queues and returns these, so the command prints them one way.

use std::collections::BTreeMap;

use serde::Serialize;

/// A message as `peek` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueMessage {
    /// The provider's message id.
    pub id: String,
    /// The body, as text.
    pub body: String,
    /// String attributes sent with it.
    pub attributes: BTreeMap<String, String>,
    /// How many times it was received from the queue peeked (the provider's count, when it
    /// keeps one: SQS's `ApproximateReceiveCount`, Pub/Sub's delivery attempt, a storage
    /// queue's dequeue count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receive_count: Option<u32>,
    /// When it was first sent, in milliseconds since the Unix epoch, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at_ms: Option<i64>,
}

/// What `peek` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Peeked {
    /// The manifest's queue.
    pub queue: String,
    /// The queue peeked, in the provider's naming (its dead-letter queue with `--dlq`).
    pub physical: String,
    /// Whether it is the dead-letter queue.
    pub dlq: bool,
    /// The messages, oldest first where the provider keeps an order.
    pub messages: Vec<QueueMessage>,
}
