//! Queue semantics: visibility, acks, retries, dead-letters, batches, retention.

use std::collections::BTreeMap;

use nimbus_local_store::{NewMessage, QueueConfig, QueueDepth, Receipt, Store, StoreError};
use tempfile::TempDir;

const T0: u64 = 1_700_000_000_000;

fn store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    (dir, store)
}

fn queue(store: &Store, name: &str, visibility_timeout_ms: u64) {
    let config = QueueConfig {
        visibility_timeout_ms,
        ..QueueConfig::default()
    };
    store.ensure_queue(name, &config).unwrap();
}

fn bodies(received: &[nimbus_local_store::Received]) -> Vec<&str> {
    received.iter().map(|m| m.body.as_str()).collect()
}

#[test]
fn received_messages_are_hidden_until_the_visibility_timeout() {
    let (_dir, store) = store();
    queue(&store, "jobs", 1_000);
    let message = NewMessage::new("hello").with_attribute("kind", "greeting");
    let id = store.send("jobs", &message, T0).unwrap();

    let first = store.receive("jobs", 10, T0).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id, id);
    assert_eq!(first[0].body, "hello");
    assert_eq!(
        first[0].attributes,
        BTreeMap::from([("kind".into(), "greeting".into())])
    );
    assert_eq!(first[0].receive_count, 1);
    assert_eq!(first[0].sent_at_ms, T0);

    assert!(store.receive("jobs", 10, T0 + 999).unwrap().is_empty());
    assert_eq!(store.next_visible_at("jobs").unwrap(), Some(T0 + 1_000));
    let depth = store.depth("jobs", T0 + 999).unwrap();
    assert_eq!((depth.visible, depth.in_flight, depth.delayed), (0, 1, 0));

    let second = store.receive("jobs", 10, T0 + 1_000).unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, id);
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(second[0].receipt, first[0].receipt);

    // The first receipt is stale now: acking with it does nothing.
    assert_eq!(store.ack("jobs", &[first[0].receipt.clone()]).unwrap(), 0);
    assert_eq!(store.peek_all("jobs").unwrap().len(), 1);
    assert_eq!(store.ack("jobs", &[second[0].receipt.clone()]).unwrap(), 1);
    assert!(store.peek_all("jobs").unwrap().is_empty());
    assert_eq!(store.next_visible_at("jobs").unwrap(), None);
    // Acking twice deletes nothing more.
    assert_eq!(store.ack("jobs", &[second[0].receipt.clone()]).unwrap(), 0);
    assert!(store.receive("jobs", 10, T0 + 100_000).unwrap().is_empty());
}

#[test]
fn receipts_cross_an_api_as_strings() {
    let (_dir, store) = store();
    queue(&store, "jobs", 1_000);
    store.send("jobs", &NewMessage::new("x"), T0).unwrap();
    let received = store.receive("jobs", 1, T0).unwrap();
    let text = received[0].receipt.to_string();
    let parsed: Receipt = text.parse().unwrap();
    assert_eq!(parsed.message_id(), received[0].id);
    assert_eq!(store.ack("jobs", &[parsed]).unwrap(), 1);
}

#[test]
fn a_receipt_from_another_queue_or_store_is_ignored() {
    let (_dir, store) = store();
    queue(&store, "a", 1_000);
    queue(&store, "b", 1_000);
    store.send("a", &NewMessage::new("x"), T0).unwrap();
    let received = store.receive("a", 1, T0).unwrap();
    assert_eq!(store.ack("b", &[received[0].receipt.clone()]).unwrap(), 0);

    let other = Store::open_in_memory().unwrap();
    queue(&other, "a", 1_000);
    other.send("a", &NewMessage::new("y"), T0).unwrap();
    let foreign = other.receive("a", 1, T0).unwrap();
    assert_eq!(store.ack("a", &[foreign[0].receipt.clone()]).unwrap(), 0);
    assert_eq!(store.ack("a", &[received[0].receipt.clone()]).unwrap(), 1);
}

