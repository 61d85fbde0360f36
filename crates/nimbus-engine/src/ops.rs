//! Journaled operations on single resources, and the context they share ([`Ctx`]: the driver,
//! the state with its single writer, the backend, retries, progress).
//!
//! Every create, update and delete is first written to the state's journal and persisted; only
//! then is the driver called; on success the result is recorded and the journal entry removed,
//! on failure the entry stays with the cloud's message (the cloud may have acted anyway). Each of
//! these writes is a state save with `serial + 1`. On the next run, every leftover entry is
//! resolved by reading the cloud (see `reconcile`), so a run stopped at any point converges when
//! run again, without orphans or duplicates (for resources with a physical name; for others a
//! warning says a copy may exist).

use std::collections::BTreeMap;
use std::sync::Mutex as SyncMutex;

use serde_json::Value;
use tokio::sync::Mutex;

use crate::backend::Backend;
use crate::driver::{Driver, DriverError, Live, Metered};
use crate::error::chain;
use crate::plan::Action;
use crate::progress::{Event, ProgressFn};
use crate::report::Failure;
use crate::retry::{RetryPolicy, with_retry};
use crate::state::{JournalEntry, JournalOp};
use crate::{Error, NativeResource, State, StateEntry};

/// Everything an operation needs: the driver, the state (one writer at a time) and the backend.
pub(crate) struct Ctx<'a, B, D> {
    pub backend: &'a B,
    pub driver: Metered<'a, D>,
    pub state: Mutex<State>,
    pub retry: RetryPolicy,
    pub progress: Option<&'a ProgressFn>,
    pub notes: SyncMutex<Notes>,
}

/// What a run wants to tell the user besides the summary.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    pub adopted: Vec<String>,
    pub warnings: Vec<String>,
}

enum Created {
    New(crate::driver::Applied),
    Adopted(Live),
}

impl<'a, B: Backend, D: Driver> Ctx<'a, B, D> {
    pub fn new(
        backend: &'a B,
        driver: &'a D,
        state: State,
        retry: RetryPolicy,
        progress: Option<&'a ProgressFn>,
    ) -> Self {
        Ctx {
            backend,
            driver: Metered::new(driver),
            state: Mutex::new(state),
            retry,
            progress,
            notes: SyncMutex::new(Notes::default()),
        }
    }

    pub fn emit(&self, event: Event) {
        if let Some(progress) = self.progress {
            progress(&event);
        }
    }

    pub fn notes(&self) -> std::sync::MutexGuard<'_, Notes> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the state and saves it with the next serial.
    pub async fn write(&self, change: impl FnOnce(&mut State)) -> Result<(), Error> {
        let mut state = self.state.lock().await;
        change(&mut state);
        state.serial += 1;
        self.backend.save(&state).await
    }

    /// A driver call with retries, reporting each retry as progress.
    pub(crate) async fn call<T, Fut>(
        &self,
        id: &str,
        action: Action,
        call: impl FnMut(u32) -> Fut,
    ) -> Result<T, DriverError>
    where
        Fut: Future<Output = Result<T, DriverError>>,
    {
        let on_retry = |attempt, delay, e: &DriverError| {
            self.emit(Event::Retrying {
                id: id.to_string(),
                action,
                attempt,
                delay,
                message: e.message.clone(),
            })
        };
        with_retry(&self.retry, on_retry, call).await
    }

    /// Records that `id`'s journaled operation succeeded, applying `change`.
    async fn finish(
        &self,
        id: &str,
        action: Action,
        change: impl FnOnce(&mut State),
    ) -> Result<(), Failure> {
        self.write(|s| {
            s.journal.retain(|j| j.id != id);
            change(s);
        })
        .await
        .map_err(|e| {
            failure(
                id,
                action,
                format!(
                    "the cloud accepted it, but the state could not be saved: {}",
                    chain(&e)
                ),
            )
        })
    }

    /// Records that `id`'s journaled operation failed with `error`, and returns the failure.
    async fn failed(&self, id: &str, action: Action, error: &DriverError) -> Failure {
        let saved = self
            .write(|s| {
                if let Some(j) = s.journal.iter_mut().find(|j| j.id == id) {
                    j.error = Some(error.message.clone());
                }
            })
            .await;
        let mut message = error.message.clone();
        if let Err(e) = saved {
            message.push_str(&format!(
                " (and the state could not be saved: {})",
                chain(&e)
            ));
        }
        failure(id, action, message)
    }

