//! Pools of long-lived language workers for the Nimbus local runtime.
//!
//! A [`Pool`] runs one function: it starts Python or Node worker processes from the function's
//! unpacked package (`python -m _nimbus.local_worker` / `node _nimbus/local_worker.js`), each of
//! which loads the handler once and then serves invocations one at a time over the local worker
//! protocol (docs/function-contract.md, "Local worker protocol": frames on fds 3 and 4). The pool
//! queues invocations that find every worker busy, or sends one ahead to a busy worker of a quick
//! function, grows (up to `max_concurrency` processes) when waiting persists, takes up to
//! `max_queued` invocations beyond one per possible worker, and stops workers idle longer than
//! `idle_timeout` (down to none). It enforces the
//! per-invocation timeout (killing the worker's process group), maps memory exhaustion and
//! crashes to errors, forwards the handler's output line by line and its resource calls to the
//! runtime through [`Hooks`].
//!
//! This crate knows the worker protocol and processes; it does not know the manifest, the app
//! graph, triggers or resources (resource calls are opaque JSON passed to [`Hooks::rpc`]).

#![deny(missing_docs)]

mod error;
mod event;
mod frame;
mod hooks;
mod logs;
mod pool;
mod spec;
mod tree;
mod worker;

pub use error::{ErrorInfo, InvokeError};
pub use event::Event;
pub use hooks::{Hooks, PoolEvent, RpcFuture, StopReason, Stream};
pub use pool::{Invocation, Pool, PoolStats};
pub use spec::{FunctionSpec, Language};
