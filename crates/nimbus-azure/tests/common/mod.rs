//! Shared helpers: the shop example for Azure as a graph, a build of it, and settings.

#![allow(dead_code)]

pub mod azurite;
pub mod cosmos;
pub mod double;

use std::path::{Path, PathBuf};

use nimbus_azure::AzureSettings;
use nimbus_graph::AppGraph;
use nimbus_package::BuildManifest;

#[allow(unused_imports)] // each test binary uses some of them
pub use nimbus_test_support::{build_of, repo};

/// The shop's manifest, as `examples/shop/nimbus.yaml` has it.
pub fn shop_yaml() -> String {
    std::fs::read_to_string(repo().join("examples/shop/nimbus.yaml")).unwrap()
}

/// The shop, whose `charge-payment` reads one secret, `payment-key`, as `PAYMENT_API_KEY`.
pub fn shop_with_secret_yaml() -> String {
    let yaml = shop_yaml();
    assert!(yaml.contains("PAYMENT_API_KEY: { secret: payment-key }"));
    yaml
}

/// The shop without its secret (for tests about other grants: `template_secrets.rs` tests the
/// secret's).
pub fn shop_without_secret_yaml() -> String {
    let yaml = shop_yaml();
    let stripped: String = yaml
        .lines()
        .filter(|l| {
            !l.contains("PAYMENT_API_KEY: { secret: payment-key }")
                && !l.starts_with("secrets:")
                && !l.starts_with("  payment-key:")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(stripped, yaml);
    stripped
}

/// The graph of manifest text for Azure, stage `dev` (handler files under `dir` when given).
pub fn graph_in(manifest: &str, dir: Option<&Path>) -> AppGraph {
    let options = nimbus_manifest::LoadOptions {
        provider: "azure".into(),
        check_files: dir.is_some(),
        ..Default::default()
    };
    let path = dir.map_or_else(|| PathBuf::from("nimbus.yaml"), |d| d.join("nimbus.yaml"));
    let loaded = nimbus_manifest::load_str(&path, manifest.to_string(), &options).unwrap_or_else(
        |e| match e {
            nimbus_manifest::LoadError::Invalid(r) => panic!("{}", r.render(false)),
            e => panic!("{e}"),
        },
    );
    nimbus_graph::build(&loaded)
}

/// The graph of manifest text (handler files are not checked).
pub fn graph_str(manifest: &str) -> AppGraph {
    graph_in(manifest, None)
}

/// The shop as a graph.
pub fn shop() -> AppGraph {
    graph_in(&shop_yaml(), Some(&repo().join("examples/shop")))
}

/// A fixed subscription for tests.
pub const SUBSCRIPTION: &str = "00000000-0000-0000-0000-00000000c0de";

/// The manifest's settings with the test subscription.
pub fn settings(graph: &AppGraph) -> AzureSettings {
    AzureSettings {
        subscription: Some(SUBSCRIPTION.into()),
        ..AzureSettings::of(graph)
    }
}

/// The shop copied into a temporary directory and really built for
/// Azure with `nimbus_package::build` (dependencies cached under `target/nimbus-azure-test-cache`).
pub struct BuiltShop {
    /// The project directory (dropped with the value).
    pub dir: tempfile::TempDir,
    /// Its graph.
    pub graph: AppGraph,
    /// `build.json`.
    pub build: BuildManifest,
    /// Where the zips are.
    pub out: PathBuf,
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if [".nimbus", "node_modules", "__pycache__"].contains(&name.to_str().unwrap_or("")) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// See [`BuiltShop`].
pub fn build_shop() -> BuiltShop {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("examples/shop"), dir.path());
    std::fs::write(dir.path().join("nimbus.yaml"), shop_yaml()).unwrap();
    let graph = graph_in(&shop_yaml(), Some(dir.path()));
    let mut options = nimbus_package::BuildOptions::conventional(
        dir.path(),
        nimbus_provider::ProviderId::Azure,
        &graph.stage,
    );
    options.cache_dir = repo().join("target/nimbus-azure-test-cache");
    let report =
        nimbus_package::build(&graph, &options, &|_| {}).unwrap_or_else(|e| panic!("build: {e}"));
    BuiltShop {
        out: options.out_dir.clone(),
        dir,
        graph,
        build: report.manifest,
    }
}
