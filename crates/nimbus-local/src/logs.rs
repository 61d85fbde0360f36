//! Structured logs: one JSON line per invocation, per line a handler printed (tagged with its
//! request id) and per runtime event, in `<state>/logs/runtime.log`, rotated at a size limit
//! (`runtime.log.1` … `.3`). [`read`] and [`Follower`] serve `nimbus logs`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

/// The current log file's name.
pub const FILE: &str = "runtime.log";
/// Rotated files kept.
const KEEP: usize = 3;
/// Records are written to the file in pieces of this size (and at least every 200 ms: see
/// [`LogWriter::flush`]).
const BUFFER: usize = 64 * 1024;

/// Appends JSON lines, rotating the file when it passes `max_bytes`.
pub struct LogWriter {
    dir: PathBuf,
    max_bytes: u64,
    inner: Mutex<Inner>,
}

struct Inner {
    out: BufWriter<File>,
    written: u64,
    clock: Clock,
}

/// The `ts` of records: RFC 3339 UTC with milliseconds, formatted once per second.
#[derive(Default)]
struct Clock {
    second: i64,
    /// `2026-01-02T03:04:05.` for `second`.
    prefix: String,
}

impl Clock {
    /// Appends the current time, as [`now_text`] gives it.
    fn write(&mut self, out: &mut Vec<u8>) {
        let now = Utc::now();
        let second = now.timestamp();
        if self.prefix.is_empty() || second != self.second {
            let text = now.to_rfc3339_opts(SecondsFormat::Secs, true);
            self.prefix = format!("{}.", text.trim_end_matches('Z'));
            self.second = second;
        }
        out.extend_from_slice(self.prefix.as_bytes());
        let millis = now.timestamp_subsec_millis().min(999);
        let _ = write!(out, "{millis:03}Z");
    }
}

impl LogWriter {
    /// Opens (appends to) `<dir>/runtime.log`.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<LogWriter> {
        crate::state::private_dir(dir)?;
        let path = dir.join(FILE);
        let file = crate::state::private_append(&path)?;
        let written = file.metadata()?.len();
        Ok(LogWriter {
            dir: dir.to_path_buf(),
            max_bytes,
            inner: Mutex::new(Inner {
                out: BufWriter::with_capacity(BUFFER, file),
                written,
                clock: Clock::default(),
            }),
        })
    }

    /// Writes one record (a JSON object); `ts` is added.
    pub fn write(&self, record: Value) {
        self.write_record(&record);
    }

    /// Writes one record, anything that serializes to a JSON object; `ts` is added as its last
    /// field.
    pub fn write_record<T: Serialize + ?Sized>(&self, record: &T) {
        let mut line = Vec::with_capacity(256);
        if serde_json::to_writer(&mut line, record).is_err() || line.pop() != Some(b'}') {
            return;
        }
        if line.len() > 1 {
            line.push(b',');
        }
        line.extend_from_slice(br#""ts":""#);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.clock.write(&mut line);
        line.extend_from_slice(b"\"}\n");
        if inner.written + line.len() as u64 > self.max_bytes {
            let _ = inner.out.flush();
            if self.rotate().is_ok()
                && let Ok(file) = crate::state::private_append(&self.dir.join(FILE))
            {
                inner.out = BufWriter::with_capacity(BUFFER, file);
                inner.written = 0;
            }
        }
        if inner.out.write_all(&line).is_ok() {
            inner.written += line.len() as u64;
        }
    }

    /// Writes buffered lines to the file.
    pub fn flush(&self) {
        let _ = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .out
            .flush();
    }

    fn rotate(&self) -> std::io::Result<()> {
        for i in (1..KEEP).rev() {
            let from = self.dir.join(format!("{FILE}.{i}"));
            if from.exists() {
                std::fs::rename(&from, self.dir.join(format!("{FILE}.{}", i + 1)))?;
            }
        }
        std::fs::rename(self.dir.join(FILE), self.dir.join(format!("{FILE}.1")))
    }
}

/// The current time as RFC 3339 with milliseconds.
pub fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Which records to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this function's records.
    pub function: Option<String>,
    /// Only records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only records at this level or above (see [`level_of`]).
    pub level: Option<Level>,
    /// Only records whose line (as [`render`] gives it) contains this text, or whose
    /// `trace_id` is this text.
    pub text: Option<String>,
}

/// How serious a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Details of the runtime.
    Debug,
    /// Anything that went as planned.
    Info,
    /// A 4xx response, a message that will be retried.
    Warn,
    /// A failed invocation (error, timeout, out of memory, crash), a 5xx response, a runtime
    /// error.
    Error,
}

impl std::str::FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Level, String> {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Ok(Level::Debug),
            "info" => Ok(Level::Info),
            "warn" | "warning" => Ok(Level::Warn),
            "error" => Ok(Level::Error),
            other => Err(format!(
                "unknown level `{other}`; use debug, info, warn or error"
            )),
        }
    }
}

