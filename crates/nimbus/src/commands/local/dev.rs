//! `nimbus dev`: the local runtime in the foreground. It watches the manifest and every
//! function's directory and, within a second of a change, rebuilds and replaces just the
//! changed functions (in-flight requests finish on the old version). Every function's log lines
//! and request lines stream to stdout as they are written, each function in its own colour
//! (when stdout is a terminal and `NO_COLOR` is unset); manifest errors show as `validate`
//! shows them. Ctrl-C stops it cleanly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{build, compile_local, local_failure, port_moved, register, requested_port, state_of};
use crate::cli::{DevArgs, Global};
use crate::output::{Failure, Out};

pub fn dev(global: &Global, args: &DevArgs, out: &Out) -> Result<(), Failure> {
    let compiled = compile_local(global, out)?;
    crate::commands::secret::check_local(&compiled.graph)?;
    let deployment = build(&compiled, out)?;
    let state = state_of(&compiled);
    if let Some(info) = nimbus_local::control::running(&state) {
        return Err(Failure::user(format!(
            "a background runtime (pid {}) already serves `{}` (stage `{}`) on {}\n  hint: stop it with `nimbus remove --keep-data`, or use it instead",
            info.pid,
            compiled.graph.service,
            compiled.graph.stage,
            info.gateway_url()
        )));
    }
    deployment
        .write(&state.deployment())
        .map_err(|e| Failure::Internal(e.into()))?;
    let requested = requested_port(args.port, &deployment).filter(|(p, _)| *p != 0);
    let last = state.last_port();
    let manifest = compiled.loaded.path.clone();
    let watch_roots = roots(&compiled);
    let tokio = tokio::runtime::Runtime::new().map_err(|e| Failure::Internal(e.into()))?;
    tokio.block_on(async {
        let server = nimbus_local::Server::start(state.clone(), nimbus_local::daemon::options_from_env(None), deployment, args.port)
            .await
            .map_err(|e| local_failure(e, requested.map(|(_, by)| by)))?;
        if requested.is_none() {
            port_moved(last, server.info.gateway_port);
        }
        register(&compiled, &state, &server.info);
        eprintln!("serving `{}` (stage `{}`) on {} — watching for changes, Ctrl-C to stop", compiled.graph.service, compiled.graph.stage, out.paint("1", &server.info.gateway_url()));
        for r in server.runtime.live().iter().flat_map(|l| l.router.routes().to_vec()) {
            eprintln!("  {:<7} {}{:<36} -> {}", r.method.to_string(), server.info.gateway_url(), r.pattern, r.function);
        }
        eprintln!("console: {}", nimbus_local::console::url(&server.info));
        let streaming = tokio::spawn(stream_logs(state.logs(), out.json, stdout_color(global)));
        let mut fingerprint = fingerprint(&manifest, &watch_roots);
        let mut stopping = server.stopping();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| Failure::Internal(e.into()))?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = stopping.changed() => break,
                _ = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
            let now = fingerprint_blocking(&manifest, &watch_roots).await;
            if now == fingerprint {
                continue;
            }
            fingerprint = now;
            let started = Instant::now();
            let (global_file, stage, provider, out_json, out_color) = (Some(manifest.clone()), global.stage.clone(), global.provider.clone(), out.json, out.color);
            let rebuilt = tokio::task::spawn_blocking(move || {
                let global = crate::cli::Global { file: global_file, provider, stage, output: if out_json { crate::cli::OutputFormat::Json } else { crate::cli::OutputFormat::Human }, no_color: !out_color, verbose: false, endpoint_url: None };
                // Errors as `validate` shows them (JSON only with `--output json`).
                let out = Out { color: out_color, json: out_json, verbose: false };
                let result = compile_local(&global, &out)
                    .and_then(|compiled| {
                        crate::commands::secret::check_local(&compiled.graph)?;
                        build(&compiled, &out)
                    });
                if let Err(Failure::User(e) | Failure::Internal(e)) = &result {
                    out.error(e);
                }
                result
            })
            .await;
            match rebuilt {
                Ok(Ok(deployment)) => {
                    let _ = deployment.write(&state.deployment());
                    match server.runtime.deploy(deployment).await {
                        Ok(changed) if changed.is_empty() => {}
                        Ok(changed) => eprintln!("reloaded {} in {:.0?}", changed.join(", "), started.elapsed()),
                        Err(e) => eprintln!("error: reload failed: {e}"),
                    }
                }
                Ok(Err(_)) => eprintln!("the manifest or a package has errors (above); still serving the previous version"),
                Err(e) => eprintln!("error: reload failed: {e}"),
            }
        }
        eprintln!("stopping: letting in-flight requests finish");
        server.stop().await;
        streaming.abort();
        Ok(())
    })
}

