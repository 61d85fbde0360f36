//! The running local runtime: the durable store, the live deployment (router, worker pools,
//! buckets) and everything started from it (gateway, consumers, schedules, bucket scanner).
//!
//! A redeploy builds a new [`Live`] next to the old one: unchanged functions keep their worker
//! pool, changed ones get a new pool on their new package, routes switch atomically, and the
//! old pools finish their in-flight invocations before they stop. No request is dropped.
//! [`Runtime::restart_readers`] does the same for the functions that read a secret set again,
//! on the deployment as it is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use nimbus_graph::{ResourceSpec, TriggerSpec};
use nimbus_local_store::{QueueConfig, Store};
use nimbus_local_workers::{ErrorInfo, FunctionSpec, Hooks, Pool, PoolEvent, Stream};
use nimbus_manifest::{Language, ResourceKind};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::accept::ConnectionLimits;
use crate::auth::AuthKeys;
use crate::buckets::Bucket;
use crate::clock::Clock;
use crate::deployment::{DeployedFunction, Deployment};
use crate::logs::LogWriter;
use crate::metrics::Metrics;
use crate::router::Router;
use crate::secrets::Secrets;
use crate::state::StateDir;
use crate::{LocalError, dispatch, names};

/// Settings of every dead-letter queue: messages stay 14 days for inspection, never moved on.
const DEAD_LETTER: QueueConfig = QueueConfig {
    visibility_timeout_ms: 30_000,
    max_receives: None,
    dead_letter: None,
    retention_ms: 14 * 86_400_000,
};

/// One deployed generation: what requests and events are served by right now.
pub struct Live {
    /// The deployment.
    pub deployment: Deployment,
    /// HTTP routes.
    pub router: Router,
    /// Worker pools by function.
    pub pools: BTreeMap<String, Arc<Pool>>,
    /// Bucket folders by resource name.
    pub buckets: BTreeMap<String, Bucket>,
    /// Stops this generation's consumers and schedules.
    stop: watch::Sender<bool>,
}

impl Live {
    /// A receiver that turns `true` when this generation is replaced or the runtime stops.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

/// The local runtime.
pub struct Runtime {
    pub(crate) state: StateDir,
    pub(crate) store: Arc<Store>,
    pub(crate) logs: Arc<LogWriter>,
    pub(crate) metrics: Metrics,
    pub(crate) keys: AuthKeys,
    pub(crate) clock: Clock,
    pub(crate) max_body_bytes: usize,
    pub(crate) retry_base_ms: u64,
    pub(crate) redeliver_after_ms: Option<u64>,
    pub(crate) limits: ConnectionLimits,
    live: RwLock<Option<Arc<Live>>>,
    wakeups: Mutex<BTreeMap<String, Arc<Notify>>>,
    pub(crate) bucket_wake: Notify,
    interpreters: Mutex<BTreeMap<String, PathBuf>>,
    /// Secret values: read at each worker's start, masked in everything the runtime reports.
    pub(crate) secrets: Secrets,
    /// Recent invocations for the web console.
    pub(crate) console: crate::console::Recorder,
    /// Running invocations' trace contexts and the finished spans.
    pub(crate) tracer: crate::trace::Tracer,
    otlp: Option<Result<crate::otlp::Endpoint, String>>,
    exporter: std::sync::OnceLock<Option<crate::otlp::Exporter>>,
    deploy_lock: tokio::sync::Mutex<()>,
    this: Weak<Runtime>,
}

/// Settings of a runtime that do not come from the deployment.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Log rotation size.
    pub max_log_bytes: u64,
    /// Credentials routes are checked against.
    pub keys: AuthKeys,
    /// How fast schedule time runs (1 = real time); a testing aid.
    pub clock_scale: f64,
    /// The first retry delay of a failed schedule run; the next one doubles.
    pub retry_base_ms: u64,
    /// A testing aid: failed messages are delivered again after this delay instead of when their
    /// visibility timeout runs out.
    pub redeliver_after_ms: Option<u64>,
    /// What one client may hold of the gateway and the admin API.
    pub limits: ConnectionLimits,
    /// Where spans are exported over OTLP/HTTP (see [`crate::otlp`]), or why the configured
    /// endpoint is unusable; `None`: not exported.
    pub otlp: Option<Result<crate::otlp::Endpoint, String>>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            max_body_bytes: 6 * 1024 * 1024,
            max_log_bytes: 16 * 1024 * 1024,
            keys: AuthKeys::default(),
            clock_scale: 1.0,
            retry_base_ms: 1000,
            redeliver_after_ms: None,
            limits: ConnectionLimits::default(),
            otlp: None,
        }
    }
}

