//! Tables on Azure: one Cosmos DB for NoSQL account per service and stage, in serverless
//! capacity mode, with one database and a container per neutral table, plus the lease container
//! of the Cosmos DB triggers (the change feed processor's bookmarks).
//!
//! - **account** (`Microsoft.DocumentDB/databaseAccounts`, kind `GlobalDocumentDB`): the
//!   `EnableServerless` capability (billed per request, nothing while idle, like the Flex apps),
//!   one region (the template's location), Session consistency, TLS 1.2, local (key)
//!   authentication off (`disableLocalAuth`; apps use their identity, no key is ever in an app
//!   setting) and key-based metadata writes off (only ARM changes databases and containers);
//! - **database** `{service}` and a **container** per table: partition key path `/pk` (the text of
//!   the table's partition key field), the document `id` the text of its sort key (the partition
//!   key's again without one), so `get`/`put`/`delete` are point operations and `query` reads one
//!   partition in sort key order; TTL on without a default (`defaultTtl: -1`), so that only the
//!   tombstones of deleted items expire; only `/pk`, `/id` and `/deleted` are indexed (the shim
//!   queries nothing else), which keeps writes cheap;
//! - **lease container** `nimbus_leases` (partition key `/id`, as the Functions Cosmos DB
//!   trigger requires), when a function has a `table` trigger;
//! - **SQL role assignments** (`…/sqlRoleAssignments`, Cosmos DB's own data-plane RBAC): the
//!   built-in Data Reader or Data Contributor, scoped to exactly one container
//!   (`<account id>/dbs/<database>/colls/<container>`), for the app's identity: what `uses`
//!   grants, and for a table trigger, Reader on the table's container and Contributor on the
//!   lease container ([`crate::roles`]).
//!
//! The shim's side (documents, tombstones, the change feed as neutral events) is in
//! `providers/azure/shims/*/_nimbus/azure_cosmos.*`.

use serde_json::{Value, json};

use super::{Template, api, expr, lit, rid, var};
use crate::names;
use crate::roles::Role;

/// Variable name of the account.
pub(super) const COSMOS_ACCOUNT: &str = "cosmosAccount";
/// Variable name of the database.
const COSMOS_DATABASE: &str = "cosmosDatabase";

/// The account's resource id expression.
pub(super) fn account_id() -> String {
    rid(
        "Microsoft.DocumentDB/databaseAccounts",
        &[var(COSMOS_ACCOUNT)],
    )
}

/// A container's resource id expression.
pub(super) fn container_id(container: &str) -> String {
    rid(
        "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers",
        &[var(COSMOS_ACCOUNT), var(COSMOS_DATABASE), lit(container)],
    )
}

/// The account's document endpoint (`https://<account>.documents.azure.com:443/`).
pub(super) fn endpoint() -> Value {
    expr(format!(
        "reference({}, '{}').documentEndpoint",
        account_id(),
        api::COSMOS
    ))
}

/// The database name, as an expression.
pub(super) fn database() -> Value {
    expr(var(COSMOS_DATABASE))
}

