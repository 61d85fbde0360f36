//! `nimbus secret set | list | rm | import`: secret values, kept outside the project.
//!
//! A value is read from standard input or `--from-file`, never from the command line (which
//! shell history and `ps` keep). Its size is checked against the provider's limit before
//! anything is stored. The local target keeps values in its store; GCP in Secret Manager
//! ([`gcp`]); AWS in Secrets Manager ([`aws`]); Azure in the stage's Key Vault ([`azure`]). `list` shows names, where a value is set and when, never values.
//! `set --restart` then restarts the functions that read the secret, where the provider can
//! ([`restart`]).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::Context as _;
use nimbus_graph::AppGraph;
use nimbus_local::secrets::SecretStore;
use nimbus_manifest::SecretName;
use nimbus_provider::ProviderId;
use serde_json::json;

use crate::cli::{Global, SecretAction, SecretArgs};
use crate::output::{Failure, Out};

mod aws;
mod azure;
mod gcp;
mod restart;

/// Runs `nimbus secret ...`.
pub fn run(global: &Global, args: &SecretArgs, out: &Out) -> Result<(), Failure> {
    let provider = super::provider(global)?;
    let compiled = super::load_deployed(global, out)?;
    let graph = &compiled.graph;
    match &args.action {
        SecretAction::Set {
            name,
            from_file,
            restart,
        } => {
            let name = declared(graph, name)?;
            if *restart {
                restart::check(provider, &name)?;
            }
            let value = match from_file {
                Some(path) => std::fs::read_to_string(path).map_err(|e| {
                    Failure::user(format!(
                        "cannot read the value from `{}`: {e}\n  hint: the file must be readable UTF-8 text",
                        path.display()
                    ))
                })?,
                None => read_stdin()?,
            };
            check_value(&name, &value, provider)?;
            if provider == ProviderId::Gcp {
                return gcp::run(graph, gcp::Action::Set(&name, &value), out);
            }
            if provider == ProviderId::Aws {
                return aws::run(global, graph, aws::Action::Set(&name, &value), out);
            }
            if provider == ProviderId::Azure {
                return azure::run(graph, azure::Action::Set(&name, &value), out);
            }
            let mut store = store(graph, provider)?;
            store.set(&name, &value).map_err(internal)?;
            eprintln!(
                "set secret `{name}` for {provider}/{} ({} bytes)",
                graph.stage,
                value.len()
            );
            if *restart {
                restart::run(&compiled, provider, &name)?;
            }
            Ok(())
        }
        SecretAction::Rm { name } if provider == ProviderId::Gcp => {
            gcp::run(graph, gcp::Action::Rm(name), out)
        }
        SecretAction::Rm { name } if provider == ProviderId::Aws => {
            aws::run(global, graph, aws::Action::Rm(name), out)
        }
        SecretAction::Rm { name } if provider == ProviderId::Azure => {
            azure::run(graph, azure::Action::Rm(name), out)
        }
        SecretAction::Rm { name } => {
            let mut store = store(graph, provider)?;
            if !store.remove(name).map_err(internal)? {
                return Err(Failure::user(format!(
                    "secret `{name}` has no value for {provider}/{}\n  hint: `nimbus secret list` shows which secrets are set",
                    graph.stage
                )));
            }
            eprintln!("removed secret `{name}` for {provider}/{}", graph.stage);
            Ok(())
        }
        SecretAction::List if provider == ProviderId::Gcp => {
            gcp::run(graph, gcp::Action::List, out)
        }
        SecretAction::List if provider == ProviderId::Aws => {
            aws::run(global, graph, aws::Action::List, out)
        }
        SecretAction::List if provider == ProviderId::Azure => {
            azure::run(graph, azure::Action::List, out)
        }
        SecretAction::List => list(graph, provider, out),
        SecretAction::Import { dotenv } => import(global, graph, provider, dotenv, out),
    }
}