impl Runtime {
    /// Exports a finished span when an OTLP endpoint is configured (the exporter starts with
    /// the first span, named after the deployed service; a bad endpoint is logged once).
    pub(crate) fn export_span(&self, span: &crate::trace::Span) {
        let exporter = self.exporter.get_or_init(|| match &self.otlp {
            None => None,
            Some(Err(e)) => {
                self.log("error", None, format!("spans are not exported: {e}"));
                None
            }
            Some(Ok(endpoint)) => {
                let (service, stage) = self
                    .live()
                    .map(|l| (l.deployment.service.clone(), l.deployment.stage.clone()))
                    .unwrap_or_default();
                let logs = self.logs.clone();
                Some(crate::otlp::Exporter::start(
                    endpoint.clone(),
                    service,
                    stage,
                    move |message| {
                        logs.write(serde_json::json!({
                            "kind": "runtime", "level": "warn", "message": message
                        }));
                        logs.flush();
                    },
                ))
            }
        });
        if let Some(exporter) = exporter {
            exporter.export(span);
        }
    }

    /// Opens the state in `state` (creating it).
    pub fn open(state: StateDir, options: RuntimeOptions) -> Result<Arc<Runtime>, LocalError> {
        state.create()?;
        let store = Store::open(&state.store()).map_err(|e| LocalError::Store(e.to_string()))?;
        let logs = LogWriter::open(&state.logs(), options.max_log_bytes).map_err(|source| {
            LocalError::Io {
                action: "opening the log in",
                path: state.logs(),
                source,
            }
        })?;
        Ok(Arc::new_cyclic(|this| Runtime {
            state,
            store: Arc::new(store),
            logs: Arc::new(logs),
            metrics: Metrics::default(),
            keys: options.keys,
            clock: Clock::new(options.clock_scale),
            max_body_bytes: options.max_body_bytes,
            retry_base_ms: options.retry_base_ms,
            redeliver_after_ms: options.redeliver_after_ms,
            limits: options.limits,
            live: RwLock::new(None),
            wakeups: Mutex::new(BTreeMap::new()),
            bucket_wake: Notify::new(),
            interpreters: Mutex::new(BTreeMap::new()),
            secrets: Secrets::default(),
            console: crate::console::Recorder::default(),
            tracer: crate::trace::Tracer::default(),
            otlp: options.otlp,
            exporter: std::sync::OnceLock::new(),
            deploy_lock: tokio::sync::Mutex::new(()),
            this: this.clone(),
        }))
    }

    /// The live generation, if anything is deployed.
    pub fn live(&self) -> Option<Arc<Live>> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The wake-up signal of a queue's consumers.
    pub(crate) fn wakeup(&self, queue: &str) -> Arc<Notify> {
        self.wakeups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(queue.to_string())
            .or_default()
            .clone()
    }

    /// Writes a runtime log record.
    pub(crate) fn log(&self, level: &str, function: Option<&str>, message: impl Into<String>) {
        let message = self.secrets.mask(&message.into());
        let mut record = json!({ "kind": "runtime", "level": level, "message": message });
        if let Some(f) = function {
            record["function"] = json!(f);
        }
        self.logs.write(record);
        if matches!(level, "warn" | "error") {
            // Failures are read at once (`nimbus logs` right after, `nimbus dev`).
            self.logs.flush();
        }
    }

    /// Deploys `deployment`, replacing the live generation; returns the functions that changed.
    pub async fn deploy(&self, deployment: Deployment) -> Result<Vec<String>, LocalError> {
        let _guard = self.deploy_lock.lock().await;
        let changed = self.switch(deployment, &BTreeSet::new())?;
        if let Some(live) = self.live() {
            self.log(
                "info",
                None,
                format!(
                    "deployed {} functions ({} changed)",
                    live.pools.len(),
                    changed.len()
                ),
            );
        }
        Ok(changed)
    }

