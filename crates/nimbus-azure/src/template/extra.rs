//! The escape hatches of a function's app: its `permissions.azure` role assignments, its role
//! assignments on resources that already exist (`existing.azure`), and its
//! `azure.always_ready` instances.
//!
//! Each grant is a role assignment for the app's own managed identity at the scope the manifest
//! names. The scope is usually outside the deployment's resource group (another group, a whole
//! subscription, a resource elsewhere), and ARM applies an extension resource outside the
//! deployment's scope only through a nested deployment: so every grant is one
//! `Microsoft.Resources/deployments` aimed at the scope's subscription (and resource group, when
//! it names one), holding the one `Microsoft.Authorization/roleAssignments`, with the `scope`
//! property for a resource below a group. The role is the built-in of that name
//! (`providers/azure/capabilities.toml`, `[permissions.roles]`) or a role definition id as given.
//!
//! On an existing Cosmos DB container the grant is the account's data-plane role assignment
//! (`sqlRoleAssignments`, the built-in Data Reader or Contributor, scoped to that container) in
//! the nested deployment at the account's group; a topic trigger on an existing Service Bus
//! topic gets a subscription Nimbus owns in it (`nimbus-<service>-<stage>-<function>`), created in the nested
//! deployment, and Data Receiver on that subscription only.
//!
//! Their names are ARM's deterministic `guid(scope, principalId, roleDefinitionId)`, so `remove`
//! finds them again without any record ([`outside_assignments`]): deleting the resource group
//! does not delete role assignments outside it, and they would be left behind.
//!
//! `always_ready` N puts N always-ready instances on each trigger group of the app
//! (`functionAppConfig.scaleAndConcurrency.alwaysReady`): `http` for its HTTP functions, `blob`
//! for its Event Grid blob functions, and `function:<name>` for each other function.

use nimbus_graph::{AppGraph, FunctionNode, Link};
use nimbus_manifest::ResourceKind;
use nimbus_provider::ProviderId;
use serde_json::{Value, json};

use super::{api, expr, lit};
use crate::apps::{App, Trigger};
use crate::{env, names, roles};

/// `Microsoft.Resources/deployments`.
pub const DEPLOYMENTS_API: &str = "2022-09-01";

/// What a grant outside the template assigns, and what it creates first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantKind {
    /// An Azure RBAC role assignment (`Microsoft.Authorization/roleAssignments`) at the scope.
    Role,
    /// A Cosmos DB data-plane role assignment
    /// (`Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments`) of the account with this
    /// ARM id, scoped to one container of it (`<account>/dbs/<database>/colls/<container>`).
    CosmosSql {
        /// The account's ARM id.
        account: String,
    },
    /// A subscription Nimbus owns in an existing Service Bus topic (the scope, its id), created
    /// in the same nested deployment, with a role assignment on it.
    Subscription,
}

/// One role assignment of a function's identity at a scope outside the template's own
/// resources: a `permissions.azure` grant, or a grant on a resource that already exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsideGrant {
    /// The scope: a subscription, a resource group or a resource id (for a Cosmos DB SQL role
    /// assignment, the container's data-plane path).
    pub scope: String,
    /// The role definition's GUID.
    pub role_id: String,
    /// The assignment's description (`nimbus: <function> (...): <role>`).
    pub description: String,
    /// The nested deployment's name.
    pub deployment: String,
    /// What is assigned (and created).
    pub kind: GrantKind,
}

