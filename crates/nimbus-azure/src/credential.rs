//! Credentials for ARM: the Azure identity chain, in this order.
//!
//! | source | when | how |
//! |---|---|---|
//! | `NIMBUS_AZURE_ACCESS_TOKEN` | set | that bearer token as it is (a token a pipeline already holds, e.g. from `az account get-access-token`; also the tests) |
//! | service principal secret | `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` set | `azure_identity::ClientSecretCredential` |
//! | workload identity federation (GitHub Actions OIDC, AKS) | `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE` set | `azure_identity::WorkloadIdentityCredential` |
//! | Azure CLI | otherwise | `azure_identity::AzureCliCredential` (`az login`) |
//!
//! Not covered: managed identity of the machine running nimbus, client certificates, Azure
//! Developer CLI. Tokens are asked for the ARM endpoint's `/.default` scope.

use std::sync::Arc;
use std::time::Instant;

use azure_core::credentials::{Secret, TokenCredential};
use tokio::sync::Mutex;

use crate::error::AzureError;

/// Where bearer tokens come from.
#[derive(Clone)]
pub enum Credential {
    /// A fixed token.
    Static(String),
    /// A credential of `azure_identity`, what it is (for messages), and its cached token.
    Identity(Arc<dyn TokenCredential>, &'static str, TokenCache),
}

/// The last token and until when it may be used.
pub type TokenCache = Arc<Mutex<Option<(String, Instant)>>>;

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Static(_) => f.write_str("Credential::Static(..)"),
            Credential::Identity(_, what, _) => write!(f, "Credential::Identity({what})"),
        }
    }
}

impl Credential {
    /// The first source of the chain that the process environment configures (see the module
    /// docs).
    pub fn from_env() -> Result<Credential, AzureError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// [`Credential::from_env`] with variables from `lookup`.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Credential, AzureError> {
        let env = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let failed = |what: &str, e: azure_core::Error| AzureError::Credential {
            message: format!("{what}: {e}"),
        };
        if let Some(token) = env("NIMBUS_AZURE_ACCESS_TOKEN") {
            return Ok(Credential::Static(token));
        }
        let cache = Arc::new(Mutex::new(None));
        if let (Some(tenant), Some(client), Some(secret)) = (
            env("AZURE_TENANT_ID"),
            env("AZURE_CLIENT_ID"),
            env("AZURE_CLIENT_SECRET"),
        ) {
            let c = azure_identity::ClientSecretCredential::new(
                &tenant,
                client,
                Secret::new(secret),
                None,
            )
            .map_err(|e| failed("service principal (AZURE_CLIENT_SECRET)", e))?;
            return Ok(Credential::Identity(c, "service principal", cache));
        }
        if let (Some(_), Some(_), Some(_)) = (
            env("AZURE_TENANT_ID"),
            env("AZURE_CLIENT_ID"),
            env("AZURE_FEDERATED_TOKEN_FILE"),
        ) {
            let c = azure_identity::WorkloadIdentityCredential::new(None)
                .map_err(|e| failed("workload identity (AZURE_FEDERATED_TOKEN_FILE)", e))?;
            return Ok(Credential::Identity(c, "workload identity", cache));
        }
        let c =
            azure_identity::AzureCliCredential::new(None).map_err(|e| failed("Azure CLI", e))?;
        Ok(Credential::Identity(c, "Azure CLI", cache))
    }

    /// The same source with a token cache of its own (the cache holds one token: a client of
    /// another audience needs its own).
    pub fn with_own_cache(&self) -> Credential {
        match self {
            Credential::Static(t) => Credential::Static(t.clone()),
            Credential::Identity(c, what, _) => {
                Credential::Identity(c.clone(), what, Arc::new(Mutex::new(None)))
            }
        }
    }

    /// A bearer token for `scope` (cached until five minutes before it expires).
    pub async fn token(&self, scope: &str) -> Result<String, AzureError> {
        match self {
            Credential::Static(t) => Ok(t.clone()),
            Credential::Identity(c, what, cache) => {
                let mut cached = cache.lock().await;
                if let Some((token, until)) = cached.as_ref()
                    && Instant::now() < *until
                {
                    return Ok(token.clone());
                }
                let t = c
                    .get_token(&[scope], None)
                    .await
                    .map_err(|e| AzureError::Credential {
                        message: format!("{what}: {e}"),
                    })?;
                let left = (t.expires_on - azure_core::time::OffsetDateTime::now_utc())
                    .whole_seconds()
                    .saturating_sub(300)
                    .max(0) as u64;
                let token = t.token.secret().to_string();
                *cached = Some((
                    token.clone(),
                    Instant::now() + std::time::Duration::from_secs(left),
                ));
                Ok(token)
            }
        }
    }
}
