//! `nimbus deploy`: build, then start the local runtime in the background or update the one
//! that is running (only changed functions are replaced; in-flight requests finish first).

use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nimbus_local::{RuntimeInfo, control};
use serde_json::{Value, json};

use super::target::Target;
use super::{
    admin, build, compile_local, flags, local_failure, port_moved, register, requested_port,
    state_of, stop,
};
use crate::cli::{DeployArgs, Global};
use crate::output::{Failure, Out};

pub fn deploy(global: &Global, args: &DeployArgs, out: &Out) -> Result<(), Failure> {
    let started = Instant::now();
    let compiled = compile_local(global, out)?;
    crate::commands::secret::check_local(&compiled.graph)?;
    let deployment = build(&compiled, out)?;
    let state = state_of(&compiled);
    let internal = |e: nimbus_local::LocalError| Failure::Internal(e.into());
    let requested = requested_port(args.port, &deployment).filter(|(p, _)| *p != 0);
    let mut running = control::running(&state);
    // Asked for another port than the running runtime's: restart it there.
    if let (Some(info), Some((port, asked_by))) = (&running, requested)
        && info.gateway_port != port
    {
        nimbus_local::ports::ensure_free(port).map_err(|e| local_failure(e, Some(asked_by)))?;
        let target = Target {
            service: compiled.graph.service.clone(),
            stage: compiled.graph.stage.clone(),
            state: state.clone(),
            flags: String::new(),
        };
        eprintln!(
            "moving the local runtime from port {} to {port}",
            info.gateway_port
        );
        stop(&target)?;
        running = None;
    }
    let last = state.last_port();
    let (info, action, changed) = match running {
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
            if let Some((port, asked_by)) = requested {
                nimbus_local::ports::ensure_free(port)
                    .map_err(|e| local_failure(e, Some(asked_by)))?;
            }
            state.create().map_err(internal)?;
            deployment.write(&state.deployment()).map_err(internal)?;
            let info = spawn(&state, args.port)?;
            if requested.is_none() {
                port_moved(last, info.gateway_port);
            }
            (
                info,
                "started",
                deployment.functions.keys().cloned().collect(),
            )
        }
    };
    register(&compiled, &state, &info);
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
    // The URL on stdout (`URL=$(nimbus deploy)`), and on stderr beside its label.
    let url = info.gateway_url();
    if std::io::stdout().is_terminal() {
        eprint!("{}", out.paint("1", "serving on "));
        println!("{}", out.paint("1", &url));
    } else {
        eprintln!("serving on {url}");
        println!("{url}");
    }
    for r in details["routes"].as_array().into_iter().flatten() {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        eprintln!("  {:<7} {:<44} -> {}", s("method"), s("url"), s("function"));
    }
    eprintln!(
        "console: {}",
        details["console"].as_str().unwrap_or_default()
    );
    let flags = flags(global);
    eprintln!(
        "next: curl {url}/...   nimbus logs [FUNCTION]{flags} --follow   nimbus info{flags}   nimbus remove{flags}"
    );
    Ok(())
}

/// Starts the runtime detached (its own process group, output to `daemon.log`) and waits until
/// it answers: the lean `nimbus-runtime` executable beside this one, else `nimbus __runtime`.
fn spawn(state: &nimbus_local::StateDir, port: Option<u16>) -> Result<RuntimeInfo, Failure> {
    let exe = std::env::current_exe().map_err(|e| Failure::Internal(e.into()))?;
    let log = nimbus_local::state::private_append(&state.daemon_log())
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
    // Absolute: `registry::serves` knows the process by it, also after the project moved.
    cmd.arg("--state")
        .arg(super::target::absolute(state.root()));
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
