//! Commands that work on the local runtime: `deploy`, `dev`, `remove`, `info`, `invoke`,
//! `logs`, and the hidden `__runtime` process that `deploy` starts in the background.
//! Deploying to the clouds lands with their provider crates.

mod deploy;
mod dev;
mod invoke;
mod logs;

use std::time::Duration;

use nimbus_local::{Deployment, RuntimeInfo, StateDir, control};
use nimbus_package::BuildOptions;
use nimbus_provider::{Compiled, ProviderId};

use crate::cli::{Global, RemoveArgs, RuntimeArgs};
use crate::output::{Failure, Out};

pub use deploy::deploy;
pub use dev::dev;
pub use invoke::invoke;
pub use logs::logs;

/// The manifest compiled for `local` (the only target these commands drive today).
fn compile_local(global: &Global, out: &Out) -> Result<Compiled, Failure> {
    let provider = super::provider(global)?;
    if provider != ProviderId::Local {
        return Err(Failure::user(format!(
            "deploying to `{provider}` is not available in this version; `nimbus build -p {provider}` writes its packages\n  hint: use `-p local` (the default) to run the app on this machine"
        )));
    }
    super::compile(global, out)
}

/// The state folder of the compiled service and stage.
fn state_of(compiled: &Compiled) -> StateDir {
    StateDir::for_service(
        &compiled.loaded.dir,
        &compiled.graph.service,
        &compiled.graph.stage,
    )
}

/// Builds the packages (printing progress) and describes the deployment.
fn build(compiled: &Compiled, out: &Out) -> Result<Deployment, Failure> {
    let options = BuildOptions::conventional(
        &compiled.loaded.dir,
        ProviderId::Local,
        &compiled.graph.stage,
    );
    let quiet = out.json;
    let report = nimbus_package::build(&compiled.graph, &options, &|event| {
        if quiet {
            return;
        }
        match event {
            nimbus_package::Progress::Built {
                function, millis, ..
            } => eprintln!("  built     {function} ({millis} ms)"),
            nimbus_package::Progress::Cached { function } => eprintln!("  cached    {function}"),
            nimbus_package::Progress::InstallingDeps { function, manifest } => {
                eprintln!("  deps      {function}: installing {manifest}")
            }
            nimbus_package::Progress::SkippedSecrets { function, files } => {
                eprintln!(
                    "  note      {function}: left out secret-looking files {}",
                    files.join(", ")
                )
            }
        }
    })
    .map_err(|e| Failure::User(e.into()))?;
    Ok(nimbus_local::from_build(
        &compiled.graph,
        &report.manifest,
        &options.out_dir,
    ))
}

/// A running runtime for this service and stage, or a user error saying how to start one.
fn running(compiled: &Compiled) -> Result<RuntimeInfo, Failure> {
    control::running(&state_of(compiled)).ok_or_else(|| {
        Failure::user(format!(
            "no local runtime is running for `{}` (stage `{}`)\n  hint: start it with `nimbus deploy`",
            compiled.graph.service, compiled.graph.stage
        ))
    })
}

fn admin(
    info: &RuntimeInfo,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    timeout: Duration,
) -> Result<serde_json::Value, Failure> {
    match control::call(info, method, path, body, timeout) {
        Ok((200, v)) => Ok(v),
        Ok((status, v)) => Err(Failure::user(format!(
            "the local runtime answered {status}: {}",
            v.get("error")
                .and_then(|e| e.as_str())
                .unwrap_or(&v.to_string())
        ))),
        Err(e) => Err(Failure::Internal(
            anyhow::Error::new(e).context("talking to the local runtime"),
        )),
    }
}

/// `nimbus remove`: stop the runtime, then delete its data unless `--keep-data`.
pub fn remove(global: &Global, args: &RemoveArgs, out: &Out) -> Result<(), Failure> {
    let compiled = compile_local(global, out)?;
    let state = state_of(&compiled);
    let name = format!(
        "`{}` (stage `{}`)",
        compiled.graph.service, compiled.graph.stage
    );
    if !args.keep_data && state.root().exists() && !args.yes {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Err(Failure::user(format!(
                "removing {name} deletes its local tables, queues, buckets and logs; pass --yes to confirm (or --keep-data)"
            )));
        }
        eprint!("Delete the local tables, queues, buckets and logs of {name}? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(Failure::user("nothing was removed"));
        }
    }
    let mut stopped = false;
    if let Some(info) = control::running(&state) {
        admin(&info, "POST", "/shutdown", None, Duration::from_secs(5))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while control::alive(info.pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if control::alive(info.pid) {
            return Err(Failure::user(format!(
                "the local runtime (pid {}) did not stop within 30 s; data was kept",
                info.pid
            )));
        }
        stopped = true;
    }
    let deleted = !args.keep_data && state.root().exists();
    if deleted {
        std::fs::remove_dir_all(state.root()).map_err(|e| {
            Failure::User(
                anyhow::Error::new(e).context(format!("deleting {}", state.root().display())),
            )
        })?;
    }
    if out.json {
        println!(
            "{}",
            serde_json::json!({ "stopped": stopped, "data_deleted": deleted })
        );
    } else {
        println!(
            "{} {name}{}",
            if stopped {
                "stopped"
            } else {
                "nothing was running for"
            },
            if deleted {
                "; deleted its local data"
            } else if args.keep_data {
                "; kept its data"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// `nimbus info`: what the running runtime serves.
pub fn info(global: &Global, out: &Out) -> Result<(), Failure> {
    let compiled = compile_local(global, out)?;
    let info = running(&compiled)?;
    let v = admin(&info, "GET", "/info", None, Duration::from_secs(5))?;
    if out.json {
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(());
    }
    let s = |v: &serde_json::Value, k: &str| {
        v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string()
    };
    println!(
        "service {} (stage {}) on {}  [pid {}]",
        s(&v, "service"),
        s(&v, "stage"),
        s(&v, "url"),
        v["pid"]
    );
    println!("routes:");
    for r in v["routes"].as_array().into_iter().flatten() {
        println!(
            "  {:<7} {:<40} -> {}",
            s(r, "method"),
            s(r, "url"),
            s(r, "function")
        );
    }
    println!("functions:");
    for (name, f) in v["functions"].as_object().into_iter().flatten() {
        println!(
            "  {name:<24} instances {:<3} invocations {:<6} errors {:<4} cold starts {}",
            f["instances"], f["invocations"], f["errors"], f["cold_starts"]
        );
    }
    let queues: Vec<_> = v["queues"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(q, _)| !q.starts_with("sub:") && !q.starts_with("dlq:"))
        .collect();
    if !queues.is_empty() {
        println!("queues:");
        for (q, d) in queues {
            println!(
                "  {q:<24} waiting {:<5} in flight {:<5} delayed {}",
                d["visible"], d["in_flight"], d["delayed"]
            );
        }
    }
    println!(
        "api key (routes with `auth: api_key`): {}",
        s(&v, "api_key")
    );
    Ok(())
}

/// The hidden `__runtime` command: serve a deployment until asked to stop (what the
/// `nimbus-runtime` executable does, for when it is not installed beside `nimbus`).
pub fn runtime(args: &RuntimeArgs) -> Result<(), Failure> {
    nimbus_local::daemon::serve(args.state.clone(), args.port).map_err(|e| Failure::User(e.into()))
}
