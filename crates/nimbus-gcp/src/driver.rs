//! The REST driver: `nimbus_engine::Driver` for every kind of [`crate::kinds`].
//!
//! Creates, updates and deletes are the documented REST calls (see the kinds table); the
//! long-running ones (Cloud Functions, Eventarc, API Gateway) return an operation, which is polled
//! (`GET <api>/<version>/<operation name>`) with progress ([`nimbus_cloud::Progress::Waiting`])
//! until it is `done`, fails with its `error`, or passes the timeout (`NIMBUS_GCP_OPERATION_TIMEOUT`
//! seconds, 20 minutes by default; poll interval `NIMBUS_GCP_POLL_MS`, 2 s by default).
//! Updates send only what changed: a `PATCH` with an `updateMask` of the changed fields.
//! IAM members are read-modify-write of the resource's policy with its `etag` (a concurrent
//! change is a retryable conflict). Deletes of missing objects succeed. 429 and 5xx answers
//! are retryable.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use nimbus_engine::{Applied, Driver, DriverError, Live, NativeResource, StateEntry};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::api::{ApiError, Client, urlencode};
use crate::kinds;

/// The driver: a client and where progress goes.
#[derive(Clone)]
pub struct GcpDriver {
    client: Client,
    progress: Option<nimbus_cloud::ProgressFn>,
    timeout: Duration,
    poll: Duration,
}

type R<T> = Result<T, DriverError>;

fn de(e: ApiError) -> DriverError {
    e.to_driver()
}

