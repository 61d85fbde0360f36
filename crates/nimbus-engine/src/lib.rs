//! The deploy engine: the part of Terraform that Nimbus needs, provider-neutral.
//!
//! A provider adapter lowers the app graph into [`NativeResource`]s; the engine diffs them
//! against the recorded state (and, on request, against the cloud), applies the changes in
//! dependency order with bounded parallelism through the provider's [`Driver`], journals every
//! operation so an interrupted deploy converges when re-run, and holds a lock per service and
//! stage. It knows no cloud SDK, no terminal and no manifest.
//!
//! Map: [`resource`] (what is desired), [`state`] (what was applied, and its journal),
//! [`backend`] (where state and lock live: local files or an [`ObjectStore`]), [`lock`],
//! [`plan`] and [`render`] (the diff, as JSON and as text), [`driver`] (what providers
//! implement), [`Engine`] (plan, apply, destroy, unlock).

#![deny(missing_docs)]

mod apply;
pub mod backend;
mod deployment;
mod destroy;
mod diff;
pub mod driver;
mod engine;
mod error;
mod exec;
mod graph;
pub mod lock;
mod ops;
pub mod plan;
pub mod progress;
mod random;
mod reconcile;
pub mod render;
pub mod report;
pub mod resource;
mod retry;
pub mod state;
pub mod store;

pub use backend::{Backend, LocalBackend, ObjectStoreBackend, TryLock};
pub use deployment::Deployment;
pub use diff::KNOWN_AFTER_APPLY;
pub use driver::{Applied, CallCounts, Driver, DriverError, Live};
pub use engine::{Engine, Options};
pub use error::Error;
pub use lock::{LockInfo, LockOptions};
pub use plan::{Action, Drift, Interrupted, Plan, PropertyChange, ResourcePlan, Summary};
pub use progress::{Event, ProgressFn};
pub use report::{Failure, Report, Retained};
pub use resource::{NativeResource, Outputs, reference};
pub use retry::RetryPolicy;
pub use state::{JournalEntry, JournalOp, State, StateEntry};
pub use store::{Condition, InMemoryObjectStore, ObjectStore, StoreError, VersionToken};
