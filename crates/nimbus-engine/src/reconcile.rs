//! Reconciling the state with the cloud: resolving what an interrupted run left in the journal
//! (an interrupted create is looked up by physical name and adopted if found; an interrupted
//! update or delete is looked up by physical id and its entry refreshed or forgotten), and
//! refreshing every recorded resource on request, which yields the drift a plan reports.

use std::collections::BTreeMap;

use crate::backend::Backend;
use crate::driver::{Driver, Live};
use crate::ops::Ctx;
use crate::plan::{Action, Drift, ResourceDrift};
use crate::state::JournalOp;
use crate::{Error, State, StateEntry, diff};

impl<B: Backend, D: Driver> Ctx<'_, B, D> {
    /// Reads `kind`/`physical_id` with retries.
    pub async fn read(
        &self,
        id: &str,
        kind: &str,
        physical_id: &str,
    ) -> Result<Option<Live>, Error> {
        self.call(id, Action::Same, |_| self.driver.read(kind, physical_id))
            .await
            .map_err(|source| Error::Read {
                id: id.to_string(),
                source,
            })
    }

    /// Whether `entry` holds data, with retries.
    pub async fn holds_data(&self, entry: &StateEntry) -> Result<bool, Error> {
        self.call(&entry.id, Action::Delete, |_| self.driver.holds_data(entry))
            .await
            .map_err(|source| Error::Read {
                id: entry.id.clone(),
                source,
            })
    }

    /// Resolves what a previous run left in the journal by reading the cloud (see the module
    /// docs), then clears the journal.
    pub async fn recover(&self) -> Result<(), Error> {
        let journal = self.state.lock().await.journal.clone();
        if journal.is_empty() {
            return Ok(());
        }
        let mut found = Vec::new();
        for j in journal {
            let target = match j.op {
                JournalOp::Create => j.physical_name.clone(),
                JournalOp::Update | JournalOp::Delete => j.physical_id.clone(),
            };
            match target {
                Some(target) => {
                    let live = self.read(&j.id, &j.kind, &target).await?;
                    found.push((j, live));
                }
                None => self.notes().warnings.push(format!(
                    "a create of `{}` was interrupted and it has no physical name, so nimbus cannot tell whether the cloud made it: if a copy exists, delete it by hand",
                    j.id
                )),
            }
        }
        let mut adopted = Vec::new();
        self.write(|s| {
            for (j, live) in found {
                match (j.op, live) {
                    (JournalOp::Create, Some(live)) => {
                        adopted.push(j.id.clone());
                        s.upsert(StateEntry {
                            id: j.id,
                            kind: j.kind,
                            physical_id: live.physical_id,
                            physical_name: j.physical_name,
                            properties: live.properties,
                            outputs: live.outputs,
                            depends_on: j.depends_on,
                            retain_data: j.retain_data,
                        });
                    }
                    (JournalOp::Create, None) => {}
                    (_, Some(live)) => {
                        if let Some(e) = s.get_mut(&j.id) {
                            e.physical_id = live.physical_id;
                            e.properties = live.properties;
                            e.outputs = live.outputs;
                        }
                    }
                    (_, None) => {
                        s.remove(&j.id);
                    }
                }
            }
            s.journal.clear();
        })
        .await?;
        self.notes().adopted.extend(adopted);
        Ok(())
    }

    /// Reads every recorded resource (at most `limit` at a time), makes the state match the
    /// cloud, saves it if that changed anything, and returns the drift found.
    pub async fn refresh(
        &self,
        limit: usize,
        save: bool,
    ) -> Result<BTreeMap<String, ResourceDrift>, Error> {
        let entries = self.state.lock().await.resources.clone();
        let keys: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        let deps = vec![Vec::new(); entries.len()];
        let results = crate::exec::run(&keys, &deps, limit, |i| {
            let e = &entries[i];
            Box::pin(self.read(&e.id, &e.kind, &e.physical_id))
        })
        .await;
        let mut live = BTreeMap::new();
        for (e, result) in entries.iter().zip(results) {
            if let Some(result) = result {
                live.insert(e.id.clone(), result?);
            }
        }
        let mut state = self.state.lock().await;
        let drift = apply_live(&mut state, &live);
        if save && !drift.is_empty() {
            state.serial += 1;
            self.backend.save(&state).await?;
        }
        Ok(drift)
    }
}

/// Makes `state` match what was read, returning the drift per id (only ids with drift).
fn apply_live(
    state: &mut State,
    live: &BTreeMap<String, Option<Live>>,
) -> BTreeMap<String, ResourceDrift> {
    let mut drift = BTreeMap::new();
    for (id, live) in live {
        let Some(entry) = state.get_mut(id) else {
            continue;
        };
        match live {
            None => {
                let kind = entry.kind.clone();
                state.remove(id);
                drift.insert(
                    id.clone(),
                    ResourceDrift {
                        kind,
                        drift: Vec::new(),
                        missing: true,
                    },
                );
            }
            Some(live) => {
                let changes: Vec<Drift> = diff::diff(&entry.properties, &live.properties)
                    .into_iter()
                    .map(|c| Drift {
                        path: c.path,
                        state: c.before,
                        live: c.after,
                    })
                    .collect();
                if !changes.is_empty()
                    || entry.outputs != live.outputs
                    || entry.physical_id != live.physical_id
                {
                    entry.properties = live.properties.clone();
                    entry.outputs = live.outputs.clone();
                    entry.physical_id = live.physical_id.clone();
                    drift.insert(
                        id.clone(),
                        ResourceDrift {
                            kind: entry.kind.clone(),
                            drift: changes,
                            missing: false,
                        },
                    );
                }
            }
        }
    }
    drift
}
