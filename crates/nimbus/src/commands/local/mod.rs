//! Commands that work on the local runtime: `deploy`, `dev`, `remove`, `info`, `invoke`,
//! `logs`, and the hidden `__runtime` process that `deploy` starts in the background.
//!
//! `deploy` and `dev` compile the manifest; `info`, `logs`, `remove` and `invoke` work on what
//! was deployed (the state folder, `deployment.json`, the registry of local deployments), found
//! as [`target`] says — so they need no deploy-time input, and work when the project moved.

mod deploy;
mod dev;
mod invoke;
mod logs;
mod target;
mod trace;

use std::time::Duration;

use nimbus_local::registry::{self, Record, Status};
use nimbus_local::{Deployment, RuntimeInfo, StateDir, control};
use nimbus_package::BuildOptions;
use nimbus_provider::{Compiled, ProviderId};
use serde_json::{Value, json};

use crate::cli::{Global, InfoArgs, RemoveArgs, RuntimeArgs};
use crate::output::{Failure, Out};
use target::Target;

pub use deploy::deploy;
pub use dev::dev;
pub use invoke::invoke;
pub use logs::logs;
pub use trace::trace;

/// The manifest compiled for `local` (the only target these commands drive today).
fn compile_local(global: &Global, out: &Out) -> Result<Compiled, Failure> {
    let provider = super::provider(global)?;
    if provider != ProviderId::Local {
        return Err(Failure::user(format!(
            "deploying to `{provider}` is not available in this version; `nimbus build -p {provider}` writes its packages\n  hint: use `-p local` (the default) to run the app on this machine"
        )));
    }
    super::compile(global, out, nimbus_provider::Purpose::Deploy)
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
            nimbus_package::Progress::LeftOut(left_out) => eprintln!("  note      {left_out}"),
        }
    })
    .map_err(|e| Failure::User(e.into()))?;
    Ok(nimbus_local::from_build(
        &compiled.graph,
        &report.manifest,
        &options.out_dir,
    ))
}

/// A running runtime for `target`, or a user error saying how to start one.
fn running(target: &Target) -> Result<RuntimeInfo, Failure> {
    control::running(&target.state).ok_or_else(|| {
        Failure::user(format!(
            "no local runtime is running for {}\n  hint: start it with `nimbus deploy{}`",
            target.name(),
            deploy_flags(target)
        ))
    })
}

