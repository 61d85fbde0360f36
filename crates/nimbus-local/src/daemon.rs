//! The background runtime process that `nimbus deploy` starts: its settings from the
//! environment, and serving one deployment until it is asked to stop.
//!
//! It runs as its own lean executable, `nimbus-runtime` (installed beside `nimbus`), so that an
//! idle runtime maps none of the cloud SDKs the CLI carries; `nimbus __runtime` runs the same
//! code when that executable is missing.

use std::path::PathBuf;

use crate::{Deployment, LocalError, RuntimeOptions, Server, StateDir};

/// The name of the runtime's own executable, looked up beside the `nimbus` binary.
pub const EXECUTABLE: &str = "nimbus-runtime";

/// Runtime settings from the environment: credentials for routes, a faster schedule clock,
/// retry pacing, the body limit, the connection limits and the OTLP endpoint spans are exported
/// to (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`). `api_key` wins over `NIMBUS_LOCAL_API_KEY`; without
/// either, a random key is made.
pub fn options_from_env(api_key: Option<String>) -> RuntimeOptions {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut options = RuntimeOptions::default();
    options.keys.api_key = api_key
        .or_else(|| env("NIMBUS_LOCAL_API_KEY"))
        .unwrap_or_else(|| crate::state::random_token(16));
    options.keys.jwt_secret = env("NIMBUS_JWT_SECRET");
    options.keys.jwt_public_key_pem =
        env("NIMBUS_JWT_PUBLIC_KEY").map(|v| std::fs::read_to_string(&v).unwrap_or(v));
    if let Some(scale) = env("NIMBUS_LOCAL_CLOCK_SCALE").and_then(|s| s.parse().ok()) {
        options.clock_scale = scale;
    }
    if let Some(base) = env("NIMBUS_LOCAL_RETRY_BASE_MS").and_then(|s| s.parse().ok()) {
        options.retry_base_ms = base;
        options.redeliver_after_ms = Some(base);
    }
    if let Some(max) = env("NIMBUS_LOCAL_MAX_BODY").and_then(|s| s.parse().ok()) {
        options.max_body_bytes = max;
    }
    if let Some(max) = env("NIMBUS_LOCAL_MAX_CONNECTIONS").and_then(|s| s.parse().ok()) {
        options.limits.max_connections = max;
    }
    if let Some(ms) = env("NIMBUS_LOCAL_HEADER_TIMEOUT_MS").and_then(|s| s.parse().ok()) {
        options.limits.header_timeout = std::time::Duration::from_millis(ms);
    }
    options.otlp = crate::otlp::Endpoint::from_env(env).transpose();
    if let Some(ms) = env("NIMBUS_LOCAL_BODY_TIMEOUT_MS").and_then(|s| s.parse().ok()) {
        options.limits.body_timeout = std::time::Duration::from_millis(ms);
    }
    options
}

/// Serves the deployment in the state folder `state` until the admin API asks it to stop,
/// or SIGTERM / Ctrl-C arrives; then drains and stops. The API key comes from
/// `NIMBUS_RUNTIME_API_KEY` (set by `nimbus deploy`).
pub fn serve(state: PathBuf, port: Option<u16>) -> Result<(), LocalError> {
    let state = StateDir::at(state);
    let deployment = Deployment::read(&state.deployment())?;
    let api_key = std::env::var("NIMBUS_RUNTIME_API_KEY").ok();
    let io = |action: &'static str, path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| LocalError::Io {
            action,
            path,
            source,
        }
    };
    let root = state.root().to_path_buf();
    let tokio =
        tokio::runtime::Runtime::new().map_err(io("starting the async runtime in", &root))?;
    tokio.block_on(async move {
        let server = Server::start(state, options_from_env(api_key), deployment, port).await?;
        let mut stopping = server.stopping();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(io("listening for SIGTERM in", &root))?;
        tokio::select! {
            _ = stopping.changed() => {}
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        server.stop().await;
        Ok(())
    })
}