impl Template<'_> {
    /// The account, database, containers and (with `leases`) the lease container.
    pub(super) fn cosmos(&mut self, leases: bool) {
        let (service, stage) = (self.service().to_string(), self.stage().to_string());
        self.global(
            COSMOS_ACCOUNT,
            names::cosmos_account_prefix(&service, &stage),
            true,
        );
        self.variables.insert(
            COSMOS_DATABASE.into(),
            json!(names::cosmos_database(&service)),
        );
        self.resources.push(json!({
            "type": "Microsoft.DocumentDB/databaseAccounts",
            "apiVersion": api::COSMOS,
            "name": expr(var(COSMOS_ACCOUNT)),
            "location": expr("parameters('location')"),
            "tags": self.tags,
            "kind": "GlobalDocumentDB",
            "properties": {
                "databaseAccountOfferType": "Standard",
                "locations": [
                    { "locationName": expr("parameters('location')"), "failoverPriority": 0, "isZoneRedundant": false },
                ],
                "capabilities": [ { "name": "EnableServerless" } ],
                "consistencyPolicy": { "defaultConsistencyLevel": "Session" },
                "minimalTlsVersion": "Tls12",
                "disableLocalAuth": true,
                "disableKeyBasedMetadataWriteAccess": true,
                "publicNetworkAccess": "Enabled",
            },
        }));
        let database_id = rid(
            "Microsoft.DocumentDB/databaseAccounts/sqlDatabases",
            &[var(COSMOS_ACCOUNT), var(COSMOS_DATABASE)],
        );
        self.resources.push(json!({
            "type": "Microsoft.DocumentDB/databaseAccounts/sqlDatabases",
            "apiVersion": api::COSMOS,
            "name": expr(format!("concat({}, '/', {})", var(COSMOS_ACCOUNT), var(COSMOS_DATABASE))),
            "dependsOn": [expr(account_id())],
            "properties": { "resource": { "id": expr(var(COSMOS_DATABASE)) } },
        }));
        let tables: Vec<String> = self
            .graph
            .resources
            .values()
            .filter(|r| r.kind == nimbus_manifest::ResourceKind::Table && r.existing.is_none())
            .map(|r| names::table(&r.name))
            .collect();
        for table in &tables {
            self.cosmos_container(
                &database_id,
                table,
                json!({
                    "id": table,
                    "partitionKey": { "paths": ["/pk"], "kind": "Hash", "version": 2 },
                    "defaultTtl": -1,
                    "indexingPolicy": {
                        "indexingMode": "consistent",
                        "automatic": true,
                        "includedPaths": [ { "path": "/pk/?" }, { "path": "/id/?" }, { "path": "/deleted/?" } ],
                        "excludedPaths": [ { "path": "/*" } ],
                    },
                }),
            );
        }
        if leases {
            self.cosmos_container(
                &database_id,
                names::LEASES_CONTAINER,
                json!({
                    "id": names::LEASES_CONTAINER,
                    "partitionKey": { "paths": ["/id"], "kind": "Hash", "version": 2 },
                }),
            );
        }
    }

    fn cosmos_container(&mut self, database_id: &str, name: &str, resource: Value) {
        self.resources.push(json!({
            "type": "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers",
            "apiVersion": api::COSMOS,
            "name": expr(format!(
                "concat({}, '/', {}, '/{name}')",
                var(COSMOS_ACCOUNT),
                var(COSMOS_DATABASE)
            )),
            "dependsOn": [expr(database_id)],
            "properties": { "resource": resource },
        }));
    }

    /// The SQL role assignments of an app's identity: `(role, container)` each. Returns their
    /// resource id expressions (the app's code waits for them).
    pub(super) fn cosmos_grants(
        &mut self,
        identity_id: &str,
        grants: &[(Role, String)],
    ) -> Vec<Value> {
        let principal = format!("reference({identity_id}, '{}').principalId", api::IDENTITY);
        let mut ids = Vec::new();
        for (role, container) in grants {
            let scope = format!(
                "concat({}, '/dbs/', {}, '/colls/{container}')",
                account_id(),
                var(COSMOS_DATABASE)
            );
            let guid = format!("guid({scope}, {identity_id}, {})", lit(role.id));
            self.resources.push(json!({
                "type": "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments",
                "apiVersion": api::COSMOS,
                "name": expr(format!("concat({}, '/', {guid})", var(COSMOS_ACCOUNT))),
                "dependsOn": [expr(container_id(container)), expr(identity_id)],
                "properties": {
                    "roleDefinitionId": expr(format!(
                        "concat({}, '/sqlRoleDefinitions/{}')",
                        account_id(),
                        role.id
                    )),
                    "principalId": expr(&principal),
                    "scope": expr(&scope),
                },
            }));
            ids.push(expr(rid(
                "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments",
                &[var(COSMOS_ACCOUNT), guid],
            )));
        }
        ids
    }
}
