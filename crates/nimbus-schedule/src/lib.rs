//! Schedule expressions of the Nimbus manifest.
//!
//! This crate owns the neutral schedule syntax, `cron(minute hour day-of-month month day-of-week)`
//! (5-field unix cron) and `rate(N minutes|hours|days)`: it parses them into a checked model,
//! translates that model to AWS EventBridge Scheduler, GCP Cloud Scheduler and Azure Functions
//! timer (NCRONTAB) strings, and computes the next fire time in a time zone for the local runtime.
//! Everything here is a pure function: no I/O, no clock. It knows nothing of YAML, the manifest
//! or the providers' SDKs; callers pass strings in and place the errors' offsets themselves.
//!
//! **Semantics.** Day-of-month and day-of-week follow the unix (vixie) cron rule: when both fields
//! are restricted (neither starts with `*`) a day matches if *either* matches, otherwise both must.
//! A target that cannot say the same thing returns [`Unsupported`] rather than a near miss.

#![deny(missing_docs)]

mod aws;
mod azure;
mod cron;
mod error;
mod expr;
mod gcp;
mod next;
mod rate;
mod timezone;
mod unix;

pub use aws::to_aws;
pub use azure::to_azure;
pub use cron::{Cron, Field, FieldKind};
pub use error::{ScheduleError, Target, Unsupported};
pub use expr::{ScheduleExpr, parse};
pub use gcp::to_gcp;
pub use next::next_after;
pub use rate::{Rate, RateUnit};
pub use timezone::{parse_timezone, validate_timezone};
