//! [`Azure`]: the `nimbus_cloud::Cloud` implementation for `-p azure`. ARM is the state of record.
//!
//! **deploy**: check the app (the same refusals as `nimbus validate`), create the resource group
//! when it is missing, create the deployment storage account when it is missing (a direct ARM
//! PUT: the lock and the packages must exist before the template runs), take the lock (a blob
//! lease, [`crate::storage`]), upload each app package to its container unless a blob of the
//! same content address is there, then PUT the template as the ARM deployment
//! `nimbus-<service>-<stage>` (Incremental) and poll it. An unchanged redeploy — the same
//! template and parameters as the last successful deployment, which ARM still reports as
//! `Succeeded` — makes no PUT, and reads nothing but the deployment; with `refresh` it runs
//! what-if first, and deploys the template again when what-if shows drift (a resource changed or
//! deleted outside nimbus, [`whatif`]), which puts it back. Resources an earlier deployment
//! created that the template no longer has are then deleted; data (the data storage account, its
//! containers and queues, the Cosmos DB account, its database and the tables' containers) only
//! with `force` (otherwise the deploy is refused before anything changes). What happened is
//! summarised per resource against the previous deployment's state
//! (`nimbus-state/<service>/<stage>/azure/state.json`).
//!
//! **plan**: ARM what-if on the same template, mapped to the engine's `Plan` by [`whatif`]
//! (`Create`, `Modify` → update, `NoChange` → same, resources the last deployment created that
//! the template drops → delete, and drift on the resources whose template did not change).
//! Without `refresh`, an unchanged template is planned against the state (everything `same`,
//! no what-if), because that is what deploy without `refresh` does. Read-only.
//!
//! **remove**: deletes what the deployments created, in reverse dependency order, keeping the
//! data (the data storage account, the Cosmos DB account, and so the deployment account holding
//! the state) unless `force`.
//!
//! **info**, **invoke**, **logs**: from the deployment's outputs; HTTP functions are called at
//! their URL (a function key from ARM when the route uses `api_key`), others through the
//! Functions admin API (`POST /admin/functions/<name>`, master key); logs come from the
//! Application Insights query API.
//!
//! Environment: `AZURE_SUBSCRIPTION_ID` (when the manifest names none), the credential variables
//! of [`crate::credential`], `NIMBUS_AZURE_ARM_ENDPOINT`, `NIMBUS_AZURE_STORAGE_ENDPOINT` +
//! `NIMBUS_AZURE_STORAGE_KEY` (the deployment account's blob endpoint and a key to sign an
//! account SAS with — Azurite's, in tests; otherwise the SAS comes from ARM's `ListAccountSas`),
//! `NIMBUS_AZURE_QUEUE_ENDPOINT` (the data account's queue endpoint, with the key above: the
//! queue tools, [`queues`]), `NIMBUS_AZURE_APP_ENDPOINT` (an app's base URL with `{app}`, instead of
//! `https://<host name>`), `NIMBUS_AZURE_LOGS_ENDPOINT` (instead of
//! `https://api.applicationinsights.io`) and `NIMBUS_AZURE_KEYVAULT_ENDPOINT` (the vault's
//! data-plane URL with `{vault}`, instead of `https://<vault>.vault.azure.net`).
//!
//! **Secrets** ([`secrets`]): `plan` and `deploy` first check that every secret a function reads
//! has a value in the stage's Key Vault (listing the missing ones with the commands that set
//! them); the vault is data, like the data storage account.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use azure_core::http::Method;
use nimbus_cloud::{
    Cloud, DeployOptions, Deployed, DnsRecord, Endpoint, FunctionInfo, Info, Invoked, LogLine,
    LogQuery, LogSink, Options, Progress, ResourceInfo, Target, Upload,
};
use nimbus_engine::{
    Action, CallCounts, LockOptions, Plan, PropertyChange, Report, ResourcePlan, Retained, Summary,
};
use nimbus_graph::{AppGraph, TriggerSpec};
use nimbus_manifest::ResourceKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::apps::{self, AzureSettings};
use crate::arm::{Arm, DEFAULT_ENDPOINT, RESOURCES_API};
use crate::credential::Credential;
use crate::error::AzureError;
use crate::names;
use crate::storage::{self, Access, BlobStore};
use crate::template::{self, api};

/// How long a template deployment may run.
const DEPLOY_LIMIT: Duration = Duration::from_secs(3600);
/// How long other operations may run.
const OPERATION_LIMIT: Duration = Duration::from_secs(900);
/// Version of `state.json`.
const STATE_FORMAT: u32 = 1;

/// The Azure provider, connected.
pub struct Azure {
    settings: AzureSettings,
    subscription: String,
    suffix: String,
    arm: Arm,
    /// Key Vault's data plane (its own token audience).
    vault: Arm,
    keyvault_endpoint: Option<String>,
    storage_override: Option<(String, String)>,
    /// `NIMBUS_AZURE_QUEUE_ENDPOINT` and the key to sign with (`NIMBUS_AZURE_STORAGE_KEY`).
    queue_override: Option<(String, String)>,
    app_endpoint: Option<String>,
    logs_endpoint: String,
    options: Options,
    service: String,
    stage: String,
}

impl std::fmt::Debug for Azure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Azure")
            .field("subscription", &self.subscription)
            .field("resource_group", &self.settings.resource_group)
            .field("arm", &self.arm)
            .finish()
    }
}

/// Connects to Azure for `graph`'s service and stage: `providers.azure` and the environment
/// (see the module docs). Makes no call yet.
pub async fn connect(graph: &AppGraph, options: Options) -> Result<Azure, AzureError> {
    connect_with(graph, options, &|name| std::env::var(name).ok()).await
}

