//! Throughput of the hot path: prints the time of 10,000 send + receive + ack
//! cycles on a real file (run with `--release --nocapture` to read it). It
//! asserts only correctness, never a time.

use std::time::Instant;

use nimbus_local_store::{NewMessage, QueueConfig, Store};

const CYCLES: u64 = 10_000;
const T0: u64 = 1_700_000_000_000;

#[test]
fn ten_thousand_send_receive_ack_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    store.ensure_queue("jobs", &QueueConfig::default()).unwrap();
    let message = NewMessage::new(r#"{"order":"o-1","amount":42}"#).with_attribute("kind", "order");

    let start = Instant::now();
    for i in 0..CYCLES {
        let now = T0 + i;
        let id = store.send("jobs", &message, now).unwrap();
        let received = store.receive("jobs", 1, now).unwrap();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].id, id);
        assert_eq!(
            store.ack("jobs", &[received[0].receipt.clone()]).unwrap(),
            1
        );
    }
    let elapsed = start.elapsed();

    assert!(store.peek_all("jobs").unwrap().is_empty());
    println!(
        "{CYCLES} send+receive+ack cycles: {:.1?} ({:.1} µs per cycle)",
        elapsed,
        elapsed.as_secs_f64() * 1e6 / CYCLES as f64
    );
}