/// The flags of `nimbus deploy` for `target` (deploy needs the manifest, not `--service`).
fn deploy_flags(target: &Target) -> String {
    if !target.flags.starts_with(" --service") {
        return target.flags.clone();
    }
    match target.record() {
        Some(r) => format!(" -f {} -s {}", r.manifest.display(), r.stage),
        None => String::new(),
    }
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

/// Calls `path` of the admin API of the running local deployment `which` addresses (the queue
/// and topic tools); returns the deployment's name (for messages), the status and the answer.
pub fn admin_call(
    global: &Global,
    which: &crate::cli::Which,
    path: &str,
    body: &Value,
    out: &Out,
) -> Result<(String, u16, Value), Failure> {
    let target = target::resolve(global, which, out)?;
    let info = running(&target)?;
    let (status, answer) = control::call(&info, "POST", path, Some(body), Duration::from_secs(60))
        .map_err(|e| {
            Failure::Internal(anyhow::Error::new(e).context("talking to the local runtime"))
        })?;
    Ok((
        format!("the local deployment of {}", target.name()),
        status,
        answer,
    ))
}

/// Where the port a deploy asks for comes from: `--port`, else `providers.local.port`.
fn requested_port(cli_port: Option<u16>, deployment: &Deployment) -> Option<(u16, &'static str)> {
    cli_port
        .map(|p| (p, "--port"))
        .or(deployment.port.map(|p| (p, "`providers.local.port`")))
}

/// A runtime error as a user failure; a taken port gets its hint.
fn local_failure(e: nimbus_local::LocalError, asked_by: Option<&str>) -> Failure {
    match e {
        nimbus_local::LocalError::PortInUse { .. } => Failure::user(format!(
            "{e}{}\n  hint: stop what holds it, or ask for another port (`--port N`, `providers.local.port`); with neither, nimbus picks a free port and keeps it across redeploys",
            asked_by
                .map(|a| format!(" (asked for by {a})"))
                .unwrap_or_default()
        )),
        e => Failure::User(e.into()),
    }
}

/// Says so when the gateway could not get the port it had last time.
fn port_moved(last: Option<u16>, now: u16) {
    if let Some(last) = last.filter(|l| *l != now) {
        eprintln!(
            "note: port {last}, used last time, is taken{}; the gateway moved to {now}",
            nimbus_local::ports::describe_holder(last)
                .map(|h| format!(" by {h}"))
                .unwrap_or_default()
        );
    }
}

/// The flags the user gave that address this project again (`-f`, `-s`), for hints.
fn flags(global: &Global) -> String {
    let mut flags = String::new();
    if let Some(f) = &global.file {
        flags.push_str(&format!(" -f {}", f.display()));
    }
    if let Some(s) = &global.stage {
        flags.push_str(&format!(" -s {s}"));
    }
    flags
}

/// Records a deployment that `info --all` lists and `--service` finds (a warning when the
/// registry cannot be written: the deployment itself worked).
fn register(compiled: &Compiled, state: &StateDir, info: &RuntimeInfo) {
    let record = Record {
        service: compiled.graph.service.clone(),
        stage: compiled.graph.stage.clone(),
        manifest: target::absolute(&compiled.loaded.path),
        state: target::absolute(state.root()),
        deployed_from: std::env::current_dir()
            .map(|d| target::absolute(&d))
            .unwrap_or_default(),
        deployed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        port: info.gateway_port,
        pid: info.pid,
    };
    if let Err(e) = registry::save(&record) {
        eprintln!(
            "warning: could not record the deployment in the registry of local deployments: {e}"
        );
    }
}

/// Stops what serves `target`: through the admin API when its runtime answers, else (its
/// folder moved or deleted) by SIGTERM to the recorded process, if that still holds its store.
/// Whether something was stopped.
fn stop(target: &Target) -> Result<bool, Failure> {
    let pid = if let Some(info) = control::running(&target.state) {
        admin(&info, "POST", "/shutdown", None, Duration::from_secs(5))?;
        info.pid
    } else if let Some(Status::Running { pid }) = target.record().map(|r| r.status()) {
        control::terminate(pid).map_err(|e| {
            Failure::Internal(anyhow::Error::new(e).context(format!("stopping pid {pid}")))
        })?;
        pid
    } else {
        return Ok(false);
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while control::alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if control::alive(pid) {
        return Err(Failure::user(format!(
            "the local runtime (pid {pid}) did not stop within 30 s; data was kept"
        )));
    }
    Ok(true)
}

/// `nimbus remove`: stop the runtime, then delete its data unless `--keep-data`.
pub fn remove(global: &Global, args: &RemoveArgs, out: &Out) -> Result<(), Failure> {
    let target = target::resolve(global, &args.which, out)?;
    let state = &target.state;
    let name = target.name();
    let key = target::absolute(state.root());
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
    let stopped = stop(&target)?;
    let deleted = !args.keep_data && state.root().exists();
    if deleted {
        std::fs::remove_dir_all(state.root()).map_err(|e| {
            Failure::User(
                anyhow::Error::new(e).context(format!("deleting {}", state.root().display())),
            )
        })?;
    }
    if !args.keep_data {
        registry::forget(&key).map_err(|e| Failure::Internal(e.into()))?;
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

/// `nimbus info`: what the running runtime serves (or that it is not running); `--all`: every
/// local deployment.
pub fn info(global: &Global, args: &InfoArgs, out: &Out) -> Result<(), Failure> {
    if args.all {
        return info_all(out);
    }
    let target = target::resolve(global, &args.which, out)?;
    let record = target.record();
    let Some(rt) = control::running(&target.state) else {
        return not_running(&target, record.as_ref(), out);
    };
    let mut v = admin(&rt, "GET", "/info", None, Duration::from_secs(5))?;
    if args.console {
        println!("{}", nimbus_local::console::url(&rt));
        return Ok(());
    }
    if let Some(r) = &record {
        v["manifest"] = json!(r.manifest);
    }
    if out.json {
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(());
    }
    let s = |v: &Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    println!("{} runs locally", target.name());
    println!("  url       {}", s(&v, "url"));
    if let Some(r) = &record {
        println!("  manifest  {}", r.manifest.display());
    }
    println!(
        "  process   pid {}; admin API {} (Prometheus metrics at /metrics)",
        v["pid"],
        s(&v, "admin_url")
    );
    println!("  console   {}", s(&v, "console"));
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
            "  {name:<24} instances {:<3} invocations {:<6} errors {:<4} timeouts {:<4} retries {:<4} dead-lettered {:<4} cold starts {}",
            f["instances"],
            f["invocations"],
            f["errors"],
            f["timeouts"],
            f["retries"],
            f["dead_lettered"],
            f["cold_starts"]
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
                "  {q:<24} waiting {:<5} in flight {:<5} delayed {:<5} dead-lettered {}",
                d["visible"], d["in_flight"], d["delayed"], d["dead_lettered"]
            );
        }
    }
    println!(
        "api key (routes with `auth: api_key`): {}",
        s(&v, "api_key")
    );
    Ok(())
}

/// `info` of a deployment that does not answer: stopped, never deployed, or its folder gone
/// while its process still runs.
fn not_running(target: &Target, record: Option<&Record>, out: &Out) -> Result<(), Failure> {
    let deployed = target.state.root().exists();
    let status = record.map(Record::status);
    if out.json {
        let mut v = json!({
            "service": target.service,
            "stage": target.stage,
            "deployed": deployed || record.is_some(),
            "running": matches!(status, Some(Status::Running { .. })),
            "state": target.state.root(),
        });
        if let Some(r) = record {
            v["status"] = serde_json::to_value(r.status()).expect("json")["status"].clone();
            v["url"] = json!(r.url());
            v["manifest"] = json!(r.manifest);
        }
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(());
    }
    match (status, record) {
        (Some(Status::Running { pid }), Some(r)) => println!(
            "{} runs (pid {pid}) on {}, but its folder {} is gone\n  hint: `nimbus remove --service {} -s {} --yes` stops it",
            target.name(),
            r.url(),
            r.state.display(),
            r.service,
            r.stage
        ),
        (_, Some(r)) if deployed => println!(
            "{} is deployed locally but not running (it was on {})\n  hint: `nimbus deploy{}` starts it again on that port",
            target.name(),
            r.url(),
            deploy_flags(target)
        ),
        _ if deployed => println!(
            "{} is deployed locally but not running\n  hint: `nimbus deploy{}` starts it",
            target.name(),
            deploy_flags(target)
        ),
        _ => println!(
            "{} is not deployed locally\n  hint: `nimbus deploy{}` deploys it",
            target.name(),
            deploy_flags(target)
        ),
    }
    Ok(())
}

/// `nimbus info --all`: every recorded local deployment, wherever its project is.
fn info_all(out: &Out) -> Result<(), Failure> {
    let all = registry::all();
    if out.json {
        let list: Vec<Value> = all
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).expect("json");
                let status = serde_json::to_value(r.status()).expect("json");
                v["status"] = status["status"].clone();
                v["running"] = json!(matches!(r.status(), Status::Running { .. }));
                v["url"] = json!(r.url());
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list).expect("json"));
        return Ok(());
    }
    if all.is_empty() {
        println!("no local deployments are recorded on this machine");
        return Ok(());
    }
    println!(
        "{:<20} {:<10} {:<9} {:<24} MANIFEST",
        "SERVICE", "STAGE", "STATUS", "URL"
    );
    for r in &all {
        let status = match r.status() {
            Status::Running { .. } => "running",
            Status::Stopped => "stopped",
            Status::Gone => "gone",
        };
        println!(
            "{:<20} {:<10} {:<9} {:<24} {}",
            r.service,
            r.stage,
            status,
            r.url(),
            r.manifest.display()
        );
    }
    Ok(())
}

/// The hidden `__runtime` command: serve a deployment until asked to stop (what the
/// `nimbus-runtime` executable does, for when it is not installed beside `nimbus`).
pub fn runtime(args: &RuntimeArgs) -> Result<(), Failure> {
    nimbus_local::daemon::serve(args.state.clone(), args.port).map_err(|e| Failure::User(e.into()))
}