/// The secret `name`, which must be a valid name declared in the manifest.
fn declared(graph: &AppGraph, name: &str) -> Result<String, Failure> {
    let parsed: SecretName = name.parse().map_err(Failure::user)?;
    if !graph.secrets.contains_key(parsed.as_str()) {
        let hint =
            match nimbus_diagnostic::did_you_mean(name, graph.secrets.keys().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("declare it in the manifest first: `secrets: {{ {name}: {{}} }}`"),
            };
        return Err(Failure::user(format!(
            "secret `{name}` is not declared in the manifest\n  hint: {hint}"
        )));
    }
    Ok(parsed.to_string())
}

/// Refuses an empty value, or one over the provider's limit.
fn check_value(name: &str, value: &str, provider: ProviderId) -> Result<(), Failure> {
    if value.is_empty() {
        return Err(Failure::user(format!(
            "the value of secret `{name}` is empty\n  hint: pipe it in (`printf %s \"$VALUE\" | nimbus secret set {name}`) or use --from-file"
        )));
    }
    let caps = &provider.capabilities().secrets;
    if value.len() > caps.max_value_bytes {
        let why = caps.limit_note.clone().unwrap_or_else(|| {
            format!(
                "{} takes at most {} KiB",
                caps.store,
                caps.max_value_bytes / 1024
            )
        });
        return Err(Failure::user(format!(
            "the value of secret `{name}` is {} bytes, over {provider}'s limit of {}: {why}\n  hint: store a smaller value (a key, not the document it unlocks)",
            value.len(),
            caps.max_value_bytes
        )));
    }
    Ok(())
}

/// The value from standard input, without one final newline (as `echo` adds).
fn read_stdin() -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("enter the value, then Ctrl-D (it is not echoed to any file or log)");
    }
    let mut value = String::new();
    stdin
        .lock()
        .read_to_string(&mut value)
        .map_err(|e| Failure::user(format!("cannot read the value from stdin: {e}")))?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    Ok(value)
}

/// The store of the graph's service and stage for `provider` (only local in this version).
fn store(graph: &AppGraph, provider: ProviderId) -> Result<SecretStore, Failure> {
    if !provider.capabilities().secrets.supported {
        return Err(Failure::user(format!(
            "secrets are not yet supported for {provider}; supported: {}\n  hint: use `-p local` (the default)",
            ProviderId::with_secrets()
        )));
    }
    if provider != ProviderId::Local {
        return Err(Failure::Internal(anyhow::anyhow!(
            "no secret store client for {provider} in this build"
        )));
    }
    SecretStore::open(&graph.service, &graph.stage).map_err(internal)
}

fn internal(e: nimbus_local::LocalError) -> Failure {
    Failure::Internal(anyhow::Error::new(e))
}

fn list(graph: &AppGraph, provider: ProviderId, out: &Out) -> Result<(), Failure> {
    let store = store(graph, provider)?;
    let set: BTreeMap<String, String> = store
        .list()
        .into_iter()
        .map(|l| (l.name, l.set_at))
        .collect();
    let undeclared: Vec<&String> = set
        .keys()
        .filter(|n| !graph.secrets.contains_key(*n))
        .collect();
    show(graph, provider, &set, &undeclared, out)
}

/// Prints the declared secrets (whether each is `set`, and when) and the `undeclared` values.
fn show(
    graph: &AppGraph,
    provider: ProviderId,
    set: &BTreeMap<String, String>,
    undeclared: &[&String],
    out: &Out,
) -> Result<(), Failure> {
    let readers = graph.secret_readers();
    let mut rows = Vec::new();
    for (name, node) in &graph.secrets {
        rows.push(json!({
            "name": name,
            "description": node.description,
            "provider": provider.as_str(),
            "stage": graph.stage,
            "set": set.contains_key(name),
            "set_at": set.get(name),
            "used_by": readers.get(name.as_str()).cloned().unwrap_or_default(),
        }));
    }
    if out.json {
        let doc = json!({ "secrets": rows, "undeclared_values": undeclared });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc)
                .context("writing JSON")
                .map_err(Failure::Internal)?
        );
        return Ok(());
    }
    if rows.is_empty() {
        println!("no secrets declared (add them under `secrets:` in the manifest)");
    }
    for row in &rows {
        let name = row["name"].as_str().unwrap_or_default();
        let when = match row["set_at"].as_str() {
            Some(at) => format!("set {at}"),
            None => format!(
                "NOT SET — `nimbus secret set {name} -p {provider} -s {}`",
                graph.stage
            ),
        };
        let used: Vec<&str> = readers.get(name).cloned().unwrap_or_default();
        let used = match used.is_empty() {
            true => "used by no function".to_string(),
            false => format!("used by {}", used.join(", ")),
        };
        println!("{name}  {provider}/{}  {when}  ({used})", graph.stage);
    }
    for name in undeclared.iter() {
        println!(
            "{name}  {provider}/{}  set, but not declared in the manifest (`nimbus secret rm {name}` removes it)",
            graph.stage
        );
    }
    Ok(())
}

