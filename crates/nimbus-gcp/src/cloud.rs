//! [`Gcp`]: the `nimbus_cloud::Cloud` implementation — deploy, plan, remove, info and unlock
//! through the deploy engine, with the state and lock in the deployment bucket.
//!
//! `deploy`: ensures the deployment bucket, uploads each function's package unless the
//! content-addressed object is there already, lowers the app and applies it under the lock.
//! `remove`: destroys the deployment (buckets and collections holding data are kept unless
//! forced) and deletes its packages.
//!
//! `logs`: Cloud Logging `entries.list` over the functions' Cloud Run services
//! (`resource.type = "cloud_run_revision"`, `resource.labels.service_name`, `timestamp >=` the
//! window's start), oldest first, each entry once (by `insertId`); `--follow` polls again every
//! poll interval ([`Timing::poll`]) from the newest entry seen. Entries without text (the request
//! log's) are left out.
//!
//! `invoke`: the neutral event becomes the request(s) Google would send ([`crate::events`]),
//! sent to the function's URL from the state, with an ID token for that URL when the credentials
//! can make one (Cloud Run requires `roles/run.invoker`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use nimbus_cloud::{
    Cloud, DeployOptions, Deployed, Endpoint, FunctionInfo, Info, Invoked, LogLine, LogQuery,
    LogSink, Options, Progress, ResourceInfo, Target, Upload,
};
use nimbus_engine::{Deployment, Engine, LockOptions, ObjectStoreBackend, Plan, Report};
use nimbus_graph::{AppGraph, TriggerSpec};
use reqwest::Method;
use serde_json::{Value, json};

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
        let metadata = matches!(credentials, Credentials::Metadata(_));
        let client = Client::new(endpoints, credentials).map_err(GcpError::Credentials)?;
        let mut settings = GcpSettings::from_graph(graph, "")?;
        if metadata {
            // The last resort of Application Default Credentials: only Google's own machines
            // answer. Off them, say how to provide credentials rather than show its address.
            client
                .check_credentials()
                .await
                .map_err(|e| match e.status {
                    None => GcpError::Credentials(crate::api::NO_CREDENTIALS.into()),
                    Some(_) => GcpError::Credentials(e.message),
                })?;
        }
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

    /// The API client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The settings in use.
    pub fn settings(&self) -> &GcpSettings {
        &self.settings
    }

    fn store(&self) -> GcsStore {
        GcsStore::new(self.client.clone(), &self.settings.deploy_bucket)
    }

    pub(crate) fn engine(
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
        crate::secrets::check_values(&self.client, &self.settings.project, target.graph).await?;
        Ok(self.engine(target.graph)?.plan(&desired, refresh).await?)
    }

    async fn deploy(&self, target: &Target<'_>, how: DeployOptions) -> Result<Deployed, GcpError> {
        let desired = lower(target.graph, target.build, &self.settings)?;
        crate::secrets::check_values(&self.client, &self.settings.project, target.graph).await?;
        // Existing resources are there (and fit their triggers) before anything changes.
        let driver = GcpDriver::new(
            self.client.clone(),
            Scope::new(&self.settings, &target.graph.service, &target.graph.stage),
            self.timing,
            None,
        );
        crate::driver::existing::preflight(&driver, &desired, &self.settings.region)
            .await
            .map_err(|e| GcpError::Existing(e.message))?;
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
        let engine = self.engine(graph)?;
        // Never deployed (there may not even be a deployment bucket to lock in): nothing to do.
        if engine.state().await?.is_none() {
            return Ok(Report::default());
        }
        let report = engine.destroy(force).await?;
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
        graph: &AppGraph,
        query: &LogQuery,
        sink: LogSink<'_>,
    ) -> Result<(), GcpError> {
        let functions: Vec<&str> = match &query.function {
            Some(f) => {
                check_function(graph, f)?;
                vec![f.as_str()]
            }
            None => graph.functions.keys().map(String::as_str).collect(),
        };
        let services: BTreeMap<String, String> = functions
            .iter()
            .map(|f| {
                (
                    names::function(&graph.service, &graph.stage, f),
                    f.to_string(),
                )
            })
            .collect();
        let window = query.since.unwrap_or(DEFAULT_LOG_WINDOW);
        let mut start = chrono::Utc::now()
            - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::minutes(10));
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let url = self.client.url("logging", "/v2/entries:list");
        let api = |source| GcpError::Api {
            action: "reading the functions' logs (Cloud Logging)".into(),
            source,
        };
        loop {
            let filter = format!(
                "resource.type = \"cloud_run_revision\" AND ({}) AND timestamp >= \"{}\"",
                services
                    .keys()
                    .map(|s| format!("resource.labels.service_name = \"{s}\""))
                    .collect::<Vec<_>>()
                    .join(" OR "),
                start.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            );
            let mut token: Option<String> = None;
            loop {
                let mut body = json!({
                    "resourceNames": [format!("projects/{}", self.settings.project)],
                    "filter": filter,
                    "orderBy": "timestamp asc",
                    "pageSize": 1000,
                });
                if let Some(t) = &token {
                    body["pageToken"] = json!(t);
                }
                let page = self
                    .client
                    .json(Method::POST, &url, Some(&body))
                    .await
                    .map_err(api)?;
                for entry in page["entries"].as_array().into_iter().flatten() {
                    let id = entry["insertId"].as_str().unwrap_or_default().to_string();
                    let Some(line) = log_line(entry, &services) else {
                        continue;
                    };
                    if !id.is_empty() && !seen.insert(id) {
                        continue;
                    }
                    if let Some(t) = chrono::DateTime::from_timestamp_millis(line.time_ms)
                        && t > start
                    {
                        start = t;
                    }
                    if !sink(line) {
                        return Ok(());
                    }
                }
                token = page["nextPageToken"].as_str().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            if !query.follow {
                return Ok(());
            }
            tokio::time::sleep(self.timing.poll).await;
        }
    }

    async fn invoke(
        &self,
        graph: &AppGraph,
        function: &str,
        event: &Value,
    ) -> Result<Invoked, GcpError> {
        check_function(graph, function)?;
        let state = self.engine(graph)?.state().await?;
        let uri = state
            .as_ref()
            .and_then(|s| s.get(&format!("{}/{function}", kinds::FUNCTION)))
            .and_then(|e| e.outputs.get("uri"))
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .ok_or_else(|| GcpError::NotDeployed {
                function: function.to_string(),
                service: graph.service.clone(),
                stage: graph.stage.clone(),
            })?;
        let natives = self.natives(graph, function, event)?;
        let token = self
            .client
            .id_token(&uri)
            .await
            .map_err(|source| GcpError::Api {
                action: format!("getting an ID token to call `{function}`"),
                source,
            })?;
        let mut results = Vec::new();
        let mut failed = false;
        let mut request_id = None;
        for r in crate::events::requests(event, &natives) {
            let url = format!("{}{}", uri.trim_end_matches('/'), r.path);
            let method = Method::from_bytes(r.method.as_bytes()).unwrap_or(Method::POST);
            let mut request = self.client.raw().request(method.clone(), &url);
            for (k, v) in &r.headers {
                request = request.header(k, v);
            }
            if let Some(t) = &token {
                request = request.bearer_auth(t);
            }
            let response = request
                .body(r.body)
                .send()
                .await
                .map_err(|e| GcpError::Api {
                    action: format!("invoking `{function}`"),
                    source: crate::api::ApiError {
                        method: method.to_string(),
                        url: url.clone(),
                        status: None,
                        message: e.to_string(),
                    },
                })?;
            let status = response.status().as_u16();
            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            request_id = request_id.or_else(|| {
                headers
                    .iter()
                    .find(|(k, _)| k == "function-execution-id" || k == "x-cloud-trace-context")
                    .map(|(_, v)| v.clone())
            });
            let bytes = response.bytes().await.unwrap_or_default();
            failed |= status >= 500 || (event["type"] != "http" && status >= 300);
            results.push(crate::events::http_result(status, &headers, &bytes));
        }
        let result = match results.len() {
            1 => results.remove(0),
            _ => Value::Array(results),
        };
        Ok(Invoked {
            request_id,
            failed,
            result,
        })
    }

    async fn unlock(&self, graph: &AppGraph, lock_id: &str) -> Result<(), GcpError> {
        Ok(self.engine(graph)?.unlock(lock_id).await?)
    }
}

