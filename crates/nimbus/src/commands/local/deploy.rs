//! `nimbus deploy`: build, then start the local runtime in the background or update the one
//! that is running (only changed functions are replaced; in-flight requests finish first).

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nimbus_local::{RuntimeInfo, control};
use serde_json::{Value, json};

use super::{admin, build, compile_local, state_of};
use crate::cli::{DeployArgs, Global};
use crate::output::{Failure, Out};

pub fn deploy(global: &Global, args: &DeployArgs, out: &Out) -> Result<(), Failure> {
    let started = Instant::now();
    let compiled = compile_local(global, out)?;
    let deployment = build(&compiled, out)?;
    let state = state_of(&compiled);
    let internal = |e: nimbus_local::LocalError| Failure::Internal(e.into());
    std::fs::create_dir_all(state.logs()).map_err(|e| Failure::Internal(e.into()))?;
    let (info, action, changed) = match control::running(&state) {
        Some(info) => {
            deployment.write(&state.deployment()).map_err(internal)?;
            let reply = admin(
                &info,
                "POST",
                "/deploy",
                Some(&json!({ "deployment": state.deployment() })),
                Duration::from_secs(120),
            )?;
            let changed: Vec<String> = reply["changed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect();
            (info, "updated", changed)
        }
        None => {
            deployment.write(&state.deployment()).map_err(internal)?;
            let info = spawn(&state, args.port)?;
            (
                info,
                "started",
                deployment.functions.keys().cloned().collect(),
            )
        }
    };
    let details = admin(&info, "GET", "/info", None, Duration::from_secs(5))?;
    if out.json {
        let mut v = details.clone();
        v["action"] = json!(action);
        v["changed"] = json!(changed);
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(());
    }
    eprintln!(
        "{action} the local runtime for `{}` (stage `{}`) in {:.1?}; {} function{} {}",
        compiled.graph.service,
        compiled.graph.stage,
        started.elapsed(),
        changed.len(),
        if changed.len() == 1 { "" } else { "s" },
        if action == "updated" {
            "replaced"
        } else {
            "deployed"
        }
    );
    println!("{}", info.gateway_url());
    for r in details["routes"].as_array().into_iter().flatten() {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        eprintln!("  {:<7} {:<44} -> {}", s("method"), s("url"), s("function"));
    }
    eprintln!("logs: nimbus logs [FUNCTION] --follow   info: nimbus info   stop: nimbus remove");
    Ok(())
}

/// Starts the runtime detached (its own process group, output to `daemon.log`) and waits until
/// it answers: the lean `nimbus-runtime` executable beside this one, else `nimbus __runtime`.
fn spawn(state: &nimbus_local::StateDir, port: Option<u16>) -> Result<RuntimeInfo, Failure> {
    let exe = std::env::current_exe().map_err(|e| Failure::Internal(e.into()))?;
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(state.daemon_log())
        .map_err(|e| Failure::Internal(anyhow::Error::new(e).context("opening daemon.log")))?;
    let _ = std::fs::remove_file(state.runtime());
    let lean = exe.with_file_name(nimbus_local::daemon::EXECUTABLE);
    let mut cmd = if lean.is_file() {
        Command::new(lean)
    } else {
        let mut cmd = Command::new(exe);
        cmd.arg("__runtime");
        cmd
    };
    cmd.arg("--state").arg(state.root());
    if let Some(p) = port {
        cmd.arg("--port").arg(p.to_string());
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| Failure::Internal(e.into()))?)
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| {
        Failure::Internal(anyhow::Error::new(e).context("starting the local runtime"))
    })?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(info) = control::running(state).filter(|i| i.pid == child.id()) {
            return Ok(info);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(state.daemon_log()).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect();
            return Err(Failure::user(format!(
                "the local runtime exited ({status}) while starting:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(Failure::user(format!(
                "the local runtime did not answer within 60 s; see {}",
                state.daemon_log().display()
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