#[test]
fn retry_makes_a_message_visible_after_its_delay_and_keeps_the_count() {
    let (_dir, store) = store();
    queue(&store, "jobs", 60_000);
    store.send("jobs", &NewMessage::new("x"), T0).unwrap();
    let first = store.receive("jobs", 1, T0).unwrap();
    store
        .retry("jobs", &first[0].receipt, 500, T0 + 10)
        .unwrap();

    let depth = store.depth("jobs", T0 + 10).unwrap();
    assert_eq!((depth.visible, depth.in_flight, depth.delayed), (0, 0, 1));
    assert_eq!(store.next_visible_at("jobs").unwrap(), Some(T0 + 510));
    assert!(store.receive("jobs", 1, T0 + 509).unwrap().is_empty());
    let again = store.receive("jobs", 1, T0 + 510).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);

    // Retrying with the stale receipt changes nothing.
    store.retry("jobs", &first[0].receipt, 0, T0 + 600).unwrap();
    assert!(store.receive("jobs", 1, T0 + 600).unwrap().is_empty());
}

#[test]
fn extend_keeps_a_message_hidden_longer() {
    let (_dir, store) = store();
    queue(&store, "jobs", 1_000);
    store.send("jobs", &NewMessage::new("x"), T0).unwrap();
    let received = store.receive("jobs", 1, T0).unwrap();
    store
        .extend("jobs", &received[0].receipt, 5_000, T0 + 900)
        .unwrap();
    assert!(store.receive("jobs", 1, T0 + 1_000).unwrap().is_empty());
    assert!(store.receive("jobs", 1, T0 + 5_899).unwrap().is_empty());
    let depth = store.depth("jobs", T0 + 5_899).unwrap();
    assert_eq!(depth.in_flight, 1);
    assert_eq!(store.receive("jobs", 1, T0 + 5_900).unwrap().len(), 1);
}

#[test]
fn delayed_messages_are_counted_and_delivered_on_time() {
    let (_dir, store) = store();
    queue(&store, "jobs", 10_000);
    store
        .send("jobs", &NewMessage::new("later").with_delay(2_000), T0)
        .unwrap();
    store.send("jobs", &NewMessage::new("now"), T0).unwrap();
    assert_eq!(
        store.depth("jobs", T0).unwrap(),
        QueueDepth {
            visible: 1,
            delayed: 1,
            ..QueueDepth::default()
        }
    );
    assert_eq!(store.next_visible_at("jobs").unwrap(), Some(T0));
    assert_eq!(bodies(&store.receive("jobs", 10, T0).unwrap()), ["now"]);
    assert_eq!(store.next_visible_at("jobs").unwrap(), Some(T0 + 2_000));
    assert!(store.receive("jobs", 10, T0 + 1_999).unwrap().is_empty());
    assert_eq!(
        bodies(&store.receive("jobs", 10, T0 + 2_000).unwrap()),
        ["later"]
    );
}

#[test]
fn messages_past_max_receives_move_to_the_dead_letter_queue() {
    let (_dir, store) = store();
    queue(&store, "dlq", 1_000);
    let config = QueueConfig {
        visibility_timeout_ms: 100,
        max_receives: Some(2),
        dead_letter: Some("dlq".into()),
        ..QueueConfig::default()
    };
    store.ensure_queue("jobs", &config).unwrap();
    let message = NewMessage::new("poison").with_attribute("trace", "t-1");
    let id = store.send("jobs", &message, T0).unwrap();
    store
        .send("jobs", &NewMessage::new("fine").with_delay(150), T0)
        .unwrap();

    assert_eq!(store.receive("jobs", 1, T0).unwrap()[0].receive_count, 1);
    assert_eq!(
        store.receive("jobs", 1, T0 + 100).unwrap()[0].receive_count,
        2
    );
    // Third time: not delivered, moved; the receive goes on to the next message.
    let third = store.receive("jobs", 10, T0 + 200).unwrap();
    assert_eq!(bodies(&third), ["fine"]);

    let dead = store.peek_all("dlq").unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, id);
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].attributes, message.attributes);
    assert_eq!(dead[0].receive_count, 0);
    assert_eq!(dead[0].sent_at_ms, T0);
    let depth = store.depth("jobs", T0 + 200).unwrap();
    assert_eq!(
        (depth.dead_lettered, depth.dropped, depth.in_flight),
        (1, 0, 1)
    );

    let from_dlq = store.receive("dlq", 10, T0 + 200).unwrap();
    assert_eq!(from_dlq.len(), 1);
    assert_eq!(
        (from_dlq[0].id.as_str(), from_dlq[0].receive_count),
        (id.as_str(), 1)
    );
    assert_eq!(store.ack("dlq", &[from_dlq[0].receipt.clone()]).unwrap(), 1);
}

