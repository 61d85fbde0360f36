//! Opening store files: persistence, and refusal of corrupt, foreign and newer files.

use nimbus_local_store::{KeyType, NewMessage, QueueConfig, Store, StoreError, TableKey};
use serde_json::json;

const T0: u64 = 1_700_000_000_000;

#[test]
fn state_survives_reopening_and_ids_stay_unique() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let key = TableKey::partition("id", KeyType::String);
    let first_id = {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.path(), Some(path.as_path()));
        store.ensure_queue("jobs", &QueueConfig::default()).unwrap();
        store
            .table_put("users", &key, json!({"id": "a"}), &[], T0)
            .unwrap();
        store.send("jobs", &NewMessage::new("one"), T0).unwrap()
    };
    let store = Store::open(&path).unwrap();
    let second_id = store.send("jobs", &NewMessage::new("two"), T0).unwrap();
    assert_ne!(first_id, second_id);
    // Same store, same id prefix.
    assert_eq!(first_id[..18], second_id[..18]);
    let ids: Vec<String> = store
        .peek_all("jobs")
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, [first_id, second_id]);
    assert_eq!(
        store.table_get("users", &key, &json!({"id": "a"})).unwrap(),
        Some(json!({"id": "a"}))
    );
    assert!(store.integrity_check().unwrap().is_empty());
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let garbage =
        b"this is not a database, it is a text file that happens to be long enough".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("`{}` is corrupt or not a SQLite database", path.display())
    );
    assert!(err.hint().is_some());
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

#[test]
fn a_damaged_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(Store::open(&path).unwrap());
    // Keep the SQLite header but wreck the schema page.
    let mut bytes = std::fs::read(&path).unwrap();
    for byte in &mut bytes[100..] {
        *byte = 0xa5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn another_programs_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE notes (text TEXT)")
        .unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
    assert!(
        err.to_string()
            .ends_with("is a SQLite database but not a nimbus local store")
    );
}

#[test]
fn a_store_from_a_newer_nimbus_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "`{}` uses store schema version 99, newer than version 1 that this nimbus understands",
            path.display()
        )
    );
    assert_eq!(err.hint(), Some("upgrade nimbus, or move the file aside"));
}

#[test]
fn a_new_store_and_its_wal_are_the_owners_only_whatever_the_umask() {
    use nix::sys::stat::{Mode, umask};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let before = umask(Mode::empty());
    let store = Store::open(&path);
    umask(before);
    let store = store.unwrap();
    store.ensure_queue("jobs", &QueueConfig::default()).unwrap();
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
}

#[test]
fn a_missing_directory_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/state.db");
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn two_stores_on_one_file_see_each_others_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let a = Store::open(&path).unwrap();
    let b = Store::open(&path).unwrap();
    a.ensure_queue("jobs", &QueueConfig::default()).unwrap();
    b.send("jobs", &NewMessage::new("from b"), T0).unwrap();
    let received = a.receive("jobs", 10, T0).unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(b.ack("jobs", &[received[0].receipt.clone()]).unwrap(), 1);
}
