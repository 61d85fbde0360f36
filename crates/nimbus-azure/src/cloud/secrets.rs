//! Secret values in the stage's Key Vault, for `nimbus secret set/list/rm -p azure` and for the
//! check `plan`/`deploy` run before anything changes.
//!
//! The vault is `<service>-<stage>-<suffix>` ([`crate::names::key_vault_prefix`]) in the
//! stage's resource group; each neutral secret is the Key Vault secret of the same name. The
//! data plane is Key Vault's REST API (`https://<vault>.vault.azure.net`, api-version
//! [`DATA_API`], a token for `https://vault.azure.net`; `NIMBUS_AZURE_KEYVAULT_ENDPOINT`, with
//! `{vault}`, overrides the URL):
//!
//! - `set` creates the resource group and the vault when they do not exist yet (an ARM PUT with
//!   the template's vault body, [`crate::template::vault_properties`], the subscription's
//!   tenant): so `nimbus secret set -p azure X` works before the first deploy, and the deploy
//!   then finds the vault as its template declares it. Then `PUT /secrets/<name>` with
//!   `{"value"}` adds a version; a secret deleted by `rm` (soft-deleted, recoverable) is
//!   recovered first (`POST /deletedsecrets/<name>/recover`), as Key Vault refuses a new value
//!   for a deleted name otherwise;
//! - `states` lists the vault's secrets (`GET /secrets`, following `nextLink`): names and when
//!   each was last updated, never a value;
//! - `remove` deletes a secret (`DELETE /secrets/<name>`: soft delete, recoverable for the vault's
//!   retention, 90 days).
//!
//! Values travel only in the `PUT` body; no function here returns, logs or puts one in an error.
//! Setting values needs a data-plane role on the vault (Key Vault Secrets Officer): creating
//! the vault does not give one, RBAC authorization has no owner access.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use azure_core::http::Method;
use nimbus_graph::AppGraph;
use nimbus_provider::ProviderId;
use serde_json::{Value, json};

use super::{Azure, OPERATION_LIMIT};
use crate::arm::RESOURCES_API;
use crate::error::AzureError;
use crate::names;
use crate::template::{self, api};

/// The Key Vault data-plane API version nimbus speaks.
pub const DATA_API: &str = "7.4";

/// The token audience of Key Vault's data plane.
pub const DATA_SCOPE: &str = "https://vault.azure.net/.default";

/// API version of `GET /subscriptions/{id}` (the tenant of a new vault).
const SUBSCRIPTIONS_API: &str = "2022-12-01";

impl Azure {
    /// The stage's vault name.
    pub fn vault_name(&self) -> String {
        format!(
            "{}-{}",
            names::key_vault_prefix(&self.service, &self.stage),
            self.suffix
        )
    }

    pub(super) fn vault_path(&self) -> String {
        format!(
            "{}/providers/Microsoft.KeyVault/vaults/{}",
            self.rg_path(),
            self.vault_name()
        )
    }

    /// The vault's data-plane URL, without a trailing `/`.
    pub fn vault_url(&self) -> String {
        let vault = self.vault_name();
        match &self.keyvault_endpoint {
            Some(t) => t
                .replace("{vault}", &vault)
                .trim_end_matches('/')
                .to_string(),
            None => format!("https://{vault}.vault.azure.net"),
        }
    }

    fn secret_url(&self, path: &str) -> String {
        format!("{}{path}?api-version={DATA_API}", self.vault_url())
    }

    /// Whether the stage's vault exists.
    async fn vault_exists(&self) -> Result<bool, AzureError> {
        let path = format!("{}?api-version={}", self.vault_path(), api::KEY_VAULT);
        Ok(self.arm.get(&path).await?.is_some())
    }

