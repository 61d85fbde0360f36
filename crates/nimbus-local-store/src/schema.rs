//! The store file's layout: connection settings, the SQL schema, its version
//! and the checks that refuse a corrupt, foreign or newer file.
//!
//! **Invariant:** `PRAGMA user_version` is the schema version and
//! `PRAGMA application_id` marks the file as a nimbus store. A file with a
//! higher version is never written to.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use crate::StoreError;
use crate::id::random_nonce;

/// The schema version this build writes and the newest it reads.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// `PRAGMA application_id` of a nimbus store: "NMBS".
const APPLICATION_ID: i64 = 0x4e4d_4253;

/// How long a write waits for another process holding the file's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Version 1: queues, messages, tables and items.
///
/// Times are epoch milliseconds. A message is visible when
/// `visible_at_ms <= now`; `leased` tells an in-flight message (received,
/// hidden by its visibility timeout) from a delayed one. `generation` counts
/// every receive and never resets, so a receipt names one receive exactly.
const SCHEMA_V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value ANY NOT NULL
) STRICT;

CREATE TABLE queues (
    name                  TEXT PRIMARY KEY,
    visibility_timeout_ms INTEGER NOT NULL,
    max_receives          INTEGER,
    dead_letter           TEXT,
    retention_ms          INTEGER NOT NULL,
    dropped               INTEGER NOT NULL DEFAULT 0,
    dead_lettered         INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    body          TEXT NOT NULL,
    attributes    TEXT NOT NULL,
    sent_at_ms    INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    generation    INTEGER NOT NULL DEFAULT 0,
    leased        INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX messages_by_visibility ON messages (queue, visible_at_ms);
CREATE INDEX messages_by_age ON messages (queue, sent_at_ms);

CREATE TABLE tables (
    name TEXT PRIMARY KEY,
    key  TEXT NOT NULL
) STRICT;

CREATE TABLE items (
    tbl    TEXT NOT NULL,
    pk     TEXT NOT NULL,
    sk     TEXT NOT NULL,
    sk_ord ANY,
    item   TEXT NOT NULL,
    PRIMARY KEY (tbl, pk, sk)
) STRICT, WITHOUT ROWID;
CREATE INDEX items_by_sort ON items (tbl, pk, sk_ord, sk);
";

/// Opens (creating if needed) the store file and brings its schema up to date. A new file is
/// created owner-only (0600, whatever the umask) before SQLite opens it: its `-wal` and `-shm`
/// files take the database file's mode.
pub(crate) fn open_file(path: &Path) -> Result<(Connection, u64), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // Any failure here (a missing folder, ...) is SQLite's to report, just below.
    if let Ok(file) = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    }
    let conn = Connection::open(path).map_err(|source| classify(path, source))?;
    prepare(conn, path)
}

/// Opens a private in-memory store.
pub(crate) fn open_memory() -> Result<(Connection, u64), StoreError> {
    let path = Path::new(":memory:");
    let conn = Connection::open_in_memory().map_err(|source| classify(path, source))?;
    prepare(conn, path)
}

/// Checks the file is ours and not newer, then configures the connection,
/// creates or migrates the schema, and returns the store's id nonce.
///
/// The check runs before anything is written (switching to WAL writes the
/// file header), so a refused file is left exactly as it was.
fn prepare(mut conn: Connection, path: &Path) -> Result<(Connection, u64), StoreError> {
    let open_err = |source: rusqlite::Error| classify(path, source);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    check(&conn, path)?;
    // Durable across a killed process, and readers never block the writer.
    let _mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(open_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(64);

    // IMMEDIATE, and checked again inside: two processes opening a fresh
    // file at once must not both create the schema.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    if check(&tx, path)? == 0 {
        tx.execute_batch(SCHEMA_V1).map_err(open_err)?;
        // Stored as i64: the bits of the u64 nonce, reinterpreted.
        let nonce = random_nonce() as i64;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('nonce', ?1)",
            params![nonce],
        )
        .map_err(open_err)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(open_err)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(open_err)?;
    }
    // Later versions migrate here, one step at a time, in this transaction.
    let nonce: Option<i64> = tx
        .query_row("SELECT value FROM meta WHERE key = 'nonce'", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(open_err)?;
    let Some(nonce) = nonce else {
        return Err(StoreError::Foreign {
            path: path.to_owned(),
        });
    };
    tx.commit().map_err(open_err)?;
    Ok((conn, nonce as u64))
}

/// The file's schema version (0: a new, empty file), or why it is refused.
/// Reading the header is also where a file that is not a database shows.
fn check(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let open_err = |source: rusqlite::Error| classify(path, source);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(open_err)?;
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(open_err)?;
    let foreign = || StoreError::Foreign {
        path: path.to_owned(),
    };
    if app_id != APPLICATION_ID && (app_id != 0 || version != 0) {
        return Err(foreign());
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        let objects: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(open_err)?;
        if objects != 0 {
            return Err(foreign());
        }
    }
    Ok(version)
}

/// Names a damaged file as such; anything else is a plain open failure.
fn classify(path: &Path, source: rusqlite::Error) -> StoreError {
    let path = path.to_owned();
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt { path, source }
        }
        _ => StoreError::Open { path, source },
    }
}
