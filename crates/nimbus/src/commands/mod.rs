//! One module per command, and the compile step they share.

mod build;
mod cloud;
mod event;
mod graph;
mod init;
mod local;
mod project;
mod queue;
mod schema;
mod secret;
mod validate;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context as _;
use nimbus_manifest::LoadOptions;
use nimbus_provider::{Compiled, ProviderId, Purpose};

use crate::cli::{Cli, Command, Global};
use crate::output::{Failure, Out, diagnostics_json};

/// Runs the parsed command.
pub fn run(cli: Cli, out: &Out) -> Result<(), Failure> {
    project::check_file_flag(&cli)?;
    if let Command::Invoke(args) = &cli.command
        && args.function.is_none()
    {
        return Err(Failure::user(
            "which function? `nimbus invoke FUNCTION [--data JSON]`",
        ));
    }
    match cli.command {
        Command::Init(args) => init::run(&args, out),
        Command::Validate => validate::run(&cli.global, out),
        Command::Build(args) => build::run(&cli.global, &args, out),
        Command::Deploy(args) if is_local(&cli.global)? => local::deploy(&cli.global, &args, out),
        Command::Deploy(args) => cloud::run(&cli.global, cloud::Op::Deploy(&args), out),
        Command::Plan(_) if is_local(&cli.global)? => Err(Failure::user(
            "`nimbus plan` is for the clouds (`-p aws`, `-p gcp`, `-p azure`)\n  hint: `nimbus deploy` replaces only the changed functions of the local runtime; `nimbus graph` shows what the app is",
        )),
        Command::Plan(args) => cloud::run(&cli.global, cloud::Op::Plan(&args), out),
        Command::Unlock(args) if is_local(&cli.global)? => Err(Failure::user(format!(
            "the local runtime takes no deploy lock; `nimbus unlock {}` is for the clouds (`-p aws`, ...)",
            args.lock_id
        ))),
        Command::Unlock(args) => cloud::run(&cli.global, cloud::Op::Unlock(&args.lock_id), out),
        Command::Dev(args) => local::dev(&cli.global, &args, out),
        Command::Remove(args) if is_local(&cli.global)? => local::remove(&cli.global, &args, out),
        Command::Remove(args) => cloud::run(&cli.global, cloud::Op::Remove(&args), out),
        Command::Info(args) if is_local(&cli.global)? => local::info(&cli.global, &args, out),
        Command::Info(args) => {
            cloud::local_only(
                args.all
                    .then_some("--all")
                    .or(args.console.then_some("--console")),
                &args.which,
            )?;
            cloud::run(&cli.global, cloud::Op::Info, out)
        }
        Command::Invoke(args) if is_local(&cli.global)? => local::invoke(&cli.global, &args, out),
        Command::Invoke(args) => cloud::run(&cli.global, cloud::Op::Invoke(&args), out),
        Command::Logs(args) if is_local(&cli.global)? => local::logs(&cli.global, &args, out),
        Command::Logs(args) => cloud::run(&cli.global, cloud::Op::Logs(&args), out),
        Command::Trace(args) if is_local(&cli.global)? => local::trace(&cli.global, &args, out),
        Command::Trace(_) => Err(Failure::user(
            "`nimbus trace` reads the local runtime's spans\n  hint: on the clouds, traces are in AWS X-Ray, Google Cloud Trace or Azure Application Insights (docs/tracing.md)",
        )),
        Command::Runtime(args) => local::runtime(&args),
        Command::Graph(args) => graph::run(&cli.global, &args, out),
        Command::Secret(args) => secret::run(&cli.global, &args, out),
        Command::Queue(args) => queue::run(&cli.global, &args.action, out),
        Command::Topic(args) => queue::publish(&cli.global, &args.action, out),
        Command::Schema => schema::run(),
    }
}

/// Whether `-p` names the local runtime.
fn is_local(global: &Global) -> Result<bool, Failure> {
    Ok(provider(global)? == ProviderId::Local)
}

/// The provider named by `-p`, or a user error.
pub(crate) fn provider(global: &Global) -> Result<ProviderId, Failure> {
    global.provider.parse::<ProviderId>().map_err(Failure::user)
}

/// Loads the manifest, builds the graph and checks it against the provider. Problems are
/// rendered here (as a report on stderr, or as JSON on stdout with `--output json`).
///
/// For [`Purpose::Deploy`] (`validate`, `plan`, `deploy`) the provider's required settings
/// must be in the manifest or the environment, as deploy refuses to run without them.
pub(crate) fn compile(global: &Global, out: &Out, purpose: Purpose) -> Result<Compiled, Failure> {
    let provider = provider(global)?;
    let file = project::required(global)?;
    let started = Instant::now();
    let options = LoadOptions {
        stage: global.stage.clone(),
        provider: provider.to_string(),
        env: std::env::vars().collect::<BTreeMap<_, _>>(),
        check_files: true,
        defer_env: false,
    };
    // One pass: the manifest's errors and the provider's limits are reported together.
    let report = match nimbus_manifest::check_file(&file, &options) {
        Ok(checked) => match nimbus_provider::compile_checked(checked, provider, purpose, &|name| {
            std::env::var(name).ok()
        }) {
            Ok(compiled) => {
                out.detail(format_args!(
                    "compiled {} in {:.1?}",
                    file.display(),
                    started.elapsed()
                ));
                let warnings = nimbus_diagnostic::Report::new(
                    &compiled.loaded.path,
                    &compiled.loaded.source,
                    compiled.warnings.clone(),
                );
                if !out.json {
                    out.report(&warnings);
                }
                return Ok(compiled);
            }
            Err(report) => report,
        },
        Err(e) => {
            return Err(Failure::User(anyhow::Error::new(e).context(
                "no manifest to read\n  hint: check the path given to `-f`; without `-f`, nimbus looks for `nimbus.yaml` here and in the folders above",
            )));
        }
    };
    if out.json {
        let json = serde_json::json!({
            "valid": false,
            "file": file.display().to_string(),
            "provider": provider.as_str(),
            "errors": report.error_count(),
            "diagnostics": diagnostics_json(&report.path, &report.diagnostics),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json)
                .context("writing JSON")
                .map_err(Failure::Internal)?
        );
    } else {
        out.report(&report);
    }
    Err(Failure::Reported)
}

/// The manifest as the commands that work on what is deployed need it (`info`, `logs`,
/// `remove`, `invoke`, `unlock`): loaded without deploy-time inputs — a value whose
/// `{{ env.NAME }}` is not set stays unrendered (listed in `loaded.deferred`), handler files
/// need not exist — and not held against the provider's limits again (what is deployed was
/// checked when it was deployed). A manifest that does not load even so is reported as
/// [`compile`] reports it.
pub(crate) fn load_deployed(global: &Global, out: &Out) -> Result<Compiled, Failure> {
    let provider = provider(global)?;
    let file = project::required(global)?;
    let options = LoadOptions {
        stage: global.stage.clone(),
        provider: provider.to_string(),
        env: std::env::vars().collect::<BTreeMap<_, _>>(),
        check_files: false,
        defer_env: true,
    };
    match nimbus_manifest::load_file(&file, &options) {
        Ok(loaded) => {
            let mut graph = nimbus_graph::build(&loaded);
            nimbus_provider::fill_settings(&mut graph, provider.capabilities(), &|name| {
                std::env::var(name).ok()
            });
            Ok(Compiled {
                loaded,
                graph,
                warnings: Vec::new(),
            })
        }
        Err(_) => compile(global, out, Purpose::Export),
    }
}
