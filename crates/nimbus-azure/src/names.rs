//! Deterministic names of everything the Azure provider creates, within Azure's rules for each
//! resource type.
//!
//! Names are computed from the service, the stage and the neutral names, so a redeploy finds
//! what it created and the ARM template names things exactly as `nimbus deploy` does. Some
//! Azure names are **global** (storage accounts, function apps — whose host name is
//! `<app>.azurewebsites.net` — and Service Bus namespaces): they end with an 8-hex-digit
//! [`suffix`] of the subscription, resource group, service and stage, which the template takes
//! as its `suffix` parameter. The other names only need to be unique in the resource group (or
//! in their parent), and are readable.
//!
//! | object | name | Azure's rule |
//! |---|---|---|
//! | resource group | `providers.azure.resource_group`, else `{service}-{stage}` | 1–90, `[-\w.()]`, not ending in `.` |
//! | ARM deployment | `nimbus-{service}-{stage}` | 1–64, `[-\w.()]` |
//! | deployment storage account (packages, lock, state, Functions host storage) | `{service}{stage}` letters and digits fitted to 15, `d`, suffix | 3–24, lowercase letters and digits, global |
//! | host storage account (`AzureWebJobsStorage` of every app) | same with `h` | same |
//! | data storage account (the manifest's buckets and queues) | same with `s` | same |
//! | blob container (bucket) | `{bucket}` | 3–63, lowercase letters, digits, single `-` |
//! | storage queue | `{queue}`, poison queue `{queue}-poison` | 3–63, as containers |
//! | Cosmos DB account (the manifest's tables) | `{service}-{stage}` fitted to 35, `-`, suffix | 3–44, lowercase letters, digits, `-`, global |
//! | Cosmos DB database | `{service}` | 1–255, no `/ \\ ? #` |
//! | Cosmos DB container (table) | `{table}` | as the database |
//! | lease container (the Cosmos DB triggers' change feed leases) | `nimbus_leases` (no neutral name has `_`) | as the database |
//! | lease prefix (per function, in the lease container) | `{function}.` | — |
//! | Service Bus namespace | `{service}-{stage}` fitted to 41, `-`, suffix | 6–50, letters, digits, `-`, global; may not end in `-sb` or `-mgmt` |
//! | Service Bus topic | `{topic}` | 1–260 |
//! | Service Bus subscription | `{function}` | 1–50 |
//! | function app | `{service}-{stage}-{function}` fitted to 23, `-`, suffix | 2–60, global; at most 32 so the Functions host id (its first 32 characters) is unique on the shared host storage |
//! | Flex Consumption plan | `{service}-{stage}-{function}` | 1–40 |
//! | user-assigned identity | `{service}-{stage}-{function}` | 3–128 |
//! | package container (per app, in the deployment account) | `app-{function}` | as containers |
//! | Log Analytics workspace, Application Insights | `{service}-{stage}` | 4–63 / 1–255 |
//! | Event Grid system topic (on the data account) | `{service}-{stage}-data` | 3–128 |
//! | Event Grid subscription | `{function}-{trigger index}` | 3–64, letters, digits, `-` |
//! | Key Vault (the manifest's secrets) | `{service}-{stage}` fitted to 15, `-`, suffix | 3–24, letters, digits, `-`, starting with a letter, no `--`, global |
//! | Key Vault secret | the neutral secret name (already within Key Vault's rule: 1–127 letters, digits, `-`) | 1–127 |
//! | role assignment | `guid(scope, identity, role)` in the template | a GUID |
//!
//! **Too long.** A name over its limit keeps a prefix and ends with `-` and 8 hex digits of the
//! SHA-256 of the whole name ([`fit`]): still deterministic, still unique. Where `-` is not
//! allowed (storage accounts, tables) the hash is appended without it.

use sha2::{Digest, Sha256};

