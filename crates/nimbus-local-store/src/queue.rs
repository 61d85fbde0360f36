//! Durable queues: at-least-once delivery with visibility timeouts, receive
//! counts, retries with delay, retention and dead-letter queues.
//!
//! **Invariant:** every operation is one SQLite transaction, so a message is
//! either wholly sent, received (and hidden), moved to its dead-letter queue or
//! deleted; never half of one.

use std::collections::{BTreeMap, HashSet};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::sql;
use crate::id::{MessageId, Receipt};
use crate::{Store, StoreError, from_ms, to_ms};

/// How a queue delivers its messages.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueueConfig {
    /// How long a received message stays hidden from other receivers before
    /// it is delivered again (unless acked, retried or extended first).
    pub visibility_timeout_ms: u64,
    /// Receives after which a message is no longer delivered but moved to
    /// `dead_letter` (or dropped without one). `None`: retried forever.
    pub max_receives: Option<u32>,
    /// The queue that receives messages past `max_receives`; it must exist.
    pub dead_letter: Option<String>,
    /// How long after it was sent a message is dropped, delivered or not.
    pub retention_ms: u64,
}

impl Default for QueueConfig {
    /// SQS's defaults: 30 s visibility, 4 days retention, no dead-letter queue.
    fn default() -> Self {
        QueueConfig {
            visibility_timeout_ms: 30_000,
            max_receives: None,
            dead_letter: None,
            retention_ms: 4 * 24 * 60 * 60 * 1000,
        }
    }
}

/// A message to send.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewMessage {
    /// The message body.
    pub body: String,
    /// String attributes delivered with the body.
    pub attributes: BTreeMap<String, String>,
    /// How long the message stays invisible after it is sent.
    pub delay_ms: u64,
}

impl NewMessage {
    /// A message with this body, no attributes and no delay.
    pub fn new(body: impl Into<String>) -> NewMessage {
        NewMessage {
            body: body.into(),
            ..NewMessage::default()
        }
    }

    /// This message with an attribute added.
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// This message with a delivery delay.
    pub fn with_delay(mut self, delay_ms: u64) -> Self {
        self.delay_ms = delay_ms;
        self
    }
}

/// A message handed to a receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// The message id, as returned by `send`.
    pub id: String,
    /// The message body.
    pub body: String,
    /// The message attributes.
    pub attributes: BTreeMap<String, String>,
    /// How many times the message has been received from this queue, this
    /// receive included.
    pub receive_count: u32,
    /// The proof of this receive, for `ack`, `retry` and `extend`.
    pub receipt: Receipt,
    /// When the message was first sent.
    pub sent_at_ms: u64,
}

/// A message as it sits in a queue, for inspection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The message id.
    pub id: String,
    /// The message body.
    pub body: String,
    /// The message attributes.
    pub attributes: BTreeMap<String, String>,
    /// How many times it has been received from this queue.
    pub receive_count: u32,
    /// When it was first sent.
    pub sent_at_ms: u64,
    /// When it can next be received.
    pub visible_at_ms: u64,
    /// Whether it is hidden because a receiver holds it (rather than delayed).
    pub leased: bool,
}

/// How many messages a queue holds, by state, and what it has let go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueueDepth {
    /// Receivable now.
    pub visible: u64,
    /// Received and hidden by their visibility timeout.
    pub in_flight: u64,
    /// Sent or retried with a delay that has not passed yet.
    pub delayed: u64,
    /// Since the queue was created: dropped past `max_receives` with no
    /// dead-letter queue, or past retention.
    pub dropped: u64,
    /// Since the queue was created: moved to the dead-letter queue.
    pub dead_lettered: u64,
}

/// One row picked by `receive`.
struct Candidate {
    seq: i64,
    body: String,
    attributes: String,
    sent_at_ms: i64,
    receive_count: i64,
    generation: i64,
}

