//! The local runtime: a serverless cloud on one machine that runs the very zips
//! `nimbus build -p local` produces, through the same shims.
//!
//! An HTTP gateway on 127.0.0.1 routes requests to functions; durable queues (SQLite) deliver
//! queue, topic, bucket and table events at least once with retries and dead-letter queues;
//! schedules fire on cron or rate in their time zone; buckets are folders; each function has a
//! pool of warm Python or Node workers that grows with load and shrinks to zero when idle.
//! Everything is logged as JSON lines and counted in Prometheus metrics.
//!
//! This crate knows the app graph and the build output, not the manifest's YAML or the CLI.

#![deny(missing_docs)]

mod accept;
mod admin;
pub mod auth;
pub mod buckets;
mod clock;
pub mod console;
pub mod control;
mod cors;
pub mod daemon;
pub mod deployment;
mod dispatch;
mod gateway;
mod invoke;
pub mod logs;
mod metrics;
mod names;
pub mod otlp;
pub mod ports;
mod queues;
pub mod registry;
mod resources;
pub mod router;
mod runtime;
pub mod secrets;
pub mod state;
pub mod trace;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::watch;

pub use accept::ConnectionLimits;
pub use deployment::{Deployment, from_build};
pub use runtime::{Runtime, RuntimeOptions};
pub use state::{RuntimeInfo, StateDir};

/// Errors of the local runtime.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A file operation failed.
    #[error("{action} `{path}`")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The durable store failed.
    #[error("local store: {0}")]
    Store(String),
    /// `deployment.json` is unreadable.
    #[error("invalid deployment `{path}`: {reason}")]
    BadDeployment {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A package zip is unreadable.
    #[error("invalid package `{path}`: {reason}; rebuild it with `nimbus build -p local`")]
    BadPackage {
        /// The zip.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A language runtime is not installed.
    #[error("runtime `{runtime}` is not installed on this machine; {hint}")]
    MissingRuntime {
        /// The neutral runtime id.
        runtime: String,
        /// How to get it.
        hint: String,
    },
    /// Secrets a function reads have no value for this service and stage.
    #[error("function `{function}` reads secrets with no value: {}; set them with {}", .names.join(", "), .names.iter().map(|n| format!("`nimbus secret set {n} -p local -s {stage}`")).collect::<Vec<_>>().join(", "))]
    MissingSecrets {
        /// The function.
        function: String,
        /// The stage.
        stage: String,
        /// The secrets without a value.
        names: Vec<String>,
    },
    /// The port asked for is taken.
    #[error("port {port} on 127.0.0.1 is already in use{}", .holder.as_ref().map(|h| format!(" by {h}")).unwrap_or_default())]
    PortInUse {
        /// The port.
        port: u16,
        /// Who holds it, when that can be seen.
        holder: Option<String>,
    },
    /// No port could be bound.
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Epoch milliseconds now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Epoch microseconds now.
pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A started runtime: its address, and the handle to deploy to it and stop it.
pub struct Server {
    /// The runtime.
    pub runtime: Arc<Runtime>,
    /// Where it listens.
    pub info: RuntimeInfo,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Opens the state, deploys `deployment`, and starts the gateway and the admin API.
    /// The gateway listens on exactly the port asked for — `port`, else the deployment's
    /// (`providers.local.port`); `0` is any free port — or fails with
    /// [`LocalError::PortInUse`]. When none is asked for, it takes the port this state folder
    /// used last time if that is free, else 3000 or the next free one; the port is recorded in
    /// the state folder. The admin API takes any free port.
    pub async fn start(
        state: StateDir,
        options: RuntimeOptions,
        deployment: Deployment,
        port: Option<u16>,
    ) -> Result<Server, LocalError> {
        let api_key = options.keys.api_key.clone();
        let runtime = Runtime::open(state.clone(), options)?;
        let gateway = match port.or(deployment.port) {
            Some(asked) => ports::bind_exact(asked).await?,
            None => match state.last_port() {
                Some(last) => match ports::bind_exact(last).await {
                    Ok(l) => l,
                    Err(_) => ports::bind_from(ports::DEFAULT_PORT).await?,
                },
                None => ports::bind_from(ports::DEFAULT_PORT).await?,
            },
        };
        let admin = ports::bind_exact(0).await?;
        let info = RuntimeInfo {
            pid: std::process::id(),
            gateway_port: gateway.local_addr().map(|a| a.port()).unwrap_or(0),
            admin_port: admin.local_addr().map(|a| a.port()).unwrap_or(0),
            admin_token: state::random_token(16),
            api_key,
            service: deployment.service.clone(),
            stage: deployment.stage.clone(),
        };
        runtime.deploy(deployment).await?;
        let (shutdown, rx) = watch::channel(false);
        let flusher = {
            let (rt, mut rx) = (runtime.clone(), rx.clone());
            async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => rt.logs.flush(),
                        _ = rx.changed() => return,
                    }
                }
            }
        };
        let tasks = vec![
            tokio::spawn(gateway::serve(runtime.clone(), gateway, rx.clone())),
            tokio::spawn(admin::serve(
                runtime.clone(),
                info.clone(),
                admin,
                shutdown.clone(),
            )),
            tokio::spawn(flusher),
        ];
        state::write_atomic(
            &state.runtime(),
            &serde_json::to_vec_pretty(&info).expect("json"),
        )?;
        state.record_port(info.gateway_port)?;
        runtime.log(
            "info",
            None,
            format!(
                "listening on {} (admin {})",
                info.gateway_url(),
                info.admin_url()
            ),
        );
        Ok(Server {
            runtime,
            info,
            shutdown,
            tasks,
        })
    }

    /// A receiver that turns `true` when the runtime is asked to stop (`POST /shutdown`).
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Asks the runtime to stop.
    pub fn request_stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Stops: no new requests, in-flight invocations finish, workers stop, `runtime.json` goes.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.runtime.shutdown().await;
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = std::fs::remove_file(self.runtime.state.runtime());
    }
}

/// What `nimbus info` shows: endpoints, routes, functions with their instances, queue depths.
pub(crate) fn info(rt: &Runtime, info: &RuntimeInfo) -> Value {
    let Some(live) = rt.live() else {
        return json!({ "deployed": false });
    };
    let routes: Vec<Value> = live
        .router
        .routes()
        .iter()
        .map(|r| json!({ "method": r.method.to_string(), "path": r.pattern, "function": r.function, "url": format!("{}{}", info.gateway_url(), r.pattern) }))
        .collect();
    let functions: serde_json::Map<String, Value> = live
        .pools
        .iter()
        .map(|(name, pool)| {
            let s = pool.stats();
            // Outcomes as the log records them (a batch with failed messages is an error),
            // counted across redeploys.
            let mut counts = rt.metrics.function(name).snapshot();
            counts["instances"] = json!(s.instances);
            counts["busy"] = json!(s.busy);
            (name.clone(), counts)
        })
        .collect();
    let now = now_ms();
    let queues: serde_json::Map<String, Value> = rt
        .store()
        .queues()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|q| {
            rt.store().depth(&q, now).ok().map(|d| {
                (
                    q,
                    json!({ "visible": d.visible, "in_flight": d.in_flight, "delayed": d.delayed, "dead_lettered": d.dead_lettered }),
                )
            })
        })
        .collect();
    json!({
        "deployed": true,
        "service": info.service,
        "stage": info.stage,
        "pid": info.pid,
        "url": info.gateway_url(),
        "admin_url": info.admin_url(),
        "console": console::url(info),
        "api_key": info.api_key,
        "routes": routes,
        "functions": functions,
        "queues": queues,
    })
}