/// Length of the global-uniqueness suffix.
pub const SUFFIX_LEN: usize = 8;
/// Longest storage account name.
pub const STORAGE_ACCOUNT_MAX: usize = 24;
/// Longest blob container, queue or table name.
pub const CONTAINER_MAX: usize = 63;
/// Longest function app name nimbus makes (the Functions host id is its first 32 characters).
pub const APP_MAX: usize = 32;
/// Longest Cosmos DB account name.
pub const COSMOS_ACCOUNT_MAX: usize = 44;
/// Longest Service Bus namespace name.
pub const SERVICE_BUS_MAX: usize = 50;
/// Longest Service Bus subscription name.
pub const SUBSCRIPTION_MAX: usize = 50;
/// Longest Flex Consumption plan name.
pub const PLAN_MAX: usize = 40;
/// Longest user-assigned identity name.
pub const IDENTITY_MAX: usize = 128;
/// Longest ARM deployment name.
pub const DEPLOYMENT_MAX: usize = 64;
/// Longest Event Grid subscription name.
pub const EVENT_SUBSCRIPTION_MAX: usize = 64;
/// Longest Key Vault name.
pub const KEY_VAULT_MAX: usize = 24;
/// Longest Log Analytics workspace name.
pub const WORKSPACE_MAX: usize = 63;

/// The 8 hex digits that make global names unique: SHA-256 of
/// `{subscription}/{resource group}/{service}/{stage}` (the resource group lower-cased, as Azure
/// compares it).
pub fn suffix(subscription: &str, resource_group: &str, service: &str, stage: &str) -> String {
    short_hash(&format!(
        "{}/{}/{service}/{stage}",
        subscription.to_ascii_lowercase(),
        resource_group.to_ascii_lowercase()
    ))
}

/// The first 8 hex digits of the SHA-256 of `text`.
pub fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// `full` when it fits in `max` characters, else a prefix of it, `-`, and 8 hex digits of its
/// SHA-256. `full` is ASCII (names are).
pub fn fit(full: &str, max: usize) -> String {
    debug_assert!(full.is_ascii() && max > 9);
    if full.len() <= max {
        return full.to_string();
    }
    let prefix = full[..max - 9].trim_end_matches(['-', '_', '.']);
    format!("{prefix}-{}", short_hash(full))
}

/// Like [`fit`], for names of letters and digits only: the hash is appended without `-`.
fn fit_alnum(full: &str, max: usize) -> String {
    if full.len() <= max {
        return full.to_string();
    }
    format!("{}{}", &full[..max - SUFFIX_LEN], short_hash(full))
}

/// `text` with everything but ASCII letters and digits removed, lower-cased.
fn alnum(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A name for a blob container or a queue: 3–63 characters, lowercase letters, digits and single
/// hyphens. Neutral names already are lowercase letters, digits and `-`; a `--` or a name
/// shorter than 3 gets a hash.
pub fn dns_label(name: &str) -> String {
    if name.len() >= 3 && !name.contains("--") && name.len() <= CONTAINER_MAX {
        return name.to_string();
    }
    let collapsed = name
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let budget = CONTAINER_MAX - SUFFIX_LEN - 1;
    let head = &collapsed[..collapsed.len().min(budget)];
    format!("{}-{}", head.trim_end_matches('-'), short_hash(name))
}

/// The resource group when the manifest names none.
pub fn resource_group(service: &str, stage: &str) -> String {
    format!("{service}-{stage}")
}

/// The ARM deployment that holds the app.
pub fn deployment(service: &str, stage: &str) -> String {
    fit(&format!("nimbus-{service}-{stage}"), DEPLOYMENT_MAX)
}

/// The part of a storage account name before the suffix: `{service}{stage}` letters and digits,
/// fitted to 15, then `kind` (`d` deployment, `s` data).
fn storage_prefix(service: &str, stage: &str, kind: char) -> String {
    let budget = STORAGE_ACCOUNT_MAX - SUFFIX_LEN - 1;
    let base = alnum(&format!("{service}{stage}"));
    format!("{}{kind}", fit_alnum(&base, budget))
}

/// The prefix of the deployment storage account (packages, lock, state, Functions host storage).
pub fn deployment_account_prefix(service: &str, stage: &str) -> String {
    storage_prefix(service, stage, 'd')
}

/// The prefix of the host storage account (`AzureWebJobsStorage` of every app).
pub fn host_account_prefix(service: &str, stage: &str) -> String {
    storage_prefix(service, stage, 'h')
}

/// The prefix of the data storage account (buckets, queues, tables).
pub fn data_account_prefix(service: &str, stage: &str) -> String {
    storage_prefix(service, stage, 's')
}

/// A blob container for a bucket.
pub fn container(bucket: &str) -> String {
    dns_label(bucket)
}

/// A storage queue.
pub fn queue(queue: &str) -> String {
    dns_label(queue)
}

/// The poison queue (dead letters) of a storage queue: the Functions host moves a message that
/// failed `maxDequeueCount` times to `<queue>-poison`.
pub fn poison_queue(queue_name: &str) -> String {
    format!(
        "{}-poison",
        queue(queue_name).chars().take(56).collect::<String>()
    )
    .replace("--", "-")
}

/// The Cosmos DB container of a table: the neutral name (already within Cosmos DB's rules).
pub fn table(table: &str) -> String {
    table.to_string()
}

/// The prefix of the Cosmos DB account (before `-` and the suffix).
pub fn cosmos_account_prefix(service: &str, stage: &str) -> String {
    fit(
        &format!("{service}-{stage}"),
        COSMOS_ACCOUNT_MAX - SUFFIX_LEN - 1,
    )
}

/// The prefix of the Key Vault that holds the secrets (before `-` and the suffix): letters,
/// digits and single `-`, starting with a letter (a service name starts with one).
pub fn key_vault_prefix(service: &str, stage: &str) -> String {
    let joined = format!("{service}-{stage}")
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let fitted = fit(&joined, KEY_VAULT_MAX - SUFFIX_LEN - 1);
    let mut out = fitted.replace("--", "-");
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert(0, 'v');
        out = fit(&out, KEY_VAULT_MAX - SUFFIX_LEN - 1);
    }
    out
}