    async fn journal(&self, entry: JournalEntry, action: Action) -> Result<(), Failure> {
        let id = entry.id.clone();
        self.write(|s| s.journal.push(entry)).await.map_err(|e| {
            failure(
                &id,
                action,
                format!(
                    "could not save state before calling the cloud: {}",
                    chain(&e)
                ),
            )
        })
    }

    /// Creates `r`. A retry of a create with a physical name first looks the name up, so a
    /// create whose response was lost is adopted instead of attempted twice.
    pub async fn create(
        &self,
        r: &NativeResource,
        deps: &[String],
        resolved: &Value,
        action: Action,
    ) -> Result<(), Failure> {
        self.journal(
            JournalEntry::for_resource(JournalOp::Create, r, deps, None),
            action,
        )
        .await?;
        let outcome = self
            .call(&r.id, action, |attempt| async move {
                if attempt > 1
                    && let Some(name) = &r.physical_name
                    && let Some(live) = self.driver.read(&r.kind, name).await?
                {
                    return Ok(Created::Adopted(live));
                }
                self.driver.create(r, resolved).await.map(Created::New)
            })
            .await;
        match outcome {
            Ok(Created::New(applied)) => {
                let entry = entry_for(
                    r,
                    deps,
                    applied.physical_id,
                    resolved.clone(),
                    applied.outputs,
                );
                self.finish(&r.id, action, |s| s.upsert(entry)).await
            }
            Ok(Created::Adopted(live)) => {
                let entry = entry_for(r, deps, live.physical_id, live.properties, live.outputs);
                self.finish(&r.id, action, |s| s.upsert(entry.clone()))
                    .await?;
                self.notes().adopted.push(r.id.clone());
                if entry.properties == *resolved {
                    return Ok(());
                }
                self.update(r, deps, &entry, resolved, action).await
            }
            Err(e) => Err(self.failed(&r.id, action, &e).await),
        }
    }

    /// Updates `prior` to `resolved`.
    pub async fn update(
        &self,
        r: &NativeResource,
        deps: &[String],
        prior: &StateEntry,
        resolved: &Value,
        action: Action,
    ) -> Result<(), Failure> {
        let entry =
            JournalEntry::for_resource(JournalOp::Update, r, deps, Some(&prior.physical_id));
        self.journal(entry, action).await?;
        match self
            .call(&r.id, action, |_| self.driver.update(r, prior, resolved))
            .await
        {
            Ok(applied) => {
                let entry = entry_for(
                    r,
                    deps,
                    applied.physical_id,
                    resolved.clone(),
                    applied.outputs,
                );
                self.finish(&r.id, action, |s| s.upsert(entry)).await
            }
            Err(e) => Err(self.failed(&r.id, action, &e).await),
        }
    }

    /// Deletes `entry` and forgets it.
    pub async fn delete(&self, entry: &StateEntry, action: Action) -> Result<(), Failure> {
        self.journal(JournalEntry::for_delete(entry), action)
            .await?;
        match self
            .call(&entry.id, action, |_| self.driver.delete(entry))
            .await
        {
            Ok(()) => {
                self.finish(&entry.id, action, |s| {
                    s.remove(&entry.id);
                })
                .await
            }
            Err(e) => Err(self.failed(&entry.id, action, &e).await),
        }
    }
}

fn entry_for(
    r: &NativeResource,
    deps: &[String],
    physical_id: String,
    properties: Value,
    outputs: BTreeMap<String, Value>,
) -> StateEntry {
    StateEntry {
        id: r.id.clone(),
        kind: r.kind.clone(),
        physical_id,
        physical_name: r.physical_name.clone(),
        properties,
        outputs,
        depends_on: deps.to_vec(),
        retain_data: r.retain_data,
    }
}

pub(crate) fn failure(id: &str, action: Action, message: String) -> Failure {
    Failure {
        id: id.to_string(),
        action,
        message,
    }
}
