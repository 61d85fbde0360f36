//! Tables: JSON items keyed by a partition key and an optional sort key, and
//! the change events a write sends to the table's trigger queues.
//!
//! **Invariant:** an item write and its change events are one transaction; a
//! write that fails (bad item, unknown change queue, ...) sends nothing.
//!
//! A table springs into being with its first `table_put`, which records its
//! key; later calls with a different key are refused (`KeyMismatch`) rather
//! than silently missing the stored items. `table_clear` forgets both.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::sql;
use crate::key::{self, EncodedKey, Source, TableKey};
use crate::queue::{NewMessage, send_in};
use crate::{Store, StoreError};

/// What a write did to an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    /// The item did not exist.
    Insert,
    /// The item existed and was replaced.
    Modify,
    /// The item was deleted.
    Remove,
}

impl ChangeAction {
    /// `insert`, `modify` or `remove`, as in change events.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Insert => "insert",
            ChangeAction::Modify => "modify",
            ChangeAction::Remove => "remove",
        }
    }
}

/// One change to one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// What happened.
    pub action: ChangeAction,
    /// The item's key attributes, with canonical values (`1.0` becomes `1`).
    pub key: Value,
    /// The item before, if it existed.
    pub old: Option<Value>,
    /// The item after, unless it was removed.
    pub new: Option<Value>,
}

impl Change {
    /// The change event sent to trigger queues:
    /// `{"table", "action", "key", "old", "new"}`.
    pub fn event(&self, table: &str) -> Value {
        json!({
            "table": table,
            "action": self.action.as_str(),
            "key": self.key,
            "old": self.old,
            "new": self.new,
        })
    }
}

impl Store {
    /// The item with these key values, if any. `key_values` is an object
    /// holding exactly the key attributes.
    pub fn table_get(
        &self,
        table: &str,
        key: &TableKey,
        key_values: &Value,
    ) -> Result<Option<Value>, StoreError> {
        const OP: &str = "table_get";
        let encoded = key::encode(table, key, key_values, Source::Key)?;
        self.read(OP, |tx| {
            if !check_key(tx, OP, table, key)? {
                return Ok(None);
            }
            load_item(tx, OP, table, &encoded)
        })
    }

    /// Inserts or replaces an item, and sends the change event to every queue
    /// in `changes`, in one transaction.
    ///
    /// The item must be an object holding every key attribute with its type:
    /// a non-empty string, a number, or non-empty base64 for binary.
    pub fn table_put(
        &self,
        table: &str,
        key: &TableKey,
        item: Value,
        changes: &[String],
        now_ms: u64,
    ) -> Result<Change, StoreError> {
        self.table_put_with(table, key, item, changes, &BTreeMap::new(), now_ms)
    }

