//! Providers: the [`Provider`] trait every target implements, and each target's
//! [`Capabilities`] — neutral runtime → native id, memory and timeout limits, which triggers and
//! resources it can map — read from `providers/<id>/capabilities.toml` and embedded in the binary.
//!
//! [`check`] holds an app graph against a provider's capabilities and reports, at the manifest
//! line, whatever that provider cannot do. No cloud SDK appears here; adapters live in their own
//! crates and only consume the app graph.

#![deny(missing_docs)]

mod capabilities;
mod check;
mod cors;
pub mod external;
mod extras;
mod log_outcomes;
mod settings;

use std::fmt;
use std::str::FromStr;

pub use capabilities::{
    Capabilities, CorsCapability, CorsScope, FunctionSettingsCapability, MemoryLimits,
    PackageLimits, PermissionsCapability, ResourceCapability, RuntimeRow, RuntimeSupport,
    SettingCapability, ShimDeps, TextLimits, TriggerCapability, is_guid, today,
};
pub use check::{check, check_at};
pub use log_outcomes::{FAILURES, LogOutcome, LogsCapability};
use nimbus_diagnostic::Diagnostic;
use nimbus_graph::AppGraph;
pub use settings::{Env, check_settings, fill_settings};

/// A deployment target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProviderId {
    /// The local runtime (the default).
    Local,
    /// Amazon Web Services.
    Aws,
    /// Google Cloud.
    Gcp,
    /// Microsoft Azure.
    Azure,
}

impl ProviderId {
    /// The providers whose deploys map secrets in this version, comma-separated (`local`).
    pub fn with_secrets() -> String {
        ProviderId::ALL
            .iter()
            .filter(|p| p.capabilities().secrets.supported)
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every provider.
    pub const ALL: [ProviderId; 4] = [
        ProviderId::Local,
        ProviderId::Aws,
        ProviderId::Gcp,
        ProviderId::Azure,
    ];

    /// The id as typed on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderId::Local => "local",
            ProviderId::Aws => "aws",
            ProviderId::Gcp => "gcp",
            ProviderId::Azure => "azure",
        }
    }

    /// This provider's capabilities.
    pub fn capabilities(&self) -> &'static Capabilities {
        capabilities::get(*self)
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown provider name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider `{0}`; expected one of `local`, `aws`, `gcp`, `azure`")]
pub struct UnknownProvider(pub String);

impl FromStr for ProviderId {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, UnknownProvider> {
        ProviderId::ALL
            .into_iter()
            .find(|p| p.as_str() == s.to_ascii_lowercase())
            .ok_or_else(|| UnknownProvider(s.to_string()))
    }
}

/// A deployment target. Later stages (packaging, synth, plan, apply) add their operations here;
/// today every provider can say what it supports and check an app against it.
pub trait Provider {
    /// Which provider this is.
    fn id(&self) -> ProviderId;

    /// What it supports and its limits.
    fn capabilities(&self) -> &'static Capabilities {
        self.id().capabilities()
    }

    /// Everything in `graph` this provider cannot do, pointing at the manifest.
    fn check(&self, graph: &AppGraph) -> Vec<Diagnostic> {
        check(graph, self.capabilities())
    }
}

impl Provider for ProviderId {
    fn id(&self) -> ProviderId {
        *self
    }
}

/// A manifest compiled for one provider: the app graph and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The loaded manifest (its path and text render diagnostics).
    pub loaded: nimbus_manifest::Loaded,
    /// The resolved app graph.
    pub graph: AppGraph,
    /// Warnings from validation and from the provider check.
    pub warnings: Vec<Diagnostic>,
}

/// What a manifest is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `validate`, `plan`, `deploy`: the provider's required settings must be there (from the
    /// manifest or the environment), as deploy refuses to run without them.
    Deploy,
    /// `build`, `graph`: settings are filled in from the environment where set, but an export
    /// can leave them to its own variables.
    Export,
}

/// Checks a manifest in one pass: the manifest's own findings and, whenever its structure
/// decoded, the provider's too, even when the manifest has errors — so a too-short
/// `visibility_timeout` and a timeout over the provider's limit are reported together. A
/// provider finding on the line of an error already reported is left out (it is about the same
/// value). Settings come from the manifest, else from `env` (see [`check_settings`]).
pub fn compile_checked(
    checked: nimbus_manifest::Checked,
    provider: ProviderId,
    purpose: Purpose,
    env: Env<'_>,
) -> Result<Compiled, nimbus_diagnostic::Report> {
    let nimbus_manifest::Checked { loaded, mut report } = checked;
    let Some(loaded) = loaded else {
        return Err(report);
    };
    let mut graph = nimbus_graph::build(&loaded);
    let mut found = settings(&mut graph, &loaded, provider, purpose, env);
    found.extend(provider.check(&graph));
    let taken: Vec<u32> = report
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .filter_map(|d| d.span.map(|s| s.line))
        .collect();
    report.diagnostics.extend(
        found
            .into_iter()
            .filter(|d| d.span.is_none_or(|s| !taken.contains(&s.line))),
    );
    if report.error_count() > 0 {
        return Err(report);
    }
    Ok(Compiled {
        loaded,
        graph,
        warnings: report.diagnostics,
    })
}

fn settings(
    graph: &mut AppGraph,
    loaded: &nimbus_manifest::Loaded,
    provider: ProviderId,
    purpose: Purpose,
    env: Env<'_>,
) -> Vec<Diagnostic> {
    match purpose {
        Purpose::Deploy => check_settings(graph, &loaded.manifest, provider.capabilities(), env),
        Purpose::Export => {
            fill_settings(graph, provider.capabilities(), env);
            Vec::new()
        }
    }
}

/// Builds the app graph of `loaded` and holds it against `provider`'s capabilities (an export:
/// settings are not required, and not read from the environment).
/// Errors come back as a report that points into the manifest.
pub fn compile(
    loaded: nimbus_manifest::Loaded,
    provider: ProviderId,
) -> Result<Compiled, nimbus_diagnostic::Report> {
    let report =
        nimbus_diagnostic::Report::new(&loaded.path, &loaded.source, loaded.warnings.clone());
    compile_checked(
        nimbus_manifest::Checked {
            loaded: Some(loaded),
            report,
        },
        provider,
        Purpose::Export,
        &|_| None,
    )
}
