//! [`Gcp`]: the `nimbus_cloud::Cloud` implementation — deploy, plan, remove, info and unlock
//! through the deploy engine, with the state and lock in the deployment bucket.
//!
//! `deploy`: ensures the deployment bucket, uploads each function's package unless the
//! content-addressed object is there already, lowers the app and applies it under the lock.
//! `remove`: destroys the deployment (buckets and collections holding data are kept unless
//! forced) and deletes its packages. `logs` and `invoke` are not implemented yet for GCP and say so.

use nimbus_cloud::{
    Cloud, DeployOptions, Deployed, Endpoint, FunctionInfo, Info, Invoked, LogQuery, LogSink,
    Options, Progress, ResourceInfo, Target, Upload,
};
use nimbus_engine::{Deployment, Engine, LockOptions, ObjectStoreBackend, Plan, Report};
use nimbus_graph::{AppGraph, TriggerSpec};
use reqwest::Method;
use serde_json::Value;

use crate::api::{Client, Credentials, Endpoints, urlencode};
use crate::driver::{GcpDriver, Scope, Timing};
use crate::error::GcpError;
use crate::kinds;
use crate::lower::{GcpSettings, lower};
use crate::names;
use crate::storage::GcsStore;

/// The GCP provider for one command: credentials, endpoints, settings.
pub struct Gcp {
    client: Client,
    settings: GcpSettings,
    options: Options,
    timing: Timing,
}

impl std::fmt::Debug for Gcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gcp")
            .field("settings", &self.settings)
            .finish()
    }
}

/// Connects to Google Cloud for `graph`'s `providers.gcp` settings: endpoints from
/// `NIMBUS_GCP_<API>_ENDPOINT`, credentials from the environment (see [`crate::api`]); the
/// project number is read from Cloud Resource Manager unless `NIMBUS_GCP_PROJECT_NUMBER` gives it.
pub async fn connect(graph: &AppGraph, options: Options) -> Result<Gcp, GcpError> {
    let credentials = Credentials::from_env().map_err(GcpError::Credentials)?;
    let number = std::env::var("NIMBUS_GCP_PROJECT_NUMBER")
        .ok()
        .filter(|n| !n.is_empty());
    Gcp::new(graph, options, Endpoints::from_env(), credentials, number).await
}

impl Gcp {
    /// A provider with explicit endpoints and credentials; the project number is read from
    /// Cloud Resource Manager unless given.
    pub async fn new(
        graph: &AppGraph,
        options: Options,
        endpoints: Endpoints,
        credentials: Credentials,
        project_number: Option<String>,
    ) -> Result<Gcp, GcpError> {
        let client = Client::new(endpoints, credentials).map_err(GcpError::Credentials)?;
        let mut settings = GcpSettings::from_graph(graph, "")?;
        settings.project_number = match project_number {
            Some(n) => n,
            None => {
                let url = client.url(
                    "cloudresourcemanager",
                    &format!("/v1/projects/{}", urlencode(&settings.project)),
                );
                let p = client
                    .json(Method::GET, &url, None)
                    .await
                    .map_err(|source| GcpError::Api {
                        action: format!("reading project `{}`", settings.project),
                        source,
                    })?;
                p["projectNumber"].as_str().unwrap_or_default().to_string()
            }
        };
        Ok(Gcp {
            client,
            settings,
            options,
            timing: Timing::from_env(),
        })
    }

    /// Waits and polls as `timing` says (by default as the environment says: [`Timing::from_env`]).
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &GcpSettings {
        &self.settings
    }

    fn store(&self) -> GcsStore {
        GcsStore::new(self.client.clone(), &self.settings.deploy_bucket)
    }

    fn engine(
        &self,
        graph: &AppGraph,
    ) -> Result<Engine<ObjectStoreBackend<GcsStore>, GcpDriver>, GcpError> {
        let deployment = Deployment::new(&graph.service, &graph.stage, "gcp")?;
        let backend = ObjectStoreBackend::new(self.store(), "state", &deployment);
        let driver = GcpDriver::new(
            self.client.clone(),
            Scope::new(&self.settings, &graph.service, &graph.stage),
            self.timing,
            self.options.progress.clone(),
        );
        let mut engine_options = nimbus_engine::Options {
            parallelism: self.options.parallelism.max(1),
            lock: LockOptions {
                timeout: self.options.lock_timeout,
                ..LockOptions::default()
            },
            ..Default::default()
        };
        if let Some(base) = self.timing.retry_base {
            engine_options.retry.initial_backoff = base;
        }
        let mut engine = Engine::new(deployment, backend, driver).with_options(engine_options);
        if let Some(p) = self.options.progress.clone() {
            engine = engine.on_progress(move |e| p(&Progress::Resource(e.clone())));
        }
        Ok(engine)
    }

    /// Ensures the deployment bucket and uploads every package not there yet.
    pub async fn upload(&self, target: &Target<'_>) -> Result<Vec<Upload>, GcpError> {
        let store = self.store();
        let api = |action: String| move |source| GcpError::Api { action, source };
        store
            .ensure_bucket(&self.settings.project, &self.settings.region)
            .await
            .map_err(api(format!("creating bucket `{}`", store.bucket())))?;
        let mut uploads = Vec::new();
        for (function, artifact) in &target.build.functions {
            let key = self.settings.package_key(
                &target.graph.service,
                &target.graph.stage,
                function,
                &artifact.sha256,
            );
            let skipped = store
                .exists(&key)
                .await
                .map_err(api(format!("looking for the package of `{function}`")))?;
            if !skipped {
                let path = target.build_dir.join(&artifact.file);
                let bytes = std::fs::read(&path).map_err(|source| GcpError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                store
                    .upload(&key, bytes, "application/zip", None)
                    .await
                    .map_err(api(format!("uploading the package of `{function}`")))?;
            }
            let upload = Upload {
                function: function.clone(),
                location: format!("gs://{}/{key}", store.bucket()),
                bytes: artifact.size,
                skipped,
            };
            self.options.emit(Progress::Upload(upload.clone()));
            uploads.push(upload);
        }
        Ok(uploads)
    }
}

impl Cloud for Gcp {
    type Error = GcpError;

