//! The app settings (environment variables) that tell the Azure shim where the resources a
//! function uses are.
//!
//! | variable | value |
//! |---|---|
//! | `NIMBUS_RESOURCE_<R>_NAME` | the native name: blob container, storage queue, Cosmos DB container, Service Bus topic |
//! | `NIMBUS_AZURE_BLOB_ENDPOINT`, `NIMBUS_AZURE_QUEUE_ENDPOINT` | the data storage account's endpoints (`https://<account>.blob.core.windows.net/`) |
//! | `NIMBUS_AZURE_COSMOS_ENDPOINT`, `NIMBUS_AZURE_COSMOS_DATABASE` | the tables' Cosmos DB account (`https://<account>.documents.azure.com:443/`) and database |
//! | `NIMBUS_AZURE_SERVICEBUS_NAMESPACE` | the Service Bus namespace's host name |
//! | `NIMBUS_RESOURCE_<R>_ENDPOINT` | a resource that already exists (`existing.azure`): its own account's endpoint (`https://<account>.blob.core.windows.net/`, `…queue…`, `https://<account>.documents.azure.com:443/`) or its namespace's host name (`<namespace>.servicebus.windows.net`), used instead of the ones above |
//! | `NIMBUS_RESOURCE_<R>_DATABASE` | an existing Cosmos DB container's database, used instead of `NIMBUS_AZURE_COSMOS_DATABASE` |
//! | `AZURE_CLIENT_ID` | the client id of the app's user-assigned identity (the credential the clients use) |
//!
//! `<R>` is the neutral name upper-cased with `-` as `_` (as on AWS). The clients
//! (`providers/azure/shims/*/_nimbus/azure_resources.*`) read them; a test or a developer may
//! also set `NIMBUS_AZURE_STORAGE_CONNECTION_STRING` (e.g. Azurite's),
//! `NIMBUS_AZURE_SERVICEBUS_CONNECTION_STRING` and `NIMBUS_AZURE_COSMOS_CONNECTION_STRING` instead
//! of the endpoints and identity.

use std::collections::BTreeMap;

use nimbus_manifest::ResourceKind;

use crate::names;

/// The data account's blob endpoint.
pub const BLOB_ENDPOINT: &str = "NIMBUS_AZURE_BLOB_ENDPOINT";
/// The data account's queue endpoint.
pub const QUEUE_ENDPOINT: &str = "NIMBUS_AZURE_QUEUE_ENDPOINT";
/// The Cosmos DB account's document endpoint.
pub const COSMOS_ENDPOINT: &str = "NIMBUS_AZURE_COSMOS_ENDPOINT";
/// The Cosmos DB database of the tables.
pub const COSMOS_DATABASE: &str = "NIMBUS_AZURE_COSMOS_DATABASE";
/// The Service Bus namespace's host name.
pub const SERVICE_BUS_NAMESPACE: &str = "NIMBUS_AZURE_SERVICEBUS_NAMESPACE";

/// `NIMBUS_RESOURCE_<R>_NAME` of resource `name`.
pub fn resource_var(name: &str) -> String {
    format!(
        "NIMBUS_RESOURCE_{}_NAME",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// `NIMBUS_RESOURCE_<R>_ENDPOINT` of resource `name` (one that already exists).
pub fn resource_endpoint_var(name: &str) -> String {
    format!(
        "NIMBUS_RESOURCE_{}_ENDPOINT",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// `NIMBUS_RESOURCE_<R>_DATABASE` of resource `name` (an existing Cosmos DB container).
pub fn resource_database_var(name: &str) -> String {
    format!(
        "NIMBUS_RESOURCE_{}_DATABASE",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// The parts of the ARM id `id` of an existing resource of `kind`, by the placeholders of its
/// shape in `providers/azure/capabilities.toml` (`subscription`, `group`, `account`,
/// `database`, `namespace`, `name`).
pub fn existing_parts(kind: ResourceKind, id: &str) -> Option<BTreeMap<String, String>> {
    let caps = nimbus_provider::ProviderId::Azure.capabilities();
    let shape = &caps.resource(kind)?.existing.as_ref()?.shape;
    nimbus_provider::external::parse_shape(shape, id)
}

/// The native name and the endpoint of an existing resource of `kind` with ARM id `id`: a
/// container's or a queue's storage account endpoint, a Cosmos DB container's account document
/// endpoint, a topic's namespace host name (public Azure cloud).
pub fn existing(kind: ResourceKind, id: &str) -> Option<(String, String)> {
    let parts = existing_parts(kind, id)?;
    let name = parts.get("name")?.clone();
    let endpoint = match kind {
        ResourceKind::Bucket => format!("https://{}.blob.core.windows.net/", parts.get("account")?),
        ResourceKind::Queue => format!("https://{}.queue.core.windows.net/", parts.get("account")?),
        ResourceKind::Table => {
            format!("https://{}.documents.azure.com:443/", parts.get("account")?)
        }
        ResourceKind::Topic => format!("{}.servicebus.windows.net", parts.get("namespace")?),
    };
    Some((name, endpoint))
}

/// The app-setting prefix of the trigger connection to an existing resource `name` in an
/// account or namespace of its own: `<base>_<R>` (`NIMBUS_SERVICEBUS_EVENTS`), beside the
/// deployment's own `<base>`.
pub fn existing_connection(base: &str, name: &str) -> String {
    format!("{base}_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// The native name of a resource of `kind`.
pub fn native_name(kind: ResourceKind, name: &str) -> String {
    match kind {
        ResourceKind::Bucket => names::container(name),
        ResourceKind::Queue => names::queue(name),
        ResourceKind::Table => names::table(name),
        ResourceKind::Topic => names::topic(name),
    }
}
