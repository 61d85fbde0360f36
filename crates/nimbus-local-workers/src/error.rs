//! What an invocation can fail with.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An error as a worker reports it: the exception's type, message and stack trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// The error's type (`ValueError`, `TypeError`, `HandlerLoadError`, ...).
    pub kind: String,
    /// Its message.
    pub message: String,
    /// Its stack trace, when the worker gave one.
    pub stack: Option<String>,
}

impl ErrorInfo {
    /// An error without a stack trace.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> ErrorInfo {
        ErrorInfo {
            kind: kind.into(),
            message: message.into(),
            stack: None,
        }
    }

    /// Reads the protocol's `{"type", "message", "stack"}` object, tolerating missing fields.
    pub(crate) fn from_wire(value: Option<&serde_json::Value>) -> ErrorInfo {
        let field = |name: &str| {
            value
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        ErrorInfo {
            kind: field("type").unwrap_or_else(|| "Error".to_owned()),
            message: field("message").unwrap_or_default(),
            stack: field("stack"),
        }
    }
}

impl fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}: {}", self.kind, self.message)
        }
    }
}

/// Why [`Pool::invoke`](crate::Pool::invoke) did not return a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvokeError {
    /// The invocation passed its timeout: the worker was killed and will be replaced.
    #[error("invocation timed out after {} ms", after.as_millis())]
    Timeout {
        /// The function's timeout.
        after: Duration,
    },
    /// The handler ran out of memory (Python `MemoryError`, V8 "heap out of memory", or a worker
    /// that died with such evidence on stderr); the worker was replaced.
    #[error("function ran out of memory (limit {limit_mb} MB)")]
    OutOfMemory {
        /// The function's memory limit.
        limit_mb: u32,
    },
    /// The worker process died during the invocation.
    #[error("worker crashed: {detail}")]
    Crashed {
        /// Exit status or signal, and the last lines of its stderr.
        detail: String,
    },
    /// The handler could not be loaded (or the worker could not be started).
    #[error("handler failed to load: {error}")]
    LoadFailed {
        /// What the worker reported.
        error: ErrorInfo,
    },
    /// The handler raised or threw; the worker goes on serving.
    #[error("handler failed: {error}")]
    Handler {
        /// What the worker reported.
        error: ErrorInfo,
    },
    /// Every worker is busy, the pool is at its size limit and its wait queue is full.
    #[error("function is overloaded: all workers are busy and the wait queue is full")]
    Overloaded,
    /// The pool is draining or shut down and takes no new invocations.
    #[error("function is draining: it takes no new invocations")]
    Draining,
}
