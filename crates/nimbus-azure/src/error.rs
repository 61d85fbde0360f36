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
    /// No subscription is configured.
    #[error("no Azure subscription is set")]
    NoSubscription,
    /// The resource group does not exist, and without a location nimbus cannot create it.
    #[error(
        "resource group `{resource_group}` does not exist and `providers.azure.location` is not set, so nimbus cannot create it"
    )]
    NoLocation {
        /// The resource group.
        resource_group: String,
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
    /// An ARM deployment (or another long-running operation) ended in a failed state.
    #[error("ARM deployment `{deployment}` {state}: {message}")]
    DeploymentFailed {
        /// The deployment's name (or the operation's description).
        deployment: String,
        /// Its resource group, when it is a deployment of one.
        resource_group: Option<String>,
        /// `Failed` or `Canceled`.
        state: String,
        /// ARM's error codes, outermost first (`DeploymentFailed`, then each failed
        /// resource's, such as `Conflict` or `AuthorizationFailed`).
        codes: Vec<String>,
        /// ARM's error, with the failing resources' details (`code: message; ...`).
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
    /// Secrets a function reads have no value in the stage's Key Vault: nothing was changed.
    #[error("{message}")]
    MissingSecrets {
        /// The neutral names of the secrets without a value.
        missing: Vec<String>,
        /// Each secret with its readers and the `nimbus secret set` commands.
        message: String,
    },
    /// Key Vault refused a data-plane call (403): the credential has no role on the vault.
    #[error("Key Vault `{vault}` refused access: {message}")]
    SecretAccess {
        /// The vault.
        vault: String,
        /// Its ARM id (the scope of the role to assign).
        vault_id: String,
        /// Key Vault's code and message.
        message: String,
    },
    /// An existing resource (`existing.azure`) that Nimbus cannot use as it is: nothing was
    /// changed.
    #[error("{message}")]
    ExistingResource {
        /// The neutral resource.
        resource: String,
        /// What is wrong and what to do.
        message: String,
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
            AzureError::Credential { .. } => Some(SIGN_IN.into()),
            AzureError::SecretAccess { vault_id, .. } => Some(format!(
                "the vault uses Azure RBAC: give yourself (or the pipeline's identity) the Key Vault Secrets Officer role on it: `az role assignment create --role \"Key Vault Secrets Officer\" --assignee <your object id or UPN> --scope {vault_id}`"
            )),
            AzureError::NoSubscription => Some(
                "set `providers.azure.subscription` in nimbus.yaml or AZURE_SUBSCRIPTION_ID (`az account show --query id --output tsv` prints the current one)"
                    .into(),
            ),
            AzureError::NoLocation { resource_group } => Some(format!(
                "set `providers.azure.location` in nimbus.yaml (for example `westeurope`) so nimbus creates the group, or create it: `az group create --name {resource_group} --location <region>`"
            )),
            AzureError::DeploymentFailed {
                deployment,
                resource_group,
                codes,
                message,
                ..
            } => codes
                .iter()
                .rev()
                .find_map(|c| code_hint(c, message))
                .or_else(|| {
                    resource_group.as_ref().map(|rg| {
                        format!(
                            "fix what ARM reports above and deploy again; `az deployment operation group list --resource-group {rg} --name {deployment}` lists each resource's operation"
                        )
                    })
                }),
            AzureError::Api {
                status,
                code,
                message,
                ..
            } => code
                .as_deref()
                .and_then(|c| code_hint(c, message))
                .or_else(|| match status {
                    Some(401) => Some(SIGN_IN.into()),
                    Some(403) => Some(PERMISSIONS.into()),
                    None => Some(
                        "Azure could not be reached: check the network (and NIMBUS_AZURE_ARM_ENDPOINT, if set)"
                            .into(),
                    ),
                    _ => None,
                }),
            _ => None,
        }
    }
}

const SIGN_IN: &str = "sign in again: `az login`, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE); NIMBUS_AZURE_ACCESS_TOKEN, when set, must be a current ARM token";

const PERMISSIONS: &str = "the credential lacks permission: it needs Contributor and User Access Administrator (or Owner) on the resource group";

