//! Tables: put/get/delete with change events, key validation, query and scan.

use nimbus_local_store::{
    ChangeAction, KeyType, NewMessage, QueueConfig, Store, StoreError, TableKey,
};
use serde_json::{Value, json};
use tempfile::TempDir;

const T0: u64 = 1_700_000_000_000;

fn store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    store
        .ensure_queue("changes", &QueueConfig::default())
        .unwrap();
    (dir, store)
}

fn by_id() -> TableKey {
    TableKey::partition("id", KeyType::String)
}

fn events(store: &Store) -> Vec<Value> {
    store
        .peek_all("changes")
        .unwrap()
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect()
}

#[test]
fn put_and_delete_report_changes_and_send_events() {
    let (_dir, store) = store();
    let changes = ["changes".to_owned()];
    let first = json!({"id": "u1", "name": "Ada"});
    let second = json!({"id": "u1", "name": "Ada L."});

    let insert = store
        .table_put("users", &by_id(), first.clone(), &changes, T0)
        .unwrap();
    assert_eq!(insert.action, ChangeAction::Insert);
    assert_eq!(insert.key, json!({"id": "u1"}));
    assert_eq!(
        (insert.old.as_ref(), insert.new.as_ref()),
        (None, Some(&first))
    );

    let modify = store
        .table_put("users", &by_id(), second.clone(), &changes, T0 + 1)
        .unwrap();
    assert_eq!(modify.action, ChangeAction::Modify);
    assert_eq!(
        (modify.old.as_ref(), modify.new.as_ref()),
        (Some(&first), Some(&second))
    );
    assert_eq!(
        store
            .table_get("users", &by_id(), &json!({"id": "u1"}))
            .unwrap(),
        Some(second.clone())
    );

    let remove = store
        .table_delete("users", &by_id(), &json!({"id": "u1"}), &changes, T0 + 2)
        .unwrap()
        .unwrap();
    assert_eq!(remove.action, ChangeAction::Remove);
    assert_eq!((remove.old.as_ref(), remove.new), (Some(&second), None));
    assert_eq!(
        store
            .table_get("users", &by_id(), &json!({"id": "u1"}))
            .unwrap(),
        None
    );
    // Deleting what is absent: no change, no event.
    assert!(
        store
            .table_delete("users", &by_id(), &json!({"id": "u1"}), &changes, T0 + 3)
            .unwrap()
            .is_none()
    );

    assert_eq!(
        events(&store),
        [
            json!({"table": "users", "action": "insert", "key": {"id": "u1"}, "old": null, "new": first}),
            json!({"table": "users", "action": "modify", "key": {"id": "u1"}, "old": first, "new": second}),
            json!({"table": "users", "action": "remove", "key": {"id": "u1"}, "old": second, "new": null}),
        ]
    );
    assert_eq!(insert.event("users"), events(&store)[0]);
    let sent: Vec<u64> = store
        .peek_all("changes")
        .unwrap()
        .iter()
        .map(|m| m.sent_at_ms)
        .collect();
    assert_eq!(sent, [T0, T0 + 1, T0 + 2]);
}

#[test]
fn changes_go_to_every_trigger_queue() {
    let (_dir, store) = store();
    store
        .ensure_queue("audit", &QueueConfig::default())
        .unwrap();
    let changes = ["changes".to_owned(), "audit".to_owned()];
    store
        .table_put("users", &by_id(), json!({"id": "a"}), &changes, T0)
        .unwrap();
    assert_eq!(store.peek_all("changes").unwrap().len(), 1);
    assert_eq!(store.peek_all("audit").unwrap().len(), 1);
    store
        .table_put("users", &by_id(), json!({"id": "b"}), &[], T0)
        .unwrap();
    assert_eq!(store.peek_all("changes").unwrap().len(), 1);
}

#[test]
fn a_failing_put_writes_nothing_and_sends_no_event() {
    let (_dir, store) = store();
    let changes = ["changes".to_owned(), "missing".to_owned()];
    let err = store
        .table_put("users", &by_id(), json!({"id": "a"}), &changes, T0)
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownQueue { .. }), "{err}");
    assert!(events(&store).is_empty());
    assert_eq!(
        store
            .table_get("users", &by_id(), &json!({"id": "a"}))
            .unwrap(),
        None
    );
    assert!(store.tables().unwrap().is_empty());

    let err = store
        .table_put("users", &by_id(), json!({"name": "x"}), &changes[..1], T0)
        .unwrap_err();
    assert!(matches!(err, StoreError::BadItem { .. }), "{err}");
    assert!(events(&store).is_empty());

    store
        .table_put("users", &by_id(), json!({"id": "a", "v": 1}), &[], T0)
        .unwrap();
    let err = store
        .table_delete("users", &by_id(), &json!({"id": "a"}), &changes, T0)
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownQueue { .. }), "{err}");
    assert!(
        store
            .table_get("users", &by_id(), &json!({"id": "a"}))
            .unwrap()
            .is_some()
    );
}