    /// Creates the vault when it does not exist (and its resource group).
    async fn ensure_vault(&self) -> Result<(), AzureError> {
        if self.vault_exists().await? {
            return Ok(());
        }
        self.ensure_resource_group().await?;
        let subscription = self
            .arm
            .call(
                Method::Get,
                &format!(
                    "/subscriptions/{}?api-version={SUBSCRIPTIONS_API}",
                    self.subscription
                ),
                None,
            )
            .await?;
        let tenant = subscription.body["tenantId"]
            .as_str()
            .ok_or_else(|| AzureError::Api {
                operation: format!("GET /subscriptions/{}", self.subscription),
                status: Some(200),
                code: None,
                message: "the subscription has no `tenantId`".into(),
            })?
            .to_string();
        let body = json!({
            "location": self.location().await?,
            "tags": { "nimbus-service": self.service, "nimbus-stage": self.stage },
            "properties": template::vault_properties(json!(tenant)),
        });
        let path = format!("{}?api-version={}", self.vault_path(), api::KEY_VAULT);
        let r = self.arm.call(Method::Put, &path, Some(&body)).await?;
        self.arm
            .wait(
                &format!("key vault {}", self.vault_name()),
                r,
                OPERATION_LIMIT,
            )
            .await?;
        Ok(())
    }

    /// The vault's location, when it exists.
    pub(super) async fn vault_location(&self) -> Result<Option<String>, AzureError> {
        let path = format!("{}?api-version={}", self.vault_path(), api::KEY_VAULT);
        Ok(self
            .arm
            .get(&path)
            .await?
            .and_then(|v| v["location"].as_str().map(String::from)))
    }

    /// Purges the deleted vault (`remove --force`): a deleted vault is kept, and its name taken,
    /// for its soft-delete retention otherwise. Purge protection is off, so this is allowed.
    pub(super) async fn purge_vault(&self, location: &str) -> Result<(), AzureError> {
        let path = format!(
            "/subscriptions/{}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{}/purge?api-version={}",
            self.subscription,
            self.vault_name(),
            api::KEY_VAULT
        );
        let r = self.arm.call(Method::Post, &path, None).await?;
        self.arm
            .wait(
                &format!("purging key vault {}", self.vault_name()),
                r,
                OPERATION_LIMIT,
            )
            .await?;
        Ok(())
    }

    /// Stores `value` as the newest version of secret `name`, creating the vault first when
    /// needed. Errs before any call when the value is over Key Vault's limit.
    pub async fn set_secret(&self, name: &str, value: &str) -> Result<(), AzureError> {
        let limit = ProviderId::Azure.capabilities().secrets.max_value_bytes;
        if value.len() > limit {
            return Err(AzureError::Settings {
                message: format!(
                    "the value of secret `{name}` is {} bytes, over Key Vault's limit of {limit}",
                    value.len()
                ),
            });
        }
        self.ensure_vault().await?;
        let url = self.secret_url(&format!("/secrets/{name}"));
        let body = json!({ "value": value });
        let r = self.vault.send(Method::Put, &url, Some(&body)).await?;
        if r.status == 409 && inner_code(&r.body) == Some("ObjectIsDeletedButRecoverable") {
            self.recover(name).await?;
            let r = self.vault.send(Method::Put, &url, Some(&body)).await?;
            return self.vault_ok(Method::Put, name, &r);
        }
        self.vault_ok(Method::Put, name, &r)
    }

