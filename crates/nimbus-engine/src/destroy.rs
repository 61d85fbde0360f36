//! Destroy: delete every recorded resource, dependents before what they depend on. A resource
//! with `retain_data` that the driver says still holds data is kept unless forced, and so is
//! everything it depends on; kept resources stay in the state and are reported.

use std::collections::BTreeMap;

use crate::apply::{observed, tally};
use crate::backend::Backend;
use crate::driver::Driver;
use crate::exec::run;
use crate::ops::Ctx;
use crate::plan::{Action, Summary};
use crate::report::{Failure, Retained};
use crate::{Error, StateEntry};

/// Deletes what is recorded; returns the summary, the failures and what was kept.
pub(crate) async fn execute<B: Backend, D: Driver>(
    ctx: &Ctx<'_, B, D>,
    force: bool,
    parallelism: usize,
) -> Result<(Summary, Vec<Failure>, Vec<Retained>), Error> {
    let entries = ctx.state.lock().await.resources.clone();
    let kept = retained(ctx, &entries, force).await?;
    let doomed: Vec<&StateEntry> = entries
        .iter()
        .filter(|e| !kept.contains_key(&e.id))
        .collect();
    let keys: Vec<String> = doomed.iter().map(|e| e.id.clone()).collect();
    let mut deps = vec![Vec::new(); doomed.len()];
    for (i, e) in doomed.iter().enumerate() {
        for d in &e.depends_on {
            if let Some(target) = keys.iter().position(|k| k == d) {
                deps[target].push(i);
            }
        }
    }
    let results = run(&keys, &deps, parallelism, |i| {
        Box::pin(observed(
            ctx,
            &doomed[i].id,
            Action::Delete,
            ctx.delete(doomed[i], Action::Delete),
        ))
    })
    .await;
    let (summary, failures) = tally(&keys, &deps, results)?;
    let kept = kept
        .into_iter()
        .map(|(id, reason)| Retained { id, reason })
        .collect();
    Ok((summary, failures, kept))
}

/// What to keep, with the reason: resources holding data, then what they depend on.
async fn retained<B: Backend, D: Driver>(
    ctx: &Ctx<'_, B, D>,
    entries: &[StateEntry],
    force: bool,
) -> Result<BTreeMap<String, String>, Error> {
    let mut kept = BTreeMap::new();
    if force {
        return Ok(kept);
    }
    for e in entries.iter().filter(|e| e.retain_data) {
        if ctx.holds_data(e).await? {
            kept.insert(
                e.id.clone(),
                "it holds data; destroy with force to delete it".to_string(),
            );
        }
    }
    let mut stack: Vec<String> = kept.keys().cloned().collect();
    while let Some(id) = stack.pop() {
        let Some(entry) = entries.iter().find(|e| e.id == id) else {
            continue;
        };
        for d in &entry.depends_on {
            if entries.iter().any(|e| &e.id == d) && !kept.contains_key(d) {
                kept.insert(d.clone(), format!("the retained `{id}` depends on it"));
                stack.push(d.clone());
            }
        }
    }
    Ok(kept)
}