impl Store {
    /// Creates the queue, or updates its configuration; messages are kept.
    ///
    /// The dead-letter queue, if any, must already exist and be another queue.
    pub fn ensure_queue(&self, name: &str, config: &QueueConfig) -> Result<(), StoreError> {
        let bad = |reason: &str| StoreError::BadQueueConfig {
            queue: name.to_owned(),
            reason: reason.to_owned(),
        };
        if name.is_empty() {
            return Err(bad("the name is empty"));
        }
        if config.max_receives == Some(0) {
            return Err(bad("`max_receives` must be at least 1"));
        }
        if config.dead_letter.as_deref() == Some(name) {
            return Err(bad("a queue cannot be its own dead-letter queue"));
        }
        const OP: &str = "ensure_queue";
        self.write(OP, |tx| {
            if let Some(dlq) = &config.dead_letter {
                match load_config(tx, OP, dlq) {
                    Err(StoreError::UnknownQueue { .. }) => {
                        return Err(bad(&format!(
                            "dead-letter queue `{dlq}` does not exist; create it first"
                        )));
                    }
                    other => other?,
                };
            }
            tx.prepare_cached(
                "INSERT INTO queues (name, visibility_timeout_ms, max_receives, dead_letter, retention_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET
                     visibility_timeout_ms = excluded.visibility_timeout_ms,
                     max_receives = excluded.max_receives,
                     dead_letter = excluded.dead_letter,
                     retention_ms = excluded.retention_ms",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    name,
                    to_ms(config.visibility_timeout_ms),
                    config.max_receives,
                    config.dead_letter,
                    to_ms(config.retention_ms),
                ])
            })
            .map_err(sql(OP))?;
            Ok(())
        })
    }

    /// Sends one message; returns its id.
    pub fn send(
        &self,
        queue: &str,
        message: &NewMessage,
        now_ms: u64,
    ) -> Result<String, StoreError> {
        self.write("send", |tx| {
            send_in(tx, self.nonce, "send", queue, message, now_ms)
        })
    }

    /// Sends messages to one or more queues in one transaction: all are sent,
    /// or (on any error, e.g. an unknown queue) none. Returns ids in order.
    pub fn send_batch(
        &self,
        messages: &[(String, NewMessage)],
        now_ms: u64,
    ) -> Result<Vec<String>, StoreError> {
        const OP: &str = "send_batch";
        self.write(OP, |tx| {
            messages
                .iter()
                .map(|(queue, message)| send_in(tx, self.nonce, OP, queue, message, now_ms))
                .collect()
        })
    }

    /// Receives up to `max` messages visible at `now_ms`, oldest first: in
    /// the order they became visible, which is send order for messages sent
    /// without a delay (this keeps a receive one index range scan, however
    /// many messages are in flight or delayed).
    ///
    /// Each is hidden until `now_ms + visibility_timeout_ms` and its receive
    /// count goes up by one. A visible message that was already received
    /// `max_receives` times is not delivered: it moves to the dead-letter
    /// queue (immediately visible there, receive count reset) or, without one,
    /// is dropped. Messages past retention are dropped first.
    pub fn receive(
        &self,
        queue: &str,
        max: usize,
        now_ms: u64,
    ) -> Result<Vec<Received>, StoreError> {
        const OP: &str = "receive";
        self.write(OP, |tx| {
            let config = load_config(tx, OP, queue)?;
            let now = to_ms(now_ms);
            let mut dropped = 0;
            if now_ms >= config.retention_ms {
                dropped += tx
                    .prepare_cached("DELETE FROM messages WHERE queue = ?1 AND sent_at_ms <= ?2")
                    .and_then(|mut stmt| stmt.execute(params![queue, to_ms(now_ms - config.retention_ms)]))
                    .map_err(sql(OP))?;
            }
            let visible_until = to_ms(now_ms.saturating_add(config.visibility_timeout_ms));
            let mut out = Vec::new();
            let mut dead_lettered = 0;
            // Messages leased by this call that are still visible (a zero
            // visibility timeout): skipped when the query is repeated.
            let mut leased_visible = HashSet::new();
            while out.len() < max {
                let limit = (max - out.len()).saturating_add(leased_visible.len());
                let candidates = visible_candidates(tx, queue, now, limit)?;
                let fetched = candidates.len();
                let mut progressed = false;
                for row in candidates {
                    if out.len() == max {
                        break;
                    }
                    if leased_visible.contains(&row.seq) {
                        continue;
                    }
                    progressed = true;
                    let id = MessageId { nonce: self.nonce, seq: row.seq };
                    if let Some(limit) = config.max_receives
                        && row.receive_count >= i64::from(limit)
                    {
                        match &config.dead_letter {
                            Some(dlq) => {
                                tx.prepare_cached(
                                    "UPDATE messages SET queue = ?2, receive_count = 0, visible_at_ms = ?3, leased = 0
                                     WHERE seq = ?1",
                                )
                                .and_then(|mut stmt| stmt.execute(params![row.seq, dlq, now]))
                                .map_err(sql(OP))?;
                                dead_lettered += 1;
                            }
                            None => {
                                delete_seq(tx, OP, row.seq)?;
                                dropped += 1;
                            }
                        }
                        continue;
                    }
                    tx.prepare_cached(
                        "UPDATE messages SET receive_count = receive_count + 1, generation = generation + 1,
                             visible_at_ms = ?2, leased = 1
                         WHERE seq = ?1",
                    )
                    .and_then(|mut stmt| stmt.execute(params![row.seq, visible_until]))
                    .map_err(sql(OP))?;
                    if visible_until <= now {
                        leased_visible.insert(row.seq);
                    }
                    let generation = from_ms(row.generation + 1);
                    out.push(Received {
                        id: id.to_string(),
                        body: row.body,
                        attributes: decode_attributes(&id, &row.attributes)?,
                        receive_count: u32::try_from(row.receive_count + 1).unwrap_or(u32::MAX),
                        receipt: Receipt { id, generation },
                        sent_at_ms: from_ms(row.sent_at_ms),
                    });
                }
                if fetched < limit || !progressed {
                    break;
                }
            }
            if dropped > 0 || dead_lettered > 0 {
                tx.prepare_cached(
                    "UPDATE queues SET dropped = dropped + ?2, dead_lettered = dead_lettered + ?3 WHERE name = ?1",
                )
                .and_then(|mut stmt| stmt.execute(params![queue, count(dropped), count(dead_lettered)]))
                .map_err(sql(OP))?;
            }
            Ok(out)
        })
    }

    /// Deletes acknowledged messages; returns how many were deleted. A receipt
    /// that is stale (the message was received again since) or whose message
    /// is gone is ignored.
    pub fn ack(&self, queue: &str, receipts: &[Receipt]) -> Result<usize, StoreError> {
        const OP: &str = "ack";
        self.write(OP, |tx| {
            load_config(tx, OP, queue)?;
            let mut deleted = 0;
            for receipt in receipts.iter().filter(|r| r.id.nonce == self.nonce) {
                deleted += tx
                    .prepare_cached(
                        "DELETE FROM messages WHERE seq = ?1 AND queue = ?2 AND generation = ?3",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![receipt.id.seq, queue, to_ms(receipt.generation)])
                    })
                    .map_err(sql(OP))?;
            }
            Ok(deleted)
        })
    }

    /// Gives a received message back, to be delivered again at
    /// `now_ms + delay_ms` (a backoff); its receive count is kept, so retries
    /// still lead to the dead-letter queue. A stale receipt is ignored.
    pub fn retry(
        &self,
        queue: &str,
        receipt: &Receipt,
        delay_ms: u64,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.rehide(
            "retry",
            queue,
            receipt,
            now_ms.saturating_add(delay_ms),
            false,
        )
    }

    /// Keeps a received message hidden until `now_ms + visibility_ms`, for a
    /// receiver that needs longer than the visibility timeout. A stale receipt
    /// is ignored.
    pub fn extend(
        &self,
        queue: &str,
        receipt: &Receipt,
        visibility_ms: u64,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.rehide(
            "extend",
            queue,
            receipt,
            now_ms.saturating_add(visibility_ms),
            true,
        )
    }

    /// Sets when a received message is visible again, if `receipt` is current.
    fn rehide(
        &self,
        op: &'static str,
        queue: &str,
        receipt: &Receipt,
        visible_at_ms: u64,
        leased: bool,
    ) -> Result<(), StoreError> {
        self.write(op, |tx| {
            load_config(tx, op, queue)?;
            if receipt.id.nonce != self.nonce {
                return Ok(());
            }
            tx.prepare_cached(
                "UPDATE messages SET visible_at_ms = ?4, leased = ?5
                 WHERE seq = ?1 AND queue = ?2 AND generation = ?3",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    receipt.id.seq,
                    queue,
                    to_ms(receipt.generation),
                    to_ms(visible_at_ms),
                    leased
                ])
            })
            .map_err(sql(op))?;
            Ok(())
        })
    }

    /// Counts the queue's messages by state at `now_ms` (messages past
    /// retention are not counted), with its drop and dead-letter totals.
    pub fn depth(&self, queue: &str, now_ms: u64) -> Result<QueueDepth, StoreError> {
        const OP: &str = "depth";
        self.read(OP, |tx| {
            let config = load_config(tx, OP, queue)?;
            // Retained: sent after `now - retention` (everything when that is negative).
            let oldest = if now_ms >= config.retention_ms {
                to_ms(now_ms - config.retention_ms)
            } else {
                -1
            };
            let (visible, in_flight, delayed) = tx
                .prepare_cached(
                    "SELECT coalesce(sum(visible_at_ms <= ?2), 0),
                            coalesce(sum(visible_at_ms > ?2 AND leased), 0),
                            coalesce(sum(visible_at_ms > ?2 AND NOT leased), 0)
                     FROM messages WHERE queue = ?1 AND sent_at_ms > ?3",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![queue, to_ms(now_ms), oldest], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, i64>(2)?,
                        ))
                    })
                })
                .map_err(sql(OP))?;
            let (dropped, dead_lettered) = tx
                .prepare_cached("SELECT dropped, dead_lettered FROM queues WHERE name = ?1")
                .and_then(|mut stmt| {
                    stmt.query_row(params![queue], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                    })
                })
                .map_err(sql(OP))?;
            Ok(QueueDepth {
                visible: from_ms(visible),
                in_flight: from_ms(in_flight),
                delayed: from_ms(delayed),
                dropped: from_ms(dropped),
                dead_lettered: from_ms(dead_lettered),
            })
        })
    }

    /// The earliest time a message of the queue can be received (possibly in
    /// the past: one is receivable now), or `None` when the queue is empty.
    /// Consumers sleep until then, or until they are told of a new message.
    pub fn next_visible_at(&self, queue: &str) -> Result<Option<u64>, StoreError> {
        const OP: &str = "next_visible_at";
        self.read(OP, |tx| {
            load_config(tx, OP, queue)?;
            let at: Option<i64> = tx
                .prepare_cached("SELECT min(visible_at_ms) FROM messages WHERE queue = ?1")
                .and_then(|mut stmt| stmt.query_row(params![queue], |row| row.get(0)))
                .map_err(sql(OP))?;
            Ok(at.map(from_ms))
        })
    }

    /// The names of all queues, sorted.
    pub fn queues(&self) -> Result<Vec<String>, StoreError> {
        const OP: &str = "queues";
        self.read(OP, |tx| {
            let mut stmt = tx
                .prepare_cached("SELECT name FROM queues ORDER BY name")
                .map_err(sql(OP))?;
            let names = stmt
                .query_map([], |row| row.get(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
                .map_err(sql(OP))?;
            Ok(names)
        })
    }

    /// The configuration of a queue.
    pub fn queue_config(&self, queue: &str) -> Result<QueueConfig, StoreError> {
        self.read("queue_config", |tx| load_config(tx, "queue_config", queue))
    }

    /// Every message of the queue in send order, whatever its state, without
    /// changing anything: for tests and `nimbus info`.
    pub fn peek_all(&self, queue: &str) -> Result<Vec<StoredMessage>, StoreError> {
        const OP: &str = "peek_all";
        self.read(OP, |tx| {
            load_config(tx, OP, queue)?;
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq, body, attributes, receive_count, sent_at_ms, visible_at_ms, leased
                     FROM messages WHERE queue = ?1 ORDER BY seq",
                )
                .map_err(sql(OP))?;
            let rows = stmt
                .query_map(params![queue], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, i64>(5)?,
                        row.get::<_, bool>(6)?,
                    ))
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(sql(OP))?;
            rows.into_iter()
                .map(
                    |(seq, body, attributes, receive_count, sent, visible, leased)| {
                        let id = MessageId {
                            nonce: self.nonce,
                            seq,
                        };
                        Ok(StoredMessage {
                            id: id.to_string(),
                            body,
                            attributes: decode_attributes(&id, &attributes)?,
                            receive_count: u32::try_from(receive_count).unwrap_or(u32::MAX),
                            sent_at_ms: from_ms(sent),
                            visible_at_ms: from_ms(visible),
                            leased,
                        })
                    },
                )
                .collect()
        })
    }

    /// Deletes every message of the queue; returns how many there were.
    pub fn purge(&self, queue: &str) -> Result<usize, StoreError> {
        const OP: &str = "purge";
        self.write(OP, |tx| {
            load_config(tx, OP, queue)?;
            tx.prepare_cached("DELETE FROM messages WHERE queue = ?1")
                .and_then(|mut stmt| stmt.execute(params![queue]))
                .map_err(sql(OP))
        })
    }
}

