//! Finding the manifest as cargo finds `Cargo.toml`: `-f PATH` (a file, or a folder holding
//! one), else `nimbus.yaml` — or `nimbus.yml`, for Serverless Framework habits; both in one
//! folder is an error — in the current folder or the nearest parent that has one. The path is
//! kept relative (`../../nimbus.yaml`), and everything relative in the manifest (handlers,
//! `.nimbus/`) resolves against the manifest's folder, wherever the command runs.
//!
//! Also: `-f NAME` where `NAME` is no file but a function of the manifest (Serverless
//! Framework's `-f`) says which command was meant.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nimbus_manifest::LoadOptions;

use crate::cli::{Cli, Command, Global};
use crate::output::Failure;

/// The manifest names looked for, in order.
pub const NAMES: [&str; 2] = ["nimbus.yaml", "nimbus.yml"];

/// The command's manifest: `-f`, else the nearest one from the current folder up; `None` when
/// there is none.
pub fn find(global: &Global) -> Result<Option<PathBuf>, Failure> {
    match &global.file {
        Some(dir) if dir.is_dir() => match in_dir(dir)? {
            Some(found) => Ok(Some(found)),
            None => Err(Failure::user(format!(
                "no {} in the folder `{}`\n  hint: run `nimbus init {}` to create one",
                names(),
                dir.display(),
                dir.display()
            ))),
        },
        Some(file) => Ok(Some(file.clone())),
        None => discover(),
    }
}

/// The command's manifest, or a user error saying where it was looked for.
pub fn required(global: &Global) -> Result<PathBuf, Failure> {
    find(global)?.ok_or_else(not_found)
}

/// The error for no manifest here or above.
pub fn not_found() -> Failure {
    Failure::user(not_found_message())
}

/// What [`not_found`] says.
pub fn not_found_message() -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    format!(
        "no {} in `{}` or any folder above it\n  hint: run `nimbus init` to create one, or point at a manifest with `-f PATH`",
        names(),
        cwd.display()
    )
}

fn names() -> String {
    NAMES
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The manifest in `dir` itself; an error when it has more than one.
fn in_dir(dir: &Path) -> Result<Option<PathBuf>, Failure> {
    let found: Vec<PathBuf> = NAMES
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(clean(one))),
        several => Err(Failure::user(format!(
            "`{}` has both {}; which one is the manifest?\n  hint: delete or rename one, or pass `-f {}`",
            dir.display(),
            several
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(" and "),
            clean(&several[0]).display()
        ))),
    }
}

/// `./nimbus.yaml` as `nimbus.yaml`.
fn clean(path: &Path) -> PathBuf {
    path.strip_prefix(".").unwrap_or(path).to_path_buf()
}

/// The nearest manifest from the current folder up, as a relative path (`../nimbus.yaml`).
fn discover() -> Result<Option<PathBuf>, Failure> {
    let cwd = std::env::current_dir().map_err(|e| {
        Failure::Internal(anyhow::Error::new(e).context("reading the current folder"))
    })?;
    let mut up = PathBuf::from(".");
    for dir in cwd.ancestors() {
        if in_dir(dir)?.is_some() {
            return in_dir(&up);
        }
        up = if up == Path::new(".") {
            PathBuf::from("..")
        } else {
            up.join("..")
        };
    }
    Ok(None)
}

/// Serverless Framework's `-f FUNCTION`: when `-f NAME` names no file but a function of the
/// manifest found here, says which command was meant. Runs before the command.
pub fn check_file_flag(cli: &Cli) -> Result<(), Failure> {
    let Some(file) = &cli.global.file else {
        return Ok(());
    };
    if file.exists() {
        return Ok(());
    }
    let Some(name) = file.to_str() else {
        return Ok(());
    };
    let Ok(Some(manifest)) = discover() else {
        return Ok(());
    };
    if !function_names(&manifest, &cli.global)
        .iter()
        .any(|f| f == name)
    {
        return Ok(());
    }
    let (command, takes_function) = command_name(&cli.command);
    let meant = if takes_function {
        format!("nimbus {command} {name}")
    } else {
        format!("nimbus {command}")
    };
    let why = if takes_function {
        String::new()
    } else {
        format!(" (`nimbus {command}` works on every function of the manifest)")
    };
    Err(Failure::user(format!(
        "there is no file `{name}`: `-f` is `--file`, the manifest, but `{name}` is a function of {}{why}\n  hint: did you mean `{meant}`?",
        manifest.display()
    )))
}

/// The command as typed, and whether it takes a function as its argument.
fn command_name(command: &Command) -> (&'static str, bool) {
    match command {
        Command::Logs(_) => ("logs", true),
        Command::Invoke(_) => ("invoke", true),
        Command::Init(_) => ("init", false),
        Command::Validate => ("validate", false),
        Command::Build(_) => ("build", false),
        Command::Deploy(_) => ("deploy", false),
        Command::Plan(_) => ("plan", false),
        Command::Unlock(_) => ("unlock", false),
        Command::Dev(_) => ("dev", false),
        Command::Remove(_) => ("remove", false),
        Command::Info(_) => ("info", false),
        Command::Trace(_) => ("trace", false),
        Command::Runtime(_) => ("__runtime", false),
        Command::Graph(_) => ("graph", false),
        Command::Secret(_) => ("secret", false),
        Command::Queue(_) => ("queue", false),
        Command::Topic(_) => ("topic", false),
        Command::Schema => ("schema", false),
    }
}

/// The function names of `manifest`, read leniently (no environment needed, no file checks);
/// empty when it does not load.
fn function_names(manifest: &Path, global: &Global) -> Vec<String> {
    let options = LoadOptions {
        stage: global.stage.clone(),
        provider: global.provider.clone(),
        env: std::env::vars().collect::<BTreeMap<_, _>>(),
        check_files: false,
        defer_env: true,
    };
    nimbus_manifest::load_file(manifest, &options)
        .map(|l| {
            l.manifest
                .functions
                .keys()
                .map(|k| k.value.to_string())
                .collect()
        })
        .unwrap_or_default()
}
