//! Durability: a process killed with SIGKILL in the middle of writing loses
//! nothing it committed and leaves nothing half-written.
//!
//! The test re-executes its own binary as the child (selected by an
//! environment variable), lets it write in a loop, and kills it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nimbus_local_store::{KeyType, NewMessage, QueueConfig, Store, TableKey};
use serde_json::json;

const CHILD_ENV: &str = "NIMBUS_LOCAL_STORE_CRASH_CHILD";
const TEST_NAME: &str = "committed_state_survives_sigkill";
const T0: u64 = 1_700_000_000_000;
const T1: u64 = T0 + 60_000;
const VISIBILITY_MS: u64 = 30_000;
/// The parent kills the child once it has reported this many commits.
const KILL_AFTER: u64 = 300;
/// Markers of the child's progress lines (libtest may print before them on a line).
const RECEIVED: &str = "@@received ";
const COMMITTED: &str = "@@committed ";

fn key() -> TableKey {
    TableKey::partition("id", KeyType::String)
}

/// Kills the child if the parent fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn committed_state_survives_sigkill() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(Path::new(&path));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");

    // Committed by this process before the child runs.
    let in_progress_id = {
        let store = Store::open(&path).unwrap();
        for name in ["events", "changes", "work"] {
            let config = QueueConfig {
                visibility_timeout_ms: VISIBILITY_MS,
                ..QueueConfig::default()
            };
            store.ensure_queue(name, &config).unwrap();
        }
        for i in 0..50 {
            store
                .send("events", &NewMessage::new(format!("pre-{i}")), T0)
                .unwrap();
            store
                .table_put(
                    "items",
                    &key(),
                    json!({"id": format!("pre-{i}")}),
                    &["changes".to_owned()],
                    T0,
                )
                .unwrap();
        }
        store
            .send("work", &NewMessage::new("in progress"), T0)
            .unwrap()
    };

    let exe = std::env::current_exe().unwrap();
    let mut child = KillOnDrop(
        Command::new(exe)
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut received = None;
    let mut last_committed = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some((_, id)) = line.split_once(RECEIVED) {
            received = Some(id.to_owned());
        } else if let Some((_, n)) = line.split_once(COMMITTED) {
            let n: u64 = n.parse().unwrap();
            last_committed = Some(n);
            if n == KILL_AFTER {
                // Let it run on for a moment that is not tied to its output,
                // so that the kill lands at an arbitrary point of a write.
                std::thread::sleep(jitter());
                child.0.kill().unwrap(); // SIGKILL on Unix
                break;
            }
        }
    }
    let status = child.0.wait().unwrap();
    assert!(
        !status.success(),
        "the child was killed, not finished: {status}"
    );
    // Lines the child wrote before it died are still in the pipe.
    for line in lines {
        if let Some((_, n)) = line.unwrap().split_once(COMMITTED) {
            last_committed = Some(n.parse().unwrap());
        }
    }
    let last_committed = last_committed.expect("the child reported commits before it was killed");
    assert!(last_committed >= KILL_AFTER);
    assert_eq!(received.as_deref(), Some(in_progress_id.as_str()));

    let store = Store::open(&path).unwrap();
    assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());

    // Messages: everything from before, then whole batches only, in order.
    let bodies: Vec<String> = store
        .peek_all("events")
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    let pre: Vec<String> = (0..50).map(|i| format!("pre-{i}")).collect();
    assert_eq!(bodies[..50], pre[..]);
    let batches = (bodies.len() - 50) / 3;
    assert_eq!((bodies.len() - 50) % 3, 0, "a batch was half-written");
    let expected: Vec<String> = (0..batches)
        .flat_map(|i| ["a", "b", "c"].map(|s| format!("child-{i}-{s}")))
        .collect();
    assert_eq!(bodies[50..], expected[..]);
    // Every reported commit is there; at most one unreported one also made it.
    let batches = batches as u64;
    assert!(
        batches > last_committed && batches <= last_committed + 2,
        "{batches} batches, {last_committed} reported"
    );

    // Items and their change events: the same count, committed together.
    let items = store.table_scan("items", None).unwrap();
    let child_items = items
        .iter()
        .filter(|i| i["id"].as_str().unwrap().starts_with("child-"))
        .count() as u64;
    assert_eq!(items.len() as u64, 50 + child_items);
    assert!(child_items > last_committed && child_items <= batches);
    for i in 0..child_items {
        let item = store
            .table_get("items", &key(), &json!({"id": format!("child-{i}")}))
            .unwrap();
        assert_eq!(
            item,
            Some(json!({"id": format!("child-{i}"), "n": i, "pad": "x".repeat(200)}))
        );
    }
    let changes = store.peek_all("changes").unwrap();
    assert_eq!(changes.len() as u64, 50 + child_items);

    // The message the child received and never acked comes back after its timeout.
    assert!(
        store
            .receive("work", 10, T1 + VISIBILITY_MS - 1)
            .unwrap()
            .is_empty()
    );
    let again = store.receive("work", 10, T1 + VISIBILITY_MS).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, in_progress_id);
    assert_eq!(again[0].receive_count, 2);
    assert_eq!(again[0].attributes, BTreeMap::new());
}

/// Up to 5 ms, different on each run.
fn jitter() -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Duration::from_micros(u64::from(nanos) % 5_000)
}

/// The child: receives the in-progress message, then writes until killed.
fn child(path: &Path) {
    let store = Store::open(path).unwrap();
    let work = store.receive("work", 1, T1).unwrap();
    println!("{RECEIVED}{}", work[0].id);
    // Bounded, so that an orphaned child stops by itself.
    for i in 0..100_000u64 {
        let batch: Vec<(String, NewMessage)> = ["a", "b", "c"]
            .map(|s| {
                (
                    "events".to_owned(),
                    NewMessage::new(format!("child-{i}-{s}")),
                )
            })
            .into();
        store.send_batch(&batch, T1).unwrap();
        let item = json!({"id": format!("child-{i}"), "n": i, "pad": "x".repeat(200)});
        store
            .table_put("items", &key(), item, &["changes".to_owned()], T1)
            .unwrap();
        println!("{COMMITTED}{i}");
    }
}
