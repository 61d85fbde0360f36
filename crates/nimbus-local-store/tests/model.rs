//! Property test: random sends, receives, acks, retries, extensions and clock
//! steps, checked after every step against a small in-memory model of the
//! queue semantics; then a drain shows that every message sent is acked
//! exactly once, from its queue or from the dead-letter queue.

use std::collections::{BTreeMap, HashMap};

use nimbus_local_store::{NewMessage, QueueConfig, QueueDepth, Receipt, Store};
use proptest::prelude::*;

const T0: u64 = 1_700_000_000_000;
const VISIBILITY_MS: u64 = 100;
const MAX_RECEIVES: u32 = 3;
const MAIN: &str = "main";
const DLQ: &str = "dlq";

#[derive(Clone, Debug)]
enum Op {
    Send { delay_ms: u64 },
    Receive { queue: &'static str, max: usize },
    Ack { pick: usize },
    Retry { pick: usize, delay_ms: u64 },
    Extend { pick: usize, ms: u64 },
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..300u64).prop_map(|delay_ms| Op::Send { delay_ms: if delay_ms < 150 { 0 } else { delay_ms } }),
        3 => (0..5usize).prop_map(|max| Op::Receive { queue: MAIN, max }),
        1 => (0..5usize).prop_map(|max| Op::Receive { queue: DLQ, max }),
        2 => any::<usize>().prop_map(|pick| Op::Ack { pick }),
        1 => (any::<usize>(), 0..300u64).prop_map(|(pick, delay_ms)| Op::Retry { pick, delay_ms }),
        1 => (any::<usize>(), 0..300u64).prop_map(|(pick, ms)| Op::Extend { pick, ms }),
        2 => (0..250u64).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// One message as the model sees it.
#[derive(Clone, Debug)]
struct Message {
    seq: u64,
    queue: &'static str,
    visible_at: u64,
    receive_count: u32,
    generation: u64,
    leased: bool,
}

/// A receipt handed out, with what the model knows about it.
#[derive(Clone, Debug)]
struct Held {
    receipt: Receipt,
    id: String,
    generation: u64,
    queue: &'static str,
}

#[derive(Default)]
struct Model {
    messages: BTreeMap<String, Message>,
    next_seq: u64,
    dead_lettered: u64,
}

impl Model {
    fn receive(&mut self, queue: &'static str, max: usize, now: u64) -> Vec<(String, u32)> {
        let mut visible: Vec<(u64, u64, String)> = self
            .messages
            .iter()
            .filter(|(_, m)| m.queue == queue && m.visible_at <= now)
            .map(|(id, m)| (m.visible_at, m.seq, id.clone()))
            .collect();
        visible.sort();
        let mut out = Vec::new();
        for (_, _, id) in visible {
            if out.len() == max {
                break;
            }
            let m = self.messages.get_mut(&id).unwrap();
            if queue == MAIN && m.receive_count >= MAX_RECEIVES {
                *m = Message {
                    queue: DLQ,
                    receive_count: 0,
                    visible_at: now,
                    leased: false,
                    ..m.clone()
                };
                self.dead_lettered += 1;
                continue;
            }
            m.receive_count += 1;
            m.generation += 1;
            m.visible_at = now + VISIBILITY_MS;
            m.leased = true;
            out.push((id, m.receive_count));
        }
        out
    }

    /// The message a receipt still names, if it is current.
    fn current(&mut self, held: &Held, queue: &str) -> Option<&mut Message> {
        self.messages
            .get_mut(&held.id)
            .filter(|m| m.queue == queue && m.generation == held.generation)
    }

