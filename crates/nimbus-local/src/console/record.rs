//! The console's recent invocations: a bounded in-memory ring (the last [`KEEP`]) of what each
//! invocation got and returned, so the console can show request/response and replay the same
//! event. Events up to [`MAX_EVENT`] bytes are kept as the shared JSON text the worker was sent
//! (no copy; larger ones are not kept, and cannot be replayed); responses are cut at
//! [`MAX_RESPONSE`] bytes. At most about `KEEP * (MAX_EVENT + MAX_RESPONSE)` = 4 MB.

use std::collections::VecDeque;
use std::sync::Mutex;

use nimbus_local_workers::{Event, Invocation, InvokeError};
use serde_json::{Value, json};

/// How many invocations are kept.
pub const KEEP: usize = 100;
/// Largest event kept, in bytes of JSON.
pub const MAX_EVENT: usize = 32 * 1024;
/// Longest response text kept, in bytes.
pub const MAX_RESPONSE: usize = 8 * 1024;

/// One finished invocation.
#[derive(Clone)]
pub struct Entry {
    /// Increasing number, for `?after=`.
    pub seq: u64,
    /// Epoch ms at the end.
    pub ts_ms: u64,
    /// Its log record (function, trigger, request id, outcome, HTTP method/path/status,
    /// duration, failed items, error, stack), secrets masked.
    pub record: Value,
    /// The event it got; `None` when it was over [`MAX_EVENT`].
    pub event: Option<Event>,
    /// What it returned, as JSON text (cut, secrets masked).
    pub response: Option<String>,
}

impl Entry {
    /// A text field of the record.
    pub fn field(&self, name: &str) -> &str {
        self.record[name].as_str().unwrap_or("")
    }

    /// The function it ran.
    pub fn function(&self) -> &str {
        self.field("function")
    }

    /// What fired it (`http`, `queue`, `schedule`, `invoke`, `replay`…).
    pub fn trigger(&self) -> &str {
        self.field("trigger")
    }

    /// `ok`, `error`, `timeout`, `out of memory`, `crashed`, `throttled`, `unavailable`.
    pub fn outcome(&self) -> &str {
        self.field("outcome")
    }

    /// The JSON served: the record with `seq`, `ts_ms` and, `with_bodies`, the event and the
    /// response.
    pub fn to_json(&self, with_bodies: bool) -> Value {
        let mut v = self.record.clone();
        v["seq"] = json!(self.seq);
        v["ts_ms"] = json!(self.ts_ms);
        if with_bodies {
            v["event"] = match &self.event {
                Some(e) => serde_json::from_str(e.json()).unwrap_or(Value::Null),
                None => json!(format!("(over {MAX_EVENT} bytes: not kept)")),
            };
            v["result"] = match &self.response {
                Some(text) => serde_json::from_str(text).unwrap_or_else(|_| json!(text)),
                None => Value::Null,
            };
        }
        v
    }
}

/// The ring of recent invocations.
#[derive(Default)]
pub struct Recorder {
    inner: Mutex<(u64, VecDeque<Entry>)>,
}

impl Recorder {
    /// Records a finished invocation: its log `record`, the `event` it got and its `result`;
    /// `mask` takes secret values out of the response text.
    pub fn record(
        &self,
        record: Value,
        event: Event,
        result: &Result<Invocation, InvokeError>,
        mask: impl Fn(&str) -> String,
    ) {
        let response = result.as_ref().ok().map(|inv| {
            let mut text = mask(&inv.result.to_string());
            if text.len() > MAX_RESPONSE {
                let mut cut = MAX_RESPONSE;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            text
        });
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0 += 1;
        let entry = Entry {
            seq: inner.0,
            ts_ms: crate::now_ms(),
            record,
            event: (event.json().len() <= MAX_EVENT).then_some(event),
            response,
        };
        if inner.1.len() == KEEP {
            inner.1.pop_front();
        }
        inner.1.push_back(entry);
    }

    /// The kept invocations after `after` (oldest first) that `keep` accepts.
    pub fn list(&self, after: u64, keep: impl Fn(&Entry) -> bool) -> Vec<Entry> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .1
            .iter()
            .filter(|e| e.seq > after && keep(e))
            .cloned()
            .collect()
    }

    /// The invocation with this request id, if it is still kept.
    pub fn find(&self, request_id: &str) -> Option<Entry> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .1
            .iter()
            .rev()
            .find(|e| e.field("request_id") == request_id)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_invocations_and_cuts_long_responses() {
        let r = Recorder::default();
        for i in 0..(KEEP + 5) {
            let result = Ok(Invocation {
                result: json!({ "big": "x".repeat(if i == 0 { 0 } else { MAX_RESPONSE }) }),
                cold: false,
                duration: std::time::Duration::ZERO,
                init: None,
                worker_pid: 0,
            });
            r.record(
                json!({ "function": "f", "trigger": "invoke", "request_id": format!("r{i}"), "outcome": "ok" }),
                Event::from(json!({ "type": "invoke", "i": i })),
                &result,
                str::to_owned,
            );
        }
        let all = r.list(0, |_| true);
        assert_eq!(all.len(), KEEP);
        assert_eq!(all[0].field("request_id"), "r5");
        assert!(r.find("r0").is_none());
        r.record(
            json!({ "function": "f", "trigger": "invoke", "request_id": "big", "outcome": "throttled" }),
            Event::from(json!({ "type": "invoke", "blob": "y".repeat(MAX_EVENT) })),
            &Err(InvokeError::Overloaded),
            str::to_owned,
        );
        let big = r.find("big").unwrap();
        assert!(big.event.is_none());
        assert!(
            big.to_json(true)["event"]
                .as_str()
                .unwrap()
                .contains("not kept")
        );
        let last = r.find(&format!("r{}", KEEP + 4)).unwrap();
        assert_eq!(last.response.as_ref().unwrap().len(), MAX_RESPONSE);
        assert_eq!(last.to_json(true)["event"]["i"], json!(KEEP + 4));
        assert_eq!(r.list(last.seq - 1, |_| true).len(), 2);
    }
}