/// The Cosmos DB database that holds the tables' containers.
pub fn cosmos_database(service: &str) -> String {
    fit(service, 255)
}

/// The container of the Cosmos DB triggers' leases (the change feed processor's bookmarks); a
/// neutral name never has `_`, so no table can take it.
pub const LEASES_CONTAINER: &str = "nimbus_leases";

/// A function's prefix in the lease container, so that several functions share it.
pub fn lease_prefix(function: &str) -> String {
    format!("{function}.")
}

/// The prefix of the Service Bus namespace (before `-` and the suffix).
pub fn service_bus_prefix(service: &str, stage: &str) -> String {
    fit(
        &format!("{service}-{stage}"),
        SERVICE_BUS_MAX - SUFFIX_LEN - 1,
    )
}

/// A Service Bus topic.
pub fn topic(topic: &str) -> String {
    topic.to_string()
}

/// The Service Bus subscription of a function on a topic.
pub fn subscription(function: &str) -> String {
    fit(function, SUBSCRIPTION_MAX)
}

/// A function's subscription in a topic that already exists (`existing.azure`), which other
/// subscriptions (the owner's, other stages') share: `nimbus-<service>-<stage>-<function>`, so
/// it is recognisably Nimbus's and one per service, stage and function.
pub fn existing_subscription(service: &str, stage: &str, function: &str) -> String {
    fit(
        &format!("nimbus-{service}-{stage}-{function}"),
        SUBSCRIPTION_MAX,
    )
}

/// The prefix of a function app's name (before `-` and the suffix).
pub fn app_prefix(service: &str, stage: &str, function: &str) -> String {
    fit(
        &format!("{service}-{stage}-{function}"),
        APP_MAX - SUFFIX_LEN - 1,
    )
}

/// The Flex Consumption plan of a function app.
pub fn plan(service: &str, stage: &str, function: &str) -> String {
    fit(&format!("{service}-{stage}-{function}"), PLAN_MAX)
}

/// The user-assigned identity a function app runs as.
pub fn identity(service: &str, stage: &str, function: &str) -> String {
    fit(&format!("{service}-{stage}-{function}"), IDENTITY_MAX)
}

/// The container (in the deployment account) that holds one app's packages.
pub fn app_container(function: &str) -> String {
    dns_label(&fit(&format!("app-{function}"), CONTAINER_MAX))
}

/// The Log Analytics workspace and the Application Insights component.
pub fn monitoring(service: &str, stage: &str) -> String {
    fit(&format!("{service}-{stage}"), WORKSPACE_MAX)
}

/// The Event Grid system topic of the data storage account.
pub fn system_topic(service: &str, stage: &str) -> String {
    fit(&format!("{service}-{stage}-data"), 128)
}

