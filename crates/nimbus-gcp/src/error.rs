//! What can go wrong on GCP: an app that cannot be lowered, settings that are missing, and the
//! failures of deploying (credentials, API calls, the deploy engine).

use thiserror::Error;

/// An error of the GCP provider.
#[derive(Debug, Error)]
pub enum GcpError {
    /// The graph or the build is for another provider.
    #[error("the {what} is for provider `{provider}`, not `gcp`")]
    WrongProvider {
        /// `app graph` or `build`.
        what: &'static str,
        /// The provider it is for.
        provider: String,
    },
    /// A setting the provider needs is missing or invalid.
    #[error("`providers.gcp.{key}` {problem}")]
    Setting {
        /// The setting.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A function has no package in the build.
    #[error("function `{function}` has no package in the build; run `nimbus build -p gcp`")]
    MissingArtifact {
        /// The function.
        function: String,
    },
    /// Cloud Functions has no runtime for the function's neutral runtime.
    #[error("function `{function}`: Cloud Functions has no runtime for `{runtime}`")]
    UnsupportedRuntime {
        /// The function.
        function: String,
        /// The neutral runtime.
        runtime: String,
    },
    /// An `existing.gcp` name that is not of its kind's shape (validation reports it first).
    #[error(
        "resource `{resource}`: `{name}` is not the name of an existing {kind} on Google Cloud (expected `{shape}`)"
    )]
    ExistingName {
        /// The manifest's resource.
        resource: String,
        /// Its kind.
        kind: String,
        /// The name given.
        name: String,
        /// The shape of `providers/gcp/capabilities.toml`.
        shape: String,
    },
    /// An existing resource is missing, or unfit for its triggers (checked before any change).
    #[error("{0}")]
    Existing(String),
    /// A trigger Nimbus cannot wire to an existing resource without changing it, or across
    /// projects (validation refuses the first kind).
    #[error("function `{function}`: a trigger on existing {kind} `{resource}`: {reason}")]
    ExistingTrigger {
        /// The function.
        function: String,
        /// `queue`, `table`, ...
        kind: String,
        /// The manifest's resource.
        resource: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// Something the provider cannot do (the capability check normally reports it first).
    #[error("function `{function}`: {what}")]
    Unsupported {
        /// The function.
        function: String,
        /// What, and why.
        what: String,
    },
    /// A schedule that Cloud Scheduler cannot express.
    #[error("function `{function}`: schedule `{expression}`: {reason}")]
    Schedule {
        /// The function.
        function: String,
        /// The neutral expression.
        expression: String,
        /// Why.
        reason: String,
    },
    /// A physical name Google would reject.
    #[error("invalid Google Cloud name `{name}`: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Two objects of one kind got the same physical name.
    #[error("{kind} name `{name}` is given to both `{first}` and `{second}`; rename one of them")]
    NameClash {
        /// The resource kind.
        kind: String,
        /// The physical name.
        name: String,
        /// One logical id.
        first: String,
        /// The other.
        second: String,
    },
    /// No credentials could be found or used.
    #[error("Google Cloud credentials: {0}")]
    Credentials(String),
    /// A Google API call failed.
    #[error("{action}")]
    Api {
        /// What was being done (`uploading package of \`place-order\``).
        action: String,
        /// The failure.
        #[source]
        source: crate::api::ApiError,
    },
    /// A local file could not be read.
    #[error("reading `{path}`")]
    Io {
        /// The file.
        path: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// `logs` or `invoke` named a function the app does not have.
    #[error("no function `{function}` in the app\n  hint: the functions are {known}")]
    UnknownFunction {
        /// The name given.
        function: String,
        /// The app's functions, listed.
        known: String,
    },
    /// `invoke` of a function that is not deployed (no URL in the state).
    #[error(
        "function `{function}` is not deployed on GCP (service `{service}`, stage `{stage}`)\n  hint: run `nimbus deploy -p gcp` first"
    )]
    NotDeployed {
        /// The function.
        function: String,
        /// The service.
        service: String,
        /// The stage.
        stage: String,
    },
    /// A queue or topic the queue tools name is not in the deployment's state.
    #[error(
        "{what} is not deployed on GCP (stage `{stage}`)\n  hint: run `nimbus deploy -p gcp -s {stage}` first"
    )]
    NotDeployedResource {
        /// What (`queue \`payments\``).
        what: String,
        /// The stage.
        stage: String,
    },
    /// Secrets a function reads have no value for this stage: nothing was changed.
    #[error("{message}")]
    MissingSecrets {
        /// The neutral names of the secrets without a value.
        missing: Vec<String>,
        /// Each secret with its readers and the `nimbus secret set` commands.
        message: String,
    },
    /// The deploy engine failed (its report is inside).
    #[error(transparent)]
    Engine(#[from] nimbus_engine::Error),
}
