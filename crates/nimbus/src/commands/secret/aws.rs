//! `nimbus secret set | list | rm -p aws`: values in AWS Secrets Manager, through
//! [`nimbus_aws::secrets::SecretValues`]. Credentials, region and endpoint (`--endpoint-url`)
//! come from the same chain as `deploy`. A value's size is checked (by the caller) before any
//! call; `list` shows when each value last changed, never a value. `rm` deletes the secret at
//! once, without a recovery window, as `rm -p gcp` does.

use std::collections::BTreeMap;

use nimbus_aws::secrets::SecretValues;
use nimbus_graph::AppGraph;
use nimbus_provider::ProviderId;

use crate::cli::Global;
use crate::output::{Failure, Out};

/// What to do with Secrets Manager.
pub(super) enum Action<'a> {
    /// Store a new value (already read and checked).
    Set(&'a str, &'a str),
    /// Show which secrets have a value.
    List,
    /// Delete a secret and all its values.
    Rm(&'a str),
}

/// Runs `action` against the graph's account, region, service and stage.
pub(super) fn run(
    global: &Global,
    graph: &AppGraph,
    action: Action<'_>,
    out: &Out,
) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(e.into()))?;
    runtime.block_on(async {
        let aws = nimbus_aws::connect(
            graph,
            nimbus_cloud::Options::default(),
            global.endpoint_url.clone(),
        )
        .await
        .map_err(user)?;
        let values = SecretValues::new(&aws, graph);
        let scope = aws.scope();
        let target = format!(
            "aws/{} (account {}, {})",
            graph.stage, scope.account, scope.region
        );
        match action {
            Action::Set(name, value) => {
                values.set(name, value).await.map_err(user)?;
                eprintln!(
                    "set secret `{name}` ({}) for {target} ({} bytes); running functions see it at their next cold start",
                    values.full_name(name),
                    value.len()
                );
                Ok(())
            }
            Action::Rm(name) => {
                if !values.remove(name).await.map_err(user)? {
                    return Err(Failure::user(format!(
                        "secret `{name}` has no value for {target}\n  hint: `nimbus secret list -p aws` shows which secrets are set"
                    )));
                }
                eprintln!(
                    "removed secret `{name}` ({}) for {target}",
                    values.full_name(name)
                );
                Ok(())
            }
            Action::List => {
                let listed = values.list().await.map_err(user)?;
                let set: BTreeMap<String, String> = listed
                    .iter()
                    .filter_map(|(n, s)| s.set_at.clone().map(|at| (n.clone(), at)))
                    .collect();
                let undeclared: Vec<&String> = listed
                    .keys()
                    .filter(|n| !graph.secrets.contains_key(*n))
                    .collect();
                super::show(graph, ProviderId::Aws, &set, &undeclared, out)
            }
        }
    })
}

fn user(e: nimbus_aws::AwsError) -> Failure {
    Failure::User(anyhow::Error::new(e))
}