#[test]
fn key_types_are_validated_with_clear_messages() {
    let (_dir, store) = store();
    let put = |item: Value| {
        store
            .table_put("users", &by_id(), item, &[], T0)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        put(json!({"id": 1})),
        "invalid item for table `users`: key attribute `id` must be a string, found number `1`"
    );
    assert_eq!(
        put(json!({"name": "x"})),
        "invalid item for table `users`: missing key attribute `id`"
    );
    assert_eq!(
        put(json!("u1")),
        "invalid item for table `users`: an item must be a JSON object, found string"
    );
    assert_eq!(
        put(json!({"id": ""})),
        "invalid item for table `users`: key attribute `id` must not be empty"
    );

    let numeric = TableKey::partition("n", KeyType::Number);
    let err = store
        .table_put("nums", &numeric, json!({"n": "1"}), &[], T0)
        .unwrap_err();
    assert!(matches!(err, StoreError::BadItem { .. }), "{err}");
    let binary = TableKey::partition("b", KeyType::Binary);
    let err = store
        .table_put("bins", &binary, json!({"b": "%%%"}), &[], T0)
        .unwrap_err();
    assert!(
        err.to_string().contains("must be base64-encoded binary"),
        "{err}"
    );

    let err = store
        .table_get("users", &by_id(), &json!({"id": "a", "extra": 1}))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid key for table `users`: `extra` is not a key attribute; the key is `id` (string)"
    );
    let err = store
        .table_query("users", &by_id(), &json!(7), None)
        .unwrap_err();
    assert!(matches!(err, StoreError::BadKey { .. }), "{err}");
}

#[test]
fn numbers_and_strings_are_different_keys() {
    let (_dir, store) = store();
    let numeric = TableKey::partition("id", KeyType::Number);
    store
        .table_put("t", &numeric, json!({"id": 1, "v": "number"}), &[], T0)
        .unwrap();
    // 1.0 is the same number as 1.
    let change = store
        .table_put("t", &numeric, json!({"id": 1.0, "v": "float"}), &[], T0)
        .unwrap();
    assert_eq!(change.action, ChangeAction::Modify);
    assert_eq!(change.key, json!({"id": 1}));
    assert_eq!(store.table_scan("t", None).unwrap().len(), 1);

    // The same table name with a string key is refused, not silently mixed.
    let err = store
        .table_put("t", &by_id(), json!({"id": "1"}), &[], T0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "table `t` is keyed by `id` (number), not by `id` (string)"
    );
    assert!(store.table_get("t", &by_id(), &json!({"id": "1"})).is_err());

    store
        .table_put("s", &by_id(), json!({"id": "1", "v": "string"}), &[], T0)
        .unwrap();
    assert_eq!(
        store
            .table_get("s", &by_id(), &json!({"id": "1"}))
            .unwrap()
            .unwrap()["v"],
        "string"
    );
    assert_eq!(
        store
            .table_get("t", &numeric, &json!({"id": 1}))
            .unwrap()
            .unwrap()["v"],
        "float"
    );
}

