//! `nimbus secret set NAME --restart`: after the value is stored, restart the functions that read
//! it, so that they use it at once instead of when their instances are next replaced.
//!
//! Whether a provider can is data (`[secrets] restart` in its capabilities), checked by
//! [`check`] before anything is stored, so that a refused `--restart` changes nothing; the
//! refusal says when that provider's running instances see a new value (`[secrets] rotation`).
//! Local: the running runtime's admin API (`POST /restart`) gives the readers new workers and
//! drains the old ones (their running and queued invocations finish on the old value). GCP:
//! refused — instances read version `latest` when they start.

use std::time::Duration;

use nimbus_local::{StateDir, control};
use nimbus_provider::{Compiled, ProviderId};
use serde_json::{Value, json};

use crate::output::Failure;

/// Refuses `--restart` where the provider cannot restart functions, before anything is stored.
pub(super) fn check(provider: ProviderId, name: &str) -> Result<(), Failure> {
    let caps = &provider.capabilities().secrets;
    if caps.restart {
        return Ok(());
    }
    let why = match &caps.rotation {
        Some(rotation) => format!("on {provider}, {rotation}"),
        None => format!("restarting functions is not supported for {provider} yet"),
    };
    Err(Failure::user(format!(
        "`--restart` is not available for {provider}; nothing was stored\n  {why}\n  hint: run it without `--restart`: printf %s \"$VALUE\" | nimbus secret set {name} -p {provider}"
    )))
}

/// Restarts the functions of the deployed service that read `secret` (its value is stored).
pub(super) fn run(compiled: &Compiled, provider: ProviderId, secret: &str) -> Result<(), Failure> {
    match provider {
        ProviderId::Local => local(compiled, secret),
        // Providers whose `[secrets] restart` turns true get their client here.
        other => Err(Failure::Internal(anyhow::anyhow!(
            "no way to restart functions on {other} in this build"
        ))),
    }
}

fn local(compiled: &Compiled, secret: &str) -> Result<(), Failure> {
    let graph = &compiled.graph;
    let state = StateDir::for_service(&compiled.loaded.dir, &graph.service, &graph.stage);
    let Some(info) = control::running(&state) else {
        eprintln!(
            "no local runtime is running for `{}` (stage `{}`): nothing to restart; the next `nimbus deploy` or `nimbus dev` starts with the new value",
            graph.service, graph.stage
        );
        return Ok(());
    };
    let body = json!({ "secret": secret });
    let reply = control::call(
        &info,
        "POST",
        "/restart",
        Some(&body),
        Duration::from_secs(120),
    );
    let restarted: Vec<String> = match reply {
        Ok((200, v)) => v
            .get("restarted")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        Ok((404, _)) => {
            return Err(Failure::user(format!(
                "the local runtime (pid {}) is older than this nimbus and cannot restart functions; the value is stored\n  hint: `nimbus deploy` restarts it with the new value",
                info.pid
            )));
        }
        Ok((status, v)) => {
            return Err(Failure::user(format!(
                "the local runtime answered {status} to the restart: {}; the value is stored",
                v.get("error").and_then(Value::as_str).unwrap_or_default()
            )));
        }
        Err(e) => {
            return Err(Failure::Internal(
                anyhow::Error::new(e).context("asking the local runtime to restart functions"),
            ));
        }
    };
    if restarted.is_empty() {
        eprintln!("no deployed function reads `{secret}`: nothing to restart");
    } else {
        eprintln!(
            "restarted {} on the local runtime: new invocations use the new value, running ones finish on the old",
            restarted.join(", ")
        );
    }
    Ok(())
}
