//! [`Aws`]: the AWS provider as the `nimbus` command drives it ([`nimbus_cloud::Cloud`]).
//!
//! A deploy goes: lower the app (so a problem is found before anything is touched) → check
//! that every secret a function reads has a value ([`crate::secrets::check_values`]) → make sure
//! the deployment bucket exists (`nimbus-<service>-<stage>-<account>-<region>`, created on
//! first use: public access blocked, encrypted, versioned so every state has a history) →
//! upload the packages it lacks (content-addressed keys: an unchanged package is one HEAD) →
//! plan; when nothing changed and no run holds the lock, stop there (an unchanged redeploy
//! makes no write call at all, the lock included) → else apply through the engine, under the
//! lock, with the state in the same bucket (`state/<service>/<stage>/aws/state.json`, lock
//! `state/<service>/<stage>/lock.json`).
//!
//! `remove` destroys through the engine; when nothing was kept (no table or bucket holding
//! data), the deployment bucket — packages, state, lock — goes too, so nothing is left.
//!
//! Credentials and region come from the standard AWS chain (environment, profile — the
//! manifest's `providers.aws.profile` — SSO, web identity for CI OIDC, instance roles); the
//! manifest's `providers.aws.region` wins over the chain's region. An endpoint URL (an emulator
//! such as moto or LocalStack) reaches every client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_lambda::operation::RequestId as _;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use aws_smithy_types::Blob;
use nimbus_cloud::{
    Cloud, DeployOptions, Deployed, DnsRecord, Endpoint, FunctionInfo, Info, Invoked, LogLine,
    LogQuery, LogSink, Progress, ResourceInfo, Target, Upload,
};
use nimbus_engine::{
    Deployment, Engine, LockOptions, NativeResource, ObjectStoreBackend, Plan, Report, State,
};
use nimbus_graph::{AppGraph, TriggerSpec};
use nimbus_manifest::ResourceKind;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::clients::Clients;
use crate::driver::error::{Call, found};
use crate::driver::{Artifacts, AwsDriver, s3};
use crate::error::AwsError;
use crate::events::{self, Sources};
use crate::names::{self, Scope};
use crate::store::S3Store;
use crate::{AwsSettings, kinds, lower};

/// Where state and lock live in the deployment bucket.
pub const STATE_PREFIX: &str = "state";

/// How long `logs` looks back when no `--since` is given.
const DEFAULT_LOG_WINDOW: Duration = Duration::from_secs(600);

/// The engine as AWS runs it.
pub type AwsEngine = Engine<ObjectStoreBackend<S3Store>, AwsDriver>;

/// The AWS provider for one command: clients for one account and region.
#[derive(Debug, Clone)]
pub struct Aws {
    clients: Clients,
    scope: Scope,
    options: nimbus_cloud::Options,
}

