//! Where state and locks are kept: the [`Backend`] trait, with a local-file implementation
//! ([`LocalBackend`], the default) and one over any [`ObjectStore`](crate::ObjectStore)
//! ([`ObjectStoreBackend`]), so that CI runners share state through the cloud's own storage.
//!
//! **Invariant:** `save` never overwrites a stored state that is corrupt, of a newer version, of
//! another lineage or deployment, or with a serial at least as high as the one being written.

mod local;
mod remote;

use std::future::Future;

pub use local::LocalBackend;
pub use remote::ObjectStoreBackend;

use crate::lock::LockInfo;
use crate::{Error, State};

/// The outcome of one attempt to take a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryLock {
    /// The lock is now held by the caller.
    Acquired,
    /// Someone else holds it, unexpired.
    Held(LockInfo),
}

/// Storage for one deployment's state and lock.
pub trait Backend: Send + Sync {
    /// Where the state is, for messages (e.g. `` `/x/state.json` ``).
    fn location(&self) -> String;

    /// The stored state, or `None` when nothing was deployed yet. Corrupt or newer states are
    /// errors.
    fn load(&self) -> impl Future<Output = Result<Option<State>, Error>> + Send;

    /// Stores `state` atomically, after checking what it replaces (see the module invariant).
    fn save(&self, state: &State) -> impl Future<Output = Result<(), Error>> + Send;

    /// One attempt to take the lock as `lock`, taking over an expired one.
    fn try_lock(&self, lock: &LockInfo) -> impl Future<Output = Result<TryLock, Error>> + Send;

    /// The current lock, if any (expired or not).
    fn read_lock(&self) -> impl Future<Output = Result<Option<LockInfo>, Error>> + Send;

    /// Removes the lock, but only when its id is `id`.
    fn unlock(&self, id: &str) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Checks that `held` is a lock and has the `id` an unlock names; shared by every backend.
fn check_unlock(scope: &str, held: Option<&LockInfo>, id: &str) -> Result<(), Error> {
    let Some(held) = held else {
        return Err(Error::NotLocked {
            scope: scope.to_string(),
        });
    };
    if held.id != id {
        return Err(Error::LockIdMismatch {
            scope: scope.to_string(),
            given: id.to_string(),
            actual: held.id.clone(),
        });
    }
    Ok(())
}