/// The level of a record: a runtime record's own; an invocation that did not end `ok` is an
/// error; a request answered 5xx is an error, 4xx a warning; printed output is info.
pub fn level_of(record: &Value) -> Level {
    let s = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or("");
    let http = record.get("status").and_then(Value::as_u64).unwrap_or(0);
    match s("kind") {
        "invocation" if !matches!(s("outcome"), "ok" | "") => Level::Error,
        "invocation" | "request" if http >= 500 => Level::Error,
        "invocation" | "request" if http >= 400 => Level::Warn,
        "runtime" => s("level").parse().unwrap_or(Level::Info),
        _ => Level::Info,
    }
}

impl Filter {
    /// Whether `record` passes.
    pub fn accepts(&self, record: &Value) -> bool {
        if let Some(f) = &self.function
            && record.get("function").and_then(Value::as_str) != Some(f.as_str())
        {
            return false;
        }
        if let Some(since) = self.since {
            let ts = record
                .get("ts")
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
            if ts.is_none_or(|t| t.with_timezone(&Utc) < since) {
                return false;
            }
        }
        if let Some(level) = self.level
            && level_of(record) < level
        {
            return false;
        }
        // A trace id matches the invocations of that trace (their records carry it).
        if let Some(text) = &self.text
            && !render(record).contains(text.as_str())
            && record.get("trace_id").and_then(Value::as_str) != Some(text.as_str())
        {
            return false;
        }
        true
    }
}

