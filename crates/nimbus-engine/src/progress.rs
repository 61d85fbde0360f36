//! Progress events: one per resource status change, and a summary at the end, delivered to a
//! callback (the CLI prints them, or writes them as JSON lines).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::driver::CallCounts;
use crate::plan::{Action, Summary};
use crate::report::millis;

/// A progress callback. It is called from the task running the apply and must not block.
pub type ProgressFn = Arc<dyn Fn(&Event) + Send + Sync>;

/// Something that happened during an apply or destroy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Work on a resource started.
    Started {
        /// Logical id.
        id: String,
        /// What is being done.
        action: Action,
    },
    /// A driver call failed with a retryable error and is tried again after `delay`.
    Retrying {
        /// Logical id.
        id: String,
        /// What is being done.
        action: Action,
        /// The attempt that failed (1 = the first).
        attempt: u32,
        /// The wait before the next attempt.
        #[serde(rename = "delay_ms", serialize_with = "millis")]
        delay: Duration,
        /// The cloud's message.
        message: String,
    },
    /// Work on a resource finished.
    Done {
        /// Logical id.
        id: String,
        /// What was done.
        action: Action,
        /// Time since `Started`.
        #[serde(rename = "elapsed_ms", serialize_with = "millis")]
        elapsed: Duration,
    },
    /// Work on a resource failed.
    Failed {
        /// Logical id.
        id: String,
        /// What was being done.
        action: Action,
        /// Time since `Started`.
        #[serde(rename = "elapsed_ms", serialize_with = "millis")]
        elapsed: Duration,
        /// The cloud's message.
        message: String,
    },
    /// The run ended.
    Finished {
        /// What was done.
        summary: Summary,
        /// Driver calls made.
        calls: CallCounts,
        /// How many resources failed.
        failed: usize,
        /// Wall time.
        #[serde(rename = "elapsed_ms", serialize_with = "millis")]
        elapsed: Duration,
    },
}