    /// Restarts the functions that read `secret` (a value was set again): each gets a new pool,
    /// whose workers start with the current value, while the old pool finishes its running and
    /// queued invocations, then stops. Returns those functions (none when nothing is deployed).
    pub async fn restart_readers(&self, secret: &str) -> Result<Vec<String>, LocalError> {
        let _guard = self.deploy_lock.lock().await;
        let Some(live) = self.live() else {
            return Ok(Vec::new());
        };
        let readers: BTreeSet<String> = live
            .deployment
            .functions
            .values()
            .filter(|f| f.secrets.values().any(|s| s == secret))
            .map(|f| f.name.clone())
            .collect();
        if readers.is_empty() {
            return Ok(Vec::new());
        }
        let restarted = self.switch(live.deployment.clone(), &readers)?;
        self.log(
            "info",
            None,
            format!(
                "restarted {} (secret `{secret}` set again); their old workers drain",
                restarted.join(", ")
            ),
        );
        Ok(restarted)
    }

    /// Makes `deployment` live, with new pools for the functions that changed and those in
    /// `restart`; returns them. The caller holds the deploy lock.
    fn switch(
        &self,
        deployment: Deployment,
        restart: &BTreeSet<String>,
    ) -> Result<Vec<String>, LocalError> {
        let old = self.live();
        self.ensure_queues(&deployment)?;
        let mut pools = BTreeMap::new();
        let mut changed = Vec::new();
        for f in deployment.functions.values() {
            let reuse = old
                .as_ref()
                .filter(|_| !restart.contains(&f.name))
                .and_then(|o| {
                    let before = o.deployment.functions.get(&f.name)?;
                    (before == f)
                        .then(|| o.pools.get(&f.name).cloned())
                        .flatten()
                });
            let pool = match reuse {
                Some(p) => p,
                None => {
                    changed.push(f.name.clone());
                    Arc::new(self.new_pool(f, &deployment)?)
                }
            };
            pools.insert(f.name.clone(), pool);
        }
        let mut buckets = BTreeMap::new();
        for (name, r) in &deployment.resources {
            if r.kind == ResourceKind::Bucket {
                let bucket = Bucket::open(self.state.buckets().join(name), self.state.tmp())
                    .map_err(|source| LocalError::Io {
                        action: "creating bucket",
                        path: self.state.buckets().join(name),
                        source,
                    })?;
                buckets.insert(name.clone(), bucket);
            }
        }
        let mut router = Router::default();
        for f in deployment.functions.values() {
            for t in &f.triggers {
                if let TriggerSpec::Http {
                    method,
                    path,
                    auth,
                    cors,
                } = &t.spec
                {
                    router.add_with_cors(*method, path, &f.name, auth.clone(), cors.clone());
                }
            }
        }
        let (stop, _) = watch::channel(false);
        let live = Arc::new(Live {
            deployment,
            router,
            pools,
            buckets,
            stop,
        });
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = Some(live.clone());
        let this = self
            .this
            .upgrade()
            .expect("the runtime is alive while it deploys");
        dispatch::start(&this, &live);
        if let Some(old) = old {
            let _ = old.stop.send(true);
            for (name, pool) in &old.pools {
                let kept = live.pools.get(name).is_some_and(|p| Arc::ptr_eq(p, pool));
                if !kept {
                    let pool = pool.clone();
                    tokio::spawn(async move { pool.drain().await });
                }
            }
        }
        Ok(changed)
    }

    /// Stops everything: consumers, then pools after their in-flight invocations.
    pub async fn shutdown(&self) {
        let live = self.live.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(live) = live {
            let _ = live.stop.send(true);
            for pool in live.pools.values() {
                pool.drain().await;
            }
        }
        self.log("info", None, "stopped");
        self.logs.flush();
    }