/// The grants of `f` outside the template: its `permissions.azure` (in order), then its `uses`
/// of resources that already exist (`existing.azure`), each scoped to that resource's id (a
/// Cosmos DB container's through its account's SQL role assignments), then its triggers on
/// existing resources: a Cosmos DB container's change feed (Data Reader, unless `uses` already
/// grants on it) and a Service Bus topic (a subscription of its own, Data Receiver on it).
pub fn outside_grants(graph: &AppGraph, f: &FunctionNode) -> Vec<OutsideGrant> {
    let mut out = Vec::new();
    if let Some(perms) = ProviderId::Azure.capabilities().permissions.as_ref() {
        for (i, g) in f.permissions.azure.iter().enumerate() {
            // Validation refused unknown role names; an id is used as given.
            let Some(role_id) = perms.role_id(&g.role) else {
                continue;
            };
            out.push(OutsideGrant {
                scope: g.scope.trim_end_matches('/').to_string(),
                role_id: role_id.to_string(),
                description: format!(
                    "nimbus: {} (permissions.azure {}): {}",
                    f.name,
                    i + 1,
                    g.role.as_str()
                ),
                deployment: deployment_name(&f.name, &format!("permission-{}", i + 1)),
                kind: GrantKind::Role,
            });
        }
    }
    let existing = |name: &str| {
        let r = graph.resources.get(name)?;
        Some((r.kind, r.existing.as_deref()?.trim_end_matches('/')))
    };
    for e in graph.edges.iter().filter(|e| e.from == f.id) {
        let Link::Uses { access } = &e.link else {
            continue;
        };
        let name = e.to.trim_start_matches("resource:");
        let Some((kind, id)) = existing(name) else {
            continue;
        };
        let role = roles::for_access(kind, *access);
        let (scope, grant) = match kind {
            ResourceKind::Table => match cosmos_scope(id) {
                Some(x) => x,
                None => continue,
            },
            _ => (id.to_string(), GrantKind::Role),
        };
        out.push(OutsideGrant {
            scope,
            role_id: role.id.to_string(),
            description: format!("nimbus: {} (uses existing {name}): {}", f.name, role.name),
            deployment: deployment_name(&f.name, &format!("uses-{name}")),
            kind: grant,
        });
    }
    for t in &f.triggers {
        let Some(name) = t.spec.resource() else {
            continue;
        };
        let Some((kind, id)) = existing(name) else {
            continue;
        };
        let (scope, role, grant) = match kind {
            ResourceKind::Table => {
                let Some((scope, grant)) = cosmos_scope(id) else {
                    continue;
                };
                // A `uses` of the container already reads it (and Contributor covers Reader).
                if out.iter().any(|g| g.scope == scope) {
                    continue;
                }
                (scope, roles::COSMOS_READER, grant)
            }
            ResourceKind::Topic => (
                format!(
                    "{id}/subscriptions/{}",
                    names::existing_subscription(&graph.service, &graph.stage, &f.name)
                ),
                roles::SERVICE_BUS_RECEIVER,
                GrantKind::Subscription,
            ),
            // Refused by validation (capabilities.toml).
            ResourceKind::Bucket | ResourceKind::Queue => continue,
        };
        out.push(OutsideGrant {
            scope,
            role_id: role.id.to_string(),
            description: format!(
                "nimbus: {} (trigger existing {name}): {}",
                f.name, role.name
            ),
            deployment: deployment_name(&f.name, &format!("trigger-{name}")),
            kind: grant,
        });
    }
    out
}

/// The data-plane scope of the existing Cosmos DB container `id`
/// (`<account id>/dbs/<database>/colls/<container>`) and its account.
fn cosmos_scope(id: &str) -> Option<(String, GrantKind)> {
    let parts = env::existing_parts(ResourceKind::Table, id)?;
    let account = id.split("/sqlDatabases/").next()?.to_string();
    let scope = format!(
        "{account}/dbs/{}/colls/{}",
        parts.get("database")?,
        parts.get("name")?
    );
    Some((scope, GrantKind::CosmosSql { account }))
}

/// The nested deployments that assign `f`'s [`outside_grants`] to the identity `identity_id`.
pub(super) fn grants(graph: &AppGraph, f: &FunctionNode, identity_id: &str) -> Vec<Value> {
    outside_grants(graph, f)
        .iter()
        .map(|g| nested(g, identity_id))
        .collect()
}

/// The resources of one grant's nested template: the role assignment (an ARM one, or a Cosmos
/// DB SQL one of the account), after the topic subscription it is on, when Nimbus creates one.
fn grant_resources(g: &OutsideGrant, below_group: bool) -> Vec<Value> {
    let scope = g.scope.as_str();
    let name = format!(
        "guid({}, parameters('principalId'), {})",
        lit(scope),
        lit(&g.role_id)
    );
    match &g.kind {
        GrantKind::CosmosSql { account } => {
            let account_name = account.rsplit('/').next().unwrap_or_default();
            vec![json!({
                "type": "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments",
                "apiVersion": api::COSMOS,
                "name": expr(format!("concat({}, '/', {name})", lit(account_name))),
                "properties": {
                    "roleDefinitionId": format!("{account}/sqlRoleDefinitions/{}", g.role_id),
                    "principalId": expr("parameters('principalId')"),
                    "scope": scope,
                },
            })]
        }
        GrantKind::Role | GrantKind::Subscription => {
            let mut assignment = json!({
                "type": "Microsoft.Authorization/roleAssignments",
                "apiVersion": api::ROLES,
                "name": expr(name),
                "properties": {
                    "roleDefinitionId": expr(format!(
                        "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', {})",
                        lit(&g.role_id)
                    )),
                    "principalId": expr("parameters('principalId')"),
                    "principalType": "ServicePrincipal",
                    "description": g.description,
                },
            });
            if below_group {
                assignment["scope"] = json!(scope);
            }
            if g.kind != GrantKind::Subscription {
                return vec![assignment];
            }
            // `<…>/namespaces/<ns>/topics/<topic>/subscriptions/<name>`.
            let path: Vec<&str> = scope.split('/').collect();
            let n = path.len();
            let (ns, topic, sub) = (path[n - 5], path[n - 3], path[n - 1]);
            assignment["dependsOn"] = json!([scope]);
            let subscription = json!({
                "type": "Microsoft.ServiceBus/namespaces/topics/subscriptions",
                "apiVersion": api::SERVICE_BUS,
                "name": format!("{ns}/{topic}/{sub}"),
                "properties": {
                    "maxDeliveryCount": 10,
                    "lockDuration": "PT5M",
                    "deadLetteringOnMessageExpiration": true,
                },
            });
            vec![subscription, assignment]
        }
    }
}