/// Every record in the log files of `dir` (oldest first) that passes `filter`.
pub fn read(dir: &Path, filter: &Filter) -> std::io::Result<Vec<Value>> {
    let mut files: Vec<PathBuf> = (1..=KEEP)
        .rev()
        .map(|i| dir.join(format!("{FILE}.{i}")))
        .collect();
    files.push(dir.join(FILE));
    let mut out = Vec::new();
    for path in files.into_iter().filter(|p| p.exists()) {
        for line in BufReader::new(File::open(&path)?).lines() {
            if let Ok(v) = serde_json::from_str::<Value>(&line?)
                && filter.accepts(&v)
            {
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// Reads records appended to `runtime.log` after it was created, across rotations.
pub struct Follower {
    path: PathBuf,
    offset: u64,
}

impl Follower {
    /// Starts at the current end of the log.
    pub fn at_end(dir: &Path) -> Follower {
        let path = dir.join(FILE);
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Follower { path, offset }
    }

    /// Records appended since the last call.
    pub fn poll(&mut self) -> std::io::Result<Vec<Value>> {
        let Ok(mut file) = File::open(&self.path) else {
            return Ok(Vec::new());
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            self.offset = 0; // rotated: the new file starts from the beginning
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut reader = BufReader::new(file);
        let mut out = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line)?;
            if n == 0 || !line.ends_with('\n') {
                break; // wait for the rest of a partly written line
            }
            self.offset += n as u64;
            if let Ok(v) = serde_json::from_str(&line) {
                out.push(v);
            }
        }
        Ok(out)
    }
}

/// One record as a human-readable line (an invocation's stack trace on the lines after it):
///
/// ```text
/// 2026-01-02T03:04:05.678Z get-order 1a2b3c4d GET /orders/42 404 3ms ok
/// 2026-01-02T03:04:05.678Z charge-payment 5e6f7a8b queue error 12ms 1/2 failed — ValueError: …
/// 2026-01-02T03:04:05.678Z warn charge-payment: payments: message … failed (attempt 1/5): …
/// ```
pub fn render(record: &Value) -> String {
    let s = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or("");
    let ts = s("ts");
    let function = s("function");
    let rid = s("request_id");
    let short = &rid[..rid.len().min(8)];
    let ms = record
        .get("duration_ms")
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
        .round();
    let status = record
        .get("status")
        .and_then(Value::as_u64)
        .map_or_else(|| "-".to_string(), |s| s.to_string());
    match s("kind") {
        "invocation" => {
            // Records written before outcomes had their own field carry it in `status`.
            let outcome = match s("outcome") {
                "" => s("status"),
                o => o,
            };
            let mut line = if record.get("method").is_some() {
                format!(
                    "{ts} {function} {short} {} {} {status} {ms}ms {outcome}",
                    s("method"),
                    s("path")
                )
            } else {
                format!("{ts} {function} {short} {} {outcome} {ms}ms", s("trigger"))
            };
            if record.get("cold").and_then(Value::as_bool) == Some(true) {
                line.push_str(" (cold)");
            }
            if let (Some(items), Some(failed)) = (
                record.get("items").and_then(Value::as_u64),
                record.get("failed").and_then(Value::as_u64),
            ) && failed > 0
            {
                line.push_str(&format!(" {failed}/{items} failed"));
            }
            if let Some(e) = record.get("error").and_then(Value::as_str) {
                line.push_str(&format!(" — {e}"));
            }
            if let Some(stack) = record.get("stack").and_then(Value::as_str) {
                for l in stack.lines().filter(|l| !l.trim().is_empty()) {
                    line.push_str("\n    ");
                    line.push_str(l);
                }
            }
            line
        }
        "request" => format!(
            "{ts} {} {short} {} {} {status} {ms}ms",
            if function.is_empty() { "-" } else { function },
            s("method"),
            s("path")
        ),
        "output" => format!("{ts} {function} {short} {}: {}", s("stream"), s("message")),
        _ => format!(
            "{ts} {} {}{}",
            s("level"),
            if function.is_empty() {
                String::new()
            } else {
                format!("{function}: ")
            },
            s("message")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_get_a_millisecond_timestamp_last() {
        #[derive(Serialize)]
        struct Record<'a> {
            kind: &'a str,
            n: u32,
        }
        let dir = tempfile::tempdir().unwrap();
        let w = LogWriter::open(dir.path(), 1 << 20).unwrap();
        let before = Utc::now();
        w.write_record(&Record {
            kind: "invocation",
            n: 1,
        });
        w.write(json!({ "kind": "runtime", "message": "x" }));
        w.flush();
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with(r#"{"kind":"invocation","n":1,"ts":""#),
            "{}",
            lines[0]
        );
        for line in lines {
            let record: Value = serde_json::from_str(line).unwrap();
            let ts = record["ts"].as_str().unwrap();
            assert_eq!(ts.len(), "2026-01-02T03:04:05.678Z".len(), "{ts}");
            let at = DateTime::parse_from_rfc3339(ts)
                .unwrap()
                .with_timezone(&Utc);
            assert!(at >= before - chrono::Duration::milliseconds(1) && at <= Utc::now());
        }
    }

    #[test]
    fn writes_rotates_reads_and_follows() {
        let dir = tempfile::tempdir().unwrap();
        let w = LogWriter::open(dir.path(), 400).unwrap();
        let mut follow = Follower::at_end(dir.path());
        for i in 0..20 {
            w.write(json!({ "kind": "output", "function": if i % 2 == 0 { "a" } else { "b" }, "request_id": "r", "stream": "stdout", "message": format!("line {i}") }));
        }
        w.flush();
        assert!(dir.path().join("runtime.log.1").exists(), "rotated");
        assert!(!dir.path().join("runtime.log.4").exists(), "keeps three");
        let a = read(
            dir.path(),
            &Filter {
                function: Some("a".into()),
                ..Filter::default()
            },
        )
        .unwrap();
        assert!(a.iter().all(|r| r["function"] == "a"));
        assert_eq!(a.last().unwrap()["message"], "line 18");
        let polled = follow.poll().unwrap();
        assert!(!polled.is_empty());
        let future = Filter {
            since: Some(Utc::now() + chrono::Duration::hours(1)),
            ..Filter::default()
        };
        assert!(read(dir.path(), &future).unwrap().is_empty());
        assert!(render(&a[0]).contains("a r stdout: line"));
    }

    #[test]
    fn outcomes_render_with_request_lines_and_filter_by_level_and_text() {
        let http = json!({ "kind": "invocation", "function": "get-order", "request_id": "0123456789ab", "trigger": "http", "outcome": "ok", "method": "GET", "path": "/orders/42", "status": 404, "duration_ms": 2.6, "ts": "2026-01-02T03:04:05.678Z" });
        assert_eq!(
            render(&http),
            "2026-01-02T03:04:05.678Z get-order 01234567 GET /orders/42 404 3ms ok"
        );
        assert_eq!(level_of(&http), Level::Warn);
        let batch = json!({ "kind": "invocation", "function": "charge", "request_id": "r", "trigger": "queue", "outcome": "error", "items": 3, "failed": 1, "duration_ms": 5.0, "error": "the handler reported 1 of 3 messages as failed", "stack": "Traceback\n  File \"charge.py\", line 3\n" });
        let line = render(&batch);
        assert!(
            line.contains("charge r queue error 5ms 1/3 failed — the handler"),
            "{line}"
        );
        assert!(
            line.ends_with("\n    Traceback\n      File \"charge.py\", line 3"),
            "{line}"
        );
        assert_eq!(level_of(&batch), Level::Error);
        let errors = Filter {
            level: Some("error".parse().unwrap()),
            ..Filter::default()
        };
        assert!(errors.accepts(&batch) && !errors.accepts(&http));
        let text = Filter {
            text: Some("/orders/42".into()),
            ..Filter::default()
        };
        assert!(text.accepts(&http) && !text.accepts(&batch));
        assert!(
            "loud"
                .parse::<Level>()
                .unwrap_err()
                .contains("debug, info, warn or error")
        );
    }
}
