//! `nimbus secret set | list | rm -p azure`: values in the stage's Azure Key Vault, through
//! [`nimbus_azure::Azure`]'s secret methods. The subscription and resource group come from the
//! manifest's `azure` settings or the environment, the credentials and endpoints from the
//! environment, as for `deploy`. `set` creates the resource group and the vault when they do
//! not exist yet, so it works before the first deploy. A value's size is checked (by the caller)
//! before any call; `list` shows when each value was set, never a value.

use nimbus_azure::{Azure, AzureError};
use nimbus_cloud::{Cloud, Options};
use nimbus_graph::AppGraph;
use nimbus_provider::ProviderId;

use crate::output::{Failure, Out};

/// What to do with Key Vault.
pub(super) enum Action<'a> {
    /// Store a new value (already read and checked).
    Set(&'a str, &'a str),
    /// Show which secrets have a value.
    List,
    /// Delete a secret (soft delete: recoverable for the vault's retention).
    Rm(&'a str),
}

/// Runs `action` against the graph's subscription, service and stage.
pub(super) fn run(graph: &AppGraph, action: Action<'_>, out: &Out) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(e.into()))?;
    runtime.block_on(async {
        let azure = nimbus_azure::connect(graph, Options::default())
            .await
            .map_err(fail)?;
        let target = format!("azure/{} (key vault {})", graph.stage, azure.vault_name());
        match action {
            Action::Set(name, value) => {
                azure.set_secret(name, value).await.map_err(fail)?;
                eprintln!("set secret `{name}` for {target} ({} bytes)", value.len());
                Ok(())
            }
            Action::Rm(name) => {
                if !azure.remove_secret(name).await.map_err(fail)? {
                    return Err(Failure::user(format!(
                        "secret `{name}` has no value for {target}\n  hint: `nimbus secret list -p azure` shows which secrets are set"
                    )));
                }
                eprintln!(
                    "removed secret `{name}` for {target} (recoverable for {} days)",
                    nimbus_azure::template::SOFT_DELETE_DAYS
                );
                Ok(())
            }
            Action::List => {
                let set = azure.secret_states().await.map_err(fail)?;
                let undeclared: Vec<&String> = set
                    .keys()
                    .filter(|n| !graph.secrets.contains_key(*n))
                    .collect();
                super::show(graph, ProviderId::Azure, &set, &undeclared, out)
            }
        }
    })
}

/// An Azure failure as a user error, with its hint.
fn fail(e: AzureError) -> Failure {
    let hint = <Azure as Cloud>::hint(&e);
    let mut text = e.to_string();
    if let Some(h) = hint {
        text.push_str(&format!("\n  hint: {h}"));
    }
    Failure::user(text)
}
