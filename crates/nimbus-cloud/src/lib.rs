//! What the `nimbus` command needs from a cloud provider, in one trait: [`Cloud`].
//!
//! The command line is the same for every cloud — `deploy`, `plan`, `remove`, `info`, `logs`,
//! `invoke`, `unlock` — and so is what it prints: the deploy engine's [`Plan`] and [`Report`]
//! (a provider that hands its template to its own deployment service, as Azure does with ARM,
//! reports in the same shapes), the packages it uploaded ([`Upload`]), and what is deployed
//! ([`Info`]). Each provider crate (`nimbus-aws`, `nimbus-gcp`, `nimbus-azure`) implements
//! [`Cloud`]; the binary picks one by `-p` and never knows a cloud SDK.
//!
//! This crate owns only these shapes. It knows the app graph, the build manifest and the
//! engine's types; it knows no cloud, no terminal and no manifest.

#![deny(missing_docs)]

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nimbus_engine::{Plan, Report};
use nimbus_graph::AppGraph;
use nimbus_package::BuildManifest;
use serde::Serialize;
use serde_json::Value;

pub use nimbus_engine::Event as ResourceEvent;

pub mod queues;

/// The app to deploy: its graph and its packages, built for this provider.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The resolved app graph (service, stage, provider and its settings included).
    pub graph: &'a AppGraph,
    /// `build.json`: one package per function.
    pub build: &'a BuildManifest,
    /// The folder holding the packages (`Artifact::file` is relative to it).
    pub build_dir: &'a Path,
}

/// How a provider runs, from the command line and the environment.
#[derive(Clone)]
pub struct Options {
    /// Most cloud operations in flight at once (the engine's bound; at least 1).
    pub parallelism: usize,
    /// How long to wait for a lock another run holds before giving up.
    pub lock_timeout: Duration,
    /// Where progress goes (the CLI prints it, or writes JSON lines).
    pub progress: Option<ProgressFn>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallelism: 8,
            lock_timeout: Duration::ZERO,
            progress: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("parallelism", &self.parallelism)
            .field("lock_timeout", &self.lock_timeout)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Options {
    /// Reports `progress` to the callback, if there is one.
    pub fn emit(&self, progress: Progress) {
        if let Some(p) = &self.progress {
            p(&progress);
        }
    }
}

/// A progress callback. It is called from the task doing the work and must not block.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Something that happened during a deploy or remove.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    /// A package went to the cloud's storage, or was already there.
    Upload(Upload),
    /// A resource changed (the deploy engine's events).
    Resource(ResourceEvent),
    /// Waiting on a long-running cloud operation.
    Waiting {
        /// What is being waited for.
        what: String,
        /// Its status as the cloud reports it.
        status: String,
        /// Time waited so far.
        #[serde(rename = "elapsed_ms", serialize_with = "millis")]
        elapsed: Duration,
    },
    /// Anything else worth a line.
    Note {
        /// The text.
        message: String,
    },
}

/// One package's upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upload {
    /// The function.
    pub function: String,
    /// Where it is, in the cloud's own notation (`s3://bucket/key`, `gs://…`, a blob URL).
    pub location: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Whether it was already there (content-addressed: same bytes, same key), so nothing was sent.
    pub skipped: bool,
}

/// How a deploy goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeployOptions {
    /// Resources that hold data (tables, buckets) may be deleted or replaced; without it such a
    /// deploy is refused before anything changes.
    pub force: bool,
    /// Read every deployed resource from the cloud first, so changes made outside nimbus
    /// (drift) are put back.
    pub refresh: bool,
}

/// The result of a deploy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployed {
    /// What the deployment did to each resource, the calls made and the time taken.
    pub report: Report,
    /// The packages, uploaded or found.
    pub uploads: Vec<Upload>,
    /// What is deployed now.
    pub info: Info,
}

/// What is deployed: endpoints, functions, resources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Info {
    /// The provider id.
    pub provider: String,
    /// The service.
    pub service: String,
    /// The stage.
    pub stage: String,
    /// Whether anything is deployed at all.
    pub deployed: bool,
    /// Where the app answers HTTP, and each route.
    pub endpoints: Vec<Endpoint>,
    /// Every function.
    pub functions: Vec<FunctionInfo>,
    /// Every resource of the manifest (tables, queues, topics, buckets).
    pub resources: Vec<ResourceInfo>,
    /// Where the deployment's state is kept (a URL or path), when the provider keeps one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The DNS records the user must create for `http.domain` (Nimbus creates none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_records: Vec<DnsRecord>,
}

/// A DNS record to create in the zone of a custom domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRecord {
    /// The record's name: `api.example.com`, `asuid.api.example.com`.
    pub name: String,
    /// `CNAME` or `TXT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What it points at or holds.
    pub value: String,
    /// What it is for.
    pub purpose: String,
}

/// One HTTP route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// `GET`, `POST`, … or `ANY`.
    pub method: String,
    /// The full URL (path parameters as `{name}`).
    pub url: String,
    /// The function behind it.
    pub function: String,
}