    fn ensure_queues(&self, d: &Deployment) -> Result<(), LocalError> {
        let store_err = |e: nimbus_local_store::StoreError| LocalError::Store(e.to_string());
        for (name, r) in &d.resources {
            if let ResourceSpec::Queue {
                visibility_timeout_ms,
                retention_ms,
                max_receives,
            } = &r.spec
            {
                let dlq = max_receives.map(|_| names::dead_letter(name));
                if let Some(dlq) = &dlq {
                    self.store
                        .ensure_queue(dlq, &DEAD_LETTER)
                        .map_err(store_err)?;
                }
                let config = QueueConfig {
                    visibility_timeout_ms: *visibility_timeout_ms,
                    max_receives: *max_receives,
                    dead_letter: dlq,
                    retention_ms: *retention_ms,
                };
                self.store.ensure_queue(name, &config).map_err(store_err)?;
            }
        }
        for f in d.functions.values() {
            for t in &f.triggers {
                let Some(queue) = names::subscription(&t.spec, &f.name) else {
                    continue;
                };
                let dlq = names::dead_letter(&queue);
                let retries = names::subscription_receives(&t.spec);
                self.store
                    .ensure_queue(&dlq, &DEAD_LETTER)
                    .map_err(store_err)?;
                let config = QueueConfig {
                    visibility_timeout_ms: f.timeout_ms + 5_000,
                    max_receives: Some(retries),
                    dead_letter: Some(dlq),
                    retention_ms: 4 * 86_400_000,
                };
                self.store
                    .ensure_queue(&queue, &config)
                    .map_err(store_err)?;
            }
        }
        Ok(())
    }

    fn new_pool(&self, f: &DeployedFunction, deployment: &Deployment) -> Result<Pool, LocalError> {
        let idle_timeout_ms = deployment.idle_timeout_ms;
        // Refused now when a value is missing; each worker reads the values as it starts
        // (`RuntimeHooks::spawn_env`), so that a value set again reaches the next one.
        self.secrets
            .env(&deployment.service, &deployment.stage, &f.name, &f.secrets)?;
        let interpreter = self.interpreter(f)?;
        let package_dir = self.unpack(f, &interpreter)?;
        let spec = FunctionSpec {
            name: f.name.clone(),
            package_dir,
            language: match f.language {
                Language::Python => nimbus_local_workers::Language::Python,
                Language::Node => nimbus_local_workers::Language::Node,
            },
            interpreter,
            memory_mb: f.memory_mb,
            timeout: Duration::from_millis(f.timeout_ms),
            max_concurrency: f.concurrency as usize,
            scale_up_wait: FunctionSpec::DEFAULT_SCALE_UP_WAIT,
            send_ahead_below: FunctionSpec::DEFAULT_SEND_AHEAD_BELOW,
            idle_timeout: Duration::from_millis(idle_timeout_ms),
            max_queued: (f.concurrency as usize * 10).max(100),
            env: f.env.clone(),
        };
        let hooks: Arc<dyn Hooks> = Arc::new(RuntimeHooks {
            runtime: self.this.clone(),
            service: deployment.service.clone(),
            stage: deployment.stage.clone(),
            secrets: f.secrets.clone(),
        });
        Ok(Pool::new(spec, hooks))
    }

    /// Unpacks a function's zip into `functions/<name>-<sha>/` (once per package); Python files are
    /// compiled there at once (see [`precompile`]).
    fn unpack(&self, f: &DeployedFunction, interpreter: &Path) -> Result<PathBuf, LocalError> {
        let dir = self.state.functions().join(format!(
            "{}-{}",
            f.name,
            &f.sha256[..16.min(f.sha256.len())]
        ));
        if dir.join(".complete").exists() {
            return Ok(dir);
        }
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| LocalError::Io {
                action,
                path,
                source,
            }
        };
        let tmp = self.state.tmp().join(format!(
            "unpack-{}-{}",
            f.name,
            crate::state::random_token(4)
        ));
        let file = std::fs::File::open(&f.artifact).map_err(io("opening package", &f.artifact))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| LocalError::BadPackage {
            path: f.artifact.clone(),
            reason: e.to_string(),
        })?;
        zip.extract(&tmp).map_err(|e| LocalError::BadPackage {
            path: f.artifact.clone(),
            reason: e.to_string(),
        })?;
        if f.language == Language::Python {
            precompile(interpreter, &tmp);
        }
        std::fs::write(tmp.join(".complete"), b"").map_err(io("writing", &tmp))?;
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp); // unpacked concurrently; theirs is identical
        }
        Ok(dir)
    }

    fn interpreter(&self, f: &DeployedFunction) -> Result<PathBuf, LocalError> {
        let mut cache = self.interpreters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(&f.runtime) {
            return Ok(p.clone());
        }
        let found = match f.language {
            Language::Python => {
                let version = f.runtime.trim_start_matches("python");
                nimbus_package::find_python(version).ok_or_else(|| LocalError::MissingRuntime {
                    runtime: f.runtime.clone(),
                    hint: nimbus_package::missing_python_hint(version),
                })?
            }
            Language::Node => which("node").ok_or_else(|| LocalError::MissingRuntime {
                runtime: f.runtime.clone(),
                hint: "install Node.js 20 or newer".into(),
            })?,
        };
        cache.insert(f.runtime.clone(), found.clone());
        Ok(found)
    }
}