/// How far back `logs` looks when not told.
const DEFAULT_LOG_WINDOW: Duration = Duration::from_secs(600);

fn check_function(graph: &AppGraph, function: &str) -> Result<(), GcpError> {
    if graph.functions.contains_key(function) {
        return Ok(());
    }
    Err(GcpError::UnknownFunction {
        function: function.to_string(),
        known: graph
            .functions
            .keys()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// A Cloud Logging entry of one of `services` as a log line (`None` without text).
fn log_line(entry: &Value, services: &BTreeMap<String, String>) -> Option<LogLine> {
    let service = entry["resource"]["labels"]["service_name"].as_str()?;
    let function = services.get(service)?.clone();
    let message = match (&entry["textPayload"], &entry["jsonPayload"]) {
        (Value::String(t), _) => t.clone(),
        (_, Value::Object(j)) => match j.get("message") {
            Some(Value::String(m)) => m.clone(),
            _ => Value::Object(j.clone()).to_string(),
        },
        _ => return None,
    };
    let time_ms = entry["timestamp"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(0, |t| t.timestamp_millis());
    Some(LogLine {
        time_ms,
        function,
        message: message.trim_end().to_string(),
    })
}

impl Gcp {
    /// The native names `event` refers to for `function` (see [`crate::events::Natives`]).
    fn natives(
        &self,
        graph: &AppGraph,
        function: &str,
        event: &Value,
    ) -> Result<crate::events::Natives, GcpError> {
        let (service, stage) = (graph.service.as_str(), graph.stage.as_str());
        let kind = event["type"].as_str().unwrap_or("http");
        let f = &graph.functions[function];
        // The resource the event names, else the function's first trigger of that kind.
        let trigger = f.triggers.iter().find(|t| t.spec.kind().as_str() == kind);
        let resource = event["source"]
            .as_str()
            .or_else(|| event["bucket"].as_str())
            .or_else(|| event["table"].as_str())
            .filter(|s| graph.resources.contains_key(*s))
            .or_else(|| trigger.and_then(|t| t.spec.resource()));
        let p = &self.settings.project;
        let mut n = crate::events::Natives {
            project: p.clone(),
            database: format!(
                "projects/{p}/databases/{}",
                self.settings.firestore_database
            ),
            ..Default::default()
        };
        if let Some(r) = resource.and_then(|r| graph.resources.get(r)) {
            match r.kind {
                nimbus_manifest::ResourceKind::Queue | nimbus_manifest::ResourceKind::Topic => {
                    let id = names::pubsub(service, stage, &r.name)?;
                    n.topic = format!("projects/{p}/topics/{id}");
                    n.subscription = format!("projects/{p}/subscriptions/{id}");
                }
                nimbus_manifest::ResourceKind::Bucket => {
                    n.bucket = names::bucket(service, stage, &r.name, p)?;
                }
                nimbus_manifest::ResourceKind::Table => {
                    n.collection = names::collection(service, stage, &r.name);
                    if let nimbus_graph::ResourceSpec::Table { key, sort_key } = &r.spec {
                        n.key_fields = std::iter::once(key.0.clone())
                            .chain(sort_key.as_ref().map(|k| k.0.clone()))
                            .collect();
                    }
                }
            }
        }
        if let Some(t) = f
            .triggers
            .iter()
            .find(|t| matches!(t.spec, TriggerSpec::Schedule { .. }))
        {
            n.job = format!(
                "{}/jobs/{}",
                self.settings.location(),
                names::job(service, stage, &t.id)
            );
        }
        Ok(n)
    }
}
