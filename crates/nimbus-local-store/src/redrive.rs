//! Dead-letter redrive for the local console: every message of a dead-letter queue moved back
//! to the queue it came from, as new deliveries (receive count zero, visible now).
//!
//! **Invariant:** one SQLite transaction, so a message is either still dead-lettered or back
//! on its source queue, never both or neither.

use rusqlite::{OptionalExtension, params};

use crate::error::sql;
use crate::{Store, StoreError, to_ms};

impl Store {
    /// Moves every message of `dead_letter` to `source` as a fresh delivery (receive count 0,
    /// visible at `now_ms`, not leased); returns how many moved. Both queues must exist.
    pub fn redrive_all(
        &self,
        dead_letter: &str,
        source: &str,
        now_ms: u64,
    ) -> Result<usize, StoreError> {
        const OP: &str = "redrive_all";
        self.write(OP, |tx| {
            for queue in [dead_letter, source] {
                let known = tx
                    .prepare_cached("SELECT 1 FROM queues WHERE name = ?1")
                    .and_then(|mut stmt| stmt.query_row(params![queue], |_| Ok(())).optional())
                    .map_err(sql(OP))?;
                if known.is_none() {
                    return Err(StoreError::UnknownQueue {
                        queue: queue.to_owned(),
                    });
                }
            }
            tx.prepare_cached(
                "UPDATE messages SET queue = ?2, receive_count = 0, visible_at_ms = ?3,
                 leased = 0, generation = generation + 1 WHERE queue = ?1",
            )
            .and_then(|mut stmt| stmt.execute(params![dead_letter, source, to_ms(now_ms)]))
            .map_err(sql(OP))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{NewMessage, QueueConfig, Store};

    #[test]
    fn redrive_moves_every_dead_letter_back_as_a_fresh_delivery() {
        let store = Store::open_in_memory().unwrap();
        store
            .ensure_queue("jobs-dlq", &QueueConfig::default())
            .unwrap();
        store.ensure_queue("jobs", &QueueConfig::default()).unwrap();
        store.send("jobs-dlq", &NewMessage::new("a"), 10).unwrap();
        store.send("jobs-dlq", &NewMessage::new("b"), 10).unwrap();
        let got = store.receive("jobs-dlq", 10, 10).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(store.redrive_all("jobs-dlq", "jobs", 20).unwrap(), 2);
        assert!(store.peek_all("jobs-dlq").unwrap().is_empty());
        let back = store.peek_all("jobs").unwrap();
        assert_eq!(
            back.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(back.iter().all(|m| m.receive_count == 0 && !m.leased));
        let again = store.receive("jobs", 10, 30).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again[0].receive_count, 1);
        assert!(matches!(
            store.redrive_all("nope", "jobs", 40),
            Err(crate::StoreError::UnknownQueue { .. })
        ));
    }
}
