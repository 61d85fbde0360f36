//! The commands for the clouds (`-p aws|gcp|azure`): `deploy`, `plan`, `remove`, `info`,
//! `logs`, `invoke`, `unlock`, the same for every cloud through [`nimbus_cloud::Cloud`].
//!
//! Each command compiles the manifest, connects to the provider named by `-p` (which checks the
//! credentials, so that a missing one fails before any build), builds the packages when the
//! command needs them (`deploy`, `plan`), runs, and prints: data on stdout
//! (the plan, endpoints, `--output json`), progress and everything else on stderr. Only
//! `deploy` and `plan` resolve deploy-time inputs (`{{ env.NAME }}`); the others work on what
//! was deployed and need only what locates it (the provider's settings).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use nimbus_cloud::{Cloud, Info, LogLine, LogQuery, Options, Progress, Target};
use nimbus_engine::{Action, Event};
use nimbus_provider::{Compiled, ProviderId};
use serde_json::json;

use crate::cli::{
    DeployArgs, EngineArgs, Global, InvokeArgs, LogsArgs, PlanArgs, RemoveArgs, Which,
};
use crate::output::{Failure, Out};

/// One cloud command with its arguments.
pub enum Op<'a> {
    Deploy(&'a DeployArgs),
    Plan(&'a PlanArgs),
    Remove(&'a RemoveArgs),
    Info,
    Logs(&'a LogsArgs),
    Invoke(&'a InvokeArgs),
    Unlock(&'a str),
}

impl Op<'_> {
    fn engine_args(&self) -> Option<&EngineArgs> {
        match self {
            Op::Deploy(a) => Some(&a.engine),
            Op::Remove(a) => Some(&a.engine),
            _ => None,
        }
    }
}

/// Refuses the flags that address local deployments (`--service`, `--all`) on a cloud.
pub fn local_only(flag: Option<&str>, which: &Which) -> Result<(), Failure> {
    let flag = flag.or(which.service.as_ref().map(|_| "--service"));
    match flag {
        Some(flag) => Err(Failure::user(format!(
            "`{flag}` finds local deployments (`-p local`); a cloud deployment is found through its manifest\n  hint: run the command where its `nimbus.yaml` is, or pass `-f PATH`"
        ))),
        None => Ok(()),
    }
}

/// Runs `op` against the cloud named by `-p`.
pub fn run(global: &Global, op: Op<'_>, out: &Out) -> Result<(), Failure> {
    let provider = super::provider(global)?;
    match &op {
        Op::Remove(a) => local_only(None, &a.which)?,
        Op::Logs(a) => local_only(None, &a.which)?,
        Op::Invoke(a) => local_only(None, &a.which)?,
        _ => {}
    }
    let compiled = match &op {
        Op::Deploy(_) | Op::Plan(_) => {
            super::compile(global, out, nimbus_provider::Purpose::Deploy)?
        }
        _ => {
            let compiled = super::load_deployed(global, out)?;
            located(&compiled, provider)?;
            compiled
        }
    };
    if let Op::Remove(args) = &op {
        confirm_remove(&compiled, provider, args)?;
    }
    let options = options(op.engine_args(), out);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(e.into()))?;
    // Connecting checks the credentials (and the account, project or subscription) first: a
    // deploy without them fails at once, not after building and fetching every dependency.
    runtime.block_on(async {
        match provider {
            ProviderId::Aws => {
                let aws =
                    nimbus_aws::connect(&compiled.graph, options, global.endpoint_url.clone())
                        .await
                        .map_err(failure::<nimbus_aws::Aws>)?;
                build_and_execute(&aws, &compiled, provider, &op, global, out).await
            }
            ProviderId::Gcp => {
                let gcp = nimbus_gcp::connect(&compiled.graph, options)
                    .await
                    .map_err(failure::<nimbus_gcp::Gcp>)?;
                build_and_execute(&gcp, &compiled, provider, &op, global, out).await
            }
            ProviderId::Azure => {
                let azure = nimbus_azure::connect(&compiled.graph, options)
                    .await
                    .map_err(failure::<nimbus_azure::Azure>)?;
                build_and_execute(&azure, &compiled, provider, &op, global, out).await
            }
            ProviderId::Local => Err(Failure::Internal(anyhow::anyhow!(
                "the local provider has its own commands"
            ))),
        }
    })
}

/// Builds the packages when `op` needs them (`deploy`, `plan`), then runs it on `cloud`.
async fn build_and_execute<C: Cloud>(
    cloud: &C,
    compiled: &Compiled,
    provider: ProviderId,
    op: &Op<'_>,
    global: &Global,
    out: &Out,
) -> Result<(), Failure> {
    let packages = match op {
        Op::Deploy(_) | Op::Plan(_) => Some(super::build::package(compiled, provider, false, out)?),
        _ => None,
    };
    let target = packages.as_ref().map(|(report, dir)| Target {
        graph: &compiled.graph,
        build: &report.manifest,
        build_dir: dir,
    });
    execute(cloud, compiled, target.as_ref(), op, global, out).await
}

/// The provider options: parallelism, lock timeout, and progress printed on stderr.
fn options(engine: Option<&EngineArgs>, out: &Out) -> Options {
    let mut options = Options::default();
    if let Some(e) = engine {
        options.parallelism = usize::from(e.parallelism);
        options.lock_timeout = e.lock_timeout.unwrap_or_default();
    }
    let color = out.color;
    options.progress = Some(Arc::new(move |p: &Progress| print_progress(p, color)));
    options
}

fn print_progress(p: &Progress, color: bool) {
    let paint = |code: &str, text: &str| match color {
        true => format!("\x1b[{code}m{text}\x1b[0m"),
        false => text.to_string(),
    };
    match p {
        Progress::Upload(u) if u.skipped => {
            eprintln!("  present   {:<24} {}", u.function, u.location)
        }
        Progress::Upload(u) => eprintln!(
            "  uploaded  {:<24} {:>10}  {}",
            u.function,
            super::build::human_bytes(u.bytes),
            u.location
        ),
        Progress::Resource(Event::Done {
            id,
            action,
            elapsed,
        }) => {
            let (code, word) = match action {
                Action::Create => ("32", "created"),
                Action::Update => ("33", "updated"),
                Action::Replace => ("35", "replaced"),
                Action::Delete => ("31", "deleted"),
                Action::Same => ("0", "same"),
            };
            eprintln!(
                "  {}  {id}  ({:.1?})",
                paint(code, &format!("{word:<8}")),
                elapsed
            )
        }
        Progress::Resource(Event::Failed {
            id,
            action,
            message,
            ..
        }) => eprintln!(
            "  {}  {id} ({action}): {message}",
            paint("1;31", "FAILED  ")
        ),
        Progress::Resource(Event::Retrying {
            id,
            attempt,
            delay,
            message,
            ..
        }) => eprintln!(
            "  retry     {id}: attempt {attempt} failed ({message}); again in {delay:.1?}"
        ),
        Progress::Resource(Event::Started { .. } | Event::Finished { .. }) => {}
        Progress::Waiting {
            what,
            status,
            elapsed,
        } => eprintln!("  waiting   {what}: {status} ({:.0?})", elapsed),
        Progress::Note { message } => eprintln!("  note      {message}"),
    }
}

/// A provider error as a user failure: its message, its causes, the engine's report when it is
/// the engine that stopped, and the provider's hint ([`Cloud::hint`]).
fn failure<C: Cloud>(e: C::Error) -> Failure {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    if let Some(nimbus_engine::Error::Failed { report, .. }) = C::engine_error(&e) {
        let s = report.summary;
        text.push_str(&format!(
            "\n  done before stopping: {} created, {} updated, {} replaced, {} deleted (all recorded in the state)",
            s.create, s.update, s.replace, s.delete
        ));
        for w in &report.warnings {
            text.push_str(&format!("\n  warning: {w}"));
        }
    }
    if let Some(hint) = C::hint(&e) {
        text.push_str(&format!("\n  hint: {hint}"));
    }
    Failure::user(text)
}

async fn execute<C: Cloud>(
    cloud: &C,
    compiled: &Compiled,
    target: Option<&Target<'_>>,
    op: &Op<'_>,
    global: &Global,
    out: &Out,
) -> Result<(), Failure> {
    let graph = &compiled.graph;
    let scope = format!("`{}` (stage `{}`)", graph.service, graph.stage);
    let provider = global.provider.as_str();
    match op {
        Op::Deploy(args) => {
            let target = target.expect("deploy builds first");
            let started = Instant::now();
            eprintln!("deploying {scope} to {provider}");
            let deployed = cloud
                .deploy(
                    target,
                    nimbus_cloud::DeployOptions {
                        force: args.force,
                        refresh: args.refresh,
                    },
                )
                .await
                .map_err(failure::<C>)?;
            if out.json {
                print_json(&deployed);
                return Ok(());
            }
            let s = deployed.report.summary;
            let calls = deployed.report.calls;
            let uploaded = deployed.uploads.iter().filter(|u| !u.skipped).count();
            eprintln!(
                "deployed {scope} to {provider} in {:.1?}: {} created, {} updated, {} replaced, {} deleted, {} unchanged; {} package{} uploaded; {} cloud calls ({} writes)",
                started.elapsed(),
                s.create,
                s.update,
                s.replace,
                s.delete,
                s.same,
                uploaded,
                if uploaded == 1 { "" } else { "s" },
                calls.reads + calls.writes(),
                calls.writes()
            );
            for w in &deployed.report.warnings {
                eprintln!("warning: {w}");
            }
            print_endpoints(&deployed.info);
            Ok(())
        }
        Op::Plan(args) => {
            let target = target.expect("plan builds first");
            let plan = cloud
                .plan(target, args.refresh)
                .await
                .map_err(failure::<C>)?;
            match out.json {
                true => println!("{}", plan.to_json()),
                false => print!("{}", plan.render()),
            }
            if args.detailed_exitcode && plan.has_changes() {
                return Err(Failure::Changes);
            }
            Ok(())
        }
        Op::Remove(args) => {
            let started = Instant::now();
            eprintln!("removing {scope} from {provider}");
            let report = cloud
                .remove(graph, args.force)
                .await
                .map_err(failure::<C>)?;
            if out.json {
                print_json(&report);
                return Ok(());
            }
            println!(
                "removed {scope} from {provider} in {:.1?}: {} deleted",
                started.elapsed(),
                report.summary.delete
            );
            for r in &report.retained {
                eprintln!("  kept      {}: {}", r.id, r.reason);
            }
            if !report.retained.is_empty() {
                eprintln!(
                    "hint: `nimbus remove -p {provider} --force` deletes them and their data"
                );
            }
            Ok(())
        }
        Op::Info => {
            let info = cloud.info(graph).await.map_err(failure::<C>)?;
            if out.json {
                print_json(&info);
                return Ok(());
            }
            if !info.deployed {
                println!("{scope} is not deployed to {provider}");
                return Ok(());
            }
            println!("{scope} on {provider}");
            if let Some(state) = &info.state {
                println!("state: {state}");
            }
            print_endpoints(&info);
            println!("functions:");
            for f in &info.functions {
                println!(
                    "  {:<24} {:<40} {:<10} {:>5} MB {:>4} s  {}",
                    f.name,
                    f.native,
                    f.runtime,
                    f.memory_mb,
                    f.timeout_s,
                    &f.package_sha256[..f.package_sha256.len().min(12)]
                );
            }
            if !info.resources.is_empty() {
                println!("resources:");
                for r in &info.resources {
                    println!("  {:<24} {:<7} {}", r.name, r.kind, r.native);
                }
            }
            if !info.dns_records.is_empty() {
                println!("DNS records to create (Nimbus does not manage your DNS zone):");
                for d in &info.dns_records {
                    println!(
                        "  {:<40} {:<5} {}  ({})",
                        d.name, d.kind, d.value, d.purpose
                    );
                }
            }
            Ok(())
        }
        Op::Logs(args) => {
            let since = match &args.since {
                Some(text) => Some(
                    crate::cli::parse_duration(text)
                        .map_err(|e| Failure::user(format!("--since: {e}")))?,
                ),
                None => None,
            };
            let query = LogQuery {
                function: args.function.clone(),
                since,
                follow: args.follow,
            };
            // The platform's own lines about an invocation's end read as the local words
            // (`[logs]` in capabilities.toml); `--level error` keeps the failures.
            let outcomes = &super::provider(global)?.capabilities().logs;
            let failures_only = match args.level.as_deref() {
                None => false,
                Some("error") => true,
                Some(other) => {
                    return Err(Failure::user(format!(
                        "--level {other} works on local deployments only: the clouds' log lines carry no level Nimbus can read, only the platform's lines about failed invocations\n  hint: --level error (timeouts, crashes, out of memory, errors) or --filter TEXT"
                    )));
                }
            };
            let json = out.json;
            let text = args.filter.clone();
            let sink = move |line: LogLine| {
                if text
                    .as_ref()
                    .is_some_and(|t| !line.message.contains(t.as_str()))
                {
                    return true;
                }
                let outcome = outcomes.outcome_of(&line.message);
                if failures_only && !outcome.is_some_and(|o| nimbus_provider::FAILURES.contains(&o))
                {
                    return true;
                }
                if json {
                    let mut value = serde_json::to_value(&line).expect("json");
                    if let Some(o) = outcome {
                        value["outcome"] = o.into();
                    }
                    println!("{value}");
                } else {
                    let time = chrono::DateTime::from_timestamp_millis(line.time_ms)
                        .map(|t| t.format("%H:%M:%S%.3f").to_string())
                        .unwrap_or_default();
                    match outcome {
                        Some(o) => println!("{time} {:<20} [{o}] {}", line.function, line.message),
                        None => println!("{time} {:<20} {}", line.function, line.message),
                    }
                }
                true
            };
            cloud.logs(graph, &query, &sink).await.map_err(failure::<C>)
        }
        Op::Invoke(args) => {
            let name = args.function.as_deref().unwrap_or_default();
            let Some(function) = graph.functions.get(name) else {
                return Err(super::event::unknown_function(
                    name,
                    &compiled.loaded.path.display().to_string(),
                    graph.functions.keys().map(String::as_str),
                ));
            };
            let triggers: Vec<_> = function.triggers.iter().map(|t| &t.spec).collect();
            let event = super::event::for_invoke(name, &triggers, args)?;
            let invoked = cloud
                .invoke(graph, &function.name, &event)
                .await
                .map_err(failure::<C>)?;
            if out.json {
                print_json(&invoked);
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&invoked.result).expect("json")
                );
            }
            if invoked.result.get("accepted") == Some(&json!(true)) {
                eprintln!(
                    "note: {provider} accepted the event and runs `{}` asynchronously: its outcome is in `nimbus logs {} -p {provider}`",
                    function.name, function.name
                );
            }
            if invoked.failed {
                return Err(Failure::user(format!(
                    "`{}` failed on {provider}: {}\n  hint: `nimbus logs {} -p {provider}` shows what it printed",
                    function.name,
                    if event["type"] == "http" {
                        "its handler raised an error (the response above)"
                    } else {
                        "its handler raised an error or reported failed items (the result above)"
                    },
                    function.name
                )));
            }
            Ok(())
        }
        Op::Unlock(id) => {
            cloud.unlock(graph, id).await.map_err(failure::<C>)?;
            match out.json {
                true => println!("{}", json!({ "unlocked": id })),
                false => println!("removed lock `{id}` of {scope} on {provider}"),
            }
            Ok(())
        }
    }
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("json"));
}

