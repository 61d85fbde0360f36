//! `nimbus init`: write a starter project that validates and deploys as is: the manifest, a
//! handler, and the manifest's JSON Schema (`nimbus.schema.json`, which the manifest's
//! `yaml-language-server` line points at, so editors validate offline and fetch nothing).
//! It never overwrites a file: if any file it would write exists, it writes nothing.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::{InitArgs, Template};
use crate::output::{Failure, Out};

const PYTHON_MANIFEST: &str = include_str!("../../templates/python/nimbus.yaml");
const PYTHON_HANDLER: &str = include_str!("../../templates/python/handler.py");
const NODE_MANIFEST: &str = include_str!("../../templates/node/nimbus.yaml");
const NODE_HANDLER: &str = include_str!("../../templates/node/handler.js");
/// The schema file `init` writes beside the manifest; the starters' first line points at it.
pub const SCHEMA_FILE: &str = "nimbus.schema.json";

pub fn run(args: &InitArgs, out: &Out) -> Result<(), Failure> {
    let dir = &args.dir;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => service_name(dir),
    };
    name.parse::<nimbus_manifest::Name>().map_err(|e| {
        Failure::user(format!(
            "cannot use `{name}` as the service name: {e}\n  hint: pass a valid one with `--name`"
        ))
    })?;
    let (manifest, handler_name, handler) = match args.template {
        Template::Python => (PYTHON_MANIFEST, "handler.py", PYTHON_HANDLER),
        Template::Node => (NODE_MANIFEST, "handler.js", NODE_HANDLER),
    };
    let files: Vec<(PathBuf, String)> = vec![
        (
            dir.join("nimbus.yaml"),
            manifest.replace("service: hello", &format!("service: {name}")),
        ),
        (dir.join(handler_name), handler.to_string()),
        (dir.join(SCHEMA_FILE), nimbus_manifest::json_schema()),
    ];
    let existing: Vec<String> = files
        .iter()
        .filter(|(p, _)| p.exists())
        .map(|(p, _)| format!("`{}`", p.display()))
        .collect();
    if !existing.is_empty() {
        return Err(Failure::user(format!(
            "{} already exist{}; nothing was written\n  hint: run `nimbus init` in an empty directory, or pass one: `nimbus init my-app`",
            existing.join(", "),
            if existing.len() == 1 { "s" } else { "" }
        )));
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating `{}`", dir.display()))
        .map_err(Failure::User)?;
    for (path, text) in &files {
        std::fs::write(path, text)
            .with_context(|| format!("writing `{}`", path.display()))
            .map_err(Failure::User)?;
        out.detail(format_args!("wrote {}", path.display()));
    }
    let cd = if dir == Path::new(".") {
        String::new()
    } else {
        format!("cd {} && ", dir.display())
    };
    if out.json {
        let written: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        println!(
            "{}",
            serde_json::json!({ "service": name, "files": written })
        );
    } else {
        println!("created service `{name}` in {}", dir.display());
        println!("next: {cd}nimbus validate && nimbus deploy");
    }
    Ok(())
}

/// A service name from a directory's name: lowercase, `-` for anything else.
fn service_name(dir: &Path) -> String {
    let base = std::fs::canonicalize(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".into());
    let cleaned: String = base
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let cleaned = cleaned.trim_matches('-').to_string();
    if cleaned.starts_with(|c: char| c.is_ascii_lowercase()) {
        cleaned
    } else {
        format!("app-{cleaned}").trim_end_matches('-').to_string()
    }
}
