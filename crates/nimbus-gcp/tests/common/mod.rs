//! GCP-specific test helpers: settings and the emulated cloud ([`cloud`]); the provider-neutral
//! ones (the shop as a graph, a build of it, venv tools) are in `nimbus-test-support`.

#![allow(dead_code)]

pub mod cloud;

use nimbus_gcp::GcpSettings;
use nimbus_graph::AppGraph;

/// The shop's settings: its manifest's project and region, a made-up project number.
pub fn settings(graph: &AppGraph) -> GcpSettings {
    GcpSettings::from_graph(graph, "123456789012").unwrap()
}