/// The fix for one of ARM's error codes, when there is an obvious one (`message` is ARM's text,
/// which names what the fix needs, such as the resource provider to register).
fn code_hint(code: &str, message: &str) -> Option<String> {
    let hint = match code {
        "InvalidAuthenticationToken"
        | "ExpiredAuthenticationToken"
        | "InvalidAuthenticationTokenTenant"
        | "AuthenticationFailed" => SIGN_IN.into(),
        "AuthorizationFailed" | "LinkedAuthorizationFailed" => PERMISSIONS.into(),
        "SubscriptionNotFound" | "InvalidSubscriptionId" | "SubscriptionNotRegistered" => {
            "check the subscription (`providers.azure.subscription` or AZURE_SUBSCRIPTION_ID) and that the credential can use it: `az account list --output table`".into()
        }
        "MissingSubscriptionRegistration" => {
            let namespace = message
                .split('\'')
                .find(|w| w.starts_with("Microsoft."))
                .unwrap_or("<namespace>");
            format!("register the resource provider once per subscription: `az provider register --namespace {namespace}`")
        }
        "RequestDisallowedByPolicy" => {
            "an Azure Policy of the subscription or resource group forbids it: ask its owner for an exemption, or change the manifest to comply".into()
        }
        "QuotaExceeded" | "SkuNotAvailable" | "LocationNotAvailableForResourceType" => {
            "the region cannot host it now: request more quota, or choose another `providers.azure.location`".into()
        }
        "ResourceGroupNotFound" => {
            "set `providers.azure.location` so nimbus creates the resource group, or create it with `az group create`".into()
        }
        "InvalidTemplate" | "InvalidTemplateDeployment" | "InvalidRequestContent" => {
            "ARM refused the template nimbus generated: that is a bug in nimbus, please report it with the message above".into()
        }
        _ => return None,
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(codes: &[&str], message: &str) -> AzureError {
        AzureError::DeploymentFailed {
            deployment: "nimbus-shop-dev".into(),
            resource_group: Some("shop".into()),
            state: "Failed".into(),
            codes: codes.iter().map(|c| c.to_string()).collect(),
            message: message.into(),
        }
    }

    #[test]
    fn a_failed_deployment_is_hinted_by_its_most_specific_code() {
        let e = failed(
            &["DeploymentFailed", "AuthorizationFailed"],
            "DeploymentFailed: At least one resource deployment operation failed.; AuthorizationFailed: no",
        );
        assert!(e.to_string().contains("AuthorizationFailed: no"), "{e}");
        assert_eq!(e.hint().as_deref(), Some(PERMISSIONS));
        let e = failed(&["DeploymentFailed", "Conflict"], "Conflict: busy");
        assert_eq!(
            e.hint().unwrap(),
            "fix what ARM reports above and deploy again; `az deployment operation group list --resource-group shop --name nimbus-shop-dev` lists each resource's operation"
        );
        let e = failed(
            &["DeploymentFailed", "MissingSubscriptionRegistration"],
            "The subscription is not registered to use namespace 'Microsoft.EventGrid'.",
        );
        assert!(
            e.hint()
                .unwrap()
                .ends_with("`az provider register --namespace Microsoft.EventGrid`")
        );
    }

    #[test]
    fn api_failures_are_hinted_by_code_then_status() {
        let api = |status, code: Option<&str>| AzureError::Api {
            operation: "GET /subscriptions/x/resourcegroups/shop".into(),
            status,
            code: code.map(String::from),
            message: "m".into(),
        };
        assert_eq!(api(Some(401), None).hint().as_deref(), Some(SIGN_IN));
        assert_eq!(
            api(Some(401), Some("ExpiredAuthenticationToken"))
                .hint()
                .as_deref(),
            Some(SIGN_IN)
        );
        assert_eq!(api(Some(403), None).hint().as_deref(), Some(PERMISSIONS));
        assert!(
            api(Some(404), Some("SubscriptionNotFound"))
                .hint()
                .unwrap()
                .contains("AZURE_SUBSCRIPTION_ID")
        );
        assert!(api(None, None).hint().unwrap().contains("network"));
        assert_eq!(api(Some(409), Some("Conflict")).hint(), None);
        let e = AzureError::NoLocation {
            resource_group: "shop".into(),
        };
        assert!(e.hint().unwrap().contains("az group create --name shop"));
    }
}
