//! Resources that already exist (`existing.azure`), checked at deploy before anything changes.
//!
//! A Cosmos DB container is read through ARM (`GET` of its id, the control plane: the deploying
//! credential can already write role assignments in that account): it must exist, and be
//! partitioned by `/pk`, the path the shim's table client keeps each item's partition key text
//! in ([`crate::template`]'s `cosmos` module), or every point read and write would miss. A
//! container laid out otherwise is refused with its actual paths. Blob containers, queues and
//! topics are not looked up: ARM fails the nested deployment when a scope does not exist.

use nimbus_graph::AppGraph;
use nimbus_manifest::ResourceKind;
use serde_json::{Value, json};

use super::Azure;
use crate::error::AzureError;
use crate::template::api;

/// The partition key paths a container must have for the shim's table client.
const PARTITION_KEY_PATHS: &[&str] = &["/pk"];

impl Azure {
    /// Every existing Cosmos DB container of `graph` exists and is partitioned by `/pk`.
    pub(super) async fn check_existing_tables(&self, graph: &AppGraph) -> Result<(), AzureError> {
        for r in graph.resources.values() {
            let Some(id) = r
                .existing
                .as_deref()
                .filter(|_| r.kind == ResourceKind::Table)
            else {
                continue;
            };
            let id = id.trim_end_matches('/');
            let found = self
                .arm
                .get(&format!("{id}?api-version={}", api::COSMOS))
                .await?;
            check_container(&r.name, id, found.as_ref())?;
        }
        Ok(())
    }
}

/// The container `found` at `id` (`None`: ARM answered 404) against what the shim needs.
fn check_container(resource: &str, id: &str, found: Option<&Value>) -> Result<(), AzureError> {
    let Some(found) = found else {
        return Err(AzureError::ExistingResource {
            resource: resource.to_string(),
            message: format!(
                "table `{resource}`: the Cosmos DB container `{id}` (existing.azure) does not exist; nothing was changed. Check the id (subscription, group, account, database and container), or leave `existing.azure` out to let Nimbus create the table"
            ),
        });
    };
    let paths = &found["properties"]["resource"]["partitionKey"]["paths"];
    if *paths == json!(PARTITION_KEY_PATHS) {
        return Ok(());
    }
    Err(AzureError::ExistingResource {
        resource: resource.to_string(),
        message: format!(
            "table `{resource}`: the Cosmos DB container `{id}` (existing.azure) has the partition key paths {paths}, but Nimbus's table client stores each item with partition key path `/pk` (the text of the table's partition key field) and `id` the text of its sort key; nothing was changed. Use a container created with partition key path `/pk`, or leave `existing.azure` out to let Nimbus create the table"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_container_partitioned_by_pk_is_accepted() {
        let with = |paths: Value| json!({ "properties": { "resource": { "partitionKey": { "paths": paths } } } });
        assert!(check_container("users", "/x", Some(&with(json!(["/pk"])))).is_ok());
        let e = check_container("users", "/x", Some(&with(json!(["/tenant"])))).unwrap_err();
        assert!(e.to_string().contains("[\"/tenant\"]"), "{e}");
        assert!(e.to_string().contains("partition key path `/pk`"), "{e}");
        let e = check_container("users", "/x", None).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