impl GcpDriver {
    /// A driver calling through `client`, reporting waits to `progress`.
    pub fn new(client: Client, progress: Option<nimbus_cloud::ProgressFn>) -> Self {
        let secs = |var: &str, default: u64| {
            std::env::var(var)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        GcpDriver {
            client,
            progress,
            timeout: Duration::from_secs(secs("NIMBUS_GCP_OPERATION_TIMEOUT", 1200)),
            poll: Duration::from_millis(secs("NIMBUS_GCP_POLL_MS", 2000)),
        }
    }

    fn url(&self, api: &str, path: &str) -> String {
        self.client.url(api, path)
    }

    async fn call(&self, method: Method, url: &str, body: Option<&Value>) -> R<Value> {
        self.client.json(method, url, body).await.map_err(de)
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
            let Some(name) = op["name"].as_str().map(str::to_string) else {
                // Not an operation: the answer is the object.
                return Ok(op);
            };
            if started.elapsed() > self.timeout {
                return Err(DriverError::retryable(format!(
                    "{what}: operation `{name}` not done after {} s",
                    self.timeout.as_secs()
                )));
            }
            if let Some(p) = &self.progress {
                let status = op["metadata"]["stage"]
                    .as_str()
                    .or_else(|| op["metadata"]["statusDetail"].as_str())
                    .unwrap_or("running")
                    .to_string();
                p(&nimbus_cloud::Progress::Waiting {
                    what: what.to_string(),
                    status,
                    elapsed: started.elapsed(),
                });
            }
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
    ) -> R<Value> {
        let (parent, id) = split_name(name);
        let url = self.url(
            api,
            &format!("/{version}/{parent}?{id_param}={}", urlencode(id)),
        );
        let op = self.call(Method::POST, &url, Some(body)).await?;
        self.wait(api, version, op, &format!("creating `{name}`"))
            .await
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

    // ------------------------------------------------------------------- IAM policies

    /// `(get url, get method, get body, set url, set method, wraps policy)` of an IAM member.
    fn policy_calls(
        &self,
        kind: &str,
        p: &Value,
    ) -> (String, Method, Option<Value>, String, Method, bool) {
        let v3 = json!({ "options": { "requestedPolicyVersion": 3 } });
        let (api, resource) = match kind {
            kinds::PROJECT_IAM_MEMBER => (
                "cloudresourcemanager",
                format!("/v1/projects/{}", str_of(p, "project")),
            ),
            kinds::TOPIC_IAM_MEMBER => ("pubsub", format!("/v1/{}", str_of(p, "topic"))),
            kinds::SUBSCRIPTION_IAM_MEMBER => {
                ("pubsub", format!("/v1/{}", str_of(p, "subscription")))
            }
            kinds::SERVICE_IAM_MEMBER => ("run", format!("/v2/{}", str_of(p, "service"))),
            _ => {
                let b = format!("/storage/v1/b/{}/iam", urlencode(str_of(p, "bucket")));
                let get = self.url("storage", &format!("{b}?optionsRequestedPolicyVersion=3"));
                return (
                    get,
                    Method::GET,
                    None,
                    self.url("storage", &b),
                    Method::PUT,
                    false,
                );
            }
        };
        let get = self.url(api, &format!("{resource}:getIamPolicy"));
        let set = self.url(api, &format!("{resource}:setIamPolicy"));
        let get_method = if api == "run" {
            Method::GET
        } else {
            Method::POST
        };
        let get = if api == "run" {
            format!("{get}?options.requestedPolicyVersion=3")
        } else {
            get
        };
        (
            get,
            get_method,
            (api != "run").then_some(v3),
            set,
            Method::POST,
            true,
        )
    }

    /// Adds (`add`) or removes the member of `p` in the role (and condition) of `p`.
    async fn edit_policy(&self, kind: &str, p: &Value, add: bool) -> R<()> {
        let (get, get_method, get_body, set, set_method, wrap) = self.policy_calls(kind, p);
        let mut policy = match self.client.json(get_method, &get, get_body.as_ref()).await {
            Ok(v) => v,
            Err(e) if e.not_found() && !add => return Ok(()),
            Err(e) => return Err(de(e)),
        };
        let role = str_of(p, "role");
        let member = str_of(p, "member");
        let condition = p.get("condition").cloned();
        let bindings = policy
            .as_object_mut()
            .ok_or_else(|| DriverError::permanent(format!("{get}: the policy is not an object")))?
            .entry("bindings")
            .or_insert_with(|| json!([]));
        let list = bindings.as_array_mut().expect("bindings are a list");
        let pos = list
            .iter()
            .position(|b| b["role"] == role && b.get("condition") == condition.as_ref());
        let changed = match (add, pos) {
            (true, Some(i)) => {
                let members = list[i]["members"].as_array_mut();
                match members {
                    Some(m) if m.iter().any(|x| x == member) => false,
                    Some(m) => {
                        m.push(json!(member));
                        true
                    }
                    None => {
                        list[i]["members"] = json!([member]);
                        true
                    }
                }
            }
            (true, None) => {
                let mut b = json!({ "role": role, "members": [member] });
                if let Some(c) = &condition {
                    b["condition"] = c.clone();
                }
                list.push(b);
                true
            }
            (false, Some(i)) => {
                let before = list[i]["members"].as_array().map_or(0, Vec::len);
                if let Some(m) = list[i]["members"].as_array_mut() {
                    m.retain(|x| x != member);
                }
                let after = list[i]["members"].as_array().map_or(0, Vec::len);
                if after == 0 {
                    list.remove(i);
                }
                before != after
            }
            (false, None) => false,
        };
        if !changed {
            return Ok(());
        }
        if condition.is_some()
            || policy["version"].as_u64().unwrap_or(1) < 3 && has_conditions(&policy)
        {
            policy["version"] = json!(3);
        }
        let body = if wrap {
            json!({ "policy": policy })
        } else {
            policy
        };
        match self.client.json(set_method, &set, Some(&body)).await {
            Ok(_) => Ok(()),
            // The etag no longer matches: someone changed the policy; read it again.
            Err(e) if e.conflict() || e.status == Some(412) => {
                Err(DriverError::retryable(e.to_string()))
            }
            Err(e) => Err(de(e)),
        }
    }

    async fn has_member(&self, kind: &str, p: &Value) -> R<bool> {
        let (get, get_method, get_body, ..) = self.policy_calls(kind, p);
        let policy = match self.client.json(get_method, &get, get_body.as_ref()).await {
            Ok(v) => v,
            Err(e) if e.not_found() => return Ok(false),
            Err(e) => return Err(de(e)),
        };
        let condition = p.get("condition");
        Ok(policy["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|b| {
                b["role"] == p["role"]
                    && b.get("condition") == condition
                    && b["members"]
                        .as_array()
                        .is_some_and(|m| m.iter().any(|x| *x == p["member"]))
            }))
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
                let sa = match self.client.json(Method::POST, &url, Some(&body)).await {
                    Ok(v) => v,
                    Err(e) => return Err(de(e)),
                };
                let email = str_of(&sa, "email").to_string();
                Ok((email.clone(), account_outputs(&sa)))
            }
            kinds::PROJECT_IAM_MEMBER
            | kinds::TOPIC_IAM_MEMBER
            | kinds::SUBSCRIPTION_IAM_MEMBER
            | kinds::SERVICE_IAM_MEMBER
            | kinds::BUCKET_IAM_MEMBER => {
                self.edit_policy(kind, p, true).await?;
                Ok((member_id(p), BTreeMap::new()))
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
                Ok((
                    format!("{database}/documents/{collection}"),
                    outputs([
                        ("collection", json!(collection)),
                        ("path", json!(format!("{database}/documents/{collection}"))),
                    ]),
                ))
            }
            kinds::FUNCTION => {
                let f = self
                    .create_lro("cloudfunctions", "v2", &name, "functionId", p)
                    .await?;
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
                    .await?;
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
                    .await?;
                Ok((name.clone(), api_outputs(&name, &api)))
            }
            kinds::API_CONFIG => {
                let body = encode_documents(p);
                self.create_lro("apigateway", "v1", &name, "apiConfigId", &body)
                    .await?;
                Ok((name.clone(), outputs([("name", json!(name))])))
            }
            kinds::GATEWAY => {
                let gw = self
                    .create_lro("apigateway", "v1", &name, "gatewayId", p)
                    .await?;
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
            kinds::FUNCTION | kinds::EVENTARC_TRIGGER | kinds::API | kinds::GATEWAY => {
                let (api, version) = match kind {
                    kinds::FUNCTION => ("cloudfunctions", "v2"),
                    kinds::EVENTARC_TRIGGER => ("eventarc", "v1"),
                    _ => ("apigateway", "v1"),
                };
                let url = self.url(
                    api,
                    &format!(
                        "/{version}/{name}?updateMask={}",
                        urlencode(&mask.join(","))
                    ),
                );
                let op = self.call(Method::PATCH, &url, Some(p)).await?;
                let done = self
                    .wait(api, version, op, &format!("updating `{name}`"))
                    .await?;
                match kind {
                    kinds::FUNCTION => {
                        let f = match done.get("serviceConfig") {
                            Some(_) => done,
                            None => self.get(api, &format!("/v2/{name}")).await?.unwrap_or(done),
                        };
                        out = function_outputs(&name, &f);
                    }
                    kinds::GATEWAY => {
                        if let Some(gw) = self.get(api, &format!("/v1/{name}")).await? {
                            out = gateway_outputs(&name, &gw);
                        }
                    }
                    _ => {}
                }
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
            | kinds::BUCKET_IAM_MEMBER => self.edit_policy(&entry.kind, p, false).await,
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
            kinds::COLLECTION => Ok(()),
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
        let live = |properties: Value, outputs: BTreeMap<String, Value>| {
            Some(Live {
                physical_id: physical_id.to_string(),
                properties,
                outputs,
            })
        };
        Ok(match kind {
            kinds::SERVICE_ACCOUNT => {
                // By email (recorded) or by account id (an interrupted create).
                let id = if physical_id.contains('@') {
                    physical_id.to_string()
                } else {
                    return Ok(None);
                };
                let Some(sa) = self
                    .get("iam", &format!("/v1/projects/-/serviceAccounts/{id}"))
                    .await?
                else {
                    return Ok(None);
                };
                let project = str_of(&sa, "projectId").to_string();
                let props = json!({
                    "project": project,
                    "accountId": id.split('@').next().unwrap_or_default(),
                    "displayName": sa["displayName"],
                    "description": sa["description"],
                });
                live(props, account_outputs(&sa))
            }
            kinds::TOPIC | kinds::SUBSCRIPTION => {
                let path = if physical_id.starts_with("projects/") {
                    physical_id.to_string()
                } else {
                    return Ok(None);
                };
                let Some(v) = self.get("pubsub", &format!("/v1/{path}")).await? else {
                    return Ok(None);
                };
                live(v, outputs([("name", json!(path))]))
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
                let props = json!({
                    "name": b["name"],
                    "project": b["projectNumber"],
                    "location": b["location"].as_str().map(str::to_ascii_lowercase),
                    "storageClass": b["storageClass"],
                    "iamConfiguration": {
                        "uniformBucketLevelAccess": { "enabled": b["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"] },
                        "publicAccessPrevention": b["iamConfiguration"]["publicAccessPrevention"],
                    },
                    "versioning": { "enabled": b["versioning"]["enabled"].as_bool().unwrap_or(false) },
                    "labels": b["labels"],
                });
                live(props, outputs([("name", b["name"].clone())]))
            }
            kinds::FUNCTION => {
                let Some(f) = self
                    .get("cloudfunctions", &format!("/v2/{}", full(physical_id)))
                    .await?
                else {
                    return Ok(None);
                };
                let name = str_of(&f, "name").to_string();
                live(f.clone(), function_outputs(&name, &f))
            }
            kinds::EVENTARC_TRIGGER
            | kinds::SCHEDULER_JOB
            | kinds::API
            | kinds::API_CONFIG
            | kinds::GATEWAY => {
                let (api, version) = match kind {
                    kinds::EVENTARC_TRIGGER => ("eventarc", "v1"),
                    kinds::SCHEDULER_JOB => ("cloudscheduler", "v1"),
                    _ => ("apigateway", "v1"),
                };
                if !physical_id.starts_with("projects/") {
                    return Ok(None);
                }
                let Some(v) = self.get(api, &format!("/{version}/{physical_id}")).await? else {
                    return Ok(None);
                };
                let out = match kind {
                    kinds::API => api_outputs(physical_id, &v),
                    kinds::GATEWAY => gateway_outputs(physical_id, &v),
                    _ => outputs([("name", json!(physical_id))]),
                };
                live(v, out)
            }
            kinds::COLLECTION => {
                let (database, collection) =
                    physical_id.split_once("/documents/").unwrap_or_default();
                live(
                    json!({ "database": database, "collection": collection }),
                    outputs([
                        ("collection", json!(collection)),
                        ("path", json!(physical_id)),
                    ]),
                )
            }
            // IAM members: the physical id is `<resource> <role> <member>`, present or not.
            _ => {
                let Some(p) = member_properties(kind, physical_id) else {
                    return Ok(None);
                };
                if self.has_member(kind, &p).await? {
                    live(p, BTreeMap::new())
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

fn full(name: &str) -> &str {
    name
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

/// The physical id of an IAM member: `<resource> <role> <member>[ <condition title>]`.
fn member_id(p: &Value) -> String {
    let resource = ["project", "topic", "subscription", "service", "bucket"]
        .iter()
        .find_map(|k| p.get(*k).and_then(Value::as_str))
        .unwrap_or_default();
    let mut id = format!("{resource} {} {}", str_of(p, "role"), str_of(p, "member"));
    if let Some(c) = p.get("condition") {
        id.push(' ');
        id.push_str(&serde_json::to_string(c).expect("json"));
    }
    id
}

/// The properties an IAM member's physical id stands for.
fn member_properties(kind: &str, id: &str) -> Option<Value> {
    let mut parts = id.splitn(4, ' ');
    let (resource, role, member) = (parts.next()?, parts.next()?, parts.next()?);
    let key = match kind {
        kinds::PROJECT_IAM_MEMBER => "project",
        kinds::TOPIC_IAM_MEMBER => "topic",
        kinds::SUBSCRIPTION_IAM_MEMBER => "subscription",
        kinds::SERVICE_IAM_MEMBER => "service",
        kinds::BUCKET_IAM_MEMBER => "bucket",
        _ => return None,
    };
    let mut p = json!({ key: resource, "role": role, "member": member });
    if let Some(c) = parts.next() {
        p["condition"] = serde_json::from_str(c).ok()?;
    }
    Some(p)
}

fn has_conditions(policy: &Value) -> bool {
    policy["bindings"]
        .as_array()
        .is_some_and(|b| b.iter().any(|b| b.get("condition").is_some()))
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
        let id = member_id(
            &json!({"topic": "projects/p/topics/t", "role": "roles/x", "member": "user:a"}),
        );
        assert_eq!(
            member_properties(kinds::TOPIC_IAM_MEMBER, &id).unwrap()["topic"],
            "projects/p/topics/t"
        );
    }
}
