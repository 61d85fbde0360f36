//! The app settings (environment variables) that tell the Azure shim where the resources a
//! function uses are.
//!
//! | variable | value |
//! |---|---|
//! | `NIMBUS_RESOURCE_<R>_NAME` | the native name: blob container, storage queue, Cosmos DB container, Service Bus topic |
//! | `NIMBUS_AZURE_BLOB_ENDPOINT`, `NIMBUS_AZURE_QUEUE_ENDPOINT` | the data storage account's endpoints (`https://<account>.blob.core.windows.net/`) |
//! | `NIMBUS_AZURE_COSMOS_ENDPOINT`, `NIMBUS_AZURE_COSMOS_DATABASE` | the tables' Cosmos DB account (`https://<account>.documents.azure.com:443/`) and database |
//! | `NIMBUS_AZURE_SERVICEBUS_NAMESPACE` | the Service Bus namespace's host name |
//! | `AZURE_CLIENT_ID` | the client id of the app's user-assigned identity (the credential the clients use) |
//!
//! `<R>` is the neutral name upper-cased with `-` as `_` (as on AWS). The clients
//! (`providers/azure/shims/*/_nimbus/azure_resources.*`) read them; a test or a developer may
//! also set `NIMBUS_AZURE_STORAGE_CONNECTION_STRING` (e.g. Azurite's),
//! `NIMBUS_AZURE_SERVICEBUS_CONNECTION_STRING` and `NIMBUS_AZURE_COSMOS_CONNECTION_STRING` instead
//! of the endpoints and identity.

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

/// The native name of a resource of `kind`.
pub fn native_name(kind: ResourceKind, name: &str) -> String {
    match kind {
        ResourceKind::Bucket => names::container(name),
        ResourceKind::Queue => names::queue(name),
        ResourceKind::Table => names::table(name),
        ResourceKind::Topic => names::topic(name),
    }
}
