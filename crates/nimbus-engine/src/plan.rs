//! Plans: what applying the desired resources would do, per resource `create | update |
//! replace | delete | same` with the changed property paths, the drift found by a refresh, and a
//! summary. Apply makes the same per-resource decision again at execution time, once every
//! reference resolves.
//!
//! The JSON shape (`Plan::to_json`, `format_version` 1) is stable; every key is always present:
//!
//! ```json
//! { "format_version": 1, "service": "shop", "stage": "dev", "provider": "aws",
//!   "refreshed": false,
//!   "summary": { "create": 1, "update": 1, "replace": 0, "delete": 0, "same": 3 },
//!   "resources": [
//!     { "id": "aws.lambda.function/place-order", "kind": "aws.lambda.function",
//!       "action": "update",
//!       "changes": [ { "path": "memory", "before": 256, "after": 512,
//!                      "known_after_apply": false, "forces_replacement": false } ],
//!       "drift": [ { "path": "timeout", "state": 10, "live": 30 } ],
//!       "missing_in_cloud": false } ],
//!   "interrupted": [ { "id": "…", "op": "create", "error": null } ] }
//! ```
//!
//! Resources are sorted by id, changes by path. `before`/`after` are `null` when the path is
//! absent on that side; when `known_after_apply` is true, unknown parts of `after` read
//! `"(known after apply)"`. A change of the resource's kind or physical name has the path `$kind`
//! or `$physical_name` and always forces replacement.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diff::{self, contains_unknown, show_unknown};
use crate::graph::Graph;
use crate::resource::{Outputs, as_reference};
use crate::state::JournalOp;
use crate::{Deployment, NativeResource, State, StateEntry};

/// The version of the plan's JSON shape.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It does not exist yet.
    Create,
    /// It changes in place.
    Update,
    /// It is deleted, then created again (a change in a `replace_on` property, kind or name).
    Replace,
    /// It is no longer desired.
    Delete,
    /// Nothing to do.
    Same,
}

impl Action {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Same => "same",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Resources created.
    pub create: usize,
    /// Resources updated in place.
    pub update: usize,
    /// Resources replaced.
    pub replace: usize,
    /// Resources deleted.
    pub delete: usize,
    /// Resources unchanged.
    pub same: usize,
}

impl Summary {
    /// Counts one more `action`.
    pub fn add(&mut self, action: Action) {
        *match action {
            Action::Create => &mut self.create,
            Action::Update => &mut self.update,
            Action::Replace => &mut self.replace,
            Action::Delete => &mut self.delete,
            Action::Same => &mut self.same,
        } += 1;
    }

    /// Resources that change (everything but `same`).
    pub fn changes(&self) -> usize {
        self.create + self.update + self.replace + self.delete
    }
}

/// One changed property path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyChange {
    /// The path, e.g. `env.LOG_LEVEL` or `layers[0]`.
    pub path: String,
    /// The recorded value (`null` when absent).
    pub before: Option<Value>,
    /// The desired value (`null` when absent).
    pub after: Option<Value>,
    /// Part of `after` comes from a resource that is created or replaced first.
    pub known_after_apply: bool,
    /// This change cannot be made in place.
    pub forces_replacement: bool,
}

/// A difference between the state and the cloud, found by a refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// The property path.
    pub path: String,
    /// What the state recorded (`null` when absent).
    pub state: Option<Value>,
    /// What the cloud has (`null` when absent).
    pub live: Option<Value>,
}

/// The plan for one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourcePlan {
    /// Logical id.
    pub id: String,
    /// Resource type.
    pub kind: String,
    /// What happens to it.
    pub action: Action,
    /// What changes (for a create: every top-level property).
    pub changes: Vec<PropertyChange>,
    /// Differences between the state and the cloud (with refresh).
    pub drift: Vec<Drift>,
    /// The state has it but the cloud does not (with refresh).
    pub missing_in_cloud: bool,
}

/// An operation a previous run started and did not finish; apply resolves it by reading the
/// cloud before anything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interrupted {
    /// Logical id.
    pub id: String,
    /// The operation.
    pub op: JournalOp,
    /// The cloud's message, when it failed rather than being cut off.
    pub error: Option<String>,
}

/// What an apply would do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`PLAN_FORMAT_VERSION`].
    pub format_version: u32,
    /// The service.
    pub service: String,
    /// The stage.
    pub stage: String,
    /// The provider.
    pub provider: String,
    /// Whether the cloud was read (drift is only known then).
    pub refreshed: bool,
    /// Counts per action.
    pub summary: Summary,
    /// Every desired or recorded resource, sorted by id.
    pub resources: Vec<ResourcePlan>,
    /// Unfinished operations of a previous run.
    pub interrupted: Vec<Interrupted>,
}

impl Plan {
    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        self.summary.changes() > 0 || !self.interrupted.is_empty()
    }

    /// The plan as pretty JSON (the shape in the module docs).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plan serializes")
    }

    /// The plan for people: see [`crate::render`].
    pub fn render(&self) -> String {
        crate::render::render(self)
    }
}

/// What the state knows about a resource, for [`decide`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Current<'a> {
    pub kind: &'a str,
    pub physical_name: Option<&'a str>,
    pub properties: &'a Value,
}

