//! What can go wrong in the Azure provider: an app Azure cannot run as it is, a package that
//! cannot be assembled, and the failures of Azure's control plane (ARM) and storage.

use thiserror::Error;

/// An Azure provider failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AzureError {
    /// The graph or the build is for another provider.
    #[error("the {what} is for provider `{provider}`, not `azure`")]
    WrongProvider {
        /// `app graph` or `build`.
        what: &'static str,
        /// The provider it is for.
        provider: String,
    },
    /// A setting the provider needs is missing or invalid.
    #[error("{message}")]
    Settings {
        /// What is wrong, and how to fix it.
        message: String,
    },
    /// A function has no package in the build.
    #[error("function `{function}` has no package in the build; run `nimbus build -p azure`")]
    MissingArtifact {
        /// The function.
        function: String,
    },
    /// Something the manifest asks for that Azure cannot do (`nimbus validate -p azure` reports
    /// these at the manifest line; this is the same check at deploy time).
    #[error("function `{function}`: {what}")]
    Unsupported {
        /// The function.
        function: String,
        /// What, and why.
        what: String,
    },
    /// A schedule NCRONTAB cannot express.
    #[error("function `{function}`: schedule `{expression}`: {reason}")]
    Schedule {
        /// The function.
        function: String,
        /// The neutral expression.
        expression: String,
        /// Why.
        reason: String,
    },
    /// A function's package cannot become a Function App package.
    #[error("function `{function}`: its package {problem}")]
    Package {
        /// The function.
        function: String,
        /// What is wrong.
        problem: String,
    },
    /// Reading or writing a local file failed.
    #[error("could not {action}")]
    Io {
        /// What was being done.
        action: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// No credential could be found or a token could not be obtained.
    #[error("no Azure credential: {message}")]
    Credential {
        /// What was tried, and why it failed.
        message: String,
    },
    /// An Azure REST call failed.
    #[error("{operation}: {message}")]
    Api {
        /// What was being done (`PUT deployment nimbus-shop-dev`).
        operation: String,
        /// The HTTP status, when there was a response.
        status: Option<u16>,
        /// Azure's error code (`InvalidTemplate`, `LeaseAlreadyPresent`), when it gave one.
        code: Option<String>,
        /// Azure's message.
        message: String,
    },
    /// An ARM deployment (or what-if) ended in a failed state.
    #[error("ARM deployment `{deployment}` {state}: {message}")]
    DeploymentFailed {
        /// The deployment's name.
        deployment: String,
        /// `Failed` or `Canceled`.
        state: String,
        /// ARM's error, with the failing resources' details.
        message: String,
    },
    /// A long-running operation did not finish in time.
    #[error("{operation} did not finish within {seconds} s (last status `{status}`)")]
    Timeout {
        /// What was being waited for.
        operation: String,
        /// How long nimbus waited.
        seconds: u64,
        /// The last status seen.
        status: String,
    },
    /// The deploy engine's failures (locks, data-loss refusals), reported in its words.
    #[error(transparent)]
    Engine(#[from] nimbus_engine::Error),
    /// The stored state cannot be read.
    #[error("the deployment state at {location} is unreadable: repair or delete it")]
    CorruptState {
        /// Where it is.
        location: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A function `invoke` was asked for does not exist.
    #[error("function `{function}` is not in the app (functions: {known})")]
    UnknownFunction {
        /// The name given.
        function: String,
        /// The app's functions.
        known: String,
    },
}

impl AzureError {
    /// An [`AzureError::Io`] maker for `map_err`.
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> AzureError {
        let action = action.into();
        move |source| AzureError::Io { action, source }
    }

    /// A suggestion, when there is an obvious next step.
    pub fn hint(&self) -> Option<String> {
        match self {
            AzureError::Engine(e) => e.hint(),
            AzureError::Credential { .. } => Some(
                "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE), or run `az login`"
                    .into(),
            ),
            AzureError::Api {
                status: Some(401 | 403),
                ..
            } => Some(
                "the credential lacks permission: it needs Contributor and User Access Administrator (or Owner) on the resource group"
                    .into(),
            ),
            _ => None,
        }
    }
}
