//! Secrets on Azure: one Key Vault per service and stage, and Key Vault references.
//!
//! - **vault** (`Microsoft.KeyVault/vaults`, when the manifest declares secrets): standard SKU,
//!   the subscription's tenant (`subscription().tenantId`), **RBAC authorization**
//!   (`enableRbacAuthorization`: no access policies; every permission is a role assignment),
//!   soft delete as Azure has it by default (on, 90 days: a deleted value or vault can be
//!   recovered for 90 days). **Purge protection is left off**: with it on, neither a secret
//!   removed with `nimbus secret rm` nor the vault of a stage removed with `nimbus remove
//!   --force` could be purged, and their names would stay taken for the 90 days; the values'
//!   source of truth is the person or pipeline that sets them, so soft delete is the protection
//!   that matters here. The vault holds values, so like the data storage account it is data:
//!   dropped from the template or removed only with `force`.
//! - **no secret resources**: a `Microsoft.KeyVault/vaults/secrets` resource needs its value in
//!   the template, which would put the value in the template, the deployment's record and the
//!   export. Values are set by `nimbus secret set -p azure` on the data plane (which also
//!   creates the vault, with this body, when it does not exist yet), and `deploy` checks that
//!   every secret a function reads has a value before it changes anything.
//! - **role assignments**, per function and per secret it reads: Key Vault Secrets User for the
//!   app's user-assigned identity, scoped to that one secret
//!   (`<vault id>/secrets/<name>`, an extension resource on the secret; the secret exists when
//!   the deployment runs because of the check above);
//! - **app settings**: each secret variable is a Key Vault reference,
//!   `@Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>/)`,
//!   versionless, so the platform resolves the newest version, with the app's identity
//!   (`keyVaultReferenceIdentity`, since the apps' identity is user-assigned). A new value reaches
//!   running apps when the platform refreshes references (within 24 hours), or at once on a
//!   restart or any change of the app's configuration.

use nimbus_graph::FunctionNode;
use serde_json::{Value, json};

use super::{Template, api, expr, lit, rid, var};
use crate::names;
use crate::roles;

/// Variable name of the vault.
pub(super) const KEY_VAULT: &str = "keyVault";

/// The vault's resource id expression.
pub(super) fn vault_id() -> String {
    rid("Microsoft.KeyVault/vaults", &[var(KEY_VAULT)])
}

/// A secret's resource id expression (the scope of its role assignments).
fn secret_id(secret: &str) -> String {
    rid(
        "Microsoft.KeyVault/vaults/secrets",
        &[var(KEY_VAULT), lit(secret)],
    )
}

/// The vault's `properties`, with `tenant` the tenant id (an expression in the template, the
/// subscription's tenant when `nimbus secret set` creates the vault).
pub fn vault_properties(tenant: Value) -> Value {
    json!({
        "tenantId": tenant,
        "sku": { "family": "A", "name": "standard" },
        "enableRbacAuthorization": true,
        "enableSoftDelete": true,
        "softDeleteRetentionInDays": SOFT_DELETE_DAYS,
        "publicNetworkAccess": "Enabled",
        "networkAcls": { "bypass": "AzureServices", "defaultAction": "Allow" },
    })
}

/// Days a deleted secret or vault can be recovered (Azure's default and maximum).
pub const SOFT_DELETE_DAYS: u32 = 90;

impl Template<'_> {
    /// The vault, when the manifest declares secrets.
    pub(super) fn key_vault(&mut self) {
        let (service, stage) = (self.service().to_string(), self.stage().to_string());
        self.global(KEY_VAULT, names::key_vault_prefix(&service, &stage), true);
        self.resources.push(json!({
            "type": "Microsoft.KeyVault/vaults",
            "apiVersion": api::KEY_VAULT,
            "name": expr(var(KEY_VAULT)),
            "location": expr("parameters('location')"),
            "tags": self.tags,
            "properties": vault_properties(expr("subscription().tenantId")),
        }));
    }

    /// `f`'s Key Vault Secrets User assignment on each secret it reads (`identity_id` its
    /// identity's resource id expression); their ids, for the code to depend on.
    pub(super) fn secret_grants(&mut self, f: &FunctionNode, identity_id: &str) -> Vec<Value> {
        let mut read: Vec<&String> = f.secrets.values().collect();
        read.sort();
        read.dedup();
        let role = roles::KEY_VAULT_SECRETS_USER;
        let mut ids = Vec::new();
        for secret in read {
            let scope = secret_id(secret);
            let name = format!("guid({scope}, {identity_id}, {})", lit(role.id));
            self.resources.push(json!({
                "type": "Microsoft.Authorization/roleAssignments",
                "apiVersion": api::ROLES,
                "name": expr(&name),
                "scope": expr(&scope),
                "dependsOn": [expr(vault_id()), expr(identity_id)],
                "properties": {
                    "roleDefinitionId": expr(format!(
                        "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', {})",
                        lit(role.id)
                    )),
                    "principalId": expr(format!(
                        "reference({identity_id}, '{}').principalId",
                        api::IDENTITY
                    )),
                    "principalType": "ServicePrincipal",
                    "description": format!("nimbus: {} (secret {secret}): {}", f.name, role.name),
                },
            }));
            ids.push(expr(format!(
                "extensionResourceId({scope}, 'Microsoft.Authorization/roleAssignments', {name})"
            )));
        }
        ids
    }
}

/// The app setting of a variable that reads `secret`: a versionless Key Vault reference.
pub(super) fn reference(secret: &str) -> Value {
    expr(format!(
        "concat('@Microsoft.KeyVault(SecretUri=', reference({}, '{}').vaultUri, 'secrets/{secret}/)')",
        vault_id(),
        api::KEY_VAULT
    ))
}