/// Sends one message inside an open transaction (shared with table change events).
pub(crate) fn send_in(
    conn: &Connection,
    nonce: u64,
    op: &'static str,
    queue: &str,
    message: &NewMessage,
    now_ms: u64,
) -> Result<String, StoreError> {
    load_config(conn, op, queue)?;
    // A BTreeMap<String, String> always serializes.
    let attributes = serde_json::to_string(&message.attributes).unwrap_or_else(|_| "{}".to_owned());
    let seq = conn
        .prepare_cached(
            "INSERT INTO messages (queue, body, attributes, sent_at_ms, visible_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING seq",
        )
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    queue,
                    message.body,
                    attributes,
                    to_ms(now_ms),
                    to_ms(now_ms.saturating_add(message.delay_ms))
                ],
                |row| row.get::<_, i64>(0),
            )
        })
        .map_err(sql(op))?;
    Ok(MessageId { nonce, seq }.to_string())
}

/// A queue's configuration, or `UnknownQueue`.
pub(crate) fn load_config(
    conn: &Connection,
    op: &'static str,
    queue: &str,
) -> Result<QueueConfig, StoreError> {
    conn.prepare_cached(
        "SELECT visibility_timeout_ms, max_receives, dead_letter, retention_ms FROM queues WHERE name = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![queue], |row| {
            Ok(QueueConfig {
                visibility_timeout_ms: from_ms(row.get(0)?),
                max_receives: row.get(1)?,
                dead_letter: row.get(2)?,
                retention_ms: from_ms(row.get(3)?),
            })
        })
        .optional()
    })
    .map_err(sql(op))?
    .ok_or_else(|| StoreError::UnknownQueue {
        queue: queue.to_owned(),
    })
}