/// Sets secrets from a dotenv file. A key is a declared secret's name, or an environment
/// variable that a function reads a secret through (`PAYMENT_API_KEY`).
fn import(
    global: &Global,
    graph: &AppGraph,
    provider: ProviderId,
    file: &Path,
    out: &Out,
) -> Result<(), Failure> {
    let by_var: BTreeMap<&str, &str> = graph
        .functions
        .values()
        .flat_map(|f| f.secrets.iter().map(|(v, s)| (v.as_str(), s.as_str())))
        .collect();
    let iter = dotenvy::from_path_iter(file)
        .map_err(|e| Failure::user(format!("cannot read `{}`: {e}", file.display())))?;
    let mut pairs = Vec::new();
    let mut skipped = Vec::new();
    for item in iter {
        let (key, value) = item.map_err(|e| match e {
            dotenvy::Error::LineParse(line, at) => {
                let text = std::fs::read_to_string(file).unwrap_or_default();
                let number = text
                    .lines()
                    .position(|l| l.trim() == line.trim() || l.contains(line.as_str()))
                    .map_or(0, |i| i + 1);
                Failure::user(format!(
                    "{}:{number}:{}: cannot parse `{line}`\n  hint: write `NAME=value` pairs, one a line (quote values with spaces)",
                    file.display(),
                    at + 1
                ))
            }
            other => Failure::user(format!("{}: {other}", file.display())),
        })?;
        let secret = if graph.secrets.contains_key(&key) {
            key.clone()
        } else if let Some(s) = by_var.get(key.as_str()) {
            s.to_string()
        } else {
            skipped.push(key);
            continue;
        };
        check_value(&secret, &value, provider)?;
        pairs.push((secret, value));
    }
    // Every value is checked before the first is stored.
    if provider == ProviderId::Gcp {
        for (secret, value) in &pairs {
            gcp::run(graph, gcp::Action::Set(secret, value), out)?;
        }
        return Ok(());
    }
    if provider == ProviderId::Aws {
        for (secret, value) in &pairs {
            aws::run(global, graph, aws::Action::Set(secret, value), out)?;
        }
        return Ok(());
    }
    if provider == ProviderId::Azure {
        for (secret, value) in &pairs {
            azure::run(graph, azure::Action::Set(secret, value), out)?;
        }
        return Ok(());
    }
    let mut store = store(graph, provider)?;
    for (secret, value) in &pairs {
        store.set(secret, value).map_err(internal)?;
    }
    let names: Vec<&str> = pairs.iter().map(|(s, _)| s.as_str()).collect();
    eprintln!(
        "imported {} secret(s) for {provider}/{}: {}",
        names.len(),
        graph.stage,
        names.join(", ")
    );
    if !skipped.is_empty() {
        eprintln!(
            "warning: skipped {} (neither a declared secret nor a variable that reads one)",
            skipped.join(", ")
        );
    }
    Ok(())
}

/// Before a local deploy changes anything: every secret a function reads has a value.
pub(crate) fn check_local(graph: &AppGraph) -> Result<(), Failure> {
    let readers = graph.secret_readers();
    if readers.is_empty() {
        return Ok(());
    }
    let store = SecretStore::open(&graph.service, &graph.stage).map_err(internal)?;
    let missing: Vec<(String, Vec<String>)> = readers
        .iter()
        .filter(|(name, _)| !store.has(name))
        .map(|(n, r)| (n.to_string(), r.iter().map(|f| f.to_string()).collect()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure::user(nimbus_cloud::missing_secrets_message(
        "local",
        &graph.stage,
        "the local secret store",
        &missing,
    )))
}