impl<'a> Current<'a> {
    pub fn of(entry: &'a StateEntry) -> Self {
        Current {
            kind: &entry.kind,
            physical_name: entry.physical_name.as_deref(),
            properties: &entry.properties,
        }
    }
}

/// An action and the changes behind it.
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    pub action: Action,
    pub changes: Vec<PropertyChange>,
}

/// What to do with `desired`, whose properties resolve to `resolved`, given what is recorded.
pub(crate) fn decide(
    desired: &NativeResource,
    current: Option<Current<'_>>,
    resolved: &Value,
) -> Decision {
    let Some(current) = current else {
        return Decision {
            action: Action::Create,
            changes: changes(desired, &diff::empty(), resolved),
        };
    };
    let mut list = Vec::new();
    let mut meta = |path: &str, before: Option<&str>, after: Option<&str>| {
        if before != after {
            list.push(PropertyChange {
                path: path.into(),
                before: before.map(Value::from),
                after: after.map(Value::from),
                known_after_apply: false,
                forces_replacement: true,
            });
        }
    };
    meta("$kind", Some(current.kind), Some(&desired.kind));
    meta(
        "$physical_name",
        current.physical_name,
        desired.physical_name.as_deref(),
    );
    list.extend(changes(desired, current.properties, resolved));
    let action = if list.is_empty() {
        Action::Same
    } else if list.iter().any(|c| c.forces_replacement) {
        Action::Replace
    } else {
        Action::Update
    };
    Decision {
        action,
        changes: list,
    }
}

fn changes(desired: &NativeResource, before: &Value, after: &Value) -> Vec<PropertyChange> {
    diff::diff(before, after)
        .into_iter()
        .map(|c| {
            let known_after_apply = c.after.as_ref().is_some_and(contains_unknown);
            PropertyChange {
                forces_replacement: c
                    .top
                    .as_ref()
                    .is_some_and(|t| desired.replace_on.contains(t)),
                path: c.path,
                before: c.before,
                after: c.after.as_ref().map(show_unknown),
                known_after_apply,
            }
        })
        .collect()
}

/// `v` with references resolved from `known`, and the unknown marker where the target's
/// outputs will only exist after apply.
fn resolve_known(v: &Value, known: &Outputs) -> Value {
    if let Some((id, output)) = as_reference(v) {
        return known
            .get(id)
            .and_then(|o| o.get(output))
            .cloned()
            .unwrap_or_else(diff::unknown);
    }
    match v {
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| resolve_known(i, known)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, i)| (k.clone(), resolve_known(i, known)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Drift of one resource found by a refresh.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ResourceDrift {
    pub kind: String,
    pub drift: Vec<Drift>,
    pub missing: bool,
}

/// The plan for `graph` against `state` (already refreshed when `drift` came from a refresh).
pub(crate) fn compute(
    deployment: &Deployment,
    graph: &Graph<'_>,
    state: &State,
    drift: &BTreeMap<String, ResourceDrift>,
    refreshed: bool,
) -> Plan {
    let drift_of = |id: &str| drift.get(id).cloned().unwrap_or_default();
    let mut known = Outputs::new();
    let mut rows = Vec::new();
    for &i in &graph.order {
        let r = &graph.resources[i];
        let entry = state.get(&r.id);
        let decision = decide(
            r,
            entry.map(Current::of),
            &resolve_known(&r.properties, &known),
        );
        if let (Action::Same | Action::Update, Some(e)) = (decision.action, entry) {
            known.insert(r.id.clone(), e.outputs.clone());
        }
        let d = drift_of(&r.id);
        rows.push(ResourcePlan {
            id: r.id.clone(),
            kind: r.kind.clone(),
            action: decision.action,
            changes: decision.changes,
            drift: d.drift,
            missing_in_cloud: d.missing,
        });
    }
    let gone = |id: &str| graph.index_of(id).is_none();
    for e in state.resources.iter().filter(|e| gone(&e.id)) {
        let d = drift_of(&e.id);
        rows.push(ResourcePlan {
            id: e.id.clone(),
            kind: e.kind.clone(),
            action: Action::Delete,
            changes: Vec::new(),
            drift: d.drift,
            missing_in_cloud: d.missing,
        });
    }
    // Recorded, no longer desired, and already gone from the cloud: the refresh forgot them,
    // which is their delete.
    for (id, d) in drift
        .iter()
        .filter(|(id, d)| d.missing && gone(id) && state.get(id).is_none())
    {
        rows.push(ResourcePlan {
            id: id.clone(),
            kind: d.kind.clone(),
            action: Action::Delete,
            changes: Vec::new(),
            drift: Vec::new(),
            missing_in_cloud: true,
        });
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    let mut summary = Summary::default();
    rows.iter().for_each(|r| summary.add(r.action));
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        service: deployment.service().to_string(),
        stage: deployment.stage().to_string(),
        provider: deployment.provider().to_string(),
        refreshed,
        summary,
        resources: rows,
        interrupted: state
            .journal
            .iter()
            .map(|j| Interrupted {
                id: j.id.clone(),
                op: j.op,
                error: j.error.clone(),
            })
            .collect(),
    }
}