/// Compiles the Python files under `dir` with the function's interpreter, once, when the package
/// is unpacked: each worker then loads the shim and the handler without compiling them (a cold
/// start saves about 10 ms for the shim alone; the workers never write bytecode themselves). A
/// file that does not compile is left to fail where it always did, when a worker loads it.
fn precompile(interpreter: &Path, dir: &Path) {
    let _ = std::process::Command::new(interpreter)
        .args(["-m", "compileall", "-q"])
        .arg(dir)
        .env_clear() // e.g. no PYTHONPYCACHEPREFIX: the bytecode goes beside the sources
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Connects worker pools back to the runtime: resource calls, handler output, lifecycle events.
struct RuntimeHooks {
    runtime: Weak<Runtime>,
    service: String,
    stage: String,
    /// The function's secret variables: variable → secret.
    secrets: BTreeMap<String, String>,
}

impl Hooks for RuntimeHooks {
    fn rpc(
        &self,
        function: &str,
        request_id: &str,
        call: Value,
    ) -> nimbus_local_workers::RpcFuture<'_> {
        let function = function.to_string();
        let request_id = request_id.to_string();
        Box::pin(async move {
            let Some(runtime) = self.runtime.upgrade() else {
                return Err(ErrorInfo {
                    kind: "Unavailable".into(),
                    message: "the runtime is stopping".into(),
                    stack: None,
                });
            };
            crate::resources::call(&runtime, &function, &request_id, call).await
        })
    }

    fn log(&self, function: &str, request_id: Option<&str>, stream: Stream, line: &str) {
        if let Some(rt) = self.runtime.upgrade() {
            let stream = match stream {
                Stream::Stdout => "stdout",
                Stream::Stderr => "stderr",
            };
            let line = rt.secrets.mask(line);
            rt.logs.write(json!({ "kind": "output", "function": function, "request_id": request_id, "stream": stream, "message": line }));
        }
    }

    fn spawn_env(&self, function: &str) -> Result<BTreeMap<String, String>, ErrorInfo> {
        if self.secrets.is_empty() {
            return Ok(BTreeMap::new());
        }
        let Some(rt) = self.runtime.upgrade() else {
            return Err(ErrorInfo::new("Unavailable", "the runtime is stopping"));
        };
        rt.secrets
            .env(&self.service, &self.stage, function, &self.secrets)
            .map_err(|e| ErrorInfo::new("SecretUnavailable", e.to_string()))
    }

    fn event(&self, function: &str, event: PoolEvent) {
        let Some(rt) = self.runtime.upgrade() else {
            return;
        };
        match &event {
            PoolEvent::InstancesChanged { instances } => rt
                .metrics
                .function(function)
                .set_instances(*instances as u64),
            PoolEvent::WorkerStarted { pid, init, load } => {
                rt.log(
                    "info",
                    Some(function),
                    format!(
                        "cold start: worker {pid} ready in {} ms (handler load {} ms)",
                        init.as_millis(),
                        load.as_millis()
                    ),
                );
            }
            PoolEvent::WorkerFailed { error, .. } => rt.log(
                "error",
                Some(function),
                format!("worker failed to start: {}: {}", error.kind, error.message),
            ),
            PoolEvent::WorkerStopped { pid, reason } => rt.log(
                "debug",
                Some(function),
                format!("worker {pid} stopped: {reason:?}"),
            ),
            other => rt.log("debug", Some(function), format!("{other:?}")),
        }
    }
}