/// [`connect`] with environment variables from `lookup` (tests; embedding).
pub async fn connect_with(
    graph: &AppGraph,
    options: Options,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Azure, AzureError> {
    let env = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let mut settings = AzureSettings::of(graph);
    let subscription = settings
        .subscription
        .clone()
        .or_else(|| env("AZURE_SUBSCRIPTION_ID"))
        .ok_or(AzureError::NoSubscription)?;
    settings.subscription = Some(subscription.clone());
    let credential = Credential::from_lookup(lookup)?;
    let endpoint = env("NIMBUS_AZURE_ARM_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into());
    let vault = Arm::new(
        &endpoint,
        credential.with_own_cache(),
        options.progress.clone(),
    )
    .with_audience(secrets::DATA_SCOPE);
    let arm = Arm::new(&endpoint, credential, options.progress.clone());
    let storage_override = match (
        env("NIMBUS_AZURE_STORAGE_ENDPOINT"),
        env("NIMBUS_AZURE_STORAGE_KEY"),
    ) {
        (Some(e), Some(k)) => Some((e, k)),
        // The key alone signs the queue endpoint's SAS (`NIMBUS_AZURE_QUEUE_ENDPOINT`).
        (None, Some(_)) if env("NIMBUS_AZURE_QUEUE_ENDPOINT").is_some() => None,
        (Some(_), None) | (None, Some(_)) => {
            return Err(AzureError::Settings {
                message: "NIMBUS_AZURE_STORAGE_ENDPOINT and NIMBUS_AZURE_STORAGE_KEY go together"
                    .into(),
            });
        }
        (None, None) => None,
    };
    let queue_override = match (
        env("NIMBUS_AZURE_QUEUE_ENDPOINT"),
        env("NIMBUS_AZURE_STORAGE_KEY"),
    ) {
        (Some(e), Some(k)) => Some((e, k)),
        (Some(_), None) => {
            return Err(AzureError::Settings {
                message: "NIMBUS_AZURE_QUEUE_ENDPOINT needs NIMBUS_AZURE_STORAGE_KEY (the key to sign a SAS with)".into(),
            });
        }
        _ => None,
    };
    Ok(Azure {
        suffix: names::suffix(
            &subscription,
            &settings.resource_group,
            &graph.service,
            &graph.stage,
        ),
        settings,
        subscription,
        arm,
        vault,
        keyvault_endpoint: env("NIMBUS_AZURE_KEYVAULT_ENDPOINT"),
        storage_override,
        queue_override,
        app_endpoint: env("NIMBUS_AZURE_APP_ENDPOINT"),
        logs_endpoint: env("NIMBUS_AZURE_LOGS_ENDPOINT")
            .unwrap_or_else(|| "https://api.applicationinsights.io".into()),
        options,
        service: graph.service.clone(),
        stage: graph.stage.clone(),
    })
}

/// What nimbus remembers of the last successful deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// Increases with every deploy that changed something.
    pub serial: u64,
    /// SHA-256 of the template and parameters last deployed.
    pub hash: String,
    /// Logical id (`<type>/<name>`) → SHA-256 of that template resource.
    pub resources: BTreeMap<String, String>,
    /// ARM ids the deployments created (what remove deletes).
    pub created: BTreeSet<String>,
    /// The deployment's outputs.
    pub outputs: BTreeMap<String, Value>,
}

/// One resource of the template: logical id, ARM type, ARM id (when its name is computable),
/// and the SHA-256 of its template JSON.
#[derive(Debug, Clone)]
struct Planned {
    logical: String,
    kind: String,
    id: Option<String>,
    hash: String,
}

mod existing;
pub mod queues;
mod secrets;
mod whatif;

pub use secrets::{DATA_API, DATA_SCOPE};

/// SHA-256 of a template and its parameters: what the state remembers as `hash`.
fn template_hash(doc: &Value, parameters: &Value) -> String {
    sha(&serde_json::to_vec(&json!({ "template": doc, "parameters": parameters })).expect("json"))
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Splits `a, b(c, d), 'e,f'` at top-level commas.
fn split_args(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in s.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The concrete value of the name expressions the template uses (`'lit'`,
/// `variables('v')`, `parameters('suffix')`, `concat(...)`), or `None`.
fn resolve(e: &str, vars: &serde_json::Map<String, Value>, suffix: &str) -> Option<String> {
    let e = e.trim();
    if let Some(l) = e.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
        return Some(l.replace("''", "'"));
    }
    if e == "parameters('suffix')" {
        return Some(suffix.to_string());
    }
    if let Some(v) = e
        .strip_prefix("variables('")
        .and_then(|x| x.strip_suffix("')"))
    {
        return value_of(vars.get(v)?, vars, suffix);
    }
    if let Some(args) = e.strip_prefix("concat(").and_then(|x| x.strip_suffix(')')) {
        return split_args(args)
            .iter()
            .map(|a| resolve(a, vars, suffix))
            .collect();
    }
    None
}

fn value_of(v: &Value, vars: &serde_json::Map<String, Value>, suffix: &str) -> Option<String> {
    let s = v.as_str()?;
    match s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        Some(e) if !s.starts_with("[[") => resolve(e, vars, suffix),
        _ => Some(s.to_string()),
    }
}

/// An ARM resource id from a type and a `/`-separated name, in resource group scope.
fn arm_id(rg_id: &str, kind: &str, name: &str) -> String {
    let mut parts = kind.split('/');
    let namespace = parts.next().unwrap_or_default();
    let tail: Vec<String> = parts
        .zip(name.split('/'))
        .map(|(t, n)| format!("{t}/{n}"))
        .collect();
    format!("{rg_id}/providers/{namespace}/{}", tail.join("/"))
}

/// A storage account's service that Nimbus reaches with an account SAS.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StorageService {
    /// Blobs: the deployment's packages and state.
    Blob,
    /// Queues: `nimbus queue …`.
    Queue,
}

impl StorageService {
    /// Its key in `primaryEndpoints` and its host name part.
    fn name(self) -> &'static str {
        match self {
            StorageService::Blob => "blob",
            StorageService::Queue => "queue",
        }
    }

    /// Its `signedServices` letter and the permissions Nimbus signs for.
    fn sas(self) -> (&'static str, &'static str) {
        match self {
            StorageService::Blob => ("b", "racwdl"),
            StorageService::Queue => ("q", "rwdlacup"),
        }
    }
}

