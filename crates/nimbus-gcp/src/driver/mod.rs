//! The REST driver: `nimbus_engine::Driver` for every kind of [`crate::kinds`].
//!
//! Creates, updates and deletes are the documented REST calls (see the kinds table); the
//! long-running ones (Cloud Functions, Eventarc, API Gateway) return an operation, which is polled
//! (`GET <api>/<version>/<operation name>`) with progress ([`nimbus_cloud::Progress::Waiting`])
//! until it is `done`, fails with its `error`, or passes the timeout (`NIMBUS_GCP_OPERATION_TIMEOUT`
//! seconds, 20 minutes by default; poll interval `NIMBUS_GCP_POLL_MS`, 2 s by default: [`Timing`]).
//! Updates send only what changed: a `PATCH` with an `updateMask` of the changed fields.
//! IAM members are read-modify-write of the resource's policy with its `etag` ([`iam`]).
//! Deletes of missing objects succeed. 429 and 5xx answers are retryable.
//!
//! **Reading** answers in lowering's shape ([`shape`]), by physical id (the full resource name) or
//! by physical name (the short id lowering chose: the engine looks an interrupted create up that
//! way), which the [`Scope`] turns into the full name. A function still `DEPLOYING` (its create
//! was interrupted) is waited for; one left `FAILED` by a failed build serves nothing and reads as
//! absent, and a create that finds its name taken by such a function redeploys it in place (a
//! `PATCH` of every field lowering sets), so a deploy that failed half-way converges when re-run.

pub(crate) mod existing;
mod iam;
pub mod shape;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use nimbus_engine::{Applied, Driver, DriverError, Live, NativeResource, StateEntry};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::api::{ApiError, Client, urlencode};
use crate::kinds;
use crate::lower::GcpSettings;
use crate::names;

/// Where a deployment's objects live: what turns a short physical name into a full one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The project id.
    pub project: String,
    /// The region of functions, triggers, jobs and the gateway.
    pub region: String,
    /// Where Firestore's Eventarc triggers are (the database's location).
    pub firestore_location: String,
    /// The Firestore database's full name.
    pub database: String,
    /// The API Gateway API's id (its configs are named under it).
    pub api: String,
}

impl Scope {
    /// The scope of the deployment of `service` and `stage` with `settings`.
    pub fn new(settings: &GcpSettings, service: &str, stage: &str) -> Self {
        Scope {
            project: settings.project.clone(),
            region: settings.region.clone(),
            firestore_location: settings.firestore_location.clone(),
            database: format!(
                "projects/{}/databases/{}",
                settings.project, settings.firestore_database
            ),
            api: names::api(service, stage),
        }
    }

    /// The full names a physical id or name of `kind` may stand for (a full name stands for
    /// itself; an Eventarc trigger may be in the region or with the Firestore database).
    pub fn full_names(&self, kind: &str, id: &str) -> Vec<String> {
        if id.starts_with("projects/") {
            return vec![id.to_string()];
        }
        let p = &self.project;
        let location = |l: &str| format!("projects/{p}/locations/{l}");
        match kind {
            kinds::TOPIC => vec![format!("projects/{p}/topics/{id}")],
            kinds::SUBSCRIPTION => vec![format!("projects/{p}/subscriptions/{id}")],
            kinds::FUNCTION => vec![format!("{}/functions/{id}", location(&self.region))],
            kinds::EVENTARC_TRIGGER => {
                let mut out = vec![format!("{}/triggers/{id}", location(&self.region))];
                if self.firestore_location != self.region {
                    out.push(format!(
                        "{}/triggers/{id}",
                        location(&self.firestore_location)
                    ));
                }
                out
            }
            kinds::SCHEDULER_JOB => vec![format!("{}/jobs/{id}", location(&self.region))],
            kinds::SECRET => vec![format!("projects/{p}/secrets/{id}")],
            kinds::API => vec![format!("{}/apis/{id}", location("global"))],
            kinds::API_CONFIG => vec![format!(
                "{}/apis/{}/configs/{id}",
                location("global"),
                self.api
            )],
            kinds::GATEWAY => vec![format!("{}/gateways/{id}", location(&self.region))],
            _ => vec![id.to_string()],
        }
    }
}

