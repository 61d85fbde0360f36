//! The two errors: a neutral expression that does not parse, and a valid one a target cannot say.

use std::fmt;

use thiserror::Error;

/// A schedule expression (or time zone) that is not valid in the neutral format.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ScheduleError {
    /// What is wrong: a lowercase phrase, literals in backticks, no trailing period.
    pub message: String,
    /// Character offset inside the expression where the problem starts, to place a caret.
    pub offset: Option<usize>,
    /// The obvious fix, when there is one.
    pub hint: Option<String>,
}

impl ScheduleError {
    /// An error about the whole input.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ScheduleError {
            message: message.into(),
            offset: None,
            hint: None,
        }
    }

    /// An error starting at byte `offset` of the input (see [`ScheduleError::in_chars`]).
    pub(crate) fn at(offset: usize, message: impl Into<String>) -> Self {
        ScheduleError {
            message: message.into(),
            offset: Some(offset),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Turns the byte offset the parser works with into the character offset callers expect.
    pub(crate) fn in_chars(mut self, src: &str) -> Self {
        self.offset = self
            .offset
            .map(|byte| src.char_indices().take_while(|&(i, _)| i < byte).count());
        self
    }
}

/// A cloud service that schedules are translated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// AWS EventBridge Scheduler: `cron(...)` with six fields, or `rate(...)`.
    Aws,
    /// GCP Cloud Scheduler: five-field unix cron.
    Gcp,
    /// Azure Functions timer trigger: six-field NCRONTAB, seconds first.
    Azure,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Aws => "AWS EventBridge Scheduler",
            Target::Gcp => "GCP Cloud Scheduler",
            Target::Azure => "Azure Functions timer (NCRONTAB)",
        })
    }
}

/// A valid neutral schedule that a target cannot express faithfully.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{target} cannot express this schedule: {reason}")]
pub struct Unsupported {
    /// The service that cannot express it.
    pub target: Target,
    /// Why not: a lowercase phrase, literals in backticks, no trailing period.
    pub reason: String,
    /// A way to get the same effect, when there is one.
    pub hint: Option<String>,
}
