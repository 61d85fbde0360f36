//! The durable state of the Nimbus local runtime: queues (at-least-once
//! delivery, visibility timeouts, retries, dead-letter queues) and key-value
//! tables with change events, all in one SQLite file.
//!
//! This crate owns the file format and the delivery semantics. It knows
//! nothing of the manifest, the app graph, HTTP, workers or the clock: callers
//! pass the time in as `now_ms` (epoch milliseconds), so behaviour is
//! deterministic under test; [`now_ms`] is the one place that reads the clock.
//!
//! **Invariants:**
//! - Every [`Store`] method is one SQLite transaction: all of it happens or
//!   none of it does, including the events of a table write and every message
//!   of a [`Store::send_batch`].
//! - The file is in WAL mode with `synchronous=NORMAL`: a committed operation
//!   survives the process being killed (not necessarily a power loss).
//! - A file from a newer nimbus, or not from nimbus at all, is refused with an
//!   error, never modified.
//!
//! [`Store`] is `Send + Sync`: share it in an `Arc` between tasks and threads.
//! Operations are short and serialized on one connection.

#![deny(missing_docs)]

mod error;
mod id;
mod key;
mod queue;
mod redrive;
mod schema;
mod table;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use error::StoreError;
pub use id::Receipt;
pub use key::{KeyType, TableKey};
pub use queue::{NewMessage, QueueConfig, QueueDepth, Received, StoredMessage};
pub use table::{Change, ChangeAction};

use error::sql;

/// The local runtime's durable state: one SQLite file (or memory).
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    /// High half of every message id: random, chosen when the file was created.
    nonce: u64,
    path: Option<PathBuf>,
}

impl Store {
    /// Opens the store file, creating it and its schema if needed.
    ///
    /// Refuses (without changing it) a file that is corrupt, that is not a
    /// nimbus store, or that a newer nimbus wrote.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let (conn, nonce) = schema::open_file(path)?;
        Ok(Store {
            conn: Mutex::new(conn),
            nonce,
            path: Some(path.to_owned()),
        })
    }

    /// A private store in memory, gone when dropped: for tests and dry runs.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let (conn, nonce) = schema::open_memory()?;
        Ok(Store {
            conn: Mutex::new(conn),
            nonce,
            path: None,
        })
    }

    /// The store file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs SQLite's integrity check; returns the problems found (empty when
    /// the file is sound). For `nimbus info` and tests.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        const OP: &str = "integrity_check";
        self.read(OP, |tx| {
            let mut stmt = tx.prepare("PRAGMA integrity_check").map_err(sql(OP))?;
            let lines = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(sql(OP))?;
            Ok(lines.into_iter().filter(|line| line != "ok").collect())
        })
    }

    /// Runs `f` in a write transaction, committed if `f` succeeds.
    ///
    /// `IMMEDIATE` takes the write lock up front, so a second process on the
    /// same file waits (busy timeout) instead of failing half-way.
    fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(op, TransactionBehavior::Immediate, f)
    }

    /// Runs `f` in a read transaction: one consistent snapshot.
    fn read<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(op, TransactionBehavior::Deferred, f)
    }

    fn transaction<T>(
        &self,
        op: &'static str,
        behavior: TransactionBehavior,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A panic elsewhere while holding the lock leaves the connection
        // usable: the open transaction rolled back when it was dropped.
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(behavior).map_err(sql(op))?;
        let value = f(&tx)?;
        tx.commit().map_err(sql(op))?;
        Ok(value)
    }
}

/// The current time in epoch milliseconds: the convenience for callers that
/// do not control time. Nothing inside the store reads the clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Milliseconds (or a count) as SQLite stores them; beyond `i64::MAX` (some
/// 292 million years) they are clamped.
fn to_ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Milliseconds (or a count) read back from SQLite; negatives (only in a
/// hand-edited file) read as 0.
fn from_ms(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

// `Store` is shared between tokio tasks and threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
};
