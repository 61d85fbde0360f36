//! What is deployed to a local runtime: a self-contained description written by `nimbus deploy`
//! (`<state>/deployment.json`) and read by the runtime process — functions with their package
//! zips and grants, resources, and settings. It is derived from the app graph and `build.json`,
//! so the runtime never re-reads the manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nimbus_graph::{AppGraph, Link, ResourceSpec, TriggerSpec};
use nimbus_manifest::{Access, Language, ResourceKind};
use nimbus_package::BuildManifest;
use serde::{Deserialize, Serialize};

/// A deployment to the local runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// The service.
    pub service: String,
    /// The stage.
    pub stage: String,
    /// Functions by name.
    pub functions: BTreeMap<String, DeployedFunction>,
    /// Resources by name.
    pub resources: BTreeMap<String, DeployedResource>,
    /// Gateway port wanted (`None`: 3000 or the next free one).
    pub port: Option<u16>,
    /// How long an idle worker is kept, in ms.
    pub idle_timeout_ms: u64,
}

/// One function and its package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployedFunction {
    /// Its name.
    pub name: String,
    /// Neutral runtime id (`python3.12`).
    pub runtime: String,
    /// Its language.
    pub language: Language,
    /// Memory limit in MiB.
    pub memory_mb: u32,
    /// Timeout in ms.
    pub timeout_ms: u64,
    /// Most concurrent invocations.
    pub concurrency: u32,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Environment variables that take a secret's value: variable → secret name (never the
    /// value: the runtime reads it from [`crate::secrets`] when it starts workers).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// The package zip (absolute path).
    pub artifact: PathBuf,
    /// The zip's SHA-256: a new one means a new package.
    pub sha256: String,
    /// Its triggers.
    pub triggers: Vec<DeployedTrigger>,
    /// Resources it may use, and how.
    pub grants: BTreeMap<String, Access>,
}

/// A trigger, with its stable id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployedTrigger {
    /// `trigger:<function>/<kind>/<index>`.
    pub id: String,
    /// What fires it.
    pub spec: TriggerSpec,
}

/// A resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployedResource {
    /// Its kind.
    pub kind: ResourceKind,
    /// Kind-specific settings.
    pub spec: ResourceSpec,
}

/// Builds the deployment of `graph` whose packages are described by `build` in `build_dir`.
pub fn from_build(graph: &AppGraph, build: &BuildManifest, build_dir: &Path) -> Deployment {
    let build_dir = build_dir
        .canonicalize()
        .unwrap_or_else(|_| build_dir.to_path_buf());
    let functions = graph
        .functions
        .values()
        .filter_map(|f| {
            let artifact = build.functions.get(&f.name)?;
            let grants = graph
                .edges
                .iter()
                .filter(|e| e.from == f.id)
                .filter_map(|e| match e.link {
                    Link::Uses { access } => {
                        Some((e.to.trim_start_matches("resource:").to_string(), access))
                    }
                    Link::Trigger { .. } => None,
                })
                .collect();
            Some((
                f.name.clone(),
                DeployedFunction {
                    name: f.name.clone(),
                    runtime: f.runtime.id().to_string(),
                    language: f.language,
                    memory_mb: f.memory_mb,
                    timeout_ms: f.timeout_ms,
                    concurrency: f.concurrency,
                    env: f.env.clone(),
                    secrets: f.secrets.clone(),
                    artifact: build_dir.join(&artifact.file),
                    sha256: artifact.sha256.clone(),
                    triggers: f
                        .triggers
                        .iter()
                        .map(|t| DeployedTrigger {
                            id: t.id.clone(),
                            spec: t.spec.clone(),
                        })
                        .collect(),
                    grants,
                },
            ))
        })
        .collect();
    let resources = graph
        .resources
        .values()
        .map(|r| {
            (
                r.name.clone(),
                DeployedResource {
                    kind: r.kind,
                    spec: r.spec.clone(),
                },
            )
        })
        .collect();
    let local = graph.settings.get("local");
    let port = local
        .and_then(|l| l.get("port"))
        .and_then(|p| p.as_u64())
        .map(|p| p as u16);
    let idle_timeout_ms = local
        .and_then(|l| l.get("idle_timeout"))
        .and_then(|t| t.as_str())
        .and_then(|t| t.parse::<nimbus_manifest::Duration>().ok())
        .map(|d| d.as_millis())
        .unwrap_or(60_000);
    Deployment {
        service: graph.service.clone(),
        stage: graph.stage.clone(),
        functions,
        resources,
        port,
        idle_timeout_ms,
    }
}

impl Deployment {
    /// Reads `deployment.json`.
    pub fn read(path: &Path) -> Result<Deployment, crate::LocalError> {
        let bytes = std::fs::read(path).map_err(|source| crate::LocalError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| crate::LocalError::BadDeployment {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Writes `deployment.json` atomically.
    pub fn write(&self, path: &Path) -> Result<(), crate::LocalError> {
        let mut text = serde_json::to_vec_pretty(self).expect("deployments serialize");
        text.push(b'\n');
        crate::state::write_atomic(path, &text)
    }

    /// Functions triggered by `resource` through a `kind` trigger, with the trigger.
    pub fn subscribers<'a>(
        &'a self,
        resource: &'a str,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a DeployedFunction, &'a DeployedTrigger)> + 'a {
        self.functions.values().flat_map(move |f| {
            f.triggers
                .iter()
                .filter(move |t| {
                    t.spec.kind().as_str() == kind && t.spec.resource() == Some(resource)
                })
                .map(move |t| (f, t))
        })
    }
}