impl Azure {
    fn rg_path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription, self.settings.resource_group
        )
    }

    fn deployment_name(&self) -> String {
        names::deployment(&self.service, &self.stage)
    }

    fn deployment_path(&self) -> String {
        format!(
            "{}/providers/Microsoft.Resources/deployments/{}",
            self.rg_path(),
            self.deployment_name()
        )
    }

    fn deployment_account(&self) -> String {
        format!(
            "{}{}",
            names::deployment_account_prefix(&self.service, &self.stage),
            self.suffix
        )
    }

    fn data_account(&self) -> String {
        format!(
            "{}{}",
            names::data_account_prefix(&self.service, &self.stage),
            self.suffix
        )
    }

    fn account_path(&self, account: &str) -> String {
        format!(
            "{}/providers/Microsoft.Storage/storageAccounts/{account}",
            self.rg_path()
        )
    }

    fn scope(&self) -> String {
        format!("{}/{}", self.service, self.stage)
    }

    fn check(&self, graph: &AppGraph) -> Result<(), AzureError> {
        if graph.provider != "azure" {
            return Err(AzureError::WrongProvider {
                what: "app graph",
                provider: graph.provider.clone(),
            });
        }
        Ok(())
    }

    /// The template of `target` and the parameters nimbus passes.
    fn template(&self, target: &Target<'_>) -> Result<(Value, Value), AzureError> {
        let text = template::template(target.graph, target.build, &self.settings)?;
        let doc: Value = serde_json::from_str(&text).expect("the template is JSON");
        let mut parameters = json!({ "suffix": { "value": self.suffix } });
        if let Some(l) = &self.settings.location {
            parameters["location"] = json!({ "value": l });
        }
        Ok((doc, parameters))
    }

    /// Every template resource with its logical id and hash.
    fn planned(&self, doc: &Value) -> Vec<Planned> {
        let vars = doc["variables"].as_object().cloned().unwrap_or_default();
        let rg_id = self.rg_path();
        doc["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let kind = r["type"].as_str().unwrap_or_default().to_string();
                let name = value_of(&r["name"], &vars, &self.suffix);
                let logical = match (&name, r["properties"]["description"].as_str()) {
                    (Some(n), _) => format!("{kind}/{n}"),
                    (None, Some(d)) => format!("{kind}/{d}"),
                    (None, None) => format!("{kind}/{}", r["name"]),
                };
                Planned {
                    id: name
                        .filter(|_| r.get("scope").is_none())
                        .map(|n| arm_id(&rg_id, &kind, &n)),
                    logical,
                    kind,
                    hash: sha(&serde_json::to_vec(r).expect("json")),
                }
            })
            .collect()
    }

    /// The Cosmos DB account of the tables.
    fn cosmos_path(&self) -> String {
        format!(
            "{}/providers/Microsoft.DocumentDB/databaseAccounts/{}-{}",
            self.rg_path(),
            names::cosmos_account_prefix(&self.service, &self.stage),
            self.suffix
        )
    }

    /// The ARM ids of data resources in `ids`: the data account, the Cosmos DB account, and
    /// everything under them but role assignments.
    fn data_ids<'a>(&self, ids: impl Iterator<Item = &'a String>) -> BTreeSet<String> {
        let homes = [
            self.account_path(&self.data_account()).to_ascii_lowercase(),
            self.cosmos_path().to_ascii_lowercase(),
            self.vault_path().to_ascii_lowercase(),
        ];
        ids.filter(|id| {
            let l = id.to_ascii_lowercase();
            // Role assignments scoped to data resources are extension resources: not data.
            homes
                .iter()
                .any(|h| l == *h || l.starts_with(&format!("{h}/")))
                && !l.contains("/providers/microsoft.authorization/")
                && !l.contains("/sqlroleassignments/")
        })
        .cloned()
        .collect()
    }

    async fn ensure_resource_group(&self) -> Result<(), AzureError> {
        let path = format!("{}?api-version={RESOURCES_API}", self.rg_path());
        if self.arm.get(&path).await?.is_some() {
            return Ok(());
        }
        let location = self
            .settings
            .location
            .clone()
            .ok_or_else(|| AzureError::NoLocation {
                resource_group: self.settings.resource_group.clone(),
            })?;
        self.arm
            .call(
                Method::Put,
                &path,
                Some(&json!({ "location": location, "tags": { "nimbus-service": self.service, "nimbus-stage": self.stage } })),
            )
            .await?;
        Ok(())
    }

    /// Creates the deployment storage account when it is missing (with the template's body).
    async fn ensure_deployment_account(&self, doc: &Value) -> Result<(), AzureError> {
        let account = self.deployment_account();
        let path = format!(
            "{}?api-version={}",
            self.account_path(&account),
            api::STORAGE
        );
        if self.arm.get(&path).await?.is_some() {
            return Ok(());
        }
        let location = match &self.settings.location {
            Some(l) => l.clone(),
            None => {
                let rg = self
                    .arm
                    .get(&format!("{}?api-version={RESOURCES_API}", self.rg_path()))
                    .await?
                    .unwrap_or_default();
                rg["location"].as_str().unwrap_or("westeurope").to_string()
            }
        };
        let body = doc["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| {
                r["type"] == "Microsoft.Storage/storageAccounts"
                    && r["name"] == "[variables('deploymentAccount')]"
            })
            .cloned()
            .unwrap_or_default();
        let request = json!({
            "location": location,
            "sku": body["sku"],
            "kind": body["kind"],
            "tags": body["tags"],
            "properties": body["properties"],
        });
        let r = self.arm.call(Method::Put, &path, Some(&request)).await?;
        self.arm
            .wait(&format!("storage account {account}"), r, OPERATION_LIMIT)
            .await?;
        Ok(())
    }

    /// The deployment account's blob service.
    async fn store(&self) -> Result<BlobStore, AzureError> {
        let account = self.deployment_account();
        let (endpoint, sas, _) = self
            .service_access(
                self.storage_override.as_ref(),
                &account,
                StorageService::Blob,
                4,
                || format!("the deployment storage account `{account}` does not exist"),
            )
            .await?;
        Ok(BlobStore::new(&endpoint, Access::Sas(sas)))
    }

    /// Where `service` of the storage `account` is, an account SAS for it valid `hours`, and the
    /// account's name: with `over` (an emulator's endpoint and key), signed here for the account
    /// its endpoint names (else `account`); otherwise read from ARM (`primaryEndpoints`,
    /// `ListAccountSas`), failing with `missing` when the account does not exist.
    pub(crate) async fn service_access(
        &self,
        over: Option<&(String, String)>,
        account: &str,
        service: StorageService,
        hours: i64,
        missing: impl FnOnce() -> String,
    ) -> Result<(String, String, String), AzureError> {
        let expiry = (chrono::Utc::now() + chrono::Duration::hours(hours))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let (code, permissions) = service.sas();
        if let Some((endpoint, key)) = over {
            let named = endpoint
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|s| !s.contains('.') && !s.contains(':'))
                .unwrap_or(account);
            let sas = crate::sas::account_sas_for(named, key, &expiry, code, permissions)?;
            return Ok((endpoint.clone(), sas, named.to_string()));
        }
        let path = self.account_path(account);
        let info = self
            .arm
            .get(&format!("{path}?api-version={}", api::STORAGE))
            .await?
            .ok_or_else(|| AzureError::Settings { message: missing() })?;
        let name = service.name();
        let endpoint = info["properties"]["primaryEndpoints"][name]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("https://{account}.{name}.core.windows.net"));
        let answer = self
            .arm
            .call(
                Method::Post,
                &format!("{path}/ListAccountSas?api-version={}", api::STORAGE),
                Some(&json!({
                    "signedServices": code,
                    "signedResourceTypes": "sco",
                    "signedPermission": permissions,
                    "signedProtocol": "https",
                    "signedExpiry": expiry,
                })),
            )
            .await?;
        let sas = answer.body["accountSasToken"]
            .as_str()
            .ok_or_else(|| AzureError::Api {
                operation: format!("list an account SAS of `{account}`"),
                status: Some(answer.status),
                code: None,
                message: "no accountSasToken in the answer".into(),
            })?;
        Ok((endpoint, sas.to_string(), account.to_string()))
    }

    async fn read_state(&self, store: &BlobStore) -> Result<Option<State>, AzureError> {
        let blob = names::state_blob(&self.service, &self.stage);
        match store.get(names::STATE_CONTAINER, &blob).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).map(Some).map_err(|source| {
                AzureError::CorruptState {
                    location: store.blob_url(names::STATE_CONTAINER, &blob),
                    source,
                }
            }),
            Ok(None) => Ok(None),
            Err(AzureError::Api {
                status: Some(404), ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn write_state(&self, store: &BlobStore, state: &State) -> Result<(), AzureError> {
        let mut bytes = serde_json::to_vec_pretty(state).expect("json");
        bytes.push(b'\n');
        store
            .put(
                names::STATE_CONTAINER,
                &names::state_blob(&self.service, &self.stage),
                bytes,
                None,
            )
            .await
    }

    /// Takes the deployment's lock (a lease on its lock blob) for `operation`.
    async fn lock(&self, store: &BlobStore, operation: &str) -> Result<storage::Lease, AzureError> {
        let options = LockOptions {
            timeout: self.options.lock_timeout,
            ..LockOptions::default()
        };
        storage::lock(
            store,
            names::STATE_CONTAINER,
            &names::lock_blob(&self.service, &self.stage),
            &self.scope(),
            operation,
            &options,
        )
        .await
    }

    /// The calls made since `start` (a snapshot of [`Azure::calls`]).
    fn calls_since(&self, start: &CallCounts) -> CallCounts {
        let now = self.calls();
        CallCounts {
            reads: now.reads - start.reads,
            creates: now.creates - start.creates,
            updates: now.updates - start.updates,
            deletes: now.deletes - start.deletes,
        }
    }

    fn calls(&self) -> CallCounts {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.arm.calls;
        CallCounts {
            reads: c.get.load(Relaxed) + c.post.load(Relaxed),
            creates: c.put.load(Relaxed),
            updates: 0,
            deletes: c.delete.load(Relaxed),
        }
    }

    /// Uploads the app packages (skipping those already there).
    async fn upload(
        &self,
        target: &Target<'_>,
        store: &BlobStore,
    ) -> Result<Vec<Upload>, AzureError> {
        let mut uploads = Vec::new();
        for app in apps::apps(target.graph)? {
            let artifact = target.build.functions.get(&app.function).ok_or_else(|| {
                AzureError::MissingArtifact {
                    function: app.function.clone(),
                }
            })?;
            let container = names::app_container(&app.function);
            let blob =
                names::package_blob(&template::package_id(target.graph, target.build, &app)?);
            store.ensure_container(&container).await?;
            let location = store.blob_url(&container, &blob);
            let (bytes, skipped) = if store.exists(&container, &blob).await? {
                (artifact.size, true)
            } else {
                let package = crate::package::assemble(
                    target.graph,
                    &app,
                    &target.build_dir.join(&artifact.file),
                )?;
                let n = package.len() as u64;
                let written = store.put_if_absent(&container, &blob, package).await?;
                (n, !written)
            };
            let u = Upload {
                function: app.function.clone(),
                location,
                bytes,
                skipped,
            };
            self.options.emit(Progress::Upload(u.clone()));
            uploads.push(u);
        }
        Ok(uploads)
    }

    /// The role assignments the template's nested deployments made outside the template's own
    /// resources, for the functions' `permissions.azure` and their `uses` of existing resources, named by their identities' principal ids (an
    /// identity already gone has none left to find).
    async fn outside_assignments(&self, graph: &AppGraph) -> Result<Vec<String>, AzureError> {
        let mut out = Vec::new();
        for f in graph
            .functions
            .values()
            .filter(|f| !template::outside_grants(graph, f).is_empty())
        {
            let identity = format!(
                "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}?api-version={}",
                self.rg_path(),
                names::identity(&graph.service, &graph.stage, &f.name),
                api::IDENTITY
            );
            let Some(found) = self.arm.get(&identity).await? else {
                continue;
            };
            if let Some(principal) = found["properties"]["principalId"].as_str() {
                out.extend(template::outside_assignments(graph, f, principal));
            }
        }
        Ok(out)
    }

    async fn delete_ids(&self, ids: &[String]) -> Result<usize, AzureError> {
        let mut n = 0;
        for id in ids {
            let version = api_version_of(id);
            let r = self
                .arm
                .send(Method::Delete, &format!("{id}?api-version={version}"), None)
                .await?;
            match r.status {
                200 | 204 | 404 => {}
                201 | 202 => {
                    self.arm
                        .wait(&format!("delete {id}"), r, OPERATION_LIMIT)
                        .await?;
                }
                s => {
                    return Err(AzureError::Api {
                        operation: format!("DELETE {id}"),
                        status: Some(s),
                        code: r.body["error"]["code"].as_str().map(String::from),
                        message: crate::arm::error_text(&r.body["error"]),
                    });
                }
            }
            n += 1;
        }
        Ok(n)
    }

    /// The deployment, when its last run succeeded.
    async fn deployed(&self) -> Result<Option<Value>, AzureError> {
        Ok(self
            .deployment()
            .await?
            .filter(|d| d["properties"]["provisioningState"] == "Succeeded"))
    }

    async fn deployment(&self) -> Result<Option<Value>, AzureError> {
        self.arm
            .get(&format!(
                "{}?api-version={RESOURCES_API}",
                self.deployment_path()
            ))
            .await
    }
}

/// The API version to delete a resource with, from its type.
fn api_version_of(id: &str) -> &'static str {
    let l = id.to_ascii_lowercase();
    if l.contains("/microsoft.authorization/") {
        api::ROLES
    } else if l.contains("/microsoft.web/") {
        api::WEB
    } else if l.contains("/microsoft.managedidentity/") {
        api::IDENTITY
    } else if l.contains("/microsoft.servicebus/") {
        api::SERVICE_BUS
    } else if l.contains("/microsoft.operationalinsights/") {
        api::WORKSPACE
    } else if l.contains("/microsoft.insights/") {
        api::INSIGHTS
    } else if l.contains("/microsoft.eventgrid/") {
        api::EVENT_GRID
    } else if l.contains("/microsoft.documentdb/") {
        api::COSMOS
    } else if l.contains("/microsoft.keyvault/") {
        api::KEY_VAULT
    } else {
        api::STORAGE
    }
}

