//! Shared helpers: the shop example as a graph, a build of it, and settings.

#![allow(dead_code)]

pub mod cloud;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nimbus_gcp::GcpSettings;
use nimbus_graph::AppGraph;
use nimbus_package::{Artifact, BuildManifest};
use sha2::{Digest, Sha256};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The graph of a manifest file for GCP, stage `dev`.
pub fn graph_of(manifest: &Path) -> AppGraph {
    let options = nimbus_manifest::LoadOptions {
        provider: "gcp".into(),
        ..Default::default()
    };
    let loaded = nimbus_manifest::load_file(manifest, &options).unwrap_or_else(|e| match e {
        nimbus_manifest::LoadError::Invalid(r) => panic!("{}", r.render(false)),
        e => panic!("{e}"),
    });
    nimbus_graph::build(&loaded)
}

/// The graph of manifest text (handler files are not checked).
pub fn graph_str(manifest: &str) -> AppGraph {
    let options = nimbus_manifest::LoadOptions {
        provider: "gcp".into(),
        check_files: false,
        ..Default::default()
    };
    let loaded =
        nimbus_manifest::load_str(Path::new("nimbus.yaml"), manifest.to_string(), &options)
            .unwrap_or_else(|e| match e {
                nimbus_manifest::LoadError::Invalid(r) => panic!("{}", r.render(false)),
                e => panic!("{e}"),
            });
    nimbus_graph::build(&loaded)
}

/// The shop example's graph.
pub fn shop() -> AppGraph {
    graph_of(&repo().join("examples/shop/nimbus.yaml"))
}

/// A build of `graph` with stable made-up hashes (a real build is tested in nimbus-package).
pub fn build_of(graph: &AppGraph) -> BuildManifest {
    let functions = graph
        .functions
        .keys()
        .map(|name| {
            let sha256 = hex(&Sha256::digest(format!("zip of {name}")));
            let artifact = Artifact {
                file: format!("{name}.zip"),
                sha256,
                size: 1000,
                unzipped_size: 4000,
                files: 10,
                input_hash: hex(&Sha256::digest(format!("inputs of {name}"))),
                deps: None,
            };
            (name.clone(), artifact)
        })
        .collect::<BTreeMap<_, _>>();
    BuildManifest {
        format: "nimbus-package-v1".into(),
        service: graph.service.clone(),
        stage: graph.stage.clone(),
        provider: "gcp".into(),
        functions,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The shop's settings: its manifest's project and region, a made-up project number.
pub fn settings(graph: &AppGraph) -> GcpSettings {
    GcpSettings::from_graph(graph, "123456789012").unwrap()
}

/// Tools installed in the test venv: the directory of `NIMBUS_TEST_PYTHON` (which `scripts/test`
/// sets), else `<repo>/.tools/venv/bin/`. A missing tool fails the test when `CI` is set; on a
/// dev box it returns `None` and the caller skips with a message.
pub fn venv_tool(name: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("NIMBUS_TEST_PYTHON") {
        Some(python) => PathBuf::from(python)
            .parent()
            .expect("NIMBUS_TEST_PYTHON is a file path")
            .to_path_buf(),
        None => repo().join(".tools/venv/bin"),
    };
    let path = dir.join(name);
    if path.is_file() {
        return Some(path);
    }
    let message = format!(
        "`{name}` is not installed at {}: run scripts/test (it installs tests/requirements.txt into .tools/venv)",
        path.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}