/// The HTTP routes: the base URL on stdout (for scripts), the routes on stderr.
fn print_endpoints(info: &Info) {
    let Some(first) = info.endpoints.first() else {
        return;
    };
    let base = info
        .endpoints
        .iter()
        .map(|e| e.url.as_str())
        .fold(first.url.as_str(), |acc, url| common_prefix(acc, url));
    let base = base.trim_end_matches('/');
    println!("{base}");
    for e in &info.endpoints {
        eprintln!("  {:<7} {:<56} -> {}", e.method, e.url, e.function);
    }
}

/// The longest common prefix of two URLs, cut at a `/`.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let cut = a[..n]
        .rfind('/')
        .map_or(n, |i| if n == a.len() && n == b.len() { n } else { i });
    &a[..cut]
}

/// `remove` deletes resources: without a terminal it needs `--yes`.
fn confirm_remove(
    compiled: &Compiled,
    provider: ProviderId,
    args: &RemoveArgs,
) -> Result<(), Failure> {
    if args.yes {
        return Ok(());
    }
    let what = format!(
        "`{}` (stage `{}`) on {provider}",
        compiled.graph.service, compiled.graph.stage
    );
    if !std::io::stdin().is_terminal() {
        return Err(Failure::user(format!(
            "removing {what} deletes its functions, routes, queues and topics{}; pass --yes to confirm",
            if args.force {
                ", and tables and buckets with their data"
            } else {
                ""
            }
        )));
    }
    eprint!(
        "Delete every resource of {what}{}? [y/N] ",
        if args.force {
            ", data included"
        } else {
            " (tables and buckets holding data are kept)"
        }
    );
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    match answer.trim() {
        "y" | "Y" | "yes" => Ok(()),
        _ => Err(Failure::user("nothing was removed")),
    }
}