    fn engine_error(error: &GcpError) -> Option<&nimbus_engine::Error> {
        match error {
            GcpError::Engine(e) => Some(e),
            _ => None,
        }
    }

    async fn plan(&self, target: &Target<'_>, refresh: bool) -> Result<Plan, GcpError> {
        let desired = lower(target.graph, target.build, &self.settings)?;
        Ok(self.engine(target.graph)?.plan(&desired, refresh).await?)
    }

    async fn deploy(&self, target: &Target<'_>, how: DeployOptions) -> Result<Deployed, GcpError> {
        let desired = lower(target.graph, target.build, &self.settings)?;
        let uploads = self.upload(target).await?;
        let mut engine = self.engine(target.graph)?;
        let mut options = engine.options().clone();
        options.allow_data_loss = how.force;
        options.refresh = how.refresh;
        engine = engine.with_options(options);
        let report = engine.apply_if_changed(&desired).await?;
        let info = self.info(target.graph).await?;
        Ok(Deployed {
            report,
            uploads,
            info,
        })
    }

    async fn remove(&self, graph: &AppGraph, force: bool) -> Result<Report, GcpError> {
        let report = self.engine(graph)?.destroy(force).await?;
        let store = self.store();
        let prefix = format!("packages/{}/{}/", graph.service, graph.stage);
        let api = |source| GcpError::Api {
            action: format!("deleting the packages under `{prefix}`"),
            source,
        };
        match store.list(&prefix).await {
            Ok(keys) => {
                for k in keys {
                    store.remove(&k).await.map_err(api)?;
                }
            }
            Err(e) if e.not_found() => {}
            Err(e) => return Err(api(e)),
        }
        Ok(report)
    }

    async fn info(&self, graph: &AppGraph) -> Result<Info, GcpError> {
        let engine = self.engine(graph)?;
        let state = engine.state().await?;
        let mut info = Info {
            provider: "gcp".into(),
            service: graph.service.clone(),
            stage: graph.stage.clone(),
            deployed: state.as_ref().is_some_and(|s| !s.resources.is_empty()),
            state: Some(format!(
                "gs://{}/state/{}/{}/gcp/state.json",
                self.settings.deploy_bucket, graph.service, graph.stage
            )),
            ..Info::default()
        };
        let Some(state) = state else { return Ok(info) };
        let output = |id: &str, key: &str| -> Option<String> {
            state
                .get(id)
                .and_then(|e| e.outputs.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let gateway = output(&format!("{}/http", kinds::GATEWAY), "url");
        for f in graph.functions.values() {
            let id = format!("{}/{}", kinds::FUNCTION, f.name);
            if let Some(entry) = state.get(&id) {
                let s = &entry.properties["serviceConfig"];
                info.functions.push(FunctionInfo {
                    name: f.name.clone(),
                    native: entry.physical_id.clone(),
                    runtime: entry.properties["buildConfig"]["runtime"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    memory_mb: f.memory_mb,
                    timeout_s: s["timeoutSeconds"].as_u64().unwrap_or_default() as u32,
                    package_sha256:
                        entry.properties["buildConfig"]["source"]["storageSource"]["object"]
                            .as_str()
                            .and_then(|o| o.rsplit('/').next())
                            .map(|o| o.trim_end_matches(".zip").to_string())
                            .unwrap_or_default(),
                });
            }
            for t in &f.triggers {
                if let (TriggerSpec::Http { method, path, .. }, Some(base)) = (&t.spec, &gateway) {
                    info.endpoints.push(Endpoint {
                        method: method.to_string(),
                        url: format!("{base}{path}"),
                        function: f.name.clone(),
                    });
                }
            }
        }
        for r in graph.resources.values() {
            let native = match r.kind {
                nimbus_manifest::ResourceKind::Table => {
                    names::collection(&graph.service, &graph.stage, &r.name)
                }
                nimbus_manifest::ResourceKind::Bucket => names::bucket(
                    &graph.service,
                    &graph.stage,
                    &r.name,
                    &self.settings.project,
                )?,
                _ => format!(
                    "projects/{}/topics/{}",
                    self.settings.project,
                    names::pubsub(&graph.service, &graph.stage, &r.name)?
                ),
            };
            info.resources.push(ResourceInfo {
                name: r.name.clone(),
                kind: r.kind.to_string(),
                native,
            });
        }
        Ok(info)
    }

    async fn logs(
        &self,
        _graph: &AppGraph,
        _query: &LogQuery,
        _sink: LogSink<'_>,
    ) -> Result<(), GcpError> {
        Err(GcpError::NotImplemented(
            "`nimbus logs -p gcp` (read them with `gcloud functions logs read`)",
        ))
    }

    async fn invoke(
        &self,
        _graph: &AppGraph,
        _function: &str,
        _event: &Value,
    ) -> Result<Invoked, GcpError> {
        Err(GcpError::NotImplemented(
            "`nimbus invoke -p gcp` (call the function with `gcloud functions call`)",
        ))
    }

    async fn unlock(&self, graph: &AppGraph, lock_id: &str) -> Result<(), GcpError> {
        Ok(self.engine(graph)?.unlock(lock_id).await?)
    }
}