/// Connects to AWS for `graph`'s service: loads the configuration (credentials, the region —
/// the manifest's `providers.aws.region` first), points every client at `endpoint_url` when
/// given, and asks STS which account the credentials belong to.
pub async fn connect(
    graph: &AppGraph,
    options: nimbus_cloud::Options,
    endpoint_url: Option<String>,
) -> Result<Aws, AwsError> {
    let setting = |key: &str| {
        graph
            .settings
            .get("aws")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    // HTTPS through rustls with ring (the SDK's default TLS would build aws-lc, a C library).
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(region) = setting("region") {
        loader = loader.region(Region::new(region));
    }
    if let Some(profile) = setting("profile") {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    let Some(region) = config.region().map(|r| r.to_string()) else {
        return Err(AwsError::Config {
            message: "no AWS region: set `providers.aws.region` in the manifest, or AWS_REGION, or a region in your AWS profile".into(),
        });
    };
    if config.credentials_provider().is_none() {
        return Err(AwsError::Config {
            message: "no AWS credentials provider is configured".into(),
        });
    }
    let clients = Clients::new(&config);
    let identity = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .call("GetCallerIdentity")
        .map_err(|e| AwsError::Config {
            message: format!(
                "could not tell which AWS account to deploy to ({}): check your credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, `aws sso login`, or the CI role){}",
                nimbus_engine::DriverError::from(e).message,
                endpoint_url
                    .as_deref()
                    .map(|u| format!(" and that {u} answers"))
                    .unwrap_or_default()
            ),
        })?;
    let account = identity.account().unwrap_or_default().to_string();
    Ok(Aws {
        clients,
        scope: Scope::new(&region, &account),
        options,
    })
}

impl Aws {
    /// The account and region.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The SDK clients.
    pub(crate) fn clients(&self) -> &Clients {
        &self.clients
    }

    /// Lowering's settings for `graph`: this account and region, the conventional deployment
    /// bucket and package prefix.
    pub fn settings(&self, graph: &AppGraph) -> Result<AwsSettings, AwsError> {
        let mut settings =
            AwsSettings::conventional(graph, &self.scope.region, &self.scope.account);
        settings.artifact_bucket =
            names::deployment_bucket(&graph.service, &graph.stage, &self.scope)?;
        Ok(settings)
    }

    /// The engine for `graph`'s deployment (state and lock in its deployment bucket), applying
    /// as `how` says.
    pub fn engine(&self, graph: &AppGraph, how: DeployOptions) -> Result<AwsEngine, AwsError> {
        let settings = self.settings(graph)?;
        let deployment = Deployment::new(&graph.service, &graph.stage, "aws")?;
        let store = S3Store::new(self.clients.s3.clone(), &settings.artifact_bucket);
        let backend = ObjectStoreBackend::new(store, STATE_PREFIX, &deployment);
        let driver = AwsDriver::new(
            self.clients.clone(),
            self.scope.clone(),
            Artifacts {
                bucket: settings.artifact_bucket,
                prefix: settings.artifact_prefix,
            },
        );
        let options = nimbus_engine::Options {
            parallelism: self.options.parallelism.max(1),
            lock: LockOptions {
                timeout: self.options.lock_timeout,
                ..LockOptions::default()
            },
            allow_data_loss: how.force,
            refresh: how.refresh,
            ..nimbus_engine::Options::default()
        };
        let mut engine = Engine::new(deployment, backend, driver).with_options(options);
        if let Some(progress) = self.options.progress.clone() {
            engine = engine.on_progress(move |e| progress(&Progress::Resource(e.clone())));
        }
        Ok(engine)
    }

    fn desired(&self, target: &Target<'_>) -> Result<Vec<NativeResource>, AwsError> {
        lower(target.graph, target.build, &self.settings(target.graph)?)
    }

    async fn bucket_exists(&self, bucket: &str) -> Result<bool, AwsError> {
        let head = self
            .clients
            .s3
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .call("HeadBucket");
        match head {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) if e.status == Some(403) => Err(AwsError::Call(format!(
                "the deployment bucket `{bucket}` exists but this account cannot use it (403)"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the deployment bucket when it does not exist.
    async fn ensure_bucket(&self, graph: &AppGraph, bucket: &str) -> Result<(), AwsError> {
        if self.bucket_exists(bucket).await? {
            return Ok(());
        }
        let s3 = &self.clients.s3;
        let location = (self.scope.region != "us-east-1").then(|| {
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(self.scope.region.as_str()))
                .build()
        });
        let created = s3
            .create_bucket()
            .bucket(bucket)
            .set_create_bucket_configuration(location)
            .send()
            .await
            .call("CreateBucket");
        match created {
            Ok(_) => {}
            Err(e) if e.is("BucketAlreadyOwnedByYou") => {}
            Err(e) => return Err(e.into()),
        }
        s3.put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .call("PutPublicAccessBlock")?;
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::Aes256)
            .build()
            .map_err(|e| AwsError::Call(e.to_string()))?;
        let encryption = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(by_default)
                    .build(),
            )
            .build()
            .map_err(|e| AwsError::Call(e.to_string()))?;
        s3.put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(encryption)
            .send()
            .await
            .call("PutBucketEncryption")?;
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .call("PutBucketVersioning")?;
        self.options.emit(Progress::Note {
            message: format!(
                "created the deployment bucket s3://{bucket} for {} ({})",
                graph.service, graph.stage
            ),
        });
        Ok(())
    }

    /// Uploads every package the bucket lacks; one HEAD for each that is there.
    async fn upload(
        &self,
        target: &Target<'_>,
        settings: &AwsSettings,
    ) -> Result<Vec<Upload>, AwsError> {
        // One object per distinct package (equal zips share a key).
        let mut by_sha: BTreeMap<&str, Vec<(&str, &nimbus_package::Artifact)>> = BTreeMap::new();
        for (function, artifact) in &target.build.functions {
            by_sha
                .entry(&artifact.sha256)
                .or_default()
                .push((function, artifact));
        }
        let limit = Arc::new(Semaphore::new(self.options.parallelism.max(1)));
        let mut tasks = JoinSet::new();
        for (sha, users) in by_sha {
            let key = names::package_key(&settings.artifact_prefix, sha);
            let path = target.build_dir.join(&users[0].1.file);
            let s3 = self.clients.s3.clone();
            let bucket = settings.artifact_bucket.clone();
            let limit = limit.clone();
            let functions: Vec<(String, u64)> =
                users.iter().map(|(f, a)| (f.to_string(), a.size)).collect();
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let present = found(
                    s3.head_object()
                        .bucket(&bucket)
                        .key(&key)
                        .send()
                        .await
                        .call("HeadObject"),
                )?
                .is_some();
                if !present {
                    let body =
                        ByteStream::from_path(&path)
                            .await
                            .map_err(|e| AwsError::Package {
                                path: path.clone(),
                                source: std::io::Error::other(e.to_string()),
                            })?;
                    s3.put_object()
                        .bucket(&bucket)
                        .key(&key)
                        .content_type("application/zip")
                        .body(body)
                        .send()
                        .await
                        .call("PutObject")?;
                }
                Ok::<_, AwsError>(
                    functions
                        .into_iter()
                        .map(|(function, bytes)| Upload {
                            function,
                            location: format!("s3://{bucket}/{key}"),
                            bytes,
                            skipped: present,
                        })
                        .collect::<Vec<_>>(),
                )
            });
        }
        let mut uploads = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let done =
                done.map_err(|e| AwsError::Call(format!("an upload task failed: {e}")))??;
            for u in done {
                self.options.emit(Progress::Upload(u.clone()));
                uploads.push(u);
            }
        }
        uploads.sort_by(|a, b| a.function.cmp(&b.function));
        Ok(uploads)
    }

    /// What is deployed, from the recorded state.
    fn describe(&self, graph: &AppGraph, state: Option<&State>, bucket: &str) -> Info {
        let mut info = Info {
            provider: "aws".into(),
            service: graph.service.clone(),
            stage: graph.stage.clone(),
            deployed: state.is_some_and(|s| !s.resources.is_empty()),
            state: Some(format!(
                "s3://{bucket}/{STATE_PREFIX}/{}/{}/aws/state.json",
                graph.service, graph.stage
            )),
            ..Info::default()
        };
        let Some(state) = state else {
            return info;
        };
        let entry = |kind: &str, name: &str| state.get(&format!("{kind}/{name}"));
        let endpoint = entry(kinds::API, "http")
            .and_then(|e| e.outputs.get("endpoint"))
            .and_then(Value::as_str)
            .map(|s| s.trim_end_matches('/').to_string());
        for f in graph.functions.values() {
            if let (Some(base), true) = (&endpoint, entry(kinds::FUNCTION, &f.name).is_some()) {
                for t in &f.triggers {
                    if let TriggerSpec::Http { method, path, .. } = &t.spec {
                        info.endpoints.push(Endpoint {
                            method: method.to_string(),
                            url: format!("{base}{path}"),
                            function: f.name.clone(),
                        });
                    }
                }
            }
            if let Some(e) = entry(kinds::FUNCTION, &f.name) {
                let p = &e.properties;
                let key = p["Code"]["S3Key"].as_str().unwrap_or_default();
                info.functions.push(FunctionInfo {
                    name: f.name.clone(),
                    native: e.physical_id.clone(),
                    runtime: p["Runtime"].as_str().unwrap_or_default().to_string(),
                    memory_mb: p["MemorySize"].as_u64().unwrap_or_default() as u32,
                    timeout_s: p["Timeout"].as_u64().unwrap_or_default() as u32,
                    package_sha256: key
                        .rsplit('/')
                        .next()
                        .and_then(|k| k.strip_suffix(".zip"))
                        .unwrap_or_default()
                        .to_string(),
                });
            }
        }
        for r in graph.resources.values() {
            let (kind, label) = match r.kind {
                ResourceKind::Table => (kinds::TABLE, "table"),
                ResourceKind::Queue => (kinds::QUEUE, "queue"),
                ResourceKind::Topic => (kinds::TOPIC, "topic"),
                ResourceKind::Bucket => (kinds::BUCKET, "bucket"),
            };
            if let Some(e) = entry(kind, &r.name) {
                info.resources.push(ResourceInfo {
                    name: r.name.clone(),
                    kind: label.into(),
                    native: e.physical_name.clone().unwrap_or(e.physical_id.clone()),
                });
            } else if let Some(e) = entry(kinds::EXISTING, &r.name) {
                info.resources.push(ResourceInfo {
                    name: r.name.clone(),
                    kind: label.into(),
                    native: format!("{} (existing, not managed)", e.physical_id),
                });
            }
        }
        // Secrets by ARN (a name, never a value).
        for name in graph.secrets.keys() {
            if let Some(e) = entry(kinds::SECRET, name) {
                info.resources.push(ResourceInfo {
                    name: name.clone(),
                    kind: "secret".into(),
                    native: e.physical_id.clone(),
                });
            }
        }
        if let Some(e) = entry(kinds::DOMAIN_NAME, crate::lower::DOMAIN) {
            let target = e.outputs.get("target").and_then(Value::as_str);
            info.dns_records.push(DnsRecord {
                name: e.physical_id.clone(),
                kind: "CNAME".into(),
                value: target.unwrap_or_default().to_string(),
                purpose: "routes the custom domain to the API's regional endpoint".into(),
            });
        }
        info
    }

    /// Whether a read secret was deleted and set again since the last deploy (a new ARN):
    /// then the deploy or plan reads the deployment back first ([`crate::secrets::replaced`]).
    async fn secrets_replaced(
        &self,
        engine: &AwsEngine,
        arns: &BTreeMap<String, String>,
    ) -> Result<bool, AwsError> {
        let stale = crate::secrets::replaced(engine, arns).await?;
        for name in &stale {
            self.options.emit(Progress::Note {
                message: format!(
                    "secret `{name}` was deleted and set again since the last deploy; reading the deployment back (as --refresh does)"
                ),
            });
        }
        Ok(!stale.is_empty())
    }

    /// The native source of `function`'s event of type `kind` (for `invoke`).
    fn sources(
        &self,
        graph: &AppGraph,
        state: Option<&State>,
        function: &str,
        event: &Value,
    ) -> Result<Sources, AwsError> {
        let (service, stage) = (graph.service.as_str(), graph.stage.as_str());
        let kind = event["type"].as_str().unwrap_or("http");
        let f = &graph.functions[function];
        // The resource the event names, else the function's first trigger of that type.
        let trigger = f.triggers.iter().find(|t| {
            t.spec.kind().as_str() == kind
                && event["source"]
                    .as_str()
                    .is_none_or(|s| t.spec.resource() == Some(s))
        });
        let resource = event["source"]
            .as_str()
            .filter(|s| graph.resources.contains_key(*s))
            .or_else(|| trigger.and_then(|t| t.spec.resource()));
        let mut sources = Sources {
            region: self.scope.region.clone(),
            ..Sources::default()
        };
        match (kind, resource) {
            ("queue", Some(r)) => {
                sources.source_name = names::queue(service, stage, r);
                sources.source_arn = self.scope.arn("sqs", &sources.source_name);
            }
            ("topic", Some(r)) => {
                sources.source_name = names::topic(service, stage, r);
                sources.source_arn = self.scope.arn("sns", &sources.source_name);
            }
            ("bucket", Some(r)) => {
                sources.source_name = names::bucket(service, stage, r, &self.scope)?;
                sources.source_arn = self.scope.bucket_arn(&sources.source_name);
            }
            ("table", Some(r)) => {
                sources.source_name = names::table(service, stage, r);
                sources.source_arn = state
                    .and_then(|s| s.get(&format!("{}/{r}", kinds::TABLE)))
                    .and_then(|e| e.outputs.get("stream_arn"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
            }
            ("schedule", _) => {
                if let Some(t) = f
                    .triggers
                    .iter()
                    .find(|t| matches!(t.spec, TriggerSpec::Schedule { .. }))
                {
                    sources.source_name = names::schedule(service, stage, &t.id);
                    sources.source_arn = self.scope.schedule_arn(&sources.source_name);
                }
            }
            _ => {}
        }
        // A resource made elsewhere: its own name and ARN (a table's stream from the state).
        let existing = resource.and_then(|r| Some((r, graph.resources.get(r)?.existing.as_ref()?)));
        if let Some((r, arn)) = existing {
            let props = crate::lower::existing_properties(arn).unwrap_or_default();
            sources.source_name = props["Name"].as_str().unwrap_or_default().to_string();
            sources.source_arn = match kind {
                "table" => state
                    .and_then(|s| s.get(&format!("{}/{r}", kinds::EXISTING)))
                    .and_then(|e| e.outputs.get("stream_arn"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                _ => arn.clone(),
            };
        }
        Ok(sources)
    }
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Cloud for Aws {
    type Error = AwsError;

    fn engine_error(error: &AwsError) -> Option<&nimbus_engine::Error> {
        match error {
            AwsError::Engine(e) => Some(e),
            _ => None,
        }
    }

    async fn plan(&self, target: &Target<'_>, refresh: bool) -> Result<Plan, AwsError> {
        let desired = self.desired(target)?;
        let arns = crate::secrets::check_values(self, target.graph).await?;
        let engine = self.engine(target.graph, DeployOptions::default())?;
        let refresh = refresh || self.secrets_replaced(&engine, &arns).await?;
        Ok(engine.plan(&desired, refresh).await?)
    }

    async fn deploy(&self, target: &Target<'_>, how: DeployOptions) -> Result<Deployed, AwsError> {
        let settings = self.settings(target.graph)?;
        let desired = self.desired(target)?;
        let arns = crate::secrets::check_values(self, target.graph).await?;
        // Existing resources are there (and a listened-to table's stream is on) before
        // anything changes.
        let driver = AwsDriver::new(
            self.clients.clone(),
            self.scope.clone(),
            Artifacts {
                bucket: settings.artifact_bucket.clone(),
                prefix: settings.artifact_prefix.clone(),
            },
        );
        crate::driver::existing::preflight(&driver, &desired)
            .await
            .map_err(|e| AwsError::Existing(e.message))?;
        self.ensure_bucket(target.graph, &settings.artifact_bucket)
            .await?;
        let uploads = self.upload(target, &settings).await?;
        let mut engine = self.engine(target.graph, how)?;
        if !how.refresh && self.secrets_replaced(&engine, &arns).await? {
            let how = DeployOptions {
                refresh: true,
                ..how
            };
            engine = self.engine(target.graph, how)?;
        }
        let report = engine.apply_if_changed(&desired).await?;
        let state = engine.state().await?;
        Ok(Deployed {
            report,
            uploads,
            info: self.describe(target.graph, state.as_ref(), &settings.artifact_bucket),
        })
    }

    async fn remove(&self, graph: &AppGraph, force: bool) -> Result<Report, AwsError> {
        let settings = self.settings(graph)?;
        if !self.bucket_exists(&settings.artifact_bucket).await? {
            return Ok(Report::default());
        }
        let engine = self.engine(graph, DeployOptions::default())?;
        let report = engine.destroy(force).await?;
        if report.retained.is_empty() {
            let bucket = &settings.artifact_bucket;
            s3::empty(&self.clients.s3, bucket).await?;
            let deleted = self
                .clients
                .s3
                .delete_bucket()
                .bucket(bucket)
                .send()
                .await
                .call("DeleteBucket");
            match deleted {
                Ok(_) => self.options.emit(Progress::Note {
                    message: format!("deleted the deployment bucket s3://{bucket}"),
                }),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(report)
    }

    async fn info(&self, graph: &AppGraph) -> Result<Info, AwsError> {
        let settings = self.settings(graph)?;
        let state = self
            .engine(graph, DeployOptions::default())?
            .state()
            .await?;
        Ok(self.describe(graph, state.as_ref(), &settings.artifact_bucket))
    }

    async fn logs(
        &self,
        graph: &AppGraph,
        query: &LogQuery,
        sink: LogSink<'_>,
    ) -> Result<(), AwsError> {
        let functions: Vec<&str> = match &query.function {
            Some(f) => {
                check_function(graph, f)?;
                vec![f.as_str()]
            }
            None => graph.functions.keys().map(String::as_str).collect(),
        };
        let groups: BTreeMap<String, String> = functions
            .iter()
            .map(|f| {
                let name = names::function(&graph.service, &graph.stage, f);
                (names::log_group(&name), f.to_string())
            })
            .collect();
        let window = query.since.unwrap_or(DEFAULT_LOG_WINDOW);
        let mut start = millis(SystemTime::now()) - window.as_millis() as i64;
        let mut seen: std::collections::BTreeSet<String> = Default::default();
        loop {
            let mut lines = Vec::new();
            for (group, function) in &groups {
                let mut token = None;
                loop {
                    let page = self
                        .clients
                        .logs
                        .filter_log_events()
                        .log_group_name(group)
                        .start_time(start)
                        .set_next_token(token)
                        .send()
                        .await
                        .call("FilterLogEvents");
                    let page = match page {
                        Ok(p) => p,
                        // Not deployed yet, or never invoked.
                        Err(e) if e.is_not_found() => break,
                        Err(e) => return Err(e.into()),
                    };
                    for e in page.events() {
                        let id = e.event_id().unwrap_or_default().to_string();
                        if !seen.insert(format!("{group}/{id}")) {
                            continue;
                        }
                        lines.push(LogLine {
                            time_ms: e.timestamp().unwrap_or_default(),
                            function: function.clone(),
                            message: e.message().unwrap_or_default().trim_end().to_string(),
                        });
                    }
                    token = page.next_token().map(str::to_string);
                    if token.is_none() {
                        break;
                    }
                }
            }
            lines.sort_by_key(|l| l.time_ms);
            if let Some(last) = lines.last() {
                start = start.max(last.time_ms);
            }
            for line in lines {
                if !sink(line) {
                    return Ok(());
                }
            }
            if !query.follow {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn invoke(
        &self,
        graph: &AppGraph,
        function: &str,
        event: &Value,
    ) -> Result<Invoked, AwsError> {
        check_function(graph, function)?;
        let state = self
            .engine(graph, DeployOptions::default())?
            .state()
            .await?;
        let sources = self.sources(graph, state.as_ref(), function, event)?;
        let native = events::native(event, &sources);
        let name = names::function(&graph.service, &graph.stage, function);
        let out = self
            .clients
            .lambda
            .invoke()
            .function_name(&name)
            .payload(Blob::new(native.to_string().into_bytes()))
            .send()
            .await
            .call("Invoke")?;
        let payload = out
            .payload()
            .map(|p| {
                serde_json::from_slice::<Value>(p.as_ref()).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(p.as_ref()).into_owned())
                })
            })
            .unwrap_or(Value::Null);
        let failed = out.function_error().is_some() || events::reports_failed_items(&payload);
        let result = match (event["type"].as_str(), failed) {
            (Some("http") | None, false) => events::http_result(&payload),
            _ => payload,
        };
        Ok(Invoked {
            request_id: out.request_id().map(str::to_string),
            failed,
            result,
        })
    }

    async fn unlock(&self, graph: &AppGraph, lock_id: &str) -> Result<(), AwsError> {
        Ok(self
            .engine(graph, DeployOptions::default())?
            .unlock(lock_id)
            .await?)
    }
}

fn check_function(graph: &AppGraph, function: &str) -> Result<(), AwsError> {
    if graph.functions.contains_key(function) {
        return Ok(());
    }
    Err(AwsError::UnknownFunction {
        function: function.to_string(),
        known: graph
            .functions
            .keys()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}