/// How long to wait, and how often to look, for Google's long-running work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Between two reads of an operation (`NIMBUS_GCP_POLL_MS`, 2 s by default).
    pub poll: Duration,
    /// The longest wait for one operation (`NIMBUS_GCP_OPERATION_TIMEOUT` seconds, 20 minutes).
    pub operation_timeout: Duration,
    /// The engine's first wait before retrying a retryable failure (`NIMBUS_GCP_RETRY_BASE_MS`;
    /// the engine's default when unset).
    pub retry_base: Option<Duration>,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(1200),
            retry_base: None,
        }
    }
}

impl Timing {
    /// The defaults, overridden by the environment variables named on each field.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let d = Timing::default();
        Timing {
            poll: var("NIMBUS_GCP_POLL_MS").map_or(d.poll, Duration::from_millis),
            operation_timeout: var("NIMBUS_GCP_OPERATION_TIMEOUT")
                .map_or(d.operation_timeout, Duration::from_secs),
            retry_base: var("NIMBUS_GCP_RETRY_BASE_MS").map(Duration::from_millis),
        }
    }
}

/// The driver: a client, the deployment's scope, and where progress goes.
#[derive(Clone)]
pub struct GcpDriver {
    client: Client,
    scope: Scope,
    progress: Option<nimbus_cloud::ProgressFn>,
    timeout: Duration,
    poll: Duration,
}

type R<T> = Result<T, DriverError>;

fn de(e: ApiError) -> DriverError {
    e.to_driver()
}

impl GcpDriver {
    /// A driver calling through `client` for the deployment in `scope`, waiting as `timing`
    /// says, reporting waits to `progress`.
    pub fn new(
        client: Client,
        scope: Scope,
        timing: Timing,
        progress: Option<nimbus_cloud::ProgressFn>,
    ) -> Self {
        GcpDriver {
            client,
            scope,
            progress,
            timeout: timing.operation_timeout,
            poll: timing.poll,
        }
    }

    fn url(&self, api: &str, path: &str) -> String {
        self.client.url(api, path)
    }

    async fn call(&self, method: Method, url: &str, body: Option<&Value>) -> R<Value> {
        self.client.json(method, url, body).await.map_err(de)
    }

    fn waiting(&self, what: &str, status: &str, started: Instant) {
        if let Some(p) = &self.progress {
            p(&nimbus_cloud::Progress::Waiting {
                what: what.to_string(),
                status: status.to_string(),
                elapsed: started.elapsed(),
            });
        }
    }

    /// Waits for a long-running operation of `api` (`version`) and returns its `response`.
    async fn wait(&self, api: &str, version: &str, op: Value, what: &str) -> R<Value> {
        let started = Instant::now();
        let mut op = op;
        loop {
            if op["done"].as_bool() == Some(true) {
                if let Some(err) = op.get("error") {
                    return Err(DriverError::permanent(format!(
                        "{what}: the operation failed: {}",
                        err["message"].as_str().unwrap_or("(no message)")
                    )));
                }
                return Ok(op.get("response").cloned().unwrap_or(Value::Null));
            }
            let Some(name) = op["name"]
                .as_str()
                .filter(|n| n.contains("/operations/"))
                .map(str::to_string)
            else {
                // Not an operation: the answer is the object.
                return Ok(op);
            };
            if started.elapsed() > self.timeout {
                return Err(DriverError::retryable(format!(
                    "{what}: operation `{name}` not done after {} s",
                    self.timeout.as_secs()
                )));
            }
            let status = op["metadata"]["stage"]
                .as_str()
                .or_else(|| op["metadata"]["statusDetail"].as_str())
                .unwrap_or("running")
                .to_string();
            self.waiting(what, &status, started);
            tokio::time::sleep(self.poll).await;
            op = self
                .call(
                    Method::GET,
                    &self.url(api, &format!("/{version}/{name}")),
                    None,
                )
                .await?;
        }
    }

    /// `POST <api>/<version>/<parent>/<collection>?<id param>=<id>` with `body`, waited for.
    async fn create_lro(
        &self,
        api: &str,
        version: &str,
        name: &str,
        id_param: &str,
        body: &Value,
    ) -> Result<Value, Failed> {
        let (parent, id) = split_name(name);
        let url = self.url(
            api,
            &format!("/{version}/{parent}?{id_param}={}", urlencode(id)),
        );
        let op = self
            .client
            .json(Method::POST, &url, Some(body))
            .await
            .map_err(Failed::Call)?;
        self.wait(api, version, op, &format!("creating `{name}`"))
            .await
            .map_err(Failed::Driver)
    }

