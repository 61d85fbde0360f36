//! The recorded state of one deployment: what was applied (per resource its kind, physical id,
//! applied properties, outputs and dependencies) and the journal of operations in progress, plus
//! the rules for reading it and for overwriting it (never a corrupt, newer-version, foreign-lineage
//! or concurrently changed state).
//!
//! Format (`version` 1), one JSON document:
//!
//! ```json
//! { "version": 1, "lineage": "9f…", "serial": 12,
//!   "service": "shop", "stage": "dev", "provider": "aws",
//!   "resources": [ { "id": "aws.sqs.queue/payments", "kind": "aws.sqs.queue",
//!                    "physical_id": "shop-dev-payments", "physical_name": "shop-dev-payments",
//!                    "properties": { … }, "outputs": { "arn": "…" },
//!                    "depends_on": [], "retain_data": false } ],
//!   "journal": [ { "op": "create", "id": "…", "kind": "…", "physical_name": "…",
//!                  "started": "2025-01-01T00:00:00.000Z", "error": null } ] }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::resource::{NativeResource, Outputs};
use crate::{Deployment, Error, random};

/// The newest state format this build reads and writes.
pub const STATE_VERSION: u32 = 1;

/// Everything recorded about one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Format version; a newer one is refused.
    pub version: u32,
    /// Random id given when the state was first created; a state of another lineage is never
    /// overwritten.
    pub lineage: String,
    /// Incremented on every write.
    pub serial: u64,
    /// The service.
    pub service: String,
    /// The stage.
    pub stage: String,
    /// The provider.
    pub provider: String,
    /// What is applied, sorted by id.
    #[serde(default)]
    pub resources: Vec<StateEntry>,
    /// Operations started but not known to have succeeded, oldest first.
    #[serde(default)]
    pub journal: Vec<JournalEntry>,
}

/// One applied resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateEntry {
    /// Logical id.
    pub id: String,
    /// Resource type, as the driver knows it.
    pub kind: String,
    /// The id the cloud knows it by.
    pub physical_id: String,
    /// The name it was created with, when the provider chose one.
    #[serde(default)]
    pub physical_name: Option<String>,
    /// The properties applied, references resolved.
    pub properties: Value,
    /// What the driver returned (ARNs, URLs, …), for references from other resources.
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
    /// Logical ids it depends on (explicit and through references), sorted.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Kept on destroy while it holds data, unless forced.
    #[serde(default)]
    pub retain_data: bool,
}

/// The kind of a journaled operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalOp {
    /// A create (also the second half of a replace).
    Create,
    /// An in-place update.
    Update,
    /// A delete (also the first half of a replace).
    Delete,
}

impl JournalOp {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalOp::Create => "create",
            JournalOp::Update => "update",
            JournalOp::Delete => "delete",
        }
    }
}

/// An operation written down before the driver is called. It is removed once the operation is
/// known to have succeeded; whatever is left is resolved on the next run by reading the cloud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The operation.
    pub op: JournalOp,
    /// Logical id.
    pub id: String,
    /// Resource type.
    pub kind: String,
    /// The physical id, for updates and deletes.
    #[serde(default)]
    pub physical_id: Option<String>,
    /// The physical name, which lets an interrupted create be found.
    #[serde(default)]
    pub physical_name: Option<String>,
    /// Dependencies, to record if an interrupted create is adopted.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// `retain_data`, to record if an interrupted create is adopted.
    #[serde(default)]
    pub retain_data: bool,
    /// When it started (RFC 3339).
    pub started: String,
    /// The cloud's message when it failed; the outcome is then still uncertain.
    #[serde(default)]
    pub error: Option<String>,
}

impl JournalEntry {
    /// A journal entry for creating or updating `resource`.
    pub(crate) fn for_resource(
        op: JournalOp,
        resource: &NativeResource,
        depends_on: &[String],
        physical_id: Option<&str>,
    ) -> Self {
        JournalEntry {
            op,
            id: resource.id.clone(),
            kind: resource.kind.clone(),
            physical_id: physical_id.map(str::to_string),
            physical_name: resource.physical_name.clone(),
            depends_on: depends_on.to_vec(),
            retain_data: resource.retain_data,
            started: random::now(),
            error: None,
        }
    }

    /// A journal entry for deleting `entry`.
    pub(crate) fn for_delete(entry: &StateEntry) -> Self {
        JournalEntry {
            op: JournalOp::Delete,
            id: entry.id.clone(),
            kind: entry.kind.clone(),
            physical_id: Some(entry.physical_id.clone()),
            physical_name: entry.physical_name.clone(),
            depends_on: entry.depends_on.clone(),
            retain_data: entry.retain_data,
            started: random::now(),
            error: None,
        }
    }
}

impl State {
    /// An empty state for `deployment` with a fresh lineage and serial 0.
    pub fn new(deployment: &Deployment) -> Self {
        State {
            version: STATE_VERSION,
            lineage: random::random_hex(16),
            serial: 0,
            service: deployment.service().to_string(),
            stage: deployment.stage().to_string(),
            provider: deployment.provider().to_string(),
            resources: Vec::new(),
            journal: Vec::new(),
        }
    }

