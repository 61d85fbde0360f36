//! Dead-letter tools: moving a dead-letter queue's messages back to the queue they came from.
//!
//! **Invariant:** a redrive is one transaction, like every other operation: each message is
//! either still in the dead-letter queue or back in its source queue, never in both or neither.

use rusqlite::params;

use crate::error::sql;
use crate::queue::load_config;
use crate::{Store, StoreError, to_ms};

impl Store {
    /// Moves every message of `from` (a dead-letter queue) to `to`, oldest first, and returns
    /// how many moved. Each becomes visible in `to` at `now_ms` with its receive count reset
    /// (so it gets `to`'s full `max_receives` again), keeping its id, body, attributes and send
    /// time; a receipt held for it in `from` goes stale.
    pub fn redrive(&self, from: &str, to: &str, now_ms: u64) -> Result<usize, StoreError> {
        const OP: &str = "redrive";
        if from == to {
            return Err(StoreError::BadQueueConfig {
                queue: from.to_owned(),
                reason: "a queue cannot be redriven into itself".to_owned(),
            });
        }
        self.write(OP, |tx| {
            load_config(tx, OP, from)?;
            load_config(tx, OP, to)?;
            tx.prepare_cached(
                "UPDATE messages SET queue = ?2, receive_count = 0, generation = generation + 1,
                     visible_at_ms = ?3, leased = 0
                 WHERE queue = ?1",
            )
            .and_then(|mut stmt| stmt.execute(params![from, to, to_ms(now_ms)]))
            .map_err(sql(OP))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{NewMessage, QueueConfig, Store};

    #[test]
    fn dead_letters_go_back_with_a_fresh_receive_count() {
        let store = Store::open_in_memory().unwrap();
        store
            .ensure_queue("q-dlq", &QueueConfig::default())
            .unwrap();
        let config = QueueConfig {
            visibility_timeout_ms: 0,
            max_receives: Some(1),
            dead_letter: Some("q-dlq".into()),
            ..QueueConfig::default()
        };
        store.ensure_queue("q", &config).unwrap();
        let id = store
            .send("q", &NewMessage::new("m").with_attribute("k", "v"), 1)
            .unwrap();
        assert_eq!(store.receive("q", 10, 2).unwrap().len(), 1);
        // The second receive finds it past max_receives: dead-lettered.
        assert!(store.receive("q", 10, 3).unwrap().is_empty());
        assert_eq!(store.peek_all("q-dlq").unwrap()[0].id, id);

        assert_eq!(store.redrive("q-dlq", "q", 10).unwrap(), 1);
        assert!(store.peek_all("q-dlq").unwrap().is_empty());
        let back = store.receive("q", 10, 10).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].id, id);
        assert_eq!(back[0].receive_count, 1);
        assert_eq!(back[0].attributes["k"], "v");
        assert_eq!(store.redrive("q-dlq", "q", 11).unwrap(), 0);
        assert!(store.redrive("q", "q", 11).is_err());
        assert!(store.redrive("nope", "q", 11).is_err());
    }
}
