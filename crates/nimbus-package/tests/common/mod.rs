//! Helpers the packaging tests share: projects in temp dirs, graphs, builds and zip listings.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nimbus_package::{BuildOptions, BuildReport, PackageError, build};
use nimbus_provider::ProviderId;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".nimbus" || name == "__pycache__" || name == ".pytest_cache" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

pub fn graph(manifest: &Path, provider: ProviderId) -> nimbus_graph::AppGraph {
    graph_with(manifest, provider, true)
}

/// The graph of `manifest`; `check_files: false` skips validation's checks of the handler files
/// (to test what packaging itself refuses).
pub fn graph_with(
    manifest: &Path,
    provider: ProviderId,
    check_files: bool,
) -> nimbus_graph::AppGraph {
    let options = nimbus_manifest::LoadOptions {
        provider: provider.to_string(),
        check_files,
        ..Default::default()
    };
    let loaded = nimbus_manifest::load_file(manifest, &options).unwrap_or_else(|e| match e {
        nimbus_manifest::LoadError::Invalid(r) => panic!("{}", r.render(false)),
        e => panic!("{e}"),
    });
    nimbus_graph::build(&loaded)
}

pub fn build_dir(
    dir: &Path,
    provider: ProviderId,
    cache: Option<&Path>,
) -> Result<BuildReport, PackageError> {
    let g = graph(&dir.join("nimbus.yaml"), provider);
    let mut options = BuildOptions::conventional(dir, provider, "dev");
    if let Some(c) = cache {
        options.cache_dir = c.to_path_buf();
    }
    build(&g, &options, &|_| {})
}

pub fn hashes(report: &BuildReport) -> BTreeMap<String, String> {
    report
        .manifest
        .functions
        .iter()
        .map(|(k, a)| (k.clone(), a.sha256.clone()))
        .collect()
}

/// A one-function project in a temp dir; `files` are (path, content) under it.
pub fn project(manifest: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nimbus.yaml"), manifest).unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

pub const ONE_FN: &str =
    "version: 1\nservice: t\nfunctions:\n  f:\n    handler: fn/app.py:handler\n";

pub fn zip_names(path: &Path) -> Vec<String> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().unwrap().to_string())
        .collect()
}

/// The error of a build of `dir` for AWS, which must fail.
pub fn failure(dir: &Path) -> String {
    match build_dir(dir, ProviderId::Aws, None) {
        Ok(_) => panic!("the build should fail"),
        Err(e) => e.to_string(),
    }
}
