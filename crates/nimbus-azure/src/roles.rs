//! The Azure built-in roles nimbus assigns, and which one each neutral grant or trigger needs.
//!
//! Every assignment is scoped to one resource — a blob container, a queue, a Cosmos DB
//! container, a Service Bus topic or subscription, the app's own package container, the
//! Application Insights component — except the Functions host's own storage account (`AzureWebJobsStorage`), which
//! the host uses for timer locks, blob receipts and keys in containers and queues it names
//! itself. No role is assigned at the subscription or resource group.
//!
//! | need | role | scope |
//! |---|---|---|
//! | bucket `read` | Storage Blob Data Reader | the container |
//! | bucket `write`, `read_write` | Storage Blob Data Contributor | the container |
//! | table `read` | Cosmos DB Built-in Data Reader (a Cosmos DB SQL role) | the table's container |
//! | table `write`, `read_write` | Cosmos DB Built-in Data Contributor (SQL role) | the table's container |
//! | queue `send` | Storage Queue Data Message Sender | the queue |
//! | topic `publish` | Azure Service Bus Data Sender | the topic |
//! | queue trigger | Storage Queue Data Reader + Message Processor; Message Sender on the poison queue | the queue |
//! | topic trigger | Azure Service Bus Data Receiver | the function's subscription |
//! | bucket trigger | Storage Blob Data Reader | the container |
//! | table trigger | Cosmos DB Built-in Data Reader (its change feed); Data Contributor on the lease container | the table's container; the lease container |
//! | package (Flex deployment storage) | Storage Blob Data Contributor | the app's package container |
//! | host storage | Storage Blob Data Owner, Storage Queue Data Contributor, Storage Table Data Contributor | the host storage account |
//! | logs | Monitoring Metrics Publisher | the Application Insights component |
//! | a secret the function reads (`env: { X: { secret: s } }`) | Key Vault Secrets User | that one secret (`<vault>/secrets/<s>`) |
//!
//! Cosmos DB's data plane has its own role-based access: SQL role definitions and assignments
//! under the account (`Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments`, scope
//! `<account id>/dbs/<database>/colls/<container>`), with Entra ID identities; the account has
//! local (key) authentication off, so no key is ever in an app setting.
//!
//! Azure has no write-only data roles for tables and blobs: `write` is granted as Contributor,
//! which can also read; the shim still refuses reads to a function granted only `write`.

/// A built-in role: its name and its role definition id (the same in every tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Role {
    /// The role's display name.
    pub name: &'static str,
    /// Its role definition GUID.
    pub id: &'static str,
}

/// Storage Blob Data Reader.
pub const BLOB_READER: Role = Role {
    name: "Storage Blob Data Reader",
    id: "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
};
/// Storage Blob Data Contributor.
pub const BLOB_CONTRIBUTOR: Role = Role {
    name: "Storage Blob Data Contributor",
    id: "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
};
/// Storage Blob Data Owner.
pub const BLOB_OWNER: Role = Role {
    name: "Storage Blob Data Owner",
    id: "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
};
/// Storage Queue Data Contributor.
pub const QUEUE_CONTRIBUTOR: Role = Role {
    name: "Storage Queue Data Contributor",
    id: "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
};
/// Storage Queue Data Reader.
pub const QUEUE_READER: Role = Role {
    name: "Storage Queue Data Reader",
    id: "19e7f393-937e-4f77-808e-94535e297925",
};
/// Storage Queue Data Message Processor.
pub const QUEUE_PROCESSOR: Role = Role {
    name: "Storage Queue Data Message Processor",
    id: "8a0f0c08-91a1-4084-bc3d-661d67233fed",
};
/// Storage Queue Data Message Sender.
pub const QUEUE_SENDER: Role = Role {
    name: "Storage Queue Data Message Sender",
    id: "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
};
/// Storage Table Data Contributor.
pub const TABLE_CONTRIBUTOR: Role = Role {
    name: "Storage Table Data Contributor",
    id: "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
};
/// Azure Service Bus Data Sender.
pub const SERVICE_BUS_SENDER: Role = Role {
    name: "Azure Service Bus Data Sender",
    id: "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
};
/// Azure Service Bus Data Receiver.
pub const SERVICE_BUS_RECEIVER: Role = Role {
    name: "Azure Service Bus Data Receiver",
    id: "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
};
/// Monitoring Metrics Publisher (Application Insights ingestion with Entra ID).
pub const METRICS_PUBLISHER: Role = Role {
    name: "Monitoring Metrics Publisher",
    id: "3913510d-42f4-4e42-8a64-420c390055eb",
};

/// Key Vault Secrets User: reads secret values (and their metadata), nothing else.
pub const KEY_VAULT_SECRETS_USER: Role = Role {
    name: "Key Vault Secrets User",
    id: "4633458b-17de-408a-b874-0445c86b69e6",
};
/// Key Vault Secrets Officer: what `nimbus secret set/list/rm -p azure` needs on the vault (not
/// assigned by nimbus: the person or pipeline setting values holds it).
pub const KEY_VAULT_SECRETS_OFFICER: Role = Role {
    name: "Key Vault Secrets Officer",
    id: "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
};

/// Cosmos DB Built-in Data Reader (a Cosmos DB SQL role definition of every account).
pub const COSMOS_READER: Role = Role {
    name: "Cosmos DB Built-in Data Reader",
    id: "00000000-0000-0000-0000-000000000001",
};
/// Cosmos DB Built-in Data Contributor (a Cosmos DB SQL role definition of every account).
pub const COSMOS_CONTRIBUTOR: Role = Role {
    name: "Cosmos DB Built-in Data Contributor",
    id: "00000000-0000-0000-0000-000000000002",
};

/// The role a `uses` grant of `access` on a resource of `kind` needs (for tables, a Cosmos DB
/// SQL role).
pub fn for_access(kind: nimbus_manifest::ResourceKind, access: nimbus_manifest::Access) -> Role {
    use nimbus_manifest::{Access, ResourceKind};
    match (kind, access) {
        (ResourceKind::Bucket, Access::Read) => BLOB_READER,
        (ResourceKind::Bucket, _) => BLOB_CONTRIBUTOR,
        (ResourceKind::Table, Access::Read) => COSMOS_READER,
        (ResourceKind::Table, _) => COSMOS_CONTRIBUTOR,
        (ResourceKind::Queue, _) => QUEUE_SENDER,
        (ResourceKind::Topic, _) => SERVICE_BUS_SENDER,
    }
}
