//! How a pool reaches the rest of the runtime: resource calls, log lines and lifecycle events.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::ErrorInfo;

/// The future a [`Hooks::rpc`] call returns.
pub type RpcFuture<'a> =
    Pin<Box<dyn Future<Output = Result<serde_json::Value, ErrorInfo>> + Send + 'a>>;

/// Callbacks from a [`Pool`](crate::Pool) to the runtime that owns it.
///
/// `log` and `event` are called synchronously from the pool's tasks: keep them short and do not
/// block in them. They are never called while the pool's own lock is held, so they may call
/// [`Pool::stats`](crate::Pool::stats).
pub trait Hooks: Send + Sync {
    /// A resource call made by the handler during an invocation: `call` is the worker's frame
    /// `{"rpc": n, "resource", "op", "args"}`. Returns the result JSON, or an error whose `kind`
    /// and `message` reach the handler (as `ResourceError`).
    fn rpc(&self, function: &str, request_id: &str, call: serde_json::Value) -> RpcFuture<'_>;

    /// One line the handler printed, tagged with the invocation it came from (`None` for lines
    /// printed while loading or between invocations).
    fn log(&self, function: &str, request_id: Option<&str>, stream: Stream, line: &str);

    /// A lifecycle event, for metrics and logs.
    fn event(&self, function: &str, event: PoolEvent);

    /// Variables added to the environment of each worker as it is spawned, over the function's
    /// `env` (the shims' own variables still win): values that may change while the pool lives,
    /// such as secrets set again, so that every new worker starts with the current ones. An
    /// error fails that start (as [`PoolEvent::WorkerFailed`], and `LoadFailed` for the
    /// invocations that waited for it). Called on the pool's task: keep it short.
    fn spawn_env(&self, function: &str) -> Result<BTreeMap<String, String>, ErrorInfo> {
        let _ = function;
        Ok(BTreeMap::new())
    }
}

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The handler's standard output.
    Stdout,
    /// The handler's standard error.
    Stderr,
}

/// Something that happened to a pool's workers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PoolEvent {
    /// A worker loaded the handler and is ready (a cold start).
    WorkerStarted {
        /// Its process id.
        pid: u32,
        /// From spawn to ready: interpreter start plus handler load.
        init: Duration,
        /// The handler load alone, as the worker measured it.
        load: Duration,
    },
    /// A worker could not be started or could not load the handler.
    WorkerFailed {
        /// Its process id, when it was spawned.
        pid: Option<u32>,
        /// What went wrong.
        error: ErrorInfo,
    },
    /// A worker process is gone.
    WorkerStopped {
        /// Its process id.
        pid: u32,
        /// Why it was stopped.
        reason: StopReason,
    },
    /// The number of worker processes (starting, idle, busy or stopping) changed.
    InstancesChanged {
        /// The new number.
        instances: usize,
    },
}

/// Why a worker was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// It was idle longer than the pool's idle timeout.
    Idle,
    /// Its invocation passed the timeout: it was killed.
    Timeout,
    /// It ran out of memory.
    OutOfMemory,
    /// It died (mid-invocation or while idle), or broke the protocol.
    Crashed {
        /// Exit status or signal and the last lines of stderr, or the protocol violation.
        detail: String,
    },
    /// The pool was drained.
    Drained,
    /// The pool was shut down.
    Shutdown,
}