/// Up to `limit` messages visible at `now`, in the order they became visible.
fn visible_candidates(
    conn: &Connection,
    queue: &str,
    now: i64,
    limit: usize,
) -> Result<Vec<Candidate>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, body, attributes, sent_at_ms, receive_count, generation
             FROM messages INDEXED BY messages_by_visibility
             WHERE queue = ?1 AND visible_at_ms <= ?2
             ORDER BY visible_at_ms, seq LIMIT ?3",
        )
        .map_err(sql("receive"))?;
    stmt.query_map(
        params![queue, now, i64::try_from(limit).unwrap_or(i64::MAX)],
        |row| {
            Ok(Candidate {
                seq: row.get(0)?,
                body: row.get(1)?,
                attributes: row.get(2)?,
                sent_at_ms: row.get(3)?,
                receive_count: row.get(4)?,
                generation: row.get(5)?,
            })
        },
    )
    .and_then(|rows| rows.collect())
    .map_err(sql("receive"))
}

fn delete_seq(conn: &Connection, op: &'static str, seq: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM messages WHERE seq = ?1")
        .and_then(|mut stmt| stmt.execute(params![seq]))
        .map_err(sql(op))?;
    Ok(())
}

fn decode_attributes(id: &MessageId, text: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::CorruptRow {
        what: format!("attributes of message `{id}`"),
        source,
    })
}

/// A row count as SQLite stores it.
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
