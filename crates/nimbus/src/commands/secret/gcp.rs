//! `nimbus secret set | list | rm -p gcp`: values in Google Secret Manager, through
//! [`nimbus_gcp::secrets::SecretValues`]. The project comes from the manifest's `gcp` settings;
//! the endpoints and credentials from the environment, as for `deploy`. A value's size is
//! checked (by the caller) before any call; `list` shows when each value was set, never a value.

use std::collections::BTreeMap;

use nimbus_gcp::GcpSettings;
use nimbus_gcp::api::{ApiError, Client, Credentials, Endpoints};
use nimbus_gcp::secrets::SecretValues;
use nimbus_graph::AppGraph;
use nimbus_provider::ProviderId;

use crate::output::{Failure, Out};

/// What to do with Secret Manager.
pub(super) enum Action<'a> {
    /// Store a new value (already read and checked).
    Set(&'a str, &'a str),
    /// Show which secrets have a value.
    List,
    /// Delete a secret and all its values.
    Rm(&'a str),
}

/// Runs `action` against the graph's project, service and stage.
pub(super) fn run(graph: &AppGraph, action: Action<'_>, out: &Out) -> Result<(), Failure> {
    let settings = GcpSettings::from_graph(graph, "").map_err(|e| Failure::User(e.into()))?;
    let credentials = Credentials::from_env().map_err(|e| {
        Failure::user(format!(
            "no Google Cloud credentials: {e}\n  hint: run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
        ))
    })?;
    let client = Client::new(Endpoints::from_env(), credentials).map_err(Failure::user)?;
    let values = SecretValues::new(&client, &settings.project, &graph.service, &graph.stage);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(e.into()))?;
    let target = format!("gcp/{} (project {})", graph.stage, settings.project);
    runtime.block_on(async {
        match action {
            Action::Set(name, value) => {
                values
                    .set(name, value.as_bytes())
                    .await
                    .map_err(|e| api(&format!("setting secret `{name}`"), e))?;
                eprintln!("set secret `{name}` for {target} ({} bytes)", value.len());
                Ok(())
            }
            Action::Rm(name) => {
                let removed = values
                    .remove(name)
                    .await
                    .map_err(|e| api(&format!("removing secret `{name}`"), e))?;
                if !removed {
                    return Err(Failure::user(format!(
                        "secret `{name}` has no value for {target}\n  hint: `nimbus secret list -p gcp` shows which secrets are set"
                    )));
                }
                eprintln!("removed secret `{name}` for {target}");
                Ok(())
            }
            Action::List => {
                let mut set = BTreeMap::new();
                for name in graph.secrets.keys() {
                    let state = values
                        .state(name)
                        .await
                        .map_err(|e| api(&format!("reading secret `{name}`"), e))?;
                    if let Some(at) = state.and_then(|s| s.set_at) {
                        set.insert(name.clone(), at);
                    }
                }
                super::show(graph, ProviderId::Gcp, &set, &[], out)
            }
        }
    })
}

fn api(action: &str, e: ApiError) -> Failure {
    Failure::User(anyhow::Error::new(nimbus_gcp::GcpError::Api {
        action: action.to_string(),
        source: e,
    }))
}