#[test]
fn without_a_dead_letter_queue_messages_past_max_receives_are_dropped() {
    let (_dir, store) = store();
    let config = QueueConfig {
        visibility_timeout_ms: 100,
        max_receives: Some(1),
        ..QueueConfig::default()
    };
    store.ensure_queue("jobs", &config).unwrap();
    store.send("jobs", &NewMessage::new("x"), T0).unwrap();
    assert_eq!(store.receive("jobs", 1, T0).unwrap().len(), 1);
    assert!(store.receive("jobs", 1, T0 + 100).unwrap().is_empty());
    assert!(store.peek_all("jobs").unwrap().is_empty());
    assert_eq!(store.depth("jobs", T0 + 100).unwrap().dropped, 1);
}

#[test]
fn receive_respects_max_and_order() {
    let (_dir, store) = store();
    queue(&store, "jobs", 1_000);
    let ids: Vec<String> = (0..10)
        .map(|i| {
            store
                .send("jobs", &NewMessage::new(format!("m{i}")), T0 + i)
                .unwrap()
        })
        .collect();
    let first = store.receive("jobs", 4, T0 + 100).unwrap();
    assert_eq!(bodies(&first), ["m0", "m1", "m2", "m3"]);
    assert_eq!(
        first.iter().map(|m| &m.id).collect::<Vec<_>>(),
        ids[..4].iter().collect::<Vec<_>>()
    );
    let rest = store.receive("jobs", 100, T0 + 100).unwrap();
    assert_eq!(bodies(&rest), ["m4", "m5", "m6", "m7", "m8", "m9"]);
    assert!(store.receive("jobs", 0, T0 + 5_000).unwrap().is_empty());
    let ids: std::collections::HashSet<_> = ids.into_iter().collect();
    assert_eq!(ids.len(), 10, "message ids are unique");
}

#[test]
fn a_zero_visibility_timeout_delivers_each_message_once_per_receive() {
    let (_dir, store) = store();
    queue(&store, "jobs", 0);
    for i in 0..3 {
        store
            .send("jobs", &NewMessage::new(format!("m{i}")), T0)
            .unwrap();
    }
    assert_eq!(
        bodies(&store.receive("jobs", 10, T0).unwrap()),
        ["m0", "m1", "m2"]
    );
    assert_eq!(bodies(&store.receive("jobs", 2, T0).unwrap()), ["m0", "m1"]);
    assert_eq!(
        bodies(&store.receive("jobs", usize::MAX, T0).unwrap()),
        ["m0", "m1", "m2"]
    );
    let counts: Vec<u32> = store
        .peek_all("jobs")
        .unwrap()
        .iter()
        .map(|m| m.receive_count)
        .collect();
    assert_eq!(counts, [3, 3, 2]);
}