/// One deployed function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionInfo {
    /// The neutral name.
    pub name: String,
    /// The cloud's name or id for it.
    pub native: String,
    /// The cloud's runtime id.
    pub runtime: String,
    /// Memory in MB.
    pub memory_mb: u32,
    /// Timeout in seconds.
    pub timeout_s: u32,
    /// SHA-256 of the deployed package: the content address that names it where it is stored
    /// (`<sha256>.zip`). AWS and GCP deploy the build's zip and name it by its SHA-256; Azure
    /// assembles an app package from it and names that by the SHA-256 of its inputs (the zip's
    /// SHA-256 and the generated files). Empty when nothing is deployed.
    pub package_sha256: String,
}

/// One deployed resource of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceInfo {
    /// The neutral name.
    pub name: String,
    /// `table`, `queue`, `topic` or `bucket`.
    pub kind: String,
    /// The cloud's name or id for it.
    pub native: String,
}

/// Which log lines to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this function (every function when `None`).
    pub function: Option<String>,
    /// Only lines newer than this much before now.
    pub since: Option<Duration>,
    /// Keep waiting for new lines until the sink says stop.
    pub follow: bool,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// When it was written, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The neutral function name.
    pub function: String,
    /// The text, without a trailing newline.
    pub message: String,
}

/// Receives log lines; returns `false` to stop following.
pub type LogSink<'a> = &'a (dyn Fn(LogLine) -> bool + Send + Sync);

/// What an invocation returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invoked {
    /// The cloud's request id, when it gives one.
    pub request_id: Option<String>,
    /// Whether the function failed (an error it raised, a timeout, a crash).
    pub failed: bool,
    /// What it returned: for an HTTP trigger the neutral `{status, headers, body}`, else its
    /// result or the error the cloud reported.
    pub result: Value,
}

/// A cloud provider, as the `nimbus` command drives it. Every method is for the service and
/// stage of the graph it is given; a provider value is created once per command with its
/// credentials, endpoints and [`Options`].
pub trait Cloud: Send + Sync {
    /// The provider's error. Engine failures are carried inside it (as a source), so the
    /// command can find [`nimbus_engine::Error`] in the chain and print its report.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The deploy engine's error inside `error`, if that is what it is, so the command can
    /// print its report (what was done before a failure) and its hint. Providers that wrap
    /// [`nimbus_engine::Error`] in a transparent variant return it from there.
    fn engine_error(error: &Self::Error) -> Option<&nimbus_engine::Error>;

    /// How the user can fix `error`, when there is an obvious next step. By default the deploy
    /// engine's hint; providers with hints of their own (credentials, the cloud's error codes)
    /// return those too.
    fn hint(error: &Self::Error) -> Option<String> {
        Self::engine_error(error).and_then(nimbus_engine::Error::hint)
    }

    /// What a deploy of `target` would change. With `refresh`, what the cloud really has is read
    /// first and differences are reported as drift. Read-only: writes nothing, takes no lock.
    fn plan(
        &self,
        target: &Target<'_>,
        refresh: bool,
    ) -> impl Future<Output = Result<Plan, Self::Error>> + Send;

    /// Uploads the packages and makes the cloud match `target`, under the deployment's lock
    /// (see [`DeployOptions`] for `force` and `refresh`).
    fn deploy(
        &self,
        target: &Target<'_>,
        how: DeployOptions,
    ) -> impl Future<Output = Result<Deployed, Self::Error>> + Send;

    /// Deletes everything deployed for the graph's service and stage. Tables and buckets that
    /// still hold data are kept (and reported) unless `force`.
    fn remove(
        &self,
        graph: &AppGraph,
        force: bool,
    ) -> impl Future<Output = Result<Report, Self::Error>> + Send;

    /// What is deployed now.
    fn info(&self, graph: &AppGraph) -> impl Future<Output = Result<Info, Self::Error>> + Send;

    /// Sends log lines matching `query` to `sink`, oldest first; with `follow`, keeps polling
    /// until `sink` returns `false`.
    fn logs(
        &self,
        graph: &AppGraph,
        query: &LogQuery,
        sink: LogSink<'_>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Invokes `function` with the neutral `event` (the provider turns it into its native
    /// event, so the shim sees exactly what the cloud would send).
    fn invoke(
        &self,
        graph: &AppGraph,
        function: &str,
        event: &Value,
    ) -> impl Future<Output = Result<Invoked, Self::Error>> + Send;

    /// Removes the deployment's lock if its id is `lock_id` (for a run that died holding it).
    fn unlock(
        &self,
        graph: &AppGraph,
        lock_id: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The message of a `plan` or `deploy` refused because secrets that functions read have no
/// value for `provider`/`stage` in `store`: one line per secret with its readers, then the exact
/// `nimbus secret set` command for each. `missing` is (secret, the functions that read it).
pub fn missing_secrets_message(
    provider: &str,
    stage: &str,
    store: &str,
    missing: &[(String, Vec<String>)],
) -> String {
    let mut text = format!(
        "{} secret(s) have no value in {store} for {provider}/{stage}; nothing was changed:",
        missing.len()
    );
    for (name, readers) in missing {
        text.push_str(&format!("\n  {name} (read by {})", readers.join(", ")));
    }
    text.push_str("\n  hint: set them, then deploy again:");
    for (name, _) in missing {
        text.push_str(&format!(
            "\n    printf %s \"$VALUE\" | nimbus secret set {name} -p {provider} -s {stage}"
        ));
    }
    text
}
