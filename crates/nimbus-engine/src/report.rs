//! What an apply or destroy reports: the [`Report`] (counts, driver calls, elapsed time,
//! outputs, adopted and retained resources) and each [`Failure`].

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::driver::CallCounts;
use crate::plan::{Action, Summary};
use crate::resource::Outputs;

/// The result of an apply or destroy (also carried by a failed one).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// What was done, per action.
    pub summary: Summary,
    /// Driver calls made, retries included.
    pub calls: CallCounts,
    /// Wall time.
    #[serde(rename = "elapsed_ms", serialize_with = "millis")]
    pub elapsed: Duration,
    /// Outputs of every recorded resource, by logical id.
    pub outputs: Outputs,
    /// Resources found in the cloud after an interrupted create and recorded, not created again.
    pub adopted: Vec<String>,
    /// Resources destroy kept.
    pub retained: Vec<Retained>,
    /// Things the user should know (e.g. a possible orphan).
    pub warnings: Vec<String>,
    /// The state's serial at the end.
    pub serial: u64,
}

/// A resource destroy kept, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retained {
    /// Logical id.
    pub id: String,
    /// Why it was kept.
    pub reason: String,
}

/// One resource that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Logical id.
    pub id: String,
    /// What was being done.
    pub action: Action,
    /// The cloud's message (or why the state could not be saved).
    pub message: String,
}

/// Serializes a duration as whole milliseconds.
pub(crate) fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