#[test]
fn send_batch_is_all_or_nothing() {
    let (_dir, store) = store();
    queue(&store, "a", 1_000);
    queue(&store, "b", 1_000);
    let batch = vec![
        ("a".to_owned(), NewMessage::new("1")),
        ("b".to_owned(), NewMessage::new("2")),
        ("missing".to_owned(), NewMessage::new("3")),
    ];
    let err = store.send_batch(&batch, T0).unwrap_err();
    assert!(
        matches!(&err, StoreError::UnknownQueue { queue } if queue == "missing"),
        "{err}"
    );
    assert_eq!(err.to_string(), "queue `missing` does not exist");
    assert!(store.peek_all("a").unwrap().is_empty());
    assert!(store.peek_all("b").unwrap().is_empty());

    let ids = store.send_batch(&batch[..2], T0).unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(store.peek_all("a").unwrap()[0].id, ids[0]);
    assert_eq!(store.peek_all("b").unwrap()[0].id, ids[1]);
}

#[test]
fn messages_past_retention_are_dropped_on_receive() {
    let (_dir, store) = store();
    let config = QueueConfig {
        retention_ms: 10_000,
        ..QueueConfig::default()
    };
    store.ensure_queue("jobs", &config).unwrap();
    store.send("jobs", &NewMessage::new("old"), T0).unwrap();
    store
        .send("jobs", &NewMessage::new("new"), T0 + 5_000)
        .unwrap();
    assert_eq!(store.depth("jobs", T0 + 10_000).unwrap().visible, 1);
    assert_eq!(
        bodies(&store.receive("jobs", 10, T0 + 10_000).unwrap()),
        ["new"]
    );
    assert_eq!(store.depth("jobs", T0 + 10_000).unwrap().dropped, 1);
}

#[test]
fn queue_configuration_is_validated_and_updatable() {
    let (_dir, store) = store();
    let with_dlq = |dlq: &str| QueueConfig {
        dead_letter: Some(dlq.into()),
        ..QueueConfig::default()
    };
    let err = store.ensure_queue("jobs", &with_dlq("dlq")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration for queue `jobs`: dead-letter queue `dlq` does not exist; create it first"
    );
    let err = store.ensure_queue("jobs", &with_dlq("jobs")).unwrap_err();
    assert!(matches!(err, StoreError::BadQueueConfig { .. }), "{err}");
    let zero = QueueConfig {
        max_receives: Some(0),
        ..QueueConfig::default()
    };
    assert!(store.ensure_queue("jobs", &zero).is_err());
    assert!(store.queues().unwrap().is_empty());

    queue(&store, "jobs", 1_000);
    store.send("jobs", &NewMessage::new("kept"), T0).unwrap();
    queue(&store, "jobs", 5_000);
    assert_eq!(
        store.queue_config("jobs").unwrap().visibility_timeout_ms,
        5_000
    );
    assert_eq!(store.peek_all("jobs").unwrap().len(), 1);
    queue(&store, "dlq", 1_000);
    assert_eq!(store.queues().unwrap(), ["dlq", "jobs"]);
}

#[test]
fn unknown_queues_are_errors_everywhere() {
    let (_dir, store) = store();
    let receipt: Receipt = "01234567-89ab-cdef-0000-00000000002a.1".parse().unwrap();
    let errors = [
        store.send("nope", &NewMessage::new("x"), T0).map(drop),
        store.receive("nope", 1, T0).map(drop),
        store.ack("nope", &[]).map(drop),
        store.retry("nope", &receipt, 0, T0),
        store.extend("nope", &receipt, 0, T0),
        store.depth("nope", T0).map(drop),
        store.next_visible_at("nope").map(drop),
        store.peek_all("nope").map(drop),
        store.purge("nope").map(drop),
    ];
    for result in errors {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, StoreError::UnknownQueue { queue } if queue == "nope"),
            "{err}"
        );
        assert!(err.hint().is_some());
    }
}

#[test]
fn purge_deletes_every_message() {
    let (_dir, store) = store();
    queue(&store, "jobs", 1_000);
    for i in 0..5 {
        store
            .send("jobs", &NewMessage::new(i.to_string()), T0)
            .unwrap();
    }
    store.receive("jobs", 2, T0).unwrap();
    assert_eq!(store.purge("jobs").unwrap(), 5);
    assert_eq!(store.depth("jobs", T0).unwrap(), QueueDepth::default());
}