/// The Event Grid subscription of one bucket trigger.
pub fn event_subscription(function: &str, index: usize) -> String {
    fit(&format!("{function}-{index}"), EVENT_SUBSCRIPTION_MAX)
}

/// The container (in the deployment account) holding locks and state.
pub const STATE_CONTAINER: &str = "nimbus-state";

/// The lock blob of a deployment (leased while a deploy or remove runs).
pub fn lock_blob(service: &str, stage: &str) -> String {
    format!("{service}/{stage}/lock")
}

/// The state blob of a deployment.
pub fn state_blob(service: &str, stage: &str) -> String {
    format!("{service}/{stage}/azure/state.json")
}

/// A package blob in an app's container: content-addressed.
pub fn package_blob(sha256: &str) -> String {
    format!("{sha256}.zip")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_readable() {
        assert_eq!(deployment("shop", "dev"), "nimbus-shop-dev");
        assert_eq!(deployment_account_prefix("shop", "dev"), "shopdevd");
        assert_eq!(data_account_prefix("shop", "dev"), "shopdevs");
        assert_eq!(container("images"), "images");
        assert_eq!(queue("payments"), "payments");
        assert_eq!(poison_queue("payments"), "payments-poison");
        assert_eq!(table("orders"), "orders");
        assert_eq!(service_bus_prefix("shop", "dev"), "shop-dev");
        assert_eq!(
            app_prefix("shop", "dev", "place-order"),
            "shop-dev-place-order"
        );
        assert_eq!(app_prefix("shop", "dev", "get-order"), "shop-dev-get-order");
        assert_eq!(plan("shop", "dev", "get-order"), "shop-dev-get-order");
        assert_eq!(identity("shop", "dev", "get-order"), "shop-dev-get-order");
        assert_eq!(app_container("get-order"), "app-get-order");
        assert_eq!(event_subscription("make-thumbnail", 0), "make-thumbnail-0");
        assert_eq!(key_vault_prefix("shop", "dev"), "shop-dev");
        assert_eq!(
            suffix(
                "00000000-0000-0000-0000-000000000000",
                "Shop",
                "shop",
                "dev"
            )
            .len(),
            8
        );
        assert_eq!(
            suffix("S", "shop", "shop", "dev"),
            suffix("s", "SHOP", "shop", "dev")
        );
    }

    #[test]
    fn names_keep_azure_rules() {
        let long = format!("a{}", "b-".repeat(31));
        let long = long.trim_end_matches('-');
        for s in [
            deployment_account_prefix(long, long),
            data_account_prefix(long, long),
        ] {
            assert_eq!(s.len(), STORAGE_ACCOUNT_MAX - SUFFIX_LEN);
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            );
        }
        for name in ["ab", "a--b", long] {
            for n in [
                container(name),
                queue(name),
                poison_queue(name),
                app_container(name),
            ] {
                assert!((3..=63).contains(&n.len()), "{n}");
                assert!(!n.contains("--"), "{n}");
                assert!(!n.ends_with('-'), "{n}");
            }
            assert_ne!(table(name), LEASES_CONTAINER);
        }
        assert!(cosmos_account_prefix(long, long).len() + 1 + SUFFIX_LEN <= COSMOS_ACCOUNT_MAX);
        assert_eq!(cosmos_account_prefix("shop", "dev"), "shop-dev");
        assert!(app_prefix(long, long, long).len() + 1 + SUFFIX_LEN <= APP_MAX);
        assert!(service_bus_prefix(long, long).len() + 1 + SUFFIX_LEN <= SERVICE_BUS_MAX);
        assert!(plan(long, long, long).len() <= PLAN_MAX);
        for (service, stage) in [(long, long), ("a", "b"), ("payments", "production-eu-west")] {
            let v = format!("{}-{}", key_vault_prefix(service, stage), "0123abcd");
            assert!((3..=KEY_VAULT_MAX).contains(&v.len()), "{v}");
            assert!(v.starts_with(|c: char| c.is_ascii_alphabetic()), "{v}");
            assert!(!v.contains("--"), "{v}");
            assert!(
                v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{v}"
            );
        }
        assert!(subscription(long).len() <= SUBSCRIPTION_MAX);
        assert_ne!(
            app_prefix("s", "d", long),
            app_prefix("s", "d", &format!("{long}x"))
        );
    }
}
