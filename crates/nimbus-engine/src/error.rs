//! The engine's error type: every way a plan, apply, destroy, state or lock operation fails,
//! worded for the person running `nimbus` (what is wrong, and how to fix it).

use crate::driver::DriverError;
use crate::lock::LockInfo;
use crate::report::{Failure, Report};
use crate::store::StoreError;

/// What went wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A service, stage or provider name cannot be used to locate state.
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidName {
        /// `service`, `stage` or `provider`.
        what: &'static str,
        /// The name given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Two desired resources share an id.
    #[error("resource id `{id}` is used twice: each native resource needs a unique id")]
    DuplicateResource {
        /// The repeated id.
        id: String,
    },
    /// A resource depends on (or refers to) an id that is not in the desired set.
    #[error(
        "resource `{id}` depends on `{dependency}`, which is not in the deployment: add it or remove the dependency"
    )]
    UnknownDependency {
        /// The resource that has the dependency.
        id: String,
        /// The missing id.
        dependency: String,
    },
    /// The desired resources (or the recorded state) depend on each other in a circle.
    #[error("dependency cycle {} (each depends on the next): remove one of these dependencies", cycle_text(.cycle))]
    DependencyCycle {
        /// The ids on the cycle, each depending on the next; the first is repeated at the end.
        cycle: Vec<String>,
    },
    /// The recorded state cannot be parsed. It is never overwritten.
    #[error(
        "state at {location} is corrupt, so it was left untouched: restore it from a backup or repair it by hand"
    )]
    CorruptState {
        /// Where the state is.
        location: String,
        /// Why it could not be read.
        #[source]
        source: serde_json::Error,
    },
    /// The recorded state was written by a newer nimbus. It is never overwritten.
    #[error(
        "state at {location} has format version {found}, newer than this nimbus understands ({supported}): upgrade nimbus; the state was left untouched"
    )]
    NewerState {
        /// Where the state is.
        location: String,
        /// The version found.
        found: u64,
        /// The newest version this build understands.
        supported: u32,
    },
    /// The stored state belongs to another lineage than the one being written.
    #[error(
        "state at {location} has lineage `{found}`, not `{expected}`: it was replaced by another deployment's state, so it was not overwritten"
    )]
    LineageMismatch {
        /// Where the state is.
        location: String,
        /// The stored lineage.
        found: String,
        /// The lineage of the state being written.
        expected: String,
    },
    /// The stored state is for another service, stage or provider.
    #[error("state at {location} belongs to {found}, not {expected}: check the state location")]
    WrongDeployment {
        /// Where the state is.
        location: String,
        /// The deployment it records.
        found: String,
        /// The deployment being worked on.
        expected: String,
    },
    /// Another process wrote the state since this one read it.
    #[error(
        "state at {location} was changed by another process (stored serial {found}, this run writes {writing}): check who else deploys this stage, then re-run"
    )]
    StateConflict {
        /// Where the state is.
        location: String,
        /// The stored serial.
        found: u64,
        /// The serial being written.
        writing: u64,
    },
    /// A file-system operation failed.
    #[error("could not {action}")]
    Io {
        /// What was being done, e.g. "write `state.json`".
        action: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An object-store operation failed.
    #[error("could not {action}")]
    Store {
        /// What was being done.
        action: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// Another run holds the lock.
    #[error("`{scope}` is locked by {lock}")]
    Locked {
        /// The locked service/stage.
        scope: String,
        /// Who holds it.
        lock: Box<LockInfo>,
    },
    /// The lock is held by a run on this host whose process is gone.
    #[error("`{scope}` is locked by a run that is gone: {lock}")]
    StaleLock {
        /// The locked service/stage.
        scope: String,
        /// Who held it.
        lock: Box<LockInfo>,
    },
    /// A lock file or object cannot be parsed.
    #[error("lock at {location} is unreadable: if no deploy is running, delete it by hand")]
    CorruptLock {
        /// Where the lock is.
        location: String,
        /// Why it could not be read.
        #[source]
        source: serde_json::Error,
    },
    /// A lock could not be taken because it kept changing under this process.
    #[error("lock at {location} kept changing while this process tried to take it: retry")]
    LockContention {
        /// Where the lock is.
        location: String,
    },
    /// `unlock` was given an id that is not the current lock's.
    #[error(
        "lock id `{given}` does not match the lock on `{scope}` (id `{actual}`): pass the id shown in the lock error"
    )]
    LockIdMismatch {
        /// The locked service/stage.
        scope: String,
        /// The id given.
        given: String,
        /// The current lock's id.
        actual: String,
    },
    /// `unlock` found no lock.
    #[error("`{scope}` is not locked")]
    NotLocked {
        /// The service/stage.
        scope: String,
    },
    /// Reading a resource from the cloud failed (refresh or recovery).
    #[error("could not read `{id}` from the cloud")]
    Read {
        /// The logical id.
        id: String,
        /// The driver's error.
        #[source]
        source: DriverError,
    },
    /// Apply would delete or replace resources that still hold data (tables, buckets).
    #[error(
        "deploying {scope} would delete data: {} still hold{} data and would be {}",
        .resources.join(", "),
        if .resources.len() == 1 { "s" } else { "" },
        "deleted or replaced"
    )]
    WouldLoseData {
        /// The deployment.
        scope: String,
        /// `<id> (<action>)` of each resource at risk.
        resources: Vec<String>,
    },
    /// One or more resources failed; everything that finished is recorded in the state.
    #[error("{operation} of {scope} failed: {}", failures_text(.failures))]
    Failed {
        /// `apply` or `destroy`.
        operation: &'static str,
        /// The deployment.
        scope: String,
        /// What failed, with the cloud's message.
        failures: Vec<Failure>,
        /// What was done before stopping.
        report: Box<Report>,
    },
}

impl Error {
    /// A suggestion for the user, when there is an obvious next step.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Locked { lock, .. } => Some(format!(
                "wait for that run to finish, use a lock timeout, or if that process is gone run `nimbus unlock {}`",
                lock.id
            )),
            Error::StaleLock { lock, .. } => Some(format!(
                "no process has pid {} on this host any more; if no other deploy of it is running, take the lock over with `nimbus unlock {}`",
                lock.pid, lock.id
            )),
            Error::WouldLoseData { .. } => Some(
                "keep the resource in the manifest (and its key unchanged), empty it first, or deploy with `--force` to delete it and its data"
                    .into(),
            ),
            Error::Failed { .. } => Some(
                "fix the cause and run the same command again: it continues from what was recorded"
                    .into(),
            ),
            _ => None,
        }
    }
}

fn cycle_text(cycle: &[String]) -> String {
    cycle
        .iter()
        .map(|id| format!("`{id}`"))
        .collect::<Vec<_>>()
        .join(" → ")
}

fn failures_text(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| format!("`{}` ({}): {}", f.id, f.action, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `err` and every source below it, joined with `: `.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
