//! ARM what-if, read as a plan: one row per resource, and the drift it shows.
//!
//! What-if compares the template with what the resource group really holds, so it is the
//! refresh on Azure. A row is drift when nimbus did not change the resource's template since
//! the last successful deployment (its hash in the state is the same) and what-if still wants
//! to change it: it was changed outside nimbus (`drift` lists what-if's property changes, the
//! deployed value as `state`, the cloud's as `live`), or deleted (`missing_in_cloud`, action
//! `create`). A deployment in Incremental mode puts both back.
//!
//! Change types: `Create` → create, `Modify` → update (unless every property change is
//! `NoEffect`), `Delete` → delete, `Ignore` of a resource an earlier deployment created (that
//! the template no longer has) → delete, `NoChange`/`NoEffect` → same. `Deploy` (what-if cannot
//! predict the result) → update when the resource's template changed, else same: a resource
//! nimbus did not touch is not redeployed for want of a prediction.

use std::collections::{BTreeMap, BTreeSet};

use azure_core::http::Method;
use nimbus_engine::{Action, Drift, PropertyChange, ResourcePlan};
use serde_json::{Value, json};

use super::{Azure, OPERATION_LIMIT, Planned, State, logical_from_id, row};
use crate::arm::RESOURCES_API;
use crate::error::AzureError;

impl Azure {
    /// Runs what-if on `doc` with `parameters`: the result's body, or `None` when the resource
    /// group does not exist.
    pub(super) async fn what_if(
        &self,
        doc: &Value,
        parameters: &Value,
    ) -> Result<Option<Value>, AzureError> {
        let body = json!({ "properties": { "mode": "Incremental", "template": doc, "parameters": parameters } });
        let r = self
            .arm
            .send(
                Method::Post,
                &format!(
                    "{}/whatIf?api-version={RESOURCES_API}",
                    self.deployment_path()
                ),
                Some(&body),
            )
            .await?;
        if r.status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&r.status) {
            return Err(AzureError::Api {
                operation: "what-if".into(),
                status: Some(r.status),
                code: r.body["error"]["code"].as_str().map(String::from),
                message: crate::arm::error_text(&r.body["error"]),
            });
        }
        Ok(Some(
            self.arm.wait("what-if", r, OPERATION_LIMIT).await?.body,
        ))
    }
}