    /// Parses a stored state: the version is probed first, so a newer format is reported as
    /// such rather than as corrupt.
    pub fn parse(bytes: &[u8], location: &str) -> Result<Self, Error> {
        let corrupt = |source| Error::CorruptState {
            location: location.to_string(),
            source,
        };
        let custom = |msg: String| corrupt(<serde_json::Error as serde::de::Error>::custom(msg));
        let value: Value = serde_json::from_slice(bytes).map_err(corrupt)?;
        let version = value
            .get("version")
            .and_then(Value::as_u64)
            .ok_or_else(|| custom("missing or non-numeric `version`".into()))?;
        if version > u64::from(STATE_VERSION) {
            return Err(Error::NewerState {
                location: location.to_string(),
                found: version,
                supported: STATE_VERSION,
            });
        }
        if version == 0 {
            return Err(custom("unknown `version` 0".into()));
        }
        let mut state: State = serde_json::from_value(value).map_err(corrupt)?;
        state.resources.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(pair) = state.resources.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(custom(format!("resource `{}` appears twice", pair[0].id)));
        }
        Ok(state)
    }

    /// The state as stored: pretty JSON with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("state serializes");
        bytes.push(b'\n');
        bytes
    }

    /// Checks that this state belongs to `deployment`.
    pub fn check_deployment(&self, deployment: &Deployment, location: &str) -> Result<(), Error> {
        let found = (
            self.service.as_str(),
            self.stage.as_str(),
            self.provider.as_str(),
        );
        let expected = (
            deployment.service(),
            deployment.stage(),
            deployment.provider(),
        );
        if found == expected {
            return Ok(());
        }
        Err(Error::WrongDeployment {
            location: location.to_string(),
            found: format!("`{}/{}` on `{}`", found.0, found.1, found.2),
            expected: deployment.to_string(),
        })
    }

    /// The entry for `id`.
    pub fn get(&self, id: &str) -> Option<&StateEntry> {
        self.position(id).ok().map(|i| &self.resources[i])
    }

    /// The entry for `id`, to change.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut StateEntry> {
        self.position(id).ok().map(|i| &mut self.resources[i])
    }

    /// Records `entry`, replacing any entry with the same id.
    pub fn upsert(&mut self, entry: StateEntry) {
        match self.position(&entry.id) {
            Ok(i) => self.resources[i] = entry,
            Err(i) => self.resources.insert(i, entry),
        }
    }

    /// Forgets `id`.
    pub fn remove(&mut self, id: &str) -> Option<StateEntry> {
        self.position(id).ok().map(|i| self.resources.remove(i))
    }

    /// The outputs of every recorded resource, for resolving references.
    pub fn outputs(&self) -> Outputs {
        self.resources
            .iter()
            .map(|e| (e.id.clone(), e.outputs.clone()))
            .collect()
    }

    fn position(&self, id: &str) -> Result<usize, usize> {
        self.resources.binary_search_by(|e| e.id.as_str().cmp(id))
    }
}

/// Checks that the state stored as `stored` may be replaced by `next`: it must parse, not be
/// newer, have the same lineage and deployment, and an older serial.
pub(crate) fn check_overwrite(stored: &[u8], next: &State, location: &str) -> Result<(), Error> {
    let current = State::parse(stored, location)?;
    if current.lineage != next.lineage {
        return Err(Error::LineageMismatch {
            location: location.to_string(),
            found: current.lineage,
            expected: next.lineage.clone(),
        });
    }
    let same = (&current.service, &current.stage, &current.provider)
        == (&next.service, &next.stage, &next.provider);
    if !same {
        return Err(Error::WrongDeployment {
            location: location.to_string(),
            found: format!(
                "`{}/{}` on `{}`",
                current.service, current.stage, current.provider
            ),
            expected: format!("`{}/{}` on `{}`", next.service, next.stage, next.provider),
        });
    }
    if current.serial >= next.serial {
        return Err(Error::StateConflict {
            location: location.to_string(),
            found: current.serial,
            writing: next.serial,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(id: &str) -> StateEntry {
        StateEntry {
            id: id.into(),
            kind: "k".into(),
            physical_id: id.into(),
            physical_name: None,
            properties: json!({}),
            outputs: BTreeMap::new(),
            depends_on: vec![],
            retain_data: false,
        }
    }

    #[test]
    fn entries_stay_sorted_and_round_trip() {
        let d = Deployment::new("s", "dev", "aws").unwrap();
        let mut state = State::new(&d);
        for id in ["c", "a", "b", "a"] {
            state.upsert(entry(id));
        }
        assert_eq!(
            state
                .resources
                .iter()
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert!(state.remove("b").is_some());
        let parsed = State::parse(&state.to_bytes(), "x").unwrap();
        assert_eq!(parsed, state);
    }

    #[test]
    fn corrupt_newer_and_duplicate_states_are_refused() {
        assert!(matches!(
            State::parse(b"{", "x"),
            Err(Error::CorruptState { .. })
        ));
        assert!(matches!(
            State::parse(b"{}", "x"),
            Err(Error::CorruptState { .. })
        ));
        let newer = br#"{"version": 2, "whatever": true}"#;
        assert!(matches!(
            State::parse(newer, "x"),
            Err(Error::NewerState { found: 2, .. })
        ));
        let d = Deployment::new("s", "dev", "aws").unwrap();
        let mut state = State::new(&d);
        state.resources = vec![entry("a"), entry("a")];
        let err = State::parse(&state.to_bytes(), "x").unwrap_err();
        assert!(
            crate::error::chain(&err).contains("`a` appears twice"),
            "{err}"
        );
    }

    #[test]
    fn overwrite_needs_same_lineage_and_a_newer_serial() {
        let d = Deployment::new("s", "dev", "aws").unwrap();
        let stored = State::new(&d);
        let mut next = stored.clone();
        next.serial = 1;
        assert!(check_overwrite(&stored.to_bytes(), &next, "x").is_ok());
        let mut other = State::new(&d);
        other.serial = 1;
        assert!(matches!(
            check_overwrite(&stored.to_bytes(), &other, "x"),
            Err(Error::LineageMismatch { .. })
        ));
        next.serial = 0;
        assert!(matches!(
            check_overwrite(&stored.to_bytes(), &next, "x"),
            Err(Error::StateConflict { .. })
        ));
    }
}
