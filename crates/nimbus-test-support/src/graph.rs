//! App graphs of manifests for a given provider, stage `dev`, and builds of them with stable
//! made-up hashes (a real build is tested in nimbus-package).

use std::collections::BTreeMap;
use std::path::Path;

use nimbus_graph::AppGraph;
use nimbus_manifest::{LoadError, LoadOptions};
use nimbus_package::{Artifact, BuildManifest};
use sha2::{Digest, Sha256};

/// The graph of a manifest file for `provider` (e.g. `aws`), stage `dev`.
pub fn graph_of(provider: &str, manifest: &Path) -> AppGraph {
    let options = LoadOptions {
        provider: provider.into(),
        ..Default::default()
    };
    let loaded = nimbus_manifest::load_file(manifest, &options).unwrap_or_else(|e| panic_on(e));
    nimbus_graph::build(&loaded)
}

/// The graph of manifest text for `provider` (handler files are not checked).
pub fn graph_str(provider: &str, manifest: &str) -> AppGraph {
    let options = LoadOptions {
        provider: provider.into(),
        check_files: false,
        ..Default::default()
    };
    let loaded =
        nimbus_manifest::load_str(Path::new("nimbus.yaml"), manifest.to_string(), &options)
            .unwrap_or_else(|e| panic_on(e));
    nimbus_graph::build(&loaded)
}

/// Fails the test with the rendered diagnostic of an invalid manifest.
fn panic_on(e: LoadError) -> ! {
    match e {
        LoadError::Invalid(r) => panic!("{}", r.render(false)),
        e => panic!("{e}"),
    }
}

/// The shop example's graph for `provider`.
pub fn shop(provider: &str) -> AppGraph {
    graph_of(provider, &crate::repo().join("examples/shop/nimbus.yaml"))
}

/// A build of `graph` for the graph's provider, with stable made-up hashes.
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
        provider: graph.provider.clone(),
        functions,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