/// The plan rows of a what-if `result` for the template's `planned` resources, with drift
/// against `state` (the last successful deployment), sorted by id. `unchanged`: the whole
/// template is the one last deployed, so a change to any resource that deployment created is
/// drift, also to those whose id the template does not spell out (names from `guid()`).
pub(super) fn rows(
    result: &Value,
    planned: &[Planned],
    state: Option<&State>,
    unchanged: bool,
) -> Vec<ResourcePlan> {
    let logical_of: BTreeMap<String, &Planned> = planned
        .iter()
        .filter_map(|p| p.id.as_ref().map(|id| (id.to_ascii_lowercase(), p)))
        .collect();
    let created: BTreeSet<String> = state
        .map(|s| s.created.iter().map(|i| i.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    // A resource whose template is the one last deployed: a change what-if shows is drift.
    let untouched = |p: Option<&Planned>, id: &str| match p {
        Some(p) => state.is_some_and(|s| s.resources.get(&p.logical).is_some_and(|h| *h == p.hash)),
        None => unchanged && created.contains(id),
    };
    let mut rows = Vec::new();
    for c in result["properties"]["changes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let id = c["resourceId"].as_str().unwrap_or_default();
        let lower = id.to_ascii_lowercase();
        let ours = logical_of.get(&lower).copied();
        let (logical, kind) = match ours {
            Some(p) => (p.logical.clone(), p.kind.clone()),
            None => logical_from_id(id),
        };
        let delta: Vec<&Value> = c["delta"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["propertyChangeType"] != "NoEffect")
            .collect();
        let action = match c["changeType"].as_str().unwrap_or_default() {
            "Create" => Action::Create,
            "Modify" if delta.is_empty() => Action::Same,
            "Modify" => Action::Update,
            "Deploy" if untouched(ours, &lower) => Action::Same,
            "Deploy" => Action::Update,
            "NoChange" | "NoEffect" => Action::Same,
            "Delete" => Action::Delete,
            "Ignore" if created.contains(&lower) => Action::Delete,
            _ => continue,
        };
        let changes: Vec<PropertyChange> = delta
            .iter()
            .map(|d| PropertyChange {
                path: d["path"].as_str().unwrap_or_default().to_string(),
                before: (!d["before"].is_null()).then(|| d["before"].clone()),
                after: (!d["after"].is_null()).then(|| d["after"].clone()),
                known_after_apply: false,
                forces_replacement: false,
            })
            .collect();
        let mut r = row(&logical, &kind, action, Vec::new());
        if untouched(ours, &lower) {
            match action {
                Action::Update => {
                    r.drift = changes
                        .iter()
                        .map(|c| Drift {
                            path: c.path.clone(),
                            state: c.after.clone(),
                            live: c.before.clone(),
                        })
                        .collect();
                }
                Action::Create => r.missing_in_cloud = created.contains(&lower),
                _ => {}
            }
        }
        r.changes = changes;
        rows.push(r);
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows.dedup_by(|a, b| a.id == b.id);
    rows
}

/// Whether `rows` show drift a deployment would put back (a resource changed or deleted
/// outside nimbus).
pub(super) fn drifted(rows: &[ResourcePlan]) -> bool {
    rows.iter().any(|r| {
        matches!(r.action, Action::Create | Action::Update)
            && (!r.drift.is_empty() || r.missing_in_cloud)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(logical: &str, id: &str, hash: &str) -> Planned {
        Planned {
            logical: logical.into(),
            kind: "Microsoft.Storage/storageAccounts/queueServices/queues".into(),
            id: Some(id.into()),
            hash: hash.into(),
        }
    }

    #[test]
    fn changes_to_untouched_resources_are_drift() {
        let q = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a/queueServices/default/queues/q";
        let site = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/x";
        let new = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/y";
        let planned = vec![
            planned("q", q, "h1"),
            planned("x", site, "h2"),
            planned("y", new, "h3"),
        ];
        let state = State {
            resources: BTreeMap::from([("q".into(), "h1".into()), ("x".into(), "h2".into())]),
            created: BTreeSet::from([q.to_string(), site.to_string()]),
            ..State::default()
        };
        let result = json!({ "properties": { "changes": [
            { "resourceId": q, "changeType": "Create" },
            { "resourceId": site, "changeType": "Modify", "delta": [
                { "path": "properties.siteConfig.appSettings", "propertyChangeType": "Modify",
                  "before": ["edited"], "after": ["deployed"] },
                { "path": "properties.x", "propertyChangeType": "NoEffect", "before": 1, "after": 2 } ] },
            { "resourceId": new, "changeType": "Deploy" },
        ] } });
        let rows = rows(&result, &planned, Some(&state), false);
        let by = |id: &str| rows.iter().find(|r| r.id == id).unwrap();
        assert_eq!(by("q").action, Action::Create);
        assert!(by("q").missing_in_cloud);
        assert_eq!(by("x").action, Action::Update);
        assert_eq!(
            by("x").drift,
            vec![Drift {
                path: "properties.siteConfig.appSettings".into(),
                state: Some(json!(["deployed"])),
                live: Some(json!(["edited"])),
            }]
        );
        // A resource new to the template is a change, not drift.
        assert_eq!(by("y").action, Action::Update);
        assert!(by("y").drift.is_empty() && !by("y").missing_in_cloud);
        assert!(drifted(&rows));

        // A resource named by guid() (no id in `planned`): drift when the whole template is
        // the one last deployed and that deployment created it.
        let assignment = format!("{q}/providers/Microsoft.Authorization/roleAssignments/g");
        let mut with = state.clone();
        with.created.insert(assignment.clone());
        let gone = json!({ "properties": { "changes": [
            { "resourceId": assignment, "changeType": "Create" } ] } });
        let r = super::rows(&gone, &planned, Some(&with), true);
        assert!(r[0].missing_in_cloud, "{r:?}");
        let r = super::rows(&gone, &planned, Some(&with), false);
        assert!(!r[0].missing_in_cloud, "{r:?}");

        // Without a state (or with a changed template) nothing is drift.
        let fresh = super::rows(&result, &planned, None, false);
        assert!(!drifted(&fresh));
        // Only NoEffect changes: the same.
        let quiet = json!({ "properties": { "changes": [
            { "resourceId": site, "changeType": "Modify", "delta": [
                { "path": "properties.x", "propertyChangeType": "NoEffect", "before": 1, "after": 2 } ] },
            { "resourceId": q, "changeType": "NoChange" },
        ] } });
        let quiet = super::rows(&quiet, &planned, Some(&state), false);
        assert!(quiet.iter().all(|r| r.action == Action::Same), "{quiet:?}");
    }
}