/// Deletion order: what depends on others first.
fn delete_rank(id: &str) -> u8 {
    let l = id.to_ascii_lowercase();
    [
        "/eventsubscriptions/",
        "/roleassignments/",
        "/sqlroleassignments/",
        "/extensions/",
        "/microsoft.web/sites/",
        "/microsoft.web/serverfarms/",
        "/userassignedidentities/",
        "/subscriptions/",
        "/topics/",
        "/microsoft.servicebus/",
        "/systemtopics/",
        "/microsoft.insights/",
        "/microsoft.operationalinsights/",
        "/containers/",
        "/queues/",
        "/tables/",
        "/blobservices/",
        "/sqldatabases/",
    ]
    .iter()
    .position(|k| l.contains(k))
    .map_or(100, |p| p as u8)
}

fn outputs_of(deployment: &Value) -> BTreeMap<String, Value> {
    deployment["properties"]["outputs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v["value"].clone()))
        .collect()
}

/// Function → the SHA-256 that names its deployed package: the deployment's `packages`
/// parameter holds the package blob of each app (`<sha256>.zip`, content-addressed).
fn packages_of(deployment: &Value) -> BTreeMap<String, String> {
    deployment["properties"]["parameters"]["packages"]["value"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(function, blob)| {
            let sha = blob.as_str()?.strip_suffix(".zip")?;
            let valid = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
            valid.then(|| (function.clone(), sha.to_string()))
        })
        .collect()
}

fn created_of(deployment: &Value) -> BTreeSet<String> {
    deployment["properties"]["outputResources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect()
}

/// Counts of a deploy from the previous and the new resource hashes.
fn summarize(before: &BTreeMap<String, String>, after: &[Planned], removed: usize) -> Summary {
    let mut s = Summary::default();
    for p in after {
        s.add(match before.get(&p.logical) {
            None => Action::Create,
            Some(h) if *h == p.hash => Action::Same,
            Some(_) => Action::Update,
        });
    }
    s.delete = removed;
    s
}

impl Cloud for Azure {
    type Error = AzureError;

    fn engine_error(error: &AzureError) -> Option<&nimbus_engine::Error> {
        match error {
            AzureError::Engine(e) => Some(e),
            _ => None,
        }
    }

    fn hint(error: &AzureError) -> Option<String> {
        error.hint()
    }

    async fn plan(&self, target: &Target<'_>, refresh: bool) -> Result<Plan, AzureError> {
        self.check(target.graph)?;
        self.check_secret_values(target.graph).await?;
        let (doc, parameters) = self.template(target)?;
        let planned = self.planned(&doc);
        let group = self
            .arm
            .get(&format!("{}?api-version={RESOURCES_API}", self.rg_path()))
            .await?;
        // The state says what earlier deployments created and with which template.
        let state = match group {
            Some(_) => match self.store().await.ok() {
                Some(s) => self.read_state(&s).await.unwrap_or(None),
                None => None,
            },
            None => None,
        };
        let plan = |rows: Vec<ResourcePlan>, refreshed: bool| {
            let mut summary = Summary::default();
            rows.iter().for_each(|r| summary.add(r.action));
            Plan {
                format_version: nimbus_engine::plan::PLAN_FORMAT_VERSION,
                service: self.service.clone(),
                stage: self.stage.clone(),
                provider: "azure".into(),
                refreshed,
                summary,
                resources: rows,
                interrupted: Vec::new(),
            }
        };
        let all = |action: Action| -> Vec<ResourcePlan> {
            let mut rows: Vec<ResourcePlan> = planned
                .iter()
                .map(|p| row(&p.logical, &p.kind, action, Vec::new()))
                .collect();
            rows.sort_by(|a, b| a.id.cmp(&b.id));
            rows.dedup_by(|a, b| a.id == b.id);
            rows
        };
        // Without refresh, an unchanged template is what deploy skips: nothing to do, and the
        // cloud is not read (as on the other providers, plan is then against the state).
        if !refresh
            && state
                .as_ref()
                .is_some_and(|s| s.hash == template_hash(&doc, &parameters))
            && self.deployed().await?.is_some()
        {
            return Ok(plan(all(Action::Same), false));
        }
        let result = match group {
            Some(_) => self.what_if(&doc, &parameters).await?,
            None => None,
        };
        Ok(match result {
            None => plan(all(Action::Create), false),
            Some(result) => {
                let unchanged = state
                    .as_ref()
                    .is_some_and(|s| s.hash == template_hash(&doc, &parameters));
                plan(
                    whatif::rows(&result, &planned, state.as_ref(), unchanged),
                    true,
                )
            }
        })
    }

    async fn deploy(
        &self,
        target: &Target<'_>,
        how: DeployOptions,
    ) -> Result<Deployed, AzureError> {
        self.check(target.graph)?;
        let started = Instant::now();
        let calls = self.calls();
        let (doc, parameters) = self.template(target)?;
        let planned = self.planned(&doc);
        // Before anything changes: every secret a function reads has a value.
        self.check_secret_values(target.graph).await?;
        // ... and every existing Cosmos DB container is there, laid out as the shim needs.
        self.check_existing_tables(target.graph).await?;
        self.ensure_resource_group().await?;
        self.ensure_deployment_account(&doc).await?;
        let store = self.store().await?;
        let lease = self.lock(&store, "apply").await?;
        let result = self
            .deploy_locked(
                target,
                how,
                &store,
                &doc,
                &parameters,
                &planned,
                (started, &calls),
            )
            .await;
        let released = storage::unlock_lease(&store, &lease).await;
        let deployed = result?;
        released?;
        Ok(deployed)
    }

    async fn remove(&self, graph: &AppGraph, force: bool) -> Result<Report, AzureError> {
        self.check(graph)?;
        let started = Instant::now();
        let calls = self.calls();
        let group = self
            .arm
            .get(&format!("{}?api-version={RESOURCES_API}", self.rg_path()))
            .await?;
        if group.is_none() {
            return Ok(Report {
                elapsed: started.elapsed(),
                calls: self.calls_since(&calls),
                warnings: vec![format!(
                    "resource group `{}` does not exist: nothing to remove",
                    self.settings.resource_group
                )],
                ..Report::default()
            });
        }
        let store = self.store().await?;
        let lease = self.lock(&store, "destroy").await?;
        let state = self.read_state(&store).await?.unwrap_or_default();
        let data = self.data_ids(state.created.iter());
        let deployment_account = self
            .account_path(&self.deployment_account())
            .to_ascii_lowercase();
        let keep = |id: &String| !force && data.contains(id);
        let retained: Vec<Retained> = state
            .created
            .iter()
            .filter(|id| keep(id))
            .map(|id| Retained {
                id: id.clone(),
                reason: "may hold data: `nimbus remove --force` deletes it".into(),
            })
            .collect();
        let in_deployment_account = |id: &String| {
            let l = id.to_ascii_lowercase();
            l == deployment_account || l.starts_with(&format!("{deployment_account}/"))
        };
        let mut ids: Vec<String> = state
            .created
            .iter()
            .filter(|id| !keep(id) && !in_deployment_account(id))
            .cloned()
            .collect();
        // Role assignments outside the group (`permissions.azure`) by their deterministic names:
        // deleting the group would not delete them.
        let mut outside = self.outside_assignments(graph).await?;
        outside.retain(|o| !ids.iter().any(|i| i.eq_ignore_ascii_case(o)));
        ids.extend(outside);
        ids.sort_by_key(|id| (delete_rank(id), id.clone()));
        // A deleted vault is only soft-deleted and keeps its name: with `force`, purge it too.
        let vault = self.vault_path().to_ascii_lowercase();
        let purge = match ids.iter().any(|id| id.to_ascii_lowercase() == vault) {
            true => self.vault_location().await?,
            false => None,
        };
        let mut deleted = self.delete_ids(&ids).await;
        if let (Ok(_), Some(location)) = (&deleted, &purge)
            && let Err(e) = self.purge_vault(location).await
        {
            deleted = Err(e);
        }
        let deleted = match deleted {
            Ok(n) => n,
            Err(e) => {
                let _ = storage::unlock_lease(&store, &lease).await;
                return Err(e);
            }
        };
        let mut warnings = Vec::new();
        let _ = self
            .arm
            .send(
                Method::Delete,
                &format!("{}?api-version={RESOURCES_API}", self.deployment_path()),
                None,
            )
            .await;
        if retained.is_empty() {
            // Nothing left to remember: the deployment account (state, lock, packages) goes too.
            storage::unlock_lease(&store, &lease).await?;
            let account = self.account_path(&self.deployment_account());
            self.delete_ids(&[account]).await?;
        } else {
            let kept: BTreeSet<String> = state
                .created
                .iter()
                .filter(|id| {
                    data.contains(*id) || id.to_ascii_lowercase().starts_with(&deployment_account)
                })
                .cloned()
                .collect();
            let state = State {
                created: kept,
                resources: BTreeMap::new(),
                hash: String::new(),
                serial: state.serial + 1,
                ..state
            };
            self.write_state(&store, &state).await?;
            storage::unlock_lease(&store, &lease).await?;
            warnings.push(format!(
                "the data (storage account, Cosmos DB account, Key Vault) and the deployment account `{}` (state) were kept",
                self.deployment_account()
            ));
        }
        Ok(Report {
            summary: Summary {
                delete: deleted,
                ..Summary::default()
            },
            calls: self.calls_since(&calls),
            elapsed: started.elapsed(),
            retained,
            warnings,
            ..Report::default()
        })
    }

    async fn info(&self, graph: &AppGraph) -> Result<Info, AzureError> {
        self.check(graph)?;
        let deployment = match self
            .arm
            .get(&format!("{}?api-version={RESOURCES_API}", self.rg_path()))
            .await?
        {
            Some(_) => self.deployment().await?,
            None => None,
        };
        let outputs = deployment.as_ref().map(outputs_of).unwrap_or_default();
        let deployed = deployment
            .as_ref()
            .is_some_and(|d| d["properties"]["provisioningState"] == "Succeeded");
        let packages = deployment
            .as_ref()
            .filter(|_| deployed)
            .map(packages_of)
            .unwrap_or_default();
        let mut info = Info {
            provider: "azure".into(),
            service: graph.service.clone(),
            stage: graph.stage.clone(),
            deployed,
            state: Some(format!(
                "{}/{}/{}",
                self.storage_override
                    .as_ref()
                    .map(|(e, _)| e.trim_end_matches('/').to_string())
                    .unwrap_or_else(|| format!(
                        "https://{}.blob.core.windows.net",
                        self.deployment_account()
                    )),
                names::STATE_CONTAINER,
                names::state_blob(&self.service, &self.stage)
            )),
            ..Info::default()
        };
        let caps = nimbus_provider::ProviderId::Azure.capabilities();
        let all = apps::apps(graph)?;
        for app in &all {
            let key = template::output_key(&app.function);
            let native = outputs
                .get(&format!("{key}App"))
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| {
                    format!(
                        "{}-{}",
                        names::app_prefix(&self.service, &self.stage, &app.function),
                        self.suffix
                    )
                });
            let host = outputs
                .get(&format!("{key}HostName"))
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| format!("{native}.azurewebsites.net"));
            let f = &graph.functions[&app.function];
            for t in &f.triggers {
                if let TriggerSpec::Http { method, path, .. } = &t.spec {
                    info.endpoints.push(Endpoint {
                        method: method.to_string(),
                        url: format!("{}{path}", self.app_base(&native, &host)),
                        function: app.function.clone(),
                    });
                }
            }
            info.functions.push(FunctionInfo {
                name: app.function.clone(),
                native,
                runtime: caps.runtime(f.runtime).unwrap_or_default().to_string(),
                memory_mb: app.instance_memory_mb,
                timeout_s: app.timeout_s.try_into().unwrap_or(u32::MAX),
                package_sha256: packages.get(&app.function).cloned().unwrap_or_default(),
            });
            if let Some(d) = &graph.domain
                && template::domain_app(&all).is_some_and(|a| a.function == app.function)
            {
                info.dns_records
                    .extend(domain_records(&d.name, &host, &outputs, &key));
            }
        }
        for r in graph.resources.values() {
            info.resources.push(ResourceInfo {
                name: r.name.clone(),
                kind: r.kind.as_str().to_string(),
                native: match r.kind {
                    ResourceKind::Topic => format!(
                        "{}-{}/{}",
                        names::service_bus_prefix(&self.service, &self.stage),
                        self.suffix,
                        names::topic(&r.name)
                    ),
                    ResourceKind::Table => format!(
                        "{}-{}/{}/{}",
                        names::cosmos_account_prefix(&self.service, &self.stage),
                        self.suffix,
                        names::cosmos_database(&self.service),
                        names::table(&r.name)
                    ),
                    k => format!(
                        "{}/{}",
                        self.data_account(),
                        crate::env::native_name(k, &r.name)
                    ),
                },
            });
        }
        Ok(info)
    }

    async fn logs(
        &self,
        graph: &AppGraph,
        query: &LogQuery,
        sink: LogSink<'_>,
    ) -> Result<(), AzureError> {
        let info = self.info(graph).await?;
        let deployment = self
            .deployment()
            .await?
            .ok_or_else(|| AzureError::Settings {
                message: format!("`{}` is not deployed", self.scope()),
            })?;
        let app_id = outputs_of(&deployment)
            .get("appInsightsAppId")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| AzureError::Settings {
                message: "the deployment has no Application Insights app id".into(),
            })?;
        let by_app: BTreeMap<String, String> = info
            .functions
            .iter()
            .filter(|f| query.function.as_deref().is_none_or(|q| q == f.name))
            .map(|f| (f.native.clone(), f.name.clone()))
            .collect();
        if let Some(f) = &query.function
            && by_app.is_empty()
        {
            return Err(AzureError::UnknownFunction {
                function: f.clone(),
                known: info
                    .functions
                    .iter()
                    .map(|f| f.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut since = chrono::Utc::now()
            - chrono::Duration::from_std(query.since.unwrap_or(Duration::from_secs(3600)))
                .unwrap_or(chrono::Duration::hours(1));
        loop {
            let roles = by_app
                .keys()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(", ");
            let kql = format!(
                "union traces, exceptions | where timestamp > datetime({}) | where cloud_RoleName in ({roles}) | project timestamp, cloud_RoleName, message = coalesce(message, outerMessage) | order by timestamp asc",
                since.format("%Y-%m-%dT%H:%M:%S%.3fZ")
            );
            let r = self
                .arm_logs(
                    &format!("{}/v1/apps/{app_id}/query", self.logs_endpoint),
                    &kql,
                )
                .await?;
            let rows = r["tables"][0]["rows"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for row in rows {
                let time = row[0].as_str().unwrap_or_default();
                let t = chrono::DateTime::parse_from_rfc3339(time)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or(since);
                since = since.max(t);
                let function = by_app
                    .get(row[1].as_str().unwrap_or_default())
                    .cloned()
                    .unwrap_or_default();
                let line = LogLine {
                    time_ms: t.timestamp_millis(),
                    function,
                    message: row[2].as_str().unwrap_or_default().trim_end().to_string(),
                };
                if !sink(line) {
                    return Ok(());
                }
            }
            if !query.follow {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }

    async fn invoke(
        &self,
        graph: &AppGraph,
        function: &str,
        event: &Value,
    ) -> Result<Invoked, AzureError> {
        let info = self.info(graph).await?;
        let f = info
            .functions
            .iter()
            .find(|f| f.name == function)
            .ok_or_else(|| AzureError::UnknownFunction {
                function: function.to_string(),
                known: info
                    .functions
                    .iter()
                    .map(|f| f.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let app = apps::apps(graph)?
            .into_iter()
            .find(|a| a.function == function)
            .expect("listed");
        let host = format!("{}.azurewebsites.net", f.native);
        let base = self.app_base(&f.native, &host);
        let keys = self
            .arm
            .call(
                Method::Post,
                &format!(
                    "{}/providers/Microsoft.Web/sites/{}/host/default/listkeys?api-version={}",
                    self.rg_path(),
                    f.native,
                    api::WEB
                ),
                None,
            )
            .await?
            .body;
        let client = crate::http_client();
        let (method, url, key, body) = match app.bindings.iter().find_map(|b| match &b.trigger {
            apps::Trigger::Http {
                method,
                path,
                auth_level,
                ..
            } => Some((method.clone(), path.clone(), *auth_level)),
            _ => None,
        }) {
            Some((method, path, level))
                if event["type"] == "http" || event.get("type").is_none() =>
            {
                let path = event["path"].as_str().map(String::from).unwrap_or_else(|| {
                    let mut p = path.clone();
                    for (k, v) in event["path_params"].as_object().into_iter().flatten() {
                        p = p.replace(&format!("{{{k}}}"), v.as_str().unwrap_or_default());
                    }
                    p
                });
                let method = event["method"]
                    .as_str()
                    .map(String::from)
                    .or(method)
                    .unwrap_or_else(|| "GET".into());
                let key = (level == "function").then(|| keys["functionKeys"]["default"].clone());
                (
                    method,
                    format!("{base}{path}"),
                    key,
                    event["body"]
                        .as_str()
                        .unwrap_or_default()
                        .as_bytes()
                        .to_vec(),
                )
            }
            _ => {
                let binding = app
                    .bindings
                    .first()
                    .map(|b| b.name.clone())
                    .unwrap_or_default();
                let input = native_input(event);
                (
                    "POST".into(),
                    format!("{base}/admin/functions/{binding}"),
                    Some(keys["masterKey"].clone()),
                    serde_json::to_vec(&json!({ "input": input })).expect("json"),
                )
            }
        };
        let mut request = azure_core::http::Request::new(
            azure_core::http::Url::parse(&url).map_err(|e| AzureError::Settings {
                message: format!("invalid function URL `{url}`: {e}"),
            })?,
            match method.as_str() {
                "POST" => Method::Post,
                "PUT" => Method::Put,
                "DELETE" => Method::Delete,
                "PATCH" => Method::Patch,
                "HEAD" => Method::Head,
                _ => Method::Get,
            },
        );
        if let Some(k) = key.as_ref().and_then(Value::as_str) {
            request.insert_header("x-functions-key", k.to_string());
        }
        for (k, v) in event["headers"].as_object().into_iter().flatten() {
            if let Some(v) = v.as_str() {
                request.insert_header(k.to_ascii_lowercase(), v.to_string());
            }
        }
        if !body.is_empty() || matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
            request.insert_header("content-type", "application/json");
            request.set_body(body);
        }
        let raw = client
            .execute_request(&request)
            .await
            .map_err(|e| AzureError::Api {
                operation: format!("{method} {url}"),
                status: None,
                code: None,
                message: e.to_string(),
            })?;
        let status = u16::from(raw.status());
        let headers: BTreeMap<String, Value> = raw
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), json!(v.as_str())))
            .collect();
        let request_id = headers
            .get("x-ms-invocation-id")
            .or_else(|| headers.get("x-ms-request-id"))
            .and_then(Value::as_str)
            .map(String::from);
        let bytes = raw
            .into_body()
            .collect()
            .await
            .map_err(|e| AzureError::Api {
                operation: format!("{method} {url}"),
                status: Some(status),
                code: None,
                message: e.to_string(),
            })?;
        let text = String::from_utf8_lossy(&bytes).to_string();
        let result = if app
            .bindings
            .iter()
            .any(|b| matches!(b.trigger, apps::Trigger::Http { .. }))
        {
            json!({ "status": status, "headers": headers, "body": text })
        } else {
            json!({ "status": status, "accepted": status == 202 })
        };
        Ok(Invoked {
            request_id,
            failed: status >= 500,
            result,
        })
    }

    async fn unlock(&self, graph: &AppGraph, lock_id: &str) -> Result<(), AzureError> {
        self.check(graph)?;
        let store = self.store().await?;
        storage::force_unlock(
            &store,
            names::STATE_CONTAINER,
            &names::lock_blob(&self.service, &self.stage),
            &self.scope(),
            lock_id,
        )
        .await
    }
}

/// The native input of a non-HTTP function for the admin API: the first message's body, the
/// blob path, or nothing.
fn native_input(event: &Value) -> String {
    if let Some(body) = event["messages"][0]["body"].as_str() {
        return body.to_string();
    }
    if let (Some(b), Some(k)) = (event["bucket"].as_str(), event["key"].as_str()) {
        return format!("{}/{k}", names::container(b));
    }
    String::new()
}

fn row(id: &str, kind: &str, action: Action, changes: Vec<PropertyChange>) -> ResourcePlan {
    ResourcePlan {
        id: id.to_string(),
        kind: kind.to_string(),
        action,
        changes,
        drift: Vec::new(),
        missing_in_cloud: false,
    }
}

/// The records App Service checks when it binds `domain` to the app answering on `host`: the
/// `CNAME` to the app's host and the `TXT asuid.<domain>` holding the app's
/// `customDomainVerificationId` (a deployment output; before the first deploy, unknown).
fn domain_records(
    domain: &str,
    host: &str,
    outputs: &BTreeMap<String, Value>,
    key: &str,
) -> Vec<DnsRecord> {
    let verification = outputs
        .get(&format!("{key}DomainVerificationId"))
        .and_then(Value::as_str)
        .unwrap_or("(the app's customDomainVerificationId, known once it is deployed)");
    vec![
        DnsRecord {
            name: domain.to_string(),
            kind: "CNAME".into(),
            value: host.to_string(),
            purpose: "routes the custom domain to the Function App that serves the routes".into(),
        },
        DnsRecord {
            name: format!("asuid.{domain}"),
            kind: "TXT".into(),
            value: verification.to_string(),
            purpose: "proves to App Service that the domain is yours".into(),
        },
    ]
}

/// `…/providers/Microsoft.Web/sites/x` → (`Microsoft.Web/sites/x`, `Microsoft.Web/sites`).
fn logical_from_id(id: &str) -> (String, String) {
    let tail = id.rsplit_once("/providers/").map_or(id, |(_, t)| t);
    let parts: Vec<&str> = tail.split('/').collect();
    let namespace = parts.first().copied().unwrap_or_default();
    let types: Vec<&str> = parts.iter().skip(1).step_by(2).copied().collect();
    let names: Vec<&str> = parts.iter().skip(2).step_by(2).copied().collect();
    (
        format!("{namespace}/{}/{}", types.join("/"), names.join("/")),
        format!("{namespace}/{}", types.join("/")),
    )
}

impl Azure {
    /// An app's base URL: `NIMBUS_AZURE_APP_ENDPOINT` with `{app}`, else `https://<host>`.
    fn app_base(&self, app: &str, host: &str) -> String {
        match &self.app_endpoint {
            Some(t) => t.replace("{app}", app).trim_end_matches('/').to_string(),
            None => format!("https://{host}"),
        }
    }

    async fn arm_logs(&self, url: &str, kql: &str) -> Result<Value, AzureError> {
        // The query API takes a token for its own audience; with a static token (tests, CI)
        // the same token is sent.
        let r = self
            .arm
            .call(Method::Post, url, Some(&json!({ "query": kql })))
            .await?;
        Ok(r.body)
    }

    #[allow(clippy::too_many_arguments)]
    async fn deploy_locked(
        &self,
        target: &Target<'_>,
        how: DeployOptions,
        store: &BlobStore,
        doc: &Value,
        parameters: &Value,
        planned: &[Planned],
        (started, calls): (Instant, &CallCounts),
    ) -> Result<Deployed, AzureError> {
        let previous = self.read_state(store).await?.unwrap_or_default();
        // Refuse to drop data before anything changes.
        let new_ids: BTreeSet<String> = planned.iter().filter_map(|p| p.id.clone()).collect();
        let lower_new: BTreeSet<String> = new_ids.iter().map(|i| i.to_ascii_lowercase()).collect();
        let lost: Vec<String> = self
            .data_ids(previous.created.iter())
            .into_iter()
            .filter(|id| !lower_new.contains(&id.to_ascii_lowercase()))
            .collect();
        if !lost.is_empty() && !how.force {
            return Err(AzureError::Engine(nimbus_engine::Error::WouldLoseData {
                scope: self.scope(),
                resources: lost
                    .iter()
                    .map(|id| format!("{} (delete)", logical_from_id(id).0))
                    .collect(),
            }));
        }
        let uploads = self.upload(target, store).await?;
        let hash = template_hash(doc, parameters);
        let current = self.deployed().await?;
        let mut unchanged = previous.hash == hash && current.is_some();
        // With refresh, an unchanged template still goes through what-if: what was changed or
        // deleted outside nimbus is put back by a deployment.
        let mut repair = None;
        if unchanged && how.refresh {
            let rows = self
                .what_if(doc, parameters)
                .await?
                .map(|r| whatif::rows(&r, planned, Some(&previous), true))
                .unwrap_or_default();
            if whatif::drifted(&rows) {
                unchanged = false;
                repair = Some(rows);
            } else {
                self.options.emit(Progress::Note {
                    message: "what-if shows no drift".into(),
                });
            }
        }
        let (deployment, summary, removed) = if unchanged {
            self.options.emit(Progress::Note {
                message: format!(
                    "the template and parameters are those of the last successful deployment `{}`: nothing to deploy",
                    self.deployment_name()
                ),
            });
            let summary = summarize(&previous.resources, planned, 0);
            (current.expect("checked"), summary, Vec::new())
        } else {
            let body = json!({
                "properties": { "mode": "Incremental", "template": doc, "parameters": parameters },
                "tags": { "nimbus-service": self.service, "nimbus-stage": self.stage },
            });
            let path = format!("{}?api-version={RESOURCES_API}", self.deployment_path());
            let r = self.arm.call(Method::Put, &path, Some(&body)).await?;
            self.arm
                .wait(&self.deployment_name(), r, DEPLOY_LIMIT)
                .await
                .map_err(|e| match e {
                    AzureError::DeploymentFailed {
                        deployment,
                        state,
                        codes,
                        message,
                        ..
                    } => AzureError::DeploymentFailed {
                        deployment,
                        resource_group: Some(self.settings.resource_group.clone()),
                        state,
                        codes,
                        message,
                    },
                    e => e,
                })?;
            let d = self.deployment().await?.unwrap_or_default();
            let state = d["properties"]["provisioningState"]
                .as_str()
                .unwrap_or_default();
            if state != "Succeeded" {
                return Err(AzureError::DeploymentFailed {
                    deployment: self.deployment_name(),
                    resource_group: Some(self.settings.resource_group.clone()),
                    state: state.to_string(),
                    codes: crate::arm::error_codes(&d["properties"]["error"]),
                    message: crate::arm::error_text(&d["properties"]["error"]),
                });
            }
            let now = created_of(&d);
            let now_lower: BTreeSet<String> = now.iter().map(|i| i.to_ascii_lowercase()).collect();
            let mut removed: Vec<String> = previous
                .created
                .iter()
                .filter(|id| !now_lower.contains(&id.to_ascii_lowercase()))
                .cloned()
                .collect();
            removed.sort_by_key(|id| (delete_rank(id), id.clone()));
            self.delete_ids(&removed).await?;
            // A repair of drift counts what what-if showed; a changed template, by hashes.
            let summary = match &repair {
                Some(rows) => {
                    let mut s = Summary::default();
                    rows.iter()
                        .filter(|r| r.action != Action::Delete)
                        .for_each(|r| s.add(r.action));
                    s.delete = removed.len();
                    s
                }
                None => summarize(&previous.resources, planned, removed.len()),
            };
            (d, summary, removed)
        };
        let outputs = outputs_of(&deployment);
        let mut created = created_of(&deployment);
        if unchanged {
            created = previous.created.clone();
        }
        let changed = summary.changes() > 0 || !removed.is_empty();
        let state = State {
            format: STATE_FORMAT,
            serial: previous.serial + u64::from(changed || previous.hash != hash),
            hash,
            resources: planned
                .iter()
                .map(|p| (p.logical.clone(), p.hash.clone()))
                .collect(),
            created,
            outputs: outputs.clone(),
        };
        if state != previous {
            self.write_state(store, &state).await?;
        }
        let info = self.info(target.graph).await?;
        let report = Report {
            summary,
            calls: self.calls_since(calls),
            elapsed: started.elapsed(),
            outputs: BTreeMap::from([("deployment".to_string(), outputs)]),
            serial: state.serial,
            ..Report::default()
        };
        Ok(Deployed {
            report,
            uploads,
            info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_domain_needs_a_cname_to_the_app_and_its_verification_txt() {
        let outputs = BTreeMap::from([("webDomainVerificationId".to_string(), json!("ABC123"))]);
        let records = domain_records(
            "api.example.com",
            "api-dev-web-0123abcd.azurewebsites.net",
            &outputs,
            "web",
        );
        let got: Vec<(&str, &str, &str)> = records
            .iter()
            .map(|r| (r.name.as_str(), r.kind.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "api.example.com",
                    "CNAME",
                    "api-dev-web-0123abcd.azurewebsites.net"
                ),
                ("asuid.api.example.com", "TXT", "ABC123"),
            ]
        );
        let before = domain_records("api.example.com", "h", &BTreeMap::new(), "web");
        assert!(before[1].value.contains("known once it is deployed"));
    }

    #[test]
    fn names_resolve_and_ids_are_built() {
        let vars = json!({
            "a": "[concat('shopdevd', parameters('suffix'))]",
            "m": "shop-dev",
        });
        let vars = vars.as_object().unwrap();
        assert_eq!(
            value_of(&json!("[variables('a')]"), vars, "1234").as_deref(),
            Some("shopdevd1234")
        );
        assert_eq!(
            value_of(
                &json!("[concat(variables('a'), '/default/app-x')]"),
                vars,
                "1"
            )
            .as_deref(),
            Some("shopdevd1/default/app-x")
        );
        assert_eq!(value_of(&json!("[guid('a', 'b')]"), vars, "1"), None);
        assert_eq!(
            arm_id(
                "/subscriptions/s/resourceGroups/g",
                "Microsoft.Storage/storageAccounts/blobServices/containers",
                "a/default/c"
            ),
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a/blobServices/default/containers/c"
        );
        assert_eq!(
            logical_from_id("/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/x"),
            ("Microsoft.Web/sites/x".into(), "Microsoft.Web/sites".into())
        );
        assert!(
            delete_rank("/x/providers/Microsoft.Web/sites/a/extensions/onedeploy")
                < delete_rank("/x/providers/Microsoft.Web/sites/a")
        );
    }
}
