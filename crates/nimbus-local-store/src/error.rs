//! The store's error type: every failure names what it was doing and on which
//! file, queue or table, and keeps the SQLite cause as its `source`.

use std::path::PathBuf;

/// Everything that can go wrong in the local store.
///
/// Bad input (an unknown queue, an item without its key, a receipt that does not
/// parse, a corrupt or newer store file) is reported here, never by a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store file could not be opened or prepared (permissions, missing
    /// directory, locked for too long, ...).
    #[error("cannot open the local store `{}`", path.display())]
    Open {
        /// The store file.
        path: PathBuf,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },

    /// The file exists but is not a readable SQLite database: truncated,
    /// overwritten or damaged.
    #[error("`{}` is corrupt or not a SQLite database", path.display())]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },

    /// The file is a SQLite database, but one written by something else.
    #[error("`{}` is a SQLite database but not a nimbus local store", path.display())]
    Foreign {
        /// The store file.
        path: PathBuf,
    },

    /// The file was written by a newer nimbus whose schema this build does not know.
    #[error(
        "`{}` uses store schema version {found}, newer than version {supported} that this nimbus understands",
        path.display()
    )]
    NewerSchema {
        /// The store file.
        path: PathBuf,
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build can read.
        supported: i64,
    },

    /// An operation named a queue that was never created with `ensure_queue`.
    #[error("queue `{queue}` does not exist")]
    UnknownQueue {
        /// The queue name as given.
        queue: String,
    },

    /// `ensure_queue` was given a configuration that cannot work.
    #[error("invalid configuration for queue `{queue}`: {reason}")]
    BadQueueConfig {
        /// The queue being configured.
        queue: String,
        /// Why the configuration was refused.
        reason: String,
    },

    /// An item given to `table_put` is not an object holding its key attributes.
    #[error("invalid item for table `{table}`: {reason}")]
    BadItem {
        /// The table written to.
        table: String,
        /// What is wrong with the item.
        reason: String,
    },

    /// A key given to `table_get`, `table_delete` or `table_query` does not
    /// match the table's key attributes.
    #[error("invalid key for table `{table}`: {reason}")]
    BadKey {
        /// The table read from.
        table: String,
        /// What is wrong with the key.
        reason: String,
    },

    /// The table already holds items keyed differently from the key given now.
    #[error("table `{table}` is keyed by {stored}, not by {requested}")]
    KeyMismatch {
        /// The table.
        table: String,
        /// The key the stored items use.
        stored: String,
        /// The key given to this call.
        requested: String,
    },

    /// A receipt string that was not produced by [`Receipt`](crate::Receipt)'s `Display`.
    #[error("`{receipt}` is not a message receipt")]
    BadReceipt {
        /// The text that failed to parse.
        receipt: String,
    },

    /// A stored row could not be decoded (the file was edited by hand or damaged).
    #[error("stored {what} is unreadable")]
    CorruptRow {
        /// What was being read, e.g. "attributes of message `...`".
        what: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },

    /// An SQLite call failed during an operation on an open store.
    #[error("local store operation `{op}` failed")]
    Sqlite {
        /// The store operation, e.g. `receive`.
        op: &'static str,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// A one-line suggestion for the user, shown as `hint:` by the CLI, when
    /// there is an obvious fix.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            StoreError::Corrupt { .. } | StoreError::Foreign { .. } => {
                Some("move the file aside; the runtime then starts with an empty store")
            }
            StoreError::NewerSchema { .. } => Some("upgrade nimbus, or move the file aside"),
            StoreError::UnknownQueue { .. } => Some("create the queue with `ensure_queue` first"),
            _ => None,
        }
    }
}

/// Wraps an SQLite error with the name of the store operation it broke.
pub(crate) fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { op, source }
}