    fn depth(&self, queue: &str, now: u64) -> (u64, u64, u64) {
        let mut depth = (0, 0, 0);
        for m in self.messages.values().filter(|m| m.queue == queue) {
            if m.visible_at <= now {
                depth.0 += 1;
            } else if m.leased {
                depth.1 += 1;
            } else {
                depth.2 += 1;
            }
        }
        depth
    }
}

fn counts(depth: QueueDepth) -> (u64, u64, u64) {
    (depth.visible, depth.in_flight, depth.delayed)
}

fn check(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let plain = QueueConfig {
        visibility_timeout_ms: VISIBILITY_MS,
        ..QueueConfig::default()
    };
    store.ensure_queue(DLQ, &plain).unwrap();
    let main = QueueConfig {
        max_receives: Some(MAX_RECEIVES),
        dead_letter: Some(DLQ.into()),
        ..plain
    };
    store.ensure_queue(MAIN, &main).unwrap();

    let mut model = Model::default();
    let mut held: Vec<Held> = Vec::new();
    let mut sent: Vec<String> = Vec::new();
    let mut acked: HashMap<String, u32> = HashMap::new();
    let mut now = T0;

    for op in ops {
        match op {
            Op::Send { delay_ms } => {
                let body = format!("m{}", sent.len());
                let id = store
                    .send(MAIN, &NewMessage::new(body).with_delay(delay_ms), now)
                    .unwrap();
                model.next_seq += 1;
                let message = Message {
                    seq: model.next_seq,
                    queue: MAIN,
                    visible_at: now + delay_ms,
                    receive_count: 0,
                    generation: 0,
                    leased: false,
                };
                prop_assert!(
                    model.messages.insert(id.clone(), message).is_none(),
                    "duplicate id"
                );
                sent.push(id);
            }
            Op::Receive { queue, max } => {
                let got = store.receive(queue, max, now).unwrap();
                let expected = model.receive(queue, max, now);
                let actual: Vec<(String, u32)> = got
                    .iter()
                    .map(|r| (r.id.clone(), r.receive_count))
                    .collect();
                prop_assert_eq!(&actual, &expected);
                for r in got {
                    let index: usize = sent.iter().position(|id| *id == r.id).unwrap();
                    prop_assert_eq!(r.body, format!("m{index}"));
                    let generation = model.messages[&r.id].generation;
                    held.push(Held {
                        receipt: r.receipt,
                        id: r.id,
                        generation,
                        queue,
                    });
                }
            }
            Op::Ack { pick } if !held.is_empty() => {
                let h = held[pick % held.len()].clone();
                let deleted = store
                    .ack(h.queue, std::slice::from_ref(&h.receipt))
                    .unwrap();
                let expected = usize::from(model.current(&h, h.queue).is_some());
                prop_assert_eq!(deleted, expected);
                if deleted == 1 {
                    model.messages.remove(&h.id);
                    *acked.entry(h.id).or_default() += 1;
                }
            }
            Op::Retry { pick, delay_ms } if !held.is_empty() => {
                let h = held[pick % held.len()].clone();
                store.retry(h.queue, &h.receipt, delay_ms, now).unwrap();
                if let Some(m) = model.current(&h, h.queue) {
                    m.visible_at = now + delay_ms;
                    m.leased = false;
                }
            }
            Op::Extend { pick, ms } if !held.is_empty() => {
                let h = held[pick % held.len()].clone();
                store.extend(h.queue, &h.receipt, ms, now).unwrap();
                if let Some(m) = model.current(&h, h.queue) {
                    m.visible_at = now + ms;
                    m.leased = true;
                }
            }
            Op::Advance { ms } => now += ms,
            Op::Ack { .. } | Op::Retry { .. } | Op::Extend { .. } => {}
        }
        for queue in [MAIN, DLQ] {
            prop_assert_eq!(
                counts(store.depth(queue, now).unwrap()),
                model.depth(queue, now),
                "{}",
                queue
            );
        }
        prop_assert_eq!(
            store.depth(MAIN, now).unwrap().dead_lettered,
            model.dead_lettered
        );
        let stored: Vec<(String, u32)> = store
            .peek_all(MAIN)
            .unwrap()
            .into_iter()
            .map(|m| (m.id, m.receive_count))
            .collect();
        let mut expected: Vec<(u64, String, u32)> = model
            .messages
            .iter()
            .filter(|(_, m)| m.queue == MAIN)
            .map(|(id, m)| (m.seq, id.clone(), m.receive_count))
            .collect();
        expected.sort();
        prop_assert_eq!(
            stored,
            expected
                .into_iter()
                .map(|(_, id, n)| (id, n))
                .collect::<Vec<_>>()
        );
    }

    // Drain: consumers that always succeed eventually ack everything, either
    // from the queue or from the dead-letter queue.
    let dead_before = model.dead_lettered;
    let mut from_dlq = 0u64;
    for queue in [MAIN, DLQ] {
        for _ in 0..1_000 {
            if store.peek_all(queue).unwrap().is_empty() {
                break;
            }
            now += 1_000;
            for r in store.receive(queue, 100, now).unwrap() {
                prop_assert_eq!(store.ack(queue, &[r.receipt]).unwrap(), 1);
                *acked.entry(r.id).or_default() += 1;
                from_dlq += u64::from(queue == DLQ);
            }
        }
        prop_assert!(store.peek_all(queue).unwrap().is_empty());
    }
    prop_assert_eq!(acked.len(), sent.len(), "every message acked");
    prop_assert!(acked.values().all(|n| *n == 1), "no message acked twice");
    prop_assert!(sent.iter().all(|id| acked.contains_key(id)));
    let dead_lettered = store.depth(MAIN, now).unwrap().dead_lettered;
    prop_assert!(dead_lettered >= dead_before);
    prop_assert!(from_dlq <= dead_lettered);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn queue_matches_the_model_and_loses_nothing(ops in prop::collection::vec(op(), 1..80)) {
        check(ops)?;
    }
}