/// Refuses to look for a deployment whose location (the provider's settings: region, project,
/// resource group, ...) depends on an environment variable that is not set here, naming it:
/// without it, the state cannot be found. Other deploy-time inputs are not needed.
fn located(compiled: &Compiled, provider: ProviderId) -> Result<(), Failure> {
    fn unrendered<'v>(v: &'v serde_json::Value, out: &mut Vec<&'v str>) {
        match v {
            serde_json::Value::String(s) if s.contains("{{") => out.push(s),
            serde_json::Value::Array(items) => items.iter().for_each(|i| unrendered(i, out)),
            serde_json::Value::Object(map) => map.values().for_each(|i| unrendered(i, out)),
            _ => {}
        }
    }
    let deferred = &compiled.loaded.deferred;
    if deferred.is_empty() {
        return Ok(());
    }
    let mut values = Vec::new();
    if let Some(settings) = compiled.graph.settings.get(provider.as_str()) {
        unrendered(settings, &mut values);
    }
    let mut missing: Vec<&str> = deferred
        .iter()
        .map(|d| d.variable.as_str())
        .filter(|v| values.iter().any(|s| s.contains(&format!("env.{v}"))))
        .collect();
    missing.sort();
    missing.dedup();
    if values.is_empty() {
        return Ok(());
    }
    let list = missing
        .iter()
        .map(|m| format!("`{m}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(Failure::user(format!(
        "`providers.{provider}` in {} reads {} from the environment, and it is not set here: nimbus needs it to find the deployment\n  hint: set {} as it was set for the deploy",
        compiled.loaded.path.display(),
        if list.is_empty() {
            "a variable".to_string()
        } else {
            list.clone()
        },
        if list.is_empty() {
            "it".to_string()
        } else {
            list
        },
    )))
}
