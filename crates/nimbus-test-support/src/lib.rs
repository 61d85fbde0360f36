//! Helpers shared by the tests of the provider crates (and the CLI's contract tests): the
//! repository's examples as app graphs and made-up builds ([`graph`]), tools from the test venv
//! ([`venv`]), checkov against a provider's skip list ([`checkov`]), golden files
//! ([`snapshot`]), the routing table every target is checked with ([`routing`]), and the CORS
//! request table with evaluators of AWS's and Azure's documented CORS ([`cors`]). A
//! dev-dependency only; it knows no provider: callers pass the provider id.

pub mod checkov;
pub mod cors;
pub mod graph;
pub mod routing;
pub mod snapshot;
pub mod venv;

use std::path::{Path, PathBuf};

pub use checkov::{assert_checkov_fails_nothing_but_skipped, assert_checkov_fails_only_skipped};
pub use graph::{build_of, graph_of, graph_str, shop};
pub use snapshot::assert_snapshot;
pub use venv::required_venv_tool;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}
