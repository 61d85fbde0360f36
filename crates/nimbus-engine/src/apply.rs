//! Apply: bring the cloud to the desired resources. Nodes are the desired resources (each
//! created, updated, replaced or left alone, decided when its dependencies are done so every
//! reference resolves) and the recorded resources no longer desired (deleted). A resource waits
//! for its dependencies; a delete waits for the resources that depended on it (deleted, or
//! updated so they no longer do), so deletes run in reverse dependency order.
//!
//! **Replace is delete, then create.** Most replacements are forced by a property that names the
//! resource, and a resource with a fixed physical name cannot exist twice; deleting first also
//! keeps at most one cloud object per logical id at any moment, which is what lets the journal
//! reconcile an interrupted replace. The price is a window in which the resource does not exist.

use tokio::time::Instant;

use crate::backend::Backend;
use crate::driver::Driver;
use crate::error::chain;
use crate::exec::{Task, run};
use crate::graph::Graph;
use crate::ops::{Ctx, failure};
use crate::plan::{Action, Current, Summary, decide};
use crate::progress::Event;
use crate::report::Failure;
use crate::resource::resolve;
use crate::{Error, NativeResource, StateEntry};

/// The nodes of an apply and what each waits for.
pub(crate) struct ApplyGraph<'g> {
    pub graph: &'g Graph<'g>,
    pub deletes: Vec<StateEntry>,
    pub keys: Vec<String>,
    pub deps: Vec<Vec<usize>>,
}

impl<'g> ApplyGraph<'g> {
    /// Nodes `0..n` are the desired resources, `n..` the recorded ones to delete.
    pub fn new(graph: &'g Graph<'g>, recorded: &[StateEntry]) -> Self {
        let n = graph.resources.len();
        let deletes: Vec<StateEntry> = recorded
            .iter()
            .filter(|e| graph.index_of(&e.id).is_none())
            .cloned()
            .collect();
        let delete_index = |id: &str| deletes.iter().position(|e| e.id == id).map(|j| n + j);
        let mut keys: Vec<String> = graph.resources.iter().map(|r| r.id.clone()).collect();
        keys.extend(deletes.iter().map(|e| e.id.clone()));
        let mut deps = graph.deps.clone();
        deps.resize(n + deletes.len(), Vec::new());
        for e in recorded {
            // Whoever depended on `d` (as recorded) goes first: deleted, or updated away from it.
            let node = graph.index_of(&e.id).or_else(|| delete_index(&e.id));
            for d in &e.depends_on {
                if let (Some(node), Some(target)) = (node, delete_index(d)) {
                    deps[target].push(node);
                }
            }
        }
        ApplyGraph {
            graph,
            deletes,
            keys,
            deps,
        }
    }
}

/// Runs the apply graph; returns the summary and the failures.
pub(crate) async fn execute<B: Backend, D: Driver>(
    ctx: &Ctx<'_, B, D>,
    nodes: &ApplyGraph<'_>,
    parallelism: usize,
) -> Result<(Summary, Vec<Failure>), Error> {
    let n = nodes.graph.resources.len();
    let results = run(
        &nodes.keys,
        &nodes.deps,
        parallelism,
        |i| -> Task<'_, Result<Action, Failure>> {
            if i < n {
                Box::pin(up(ctx, &nodes.graph.resources[i], &nodes.graph.dep_ids[i]))
            } else {
                Box::pin(remove(ctx, &nodes.deletes[i - n]))
            }
        },
    )
    .await;
    tally(&nodes.keys, &nodes.deps, results)
}

/// Counts what was done and collects the failures. Nodes that never started although nothing
/// failed wait on each other: the recorded state has a cycle (only a hand-edited one can).
pub(crate) fn tally(
    keys: &[String],
    deps: &[Vec<usize>],
    results: Vec<Option<Result<Action, Failure>>>,
) -> Result<(Summary, Vec<Failure>), Error> {
    let ran: Vec<bool> = results.iter().map(Option::is_some).collect();
    let mut summary = Summary::default();
    let mut failures = Vec::new();
    for result in results.into_iter().flatten() {
        match result {
            Ok(action) => summary.add(action),
            Err(f) => failures.push(f),
        }
    }
    if failures.is_empty() && ran.contains(&false) {
        let ids: Vec<&str> = keys.iter().map(String::as_str).collect();
        return Err(Error::DependencyCycle {
            cycle: crate::graph::find_cycle(&ids, deps, |i| !ran[i]),
        });
    }
    failures.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((summary, failures))
}

/// Brings one desired resource to its desired properties.
async fn up<B: Backend, D: Driver>(
    ctx: &Ctx<'_, B, D>,
    r: &NativeResource,
    deps: &[String],
) -> Result<Action, Failure> {
    let (current, resolved) = {
        let state = ctx.state.lock().await;
        (
            state.get(&r.id).cloned(),
            resolve(&r.properties, &state.outputs()),
        )
    };
    let guess = if current.is_some() {
        Action::Update
    } else {
        Action::Create
    };
    let resolved = resolved.map_err(|(target, output)| {
        failure(
            &r.id,
            guess,
            format!(
                "it refers to output `{output}` of `{target}`, which that resource does not have"
            ),
        )
    })?;
    let action = decide(r, current.as_ref().map(Current::of), &resolved).action;
    match (action, current) {
        (Action::Same, Some(prior)) => {
            if prior.depends_on != deps || prior.retain_data != r.retain_data {
                ctx.write(|s| {
                    if let Some(e) = s.get_mut(&r.id) {
                        e.depends_on = deps.to_vec();
                        e.retain_data = r.retain_data;
                    }
                })
                .await
                .map_err(|e| {
                    failure(
                        &r.id,
                        action,
                        format!("could not save state: {}", chain(&e)),
                    )
                })?;
            }
            Ok(Action::Same)
        }
        (Action::Update, Some(prior)) => {
            observed(
                ctx,
                &r.id,
                action,
                ctx.update(r, deps, &prior, &resolved, action),
            )
            .await
        }
        (Action::Replace, Some(prior)) => {
            let replace = async {
                ctx.delete(&prior, action).await?;
                ctx.create(r, deps, &resolved, action).await
            };
            observed(ctx, &r.id, action, replace).await
        }
        _ => {
            observed(
                ctx,
                &r.id,
                Action::Create,
                ctx.create(r, deps, &resolved, Action::Create),
            )
            .await
        }
    }
}

/// Deletes a recorded resource that is no longer desired.
async fn remove<B: Backend, D: Driver>(
    ctx: &Ctx<'_, B, D>,
    entry: &StateEntry,
) -> Result<Action, Failure> {
    observed(
        ctx,
        &entry.id,
        Action::Delete,
        ctx.delete(entry, Action::Delete),
    )
    .await
}

/// Runs `work`, reporting its start and end as progress.
pub(crate) async fn observed<B: Backend, D: Driver>(
    ctx: &Ctx<'_, B, D>,
    id: &str,
    action: Action,
    work: impl Future<Output = Result<(), Failure>>,
) -> Result<Action, Failure> {
    let started = Instant::now();
    ctx.emit(Event::Started {
        id: id.to_string(),
        action,
    });
    let result = work.await;
    let elapsed = started.elapsed();
    match &result {
        Ok(()) => ctx.emit(Event::Done {
            id: id.to_string(),
            action,
            elapsed,
        }),
        Err(f) => ctx.emit(Event::Failed {
            id: id.to_string(),
            action,
            elapsed,
            message: f.message.clone(),
        }),
    }
    result.map(|()| action)
}