/// One nested deployment at the scope's subscription (and group) holding the grant.
fn nested(g: &OutsideGrant, identity_id: &str) -> Value {
    let scope = g.scope.as_str();
    let parts: Vec<&str> = scope.split('/').collect();
    let subscription = parts.get(2).copied().unwrap_or_default();
    let group = match parts.get(3) {
        Some(k) if k.eq_ignore_ascii_case("resourceGroups") => parts.get(4).copied(),
        _ => None,
    };
    // Below a resource group, the assignment names the resource it applies to.
    let below_group = group.is_some() && parts.len() > 5;
    let resources = grant_resources(g, below_group);

    let schema = if group.is_some() {
        "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
    } else {
        "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#"
    };
    let mut deployment = json!({
        "type": "Microsoft.Resources/deployments",
        "apiVersion": DEPLOYMENTS_API,
        "name": g.deployment,
        "subscriptionId": subscription,
        "dependsOn": [expr(identity_id)],
        "properties": {
            "mode": "Incremental",
            "expressionEvaluationOptions": { "scope": "inner" },
            "parameters": {
                "principalId": {
                    "value": expr(format!("reference({identity_id}, '{}').principalId", api::IDENTITY)),
                },
            },
            "template": {
                "$schema": schema,
                "contentVersion": "1.0.0.0",
                "parameters": { "principalId": { "type": "string" } },
                "resources": resources,
            },
        },
    });
    match group {
        Some(g) => deployment["resourceGroup"] = json!(g),
        // A subscription-level deployment needs a location for its own record.
        None => deployment["location"] = expr("parameters('location')"),
    }
    deployment
}

/// ARM's `guid(...)` template function: the name-based (version 5, SHA-1) UUID of the arguments
/// joined with `-`, in ARM's namespace `11fb06fb-712d-4ddd-98c7-e71bbd588830`.
pub fn arm_guid(args: &[&str]) -> String {
    use sha1::{Digest, Sha1};
    const NAMESPACE: [u8; 16] = [
        0x11, 0xfb, 0x06, 0xfb, 0x71, 0x2d, 0x4d, 0xdd, 0x98, 0xc7, 0xe7, 0x1b, 0xbd, 0x58, 0x88,
        0x30,
    ];
    let mut h = Sha1::new();
    h.update(NAMESPACE);
    h.update(args.join("-").as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The ids of what [`grants`] makes for `f` once its identity's principal id is
/// `principal_id`, in the order `remove` deletes them: each role assignment
/// (`<scope>/providers/Microsoft.Authorization/roleAssignments/<guid>`, or a Cosmos DB SQL one,
/// `<account>/sqlRoleAssignments/<guid>`), then the topic subscription it was on, if Nimbus made
/// one. Nothing else of an existing resource.
pub fn outside_assignments(graph: &AppGraph, f: &FunctionNode, principal_id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for g in outside_grants(graph, f) {
        let name = arm_guid(&[&g.scope, principal_id, &g.role_id]);
        match &g.kind {
            GrantKind::CosmosSql { account } => {
                out.push(format!("{account}/sqlRoleAssignments/{name}"));
            }
            GrantKind::Role | GrantKind::Subscription => out.push(format!(
                "{}/providers/Microsoft.Authorization/roleAssignments/{name}",
                g.scope
            )),
        }
        if g.kind == GrantKind::Subscription {
            out.push(g.scope.clone());
        }
    }
    out
}

/// `nimbus-<function>-<what>` (`permission-<n>`, `uses-<resource>`), within the 64 characters
/// of a deployment name.
pub(super) fn deployment_name(function: &str, what: &str) -> String {
    let suffix = format!("-{what}");
    let mut head = format!("nimbus-{function}");
    head.truncate(64 - suffix.len());
    head + &suffix
}

/// The `alwaysReady` entries of an app whose function keeps `count` instances ready.
pub(super) fn always_ready(a: &App, count: u32) -> Value {
    let mut names: Vec<String> = Vec::new();
    for b in &a.bindings {
        let name = match &b.trigger {
            Trigger::Http { .. } => "http".to_string(),
            Trigger::Blob { .. } => "blob".to_string(),
            _ => format!("function:{}", b.name),
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.sort();
    Value::Array(
        names
            .into_iter()
            .map(|name| json!({ "name": name, "instanceCount": count }))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_arms() {
        // ARM's documented algorithm, as Python computes it:
        // uuid.uuid5(uuid.UUID("11fb06fb-712d-4ddd-98c7-e71bbd588830"), "a-b-c").
        assert_eq!(
            arm_guid(&["a", "b", "c"]),
            "a98fa280-e03f-5afa-8d8e-92d0a9c201e8"
        );
    }

    #[test]
    fn deployment_names_fit() {
        assert_eq!(
            deployment_name("send-mail", "permission-1"),
            "nimbus-send-mail-permission-1"
        );
        assert_eq!(deployment_name(&"x".repeat(80), "permission-12").len(), 64);
    }
}