    /// Recovers soft-deleted secret `name` and waits until it is back.
    async fn recover(&self, name: &str) -> Result<(), AzureError> {
        let url = self.secret_url(&format!("/deletedsecrets/{name}/recover"));
        let r = self.vault.send(Method::Post, &url, None).await?;
        self.vault_ok(Method::Post, name, &r)?;
        let started = Instant::now();
        let get = self.secret_url(&format!("/secrets/{name}/"));
        loop {
            let r = self.vault.send(Method::Get, &get, None).await?;
            if r.status == 200 {
                return Ok(());
            }
            if r.status != 404 || started.elapsed() > Duration::from_secs(120) {
                return self.vault_ok(Method::Get, name, &r);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Secret name → when its value was last set (RFC 3339), for every secret of the vault
    /// (none when the vault does not exist yet). Never reads a value.
    pub async fn secret_states(&self) -> Result<BTreeMap<String, String>, AzureError> {
        let mut out = BTreeMap::new();
        if !self.vault_exists().await? {
            return Ok(out);
        }
        let mut next = Some(self.secret_url("/secrets"));
        while let Some(url) = next.take() {
            let r = self.vault.send(Method::Get, &url, None).await?;
            self.vault_ok(Method::Get, "", &r)?;
            for item in r.body["value"].as_array().into_iter().flatten() {
                let Some(name) = item["id"].as_str().and_then(|id| id.rsplit('/').next()) else {
                    continue;
                };
                if item["attributes"]["enabled"] == false {
                    continue;
                }
                let at = item["attributes"]["updated"]
                    .as_i64()
                    .or_else(|| item["attributes"]["created"].as_i64())
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default();
                out.insert(name.to_string(), at);
            }
            next = r.body["nextLink"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(|s| self.next_link(s));
        }
        Ok(out)
    }

    /// A `nextLink` on the endpoint nimbus talks to (an override keeps its base).
    fn next_link(&self, link: &str) -> String {
        match (&self.keyvault_endpoint, link.find("/secrets")) {
            (Some(_), Some(at)) => format!("{}{}", self.vault_url(), &link[at..]),
            _ => link.to_string(),
        }
    }

    /// Deletes secret `name` (soft delete); `false` when it had no value.
    pub async fn remove_secret(&self, name: &str) -> Result<bool, AzureError> {
        if !self.vault_exists().await? {
            return Ok(false);
        }
        let url = self.secret_url(&format!("/secrets/{name}"));
        let r = self.vault.send(Method::Delete, &url, None).await?;
        if r.status == 404 {
            return Ok(false);
        }
        self.vault_ok(Method::Delete, name, &r)?;
        Ok(true)
    }

    /// Before `plan` or `deploy` change or show anything: every secret a function reads has a
    /// value in the vault; otherwise [`AzureError::MissingSecrets`] with the commands.
    pub(super) async fn check_secret_values(&self, graph: &AppGraph) -> Result<(), AzureError> {
        let readers = graph.secret_readers();
        if readers.is_empty() {
            return Ok(());
        }
        let set = self.secret_states().await?;
        let missing: Vec<(String, Vec<String>)> = readers
            .iter()
            .filter(|(n, _)| !set.contains_key(**n))
            .map(|(n, r)| (n.to_string(), r.iter().map(|f| f.to_string()).collect()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(AzureError::MissingSecrets {
            missing: missing.iter().map(|(n, _)| n.clone()).collect(),
            message: nimbus_cloud::missing_secrets_message(
                "azure",
                &graph.stage,
                &format!("Key Vault `{}`", self.vault_name()),
                &missing,
            ),
        })
    }

    /// `r` as a success, or the Key Vault error (its code and message, never a request body).
    fn vault_ok(
        &self,
        method: Method,
        name: &str,
        r: &crate::arm::Response,
    ) -> Result<(), AzureError> {
        if (200..300).contains(&r.status) {
            return Ok(());
        }
        let what = if name.is_empty() {
            format!("key vault {}", self.vault_name())
        } else {
            format!("secret `{name}` in key vault {}", self.vault_name())
        };
        let error = &r.body["error"];
        let code = inner_code(&r.body)
            .or_else(|| error["code"].as_str())
            .map(String::from);
        let message = error["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {}", r.status), String::from);
        if r.status == 403 {
            return Err(AzureError::SecretAccess {
                vault: self.vault_name(),
                vault_id: self.vault_path(),
                message: match code {
                    Some(c) => format!("{c}: {message}"),
                    None => message,
                },
            });
        }
        Err(AzureError::Api {
            operation: format!("{} {what}", method_name(method)),
            status: Some(r.status),
            code,
            message,
        })
    }

    /// The region: `providers.azure.location`, else the resource group's.
    async fn location(&self) -> Result<String, AzureError> {
        if let Some(l) = &self.settings.location {
            return Ok(l.clone());
        }
        let rg = self
            .arm
            .get(&format!("{}?api-version={RESOURCES_API}", self.rg_path()))
            .await?
            .unwrap_or_default();
        Ok(rg["location"].as_str().unwrap_or("westeurope").to_string())
    }
}

/// Key Vault's most specific error code (`error.innererror.code`, e.g.
/// `ObjectIsDeletedButRecoverable`, `ForbiddenByRbac`).
fn inner_code(body: &Value) -> Option<&str> {
    body["error"]["innererror"]["code"].as_str()
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Put => "PUT",
        Method::Post => "POST",
        Method::Delete => "DELETE",
        _ => "REQUEST",
    }
}