#[test]
fn query_returns_a_partition_ordered_by_numeric_sort_key() {
    let (_dir, store) = store();
    let key = TableKey::partition("user", KeyType::String).with_sort("at", KeyType::Number);
    for at in [
        json!(10),
        json!(9),
        json!(100),
        json!(-1),
        json!(2.5),
        json!(1e3),
    ] {
        store
            .table_put("events", &key, json!({"user": "a", "at": at}), &[], T0)
            .unwrap();
    }
    store
        .table_put("events", &key, json!({"user": "b", "at": 1}), &[], T0)
        .unwrap();

    let ats = |items: Vec<Value>| {
        items
            .iter()
            .map(|i| i["at"].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ats(store
            .table_query("events", &key, &json!("a"), None)
            .unwrap()),
        [-1.0, 2.5, 9.0, 10.0, 100.0, 1000.0]
    );
    assert_eq!(
        ats(store
            .table_query("events", &key, &json!("a"), Some(2))
            .unwrap()),
        [-1.0, 2.5]
    );
    assert_eq!(
        ats(store
            .table_query("events", &key, &json!("b"), None)
            .unwrap()),
        [1.0]
    );
    assert!(
        store
            .table_query("events", &key, &json!("c"), None)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .table_query("never-written", &key, &json!("a"), None)
            .unwrap()
            .is_empty()
    );

    let item = store
        .table_get("events", &key, &json!({"user": "a", "at": 1000}))
        .unwrap();
    assert_eq!(item, Some(json!({"user": "a", "at": 1e3})));
}

#[test]
fn string_and_binary_sort_keys_order_bytewise() {
    let (_dir, store) = store();
    let key = TableKey::partition("p", KeyType::String).with_sort("s", KeyType::String);
    for s in ["b", "B", "a", "ä", "aa"] {
        store
            .table_put("t", &key, json!({"p": "x", "s": s}), &[], T0)
            .unwrap();
    }
    let order: Vec<Value> = store
        .table_query("t", &key, &json!("x"), None)
        .unwrap()
        .into_iter()
        .map(|i| i["s"].clone())
        .collect();
    assert_eq!(
        order,
        [json!("B"), json!("a"), json!("aa"), json!("b"), json!("ä")]
    );

    let key = TableKey::partition("p", KeyType::String).with_sort("b", KeyType::Binary);
    // 0xff, 0x00 0x01, 0x01: byte order is 00 01 < 01 < ff.
    for b in ["/w==", "AAE=", "AQ"] {
        store
            .table_put("bin", &key, json!({"p": "x", "b": b}), &[], T0)
            .unwrap();
    }
    let order: Vec<Value> = store
        .table_query("bin", &key, &json!("x"), None)
        .unwrap()
        .into_iter()
        .map(|i| i["b"].clone())
        .collect();
    assert_eq!(order, [json!("AAE="), json!("AQ"), json!("/w==")]);
    // "AQ" and "AQ==" name the same item.
    assert!(
        store
            .table_get("bin", &key, &json!({"p": "x", "b": "AQ=="}))
            .unwrap()
            .is_some()
    );
}

#[test]
fn scan_is_deterministic_and_limited() {
    let (_dir, store) = store();
    let key = TableKey::partition("p", KeyType::String).with_sort("n", KeyType::Number);
    for (p, n) in [("b", 2), ("a", 10), ("b", 1), ("a", 9)] {
        store
            .table_put("t", &key, json!({"p": p, "n": n}), &[], T0)
            .unwrap();
    }
    store
        .table_put("other", &by_id(), json!({"id": "z"}), &[], T0)
        .unwrap();
    let all = store.table_scan("t", None).unwrap();
    assert_eq!(
        all,
        [
            json!({"p": "a", "n": 9}),
            json!({"p": "a", "n": 10}),
            json!({"p": "b", "n": 1}),
            json!({"p": "b", "n": 2})
        ]
    );
    assert_eq!(store.table_scan("t", Some(3)).unwrap(), all[..3]);
    assert!(store.table_scan("nothing", None).unwrap().is_empty());
    assert_eq!(store.tables().unwrap(), ["other", "t"]);
}

#[test]
fn clear_forgets_items_and_key() {
    let (_dir, store) = store();
    store
        .table_put(
            "t",
            &by_id(),
            json!({"id": "a"}),
            &["changes".to_owned()],
            T0,
        )
        .unwrap();
    assert_eq!(store.table_clear("t").unwrap(), 1);
    assert!(store.table_scan("t", None).unwrap().is_empty());
    let numeric = TableKey::partition("id", KeyType::Number);
    store
        .table_put("t", &numeric, json!({"id": 1}), &[], T0)
        .unwrap();
    assert_eq!(events(&store).len(), 1, "clearing sends no events");
    // Sending to the change queue directly still works alongside.
    store.send("changes", &NewMessage::new("x"), T0).unwrap();
}

#[test]
fn change_events_carry_the_writers_attributes() {
    let (_dir, store) = store();
    let changes = ["changes".to_owned()];
    let traced: std::collections::BTreeMap<String, String> = [(
        "traceparent".to_owned(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
    )]
    .into();
    store
        .table_put_with("users", &by_id(), json!({"id": "a"}), &changes, &traced, T0)
        .unwrap();
    store
        .table_put("users", &by_id(), json!({"id": "b"}), &changes, T0)
        .unwrap();
    store
        .table_delete_with(
            "users",
            &by_id(),
            &json!({"id": "a"}),
            &changes,
            &traced,
            T0,
        )
        .unwrap();
    let sent = store.peek_all("changes").unwrap();
    let attrs: Vec<_> = sent.iter().map(|m| m.attributes.clone()).collect();
    assert_eq!(attrs, [traced.clone(), Default::default(), traced]);
}
