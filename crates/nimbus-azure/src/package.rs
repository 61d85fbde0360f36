//! App packages: a function's zip from `nimbus build`, made into a Function App package.
//!
//! The function's entries are copied as they are (compressed bytes untouched), except
//! `_nimbus/function.json`, which gains `"azure": {"route_prefix": ""}` (the shim then matches
//! paths as the manifest wrote them; `host.json` removes Azure's `api/` prefix). The generated
//! files of [`crate::entry`] are added at the root; the function's own `package.json` at the
//! root, if it ships one, is kept with `main` pointing at the entry point. A function file that
//! would be overwritten by `function_app.py`, `index.js` or `host.json` is an error. Entries are
//! sorted and the result is byte-for-byte reproducible, so the package is content-addressed by
//! [`crate::template::package_id`] (its inputs) and an unchanged function is not uploaded again.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::path::Path;

use nimbus_graph::AppGraph;
use serde_json::{Value, json};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use crate::apps::App;
use crate::entry;
use crate::error::AzureError;

/// Bumped when the app package layout changes (it is part of every package id).
pub const FORMAT: &str = "nimbus-azure-app-v1";

/// The app package of `app` from the function's zip at `function_zip`, in memory.
pub fn assemble(graph: &AppGraph, app: &App, function_zip: &Path) -> Result<Vec<u8>, AzureError> {
    let bytes = std::fs::read(function_zip)
        .map_err(AzureError::io(format!("read `{}`", function_zip.display())))?;
    assemble_bytes(graph, app, &bytes)
}

/// [`assemble`] from the function zip's bytes.
pub fn assemble_bytes(
    graph: &AppGraph,
    app: &App,
    function_zip: &[u8],
) -> Result<Vec<u8>, AzureError> {
    let problem = |problem: String| AzureError::Package {
        function: app.function.clone(),
        problem,
    };
    let mut input = ZipArchive::new(Cursor::new(function_zip))
        .map_err(|e| problem(format!("is not a readable zip: {e}")))?;
    let generated: BTreeMap<String, Vec<u8>> = entry::files(graph, app)
        .into_iter()
        .map(|f| (f.path, f.bytes))
        .collect();
    // Copied as they are, sorted by name; some replaced.
    let mut names: Vec<String> = (0..input.len())
        .filter_map(|i| {
            input
                .name_for_index(i)
                .and_then(Result::ok)
                .map(|n| n.to_string())
        })
        .collect();
    names.sort();
    let mut replaced: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for name in &names {
        if name == "_nimbus/function.json" {
            let mut text = Vec::new();
            input
                .by_name(name)
                .and_then(|mut f| f.read_to_end(&mut text).map_err(Into::into))
                .map_err(|e| problem(format!("has an unreadable `{name}`: {e}")))?;
            let mut config: Value = serde_json::from_slice(&text)
                .map_err(|e| problem(format!("has an invalid `{name}`: {e}")))?;
            config["azure"] = json!({ "route_prefix": "" });
            replaced.insert(name.clone(), pretty(&config));
        } else if name == "package.json" && generated.contains_key("package.json") {
            let mut text = Vec::new();
            input
                .by_name(name)
                .and_then(|mut f| f.read_to_end(&mut text).map_err(Into::into))
                .map_err(|e| problem(format!("has an unreadable `{name}`: {e}")))?;
            let mut own: Value = serde_json::from_slice(&text)
                .map_err(|e| problem(format!("has an invalid root `package.json`: {e}")))?;
            if !own.is_object() {
                return Err(problem(
                    "has a root `package.json` that is not an object".into(),
                ));
            }
            own["main"] = json!(entry::NODE_ENTRY);
            replaced.insert(name.clone(), pretty(&own));
        } else if generated.contains_key(name) {
            return Err(problem(format!(
                "has its own `{name}`, which the Azure app needs for its generated entry point; rename that file"
            )));
        }
    }
    let mut out = ZipWriter::new(Cursor::new(Vec::new()));
    let options = |mode: u32| {
        SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(6))
            .last_modified_time(DateTime::default())
            .unix_permissions(mode)
            .large_file(false)
    };
    let zip_error = |e: zip::result::ZipError| problem(format!("could not be rewritten: {e}"));
    let mut all: Vec<&String> = names.iter().chain(generated.keys()).collect();
    all.sort();
    all.dedup();
    for name in all {
        if let Some(bytes) = replaced
            .get(name)
            .or_else(|| (!names.contains(name)).then(|| &generated[name]))
        {
            out.start_file(name.as_str(), options(0o644))
                .map_err(zip_error)?;
            out.write_all(bytes)
                .map_err(|e| problem(format!("could not be rewritten: {e}")))?;
        } else {
            let file = input.by_name(name).map_err(zip_error)?;
            out.raw_copy_file(file).map_err(zip_error)?;
        }
    }
    Ok(out.finish().map_err(zip_error)?.into_inner())
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(v).expect("json");
    bytes.push(b'\n');
    bytes
}
