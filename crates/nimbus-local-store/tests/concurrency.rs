//! Many threads sharing one store: every message is delivered and acked once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nimbus_local_store::{NewMessage, QueueConfig, Store};

const THREADS: usize = 8;
const MESSAGES: usize = 2_000;
const T0: u64 = 1_700_000_000_000;

#[test]
fn eight_threads_ack_each_of_2000_messages_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("state.db")).unwrap());
    // A visibility timeout far beyond the test: nothing is redelivered, so
    // every message must be acked exactly once.
    let config = QueueConfig {
        visibility_timeout_ms: 3_600_000,
        ..QueueConfig::default()
    };
    store.ensure_queue("jobs", &config).unwrap();

    let acked_total = Arc::new(AtomicUsize::new(0));
    let acked_bodies = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            let acked_total = Arc::clone(&acked_total);
            let acked_bodies = Arc::clone(&acked_bodies);
            std::thread::spawn(move || {
                let mut to_send = (0..MESSAGES / THREADS).map(|i| format!("{t}-{i}"));
                while acked_total.load(Ordering::SeqCst) < MESSAGES {
                    assert!(Instant::now() < deadline, "timed out");
                    // Interleave: send a few, then receive and ack a batch.
                    for body in to_send.by_ref().take(3) {
                        store.send("jobs", &NewMessage::new(body), T0).unwrap();
                    }
                    let received = store.receive("jobs", 5, T0).unwrap();
                    if received.is_empty() {
                        std::thread::yield_now();
                        continue;
                    }
                    let receipts: Vec<_> = received.iter().map(|r| r.receipt.clone()).collect();
                    assert_eq!(store.ack("jobs", &receipts).unwrap(), receipts.len());
                    let mut bodies = acked_bodies.lock().unwrap();
                    for r in received {
                        assert_eq!(r.receive_count, 1);
                        *bodies.entry(r.body).or_default() += 1;
                    }
                    acked_total.fetch_add(receipts.len(), Ordering::SeqCst);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }

    let bodies = acked_bodies.lock().unwrap();
    assert_eq!(acked_total.load(Ordering::SeqCst), MESSAGES);
    assert_eq!(bodies.len(), MESSAGES);
    assert!(bodies.values().all(|n| *n == 1));
    for t in 0..THREADS {
        for i in 0..MESSAGES / THREADS {
            assert!(bodies.contains_key(&format!("{t}-{i}")));
        }
    }
    assert!(store.peek_all("jobs").unwrap().is_empty());
}