    async fn delete_lro(&self, api: &str, version: &str, name: &str) -> R<()> {
        match self
            .client
            .json(
                Method::DELETE,
                &self.url(api, &format!("/{version}/{name}")),
                None,
            )
            .await
        {
            Ok(op) => self
                .wait(api, version, op, &format!("deleting `{name}`"))
                .await
                .map(|_| ()),
            Err(e) if e.not_found() => Ok(()),
            Err(e) => Err(de(e)),
        }
    }

    /// `PATCH <api>/<version>/<name>?updateMask=…` with `body`, waited for.
    async fn patch_lro(
        &self,
        api: &str,
        version: &str,
        name: &str,
        mask: &[String],
        body: &Value,
    ) -> R<Value> {
        let url = self.url(
            api,
            &format!(
                "/{version}/{name}?updateMask={}",
                urlencode(&mask.join(","))
            ),
        );
        let op = self.call(Method::PATCH, &url, Some(body)).await?;
        self.wait(api, version, op, &format!("updating `{name}`"))
            .await
    }

    async fn get(&self, api: &str, path: &str) -> R<Option<Value>> {
        match self
            .client
            .json(Method::GET, &self.url(api, path), None)
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.not_found() => Ok(None),
            Err(e) => Err(de(e)),
        }
    }

    /// The function `name` once it is no longer `DEPLOYING` (an interrupted create or update
    /// goes on without us).
    async fn settled_function(&self, name: &str) -> R<Option<Value>> {
        let started = Instant::now();
        loop {
            let Some(f) = self.get("cloudfunctions", &format!("/v2/{name}")).await? else {
                return Ok(None);
            };
            if f["state"] != "DEPLOYING" {
                return Ok(Some(f));
            }
            if started.elapsed() > self.timeout {
                return Err(DriverError::retryable(format!(
                    "function `{name}` still deploying after {} s",
                    self.timeout.as_secs()
                )));
            }
            self.waiting(&format!("function `{name}`"), "deploying", started);
            tokio::time::sleep(self.poll).await;
        }
    }

    // ------------------------------------------------------------------- per kind

    async fn create_kind(&self, kind: &str, p: &Value) -> R<(String, BTreeMap<String, Value>)> {
        let name = str_of(p, "name").to_string();
        match kind {
            kinds::SERVICE_ACCOUNT => {
                let project = str_of(p, "project");
                let url = self.url("iam", &format!("/v1/projects/{project}/serviceAccounts"));
                let body = json!({
                    "accountId": p["accountId"],
                    "serviceAccount": { "displayName": p["displayName"], "description": p["description"] },
                });
                let sa = self.call(Method::POST, &url, Some(&body)).await?;
                let email = str_of(&sa, "email").to_string();
                Ok((email, account_outputs(&sa)))
            }
            kinds::PROJECT_IAM_MEMBER
            | kinds::TOPIC_IAM_MEMBER
            | kinds::SUBSCRIPTION_IAM_MEMBER
            | kinds::SERVICE_IAM_MEMBER
            | kinds::BUCKET_IAM_MEMBER
            | kinds::SECRET_IAM_MEMBER => {
                self.edit_policy(kind, p, true).await?;
                Ok((iam::member_id(p), BTreeMap::new()))
            }
            kinds::TOPIC | kinds::SUBSCRIPTION => {
                let body = without(p, &["name"]);
                self.call(
                    Method::PUT,
                    &self.url("pubsub", &format!("/v1/{name}")),
                    Some(&body),
                )
                .await?;
                Ok((name.clone(), outputs([("name", json!(name))])))
            }
            kinds::BUCKET => {
                let url = self.url(
                    "storage",
                    &format!("/storage/v1/b?project={}", urlencode(str_of(p, "project"))),
                );
                let body = without(p, &["project"]);
                self.call(Method::POST, &url, Some(&body)).await?;
                Ok((name.clone(), outputs([("name", json!(name))])))
            }
            kinds::SECRET => {
                let (parent, id) = name.rsplit_once("/secrets/").unwrap_or_default();
                let url = self.url(
                    "secretmanager",
                    &format!("/v1/{parent}/secrets?secretId={}", urlencode(id)),
                );
                let body = without(p, &["name"]);
                let secret = match self.client.json(Method::POST, &url, Some(&body)).await {
                    Ok(s) => s,
                    // Made by `nimbus secret set` before the first deploy: adopt it.
                    Err(e) if e.conflict() => {
                        let url =
                            self.url("secretmanager", &format!("/v1/{name}?updateMask=labels"));
                        self.call(Method::PATCH, &url, Some(p)).await?
                    }
                    Err(e) => return Err(de(e)),
                };
                Ok((name.clone(), secret_outputs(&name, &secret)))
            }
            kinds::COLLECTION => {
                let collection = str_of(p, "collection");
                let database = str_of(p, "database");
                let url = self.url(
                    "firestore",
                    &format!(
                        "/v1/{database}/documents/{}?pageSize=1",
                        urlencode(collection)
                    ),
                );
                self.call(Method::GET, &url, None).await.map_err(|e| {
                    DriverError::permanent(format!(
                        "the Firestore database `{database}` cannot be read (create it first: `gcloud firestore databases create`): {}",
                        e.message
                    ))
                })?;
                let path = format!("{database}/documents/{collection}");
                Ok((path.clone(), collection_outputs(collection, &path)))
            }
            kinds::EXISTING => self.apply_existing(p).await,
            kinds::FUNCTION => {
                let f = match self
                    .create_lro("cloudfunctions", "v2", &name, "functionId", p)
                    .await
                {
                    Ok(f) => f,
                    // Ours, left by an earlier run whose build failed: redeploy it in place.
                    Err(Failed::Call(e)) if e.conflict() => {
                        let mut mask = update_mask(kind, &json!({}), p);
                        mask.retain(|m| m != "environment");
                        self.patch_lro("cloudfunctions", "v2", &name, &mask, p)
                            .await?
                    }
                    Err(Failed::Call(e)) => return Err(de(e)),
                    Err(Failed::Driver(e)) => return Err(e),
                };
                let f = match f.get("serviceConfig") {
                    Some(_) => f,
                    None => self
                        .get("cloudfunctions", &format!("/v2/{name}"))
                        .await?
                        .unwrap_or(f),
                };
                Ok((name.clone(), function_outputs(&name, &f)))
            }
            kinds::EVENTARC_TRIGGER => {
                self.create_lro("eventarc", "v1", &name, "triggerId", p)
                    .await
                    .map_err(Failed::into_driver)?;
                Ok((name.clone(), outputs([("name", json!(name))])))
            }
            kinds::SCHEDULER_JOB => {
                let (parent, _) = split_name(&name);
                self.call(
                    Method::POST,
                    &self.url("cloudscheduler", &format!("/v1/{parent}")),
                    Some(p),
                )
                .await?;
                Ok((name.clone(), outputs([("name", json!(name))])))
            }
            kinds::API => {
                let api = self
                    .create_lro("apigateway", "v1", &name, "apiId", p)
                    .await
                    .map_err(Failed::into_driver)?;
                Ok((name.clone(), api_outputs(&name, &api)))
            }
            kinds::API_CONFIG => {
                let body = encode_documents(p);
                self.create_lro("apigateway", "v1", &name, "apiConfigId", &body)
                    .await
                    .map_err(Failed::into_driver)?;
                Ok((name.clone(), outputs([("name", json!(name))])))
            }
            kinds::GATEWAY => {
                let gw = self
                    .create_lro("apigateway", "v1", &name, "gatewayId", p)
                    .await
                    .map_err(Failed::into_driver)?;
                let gw = match gw.get("defaultHostname") {
                    Some(_) => gw,
                    None => self
                        .get("apigateway", &format!("/v1/{name}"))
                        .await?
                        .unwrap_or(gw),
                };
                Ok((name.clone(), gateway_outputs(&name, &gw)))
            }
            other => Err(DriverError::permanent(format!("unknown kind `{other}`"))),
        }
    }

    async fn update_kind(
        &self,
        kind: &str,
        prior: &StateEntry,
        p: &Value,
    ) -> R<BTreeMap<String, Value>> {
        let name = str_of(p, "name").to_string();
        let mask = update_mask(kind, &prior.properties, p);
        let mut out = prior.outputs.clone();
        if mask.is_empty() {
            return Ok(out);
        }
        match kind {
            kinds::SERVICE_ACCOUNT => {
                let url = self.url(
                    "iam",
                    &format!("/v1/projects/-/serviceAccounts/{}", prior.physical_id),
                );
                let body = json!({
                    "serviceAccount": { "displayName": p["displayName"], "description": p["description"] },
                    "updateMask": "displayName,description",
                });
                self.call(Method::PATCH, &url, Some(&body)).await?;
            }
            kinds::TOPIC | kinds::SUBSCRIPTION => {
                let field = if kind == kinds::TOPIC {
                    "topic"
                } else {
                    "subscription"
                };
                let snake: Vec<String> = mask.iter().map(|m| snake_case(m)).collect();
                let body = json!({ field: p, "updateMask": snake.join(",") });
                self.call(
                    Method::PATCH,
                    &self.url("pubsub", &format!("/v1/{name}")),
                    Some(&body),
                )
                .await?;
            }
            kinds::BUCKET => {
                let body: Map<String, Value> = mask
                    .iter()
                    .filter_map(|m| p.get(m).map(|v| (m.clone(), v.clone())))
                    .collect();
                let url = self.url("storage", &format!("/storage/v1/b/{}", urlencode(&name)));
                self.call(Method::PATCH, &url, Some(&Value::Object(body)))
                    .await?;
            }
            kinds::FUNCTION => {
                let done = self
                    .patch_lro("cloudfunctions", "v2", &name, &mask, p)
                    .await?;
                let f = match done.get("serviceConfig") {
                    Some(_) => done,
                    None => self
                        .get("cloudfunctions", &format!("/v2/{name}"))
                        .await?
                        .unwrap_or(done),
                };
                out = function_outputs(&name, &f);
            }
            kinds::EVENTARC_TRIGGER | kinds::API | kinds::GATEWAY => {
                let api = if kind == kinds::EVENTARC_TRIGGER {
                    "eventarc"
                } else {
                    "apigateway"
                };
                self.patch_lro(api, "v1", &name, &mask, p).await?;
                if kind == kinds::GATEWAY
                    && let Some(gw) = self.get(api, &format!("/v1/{name}")).await?
                {
                    out = gateway_outputs(&name, &gw);
                }
            }
            kinds::SECRET => {
                let url = self.url(
                    "secretmanager",
                    &format!("/v1/{name}?updateMask={}", urlencode(&mask.join(","))),
                );
                self.call(Method::PATCH, &url, Some(p)).await?;
            }
            kinds::SCHEDULER_JOB => {
                let url = self.url(
                    "cloudscheduler",
                    &format!("/v1/{name}?updateMask={}", urlencode(&mask.join(","))),
                );
                self.call(Method::PATCH, &url, Some(p)).await?;
            }
            other => {
                return Err(DriverError::permanent(format!(
                    "`{other}` is never updated in place (it is replaced)"
                )));
            }
        }
        Ok(out)
    }

    /// The first of `names` that exists, read from `api` (`version`).
    async fn first(&self, api: &str, version: &str, names: &[String]) -> R<Option<Value>> {
        for n in names {
            if let Some(v) = self.get(api, &format!("/{version}/{n}")).await? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

/// A create's failure: the first call (whose status tells, e.g., a name taken), or later.
enum Failed {
    Call(ApiError),
    Driver(DriverError),
}

impl Failed {
    fn into_driver(self) -> DriverError {
        match self {
            Failed::Call(e) => de(e),
            Failed::Driver(e) => e,
        }
    }
}

impl Driver for GcpDriver {
    async fn create(&self, resource: &NativeResource, properties: &Value) -> R<Applied> {
        let (physical_id, outputs) = self.create_kind(&resource.kind, properties).await?;
        Ok(Applied {
            physical_id,
            outputs,
        })
    }

    async fn update(
        &self,
        resource: &NativeResource,
        prior: &StateEntry,
        properties: &Value,
    ) -> R<Applied> {
        let outputs = self.update_kind(&resource.kind, prior, properties).await?;
        Ok(Applied {
            physical_id: prior.physical_id.clone(),
            outputs,
        })
    }

    async fn delete(&self, entry: &StateEntry) -> R<()> {
        let p = &entry.properties;
        let name = str_of(p, "name");
        let gone = |r: Result<Value, ApiError>| match r {
            Ok(_) => Ok(()),
            Err(e) if e.not_found() => Ok(()),
            Err(e) => Err(de(e)),
        };
        match entry.kind.as_str() {
            kinds::SERVICE_ACCOUNT => {
                let url = self.url(
                    "iam",
                    &format!("/v1/projects/-/serviceAccounts/{}", entry.physical_id),
                );
                gone(self.client.json(Method::DELETE, &url, None).await)
            }
            kinds::PROJECT_IAM_MEMBER
            | kinds::TOPIC_IAM_MEMBER
            | kinds::SUBSCRIPTION_IAM_MEMBER
            | kinds::SERVICE_IAM_MEMBER
            | kinds::BUCKET_IAM_MEMBER
            | kinds::SECRET_IAM_MEMBER => self.edit_policy(&entry.kind, p, false).await,
            // Deleting the secret deletes its versions (the values) too.
            kinds::SECRET => gone(
                self.client
                    .json(
                        Method::DELETE,
                        &self.url("secretmanager", &format!("/v1/{name}")),
                        None,
                    )
                    .await,
            ),
            kinds::TOPIC | kinds::SUBSCRIPTION => gone(
                self.client
                    .json(
                        Method::DELETE,
                        &self.url("pubsub", &format!("/v1/{name}")),
                        None,
                    )
                    .await,
            ),
            kinds::BUCKET => {
                // Only reached when empty or forced: empty it first.
                let store = crate::storage::GcsStore::new(self.client.clone(), name);
                match store.list("").await {
                    Ok(keys) => {
                        for k in keys {
                            store.remove(&k).await.map_err(de)?;
                        }
                    }
                    Err(e) if e.not_found() => return Ok(()),
                    Err(e) => return Err(de(e)),
                }
                let url = self.url("storage", &format!("/storage/v1/b/{}", urlencode(name)));
                gone(self.client.json(Method::DELETE, &url, None).await)
            }
            // Not Nimbus's: forgotten, never deleted.
            kinds::COLLECTION | kinds::EXISTING => Ok(()),
            kinds::FUNCTION => self.delete_lro("cloudfunctions", "v2", name).await,
            kinds::EVENTARC_TRIGGER => self.delete_lro("eventarc", "v1", name).await,
            kinds::API | kinds::API_CONFIG | kinds::GATEWAY => {
                self.delete_lro("apigateway", "v1", name).await
            }
            kinds::SCHEDULER_JOB => gone(
                self.client
                    .json(
                        Method::DELETE,
                        &self.url("cloudscheduler", &format!("/v1/{name}")),
                        None,
                    )
                    .await,
            ),
            other => Err(DriverError::permanent(format!("unknown kind `{other}`"))),
        }
    }

    async fn read(&self, kind: &str, physical_id: &str) -> R<Option<Live>> {
        let live = |physical_id: String, properties: Value, outputs: BTreeMap<String, Value>| {
            Some(Live {
                physical_id,
                properties,
                outputs,
            })
        };
        if kind == kinds::EXISTING {
            return self.read_existing(physical_id).await;
        }
        let names = self.scope.full_names(kind, physical_id);
        let name = names[0].clone();
        Ok(match kind {
            kinds::SERVICE_ACCOUNT => {
                let email = if physical_id.contains('@') {
                    physical_id.to_string()
                } else {
                    format!(
                        "{physical_id}@{}.iam.gserviceaccount.com",
                        self.scope.project
                    )
                };
                let Some(sa) = self
                    .get("iam", &format!("/v1/projects/-/serviceAccounts/{email}"))
                    .await?
                else {
                    return Ok(None);
                };
                live(email, shape::service_account(&sa), account_outputs(&sa))
            }
            kinds::TOPIC | kinds::SUBSCRIPTION => {
                let Some(v) = self.get("pubsub", &format!("/v1/{name}")).await? else {
                    return Ok(None);
                };
                let props = match kind {
                    kinds::TOPIC => shape::topic(&v),
                    _ => shape::subscription(&v),
                };
                live(name.clone(), props, outputs([("name", json!(name))]))
            }
            kinds::BUCKET => {
                let Some(b) = self
                    .get(
                        "storage",
                        &format!("/storage/v1/b/{}", urlencode(physical_id)),
                    )
                    .await?
                else {
                    return Ok(None);
                };
                live(
                    physical_id.to_string(),
                    shape::bucket(&b, &self.scope.project),
                    outputs([("name", b["name"].clone())]),
                )
            }
            kinds::COLLECTION => {
                let path = if physical_id.contains("/documents/") {
                    physical_id.to_string()
                } else {
                    format!("{}/documents/{physical_id}", self.scope.database)
                };
                let (database, collection) = path.split_once("/documents/").unwrap_or_default();
                live(
                    path.clone(),
                    json!({ "database": database, "collection": collection }),
                    collection_outputs(collection, &path),
                )
            }
            kinds::FUNCTION => {
                let Some(f) = self.settled_function(&name).await? else {
                    return Ok(None);
                };
                if f["state"] == "FAILED" {
                    return Ok(None);
                }
                live(
                    name.clone(),
                    shape::function(&f),
                    function_outputs(&name, &f),
                )
            }
            kinds::EVENTARC_TRIGGER => {
                let Some(t) = self.first("eventarc", "v1", &names).await? else {
                    return Ok(None);
                };
                let name = str_of(&t, "name").to_string();
                live(
                    name.clone(),
                    shape::eventarc_trigger(&t),
                    outputs([("name", json!(name))]),
                )
            }
            kinds::SCHEDULER_JOB => {
                let Some(j) = self.first("cloudscheduler", "v1", &names).await? else {
                    return Ok(None);
                };
                live(
                    name.clone(),
                    shape::scheduler_job(&j),
                    outputs([("name", json!(name))]),
                )
            }
            kinds::SECRET => {
                let Some(v) = self.get("secretmanager", &format!("/v1/{name}")).await? else {
                    return Ok(None);
                };
                live(name.clone(), shape::secret(&v), secret_outputs(&name, &v))
            }
            kinds::API => {
                let Some(a) = self.first("apigateway", "v1", &names).await? else {
                    return Ok(None);
                };
                live(name.clone(), shape::api(&a), api_outputs(&name, &a))
            }
            kinds::API_CONFIG => {
                let Some(c) = self
                    .get("apigateway", &format!("/v1/{name}?view=FULL"))
                    .await?
                else {
                    return Ok(None);
                };
                live(
                    name.clone(),
                    shape::api_config(&c),
                    outputs([("name", json!(name))]),
                )
            }
            kinds::GATEWAY => {
                let Some(g) = self.first("apigateway", "v1", &names).await? else {
                    return Ok(None);
                };
                live(name.clone(), shape::gateway(&g), gateway_outputs(&name, &g))
            }
            // IAM members: the physical id is `<resource> <role> <member>`, present or not.
            _ => {
                let Some(p) = iam::member_properties(kind, physical_id) else {
                    return Ok(None);
                };
                if self.has_member(kind, &p).await? {
                    live(physical_id.to_string(), p, BTreeMap::new())
                } else {
                    None
                }
            }
        })
    }

    async fn holds_data(&self, entry: &StateEntry) -> R<bool> {
        match entry.kind.as_str() {
            kinds::BUCKET => {
                let url = self.url(
                    "storage",
                    &format!(
                        "/storage/v1/b/{}/o?maxResults=1",
                        urlencode(&entry.physical_id)
                    ),
                );
                match self.client.json(Method::GET, &url, None).await {
                    Ok(v) => Ok(v["items"].as_array().is_some_and(|i| !i.is_empty())),
                    Err(e) if e.not_found() => Ok(false),
                    Err(e) => Err(de(e)),
                }
            }
            kinds::COLLECTION => {
                let url = self.url(
                    "firestore",
                    &format!("/v1/{}?pageSize=1", entry.physical_id),
                );
                match self.client.json(Method::GET, &url, None).await {
                    Ok(v) => Ok(v["documents"].as_array().is_some_and(|d| !d.is_empty())),
                    Err(e) if e.not_found() => Ok(false),
                    Err(e) => Err(de(e)),
                }
            }
            _ => Ok(false),
        }
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn outputs<const N: usize>(items: [(&str, Value); N]) -> BTreeMap<String, Value> {
    items.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn without(v: &Value, keys: &[&str]) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

fn account_outputs(sa: &Value) -> BTreeMap<String, Value> {
    let email = str_of(sa, "email");
    outputs([
        ("email", json!(email)),
        ("member", json!(format!("serviceAccount:{email}"))),
        ("name", sa["name"].clone()),
    ])
}

fn collection_outputs(collection: &str, path: &str) -> BTreeMap<String, Value> {
    outputs([("collection", json!(collection)), ("path", json!(path))])
}

fn function_outputs(name: &str, f: &Value) -> BTreeMap<String, Value> {
    let service_path = str_of(&f["serviceConfig"], "service").to_string();
    let uri = f["serviceConfig"]["uri"]
        .as_str()
        .or_else(|| f["url"].as_str())
        .unwrap_or_default();
    outputs([
        ("name", json!(name)),
        ("uri", json!(uri)),
        (
            "service",
            json!(service_path.rsplit('/').next().unwrap_or_default()),
        ),
        ("service_path", json!(service_path)),
    ])
}

fn api_outputs(name: &str, api: &Value) -> BTreeMap<String, Value> {
    outputs([
        ("name", json!(name)),
        ("managedService", api["managedService"].clone()),
    ])
}

fn gateway_outputs(name: &str, gw: &Value) -> BTreeMap<String, Value> {
    outputs([
        ("name", json!(name)),
        (
            "url",
            json!(format!("https://{}", str_of(gw, "defaultHostname"))),
        ),
    ])
}

/// `projects/p/locations/l/functions/f` → (`projects/p/locations/l/functions`, `f`).
fn split_name(name: &str) -> (&str, &str) {
    name.rsplit_once('/').unwrap_or(("", name))
}

/// The fields to name in an update mask: changed top-level fields, and for the nested configs
/// of a function (`buildConfig`, `serviceConfig`) their changed fields.
pub fn update_mask(kind: &str, before: &Value, after: &Value) -> Vec<String> {
    let (Some(a), Some(b)) = (before.as_object(), after.as_object()) else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut mask = Vec::new();
    for k in keys {
        if k == "name" || a.get(k) == b.get(k) {
            continue;
        }
        let nested =
            kind == kinds::FUNCTION && matches!(k.as_str(), "buildConfig" | "serviceConfig");
        match (
            nested,
            a.get(k).and_then(Value::as_object),
            b.get(k).and_then(Value::as_object),
        ) {
            (true, Some(x), Some(y)) => {
                let mut sub: Vec<&String> = x.keys().chain(y.keys()).collect();
                sub.sort();
                sub.dedup();
                for s in sub {
                    if x.get(s) != y.get(s) {
                        mask.push(format!("{k}.{s}"));
                    }
                }
            }
            _ => mask.push(k.clone()),
        }
    }
    mask
}

/// `ackDeadlineSeconds` → `ack_deadline_seconds` (Pub/Sub's masks are in proto field names).
fn snake_case(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// An API config with its documents' contents encoded as the API takes them (base64 of JSON).
fn encode_documents(p: &Value) -> Value {
    let mut body = p.clone();
    if let Some(docs) = body["openapiDocuments"].as_array_mut() {
        for d in docs {
            let contents = &d["document"]["contents"];
            let text = serde_json::to_vec(contents).expect("json");
            d["document"]["contents"] =
                json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
    }
    body
}

/// A secret's outputs: its full name and its id.
fn secret_outputs(name: &str, secret: &Value) -> BTreeMap<String, Value> {
    let name = secret["name"].as_str().unwrap_or(name);
    let id = name.rsplit('/').next().unwrap_or_default();
    outputs([("name", json!(name)), ("secret_id", json!(id))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_name_only_what_changed() {
        let a = json!({"name": "n", "labels": {"a": "1"}, "serviceConfig": {"availableMemory": "256Mi", "timeoutSeconds": 10}, "buildConfig": {"runtime": "python312"}});
        let b = json!({"name": "n", "labels": {"a": "1"}, "serviceConfig": {"availableMemory": "512Mi", "timeoutSeconds": 10}, "buildConfig": {"runtime": "python312"}});
        assert_eq!(
            update_mask(kinds::FUNCTION, &a, &b),
            ["serviceConfig.availableMemory"]
        );
        assert_eq!(
            update_mask(
                kinds::SUBSCRIPTION,
                &json!({"ackDeadlineSeconds": 1}),
                &json!({"ackDeadlineSeconds": 2})
            ),
            ["ackDeadlineSeconds"]
        );
        assert_eq!(snake_case("ackDeadlineSeconds"), "ack_deadline_seconds");
    }

    #[test]
    fn short_names_become_full_names() {
        let scope = Scope {
            project: "p".into(),
            region: "europe-west1".into(),
            firestore_location: "eur3".into(),
            database: "projects/p/databases/(default)".into(),
            api: "shop-dev".into(),
        };
        assert_eq!(
            scope.full_names(kinds::FUNCTION, "shop-dev-f"),
            ["projects/p/locations/europe-west1/functions/shop-dev-f"]
        );
        assert_eq!(
            scope.full_names(kinds::EVENTARC_TRIGGER, "t"),
            [
                "projects/p/locations/europe-west1/triggers/t",
                "projects/p/locations/eur3/triggers/t"
            ]
        );
        assert_eq!(
            scope.full_names(kinds::API_CONFIG, "shop-dev-0123abcd"),
            ["projects/p/locations/global/apis/shop-dev/configs/shop-dev-0123abcd"]
        );
        assert_eq!(
            scope.full_names(kinds::TOPIC, "projects/p/topics/t"),
            ["projects/p/topics/t"]
        );
    }
}