/// Whether lines on stdout are coloured: a terminal, no `NO_COLOR`, no `--no-color`.
fn stdout_color(global: &Global) -> bool {
    use std::io::IsTerminal;
    !global.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// ANSI colours given to functions, in turn by name.
const PALETTE: [&str; 6] = ["36", "32", "33", "35", "34", "96"];

/// The colour of `function`'s lines: the same in every run.
fn colour_of(function: &str) -> &'static str {
    let hash = function
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    PALETTE[hash as usize % PALETTE.len()]
}

/// Prints every record appended to the log in `dir` from now on (debug records aside): as
/// `nimbus logs` renders it, coloured per function, failures in bold; JSON lines with `json`.
async fn stream_logs(dir: PathBuf, json: bool, color: bool) {
    use nimbus_local::logs::{self, Follower, Level};
    use std::io::Write as _;
    let mut follower = Follower::at_end(&dir);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(records) = follower.poll() else {
            continue;
        };
        let mut stdout = std::io::stdout().lock();
        for record in records {
            let level = logs::level_of(&record);
            if level == Level::Debug {
                continue;
            }
            let line = match json {
                true => record.to_string(),
                false => logs::render(&record),
            };
            let function = record.get("function").and_then(|f| f.as_str());
            let _ = match (color && !json, function) {
                (true, Some(f)) => {
                    let bold = if level == Level::Error { "1;" } else { "" };
                    writeln!(stdout, "\x1b[{bold}{}m{line}\x1b[0m", colour_of(f))
                }
                (true, None) if level == Level::Error => {
                    writeln!(stdout, "\x1b[1;31m{line}\x1b[0m")
                }
                _ => writeln!(stdout, "{line}"),
            };
        }
        let _ = stdout.flush();
    }
}

/// Directories to watch: every function's source directory.
fn roots(compiled: &nimbus_provider::Compiled) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = compiled
        .graph
        .functions
        .values()
        .map(|f| compiled.loaded.dir.join(&f.source_dir))
        .collect();
    roots.sort();
    roots.dedup();
    roots
}

type Fingerprint = BTreeMap<PathBuf, (u64, SystemTime)>;

async fn fingerprint_blocking(manifest: &Path, roots: &[PathBuf]) -> Fingerprint {
    let (manifest, roots) = (manifest.to_path_buf(), roots.to_vec());
    tokio::task::spawn_blocking(move || fingerprint(&manifest, &roots))
        .await
        .unwrap_or_default()
}

/// Size and modification time of the manifest and every file below the roots.
fn fingerprint(manifest: &Path, roots: &[PathBuf]) -> Fingerprint {
    let mut out = Fingerprint::new();
    let mut add = |p: &Path| {
        if let Ok(m) = std::fs::metadata(p) {
            out.insert(
                p.to_path_buf(),
                (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)),
            );
        }
    };
    add(manifest);
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if matches!(
                name.as_ref(),
                ".nimbus" | ".git" | "__pycache__" | "node_modules" | ".pytest_cache"
            ) {
                continue;
            }
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => add(&path),
                Err(_) => {}
            }
        }
    }
    out
}