    /// [`Store::table_put`] whose change events carry `attributes` (a trace context).
    pub fn table_put_with(
        &self,
        table: &str,
        key: &TableKey,
        item: Value,
        changes: &[String],
        attributes: &BTreeMap<String, String>,
        now_ms: u64,
    ) -> Result<Change, StoreError> {
        const OP: &str = "table_put";
        let encoded = key::encode(table, key, &item, Source::Item)?;
        self.write(OP, |tx| {
            register_key(tx, OP, table, key)?;
            let old = load_item(tx, OP, table, &encoded)?;
            tx.prepare_cached(
                "INSERT INTO items (tbl, pk, sk, sk_ord, item) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tbl, pk, sk) DO UPDATE SET item = excluded.item",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    table,
                    encoded.pk,
                    encoded.sk,
                    encoded.sk_ord,
                    item.to_string()
                ])
            })
            .map_err(sql(OP))?;
            let change = Change {
                action: if old.is_some() {
                    ChangeAction::Modify
                } else {
                    ChangeAction::Insert
                },
                key: encoded.key,
                old,
                new: Some(item),
            };
            let message = NewMessage {
                body: change.event(table).to_string(),
                attributes: attributes.clone(),
                delay_ms: 0,
            };
            send_changes(tx, self.nonce, OP, &message, changes, now_ms)?;
            Ok(change)
        })
    }

    /// Deletes an item and sends the `remove` change event to every queue in
    /// `changes`, in one transaction. `None`, and no event, if it was absent.
    pub fn table_delete(
        &self,
        table: &str,
        key: &TableKey,
        key_values: &Value,
        changes: &[String],
        now_ms: u64,
    ) -> Result<Option<Change>, StoreError> {
        self.table_delete_with(table, key, key_values, changes, &BTreeMap::new(), now_ms)
    }

    /// [`Store::table_delete`] whose change event carries `attributes` (a trace context).
    pub fn table_delete_with(
        &self,
        table: &str,
        key: &TableKey,
        key_values: &Value,
        changes: &[String],
        attributes: &BTreeMap<String, String>,
        now_ms: u64,
    ) -> Result<Option<Change>, StoreError> {
        const OP: &str = "table_delete";
        let encoded = key::encode(table, key, key_values, Source::Key)?;
        self.write(OP, |tx| {
            if !check_key(tx, OP, table, key)? {
                return Ok(None);
            }
            let Some(old) = load_item(tx, OP, table, &encoded)? else {
                return Ok(None);
            };
            tx.prepare_cached("DELETE FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")
                .and_then(|mut stmt| stmt.execute(params![table, encoded.pk, encoded.sk]))
                .map_err(sql(OP))?;
            let change = Change {
                action: ChangeAction::Remove,
                key: encoded.key,
                old: Some(old),
                new: None,
            };
            let message = NewMessage {
                body: change.event(table).to_string(),
                attributes: attributes.clone(),
                delay_ms: 0,
            };
            send_changes(tx, self.nonce, OP, &message, changes, now_ms)?;
            Ok(Some(change))
        })
    }

    /// The items whose partition key is `partition_value`, ordered by sort
    /// key (numbers numerically, strings and binary byte-wise), at most `limit`.
    pub fn table_query(
        &self,
        table: &str,
        key: &TableKey,
        partition_value: &Value,
        limit: Option<usize>,
    ) -> Result<Vec<Value>, StoreError> {
        const OP: &str = "table_query";
        let pk = key::encode_partition(table, key, partition_value)?;
        self.read(OP, |tx| {
            if !check_key(tx, OP, table, key)? {
                return Ok(Vec::new());
            }
            let mut stmt = tx
                .prepare_cached(
                    "SELECT item FROM items WHERE tbl = ?1 AND pk = ?2 ORDER BY sk_ord, sk LIMIT ?3",
                )
                .map_err(sql(OP))?;
            let rows = stmt
                .query_map(params![table, pk, sql_limit(limit)], |row| row.get::<_, String>(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(sql(OP))?;
            rows.iter().map(|text| decode_item(table, text)).collect()
        })
    }

    /// Every item of the table (at most `limit`), in a deterministic order:
    /// by the partition value's JSON text, then by sort key.
    pub fn table_scan(&self, table: &str, limit: Option<usize>) -> Result<Vec<Value>, StoreError> {
        const OP: &str = "table_scan";
        self.read(OP, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT item FROM items WHERE tbl = ?1 ORDER BY pk, sk_ord, sk LIMIT ?2",
                )
                .map_err(sql(OP))?;
            let rows = stmt
                .query_map(params![table, sql_limit(limit)], |row| {
                    row.get::<_, String>(0)
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(sql(OP))?;
            rows.iter().map(|text| decode_item(table, text)).collect()
        })
    }

    /// The tables that hold items (or did, until cleared), sorted.
    pub fn tables(&self) -> Result<Vec<String>, StoreError> {
        const OP: &str = "tables";
        self.read(OP, |tx| {
            let mut stmt = tx
                .prepare_cached("SELECT name FROM tables ORDER BY name")
                .map_err(sql(OP))?;
            stmt.query_map([], |row| row.get(0))
                .and_then(|rows| rows.collect())
                .map_err(sql(OP))
        })
    }

    /// Deletes every item of the table and forgets its key, so it can be used
    /// with a different key (a redeploy that changed it). Sends no events.
    /// Returns how many items were deleted.
    pub fn table_clear(&self, table: &str) -> Result<usize, StoreError> {
        const OP: &str = "table_clear";
        self.write(OP, |tx| {
            let deleted = tx
                .execute("DELETE FROM items WHERE tbl = ?1", params![table])
                .map_err(sql(OP))?;
            tx.execute("DELETE FROM tables WHERE name = ?1", params![table])
                .map_err(sql(OP))?;
            Ok(deleted)
        })
    }
}

/// Records the table's key on first use; refuses a different key after.
fn register_key(
    conn: &Connection,
    op: &'static str,
    table: &str,
    key: &TableKey,
) -> Result<(), StoreError> {
    if !check_key(conn, op, table, key)? {
        // Serializing a TableKey (strings and enums) cannot fail.
        let text = serde_json::to_string(key).unwrap_or_default();
        conn.prepare_cached("INSERT INTO tables (name, key) VALUES (?1, ?2)")
            .and_then(|mut stmt| stmt.execute(params![table, text]))
            .map_err(sql(op))?;
    }
    Ok(())
}

/// Whether the table exists; an error if it is keyed differently.
fn check_key(
    conn: &Connection,
    op: &'static str,
    table: &str,
    key: &TableKey,
) -> Result<bool, StoreError> {
    let stored: Option<String> = conn
        .prepare_cached("SELECT key FROM tables WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row(params![table], |row| row.get(0)).optional())
        .map_err(sql(op))?;
    let Some(stored) = stored else {
        return Ok(false);
    };
    let stored: TableKey =
        serde_json::from_str(&stored).map_err(|source| StoreError::CorruptRow {
            what: format!("key of table `{table}`"),
            source,
        })?;
    if stored != *key {
        return Err(StoreError::KeyMismatch {
            table: table.to_owned(),
            stored: stored.describe(),
            requested: key.describe(),
        });
    }
    Ok(true)
}

fn load_item(
    conn: &Connection,
    op: &'static str,
    table: &str,
    key: &EncodedKey,
) -> Result<Option<Value>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT item FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")
        .and_then(|mut stmt| {
            stmt.query_row(params![table, key.pk, key.sk], |row| row.get(0))
                .optional()
        })
        .map_err(sql(op))?;
    text.map(|text| decode_item(table, &text)).transpose()
}

fn decode_item(table: &str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::CorruptRow {
        what: format!("item of table `{table}`"),
        source,
    })
}

/// Sends the change event to every trigger queue, inside the write's transaction.
fn send_changes(
    conn: &Connection,
    nonce: u64,
    op: &'static str,
    message: &NewMessage,
    queues: &[String],
    now_ms: u64,
) -> Result<(), StoreError> {
    for queue in queues {
        send_in(conn, nonce, op, queue, message, now_ms)?;
    }
    Ok(())
}

/// SQLite's "no limit" is -1.
fn sql_limit(limit: Option<usize>) -> i64 {
    limit.map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX))
}
